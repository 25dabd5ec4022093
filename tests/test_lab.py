"""`dcvpn lab` with real daemons: the 3-site example up, validated, one charon killed, down.

Also, without root: the refusal of a non-root user and the message for a missing package.
The lab tests share one lab per module (a few seconds to start) and run in file order.
"""

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT
from lab_support import Footprint, Lab, failed, footprint, lab, lab_machine, leftovers, start

from lab import netns, procs, requirements
from lab.daemons import find_pending
from lab.state import LabState
from pipelines import lab_cmd, validate_cmd
from tasks.validate_checks import Kind

LAB3 = str(EXAMPLES / "lab3.yaml")
TUNNEL_KINDS = frozenset({Kind.IKE, Kind.CHILD, Kind.BGP})


@pytest.fixture(scope="module")
def lab3() -> Iterator[Lab]:
    with lab_machine() as root:
        lab_dir = root / "lab3"
        try:
            yield start(None, LAB3, lab_dir)
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


# --- without root -------------------------------------------------------------------------------

def test_non_root_gets_exit_2(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(requirements, "is_root", lambda: False)
    monkeypatch.setattr(validate_cmd, "is_root", lambda: False)
    for sub in ("up", "status", "down"):
        code, out, err = lab(capsys, sub, "-f", LAB3)
        assert code == 2 and "needs root" in err and out == ""
    code = validate_cmd.main(["validate", "-f", LAB3])
    assert code == 2 and "needs root" in capsys.readouterr().err


def test_missing_package_is_named_with_the_install_command(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(requirements, "is_root", lambda: True)
    monkeypatch.setattr(requirements.Requirement, "present",
                        lambda self: self.what not in ("vtysh", "nft"))
    code, _, err = lab(capsys, "up", "-f", LAB3, "--lab-dir", "/nonexistent/never-made")
    assert code == 2
    assert ("missing Debian package(s): frr (vtysh), nftables (nft); "
            "install with: apt-get install -y frr nftables") in err
    assert not Path("/nonexistent").exists()


def test_down_reads_the_fabric_name_from_a_file_the_schema_refuses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(requirements, "is_root", lambda: True)
    monkeypatch.setenv("DCVPN_LAB_DIR", str(tmp_path / "nolab"))
    changed = tmp_path / "changed.yaml"
    changed.write_text("fabric: {name: lab3, topology: ring}\nsites: []\n")
    code, _, err = lab(capsys, "down", "-f", str(changed))
    assert code == 0 and "nothing to do" in err


# --- the 3-site lab -----------------------------------------------------------------------------

@pytest.mark.lab
def test_up_starts_every_gateway(lab3: Lab) -> None:
    state = lab3.state()
    assert lab3.up["ok"] is True and lab3.up["phase"] == "up"
    assert state.gateways == ["ams1-gw1", "lon1-gw1", "nyc1-gw1"]
    assert set(state.namespaces) == {"dcvpn-lab3.underlay", "dcvpn-ams1-gw1",
                                     "dcvpn-lon1-gw1", "dcvpn-nyc1-gw1"}
    assert set(state.namespaces) <= netns.namespaces()
    daemons = sorted((r.gateway, r.daemon) for r in state.processes)
    assert daemons == sorted((g, d) for g in state.gateways
                             for d in ("charon", "zebra", "bgpd", "bfdd"))
    assert all(procs.is_running(r) for r in state.processes)
    assert state.pending == []
    for gw in state.gateways:
        key = lab3.lab_dir / gw / "private" / f"{gw}.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        # exactly what `dcvpn render` produces for the gateway
        assert (lab3.lab_dir / gw / "swanctl.conf").read_text() == (
            ROOT / "tests" / "golden" / "lab3" / gw / "swanctl.conf").read_text()


@pytest.mark.lab
def test_status_shows_daemons_and_tunnels(lab3: Lab, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    code, out, _ = lab(capsys, "status", "--lab-dir", str(lab3.lab_dir), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["healthy"]
    ams = data["gateways"]["ams1-gw1"]
    assert {t["name"]: (t["ike"], t["child"]) for t in ams["tunnels"]} == {
        "ams1-lon1-p0": ("ESTABLISHED", "INSTALLED"), "ams1-nyc1-p0": ("ESTABLISHED", "INSTALLED")}
    code, out, _ = lab(capsys, "status", "-f", LAB3, "--lab-dir", str(lab3.lab_dir))
    assert code == 0
    assert "  ams1-lon1-p0  IKE ESTABLISHED   CHILD INSTALLED   192.0.2.2" in out.splitlines()


@pytest.mark.lab
def test_validate_is_green(lab3: Lab, capsys: pytest.CaptureFixture[str], tmp_path: Path
                           ) -> None:
    junit = tmp_path / "validate.xml"
    code, data = lab3.validate(capsys, "--junit", str(junit))
    assert code == 0 and data["ok"], failed(data["checks"])
    kinds = [c["kind"] for c in data["checks"]]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "ike": 6, "child": 6, "bgp": 6, "route": 6, "ping": 3, "mtu": 3}
    text = junit.read_text()
    assert text.count("<testcase ") == 30 and "<failure" not in text


@pytest.mark.lab
def test_second_up_is_refused(lab3: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    before = lab3.state().processes
    code, _, err = lab(capsys, "up", "-f", LAB3, "--lab-dir", str(lab3.lab_dir))
    assert code == 1 and "already exists" in err and "lab down" in err
    assert lab3.state().processes == before and all(procs.is_running(r) for r in before)


@pytest.mark.lab
def test_killed_charon_fails_its_tunnels_and_bgp_only(lab3: Lab,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    procs.stop(lab3.record("nyc1-gw1", "charon"), timeout=3)
    own = {f"{k} nyc1-gw1 {t}" for k in ("ike", "child") for t in ("ams1-nyc1-p0",
                                                                     "lon1-nyc1-p0")}
    own |= {"bgp nyc1-gw1 169.254.0.8", "bgp nyc1-gw1 169.254.0.16",
            "bgp ams1-gw1 169.254.0.9", "bgp lon1-gw1 169.254.0.17"}
    lab3.wait(lambda rs: own <= failed(rs), TUNNEL_KINDS)
    code, data = lab3.validate(capsys)
    assert code == 1
    bad = [c for c in data["checks"] if c["status"] == "fail"]
    assert own <= {c["name"] for c in bad}
    assert all("nyc1" in c["sites"] for c in bad)
    assert all(c["status"] == "pass" for c in data["checks"] if "nyc1" not in c["sites"])
    assert "ping ams1->lon1" not in failed(data["checks"])
    code, out, _ = lab(capsys, "status", "--lab-dir", str(lab3.lab_dir))
    assert code == 1 and "charon" in out and "DOWN" in out


@pytest.fixture(scope="module")
def lab3_footprint(lab3: Lab) -> Footprint:
    return footprint(lab3.lab_dir)


@pytest.mark.lab
def test_down_leaves_nothing_behind(lab3: Lab, lab3_footprint: Footprint,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = lab(capsys, "down", "--lab-dir", str(lab3.lab_dir))
    assert code == 0, err
    assert leftovers(lab3_footprint) == []
    code, _, err = lab(capsys, "down", "--lab-dir", str(lab3.lab_dir))
    assert code == 0 and "nothing to do" in err


# --- a crash in the middle of up ----------------------------------------------------------------

CRASH = """
import os, sys
from lab.state import LabState
real = LabState.started
def started(self, pending, record):
    if pending.daemon == os.environ["CRASH_AT"]:
        os._exit(9)  # the daemon runs, but its PID never reaches the state file
    return real(self, pending, record)
LabState.started = started
from pipelines import lab_cmd
sys.exit(lab_cmd.main(sys.argv[1:]))
"""


@pytest.mark.lab
@pytest.mark.parametrize(("daemon", "pending"), [("charon", 1), ("bgpd", 3)])
def test_down_cleans_up_after_a_crashed_up(daemon: str, pending: int,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with lab_machine() as root:
        lab_dir = root / "crash"
        done = subprocess.run([sys.executable, "-c", CRASH, "lab", "up", "-f", LAB3,
                               "--lab-dir", str(lab_dir)], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, check=False,
                              env={**os.environ, "CRASH_AT": daemon})
        assert done.returncode == 9, done.stderr
        state = LabState.load(lab_dir)
        assert state is not None
        assert [p.daemon for p in state.pending] == [daemon] * pending
        # found by PID file (FRR) or by binary, namespace and working directory (charon)
        running = [find_pending(p) for p in state.pending]
        assert all(r is not None and procs.is_running(r) for r in running)
        seen = footprint(lab_dir)
        try:
            code, _, err = lab(capsys, "down", "--lab-dir", str(lab_dir))
            assert code == 0, err
            assert leftovers(seen) == []
            assert not any(r is not None and procs.is_running(r) for r in running)
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


@pytest.mark.lab
def test_up_timeout_names_what_is_not_ready(capsys: pytest.CaptureFixture[str]) -> None:
    with lab_machine() as root:
        lab_dir = root / "slow"
        began = time.monotonic()
        try:
            code, out, err = lab(capsys, "up", "-f", LAB3, "--lab-dir", str(lab_dir),
                                 "--timeout", "0.5", "--format", "json")
            assert time.monotonic() - began < 15
            assert code == 1 and "not ready after 0.5s" in err
            data = json.loads(out)
            assert data["ok"] is False and data["not_ready"]
            assert any(line.startswith("  route ") for line in err.splitlines())
            assert "lab down" in err  # left running, and the way to remove it is named
        finally:
            code, _, _ = lab(capsys, "down", "--lab-dir", str(lab_dir))
        assert code == 0 and not lab_dir.exists()


def test_lab_command_registers_serve() -> None:
    """`lab serve` (tests/test_lab_serve.py) sits next to up/status/down."""
    import argparse
    parser = argparse.ArgumentParser()
    lab_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["lab", "serve", "--platform", "junos", "--transport", "netconf",
                              "--port", "0"])
    assert args.lab_command == "serve" and args.handler is lab_cmd.cmd_serve
