"""Exception root of the tasks package."""


class TaskError(Exception):
    """Root of every error raised by dcvpn tasks."""


class RenderError(TaskError):
    """A gateway's configuration cannot be rendered."""
