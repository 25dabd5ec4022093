"""Gateway certificates from an external ACME CA: `pki init/issue/renew/revoke` of an ACME dir.

The decisions are the built-in CA's (tasks.pki.issue: same plans, same renewal window, same
make-before-break `.prev` files); only signing differs: the gateway key is made here, a CSR
goes to the CA, and the CA's answer is checked before anything is written (it certifies our
key, names exactly the identity asked for, and chains to the root in ca.pem). The CA decides
the validity period; `--days` does not apply.

Identity: the IKE identity FQDN (CN and DNS SAN) and, with http-01, the public IP as an IP
SAN (RFC 8738 IP identifier). dns-01 cannot validate an IP, so a dns-01 certificate names
the FQDN only.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from inventory.model import Fabric, Gateway
from tasks.pki.acme_client import REASON_CODES, AcmeSession, ChallengeSolver, register
from tasks.pki.acme_config import AcmeConfig, listen_addresses, read_config, write_config
from tasks.pki.acme_http01 import Http01Responder, serving
from tasks.pki.acme_revoked import record, revoked_serials
from tasks.pki.crl import RevokeResult
from tasks.pki.errors import AcmeError, CaExistsError, CaMismatchError, PkiError
from tasks.pki.files import PUBLIC_FILE, exclusive, write_new
from tasks.pki.issue import (
    CHANGES,
    CertResult,
    Identity,
    Plan,
    RenewResult,
    Signed,
    Signer,
    apply_plans,
    cert_identity,
    gateway_identity,
    issue_plan,
    renew_plan,
)
from tasks.pki.keys import Passphrase, PrivateKey, public_der, signing_hash
from tasks.pki.store import (
    Ca,
    Layout,
    chains_to,
    check_all_issued,
    load_ca,
    load_issued,
    read_cert,
    serial_hex,
)


@dataclass(frozen=True)
class AcmeInitResult:
    root_subject: str
    root_not_after: datetime
    account_url: str
    directory: str


def _refuse_existing(layout: Layout) -> None:
    for path in (layout.ca_key, layout.ca_cert, layout.crl, layout.acme_config):
        if path.exists() or path.is_symlink():
            raise CaExistsError(f"{path}: {layout.root} already has an issuer; refusing to "
                                "replace it (use a new PKI directory for the ACME CA)")
    if layout.cert_files():
        raise CaExistsError(f"{layout.certs_dir} holds certificates of an earlier issuer; "
                            "move them away first")


def parse_root(data: bytes, source: str) -> x509.Certificate:
    try:
        root = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise PkiError(f"{source}: not a readable PEM certificate") from None
    try:
        is_ca = root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise PkiError(f"{source}: not a CA certificate (give the ACME CA's root)")
    return root


def init_acme(layout: Layout, config: AcmeConfig, root_pem: bytes, root_source: str,
              passphrase: Passphrase) -> AcmeInitResult:
    """Record the ACME issuer: its root as ca.pem, acme.json, and a registered account."""
    root = parse_root(root_pem, root_source)
    with exclusive(layout.root, create=True):
        _refuse_existing(layout)
        registered = register(layout, config, passphrase)
        write_new(layout.ca_cert, root.public_bytes(serialization.Encoding.PEM), PUBLIC_FILE)
        write_config(layout, registered)
    return AcmeInitResult(root.subject.rfc4514_string(), root.not_valid_after_utc,
                          registered.account_url or "", registered.directory)


def acme_identity(fabric: Fabric, gateway: Gateway, config: AcmeConfig) -> Identity:
    ident = gateway_identity(fabric, gateway)
    ips = ident.ips if config.ip_sans else ()
    if not ident.dns and not ips:
        raise PkiError(f"{gateway.name}: its IKE identity {ident.common_name} is an IP "
                       f"address, which {config.challenge} cannot validate: use http-01")
    return Identity(ident.dns[0] if ident.dns else str(ips[0]), ident.dns, ips)


def build_csr(ident: Identity, key: PrivateKey) -> bytes:
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in ident.dns]
    sans += [x509.IPAddress(i) for i in ident.ips]
    builder = x509.CertificateSigningRequestBuilder()
    if ident.dns:
        builder = builder.subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ident.common_name)]))
    csr = (builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
           .sign(key, signing_hash(key)))
    return csr.public_bytes(serialization.Encoding.PEM)


def _lifetime(cert: x509.Certificate) -> timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def _span(delta: timedelta) -> str:
    hours = round(delta.total_seconds() / 3600)
    return f"{hours // 24} day(s)" if hours >= 48 else f"{hours} hour(s)"


def _issuer_name(cert: x509.Certificate) -> str:
    cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else cert.issuer.rfc4514_string()


def acme_signer(session: AcmeSession, solver: ChallengeSolver, ca: Ca, layout: Layout,
                within: timedelta | None) -> Signer:
    def sign(ident: Identity, key: PrivateKey) -> Signed:
        ordered = session.order(build_csr(ident, key), solver)
        cert = ordered.cert
        where = session.config.directory
        if public_der(cert.public_key()) != public_der(key):
            raise AcmeError(f"{where}: the CA certified a different key than the one sent")
        got = cert_identity(cert)
        if (got.dns, got.ips) != (ident.dns, ident.ips):
            raise AcmeError(f"{where}: the CA issued {got.describe()} for "
                            f"{ident.describe()}; nothing was written")
        if not chains_to(cert, ca.cert, ordered.chain):
            raise CaMismatchError(
                f"{where}: the certificate ({_issuer_name(cert)}) does not chain to the root "
                f"in {layout.ca_cert} ({ca.cert.subject.rfc4514_string()}): peers would "
                "refuse it; init a PKI directory with the CA's current root")
        note = f"issued by {_issuer_name(cert)} for {_span(_lifetime(cert))}"
        if within is not None and _lifetime(cert) <= within:
            note += " (not longer than the renewal window: renewed on every renew run)"
        chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM)
                             for c in ordered.chain)
        return Signed(cert, chain_pem, note)
    return sign


@contextmanager
def _responder(config: AcmeConfig, needed: bool) -> Iterator[Http01Responder | None]:
    if not needed or config.challenge != "http-01":
        yield None
        return
    with serving(listen_addresses(config.http_listen)) as responder:
        yield responder


def _run(layout: Layout, fabric: Fabric, gateways: Sequence[Gateway], passphrase: Passphrase,
         now: datetime, within: timedelta | None, reissue_revoked: bool,
         renew: bool) -> list[CertResult]:
    config = read_config(layout)
    ca = load_ca(layout)
    check_all_issued(layout, ca)
    revoked = revoked_serials(layout)
    key_type = fabric.fabric.auth.key_type
    plans: list[Plan] = []
    for gw in gateways:
        ident = acme_identity(fabric, gw, config)
        issued = load_issued(layout, gw.name, ca, passphrase)
        if renew:
            plans.append(renew_plan(gw, ident, issued, revoked, now, within or timedelta(0)))
        else:
            plans.append(issue_plan(gw, ident, key_type, issued, revoked, now,
                                    reissue_revoked))
    changes = any(p.outcome in CHANGES for p in plans)
    if not changes:
        return apply_plans(layout, plans, _never, passphrase, key_type)
    session = AcmeSession(layout, config, passphrase)
    with _responder(config, changes) as responder:
        solver = ChallengeSolver(config, responder)
        return apply_plans(layout, plans, acme_signer(session, solver, ca, layout, within),
                           passphrase, key_type)


def _never(ident: Identity, key: PrivateKey) -> Signed:
    raise AssertionError("no certificate to sign")


def acme_issue_certs(layout: Layout, fabric: Fabric, gateways: Sequence[Gateway],
                     passphrase: Passphrase, now: datetime,
                     reissue_revoked: bool = False) -> list[CertResult]:
    """`pki issue` for an ACME directory: a valid certificate per gateway (idempotent)."""
    with exclusive(layout.root):
        return _run(layout, fabric, gateways, passphrase, now.replace(microsecond=0), None,
                    reissue_revoked, renew=False)


def acme_renew_certs(layout: Layout, fabric: Fabric, gateways: Sequence[Gateway],
                     passphrase: Passphrase, now: datetime, within: timedelta) -> RenewResult:
    """`pki renew` for an ACME directory: reorder every certificate expiring within `within`."""
    with exclusive(layout.root):
        certs = _run(layout, fabric, gateways, passphrase, now.replace(microsecond=0), within,
                     False, renew=True)
    return RenewResult(certs, None)


def acme_revoke(layout: Layout, gateway: str, passphrase: Passphrase, now: datetime,
                reason: str = "unspecified") -> RevokeResult:
    """Revoke the current (and unexpired previous) certificate at the CA; record the serials."""
    if reason not in REASON_CODES:
        raise PkiError(f"unknown revocation reason {reason!r}; known: {', '.join(REASON_CODES)}")
    with exclusive(layout.root):
        config = read_config(layout)
        ca = load_ca(layout)
        check_all_issued(layout, ca)
        current = read_cert(layout.cert(gateway))
        if current is None:
            raise PkiError(f"{layout.cert(gateway)}: gateway {gateway} has no certificate "
                           "to revoke")
        previous = read_cert(layout.cert(gateway, previous=True))
        targets = [current]
        if previous is not None and previous.not_valid_after_utc > now:
            targets.append(previous)
        done = revoked_serials(layout)
        new = [c for c in targets if c.serial_number not in done]
        already = tuple(serial_hex(c.serial_number) for c in targets if c.serial_number in done)
        if new:
            session = AcmeSession(layout, config, passphrase)
            revoked: list[str] = []
            try:
                for cert in new:
                    session.revoke(cert, reason)
                    revoked.append(serial_hex(cert.serial_number))
            finally:
                if revoked:
                    record(layout, revoked, gateway, reason, now)
    return RevokeResult(gateway, tuple(serial_hex(c.serial_number) for c in new), already, None)

