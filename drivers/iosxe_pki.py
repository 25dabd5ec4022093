"""Certificates and key on an IOS-XE gateway over SSH: what the deploy imports with
`crypto pki import <trustpoint> pem terminal password <one-time password>`.

The candidate of an IOS-XE/SSH deploy with a PKI directory is config.cli (which already holds
the trustpoint and its `crypto pki certificate chain`) followed by a PKI section (pack_candidate;
tasks.pki.deploy_material builds it):

    ### dcvpn-iosxe-pki trustpoint=DCVPN-<fabric>
    ### dcvpn-pki: ca.pem / cert.pem / key.pem

The driver compares it with what the device reports: `show crypto pki certificates <tp>`
(serials of the CA and the device certificate) and `show crypto key mypubkey {ec|rsa} <tp>`
(the key pair's public key, compared with the certificate's). When any differs or is missing,
the commit imports, in global configuration mode, before `configure replace`:

    crypto pki import <tp> pem terminal password <pw>
      % Enter PEM-formatted CA certificate.           <- ca.pem, quit
      % Enter PEM-formatted encrypted private ...key. <- the key, 3DES traditional PEM, quit
      % Enter PEM-formatted General Purpose certificate. <- cert.pem, quit
      % PEM files import succeeded.

<pw> is a fresh random password for this import only; the key travels encrypted with it
(drivers.pem_legacy). The key pair gets the trustpoint's name, which the rendered trustpoint
names as its `eckeypair`/`rsakeypair`. The import also writes the chain into the running
configuration, the same chain the candidate renders, so the replace after it does not change
it, and the checkpoint / revert snapshot taken after the import holds the new chain: a revert
or rollback restores the configuration with the new chain, and the key pair (private-config,
outside any configuration) stays the new one, so certificate and key never disagree.

From an ACME PKI directory (root in ca.pem, intermediates beside the certificate) ca.pem of
the section is the CA that issued the device certificate, the last intermediate
(tasks.pki.delivery.issuing_ca): the import checks that the certificate was issued by the CA
it is given, and the rendered chain holds the same CA. Limit: the root and any intermediate
above the issuing one are not put on the device. Cisco-IOS-XE-crypto has the trustpoint's
`chain-validation {stop | continue <parent trustpoint>}` for a subordinate CA, but a CA-only
parent trustpoint is filled by `crypto pki authenticate`, a dialog this driver does not run;
[U] whether IOS-XE accepts peers up to a trustpoint holding a subordinate CA without a parent
(peers must then hold certificates of the same issuing CA), [U] whether it accepts peer
certificates without the IKE EKUs (ACME CAs issue serverAuth/clientAuth only).

Never shown: the key (KEY_SHOWN), the encrypted key and the password, all registered with the
log filter (drivers.redact.hide) before anything is sent.
"""

import difflib
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from drivers import pki_section as section
from drivers.errors import LoadError
from drivers.pem_legacy import PemKeyError, key_kind
from tasks.pki.store import issued_by

PKI_MARKER = "### dcvpn-iosxe-pki "
PARTS = ("ca.pem", "cert.pem", "key.pem")
KEY_SHOWN = "<private key>"
TRUSTPOINT_LINE = re.compile(r"^crypto pki trustpoint (?P<tp>\S+)\s*$", re.MULTILINE)

# the device's CLI: commands, the dialog's questions (device transcripts), its verdict
IMPORT = "crypto pki import {tp} pem terminal password {password}"
SHOW_CERTS = "show crypto pki certificates {tp}"
SHOW_KEY = "show crypto key mypubkey {kind} {tp}"
ASK = {
    "ca": r"PEM-formatted CA certificate\.\s*\n[^\n]*by itself\.",
    "key": r"PEM-formatted encrypted private [^\n]*key\.\s*\n[^\n]*by itself\.",
    "cert": r"PEM-formatted General Purpose certificate\.\s*\n[^\n]*by itself\.",
}
IMPORTED = "% PEM files import succeeded."
END_OF_PASTE = "quit"
CERT_HEADER = re.compile(r"^(?P<ca>CA )?Certificate\s*$")
SERIAL_LINE = re.compile(r"^\s*Certificate Serial Number(?: \(hex\))?:\s*(?P<serial>[0-9A-Fa-f]+)")
KEY_NAME = re.compile(r"^Key name:\s*(?P<name>\S+)")
HEX_LINE = re.compile(r"^\s+[0-9A-F]{2,8}( [0-9A-F]{2,8})*\s*$")


@dataclass(frozen=True)
class IosxePki:
    trustpoint: str
    ca_pem: str
    cert_pem: str
    key_pem: str = field(repr=False)  # the key, or its ${dcvpn-secret:...} reference


@dataclass(frozen=True)
class DevicePki:
    ca_serial: int | None
    cert_serial: int | None
    key_public: bytes | None  # DER SubjectPublicKeyInfo of the key pair named after the tp


def pack_candidate(config: str, bundle: IosxePki) -> str:
    texts = {"ca.pem": bundle.ca_pem, "cert.pem": bundle.cert_pem, "key.pem": bundle.key_pem}
    return section.pack(config, f"{PKI_MARKER}trustpoint={bundle.trustpoint}",
                        ((name, texts[name]) for name in PARTS))


def trustpoint_of(config: str) -> str | None:
    found = TRUSTPOINT_LINE.search(config)
    return found["tp"] if found else None


def split_candidate(text: str, device: str) -> tuple[str, IosxePki | None]:
    """The configuration and the PKI section of a candidate (checked before the device is
    touched: parsable, the key belongs to the certificate, the CA signed it, the candidate
    configures the trustpoint); LoadError otherwise."""
    config, found = section.split(text, PKI_MARKER, PARTS, device)
    if found is None:
        return text, None
    trustpoint = found.fields.get("trustpoint", "")
    if not trustpoint:
        raise LoadError(f"{device}: the PKI section header needs trustpoint=")
    texts = found.texts
    key = texts["key.pem"]
    missing = [n for n in PARTS if not texts[n].strip()]
    if missing:
        raise LoadError(f"{device}: PKI section: {', '.join(missing)} missing")
    if trustpoint_of(config) != trustpoint:
        raise LoadError(f"{device}: the candidate does not configure trustpoint {trustpoint} "
                        "that the PKI section imports into")
    bundle = IosxePki(trustpoint, texts["ca.pem"], texts["cert.pem"], key)
    check_bundle(bundle, device)
    return config, bundle


def _public_der(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def key_type(bundle: IosxePki) -> str:
    """`ec` or `rsa`: the word of `show crypto key mypubkey` for the bundle's key."""
    return key_kind(bundle.key_pem).lower()


def check_bundle(bundle: IosxePki, device: str) -> None:
    """Everything the device would refuse, found before it is touched."""
    tp = bundle.trustpoint
    ca = section.certificate(bundle.ca_pem, "CA certificate (ca.pem)", device)
    cert = section.certificate(bundle.cert_pem, f"certificate of trustpoint {tp} (cert.pem)",
                               device)
    if bundle.key_pem.lstrip().startswith("${"):
        raise LoadError(f"{device}: the private key for trustpoint {tp} is an unresolved "
                        "reference")
    try:
        key_kind(bundle.key_pem)
        key = serialization.load_pem_private_key(bundle.key_pem.encode(), password=None)
    except PemKeyError as exc:
        raise LoadError(f"{device}: the private key for trustpoint {tp} is {exc}") from None
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    if public != _public_der(cert):
        raise LoadError(f"{device}: the private key does not belong to the certificate "
                        f"(serial {cert.serial_number:X}) for trustpoint {tp}")
    if not issued_by(cert, ca):
        raise LoadError(f"{device}: the certificate (serial {cert.serial_number:X}) for "
                        f"trustpoint {tp} was not issued by the CA in ca.pem "
                        f"({ca.subject.rfc4514_string()})") from None


# --- what the device holds -----------------------------------------------------------------

def parse_certificates(output: str) -> tuple[int | None, int | None]:
    """(CA serial, device certificate serial) of `show crypto pki certificates <tp>`."""
    ca: int | None = None
    own: int | None = None
    is_ca: bool | None = None
    for line in output.replace("\r\n", "\n").split("\n"):
        header = CERT_HEADER.match(line)
        if header:
            is_ca = bool(header["ca"])
            continue
        serial = SERIAL_LINE.match(line)
        if serial and is_ca is not None:
            value = int(serial["serial"], 16)
            if is_ca:
                ca = value if ca is None else ca
            else:
                own = value if own is None else own
            is_ca = None
    return ca, own


def parse_key(output: str, label: str) -> bytes | None:
    """The Key Data (DER) of key pair `label` in `show crypto key mypubkey ...`."""
    lines = output.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        name = KEY_NAME.match(line.strip())
        if not name or name["name"] != label:
            continue
        data: list[str] = []
        started = False
        for after in lines[index + 1:]:
            if after.strip() == "Key Data:":
                started = True
            elif started and HEX_LINE.match(after):
                data.append(after.strip().replace(" ", ""))
            elif started:
                break
        try:
            return bytes.fromhex("".join(data)) if data else None
        except ValueError:
            return None
    return None


def needs_import(bundle: IosxePki, held: DevicePki) -> bool:
    ca = x509.load_pem_x509_certificate(bundle.ca_pem.encode())
    cert = x509.load_pem_x509_certificate(bundle.cert_pem.encode())
    return (held.ca_serial != ca.serial_number or held.cert_serial != cert.serial_number
            or held.key_public != _public_der(cert))


# --- the diff ------------------------------------------------------------------------------

def _describe(kind: str, pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return (f"{kind}: serial {cert.serial_number:X}, subject {cert.subject.rfc4514_string()}, "
            f"not-after {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")


def _held(kind: str, serial: int | None) -> str:
    return f"{kind}: " + ("none" if serial is None else f"serial {serial:X}")


def diff_lines(bundle: IosxePki, held: DevicePki) -> str:
    """A unified diff of device vs candidate trustpoint material ("" when nothing changes)."""
    if not needs_import(bundle, held):
        return ""
    tp = bundle.trustpoint
    cert = x509.load_pem_x509_certificate(bundle.cert_pem.encode())
    key_now = ("none" if held.key_public is None else KEY_SHOWN if
               held.key_public == _public_der(cert) else f"{KEY_SHOWN} (another key)")
    old = [_held(f"ca-certificate {tp}", held.ca_serial),
           _held(f"certificate {tp}", held.cert_serial), f"key-pair {tp}: {key_now}"]
    new = [_describe(f"ca-certificate {tp}", bundle.ca_pem),
           _describe(f"certificate {tp}", bundle.cert_pem), f"key-pair {tp}: {KEY_SHOWN}"]
    text = "\n".join(difflib.unified_diff(
        old, new, "device crypto pki", "candidate crypto pki (imported before the replace)",
        lineterm=""))
    return text + "\n"


def failure_lines(output: str) -> str:
    """The device's `%` lines of a failed import (its questions and verdict left out)."""
    asked = ("% Enter PEM-formatted", "% End with")
    found = [ln.strip() for ln in output.replace("\r\n", "\n").split("\n")
             if ln.strip().startswith("%") and not ln.strip().startswith(asked)]
    return "; ".join(found) or "no verdict from the device"
