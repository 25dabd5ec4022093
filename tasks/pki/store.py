"""The PKI directory: its layout, and reading it back with every consistency check.

    <pki>/ca.pem  ca.key  crl.pem        the fabric CA, its key (0600) and its CRL
    <pki>/certs/<gw>.pem  <gw>.prev.pem  current and previous certificate of a gateway
    <pki>/private/<gw>.key  <gw>.prev.key  their keys (0600, directory 0700)

A PKI directory whose issuer is an external ACME CA (tasks.pki.acme_issue) has no ca.key
and no crl.pem; instead:

    <pki>/ca.pem                         the ACME CA's root: the trust anchor peers get
    <pki>/acme.json                      issuer settings (directory URL, account URL; no secret)
    <pki>/acme-account.key               the ACME account key (0600)
    <pki>/acme-revoked.json              serials dcvpn revoked at the ACME CA
    <pki>/chain/<gw>.pem  <gw>.prev.pem  the intermediates the CA sent with each certificate
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from tasks.pki.errors import CaMismatchError, CorruptFileError, PkiError
from tasks.pki.files import read_bytes, safe_name
from tasks.pki.keys import Passphrase, PrivateKey, load_key, parse_key, public_der


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def crl(self) -> Path:
        return self.root / "crl.pem"

    @property
    def certs_dir(self) -> Path:
        return self.root / "certs"

    @property
    def keys_dir(self) -> Path:
        return self.root / "private"

    def cert(self, gateway: str, previous: bool = False) -> Path:
        suffix = ".prev.pem" if previous else ".pem"
        return self.certs_dir / f"{safe_name(gateway, 'gateway name')}{suffix}"

    def key(self, gateway: str, previous: bool = False) -> Path:
        suffix = ".prev.key" if previous else ".key"
        return self.keys_dir / f"{safe_name(gateway, 'gateway name')}{suffix}"

    @property
    def acme_config(self) -> Path:
        return self.root / "acme.json"

    @property
    def acme_account_key(self) -> Path:
        return self.root / "acme-account.key"

    @property
    def acme_revoked(self) -> Path:
        return self.root / "acme-revoked.json"

    @property
    def chain_dir(self) -> Path:
        return self.root / "chain"

    @property
    def is_acme(self) -> bool:
        """Certificates come from an external ACME CA (`pki init --acme-directory`)."""
        return self.acme_config.is_file()

    def chain(self, gateway: str, previous: bool = False) -> Path:
        return self.chain_of(self.cert(gateway, previous))

    def chain_of(self, cert_path: Path) -> Path:
        """The intermediates that came with the certificate at `cert_path` (ACME only)."""
        return self.chain_dir / cert_path.name

    def cert_files(self) -> list[Path]:
        if not self.certs_dir.is_dir():
            return []
        return sorted(p for p in self.certs_dir.iterdir()
                      if p.suffix == ".pem" and not p.name.startswith("."))


@dataclass(frozen=True)
class Ca:
    cert: x509.Certificate
    key: PrivateKey | None  # None when only the certificate was asked for

    def signing_key(self) -> PrivateKey:
        assert self.key is not None, "load the CA with load_ca(layout, passphrase)"
        return self.key


def serial_hex(serial: int) -> str:
    """Upper-case hex, even length: the spelling of `openssl x509 -serial`."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else f"0{text}"


def parse_cert(data: bytes, path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise CorruptFileError(f"{path}: not a readable PEM certificate (damaged file?)") from None


def read_cert(path: Path) -> x509.Certificate | None:
    data = read_bytes(path, "a certificate")
    return None if data is None else parse_cert(data, path)


def load_ca(layout: Layout, passphrase: Passphrase | None = None) -> Ca:
    """The CA certificate; with a Passphrase (`Passphrase()`: none) also its checked key."""
    cert = read_cert(layout.ca_cert)
    if cert is None:
        raise PkiError(f"{layout.root}: no CA here (ca.pem missing): run dcvpn pki init")
    if not _is_ca(cert):
        raise CorruptFileError(f"{layout.ca_cert}: not a CA certificate")
    if passphrase is None:
        return Ca(cert, None)
    key = load_key(layout.ca_key, passphrase)
    if public_der(key) != public_der(cert.public_key()):
        raise CaMismatchError(f"{layout.ca_key} does not belong to {layout.ca_cert}: "
                              "restore the matching pair")
    return Ca(cert, key)


def read_chain(layout: Layout, cert_path: Path) -> tuple[x509.Certificate, ...]:
    """The intermediate CA certificates stored beside a certificate; () when there are none."""
    path = layout.chain_of(cert_path)
    data = read_bytes(path, "a certificate chain")
    if data is None:
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        raise CorruptFileError(f"{path}: not a readable PEM certificate chain") from None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """issuer's key signed cert (and its issuer name matches)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def chains_to(cert: x509.Certificate, root: x509.Certificate,
              chain: Sequence[x509.Certificate] = ()) -> bool:
    """Signatures lead from `cert` through CA certificates of `chain` to `root`."""
    current = cert
    for _ in range(len(chain) + 1):
        if issued_by(current, root):
            return True
        step = next((c for c in chain if c is not current and _is_ca(c)
                     and issued_by(current, c)), None)
        if step is None:
            return False
        current = step
    return False


def check_issued(cert: x509.Certificate, ca: Ca, path: Path,
                 chain: Sequence[x509.Certificate] = ()) -> None:
    if not chains_to(cert, ca.cert, chain):
        raise CaMismatchError(
            f"{path} was not issued by the CA in {ca.cert.subject.rfc4514_string()!r} "
            f"(its issuer: {cert.issuer.rfc4514_string()!r}); the PKI directory mixes CAs: "
            "restore the CA that issued it, or move the foreign certificates away"
        ) from None


def check_all_issued(layout: Layout, ca: Ca) -> None:
    """Refuse a PKI directory holding any certificate from another CA."""
    for path in layout.cert_files():
        cert = read_cert(path)
        if cert is not None:
            check_issued(cert, ca, path, read_chain(layout, path))


def read_crl(layout: Layout, ca: Ca) -> x509.CertificateRevocationList | None:
    data = read_bytes(layout.crl, "a CRL")
    if data is None:
        return None
    try:
        crl = x509.load_pem_x509_crl(data)
    except ValueError:
        raise CorruptFileError(f"{layout.crl}: not a readable PEM CRL (damaged file?)") from None
    key = ca.cert.public_key()
    if crl.issuer != ca.cert.subject or not crl.is_signature_valid(key):  # type: ignore[arg-type]
        raise CaMismatchError(f"{layout.crl} was not signed by the CA in {layout.ca_cert}")
    return crl


def revoked_serials(crl: x509.CertificateRevocationList | None) -> frozenset[int]:
    return frozenset(r.serial_number for r in crl) if crl is not None else frozenset()


def crl_number(crl: x509.CertificateRevocationList | None) -> int:
    if crl is None:
        return 0
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0


@dataclass(frozen=True)
class Issued:
    """A gateway certificate with its key, checked to belong together and to the CA."""

    gateway: str
    cert: x509.Certificate
    key: PrivateKey
    cert_pem: bytes
    key_pem: bytes
    chain_pem: bytes = b""  # intermediates from an ACME CA; empty for the built-in CA


def load_issued(layout: Layout, gateway: str, ca: Ca, passphrase: Passphrase,
                previous: bool = False) -> Issued | None:
    cert_path = layout.cert(gateway, previous)
    data = read_bytes(cert_path, "a certificate")
    if data is None:
        return None
    cert = parse_cert(data, cert_path)
    chain = read_chain(layout, cert_path)
    check_issued(cert, ca, cert_path, chain)
    key_path = layout.key(gateway, previous)
    key_pem = read_bytes(key_path, "a private key")
    if key_pem is None:
        raise CorruptFileError(f"{key_path}: private key of {cert_path} is missing")
    key = parse_key(key_pem, key_path, passphrase)
    if public_der(key) != public_der(cert.public_key()):
        raise CorruptFileError(f"{key_path} does not belong to {cert_path}")
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    return Issued(gateway, cert, key, data, key_pem, chain_pem)
