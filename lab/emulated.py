"""The lab's emulated gateways: every junos/iosxe gateway of the fabric that has an emulator
runs in one supervisor process (lab.emulators.supervisor), each on its own 127.0.0.1 port.

Like the daemons, the supervisor is recorded in the state file before it starts (pending, by
its PID file, binary and directory) and by PID once started, so `dcvpn lab down` stops it
also after a crash. Ready means every emulator answers its protocol's hello through a login
with its pinned host key. Then `<lab dir>/known_hosts` holds each emulator's host key and
`<lab dir>/devices.json` (tasks.lab_devices) lists every device of the lab.
"""

import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lab
from inventory.model import Platform, Transport
from inventory.topology import CompiledFabric
from lab import procs
from lab.emulators.catalog import DEFAULT_PASSWORD, DEFAULT_USERNAME, emulated
from lab.emulators.probe import Probe, probe_all
from lab.emulators.supervisor_files import (
    LOG_FILE,
    PID_FILE,
    LabEmulator,
    Listening,
    folder_of,
    read_ready,
    read_spec_data,
    spec_files,
    write_spec,
)
from lab.errors import LabError
from lab.state import LabState, PendingProcess
from tasks.lab_devices import DEVICES_FILE, write_lab_devices
from tasks.validate_strongswan import LocalGateway

SUPERVISOR_GATEWAY = "(emulators)"  # not a gateway name: those have no parentheses
SUPERVISOR = "supervisor"
SUPERVISOR_MODULE = "lab.emulators.supervisor"
KNOWN_HOSTS = "known_hosts"
POLL = 0.1
PROBE_TIMEOUT = 5.0
Progress = Callable[[str], None]


def emulated_gateways(compiled: CompiledFabric) -> tuple[LabEmulator, ...]:
    """The gateways the lab emulates, in site-id order (iosxe os_version from the model)."""
    return tuple(LabEmulator(gw.name, str(gw.platform), str(gw.transport),
                             gw.os_version if gw.platform is Platform.IOSXE else None)
                 for _, gw in compiled.gateways()
                 if emulated(str(gw.platform), str(gw.transport)))


def not_in_lab(compiled: CompiledFabric) -> list[str]:
    """Gateways neither run (strongSwan) nor emulated, as `name (platform transport)`."""
    return sorted(f"{gw.name} ({gw.platform} {gw.transport})" for _, gw in compiled.gateways()
                  if gw.platform is not Platform.STRONGSWAN
                  and not emulated(str(gw.platform), str(gw.transport)))


def start_supervisor(state: LabState, emulators: Sequence[LabEmulator],
                     time_scale: float) -> procs.ProcessRecord:
    lab_dir = state.lab_dir
    folder = folder_of(lab_dir)
    state.add_dir(folder)
    folder.mkdir(mode=0o700, exist_ok=True)
    for file in spec_files(lab_dir):
        state.add_file(file)
    write_spec(lab_dir, state.fabric, emulators, DEFAULT_USERNAME, DEFAULT_PASSWORD,
               time_scale)
    # run through the venv's link (its packages); /proc/<pid>/exe shows the real binary
    exe = os.path.realpath(sys.executable)
    pending = PendingProcess(SUPERVISOR_GATEWAY, SUPERVISOR, "", exe, str(folder),
                             str(folder / PID_FILE))
    state.add_pending(pending)
    project = str(Path(lab.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (project, os.environ.get("PYTHONPATH", "")) if p)
    argv = [sys.executable, "-m", SUPERVISOR_MODULE, "--lab-dir", str(lab_dir)]
    record = procs.spawn(SUPERVISOR_GATEWAY, SUPERVISOR, argv, env={"PYTHONPATH": path},
                         log=folder / LOG_FILE, cwd=folder)
    state.started(pending, record)
    return record


def add_emulators(state: LabState, record: procs.ProcessRecord,
                  emulators: Sequence[LabEmulator]) -> None:
    """The running supervisor hosts `emulators` (those it hosts, and more) from now on: the
    spec is rewritten (the lab login and time scale stay) and the supervisor signalled
    (SIGHUP) to start the ones it lacks in the same process and PeerRegistry, without
    restarting the others. wait_emulators then waits until they answer."""
    data = read_spec_data(state.lab_dir)
    try:
        login = (str(data["username"]), str(data["password"]), float(data["time_scale"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise LabError(f"{folder_of(state.lab_dir)}: unreadable emulator spec ({exc})") from None
    write_spec(state.lab_dir, state.fabric, emulators, *login)
    if not procs.signal_running(record, signal.SIGHUP):
        raise LabError(f"the emulator supervisor (pid {record.pid}) is not running; "
                       "restart the lab (dcvpn lab down, dcvpn lab up)")


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return lines[-1] if lines else "no output"


def _probes(listening: dict[str, Listening], emulators: Sequence[LabEmulator]
            ) -> list[Probe]:
    return [Probe(e.gateway, listening[e.gateway].host, listening[e.gateway].port, e.transport,
                  DEFAULT_USERNAME, DEFAULT_PASSWORD, listening[e.gateway].known_hosts)
            for e in emulators]


def wait_emulators(lab_dir: Path, record: procs.ProcessRecord,
                   emulators: Sequence[LabEmulator], deadline: float,
                   progress: Progress) -> dict[str, Listening]:
    """Wait until the supervisor listens and every emulator answers; LabError otherwise."""
    log = folder_of(lab_dir) / LOG_FILE
    listening = None
    while listening is None:
        if not procs.is_running(record):
            raise LabError(f"the emulator supervisor exited: {_last_line(log)} (see {log})")
        listening = read_ready(lab_dir, record.pid)
        if listening is None:
            if time.monotonic() > deadline:
                raise LabError(f"the emulators did not start in time (see {log})")
            progress(f"starting {len(emulators)} emulator(s)")
            time.sleep(POLL)
    while missing := [e.gateway for e in emulators if e.gateway not in listening]:
        # after a SIGHUP (add_emulators) the gateways it adds show up once they listen
        if not procs.is_running(record) or time.monotonic() > deadline:
            raise LabError(f"the emulator supervisor did not start {', '.join(missing)} "
                           f"({_last_line(log)}; see {log})")
        time.sleep(POLL)
        listening = read_ready(lab_dir, record.pid) or listening
    pending = _probes(listening, emulators)
    while True:
        outcome = probe_all(pending, PROBE_TIMEOUT)
        failing = [p for p in pending if outcome[p.name] is not None]
        progress(f"waiting for emulators: {len(emulators) - len(failing)}/{len(emulators)} "
                 "answer")
        if not failing:
            return listening
        if time.monotonic() > deadline or not procs.is_running(record):
            raise LabError("emulator(s) not answering: " + "; ".join(
                f"{p.name} on {p.host}:{p.port}: {outcome[p.name]}" for p in failing))
        pending = failing
        time.sleep(POLL)


def write_device_files(state: LabState, compiled: CompiledFabric, local: Sequence[str],
                       listening: dict[str, Listening]) -> None:
    """`<lab dir>/known_hosts` (emulator host keys) and `<lab dir>/devices.json` (0600)."""
    lab_dir = state.lab_dir
    known = lab_dir / KNOWN_HOSTS
    devices: dict[str, dict[str, Any]] = {}
    for name in local:
        gw = LocalGateway.in_lab(lab_dir, name)
        devices[name] = {"platform": str(Platform.STRONGSWAN),
                         "transport": str(Transport.LOCAL), "netns": gw.namespace,
                         "dir": str(gw.folder)}
    lines = []
    for _, model in compiled.gateways():
        where = listening.get(model.name)
        if where is None:
            continue
        devices[model.name] = {"platform": str(model.platform),
                               "transport": str(model.transport), "host": where.host,
                               "port": where.port, "username": DEFAULT_USERNAME,
                               "password": DEFAULT_PASSWORD, "known_hosts": str(known)}
        lines.append(where.known_hosts + "\n")
    if listening:
        state.add_file(known)
        known.write_text("".join(lines))
        known.chmod(0o644)
    state.add_file(lab_dir / DEVICES_FILE)
    state.add_file((lab_dir / DEVICES_FILE).with_suffix(".tmp"))
    write_lab_devices(lab_dir, state.fabric, devices)
