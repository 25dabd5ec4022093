"""Is the lab ready? The validator's state checks (IKE, CHILD, BGP, routes), polled.

Ready means: every IKE SA ESTABLISHED, every CHILD SA INSTALLED, every BGP session
Established and every expected route in each kernel routing table (BGP Established comes
before the route is installed, so the routes are waited for too).
"""

import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from inventory.topology import CompiledFabric
from tasks.validate import READINESS, check_gateway
from tasks.validate_anycast import holder_checks
from tasks.validate_checks import CheckResult, Kind
from tasks.validate_expect import expect_fabric
from tasks.validate_strongswan import LocalGateway, StrongswanReader

POLL_INTERVAL = 0.2
MAX_WORKERS = 8
Progress = Callable[[str], None]


def poll(compiled: CompiledFabric, lab_dir: Path, gateways: Sequence[str],
         kinds: Collection[Kind] = READINESS) -> list[CheckResult]:
    expected = expect_fabric(compiled)
    scope = set(gateways)

    def one(name: str) -> list[CheckResult]:
        reader = StrongswanReader(LocalGateway.in_lab(lab_dir, name))
        return check_gateway(expected[name], reader, scope, kinds)

    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(len(gateways), 1))) as pool:
        results = [r for batch in pool.map(one, gateways) for r in batch]
    return results + holder_checks(expected, results)


def summary(results: Sequence[CheckResult]) -> str:
    """`IKE 6/6  CHILD 6/6  BGP 4/6  routes 0/6`"""
    parts = []
    for kind, label in ((Kind.IKE, "IKE"), (Kind.CHILD, "CHILD"), (Kind.BGP, "BGP"),
                        (Kind.ROUTE, "routes")):
        mine = [r for r in results if r.kind is kind]
        if mine:
            parts.append(f"{label} {sum(1 for r in mine if r.ok)}/{len(mine)}")
    return "  ".join(parts)


def wait_ready(compiled: CompiledFabric, lab_dir: Path, gateways: Sequence[str],
               deadline: float, progress: Progress,
               kinds: Collection[Kind] = READINESS) -> list[CheckResult]:
    """Poll until every check of `kinds` passes or the deadline; the failing ones (or [])."""
    while True:
        results = poll(compiled, lab_dir, gateways, kinds)
        failing = [r for r in results if not r.ok]
        progress(f"waiting for {'tunnels and routes' if Kind.ROUTE in kinds else 'tunnels'}: "
                 f"{summary(results)}")
        if not failing or time.monotonic() >= deadline:
            return failing
        time.sleep(min(POLL_INTERVAL, max(deadline - time.monotonic(), 0.0)))
