"""GatePlan.to_read: a gate round reads only the gateways that can change its verdict (the
wave's own and every gateway a live check depends on), and leaving the others unread gives
the same checks as reading everything. Pure."""

from fabric_factory import fabric, site

from drivers.base import BgpSession, ChildSa, DeviceState, IkeSa
from inventory.topology import compile_fabric
from tasks.health import GatePlan, evaluate, gate_plan
from tasks.health_reader import StateReader
from tasks.validate_expect import GatewayExpect, expect_fabric
from tasks.validate_observed import DeviceReader

A, B, C, D = "s1-gw1", "s2-gw1", "s3-gw1", "s4-gw1"
PREFIXES = {"s1": 1, "s2": 1, "s3": 1, "s4": 1}


def expected() -> dict[str, GatewayExpect]:
    sites = [site(i, platform="junos") for i in (1, 2, 3, 4)]
    return expect_fabric(compile_fabric(fabric(sites, auth={"method": "psk"})))


def healthy(exp: GatewayExpect) -> DeviceState:
    return DeviceState(
        ike_sas=tuple(IkeSa("", str(t.remote_host), "ESTABLISHED") for t in exp.tunnels),
        child_sas=tuple(ChildSa(f"vpn-{i}", str(t.remote_host), "INSTALLED", "aes256gcm16")
                        for i, t in enumerate(exp.tunnels)),
        bgp_sessions=tuple(BgpSession(str(b.address), b.remote_as, "Established", 1)
                           for b in exp.bgp))


def readers(plan: GatePlan, names: tuple[str, ...],
            full: dict[str, GatewayExpect]) -> dict[str, DeviceReader | None]:
    return {g: StateReader(g, healthy(full[g]), plan.expected[g].tunnels) for g in names}


def test_a_gateway_whose_checks_all_wait_for_a_later_wave_is_not_read() -> None:
    full = expected()
    plan = gate_plan(full, [A], later={B: 2, D: 3})
    assert plan.gateways == (A, B, C, D)  # the wave and every peer of its tunnels
    assert plan.to_read == (A, C)  # B and D change later: all they would answer is deferred
    everything = evaluate(plan, readers(plan, plan.gateways, full), PREFIXES)
    needed_only = evaluate(plan, readers(plan, plan.to_read, full), PREFIXES)
    assert [c.as_dict() for c in needed_only] == [c.as_dict() for c in everything]
    assert any(c.status == "pass" for c in needed_only)


def test_the_wave_is_read_even_when_every_check_of_it_is_deferred() -> None:
    plan = gate_plan(expected(), [A], later={B: 2, C: 2, D: 2})
    assert plan.to_read == (A,)  # to notice a wave gateway that stops answering


def test_every_peer_of_a_live_check_is_read() -> None:
    plan = gate_plan(expected(), [A, B], later={})
    assert plan.to_read == plan.gateways == (A, B, C, D)
