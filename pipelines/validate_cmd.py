"""`dcvpn validate -f FABRIC [--junit FILE]`: post-change checks across the gateways.

Expected state comes from the compiled model, observed state from each gateway's reader
(tasks.validate_observed.DeviceReader): the lab's strongSwan+FRR gateways through vici, vtysh,
kernel routes and ping in their namespaces; the lab's emulated IOS-XE/JunOS devices (listed in
<lab dir>/devices.json) through their driver's get_state, which gives IKE, CHILD and BGP checks
(no routes, no ping: those checks are skipped for them, never passed). A check that joins an
emulated device and a real daemon is skipped as "emulated peer: not checked": emulators run no
IKE, so such a tunnel cannot come up. A check that depends on a gateway without any reader is
reported as skipped. The model is taken as the lab runs it (strongSwan sites on
kernel-libipsec), like `dcvpn lab up`.

Checks, one named result each: IKE SA ESTABLISHED with the intended proposal, CHILD SA
INSTALLED with the intended ESP proposal (per tunnel and end), BGP Established with the
expected peer address and AS, every expected remote prefix in the kernel routing table via
a tunnel (a covering default route does not count), LAN-to-LAN ping for every site pair, and
an MTU probe on connected pairs (DF ping at the tunnel MTU passes, one byte more does not).
Exit 0 all passed, 1 any failed, 2 bad input or not root, 3 no lab gateway is running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from drivers.base import driver_class
from drivers.errors import DriverError
from inventory.errors import FabricLoadError, TopologyError
from inventory.findings import Severity
from inventory.lint import lint
from inventory.loader import load_fabric
from inventory.model import Platform
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import sharding, validate_report
from pipelines.exit_codes import Exit
from pipelines.fleet import make_nornir
from tasks.errors import TaskError
from tasks.health import EMULATED_PEER
from tasks.health_checks import check_child_state, check_ike_state
from tasks.health_reader import StateReader
from tasks.lab_devices import LabDevicesError, load_lab_devices
from tasks.validate import validate
from tasks.validate_anycast import holder_checks
from tasks.validate_checks import CheckResult, Kind, skipped
from tasks.validate_expect import expect_fabric
from tasks.validate_observed import DeviceReader, IkeSa, ReadError
from tasks.validate_strongswan import (
    LocalGateway,
    StrongswanReader,
    default_lab_dir,
    local_fabric,
)

Handler = Callable[[argparse.Namespace], int]
MAX_WORKERS = 16
NETNS_DIR = Path("/run/netns")


class _UsageError(Exception):
    """Bad command-line usage: one line, exit 2."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DCVPN_{name.upper()}", default)


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def is_root() -> bool:
    return os.geteuid() == 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "validate", help="post-change checks: tunnels, proposals, BGP, routes, ping, MTU",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-f", "--fabric", default=_env("fabric"), metavar="FABRIC",
                   help="fabric model YAML file [env DCVPN_FABRIC]")
    p.add_argument("--format", default=_env("format", "text"), metavar="text|json",
                   help="output format: text, json (default text) [env DCVPN_FORMAT]")
    p.add_argument("--junit", default=_env("junit"), metavar="FILE",
                   help="also write JUnit XML here, one testcase per check [env DCVPN_JUNIT]")
    p.add_argument("--lab-dir", default=_env("lab_dir"), metavar="DIR",
                   help="the lab's directory (default /run/dcvpn-lab/<fabric>) "
                        "[env DCVPN_LAB_DIR]")
    sharding.add_option(p)
    p.set_defaults(handler=cmd_validate, format_choices=("text", "json"))


def _compile(args: argparse.Namespace) -> CompiledFabric:
    if not args.fabric:
        raise _UsageError("no fabric given: use -f FABRIC or set DCVPN_FABRIC")
    loaded = load_fabric(args.fabric)
    errors = [f for f in lint(loaded) if f.severity is Severity.ERROR]
    if errors:
        raise FabricLoadError([f.format() for f in errors]
                              + [f"{loaded.source.file}: {len(errors)} lint error(s); "
                                 "fix them first"])
    return compile_fabric(local_fabric(loaded.fabric)[0])


def run_checks(fabric_file: str, compiled: CompiledFabric, scope: Sequence[str],
               readers: Callable[[str], DeviceReader],
               shard: sharding.Shard | None = None,
               kinds: frozenset[Kind] = frozenset(Kind),
               hosts: Sequence[str] | None = None) -> list[CheckResult]:
    """Every check of the gateways in `hosts` (default: `scope`; of the shard, if any), one
    Nornir task per gateway (in threads); peers outside the shard are still read as in scope."""
    expected = expect_fabric(compiled)
    mine = [g for g in (scope if hosts is None else hosts) if sharding.holds(shard, g)]
    if not mine:
        return []
    nr = make_nornir(fabric_file, compiled, workers=min(MAX_WORKERS, max(len(mine), 1)))
    nr = nr.filter(filter_func=lambda h: h.name in mine)
    results = nr.run(task=validate, expected=expected, readers=readers, scope=set(scope),
                     kinds=kinds)
    out: list[CheckResult] = []
    for name in sorted(results):
        res = results[name][0]
        if res.exception is not None:
            raise TaskError(f"{name}: validation crashed: {res.exception}")
        out += res.result
    return out


def cmd_validate(args: argparse.Namespace) -> int:
    if args.format not in args.format_choices:
        _err(f"dcvpn validate: --format must be one of text, json, not {args.format!r}")
        return Exit.BAD_INPUT
    try:
        return _validate(args)
    except FabricLoadError as exc:
        lines, code = exc.lines, Exit.BAD_INPUT
    except (_UsageError, TopologyError) as exc:
        lines, code = [f"dcvpn validate: {exc}"], Exit.BAD_INPUT
    except (TaskError, OSError) as exc:
        lines, code = [f"dcvpn validate: {exc}"], Exit.DEVICE
    for line in lines:
        _err(line)
    if args.format == "json":
        print(json.dumps({"ok": False, "errors": lines}, indent=2))
    return code


def _validate(args: argparse.Namespace) -> int:
    if not is_root():
        raise _UsageError("reading the lab's gateways needs root (namespaces, vici and vtysh "
                          "sockets); run it as root, e.g. with sudo")
    compiled = _compile(args)
    name = compiled.fabric.fabric.name
    lab_dir = Path(args.lab_dir) if args.lab_dir else default_lab_dir(name)
    strongswan = [gw.name for _, gw in compiled.gateways() if gw.platform is Platform.STRONGSWAN]
    others = [gw.name for _, gw in compiled.gateways() if gw.platform is not Platform.STRONGSWAN]
    local = {n: LocalGateway.in_lab(lab_dir, n) for n in strongswan}
    running = [n for n in strongswan if (NETNS_DIR / local[n].namespace).exists()]
    if not running:
        raise TaskError(f"no gateway of fabric {name} is running in {lab_dir}; start the lab "
                        f"with dcvpn lab up -f {args.fabric}")
    if not any(local[n].folder.is_dir() for n in running):
        raise TaskError(f"the lab's namespaces exist, but {lab_dir} holds none of its "
                        "gateways: give the --lab-dir that dcvpn lab up used")
    for n in strongswan:
        if n not in running:
            _err(f"dcvpn validate: {n}: namespace {local[n].namespace} is missing")
    emulated = _emulated_readers(compiled, lab_dir, others)
    others = [n for n in others if sharding.holds(args.shard, n) and n not in emulated]
    if others:
        _err(f"dcvpn validate: not validated (no reader yet): {', '.join(others)}")
    scope = [*strongswan, *emulated]
    results = run_checks(args.fabric, compiled, scope,
                         lambda gw: StrongswanReader(local[gw]), args.shard,
                         hosts=strongswan)
    results += run_checks(args.fabric, compiled, scope, lambda gw: emulated[gw], args.shard,
                          kinds=frozenset({Kind.BGP}), hosts=list(emulated))
    results += _emulated_sa_checks(compiled, emulated, args.shard)
    results += holder_checks(expect_fabric(compiled), results)
    results = sorted((_emulated_peer(r, set(emulated)) for r in results),
                     key=lambda r: (r.kind, r.gateway, r.subject))
    if args.junit:
        Path(args.junit).write_text(validate_report.as_junit(results, name), encoding="utf-8")
    if args.format == "json":
        sys.stdout.write(validate_report.as_json(results, name))
    else:
        sys.stdout.write(validate_report.as_text(results))
    total = validate_report.counts(results)
    _err(f"dcvpn validate: {len(results)} check(s): " + ", ".join(
        f"{n} {k}" for k, n in total.items()))
    return Exit.OK if all(r.ok for r in results) else Exit.FAILED


def _emulated_readers(compiled: CompiledFabric, lab_dir: Path,
                      names: Sequence[str]) -> dict[str, DeviceReader]:
    """A get_state reader per emulated device of the lab (devices.json), read once now."""
    try:
        devices = load_lab_devices(lab_dir)
    except LabDevicesError:
        return {}
    expected = expect_fabric(compiled)
    readers: dict[str, DeviceReader] = {}
    for name in names:
        device = devices.get(name)
        if device is None or not device.emulated:
            continue
        tunnels = expected[name].tunnels
        try:
            driver = driver_class(device.platform, device.transport)(device.target)
            driver.open()
            try:
                state = driver.get_state()
            finally:
                driver.close()
            readers[name] = StateReader(name, state, tunnels)
        except DriverError as exc:
            readers[name] = StateReader(name, ReadError(f"{name}: {exc}"), tunnels)
    return readers


def _emulated_sa_checks(compiled: CompiledFabric, readers: dict[str, DeviceReader],
                        shard: sharding.Shard | None) -> list[CheckResult]:
    """IKE and CHILD checks of devices read through get_state: a field the device does not
    report is named as such, never compared (tasks.health_checks)."""
    expected = expect_fabric(compiled)
    out: list[CheckResult] = []
    for name, reader in sorted(readers.items()):
        if not sharding.holds(shard, name):
            continue
        try:
            sas: tuple[IkeSa, ...] | ReadError = reader.ike_sas()
        except ReadError as exc:
            sas = exc
        for tunnel in expected[name].tunnels:
            out += [check_ike_state(tunnel, sas), check_child_state(tunnel, sas)]
    return out


def _emulated_peer(result: CheckResult, emulated: set[str]) -> CheckResult:
    """A check joining an emulated device and a real daemon cannot pass by design."""
    mine = [g for g in result.gateways if g in emulated]
    if mine and len(mine) < len(set(result.gateways)):
        return skipped(result, f"{EMULATED_PEER} ({', '.join(mine)} emulated, runs no IKE)")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.validate_cmd validate ...` (tests, before wiring)."""
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
