"""The deploy's health gate (tasks.health, tasks.health_reader, tasks.health_checks): which
checks a wave gets, how get_state answers are read, and the bounded retry loop. Pure."""

from collections.abc import Callable
from functools import cache
from typing import Any

from fabric_factory import fabric, site

from drivers.base import BgpSession, ChildSa, DeviceState, IkeSa
from inventory.topology import compile_fabric
from tasks.health import (
    CheckStatus,
    GatePlan,
    GateResult,
    Round,
    evaluate,
    evaluate_counted,
    gate_plan,
    summary_groups,
    wait_healthy,
)
from tasks.health_reader import StateReader
from tasks.validate_expect import GatewayExpect, expect_fabric
from tasks.validate_observed import DeviceReader, ReadError

A, B, C = "s1-gw1", "s2-gw1", "s3-gw1"


@cache
def expected() -> dict[str, GatewayExpect]:
    sites = [site(i, platform="junos") for i in (1, 2, 3)]
    return expect_fabric(compile_fabric(fabric(sites, auth={"method": "psk"})))


def healthy_state(gateway: str, *, encryption: str = "", remote_id: str = "",
                  state: str = "ESTABLISHED") -> DeviceState:
    """What a device reports with every tunnel up (summary style: no algorithms)."""
    exp = expected()[gateway]
    return DeviceState(
        ike_sas=tuple(IkeSa("", str(t.remote_host), state, remote_id=remote_id,
                            encryption=encryption) for t in exp.tunnels),
        child_sas=tuple(ChildSa(f"vpn-{i}", str(t.remote_host), "INSTALLED", "aes256gcm16")
                        for i, t in enumerate(exp.tunnels)),
        bgp_sessions=tuple(BgpSession(str(b.address), b.remote_as, "Established", 1)
                           for b in exp.bgp))


def readers(plan: GatePlan, states: dict[str, DeviceState | ReadError]
            ) -> dict[str, DeviceReader | None]:
    return {g: StateReader(g, states[g], plan.expected[g].tunnels) if g in states else None
            for g in plan.gateways}


def by_name(checks: list[Any]) -> dict[str, Any]:
    return {c.name: c for c in checks}


PREFIXES = {"s1": 1, "s2": 1, "s3": 1}


def test_a_wave_checks_both_ends_of_its_tunnels_and_defers_later_peers() -> None:
    plan = gate_plan(expected(), [A], later={B: 2})
    assert plan.gateways == (A, B, C)  # the wave and both its peers
    tunnels = {g: [t.name for t in plan.expected[g].tunnels] for g in plan.gateways}
    assert tunnels == {A: ["s1-s3-p0"], B: [], C: ["s1-s3-p0"]}  # s2-s3 is not touched
    deferred = {c.name: c.result.observed for c in plan.deferred}
    assert deferred["ike s1-gw1 s1-s2-p0"] == "not checked: deferred: s2-gw1 changes in wave 2"
    assert "child s2-gw1 s1-s2-p0" in deferred and "ike s2-gw1 s2-s3-p0" not in deferred
    assert all(c.status is CheckStatus.SKIPPED for c in plan.deferred)


def test_checks_not_evaluated_are_grouped_by_the_wave_that_checks_them() -> None:
    plan = gate_plan(expected(), [A], later={B: 2, C: 3})
    checks = evaluate(plan, readers(plan, {g: healthy_state(g) for g in (A, B, C)}), PREFIXES)
    groups = summary_groups(checks, plan.bulk)
    skipped = {(g["kind"], g["reason"]): g for g in groups if g["status"] == "skipped"}
    # s1-s2 waits for s2 (wave 2), s1-s3 for s3 (wave 3); each end's IKE check is one check
    assert skipped[("ike", "deferred to wave 2")]["count"] == 2
    assert skipped[("ike", "deferred to wave 3")]["gateways"] == [A, C]
    # every check not evaluated is in exactly one group, none evaluated is; the deferred
    # routes and pings are counted in the plan, not built one by one
    assert plan.bulk and {b.kind for b in plan.bulk} == {"route", "ping"}
    assert sum(int(str(g["count"])) for g in groups) == sum(
        1 for c in checks if c.status in (CheckStatus.SKIPPED, CheckStatus.NOT_APPLICABLE)
    ) + sum(b.count for b in plan.bulk)
    routes = skipped[("route", "deferred to wave 2")]
    assert routes["count"] == sum(1 for g in (A, B) for r in expected()[g].routes
                                  if {A, B} <= set(r.gateways) and C not in r.gateways)
    assert not any(g["status"] in ("pass", "fail") for g in groups)


def test_counted_not_applicable_checks_group_and_count_like_listed_ones() -> None:
    """A get_state reader cannot see routes or pings: the gate counts those checks per kind
    (a hub has one per spoke) and reports the same groups and totals as listing them."""
    plan = gate_plan(expected(), [A, B, C], later={})
    states = readers(plan, {g: healthy_state(g) for g in (A, B, C)})
    listed = evaluate(plan, states, PREFIXES)
    checks, counted = evaluate_counted(plan, states, PREFIXES)
    assert {b.kind for b in counted} == {"route", "ping"}
    assert all(b.status is CheckStatus.NOT_APPLICABLE for b in counted)
    assert not any(c.result.kind in ("route", "ping") for c in checks)
    assert [c for c in listed if c.result.kind not in ("route", "ping")] == checks
    assert summary_groups(listed, plan.bulk) == summary_groups(checks, plan.bulk + counted)
    assert GateResult(tuple(listed), 1, 0.0, {}, plan.bulk).counts() == GateResult(
        tuple(checks), 1, 0.0, {}, plan.bulk + counted).counts()


def test_state_answers_pass_what_they_show_and_name_what_they_do_not() -> None:
    plan = gate_plan(expected(), [A, B, C], later={})
    checks = by_name(evaluate(plan, readers(plan, {g: healthy_state(g) for g in (A, B, C)}),
                              PREFIXES))
    ike = checks["ike s1-gw1 s1-s2-p0"]
    assert ike.status is CheckStatus.PASS
    assert ike.result.observed == ("IKE SA ESTABLISHED with 198.18.0.2 (identity not "
                                   "reported) (proposal not reported)")
    assert checks["child s1-gw1 s1-s2-p0"].result.observed == "CHILD SA INSTALLED (AES_GCM_16_256)"
    assert checks["bgp s1-gw1 100.64.0.1 prefixes"].status is CheckStatus.PASS
    not_applicable = [c for c in checks.values() if c.status is CheckStatus.NOT_APPLICABLE]
    assert {c.result.kind for c in not_applicable} == {"route", "ping"}
    assert all(c.result.observed.startswith("not applicable: the driver's get_state")
               for c in not_applicable)
    assert not any(c.failed for c in checks.values())


def test_a_reported_difference_fails_and_a_missing_reader_skips() -> None:
    plan = gate_plan(expected(), [A], later={})
    states: dict[str, DeviceState | ReadError] = {
        A: healthy_state(A, encryption="aes128gcm16", remote_id="s9-gw1.t.dcvpn"),
        C: ReadError("s3-gw1: the session to the device broke")}
    checks = by_name(evaluate(plan, readers(plan, states), PREFIXES))
    ike = checks["ike s1-gw1 s1-s3-p0"]
    assert ike.failed and "AES_GCM_16_128" in ike.result.observed
    assert checks["ike s3-gw1 s1-s3-p0"].result.observed.startswith("unreadable: s3-gw1:")
    assert checks["ike s3-gw1 s1-s3-p0"].failed
    skipped = checks["ike s1-gw1 s1-s2-p0"]  # B has no reader at all
    assert skipped.status is CheckStatus.SKIPPED
    assert "s2-gw1 not validated (no reader for it)" in skipped.result.observed
    few = DeviceState(bgp_sessions=(BgpSession("100.64.0.1", 64514, "Established", 0),))
    bgp = by_name(evaluate(plan, readers(plan, {A: few, B: healthy_state(B)}), PREFIXES))
    assert bgp["bgp s1-gw1 100.64.0.1 prefixes"].failed
    assert bgp["bgp s1-gw1 100.64.0.1 prefixes"].result.observed == "0 prefix(es) received"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def rounds(plan: GatePlan, states: list[dict[str, DeviceState | ReadError]],
           unreachable: dict[str, str] | None = None) -> Callable[[], Round]:
    calls = iter(states)

    def read() -> Round:
        current = next(calls, states[-1])
        return Round(readers(plan, current), unreachable or {})
    return read


def test_the_gate_retries_until_healthy_and_gives_up_at_the_settle_time() -> None:
    plan = gate_plan(expected(), [A, B, C], later={})
    good = {g: healthy_state(g) for g in (A, B, C)}
    down: dict[str, DeviceState | ReadError] = {
        g: healthy_state(g, state="CONNECTING") for g in (A, B, C)}
    clock = FakeClock()
    result = wait_healthy(plan, rounds(plan, [down, down, good]), PREFIXES, settle=10,
                          interval=1, clock=clock, sleep=clock.sleep)
    assert result.healthy and result.attempts == 3 and clock.now == 2
    clock = FakeClock()
    seen: list[int] = []
    result = wait_healthy(plan, rounds(plan, [down]), PREFIXES, settle=5, interval=2,
                          clock=clock, sleep=clock.sleep,
                          progress=lambda n, _: seen.append(n))
    assert not result.healthy and clock.now == 5 and seen == [1, 2, 3, 4]
    assert "ike s1-gw1 s1-s2-p0" in [c.name for c in result.failed]


def test_a_wave_gateway_that_stops_answering_ends_the_gate_at_once() -> None:
    plan = gate_plan(expected(), [A], later={})
    lost: dict[str, DeviceState | ReadError] = {
        A: ReadError("gone"), B: healthy_state(B), C: healthy_state(C)}
    clock = FakeClock()
    result = wait_healthy(plan, rounds(plan, [lost], {A: "s1-gw1: gone"}), PREFIXES,
                          settle=30, interval=1, clock=clock, sleep=clock.sleep)
    assert result.attempts == 1 and result.unreachable == {A: "s1-gw1: gone"}
    assert not result.healthy
    peer_only = wait_healthy(plan, rounds(plan, [lost], {B: "s2-gw1: gone"}), PREFIXES,
                             settle=3, interval=1, clock=clock, sleep=clock.sleep)
    assert peer_only.unreachable == {} and peer_only.attempts > 1  # a peer: retried
