"""The lab's state file: every namespace, process and path, recorded BEFORE it is created.

`dcvpn lab down` works from this file alone (the fabric file may have changed or be gone),
so whatever `up` did before a crash can be undone. A daemon that forks itself is first
recorded as *pending* (its binary, namespace, working directory and PID file); once its PID
is known it becomes a ProcessRecord (PID + start time). The file is replaced atomically on
every change.
"""

import fcntl
import json
import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.procs import ProcessRecord
from tasks.validate_strongswan import NAMESPACE_PREFIX

STATE_FILE = "state.json"
VERSION = 1


class LabBusyError(LabError):
    """Another dcvpn lab command holds the lab directory."""


@dataclass(frozen=True)
class PendingProcess:
    gateway: str
    daemon: str
    namespace: str
    exe: str  # absolute path of the binary
    cwd: str  # its working directory (how a PID-less charon is recognised)
    pid_file: str | None


class LabState:
    """A lab's record; every mutator saves the file before returning."""

    def __init__(self, lab_dir: Path, data: dict[str, Any]) -> None:
        self.lab_dir = lab_dir
        self.data = data

    @property
    def path(self) -> Path:
        return self.lab_dir / STATE_FILE

    @classmethod
    def create(cls, lab_dir: Path, fabric: str, fabric_file: str, created_dir: bool,
               gateways: list[str], notes: list[str]) -> "LabState":
        state = cls(lab_dir, {
            "version": VERSION, "fabric": fabric, "fabric_file": fabric_file,
            "created_dir": created_dir, "gateways": gateways, "notes": notes,
            "phase": "starting", "namespaces": [], "dirs": [], "files": [],
            "parents": [], "processes": [], "pending": []})
        state.save()
        return state

    @classmethod
    def load(cls, lab_dir: Path) -> "LabState | None":
        path = lab_dir / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LabError(f"{path}: unreadable lab state: {exc}") from exc
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise LabError(f"{path}: not a dcvpn lab state file (version {VERSION})")
        return cls(lab_dir, data)

    def save(self) -> None:
        tmp = self.path.with_name(f".{STATE_FILE}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    # --- read ------------------------------------------------------------------------------

    @property
    def fabric(self) -> str:
        return str(self.data["fabric"])

    @property
    def fabric_file(self) -> str:
        return str(self.data.get("fabric_file", ""))

    @property
    def phase(self) -> str:
        return str(self.data.get("phase", ""))

    @property
    def created_dir(self) -> bool:
        return bool(self.data.get("created_dir"))

    @property
    def gateways(self) -> list[str]:
        return [str(g) for g in self.data.get("gateways", [])]

    @property
    def notes(self) -> list[str]:
        return [str(n) for n in self.data.get("notes", [])]

    @property
    def pki_dir(self) -> Path | None:
        """The PKI directory the lab's certificates come from (never removed by down unless
        it is also in `dirs`, as the throwaway CA is)."""
        value = self.data.get("pki_dir")
        return Path(value) if value else None

    @property
    def namespaces(self) -> list[str]:
        return [str(n) for n in self.data["namespaces"]]

    @property
    def dirs(self) -> list[Path]:
        return [Path(p) for p in self.data["dirs"]]

    @property
    def files(self) -> list[Path]:
        return [Path(p) for p in self.data["files"]]

    @property
    def parents(self) -> list[Path]:
        """Directories up (or a daemon) created outside the lab dir; removed only if empty."""
        return [Path(p) for p in self.data.get("parents", [])]

    @property
    def processes(self) -> list[ProcessRecord]:
        return [ProcessRecord.from_dict(p) for p in self.data["processes"]]

    @property
    def pending(self) -> list[PendingProcess]:
        return [PendingProcess(**p) for p in self.data["pending"]]

    # --- record (always before creating) -----------------------------------------------------

    def _add(self, key: str, value: object) -> None:
        if value not in self.data[key]:
            self.data[key].append(value)
            self.save()

    def set_phase(self, phase: str) -> None:
        self.data["phase"] = phase
        self.save()

    def set_pki_dir(self, path: Path) -> None:
        self.data["pki_dir"] = str(path)
        self.save()

    def add_namespace(self, name: str) -> None:
        self._add("namespaces", name)

    def add_dir(self, path: Path) -> None:
        self._add("dirs", str(path))

    def add_file(self, path: Path) -> None:
        self._add("files", str(path))

    def add_parent(self, path: Path) -> None:
        self._add("parents", str(path))

    def add_pending(self, pending: PendingProcess) -> None:
        self._add("pending", asdict(pending))

    def add_gateway(self, name: str) -> None:
        """A strongSwan gateway `up --add` starts (recorded before its namespace is made)."""
        self._add("gateways", name)

    def forget_gateways(self, names: Collection[str]) -> None:
        """Drop the gateways, their processes, namespaces and the paths in their folders
        (after lab.down.remove_gateways removed them)."""
        folders = [self.lab_dir / n for n in names]

        def inside(path: str) -> bool:
            return any(Path(path) == f or f in Path(path).parents for f in folders)

        namespaces = {f"{NAMESPACE_PREFIX}{n}" for n in names}
        data = self.data
        data["gateways"] = [g for g in data["gateways"] if g not in names]
        data["processes"] = [p for p in data["processes"] if p["gateway"] not in names]
        data["pending"] = [p for p in data["pending"] if p["gateway"] not in names]
        data["namespaces"] = [n for n in data["namespaces"] if n not in namespaces]
        data["files"] = [f for f in data["files"] if not inside(f)]
        data["dirs"] = [d for d in data["dirs"] if not inside(d)]
        self.save()

    def started(self, pending: PendingProcess, record: ProcessRecord) -> None:
        """The pending process is now known by PID: record it and drop the pending entry."""
        self.data["pending"] = [p for p in self.data["pending"] if p != asdict(pending)]
        self.data["processes"].append(record.as_dict())
        self.save()

    def forget_processes(self, records: Collection[ProcessRecord]) -> None:
        """Drop records of processes that have ended (a daemon restarted by `lab heal`)."""
        gone = [r.as_dict() for r in records]
        self.data["processes"] = [p for p in self.data["processes"] if p not in gone]
        self.save()


@contextmanager
def locked(lab_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the lab directory for one up/down."""
    try:
        fd = os.open(lab_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise LabError(f"{lab_dir}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LabBusyError(f"{lab_dir}: another dcvpn lab command is working on this lab"
                               ) from None
        yield
    finally:
        os.close(fd)
