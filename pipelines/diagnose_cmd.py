"""`dcvpn diagnose -f FABRIC TUNNEL|SITE`: why is a tunnel down? Likely cause first.

TUNNEL is a tunnel name as `dcvpn topology` shows it (`fra1-iad1-p0`) or its id, a site pair
(`fra1<->iad1`: every plane; `fra1<->iad1/p1`: one plane); a site or a gateway name means
each of its tunnels. Evidence is read from both ends of each tunnel: IKE/CHILD SA state and
rekeys, the last negotiation errors in charon's log, the two ends' loaded proposals,
identities and PSKs (compared, never shown) against each other and against the model,
certificate expiry and revocation (--pki-dir, else the lab's PKI), an MTU probe, BGP state
and flaps, and whether the lab's daemons still run (with their CPU time and memory).
Findings are ranked: the LIKELY CAUSE comes first, then the rest, then the evidence.

Readers exist for the lab's strongSwan+FRR gateways (as `dcvpn validate`); an end on
another platform is reported as not readable. Exit 0 healthy, 1 a problem was found,
2 bad input or not root, 3 no end of the tunnel(s) is running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from inventory.errors import FabricLoadError, TopologyError
from inventory.findings import Severity
from inventory.lint import lint
from inventory.loader import load_fabric
from inventory.model import Platform
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import diagnose_report
from pipelines.exit_codes import Exit
from tasks.diagnose import TargetError, gather, resolve_target
from tasks.diagnose_rules import detect
from tasks.errors import TaskError
from tasks.lab_records import LabRecordsError, read_lab_records
from tasks.validate_strongswan import LocalGateway, default_lab_dir, local_fabric

Handler = Callable[[argparse.Namespace], int]
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
        "diagnose", help="why is a tunnel down: likely cause first, then evidence per end",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", metavar="TUNNEL|SITE",
                   help="tunnel name or id, site pair a<->b[/pN], site or gateway")
    p.add_argument("-f", "--fabric", default=_env("fabric"), metavar="FABRIC",
                   help="fabric model YAML file [env DCVPN_FABRIC]")
    p.add_argument("--format", default=_env("format", "text"), metavar="text|json",
                   help="output format: text, json (default text) [env DCVPN_FORMAT]")
    p.add_argument("--lab-dir", default=_env("lab_dir"), metavar="DIR",
                   help="the lab's directory (default /run/dcvpn-lab/<fabric>) "
                        "[env DCVPN_LAB_DIR]")
    p.add_argument("--pki-dir", default=_env("pki_dir"), metavar="DIR",
                   help="PKI directory for certificate expiry and revocation (default: the "
                        "lab's own) [env DCVPN_PKI_DIR]")
    p.add_argument("--no-probe", action="store_true",
                   default=_env("no_probe") in ("1", "true", "yes"),
                   help="send no traffic (skip the MTU probe) [env DCVPN_NO_PROBE]")
    p.set_defaults(handler=cmd_diagnose, format_choices=("text", "json"))


def compile_local(fabric_file: str | None) -> CompiledFabric:
    """The model as the lab runs it, refusing one with lint errors."""
    if not fabric_file:
        raise _UsageError("no fabric given: use -f FABRIC or set DCVPN_FABRIC")
    loaded = load_fabric(fabric_file)
    errors = [f for f in lint(loaded) if f.severity is Severity.ERROR]
    if errors:
        raise FabricLoadError([f.format() for f in errors]
                              + [f"{loaded.source.file}: {len(errors)} lint error(s); "
                                 "fix them first"])
    return compile_fabric(local_fabric(loaded.fabric)[0])


def cmd_diagnose(args: argparse.Namespace) -> int:
    if args.format not in args.format_choices:
        _err(f"dcvpn diagnose: --format must be one of text, json, not {args.format!r}")
        return Exit.BAD_INPUT
    try:
        return _diagnose(args)
    except FabricLoadError as exc:
        lines, code = exc.lines, Exit.BAD_INPUT
    except (_UsageError, TopologyError, TargetError) as exc:
        lines, code = [f"dcvpn diagnose: {exc}"], Exit.BAD_INPUT
    except (TaskError, LabRecordsError, OSError) as exc:
        lines, code = [f"dcvpn diagnose: {exc}"], Exit.DEVICE
    for line in lines:
        _err(line)
    if args.format == "json":
        print(json.dumps({"ok": False, "errors": lines}, indent=2))
    return code


def _diagnose(args: argparse.Namespace) -> int:
    if not args.target:
        raise _UsageError("name a tunnel or site: dcvpn diagnose -f FABRIC TUNNEL|SITE "
                          "(see dcvpn topology)")
    compiled = compile_local(args.fabric)
    tunnels = resolve_target(compiled, args.target)
    if not is_root():
        raise _UsageError("reading the lab's gateways needs root (namespaces, vici and vtysh "
                          "sockets); run it as root, e.g. with sudo")
    name = compiled.fabric.fabric.name
    lab_dir = Path(args.lab_dir) if args.lab_dir else default_lab_dir(name)
    platform = {gw.name: gw.platform for _, gw in compiled.gateways()}
    ends = sorted({e.gateway for t in tunnels for e in t.endpoints})
    running = [g for g in ends if platform[g] is Platform.STRONGSWAN
               and (NETNS_DIR / LocalGateway.in_lab(lab_dir, g).namespace).exists()
               and LocalGateway.in_lab(lab_dir, g).folder.is_dir()]
    if not running:
        raise TaskError(f"no end of {args.target} is running in {lab_dir} "
                        f"({', '.join(ends)}); start the lab with dcvpn lab up -f "
                        f"{args.fabric}, or give its --lab-dir")
    records = read_lab_records(lab_dir)
    pki_dir = Path(args.pki_dir) if args.pki_dir else (records.pki_dir if records else None)
    found = gather(compiled, lab_dir, tunnels, records, pki_dir, datetime.now(UTC),
                   probe=not args.no_probe)
    diagnoses = [diagnose_report.Diagnosis(ev, tuple(detect(ev))) for ev in found.tunnels]
    if args.format == "json":
        sys.stdout.write(diagnose_report.as_json(diagnoses, name, found.notes))
    else:
        sys.stdout.write(diagnose_report.as_text(diagnoses, found.notes))
    bad = [d for d in diagnoses if not d.ok]
    summary = f"dcvpn diagnose: {len(diagnoses)} tunnel(s), {len(bad)} with a problem"
    first = next((d.cause for d in bad if d.cause is not None), None)
    _err(summary + (f"; likely cause: {first.cause}" if first else ""))
    return Exit.FAILED if bad else Exit.OK


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.diagnose_cmd diagnose ...` (tests, and before wiring)."""
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
