"""Certificates on a JunOS gateway: what the deploy loads with `request security pki`.

The candidate of a JunOS deploy with a PKI directory is the <configuration> document followed
by a PKI section (pack_candidate; tasks.pki.deploy_material builds it):

    <configuration>...</configuration>
    ### dcvpn-junos-pki ca-profile=DCVPN-CA certificate-id=<gw>
    ### dcvpn-pki: ca.pem
    -----BEGIN CERTIFICATE-----...
    ### dcvpn-pki: cert.pem / key.pem / crl.pem

The driver diffs it against what the device holds (get-pki-ca-certificate,
get-pki-local-certificate, get-pki-crl: serial and SHA-1/SHA-256 fingerprint, CRL number and
revoked serials) and, after the configuration commit (a CA certificate needs its ca-profile
committed), loads what differs:

    file-put    /var/tmp/dcvpn-<gw>-{ca,cert,crl}.pem 0644, -key.pem 0600, ascii encoding
    <command>   [clear security pki ca-certificate ca-profile P]
                request security pki ca-certificate load ca-profile P filename F
                request security pki crl load ca-profile P filename F
                [clear security pki local-certificate certificate-id C]
                request security pki local-certificate load certificate-id C filename F key K
    file-delete every uploaded file, the key first, also when a load failed

The published junos-es RPC YANG has no model of the `request security pki ... load` commands,
so they go as CLI text in <command> (PyEZ's dev.cli). [U] whether the CA load's interactive
confirmation ("Do you want to load this CA certificate ?") is skipped in a <command> RPC;
[U] that the device accepts <file-put> in a NETCONF session (it is a Junos XML protocol
operation) and a PKCS#8 key file.

The key never appears in a diff, a result or an error: it is shown as KEY_SHOWN, and its PEM
lines are registered with the log filter (drivers.redact.hide) when the candidate is split.
"""

import difflib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from lxml import etree

from drivers.errors import DriverError, LoadError
from drivers.ncclient_session import children_named, leaf_text
from drivers.redact import hide

Element = etree._Element
Call = Callable[[Element | str, str], Element]  # request, what it does -> reply

PKI_MARKER = "### dcvpn-junos-pki "
SECTION = "### dcvpn-pki: "
PARTS = ("ca.pem", "cert.pem", "key.pem", "crl.pem")
KEY_SHOWN = "<private key>"
UPLOAD_DIR = "/var/tmp"
MODES = {"ca": "0644", "cert": "0644", "crl": "0644", "key": "0600"}
MIN_HIDDEN = 16  # PEM lines at least this long are registered with the log filter

# the CLI commands, as the device's CLI spells them
COMMANDS = {
    "clear_ca": "clear security pki ca-certificate ca-profile {profile}",
    "load_ca": "request security pki ca-certificate load ca-profile {profile} filename {ca}",
    "load_crl": "request security pki crl load ca-profile {profile} filename {crl}",
    "clear_local": "clear security pki local-certificate certificate-id {cert_id}",
    "load_local": "request security pki local-certificate load certificate-id {cert_id} "
                  "filename {cert} key {key}",
}


@dataclass(frozen=True)
class PkiBundle:
    ca_profile: str
    cert_id: str
    ca_pem: str
    cert_pem: str
    key_pem: str = field(repr=False)  # the key, or its ${dcvpn-secret:...} reference
    crl_pem: str = ""  # "" when the PKI has no CRL (ACME)


@dataclass(frozen=True)
class Held:
    """A certificate the device holds, as `show security pki` reports it."""

    serial: int | None
    fingerprints: dict[str, str]  # algorithm -> lower-case hex without colons
    not_after: str


@dataclass(frozen=True)
class DevicePki:
    ca: Held | None
    local: Held | None
    crl_number: int | None
    crl_revoked: frozenset[int] | None  # None: no CRL loaded


@dataclass(frozen=True)
class Step:
    kind: str  # "ca", "crl" or "local"
    replaces: bool  # the device holds another one that is cleared first


def pack_candidate(config: str, bundle: PkiBundle) -> str:
    texts = {"ca.pem": bundle.ca_pem, "cert.pem": bundle.cert_pem, "key.pem": bundle.key_pem,
             "crl.pem": bundle.crl_pem}
    parts = [config if config.endswith("\n") else config + "\n",
             f"{PKI_MARKER}ca-profile={bundle.ca_profile} certificate-id={bundle.cert_id}\n"]
    for name in PARTS:
        text = texts[name]
        if text and not text.endswith("\n"):
            text += "\n"
        parts.append(f"{SECTION}{name}\n{text}")
    return "".join(parts)


def _header(line: str, device: str) -> tuple[str, str]:
    fields = dict(item.split("=", 1) for item in line[len(PKI_MARKER):].split() if "=" in item)
    profile, cert_id = fields.get("ca-profile", ""), fields.get("certificate-id", "")
    if not profile or not cert_id:
        raise LoadError(f"{device}: the PKI section header needs ca-profile= and "
                        "certificate-id=")
    return profile, cert_id


def split_candidate(text: str, device: str) -> tuple[str, PkiBundle | None]:
    """The configuration and the PKI section of a candidate (checked: parsable, the key
    belongs to the certificate, the CA signed certificate and CRL); LoadError otherwise."""
    start = text.find("\n" + PKI_MARKER)
    if start < 0:
        return text, None
    config, rest = text[:start + 1], text[start + 1:]
    lines = rest.splitlines(keepends=True)
    profile, cert_id = _header(lines[0], device)
    parts: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines[1:]:
        if line.startswith(SECTION):
            name = line[len(SECTION):].strip()
            if name not in PARTS or name in parts:
                raise LoadError(f"{device}: PKI section: unexpected part {name!r}")
            current = parts[name] = []
        elif current is not None:
            current.append(line)
        elif line.strip():
            raise LoadError(f"{device}: PKI section: text before the first part")
    missing = [n for n in PARTS[:3] if not "".join(parts.get(n, [])).strip()]
    if missing:
        raise LoadError(f"{device}: PKI section: {', '.join(missing)} missing")
    texts = {n: "".join(parts.get(n, [])) for n in PARTS}
    key = texts["key.pem"]
    hide([key.strip(), *(ln.strip() for ln in key.splitlines() if len(ln.strip()) >= MIN_HIDDEN)])
    bundle = PkiBundle(profile, cert_id, texts["ca.pem"], texts["cert.pem"], key,
                       texts["crl.pem"])
    check_bundle(bundle, device)
    return config, bundle


def _cert(pem: str, what: str, device: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise LoadError(f"{device}: the {what} is not a PEM X.509 certificate") from None


def check_bundle(bundle: PkiBundle, device: str) -> None:
    """Everything a device would refuse, found before the device is touched."""
    ca = _cert(bundle.ca_pem, "CA certificate (ca.pem)", device)
    cert = _cert(bundle.cert_pem, f"certificate of {bundle.cert_id} (cert.pem)", device)
    if bundle.key_pem.lstrip().startswith("${"):
        raise LoadError(f"{device}: the private key of {bundle.cert_id} is an unresolved "
                        "reference")
    try:
        key = serialization.load_pem_private_key(bundle.key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise LoadError(f"{device}: the private key of {bundle.cert_id} is not an "
                        "unencrypted PEM key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if (key.public_key().public_bytes(serialization.Encoding.DER, public)
            != cert.public_key().public_bytes(serialization.Encoding.DER, public)):
        raise LoadError(f"{device}: the private key does not belong to the certificate of "
                        f"{bundle.cert_id} (serial {cert.serial_number:X})")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise LoadError(f"{device}: the certificate of {bundle.cert_id} (serial "
                        f"{cert.serial_number:X}) was not issued by the CA in ca.pem "
                        f"({ca.subject.rfc4514_string()})") from None
    if bundle.crl_pem.strip():
        try:
            crl = x509.load_pem_x509_crl(bundle.crl_pem.encode())
        except ValueError:
            raise LoadError(f"{device}: crl.pem is not a PEM CRL") from None
        if not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
            raise LoadError(f"{device}: the CRL was not signed by the CA in ca.pem "
                            f"({ca.subject.rfc4514_string()})")


# --- what the device holds -----------------------------------------------------------------


def _local(element: Element) -> str:
    return etree.QName(element).localname


def _all(parent: Element, *names: str) -> list[Element]:
    return [e for e in parent.iter() if isinstance(e.tag, str) and _local(e) in names]


def _hex(text: str) -> str:
    return text.replace(":", "").replace(" ", "").strip().lower()


def _serial(text: str) -> int | None:
    try:
        return int(_hex(text), 16) if text.strip() else None
    except ValueError:
        return None


def _held(info: Element) -> Held:
    serials = [leaf_text(e) for e in _all(info, "serial-number-x509")]
    prints = {}
    for fingerprint in _all(info, "fingerprint"):
        algorithm = leaf_text(next(children_named(fingerprint, "fingerprint-hash-algorithm"),
                                   None)).lower().replace("-", "")
        content = leaf_text(next(children_named(fingerprint, "fingerprint-content"), None))
        if algorithm and content:
            prints[algorithm] = _hex(content)
    after = [leaf_text(e) for e in _all(info, "not-after")]
    return Held(_serial(serials[0]) if serials else None, prints, after[0] if after else "")


# the certificate entries of a reply: the YANG's name and the one seen in device replies
CERT_ENTRIES = ("x509-certificate-info", "pkid-x509-certificate-information")


def _find(reply: Element, identifier: str) -> Held | None:
    for info in _all(reply, *CERT_ENTRIES):
        ids = [leaf_text(e) for e in _all(info, "identifier", "ca-profile")]
        if identifier in ids:
            return _held(info)
    return None


def read_device(call: Call, bundle: PkiBundle) -> DevicePki:
    profile = etree.Element("get-pki-ca-certificate")
    etree.SubElement(profile, "ca-profile").text = bundle.ca_profile
    local = etree.Element("get-pki-local-certificate")
    etree.SubElement(local, "certificate-id").text = bundle.cert_id
    etree.SubElement(local, "level").text = "detail"
    crl = etree.Element("get-pki-crl")
    etree.SubElement(crl, "ca-profile").text = bundle.ca_profile
    ca_held = _find(call(profile, "read the CA certificates"), bundle.ca_profile)
    local_held = _find(call(local, "read the local certificates"), bundle.cert_id)
    number: int | None = None
    revoked: frozenset[int] | None = None
    for info in _all(call(crl, "read the CRLs"), "pkid-x509-crl-information"):
        if leaf_text(next(children_named(info, "identifier"), None)) != bundle.ca_profile:
            continue
        text = leaf_text(next(children_named(info, "crl-number"), None))
        number = int(text) if text.isdigit() else None
        revoked = frozenset(s for s in (_serial(leaf_text(e)) for e in _all(
            info, "revoked-cert-serial-number")) if s is not None)
    return DevicePki(ca_held, local_held, number, revoked)


def _same(pem: str, held: Held | None) -> bool:
    if held is None:
        return False
    cert = x509.load_pem_x509_certificate(pem.encode())
    der = cert.public_bytes(serialization.Encoding.DER)
    for algorithm, digest in (("sha256", hashlib.sha256), ("sha1", hashlib.sha1)):
        if algorithm in held.fingerprints:
            return (held.fingerprints[algorithm] == digest(der).hexdigest()
                    and held.serial in (None, cert.serial_number))
    return held.serial == cert.serial_number  # no fingerprint shown: the serial decides


def _crl(bundle: PkiBundle) -> x509.CertificateRevocationList | None:
    return x509.load_pem_x509_crl(bundle.crl_pem.encode()) if bundle.crl_pem.strip() else None


def _crl_number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return None


def plan(bundle: PkiBundle, device: DevicePki) -> list[Step]:
    """What to load, in order (a new CA comes before the CRL it signed)."""
    steps = []
    ca_changes = not _same(bundle.ca_pem, device.ca)
    if ca_changes:
        steps.append(Step("ca", device.ca is not None))
    crl = _crl(bundle)
    if crl is not None and (ca_changes or device.crl_number != _crl_number(crl)
                            or device.crl_revoked != frozenset(r.serial_number for r in crl)):
        steps.append(Step("crl", device.crl_revoked is not None))
    if not _same(bundle.cert_pem, device.local):
        steps.append(Step("local", device.local is not None))
    return steps


# --- the diff ------------------------------------------------------------------------------


def _describe_pem(kind: str, name: str, pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    fp = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return (f"{kind} {name}: serial {cert.serial_number:X}, subject "
            f"{cert.subject.rfc4514_string()}, not-after "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, sha1 {fp}")


def _describe_held(kind: str, name: str, held: Held | None) -> str:
    if held is None:
        return f"{kind} {name}: none loaded"
    serial = f"{held.serial:X}" if held.serial is not None else "?"
    fp = held.fingerprints.get("sha1", held.fingerprints.get("sha256", "?"))
    return f"{kind} {name}: serial {serial}, not-after {held.not_after or '?'}, sha1 {fp}"


def _describe_crl(name: str, number: int | None, revoked: frozenset[int] | None) -> str:
    if revoked is None:
        return f"crl {name}: none loaded"
    listed = ", ".join(f"{s:X}" for s in sorted(revoked)) or "none"
    return f"crl {name}: number {number if number is not None else '?'}, revoked {listed}"


def diff_lines(bundle: PkiBundle, device: DevicePki, steps: list[Step]) -> str:
    """A unified diff of device vs candidate for the parts that change ("" when none)."""
    if not steps:
        return ""
    kinds = {s.kind for s in steps}
    old: list[str] = []
    new: list[str] = []
    if "ca" in kinds:
        old.append(_describe_held("ca-certificate", bundle.ca_profile, device.ca))
        new.append(_describe_pem("ca-certificate", bundle.ca_profile, bundle.ca_pem))
    if "crl" in kinds:
        crl = _crl(bundle)
        old.append(_describe_crl(bundle.ca_profile, device.crl_number, device.crl_revoked))
        if crl is not None:
            new.append(_describe_crl(bundle.ca_profile, _crl_number(crl),
                                     frozenset(r.serial_number for r in crl)))
    if "local" in kinds:
        old.append(_describe_held("local-certificate", bundle.cert_id, device.local))
        new.append(_describe_pem("local-certificate", bundle.cert_id, bundle.cert_pem))
        if device.local is not None:
            old.append(f"key-pair {bundle.cert_id}: {KEY_SHOWN}")
        new.append(f"key-pair {bundle.cert_id}: {KEY_SHOWN}")
    text = "\n".join(difflib.unified_diff(old, new, "device security pki",
                                          "candidate security pki (loaded after the commit)",
                                          lineterm=""))
    return text + "\n"


# --- loading -------------------------------------------------------------------------------


def _path(bundle: PkiBundle, part: str) -> str:
    return f"{UPLOAD_DIR}/dcvpn-{bundle.cert_id}-{part}.pem"


def _file_put(path: str, text: str, mode: str) -> Element:
    request = etree.Element("file-put")
    etree.SubElement(request, "filename").text = path
    etree.SubElement(request, "permission").text = mode
    etree.SubElement(request, "encoding").text = "ascii"
    etree.SubElement(request, "delete-if-exist")
    etree.SubElement(request, "file-contents").text = text
    return request


def _command(text: str) -> Element:
    request = etree.Element("command", format="text")
    request.text = text
    return request


def _file_delete(path: str) -> Element:
    request = etree.Element("file-delete")
    etree.SubElement(request, "path").text = path
    return request


def install(call: Call, bundle: PkiBundle, steps: list[Step]) -> list[str]:
    """Load the steps' material; returns what was done. The uploaded files are deleted
    afterwards whatever happened (DriverError naming a file that could not be)."""
    kinds = {s.kind for s in steps}
    texts = {"ca": bundle.ca_pem, "crl": bundle.crl_pem, "cert": bundle.cert_pem,
             "key": bundle.key_pem}
    parts = ([p for p in ("ca",) if "ca" in kinds] + [p for p in ("crl",) if "crl" in kinds]
             + (["key", "cert"] if "local" in kinds else []))
    names = {p: _path(bundle, p) for p in ("ca", "crl", "cert", "key")}
    values = {"profile": bundle.ca_profile, "cert_id": bundle.cert_id, **names}
    done: list[str] = []
    uploaded: list[str] = []
    try:
        for part in parts:
            call(_file_put(names[part], texts[part], MODES[part]), f"upload {names[part]}")
            uploaded.append(names[part])
        for step in steps:
            if step.kind == "ca":
                if step.replaces:
                    call(_command(COMMANDS["clear_ca"].format(**values)),
                         f"clear the CA certificate of {bundle.ca_profile}")
                call(_command(COMMANDS["load_ca"].format(**values)),
                     f"load the CA certificate of {bundle.ca_profile}")
                done.append(f"ca-certificate {bundle.ca_profile} loaded")
            elif step.kind == "crl":
                call(_command(COMMANDS["load_crl"].format(**values)),
                     f"load the CRL of {bundle.ca_profile}")
                done.append(f"crl {bundle.ca_profile} loaded")
            else:
                if step.replaces:
                    call(_command(COMMANDS["clear_local"].format(**values)),
                         f"clear local certificate {bundle.cert_id}")
                call(_command(COMMANDS["load_local"].format(**values)),
                     f"load local certificate {bundle.cert_id}")
                done.append(f"local-certificate {bundle.cert_id} loaded")
    finally:
        left = _delete(call, uploaded)
    if left:
        raise DriverError(f"could not delete {', '.join(left)} from the device: delete it "
                          "by hand (file delete)")
    return done


def _delete(call: Call, paths: list[str]) -> list[str]:
    """Delete the uploaded files, the key first; the paths that could not be."""
    left = []
    for path in sorted(paths, key=lambda p: not p.endswith("-key.pem")):
        try:
            call(_file_delete(path), f"delete {path}")
        except DriverError:
            left.append(path)
    return left
