"""Build a Nornir object for a fabric the CLI has already loaded and linted."""

from typing import Any

from nornir import InitNornir
from nornir.core import Nornir

from inventory.topology import CompiledFabric


def make_nornir(fabric_file: str, compiled: CompiledFabric, workers: int = 1) -> Nornir:
    runner: dict[str, Any] = (
        {"plugin": "serial"} if workers <= 1
        else {"plugin": "threaded", "options": {"num_workers": workers}}
    )
    return InitNornir(
        runner=runner,
        inventory={"plugin": "DcvpnInventory",
                   "options": {"fabric": fabric_file, "compiled": compiled}},
        logging={"enabled": False},
    )
