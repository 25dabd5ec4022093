"""The files between `dcvpn lab up` and the lab's emulator supervisor, in
`<lab dir>/emulators/`: spec.json (what to run, with the lab login: 0600), the supervisor's
PID file and log, and ready.json (each gateway's port and host key line, written once all
listen). JSON only: importing this loads no emulator.
"""

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.emulators.errors import EmulatorError

FOLDER = "emulators"
SPEC_FILE = "spec.json"
READY_FILE = "ready.json"
PID_FILE = "supervisor.pid"
LOG_FILE = "supervisor.log"


@dataclass(frozen=True)
class LabEmulator:
    """One emulated gateway as the lab runs it."""

    gateway: str
    platform: str
    transport: str
    os_version: str | None = None


@dataclass(frozen=True)
class Listening:
    """Where a started emulator answers, and the known_hosts line that pins its host key."""

    gateway: str
    host: str
    port: int
    known_hosts: str


def folder_of(lab_dir: Path) -> Path:
    return lab_dir / FOLDER


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """JSON created 0600 and replaced atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


def spec_files(lab_dir: Path) -> tuple[Path, ...]:
    """Every file the two sides may write in the folder (for the lab's state file)."""
    folder = folder_of(lab_dir)
    names = (SPEC_FILE, READY_FILE, PID_FILE, LOG_FILE)
    return tuple(folder / n for n in names) + tuple(folder / f".{n}.tmp"
                                                     for n in (SPEC_FILE, READY_FILE))


def write_spec(lab_dir: Path, fabric: str, emulators: Sequence[LabEmulator], username: str,
               password: str, time_scale: float) -> Path:
    path = folder_of(lab_dir) / SPEC_FILE
    _write_private(path, {
        "fabric": fabric, "username": username, "password": password,
        "time_scale": time_scale,
        "emulators": [{"gateway": e.gateway, "platform": e.platform,
                       "transport": e.transport, "os_version": e.os_version}
                      for e in emulators]})
    return path


def read_spec_data(lab_dir: Path) -> dict[str, Any]:
    path = folder_of(lab_dir) / SPEC_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EmulatorError(f"{path}: unreadable emulator list ({exc})") from None
    if not isinstance(data, dict):
        raise EmulatorError(f"{path}: not an emulator list")
    return data


def write_ready(lab_dir: Path, listening: Sequence[Listening]) -> None:
    _write_private(folder_of(lab_dir) / READY_FILE, {
        "pid": os.getpid(),
        "emulators": {e.gateway: {"host": e.host, "port": e.port,
                                  "known_hosts": e.known_hosts} for e in listening}})


def read_ready(lab_dir: Path, pid: int) -> dict[str, Listening] | None:
    """What the supervisor with this PID reported once all its emulators listen; None before."""
    path = folder_of(lab_dir) / READY_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EmulatorError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict) or data.get("pid") != pid:
        return None  # written by an earlier supervisor of a lab dir that was reused
    try:
        return {name: Listening(name, str(e["host"]), int(e["port"]), str(e["known_hosts"]))
                for name, e in data["emulators"].items()}
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise EmulatorError(f"{path}: malformed ({exc})") from None
