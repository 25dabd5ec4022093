"""`dcvpn onboard`: add a data center to the fabric and bring its tunnels up, step by step.

    dcvpn onboard -f fabric.yaml sin1 --region apac --prefix 10.7.0.0/16 \\
        --gateway sin1-gw1=junos@198.51.100.30,host=sin1-gw1.mgmt.example.net

1. the site goes into the model (next free id, the fabric's ASN pattern), as text after the
   last site, so the file's comments and layout stay; the new model must lint clean;
2. no existing tunnel changes id or inner addresses (checked, not assumed);
3. its identity: certificates from the fabric PKI (`--pki-dir`), or PSKs for its new tunnels
   (`--secrets-dir`);
4. render to OUT and an offline diff against the model before: only the new site and its peers
   should change (any other gateway that changes is named);
5. with --lab, the running lab grows by the new site's gateways (`dcvpn lab up --add`: started
   unconfigured, nothing running is touched); identity then comes from the lab's PKI or PSK
   folder unless --pki-dir / --secrets-dir say otherwise;
6. deploy: the new site, one hub it connects to and one peer of its region first, then the rest,
   each wave health-gated and confirmed (`dcvpn deploy --first ...`); the deploy's health gate is
   the validation;
7. the checklist of what was done. `--dry-run` writes nothing and deploys nothing.

Exit codes: 0 done, 1 lint errors / unexpected renumbering / failed deploy checks, 2 bad input,
3 a device failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from inventory.errors import FabricLoadError, TopologyError
from inventory.findings import Severity
from inventory.lint import lint
from inventory.loader import parse_fabric
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import deploy_cmd, lab_cmd
from pipelines.diff_cmd import offline_diff
from pipelines.exit_codes import Exit
from tasks.errors import TaskError
from tasks.intent import INTENT_FILE, gateway_intent
from tasks.lab_devices import DEVICES_FILE, LabDevicesError, lab_secrets_dir, load_lab_devices
from tasks.lab_records import LabRecordsError, read_lab_records
from tasks.onboard import OnboardError, SiteRequest, deploy_plan, insert_site, parse_gateway
from tasks.onboard import site_entry as make_entry
from tasks.pki.errors import PkiError
from tasks.pki.files import default_pki_dir, default_secrets_dir
from tasks.pki.issue import issue_certs
from tasks.pki.keys import PASSPHRASE_ENV, Passphrase
from tasks.pki.psk import ensure_psks
from tasks.pki.store import Layout
from tasks.render import render_gateway, write_files
from tasks.validate_strongswan import default_lab_dir

Handler = Callable[[argparse.Namespace], int]
TRUE = ("1", "true", "yes")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DCVPN_{name.upper()}", default)


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Step:
    name: str
    status: str  # done | skipped | failed | planned
    detail: str = ""
    items: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.name, "status": self.status, "detail": self.detail,
                "items": self.items}


class _StepFailedError(Exception):
    def __init__(self, code: Exit) -> None:
        super().__init__(str(code))
        self.code = code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doc = __doc__.split("\n\n", 1)[1] if __doc__ else None
    p = subparsers.add_parser(
        "onboard", help="add a site to the model, issue its identity, render, diff, deploy",
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-f", "--fabric", default=_env("fabric"), metavar="FABRIC",
                   help="the fabric YAML file, changed in place [env DCVPN_FABRIC]")
    p.add_argument("site", metavar="SITE", help="the new site's name")
    p.add_argument("--region", help="the site's region (hybrid: its regional mesh)")
    p.add_argument("--prefix", action="append", default=[], metavar="CIDR",
                   help="a prefix the site announces (repeatable, at least one)")
    p.add_argument("--gateway", action="append", default=[], metavar="SPEC",
                   help="NAME=PLATFORM@PUBLIC_IP[,host=MGMT][,transport=T] (repeatable; "
                        "two for an HA site)")
    p.add_argument("--id", type=int, dest="site_id", metavar="N",
                   help="site id (default: one above the highest)")
    p.add_argument("--asn", type=int, metavar="N",
                   help="ebgp ASN (default: the fabric's pattern, e.g. 65000 + id)")
    p.add_argument("-o", "--out", default=_env("out", "out"), metavar="OUT",
                   help="render output folder (default out) [env DCVPN_OUT]")
    p.add_argument("--pki-dir", default=_env("pki_dir"), metavar="DIR",
                   help="the fabric PKI for certificate fabrics [env DCVPN_PKI_DIR]")
    p.add_argument("--secrets-dir", default=_env("secrets_dir"), metavar="DIR",
                   help="where PSKs live for psk fabrics [env DCVPN_SECRETS_DIR]")
    p.add_argument("--dry-run", action="store_true",
                   default=_env("dry_run", "") in TRUE,
                   help="show what would be done: no file written, nothing deployed")
    p.add_argument("--no-deploy", action="store_true",
                   help="stop after the diff (deploy later with dcvpn deploy --first ...)")
    p.add_argument("--lab", action="store_true", default=_env("lab", "") in TRUE,
                   help="grow the running lab by the new site (dcvpn lab up --add) and deploy "
                        "to the lab's devices (devices.json); identity from the lab's PKI or "
                        "PSKs [env DCVPN_LAB]")
    p.add_argument("--lab-dir", default=_env("lab_dir"), metavar="DIR",
                   help="the lab's directory [env DCVPN_LAB_DIR]")
    p.add_argument("--confirm-timeout", default=_env("confirm_timeout", "300"),
                   metavar="SECONDS", help="passed to dcvpn deploy (default 300)")
    p.add_argument("--settle", default=_env("settle", "60"), metavar="SECONDS",
                   help="passed to dcvpn deploy (default 60)")
    p.add_argument("--interval", default=_env("interval", "2"), metavar="SECONDS",
                   help="passed to dcvpn deploy (default 2)")
    p.add_argument("--workers", default=_env("workers", "4"), metavar="N",
                   help="passed to dcvpn deploy (default 4)")
    p.add_argument("--report", default=_env("report", "dcvpn-deploy-report.json"),
                   metavar="FILE", help="the deploy's JSON report")
    p.add_argument("--state", default=_env("state"), metavar="FILE",
                   help="the deploy's pending-state file (default .dcvpn/deploy-<fabric>.json)")
    p.add_argument("--format", choices=("text", "json"), default=_env("format", "text"),
                   help="checklist as text (stderr) or JSON (stdout)")
    p.set_defaults(handler=cmd_onboard)


def _request(args: argparse.Namespace) -> SiteRequest:
    try:
        prefixes = tuple(IPv4Network(p) for p in args.prefix)
    except ValueError as exc:
        raise OnboardError(f"--prefix: {exc}") from None
    return SiteRequest(args.site, args.region, prefixes,
                       tuple(parse_gateway(g) for g in args.gateway), args.site_id, args.asn)


def _peers(compiled: CompiledFabric, site: str) -> set[str]:
    out = set()
    for tunnel in compiled.tunnels:
        a, b = tunnel.endpoints
        if a.site == site:
            out.add(b.gateway)
        elif b.site == site:
            out.add(a.gateway)
    return out


def _render_all(compiled: CompiledFabric, out: Path) -> None:
    for _, gw in compiled.gateways():
        files = render_gateway(compiled, gw.name)
        files[INTENT_FILE] = json.dumps(gateway_intent(compiled, gw.name), indent=2,
                                        sort_keys=True) + "\n"
        write_files(out, gw.name, files)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.onboard")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)


class Onboarding:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.steps: list[Step] = []

    def step(self, name: str, status: str, detail: str = "",
             items: Sequence[str] = ()) -> Step:
        step = Step(name, status, detail, list(items))
        self.steps.append(step)
        if self.args.format == "text":
            mark = {"done": "[x]", "skipped": "[-]", "failed": "[!]", "planned": "[ ]"}
            _err(f"{mark.get(status, '[?]')} {name}: {detail}")
            for item in items:
                _err(f"      {item}")
        return step

    def run(self) -> Exit:
        args = self.args
        if not args.fabric:
            raise OnboardError("no fabric given: use -f FABRIC or set DCVPN_FABRIC")
        path = Path(args.fabric)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise OnboardError(f"{path}: cannot read: {exc.strerror or exc}") from None
        old = parse_fabric(text, str(path))
        if args.lab:
            self._lab_identity(old.fabric.fabric.name)
        entry = make_entry(old.fabric, _request(args))
        new_text = insert_site(text, entry, str(path))
        new = parse_fabric(new_text, str(path))
        errors = [f for f in lint(new) if f.severity is Severity.ERROR]
        if errors:
            self.step("model", "failed", f"the fabric with {args.site} has lint errors; "
                      f"{path} is unchanged", [f.format() for f in errors])
            raise _StepFailedError(Exit.FAILED)
        before, after = compile_fabric(old.fabric), compile_fabric(new.fabric)
        what = f"site {args.site} (id {entry['id']}" + (
            f", ASN {entry['asn']})" if "asn" in entry else ")")
        self.step("model", "planned" if args.dry_run else "done",
                  f"{what} {'would be added' if args.dry_run else 'added'} to {path}")
        self._check_numbering(before, after)
        self._identity(after)
        changed = self._render_and_diff(before, after)
        if not args.dry_run:
            _write_atomic(path, new_text)
        plan = deploy_plan(after, args.site, changed)
        first = ", ".join(plan.first)
        lab = self._lab_option()
        if args.dry_run or args.no_deploy:
            if args.lab:
                self.step("lab", "planned", "start the new site's gateways in the running lab",
                          [f"dcvpn lab up --add -f {path}{lab}"])
            self.step("deploy", "planned", f"first {first}; then {len(plan.rest)} more",
                      [f"dcvpn deploy -f {path} --first {','.join(plan.first)}"
                       + (f" --lab{lab}" if args.lab else "")])
            return Exit.OK
        if args.lab:
            code = self._grow_lab(path, after)
            if code is not Exit.OK:
                return code
        return self._deploy(path, plan.first)

    def _lab_option(self) -> str:
        return f" --lab-dir {self.args.lab_dir}" if self.args.lab_dir else ""

    def _lab_identity(self, fabric: str) -> None:
        """--lab: the new site's certificates or PSKs come from the lab's, unless given."""
        args = self.args
        lab_dir = Path(args.lab_dir) if args.lab_dir else default_lab_dir(fabric)
        try:
            records = read_lab_records(lab_dir)
        except LabRecordsError as exc:
            raise OnboardError(str(exc)) from None
        if records is None:
            return  # a devices.json without a lab of ours: identity as given
        if not args.pki_dir and records.pki_dir is not None:
            args.pki_dir = str(records.pki_dir)
        secrets = lab_secrets_dir(lab_dir)
        if not args.secrets_dir and secrets is not None:
            args.secrets_dir = str(secrets)

    def _grow_lab(self, path: Path, compiled: CompiledFabric) -> Exit:
        """The new site's gateways join the running lab (through the lab command: nothing
        but tests and pipelines/lab_cmd.py imports lab), unless its devices.json lists them
        already."""
        args = self.args
        lab_dir = (Path(args.lab_dir) if args.lab_dir
                   else default_lab_dir(compiled.fabric.fabric.name))
        new = [gw.name for gw in compiled.fabric.site(args.site).gateways]
        try:
            listed = load_lab_devices(lab_dir)
        except LabDevicesError:
            listed = {}
        if all(name in listed for name in new):
            self.step("lab", "skipped", f"{lab_dir / DEVICES_FILE} lists "
                      f"{', '.join(new)} already")
            return Exit.OK
        raw, data = lab_cmd.grow_lab(str(path), self.args.lab_dir)
        code = Exit(raw)
        if code is not Exit.OK:
            self.step("lab", "failed", f"dcvpn lab up --add exit {int(code)}; {path} "
                      f"keeps the new site: fix, run dcvpn lab up --add -f {path}"
                      f"{self._lab_option()}, then dcvpn deploy --lab",
                      [str(e) for e in data.get("errors", [])])
            return code
        added = [str(g) for g in data.get("added", [])]
        added += [f"{g} (emulated)" for g in data.get("added_emulated", [])]
        self.step("lab", "done", f"the lab in {data.get('lab_dir', '?')} runs "
                  f"{', '.join(added) or 'the new site already'} (dcvpn lab up --add); "
                  f"{len(data.get('kept', []))} running gateway(s) untouched; the deploy "
                  "configures the new ones")
        return Exit.OK

    def _check_numbering(self, before: CompiledFabric, after: CompiledFabric) -> None:
        old = {t.name: (t.id, str(t.network)) for t in before.tunnels}
        now = {t.name: (t.id, str(t.network)) for t in after.tunnels}
        moved = [f"{n}: {old[n]} -> {now.get(n)}" for n in sorted(old) if now.get(n) != old[n]]
        if moved:
            self.step("numbering", "failed", "existing tunnels would change", moved)
            raise _StepFailedError(Exit.FAILED)
        added = len(now) - len(old)
        self.step("numbering", "done", f"{len(old)} existing tunnel(s) keep their ids and "
                  f"addresses; {added} new")

    def _identity(self, compiled: CompiledFabric) -> None:
        args, fabric = self.args, compiled.fabric
        site = fabric.site(args.site)
        if fabric.fabric.auth.method == "certificate":
            layout = Layout(Path(args.pki_dir) if args.pki_dir
                            else default_pki_dir(fabric.fabric.name))
            if not layout.ca_cert.exists():
                self.step("certificates", "skipped", f"no fabric CA in {layout.root}: run "
                          f"dcvpn pki init, then dcvpn pki issue --site {args.site}")
                return
            if args.dry_run:
                self.step("certificates", "planned",
                          f"issue {', '.join(g.name for g in site.gateways)} from {layout.root}")
                return
            results = issue_certs(layout, fabric, site.gateways,
                                  Passphrase.from_env(PASSPHRASE_ENV), datetime.now(UTC),
                                  days=fabric.fabric.auth.cert_days)
            self.step("certificates", "done", f"from {layout.root}",
                      [f"{r.gateway}: {r.outcome} serial {r.serial}" for r in results])
            return
        secrets = Path(args.secrets_dir) if args.secrets_dir else default_secrets_dir(
            fabric.fabric.name)
        tunnels = [t.name for t in compiled.tunnels
                   if args.site in (t.endpoints[0].site, t.endpoints[1].site)]
        if args.dry_run:
            self.step("pre-shared keys", "planned", f"{len(tunnels)} new key(s) in {secrets}")
            return
        keys = ensure_psks(secrets, tunnels)
        self.step("pre-shared keys", "done", f"in {secrets} (values never shown)",
                  [f"{k.tunnel}: {k.outcome} sha256:{k.fingerprint}" for k in keys])

    def _render_and_diff(self, before: CompiledFabric, after: CompiledFabric) -> list[str]:
        args = self.args
        with tempfile.TemporaryDirectory(prefix="dcvpn-onboard-") as tmp:
            old_out = Path(tmp) / "before"
            _render_all(before, old_out)
            if args.dry_run:
                self.step("render", "planned", f"into {args.out}")
            else:
                _render_all(after, Path(args.out))
                self.step("render", "done", f"every gateway into {args.out}")
            diffs = offline_diff(after, old_out)
        changed = sorted(d.gateway for d in diffs if d.changed)
        new_gws = {gw.name for s, gw in after.gateways() if s.name == args.site}
        expected = new_gws | _peers(after, args.site)
        others = [g for g in changed if g not in expected]
        items = [f"{g}: {len(d.semantic)} change(s)" for d in diffs if d.changed
                 for g in [d.gateway] if g in expected]
        if others:
            items.append(f"also changes {len(others)} gateway(s) that have no tunnel to "
                         f"{args.site}: {', '.join(others)} (accepted fabric prefixes)")
        self.step("diff", "done", f"{len(changed)} gateway(s) change: the new site's "
                  f"{len(new_gws)}, {len(expected) - len(new_gws)} peer(s), "
                  f"{len(others)} other(s)", items)
        return changed

    def _deploy(self, path: Path, first: Sequence[str]) -> Exit:
        args = self.args
        argv = ["deploy", "-f", str(path), "--first", ",".join(first),
                "--confirm-timeout", str(args.confirm_timeout), "--settle", str(args.settle),
                "--interval", str(args.interval), "--workers", str(args.workers),
                "--report", args.report, "--format", "json" if args.format == "json"
                else "text"]
        if args.state:
            argv += ["--state", args.state]
        if args.lab:
            argv.append("--lab")
        if args.lab_dir:
            argv += ["--lab-dir", args.lab_dir]
        if args.secrets_dir:
            argv += ["--secrets-dir", args.secrets_dir]
        out = sys.stdout
        if args.format == "json":
            sys.stdout = sys.stderr  # the deploy's own JSON goes to its report file
        try:
            code = Exit(deploy_cmd.main(argv))
        finally:
            sys.stdout = out
        detail = f"report {args.report}"
        try:
            report = json.loads(Path(args.report).read_text())
        except (OSError, ValueError):
            report = {}
        waves = report.get("waves", [])
        items = [f"wave {w.get('number')} ({w.get('kind')}): {', '.join(w.get('gateways', []))}"
                 f" -> {w.get('outcome', '?')}" for w in waves]
        if code is Exit.OK:
            first = ", ".join(waves[0].get("gateways", [])) if waves else "-"
            self.step("deploy", "done", f"{len(waves)} wave(s), first {first}; {detail}",
                      items)
            self.step("validate", "done", "every wave's health gate passed on both ends of "
                      "each of its tunnels")
        else:
            self.step("deploy", "failed", f"exit {int(code)}: {report.get('message', '')}; "
                      f"{detail}", items)
            self.step("model", "done", f"{path} keeps the new site: revert it (git) or fix "
                      "and run dcvpn deploy again")
        return code


def cmd_onboard(args: argparse.Namespace) -> int:
    onboarding = Onboarding(args)
    try:
        code = onboarding.run()
    except FabricLoadError as exc:
        for line in exc.lines:
            _err(line)
        code = Exit.BAD_INPUT
    except (OnboardError, TopologyError, PkiError, TaskError) as exc:
        _err(f"dcvpn onboard: {exc}")
        code = Exit.BAD_INPUT
    except _StepFailedError as exc:
        code = exc.code
    if args.format == "json":
        print(json.dumps({"site": args.site, "exit_code": int(code),
                          "steps": [s.as_dict() for s in onboarding.steps]}, indent=2))
    return int(code)
