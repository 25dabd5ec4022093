"""Exit codes of every dcvpn command (DESIGN.md)."""

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # checks failed / changes refused
    BAD_INPUT = 2  # bad input or usage
    DEVICE = 3  # device or transport failure
