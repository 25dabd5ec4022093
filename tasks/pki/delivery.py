"""What each platform needs from the PKI directory (read-only; drivers and the lab install it).

strongSwan: files for the swanctl folders (`strongswan_files`). IOS-XE and JunOS: the PEM
texts (`device_pems`) a renderer embeds (IOS-XE trustpoint `crypto pki certificate chain`)
or a driver loads (JunOS `request security pki ... load`), and the key (`load_material`).

From an ACME directory (tasks.pki.acme_issue) the CA is the ACME CA's root (ca.pem) and the
intermediates the CA sent with the certificate travel with it: strongSwan gets them as
further files in x509ca/ (a peer builds the path leaf -> intermediate -> root from them),
and there is no CRL file (the ACME CA publishes revocation itself). IOS-XE and JunOS get the
root and the chain as PEM text (`DevicePems.chain`; `ordered_chain` puts it root side first):
JunOS loads each CA into its own ca-profile, the IOS-XE trustpoint holds the issuing CA
(`issuing_ca`); tasks.pki.deploy_material and drivers/{junos,iosxe}_pki.py say how.
"""

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tasks.pki.errors import PkiError
from tasks.pki.files import PRIVATE_FILE, PUBLIC_FILE
from tasks.pki.keys import Passphrase
from tasks.pki.store import (
    Ca,
    Layout,
    check_issued,
    issued_by,
    load_ca,
    load_issued,
    read_cert,
    read_chain,
    read_crl,
)

# Material kind -> swanctl sub-folder (swanctl(8): x509, private, x509ca, x509crl).
SWANCTL_DIRS = {"cert": "x509", "key": "private", "ca": "x509ca", "crl": "x509crl"}


@dataclass(frozen=True)
class DeliveryFile:
    path: str  # relative to the swanctl folder
    content: bytes = field(repr=False)
    mode: int


@dataclass(frozen=True)
class DevicePems:
    ca: str
    cert: str
    crl: str  # "" from an ACME directory
    chain: str = ""  # intermediates between cert and ca (ACME); "" for the fabric CA


@dataclass(frozen=True)
class GatewayMaterial:
    gateway: str
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes = field(repr=False)  # unencrypted PKCS#8: handle as a secret
    crl_pem: bytes  # b"" from an ACME directory: no CRL file is delivered
    chain_pem: bytes = b""  # intermediates (ACME): each becomes an x509ca/ file


def _crl_pem(layout: Layout, ca: Ca) -> bytes:
    if layout.is_acme:
        return b""
    crl = read_crl(layout, ca)
    if crl is None:
        raise PkiError(f"{layout.crl}: the CRL is missing (run dcvpn pki renew)")
    return crl.public_bytes(serialization.Encoding.PEM)


def load_material(pki_dir: Path, gateway: str, passphrase: Passphrase | None = None,
                  previous: bool = False) -> GatewayMaterial:
    """CA, certificate, decrypted key and CRL of a gateway (`previous`: the pair before renew).

    A revoked certificate is delivered too: the lab shows its peers refusing it.
    """
    layout = Layout(pki_dir)
    pp = passphrase or Passphrase()
    ca = load_ca(layout)
    issued = load_issued(layout, gateway, ca, pp, previous)
    if issued is None:
        which = "previous certificate" if previous else "certificate"
        raise PkiError(f"{layout.cert(gateway, previous)}: gateway {gateway} has no {which} "
                       "(run dcvpn pki issue)")
    key_pem = issued.key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    return GatewayMaterial(gateway, ca.cert.public_bytes(serialization.Encoding.PEM),
                           issued.cert_pem, key_pem, _crl_pem(layout, ca), issued.chain_pem)


def chain_files(material: GatewayMaterial) -> tuple[DeliveryFile, ...]:
    """One x509ca/ file per intermediate: swanctl loads one certificate per file."""
    certs = x509.load_pem_x509_certificates(material.chain_pem) if material.chain_pem else []
    pems = [c.public_bytes(serialization.Encoding.PEM) for c in certs]
    return tuple(DeliveryFile(f"{SWANCTL_DIRS['ca']}/chain-{i}.pem", pem, PUBLIC_FILE)
                 for i, pem in enumerate(pems, 1))


def strongswan_layout(material: GatewayMaterial) -> tuple[DeliveryFile, ...]:
    gw = material.gateway
    files = (
        DeliveryFile(f"{SWANCTL_DIRS['cert']}/{gw}.pem", material.cert_pem, PUBLIC_FILE),
        DeliveryFile(f"{SWANCTL_DIRS['key']}/{gw}.key", material.key_pem, PRIVATE_FILE),
        DeliveryFile(f"{SWANCTL_DIRS['ca']}/ca.pem", material.ca_pem, PUBLIC_FILE),
        *chain_files(material),
    )
    if not material.crl_pem:
        return files
    return (*files, DeliveryFile(f"{SWANCTL_DIRS['crl']}/crl.pem", material.crl_pem,
                                 PUBLIC_FILE))


def strongswan_files(pki_dir: Path, gateway: str, passphrase: Passphrase | None = None,
                     previous: bool = False) -> tuple[DeliveryFile, ...]:
    """The files to place under the gateway's swanctl folder (write each with its mode)."""
    return strongswan_layout(load_material(pki_dir, gateway, passphrase, previous))


def device_pems(pki_dir: Path, gateway: str) -> DevicePems:
    """CA, device certificate and CRL as PEM text (no key, no passphrase needed)."""
    layout = Layout(pki_dir)
    ca = load_ca(layout)
    path = layout.cert(gateway)
    cert = read_cert(path)
    if cert is None:
        raise PkiError(f"{path}: gateway {gateway} has no certificate (run dcvpn pki issue)")
    chain = read_chain(layout, path)
    check_issued(cert, ca, path, chain)
    return DevicePems(ca.cert.public_bytes(serialization.Encoding.PEM).decode(),
                      cert.public_bytes(serialization.Encoding.PEM).decode(),
                      _crl_pem(layout, ca).decode(),
                      "".join(c.public_bytes(serialization.Encoding.PEM).decode()
                              for c in chain))


def ordered_chain(pems: DevicePems) -> tuple[str, ...]:
    """The intermediates as PEM texts, root side first (the order an ACME CA sends them in
    is not relied on); () for a fabric CA. PkiError when they do not lead from the device
    certificate to the CA."""
    if not pems.chain.strip():
        return ()
    certs = list(x509.load_pem_x509_certificates(pems.chain.encode()))
    current = x509.load_pem_x509_certificate(pems.cert.encode())
    ca = x509.load_pem_x509_certificate(pems.ca.encode())
    path: list[x509.Certificate] = []
    for _ in range(len(certs) + 1):
        if issued_by(current, ca):
            return tuple(c.public_bytes(serialization.Encoding.PEM).decode()
                         for c in reversed(path))
        step = next((c for c in certs if c not in path and issued_by(current, c)), None)
        if step is None:
            break
        path.append(step)
        current = step
    raise PkiError(f"the chain of {ca.subject.rfc4514_string()!r} does not lead from the "
                   "certificate to the CA")


def issuing_ca(pems: DevicePems) -> str:
    """The CA certificate that signed the device certificate: the last intermediate of an
    ACME chain, else the CA."""
    chain = ordered_chain(pems)
    return chain[-1] if chain else pems.ca


iosxe_pems = device_pems
junos_pems = device_pems
