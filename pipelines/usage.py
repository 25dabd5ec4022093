"""Bad command-line usage, shared by the CLI's dispatcher and the commands it loads lazily."""


class UsageError(Exception):
    """Bad command-line usage: reported in one line, exit 2."""
