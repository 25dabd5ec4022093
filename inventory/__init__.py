"""The source of truth: fabric schema, topology compiler, addressing, policy lint."""

from inventory.errors import FabricLoadError, InventoryError, TopologyError
from inventory.loader import LoadedFabric, load_fabric
from inventory.model import Fabric, Platform, Transport

__all__ = [
    "Fabric",
    "FabricLoadError",
    "InventoryError",
    "LoadedFabric",
    "Platform",
    "TopologyError",
    "Transport",
    "load_fabric",
]
