"""`dcvpn confirm` / `dcvpn rollback`: act on exactly the devices a `deploy --no-auto-confirm`
left pending (its state file), from a new process.

confirm: first ask every device whether its commit is still pending. When one is not (its
timer ran out and it rolled back, or it is unreachable), nothing is confirmed: the others are
rolled back too, so the fabric is not left half-applied, and the error names the devices
(exit 1; 3 when a device could not be reached). Otherwise every device is confirmed.

rollback: roll back every device whose commit is still pending; one whose timer already ran
out is already back and counts as done. A device that is no longer pending before its
deadline (confirmed by someone else?) is not touched and named.

The state file is removed once no device of it is pending any more.
"""

import time
from collections.abc import Callable, Collection
from typing import Any

from nornir.core.task import Result

from drivers.errors import ConnectError, NoPendingCommitError
from pipelines.deploy_flow import error_text
from pipelines.deploy_report import DeviceRecord, Outcome, PendingDeploy, RunRecord, iso
from pipelines.deploy_targets import Fleet
from pipelines.exit_codes import Exit
from tasks.deploy import confirm_device, rollback_device

Say = Callable[[str], None]


class PendingFlow:
    def __init__(self, fleet: Fleet, state: PendingDeploy, run: RunRecord, say: Say) -> None:
        self.fleet = fleet
        self.state = state
        self.run = run
        self.say = say
        self.names = [d.gateway for d in state.devices]
        for device in state.devices:
            site = next((s.name for s, g in fleet.compiled.gateways() if g.name == device.gateway),
                        "")
            run.devices[device.gateway] = DeviceRecord(
                device.gateway, site, device.platform, device.transport,
                outcome=Outcome.COMMITTED, armed_seconds=device.armed_seconds,
                committed_at=device.committed_at, deadline=device.deadline,
                tokens=dict(device.tokens))
            for key, value in device.tokens.items():
                fleet.set_extra(device.gateway, key, value)

    def _results(self, names: Collection[str], task: Callable[..., Result],
                 **kwargs: Any) -> dict[str, Result]:
        wanted = set(names)
        if not wanted:
            return {}
        nr = self.fleet.nr.filter(filter_func=lambda h: h.name in wanted)
        results = nr.run(task=task, on_failed=True, **kwargs)
        return {name: results[name][0] for name in sorted(wanted)}

    def _device(self, name: str) -> DeviceRecord:
        return self.run.devices[name]

    def _expired_text(self, name: str) -> str:
        deadline = self._device(name).deadline
        if deadline is not None and time.time() >= deadline:
            return f"{name}: its confirm timer ran out at {iso(deadline)}"
        return f"{name}: no confirmed commit is pending"

    def still_pending(self) -> tuple[list[str], dict[str, str], dict[str, str]]:
        """(pending, not pending -> reason, unreachable -> error), asking every device."""
        pending: list[str] = []
        gone: dict[str, str] = {}
        lost: dict[str, str] = {}
        for name, result in self._results(self.names, confirm_device, dry_run=True).items():
            if result.failed:
                lost[name] = error_text(result)
            elif result.result["pending"]:
                pending.append(name)
            else:
                gone[name] = self._expired_text(name)
        return pending, gone, lost

    def rollback(self, names: Collection[str]) -> Exit:
        code = Exit.OK
        for name, result in self._results(names, rollback_device).items():
            device = self._device(name)
            if not result.failed:
                device.outcome = Outcome.ROLLED_BACK
                continue
            device.errors.append(f"rollback: {error_text(result)}")
            if isinstance(result.exception, NoPendingCommitError):
                device.outcome = Outcome.TIMER_EXPIRED
            else:
                device.outcome = (Outcome.UNREACHABLE
                                  if isinstance(result.exception, ConnectError)
                                  else Outcome.FAILED)
                code = Exit.DEVICE
        return code

    def _explain(self, gone: dict[str, str], pending: list[str]) -> None:
        """The device's own reason a commit is no longer pending (a confirm that finds
        nothing pending changes nothing and says why, e.g. the timer expired)."""
        for name, result in self._results(gone, confirm_device).items():
            if result.failed:
                gone[name] = error_text(result)
            else:  # pending after all, and now confirmed: undone with the others
                del gone[name]
                pending.append(name)

    def confirm(self) -> Exit:
        pending, gone, lost = self.still_pending()
        if gone:
            self._explain(gone, pending)
        if gone or lost:
            for name, text in gone.items():
                self._device(name).outcome = Outcome.TIMER_EXPIRED
                self._device(name).errors.append(text)
            for name, text in lost.items():
                self._device(name).outcome = Outcome.UNREACHABLE
                self._device(name).errors.append(text)
            problems = [*gone.values(), *lost.values()]
            self.run.errors.append("cannot confirm: " + "; ".join(problems))
            if pending:
                self.say(f"rolling back {', '.join(pending)} so that nothing is left "
                         "half-applied")
            code = self.rollback(pending)
            self.run.errors.append(
                f"nothing was confirmed; {', '.join(pending) or 'no device'} rolled back, "
                f"{', '.join(sorted({*gone, *lost}))} back on their own timers")
            return max(code, Exit.DEVICE if lost else Exit.FAILED)
        trouble: dict[str, str] = {}
        for name, result in self._results(pending, confirm_device).items():
            if result.failed:
                trouble[name] = error_text(result)
                self._device(name).errors.append(trouble[name])
                self._device(name).outcome = (
                    Outcome.TIMER_EXPIRED if isinstance(result.exception, NoPendingCommitError)
                    else Outcome.UNREACHABLE if isinstance(result.exception, ConnectError)
                    else Outcome.FAILED)
            else:
                self._device(name).outcome = Outcome.CONFIRMED
        if not trouble:
            return Exit.OK
        confirmed = [n for n in pending if self._device(n).outcome is Outcome.CONFIRMED]
        self.run.errors.append("cannot confirm: " + "; ".join(trouble.values()))
        code = self.rollback(confirmed)
        self.run.errors.append(f"{', '.join(confirmed) or 'no device'} rolled back again so "
                               "that nothing is left half-applied")
        expired = all(self._device(n).outcome is Outcome.TIMER_EXPIRED for n in trouble)
        return max(code, Exit.FAILED if expired else Exit.DEVICE)

    def rollback_all(self) -> Exit:
        pending, gone, lost = self.still_pending()
        for name, text in gone.items():
            device = self._device(name)
            deadline = device.deadline
            if deadline is not None and time.time() < deadline:
                device.outcome = Outcome.FAILED
                device.errors.append(f"{name}: not pending although its timer runs until "
                                     f"{iso(deadline)} (confirmed elsewhere?); not touched")
            else:
                device.outcome = Outcome.TIMER_EXPIRED
                device.errors.append(f"{text}; already back on its previous configuration")
        for name, text in lost.items():
            self._device(name).outcome = Outcome.UNREACHABLE
            self._device(name).errors.append(text)
        code = self.rollback(pending)
        untouched = [n for n, d in self.run.devices.items() if d.outcome is Outcome.FAILED]
        if lost or untouched:
            self.run.errors.append("not rolled back: " + "; ".join(
                [*lost.values(), *(self._device(n).errors[-1] for n in untouched)]))
            code = max(code, Exit.DEVICE)
        return code

    def remaining(self) -> list[str]:
        """Devices still pending (their commit neither confirmed nor undone)."""
        return [n for n, d in self.run.devices.items()
                if d.outcome in (Outcome.COMMITTED, Outcome.UNREACHABLE)]
