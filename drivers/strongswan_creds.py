"""A strongSwan gateway's certificate material in the candidate bundle and on the host (pure).

With a PKI directory (`dcvpn deploy/diff --pki-dir`), tasks/deploy.py adds four files to the
bundle (drivers/strongswan_bundle.py); the driver installs them in swanctl's credential
folders, where `swanctl --load-all` (the reload step) loads them:

    bundle name   host path (swanctl folder)     mode   diff shows
    cert.pem      x509/<gateway>.pem             0644   subject, serial, validity, PEM
    key.pem       private/<gateway>.key          0600   `<private key>` only (never read back)
    ca.pem        x509ca/ca.pem                  0644   subject, serial, validity, PEM
    crl.pem       x509crl/crl.pem                0644   issuer, update times, revoked serials

The swanctl folder is option `swanctl_dir`, else the folder of swanctl.conf (the lab: the
gateway's folder; a host: /etc/swanctl). Unlike the configuration files, a credential file the
candidate does not hold is left alone: a deploy without --pki-dir neither removes nor
changes the certificates on a gateway. The key is compared by digest on the host and never
read back; its backup for the rollback timer stays in the 0700 state folder, mode 0600.
"""

import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from cryptography import x509

from drivers.errors import UnsupportedError
from drivers.strongswan_layout import SWANCTL_CONF, Layout, ManagedFile

CERT_FILE, KEY_FILE, CA_FILE, CRL_FILE = "cert.pem", "key.pem", "ca.pem", "crl.pem"
CREDENTIAL_FILES = (CERT_FILE, KEY_FILE, CA_FILE, CRL_FILE)
SECRET_FILES = frozenset({KEY_FILE})
PUBLIC_MODE, PRIVATE_MODE = 0o644, 0o600
# bundle name -> (path under the swanctl folder, {gateway} filled in; mode)
CREDENTIAL_PATHS: dict[str, tuple[str, int]] = {
    CERT_FILE: ("x509/{gateway}.pem", PUBLIC_MODE),
    KEY_FILE: ("private/{gateway}.key", PRIVATE_MODE),
    CA_FILE: ("x509ca/ca.pem", PUBLIC_MODE),
    CRL_FILE: ("x509crl/crl.pem", PUBLIC_MODE),
}
KEY_SHOWN = "<private key>"
SWANCTL_DIR_OPTION = "swanctl_dir"
# sh -c program: the file's SHA-256 (the key is compared on the host, never read back)
DIGEST_FILE = 'if [ -f "$1" ]; then sha256sum -- "$1"; else exit 3; fi'
DIGEST_PREFIX = "sha256:"


def swanctl_dir(layout: Layout, options: Mapping[str, str]) -> str | None:
    """Where swanctl looks for credentials; None when this host's swanctl.conf is unmanaged."""
    given = options.get(SWANCTL_DIR_OPTION, "")
    if given:
        if not posixpath.isabs(given):
            raise UnsupportedError(f"option {SWANCTL_DIR_OPTION} must be an absolute path, "
                                   f"not {given!r}")
        return given.rstrip("/") or "/"
    conf = layout.file(SWANCTL_CONF)
    return posixpath.dirname(conf.path) if conf is not None else None


def with_credentials(layout: Layout, gateway: str, options: Mapping[str, str]) -> Layout:
    """The layout with the gateway's credential files managed too (not required)."""
    folder = swanctl_dir(layout, options)
    if folder is None:
        return layout
    extra = tuple(ManagedFile(name, posixpath.join(folder, rel.format(gateway=gateway)), mode,
                              False)
                  for name, (rel, mode) in CREDENTIAL_PATHS.items())
    # first: installed before the configuration that names them, restored before it too
    return replace(layout, files=extra + layout.files)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _cert_lines(text: str) -> list[str]:
    try:
        cert = x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        return ["# (not a PEM certificate)"]
    return [f"# subject: {cert.subject.rfc4514_string()}",
            f"# serial: {cert.serial_number:X}",
            f"# not-before: {_when(cert.not_valid_before_utc)}",
            f"# not-after: {_when(cert.not_valid_after_utc)}"]


def _crl_lines(text: str) -> list[str]:
    try:
        crl = x509.load_pem_x509_crl(text.encode())
    except ValueError:
        return ["# (not a PEM CRL)"]
    nxt = crl.next_update_utc
    revoked = sorted(f"{r.serial_number:X}" for r in crl)
    return [f"# issuer: {crl.issuer.rfc4514_string()}",
            f"# last-update: {_when(crl.last_update_utc)}",
            f"# next-update: {_when(nxt) if nxt else '-'}",
            f"# revoked: {', '.join(revoked) or 'none'}"]


def shown(name: str, text: str | None) -> str | None:
    """What the diff compares for a certificate or CRL: a readable summary before the PEM."""
    if text is None:
        return None
    lines = _crl_lines(text) if name == CRL_FILE else _cert_lines(text)
    return "\n".join(lines) + "\n" + text


def digest(text: str) -> str:
    return DIGEST_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def digest_from(sha256sum_output: str) -> str:
    return DIGEST_PREFIX + sha256sum_output.split(maxsplit=1)[0]


def secret_diff(name: str, running: bool, candidate: bool) -> str:
    """A changed, added or removed key as a unified diff that names it and shows no byte."""
    old = f"running/{name}" if running else "/dev/null"
    new = f"candidate/{name}" if candidate else "/dev/null"
    lines = [f"--- {old}", f"+++ {new}",
             f"@@ -{'1' if running else '0,0'} +{'1' if candidate else '0,0'} @@"]
    lines += [f"-{KEY_SHOWN}"] if running else []
    lines += [f"+{KEY_SHOWN}"] if candidate else []
    return "\n".join(lines) + "\n"
