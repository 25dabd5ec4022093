"""`dcvpn lab up` with emulated gateways: one supervisor process hosts a junos (NETCONF), an
iosxe (NETCONF) and an iosxe (SSH CLI) emulator on 127.0.0.1 ports; devices.json and
known_hosts let the client libraries reach them with host keys verified; `lab status` lists
them; `lab down` stops the supervisor by PID (also after a crashed up) and leaves nothing.

The emulated-only fabric needs root (the lab does) but no namespace and no strongSwan/FRR;
the mixed fabric adds one strongSwan gateway and needs the lab's programs too.
"""

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lab_support import Footprint, footprint, lab, lab_machine, leftovers
from netmiko import ConnectHandler

from drivers.errors import ConnectError
from drivers.ncclient_session import connect
from lab import netns, procs
from lab.emulated import KNOWN_HOSTS, SUPERVISOR, SUPERVISOR_GATEWAY
from lab.emulators.supervisor_files import PID_FILE, folder_of
from lab.state import LabState, PendingProcess
from tasks.lab_devices import DEVICES_FILE, LabDevice, load_lab_devices

FABRICS = Path(__file__).parent / "fabrics"
EMULATED = str(FABRICS / "em-emulated.yaml")
MIXED = str(FABRICS / "em-mixed.yaml")
EMULATED_GATEWAYS = {"em1-gw1": ("junos", "netconf"), "em2-gw1": ("iosxe", "netconf"),
                     "em3-gw1": ("iosxe", "ssh")}
CISCO_IA_1712 = "http://cisco.com/yang/cisco-ia?module=cisco-ia&revision=2021-11-01"
WAIT = 60.0

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def root_dir() -> Iterator[Path]:
    """Root (the lab needs it) and no DCVPN_* settings; strongSwan/FRR are not needed."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("DCVPN_") and name != "DCVPN_YANG_DIR":
                mp.delenv(name)
        root = Path(tempfile.mkdtemp(prefix="dcvpn-em-"))
        try:
            yield root
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _up(fabric: str, lab_dir: Path) -> dict[str, Any]:
    code, out, err = lab(None, "up", "-f", fabric, "--lab-dir", str(lab_dir), "--format",
                         "json", "--timeout", "60", "--time-scale", "0.01")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def _supervisor(lab_dir: Path) -> procs.ProcessRecord:
    state = LabState.load(lab_dir)
    assert state is not None
    found = [r for r in state.processes if r.gateway == SUPERVISOR_GATEWAY]
    assert len(found) == 1, state.processes
    return found[0]


@pytest.fixture(scope="module")
def emulated_lab(root_dir: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    lab_dir = root_dir / "emlab"
    try:
        yield lab_dir, _up(EMULATED, lab_dir)
    finally:
        lab(None, "down", "--lab-dir", str(lab_dir))


def _devices(lab_dir: Path) -> dict[str, LabDevice]:
    return load_lab_devices(lab_dir)


# --- the emulated-only lab ----------------------------------------------------------------

def test_up_runs_every_emulated_gateway_in_one_supervisor(
        emulated_lab: tuple[Path, dict[str, Any]]) -> None:
    lab_dir, up = emulated_lab
    assert up["ok"] and up["healthy"] and up["phase"] == "up"
    assert up["gateways"] == {}  # no strongSwan gateway, so no namespace either
    state = LabState.load(lab_dir)
    assert state is not None and state.namespaces == [] and state.pending == []
    record = _supervisor(lab_dir)
    assert procs.is_running(record)
    assert up["supervisor"] == {"pid": record.pid, "alive": True}
    emulators = up["emulators"]
    assert {n: (e["platform"], e["transport"]) for n, e in emulators.items()} == \
        EMULATED_GATEWAYS
    ports = {e["port"] for e in emulators.values()}
    assert len(ports) == 3
    for e in emulators.values():
        assert e["host"] == "127.0.0.1" and e["answering"]
        assert (e["username"], e["password"]) == ("admin", "admin")
        # every emulator is served by the supervisor process itself
        assert _listener_pid(e["port"]) == record.pid


def _listener_pid(port: int) -> int | None:
    """The PID owning the 127.0.0.1:port listening socket (from /proc)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def test_devices_json_and_known_hosts(emulated_lab: tuple[Path, dict[str, Any]]) -> None:
    lab_dir, up = emulated_lab
    path = lab_dir / DEVICES_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    devices = _devices(lab_dir)
    assert set(devices) == set(EMULATED_GATEWAYS)
    known = (lab_dir / KNOWN_HOSTS).read_text().splitlines()
    for name, device in devices.items():
        target = device.target
        assert target.port == up["emulators"][name]["port"]
        assert target.verify_host_key and target.known_hosts == lab_dir / KNOWN_HOSTS
        # the line is the key the emulator keeps in its folder
        pub = (folder_of(lab_dir) / name / "ssh_host_ed25519_key.pub").read_text().split()
        assert f"[127.0.0.1]:{target.port} {pub[0]} {pub[1]}" in known
    assert len(known) == 3


def test_each_emulator_answers_its_client_library(
        emulated_lab: tuple[Path, dict[str, Any]]) -> None:
    lab_dir, _ = emulated_lab
    devices = _devices(lab_dir)
    junos = connect(devices["em1-gw1"].target, "junos")
    try:
        assert "em1-gw1" in junos.get_config(source="running").data_xml
    finally:
        junos.close_session()
    iosxe = connect(devices["em2-gw1"].target, "iosxe")
    try:  # os_version 17.12 from the model
        assert CISCO_IA_1712 in set(iosxe.server_capabilities)
        assert "em2-gw1" in iosxe.get_config(source="running").data_xml
    finally:
        iosxe.close_session()
    cli = devices["em3-gw1"].target
    conn = ConnectHandler(device_type="cisco_xe", host=cli.host, port=cli.port,
                          username=cli.username, password=cli.password, ssh_strict=True,
                          system_host_keys=False, alt_host_keys=True,
                          alt_key_file=str(cli.known_hosts), allow_agent=False,
                          use_keys=False, timeout=10, conn_timeout=10,
                          global_delay_factor=0.05)
    try:
        assert conn.find_prompt() == "em3-gw1#"
        assert "Version 17.15" in conn.send_command("show version")
    finally:
        conn.disconnect()


def test_a_wrong_known_hosts_entry_is_refused(emulated_lab: tuple[Path, dict[str, Any]],
                                             tmp_path: Path) -> None:
    lab_dir, _ = emulated_lab
    target = _devices(lab_dir)["em1-gw1"].target
    other = _devices(lab_dir)["em2-gw1"].target
    wrong = tmp_path / "known_hosts"  # em2's key filed under em1's port
    key = next(line for line in (lab_dir / KNOWN_HOSTS).read_text().splitlines()
               if line.startswith(f"[127.0.0.1]:{other.port} "))
    wrong.write_text(key.replace(f":{other.port} ", f":{target.port} ") + "\n")
    with pytest.raises(ConnectError, match="host key does not match"):
        connect(replace(target, known_hosts=wrong), "junos")


def test_status_lists_the_emulators(emulated_lab: tuple[Path, dict[str, Any]]) -> None:
    lab_dir, up = emulated_lab
    code, out, _ = lab(None, "status", "--lab-dir", str(lab_dir), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["healthy"] and data["emulators"] == up["emulators"]
    code, text, _ = lab(None, "status", "--lab-dir", str(lab_dir))
    assert code == 0
    for name, e in up["emulators"].items():
        assert (f"{name}  {e['platform']} {e['transport']}  127.0.0.1:{e['port']}  "
                "login admin/admin  answering") in text
    assert f"supervisor {_supervisor(lab_dir).pid} up" in text


def test_a_second_up_is_refused(emulated_lab: tuple[Path, dict[str, Any]]) -> None:
    lab_dir, _ = emulated_lab
    code, _, err = lab(None, "up", "-f", EMULATED, "--lab-dir", str(lab_dir))
    assert code == 1 and "already exists" in err


def test_down_stops_the_supervisor_by_pid_and_leaves_nothing(
        emulated_lab: tuple[Path, dict[str, Any]]) -> None:
    """Last of the module's lab."""
    lab_dir, up = emulated_lab
    record = _supervisor(lab_dir)
    seen = footprint(lab_dir)
    code, out, err = lab(None, "down", "--lab-dir", str(lab_dir), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["stopped"] == [record.as_dict()]
    assert not procs.is_running(record) and leftovers(seen) == []
    assert not lab_dir.exists()
    for e in up["emulators"].values():
        assert _listener_pid(e["port"]) is None


def _wait_gone(record: procs.ProcessRecord) -> None:
    deadline = time.monotonic() + 10
    while procs.is_running(record) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):  # started by this process's `lab up`
            os.waitpid(record.pid, os.WNOHANG)
        time.sleep(0.05)
    assert not procs.is_running(record)


def test_down_after_a_crashed_up_finds_the_supervisor(root_dir: Path) -> None:
    """`lab up` killed (SIGKILL) once the supervisor runs; the state file even lost the
    supervisor's PID (as if up died between starting and recording it): down still stops
    it, through its PID file, binary and folder."""
    lab_dir = root_dir / "emcrash"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "lab", "up", "-f", EMULATED, "--lab-dir",
         str(lab_dir)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        record = _wait_for_supervisor(lab_dir, proc)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    state = LabState.load(lab_dir)
    assert state is not None and state.phase == "starting"
    pending = PendingProcess(SUPERVISOR_GATEWAY, SUPERVISOR, "",
                             os.path.realpath(sys.executable), str(folder_of(lab_dir)),
                             str(folder_of(lab_dir) / PID_FILE))
    state.data["processes"] = []  # lost: only the pending entry is left
    state.add_pending(pending)
    seen = Footprint((), (record,), (lab_dir,))
    assert procs.is_running(record)
    code, out, err = lab(None, "down", "--lab-dir", str(lab_dir), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["stopped"] == [record.as_dict()]
    assert leftovers(seen) == []


def _wait_for_supervisor(lab_dir: Path, proc: subprocess.Popen[bytes]) -> procs.ProcessRecord:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        state = LabState.load(lab_dir)  # replaced atomically: never half-written
        found = [r for r in state.processes if r.gateway == SUPERVISOR_GATEWAY] if state else []
        pid_file = folder_of(lab_dir) / PID_FILE
        if found and pid_file.exists() and pid_file.read_text().strip():
            return found[0]
        assert proc.poll() is None, "lab up ended before its supervisor started"
        time.sleep(0.02)
    pytest.fail("lab up did not start its supervisor")


# --- strongSwan and emulators in one lab ----------------------------------------------------

def test_mixed_lab_strongswan_in_its_namespace_and_emulators_on_loopback() -> None:
    with lab_machine() as root:
        lab_dir = root / "emmix"
        seen = Footprint((), (), (lab_dir,))
        try:
            up = _up(MIXED, lab_dir)
            seen = footprint(lab_dir)
            assert set(up["gateways"]) == {"em4-gw1"}
            assert set(up["emulators"]) == set(EMULATED_GATEWAYS)
            state = LabState.load(lab_dir)
            assert state is not None
            assert "dcvpn-em4-gw1" in state.namespaces
            assert not any(ns.startswith(("dcvpn-em1", "dcvpn-em2", "dcvpn-em3"))
                           for ns in state.namespaces)
            devices = _devices(lab_dir)
            local = devices["em4-gw1"]
            assert (local.platform, local.transport) == ("strongswan", "local")
            assert local.target.options == {"netns": "dcvpn-em4-gw1",
                                            "dir": str(lab_dir / "em4-gw1")}
            session = connect(devices["em2-gw1"].target, "iosxe")
            session.close_session()
            # the supervisor dies behind the lab's back: status says so, the rest stays up
            record = _supervisor(lab_dir)
            os.kill(record.pid, signal.SIGKILL)
            _wait_gone(record)
            code, out, _ = lab(None, "status", "--lab-dir", str(lab_dir), "--format", "json")
            data = json.loads(out)
            assert code == 1 and not data["healthy"]
            assert data["supervisor"] == {"pid": record.pid, "alive": False}
            assert not any(e["answering"] for e in data["emulators"].values())
            assert data["gateways"]["em4-gw1"]["healthy"]
            _, text, _ = lab(None, "status", "--lab-dir", str(lab_dir))
            assert f"supervisor {record.pid} DOWN" in text and "NOT ANSWERING" in text
        finally:
            code, _, err = lab(None, "down", "--lab-dir", str(lab_dir))
        assert code == 0, err
        assert leftovers(seen) == []
        assert not any(ns.startswith("dcvpn-em") for ns in netns.namespaces())
