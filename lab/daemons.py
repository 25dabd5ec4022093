"""Starting a gateway's daemons inside its namespace, and knowing when they are there.

charon-systemd (no pidfile, runs in the foreground): started with the gateway folder as
working directory (its vici socket and log paths are relative) and STRONGSWAN_CONF, recorded
by PID. FRR's zebra, bgpd and bfdd fork themselves (-d) and write PID files; each gets the
gateway's frr/ folder for its sockets, and bgpd/bfdd are started once zebra's zserv.api
exists. Every daemon is recorded as pending in the state file before it starts.
"""

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lab import netns, procs
from lab.errors import LabError
from lab.state import LabState, PendingProcess
from tasks.validate_strongswan import LocalGateway

FRR_LIBEXEC = Path("/usr/lib/frr")  # Debian keeps the FRR daemons here, off PATH
FRR_USER = "frr"
FRR_CONF = "frr.conf"
FRR_MAX_FDS = 1024  # FRR sizes its per-fd tables by this (default: ulimit -n, often huge)
ZSERV = "zserv.api"
CHARON = "charon-systemd"
CHARON_NAME = "charon"  # its name in the state file
SWANCTL = "swanctl"
ZEBRA, BGPD, BFDD = "zebra", "bgpd", "bfdd"
FRR_TMP = Path("/var/tmp/frr")  # FRR makes a scratch folder <daemon>.<pid> here
POLL = 0.02


def program(name: str) -> str | None:
    """Real path of a program (what /proc/<pid>/exe shows): PATH, then FRR's libexec."""
    found = shutil.which(name)
    if found:
        return os.path.realpath(found)
    candidate = FRR_LIBEXEC / name
    return os.path.realpath(candidate) if candidate.is_file() else None


def _require(name: str) -> str:
    path = program(name)
    if path is None:
        raise LabError(f"{name} is not installed")
    return path


def wait_for(ready: Callable[[], bool], deadline: float, what: str,
             alive: Callable[[], bool] = lambda: True) -> None:
    while not ready():
        if not alive():
            raise LabError(f"{what}: the process exited")
        if time.monotonic() > deadline:
            raise LabError(f"{what}: not there after the start timeout")
        time.sleep(POLL)


def start_charon(state: LabState, gw: LocalGateway) -> procs.ProcessRecord:
    exe = _require(CHARON)
    pending = PendingProcess(gw.name, CHARON_NAME, gw.namespace, exe, str(gw.folder), None)
    state.add_pending(pending)
    out = gw.folder / "charon.out"
    state.add_file(out)
    record = procs.spawn(gw.name, CHARON_NAME, netns.exec_argv(gw.namespace, [exe]),
                         env={"STRONGSWAN_CONF": str(gw.folder / "strongswan.conf")},
                         log=out, cwd=gw.folder)
    state.started(pending, record)
    return record


def wait_charon(gw: LocalGateway, record: procs.ProcessRecord, deadline: float) -> None:
    wait_for(gw.vici_socket.exists, deadline, f"{gw.name}: charon's vici socket",
             lambda: procs.is_running(record))


def run_in(ns: str, argv: Sequence[str], cwd: Path,
           timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(netns.exec_argv(ns, argv), cwd=cwd, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{ns}: {' '.join(argv)} timed out after {timeout:.0f}s") from exc


def frr_argv(gw: LocalGateway, daemon: str) -> list[str]:
    vty = gw.vty_dir
    argv = [_require(daemon), "-d", "-F", "traditional", "-z", str(vty / ZSERV),
            "--vty_socket", str(vty), "-f", str(vty / FRR_CONF), "-P", "0",
            "-u", FRR_USER, "-g", FRR_USER, "-i", str(vty / f"{daemon}.pid"),
            "--limit-fds", str(FRR_MAX_FDS)]
    if daemon == BFDD:
        argv += ["--bfdctl", str(vty / "bfdd.sock")]
    return argv


def start_frr(state: LabState, gateways: Sequence[LocalGateway], daemon: str,
              deadline: float) -> list[procs.ProcessRecord]:
    """One FRR daemon on each gateway, started in parallel; returns when all wrote PIDs."""
    started: list[tuple[LocalGateway, PendingProcess, subprocess.Popen[bytes]]] = []
    try:
        for gw in gateways:
            pid_file = gw.vty_dir / f"{daemon}.pid"
            argv = frr_argv(gw, daemon)
            pending = PendingProcess(gw.name, daemon, gw.namespace, argv[0], "/",
                                     str(pid_file))
            state.add_pending(pending)
            out = gw.vty_dir / f"{daemon}.out"
            state.add_file(out)
            with out.open("ab") as log:
                proc = subprocess.Popen(netns.exec_argv(gw.namespace, argv),
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            started.append((gw, pending, proc))
            # FRR names its scratch folder after its PID before it forks: this one
            state.add_dir(FRR_TMP / f"{daemon}.{proc.pid}")
    finally:
        for _, _, proc in started:  # the forking parent returns once the daemon is up
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    records = []
    for gw, pending, proc in started:
        if proc.returncode != 0:
            text = (gw.vty_dir / f"{daemon}.out").read_text(errors="replace").strip()
            raise LabError(f"{gw.name}: {daemon} failed to start ({proc.returncode}): "
                           f"{text.splitlines()[-1] if text else 'no output'}")
        record = procs.adopt(gw.name, daemon, gw.vty_dir / f"{daemon}.pid",
                             timeout=max(deadline - time.monotonic(), 1.0))
        state.started(pending, record)
        records.append(record)
    return records


def wait_zserv(gw: LocalGateway, record: procs.ProcessRecord, deadline: float) -> None:
    wait_for((gw.vty_dir / ZSERV).exists, deadline, f"{gw.name}: zebra's {ZSERV}",
             lambda: procs.is_running(record))


def find_pending(pending: PendingProcess) -> procs.ProcessRecord | None:
    """The process a pending entry stands for, if it runs: by its PID file, else (charon)
    by binary + working directory + namespace. Nothing else is ever matched. An entry without
    a namespace (the emulator supervisor) is matched by PID file, binary and directory."""
    if not pending.namespace:
        return _find_outside(pending)
    ns = netns.inode(pending.namespace)
    if ns is None:
        return None
    candidates: list[int] = []
    if pending.pid_file:
        try:
            candidates = [int(Path(pending.pid_file).read_text().strip())]
        except (OSError, ValueError):
            candidates = []
    else:
        candidates = netns.pids_in(pending.namespace)
    for pid in candidates:
        if (netns.netns_of(pid) == ns and procs.exe_of(pid) == pending.exe
                and (pending.pid_file or procs.cwd_of(pid) == pending.cwd)):
            return procs.record_of(pending.gateway, pending.daemon, pid)
    return None


def _find_outside(pending: PendingProcess) -> procs.ProcessRecord | None:
    try:
        pid = int(Path(pending.pid_file or "").read_text().strip())
    except (OSError, ValueError):
        return None
    if procs.exe_of(pid) == pending.exe and procs.cwd_of(pid) == pending.cwd:
        return procs.record_of(pending.gateway, pending.daemon, pid)
    return None
