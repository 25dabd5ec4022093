"""The health gate of a deploy wave: the post-change checks on both ends of every tunnel that
touches the wave's gateways, retried until they pass or the settle time is up.

Which checks (gate_plan, pure):
- every tunnel with an end in the wave: IKE SA and CHILD SA at both ends, BGP Established with
  the expected peer and AS at both ends, and at least the peer site's prefixes received;
- routes and pings that depend on a wave gateway, where the gateway's reader can observe them
  (the lab's strongSwan gateways); a reader over ConfigDriver.get_state cannot, and those
  checks are reported `not-applicable`, never `pass`;
- a tunnel whose other end changes in a later wave is `skipped` here ("deferred to wave N"):
  the later wave's gate checks it, when both ends carry the new configuration.

A check that depends on a gateway without any reader is `skipped` (named). The gate passes
when no check failed.

Emulated devices (the lab's junos/iosxe emulators, GatePlan.emulated) derive their tunnels
from the configurations of the other emulated devices; they run no IKE. A tunnel between an
emulated device and a real daemon (the lab's strongSwan) therefore cannot come up by design,
and every check that depends on both kinds of gateway (its SAs, BGP session and prefixes,
routes and pings through it) is `not-applicable`, observed "emulated peer: not checked
(...)": named in the gate's output, never counted as passed.
"""

import math
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import chain
from typing import Protocol, TypeVar

from nornir.core.task import Result, Task

from drivers.nornir_connection import driver_for
from tasks.health_checks import check_child_state, check_ike_state
from tasks.health_index import WaveIndex
from tasks.health_reader import NO_PING, NO_ROUTES, StateReader
from tasks.validate import Observation, observe, probe_checks, state_checks
from tasks.validate_checks import BGP_ESTABLISHED, CheckResult, Kind, Status, skipped
from tasks.validate_expect import BgpExpect, GatewayExpect
from tasks.validate_observed import BgpPeer, DeviceReader, ReadError

STATE_KINDS = frozenset({Kind.IKE, Kind.CHILD, Kind.BGP})
EMULATED_PEER = "emulated peer: not checked"
ALL_KINDS = frozenset(Kind)


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"
    NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True, slots=True)
class HealthCheck:
    result: CheckResult
    status: CheckStatus
    # why a check was not evaluated, without gateway names (groups reports: summary_groups)
    reason: str = ""

    @property
    def name(self) -> str:
        return self.result.name

    @property
    def failed(self) -> bool:
        return self.status is CheckStatus.FAIL

    def as_dict(self) -> dict[str, object]:
        return {**self.result.as_dict(), "status": str(self.status)}


def _wrap(result: CheckResult) -> HealthCheck:
    status = {Status.PASS: CheckStatus.PASS, Status.FAIL: CheckStatus.FAIL,
              Status.SKIP: CheckStatus.SKIPPED}[result.status]
    return HealthCheck(result, status)


def _not_applicable(result: CheckResult, reason: str) -> HealthCheck:
    return HealthCheck(replace(result, status=Status.SKIP, observed=f"not applicable: {reason}"),
                       CheckStatus.NOT_APPLICABLE, reason)


@dataclass(frozen=True, slots=True)
class Bulk:
    """Checks of one status, kind and reason counted, not built one by one: a fleet's gate
    defers some 10^4 route and ping checks per wave, each named in the wave that checks it."""

    status: CheckStatus
    kind: Kind
    reason: str
    count: int
    gateways: frozenset[str]


@dataclass(frozen=True, slots=True)
class GatePlan:
    """What the gate of one wave checks: per gateway (both ends) its share of the checks."""

    wave: frozenset[str]
    expected: Mapping[str, GatewayExpect]
    deferred: tuple[HealthCheck, ...] = ()  # skipped: the other end changes in a later wave
    bulk: tuple[Bulk, ...] = ()  # deferred route and ping checks, counted
    emulated: frozenset[str] = frozenset()  # emulated devices (no IKE): see the module doc

    @property
    def gateways(self) -> tuple[str, ...]:
        return tuple(sorted(self.expected))

    @property
    def to_read(self) -> tuple[str, ...]:
        """The gateways a round must read: the wave's own (to notice one that stops
        answering) and every gateway a check that is not deferred depends on. The others have
        nothing left to check here (every check of theirs waits for a later wave), and no
        check names them: reading them could not change the verdict (in the first waves of a
        fabric-wide deploy, that is every spoke of the other region, or the hubs)."""
        needed = set(self.wave)
        for exp in self.expected.values():
            for t in exp.tunnels:
                needed.update((t.gateway, t.peer_gateway))
            for b in exp.bgp:
                needed.update((b.gateway, b.peer_gateway))
            for route in exp.routes:
                needed.update(route.gateways)
            for ping in exp.pings:
                needed.update(ping.gateways)
        return tuple(g for g in self.gateways if g in needed)


def _deferral(gateways: Collection[str], later: Mapping[str, int]) -> str | None:
    waiting = sorted((later[g], g) for g in gateways if g in later)
    if not waiting:
        return None
    return "deferred: " + ", ".join(f"{g} changes in wave {n}" for n, g in waiting)


_DEFERRED_TO = re.compile(r"wave (\d+)")


def _deferred_to(reason: str) -> str:
    """The group of a deferral: the wave whose gate checks it (the last end to change)."""
    return f"deferred to wave {max(int(n) for n in _DEFERRED_TO.findall(reason))}"


class _HasGateways(Protocol):
    @property
    def gateways(self) -> tuple[str, ...]: ...


_Checked = TypeVar("_Checked", bound=_HasGateways)


def _touching(gateways: Iterable[str], wave: frozenset[str]) -> bool:
    return not wave.isdisjoint(gateways)


def gate_plan(expected: Mapping[str, GatewayExpect], wave: Collection[str],
              later: Mapping[str, int], emulated: Collection[str] = (),
              index: WaveIndex | None = None) -> GatePlan:
    """The checks of a wave (pure). `later`: gateways that change in a later wave -> its
    number; a check depending on one is deferred to that wave. `emulated`: the gateways that
    are emulated devices (module doc). `index`: the deploy's route and ping checks sorted by
    wave once (its numbers the waves `later` comes from), instead of walking them here."""
    mine = frozenset(wave)
    this_wave = index.numbers[next(iter(mine))] if index is not None and mine else 0
    plan: dict[str, GatewayExpect] = {}
    deferred: list[HealthCheck] = []
    neighbors: dict[str, dict[str, BgpExpect]] = {}
    # a fabric-wide deploy asks 10^5 times: (reason, its group) per set of gateways
    reasons: dict[tuple[str, ...], tuple[str, str] | None] = {}

    def deferral(gateways: tuple[str, ...]) -> tuple[str, str] | None:
        if gateways not in reasons:
            reason = _deferral(gateways, later)
            reasons[gateways] = None if reason is None else (reason, _deferred_to(reason))
        return reasons[gateways]

    # route and ping checks only need the wave that checks them (their group), not the reason:
    # per set of gateways -1 (not touching this wave), 0 (checked now) or the later wave
    waits: dict[tuple[str, ...], int] = {}
    tallies: dict[tuple[Kind, int], int] = {}
    seen: dict[tuple[Kind, int], list[tuple[str, ...]]] = {}

    def checked_now(kind: Kind, checks: Iterable[_Checked]) -> tuple[_Checked, ...]:
        """The checks touching the wave that it checks; the deferred ones are counted (a
        fabric-wide deploy has 10^4 a wave: one loop, no strings)."""
        kept = []
        for check in checks:
            gateways = check.gateways
            wave = waits.get(gateways)
            if wave is None:
                wave = waits[gateways] = -1 if mine.isdisjoint(gateways) else max(
                    (later[g] for g in gateways if g in later), default=0)
            if wave == 0:
                kept.append(check)
            elif wave > 0:
                key = (kind, wave)
                tallies[key] = tallies.get(key, 0) + 1
                seen.setdefault(key, []).append(gateways)
        return tuple(kept)

    def defer(results: Iterable[CheckResult]) -> None:
        for r in results:
            found = deferral(r.gateways)
            if found is not None:
                deferred.append(_deferred(r, *found, expected, neighbors))

    for name, exp in sorted(expected.items()):
        tunnels = tuple(t for t in exp.tunnels if _touching((t.gateway, t.peer_gateway), mine))
        if not tunnels:
            continue
        names = {t.name for t in tunnels}
        bgp = tuple(b for b in exp.bgp if b.tunnel in names)
        keep = [t for t in tunnels if deferral((t.gateway, t.peer_gateway)) is None]
        kept_names = {t.name for t in keep}
        pending = [t for t in tunnels if t.name not in kept_names]
        defer(CheckResult(kind, t.gateway, t.name, Status.SKIP, "", "", t.sites,
                          tuple(sorted({t.gateway, t.peer_gateway})))
              for t in pending for kind in (Kind.IKE, Kind.CHILD))
        defer(CheckResult(Kind.BGP, b.gateway, str(b.address), Status.SKIP, "", "", b.sites,
                          tuple(sorted({b.gateway, b.peer_gateway})))
              for b in bgp if b.tunnel not in kept_names)
        if index is None:
            routes, pings = checked_now(Kind.ROUTE, exp.routes), checked_now(Kind.PING, exp.pings)
        else:
            share = index.share(name, this_wave)
            routes, pings = tuple(share.routes), tuple(share.pings)
            for key, waiting in share.deferred.items():
                tallies[key] = tallies.get(key, 0) + len(waiting)
                seen.setdefault(key, []).extend(waiting)
        plan[name] = replace(
            exp, tunnels=tuple(keep), bgp=tuple(b for b in bgp if b.tunnel in kept_names),
            routes=routes, pings=pings)
    bulk = tuple(sorted((Bulk(CheckStatus.SKIPPED, kind, _deferred_to(f"wave {wave}"), number,
                              frozenset(chain.from_iterable(seen[(kind, wave)])))
                         for (kind, wave), number in tallies.items()),
                        key=lambda b: (b.kind, b.reason)))
    return GatePlan(mine, plan, tuple(deferred), bulk, frozenset(emulated))


# what the later wave of a deferred check will check
DEFERRED_EXPECTED = {Kind.IKE: "IKE SA ESTABLISHED", Kind.CHILD: "CHILD SA INSTALLED",
                     Kind.BGP: f"BGP {BGP_ESTABLISHED}", Kind.ROUTE: "route via a tunnel",
                     Kind.PING: "echo reply"}


def _deferred(r: CheckResult, reason: str, group: str, expected: Mapping[str, GatewayExpect],
              neighbors: dict[str, dict[str, BgpExpect]]) -> HealthCheck:
    """The skipped check that stands for r until its later wave, with its expected text.
    `neighbors` caches each gateway's BGP expectations by address (a hub has hundreds)."""
    text = DEFERRED_EXPECTED.get(r.kind, str(r.kind))
    exp = expected.get(r.gateway)
    if exp is not None and r.kind is Kind.BGP:
        by_address = neighbors.get(r.gateway)
        if by_address is None:
            by_address = neighbors[r.gateway] = {}
            for b in exp.bgp:
                by_address.setdefault(str(b.address), b)
        found = by_address.get(r.subject)
        text = f"{text} with {r.subject} AS {found.remote_as}" if found else text
    return HealthCheck(CheckResult(r.kind, r.gateway, r.subject, Status.SKIP, text,
                                   f"not checked: {reason}", r.sites, r.gateways),
                       CheckStatus.SKIPPED, group)


# --- evaluating one round of observations (pure) ------------------------------------------

def _prefix_check(exp: BgpExpect, peers: Sequence[BgpPeer] | ReadError,
                  minimum: int) -> CheckResult:
    expected = f"at least {minimum} prefix(es) received from {exp.address}"

    def result(status: Status, observed: str) -> CheckResult:
        return CheckResult(Kind.BGP, exp.gateway, f"{exp.address} prefixes", status,
                           expected, observed, tuple(sorted(set(exp.sites))),
                           tuple(sorted({exp.gateway, exp.peer_gateway})))

    if isinstance(peers, ReadError):
        return result(Status.FAIL, f"unreadable: {peers}")
    peer = next((p for p in peers if p.address == exp.address), None)
    if peer is None or peer.state != BGP_ESTABLISHED:
        return result(Status.FAIL, "no Established session" if peer is None
                      else f"session {peer.state}")
    if peer.prefixes_received is None:
        return result(Status.SKIP, "not checked: the device does not report a prefix count")
    return result(Status.PASS if peer.prefixes_received >= minimum else Status.FAIL,
                  f"{peer.prefixes_received} prefix(es) received")


def _placeholder(kind: Kind, gateway: str, subject: str, sites: tuple[str, ...],
                 gateways: tuple[str, ...]) -> CheckResult:
    return CheckResult(kind, gateway, subject, Status.SKIP, "", "", sites, gateways)


def _state_only(exp: GatewayExpect) -> list[HealthCheck]:
    """Route and ping checks a get_state reader cannot observe."""
    out = [_not_applicable(replace(
        _placeholder(Kind.ROUTE, r.gateway, str(r.prefix), r.sites, r.gateways),
        expected=f"route {r.prefix} via a tunnel"), NO_ROUTES) for r in exp.routes]
    out += [_not_applicable(replace(
        _placeholder(Kind.PING, p.gateway, f"{p.pair[0]}->{p.pair[1]}", p.sites, p.gateways),
        expected=f"echo reply from {p.target} to {p.source}"), NO_PING) for p in exp.pings]
    return out


def _state_only_counted(exp: GatewayExpect) -> list[Bulk]:
    """_state_only, counted per kind (a hub gateway has a route and pings to every spoke)."""
    out = []
    for kind, reason, items in ((Kind.ROUTE, NO_ROUTES, exp.routes),
                                (Kind.PING, NO_PING, exp.pings)):
        if items:
            gateways = frozenset(g for item in items for g in item.gateways)
            out.append(Bulk(CheckStatus.NOT_APPLICABLE, kind, reason, len(items), gateways))
    return out


def evaluate(plan: GatePlan, readers: Mapping[str, DeviceReader | None],
             prefix_counts: Mapping[str, int]) -> list[HealthCheck]:
    """Every check of the plan against one round of readers (the readers do the I/O).

    readers: gateway -> its reader, None when it has none; prefix_counts: site -> number of
    prefixes it announces (the minimum a BGP session towards it must receive).
    """
    return evaluate_counted(plan, readers, prefix_counts, count=False)[0]


def evaluate_counted(plan: GatePlan, readers: Mapping[str, DeviceReader | None],
                     prefix_counts: Mapping[str, int], count: bool = True
                     ) -> tuple[list[HealthCheck], tuple[Bulk, ...]]:
    """evaluate, with the route and ping checks a get_state reader cannot observe counted
    (not applicable, by kind) instead of listed when `count`."""
    scope = {g for g, r in readers.items() if r is not None}
    out: list[HealthCheck] = list(plan.deferred)
    bulk: list[Bulk] = []
    for name in plan.gateways:
        exp = plan.expected[name]
        reader = readers.get(name)
        if reader is None:  # every check depends on it: all skipped, naming it
            out += [_wrap(r) for r in state_checks(exp, _unread(), STATE_KINDS, scope)]
            continue
        state_only = isinstance(reader, StateReader)
        kinds = STATE_KINDS if state_only else ALL_KINDS - {Kind.PING, Kind.MTU}
        obs = observe(reader, kinds)
        if state_only:  # fields a device does not report are named, not compared
            out += [_wrap(r) for r in state_checks(exp, obs, {Kind.BGP}, scope)]
            out += [_wrap(_in_scope(check(t, obs.sas), scope)) for t in exp.tunnels
                    for check in (check_ike_state, check_child_state)]
        else:
            out += [_wrap(r) for r in state_checks(exp, obs, kinds, scope)]
        for b in exp.bgp:
            result = _prefix_check(b, obs.peers, prefix_counts.get(b.sites[1], 0))
            out.append(_wrap(_in_scope(result, scope)))
        if state_only and count:
            bulk += _state_only_counted(exp)
        elif state_only:
            out += _state_only(exp)
        else:
            out += [_wrap(r) for r in probe_checks(exp, reader, ALL_KINDS, scope)]
    out = [_across_emulation(c, plan.emulated) for c in out]
    return (sorted(out, key=lambda c: (c.result.kind, c.result.gateway, c.result.subject)),
            tuple(bulk))


def _across_emulation(check: HealthCheck, emulated: Collection[str]) -> HealthCheck:
    """A passed or failed check that depends on an emulated device and a real daemon at once
    is not applicable (it cannot pass by design); anything else is left as it is."""
    if check.status not in (CheckStatus.PASS, CheckStatus.FAIL):
        return check
    fake = sorted(g for g in check.result.gateways if g in emulated)
    real = sorted(g for g in check.result.gateways if g not in emulated)
    if not fake or not real:
        return check
    reason = (f"{EMULATED_PEER} ({', '.join(fake)} emulated, runs no IKE: no "
              f"tunnel to {', '.join(real)} can come up)")
    return HealthCheck(replace(check.result, status=Status.SKIP, observed=reason),
                       CheckStatus.NOT_APPLICABLE, EMULATED_PEER)


def emulated_peer(check: HealthCheck) -> bool:
    """Not applicable because of the emulated-peer rule (for reports)."""
    return (check.status is CheckStatus.NOT_APPLICABLE
            and check.result.observed.startswith(EMULATED_PEER))


def _in_scope(result: CheckResult, scope: Collection[str]) -> CheckResult:
    outside = sorted(g for g in result.gateways if g not in scope)
    if not outside:
        return result
    return skipped(result, f"{', '.join(outside)} not validated (no reader for it)")


def _unread() -> Observation:
    unread = ReadError("not read")
    return Observation(unread, unread, unread)


def summary_groups(checks: Iterable[HealthCheck],
                   bulk: Iterable[Bulk] = ()) -> list[dict[str, object]]:
    """The checks that were not evaluated (skipped, not applicable), grouped by status, kind
    and reason, with their count and the gateways they concern: a fleet's gate has some 10^4
    of them per wave (every deferred route and ping), each named in the wave that checks it."""
    groups: dict[tuple[str, str, str], tuple[int, set[str]]] = {}
    for item in bulk:
        key = (str(item.status), str(item.kind), item.reason)
        count, gateways = groups.get(key, (0, set()))
        groups[key] = (count + item.count, gateways | item.gateways)
    for check in checks:
        if check.status in (CheckStatus.PASS, CheckStatus.FAIL):
            continue
        key = (str(check.status), str(check.result.kind), check.reason or check.result.observed)
        count, gateways = groups.get(key, (0, set()))
        gateways.update(check.result.gateways)
        groups[key] = (count + 1, gateways)
    return [{"status": status, "kind": kind, "reason": reason, "count": count,
             "gateways": sorted(gateways)}
            for (status, kind, reason), (count, gateways) in sorted(groups.items())]


# --- the bounded retry loop ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Round:
    """One read of every gate gateway: readers, and the wave gateways that did not answer."""

    readers: Mapping[str, DeviceReader | None]
    unreachable: Mapping[str, str] = field(default_factory=dict)  # gateway -> error


@dataclass(frozen=True, slots=True)
class GateResult:
    checks: tuple[HealthCheck, ...]
    attempts: int
    seconds: float
    unreachable: Mapping[str, str]  # wave gateways that broke off (gateway -> error)
    bulk: tuple[Bulk, ...] = ()  # counted, not listed (GatePlan.bulk)

    @property
    def healthy(self) -> bool:
        return not self.unreachable and not any(c.failed for c in self.checks)

    @property
    def failed(self) -> tuple[HealthCheck, ...]:
        return tuple(c for c in self.checks if c.failed)

    def counts(self) -> dict[str, int]:
        return {str(s): sum(1 for c in self.checks if c.status is s)
                + sum(b.count for b in self.bulk if b.status is s) for s in CheckStatus}


def wait_healthy(plan: GatePlan, read: Callable[[], Round], prefix_counts: Mapping[str, int],
                 settle: float, interval: float,
                 progress: Callable[[int, list[HealthCheck]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> GateResult:
    """Read and check until every check passes, a wave gateway breaks off, or `settle`
    seconds are up (then the last round's checks are the verdict). At most
    settle / interval + 2 rounds."""
    start = clock()
    deadline = start + max(settle, 0.0)
    rounds = math.floor(max(settle, 0.0) / max(interval, 1e-3)) + 2
    checks: list[HealthCheck] = []
    counted: tuple[Bulk, ...] = ()
    attempt = 0
    for attempt in range(1, rounds + 1):
        observed = read()
        gone = {g: e for g, e in observed.unreachable.items() if g in plan.wave}
        checks, counted = evaluate_counted(plan, observed.readers, prefix_counts)
        if progress is not None:
            progress(attempt, checks)
        if gone:
            return GateResult(tuple(checks), attempt, clock() - start, gone,
                              plan.bulk + counted)
        if not any(c.failed for c in checks):
            break
        left = deadline - clock()
        if left <= 0:
            break
        sleep(min(interval, left))
    return GateResult(tuple(checks), attempt, clock() - start, {}, plan.bulk + counted)


# --- Nornir task: one get_state ------------------------------------------------------------

def read_state(task: Task) -> Result:
    """The host's DeviceState through its driver (drivers.base.ConfigDriver.get_state)."""
    return Result(host=task.host, result=driver_for(task).get_state())

