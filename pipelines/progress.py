"""One self-overwriting progress line on a terminal (stderr by default); nothing otherwise."""

import sys
import time
from typing import Any


class LiveLine:
    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.began = time.monotonic()
        self.shown = False

    def __call__(self, message: str) -> None:
        if self.live:
            self.stream.write(f"\r\033[K[{time.monotonic() - self.began:5.1f}s] {message}")
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False

    def say(self, line: str) -> None:
        """A lasting line, above the live one."""
        self.clear()
        print(line, file=self.stream)
