"""`dcvpn watch -f FABRIC`: probe the lab's gateways in cycles, alert on every change, heal
within limits.

Every --interval seconds, for --duration seconds or --cycles cycles (one of them is
required: the watcher never runs unbounded), each gateway of the lab is read: the lab's
strongSwan+FRR gateways (daemons the lab started, tunnels, BGP sessions and the prefixes they
bring, kernel routes, LAN-to-LAN pings, TCP probes of `sites[].probes`) and the emulated
gateways in devices.json (tunnels and BGP through the driver's get_state).

Alerts are JSON lines on stdout, one per state change (`down`, `recovered`) and per heal
action (`action`, with its result, or `rate-limited` when the hourly limit refuses it):
time, kind, gateway, check, subject, tunnel, from, to, reason, action, result, detail.
--webhook URL also POSTs each alert (loopback only unless --allow-remote; never waits
longer than --webhook-timeout, never holds up a cycle).

Heal (off with --no-heal): a dead charon the lab started is restarted; a tunnel down for
--heal-after cycles is re-initiated from an end whose charon runs; both through `dcvpn lab
heal`, at most --max-actions-per-hour per gateway, each action logged with its reason.
--metrics-file is rewritten atomically after each cycle (Prometheus text).

--devices: no lab; every gateway is read through its driver at the model's host, with the
credentials and host-key checks of deploy (DCVPN_USERNAME, DCVPN_PASSWORD, DCVPN_SSH_KEY,
DCVPN_KNOWN_HOSTS, verified unless DCVPN_NO_HOST_KEY_CHECK=1): the driver connecting, the IKE
daemon where the driver can probe it (strongSwan: charon), tunnels (IKE + CHILD SA), BGP
sessions and prefixes. Routes, pings and TCP probes are not applicable there (not checked,
never counted as passed). Healing goes through the driver under the same limit: strongSwan
re-initiates a tunnel (swanctl --initiate) and restarts a charon that does not answer
(systemctl restart strongswan.service on a host); a platform that cannot heal (JunOS,
IOS-XE) gets a `not-supported` alert, never counted against the limit. No root needed.

SIGTERM or SIGINT ends the watch after the cycle in progress (outputs flushed, exit 0).
Otherwise exit 0 when everything was up in the last cycle, 1 when something was down,
2 bad input or not root (lab), 3 no lab (or no gateway with a driver) to watch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from inventory.errors import FabricLoadError, TopologyError
from inventory.findings import Severity
from inventory.lint import lint
from inventory.loader import load_fabric
from inventory.model import Platform
from inventory.topology import CompiledFabric, compile_fabric
from pipelines.exit_codes import Exit
from pipelines.watch_alerts import (
    AlertSink,
    Webhook,
    WebhookStats,
    WebhookUrlError,
    check_webhook,
    write_atomically,
)
from pipelines.watch_devices import device_watch
from pipelines.watch_heal import lab_heal
from tasks.lab_devices import LabDevicesError, load_lab_devices
from tasks.lab_records import LabRecordsError, read_lab_records
from tasks.metrics_format import exposition, fabric_families
from tasks.validate_strongswan import default_lab_dir, local_fabric
from tasks.watch_devices import NOT_APPLICABLE
from tasks.watch_metrics import Totals, watch_families
from tasks.watch_observe import (
    Cycle,
    Targets,
    emulated_devices,
    local_gateways,
    read_cycle,
    targets,
)
from tasks.watch_rules import Action, HealPolicy, WatchState, outcome, step

Handler = Callable[[argparse.Namespace], int]
Healer = Callable[[Path, Action, float], tuple[bool, str]]
Reader = Callable[[Targets], Cycle]
DEFAULTS = {"interval": "10", "max_actions_per_hour": "3", "heal_after": "2", "settle": "30",
            "timeout": "5", "heal_timeout": "30", "webhook_timeout": "2"}
_TRUE = ("1", "true", "yes", "on")


class _UsageError(Exception):
    """Bad command-line usage: one line, exit 2."""


class _NoLabError(Exception):
    """Nothing to watch: exit 3."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DCVPN_{name.upper()}", default)


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "watch", help="probe the lab's gateways in cycles, alert on changes, heal within limits",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-f", "--fabric", default=_env("fabric"), metavar="FABRIC",
                   help="fabric model YAML file [env DCVPN_FABRIC]")
    p.add_argument("--format", default=_env("format", "text"), metavar="text|json",
                   help="end summary as text on stderr, or also as a last JSON line on "
                        "stdout (default text) [env DCVPN_FORMAT]")
    p.add_argument("--lab-dir", default=_env("lab_dir"), metavar="DIR",
                   help="the lab's directory (default /run/dcvpn-lab/<fabric>) "
                        "[env DCVPN_LAB_DIR]")

    def number(flag: str, key: str, text: str) -> None:
        p.add_argument(flag, default=_env(key, DEFAULTS.get(key)), metavar="N",
                       help=f"{text} [env DCVPN_{key.upper()}]")

    number("--interval", "interval", "seconds from one cycle's start to the next (default 10)")
    number("--duration", "duration", "stop after this many seconds")
    number("--cycles", "cycles", "stop after this many cycles")
    number("--max-actions-per-hour", "max_actions_per_hour",
           "heal actions per gateway in any hour (default 3)")
    number("--heal-after", "heal_after",
           "cycles a tunnel must be down before it is re-initiated (default 2)")
    number("--settle", "settle",
           "seconds a healed daemon or tunnel gets to come back before the next action on it "
           "(default 30)")
    number("--timeout", "timeout", "seconds for each read, ping and probe (default 5)")
    number("--heal-timeout", "heal_timeout", "seconds for each heal action (default 30)")
    number("--webhook-timeout", "webhook_timeout", "seconds for each webhook POST (default 2)")
    p.add_argument("--devices", action="store_true",
                   default=(_env("devices") or "").lower() in _TRUE,
                   help="no lab: read and heal every gateway through its driver at the "
                        "model's host [env DCVPN_DEVICES]")
    p.add_argument("--no-heal", action="store_true",
                   default=(_env("no_heal") or "").lower() in _TRUE,
                   help="only observe and alert [env DCVPN_NO_HEAL]")
    p.add_argument("--metrics-file", default=_env("metrics_file"), metavar="FILE",
                   help="write Prometheus text here after each cycle (atomically) "
                        "[env DCVPN_METRICS_FILE]")
    p.add_argument("--webhook", default=_env("webhook"), metavar="URL",
                   help="POST every alert here as JSON [env DCVPN_WEBHOOK]")
    p.add_argument("--allow-remote", action="store_true",
                   default=(_env("allow_remote") or "").lower() in _TRUE,
                   help="allow a webhook that is not on loopback [env DCVPN_ALLOW_REMOTE]")
    p.set_defaults(handler=cmd_watch, format_choices=("text", "json"))


# --- options -----------------------------------------------------------------------------------

def _number(flag: str, value: str | None, *, integer: bool = False,
            minimum: float = 0.0, strict: bool = True) -> float:
    try:
        n = float(int(str(value))) if integer else float(str(value))
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise _UsageError(f"{flag} takes {kind}, not {value!r}") from None
    if not math.isfinite(n) or n < minimum or (strict and n <= minimum):
        raise _UsageError(f"{flag} must be {'above' if strict else 'at least'} "
                          f"{minimum:g}, not {value}")
    return n


@dataclass(frozen=True)
class Options:
    interval: float
    duration: float | None
    cycles: int | None
    timeout: float
    heal_timeout: float
    webhook_timeout: float
    policy_args: tuple[bool, int, int, float]  # enabled, max/hour, heal_after, settle


def options(args: argparse.Namespace) -> Options:
    if args.duration is None and args.cycles is None:
        raise _UsageError("give --duration S or --cycles N: the watcher never runs unbounded "
                          "(run it from a timer or a service that starts it again)")
    duration = _number("--duration", args.duration) if args.duration is not None else None
    cycles = (int(_number("--cycles", args.cycles, integer=True))
              if args.cycles is not None else None)
    return Options(
        _number("--interval", args.interval), duration, cycles,
        _number("--timeout", args.timeout), _number("--heal-timeout", args.heal_timeout),
        _number("--webhook-timeout", args.webhook_timeout),
        (not args.no_heal,
         int(_number("--max-actions-per-hour", args.max_actions_per_hour, integer=True,
                     strict=False)),
         int(_number("--heal-after", args.heal_after, integer=True)),
         _number("--settle", args.settle, strict=False)))


def _compile(fabric_file: str | None, as_lab: bool = True) -> CompiledFabric:
    if not fabric_file:
        raise _UsageError("no fabric given: use -f FABRIC or set DCVPN_FABRIC")
    loaded = load_fabric(fabric_file)
    errors = [f for f in lint(loaded) if f.severity is Severity.ERROR]
    if errors:
        raise FabricLoadError([f.format() for f in errors]
                              + [f"{loaded.source.file}: {len(errors)} lint error(s); "
                                 "fix them first"])
    return compile_fabric(local_fabric(loaded.fabric)[0] if as_lab else loaded.fabric)


def watch_targets(compiled: CompiledFabric, lab_dir: Path, timeout: float
                  ) -> tuple[Targets, list[str]]:
    """What the lab runs of this fabric, and notes on what is not watched."""
    try:
        records = read_lab_records(lab_dir)
    except LabRecordsError as exc:
        raise _NoLabError(str(exc)) from exc
    if records is None:
        raise _NoLabError(f"no lab in {lab_dir}: start it with dcvpn lab up, or give its "
                          "--lab-dir")
    local = local_gateways(compiled, records)
    notes = []
    try:
        emulated = emulated_devices(compiled, load_lab_devices(lab_dir))
    except LabDevicesError as exc:
        emulated = {}
        if any(gw.platform is not Platform.STRONGSWAN for _, gw in compiled.gateways()):
            notes.append(f"emulated gateways are not watched: {exc}")
    watched = set(local) | set(emulated)
    if not watched:
        raise _NoLabError(f"the lab in {lab_dir} runs no gateway of fabric "
                          f"{compiled.fabric.fabric.name}")
    others = sorted(gw.name for _, gw in compiled.gateways() if gw.name not in watched)
    if others:
        notes.append(f"not in the lab, not watched: {', '.join(others)}")
    return targets(compiled, lab_dir, local, emulated, timeout), notes


# --- the loop ----------------------------------------------------------------------------------

class Stop:
    """Set by SIGTERM / SIGINT: the cycle in progress finishes, then the watcher ends."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: str | None = None
        self._old: dict[int, object] = {}

    def _handle(self, signum: int, _: FrameType | None) -> None:
        self.signal = signal.Signals(signum).name
        self.event.set()

    def __enter__(self) -> Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]


@dataclass
class Run:
    state: WatchState = field(default_factory=WatchState)
    totals: Totals = field(default_factory=Totals)
    last: Cycle | None = None
    actions: int = 0
    failed: int = 0


def _metrics(t: Targets, run: Run, duration: float) -> str:
    assert run.last is not None
    families = fabric_families(t.compiled, run.last.states, list(run.last.states))
    families += watch_families(run.last.observations, run.totals, duration, time.time())
    return exposition(families)


def one_cycle(t: Targets, run: Run, policy: HealPolicy, sink: AlertSink, heal: Healer,
              heal_timeout: float, metrics_file: Path | None, read: Reader | None = None
              ) -> None:
    began = time.monotonic()
    cycle = (read or read_cycle)(t)
    decided = step(run.state, cycle.observations, time.time(), policy)
    for alert in decided.alerts:
        sink.emit(alert.as_dict())
    results, done = [], []
    for action in decided.actions:
        ok, detail = heal(t.lab_dir, action, heal_timeout)
        alert = outcome(action, ok, detail, time.time())
        sink.emit(alert.as_dict())
        results.append((action, ok))
        done.append(alert)
    run.state, run.last = decided.state, cycle
    run.actions += len(results)
    run.failed += sum(1 for _, ok in results if not ok)
    run.totals = run.totals.add((*decided.alerts, *done), results, decided.refused, cycles=1)
    if metrics_file is not None:
        write_atomically(metrics_file, _metrics(t, run, time.monotonic() - began))


def watch(t: Targets, opts: Options, sink: AlertSink, stop: Stop,
          metrics_file: Path | None, heal: Healer = lab_heal, *, read: Reader | None = None,
          policy: HealPolicy | None = None) -> Run:
    """The loop; `read` and `policy` default to the lab's (tasks.watch_observe.read_cycle,
    the lab's strongSwan gateways healable)."""
    enabled, limit, heal_after, settle = opts.policy_args
    if policy is None:
        policy = HealPolicy(enabled, limit, heal_after, settle, frozenset(t.local))
    run = Run()
    began = time.monotonic()
    deadline = began + opts.duration if opts.duration is not None else None
    count = 0
    while True:
        started = time.monotonic()
        one_cycle(t, run, policy, sink, heal, opts.heal_timeout, metrics_file, read)
        count += 1
        if stop.event.is_set() or (opts.cycles is not None and count >= opts.cycles):
            return run
        wait = opts.interval - (time.monotonic() - started)
        if deadline is not None:
            if time.monotonic() >= deadline:
                return run
            wait = min(wait, deadline - time.monotonic())
        if stop.event.wait(max(wait, 0.0)) or (deadline and time.monotonic() >= deadline):
            return run


# --- the command -------------------------------------------------------------------------------

def _summary(run: Run, stop: Stop, hook: WebhookStats | None) -> dict[str, object]:
    down = [" ".join(k) for k in run.state.down()]
    data: dict[str, object] = {
        "kind": "summary", "cycles": run.totals.cycles,
        "alerts": dict(sorted(run.totals.alerts.items())), "actions": run.actions,
        "failed_actions": run.failed, "refused_actions": sum(run.totals.refused.values()),
        "stopped_by": stop.signal or "limit", "down": down}
    if hook is not None:
        data["webhook"] = {"sent": hook.sent, "failed": hook.failed, "dropped": hook.dropped,
                           "unsent": hook.unsent, "last_error": hook.last_error}
    return data


def cmd_watch(args: argparse.Namespace) -> int:
    if args.format not in args.format_choices:
        _err(f"dcvpn watch: --format must be one of text, json, not {args.format!r}")
        return Exit.BAD_INPUT
    try:
        return _watch(args)
    except FabricLoadError as exc:
        lines, code = exc.lines, Exit.BAD_INPUT
    except (_UsageError, TopologyError, WebhookUrlError) as exc:
        lines, code = [f"dcvpn watch: {exc}"], Exit.BAD_INPUT
    except (_NoLabError, OSError) as exc:
        lines, code = [f"dcvpn watch: {exc}"], Exit.DEVICE
    for line in lines:
        _err(line)
    if args.format == "json":
        print(json.dumps({"kind": "summary", "ok": False, "errors": lines}), flush=True)
    return code


def _watch(args: argparse.Namespace) -> int:
    opts = options(args)
    url = check_webhook(args.webhook, args.allow_remote) if args.webhook else None
    if args.devices:
        return _watch_devices(args, opts, url)
    compiled = _compile(args.fabric)
    if os.geteuid() != 0:
        raise _UsageError("reading the lab's gateways needs root (namespaces, vici and vtysh "
                          "sockets); run it as root, e.g. with sudo")
    lab_dir = Path(args.lab_dir) if args.lab_dir else default_lab_dir(
        compiled.fabric.fabric.name)
    t, notes = watch_targets(compiled, lab_dir, opts.timeout)
    metrics_file = _metrics_file(args)
    for note in notes:
        _err(f"dcvpn watch: note: {note}")
    _err(f"dcvpn watch: {len(t.gateways)} gateway(s) of lab {compiled.fabric.fabric.name} in "
         f"{lab_dir} {_schedule(opts)}")
    return _run(args, opts, url, t, metrics_file)


def _schedule(opts: Options) -> str:
    """How often and how long a watch runs, and whether it heals (its start line)."""
    enabled, limit, _, _ = opts.policy_args
    bound = (f"for {opts.duration:g}s" if opts.cycles is None else f"for {opts.cycles} cycle(s)"
             + (f" or {opts.duration:g}s" if opts.duration is not None else ""))
    return (f"every {opts.interval:g}s {bound}; "
            + (f"healing at most {limit} action(s) per gateway per hour" if enabled
               else "observing only (--no-heal)"))


def _metrics_file(args: argparse.Namespace) -> Path | None:
    metrics_file = Path(args.metrics_file) if args.metrics_file else None
    if metrics_file is not None and not metrics_file.parent.is_dir():
        raise _UsageError(f"--metrics-file {metrics_file}: folder {metrics_file.parent} does "
                          "not exist")
    return metrics_file


def _watch_devices(args: argparse.Namespace, opts: Options, url: str | None) -> int:
    if args.lab_dir:
        raise _UsageError("--lab-dir watches the lab; --devices reads the model's hosts "
                          "through their drivers: give one of them")
    compiled = _compile(args.fabric, as_lab=False)
    metrics_file = _metrics_file(args)
    dw = device_watch(compiled, opts.timeout)
    for note in dw.notes:
        _err(f"dcvpn watch: note: {note}")
    if not dw.devices:
        raise _NoLabError(f"no gateway of fabric {compiled.fabric.fabric.name} can be read "
                          "through a driver")
    enabled, limit, heal_after, settle = opts.policy_args
    _err(f"dcvpn watch: {len(dw.devices)} gateway(s) of fabric {compiled.fabric.fabric.name} "
         f"through their drivers {_schedule(opts)}")
    return _run(args, opts, url, dw.targets, metrics_file, dw.heal, dw.read,
                dw.policy(enabled, limit, heal_after, settle),
                {"not_checked": sorted(NOT_APPLICABLE)})


def _run(args: argparse.Namespace, opts: Options, url: str | None, t: Targets,
         metrics_file: Path | None, heal: Healer = lab_heal, read: Reader | None = None,
         policy: HealPolicy | None = None, extra: dict[str, object] | None = None) -> int:
    webhook = Webhook(url, opts.webhook_timeout) if url else None
    sink = AlertSink(sys.stdout, webhook)
    with Stop() as stop:
        try:
            run = watch(t, opts, sink, stop, metrics_file, heal, read=read, policy=policy)
        finally:
            hook = webhook.close(opts.webhook_timeout + 1.0) if webhook else None
    summary = {**_summary(run, stop, hook), **(extra or {})}
    why = f"stopped by {stop.signal}" if stop.signal else "done"
    _err(f"dcvpn watch: {why} after {run.totals.cycles} cycle(s): {sink.count} alert(s), "
         f"{run.actions} action(s) ({run.failed} failed, {summary['refused_actions']} refused "
         f"by the limit); down now: {len(run.state.down())}")
    if hook is not None and (hook.failed or hook.dropped or hook.unsent):
        _err(f"dcvpn watch: webhook: {hook.sent} sent, {hook.failed} failed, {hook.dropped} "
             f"dropped, {hook.unsent} unsent" + (f"; last error: {hook.last_error}"
                                                 if hook.last_error else ""))
    if args.format == "json":
        print(json.dumps(summary, sort_keys=True), flush=True)
    if stop.signal:
        return Exit.OK
    return Exit.FAILED if run.state.down() else Exit.OK


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.watch_cmd watch ...` (tests, and before wiring)."""
    parser = argparse.ArgumentParser(prog="dcvpn")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return Exit.BAD_INPUT
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
