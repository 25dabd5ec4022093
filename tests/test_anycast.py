"""Anycast hub endpoints without daemons: model, topology, rendering on all three platforms
(golden files in tests/golden/ac-anycast), YANG validity, certificate SANs, the lab plan
and validation's standby / holder logic (tests/fabrics/ac-anycast.yaml)."""

from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import cast

import pytest
import yaml
from conftest import GOLDEN, UPDATE_GOLDEN
from cryptography import x509
from netconf_support import require_yang
from pki_support import NOW

from inventory.loader import load_fabric
from inventory.model import Fabric
from inventory.topology import CompiledFabric, compile_fabric
from lab.topology import plan
from lab.up import responders_first
from tasks.errors import RenderError
from tasks.pki.ca import init_ca
from tasks.pki.issue import gateway_identity, issue_certs
from tasks.pki.keys import Passphrase
from tasks.pki.store import Layout
from tasks.render import render_gateway
from tasks.render_strongswan import ANYCAST_RETRANSMIT, TunnelRole, role
from tasks.validate import Observation, probe_checks, state_checks
from tasks.validate_anycast import STANDBY, holder_checks
from tasks.validate_checks import CheckResult, Kind, Status
from tasks.validate_expect import expect_fabric
from tasks.validate_observed import BgpPeer, ChildSa, DeviceReader, IkeSa, PingResult, Route
from tasks.validate_strongswan import LocalGateway

FABRICS = Path(__file__).resolve().parent / "fabrics"
FABRIC = FABRICS / "ac-anycast.yaml"
HUB_GWS = ("ach1-gw1", "ach1-gw2")
SHARED = "ach1.anycast.acany.dcvpn"
ANYCAST = IPv4Address("198.51.100.100")


def _fabric(**site_changes: object) -> Fabric:
    data = yaml.safe_load(FABRIC.read_text(encoding="utf-8"))
    data["sites"][0].update(site_changes)
    data["sites"][0] = {k: v for k, v in data["sites"][0].items() if v is not None}
    return Fabric.model_validate(data)


@pytest.fixture(scope="module")
def compiled() -> CompiledFabric:
    return compile_fabric(load_fabric(FABRIC).fabric)


# ---- model and topology ---------------------------------------------------------------


def test_model_reads_anycast_ip_and_defaults_to_none() -> None:
    assert _fabric().sites[0].anycast_ip == ANYCAST
    assert _fabric(anycast_ip=None).sites[0].anycast_ip is None
    assert _fabric().sites[1].anycast_ip is None


def test_spokes_get_one_tunnel_per_own_gateway(compiled: CompiledFabric) -> None:
    unicast = compile_fabric(_fabric(anycast_ip=None))
    names = {t.name for t in compiled.tunnels}
    before = {t.name for t in unicast.tunnels}
    # acs4 and acs5 have one gateway: the plane to ach1-gw2 goes; acs3 keeps its two planes
    assert before - names == {"ach1-acs4-p1", "ach1-acs5-p1"}
    assert names <= before
    # what stays keeps its id and inner addresses (no renumbering)
    ids = {t.name: (t.id, t.network) for t in unicast.tunnels}
    assert all(ids[t.name] == (t.id, t.network) for t in compiled.tunnels)


def test_every_hub_gateway_carries_the_same_anycast_tunnels(compiled: CompiledFabric) -> None:
    views = {g: {t.name: (t, t.side(g)) for t, _ in compiled.tunnels_of(g)} for g in HUB_GWS}
    shared = {n for n, (t, _) in views["ach1-gw1"].items() if t.anycast}
    assert shared == {"ach1-acs3-p0", "ach1-acs3-p1", "ach1-acs4-p0", "ach1-acs5-p0"}
    assert shared == {n for n, (t, _) in views["ach1-gw2"].items() if t.anycast}
    for name in shared:
        (_, (a, peer_a)), (_, (b, peer_b)) = views["ach1-gw1"][name], views["ach1-gw2"][name]
        assert (a.gateway, b.gateway) == HUB_GWS
        assert a.inner_ip == b.inner_ip and a.if_index == b.if_index
        assert a.identity == b.identity == SHARED
        assert a.public_ip == b.public_ip == ANYCAST
        assert peer_a == peer_b
    # the hubs mesh over their own addresses and identities
    hub_pair = views["ach1-gw2"]["ach1-ach2-p1"][1][0]
    assert hub_pair.public_ip == IPv4Address("198.51.100.12") and not hub_pair.anycast


def test_bgp_sessions_are_shared_too(compiled: CompiledFabric) -> None:
    sessions = [dict((t.name, s.side(g)) for t, s in compiled.tunnels_of(g)) for g in HUB_GWS]
    mine_1, peer_1 = sessions[0]["ach1-acs4-p0"]
    mine_2, peer_2 = sessions[1]["ach1-acs4-p0"]
    assert mine_1.address == mine_2.address and peer_1 == peer_2
    assert (mine_1.gateway, mine_2.gateway) == HUB_GWS


def test_full_mesh_ignores_anycast() -> None:
    data = yaml.safe_load(FABRIC.read_text(encoding="utf-8"))
    data["fabric"]["topology"] = "full_mesh"
    assert not any(t.anycast for t in compile_fabric(Fabric.model_validate(data)).tunnels)


# ---- rendering ------------------------------------------------------------------------


def _gateways() -> list[str]:
    return [gw.name for _, gw in compile_fabric(load_fabric(FABRIC).fabric).gateways()]


@pytest.mark.parametrize("gateway", _gateways())
def test_render_matches_golden(compiled: CompiledFabric, gateway: str) -> None:
    files = render_gateway(compiled, gateway)
    folder = GOLDEN / "ac-anycast" / gateway
    if UPDATE_GOLDEN:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            stale.unlink()
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    expected = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*"))}
    assert files == expected


def _conn(swanctl: str, name: str) -> str:
    start = swanctl.index(f"  {name} {{\n")
    return swanctl[start:swanctl.index("\n  }\n", start)]


@pytest.mark.parametrize("gateway", HUB_GWS)
def test_hub_gateways_respond_on_the_anycast_address(compiled: CompiledFabric,
                                                     gateway: str) -> None:
    files = render_gateway(compiled, gateway)
    conn = _conn(files["swanctl.conf"], "ach1-acs3-p1")
    assert "local_addrs = 198.51.100.100\n" in conn
    assert f"id = {SHARED}\n" in conn and f"certs = {gateway}.pem\n" in conn
    assert "start_action = none\n" in conn and "dpd_action = clear\n" in conn
    unicast = _conn(files["swanctl.conf"], f"ach1-ach2-p{HUB_GWS.index(gateway)}")
    assert f"id = {gateway}.acany.dcvpn\n" in unicast
    assert f"retransmit_tries = {ANYCAST_RETRANSMIT.tries}\n" in files["strongswan.conf"]


def test_spokes_initiate_to_the_anycast_address(compiled: CompiledFabric) -> None:
    swanctl = render_gateway(compiled, "acs3-gw2")["swanctl.conf"]
    conn = _conn(swanctl, "ach1-acs3-p1")
    assert "remote_addrs = 198.51.100.100\n" in conn and f"id = {SHARED}\n" in conn
    assert "start_action = trap|start\n" in conn and "dpd_action = restart\n" in conn
    cli = render_gateway(compiled, "acs4-gw1")["config.cli"]
    assert " tunnel destination 198.51.100.100\n" in cli
    assert f" match identity remote fqdn {SHARED}\n" in cli
    junos = render_gateway(compiled, "acs5-gw1")["config.set"]
    assert "address 198.51.100.100\n" in junos
    assert f"remote-identity hostname {SHARED}\n" in junos


def test_the_anycast_end_never_initiates(compiled: CompiledFabric) -> None:
    tunnel = next(t for t in compiled.tunnels if t.name == "ach1-acs3-p0")
    hub, spoke = tunnel.side("ach1-gw2")
    assert role(hub, spoke) is TunnelRole.RESPONDER
    assert role(spoke, hub) is TunnelRole.INITIATOR  # although the hub's site id is lower


def test_retransmit_window_only_with_anycast() -> None:
    unicast = compile_fabric(_fabric(anycast_ip=None))
    assert "retransmit" not in render_gateway(unicast, "ach1-gw1")["strongswan.conf"]
    assert "retransmit" not in render_gateway(unicast, "acs3-gw1")["strongswan.conf"]
    assert ANYCAST_RETRANSMIT.window == pytest.approx(2 + 2.8 + 3.92 + 5.488)


@pytest.mark.parametrize(("platform", "extra"), [("iosxe", {"os_version": "17.15"}),
                                                 ("junos", {})])
def test_vendor_anycast_hub_is_refused_at_render(platform: str, extra: dict[str, str]) -> None:
    data = yaml.safe_load(FABRIC.read_text(encoding="utf-8"))
    for gw in data["sites"][0]["gateways"]:
        gw.update(platform=platform, transport="netconf", **extra)
    compiled = compile_fabric(Fabric.model_validate(data))
    with pytest.raises(RenderError, match="cannot terminate the anycast tunnels"):
        render_gateway(compiled, "ach1-gw1")


Validate = Callable[[str], tuple[str, ...]]


@pytest.fixture(scope="module")
def yang() -> tuple[Validate, Validate]:
    require_yang()
    from lab.yang.iosxe import validate_iosxe
    from lab.yang.junos import validate_junos

    return (lambda doc: validate_iosxe(doc, "17.15").errors,
            lambda doc: validate_junos(doc).errors)


def test_vendor_spokes_validate_against_yang(compiled: CompiledFabric,
                                             yang: tuple[Validate, Validate]) -> None:
    iosxe, junos = yang
    assert iosxe(render_gateway(compiled, "acs4-gw1")["config.xml"]) == ()
    assert junos(render_gateway(compiled, "acs5-gw1")["config.xml"]) == ()


# ---- certificates ---------------------------------------------------------------------


def test_hub_certificates_carry_the_shared_identity(tmp_path: Path) -> None:
    fabric = load_fabric(FABRIC).fabric
    hub = fabric.sites[0]
    ident = gateway_identity(fabric, hub.gateways[1])
    assert ident.dns == ("ach1-gw2.acany.dcvpn", SHARED)
    assert ident.ips == (IPv4Address("198.51.100.12"), ANYCAST)
    spoke = gateway_identity(fabric, fabric.sites[2].gateways[0])
    assert spoke.dns == ("acs3-gw1.acany.dcvpn",) and ANYCAST not in spoke.ips
    layout = Layout(tmp_path / "pki")
    init_ca(layout, fabric.fabric.name, fabric.fabric.auth.key_type, Passphrase(), NOW)
    issue_certs(layout, fabric, hub.gateways, Passphrase(), NOW)
    for gw in hub.gateways:
        cert = x509.load_pem_x509_certificate(layout.cert(gw.name).read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert SHARED in san.get_values_for_type(x509.DNSName)
        assert ANYCAST in san.get_values_for_type(x509.IPAddress)


def test_configured_anycast_id_is_used() -> None:
    fabric = _fabric(anycast_id="vpn.example.net")
    tunnel = next(t for t in compile_fabric(fabric).tunnels if t.name == "ach1-acs4-p0")
    assert tunnel.side("ach1-gw2")[0].identity == "vpn.example.net"
    assert "vpn.example.net" in gateway_identity(fabric, fabric.sites[0].gateways[0]).dns


# ---- lab plan -------------------------------------------------------------------------


def test_lab_plan_puts_the_address_on_the_first_hub_gateway() -> None:
    lab = {g.name: g for g in plan(compile_fabric(load_fabric(FABRICS / "ac-lab.yaml").fabric))
           .gateways}
    anycast = IPv4Address("198.18.1.100")
    assert lab["ach-gw1"].anycast == anycast and lab["ach-gw2"].anycast is None
    assert "addr add 198.18.1.100/32 dev ul0" in lab["ach-gw1"].cabling(1500)
    assert not any("198.18.1.100" in c for c in lab["ach-gw2"].cabling(1500))
    assert lab["acs2-gw1"].peers == (anycast,)


def test_lab_loads_every_anycast_gateway_before_the_spokes() -> None:
    compiled = compile_fabric(load_fabric(FABRICS / "ac-lab.yaml").fabric)
    gateways = [LocalGateway.in_lab(Path("/nonexistent"), g) for g in
                ("acs2-gw1", "ach-gw2", "acs3-gw1", "ach-gw1")]
    order = [gw.name for gw in responders_first(compiled, gateways)]
    assert set(order[:2]) == {"ach-gw1", "ach-gw2"}


# ---- validation: one holder, the others stand by ---------------------------------------


def _sa(name: str, remote_id: str) -> IkeSa:
    child = ChildSa(name, "INSTALLED", "AES_GCM_16", 256, None, "ECP_384")
    return IkeSa(name, "ESTABLISHED", "198.51.100.31", remote_id, "AES_GCM_16", 256, None,
                 "PRF_HMAC_SHA2_384", "ECP_384", (child,))


def _hub_checks(compiled: CompiledFabric, gateway: str, held: tuple[str, ...],
                routes: tuple[Route, ...] = ()) -> list[CheckResult]:
    exp = expect_fabric(compiled)[gateway]
    by_name = {t.name: t for t in exp.tunnels}
    sas = tuple(_sa(n, by_name[n].remote_id) for n in held)
    tunnel_of = {b.tunnel: b for b in exp.bgp}
    peers = tuple(BgpPeer(tunnel_of[n].address, tunnel_of[n].remote_as, "Established")
                  for n in held)
    obs = Observation(sas, peers, routes)
    return state_checks(exp, obs, frozenset({Kind.IKE, Kind.CHILD, Kind.BGP, Kind.ROUTE}),
                        set(_gateways()))


ANYCAST_TUNNELS = ("ach1-acs3-p0", "ach1-acs3-p1", "ach1-acs4-p0", "ach1-acs5-p0")


def test_standby_gateway_skips_its_anycast_checks(compiled: CompiledFabric) -> None:
    results = _hub_checks(compiled, "ach1-gw2", ("ach1-ach2-p1",))
    by_name = {r.name: r for r in results}
    for tunnel in ANYCAST_TUNNELS:
        for kind in ("ike", "child"):
            r = by_name[f"{kind} ach1-gw2 {tunnel}"]
            assert r.status is Status.SKIP and STANDBY in r.observed
    bgp = [r for r in results if r.kind is Kind.BGP]
    assert sum(r.status is Status.SKIP for r in bgp) == len(ANYCAST_TUNNELS)
    assert by_name["ike ach1-gw2 ach1-ach2-p1"].status is Status.PASS
    # spoke prefixes reached only through standby tunnels: skipped, not failed
    assert by_name["route ach1-gw2 10.24.0.0/16"].status is Status.SKIP
    # a prefix behind the unicast hub tunnel is still a failure when missing
    assert by_name["route ach1-gw2 10.22.0.0/16"].status is Status.FAIL


def test_unicast_tunnels_never_stand_by(compiled: CompiledFabric) -> None:
    results = _hub_checks(compiled, "ach1-gw1", ANYCAST_TUNNELS)
    assert {r.name: r.status for r in results}["ike ach1-gw1 ach1-ach2-p0"] is Status.FAIL


def _both(compiled: CompiledFabric, gw1: tuple[str, ...],
          gw2: tuple[str, ...]) -> dict[str, CheckResult]:
    results = (_hub_checks(compiled, "ach1-gw1", gw1)
               + _hub_checks(compiled, "ach1-gw2", gw2))
    return {r.subject: r for r in holder_checks(expect_fabric(compiled), results)}


def test_exactly_one_holder_passes(compiled: CompiledFabric) -> None:
    held = _both(compiled, ANYCAST_TUNNELS, ())
    assert set(held) == {f"{t} anycast" for t in ANYCAST_TUNNELS}
    assert all(r.status is Status.PASS and r.observed == "held by ach1-gw1"
               for r in held.values())
    split = _both(compiled, ANYCAST_TUNNELS[:2], ANYCAST_TUNNELS[2:])
    assert split["ach1-acs4-p0 anycast"].observed == "held by ach1-gw2"


def test_no_holder_or_two_holders_fail(compiled: CompiledFabric) -> None:
    none = _both(compiled, (), ())
    assert all(r.status is Status.FAIL and r.observed == "held by none" for r in none.values())
    two = _both(compiled, ANYCAST_TUNNELS, ("ach1-acs4-p0",))
    assert two["ach1-acs4-p0 anycast"].status is Status.FAIL
    assert "ach1-gw1, ach1-gw2" in two["ach1-acs4-p0 anycast"].observed
    assert two["ach1-acs3-p0 anycast"].status is Status.PASS


def test_holder_check_needs_every_hub_gateway(compiled: CompiledFabric) -> None:
    results = _hub_checks(compiled, "ach1-gw1", ())
    assert holder_checks(expect_fabric(compiled), results) == []


class _PingReader:
    """Answers pings to the addresses it is given (the hub gateway holding the tunnel)."""

    def __init__(self, answering: set[IPv4Address]) -> None:
        self.answering = answering
        self.asked: list[IPv4Address] = []

    def ping(self, source: IPv4Address, target: IPv4Address, size: int | None = None,
             dont_fragment: bool = False) -> PingResult:
        self.asked.append(target)
        ok = target in self.answering
        return PingResult(ok, "1 received" if ok else "0 received")


def test_pings_into_an_anycast_hub_start_at_the_spoke_and_any_hub_gateway_may_answer(
        compiled: CompiledFabric) -> None:
    expected = expect_fabric(compiled)
    # ach1 (id 1, anycast) and acs3 (id 3): the ping runs on the spoke, towards the hub
    assert not [p for p in expected["ach1-gw1"].pings if p.pair == ("ach1", "acs3")]
    (ping,) = [p for p in expected["acs3-gw1"].pings if p.pair == ("acs3", "ach1")]
    gw1, gw2 = IPv4Address("10.21.0.1"), IPv4Address("10.21.0.2")  # the hub's probe addresses
    assert (ping.target_gateway, ping.target) == ("ach1-gw1", gw1)
    assert ping.alternatives == (("ach1-gw2", gw2),)
    assert {"ach1-gw1", "ach1-gw2"} <= set(ping.gateways)
    scope = set(expected)
    only = replace(expected["acs3-gw1"], pings=(ping,))
    # after a failover gw2 holds the tunnel: its reply passes the check, naming it
    reader = _PingReader({gw2})
    (result,) = probe_checks(only, cast(DeviceReader, reader), {Kind.PING}, scope)
    assert result.status is Status.PASS and str(gw2) in result.expected
    assert reader.asked == [gw1, gw2]
    # neither answers: a failure that names the nominal target
    (result,) = probe_checks(only, cast(DeviceReader, _PingReader(set())), {Kind.PING}, scope)
    assert result.status is Status.FAIL and str(gw1) in result.expected
    # unicast pairs keep one target and no alternatives
    assert all(not p.alternatives for p in expected["ach2-gw1"].pings)
