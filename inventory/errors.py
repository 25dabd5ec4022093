"""Exception root of the inventory package."""


class InventoryError(Exception):
    """Root of every error raised by the inventory package."""


class FabricLoadError(InventoryError):
    """The fabric file cannot be read, parsed or validated.

    `lines` holds one ready-to-print line per problem, each naming file, line and field.
    """

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class TopologyError(InventoryError):
    """The model cannot be compiled (run `dcvpn lint` to see why)."""
