"""Junos PKI on an emulated SRX: files in /var/tmp, the `request/clear security pki` commands
and the `show security pki` RPCs.

    <file-put>      Junos XML protocol file upload (filename, encoding ascii|base64,
                    permission, delete-if-exist, file-contents last)
    <file-delete>   remove a file (<path>), as PyEZ's FS.rm sends it
    <command>       CLI over NETCONF; the pki load/clear commands below, reply <output>
    get-pki-ca-certificate / get-pki-local-certificate / get-pki-crl
                    the answers of `show security pki ...` (junos-es 24.4R1 RPC YANG:
                    x509-pki-certificate-info-list, x509-pkid-crl-information-list)

Stateful per device: files (path -> bytes, mode), CA certificates per ca-profile, local
certificates and key pairs per certificate-id, a CRL per ca-profile. A CA certificate needs
its ca-profile in the committed configuration. Messages marked [U] in MESSAGES are worded
after the device's style but not seen on one.
"""

import base64
import binascii
import hashlib
import posixpath
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from lab.emulators.junos_oper import sub
from lab.emulators.rpc_errors import RpcReplyError, fail
from lab.emulators.xmlutil import Element, child, children, local_name, text_of

VAR_TMP = "/var/tmp"
HOME = "/var/home"
MAX_FILE = 1 << 20  # bytes per uploaded file

# what the device answers; [U]: wording not seen on a device
MESSAGES = {
    "ca_loaded": "CA certificate for profile {profile} loaded successfully",
    "local_loaded": "Local certificate loaded successfully",
    "crl_loaded": "CRL for CA profile {profile} loaded successfully",  # [U]
    "key_exists": "Command aborted as key file already exists. Retry after clearing the "
                  "existing key file",
    "no_keypair": "Keypair doesn't exist for certificate {cert_id}",
    "cert_exists": "Certificate id {cert_id} already exists",  # [U]
    "ca_exists": "CA certificate for profile {profile} already exists",  # [U]
    "no_profile": "CA profile {profile} is not configured",  # [U]
    "no_file": "Failed to open file {path}: No such file or directory",  # [U]
    "bad_cert": "Failed to load certificate from {path}: not a PEM or DER X.509 "
                "certificate",  # [U]
    "bad_key": "Failed to load key from {path}: not a PEM private key",  # [U]
    "key_mismatch": "Key pair does not match the public key in certificate "
                    "{cert_id}",  # [U]
    "bad_crl": "Failed to load CRL from {path}: not a PEM or DER CRL",  # [U]
    "crl_no_ca": "CA certificate for profile {profile} is not loaded",  # [U]
    "crl_signature": "CRL signature verification failed for CA profile {profile}",  # [U]
    "no_cert": "Certificate id {cert_id} does not exist",  # [U]
    "no_ca": "CA certificate for profile {profile} does not exist",  # [U]
    "file_exists": "File {path} exists (delete-if-exist not given)",  # [U]
    "no_dir": "Directory {path} does not exist",
    "bad_encoding": "Invalid encoding {encoding}: use ascii or base64",  # [U]
    "bad_base64": "Invalid base64 file contents",  # [U]
    "too_big": "File contents too large",  # [U]
    "deleted_missing": "error: file {path} not found",  # [U]
}

# command words -> (handler name, the keywords it takes, required ones)
COMMANDS: dict[tuple[str, ...], tuple[str, frozenset[str], frozenset[str]]] = {
    ("request", "security", "pki", "ca-certificate", "load"): (
        "load_ca", frozenset({"ca-profile", "filename"}), frozenset({"ca-profile", "filename"})),
    ("request", "security", "pki", "crl", "load"): (
        "load_crl", frozenset({"ca-profile", "filename"}), frozenset({"ca-profile", "filename"})),
    ("request", "security", "pki", "local-certificate", "load"): (
        "load_local", frozenset({"certificate-id", "filename", "key"}),
        frozenset({"certificate-id", "filename"})),
    ("clear", "security", "pki", "local-certificate"): (
        "clear_local", frozenset({"certificate-id"}), frozenset({"certificate-id"})),
    ("clear", "security", "pki", "key-pair"): (
        "clear_keypair", frozenset({"certificate-id"}), frozenset({"certificate-id"})),
    ("clear", "security", "pki", "ca-certificate"): (
        "clear_ca", frozenset({"ca-profile"}), frozenset({"ca-profile"})),
    ("clear", "security", "pki", "crl"): (
        "clear_crl", frozenset({"ca-profile"}), frozenset({"ca-profile"})),
}

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass
class StoredFile:
    data: bytes
    mode: int


@dataclass
class PkiState:
    """One device's files and loaded PKI objects (the emulator's own, never persisted)."""

    files: dict[str, StoredFile] = field(default_factory=dict)
    ca_certs: dict[str, x509.Certificate] = field(default_factory=dict)
    local_certs: dict[str, x509.Certificate] = field(default_factory=dict)
    keypairs: dict[str, bytes] = field(default_factory=dict)  # cert id -> public key DER
    crls: dict[str, x509.CertificateRevocationList] = field(default_factory=dict)


def _error(key: str, bad_element: str | None = None, **values: str) -> RpcReplyError:
    info = (("bad-element", bad_element),) if bad_element else ()
    return fail(MESSAGES[key].format(**values), error_type="application", info=info)


def _public_der(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _colons(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


class JunosPki:
    """The PKI RPC handlers of one JunosDevice (`handlers()` joins its dispatch table)."""

    def __init__(self, configured_profiles: Callable[[], set[str]]) -> None:
        self.state = PkiState()
        self._profiles = configured_profiles

    def handlers(self) -> dict[str, Callable[..., Element | None]]:
        return {"file-put": self.file_put, "file-delete": self.file_delete,
                "command": self.command, "get-pki-ca-certificate": self.show_ca,
                "get-pki-local-certificate": self.show_local, "get-pki-crl": self.show_crl}

    # --- files ------------------------------------------------------------------------------

    @staticmethod
    def _path(name: str, user: str) -> str:
        home = f"{HOME}/{user}"
        path = posixpath.normpath(name if name.startswith("/") else f"{home}/{name}")
        directory = posixpath.dirname(path)
        if directory not in (VAR_TMP, home):
            raise _error("no_dir", "filename", path=directory)
        return path

    def file_put(self, session: object, op: Element) -> None:
        fields = {local_name(c): c for c in children(op)}
        for required in ("filename", "encoding", "file-contents"):
            if required not in fields:
                raise fail(f"missing mandatory argument {required}", tag="missing-element",
                           info=(("bad-element", required),))
        if local_name(children(op)[-1]) != "file-contents":
            raise fail("file-contents must be the last element", info=(
                ("bad-element", local_name(children(op)[-1])),))
        path = self._path(text_of(fields["filename"]), getattr(session, "username", "root"))
        encoding = text_of(fields["encoding"]).lower()
        raw = fields["file-contents"].text or ""
        if encoding == "ascii":
            data = raw.encode()
        elif encoding == "base64":
            try:
                data = base64.b64decode("".join(raw.split()), validate=True)
            except (binascii.Error, ValueError):
                raise _error("bad_base64", "file-contents") from None
        else:
            raise _error("bad_encoding", "encoding", encoding=encoding)
        if len(data) > MAX_FILE:
            raise _error("too_big", "file-contents")
        if path in self.state.files and "delete-if-exist" not in fields:
            raise _error("file_exists", "filename", path=path)
        mode_text = text_of(fields.get("permission")) or "0644"
        try:
            mode = int(mode_text, 8)
        except ValueError:
            raise fail(f"invalid permission {mode_text}", tag="invalid-value",
                       info=(("bad-element", "permission"),)) from None
        self.state.files[path] = StoredFile(data, mode)  # [U] the reply: <ok/>

    def file_delete(self, session: object, op: Element) -> None:
        path = self._path(text_of(child(op, "path")), getattr(session, "username", "root"))
        if self.state.files.pop(path, None) is None:
            raise fail(MESSAGES["deleted_missing"].format(path=path), error_type="application")

    def _read(self, name: str, user: str) -> tuple[str, bytes]:
        path = self._path(name, user)
        stored = self.state.files.get(path)
        if stored is None:
            raise _error("no_file", "filename", path=path)
        return path, stored.data

    # --- commands ---------------------------------------------------------------------------

    @staticmethod
    def _output(text: str) -> Element:
        element = etree.Element("output")
        element.text = text + "\n"
        return element

    def command(self, session: object, op: Element) -> Element:
        line = text_of(op)
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        for length in (5, 4):
            spec = COMMANDS.get(tuple(words[:length]))
            if spec is not None:
                break
        else:
            bad = words[-1] if words else "command"
            raise fail("syntax error, expecting <command>", info=(("bad-element", bad),))
        name, allowed, required = spec
        args = words[length:]
        options: dict[str, str] = {}
        while args:
            if args[0] not in allowed or len(args) < 2:
                raise fail("syntax error", info=(("bad-element", args[0]),))
            options[args[0]] = args[1]
            args = args[2:]
        missing = sorted(required - set(options))
        if missing:
            raise fail(f"missing argument: {missing[0]}", info=(("bad-element", missing[0]),))
        handler: Callable[[dict[str, str], str], str] = getattr(self, f"_{name}")
        return self._output(handler(options, getattr(session, "username", "root")))

    def _certificate(self, name: str, user: str) -> x509.Certificate:
        path, data = self._read(name, user)
        try:
            if data.lstrip().startswith(b"-----"):
                return x509.load_pem_x509_certificate(data)
            return x509.load_der_x509_certificate(data)
        except ValueError:
            raise _error("bad_cert", "filename", path=path) from None

    def _load_ca(self, options: dict[str, str], user: str) -> str:
        profile = options["ca-profile"]
        if profile not in self._profiles():
            raise _error("no_profile", "ca-profile", profile=profile)
        if profile in self.state.ca_certs:
            raise _error("ca_exists", "ca-profile", profile=profile)
        self.state.ca_certs[profile] = self._certificate(options["filename"], user)
        return MESSAGES["ca_loaded"].format(profile=profile)

    def _load_crl(self, options: dict[str, str], user: str) -> str:
        profile = options["ca-profile"]
        if profile not in self._profiles():
            raise _error("no_profile", "ca-profile", profile=profile)
        ca = self.state.ca_certs.get(profile)
        if ca is None:
            raise _error("crl_no_ca", "ca-profile", profile=profile)
        path, data = self._read(options["filename"], user)
        try:
            crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----")
                   else x509.load_der_x509_crl(data))
        except ValueError:
            raise _error("bad_crl", "filename", path=path) from None
        try:
            valid = crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
        except (TypeError, InvalidSignature):
            valid = False
        if not valid:
            raise _error("crl_signature", "filename", profile=profile)
        self.state.crls[profile] = crl
        return MESSAGES["crl_loaded"].format(profile=profile)

    def _load_local(self, options: dict[str, str], user: str) -> str:
        cert_id = options["certificate-id"]
        if cert_id in self.state.local_certs:
            raise _error("cert_exists", "certificate-id", cert_id=cert_id)
        cert = self._certificate(options["filename"], user)
        public = _public_der(cert.public_key())  # type: ignore[arg-type]
        if "key" in options:
            if cert_id in self.state.keypairs:
                raise _error("key_exists", "key")
            path, data = self._read(options["key"], user)
            try:
                key = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError):
                raise _error("bad_key", "key", path=path) from None
            if _public_der(key.public_key()) != public:  # type: ignore[arg-type]
                raise _error("key_mismatch", "key", cert_id=cert_id)
            self.state.keypairs[cert_id] = public
        elif cert_id not in self.state.keypairs:
            raise _error("no_keypair", "certificate-id", cert_id=cert_id)
        elif self.state.keypairs[cert_id] != public:
            raise _error("key_mismatch", "filename", cert_id=cert_id)
        self.state.local_certs[cert_id] = cert
        return MESSAGES["local_loaded"]

    def _clear_local(self, options: dict[str, str], user: str) -> str:
        cert_id = options["certificate-id"]
        if self.state.local_certs.pop(cert_id, None) is None:
            raise _error("no_cert", "certificate-id", cert_id=cert_id)
        self.state.keypairs.pop(cert_id, None)  # with its key pair
        return ""

    def _clear_keypair(self, options: dict[str, str], user: str) -> str:
        cert_id = options["certificate-id"]
        if self.state.keypairs.pop(cert_id, None) is None:
            raise _error("no_keypair", "certificate-id", cert_id=cert_id)
        return ""

    def _clear_ca(self, options: dict[str, str], user: str) -> str:
        profile = options["ca-profile"]
        if self.state.ca_certs.pop(profile, None) is None:
            raise _error("no_ca", "ca-profile", profile=profile)
        return ""

    def _clear_crl(self, options: dict[str, str], user: str) -> str:
        self.state.crls.pop(options["ca-profile"], None)
        return ""

    # --- show -------------------------------------------------------------------------------

    @staticmethod
    def _wanted(op: Element, name: str) -> str | None:
        found = child(op, name)
        return text_of(found) if found is not None else None

    def show_ca(self, session: object, op: Element) -> Element:
        wanted = self._wanted(op, "ca-profile")
        return _cert_list({p: c for p, c in self.state.ca_certs.items()
                           if wanted in (None, p)}, ca=True)

    def show_local(self, session: object, op: Element) -> Element:
        wanted = self._wanted(op, "certificate-id")
        return _cert_list({i: c for i, c in self.state.local_certs.items()
                           if wanted in (None, i)}, ca=False)

    def show_crl(self, session: object, op: Element) -> Element:
        wanted = self._wanted(op, "ca-profile")
        out = etree.Element("x509-pkid-crl-information-list")
        for profile, crl in sorted(self.state.crls.items()):
            if wanted not in (None, profile):
                continue
            info = sub(out, "pkid-x509-crl-information")
            sub(info, "identifier", profile)
            sub(info, "crl-version", "2")
            try:
                number = crl.extensions.get_extension_for_class(x509.CRLNumber).value
                sub(info, "crl-number", str(number.crl_number))
            except x509.ExtensionNotFound:
                pass
            sub(info, "crl-issuer", crl.issuer.rfc4514_string())
            validity = sub(info, "crl-validity")
            sub(validity, "effective-date", _when(crl.last_update_utc))
            if crl.next_update_utc is not None:
                sub(validity, "next-update", _when(crl.next_update_utc))
            for revoked in crl:
                entry = sub(info, "crl-revocation-list")
                sub(entry, "revoked-cert-serial-number", f"{revoked.serial_number:x}")
                sub(entry, "crl-revocation-date", _when(revoked.revocation_date_utc))
        return out


def _when(moment: datetime) -> str:
    """The device's date spelling (`show security pki local-certificate detail`)."""
    return moment.strftime("%m-%d-%Y %H:%M UTC")


def _names(parent: Element, name: x509.Name) -> None:
    dn = sub(parent, "distinguished-name")
    fields = ((x509.NameOID.ORGANIZATION_NAME, "organization-name"),
              (x509.NameOID.COUNTRY_NAME, "country-name"),
              (x509.NameOID.COMMON_NAME, "common-name"))
    for oid, tag in fields:
        for attribute in name.get_attributes_for_oid(oid):
            sub(dn, tag, str(attribute.value))


def _cert_list(certs: dict[str, x509.Certificate], *, ca: bool) -> Element:
    out = etree.Element("x509-pki-certificate-info-list")
    for identifier, cert in sorted(certs.items()):
        der = cert.public_bytes(serialization.Encoding.DER)
        info = sub(out, "x509-certificate-info")
        sub(info, "identifier", identifier)
        if ca:
            sub(info, "ca-profile", identifier)
        sub(info, "version", str(cert.version.value + 1))
        serial = sub(info, "serial-number-list")
        sub(serial, "serial-number-x509", f"{cert.serial_number:x}")
        sub(serial, "serial-number-dec-x509", str(cert.serial_number))
        _names(sub(info, "issuer"), cert.issuer)
        _names(sub(info, "subject"), cert.subject)
        validity = sub(info, "validity")
        sub(validity, "not-before", _when(cert.not_valid_before_utc))
        sub(validity, "not-after", _when(cert.not_valid_after_utc))
        for algorithm, digest in (("sha1", hashlib.sha1(der).digest()),
                                  ("md5", hashlib.md5(der, usedforsecurity=False).digest())):
            fingerprint = sub(info, "fingerprint")
            sub(fingerprint, "fingerprint-content", _colons(digest))
            sub(fingerprint, "fingerprint-hash-algorithm", algorithm)
    return out
