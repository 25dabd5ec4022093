"""`pki issue` and `pki renew`: one certificate per gateway, named by its IKE identity.

Both commands first read and check everything (CA key and passphrase, every certificate's
issuer, each gateway's key), then generate, then write: a bad file or a wrong passphrase
stops them before anything changed. A replaced certificate and its key move to
`<gw>.prev.pem` / `<gw>.prev.key`; both stay valid until their own not-after
(make-before-break, see tasks/pki/__init__.py).

Planning (what to do for each gateway) and writing are shared with the ACME issuer
(tasks.pki.acme_issue): only the Signer that turns an identity and a new key into a
certificate differs.

With fabric.auth.crl_url every certificate names that URL as its CRL distribution point
(IOS-XE fetches the CRL from there; JunOS and strongSwan can). `pki issue` reissues a
certificate whose distribution points differ from the model's, like a changed identity; `pki
renew` gives the renewed ones the current URL. The CRL carries no issuing distribution point:
it is a full CRL of the one CA, and an IDP naming the new URL would put certificates issued
under an earlier URL out of its scope (RFC 5280 6.3.3), so they would have no usable CRL.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from inventory.model import Fabric, Gateway
from inventory.topology import anycast_hubs, anycast_identity, ike_identity
from tasks.pki.ca import CLOCK_SKEW, CRL_DAYS
from tasks.pki.crl import CrlResult, entries, write_crl
from tasks.pki.errors import PkiError
from tasks.pki.files import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    PUBLIC_DIR,
    PUBLIC_FILE,
    ensure_dir,
    exclusive,
    remove_file,
    write_atomic,
)
from tasks.pki.keys import (
    Passphrase,
    PrivateKey,
    PublicKey,
    dump_key,
    generate_key,
    key_type_of,
    signing_hash,
)
from tasks.pki.store import (
    Ca,
    Issued,
    Layout,
    check_all_issued,
    crl_number,
    load_ca,
    load_issued,
    read_crl,
    revoked_serials,
    serial_hex,
)

DEFAULT_DAYS = 365
RENEW_WITHIN = timedelta(days=30)
IKE_INTERMEDIATE = x509.ObjectIdentifier("1.3.6.1.5.5.8.2.2")
EKUS = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH, IKE_INTERMEDIATE)
IpAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class Identity:
    """What a gateway certificate names: CN, and SANs equal to the renderers' IKE identity."""

    common_name: str
    dns: tuple[str, ...]
    ips: tuple[IpAddress, ...]

    def describe(self) -> str:
        return ", ".join([f"CN={self.common_name}", *(f"DNS:{d}" for d in self.dns),
                          *(f"IP:{i}" for i in self.ips)])


def _shared_names(fabric: Fabric, gateway: Gateway) -> tuple[list[str], list[IpAddress]]:
    """The anycast identity and address a gateway of an anycast hub also answers for.

    Each gateway keeps its own key and certificate, which names the shared identity as one
    more SAN: no private key is copied between gateways, and one gateway's certificate can be
    revoked or renewed alone.
    """
    for site in anycast_hubs(fabric).values():
        if gateway in site.gateways and site.anycast_ip is not None:
            shared = anycast_identity(fabric, site)
            try:
                return [], [ip_address(shared), site.anycast_ip]
            except ValueError:
                return [shared], [site.anycast_ip]
    return [], []


def gateway_identity(fabric: Fabric, gateway: Gateway) -> Identity:
    ident = ike_identity(fabric, gateway)
    dns, ips = _shared_names(fabric, gateway)
    try:
        ips.append(ip_address(ident))
    except ValueError:
        dns.insert(0, ident)
    ips.append(gateway.public_ip)
    unique_ips = sorted(set(ips), key=lambda a: (a.version, int(a)))
    return Identity(ident, tuple(dict.fromkeys(dns)), tuple(unique_ips))


def cert_identity(cert: x509.Certificate) -> Identity:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else ""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return Identity(cn, (), ())
    ips = [a for a in san.get_values_for_type(x509.IPAddress)
           if isinstance(a, IPv4Address | IPv6Address)]
    return Identity(cn, tuple(san.get_values_for_type(x509.DNSName)),
                    tuple(sorted(ips, key=lambda a: (a.version, int(a)))))


def crl_distribution_points(cert: x509.Certificate) -> tuple[str, ...]:
    """The URLs of the certificate's CRL Distribution Points extension (() when it has none)."""
    try:
        cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(name.value for point in cdp for name in point.full_name or ()
                 if isinstance(name, x509.UniformResourceIdentifier))


def _cdp_extension(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints([x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None,
        crl_issuer=None)])


def build_certificate(ident: Identity, public_key: PublicKey, ca: Ca, now: datetime,
                      days: int, crl_url: str | None = None) -> x509.Certificate:
    ca_key = ca.signing_key()
    ca_cert = ca.cert
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in ident.dns]
    sans += [x509.IPAddress(i) for i in ident.ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ident.common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(now - CLOCK_SKEW, ca_cert.not_valid_before_utc))
        .not_valid_after(min(now + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(EKUS)), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(aki, critical=False)
    )
    if crl_url is not None:
        builder = builder.add_extension(_cdp_extension(crl_url), critical=False)
    return builder.sign(ca_key, signing_hash(ca_key))


class Outcome(StrEnum):
    CREATED = "created"
    REISSUED = "reissued"
    RENEWED = "renewed"
    UNCHANGED = "unchanged"
    REVOKED = "revoked"  # left alone: its certificate is revoked
    MISSING = "missing"  # renew only: no certificate yet (pki issue makes one)


CHANGES = frozenset({Outcome.CREATED, Outcome.REISSUED, Outcome.RENEWED})


@dataclass(frozen=True)
class CertResult:
    gateway: str
    outcome: Outcome
    reason: str
    serial: str | None = None
    not_after: datetime | None = None

    @property
    def changed(self) -> bool:
        return self.outcome in CHANGES


@dataclass(frozen=True)
class Signed:
    """A new certificate, the intermediates to store beside it, and a note for the report."""

    cert: x509.Certificate
    chain_pem: bytes = b""
    note: str = ""


Signer = Callable[[Identity, PrivateKey], Signed]


@dataclass(frozen=True)
class Plan:
    gateway: str
    identity: Identity
    outcome: Outcome
    reason: str
    existing: Issued | None


@dataclass(frozen=True)
class _Context:
    ca: Ca
    crl: x509.CertificateRevocationList | None
    revoked: frozenset[int]


def _context(layout: Layout, passphrase: Passphrase, now: datetime) -> _Context:
    ca = load_ca(layout, passphrase)
    if ca.cert.not_valid_after_utc <= now:
        raise PkiError(f"{layout.ca_cert}: the CA expired on "
                       f"{ca.cert.not_valid_after_utc:%Y-%m-%d}; a new fabric CA is needed")
    if ca.cert.not_valid_before_utc > now + CLOCK_SKEW:
        raise PkiError(f"{layout.ca_cert}: the CA is valid only from "
                       f"{ca.cert.not_valid_before_utc:%Y-%m-%d %H:%M}Z on; check the clock")
    check_all_issued(layout, ca)
    crl = read_crl(layout, ca)
    return _Context(ca, crl, revoked_serials(crl))


def issue_plan(gw: Gateway, ident: Identity, key_type: str, issued: Issued | None,
               revoked: frozenset[int], now: datetime, reissue_revoked: bool,
               cdp: tuple[str, ...] | None = None) -> Plan:
    """What `pki issue` does for one gateway. `cdp`: the CRL distribution points its
    certificate must name (fabric.auth.crl_url); None leaves them to the signer (ACME)."""
    if issued is None:
        return Plan(gw.name, ident, Outcome.CREATED, "no certificate yet", None)
    cert = issued.cert
    if cert.serial_number in revoked:
        if reissue_revoked:
            return Plan(gw.name, ident, Outcome.REISSUED, "was revoked", issued)
        return Plan(gw.name, ident, Outcome.REVOKED,
                     "certificate is revoked; not reissued (use --reissue-revoked)", issued)
    if cert.not_valid_after_utc <= now:
        return Plan(gw.name, ident, Outcome.REISSUED, "expired", issued)
    have = cert_identity(cert)
    if have != ident:
        return Plan(gw.name, ident, Outcome.REISSUED,
                     f"identity changed: {have.describe()} -> {ident.describe()}", issued)
    have_type = key_type_of(issued.key)
    if have_type != key_type:
        return Plan(gw.name, ident, Outcome.REISSUED,
                     f"key type changed: {have_type} -> {key_type}", issued)
    have_cdp = crl_distribution_points(cert)
    if cdp is not None and have_cdp != cdp:
        return Plan(gw.name, ident, Outcome.REISSUED,
                     f"CRL distribution point changed: {_describe_cdp(have_cdp)} -> "
                     f"{_describe_cdp(cdp)}", issued)
    return Plan(gw.name, ident, Outcome.UNCHANGED,
                 f"valid until {cert.not_valid_after_utc:%Y-%m-%d}", issued)


def _describe_cdp(urls: tuple[str, ...]) -> str:
    return ", ".join(urls) or "none"


def renew_plan(gw: Gateway, ident: Identity, issued: Issued | None, revoked: frozenset[int],
               now: datetime, within: timedelta) -> Plan:
    if issued is None:
        return Plan(gw.name, ident, Outcome.MISSING, "no certificate (run dcvpn pki issue)",
                     None)
    cert = issued.cert
    if cert.serial_number in revoked:
        return Plan(gw.name, ident, Outcome.REVOKED, "certificate is revoked; not renewed",
                     issued)
    left = cert.not_valid_after_utc - now
    if left <= timedelta(0):
        return Plan(gw.name, ident, Outcome.RENEWED, "expired", issued)
    if left <= within:
        return Plan(gw.name, ident, Outcome.RENEWED, f"expires in {left.days} day(s)", issued)
    return Plan(gw.name, ident, Outcome.UNCHANGED,
                 f"valid until {cert.not_valid_after_utc:%Y-%m-%d}", issued)


def ca_signer(ca: Ca, now: datetime, days: int, crl_url: str | None = None) -> Signer:
    """The built-in fabric CA signs locally."""
    def sign(ident: Identity, key: PrivateKey) -> Signed:
        cert = build_certificate(ident, key.public_key(), ca, now, days, crl_url)
        cut = cert.not_valid_after_utc < now + timedelta(days=days)
        return Signed(cert, note="validity cut to the CA's expiry" if cut else "")
    return sign


def _write_chain(path: Path, chain_pem: bytes) -> None:
    if chain_pem:
        write_atomic(path, chain_pem, PUBLIC_FILE)
    else:
        remove_file(path)


def apply_plans(layout: Layout, plans: Sequence[Plan], sign: Signer, passphrase: Passphrase,
                key_type: str) -> list[CertResult]:
    """Make every changed plan's key and certificate first, then write them all."""
    made: list[tuple[Plan, bytes, Signed]] = []
    for plan in plans:
        if plan.outcome in CHANGES:
            key = generate_key(key_type)
            made.append((plan, dump_key(key, passphrase), sign(plan.identity, key)))
    if made:
        ensure_dir(layout.certs_dir, PUBLIC_DIR)
        ensure_dir(layout.keys_dir, PRIVATE_DIR)
    if any(signed.chain_pem or (plan.existing and plan.existing.chain_pem)
           for plan, _, signed in made):
        ensure_dir(layout.chain_dir, PUBLIC_DIR)
    new: dict[str, Signed] = {}
    for plan, key_pem, signed in made:
        gw = plan.gateway
        if plan.existing is not None:
            write_atomic(layout.key(gw, True), plan.existing.key_pem, PRIVATE_FILE)
            write_atomic(layout.cert(gw, True), plan.existing.cert_pem, PUBLIC_FILE)
            _write_chain(layout.chain(gw, True), plan.existing.chain_pem)
        write_atomic(layout.key(gw), key_pem, PRIVATE_FILE)
        write_atomic(layout.cert(gw), signed.cert.public_bytes(serialization.Encoding.PEM),
                     PUBLIC_FILE)
        _write_chain(layout.chain(gw), signed.chain_pem)
        new[gw] = signed
    results = []
    for plan in plans:
        signed_now = new.get(plan.gateway)
        cert_now = signed_now.cert if signed_now else (
            plan.existing.cert if plan.existing else None)
        reason = plan.reason
        if signed_now is not None and signed_now.note:
            reason += f"; {signed_now.note}"
        results.append(CertResult(
            plan.gateway, plan.outcome, reason,
            serial_hex(cert_now.serial_number) if cert_now else None,
            cert_now.not_valid_after_utc if cert_now else None))
    return results


def _check_days(days: int) -> None:
    if days < 1:
        raise PkiError(f"certificate validity must be at least 1 day, not {days}")


def issue_certs(layout: Layout, fabric: Fabric, gateways: Sequence[Gateway],
                passphrase: Passphrase, now: datetime, days: int = DEFAULT_DAYS,
                reissue_revoked: bool = False) -> list[CertResult]:
    """Make sure each gateway has a valid certificate for its current identity (idempotent)."""
    _check_days(days)
    now = now.replace(microsecond=0)
    with exclusive(layout.root):
        ctx = _context(layout, passphrase, now)
        key_type = fabric.fabric.auth.key_type
        crl_url = fabric.fabric.auth.crl_url
        cdp = (crl_url,) if crl_url is not None else ()
        plans = [issue_plan(gw, gateway_identity(fabric, gw), key_type,
                            load_issued(layout, gw.name, ctx.ca, passphrase), ctx.revoked, now,
                            reissue_revoked, cdp) for gw in gateways]
        return apply_plans(layout, plans, ca_signer(ctx.ca, now, days, crl_url), passphrase,
                           key_type)


@dataclass(frozen=True)
class RenewResult:
    certs: list[CertResult]
    crl: CrlResult | None  # set when the CRL was re-signed (its next-update was in the window)


def renew_certs(layout: Layout, fabric: Fabric, gateways: Sequence[Gateway],
                passphrase: Passphrase, now: datetime, within: timedelta = RENEW_WITHIN,
                days: int = DEFAULT_DAYS, crl_days: int = CRL_DAYS) -> RenewResult:
    """Reissue every certificate (and re-sign the CRL) that expires within `within`."""
    _check_days(days)
    if timedelta(days=days) <= within:
        raise PkiError(f"a {days}-day certificate would be due for renewal again at once: "
                       f"--days must be longer than the renewal window ({within.days} days)")
    now = now.replace(microsecond=0)
    with exclusive(layout.root):
        ctx = _context(layout, passphrase, now)
        plans = [renew_plan(gw, gateway_identity(fabric, gw),
                            load_issued(layout, gw.name, ctx.ca, passphrase), ctx.revoked, now,
                            within) for gw in gateways]
        crl_next = ctx.crl.next_update_utc if ctx.crl is not None else None
        crl_due = crl_next is None or crl_next - now <= within
        certs = apply_plans(layout, plans,
                            ca_signer(ctx.ca, now, days, fabric.fabric.auth.crl_url), passphrase,
                            fabric.fabric.auth.key_type)
        crl = None
        if crl_due:
            crl = write_crl(layout, ctx.ca, entries(ctx.crl), crl_number(ctx.crl) + 1, now,
                            crl_days)
    return RenewResult(certs, crl)
