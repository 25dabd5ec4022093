"""Lint rules DCV340-DCV344: a gateway that would carry more than fabric.limits allows.

The figures are those of `dcvpn capacity` (inventory.capacity); each finding points at the
gateway and names the figure and the limit. Nothing is compiled unless limits are set.
inventory.lint registers CAPACITY_RULES.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from inventory.capacity import CapacityPlan, Excess, plan
from inventory.errors import TopologyError
from inventory.findings import Path, Severity
from inventory.model import Fabric
from inventory.topology import compile_fabric

W = Severity.WARNING
Check = Callable[[Fabric], Iterator[tuple[Path, str]]]

# Why a figure grows, and what lowers it.
_SPREAD = ("more gateways at a site add HA planes, not capacity: spread the sites over more "
           "hubs (hybrid regions) or raise the limit")
_HINTS: dict[str, str] = {
    "max_ike_sas": _SPREAD,
    "max_child_sas": _SPREAD,
    "max_bgp_sessions": _SPREAD,
    "max_rekeys_per_hour": "longer crypto lifetimes or fewer tunnels per gateway lower it",
    "max_rekeys_per_minute": "strongSwan ends spread rekeys (rand_time); IOS-XE and JunOS "
                             "ends do not",
}


@dataclass(frozen=True)
class CapacityRule:
    code: str
    severity: Severity
    summary: str
    check: Check


@lru_cache(maxsize=1)
def _plan(fabric: Fabric) -> CapacityPlan | None:
    try:
        return plan(compile_fabric(fabric))
    except TopologyError:
        return None  # reported by the topology rules


def _figure(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.1f}"


def _message(excess: Excess) -> str:
    return (f"gateway {excess.gateway}: {_figure(excess.figure)} {excess.what} exceed "
            f"fabric.limits.{excess.limit_field} {excess.limit}; {_HINTS[excess.limit_field]}")


def _over(limit_field: str) -> Check:
    def check(fabric: Fabric) -> Iterator[tuple[Path, str]]:
        limits = fabric.fabric.limits
        if limits is None or getattr(limits, limit_field) is None:
            return
        found = _plan(fabric)
        if found is None:
            return
        where = {gw.name: ("sites", i, "gateways", j)
                 for i, site in enumerate(fabric.sites) for j, gw in enumerate(site.gateways)}
        for excess in found.excesses():
            if excess.limit_field == limit_field:
                yield where[excess.gateway], _message(excess)
    return check


CAPACITY_RULES: list[CapacityRule] = [
    CapacityRule(code, W, f"gateway over fabric.limits.{name} ({short})", _over(name))
    for code, name, short in (
        ("DCV340", "max_ike_sas", "IKE SAs"),
        ("DCV341", "max_child_sas", "CHILD SAs"),
        ("DCV342", "max_bgp_sessions", "BGP sessions"),
        ("DCV343", "max_rekeys_per_hour", "mean IKE + CHILD rekeys per hour"),
        ("DCV344", "max_rekeys_per_minute", "rekey burst after a mass restart"),
    )
]
