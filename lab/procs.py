"""Processes the lab starts: recorded by PID and start time, ended only by that record.

The start time (field 22 of /proc/<pid>/stat) guards against a recycled PID: a record whose
process has a different start time is stale and is never signalled.
"""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError


@dataclass(frozen=True)
class ProcessRecord:
    gateway: str
    daemon: str
    pid: int
    start_time: int

    def as_dict(self) -> dict[str, object]:
        return {"gateway": self.gateway, "daemon": self.daemon, "pid": self.pid,
                "start_time": self.start_time}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "ProcessRecord":
        return cls(str(data["gateway"]), str(data["daemon"]), int(str(data["pid"])),
                   int(str(data["start_time"])))


def start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces; fields after the last ')' are fixed
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def is_running(record: ProcessRecord) -> bool:
    if start_time(record.pid) != record.start_time:
        return False
    try:
        state = Path(f"/proc/{record.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def spawn(gateway: str, daemon: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
          log: Path | None = None, cwd: Path | None = None) -> ProcessRecord:
    """Start a long-running daemon in the foreground of its own session and record it."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            list(argv), env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd,
        )
    except OSError as exc:
        raise LabError(f"{gateway}: cannot start {daemon}: {exc}") from exc
    finally:
        if log is not None and not isinstance(out, int):
            out.close()
    started = start_time(proc.pid)
    if started is None:
        raise LabError(f"{gateway}: {daemon} exited at once (see {log})")
    return ProcessRecord(gateway, daemon, proc.pid, started)


def adopt(gateway: str, daemon: str, pid_file: Path, timeout: float = 10.0) -> ProcessRecord:
    """Record a daemon that forked itself and wrote its PID file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
            continue
        started = start_time(pid)
        if started is not None:
            return ProcessRecord(gateway, daemon, pid, started)
        time.sleep(0.05)
    raise LabError(f"{gateway}: {daemon} did not write {pid_file} within {timeout:.0f}s")


def stop(record: ProcessRecord, timeout: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; True if this call ended the process."""
    if not is_running(record):
        return False
    try:
        os.kill(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(record):
            _reap(record.pid)
            return True
        _reap(record.pid)
        time.sleep(0.05)
    if is_running(record):
        os.kill(record.pid, signal.SIGKILL)
        for _ in range(100):
            _reap(record.pid)
            if not is_running(record):
                break
            time.sleep(0.02)
    return True


def signal_running(record: ProcessRecord, signum: int) -> bool:
    """Send `signum` to the recorded process if it still runs (same start time)."""
    if not is_running(record):
        return False
    try:
        os.kill(record.pid, signum)
    except ProcessLookupError:
        return False
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def record_of(gateway: str, daemon: str, pid: int) -> ProcessRecord | None:
    """A record for a running PID (start time read now), None when it is gone."""
    started = start_time(pid)
    return None if started is None else ProcessRecord(gateway, daemon, pid, started)


def exe_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def cwd_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def stop_all(records: Sequence[ProcessRecord], timeout: float = 5.0) -> list[ProcessRecord]:
    """`stop` for many at once: SIGTERM to all, wait, SIGKILL what is left; the ones ended."""
    signalled = []
    for record in records:
        if not is_running(record):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGTERM)
            signalled.append(record)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in signalled:
            _reap(record.pid)
        if not any(is_running(r) for r in signalled):
            return signalled
        time.sleep(0.02)
    for record in signalled:
        if is_running(record):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGKILL)
    for _ in range(100):
        for record in signalled:
            _reap(record.pid)
        if not any(is_running(r) for r in signalled):
            break
        time.sleep(0.02)
    return signalled
