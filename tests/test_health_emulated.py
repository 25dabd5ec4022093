"""The health gate's emulated-peer rule (tasks.health): a check that depends on an emulated
device and a real daemon at once cannot pass by design and is `not-applicable`, said so in
its observed text; checks between real gateways or between emulated ones are judged as
always. Pure: get_state answers stand in for the devices."""

from functools import cache

from fabric_factory import fabric, site

from drivers.base import BgpSession, ChildSa, DeviceState, IkeSa
from inventory.topology import compile_fabric
from tasks.health import CheckStatus, emulated_peer, evaluate, gate_plan
from tasks.health_reader import StateReader
from tasks.validate_expect import GatewayExpect, expect_fabric
from tasks.validate_observed import DeviceReader

A, B, C = "s1-gw1", "s2-gw1", "s3-gw1"
PREFIXES = {"s1": 1, "s2": 1, "s3": 1}


@cache
def expected() -> dict[str, GatewayExpect]:
    sites = [site(i, platform="junos") for i in (1, 2, 3)]
    return expect_fabric(compile_fabric(fabric(sites, auth={"method": "psk"})))


def state(gateway: str, up: set[str]) -> DeviceState:
    """Every tunnel of `gateway` towards a gateway in `up` established, the others down."""
    exp = expected()[gateway]
    ok = [t for t in exp.tunnels if t.peer_gateway in up]
    return DeviceState(
        ike_sas=tuple(IkeSa("", str(t.remote_host), "ESTABLISHED") for t in ok),
        child_sas=tuple(ChildSa(f"vpn-{i}", str(t.remote_host), "INSTALLED", "aes256gcm16")
                        for i, t in enumerate(ok)),
        bgp_sessions=tuple(BgpSession(str(b.address), b.remote_as,
                                      "Established" if b.peer_gateway in up else "Active", 1)
                           for b in exp.bgp))


def neighbor(gateway: str, peer: str) -> str:
    return str(next(b.address for b in expected()[gateway].bgp if b.peer_gateway == peer))


def readers(plan_gateways: tuple[str, ...], states: dict[str, DeviceState]
            ) -> dict[str, DeviceReader | None]:
    return {g: StateReader(g, states[g], expected()[g].tunnels) for g in plan_gateways}


# s2 and s3 reach each other (emulated pair); s1 (a real daemon) reaches neither
STATES = {A: state(A, set()), B: state(B, {C}), C: state(C, {B})}


def test_checks_across_an_emulated_and_a_real_gateway_are_not_applicable_and_named() -> None:
    plan = gate_plan(expected(), [A, B, C], later={}, emulated={B, C})
    checks = {c.name: c for c in evaluate(plan, readers(plan.gateways, STATES), PREFIXES)}
    across = checks["ike s1-gw1 s1-s2-p0"]
    assert across.status is CheckStatus.NOT_APPLICABLE and not across.failed
    assert across.result.observed == ("emulated peer: not checked (s2-gw1 emulated, runs no "
                                      "IKE: no tunnel to s1-gw1 can come up)")
    assert emulated_peer(across)
    to_a, to_c = neighbor(B, A), neighbor(C, B)
    for name in ("child s3-gw1 s1-s3-p0", f"bgp s2-gw1 {to_a}", f"bgp s2-gw1 {to_a} prefixes"):
        assert checks[name].status is CheckStatus.NOT_APPLICABLE, name
        assert emulated_peer(checks[name]), name
    # between the two emulated devices the checks are real and pass
    assert checks["ike s2-gw1 s2-s3-p0"].status is CheckStatus.PASS
    assert checks[f"bgp s3-gw1 {to_c} prefixes"].status is CheckStatus.PASS
    assert not any(c.failed for c in checks.values())
    # a route between the emulated pair keeps its own reason (get_state has no routes)
    route = next(c for c in checks.values() if c.result.kind == "route"
                 and set(c.result.gateways) == {B, C})
    assert route.status is CheckStatus.NOT_APPLICABLE and not emulated_peer(route)


def test_without_the_rule_the_same_answers_fail() -> None:
    plan = gate_plan(expected(), [A, B, C], later={})
    checks = {c.name: c for c in evaluate(plan, readers(plan.gateways, STATES), PREFIXES)}
    assert checks["ike s1-gw1 s1-s2-p0"].failed
    assert checks["bgp s2-gw1 100.64.0.0"].failed
    assert not any(emulated_peer(c) for c in checks.values())


def test_a_tunnel_between_real_gateways_still_fails() -> None:
    plan = gate_plan(expected(), [A, B, C], later={}, emulated={C})
    checks = {c.name: c for c in evaluate(plan, readers(plan.gateways, STATES), PREFIXES)}
    assert checks["ike s1-gw1 s1-s2-p0"].failed  # s1 and s2 are both real here
    assert checks["ike s2-gw1 s2-s3-p0"].status is CheckStatus.NOT_APPLICABLE
    assert checks["ike s3-gw1 s1-s3-p0"].status is CheckStatus.NOT_APPLICABLE
