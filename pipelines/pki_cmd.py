"""`dcvpn pki`: the fabric CA, gateway certificates, CRL, expiry monitoring and PSKs.

Sub-commands: init | issue | renew | revoke | status | psk (library: tasks.pki). Results go
to stdout (text or JSON), messages to stderr; no private key or PSK is ever printed.

Exit codes: 0 ok. 1 checks failed or change refused: `init` found an existing CA; `issue` or
`renew` left a gateway alone because its certificate is revoked (or, renew, missing);
`status` found a certificate expired, expiring within --warn-days, revoked, or missing (in a
certificate-authenticated fabric), or the CA or CRL next-update within the window. A revoked
certificate counts: a gateway still in the model cannot authenticate with it, so it must be
reissued (`issue --reissue-revoked`) or removed from the model. 2 bad input: unusable
model, unknown site, corrupt file, missing or wrong passphrase, certificates/CRL/key from
another CA. Bad input changes nothing. 3: the external ACME CA could not be reached or refused
a request (ACME directories only).

ACME: `init --acme-directory URL --acme-root ROOT.pem` makes the PKI directory's issuer an
external ACME CA (RFC 8555) instead of a fabric CA; issue, renew, revoke and status then
work the same way against it (tasks.pki.acme_issue).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from inventory.durations import parse_duration
from inventory.errors import FabricLoadError, TopologyError
from inventory.findings import Severity
from inventory.lint import lint
from inventory.loader import LoadedFabric, load_fabric
from inventory.model import Fabric, Gateway
from inventory.topology import CompiledFabric, compile_fabric
from pipelines.exit_codes import Exit
from tasks.pki.acme_config import CHALLENGES, DEFAULT_HTTP_LISTEN, AcmeConfig
from tasks.pki.acme_issue import acme_issue_certs, acme_renew_certs, acme_revoke, init_acme
from tasks.pki.ca import CA_DAYS, CRL_DAYS, init_ca
from tasks.pki.crl import REASONS, revoke
from tasks.pki.errors import AcmeError, CaExistsError, PkiError
from tasks.pki.files import default_pki_dir, default_secrets_dir
from tasks.pki.issue import DEFAULT_DAYS, CertResult, Outcome, issue_certs, renew_certs
from tasks.pki.keys import KEY_TYPES, PASSPHRASE_ENV, Passphrase
from tasks.pki.psk import ensure_psks
from tasks.pki.status import PkiStatus, Row, pki_status, prometheus_text, write_prometheus
from tasks.pki.store import Layout, serial_hex

Handler = Callable[[argparse.Namespace], int]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE = {"1", "true", "yes", "on"}


class _UsageError(Exception):
    """Bad command-line usage: one line, exit 2."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DCVPN_{name.upper()}", default)


def _env_flag(name: str) -> bool:
    return (_env(name) or "").strip().lower() in _TRUE


def _err(line: str) -> None:
    print(line, file=sys.stderr)


# --- options ---------------------------------------------------------------------------------

def _common(p: argparse.ArgumentParser, *, pki_dir: bool = True) -> None:
    p.add_argument("-f", "--fabric", default=_env("fabric"), metavar="FABRIC",
                   help="fabric model YAML file [env DCVPN_FABRIC]")
    p.add_argument("--format", default=_env("format", "text"), metavar="text|json",
                   help="output format: text, json (default text) [env DCVPN_FORMAT]")
    p.set_defaults(format_choices=("text", "json"))
    if pki_dir:
        p.add_argument("--pki-dir", default=_env("pki_dir"), metavar="D",
                       help="PKI directory (default ${XDG_DATA_HOME:-~/.local/share}/dcvpn/"
                            "<fabric>/pki) [env DCVPN_PKI_DIR]")


def _passphrase_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--passphrase-env", default=_env("passphrase_env", PASSPHRASE_ENV),
                   metavar="NAME",
                   help="NAME of the environment variable holding the private-key passphrase "
                        f"(default {PASSPHRASE_ENV}; a passphrase is never taken on the "
                        "command line) [env DCVPN_PASSPHRASE_ENV]")


def _sites_option(p: argparse.ArgumentParser, with_all: bool) -> None:
    group = p.add_mutually_exclusive_group()
    env_sites = _env("site")
    group.add_argument("--site", action="append", metavar="S",
                       default=env_sites.split(",") if env_sites else None,
                       help="only this site's gateways (repeatable) [env DCVPN_SITE, comma "
                            "separated]")
    if with_all:
        group.add_argument("--all", action="store_true", default=_env_flag("all"),
                           help="every gateway of the fabric (the default) [env DCVPN_ALL]")


def _parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
            **kwargs: Any) -> argparse.ArgumentParser:
    # no abbreviations: `--passphrase X` must never be taken as `--passphrase-env X`
    return subparsers.add_parser(name, allow_abbrev=False, **kwargs)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `pki` command and its sub-commands to the dcvpn parser."""
    pki = _parser(
        subparsers, "pki", help="fabric CA, gateway certificates, CRL, expiry monitoring, PSKs",
        description="The fabric's PKI, kept outside the model. Private keys are written 0600 "
                    f"and encrypted when {PASSPHRASE_ENV} is set.",
        epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    pki.set_defaults(handler=_help_of(pki))
    sub = pki.add_subparsers(dest="pki_command", metavar="SUBCOMMAND")

    p = _parser(sub, "init", help="create the fabric CA and an empty CRL",
                description="Create ca.key (0600), ca.pem and crl.pem. Refuses to "
                            "overwrite an existing CA (exit 1).")
    _common(p)
    _passphrase_option(p)
    p.add_argument("--key-type", default=_env("key_type"), metavar="|".join(KEY_TYPES),
                   help="CA key type (default: the model's fabric.auth.key_type) "
                        "[env DCVPN_KEY_TYPE]")
    p.add_argument("--ca-days", default=_env("ca_days", str(CA_DAYS)), metavar="N",
                   help=f"CA validity in days (default {CA_DAYS}) [env DCVPN_CA_DAYS]")
    _crl_days_option(p)
    _acme_options(p)
    p.set_defaults(handler=_guard(cmd_init))

    p = _parser(sub, "issue", help="one certificate per gateway (idempotent)",
                description="Issue a certificate per gateway named by its IKE identity "
                            "(CN and DNS SAN) and public IP (IP SAN). A valid "
                            "certificate for the current identity and CA is kept.")
    _common(p)
    _passphrase_option(p)
    _sites_option(p, with_all=True)
    _days_option(p)
    p.add_argument("--reissue-revoked", action="store_true",
                   default=_env_flag("reissue_revoked"),
                   help="also replace revoked certificates [env DCVPN_REISSUE_REVOKED]")
    p.set_defaults(handler=_guard(cmd_issue))

    p = _parser(sub, "renew", help="reissue certificates expiring within a window",
                description="Reissue every certificate (and re-sign the CRL) expiring "
                            "within --within. The replaced pair stays as <gw>.prev.* "
                            "and stays valid: deploy the new one at leisure.")
    _common(p)
    _passphrase_option(p)
    _sites_option(p, with_all=False)
    p.add_argument("--within", default=_env("within", "30d"), metavar="DURATION",
                   help="renewal window, e.g. 30d (default) [env DCVPN_WITHIN]")
    _days_option(p)
    _crl_days_option(p)
    p.set_defaults(handler=_guard(cmd_renew))

    p = _parser(sub, "revoke", help="revoke a gateway's certificate and update the CRL",
                description="Revoke the gateway's current certificate (and its previous "
                            "one while unexpired); crl.pem gets a new CRL number. "
                            "Deploy crl.pem to every gateway for it to take effect.")
    _common(p)
    _passphrase_option(p)
    p.add_argument("gateway", metavar="GATEWAY", help="gateway name")
    p.add_argument("--reason", default=_env("reason", "unspecified"),
                   metavar="|".join(REASONS), help="revocation reason [env DCVPN_REASON]")
    _crl_days_option(p)
    p.set_defaults(handler=_guard(cmd_revoke))

    p = _parser(sub, "status", help="certificate expiry and revocation; Prometheus file",
                description="Every gateway's certificate: serial, not-after, days left, "
                            "status (valid|expiring|expired|revoked|missing), plus the "
                            "CA and CRL. Exit 1 when any needs attention.")
    _common(p)
    p.add_argument("--warn-days", default=_env("warn_days", "30"), metavar="N",
                   help="warning window in days (default 30) [env DCVPN_WARN_DAYS]")
    p.add_argument("--prometheus", default=_env("prometheus"), metavar="FILE",
                   help="also write a Prometheus textfile-collector file (atomically) "
                        "[env DCVPN_PROMETHEUS]")
    p.set_defaults(handler=_guard(cmd_status))

    p = _parser(sub, "psk", help="per-tunnel random pre-shared keys in the secrets directory",
                description="One key per compiled tunnel at <secrets>/psk/<tunnel> "
                            "(0600), what ${dcvpn-secret:psk/<tunnel>} refers to. "
                            "Existing keys are kept unless --rotate. Keys are never "
                            "printed: only names, lengths and fingerprints.")
    _common(p, pki_dir=False)
    p.add_argument("--secrets-dir", default=_env("secrets_dir"), metavar="D",
                   help="secrets directory (default ${XDG_DATA_HOME:-~/.local/share}/dcvpn/"
                        "<fabric>/secrets) [env DCVPN_SECRETS_DIR]")
    p.add_argument("--rotate", action="store_true", default=_env_flag("rotate"),
                   help="replace existing keys (both ends change at the next deploy) "
                        "[env DCVPN_ROTATE]")
    p.set_defaults(handler=_guard(cmd_psk))


def _acme_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "ACME issuer", "Certificates from an external ACME CA (RFC 8555) instead of a fabric "
        "CA. Recorded in the PKI directory (acme.json); credentials stay out of the model and "
        "out of that file.")
    g.add_argument("--acme-directory", default=_env("acme_directory"), metavar="URL",
                   help="the CA's ACME directory URL (https) [env DCVPN_ACME_DIRECTORY]")
    g.add_argument("--acme-root", default=_env("acme_root"), metavar="FILE",
                   help="PEM root certificate of the ACME CA: the trust anchor delivered to "
                        "the gateways [env DCVPN_ACME_ROOT]")
    g.add_argument("--acme-ca-bundle", default=_env("acme_ca_bundle"), metavar="FILE",
                   help="PEM CA bundle trusted for the ACME server's TLS (default: the "
                        "system store) [env DCVPN_ACME_CA_BUNDLE]")
    g.add_argument("--acme-challenge", default=_env("acme_challenge", "http-01"),
                   metavar="|".join(CHALLENGES),
                   help="how control of the names is proven (default http-01) "
                        "[env DCVPN_ACME_CHALLENGE]")
    g.add_argument("--acme-http-listen", default=_env("acme_http_listen", DEFAULT_HTTP_LISTEN),
                   metavar="HOST:PORT",
                   help=f"http-01 responder address (default {DEFAULT_HTTP_LISTEN}) "
                        "[env DCVPN_ACME_HTTP_LISTEN]")
    g.add_argument("--acme-dns-hook", default=_env("acme_dns_hook"), metavar="PROGRAM",
                   help="dns-01: run as PROGRAM add|remove NAME VALUE to publish TXT records "
                        "[env DCVPN_ACME_DNS_HOOK]")
    g.add_argument("--acme-eab-kid", default=_env("acme_eab_kid"), metavar="KID",
                   help="External Account Binding key id [env DCVPN_ACME_EAB_KID]")
    g.add_argument("--acme-eab-hmac-env", default=_env("acme_eab_hmac_env"), metavar="NAME",
                   help="NAME of the environment variable holding the EAB HMAC key (never "
                        "the key itself) [env DCVPN_ACME_EAB_HMAC_ENV]")
    env_contact = _env("acme_contact")
    g.add_argument("--acme-contact", action="append", metavar="mailto:ADDR",
                   default=env_contact.split(",") if env_contact else None,
                   help="account contact (repeatable) [env DCVPN_ACME_CONTACT, comma "
                        "separated]")


def _days_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--days", default=_env("days"), metavar="N",
                   help="certificate validity in days (default: the model's "
                        f"fabric.auth.cert_days, {DEFAULT_DAYS} when unset) [env DCVPN_DAYS]")


def _crl_days_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--crl-days", default=_env("crl_days", str(CRL_DAYS)), metavar="N",
                   help=f"CRL validity (next-update) in days (default {CRL_DAYS}) "
                        "[env DCVPN_CRL_DAYS]")


def _help_of(parser: argparse.ArgumentParser) -> Handler:
    def show(_: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return Exit.BAD_INPUT
    return show


def _guard(fn: Handler) -> Handler:
    """Turn every expected failure into one message on stderr and an exit code."""
    def run(args: argparse.Namespace) -> int:
        name = f"dcvpn pki {args.pki_command}"
        if args.format not in args.format_choices:
            _err(f"{name}: --format must be one of text, json, not {args.format!r}")
            return Exit.BAD_INPUT
        try:
            return fn(args)
        except FabricLoadError as exc:
            lines = exc.lines
            code = Exit.BAD_INPUT
        except CaExistsError as exc:
            lines, code = [f"{name}: {exc}"], Exit.FAILED
        except AcmeError as exc:
            lines, code = [f"{name}: {exc}"], Exit.DEVICE
        except (PkiError, TopologyError, _UsageError) as exc:
            lines, code = [f"{name}: {exc}"], Exit.BAD_INPUT
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            lines, code = [f"{name}: {where}{exc.strerror or exc}"], Exit.BAD_INPUT
        for line in lines:
            _err(line)
        if args.format == "json":
            print(json.dumps({"ok": False, "errors": lines}, indent=2))
        return code
    return run


# --- helpers ---------------------------------------------------------------------------------

def _load(args: argparse.Namespace) -> LoadedFabric:
    if not args.fabric:
        raise _UsageError("no fabric given: use -f FABRIC or set DCVPN_FABRIC")
    return load_fabric(args.fabric)


def _compile_clean(args: argparse.Namespace) -> tuple[LoadedFabric, CompiledFabric]:
    """Load and compile, refusing a model with lint errors (as `dcvpn topology` does)."""
    loaded = _load(args)
    errors = [f for f in lint(loaded) if f.severity is Severity.ERROR]
    if errors:
        raise FabricLoadError([f.format() for f in errors]
                              + [f"{loaded.source.file}: {len(errors)} lint error(s); "
                                 "fix them first"])
    return loaded, compile_fabric(loaded.fabric)


def _layout(args: argparse.Namespace, fabric: Fabric) -> Layout:
    return Layout(Path(args.pki_dir) if args.pki_dir else default_pki_dir(fabric.fabric.name))


def _passphrase(args: argparse.Namespace) -> Passphrase:
    """The passphrase from the variable named by --passphrase-env.

    A custom name is echoed only once it names a set variable: a passphrase given there by
    mistake must not end up in a message.
    """
    name = args.passphrase_env or ""
    if not _ENV_NAME.match(name):
        raise _UsageError("--passphrase-env takes the NAME of an environment variable (such as "
                          f"{PASSPHRASE_ENV}), never a passphrase")
    if name != PASSPHRASE_ENV and not os.environ.get(name):
        raise _UsageError("the environment variable named by --passphrase-env is not set or "
                          "empty")
    return Passphrase.from_env(name)


def _positive(value: str | None, option: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise _UsageError(f"{option} takes a whole number of days, not {value!r}") from None
    if number < 1:
        raise _UsageError(f"{option} must be at least 1, not {number}")
    return number


def _days(args: argparse.Namespace, fabric: Fabric) -> int:
    if args.days is None:
        return fabric.fabric.auth.cert_days
    return _positive(args.days, "--days")


def _gateways(fabric: Fabric, sites: Sequence[str] | None) -> list[Gateway]:
    known = {s.name for s in fabric.sites}
    unknown = [s for s in sites or () if s not in known]
    if unknown:
        raise _UsageError(f"unknown site(s): {', '.join(unknown)}")
    chosen = sorted((s for s in fabric.sites if not sites or s.name in sites),
                    key=lambda s: s.id)
    return [gw for s in chosen for gw in s.gateways]


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: Sequence[str]) -> None:
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        for line in lines:
            print(line)


def _cert_lines(results: Sequence[CertResult]) -> list[str]:
    width = max((len(r.gateway) for r in results), default=0)
    return [f"{r.gateway:<{width}}  {r.outcome!s:<9}  serial {r.serial or '-'}  "
            f"not-after {_iso(r.not_after) or '-'}  ({r.reason})" for r in results]


def _cert_dicts(results: Sequence[CertResult]) -> list[dict[str, Any]]:
    return [{"gateway": r.gateway, "outcome": str(r.outcome), "changed": r.changed,
             "reason": r.reason, "serial": r.serial, "not_after": _iso(r.not_after)}
            for r in results]


def _summary(results: Sequence[CertResult]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r.outcome)] = counts.get(str(r.outcome), 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no gateways"


def _refused(results: Sequence[CertResult], name: str, *outcomes: Outcome) -> int:
    bad = [r for r in results if r.outcome in outcomes]
    for r in bad:
        _err(f"dcvpn pki {name}: {r.gateway}: {r.reason}")
    return Exit.FAILED if bad else Exit.OK


# --- sub-commands ----------------------------------------------------------------------------

def _acme_init(args: argparse.Namespace, fabric: Fabric) -> int:
    if not args.acme_root:
        raise _UsageError("--acme-directory needs --acme-root FILE: the ACME CA's root "
                          "certificate, which the gateways will trust")
    root_path = Path(args.acme_root)
    try:
        root_pem = root_path.read_bytes()
    except OSError as exc:
        raise _UsageError(f"--acme-root {root_path}: {exc.strerror}") from None
    bundle = str(Path(args.acme_ca_bundle).resolve()) if args.acme_ca_bundle else None
    config = AcmeConfig(
        directory=args.acme_directory, ca_bundle=bundle, challenge=args.acme_challenge,
        http_listen=args.acme_http_listen,
        dns_hook=str(Path(args.acme_dns_hook).resolve()) if args.acme_dns_hook else None,
        eab_kid=args.acme_eab_kid, eab_hmac_env=args.acme_eab_hmac_env,
        contact=tuple(args.acme_contact or ()))
    passphrase = _passphrase(args)
    layout = _layout(args, fabric)
    result = init_acme(layout, config, root_pem, str(root_path), passphrase)
    if passphrase.value is None:
        _err(f"dcvpn pki init: warning: {layout.acme_account_key} is not encrypted (set "
             f"{passphrase.source} before init to encrypt the private keys)")
    _err(f"dcvpn pki init: {layout.root} gets its certificates from the ACME CA at "
         f"{result.directory}")
    _emit(args, {"ok": True, "pki_dir": str(layout.root), "issuer": "acme",
                 "directory": result.directory, "account": result.account_url,
                 "root": result.root_subject, "not_after": _iso(result.root_not_after),
                 "encrypted": passphrase.value is not None},
          [f"issuer     acme {result.directory}", f"account    {result.account_url}",
           f"root       {result.root_subject}", f"not after  {_iso(result.root_not_after)}",
           f"encrypted  {'yes' if passphrase.value is not None else 'no'}"])
    return Exit.OK


def _no_days_for_acme(args: argparse.Namespace, layout: Layout) -> None:
    if layout.is_acme and args.days is not None:
        raise _UsageError(f"--days: {layout.root} gets certificates from an ACME CA, which "
                          "decides their validity")


def cmd_init(args: argparse.Namespace) -> int:
    fabric = _load(args).fabric
    if args.acme_directory:
        return _acme_init(args, fabric)
    key_type = args.key_type or fabric.fabric.auth.key_type
    if key_type not in KEY_TYPES:
        raise _UsageError(f"--key-type must be one of {', '.join(KEY_TYPES)}, not {key_type!r}")
    passphrase = _passphrase(args)
    layout = _layout(args, fabric)
    result = init_ca(layout, fabric.fabric.name, key_type, passphrase, _now(),
                     _positive(args.ca_days, "--ca-days"), _positive(args.crl_days, "--crl-days"))
    if not result.encrypted:
        _err(f"dcvpn pki init: warning: {layout.ca_key} is not encrypted (set "
             f"{passphrase.source} before init to encrypt the private keys)")
    _err(f"dcvpn pki init: created the {fabric.fabric.name} fabric CA in {layout.root}")
    _emit(args, {"ok": True, "pki_dir": str(layout.root), "subject": result.subject,
                 "serial": serial_hex(result.serial), "key_type": result.key_type,
                 "not_after": _iso(result.not_after), "encrypted": result.encrypted},
          [f"subject    {result.subject}", f"serial     {serial_hex(result.serial)}",
           f"key type   {result.key_type}", f"not after  {_iso(result.not_after)}",
           f"encrypted  {'yes' if result.encrypted else 'no'}"])
    return Exit.OK


def cmd_issue(args: argparse.Namespace) -> int:
    loaded, _ = _compile_clean(args)
    fabric = loaded.fabric
    layout = _layout(args, fabric)
    _no_days_for_acme(args, layout)
    if layout.is_acme:
        results = acme_issue_certs(layout, fabric, _gateways(fabric, args.site),
                                   _passphrase(args), _now(), args.reissue_revoked)
    else:
        results = issue_certs(layout, fabric, _gateways(fabric, args.site), _passphrase(args),
                              _now(), _days(args, fabric), args.reissue_revoked)
    _err(f"dcvpn pki issue: {len(results)} gateway(s) in {layout.root}: {_summary(results)}")
    _emit(args, {"ok": not any(r.outcome is Outcome.REVOKED for r in results),
                 "pki_dir": str(layout.root), "certificates": _cert_dicts(results)},
          _cert_lines(results))
    return _refused(results, "issue", Outcome.REVOKED)


def cmd_renew(args: argparse.Namespace) -> int:
    loaded, _ = _compile_clean(args)
    fabric = loaded.fabric
    layout = _layout(args, fabric)
    try:
        within = parse_duration(args.within)
    except ValueError as exc:
        raise _UsageError(f"--within: {exc}") from None
    _no_days_for_acme(args, layout)
    if layout.is_acme:
        result = acme_renew_certs(layout, fabric, _gateways(fabric, args.site),
                                  _passphrase(args), _now(), timedelta(seconds=within))
    else:
        result = renew_certs(layout, fabric, _gateways(fabric, args.site), _passphrase(args),
                             _now(), timedelta(seconds=within), _days(args, fabric),
                             _positive(args.crl_days, "--crl-days"))
    certs = result.certs
    crl = result.crl
    _err(f"dcvpn pki renew: {len(certs)} gateway(s) in {layout.root}: {_summary(certs)}"
         + (f"; CRL re-signed (number {crl.number})" if crl else ""))
    if any(r.changed for r in certs) or crl:
        _err("dcvpn pki renew: deploy to install the new files; the previous certificates "
             "stay valid until then")
    lines = _cert_lines(certs)
    if crl:
        lines.append(f"crl  number {crl.number}  next-update {_iso(crl.next_update)}")
    _emit(args, {"ok": not any(r.outcome in (Outcome.REVOKED, Outcome.MISSING) for r in certs),
                 "pki_dir": str(layout.root), "certificates": _cert_dicts(certs),
                 "crl": None if crl is None else {"crl_number": crl.number,
                                                  "next_update": _iso(crl.next_update)}},
          lines)
    return _refused(certs, "renew", Outcome.REVOKED, Outcome.MISSING)


def cmd_revoke(args: argparse.Namespace) -> int:
    fabric = _load(args).fabric
    layout = _layout(args, fabric)
    if args.reason not in REASONS:
        raise _UsageError(f"--reason must be one of {', '.join(REASONS)}, not {args.reason!r}")
    if layout.is_acme:
        result = acme_revoke(layout, args.gateway, _passphrase(args), _now(), args.reason)
    else:
        result = revoke(layout, args.gateway, _passphrase(args), _now(),
                        _positive(args.crl_days, "--crl-days"), args.reason)
    if not result.serials:
        _err(f"dcvpn pki revoke: {args.gateway}: already revoked; nothing changed")
    elif result.crl is None:
        _err(f"dcvpn pki revoke: {args.gateway}: revoked {', '.join(result.serials)} at the "
             "ACME CA (it publishes the revocation)")
    else:
        _err(f"dcvpn pki revoke: {args.gateway}: revoked {', '.join(result.serials)}; "
             f"CRL number {result.crl.number}: deploy crl.pem to every gateway")
    crl = result.crl
    _emit(args, {"ok": True, "gateway": result.gateway, "revoked": list(result.serials),
                 "already_revoked": list(result.already),
                 "crl": None if crl is None else {"crl_number": crl.number,
                                                  "next_update": _iso(crl.next_update),
                                                  "entries": crl.revoked}},
          [f"{result.gateway}  revoked {s}" for s in result.serials]
          + [f"{result.gateway}  already revoked {s}" for s in result.already])
    return Exit.OK


def _status_lines(status: PkiStatus) -> list[str]:
    rows: list[Row] = [status.ca, status.crl, *status.certs]
    width = max(len(r.name) for r in rows)
    serial_width = max(len(r.serial or "-") for r in rows)
    out = [f"{'NAME':<{width}}  {'STATUS':<8}  {'SERIAL':<{serial_width}}  "
           f"{'NOT-AFTER':<20}  {'DAYS-LEFT':<9}  ISSUER"]
    for r in rows:
        days = "-" if r.days_left is None else str(r.days_left)
        out.append(f"{r.name:<{width}}  {r.status!s:<8}  {r.serial or '-':<{serial_width}}  "
                   f"{_iso(r.not_after) or '-':<20}  {days:<9}  {r.issuer or '-'}")
    return out


def cmd_status(args: argparse.Namespace) -> int:
    fabric = _load(args).fabric
    layout = _layout(args, fabric)
    warn_days = _positive(args.warn_days, "--warn-days")
    gateways = [gw.name for s in fabric.sites for gw in s.gateways]
    status = pki_status(layout, gateways, _now(), warn_days,
                        missing_fails=fabric.fabric.auth.method == "certificate")
    if args.prometheus:
        write_prometheus(Path(args.prometheus), prometheus_text(status))
    data = status.as_dict()
    data["pki_dir"] = str(layout.root)
    _emit(args, data, _status_lines(status))
    problems = status.problems()
    for r in problems:
        _err(f"dcvpn pki status: {r.name}: {r.status}")
    _err(f"dcvpn pki status: {len(status.certs)} gateway(s), {len(problems)} need(s) attention"
         f" (warning window {warn_days} days)")
    return Exit.OK if status.ok else Exit.FAILED


def cmd_psk(args: argparse.Namespace) -> int:
    loaded, compiled = _compile_clean(args)
    spec = loaded.fabric.fabric
    root = Path(args.secrets_dir) if args.secrets_dir else default_secrets_dir(spec.name)
    results = ensure_psks(root, [t.name for t in compiled.tunnels], rotate=args.rotate)
    if spec.auth.method != "psk":
        _err(f"dcvpn pki psk: note: fabric {spec.name} authenticates with "
             f"{spec.auth.method}s; the keys are used once auth.method is psk")
    for r in results:
        if r.weak:
            _err(f"dcvpn pki psk: warning: {r.tunnel}: existing key has only {r.length} "
                 "characters; replace it with --rotate")
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r.outcome)] = counts.get(str(r.outcome), 0) + 1
    _err(f"dcvpn pki psk: {len(results)} tunnel(s) in {root}: "
         + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no tunnels"))
    width = max((len(r.tunnel) for r in results), default=0)
    _emit(args, {"ok": True, "secrets_dir": str(root),
                 "psks": [{"tunnel": r.tunnel, "ref": r.ref, "outcome": str(r.outcome),
                           "length": r.length, "fingerprint": r.fingerprint}
                          for r in results]},
          [f"{r.tunnel:<{width}}  {r.outcome!s:<9}  {r.length} chars  {r.fingerprint}  {r.ref}"
           for r in results])
    return Exit.OK


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.pki_cmd pki ...`: the pki command alone (tests, before wiring)."""
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
