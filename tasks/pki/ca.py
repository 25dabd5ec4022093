"""`pki init`: the fabric CA and its first (empty) CRL."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from tasks.pki.crl import build_crl
from tasks.pki.errors import CaExistsError
from tasks.pki.files import PRIVATE_FILE, PUBLIC_FILE, exclusive, write_new
from tasks.pki.keys import Passphrase, dump_key, generate_key, signing_hash
from tasks.pki.store import Ca, Layout

CA_DAYS = 3650
CRL_DAYS = 90
CLOCK_SKEW = timedelta(minutes=5)  # certificates start this much before "now"


@dataclass(frozen=True)
class InitResult:
    subject: str
    serial: int
    not_after: datetime
    key_type: str
    encrypted: bool


def ca_name(fabric_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dcvpn"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"dcvpn {fabric_name} fabric CA"),
    ])


def _refuse_existing(layout: Layout) -> None:
    for path in (layout.ca_key, layout.ca_cert, layout.crl):
        if path.exists() or path.is_symlink():
            raise CaExistsError(f"{path}: a CA already exists in {layout.root}; refusing to "
                                "overwrite it (every certificate of the fabric depends on it)")
    if layout.cert_files():
        raise CaExistsError(f"{layout.certs_dir} holds certificates of an earlier CA; "
                            "move them away before creating a new CA")


def init_ca(layout: Layout, fabric_name: str, key_type: str, passphrase: Passphrase,
            now: datetime, days: int = CA_DAYS, crl_days: int = CRL_DAYS) -> InitResult:
    """Create ca.key, ca.pem and an empty crl.pem; never overwrites an existing CA."""
    if layout.ca_cert.exists() or layout.ca_key.exists():
        _refuse_existing(layout)  # before the (slow for RSA) key generation
    key = generate_key(key_type)
    name = ca_name(fabric_name)
    now = now.replace(microsecond=0)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, signing_hash(key))
    )
    crl = build_crl(Ca(cert, key), (), 1, now, crl_days)
    files = ((layout.ca_key, dump_key(key, passphrase), PRIVATE_FILE),
             (layout.ca_cert, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_FILE),
             (layout.crl, crl.public_bytes(serialization.Encoding.PEM), PUBLIC_FILE))
    with exclusive(layout.root, create=True):
        _refuse_existing(layout)
        written: list[Path] = []
        try:
            for path, data, mode in files:
                try:
                    write_new(path, data, mode)
                except FileExistsError:
                    raise CaExistsError(f"{path}: exists; refusing to overwrite it") from None
                written.append(path)
        finally:
            if len(written) < len(files):  # all or nothing
                for path in written:
                    path.unlink()
    return InitResult(name.rfc4514_string(), cert.serial_number, cert.not_valid_after_utc,
                      key_type, passphrase.value is not None)
