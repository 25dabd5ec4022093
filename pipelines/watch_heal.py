"""How `dcvpn watch` heals the lab: it runs `dcvpn lab heal` as a child process.

Why a process and not a call: only the `lab` command imports lab (DESIGN.md); the lab lock,
the state file and the daemon start stay in one place (lab/heal.py) that a person can also
run by hand; a heal that hangs is killed at its timeout without taking the watcher with it;
and the restarted charon is not the watcher's child (it outlives the watcher, as a daemon
started by `dcvpn lab up` does, and `dcvpn lab down` stops it by the PID it recorded).
"""

import json
import subprocess
import sys
from pathlib import Path

from tasks.watch_rules import Action, ActionKind

STARTUP = 15.0  # on top of the heal's own timeout: the interpreter and dcvpn's imports


def heal_argv(lab_dir: Path, action: Action, timeout: float) -> list[str]:
    what = "--restart" if action.kind is ActionKind.RESTART else "--initiate"
    return [sys.executable, "-m", "pipelines.cli", "lab", "heal", action.gateway,
            "--lab-dir", str(lab_dir), "--format", "json", "--timeout", f"{timeout:g}",
            what, action.target]


def lab_heal(lab_dir: Path, action: Action, timeout: float) -> tuple[bool, str]:
    """(ok, what `dcvpn lab heal` reported)."""
    try:
        done = subprocess.run(heal_argv(lab_dir, action, timeout), capture_output=True,
                              text=True, check=False, timeout=timeout + STARTUP,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, f"dcvpn lab heal did not finish within {timeout + STARTUP:g}s (killed)"
    except OSError as exc:
        return False, f"dcvpn lab heal could not start: {exc}"
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if done.returncode == 0 and data.get("ok"):
        return True, str(data.get("detail", ""))
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        return False, "; ".join(str(e) for e in errors)
    lines = done.stderr.strip().splitlines()
    return False, lines[-1] if lines else f"dcvpn lab heal exited {done.returncode}"
