"""The deploy flow: diff every target, then wave by wave commit with a confirm timer, gate on
health across both ends of every tunnel the wave touches, and confirm or roll back the wave.

    diff (all targets, nothing changed)  -- any failure: stop, nothing changed, exit 2/3
      | dry run: stop here; no change anywhere: "no changes", exit 0
    plan waves (pipelines.waves) over the changed gateways
    per wave:
      commit (confirmed, --confirm-timeout) on every gateway of the wave, in parallel
        a device fails -> roll back the wave's commits, exit 3
      health gate (tasks.health.wait_healthy, up to --settle seconds)
        a wave gateway stops answering -> roll back the others; its own timer rolls it back;
                                          exit 3
        a check fails -> roll back every gateway of the wave (with --rollback-all also the
                         earlier, confirmed waves), stop, exit 1 naming the failed checks
      confirm every gateway of the wave (--no-auto-confirm: leave them pending, go on, and
      record them for `dcvpn confirm` / `dcvpn rollback`), while the next wave commits: the
      wave passed its gate, its confirm needs nothing of the next wave
        a timer already ran out on one -> roll back the others of the wave and the next
                                          wave's fresh commits, exit 1

Earlier confirmed waves stay as they are when a later wave fails (they passed their own gate;
undoing them is --rollback-all), so a failed deploy leaves the fabric as it was before the
failed wave. A tunnel whose other end changes in a later wave is checked in that wave.
"""

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from nornir.core.task import Result

from drivers.errors import ConnectError, DriverError, NoPendingCommitError
from drivers.nornir_connection import CONNECTION
from inventory.topology import CompiledFabric
from pipelines.deploy_report import (
    TOKENS,
    DeviceRecord,
    Outcome,
    RunRecord,
    WaveRecord,
    diff_summary,
    iso,
)
from pipelines.deploy_targets import Fleet, readable
from pipelines.exit_codes import Exit
from pipelines.waves import Member, Wave, plan_waves
from tasks.deploy import (
    HELD,
    commit_device,
    confirm_device,
    diff_device,
    discard_held,
    rollback_device,
)
from tasks.health import (
    CheckStatus,
    GatePlan,
    GateResult,
    HealthCheck,
    Round,
    emulated_peer,
    gate_plan,
    read_state,
    summary_groups,
    wait_healthy,
)
from tasks.health_index import WaveIndex
from tasks.health_reader import StateReader
from tasks.validate_expect import GatewayExpect
from tasks.validate_observed import DeviceReader, ReadError

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Healthy:
    """A wave that passed its gate, its confirm still to run (beside the next wave's commit)."""

    wave: Wave
    record: WaveRecord
    committed: tuple[str, ...]
    total: int


@dataclass(frozen=True, slots=True)
class DeployOptions:
    confirm_timeout: int = 300
    canary: str | None = None
    dry_run: bool = False
    auto_confirm: bool = True
    workers: int = 4
    settle: float = 60.0
    interval: float = 2.0
    rollback_all: bool = False
    secrets_dir: str | None = None
    first: tuple[str, ...] = ()
    pki_dir: str | None = None  # certificates go with the candidate (tasks.pki.deploy_material)


def members(compiled: CompiledFabric, gateways: Collection[str]) -> list[Member]:
    hubs = set(compiled.fabric.fabric.hubs)
    return [Member(gw.name, site.name, site.id, site.region or "", site.name in hubs,
                   site.gateways.index(gw))
            for site, gw in compiled.gateways() if gw.name in gateways]


def prefix_counts(compiled: CompiledFabric) -> dict[str, int]:
    return {s.name: len(s.prefixes) for s in compiled.fabric.sites}


def error_text(result: Result) -> str:
    exc = result.exception
    if exc is None:
        return str(result.result)
    return str(exc) or type(exc).__name__


def exit_for(exc: BaseException | None) -> Exit:
    """Device and transport trouble is 3; a task refusing its input (a missing secret, an
    unrenderable gateway) is bad input, 2."""
    if exc is None or isinstance(exc, DriverError | OSError):
        return Exit.DEVICE
    return Exit.BAD_INPUT


def health_dict(gate: GateResult) -> dict[str, Any]:
    return {"healthy": gate.healthy, "attempts": gate.attempts,
            "seconds": round(gate.seconds, 3), "counts": gate.counts(),
            "failed": [c.name for c in gate.failed],
            "unreachable": dict(gate.unreachable),
            "checks": [c.as_dict() for c in gate.checks
                       if c.status in (CheckStatus.PASS, CheckStatus.FAIL)],
            "not_evaluated": summary_groups(gate.checks, gate.bulk)}


class Deployer:
    """One run of the flow above, recording everything in `run` as it goes."""

    def __init__(self, fleet: Fleet, run: RunRecord, options: DeployOptions,
                 expected: Mapping[str, GatewayExpect], say: Say, live: Say) -> None:
        self.fleet = fleet
        self.run = run
        self.options = options
        self.expected = expected
        self.say = say
        self.live = live
        self.prefixes = prefix_counts(fleet.compiled)
        self._index: WaveIndex | None = None  # the waves' route and ping checks (deploy_waves)
        self._held_lines = threading.local()  # lines of a confirm beside a commit (_say)
        # gateway -> (the diff's view, its summary): the commit of a held candidate answers
        # the very same view, whose summary (a hub's diff has 10^4 lines) is not made again
        self._summaries: dict[str, tuple[object, dict[str, Any] | None]] = {}

    # --- helpers --------------------------------------------------------------------------

    def _say(self, line: str) -> None:
        """say(), or kept on the thread that confirms beside a commit: its lines are said
        once the commit has run, not mixed into the commit's."""
        held: list[str] | None = getattr(self._held_lines, "lines", None)
        if held is None:
            self.say(line)
        else:
            held.append(line)

    def _confirm_beside(self, healthy: Healthy) -> tuple[Exit, list[str]]:
        lines: list[str] = []
        self._held_lines.lines = lines
        try:
            return self._confirm_wave(healthy), lines
        finally:
            del self._held_lines.lines

    def _summary(self, gateway: str, view: Any, changed: bool) -> dict[str, Any] | None:
        known = self._summaries.get(gateway)
        if known is not None and known[0] is view and (known[1] or {}).get("changed") == changed:
            return known[1]
        summary = diff_summary(view, changed)
        self._summaries[gateway] = (view, summary)
        return summary

    def _results(self, names: Collection[str], task: Callable[..., Result],
                 **kwargs: Any) -> dict[str, Result]:
        wanted = set(names)
        if not wanted:
            return {}
        nr = self.fleet.nr.filter(filter_func=lambda h: h.name in wanted)
        results = nr.run(task=task, on_failed=True, **kwargs)
        return {name: results[name][0] for name in sorted(wanted)}

    def _device(self, gateway: str) -> DeviceRecord:
        return self.run.devices[gateway]

    def _tokens(self, gateway: str) -> dict[str, str]:
        """What the driver needs to confirm from another session (a persist-id, ...)."""
        host = self.fleet.nr.inventory.hosts[gateway]
        if CONNECTION not in host.connections:
            return {}
        driver = host.connections[CONNECTION].connection
        found = {key: getattr(driver, key, None) for key in TOKENS}
        return {k: v for k, v in found.items() if isinstance(v, str) and v}

    def _drop_connection(self, gateway: str) -> None:
        """Forget a broken session so that the next task opens a fresh one."""
        host = self.fleet.nr.inventory.hosts[gateway]
        if CONNECTION in host.connections:
            with contextlib.suppress(Exception):
                host.close_connection(CONNECTION)
            host.connections.pop(CONNECTION, None)

    # --- diff -----------------------------------------------------------------------------

    def diff(self, targets: Sequence[str]) -> tuple[list[str], Exit | None]:
        """Diff every target (nothing changes). (changed gateways, exit code on failure)."""
        self.say(f"diffing {len(targets)} gateway(s)")
        began = time.monotonic()
        # a changed candidate stays loaded and locked for its commit (release_held)
        results = self._results(targets, diff_device, secrets_dir=self.options.secrets_dir,
                                pki_dir=self.options.pki_dir, hold=not self.options.dry_run,
                                unified=False)  # the report shows the native diff
        self.run.timings["diff"] = time.monotonic() - began
        changed: list[str] = []
        worst: Exit | None = None
        for name in targets:
            record, result = self._device(name), results[name]
            if result.failed:
                record.outcome = Outcome.FAILED
                record.errors.append(error_text(result))
                code = exit_for(result.exception)
                worst = code if worst is None else max(worst, code)
                continue
            is_changed = bool(result.result["changed"])
            record.diff = self._summary(name, result.result["diff"], is_changed)
            record.outcome = Outcome.WOULD_CHANGE if is_changed else Outcome.UNCHANGED
            if is_changed:
                changed.append(name)
        return changed, worst

    def release_held(self) -> None:
        """Discard the candidates the diff left loaded that no commit took (a run that
        stopped before their wave); the devices stay as they are."""
        hosts = self.fleet.nr.inventory.hosts
        held = [name for name, host in hosts.items() if HELD in host.data]
        for name, result in self._results(held, discard_held).items():
            if result.failed:
                self._device(name).errors.append(f"discard the loaded candidate: "
                                                 f"{error_text(result)}")

    # --- waves ----------------------------------------------------------------------------

    def plan(self, changed: Collection[str]) -> tuple[Wave, ...]:
        waves = plan_waves(members(self.fleet.compiled, changed), self.options.workers,
                           self.options.canary, self.options.first)
        for wave in waves:
            self.run.waves.append(WaveRecord(wave.number, str(wave.kind), wave.region,
                                             wave.gateways))
            for name in wave.gateways:
                self._device(name).wave = wave.number
                self._device(name).outcome = Outcome.NOT_RUN
        return waves

    def deploy_waves(self, waves: Sequence[Wave]) -> Exit:
        began = time.monotonic()
        self._index = WaveIndex(self.expected, {g: w.number for w in waves for g in w.gateways})
        try:
            healthy: Healthy | None = None
            for index, wave in enumerate(waves):
                later = {g: w.number for w in waves[index + 1:] for g in w.gateways}
                code, healthy = self._wave(wave, self.run.waves[index], len(waves), later,
                                           healthy)
                if code is not Exit.OK:
                    return code
            return self._confirm_wave(healthy) if healthy is not None else Exit.OK
        finally:
            self.run.timings["waves"] = time.monotonic() - began

    def _commit(self, wave: Wave, earlier: Healthy | None = None
                ) -> tuple[tuple[list[str], dict[str, str], dict[str, str]], Exit]:
        """((committed, failed -> error, lost -> error), earlier's confirm) of one wave's
        commits, the healthy wave before confirmed meanwhile (Exit.OK without one)."""
        started = time.time()
        confirmed = Exit.OK
        if earlier is None:
            results = self._commit_results(wave)
        else:
            with ThreadPoolExecutor(1, thread_name_prefix="dcvpn-confirm") as pool:
                confirming = pool.submit(self._confirm_beside, earlier)
                try:
                    results = self._commit_results(wave)
                finally:
                    confirmed, lines = confirming.result()
                    for line in lines:
                        self.say(line)
        committed: list[str] = []
        failed: dict[str, str] = {}
        lost: dict[str, str] = {}
        for name in wave.gateways:
            record, result = self._device(name), results[name]
            if result.failed:
                target = lost if isinstance(result.exception, ConnectError) else failed
                target[name] = error_text(result)
                continue
            record.diff = self._summary(name, result.result["diff"], bool(result.changed))
            if not result.result["committed"]:
                record.outcome = Outcome.UNCHANGED
                continue
            armed = result.result["armed_seconds"]
            record.outcome = Outcome.COMMITTED
            record.armed_seconds = armed
            record.committed_at = started
            record.deadline = started + armed if armed is not None else None
            record.tokens = self._tokens(name)
            committed.append(name)
            self.say(f"  {name}: committed, confirm timer {armed}s")
        return (committed, failed, lost), confirmed

    def _commit_results(self, wave: Wave) -> dict[str, Result]:
        return self._results(wave.gateways, commit_device,
                             confirm_timeout=self.options.confirm_timeout,
                             secrets_dir=self.options.secrets_dir, pki_dir=self.options.pki_dir)

    def _read_round(self, plan: GatePlan) -> Round:
        readers: dict[str, DeviceReader | None] = {}
        through_driver = []
        for name in plan.to_read:  # the others have nothing left to check (GatePlan.to_read)
            local = self.fleet.local_reader(name)
            if local is not None:
                readers[name] = local
            elif readable(self.fleet, name):
                through_driver.append(name)
            else:
                readers[name] = None
        unreachable: dict[str, str] = {}
        for name, result in self._results(through_driver, read_state).items():
            tunnels = plan.expected[name].tunnels
            if result.failed:
                text = error_text(result)
                readers[name] = StateReader(name, ReadError(text), tunnels)
                if isinstance(result.exception, ConnectError):
                    unreachable[name] = text
                    self._drop_connection(name)
            else:
                readers[name] = StateReader(name, result.result, tunnels)
        return Round(readers, unreachable)

    def _gate(self, wave: Wave, total: int, later: Mapping[str, int]) -> GateResult:
        plan = gate_plan(self.expected, wave.gateways, later, self.fleet.emulated, self._index)

        def progress(attempt: int, checks: list[HealthCheck]) -> None:
            failing = [c.name for c in checks if c.failed]
            state = f"{len(failing)} failing, e.g. {failing[0]}" if failing else "all passing"
            self.live(f"wave {wave.number}/{total}: health round {attempt}: {state}")

        return wait_healthy(plan, lambda: self._read_round(plan), self.prefixes,
                            self.options.settle, self.options.interval, progress)

    def _wave(self, wave: Wave, record: WaveRecord, total: int, later: Mapping[str, int],
              earlier: Healthy | None = None) -> tuple[Exit, Healthy | None]:
        """Commit, gate; the confirm is left to the caller (the Healthy answered), which runs
        it beside the next wave's commit. `earlier`: the wave before, to confirm now."""
        where = (f"canary {wave.gateways[0]}" if wave.kind == "canary" else "first" if
                 wave.kind == "first" else f"region {wave.region or '(none)'}")
        self.say(f"wave {wave.number}/{total} ({where}): committing "
                 f"{', '.join(wave.gateways)}")
        began = time.monotonic()
        (committed, failed, lost), confirmed = self._commit(wave, earlier)
        record.timings["commit"] = time.monotonic() - began
        for name, text in failed.items():
            self._device(name).outcome = Outcome.FAILED
            self._device(name).errors.append(text)
        for name, text in lost.items():
            self._lost(name, text)
        if confirmed is not Exit.OK and earlier is not None:  # the wave before failed to
            if committed:                                     # confirm: stop here
                self.say(f"wave {wave.number}/{total}: wave {earlier.wave.number} could not "
                         "be confirmed: this wave's commits go back")
            code = max(confirmed, self._rollback(self._pending()))
            record.outcome = "rolled-back" if committed else "failed" if failed or lost \
                else "not-run"
            cause = (self.run.errors.pop() if self.run.errors else
                     f"wave {earlier.wave.number} could not be confirmed")
            self._fail(f"{cause}; wave {wave.number}, committed meanwhile, was rolled back too")
            return code, None
        if failed or lost:
            self._rollback(self._pending())
            self._undo_earlier()
            record.outcome = "failed"
            self._fail(f"wave {wave.number}: commit failed on "
                       f"{', '.join(sorted({*failed, *lost}))}; the wave was rolled back, "
                       f"{self._earlier()}")
            return Exit.DEVICE, None
        if not committed:
            record.outcome = "unchanged"
            self.say(f"wave {wave.number}/{total}: nothing left to change")
            return Exit.OK, None
        began = time.monotonic()
        gate = self._gate(wave, total, later)
        record.timings["health"] = time.monotonic() - began
        record.health = health_dict(gate)
        if gate.unreachable:
            for name, text in gate.unreachable.items():
                self._lost(name, text)
            self._rollback([n for n in self._pending() if n not in gate.unreachable])
            self._undo_earlier()
            record.outcome = "rolled-back"
            self._fail(f"wave {wave.number}: lost {', '.join(sorted(gate.unreachable))} after "
                       "the commit (its confirm timer rolls it back); the others were rolled "
                       f"back, {self._earlier()}")
            return Exit.DEVICE, None
        if not gate.healthy:
            names = [c.name for c in gate.failed]
            for check in gate.failed:
                self.say(f"  FAIL {check.name}: {check.result.message}")
            code = max(self._rollback(self._pending()), self._undo_earlier())
            record.outcome = "rolled-back"
            self._fail(f"wave {wave.number}: {len(names)} health check(s) failed after "
                       f"{gate.seconds:.0f}s: {', '.join(names)}; the wave was rolled back, "
                       f"{self._earlier()}")
            return max(code, Exit.FAILED), None
        counts = gate.counts()
        self.say(f"wave {wave.number}/{total}: healthy ({counts['pass']} passed, "
                 f"{counts['skipped']} skipped, {counts['not-applicable']} not applicable)")
        unchecked = [c.name for c in gate.checks if emulated_peer(c)]
        if unchecked:
            self.say(f"  emulated peer, not checked ({len(unchecked)}): "
                     f"{', '.join(unchecked)}")
        if not self.options.auto_confirm:
            record.outcome = "committed"
            return Exit.OK, None
        return Exit.OK, Healthy(wave, record, tuple(committed), total)

    def _confirm_wave(self, healthy: Healthy) -> Exit:
        wave, record, committed, total = (healthy.wave, healthy.record, healthy.committed,
                                          healthy.total)
        began = time.monotonic()
        results = self._results(committed, confirm_device)
        record.timings["confirm"] = time.monotonic() - began
        trouble: dict[str, str] = {}
        expired = []
        for name in committed:
            device, res = self._device(name), results[name]
            if not res.failed:
                device.outcome = Outcome.CONFIRMED
                continue
            text = error_text(res)
            trouble[name] = text
            device.errors.append(text)
            if isinstance(res.exception, NoPendingCommitError):
                device.outcome = Outcome.TIMER_EXPIRED
                expired.append(name)
            elif isinstance(res.exception, ConnectError):
                self._lost(name, text, record_error=False)
            else:
                device.outcome = Outcome.FAILED
        if not trouble:
            record.outcome = "confirmed"
            self._say(f"wave {wave.number}/{total}: confirmed {', '.join(committed)}")
            return Exit.OK
        code = self._rollback(self._confirmed_in(committed), confirmed=True)
        record.outcome = "rolled-back"
        self._fail(f"wave {wave.number}: could not confirm {', '.join(sorted(trouble))} "
                   f"({'; '.join(trouble.values())}); the rest of the wave was rolled back")
        return max(code, Exit.FAILED if len(expired) == len(trouble) else Exit.DEVICE)

    # --- rollback -------------------------------------------------------------------------

    def _pending(self) -> list[str]:
        return sorted(n for n, d in self.run.devices.items() if d.outcome is Outcome.COMMITTED)

    def _confirmed(self) -> list[str]:
        return sorted(n for n, d in self.run.devices.items() if d.outcome is Outcome.CONFIRMED)

    def _confirmed_in(self, names: Collection[str]) -> list[str]:
        return [n for n in self._confirmed() if n in names]

    def _undo_earlier(self) -> Exit:
        """--rollback-all: the earlier, confirmed waves go back too."""
        if not self.options.rollback_all:
            return Exit.OK
        code = self._rollback(self._confirmed(), confirmed=True)
        for wave in self.run.waves:
            if wave.outcome == "confirmed":
                wave.outcome = "rolled-back"
        return code

    def _earlier(self) -> str:
        if self.options.rollback_all:
            return "earlier waves were rolled back too (--rollback-all)"
        return "earlier confirmed waves were left as they are"

    def _lost(self, name: str, text: str, record_error: bool = True) -> None:
        device = self._device(name)
        device.outcome = Outcome.UNREACHABLE
        if record_error:
            device.errors.append(text)
        if device.deadline is not None:
            device.errors.append(f"unreachable after the commit: its confirm timer "
                                 f"({device.armed_seconds}s) rolls it back by "
                                 f"{iso(device.deadline)}")

    def _rollback(self, names: Collection[str], confirmed: bool = False) -> Exit:
        """Roll back these gateways; OK when every one is back where it was."""
        if not names:
            return Exit.OK
        self._say(f"rolling back {', '.join(sorted(names))}")
        code = Exit.OK
        for name, result in self._results(names, rollback_device).items():
            device = self._device(name)
            if not result.failed:
                device.outcome = Outcome.ROLLED_BACK
                continue
            text = error_text(result)
            device.errors.append(f"rollback: {text}")
            if isinstance(result.exception, NoPendingCommitError) and not confirmed:
                device.outcome = Outcome.TIMER_EXPIRED  # the device's timer was first
            elif isinstance(result.exception, ConnectError) and not confirmed:
                self._lost(name, text, record_error=False)
                code = Exit.DEVICE
            else:
                device.outcome = Outcome.FAILED
                code = Exit.DEVICE
        return code

    def _fail(self, message: str) -> None:
        """Record the reason the run stops (the command prints it once, at the end)."""
        self.run.errors.append(message)

