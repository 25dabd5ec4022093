"""IOS-XE PKI on the emulated CLI: `crypto pki import <tp> pem terminal password <pw>` (global
configuration mode), `show crypto pki certificates [<tp>]` and `show crypto key mypubkey
{rsa|ec|all} [<label>]`.

The import dialog asks for the CA certificate, the encrypted private key and the device
certificate in turn, each pasted and ended by `quit` (a certificate also by a blank line; the
key only by `quit`, its PEM has a blank line after DEK-Info). The key must be a traditional
OpenSSL PEM key ("RSA PRIVATE KEY" / "EC PRIVATE KEY" with Proc-Type and DEK-Info) encrypted
with the password of the command. On success the key pair is stored under the trustpoint's name
(private-config: not part of any configuration) and the certificates become the trustpoint's
`crypto pki certificate chain` in the running configuration, device certificate first, as the
device shows them. So `configure replace` and a revert timer act on the chain, never on the key.

Messages marked [U] in MESSAGES are worded after the device's style but not seen on one; the
prompts and the success line are from device transcripts.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lab.emulators.iosxe_cli_config import Node, apply_text
from lab.emulators.iosxe_cli_device import IosXeCliDevice, ios_time
from lab.emulators.iosxe_cli_exec import Ctx, Question, Reply

IMPORT = re.compile(r"^\s*crypto\s+pki\s+import\s+(?P<tp>\S+)\s+pem\s+(?:exportable\s+)?"
                    r"terminal\s+password\s+(?P<pw>\S+)\s*$", re.IGNORECASE)
CHAIN = "crypto pki certificate chain {tp}"
TRUSTPOINT = "crypto pki trustpoint {tp}"
HEX_GROUP = 4  # bytes per hex group of a chain / key data line
HEX_GROUPS = 8  # groups per line
MAX_PEM_LINES = 200  # a pasted block longer than this is refused (bounded input)
KEYS_ATTRIBUTE = "pki_keys"
TRADITIONAL = ("-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----")

# what the device says; [U]: wording not seen on a device
MESSAGES = {
    "ask_ca": "% Enter PEM-formatted CA certificate.\n"
              "% End with a blank line or \"quit\" on a line by itself.",
    "ask_key": "% Enter PEM-formatted encrypted private General Purpose key.\n"
               "% End with \"quit\" on a line by itself.",
    "ask_cert": "% Enter PEM-formatted General Purpose certificate.\n"
                "% End with a blank line or \"quit\" on a line by itself.",
    "done": "% PEM files import succeeded.",
    "bad_ca": "% Error: the CA certificate is not a PEM-formatted X.509 certificate",  # [U]
    "bad_cert": "% Error: the certificate is not a PEM-formatted X.509 certificate",  # [U]
    "bad_key": "% Error: the private key is not a PEM-formatted encrypted RSA or EC "
               "key",  # [U]
    "bad_password": "% Error: decryption of the private key failed (wrong password?)",  # [U]
    "key_mismatch": "% Error: the certificate's public key does not match the imported "
                    "key pair",  # [U]
    "not_issued": "% Error: the certificate was not issued by the CA certificate",  # [U]
    "too_long": "% Error: input too long",  # [U]
    "no_trustpoint": "% Trustpoint {tp} not found",  # [U] show for an unknown trustpoint
}


@dataclass(frozen=True)
class StoredKey:
    kind: str  # "RSA" or "EC"
    public_der: bytes  # SubjectPublicKeyInfo, as `Key Data` shows it
    created: float


def hex_lines(der: bytes, indent: str = "") -> list[str]:
    groups = [der[i:i + HEX_GROUP].hex().upper() for i in range(0, len(der), HEX_GROUP)]
    return [indent + " ".join(groups[i:i + HEX_GROUPS]) for i in range(0, len(groups), HEX_GROUPS)]


def serial_text(serial: int) -> str:
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else f"0{text}"


def keys_of(device: IosXeCliDevice) -> dict[str, StoredKey]:
    """The device's key pairs by label (kept on the device object, outside any config)."""
    store: dict[str, StoredKey] | None = getattr(device, KEYS_ATTRIBUTE, None)
    if store is None:
        store = {}
        setattr(device, KEYS_ATTRIBUTE, store)
    return store


# ---- the import dialog -------------------------------------------------------------------

@dataclass(frozen=True)
class _Import:
    ctx: Ctx
    trustpoint: str
    password: str


def config_line(ctx: Ctx, line: str, mode: str) -> Reply | None:
    """The dialog's first reply when `line` is a PEM import in global configuration mode."""
    found = IMPORT.match(line)
    if found is None or mode != "config":
        return None
    job = _Import(ctx, found["tp"], found["pw"])
    return _collect(MESSAGES["ask_ca"], blank_ends=True,
                    then=lambda ca: _after_ca(job, ca))


Next = Callable[[str], Reply]


def _collect(message: str, blank_ends: bool, then: Next) -> Reply:
    """Ask with `message`, gather lines up to `quit` (or a blank line), pass them on."""
    lines: list[str] = []

    def answer(line: str) -> Reply:
        text = line.strip()
        if text.lower() == "quit" or (blank_ends and not text and lines):
            return then("\n".join(lines) + "\n")
        if len(lines) >= MAX_PEM_LINES:
            return Reply(MESSAGES["too_long"])
        if text or lines:
            lines.append(text)
        return Reply(question=Question("", answer))

    return Reply(message, Question("", answer))


def _cert(text: str) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        return None


def _after_ca(job: _Import, ca_text: str) -> Reply:
    ca = _cert(ca_text)
    if ca is None:
        return Reply(MESSAGES["bad_ca"])
    return _collect(MESSAGES["ask_key"], blank_ends=False,
                    then=lambda key: _after_key(job, ca, key))


def _after_key(job: _Import, ca: x509.Certificate, key_text: str) -> Reply:
    first = key_text.strip().splitlines()[:2]
    if (len(first) < 2 or first[0] not in TRADITIONAL
            or not first[1].startswith("Proc-Type: 4,ENCRYPTED")):
        return Reply(MESSAGES["bad_key"])
    try:
        key = serialization.load_pem_private_key(key_text.encode(), job.password.encode())
    except (ValueError, TypeError):
        return Reply(MESSAGES["bad_password"])
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        return Reply(MESSAGES["bad_key"])
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    kind = "RSA" if isinstance(key, rsa.RSAPrivateKey) else "EC"
    return _collect(MESSAGES["ask_cert"], blank_ends=True,
                    then=lambda cert: _after_cert(job, ca, kind, public, cert))


def _after_cert(job: _Import, ca: x509.Certificate, kind: str, public: bytes,
                cert_text: str) -> Reply:
    cert = _cert(cert_text)
    if cert is None:
        return Reply(MESSAGES["bad_cert"])
    if cert.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo) != public:
        return Reply(MESSAGES["key_mismatch"])
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return Reply(MESSAGES["not_issued"])
    device = job.ctx.device
    keys_of(device)[job.trustpoint] = StoredKey(kind, public, device.clock.now())
    _install_chain(device.running, job.trustpoint, cert, ca)
    device.changed(job.ctx.user)
    return Reply(MESSAGES["done"])


def chain_text(trustpoint: str, cert: x509.Certificate, ca: x509.Certificate) -> str:
    lines = [CHAIN.format(tp=trustpoint)]
    for entry, header in ((cert, serial_text(cert.serial_number)),
                          (ca, f"ca {serial_text(ca.serial_number)}")):
        lines.append(f" certificate {header}")
        lines += hex_lines(entry.public_bytes(serialization.Encoding.DER), "  ")
        lines.append("  \tquit")
    return "\n".join(lines) + "\n"


def _install_chain(root: Node, trustpoint: str, cert: x509.Certificate,
                   ca: x509.Certificate) -> None:
    """The trustpoint (created when missing, [U] with no settings) and its new chain."""
    header = CHAIN.format(tp=trustpoint)
    root.children = [c for c in root.children if c.line != header]
    text = "" if root.find(TRUSTPOINT.format(tp=trustpoint)) else TRUSTPOINT.format(
        tp=trustpoint) + "\n"
    errors = apply_text(root, text + chain_text(trustpoint, cert, ca))
    assert not errors, errors


# ---- show --------------------------------------------------------------------------------

def chain_certificates(root: Node, trustpoint: str) -> list[tuple[bool, x509.Certificate]]:
    """(is CA, certificate) of a trustpoint's chain in the running configuration."""
    chain = root.find(CHAIN.format(tp=trustpoint))
    out: list[tuple[bool, x509.Certificate]] = []
    for entry in chain.children if chain else []:
        words = entry.line.split()
        if words[:1] != ["certificate"]:
            continue
        data = "".join(c.line for c in entry.children if c.line.strip() != "quit")
        try:
            out.append((words[1:2] == ["ca"], x509.load_der_x509_certificate(
                bytes.fromhex(data.replace(" ", "")))))
        except ValueError:
            continue
    return out


def _trustpoints(root: Node) -> list[str]:
    prefix = TRUSTPOINT.format(tp="")
    return [c.line[len(prefix):] for c in root.children if c.line.startswith(prefix)]


def _names(name: x509.Name) -> list[str]:
    return [f"    {attr.rfc4514_string().split('=', 1)[0].lower()}="
            f"{attr.rfc4514_string().split('=', 1)[1]}"
            for rdn in reversed(name.rdns) for attr in rdn]


def _describe(cert: x509.Certificate, ca: bool, trustpoint: str) -> list[str]:
    start = cert.not_valid_before_utc.timestamp()
    end = cert.not_valid_after_utc.timestamp()
    return [
        "CA Certificate" if ca else "Certificate",
        "  Status: Available",
        f"  Certificate Serial Number (hex): {serial_text(cert.serial_number)}",
        f"  Certificate Usage: {'Signature' if ca else 'General Purpose'}",
        "  Issuer:", *_names(cert.issuer),
        "  Subject:", *_names(cert.subject),
        "  Validity Date:",
        f"    start date: {_clock(start)}",
        f"    end   date: {_clock(end)}",
        f"  Associated Trustpoints: {trustpoint}",
        "",
    ]


def _clock(epoch: float) -> str:
    """`14:50:20 UTC Oct 1 2023` (the certificate dates of `show crypto pki certificates`)."""
    text = ios_time(epoch)  # 10:11:12 UTC Mon Mar 2 2026
    time_part, zone, _, *rest = text.split()
    return " ".join([time_part, zone, *rest])


def show_certificates(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    root = ctx.device.running
    wanted = words[4] if len(words) > 4 else None
    points = _trustpoints(root)
    if wanted is not None and wanted not in points:
        return Reply(MESSAGES["no_trustpoint"].format(tp=wanted))
    lines: list[str] = []
    for trustpoint in [wanted] if wanted else points:
        certs = chain_certificates(root, trustpoint)
        for is_ca, cert in sorted(certs, key=lambda item: item[0]):
            lines += _describe(cert, is_ca, trustpoint)
    return Reply("\n".join(lines))


def show_mypubkey(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    kind = words[4].upper()
    label = words[5] if len(words) > 5 else None
    lines: list[str] = []
    for name, key in sorted(keys_of(ctx.device).items()):
        if kind not in ("ALL", key.kind) or (label is not None and name != label):
            continue
        lines += [f"% Key pair was generated at: {_clock(key.created)}",
                  f"Key name: {name}",
                  f"Key type: {key.kind} KEYS",
                  " Storage Device: private-config",
                  " Usage: General Purpose Key",
                  " Key is not exportable. Redundancy enabled.",
                  " Key Data:",
                  *hex_lines(key.public_der, "  ")]
    return Reply("\n".join(lines))


HANDLERS = {
    "show_pki_certificates": show_certificates,
    "show_key_mypubkey": show_mypubkey,
}
