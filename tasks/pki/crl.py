"""The CRL (crl.pem) and `pki revoke`.

The CRL is its own state: its entries and CRL number are read back from crl.pem (after
checking the CA's signature), so there is no second file to keep in sync. Entries stay
until the CA is replaced; a revoked certificate that expired is harmless in the list.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tasks.pki.errors import PkiError
from tasks.pki.files import PUBLIC_FILE, exclusive, write_atomic
from tasks.pki.keys import Passphrase, signing_hash
from tasks.pki.store import (
    Ca,
    Layout,
    check_all_issued,
    crl_number,
    load_ca,
    read_cert,
    read_crl,
    serial_hex,
)

REASONS: dict[str, x509.ReasonFlags | None] = {
    "unspecified": None,
    "key-compromise": x509.ReasonFlags.key_compromise,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
}


@dataclass(frozen=True)
class Revocation:
    serial: int
    date: datetime
    reason: x509.ReasonFlags | None = None


def entries(crl: x509.CertificateRevocationList | None) -> list[Revocation]:
    out = []
    for r in crl or ():
        try:
            reason: x509.ReasonFlags | None = r.extensions.get_extension_for_class(
                x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        out.append(Revocation(r.serial_number, r.revocation_date_utc, reason))
    return out


def build_crl(ca: Ca, revoked: Iterable[Revocation], number: int, now: datetime,
              days: int) -> x509.CertificateRevocationList:
    key = ca.signing_key()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now)
        .next_update(now + timedelta(days=days))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                       critical=False)
    )
    for entry in sorted(revoked, key=lambda e: e.serial):
        rb = (x509.RevokedCertificateBuilder().serial_number(entry.serial)
              .revocation_date(entry.date))
        if entry.reason is not None:
            rb = rb.add_extension(x509.CRLReason(entry.reason), critical=False)
        builder = builder.add_revoked_certificate(rb.build())
    return builder.sign(key, signing_hash(key))


@dataclass(frozen=True)
class CrlResult:
    number: int
    next_update: datetime
    revoked: int  # entries in the CRL


def write_crl(layout: Layout, ca: Ca, revoked: Iterable[Revocation], number: int,
              now: datetime, days: int) -> CrlResult:
    crl = build_crl(ca, revoked, number, now, days)
    write_atomic(layout.crl, crl.public_bytes(serialization.Encoding.PEM), PUBLIC_FILE)
    return CrlResult(number, crl.next_update_utc or now, len(crl))


@dataclass(frozen=True)
class RevokeResult:
    gateway: str
    serials: tuple[str, ...]  # newly revoked
    already: tuple[str, ...]  # were revoked before
    crl: CrlResult | None  # None when nothing changed


def revoke(layout: Layout, gateway: str, passphrase: Passphrase, now: datetime,
           crl_days: int, reason: str = "unspecified") -> RevokeResult:
    """Revoke the gateway's current certificate, and its previous one while unexpired.

    The previous certificate (kept by renew for make-before-break) is revoked too: after a
    compromise, any certificate the gateway still holds must stop working.
    """
    if reason not in REASONS:
        raise PkiError(f"unknown revocation reason {reason!r}; known: {', '.join(REASONS)}")
    now = now.replace(microsecond=0)
    with exclusive(layout.root):
        ca = load_ca(layout, passphrase)
        check_all_issued(layout, ca)
        crl = read_crl(layout, ca)
        current = read_cert(layout.cert(gateway))
        if current is None:
            raise PkiError(f"{layout.cert(gateway)}: gateway {gateway} has no certificate "
                           "to revoke")
        previous = read_cert(layout.cert(gateway, previous=True))
        targets = [current]
        if previous is not None and previous.not_valid_after_utc > now:
            targets.append(previous)
        known = entries(crl)
        done = {e.serial for e in known}
        new = [c.serial_number for c in targets if c.serial_number not in done]
        already = tuple(serial_hex(c.serial_number) for c in targets
                        if c.serial_number in done)
        if not new:
            return RevokeResult(gateway, (), already, None)
        known += [Revocation(s, now, REASONS[reason]) for s in new]
        result = write_crl(layout, ca, known, crl_number(crl) + 1, now, crl_days)
    return RevokeResult(gateway, tuple(serial_hex(s) for s in new), already, result)
