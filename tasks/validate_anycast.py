"""Anycast hubs in validation: one gateway of the hub holds each anycast tunnel, the others
stand by (README "Anycast hub endpoints").

Every gateway of an anycast hub carries every anycast tunnel, but the underlay delivers a
spoke's packets to one of them, so only that one holds the SA. On a gateway that holds no
ESTABLISHED IKE SA of an anycast tunnel, that tunnel's IKE, CHILD and BGP checks, and the
route checks that depend on it alone, are standby (skipped, not failed). Across the hub,
`holder_checks` then asks that exactly one gateway holds it: none is a failure (the spokes
reach no gateway), two is one too (a stale SA on the gateway the underlay moved away from;
it clears when that gateway's DPD gives up).
"""

from collections.abc import Iterable, Mapping, Sequence

from tasks.validate_checks import ESTABLISHED, CheckResult, Kind, Status, skipped
from tasks.validate_expect import GatewayExpect
from tasks.validate_observed import IkeSa, ReadError

STANDBY = "anycast standby"


def standby_tunnels(exp: GatewayExpect, sas: Sequence[IkeSa] | ReadError) -> frozenset[str]:
    """Anycast tunnels this gateway holds no ESTABLISHED IKE SA of (none if unreadable)."""
    if isinstance(sas, ReadError):
        return frozenset()
    held = {sa.name for sa in sas if sa.state == ESTABLISHED}
    return frozenset(t.name for t in exp.tunnels if t.anycast_gateways and t.name not in held)


def apply_standby(exp: GatewayExpect, sas: Sequence[IkeSa] | ReadError,
                  results: Iterable[CheckResult]) -> list[CheckResult]:
    """`results` of one gateway with the checks of its standby anycast tunnels skipped."""
    idle = standby_tunnels(exp, sas)
    if not idle:
        return list(results)
    serving = {t.name: t.anycast_gateways for t in exp.tunnels}
    bgp_tunnel = {str(b.address): b.tunnel for b in exp.bgp}
    route_tunnels = {str(r.prefix): r.tunnels for r in exp.routes}
    out = []
    for r in results:
        if r.kind in (Kind.IKE, Kind.CHILD):
            tunnels: tuple[str, ...] = (r.subject,)
        elif r.kind is Kind.BGP:
            tunnels = (bgp_tunnel.get(r.subject, ""),)
        elif r.kind is Kind.ROUTE:
            tunnels = route_tunnels.get(r.subject, ())
        else:
            tunnels = ()
        if tunnels and all(t in idle for t in tunnels):
            others = sorted({g for t in tunnels for g in serving[t]} - {exp.gateway})
            out.append(skipped(r, f"{STANDBY}: {exp.gateway} holds no SA of "
                                  f"{', '.join(tunnels)}; the underlay delivers it to one of "
                                  f"{', '.join(others)}"))
        else:
            out.append(r)
    return out


def _is_standby(result: CheckResult) -> bool:
    return result.status is Status.SKIP and STANDBY in result.observed


def holder_checks(expected: Mapping[str, GatewayExpect],
                  results: Sequence[CheckResult]) -> list[CheckResult]:
    """One check per anycast tunnel whose hub gateways were all validated: held by exactly
    one of them."""
    ike = {(r.gateway, r.subject): r for r in results if r.kind is Kind.IKE}
    groups: dict[str, tuple[str, tuple[str, ...], tuple[str, str]]] = {}
    for exp in expected.values():
        for t in exp.tunnels:
            if t.anycast_gateways:
                groups.setdefault(t.name, (exp.site, t.anycast_gateways, t.sites))
    out = []
    for name, (site, gateways, sites) in sorted(groups.items()):
        seen = [ike.get((g, name)) for g in gateways]
        if any(r is None for r in seen):
            continue  # some gateway of the hub was not validated
        holders = [g for g, r in zip(gateways, seen, strict=True)
                   if r is not None and r.status is Status.PASS]
        idle = [g for g, r in zip(gateways, seen, strict=True)
                if r is not None and _is_standby(r)]
        ok = len(holders) == 1
        if holders:
            observed = f"held by {', '.join(holders)}"
            if len(holders) > 1:
                observed += " (a stale SA stays until that gateway's DPD gives up)"
        else:
            observed = ("held by none" if len(idle) == len(gateways)
                        else "held by none (see the IKE checks of " + ", ".join(
                            g for g in gateways if g not in idle) + ")")
        out.append(CheckResult(Kind.IKE, site, f"{name} anycast",
                               Status.PASS if ok else Status.FAIL,
                               f"exactly one of {', '.join(gateways)} holds {name}", observed,
                               tuple(sorted(set(sites))), tuple(sorted(gateways))))
    return out
