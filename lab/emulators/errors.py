"""Exceptions of the device emulators (all under lab.errors.LabError)."""

from lab.errors import LabError


class EmulatorError(LabError):
    """Root of the emulator errors."""


class FramingError(EmulatorError):
    """A NETCONF message stream that violates RFC 6242 framing."""


class ConfigSyntaxError(EmulatorError):
    """Configuration text, set commands or XML that the device grammar does not accept."""

    def __init__(self, message: str, *, bad_element: str | None = None,
                 path: tuple[str, ...] = (), line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.bad_element = bad_element
        self.path = path
        self.line = line
