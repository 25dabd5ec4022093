"""Durations as the model writes them: `8h`, `30m`, `10s`, `1d`, or plain seconds."""

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")


def parse_duration(value: object) -> int:
    """Return seconds. Raises ValueError with a message meant for the user."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 8h, 30m or 10s is required")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("a duration must be positive")
        return value
    if not isinstance(value, str):
        raise ValueError("a duration such as 8h, 30m or 10s is required")
    match = _PATTERN.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration such as 8h, 30m or 10s")
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def format_duration(seconds: int) -> str:
    """Shortest exact spelling: 28800 -> '8h', 90 -> '90s'."""
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
