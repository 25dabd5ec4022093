"""`dcvpn capacity`: SAs, BGP sessions and expected rekeys per gateway, hub site and fabric,
checked against fabric.limits (inventory.capacity holds the figures and their formulas)."""

import argparse
import os
import sys
from typing import TypeAlias

from inventory.capacity import plan
from inventory.errors import FabricLoadError
from inventory.findings import Severity
from inventory.lint import lint
from inventory.loader import load_fabric
from inventory.topology import compile_fabric
from pipelines.capacity_report import WRITERS, View
from pipelines.exit_codes import Exit
from pipelines.usage import UsageError

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
HELP = "SAs, BGP sessions and rekeys per hub and fabric, against fabric.limits"
DESCRIPTION = """\
Plan capacity from the model alone (no device is contacted). Per gateway: IKE SAs, CHILD SAs
and BGP sessions (one of each per tunnel it serves; an anycast hub's tunnels count on each of
its gateways, as any one may carry them all), expected IKE and CHILD rekeys per hour, and the
rekey burst: the rekeys in the busiest minute after all its SAs came up at once. Per hub site
and for the fabric every tunnel counts once.

Rekey model: an end rekeys an SA at lifetime - random(0, jitter). strongSwan ends jitter by
rand_time = 10% of the lifetime (as rendered); IOS-XE and JunOS have no jitter setting and
are taken to rekey at the lifetime. The first end to fire rekeys, so one SA is rekeyed every
L - 2J/3 seconds on average with two jittering ends, L - J/2 with one, L with none; rekeys
per hour = 3600 / that. Without jitter a mass restart keeps the SAs rekeying in lockstep:
the burst is every SA at once. Volume (byte) lifetimes are not modelled.

Exit 0 within fabric.limits (or none set), 1 a gateway exceeds a limit, 2 bad input
(including a model with lint errors)."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DCVPN_{name.upper()}", default)


def cmd_capacity(args: argparse.Namespace) -> int:
    if not args.fabric:
        raise UsageError("no fabric given: use -f FABRIC or set DCVPN_FABRIC")
    loaded = load_fabric(args.fabric)
    errors = [f for f in lint(loaded) if f.severity is Severity.ERROR]
    if errors:
        summary = f"{loaded.source.file}: {len(errors)} lint error(s); fix them first"
        raise FabricLoadError([f.format() for f in errors] + [summary])
    capacity = plan(compile_fabric(loaded.fabric))
    sites = args.site
    if sites is None and _env("site"):
        sites = [s for s in str(_env("site")).split(",") if s]
    if sites:
        known = {s.site for s in capacity.sites}
        unknown = [s for s in sites if s not in known]
        if unknown:
            raise UsageError(f"unknown site(s): {', '.join(unknown)}")
    view = View(capacity, tuple(sites) if sites else None)
    sys.stdout.write(WRITERS[args.format](view))
    over = view.excesses()
    if over:
        print(f"{loaded.source.file}: {len(over)} limit(s) exceeded (fabric.limits)",
              file=sys.stderr)
        return Exit.FAILED
    return Exit.OK


def register(sub: SubParsers) -> None:
    p = sub.add_parser("capacity", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-f", "--fabric", default=_env("fabric"), metavar="FABRIC",
                   help="fabric model YAML file [env DCVPN_FABRIC]")
    choices = tuple(WRITERS)
    p.add_argument("--format", default=_env("format", "text"), metavar="|".join(choices),
                   help=f"output format: {', '.join(choices)} (default text) "
                        "[env DCVPN_FORMAT]")
    p.add_argument("--site", action="append", metavar="S",
                   help="only this site's gateways, and its limits (repeatable) "
                        "[env DCVPN_SITE, comma separated]")
    p.set_defaults(handler=cmd_capacity, format_choices=choices)
