"""Exception root of the lab package."""


class LabError(Exception):
    """Root of every error raised by the lab (namespaces, daemons, emulators, schemas)."""
