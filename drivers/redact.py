"""Keeping secrets out of logs: client libraries log whole NETCONF messages at INFO/DEBUG.

The filter masks secret positions (tasks.semantic_diff.mask_secrets) and every value
registered with `hide` (the secrets a task resolved), which also catches a device echoing a
secret in an error. It is installed on each logger of a library, because a logger's filters
do not apply to records its children propagate to it.
"""

import logging
import threading
from collections.abc import Iterable

from tasks.semantic_diff import mask_secrets

MASK = "<masked>"


class _Hidden:
    """Values longest first; the tuple is replaced whole, so readers need no lock."""

    def __init__(self) -> None:
        self.values: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            merged = {*self.values, *(v for v in values if v)}
            self.values = tuple(sorted(merged, key=len, reverse=True))


_HIDDEN = _Hidden()


def hide(values: Iterable[str]) -> None:
    """Register secret values to be masked in every guarded log record from now on."""
    _HIDDEN.add(values)


def redact(text: str) -> str:
    for value in _HIDDEN.values:
        text = text.replace(value, MASK)
    return mask_secrets(text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            return True
        record.msg, record.args = redact(text), ()
        return True


_FILTER = RedactingFilter()


def guard_loggers(prefix: str) -> None:
    """Install the filter on the logger `prefix` and all its existing children (idempotent)."""
    names = [prefix, *(name for name in logging.Logger.manager.loggerDict
                       if name.startswith(prefix + "."))]
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
