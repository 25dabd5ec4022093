"""A hybrid lab with a two-gateway hub and PSKs: green, then faults, each reported by name.

Faults: a prefix withdrawn in FRR (only that prefix's route checks fail), then one side's ESP
proposal changed to one the other side refuses (the CHILD SA negotiation failure is named).
"""

import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import Footprint, Lab, failed, footprint, lab, lab_machine, leftovers, start

from tasks.validate_checks import Kind
from tasks.validate_strongswan import LocalGateway

pytestmark = pytest.mark.lab

HYBRID = str(Path(__file__).parent / "fabrics" / "lab-hybrid.yaml")
ROUTES = frozenset({Kind.ROUTE})
TUNNELS = frozenset({Kind.IKE, Kind.CHILD})
WITHDRAWN = "10.112.0.0/24"  # ams1's second prefix: pings use the first, so only routes see it


@pytest.fixture(scope="module")
def hybrid() -> Iterator[Lab]:
    with lab_machine() as root:
        lab_dir = root / "labhy"
        try:
            yield start(None, HYBRID, lab_dir)
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


@pytest.fixture(scope="module")
def hybrid_footprint(hybrid: Lab) -> Footprint:
    return footprint(hybrid.lab_dir)


def _vtysh(lab: Lab, gateway: str, *commands: str) -> None:
    gw = LocalGateway.in_lab(lab.lab_dir, gateway)
    argv = ["vtysh", "--vty_socket", str(gw.vty_dir)]
    for command in commands:
        argv += ["-c", command]
    subprocess.run(argv, check=True, capture_output=True, timeout=10)


def _swanctl(lab: Lab, gateway: str, *argv: str) -> subprocess.CompletedProcess[str]:
    gw = LocalGateway.in_lab(lab.lab_dir, gateway)
    env = {**os.environ, "STRONGSWAN_CONF": str(gw.folder / "strongswan.conf"),
           "SWANCTL_DIR": str(gw.folder)}
    return subprocess.run(["swanctl", *argv], cwd=gw.folder, env=env, capture_output=True,
                          text=True, timeout=20, check=False)


def test_psk_secrets_are_resolved_and_private(hybrid: Lab) -> None:
    secrets = hybrid.lab_dir / "ams1-gw1" / "swanctl-secrets.conf"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    lines = [ln for ln in secrets.read_text().splitlines() if not ln.lstrip().startswith("#")]
    keys = [ln.split("=", 1)[1].strip() for ln in lines if ln.strip().startswith("secret")]
    assert len(keys) == 3 and all(re.fullmatch(r"[0-9a-f]{64}", k) for k in keys)
    assert "${" not in "\n".join(lines)
    assert "pki" not in {p.name for p in hybrid.lab_dir.iterdir()}


def test_hybrid_validates_green(hybrid: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, data = hybrid.validate(capsys)
    assert code == 0 and data["ok"], failed(data["checks"])
    names = {c["name"] for c in data["checks"]}
    # the hub's second gateway takes part (plane 1); spokes reach each other through the hub
    assert {"ike fra1-gw2 fra1-nyc1-p1", "bgp fra1-gw2 169.254.0.27",
            "route fra1-gw2 10.14.0.0/24", "ping ams1->nyc1", "ping par1->nyc1",
            "mtu fra1->ams1"} <= names
    assert "mtu ams1->nyc1" not in names  # no tunnel between them: no tunnel MTU to probe
    assert len(data["checks"]) == 71


def test_withdrawn_prefix_fails_exactly_its_route_checks(
        hybrid: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    expected = {f"route {gw} {WITHDRAWN}" for gw in ("fra1-gw1", "fra1-gw2", "par1-gw1",
                                                      "nyc1-gw1")}
    _vtysh(hybrid, "ams1-gw1", "configure terminal", "router bgp 65102",
           "address-family ipv4 unicast", f"no network {WITHDRAWN}")
    try:
        hybrid.wait(lambda rs: failed(rs) == expected, ROUTES)
        code, data = hybrid.validate(capsys)
        assert code == 1
        assert failed(data["checks"]) == expected
        route = next(c for c in data["checks"] if c["name"] == f"route nyc1-gw1 {WITHDRAWN}")
        assert route["observed"] == f"no route for {WITHDRAWN}"
    finally:
        _vtysh(hybrid, "ams1-gw1", "configure terminal", "router bgp 65102",
               "address-family ipv4 unicast", f"network {WITHDRAWN}")
    assert failed(hybrid.wait(lambda rs: not failed(rs), ROUTES)) == set()


def test_refused_esp_proposal_is_reported_as_a_negotiation_failure(
        hybrid: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    tunnel = "ams1-par1-p0"
    conf = hybrid.lab_dir / "ams1-gw1" / "swanctl.conf"
    text = conf.read_text()
    start = text.index(f"    children {{\n      {tunnel} {{")
    end = text.index("esp_proposals = ", start)
    conf.write_text(text[:end] + "esp_proposals = aes128gcm16-ecp256"
                    + text[text.index("\n", end):])
    assert _swanctl(hybrid, "ams1-gw1", "--load-conns", "--file", "swanctl.conf").returncode == 0
    _swanctl(hybrid, "ams1-gw1", "--terminate", "--ike", tunnel, "--timeout", "5")
    initiated = _swanctl(hybrid, "ams1-gw1", "--initiate", "--child", tunnel, "--timeout", "10")
    assert initiated.returncode != 0  # par1 refuses the proposal
    child = {f"child ams1-gw1 {tunnel}", f"child par1-gw1 {tunnel}"}
    hybrid.wait(lambda rs: child <= failed(rs), TUNNELS)
    code, data = hybrid.validate(capsys)
    assert code == 1
    checks = {c["name"]: c for c in data["checks"]}
    for name in child:
        assert checks[name]["status"] == "fail"
        assert "negotiation failed" in checks[name]["observed"]
        assert "PROPOSAL" in checks[name]["observed"].upper()
    assert "AES_GCM_16_256" in checks[f"child ams1-gw1 {tunnel}"]["expected"]
    # what fails depends on the tunnel between ams1 and par1; nothing else fails
    assert all({"ams1", "par1"} <= set(c["sites"])
               for c in data["checks"] if c["status"] == "fail")


def test_down_leaves_nothing_behind(hybrid: Lab, hybrid_footprint: Footprint,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = lab(capsys, "down", "--lab-dir", str(hybrid.lab_dir))
    assert code == 0, err
    assert leftovers(hybrid_footprint) == []
