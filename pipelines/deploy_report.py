"""The deploy's record: the JSON report (always written) and the pending-confirm state file.

Report (`dcvpn-deploy-report.json` by default, schema `dcvpn-deploy-report/2`):

    {"schema", "run_id", "command" (deploy|confirm|rollback), "fabric", "fabric_file",
     "started", "finished" (UTC ISO 8601), "dry_run", "options", "outcome", "exit_code",
     "message", "errors": [...],
     "timings": {"prepare", "diff", "waves"} (seconds; a phase not reached is absent),
     "waves": [{"number", "kind" (canary|region), "region", "gateways", "outcome",
                "timings": {"commit", "health", "confirm"} (seconds, as above),
                "health": {"healthy", "attempts", "seconds", "counts", "failed": [names],
                           "unreachable": {gateway: error},
                           "checks": [{name, kind, gateway, subject, status (pass|fail),
                                       expected, observed, sites, gateways}],
                           "not_evaluated": [{status (skipped|not-applicable), kind,
                                              reason, count, gateways}]} | null}],
     "devices": {"<gateway>": {"site", "platform", "transport", "wave", "outcome",
                               "armed_seconds", "committed_at", "deadline",
                               "diff": {"changed", "added", "removed", "text"} | null,
                               "errors": [...]}}}

Every check a gate evaluated is listed; the ones it did not (deferred to the wave that
changes their other end, not applicable to a reader, no reader) are counted in "counts" and
grouped by status, kind and reason in "not_evaluated" (schema 1 listed each of them: some 10^5
in a fleet-wide deploy). Written indented, or compact when the waves' health lists more than
INDENTED_CHECKS checks.

Device outcomes: unchanged, would-change (dry run), committed (pending confirmation),
confirmed, rolled-back, timer-expired (the device's confirm timer rolled it back),
unreachable (lost after commit: its own timer rolls it back), failed, not-run.
Diff texts come masked from tasks.deploy; no secret reaches this module.

State file (`.dcvpn/deploy-<fabric>.json`, mode 0600) after `deploy --no-auto-confirm`: what
`dcvpn confirm` / `dcvpn rollback` act on, from a new process: run id, fabric file, lab dir,
and per device its deadline and the tokens its driver needs to confirm or roll back from
another session (TOKENS: a NETCONF persist-id, an IOS-XE checkpoint), handed back to the
driver as DeviceTarget.options.
"""

import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

SCHEMA = "dcvpn-deploy-report/2"
STATE_SCHEMA = "dcvpn-deploy-state/1"
DEFAULT_REPORT = "dcvpn-deploy-report.json"
# driver attributes (after a confirmed commit) that confirm / rollback need in a new process;
# the driver takes each back as DeviceTarget.options[<name>]
TOKENS = ("persist_id", "checkpoint")
STATE_DIR = ".dcvpn"


class Outcome(StrEnum):
    UNCHANGED = "unchanged"
    WOULD_CHANGE = "would-change"
    COMMITTED = "committed"
    CONFIRMED = "confirmed"
    ROLLED_BACK = "rolled-back"
    TIMER_EXPIRED = "timer-expired"
    UNREACHABLE = "unreachable"
    FAILED = "failed"
    NOT_RUN = "not-run"


class StateFileError(Exception):
    """The pending-deploy state file is missing or unreadable."""


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(now: float | None = None) -> str:
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return f"{stamp:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def diff_summary(view: Mapping[str, str] | None, changed: bool) -> dict[str, Any] | None:
    """Line counts and the (already masked) diff text: the device's own diff if it has one."""
    if view is None:
        return None
    text = view.get("native") or view.get("unified") or ""
    lines = text.splitlines()
    added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
    removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
    return {"changed": changed, "added": added, "removed": removed, "text": text}


def _rounded(timings: Mapping[str, float]) -> dict[str, float]:
    return {phase: round(seconds, 3) for phase, seconds in timings.items()}


@dataclass
class DeviceRecord:
    gateway: str
    site: str
    platform: str
    transport: str
    wave: int | None = None
    outcome: Outcome = Outcome.NOT_RUN
    armed_seconds: int | None = None
    committed_at: float | None = None
    deadline: float | None = None
    diff: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # state file only, never the report

    def as_dict(self) -> dict[str, Any]:
        return {"site": self.site, "platform": self.platform, "transport": self.transport,
                "wave": self.wave, "outcome": str(self.outcome),
                "armed_seconds": self.armed_seconds, "committed_at": iso(self.committed_at),
                "deadline": iso(self.deadline), "diff": self.diff, "errors": list(self.errors)}


@dataclass
class WaveRecord:
    number: int
    kind: str
    region: str
    gateways: tuple[str, ...]
    outcome: str = "not-run"  # confirmed | committed | rolled-back | failed | not-run
    health: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "kind": self.kind, "region": self.region or None,
                "gateways": list(self.gateways), "outcome": self.outcome,
                "timings": _rounded(self.timings), "health": self.health}


@dataclass
class RunRecord:
    command: str
    fabric: str
    fabric_file: str
    options: dict[str, Any]
    run_id: str = field(default_factory=new_run_id)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    dry_run: bool = False
    outcome: str = "running"
    exit_code: int | None = None
    message: str = ""
    errors: list[str] = field(default_factory=list)
    waves: list[WaveRecord] = field(default_factory=list)
    devices: dict[str, DeviceRecord] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds

    def as_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "run_id": self.run_id, "command": self.command,
                "fabric": self.fabric, "fabric_file": self.fabric_file,
                "started": iso(self.started), "finished": iso(self.finished),
                "dry_run": self.dry_run, "options": self.options, "outcome": self.outcome,
                "exit_code": self.exit_code, "message": self.message,
                "errors": list(self.errors), "timings": _rounded(self.timings),
                "waves": [w.as_dict() for w in self.waves],
                "devices": {n: d.as_dict() for n, d in sorted(self.devices.items())}}


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Create with `mode` (before the umask) and replace atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


INDENTED_CHECKS = 5000  # larger reports are written compact (module doc)


def report_json(run: RunRecord) -> str:
    """The report as JSON text: indented, or compact past INDENTED_CHECKS health checks
    (indenting needs the pure-Python encoder, several times slower and larger)."""
    checks = sum(len((w.health or {}).get("checks", ())) for w in run.waves)
    return json.dumps(run.as_dict(), indent=2 if checks <= INDENTED_CHECKS else None,
                      sort_keys=True)


def write_report(run: RunRecord, path: Path) -> None:
    _write(path, report_json(run) + "\n")


# --- pending-confirm state ------------------------------------------------------------------

def default_state_file(fabric: str, base: Path | None = None) -> Path:
    return (base or Path.cwd()) / STATE_DIR / f"deploy-{fabric}.json"


@dataclass(frozen=True, slots=True)
class PendingDevice:
    gateway: str
    platform: str
    transport: str
    armed_seconds: int | None
    committed_at: float | None
    deadline: float | None
    tokens: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PendingDeploy:
    run_id: str
    fabric: str
    fabric_file: str
    lab_dir: str | None
    created: float
    devices: tuple[PendingDevice, ...]

    @property
    def latest_deadline(self) -> float | None:
        found = [d.deadline for d in self.devices if d.deadline is not None]
        return max(found) if found else None

    def expired(self, now: float) -> bool:
        """Every device's timer has run out (the devices rolled back on their own)."""
        latest = self.latest_deadline
        return latest is not None and now >= latest


def pending_from(run: RunRecord, lab_dir: str | None) -> PendingDeploy:
    devices = tuple(PendingDevice(d.gateway, d.platform, d.transport, d.armed_seconds,
                                  d.committed_at, d.deadline, dict(d.tokens))
                    for d in sorted(run.devices.values(), key=lambda d: d.gateway)
                    if d.outcome is Outcome.COMMITTED)
    return PendingDeploy(run.run_id, run.fabric, run.fabric_file, lab_dir, time.time(),
                         devices)


def write_state(state: PendingDeploy, path: Path) -> None:
    data = {"schema": STATE_SCHEMA, "run_id": state.run_id, "fabric": state.fabric,
            "fabric_file": state.fabric_file, "lab_dir": state.lab_dir,
            "created": state.created,
            "devices": {d.gateway: {"platform": d.platform, "transport": d.transport,
                                    "armed_seconds": d.armed_seconds,
                                    "committed_at": d.committed_at, "deadline": d.deadline,
                                    "tokens": dict(d.tokens)}
                        for d in state.devices}}
    _write(path, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o600)


def read_state(path: Path) -> PendingDeploy:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != STATE_SCHEMA:
            raise ValueError(f"schema is {data.get('schema')!r}, not {STATE_SCHEMA}")
        devices = tuple(
            PendingDevice(name, str(d["platform"]), str(d["transport"]), d.get("armed_seconds"),
                          d.get("committed_at"), d.get("deadline"),
                          {str(k): str(v) for k, v in (d.get("tokens") or {}).items()})
            for name, d in sorted(data["devices"].items()))
        return PendingDeploy(str(data["run_id"]), str(data["fabric"]),
                             str(data["fabric_file"]), data.get("lab_dir"),
                             float(data["created"]), devices)
    except FileNotFoundError:
        raise StateFileError(f"{path} does not exist: no deploy is waiting for confirmation "
                             "(deploy with --no-auto-confirm first)") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateFileError(f"{path}: unreadable deploy state ({exc})") from None


def remove_state(path: Path) -> None:
    path.unlink(missing_ok=True)
