"""Anycast hub failover in the lab: hub ach serves 198.18.1.100 from ach-gw1 and ach-gw2;
spokes acs2 and acs3 reach it with one tunnel each (tests/fabrics/ac-lab.yaml).

Green with ach-gw1 holding the address (ach-gw2 stands by: its anycast checks are skipped,
never failed); then the address moves to ach-gw2 (lab.anycast: withdraw + announce) and the
spokes' IKE SAs re-establish with ach-gw2 under the same shared identity, BGP re-converges,
LAN traffic flows through ach-gw2, and the failover time is measured and printed.
"""

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from lab_support import Lab, failed, lab, lab_machine, start

from inventory.loader import load_fabric
from inventory.topology import CompiledFabric, compile_fabric
from lab import anycast
from tasks.render_strongswan import ANYCAST_RETRANSMIT
from tasks.validate_anycast import STANDBY
from tasks.validate_checks import Kind, Status
from tasks.validate_observed import IkeSa, ReadError
from tasks.validate_strongswan import LocalGateway, StrongswanReader, local_fabric, namespace

pytestmark = pytest.mark.lab

FABRIC = str(Path(__file__).parent / "fabrics" / "ac-lab.yaml")
HUB, GW1, GW2 = "ach", "ach-gw1", "ach-gw2"
SPOKES = {"acs2-gw1": "ach-acs2-p0", "acs3-gw1": "ach-acs3-p0"}
SHARED_ID = "ach.anycast.aclab.dcvpn"
ANYCAST_IP = "198.18.1.100"
HUB_PREFIX = "10.31.0.0/24"
ALL = frozenset({Kind.IKE, Kind.CHILD, Kind.BGP, Kind.ROUTE})
DPD = 2.0  # crypto.dpd.interval of the lab fabric
# The spoke declares the old holder dead after DPD + the retransmission window; re-keying
# and BGP then take a few seconds more. Waits are bounded well above that.
FAILOVER_BOUND = DPD + ANYCAST_RETRANSMIT.window + 30.0


@pytest.fixture(scope="module")
def aclab() -> Iterator[Lab]:
    with lab_machine() as root:
        lab_dir = root / "aclab"
        try:
            yield start(None, FABRIC, lab_dir)
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


def _compiled() -> CompiledFabric:
    return compile_fabric(local_fabric(load_fabric(FABRIC).fabric)[0])


def _sas(lab_: Lab, gateway: str) -> list[IkeSa]:
    try:
        return list(StrongswanReader(LocalGateway.in_lab(lab_.lab_dir, gateway)).ike_sas())
    except ReadError:
        return []


def _established(lab_: Lab, gateway: str, tunnel: str) -> list[IkeSa]:
    return [sa for sa in _sas(lab_, gateway) if sa.name == tunnel and sa.state == "ESTABLISHED"
            and any(c.state == "INSTALLED" for c in sa.children)]


def _bgp_up(lab_: Lab, gateway: str) -> bool:
    gw = LocalGateway.in_lab(lab_.lab_dir, gateway)
    proc = subprocess.run(["vtysh", "--vty_socket", str(gw.vty_dir), "-c",
                           "show bgp ipv4 unicast summary json"],
                          capture_output=True, text=True, timeout=10, check=False)
    try:
        peers = json.loads(proc.stdout).get("peers", {})
    except json.JSONDecodeError:
        return False
    return bool(peers) and all(p.get("state") == "Established" for p in peers.values())


def _route_via_tunnel(gateway: str) -> bool:
    proc = subprocess.run(["ip", "-n", namespace(gateway), "-j", "-4", "route", "show",
                           HUB_PREFIX], capture_output=True, text=True, timeout=10, check=False)
    try:
        routes = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return False
    return any(r.get("dev") == "ipsec0" for r in routes)


def _ping(source_gw: str, source: str, target: str) -> bool:
    proc = subprocess.run(["ip", "netns", "exec", namespace(source_gw), "ping", "-c", "1",
                           "-W", "1", "-I", source, target],
                          capture_output=True, text=True, timeout=10, check=False)
    return proc.returncode == 0


def _wait(what: str, condition: Callable[[], bool], deadline: float) -> float:
    """Poll `condition` (bounded by `deadline`); the time it first held."""
    while True:
        if condition():
            return time.monotonic()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_green_with_gw1_holding_and_gw2_standing_by(aclab: Lab,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    compiled = _compiled()
    assert anycast.holders(compiled, HUB) == (GW1,)
    code, data = aclab.validate(capsys)
    checks = {c["name"]: c for c in data["checks"]}
    assert code == 0 and data["ok"], failed(data["checks"])
    for spoke, tunnel in SPOKES.items():
        assert checks[f"ike {spoke} {tunnel}"]["status"] == "pass"
        assert SHARED_ID in checks[f"ike {spoke} {tunnel}"]["observed"]
        assert checks[f"ike {GW1} {tunnel}"]["status"] == "pass"
        standby = checks[f"ike {GW2} {tunnel}"]
        assert standby["status"] == "skip" and STANDBY in standby["observed"]
        assert checks[f"child {GW2} {tunnel}"]["status"] == "skip"
        held = checks[f"ike {HUB} {tunnel} anycast"]
        assert held["status"] == "pass" and held["observed"] == f"held by {GW1}"
    assert not _established(aclab, GW2, "ach-acs2-p0")


def test_hub_certificates_name_the_shared_identity(aclab: Lab) -> None:
    for gateway in (GW1, GW2):
        pem = (aclab.lab_dir / gateway / "x509" / f"{gateway}.pem").read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
        assert SHARED_ID in names and f"{gateway}.aclab.dcvpn" in names


def test_failover_to_gw2_is_measured(aclab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    compiled = _compiled()
    spoke_sa = {s: _established(aclab, s, t) for s, t in SPOKES.items()}
    assert all(spoke_sa.values()), "the spokes are up before the failover"
    hosts = {s: {sa.remote_host for sa in sas} for s, sas in spoke_sa.items()}
    assert all(h == {ANYCAST_IP} for h in hosts.values())

    namespaces = [namespace(g) for g in aclab.state().gateways]
    began = time.monotonic()
    moved_from = anycast.move(compiled, HUB, GW2, namespaces)
    assert moved_from == (GW1,)
    assert anycast.holders(compiled, HUB) == (GW2,)
    deadline = began + FAILOVER_BOUND

    ike_at = _wait("the spokes' IKE SAs on ach-gw2",
                   lambda: all(_established(aclab, GW2, t) for t in SPOKES.values())
                   and all(_established(aclab, s, t) for s, t in SPOKES.items()), deadline)
    bgp_at = _wait("BGP and the hub route on the spokes",
                   lambda: all(_bgp_up(aclab, s) and _route_via_tunnel(s) for s in SPOKES)
                   and _bgp_up(aclab, GW2), deadline)
    ping_at = _wait("a LAN ping from acs2 to ach-gw2's LAN",
                    lambda: _ping("acs2-gw1", "10.32.0.1", "10.31.0.2"), deadline)
    # the same shared identity answered from the second gateway, with its own certificate
    for spoke, tunnel in SPOKES.items():
        sas = _established(aclab, spoke, tunnel)
        assert {sa.remote_id for sa in sas} == {SHARED_ID}
        assert {sa.remote_host for sa in sas} == {ANYCAST_IP}
    # the old holder's stale SAs go once its DPD gives up; then the fabric is green again,
    # ach-gw1 now the standby
    clean_at = _wait("ach-gw1's stale SAs to clear",
                     lambda: not any(_established(aclab, GW1, t) for t in SPOKES.values()),
                     deadline + ANYCAST_RETRANSMIT.window)
    results = aclab.wait(lambda rs: not failed(rs), ALL, timeout=20.0)
    assert not failed(results), failed(results)
    held = {r.subject: r for r in results if r.gateway == HUB}
    for tunnel in SPOKES.values():
        assert held[f"{tunnel} anycast"].observed == f"held by {GW2}"
    standby = [r for r in results if r.gateway == GW1 and r.kind is Kind.IKE]
    assert standby and all(r.status is Status.SKIP and STANDBY in r.observed for r in standby)
    # dcvpn validate is green with gw2 holding: pings into the hub start at the spokes and
    # take the reply of the gateway that holds the tunnel
    code, data = aclab.validate(capsys)
    assert code == 0 and data["ok"], failed(data["checks"])
    into_hub = [c for c in data["checks"] if c["kind"] == "ping"
                and c["subject"].endswith(f"->{HUB}")]
    assert into_hub and all(c["status"] == "pass" for c in into_hub)
    assert all("10.31.0.2" in c["expected"] for c in into_hub)  # ach-gw2's LAN answered

    figures = {"ike_s": round(ike_at - began, 1), "bgp_s": round(bgp_at - began, 1),
               "ping_s": round(ping_at - began, 1), "stale_cleared_s": round(clean_at - began, 1),
               "dpd_s": DPD, "retransmit_window_s": round(ANYCAST_RETRANSMIT.window, 1)}
    with capsys.disabled():
        print(f"\nanycast failover {GW1} -> {GW2}: {json.dumps(figures)}")
    assert ike_at - began <= DPD + ANYCAST_RETRANSMIT.window + 10.0
