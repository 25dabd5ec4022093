"""`dcvpn lint`, `topology`, `render` and `diff`: the commands that start from the model alone.

Each command has its own register_<command>() for pipelines/cli.py, which calls only the one
that runs. render's and diff's heavy dependencies (Nornir, Jinja2; diff's device stack) are
imported inside their functions, so `dcvpn lint` and `dcvpn topology` never load them.
"""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TypeAlias

from inventory.errors import FabricLoadError
from inventory.findings import Severity
from inventory.lint import RULES, lint, worst
from inventory.loader import LoadedFabric, load_fabric
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import sharding, topology_report
from pipelines.exit_codes import Exit
from pipelines.usage import UsageError

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DCVPN_{name.upper()}", default)


def _add_fabric(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--fabric", default=_env("fabric"), metavar="FABRIC",
                   help="fabric model YAML file [env DCVPN_FABRIC]")


def _add_format(p: argparse.ArgumentParser, choices: Sequence[str] = ("text", "json")) -> None:
    p.add_argument("--format", default=_env("format", "text"), metavar="|".join(choices),
                   help=f"output format: {', '.join(choices)} (default text) [env DCVPN_FORMAT]")
    p.set_defaults(format_choices=tuple(choices))


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _load(args: argparse.Namespace) -> LoadedFabric:
    if not args.fabric:
        raise UsageError("no fabric given: use -f FABRIC or set DCVPN_FABRIC")
    return load_fabric(args.fabric)


def _compile_clean(args: argparse.Namespace) -> tuple[LoadedFabric, CompiledFabric]:
    """Load and compile, refusing a model with lint errors (they are printed)."""
    loaded = _load(args)
    errors = [f for f in lint(loaded) if f.severity is Severity.ERROR]
    if errors:
        summary = f"{loaded.source.file}: {len(errors)} lint error(s); fix them first"
        raise FabricLoadError([f.format() for f in errors] + [summary])
    return loaded, compile_fabric(loaded.fabric)


def cmd_lint(args: argparse.Namespace) -> int:
    if args.rules:
        if args.format == "json":
            print(json.dumps([{"code": r.code, "severity": str(r.severity), "summary": r.summary}
                              for r in RULES], indent=2))
        else:
            for r in RULES:
                print(f"{r.code}  {r.severity!s:<7}  {r.summary}")
        return Exit.OK
    select = set(args.select.split(",")) if args.select else None
    loaded = _load(args)
    findings = lint(loaded, select)
    counts = {str(s): sum(1 for f in findings if f.severity is s) for s in reversed(Severity)}
    top = worst(findings)
    code = Exit.FAILED if top is Severity.ERROR else Exit.OK
    if args.format == "json":
        print(json.dumps({"file": loaded.source.file, "ok": code == Exit.OK, "counts": counts,
                          "findings": [f.as_dict() for f in findings]}, indent=2))
    else:
        for f in findings:
            print(f.format())
        summary = ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items())
        _err(f"{loaded.source.file}: {summary}")
    return code


def cmd_topology(args: argparse.Namespace) -> int:
    _, compiled = _compile_clean(args)
    writer = {"text": topology_report.as_text, "json": topology_report.as_json,
              "dot": topology_report.as_dot}[args.format]
    sys.stdout.write(writer(compiled))
    return Exit.OK


def cmd_render(args: argparse.Namespace) -> int:
    # Nornir and the Jinja2 templates: only render needs them
    from pipelines.fleet import make_nornir  # noqa: PLC0415
    from tasks.render import render  # noqa: PLC0415

    if not args.out:
        raise UsageError("no output folder given: use -o OUT or set DCVPN_OUT")
    loaded, compiled = _compile_clean(args)
    nr = make_nornir(loaded.source.file, compiled)
    if args.site is None and _env("site"):
        args.site = [s for s in str(_env("site")).split(",") if s]
    if args.site:
        known = {s.name for s in compiled.fabric.sites}
        unknown = [s for s in args.site if s not in known]
        if unknown:
            raise UsageError(f"unknown site(s): {', '.join(unknown)}")
        nr = nr.filter(filter_func=lambda h: h["site"] in args.site)
    nr = nr.filter(filter_func=lambda h: sharding.holds(args.shard, h.name))
    results = nr.run(task=render, out_dir=args.out, pki_dir=args.pki_dir)
    report: dict[str, dict[str, object]] = {}
    failed = False
    for name in sorted(results):
        res = results[name][0]
        if res.failed:
            failed = True
            _err(f"{name}: render failed: {res.exception or res.result}")
            report[name] = {"failed": True, "error": str(res.exception or res.result)}
            continue
        report[name] = {"files": sorted(res.result), "changed": res.changed}
    changed = sum(1 for r in report.values() if r.get("changed"))
    _err(f"rendered {len(report)} gateway(s) into {args.out}: {changed} changed")
    if args.format == "json":
        print(json.dumps({"out": args.out, "gateways": report}, indent=2))
    return Exit.FAILED if failed else Exit.OK


def cmd_diff(args: argparse.Namespace) -> int:
    from pipelines import diff_cmd  # noqa: PLC0415 - the device stack: only diff needs it

    _, compiled = _compile_clean(args)
    if args.site is None and _env("site"):
        args.site = [s for s in str(_env("site")).split(",") if s]
    try:
        return diff_cmd.run(args, compiled)
    except diff_cmd.DiffUsageError as exc:
        raise UsageError(str(exc)) from exc


def register_lint(sub: SubParsers) -> None:
    p = sub.add_parser("lint", help="check the model: schema and policy",
                       description="Check schema and policy. Each finding names file, line, "
                                   "YAML path, severity and a stable code. Exit 0 clean or "
                                   "warnings only, 1 any error finding, 2 unusable input.")
    _add_fabric(p)
    _add_format(p)
    p.add_argument("--select", default=_env("select"), metavar="CODES",
                   help="only these rule codes, comma separated [env DCVPN_SELECT]")
    p.add_argument("--rules", action="store_true", help="list every rule and exit")
    p.set_defaults(handler=cmd_lint)


def register_topology(sub: SubParsers) -> None:
    p = sub.add_parser("topology", help="show compiled tunnels and BGP sessions",
                       description="Compile the model and show every tunnel (id, plane, link, "
                                   "inner addresses, MTU/MSS) and BGP session. Refuses a model "
                                   "with lint errors (exit 2).")
    _add_fabric(p)
    _add_format(p, ("text", "json", "dot"))
    p.set_defaults(handler=cmd_topology)


def register_render(sub: SubParsers) -> None:
    p = sub.add_parser("render", help="render every gateway's configuration files",
                       description="Render OUT/<gateway>/<files> from the model: strongSwan "
                                   "swanctl.conf, strongswan.conf, frr.conf; IOS-XE config.xml "
                                   "and config.cli; JunOS config.xml and config.set. Output is "
                                   "deterministic; secrets appear only as references. Refuses "
                                   "a model with lint errors (exit 2).")
    _add_fabric(p)
    _add_format(p)
    p.add_argument("-o", "--out", default=_env("out"), metavar="OUT",
                   help="output folder [env DCVPN_OUT]")
    p.add_argument("--site", action="append", metavar="S",
                   help="only this site's gateways (repeatable) [env DCVPN_SITE, comma separated]")
    p.add_argument("--pki-dir", default=_env("pki_dir"), metavar="D",
                   help="embed this PKI's CA and gateway certificates where a platform keeps "
                        "them in its configuration (IOS-XE config.cli: crypto pki certificate "
                        "chain); never a private key [env DCVPN_PKI_DIR]")
    sharding.add_option(p)
    p.set_defaults(handler=cmd_render)


def register_diff(sub: SubParsers) -> None:
    from pipelines.diff_cmd import DEFAULT_WORKERS  # noqa: PLC0415 - as cmd_diff

    p = sub.add_parser("diff", help="dry run: what a deploy would change, per gateway",
                       description="Per gateway: the semantic IPsec/BGP changes (tunnels, "
                                   "proposals, lifetimes, BGP neighbors, prefixes) and a "
                                   "unified diff, secrets masked. By default against the "
                                   "devices (running config vs rendered, plus the device's "
                                   "native diff; the candidate is always discarded); --lab "
                                   "targets the staging lab's devices. --offline OUT_OLD "
                                   "compares with an earlier `dcvpn render` output, without "
                                   "any device. Nothing is changed anywhere. Exit 3 when a "
                                   "device could not be compared.")
    _add_fabric(p)
    _add_format(p, ("text", "json", "markdown"))
    p.add_argument("--offline", default=_env("offline"), metavar="OUT_OLD",
                   help="earlier render output to compare with [env DCVPN_OFFLINE]")
    p.add_argument("--site", action="append", metavar="S",
                   help="only this site's gateways (repeatable) [env DCVPN_SITE]")
    p.add_argument("--report", default=_env("report"), metavar="FILE",
                   help="also write the Markdown report here (for a merge request) "
                        "[env DCVPN_REPORT]")
    p.add_argument("--exit-code", action="store_true",
                   default=_env("exit_code") in ("1", "true", "yes"),
                   help="exit 1 when anything would change [env DCVPN_EXIT_CODE]")
    p.add_argument("--lab", action="store_true",
                   default=_env("lab") in ("1", "true", "yes"),
                   help="compare with the staging lab's devices (its devices.json) [env DCVPN_LAB]")
    p.add_argument("--lab-dir", default=_env("lab_dir"), metavar="DIR",
                   help="the lab's directory (default /run/dcvpn-lab/<fabric>) "
                        "[env DCVPN_LAB_DIR]")
    p.add_argument("--workers", type=int, default=_env("workers", str(DEFAULT_WORKERS)),
                   metavar="N", help="devices diffed at once (default "
                   f"{DEFAULT_WORKERS}) [env DCVPN_WORKERS]")
    p.add_argument("--pki-dir", default=_env("pki_dir"), metavar="DIR",
                   help="certificate fabrics: compare the certificates of this PKI directory "
                        "too (default: none; with --lab the lab's own) [env DCVPN_PKI_DIR]")
    sharding.add_option(p)
    p.set_defaults(handler=cmd_diff)
