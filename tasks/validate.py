"""Validate task: every check of one gateway (expected state vs what its reader observes).

The reader is the only I/O; the checks are pure (tasks.validate_checks). `scope` is the set of
gateways that can be read: a check that depends on a gateway outside it (a peer on a platform
without a reader yet) is reported as skipped, not failed. `kinds` selects checks: `lab up`
waits on READINESS (no traffic), `dcvpn validate` runs them all.
"""

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from nornir.core.task import Result, Task

from tasks.validate_anycast import apply_standby
from tasks.validate_checks import (
    CheckResult,
    Kind,
    check_bgp,
    check_child,
    check_ike,
    check_mtu,
    check_ping,
    check_route,
    skipped,
)
from tasks.validate_expect import GatewayExpect, PingExpect
from tasks.validate_observed import BgpPeer, DeviceReader, IkeSa, PingResult, ReadError, Route

READINESS = frozenset({Kind.IKE, Kind.CHILD, Kind.BGP, Kind.ROUTE})
ALL_KINDS = frozenset(Kind)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Observation:
    sas: tuple[IkeSa, ...] | ReadError
    peers: tuple[BgpPeer, ...] | ReadError
    routes: tuple[Route, ...] | ReadError
    errors: dict[str, str] = field(default_factory=dict)


def _read(fn: Callable[[], _T]) -> _T | ReadError:
    try:
        return fn()
    except ReadError as exc:
        return exc


def observe(reader: DeviceReader, kinds: Collection[Kind]) -> Observation:
    """Read what the selected checks need (I/O)."""
    tunnels = Kind.IKE in kinds or Kind.CHILD in kinds
    unread = ReadError("not read")
    return Observation(
        _read(reader.ike_sas) if tunnels else unread,
        _read(reader.bgp_peers) if Kind.BGP in kinds else unread,
        _read(reader.routes) if Kind.ROUTE in kinds else unread,
        reader.negotiation_errors() if tunnels else {})


def _scoped(result: CheckResult, scope: Collection[str]) -> CheckResult:
    outside = sorted(g for g in result.gateways if g not in scope)
    if not outside:
        return result
    return skipped(result, f"{', '.join(outside)} not validated (no reader for it)")


def state_checks(exp: GatewayExpect, obs: Observation, kinds: Collection[Kind],
                 scope: Collection[str]) -> list[CheckResult]:
    """IKE, CHILD, BGP and route checks of one gateway (pure)."""
    out: list[CheckResult] = []
    for tunnel in exp.tunnels:
        if Kind.IKE in kinds:
            out.append(check_ike(tunnel, obs.sas, obs.errors))
        if Kind.CHILD in kinds:
            out.append(check_child(tunnel, obs.sas, obs.errors))
    if Kind.BGP in kinds:
        out += [check_bgp(b, obs.peers) for b in exp.bgp]
    if Kind.ROUTE in kinds:
        out += [check_route(r, obs.routes) for r in exp.routes]
    if Kind.IKE in kinds or Kind.CHILD in kinds:  # the SAs say which anycast tunnels idle
        out = apply_standby(exp, obs.sas, out)
    return [_scoped(r, scope) for r in out]


def probe_checks(exp: GatewayExpect, reader: DeviceReader, kinds: Collection[Kind],
                 scope: Collection[str]) -> list[CheckResult]:
    """LAN-to-LAN pings and MTU probes that start on this gateway (traffic)."""
    out: list[CheckResult] = []
    for expected in exp.pings:
        ping = expected
        if any(g not in scope for g in ping.gateways):
            unrun = PingResult(False, "not run")
            if Kind.PING in kinds:
                out.append(_scoped(check_ping(ping, unrun), scope))
            if Kind.MTU in kinds and ping.mtu is not None:
                out.append(_scoped(check_mtu(ping, unrun, unrun), scope))
            continue
        if Kind.PING in kinds or ping.alternatives:
            ping, result = _answering(ping, reader)
            if Kind.PING in kinds:
                out.append(check_ping(ping, result))
        if Kind.MTU in kinds and ping.mtu is not None:
            at = reader.ping(ping.source, ping.target, ping.mtu, dont_fragment=True)
            above = reader.ping(ping.source, ping.target, ping.mtu + 1, dont_fragment=True)
            out.append(check_mtu(ping, at, above))
    return out


def _answering(ping: PingExpect, reader: DeviceReader) -> tuple[PingExpect, PingResult]:
    """An anycast hub target: the first of its gateways whose probe address answers (the one
    holding the tunnel), else the nominal one (whose failure the check then reports)."""
    first = reader.ping(ping.source, ping.target)
    if not first.ok and ping.alternatives:
        for gateway, target in ping.alternatives:
            result = reader.ping(ping.source, target)
            if result.ok:
                return replace(ping, target=target, target_gateway=gateway,
                               alternatives=()), result
    return replace(ping, alternatives=()), first


def check_gateway(exp: GatewayExpect, reader: DeviceReader, scope: Collection[str],
                  kinds: Collection[Kind] = ALL_KINDS) -> list[CheckResult]:
    results = state_checks(exp, observe(reader, kinds), kinds, scope)
    return results + probe_checks(exp, reader, kinds, scope)


def validate(task: Task, expected: Mapping[str, GatewayExpect],
             readers: Callable[[str], DeviceReader], scope: Collection[str],
             kinds: Collection[Kind] = ALL_KINDS) -> Result:
    """Nornir task: the checks of this host; failed when any check failed."""
    results = check_gateway(expected[task.host.name], readers(task.host.name), scope, kinds)
    return Result(host=task.host, result=results, failed=any(not r.ok for r in results))
