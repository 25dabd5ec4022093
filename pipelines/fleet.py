"""Build a Nornir object for a fabric the CLI has already loaded and linted."""

import logging
from typing import Any

from nornir import InitNornir
from nornir.core import Nornir

from inventory.topology import CompiledFabric


def make_nornir(fabric_file: str, compiled: CompiledFabric, workers: int = 1) -> Nornir:
    # Task failures are reported by the command from the results; without a handler Python's
    # last-resort handler would also print nornir's tracebacks to stderr.
    nornir_log = logging.getLogger("nornir")
    if not nornir_log.handlers:
        nornir_log.addHandler(logging.NullHandler())
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
