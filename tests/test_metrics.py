"""`dcvpn metrics`: the exposition format (parsed back with prometheus_client), the metrics a
gateway state gives, the HTTP listener, and a real 2-site lab (tests/fabrics/dg-metrics.yaml)
whose metrics must match what vici and vtysh report.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from conftest import ROOT
from cryptography import x509
from lab_support import Lab, cli, lab, lab_machine
from prometheus_client.parser import text_string_to_metric_families

from inventory.loader import load_fabric
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import metrics_cmd
from tasks.gateway_state import BgpNeighbor, ChildState, DaemonState, GatewayState, SaState
from tasks.metrics import Scrape
from tasks.metrics_format import Family, MetricType, Sample, exposition, fabric_families
from tasks.pki.status import write_prometheus
from tasks.validate_strongswan import LocalGateway, StrongswanReader

FABRIC = str(ROOT / "tests" / "fabrics" / "dg-metrics.yaml")
GATEWAYS = ("dgm1-gw1", "dgm2-gw1")
TUNNEL = "dgm1-dgm2-p0"

Values = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Values:
    """sample name + labels -> value, via prometheus_client's own parser."""
    out: Values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate sample {key}"
            out[key] = s.value
    return out


def value(values: Values, name: str, **labels: str) -> float:
    return values[(name, frozenset(labels.items()))]


def samples(values: Values, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in values.items() if n == name}


@pytest.fixture(scope="module")
def compiled() -> CompiledFabric:
    return compile_fabric(load_fabric(FABRIC).fabric)


# --- format -------------------------------------------------------------------------------------

def test_exposition_escapes_labels_and_parses_back() -> None:
    odd = 'a "quoted" \\ back\nslash'
    text = exposition([
        Family("dcvpn_x", "Help with \\ and\nnewline.", MetricType.GAUGE,
               (Sample((("gateway", odd),), 1), Sample((("gateway", "plain"),), 2.5))),
        Family("dcvpn_y_total", "A counter.", MetricType.COUNTER, (Sample((), 7),))])
    assert text.endswith("\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["dcvpn_x"].type == "gauge"
    assert families["dcvpn_x"].documentation == "Help with \\ and\nnewline."
    assert [(s.labels["gateway"], s.value) for s in families["dcvpn_x"].samples] == [
        (odd, 1.0), ("plain", 2.5)]
    assert families["dcvpn_y"].type == "counter"
    assert [(s.name, s.value) for s in families["dcvpn_y"].samples] == [("dcvpn_y_total", 7.0)]
    assert "# HELP dcvpn_x " in text and "# TYPE dcvpn_y_total counter" in text


def _state(gw: str, peer: IPv4Address, up: bool = True) -> GatewayState:
    child = ChildState(TUNNEL, "INSTALLED", "AES_GCM_16_256", 1000, 2000, 10, 20)
    return GatewayState(
        gw, True,
        (SaState(TUNNEL, "ESTABLISHED" if up else "CONNECTING", "h", "r", "p", 5, (child,)),),
        (BgpNeighbor(peer, 65000, "Established" if up else "Active", 2, 1, 2, TUNNEL, None),),
        (DaemonState("charon", 10, True, 1.5, 10_000), DaemonState("bgpd", 11, up, None, None)))


def test_families_from_gateway_states(compiled: CompiledFabric) -> None:
    a = _state("dgm1-gw1", IPv4Address("169.254.0.1"))
    b = _state("dgm2-gw1", IPv4Address("169.254.0.0"), up=False)
    values = parse(exposition(fabric_families(compiled, {"dgm1-gw1": a, "dgm2-gw1": b},
                                              GATEWAYS)))
    assert value(values, "dcvpn_tunnel_up", tunnel=TUNNEL, gateway="dgm1-gw1", peer="dgm2-gw1",
                 plane="0") == 1
    assert value(values, "dcvpn_tunnel_up", tunnel=TUNNEL, gateway="dgm2-gw1", peer="dgm1-gw1",
                 plane="0") == 0
    assert value(values, "dcvpn_child_sa_bytes_out_total", tunnel=TUNNEL,
                 gateway="dgm1-gw1") == 2000
    assert value(values, "dcvpn_child_sa_packets_in_total", tunnel=TUNNEL,
                 gateway="dgm1-gw1") == 10
    assert value(values, "dcvpn_bgp_session_up", gateway="dgm1-gw1", neighbor="169.254.0.1") == 1
    assert value(values, "dcvpn_bgp_session_up", gateway="dgm2-gw1", neighbor="169.254.0.0") == 0
    assert value(values, "dcvpn_bgp_prefixes_received", gateway="dgm1-gw1",
                 neighbor="169.254.0.1") == 2
    assert value(values, "dcvpn_bgp_connections_dropped_total", gateway="dgm1-gw1",
                 neighbor="169.254.0.1") == 1
    assert value(values, "dcvpn_daemon_up", gateway="dgm2-gw1", daemon="bgpd") == 0
    assert value(values, "dcvpn_daemon_cpu_seconds_total", gateway="dgm1-gw1",
                 daemon="charon") == 1.5


def test_an_unreadable_gateway_reports_its_tunnels_down(compiled: CompiledFabric) -> None:
    a = _state("dgm1-gw1", IPv4Address("169.254.0.1"))
    dead = replace(a, gateway="dgm2-gw1", errors={"charon": "refused", "bgpd": "refused"})
    values = parse(exposition(fabric_families(compiled, {"dgm1-gw1": a, "dgm2-gw1": dead},
                                              GATEWAYS)))
    assert value(values, "dcvpn_gateway_up", gateway="dgm2-gw1") == 0
    assert value(values, "dcvpn_tunnel_up", tunnel=TUNNEL, gateway="dgm2-gw1",
                 peer="dgm1-gw1", plane="0") == 0
    assert value(values, "dcvpn_bgp_session_up", gateway="dgm2-gw1", neighbor="169.254.0.0") == 0
    assert not any(labels >= {("gateway", "dgm2-gw1")} for labels in
                   samples(values, "dcvpn_child_sa_bytes_in_total"))  # unknown, not 0
    gone = GatewayState("dgm2-gw1", False, errors={"gateway": "no namespace"})
    values = parse(exposition(fabric_families(compiled, {"dgm1-gw1": a, "dgm2-gw1": gone},
                                              GATEWAYS)))
    assert value(values, "dcvpn_tunnel_up", tunnel=TUNNEL, gateway="dgm2-gw1",
                 peer="dgm1-gw1", plane="0") == 0
    assert ("dcvpn_ike_rekeys_total", frozenset({("tunnel", TUNNEL), ("gateway", "dgm2-gw1")})
            ) not in values


def test_output_file_is_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "dcvpn.prom"
    target.write_text("old\n")
    write_prometheus(target, "# HELP a b\n# TYPE a gauge\na 1\n")
    assert target.read_text() == "# HELP a b\n# TYPE a gauge\na 1\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dcvpn.prom"]


# --- listener -----------------------------------------------------------------------------------

def test_listen_address_must_be_loopback_unless_allowed() -> None:
    assert metrics_cmd.parse_listen("127.0.0.1:9477", False) == ("127.0.0.1", 9477)
    assert metrics_cmd.parse_listen("localhost:1", False) == ("127.0.0.1", 1)
    assert metrics_cmd.parse_listen("[::1]:9477", False) == ("::1", 9477)
    assert metrics_cmd.parse_listen("192.0.2.9:9477", True) == ("192.0.2.9", 9477)
    for bad, message in (("192.0.2.9:9477", "not a loopback address"),
                         ("0.0.0.0:9477", "not a loopback address"),
                         ("9477", "HOST:PORT"), ("127.0.0.1:99999", "HOST:PORT"),
                         ("example.org:80", "needs an IP address")):
        with pytest.raises(metrics_cmd._UsageError, match=message):
            metrics_cmd.parse_listen(bad, False)


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_server_scrapes_on_each_request_and_stops() -> None:
    calls = []

    def scrape() -> Scrape:
        calls.append(1)
        return Scrape(exposition([Family("dcvpn_scrapes", "n", MetricType.GAUGE,
                                         (Sample((), len(calls)),))]), ())

    stop = threading.Event()
    bound: list[int] = []
    ready = threading.Event()
    thread = threading.Thread(target=metrics_cmd.serve, args=("127.0.0.1", 0, scrape, 30.0),
                              kwargs={"stop": stop, "ready": lambda h, p: (bound.append(p),
                                                                          ready.set())})
    thread.start()
    try:
        assert ready.wait(5)
        url = f"http://127.0.0.1:{bound[0]}"
        for expected in (1.0, 2.0):
            status, kind, body = _get(url + "/metrics")
            assert status == 200 and kind.startswith("text/plain; version=0.0.4")
            assert parse(body)[("dcvpn_scrapes", frozenset())] == expected
        assert _get(url + "/")[0] == 404 and len(calls) == 2
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    started = time.monotonic()
    metrics_cmd.serve("127.0.0.1", 0, scrape, 0.6)  # --duration bounds it by itself
    assert time.monotonic() - started < 3


def test_command_refuses_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    for name in list(os.environ):
        if name.startswith("DCVPN_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(metrics_cmd, "is_root", lambda: True)
    code, _, err = cli(capsys, metrics_cmd.main, "metrics", "-f", FABRIC, "--listen",
                       "0.0.0.0:9477")
    assert code == 2 and "--allow-remote" in err
    from pipelines import cli as dcvpn  # wired into `dcvpn`
    code, _, err = cli(capsys, dcvpn.main, "metrics", "-f", FABRIC, "--listen", "10.1.2.3:80")
    assert code == 2 and "not a loopback address" in err
    code, _, err = cli(capsys, metrics_cmd.main, "metrics", "-f", FABRIC, "--duration", "-1",
                       "--listen", "127.0.0.1:0")
    assert code == 2 and "--duration" in err
    code, out, err = cli(capsys, metrics_cmd.main, "metrics", "-f", FABRIC, "--lab-dir",
                         str(tmp_path), "--output", str(tmp_path / "m.prom"))
    assert code == 3 and "no gateway of fabric dgmet is running" in err and out == ""
    assert not (tmp_path / "m.prom").exists()
    monkeypatch.setattr(metrics_cmd, "is_root", lambda: False)
    code, _, err = cli(capsys, metrics_cmd.main, "metrics", "-f", FABRIC)
    assert code == 2 and "needs root" in err
    with pytest.raises(SystemExit) as exc:
        metrics_cmd.main(["metrics", "-f", FABRIC, "--output", "x", "--listen", "127.0.0.1:1"])
    assert exc.value.code == 2


# --- the lab ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mlab() -> Iterator[Lab]:
    with lab_machine() as root:
        lab_dir = root / "dgmet"
        try:
            code, out, err = lab(None, "up", "-f", FABRIC, "--lab-dir", str(lab_dir),
                                 "--format", "json", "--timeout", "60")
            assert code == 0, err
            yield Lab(FABRIC, lab_dir, json.loads(out))
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


def metrics_now(mlab: Lab, out: Path) -> Values:
    code, stdout, err = cli(None, metrics_cmd.main, "metrics", "-f", FABRIC,
                            "--lab-dir", str(mlab.lab_dir), "--output", str(out))
    assert code == 0 and stdout == "", err
    return parse(out.read_text())


def vtysh_prefixes(mlab: Lab, gw: str) -> dict[str, int]:
    vty = LocalGateway.in_lab(mlab.lab_dir, gw).vty_dir
    done = subprocess.run(["vtysh", "--vty_socket", str(vty), "-c", "show bgp summary json"],
                          capture_output=True, text=True, timeout=10, check=True)
    peers = json.loads(done.stdout)["ipv4Unicast"]["peers"]
    return {addr: int(p["pfxRcd"]) for addr, p in peers.items()}


@pytest.mark.lab
def test_lab_metrics_match_the_gateways(mlab: Lab, compiled: CompiledFabric) -> None:
    values = metrics_now(mlab, mlab.lab_dir.parent / "dcvpn.prom")
    tunnel_up = samples(values, "dcvpn_tunnel_up")
    assert len(tunnel_up) == 2
    for gw in GATEWAYS:
        sas = StrongswanReader(LocalGateway.in_lab(mlab.lab_dir, gw)).ike_sas()
        established = any(sa.name == TUNNEL and sa.state == "ESTABLISHED" and any(
            c.state == "INSTALLED" for c in sa.children) for sa in sas)
        peer = next(g for g in GATEWAYS if g != gw)
        assert value(values, "dcvpn_tunnel_up", tunnel=TUNNEL, gateway=gw, peer=peer,
                     plane="0") == 1 == int(established)
        assert value(values, "dcvpn_gateway_up", gateway=gw) == 1
        assert value(values, "dcvpn_child_sa_packets_in_total", tunnel=TUNNEL, gateway=gw) > 0
        assert value(values, "dcvpn_ike_rekeys_total", tunnel=TUNNEL, gateway=gw) == 0
        reported = vtysh_prefixes(mlab, gw)
        assert reported  # one neighbor each
        for neighbor, count in reported.items():
            assert value(values, "dcvpn_bgp_prefixes_received", gateway=gw,
                         neighbor=neighbor) == count
            assert value(values, "dcvpn_bgp_session_up", gateway=gw, neighbor=neighbor) == 1
        assert {dict(k)["daemon"]: v for k, v in samples(values, "dcvpn_daemon_up").items()
                if dict(k)["gateway"] == gw} == {"charon": 1, "zebra": 1, "bgpd": 1, "bfdd": 1}
    # dgm2 announces two prefixes, dgm1 one: what vtysh reported above, seen from the peer
    assert value(values, "dcvpn_bgp_prefixes_received", gateway="dgm1-gw1",
                 neighbor="169.254.0.1") == 2
    # certificate metrics: the PKI's exposition, for the lab's own CA
    expiry = samples(values, "dcvpn_cert_expiry_seconds")
    assert {dict(k)["gateway"] for k in expiry} == set(GATEWAYS)
    for labels, seconds in expiry.items():
        gw, serial = dict(labels)["gateway"], dict(labels)["serial"]
        cert = x509.load_pem_x509_certificate((mlab.lab_dir / "pki" / "certs" /
                                               f"{gw}.pem").read_bytes())
        assert serial == f"{cert.serial_number:X}".zfill(len(serial))
        left = (cert.not_valid_after_utc - datetime.now(UTC)).total_seconds()
        assert abs(seconds - left) < 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.lab
def test_lab_listen_serves_metrics_until_sigterm(mlab: Lab) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.metrics_cmd", "metrics", "-f", FABRIC,
         "--lab-dir", str(mlab.lab_dir), "--listen", f"127.0.0.1:{port}", "--duration", "60"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                status, _, body = _get(f"http://127.0.0.1:{port}/metrics")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the listener did not come up"
                time.sleep(0.1)
        assert status == 200
        assert value(parse(body), "dcvpn_tunnel_up", tunnel=TUNNEL, gateway="dgm1-gw1",
                     peer="dgm2-gw1", plane="0") == 1
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=5)
        assert proc.returncode == 0, err
        assert f"serving http://127.0.0.1:{port}/metrics" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.lab
def test_lab_metrics_show_a_stopped_bgpd(mlab: Lab) -> None:
    record = mlab.record("dgm2-gw1", "bgpd")
    os.kill(record.pid, signal.SIGKILL)
    out = mlab.lab_dir.parent / "after.prom"
    deadline = time.monotonic() + 20
    while True:
        values = metrics_now(mlab, out)
        if value(values, "dcvpn_bgp_session_up", gateway="dgm1-gw1",
                 neighbor="169.254.0.1") == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert value(values, "dcvpn_daemon_up", gateway="dgm2-gw1", daemon="bgpd") == 0
    assert value(values, "dcvpn_bgp_session_up", gateway="dgm2-gw1", neighbor="169.254.0.0") == 0
    assert value(values, "dcvpn_bgp_session_up", gateway="dgm1-gw1", neighbor="169.254.0.1") == 0
    assert value(values, "dcvpn_tunnel_up", tunnel=TUNNEL, gateway="dgm1-gw1", peer="dgm2-gw1",
                 plane="0") == 1  # IPsec does not depend on BGP
