"""An ACME-like PKI directory for the av tests, built with `cryptography` the way pebble
issues (root -> intermediate(s) -> leaf; the leaf with serverAuth/clientAuth only, no IKE
EKU): ca.pem holds the root, certs/<gw>.pem the leaf, chain/<gw>.pem the intermediates in
the order an ACME CA sends them (the leaf's issuer first), private/<gw>.key the key, acme.json
marks the directory as ACME."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tasks.pki.files import PRIVATE_FILE, PUBLIC_FILE, ensure_dir
from tasks.pki.keys import Passphrase, dump_key
from tasks.pki.store import Layout

Key = ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: Key, issuer: x509.Certificate | None, issuer_key: Key,
          ca: bool, days: int = 30, dns: str | None = None) -> x509.Certificate:
    now = datetime.now(UTC) - timedelta(minutes=5)
    builder = (x509.CertificateBuilder().subject_name(_name(subject))
               .issuer_name(issuer.subject if issuer else _name(subject))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(dns or subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class AcmePki:
    """A pebble-like CA: a root and `depth` intermediates; `issue` writes a gateway's files."""

    def __init__(self, root: Path, depth: int = 1) -> None:
        self.layout = Layout(root)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _cert("Pebble Root CA av", self.root_key, None, self.root_key, ca=True,
                          days=3650)
        self.intermediates: list[tuple[x509.Certificate, Key]] = []
        issuer, issuer_key = self.root, self.root_key
        for i in range(depth):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _cert(f"Pebble Intermediate CA av{i}", key, issuer, issuer_key, ca=True,
                         days=1825)
            self.intermediates.append((cert, key))
            issuer, issuer_key = cert, key
        ensure_dir(root, 0o700)
        for folder in (self.layout.certs_dir, self.layout.chain_dir):
            ensure_dir(folder, 0o755)
        ensure_dir(self.layout.keys_dir, 0o700)
        self.layout.ca_cert.write_bytes(_pem(self.root))
        self.layout.acme_config.write_text(json.dumps({}))

    def issue(self, gateway: str, curve: ec.EllipticCurve | None = None) -> x509.Certificate:
        issuer, issuer_key = self.intermediates[-1] if self.intermediates else (
            self.root, self.root_key)
        key = ec.generate_private_key(curve or ec.SECP256R1())
        cert = _cert(f"{gateway}.example.net", key, issuer, issuer_key, ca=False, days=90)
        cert_path, key_path = self.layout.cert(gateway), self.layout.key(gateway)
        cert_path.write_bytes(_pem(cert))
        cert_path.chmod(PUBLIC_FILE)
        key_path.write_bytes(dump_key(key, Passphrase()))
        key_path.chmod(PRIVATE_FILE)
        sent = b"".join(_pem(c) for c, _ in reversed(self.intermediates))  # leaf's issuer first
        chain_path = self.layout.chain(gateway)
        if sent:
            chain_path.write_bytes(sent)
        else:
            chain_path.unlink(missing_ok=True)
        return cert
