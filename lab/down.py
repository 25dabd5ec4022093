"""`dcvpn lab down`: undo everything the state file records, in reverse, idempotently.

Needs nothing but the lab directory: processes are stopped by PID + start time (a pending
daemon is found by its PID file, or for charon by binary, namespace and working directory),
then the namespaces go (their veth pairs and bridge with them), then the recorded files and
directories, the state file, and the lab directory and its parents if `up` created them.
A process in a lab namespace that the lab did not start is never signalled: it is reported.
"""

import contextlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab import daemons, netns, procs
from lab.state import LabState, locked
from tasks.validate_strongswan import namespace

CHARON_GRACE = 1.0  # seconds from SIGTERM to SIGKILL


@dataclass(frozen=True)
class DownResult:
    lab_dir: Path
    found: bool
    fabric: str | None
    stopped: tuple[procs.ProcessRecord, ...]
    namespaces: tuple[str, ...]
    removed: int  # files and directories removed
    leftovers: tuple[str, ...]  # what could not be removed, and why


def _remove_paths(state: LabState) -> tuple[int, list[str]]:
    removed, problems = 0, []
    for path in reversed(state.files):
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")
    for path in sorted(state.dirs, key=lambda p: len(p.parts), reverse=True):
        if not path.exists():
            continue
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():
            problems.append(f"{path}: could not be removed")
        else:
            removed += 1
    return removed, problems


def tear_down(lab_dir: Path) -> DownResult:
    state = LabState.load(lab_dir)
    if state is None:
        return DownResult(lab_dir, False, None, (), (), 0, ())
    with locked(lab_dir):
        state = LabState.load(lab_dir) or state
        records = state.processes
        records += [r for r in (daemons.find_pending(p) for p in state.pending) if r]
        # charon can spin in its shutdown while its peers shut down too; nothing it would
        # still do matters once the namespace goes, so it gets a short grace period
        charons = [r for r in records if r.daemon == daemons.CHARON_NAME]
        stopped = procs.stop_all(charons, timeout=CHARON_GRACE)
        stopped += procs.stop_all([r for r in records if r not in charons])
        leftovers: list[str] = []
        for record in records:
            if procs.is_running(record):
                leftovers.append(f"{record.gateway} {record.daemon} (pid {record.pid}) "
                                 "did not stop")
        deleted = []
        for ns in state.namespaces:
            strangers = netns.pids_in(ns) if ns in netns.namespaces() else []
            if strangers:
                leftovers.append(f"namespace {ns} still has processes the lab did not start: "
                                 f"pids {', '.join(map(str, strangers))} (not signalled)")
            if netns.delete(ns):
                deleted.append(ns)
        removed, problems = _remove_paths(state)
        leftovers += problems
        parents = state.parents
        state.remove()
        removed += 1
        if state.created_dir:
            shutil.rmtree(lab_dir, ignore_errors=True)
    # made by up for this lab; kept while anything else is in them
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            parent.rmdir()
    return DownResult(lab_dir, True, state.fabric, tuple(stopped), tuple(deleted), removed,
                      tuple(leftovers))


def remove_gateways(state: LabState, names: Sequence[str]) -> list[str]:
    """Undo a failed `up --add`: stop the processes of these gateways, delete their
    namespaces and folders, and drop them from the state file (the caller holds the lock).
    What could not be removed is returned and stays recorded for `down`."""
    chosen = set(names)
    records = [r for r in state.processes if r.gateway in chosen]
    records += [r for r in (daemons.find_pending(p) for p in state.pending
                            if p.gateway in chosen) if r]
    charons = [r for r in records if r.daemon == daemons.CHARON_NAME]
    procs.stop_all(charons, timeout=CHARON_GRACE)
    procs.stop_all([r for r in records if r not in charons])
    problems = [f"{r.gateway} {r.daemon} (pid {r.pid}) did not stop" for r in records
                if procs.is_running(r)]
    for name in names:
        ns = namespace(name)
        if ns in state.namespaces and not problems:
            netns.delete(ns)
        folder = state.lab_dir / name
        if folder in state.dirs:
            shutil.rmtree(folder, ignore_errors=True)
            if folder.exists():
                problems.append(f"{folder}: could not be removed")
    if not problems:
        state.forget_gateways(names)
    return problems
