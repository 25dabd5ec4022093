"""`dcvpn deploy`, `dcvpn confirm`, `dcvpn rollback`: change devices with commit-confirm.

deploy diffs every selected gateway, then wave by wave (`--canary SITE` first, then region by
region, at most --workers gateways a wave, never two gateways of a site nor two hub gateways
together) commits with a confirm timer, checks both ends of every tunnel the wave touches
(IKE/CHILD SAs, BGP and prefixes; routes and pings where the gateway can be read for them)
until healthy or --settle seconds are up, and then confirms the wave, or rolls it back and
stops. Earlier confirmed waves stay unless --rollback-all. --dry-run only diffs. A second
deploy of an unchanged model changes nothing ("no changes").

--no-auto-confirm leaves the healthy commits pending and records them in the state file
(.dcvpn/deploy-<fabric>.json) for `dcvpn confirm -f FABRIC` or `dcvpn rollback -f FABRIC`
before the timer runs out. --lab deploys to the lab's devices (<lab dir>/devices.json).
--pki-dir (certificate fabrics; with --lab the lab's own PKI by default) sends each gateway's
certificates with its candidate (tasks/pki/__init__.py: what each platform gets).

The JSON report (--report, default dcvpn-deploy-report.json) is written on every run, also
on failure. Exit codes: 0 deployed (or no changes, or dry run); 1 a health check failed and
the wave was rolled back, a confirm timer ran out, or a pending deploy blocks this one;
2 bad input or usage; 3 a device failed or could not be reached (nothing of the failed wave
is left applied: rolled back, or rolled back by the device's own timer).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from inventory.errors import FabricLoadError, TopologyError
from inventory.findings import Severity
from inventory.lint import lint
from inventory.loader import load_fabric
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import sharding
from pipelines.deploy_flow import Deployer, DeployOptions
from pipelines.deploy_pending import PendingFlow
from pipelines.deploy_report import (
    DEFAULT_REPORT,
    DeviceRecord,
    Outcome,
    PendingDeploy,
    RunRecord,
    StateFileError,
    default_state_file,
    iso,
    pending_from,
    read_state,
    remove_state,
    report_json,
    write_report,
    write_state,
)
from pipelines.deploy_targets import Fleet, TargetError, make_fleet, undeployable
from pipelines.exit_codes import Exit
from pipelines.progress import LiveLine
from pipelines.waves import WaveError
from tasks.heap import settle_heap
from tasks.lab_devices import lab_secrets_dir
from tasks.pki.deploy_material import (
    check_pki_dir,
    choose_pki_dir,
    not_installed,
    uses_certificates,
)
from tasks.pki.errors import PkiError
from tasks.validate_expect import expect_fabric
from tasks.validate_strongswan import default_lab_dir, local_fabric

Handler = Callable[[argparse.Namespace], int]
TRUE = ("1", "true", "yes", "on")
CONFIRM_MARGIN = 10  # seconds left after --settle to confirm before the timer runs out
DEFAULTS = {"confirm_timeout": "300", "workers": "4", "settle": "60", "interval": "2"}


class _UsageError(Exception):
    """Bad command-line usage: one line, exit 2."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DCVPN_{name.upper()}", default)


def _flag(name: str) -> bool:
    return (_env(name) or "").strip().lower() in TRUE


def _err(line: str) -> None:
    print(line, file=sys.stderr)


# --- arguments ------------------------------------------------------------------------------

def _common(p: argparse.ArgumentParser, report_default: str) -> None:
    p.add_argument("-f", "--fabric", default=_env("fabric"), metavar="FABRIC",
                   help="fabric model YAML file [env DCVPN_FABRIC]")
    p.add_argument("--format", default=_env("format", "text"), metavar="text|json",
                   help="output format: text, json (default text) [env DCVPN_FORMAT]")
    p.add_argument("--report", default=_env("report", report_default), metavar="FILE",
                   help=f"JSON report, written on every run (default {report_default}) "
                        "[env DCVPN_REPORT]")
    p.add_argument("--state", default=_env("state"), metavar="FILE",
                   help="pending-deploy state file (default .dcvpn/deploy-<fabric>.json) "
                        "[env DCVPN_STATE]")
    p.set_defaults(format_choices=("text", "json"))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doc = __doc__.split("\n\n", 1)[1] if __doc__ else None
    p = subparsers.add_parser(
        "deploy", help="commit-confirm the model to the devices, wave by wave, health-gated",
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p, DEFAULT_REPORT)
    p.add_argument("--confirm-timeout", default=_env("confirm_timeout",
                                                     DEFAULTS["confirm_timeout"]),
                   metavar="SECONDS", help="confirm timer armed on every device (default 300; "
                   "platforms counting in minutes round up) [env DCVPN_CONFIRM_TIMEOUT]")
    p.add_argument("--canary", default=_env("canary"), metavar="SITE",
                   help="deploy this site first, one gateway a wave [env DCVPN_CANARY]")
    p.add_argument("--dry-run", action="store_true", default=_flag("dry_run"),
                   help="only diff: nothing is changed [env DCVPN_DRY_RUN=1]")
    p.add_argument("--no-auto-confirm", action="store_true", default=_flag("no_auto_confirm"),
                   help="leave healthy commits pending for dcvpn confirm / rollback "
                        "[env DCVPN_NO_AUTO_CONFIRM=1]")
    p.add_argument("--first", default=_env("first"), metavar="GW[,GW...]",
                   help="deploy these gateways first, before the canary and the regions "
                        "(dcvpn onboard uses it) [env DCVPN_FIRST]")
    p.add_argument("--rollback-all", action="store_true", default=_flag("rollback_all"),
                   help="when a wave fails, also roll back the earlier, confirmed waves "
                        "[env DCVPN_ROLLBACK_ALL=1]")
    p.add_argument("--workers", default=_env("workers", DEFAULTS["workers"]), metavar="N",
                   help="gateways per wave and in parallel (default 4) [env DCVPN_WORKERS]")
    p.add_argument("--settle", default=_env("settle", DEFAULTS["settle"]), metavar="SECONDS",
                   help="how long a wave may take to become healthy (default 60) "
                        "[env DCVPN_SETTLE]")
    p.add_argument("--interval", default=_env("interval", DEFAULTS["interval"]),
                   metavar="SECONDS", help="between health rounds (default 2) "
                   "[env DCVPN_INTERVAL]")
    p.add_argument("--site", action="append", metavar="S",
                   help="only this site's gateways (repeatable) [env DCVPN_SITE, comma "
                        "separated]")
    p.add_argument("--lab", action="store_true", default=_flag("lab"),
                   help="deploy to the lab's devices instead of the model's hosts "
                        "[env DCVPN_LAB=1]")
    p.add_argument("--lab-dir", default=_env("lab_dir"), metavar="DIR",
                   help="the lab's directory (default /run/dcvpn-lab/<fabric>) "
                        "[env DCVPN_LAB_DIR]")
    p.add_argument("--secrets-dir", default=_env("secrets_dir"), metavar="DIR",
                   help="where the PSKs are (default: dcvpn pki psk's; with --lab the lab's "
                        "own, <lab dir>/secrets) [env DCVPN_SECRETS_DIR]")
    p.add_argument("--pki-dir", default=_env("pki_dir"), metavar="DIR",
                   help="certificate fabrics: install each gateway's certificates from this "
                        "PKI directory (default: none; with --lab the lab's own) "
                        "[env DCVPN_PKI_DIR]")
    sharding.add_option(p)
    p.set_defaults(handler=cmd_deploy)

    for command, text in (("confirm", "confirm the commits a --no-auto-confirm deploy left "
                                      "pending"),
                          ("rollback", "roll back the commits a --no-auto-confirm deploy left "
                                       "pending")):
        p = subparsers.add_parser(command, help=text, description=doc,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(p, f"dcvpn-{command}-report.json")
        p.set_defaults(handler=cmd_pending, pending_command=command)


def _number(args: argparse.Namespace, name: str, kind: Callable[[str], Any],
            minimum: float) -> Any:
    raw = getattr(args, name)
    option = "--" + name.replace("_", "-")
    try:
        value = kind(str(raw))
    except ValueError:
        raise _UsageError(f"{option} takes a number, not {raw!r}") from None
    if value < minimum:
        raise _UsageError(f"{option} must be at least {minimum}, not {raw}")
    return value


def _options(args: argparse.Namespace) -> DeployOptions:
    options = DeployOptions(
        confirm_timeout=_number(args, "confirm_timeout", int, 1),
        canary=args.canary or None, dry_run=args.dry_run,
        auto_confirm=not args.no_auto_confirm, workers=_number(args, "workers", int, 1),
        settle=_number(args, "settle", float, 0), interval=_number(args, "interval", float, 0.1),
        rollback_all=args.rollback_all, secrets_dir=args.secrets_dir,
        first=tuple(sorted({g.strip() for g in (args.first or "").split(",") if g.strip()})))
    if options.settle + CONFIRM_MARGIN > options.confirm_timeout:
        raise _UsageError(f"--settle {options.settle:g}s leaves no time to confirm within "
                          f"--confirm-timeout {options.confirm_timeout}s (need settle + "
                          f"{CONFIRM_MARGIN}s <= timeout)")
    return options


def _compile(args: argparse.Namespace) -> tuple[str, CompiledFabric]:
    if not args.fabric:
        raise _UsageError("no fabric given: use -f FABRIC or set DCVPN_FABRIC")
    loaded = load_fabric(args.fabric)
    errors = [f for f in lint(loaded) if f.severity is Severity.ERROR]
    if errors:
        raise FabricLoadError([f.format() for f in errors]
                              + [f"{loaded.source.file}: {len(errors)} lint error(s); "
                                 "fix them first"])
    fabric = loaded.fabric
    if getattr(args, "lab", False):
        fabric = local_fabric(fabric)[0]  # the lab runs strongSwan on kernel-libipsec
    return loaded.source.file, compile_fabric(fabric)


def _targets(args: argparse.Namespace, compiled: CompiledFabric) -> list[str]:
    sites = args.site
    if sites is None and _env("site"):
        sites = [s for s in str(_env("site")).split(",") if s]
    known = {s.name for s in compiled.fabric.sites}
    unknown = sorted(set(sites or ()) - known)
    if unknown:
        raise _UsageError(f"unknown site(s): {', '.join(unknown)}")
    if args.canary and args.canary not in known:
        raise _UsageError(f"--canary {args.canary}: no such site")
    if args.canary and sites and args.canary not in sites:
        raise _UsageError(f"--canary {args.canary} is not among the --site selection")
    return [gw.name for site, gw in compiled.gateways()
            if (not sites or site.name in sites) and sharding.holds(args.shard, gw.name)]


def _lab_dir(args: argparse.Namespace, fabric: str) -> Path | None:
    if not args.lab:
        if args.lab_dir and not _env("lab_dir"):
            raise _UsageError("--lab-dir needs --lab")
        return None
    return Path(args.lab_dir) if args.lab_dir else default_lab_dir(fabric)


def _state_path(args: argparse.Namespace, fabric: str) -> Path:
    return Path(args.state) if args.state else default_state_file(fabric)


def _blocking(path: Path) -> PendingDeploy | None:
    """A pending deploy of this fabric that has not timed out yet."""
    if not path.exists():
        return None
    try:
        state = read_state(path)
    except StateFileError as exc:
        raise _UsageError(str(exc)) from None
    return None if state.expired(time.time()) else state


# --- output ---------------------------------------------------------------------------------

def _text_lines(run: RunRecord) -> list[str]:
    out = []
    width = max((len(n) for n in run.devices), default=0)
    for name, device in sorted(run.devices.items()):
        wave = f"wave {device.wave}" if device.wave is not None else "-"
        diff = device.diff
        change = f"+{diff['added']} -{diff['removed']}" if diff and diff["changed"] else ""
        out.append(f"{name:<{width}}  {wave:<7}  {device.outcome!s:<13}  {change}".rstrip())
        if run.dry_run and diff and diff["changed"]:
            out += [f"    {line}" for line in diff["text"].splitlines()]
        out += [f"    error: {e}" for e in device.errors]
    return out


def _finish(args: argparse.Namespace, run: RunRecord, code: int, live: LiveLine) -> int:
    live.clear()
    run.exit_code = int(code)
    run.finished = time.time()
    if run.outcome == "running":
        run.outcome = "ok" if code == Exit.OK else "failed"
    try:
        write_report(run, Path(args.report))
    except OSError as exc:
        _err(f"dcvpn {args.command}: cannot write the report {args.report}: {exc}")
        code = max(code, Exit.BAD_INPUT)
        run.exit_code = int(code)
    if args.format == "json":
        print(report_json(run))
    else:
        for line in _text_lines(run):
            print(line)
    if run.message:
        _err(f"dcvpn {args.command}: {run.message}")
    return code


def _options_dict(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("confirm_timeout", "canary", "first", "dry_run", "no_auto_confirm", "rollback_all",
            "workers", "settle", "interval", "site", "lab", "lab_dir", "report", "state",
            "pki_dir")
    out = {k: getattr(args, k, None) for k in keys if hasattr(args, k)}
    if getattr(args, "shard", None) is not None:
        out["shard"] = str(args.shard)
    return out


# --- deploy ---------------------------------------------------------------------------------

def cmd_deploy(args: argparse.Namespace) -> int:
    run = RunRecord("deploy", "", args.fabric or "", _options_dict(args), dry_run=args.dry_run)
    live = LiveLine()
    fleets: list[Fleet] = []
    deployers: list[Deployer] = []
    try:
        code = _deploy(args, run, live, fleets.append, deployers.append)
    except FabricLoadError as exc:
        run.errors += exc.lines
        for line in exc.lines:
            _err(line)
        run.outcome, code = "bad-input", Exit.BAD_INPUT
    except (_UsageError, TopologyError, TargetError, WaveError) as exc:
        run.errors.append(str(exc))
        run.message = str(exc)
        run.outcome, code = "bad-input", Exit.BAD_INPUT
    except KeyboardInterrupt:
        run.errors.append("interrupted: devices with a pending commit roll back on their "
                          "own timers")
        run.message = run.errors[-1]
        run.outcome, code = "interrupted", Exit.DEVICE
    finally:
        for deployer in deployers:
            deployer.release_held()
        for fleet in fleets:
            fleet.nr.close_connections(on_failed=True)
    return _finish(args, run, code, live)


def _deploy(args: argparse.Namespace, run: RunRecord, live: LiveLine,
            keep: Callable[[Fleet], None], keep_deployer: Callable[[Deployer], None]) -> Exit:
    began = time.monotonic()
    options = _options(args)
    fabric_file, compiled = _compile(args)
    name = compiled.fabric.fabric.name
    run.fabric, run.fabric_file = name, fabric_file
    targets = _targets(args, compiled)
    if not targets:
        raise _UsageError("no gateway selected (check --site and --shard)")
    state_path = _state_path(args, name)
    if not options.dry_run:
        blocking = _blocking(state_path)
        if blocking is not None:
            run.outcome = "refused"
            run.message = (f"deploy {blocking.run_id} of {name} is waiting for confirmation "
                           f"until {iso(blocking.latest_deadline)} ({state_path}): run dcvpn "
                           f"confirm or dcvpn rollback first")
            run.errors.append(run.message)
            return Exit.FAILED
    lab_dir = _lab_dir(args, name)
    if lab_dir is not None and not options.secrets_dir:
        found = lab_secrets_dir(lab_dir)  # the keys the lab's gateways were loaded with
        options = replace(options, secrets_dir=str(found) if found is not None else None)
    options = _with_pki(args, compiled, lab_dir, targets, options, live.say)
    fleet = make_fleet(fabric_file, compiled, options.workers, lab_dir, targets)
    keep(fleet)
    problems = undeployable(fleet, targets)
    if problems:
        raise TargetError("cannot deploy: " + "; ".join(problems))
    for site, gw in compiled.gateways():
        if gw.name in targets:
            platform, transport = fleet.platform(gw.name)
            run.devices[gw.name] = DeviceRecord(gw.name, site.name, str(platform),
                                                str(transport))
    deployer = Deployer(fleet, run, options, expect_fabric(compiled), live.say, live)
    keep_deployer(deployer)
    run.timings["prepare"] = time.monotonic() - began
    settle_heap()
    changed, failure = deployer.diff(targets)
    if failure is not None:
        failed = sorted(n for n, d in run.devices.items() if d.outcome is Outcome.FAILED)
        for device in run.devices.values():
            if device.outcome is Outcome.WOULD_CHANGE:
                device.outcome = Outcome.NOT_RUN
        run.outcome = "failed"
        run.message = (f"diff failed on {', '.join(failed)}: nothing was changed on any "
                       "device")
        for n in failed:
            for e in run.devices[n].errors:
                live.say(f"  {n}: {e}")
        return failure
    if options.dry_run:
        run.outcome = "dry-run"
        run.message = (f"dry run: {len(changed)} of {len(targets)} gateway(s) would change; "
                       "nothing was changed")
        return Exit.OK
    if not changed:
        run.outcome = "no-changes"
        run.message = f"no changes: all {len(targets)} gateway(s) already match the model"
        return Exit.OK
    waves = deployer.plan(changed)
    live.say(f"{len(changed)} gateway(s) to change in {len(waves)} wave(s)")
    code = deployer.deploy_waves(waves)
    if code is not Exit.OK:
        run.outcome = "rolled-back" if code == Exit.FAILED else "failed"
        run.message = run.errors[-1] if run.errors else "deploy failed"
        return code
    if not options.auto_confirm:
        state = pending_from(run, str(lab_dir) if lab_dir else None)
        write_state(state, state_path)
        run.outcome = "pending-confirmation"
        run.message = (f"{len(state.devices)} gateway(s) committed and healthy, NOT confirmed: "
                       f"run dcvpn confirm -f {args.fabric} (or dcvpn rollback) before "
                       f"{iso(state.latest_deadline)}; state in {state_path}")
        return Exit.OK
    confirmed = sum(1 for d in run.devices.values() if d.outcome is Outcome.CONFIRMED)
    run.outcome = "ok"
    run.message = f"deployed: {confirmed} gateway(s) changed and confirmed in {len(waves)} wave(s)"
    return Exit.OK


def _with_pki(args: argparse.Namespace, compiled: CompiledFabric, lab_dir: Path | None,
              targets: list[str], options: DeployOptions,
              say: Callable[[str], None]) -> DeployOptions:
    """The PKI directory the candidates take their certificates from, checked up front."""
    try:
        choice = choose_pki_dir(compiled, getattr(args, "pki_dir", None), lab_dir)
        if choice.path is not None:
            check_pki_dir(compiled, choice.path, targets, strict=choice.strict)
    except PkiError as exc:
        raise _UsageError(f"--pki-dir: {exc}") from None
    if choice.path is None:
        if uses_certificates(compiled):
            say("note: no --pki-dir: certificates on the devices are left as they are")
        return options
    say(f"certificates from {choice.path} ({choice.source})")
    for line in not_installed(compiled, targets, choice.path):
        say(f"note: {line}")
    return replace(options, pki_dir=str(choice.path))


# --- confirm / rollback ---------------------------------------------------------------------

def cmd_pending(args: argparse.Namespace) -> int:
    command = args.pending_command
    run = RunRecord(command, "", args.fabric or "", _options_dict(args))
    live = LiveLine()
    fleet: Fleet | None = None
    try:
        if not args.fabric:
            raise _UsageError("no fabric given: use -f FABRIC or set DCVPN_FABRIC")
        loaded = load_fabric(args.fabric)
        name = loaded.fabric.fabric.name
        run.fabric, run.fabric_file = name, loaded.source.file
        path = _state_path(args, name)
        state = read_state(path)
        if state.fabric != name:
            raise _UsageError(f"{path} is the state of fabric {state.fabric}, not {name}")
        run.run_id = state.run_id
        fabric = loaded.fabric
        if state.lab_dir:
            fabric = local_fabric(fabric)[0]
        compiled = compile_fabric(fabric)
        names = [d.gateway for d in state.devices]
        fleet = make_fleet(loaded.source.file, compiled, max(len(names), 1),
                           Path(state.lab_dir) if state.lab_dir else None, names)
        flow = PendingFlow(fleet, state, run, live.say)
        live.say(f"{command} of deploy {state.run_id}: {', '.join(names)}")
        code = flow.confirm() if command == "confirm" else flow.rollback_all()
        left = flow.remaining()
        if left:
            write_state(_still(state, left), path)
        else:
            remove_state(path)
        run.outcome = "ok" if code == Exit.OK else "failed"
        done = "confirmed" if command == "confirm" else "rolled back"
        run.message = (f"{done} {', '.join(names)}" if code == Exit.OK
                       else "; ".join(run.errors))
    except FabricLoadError as exc:
        run.errors += exc.lines
        for line in exc.lines:
            _err(line)
        run.outcome, code = "bad-input", Exit.BAD_INPUT
    except (_UsageError, TopologyError, TargetError) as exc:
        run.errors.append(str(exc))
        run.message = str(exc)
        run.outcome, code = "bad-input", Exit.BAD_INPUT
    except StateFileError as exc:
        run.errors.append(str(exc))
        run.message = str(exc)
        run.outcome, code = "nothing-pending", Exit.FAILED
    finally:
        if fleet is not None:
            fleet.nr.close_connections(on_failed=True)
    return _finish(args, run, code, live)


def _still(state: PendingDeploy, names: Sequence[str]) -> PendingDeploy:
    return replace(state, devices=tuple(d for d in state.devices if d.gateway in names))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.deploy_cmd deploy ...` (tests, before wiring)."""
    parser = argparse.ArgumentParser(prog="dcvpn")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return Exit.BAD_INPUT
    if args.format not in args.format_choices:
        _err(f"dcvpn {args.command}: --format must be one of text, json, not {args.format!r}")
        return Exit.BAD_INPUT
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
