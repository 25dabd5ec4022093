"""Validation without devices: expected state, the pure checks, parsers, reports, the task."""

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from conftest import EXAMPLES
from fabric_factory import fabric, site

from inventory.loader import load_fabric
from inventory.model import DataPlane
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import validate_report
from pipelines.validate_cmd import run_checks
from tasks.validate import READINESS, check_gateway
from tasks.validate_checks import (
    CheckResult,
    Kind,
    Status,
    check_bgp,
    check_child,
    check_ike,
    check_mtu,
    check_route,
)
from tasks.validate_expect import GatewayExpect, expect_fabric, lan_addresses, probe_address
from tasks.validate_observed import (
    BgpPeer,
    ChildSa,
    IkeSa,
    PingResult,
    ReadError,
    Route,
)
from tasks.validate_strongswan import (
    local_fabric,
    parse_bgp_summary,
    parse_negotiation_errors,
    parse_routes,
    parse_sas,
)

HYBRID = Path(__file__).parent / "fabrics" / "lab-hybrid.yaml"


def _compiled(path: Path) -> CompiledFabric:
    return compile_fabric(load_fabric(path).fabric)


@pytest.fixture(scope="module")
def lab3() -> dict[str, GatewayExpect]:
    return expect_fabric(_compiled(EXAMPLES / "lab3.yaml"))


@pytest.fixture(scope="module")
def hybrid() -> dict[str, GatewayExpect]:
    return expect_fabric(_compiled(HYBRID))


# --- expected state ---------------------------------------------------------------------------

def test_lab3_expectations(lab3: dict[str, GatewayExpect]) -> None:
    ams = lab3["ams1-gw1"]
    assert [t.name for t in ams.tunnels] == ["ams1-lon1-p0", "ams1-nyc1-p0"]
    assert ams.tunnels[0].ike.describe() == "AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384"
    assert ams.tunnels[0].esp.describe() == "AES_GCM_16_256/ECP_384"
    assert ams.tunnels[0].remote_id == "lon1-gw1.lab3.dcvpn"
    assert [(str(b.address), b.remote_as) for b in ams.bgp] == [("169.254.0.1", 65002),
                                                                 ("169.254.0.9", 65003)]
    assert [(str(r.prefix), [str(v) for v in r.via]) for r in ams.routes] == [
        ("10.2.0.0/24", ["169.254.0.1"]), ("10.3.0.0/24", ["169.254.0.9"])]
    # one ping per site pair, from the lower site id; libipsec caps the probe MTU at 1400
    pings = [(p.pair, str(p.source), str(p.target), p.mtu) for g in lab3.values()
             for p in g.pings]
    assert pings == [(("ams1", "lon1"), "10.1.0.1", "10.2.0.1", 1400),
                     (("ams1", "nyc1"), "10.1.0.1", "10.3.0.1", 1400),
                     (("lon1", "nyc1"), "10.2.0.1", "10.3.0.1", 1400)]


def test_hybrid_transit_and_planes(hybrid: dict[str, GatewayExpect]) -> None:
    nyc = {str(r.prefix): r for r in hybrid["nyc1-gw1"].routes}
    # ams1 is reached through the hub: either plane to fra1 is acceptable
    assert {str(v) for v in nyc["10.12.0.0/24"].via} == {"169.254.0.24", "169.254.0.26"}
    assert nyc["10.12.0.0/24"].sites == ("ams1", "fra1", "nyc1")
    # the hub's second gateway reaches every spoke on plane 1
    gw2 = {str(r.prefix): r for r in hybrid["fra1-gw2"].routes}
    assert gw2["10.14.0.0/24"].tunnels == ("fra1-nyc1-p1",)
    # every site pair is pinged; only connected pairs get an MTU probe
    pings = {p.pair: p for g in hybrid.values() for p in g.pings}
    assert len(pings) == 6
    assert pings[("ams1", "nyc1")].mtu is None and pings[("fra1", "ams1")].mtu == 1400
    assert pings[("fra1", "ams1")].gateway == "fra1-gw1"
    # a transit pair depends on the hub's gateways too
    assert pings[("ams1", "nyc1")].gateways == ("ams1-gw1", "fra1-gw1", "fra1-gw2", "nyc1-gw1")
    assert pings[("ams1", "nyc1")].sites == ("ams1", "fra1", "nyc1")


def test_probe_addresses() -> None:
    fab = fabric([site(1, gateways=2), site(2)])
    s1 = fab.sites[0]
    assert probe_address(s1, 0, IPv4Network("10.0.1.0/24")) == IPv4Address("10.0.1.1")
    assert probe_address(s1, 1, IPv4Network("10.0.1.0/24")) == IPv4Address("10.0.1.2")
    assert probe_address(s1, 1, IPv4Network("10.9.9.9/32")) == IPv4Address("10.9.9.9")
    compiled = compile_fabric(fab)
    assert lan_addresses(compiled, "s1-gw2") == ((IPv4Address("10.0.1.2"),
                                                  IPv4Network("10.0.1.0/24")),)


def test_local_fabric_forces_libipsec_on_strongswan_sites() -> None:
    fab = fabric([site(1), site(2, platform="iosxe")])
    assert fab.data_plane(fab.sites[0]) is DataPlane.XFRM
    local, changed = local_fabric(fab)
    assert changed == ("s1",)
    assert local.data_plane(local.sites[0]) is DataPlane.LIBIPSEC
    assert local.sites[1] == fab.sites[1]
    assert local_fabric(local) == (local, ())


# --- the pure checks ----------------------------------------------------------------------------

def _sa(name: str = "ams1-lon1-p0", state: str = "ESTABLISHED", enc: str = "AES_GCM_16",
        child_enc: str = "AES_GCM_16", child_state: str = "INSTALLED",
        child_dh: str | None = None) -> IkeSa:
    child = ChildSa(name, child_state, child_enc, 256, None, child_dh)
    return IkeSa(name, state, "192.0.2.2", "lon1-gw1.lab3.dcvpn", enc, 256, None,
                 "PRF_HMAC_SHA2_384", "ECP_384", (child,))


def test_ike_check(lab3: dict[str, GatewayExpect]) -> None:
    exp = lab3["ams1-gw1"].tunnels[0]
    assert check_ike(exp, (_sa(),), {}).status is Status.PASS
    wrong = check_ike(exp, (_sa(enc="AES_CBC"),), {})
    assert wrong.status is Status.FAIL and "AES_CBC_256" in wrong.observed
    assert wrong.name == "ike ams1-gw1 ams1-lon1-p0"
    connecting = check_ike(exp, (_sa(state="CONNECTING"),), {})
    assert not connecting.ok and "CONNECTING" in connecting.observed
    missing = check_ike(exp, (), {"ams1-lon1-p0": "received AUTHENTICATION_FAILED notify error"})
    assert not missing.ok and "AUTHENTICATION_FAILED" in missing.observed
    unreadable = check_ike(exp, ReadError("charon: Connection refused"), {})
    assert not unreadable.ok and "Connection refused" in unreadable.observed
    assert unreadable.sites == ("ams1", "lon1")
    # a duplicate SA from simultaneous initiation does not hide a good one
    assert check_ike(exp, (_sa(state="CONNECTING"), _sa()), {}).ok


def test_child_check(lab3: dict[str, GatewayExpect]) -> None:
    exp = lab3["ams1-gw1"].tunnels[0]
    ok = check_child(exp, (_sa(),), {})
    assert ok.ok and "PFS group shows after the first rekey" in ok.observed
    assert check_child(exp, (_sa(child_dh="ECP_384"),), {}).ok
    assert not check_child(exp, (_sa(child_dh="MODP_2048"),), {}).ok
    assert not check_child(exp, (_sa(child_enc="AES_GCM_12"),), {}).ok
    refused = check_child(exp, (replace(_sa(), children=()),),
                          {"ams1-lon1-p0": "no acceptable proposal found"})
    assert not refused.ok
    assert refused.observed == "no CHILD SA; negotiation failed: no acceptable proposal found"
    assert not check_child(exp, (_sa(child_state="REKEYED"),), {}).ok


def test_bgp_check(lab3: dict[str, GatewayExpect]) -> None:
    exp = lab3["ams1-gw1"].bgp[0]
    good = BgpPeer(IPv4Address("169.254.0.1"), 65002, "Established", 1)
    assert check_bgp(exp, (good,)).ok
    assert not check_bgp(exp, (replace(good, remote_as=65009),)).ok
    assert "Active" in check_bgp(exp, (replace(good, state="Active"),)).observed
    assert "no neighbor" in check_bgp(exp, ()).observed


def test_route_check_ignores_a_covering_default(lab3: dict[str, GatewayExpect]) -> None:
    exp = lab3["ams1-gw1"].routes[0]
    via = IPv4Address("169.254.0.1")
    default = Route(IPv4Network("0.0.0.0/0"), "kernel", "ipsec0", None)
    good = Route(IPv4Network("10.2.0.0/24"), "bgp", "ipsec0", via)
    assert check_route(exp, (default, good)).ok
    hidden = check_route(exp, (default,))
    assert not hidden.ok
    assert hidden.observed == ("no route for 10.2.0.0/24 (only covered by 0.0.0.0/0 dev ipsec0 "
                               "(kernel), which does not count)")
    elsewhere = check_route(exp, (replace(good, gateway=IPv4Address("169.254.0.9")),))
    assert not elsewhere.ok and "via 169.254.0.9" in elsewhere.observed


def test_mtu_check(lab3: dict[str, GatewayExpect]) -> None:
    ping = lab3["ams1-gw1"].pings[0]
    ok, no = PingResult(True, "ok"), PingResult(False, "message too long")
    assert check_mtu(ping, ok, no).ok
    assert not check_mtu(ping, ok, ok).ok  # one byte more got through: the MTU is wrong
    assert not check_mtu(ping, no, no).ok
    assert check_mtu(ping, ok, no).name == "mtu ams1->lon1"


# --- parsers of the strongSwan/FRR reader ---------------------------------------------------

def test_parse_sas() -> None:
    entry = {"ams1-lon1-p0": {
        "state": "ESTABLISHED", "remote-host": "192.0.2.2", "remote-id": "lon1-gw1.lab3.dcvpn",
        "encr-alg": "AES_GCM_16", "encr-keysize": "256", "prf-alg": "PRF_HMAC_SHA2_384",
        "dh-group": "ECP_384",
        "child-sas": {"ams1-lon1-p0-1": {"name": "ams1-lon1-p0", "state": "INSTALLED",
                                         "encr-alg": "AES_GCM_16", "encr-keysize": "256",
                                         "local-ts": ["10.1.0.0/24"]}}}}
    (sa,) = parse_sas([entry])
    assert (sa.name, sa.key_size, sa.integrity, sa.children[0].local_ts) == (
        "ams1-lon1-p0", 256, None, ("10.1.0.0/24",))


def test_parse_bgp_and_routes() -> None:
    summary = {"ipv4Unicast": {"peers": {"169.254.0.1": {"remoteAs": 65002,
                                                         "state": "Established",
                                                         "pfxRcd": 1}}}}
    assert parse_bgp_summary(summary) == (BgpPeer(IPv4Address("169.254.0.1"), 65002,
                                                  "Established", 1),)
    assert parse_bgp_summary({}) == ()
    routes = parse_routes([
        {"dst": "default", "dev": "ul0", "protocol": "static"},
        {"dst": "10.2.0.0/24", "gateway": "169.254.0.1", "dev": "ipsec0", "protocol": "bgp"},
        {"dst": "192.0.2.2", "dev": "ul0", "scope": "link"},
        {"type": "unreachable", "dst": "10.9.0.0/16"}])
    assert [(str(r.prefix), r.protocol, str(r.gateway)) for r in routes] == [
        ("0.0.0.0/0", "static", "None"), ("10.2.0.0/24", "bgp", "169.254.0.1"),
        ("192.0.2.2/32", "kernel", "None")]


def test_negotiation_errors_prefer_the_cause_and_reset_on_success() -> None:
    log = "\n".join([
        "09[IKE] <a-b-p0|1> received NO_PROPOSAL_CHOSEN notify error",
        "09[IKE] <a-b-p0|1> failed to establish CHILD_SA, keeping IKE_SA",
        "10[IKE] <a-c-p0|2> giving up after 5 retransmits",
        "11[IKE] <a-d-p0|3> no acceptable proposal found",
        "11[IKE] <a-d-p0|3> CHILD_SA a-d-p0{4} established with SPIs c1_i c2_o",
        "12[IKE] <5> no IKE config found for 1.2.3.4...5.6.7.8, sending NO_PROPOSAL_CHOSEN",
    ])
    assert parse_negotiation_errors(log) == {
        "a-b-p0": "received NO_PROPOSAL_CHOSEN notify error",
        "a-c-p0": "giving up after 5 retransmits"}


# --- the task over a reader Protocol (how emulated devices will plug in) ----------------------

class FakeReader:
    """A DeviceReader answering from the expected state: everything healthy."""

    def __init__(self, exp: GatewayExpect, broken_prefix: str | None = None) -> None:
        self.exp = exp
        self.broken_prefix = broken_prefix

    def ike_sas(self) -> tuple[IkeSa, ...]:
        out = []
        for t in self.exp.tunnels:
            child = ChildSa(t.name, "INSTALLED", t.esp.encryption, t.esp.key_size, None, None)
            out.append(IkeSa(t.name, "ESTABLISHED", str(t.remote_host), t.remote_id,
                             t.ike.encryption, t.ike.key_size, None, t.ike.prf,
                             t.ike.dh_group, (child,)))
        return tuple(out)

    def bgp_peers(self) -> tuple[BgpPeer, ...]:
        return tuple(BgpPeer(b.address, b.remote_as, "Established") for b in self.exp.bgp)

    def routes(self) -> tuple[Route, ...]:
        return tuple(Route(r.prefix, "bgp", "ipsec0", r.via[0]) for r in self.exp.routes
                     if str(r.prefix) != self.broken_prefix)

    def ping(self, source: IPv4Address, target: IPv4Address, size: int | None = None,
             dont_fragment: bool = False) -> PingResult:
        return PingResult(size is None or size <= 1400, "fake")

    def negotiation_errors(self) -> dict[str, str]:
        return {}


def test_run_checks_through_nornir_with_a_fake_reader() -> None:
    path = str(EXAMPLES / "lab3.yaml")
    compiled = _compiled(EXAMPLES / "lab3.yaml")
    expected = expect_fabric(compiled)

    def reader(name: str) -> FakeReader:
        return FakeReader(expected[name], "10.1.0.0/24" if name == "lon1-gw1" else None)

    results = run_checks(path, compiled, sorted(expected), reader)
    assert len(results) == 30
    failed = [r.name for r in results if not r.ok]
    assert failed == ["route lon1-gw1 10.1.0.0/24"]
    # a gateway without a reader: checks that depend on it are skipped, not failed
    partial = run_checks(path, compiled, ["ams1-gw1", "lon1-gw1"], reader)
    skipped = {r.name for r in partial if r.status is Status.SKIP}
    assert "ike ams1-gw1 ams1-nyc1-p0" in skipped and "bgp lon1-gw1 169.254.0.17" in skipped
    assert all("nyc1" in r.sites for r in partial if r.status is Status.SKIP)
    assert {r.name for r in partial if r.kind is Kind.PING} == {
        "ping ams1->lon1", "ping ams1->nyc1", "ping lon1->nyc1"}
    assert "ping ams1->nyc1" in skipped and "mtu lon1->nyc1" in skipped


def test_readiness_runs_no_traffic() -> None:
    compiled = _compiled(EXAMPLES / "lab3.yaml")
    exp = expect_fabric(compiled)["ams1-gw1"]
    results = check_gateway(exp, FakeReader(exp), set(expect_fabric(compiled)), READINESS)
    assert {r.kind for r in results} == {Kind.IKE, Kind.CHILD, Kind.BGP, Kind.ROUTE}


# --- reports ------------------------------------------------------------------------------------

def _results() -> list[CheckResult]:
    ok = CheckResult(Kind.BGP, "a-gw1", "169.254.0.1", Status.PASS, "x", "x", ("a", "b"),
                     ("a-gw1", "b-gw1"))
    bad = CheckResult(Kind.ROUTE, "a-gw1", "10.2.0.0/24", Status.FAIL, "route 10.2.0.0/24 via y",
                      "no route for 10.2.0.0/24", ("a", "b"), ("a-gw1", "b-gw1"))
    skip = CheckResult(Kind.IKE, "a-gw1", "a-c-p0", Status.SKIP, "x", "not checked: c-gw1",
                       ("a", "c"), ("a-gw1", "c-gw1"))
    return [bad, ok, skip]


def test_junit_has_one_testcase_per_check() -> None:
    text = validate_report.as_junit(_results(), "lab3")
    assert text == validate_report.as_junit(list(reversed(_results())), "lab3")
    root = ET.fromstring(text)
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "1")
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["ike a-gw1 a-c-p0", "bgp a-gw1 169.254.0.1",
                                              "route a-gw1 10.2.0.0/24"]
    failure = cases[2].find("failure")
    assert failure is not None
    assert failure.get("message") == ("expected route 10.2.0.0/24 via y; observed no route for "
                                      "10.2.0.0/24")
    assert cases[0].find("skipped") is not None


def test_text_and_json_reports() -> None:
    text = validate_report.as_text(_results())
    assert text.splitlines()[2] == ("FAIL  route a-gw1 10.2.0.0/24  expected route 10.2.0.0/24 "
                                    "via y; observed no route for 10.2.0.0/24")
    data = json.loads(validate_report.as_json(_results(), "lab3"))
    assert data["ok"] is False and data["counts"] == {"pass": 1, "fail": 1, "skip": 1}
    assert [c["name"] for c in data["checks"]] == ["ike a-gw1 a-c-p0", "bgp a-gw1 169.254.0.1",
                                              "route a-gw1 10.2.0.0/24"]
