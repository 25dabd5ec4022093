"""`dcvpn lab up | status | reload-creds | down | serve`: the staging lab of real strongSwan +
FRR gateways and emulated IOS-XE / JunOS devices.

`up` starts, for every strongSwan gateway of the fabric, a network namespace
`dcvpn-<gateway>` with charon-systemd (kernel-libipsec) and FRR (zebra, bgpd, bfdd) loaded
with exactly what `dcvpn render` produces, an underlay bridge between them and one LAN
address per site prefix; then it waits until every IKE SA is ESTABLISHED, every CHILD SA
INSTALLED, every BGP session Established and every expected route is in each kernel table.
A second `up` of an existing lab is refused (run `down` first); `up --add` grows a running
lab instead: it starts only the gateways of the (changed) model that the lab does not run yet
(a strongSwan gateway unconfigured, for `dcvpn deploy --lab` to configure; an emulator in the
running supervisor) and touches nothing that runs (`dcvpn onboard --lab` does this before its
deploy). `down` stops every process
the lab started (by PID), removes every namespace and file it made, works from the state
file alone (also after a crash or a half-finished up) and is idempotent.

A certificate lab takes its certificates from --pki-dir (a PKI made with `dcvpn pki init` and
`issue`; only read) or else from a throwaway CA in the lab dir. After `dcvpn pki revoke`,
`reload-creds` copies the PKI's files to every gateway again, reloads them in charon and
re-authenticates the revoked gateways' tunnels, which their peers then refuse.

`up` also starts one emulator per junos (netconf) and iosxe (netconf or ssh) gateway, all in
one supervisor process, each on its own 127.0.0.1 port with the lab login admin/admin; their
host keys go to <lab dir>/known_hosts and every device of the lab to <lab dir>/devices.json
(what `--lab` of the device commands reads). A fabric without strongSwan gateways makes no
namespace and needs no strongSwan/FRR packages. `serve` runs one emulator in the
foreground (no root needed) until Ctrl-C or SIGTERM.

The lab dir is --lab-dir, DCVPN_LAB_DIR, or /run/dcvpn-lab/<fabric>. Exit codes: 0 ok;
1 not ready within --timeout (the lab is left running for `status` / `validate`; remove it
with `down`), lab already up (up) or not up (up --add), a daemon down (status) or something
left behind (down);
2 bad input or usage: not root, a missing Debian package, an unusable model, a PKI dir that
lacks a gateway's certificate or key or needs a passphrase; 3 a daemon or namespace could not
be set up (what was made is removed again unless --keep), or swanctl failed (reload-creds).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from inventory.errors import FabricLoadError, TopologyError
from inventory.findings import Severity
from inventory.lint import lint
from inventory.loader import load_fabric
from inventory.model import Platform
from inventory.topology import CompiledFabric, compile_fabric
from lab import heal as lab_heal
from lab import requirements
from lab.creds import NoCertificatesError, NoLabError, ReloadResult, reload_creds
from lab.down import DownResult, tear_down
from lab.emulated import not_in_lab
from lab.emulators.catalog import DEFAULT_PASSWORD, DEFAULT_USERNAME, default_state_dir
from lab.emulators.errors import EmulatorError
from lab.errors import LabError
from lab.grow import GrowResult, NoRunningLabError, grow
from lab.state import LabBusyError
from lab.status import EmulatorStatus, LabStatus, lab_status
from lab.topology import lab_gateways
from lab.up import LabExistsError, UpResult, bring_up
from pipelines.exit_codes import Exit
from pipelines.progress import LiveLine
from tasks.errors import TaskError
from tasks.pki.delivery import strongswan_files
from tasks.pki.errors import PkiError
from tasks.pki.keys import PASSPHRASE_ENV, Passphrase
from tasks.validate_strongswan import default_lab_dir, local_fabric

if TYPE_CHECKING:
    from lab.emulators.hosting import EmulatorSpec, Server

Handler = Callable[[argparse.Namespace], int]
DEFAULT_TIMEOUT = 60.0
_TRUE = {"1", "true", "yes", "on"}


class _UsageError(Exception):
    """Bad command-line usage or environment: one line, exit 2."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DCVPN_{name.upper()}", default)


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--fabric", default=_env("fabric"), metavar="FABRIC",
                   help="fabric model YAML file [env DCVPN_FABRIC]")
    p.add_argument("--format", default=_env("format", "text"), metavar="text|json",
                   help="output format: text, json (default text) [env DCVPN_FORMAT]")
    p.add_argument("--lab-dir", default=_env("lab_dir"), metavar="DIR",
                   help="lab state directory (default /run/dcvpn-lab/<fabric>) "
                        "[env DCVPN_LAB_DIR]")
    p.set_defaults(format_choices=("text", "json"))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
             ) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add `lab` and its sub-commands (up, reload-creds, status, down, serve); returns them."""
    lab = subparsers.add_parser(
        "lab", help="staging lab: real strongSwan + FRR gateways in network namespaces, "
                    "emulated IOS-XE / JunOS devices",
        description="The staging lab on this machine (root): one network namespace "
                    "dcvpn-<gateway> per strongSwan gateway, one emulator per junos/iosxe "
                    "gateway on 127.0.0.1; `serve` runs one emulator (no root).",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    lab.set_defaults(handler=_help_of(lab))
    sub = lab.add_subparsers(dest="lab_command", metavar="SUBCOMMAND")

    p = sub.add_parser("up", help="start the lab and wait until it is ready",
                       description="Start every strongSwan gateway of the fabric and wait "
                                   "until tunnels, BGP and routes are up (--timeout).")
    _common(p)
    p.add_argument("--timeout", default=_env("timeout", str(DEFAULT_TIMEOUT)), metavar="SEC",
                   help=f"give up waiting after SEC seconds (default {DEFAULT_TIMEOUT:.0f}) "
                        "[env DCVPN_TIMEOUT]")
    p.add_argument("--keep", action="store_true",
                   default=(_env("keep") or "").lower() in _TRUE,
                   help="when a daemon cannot start, keep what was made (for debugging) "
                        "instead of removing it [env DCVPN_KEEP]")
    _pki_option(p, "take the certificates from this PKI directory (dcvpn pki init/issue; "
                   "read only) instead of a throwaway CA in the lab dir")
    _time_scale_option(p)
    p.add_argument("--add", action="store_true",
                   default=(_env("add") or "").lower() in _TRUE,
                   help="grow the running lab: start only the gateways of the model it does "
                        "not run yet, unconfigured (dcvpn deploy --lab configures them); "
                        "nothing running is touched [env DCVPN_ADD]")
    p.set_defaults(handler=_guard(cmd_up))

    p = sub.add_parser("reload-creds", help="re-deliver the PKI's files and reload them",
                       description="Copy every gateway's certificate, key, CA and CRL from "
                                   "the lab's PKI directory into its swanctl folders, reload "
                                   "them in charon (swanctl --load-creds --clear) and "
                                   "terminate the IKE SAs of every gateway whose certificate "
                                   "is revoked, so that its peers authenticate it again "
                                   "against the new CRL (and refuse it).")
    _common(p)
    p.set_defaults(handler=_guard(cmd_reload_creds))

    p = sub.add_parser("status", help="each gateway's daemons and tunnels",
                       description="Each gateway's daemons (PID, alive) and tunnels (IKE and "
                                   "CHILD SA state). Exit 1 when a daemon is down or there "
                                   "is no lab.")
    _common(p)
    p.set_defaults(handler=_guard(cmd_status))

    p = sub.add_parser("down", help="stop and remove everything the lab made",
                       description="Stop every process the lab started and remove its "
                                   "namespaces and files; needs only the lab dir (-f or "
                                   "--lab-dir). Idempotent.")
    _common(p)
    p.set_defaults(handler=_guard(cmd_down))
    _serve_parser(sub)
    _heal_parser(sub)
    return sub


def _time_scale_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-scale", default=_env("time_scale", "1"), metavar="S",
                   help="emulated devices run their timers (commit-confirm, revert) at S real "
                        "seconds per device second, e.g. 0.01 in tests (default 1) "
                        "[env DCVPN_TIME_SCALE]")


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve", help="run one device emulator in the foreground (no root needed)",
        description="Run one emulated device on a loopback address until Ctrl-C or SIGTERM "
                    "(exit 0): junos over NETCONF, iosxe over NETCONF or the IOS-XE SSH CLI. "
                    "Prints where it listens (stderr) and the known_hosts line of its host "
                    "key (stdout); the key is made once and kept in the state dir.")
    p.add_argument("--platform", default=_env("platform"), metavar="junos|iosxe",
                   help="device platform [env DCVPN_PLATFORM]")
    p.add_argument("--transport", default=_env("transport"), metavar="netconf|ssh",
                   help="netconf (junos, iosxe) or ssh (the iosxe CLI) [env DCVPN_TRANSPORT]")
    p.add_argument("--port", default=_env("port"), metavar="N",
                   help="TCP port; 0 picks a free one [env DCVPN_PORT]")
    p.add_argument("--host", default=_env("host", "127.0.0.1"), metavar="ADDR",
                   help="loopback address to listen on (default 127.0.0.1) [env DCVPN_HOST]")
    p.add_argument("--username", default=_env("username", DEFAULT_USERNAME), metavar="U",
                   help=f"login (default {DEFAULT_USERNAME}) [env DCVPN_USERNAME]")
    p.add_argument("--password", default=_env("password", DEFAULT_PASSWORD), metavar="P",
                   help=f"password (default {DEFAULT_PASSWORD}) [env DCVPN_PASSWORD]")
    _time_scale_option(p)
    p.add_argument("--state-dir", default=_env("state_dir"), metavar="DIR",
                   help="where the SSH host key is kept (default "
                        "${XDG_STATE_HOME:-~/.local/state}/dcvpn/lab) [env DCVPN_STATE_DIR]")
    p.add_argument("--hostname", default=_env("hostname"), metavar="NAME",
                   help="the device's hostname [env DCVPN_HOSTNAME]")
    p.add_argument("--os-version", default=_env("os_version"), metavar="17.15|17.12",
                   help="iosxe: the release to emulate (default 17.15) [env DCVPN_OS_VERSION]")
    p.add_argument("--no-confirmed-commit", action="store_true",
                   default=(_env("no_confirmed_commit") or "").lower() in _TRUE,
                   help="iosxe netconf: do not advertise or serve :confirmed-commit "
                        "[env DCVPN_NO_CONFIRMED_COMMIT]")
    p.add_argument("--format", default=_env("format", "text"), metavar="text|json",
                   help="text: known_hosts line on stdout; json: one JSON line on stdout "
                        "(default text) [env DCVPN_FORMAT]")
    p.set_defaults(handler=cmd_serve)


def _pki_option(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("--pki-dir", default=_env("pki_dir"), metavar="D",
                   help=f"{text}; private keys are decrypted with {PASSPHRASE_ENV} when "
                        "encrypted [env DCVPN_PKI_DIR]")


def _help_of(parser: argparse.ArgumentParser) -> Handler:
    def show(_: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return Exit.BAD_INPUT
    return show


def _guard(fn: Handler) -> Handler:
    """Root and format checks, then every expected failure as one message and an exit code."""
    def run(args: argparse.Namespace) -> int:
        name = f"dcvpn lab {args.lab_command}"
        if args.format not in args.format_choices:
            _err(f"{name}: --format must be one of text, json, not {args.format!r}")
            return Exit.BAD_INPUT
        if not requirements.is_root():
            lines, code = [f"{name}: the lab needs root (network namespaces, charon, FRR); "
                           "run it as root, e.g. with sudo"], Exit.BAD_INPUT
        else:
            try:
                return fn(args)
            except FabricLoadError as exc:
                lines, code = exc.lines, Exit.BAD_INPUT
            except (_UsageError, TopologyError, TaskError) as exc:
                lines, code = [f"{name}: {exc}"], Exit.BAD_INPUT
            except (LabExistsError, LabBusyError, NoRunningLabError) as exc:
                lines, code = [f"{name}: {exc}"], Exit.FAILED
            except (LabError, PkiError, OSError) as exc:
                lines, code = [f"{name}: {exc}"], Exit.DEVICE
        for line in lines:
            _err(line)
        if args.format == "json":
            print(json.dumps({"ok": False, "errors": lines}, indent=2))
        return code
    return run


# --- helpers ---------------------------------------------------------------------------------

def _compile(args: argparse.Namespace) -> tuple[CompiledFabric, list[str]]:
    """The lint-clean model as the lab runs it, and notes on what the lab changes or leaves."""
    if not args.fabric:
        raise _UsageError("no fabric given: use -f FABRIC or set DCVPN_FABRIC")
    loaded = load_fabric(args.fabric)
    errors = [f for f in lint(loaded) if f.severity is Severity.ERROR]
    if errors:
        raise FabricLoadError([f.format() for f in errors]
                              + [f"{loaded.source.file}: {len(errors)} lint error(s); "
                                 "fix them first"])
    fabric, changed = local_fabric(loaded.fabric)
    notes = []
    if changed:
        notes.append(f"site(s) {', '.join(changed)} use the xfrm data plane; the lab renders "
                     "them with data_plane libipsec (this machine has no kernel ESP)")
    compiled = compile_fabric(fabric)
    emulated = sorted(f"{gw.name} ({gw.platform} {gw.transport})" for _, gw in compiled.gateways()
                      if gw.platform is not Platform.STRONGSWAN)
    others = not_in_lab(compiled)
    emulated = [e for e in emulated if e not in others]
    if emulated:
        notes.append(f"emulated: {', '.join(emulated)}; emulators run no IKE, so their "
                     "tunnels are not waited for")
    if others:
        notes.append(f"not in the lab (no emulator for it): {', '.join(others)}; their "
                     "tunnels are not waited for")
    return compiled, notes


def _fabric_name(path: str) -> str:
    """The fabric name, also from a file that no longer passes the schema."""
    try:
        return load_fabric(path).fabric.fabric.name
    except FabricLoadError:
        pass
    try:
        with open(path, encoding="utf-8") as fh:
            name = (yaml.safe_load(fh) or {}).get("fabric", {}).get("name")
    except (OSError, yaml.YAMLError, AttributeError):
        name = None
    if not isinstance(name, str) or not name:
        raise _UsageError(f"cannot read the fabric name from {path}; give the lab directory "
                          "with --lab-dir")
    return name


def _lab_dir(args: argparse.Namespace, fabric_name: str | None = None) -> Path:
    if args.lab_dir:
        return Path(args.lab_dir)
    if fabric_name is None:
        if not args.fabric:
            raise _UsageError("no lab given: use -f FABRIC or --lab-dir DIR")
        fabric_name = _fabric_name(args.fabric)
    return default_lab_dir(fabric_name)


def _positive(option: str, value: str | None) -> float:
    try:
        number = float(str(value))
    except ValueError:
        raise _UsageError(f"{option} takes a number, not {value!r}") from None
    if not number > 0:
        raise _UsageError(f"{option} must be positive, not {value}")
    return number


def _timeout(value: str | None) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        raise _UsageError(f"--timeout takes seconds, not {value!r}") from None
    if seconds <= 0:
        raise _UsageError(f"--timeout must be positive, not {value}")
    return seconds


def _status_lines(status: LabStatus) -> list[str]:
    out = [f"lab {status.fabric} ({status.phase}) in {status.lab_dir}"]
    for note in status.notes:
        out.append(f"note: {note}")
    if status.supervisor is not None:
        sup = status.supervisor
        out.append(f"emulators  {sup.daemon} {sup.pid} {'up' if sup.alive else 'DOWN'}  "
                   f"host keys {status.lab_dir / 'known_hosts'}  devices "
                   f"{status.lab_dir / 'devices.json'}")
    out += [f"  {_emulator_line(e)}" for e in status.emulators]
    out += [f"  {problem}" for problem in status.problems]
    for gw in status.gateways:
        daemons = ", ".join(f"{d.daemon} {d.pid} {'up' if d.alive else 'DOWN'}"
                            for d in gw.daemons)
        out.append(f"{gw.name}  {gw.namespace}  {daemons or 'no daemons'}")
        if gw.error:
            out.append(f"  tunnels unreadable: {gw.error}")
        width = max((len(t.name) for t in gw.tunnels), default=0)
        out += [f"  {t.name:<{width}}  IKE {t.ike:<12}  CHILD {t.child:<10}  {t.remote}"
                for t in gw.tunnels]
    return out


def _emulator_line(e: EmulatorStatus) -> str:
    return (f"{e.name}  {e.platform} {e.transport}  {e.host}:{e.port}  "
            f"login {e.username}/{e.password}  "
            f"{'answering' if e.answering else 'NOT ANSWERING'}")


def _status_dict(status: LabStatus) -> dict[str, Any]:
    sup = status.supervisor
    return {"fabric": status.fabric, "lab_dir": str(status.lab_dir), "phase": status.phase,
            "healthy": status.healthy, "notes": list(status.notes),
            "gateways": {g.name: g.as_dict() for g in status.gateways},
            "supervisor": None if sup is None else {"pid": sup.pid, "alive": sup.alive},
            "emulators": {e.name: e.as_dict() for e in status.emulators},
            "problems": list(status.problems)}


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: Sequence[str]) -> None:
    if args.format == "json":
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        for line in lines:
            print(line)


# --- sub-commands ----------------------------------------------------------------------------

def _down_quietly(lab_dir: Path) -> str:
    try:
        result = tear_down(lab_dir)
    except LabError as exc:
        return f"removing it failed too: {exc}; run dcvpn lab down --lab-dir {lab_dir}"
    if result.leftovers:
        return "left behind: " + "; ".join(result.leftovers)
    return "removed what it had made" if result.found else "nothing was made"


def cmd_up(args: argparse.Namespace) -> int:
    timeout = _timeout(args.timeout)
    time_scale = _positive("--time-scale", args.time_scale)
    compiled, notes = _compile(args)
    if getattr(args, "add", False):
        return _add(args, compiled, timeout, time_scale)
    absent = requirements.missing() if lab_gateways(compiled) else []
    if absent:
        raise _UsageError(requirements.missing_message(absent))
    lab_dir = _lab_dir(args, compiled.fabric.fabric.name)
    for note in notes:
        _err(f"dcvpn lab up: note: {note}")
    pki_dir = _pki_dir(args, compiled)
    progress = LiveLine()
    try:
        result: UpResult = bring_up(compiled, args.fabric, lab_dir, timeout, progress, notes,
                                    pki_dir, Passphrase.from_env(), time_scale)
    except (LabExistsError, LabBusyError):
        progress.clear()
        raise
    except (LabError, PkiError, TaskError, OSError) as exc:
        progress.clear()
        tail = (f"kept for debugging; remove it with dcvpn lab down --lab-dir {lab_dir}"
                if args.keep else _down_quietly(lab_dir))
        raise LabError(f"{exc} ({tail})") from exc
    except KeyboardInterrupt:
        progress.clear()
        _err(f"dcvpn lab up: interrupted; {_down_quietly(lab_dir)}")
        return Exit.FAILED
    progress.clear()
    status = lab_status(lab_dir)
    data: dict[str, Any] = {"ok": result.ready, "seconds": round(result.seconds, 2),
                            "not_ready": [r.as_dict() for r in result.not_ready]}
    if status is not None:
        data.update(_status_dict(status))
    _emit(args, data, _status_lines(status) if status else [])
    if not result.ready:
        _err(f"dcvpn lab up: not ready after {timeout:g}s; not ready:")
        for r in result.not_ready:
            _err(f"  {r.name}: {r.message}")
        _err("dcvpn lab up: the lab is left running for dcvpn lab status / dcvpn validate; "
             f"remove it with dcvpn lab down --lab-dir {lab_dir}")
        return Exit.FAILED
    emulated = f" and {len(result.emulated)} emulated" if result.emulated else ""
    _err(f"dcvpn lab up: lab {result.fabric} ready in {result.seconds:.1f}s: "
         f"{len(result.gateways)} strongSwan{emulated} gateway(s) in {lab_dir}")
    return Exit.OK


def grow_lab(fabric: str, lab_dir: str | None = None, timeout: float = DEFAULT_TIMEOUT
             ) -> tuple[int, dict[str, Any]]:
    """`dcvpn lab up --add -f FABRIC [--lab-dir DIR] --format json` for other commands
    (dcvpn onboard --lab reaches the lab only through this command): its exit code and its
    JSON (what it added, kept, and the lab's status); messages go to stderr."""
    argv = ["lab", "up", "--add", "-f", fabric, "--timeout", f"{timeout:g}", "--format", "json"]
    if lab_dir:
        argv += ["--lab-dir", lab_dir]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    try:
        data = json.loads(out.getvalue() or "{}")
    except ValueError:
        data = {}
    return code, data if isinstance(data, dict) else {}


def _add(args: argparse.Namespace, compiled: CompiledFabric, timeout: float,
         time_scale: float) -> int:
    if args.pki_dir:
        _err("dcvpn lab up --add: note: --pki-dir is not used: the new gateways' certificates "
             "come from the PKI the lab was started with")
    absent = requirements.missing() if lab_gateways(compiled) else []
    if absent:
        raise _UsageError(requirements.missing_message(absent))
    lab_dir = _lab_dir(args, compiled.fabric.fabric.name)
    progress = LiveLine()
    try:
        result: GrowResult = grow(compiled, lab_dir, timeout, progress, Passphrase.from_env(),
                                  time_scale, args.keep)
    finally:
        progress.clear()
    status = lab_status(lab_dir)
    data: dict[str, Any] = {"ok": True, "seconds": round(result.seconds, 2),
                            "added": list(result.added), "added_emulated": list(result.emulated),
                            "kept": list(result.kept)}
    if status is not None:
        data.update(_status_dict(status))
    _emit(args, data, _status_lines(status) if status else [])
    if not result.added and not result.emulated:
        _err(f"dcvpn lab up --add: lab {result.fabric} runs every gateway of the model "
             "already; nothing added")
        return Exit.OK
    added = [*result.added, *(f"{g} (emulated)" for g in result.emulated)]
    _err(f"dcvpn lab up --add: added {', '.join(added)} to lab {result.fabric} in "
         f"{result.seconds:.1f}s; {len(result.kept)} gateway(s) kept running untouched")
    if result.added:
        _err(f"dcvpn lab up --add: {', '.join(result.added)} run(s) unconfigured: configure "
             f"with dcvpn deploy -f {args.fabric} --lab"
             + (f" --lab-dir {lab_dir}" if args.lab_dir else ""))
    return Exit.OK


def _pki_dir(args: argparse.Namespace, compiled: CompiledFabric) -> Path | None:
    """The --pki-dir of a certificate lab, checked before anything is made (exit 2)."""
    if not args.pki_dir:
        return None
    pki_dir = Path(args.pki_dir)
    if compiled.fabric.fabric.auth.method != "certificate":
        _err(f"dcvpn lab up: note: fabric {compiled.fabric.fabric.name} authenticates with "
             "pre-shared keys; --pki-dir is not used")
        return None
    try:
        for _, gw in compiled.gateways():
            if gw.platform is Platform.STRONGSWAN:
                strongswan_files(pki_dir, gw.name, Passphrase.from_env())
    except PkiError as exc:
        raise _UsageError(f"--pki-dir: {exc}") from exc
    return pki_dir


def _reload_lines(result: ReloadResult) -> list[str]:
    out = [f"reloaded {gw} from {result.pki_dir}" for gw in result.gateways]
    out += [f"revoked {gw} (serial {serial})" for gw, serial in sorted(result.revoked.items())]
    out += [f"restarted {t}" for t in result.restarted]
    out += [f"no IKE SA {t}" for t in result.absent]
    return out


def cmd_reload_creds(args: argparse.Namespace) -> int:
    compiled, _ = _compile(args)
    lab_dir = _lab_dir(args, compiled.fabric.fabric.name)
    try:
        result = reload_creds(compiled, lab_dir, Passphrase.from_env())
    except NoLabError:
        _err(f"dcvpn lab reload-creds: no lab in {lab_dir}")
        _emit(args, {"ok": False, "lab_dir": str(lab_dir)}, [])
        return Exit.FAILED
    except (PkiError, NoCertificatesError) as exc:
        raise _UsageError(str(exc)) from exc
    _err(f"dcvpn lab reload-creds: {len(result.gateways)} gateway(s) reloaded; "
         f"{len(result.revoked)} revoked, {len(result.restarted)} tunnel(s) restarted")
    _emit(args, {"ok": True, "lab_dir": str(lab_dir), "pki_dir": str(result.pki_dir),
                 "gateways": list(result.gateways), "revoked": result.revoked,
                 "restarted": list(result.restarted), "absent": list(result.absent)},
          _reload_lines(result))
    return Exit.OK


def cmd_status(args: argparse.Namespace) -> int:
    lab_dir = _lab_dir(args)
    status = lab_status(lab_dir)
    if status is None:
        _err(f"dcvpn lab status: no lab in {lab_dir}")
        _emit(args, {"ok": False, "lab_dir": str(lab_dir), "gateways": {}}, [])
        return Exit.FAILED
    data = {"ok": status.healthy, **_status_dict(status)}
    _emit(args, data, _status_lines(status))
    down = [f"{g.name} {d.daemon}" for g in status.gateways for d in g.daemons if not d.alive]
    if down:
        _err(f"dcvpn lab status: not running: {', '.join(down)}")
    return Exit.OK if status.healthy else Exit.FAILED


def _down_lines(result: DownResult) -> list[str]:
    out = [f"stopped {r.gateway} {r.daemon} (pid {r.pid})" for r in result.stopped]
    out += [f"removed namespace {ns}" for ns in result.namespaces]
    return out


def cmd_down(args: argparse.Namespace) -> int:
    lab_dir = _lab_dir(args)
    result = tear_down(lab_dir)
    if not result.found:
        _err(f"dcvpn lab down: no lab in {lab_dir}; nothing to do")
    else:
        _err(f"dcvpn lab down: lab {result.fabric}: stopped {len(result.stopped)} "
             f"process(es), removed {len(result.namespaces)} namespace(s) and "
             f"{result.removed} file(s)/folder(s)")
    for line in result.leftovers:
        _err(f"dcvpn lab down: left behind: {line}")
    _emit(args, {"ok": not result.leftovers, "lab_dir": str(lab_dir), "found": result.found,
                 "fabric": result.fabric,
                 "stopped": [r.as_dict() for r in result.stopped],
                 "namespaces": list(result.namespaces), "removed": result.removed,
                 "leftovers": list(result.leftovers)}, _down_lines(result))
    return Exit.FAILED if result.leftovers else Exit.OK


def _heal_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "heal", help="restart a gateway's dead charon, or initiate one of its tunnels",
        description="Bring one part of a running lab gateway back (what dcvpn watch calls): "
                    "--restart charon starts the gateway's charon again the way up does, only "
                    "if the recorded one is gone, records its PID for down and reloads "
                    "interfaces and connections; --initiate TUNNEL runs swanctl --initiate "
                    "through the gateway's vici socket. Exit 0 done or nothing to do, 1 no "
                    "lab, 2 bad input, 3 it failed.")
    p.add_argument("gateway", nargs="?", metavar="GATEWAY", help="a strongSwan gateway of the lab")
    _common(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--restart", metavar="DAEMON",
                      help=f"restart this daemon ({', '.join(lab_heal.RESTARTABLE)})")
    what.add_argument("--initiate", metavar="TUNNEL", help="initiate this tunnel")
    p.add_argument("--timeout", default=_env("timeout", str(lab_heal.DEFAULT_TIMEOUT)),
                   metavar="SEC", help="wait at most SEC seconds (default "
                   f"{lab_heal.DEFAULT_TIMEOUT:.0f}) [env DCVPN_TIMEOUT]")
    p.set_defaults(handler=_guard(cmd_heal))


def cmd_heal(args: argparse.Namespace) -> int:
    if not args.gateway or not (args.restart or args.initiate):
        raise _UsageError("name a gateway and what to heal: dcvpn lab heal GATEWAY "
                          "--restart charon | --initiate TUNNEL")
    timeout = _timeout(args.timeout)
    lab_dir = _lab_dir(args)
    try:
        if args.restart:
            result = lab_heal.restart(lab_dir, args.gateway, args.restart, timeout)
        else:
            result = lab_heal.initiate(lab_dir, args.gateway, args.initiate, timeout)
    except lab_heal.HealInputError as exc:
        raise _UsageError(str(exc)) from exc
    except lab_heal.NoLabError:
        _err(f"dcvpn lab heal: no lab in {lab_dir}")
        _emit(args, {"ok": False, "lab_dir": str(lab_dir), "gateway": args.gateway}, [])
        return Exit.FAILED
    _err(f"dcvpn lab heal: {result.gateway}: {result.action}: {result.detail}")
    _emit(args, {"ok": True, "lab_dir": str(lab_dir), "gateway": result.gateway,
                 "action": result.action, "changed": result.changed,
                 "detail": result.detail}, [f"{result.gateway} {result.action}: "
                                            f"{result.detail}"])
    return Exit.OK


def _serve_spec(args: argparse.Namespace) -> EmulatorSpec:
    if not args.platform or not args.transport:
        raise _UsageError("give --platform junos|iosxe and --transport netconf|ssh")
    if args.port is None:
        raise _UsageError("give --port N (0 picks a free port)")
    try:
        port = int(args.port)
    except ValueError:
        raise _UsageError(f"--port takes a number, not {args.port!r}") from None
    from lab.emulators.hosting import EmulatorSpec  # noqa: PLC0415

    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    spec = EmulatorSpec(args.platform, args.transport, args.username, args.password,
                        state_dir, args.host, port, _positive("--time-scale", args.time_scale),
                        args.hostname, args.os_version, not args.no_confirmed_commit)
    spec.check()
    return spec


def _announce(args: argparse.Namespace, spec: EmulatorSpec, server: Server) -> None:
    from lab.emulators.ssh_server import HOST_KEY_FILE, known_hosts_line  # noqa: PLC0415

    if server.host_key is None:
        raise EmulatorError(f"{spec.label}: not started")
    line = known_hosts_line(server.host_key, server.host, server.port).strip()
    login = (f"{spec.username}/{spec.password}"
             if (spec.username, spec.password) == (DEFAULT_USERNAME, DEFAULT_PASSWORD)
             else f"{spec.username} (password as given)")
    _err(f"dcvpn lab serve: {spec.label} listening on {server.host}:{server.port}, login "
         f"{login}, host key {spec.state_dir / HOST_KEY_FILE}; stop with Ctrl-C or SIGTERM")
    if args.format == "json":
        print(json.dumps({"platform": spec.platform, "transport": spec.transport,
                          "host": server.host, "port": server.port,
                          "username": spec.username, "state_dir": str(spec.state_dir),
                          "known_hosts": line}, sort_keys=True), flush=True)
    else:
        print(line, flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    """No root needed; exit 0 after SIGINT/SIGTERM, 2 for bad input, 3 when it cannot listen."""
    # the emulators load only for `serve`: every other dcvpn command starts faster
    from lab.emulators.hosting import host_until_signalled  # noqa: PLC0415
    from lab.emulators.ssh_server import load_or_create_host_key  # noqa: PLC0415

    name = "dcvpn lab serve"
    try:
        if args.format not in ("text", "json"):
            raise _UsageError(f"--format must be one of text, json, not {args.format!r}")
        spec = _serve_spec(args)
        load_or_create_host_key(spec.state_dir)
    except (_UsageError, EmulatorError) as exc:
        _err(f"{name}: {exc}")
        return Exit.BAD_INPUT
    except OSError as exc:
        _err(f"{name}: state dir {args.state_dir or default_state_dir()}: "
             f"{exc.strerror or exc}")
        return Exit.BAD_INPUT
    try:
        host_until_signalled([spec], lambda started: _announce(args, spec, started[0][1]))
    except (LabError, OSError) as exc:
        _err(f"{name}: {exc}")
        return Exit.DEVICE
    _err(f"{name}: stopped")
    return Exit.OK


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.lab_cmd lab ...`: the lab command alone (tests, before wiring)."""
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
