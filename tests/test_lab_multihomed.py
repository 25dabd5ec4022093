"""A multihomed strongSwan gateway loses its primary uplink; MOBIKE moves its IKE SAs.

Three strongSwan+FRR sites in a full mesh (tests/fabrics/mh-lab.yaml, kernel-libipsec data
plane). mhc1-gw1 has a second underlay link `ul1` holding its uplink 192.0.2.133 beside
public_ip 192.0.2.33 on `ul0`, with source routing per address (lab.topology). The test takes
ul0 down inside its namespace and measures, against the moment of the link change:
- when both IKE SAs of mhc1-gw1 have moved to the uplink address, seen from both ends (vici);
- the longest gap in a LAN-to-LAN ping running every PING_INTERVAL through the tunnel;
- whether BGP left Established (sampled) and when every session and route is back;
then runs `dcvpn validate` (all checks, traffic included). Run with -s to see the figures.

kernel-libipsec cannot update an installed SA's addresses (its update_sa is not supported),
so after the MOBIKE UPDATE_SA_ADDRESSES exchange charon rekeys each CHILD SA to the new
address; both ends do, and charon resolves the rekey collision (one CHILD SA remains).
"""

import itertools
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lab_support import Footprint, Lab, failed, footprint, lab, lab_machine, leftovers, start
from vici import Session  # type: ignore[import-untyped]

from lab import netns
from tasks.validate_strongswan import LocalGateway

pytestmark = pytest.mark.lab

FABRIC = str(Path(__file__).parent / "fabrics" / "mh-lab.yaml")
MH = "mhc1-gw1"
PRIMARY, UPLINK = "192.0.2.33", "192.0.2.133"
PEERS = ("mha1-gw1", "mhb1-gw1")
TUNNELS = ("mha1-mhc1-p0", "mhb1-mhc1-p0")
PING = ("10.33.0.1", "10.31.0.1")  # mhc1's LAN to mha1's LAN, through mha1-mhc1-p0
PING_INTERVAL = 0.02
PING_SECONDS = 12
MOVE_TIMEOUT = 20.0  # bound of every wait below
POLL = 0.05
HOLD_TIME = 9.0  # fabric.bgp.timers.hold of mh-lab.yaml


@pytest.fixture(scope="module")
def mhlab() -> Iterator[Lab]:
    with lab_machine() as root:
        lab_dir = root / "mhlab"
        try:
            yield start(None, FABRIC, lab_dir)
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


@pytest.fixture(scope="module")
def mh_footprint(mhlab: Lab) -> Footprint:
    return footprint(mhlab.lab_dir)


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


@dataclass(frozen=True)
class Sa:
    state: str
    local: str
    remote: str
    children: tuple[str, ...]  # CHILD SA states


def _sas(lab_: Lab, gateway: str) -> dict[str, list[Sa]]:
    gw = LocalGateway.in_lab(lab_.lab_dir, gateway)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    try:
        sock.connect(str(gw.vici_socket))
        entries = [_text(e) for e in Session(sock).list_sas()]
    finally:
        sock.close()
    out: dict[str, list[Sa]] = {}
    for entry in entries:
        for name, sa in entry.items():
            children = tuple(str(c.get("state", "")) for c in (sa.get("child-sas") or {}).values())
            out.setdefault(name, []).append(Sa(str(sa.get("state", "")),
                                               str(sa.get("local-host", "")),
                                               str(sa.get("remote-host", "")), children))
    return out


def _bgp_states(lab_: Lab, gateway: str) -> dict[str, str]:
    gw = LocalGateway.in_lab(lab_.lab_dir, gateway)
    proc = subprocess.run(["vtysh", "--vty_socket", str(gw.vty_dir), "-c",
                           "show bgp summary json"], capture_output=True, text=True,
                          timeout=5, check=False)
    try:
        peers = json.loads(proc.stdout)["ipv4Unicast"]["peers"]
    except (ValueError, KeyError):
        return {}
    return {address: str(p.get("state", "")) for address, p in peers.items()}


def _moved(lab_: Lab) -> bool:
    """Every tunnel of MH has one ESTABLISHED IKE SA on the uplink with an INSTALLED CHILD
    SA, on MH and on its peer."""
    mine = _sas(lab_, MH)
    for tunnel, peer in zip(TUNNELS, PEERS, strict=True):
        theirs = _sas(lab_, peer)
        for sas, local, remote in ((mine, UPLINK, None), (theirs, None, UPLINK)):
            ok = [sa for sa in sas.get(tunnel, []) if sa.state == "ESTABLISHED"
                  and (local is None or sa.local == local)
                  and (remote is None or sa.remote == remote) and "INSTALLED" in sa.children]
            if not ok:
                return False
    return True


def _routes_back(lab_: Lab) -> bool:
    proc = subprocess.run(["ip", "-n", f"dcvpn-{MH}", "-j", "route", "show", "proto", "bgp"],
                          capture_output=True, text=True, timeout=5, check=False)
    try:
        routes = {r["dst"] for r in json.loads(proc.stdout or "[]")}
    except (ValueError, KeyError):
        return False
    return {"10.31.0.0/24", "10.32.0.0/24"} <= routes


def _longest_gap(output: str, started: float, ended: float) -> tuple[float, int]:
    """(longest time without a reply, replies) from `ping -D` output; the start and the end
    count as replies, so an outage that never ends is measured too."""
    replies = [float(line[1:line.index("]")]) for line in output.splitlines()
               if line.startswith("[") and "bytes from" in line]
    gaps = [b - a for a, b in itertools.pairwise([started, *replies, ended])]
    return max(gaps, default=0.0), len(replies)


def _seconds(value: float | None) -> str:
    return "never (bounded wait ended)" if value is None else f"{value:.2f} s"


def test_tunnels_start_on_the_primary_address(mhlab: Lab) -> None:
    mine = _sas(mhlab, MH)
    for tunnel in TUNNELS:
        assert [(sa.state, sa.local) for sa in mine[tunnel]] == [("ESTABLISHED", PRIMARY)]
    assert set(_bgp_states(mhlab, MH).values()) == {"Established"}


def test_uplink_loss_moves_the_ike_sas_with_mobike(mhlab: Lab,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    namespace = f"dcvpn-{MH}"
    ping = subprocess.Popen(
        ["ip", "netns", "exec", namespace, "ping", "-n", "-D", "-i", str(PING_INTERVAL),
         "-w", str(PING_SECONDS), "-I", PING[0], PING[1]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.0)  # replies before the failure
        began_wall = time.time()
        began = time.monotonic()
        netns.set_link(namespace, "ul0", "down")
        moved_at = bgp_left = settled_at = None
        deadline = began + MOVE_TIMEOUT
        while time.monotonic() < deadline:
            now = time.monotonic() - began
            states = _bgp_states(mhlab, MH)
            established = len(states) == 2 and set(states.values()) == {"Established"}
            if not established and bgp_left is None:
                bgp_left = now
            if moved_at is None and _moved(mhlab):
                moved_at = now
            if moved_at is not None and established and _routes_back(mhlab):
                settled_at = now
                break
            time.sleep(POLL)
        out, _ = ping.communicate(timeout=PING_SECONDS + 5)
        ended_wall = time.time()
    finally:
        if ping.poll() is None:
            ping.kill()
            ping.communicate()
    gap, replies = _longest_gap(out, began_wall - 1.0, ended_wall)
    bgp = (f"stayed Established (sampled every {POLL} s)" if bgp_left is None
           else f"left Established at {bgp_left:.2f} s")
    with capsys.disabled():
        print(f"\n[mh] ul0 down on {MH}: IKE SAs on {UPLINK} at both ends after "
              f"{_seconds(moved_at)}; BGP {bgp}; sessions and routes back after "
              f"{_seconds(settled_at)}; longest LAN-to-LAN ping gap {gap:.2f} s "
              f"({replies} replies, one every {PING_INTERVAL} s)")
    log = LocalGateway.in_lab(mhlab.lab_dir, MH).charon_log.read_text(errors="replace")
    assert "requesting address change using MOBIKE" in log
    assert f"local endpoint changed from {PRIMARY}[4500] to {UPLINK}[4500]" in log
    assert moved_at is not None, "the IKE SAs did not move to the uplink address"
    assert settled_at is not None, "BGP sessions or routes did not come back"
    assert replies > 0 and gap < HOLD_TIME, "traffic stopped for longer than the hold time"
    code, data = mhlab.validate(capsys)
    assert code == 0 and data["ok"], failed(data["checks"])


def test_down_leaves_nothing_behind(mhlab: Lab, mh_footprint: Footprint) -> None:
    code, _, _ = lab(None, "down", "--lab-dir", str(mhlab.lab_dir))
    assert code == 0
    assert leftovers(mh_footprint) == []
    assert not [ns for ns in netns.namespaces() if ns.startswith("dcvpn-mh")]
