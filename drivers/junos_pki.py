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

An ACME chain (root in ca.pem, intermediates the CA sent with the certificate) gets one
ca-profile per CA, as Junos chains certificates (a ca-profile per CA in the chain; peers must
share a trusted CA): the root stays in DCVPN-CA, which the IKE policies trust, intermediate i
(counted from the root) goes into ca-profile DCVPN-CA-<i> (chain_profiles; with_chain_profiles
adds those ca-profiles to the configuration, so they are committed before the load). The
header then names them (`chain=DCVPN-CA-1,...`) and a `chain.pem` part holds their
certificates, root side first; each is loaded into its profile after the root. [U] that the
SRX sends the intermediate in its IKE CERT payloads from the loaded ca-profiles, and that it
accepts a peer certificate without the IKE EKUs (ACME CAs issue serverAuth/clientAuth only).

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
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from drivers import pki_section as section
from drivers.errors import DriverError, LoadError
from drivers.ncclient_session import children_named, leaf_text
from tasks.pki.store import issued_by

Element = etree._Element
Call = Callable[[Element | str, str], Element]  # request, what it does -> reply

PKI_MARKER = "### dcvpn-junos-pki "
PARTS = ("ca.pem", "cert.pem", "key.pem", "crl.pem", "chain.pem")
KEY_SHOWN = "<private key>"
UPLOAD_DIR = "/var/tmp"
MODES = {"ca": "0644", "cert": "0644", "crl": "0644", "key": "0600"}

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
    # (ca-profile, PEM) of each intermediate CA, root side first (ACME); () for a fabric CA
    chain: tuple[tuple[str, str], ...] = ()


def chain_profiles(root_profile: str, count: int) -> tuple[str, ...]:
    """The ca-profiles of `count` intermediates below `root_profile`, root side first."""
    return tuple(f"{root_profile}-{i}" for i in range(1, count + 1))


# one intermediate's ca-profile, shaped like the rendered root profile (templates/junos)
CHAIN_PROFILE_XML = """      <ca-profile>
        <name>{name}</name>
        <ca-identity>{name}</ca-identity>
        <revocation-check>
          <use-crl/>
          <crl><disable><on-download-failure/></disable></crl>
        </revocation-check>
      </ca-profile>
"""
PKI_END = re.compile(r"^[ \t]*</pki>[ \t]*$", re.MULTILINE)


def with_chain_profiles(config: str, profiles: tuple[str, ...]) -> str:
    """The <configuration> text with a ca-profile per intermediate added to security/pki
    (config unchanged without intermediates); ValueError when it has no pki section."""
    if not profiles:
        return config
    end = PKI_END.search(config)
    if end is None:
        raise ValueError("the configuration has no <pki> section for the chain's ca-profiles")
    added = "".join(CHAIN_PROFILE_XML.format(name=name) for name in profiles)
    return config[:end.start()] + added + config[end.start():]


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
    chain: tuple[Held | None, ...] = ()  # the bundle's chain profiles, in its order


@dataclass(frozen=True)
class Step:
    kind: str  # "ca", "crl" or "local"
    replaces: bool  # the device holds another one that is cleared first
    profile: str = ""  # a "ca" step: the ca-profile ("" means the bundle's root profile)


def pack_candidate(config: str, bundle: PkiBundle) -> str:
    texts = {"ca.pem": bundle.ca_pem, "cert.pem": bundle.cert_pem, "key.pem": bundle.key_pem,
             "crl.pem": bundle.crl_pem, "chain.pem": "".join(pem for _, pem in bundle.chain)}
    chain = (f" chain={','.join(profile for profile, _ in bundle.chain)}"
             if bundle.chain else "")
    header = f"{PKI_MARKER}ca-profile={bundle.ca_profile} certificate-id={bundle.cert_id}{chain}"
    return section.pack(config, header, ((name, texts[name]) for name in PARTS
                                         if texts[name] or name != "chain.pem"))


def _header(fields: dict[str, str], device: str) -> tuple[str, str, tuple[str, ...]]:
    profile, cert_id = fields.get("ca-profile", ""), fields.get("certificate-id", "")
    if not profile or not cert_id:
        raise LoadError(f"{device}: the PKI section header needs ca-profile= and "
                        "certificate-id=")
    chain = tuple(p for p in fields.get("chain", "").split(",") if p)
    if profile in chain or len(set(chain)) != len(chain):
        raise LoadError(f"{device}: the PKI section header names a ca-profile twice")
    return profile, cert_id, chain


def _chain(profiles: tuple[str, ...], text: str, device: str) -> tuple[tuple[str, str], ...]:
    try:
        certs = x509.load_pem_x509_certificates(text.encode()) if text.strip() else []
    except ValueError:
        raise LoadError(f"{device}: chain.pem is not a list of PEM X.509 certificates") from None
    if len(certs) != len(profiles):
        raise LoadError(f"{device}: PKI section: chain.pem holds {len(certs)} certificates "
                        f"for {len(profiles)} chain ca-profiles")
    return tuple((p, c.public_bytes(serialization.Encoding.PEM).decode())
                 for p, c in zip(profiles, certs, strict=True))


def split_candidate(text: str, device: str) -> tuple[str, PkiBundle | None]:
    """The configuration and the PKI section of a candidate (checked: parsable, the key
    belongs to the certificate, the CA signed certificate and CRL); LoadError otherwise."""
    config, found = section.split(text, PKI_MARKER, PARTS, device)
    if found is None:
        return text, None
    profile, cert_id, chain = _header(found.fields, device)
    texts = found.texts
    missing = [n for n in PARTS[:3] if not texts[n].strip()]
    if missing:
        raise LoadError(f"{device}: PKI section: {', '.join(missing)} missing")
    key = texts["key.pem"]
    bundle = PkiBundle(profile, cert_id, texts["ca.pem"], texts["cert.pem"], key,
                       texts["crl.pem"], _chain(chain, texts["chain.pem"], device))
    check_bundle(bundle, device)
    return config, bundle


def check_bundle(bundle: PkiBundle, device: str) -> None:
    """Everything a device would refuse, found before the device is touched."""
    ca = section.certificate(bundle.ca_pem, "CA certificate (ca.pem)", device)
    cert = section.certificate(bundle.cert_pem, f"certificate of {bundle.cert_id} (cert.pem)",
                               device)
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
    issuer = ca
    for profile, pem in bundle.chain:  # root side first: each is issued by the one before
        intermediate = section.certificate(pem, f"CA certificate of {profile} (chain.pem)",
                                           device)
        if not issued_by(intermediate, issuer):
            raise LoadError(f"{device}: the CA certificate of {profile} "
                            f"({intermediate.subject.rfc4514_string()}) was not issued by "
                            f"{issuer.subject.rfc4514_string()}")
        issuer = intermediate
    if not issued_by(cert, issuer):
        via = " through chain.pem" if bundle.chain else ""
        raise LoadError(f"{device}: the certificate of {bundle.cert_id} (serial "
                        f"{cert.serial_number:X}) was not issued by the CA in ca.pem "
                        f"({ca.subject.rfc4514_string()}){via}")
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
    chain_held = tuple(_find(call(_ca_request(name), f"read the CA certificate of {name}"),
                             name) for name, _ in bundle.chain)
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
    return DevicePki(ca_held, local_held, number, revoked, chain_held)


def _ca_request(profile: str) -> Element:
    request = etree.Element("get-pki-ca-certificate")
    etree.SubElement(request, "ca-profile").text = profile
    return request


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
    held_chain = device.chain + (None,) * (len(bundle.chain) - len(device.chain))
    for (profile, pem), held in zip(bundle.chain, held_chain, strict=False):
        if not _same(pem, held):
            steps.append(Step("ca", held is not None, profile))
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
    chain = dict(bundle.chain)
    held = dict(zip((p for p, _ in bundle.chain), device.chain, strict=False))
    for step in (s for s in steps if s.kind == "ca"):
        if not step.profile:
            old.append(_describe_held("ca-certificate", bundle.ca_profile, device.ca))
            new.append(_describe_pem("ca-certificate", bundle.ca_profile, bundle.ca_pem))
        else:
            old.append(_describe_held("ca-certificate", step.profile, held.get(step.profile)))
            new.append(_describe_pem("ca-certificate", step.profile, chain[step.profile]))
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


def _ca_part(step: Step) -> str:
    """The upload part of a "ca" step: `ca`, or `ca-<profile>` for an intermediate."""
    return f"ca-{step.profile}" if step.profile else "ca"


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
             "key": bundle.key_pem, **{f"ca-{p}": pem for p, pem in bundle.chain}}
    parts = ([_ca_part(s) for s in steps if s.kind == "ca"]
             + [p for p in ("crl",) if "crl" in kinds]
             + (["key", "cert"] if "local" in kinds else []))
    names = {p: _path(bundle, p) for p in texts}
    values = {"profile": bundle.ca_profile, "cert_id": bundle.cert_id, **names}
    done: list[str] = []
    uploaded: list[str] = []
    try:
        for part in parts:
            mode = MODES.get(part, MODES["ca"])
            call(_file_put(names[part], texts[part], mode), f"upload {names[part]}")
            uploaded.append(names[part])
        for step in steps:
            if step.kind == "ca":
                profile = step.profile or bundle.ca_profile
                ca_values = {**values, "profile": profile, "ca": names[_ca_part(step)]}
                if step.replaces:
                    call(_command(COMMANDS["clear_ca"].format(**ca_values)),
                         f"clear the CA certificate of {profile}")
                call(_command(COMMANDS["load_ca"].format(**ca_values)),
                     f"load the CA certificate of {profile}")
                done.append(f"ca-certificate {profile} loaded")
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
