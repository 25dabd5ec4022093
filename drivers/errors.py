"""Exception root of the drivers package: the only package that talks to devices."""


class DriverError(Exception):
    """Root of every driver error."""


class ConnectError(DriverError):
    """The device cannot be reached or refuses the credentials / host key."""


class LockError(DriverError):
    """The configuration is locked by another session."""

    def __init__(self, message: str, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class LoadError(DriverError):
    """The device rejected the candidate configuration."""


class CommitError(DriverError):
    """The device refused to commit."""


class CommitPendingError(CommitError):
    """A confirmed commit is already pending on this device."""


class NoPendingCommitError(DriverError):
    """Nothing to confirm or roll back (e.g. the confirm timer already expired)."""


class TimerError(DriverError):
    """A confirm timeout the platform cannot express."""


class UnsupportedError(DriverError):
    """The device lacks a capability this operation needs."""
