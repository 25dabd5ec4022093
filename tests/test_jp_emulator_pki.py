"""The JunOS emulator's PKI (lab/emulators/junos_pki.py) driven by plain ncclient, as PyEZ or
an operator's script would: <file-put> into /var/tmp, `request security pki ... load` in a
<command> RPC, and the `show security pki` RPCs reporting what was loaded."""

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jp_support import (
    CA_PROFILE,
    GATEWAYS,
    commit_ca_profile,
    make_pki,
    material,
    session,
    start_junos,
    write_fabric,
)
from ncclient.operations.rpc import RPCError  # type: ignore[import-untyped]
from ncclient.transport import session as nc_session  # type: ignore[import-untyped]

from lab.emulators.ssh_server import ServerThread
from tasks.pki.delivery import GatewayMaterial

GW = GATEWAYS[0]


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nc_session, "TICK", 0.005)


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[ServerThread]:
    thread = start_junos(tmp_path / "emu")
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def mat(tmp_path: Path) -> GatewayMaterial:
    _, compiled = write_fabric(tmp_path)
    return material(make_pki(tmp_path / "pki", compiled), GW)


def put(m: Any, path: str, data: bytes, mode: str = "0644", replace: bool = True,
        encoding: str = "base64") -> None:
    body = base64.b64encode(data).decode() if encoding == "base64" else data.decode()
    m.rpc(f"<file-put><filename>{path}</filename><permission>{mode}</permission>"
          f"<encoding>{encoding}</encoding>{'<delete-if-exist/>' if replace else ''}"
          f"<file-contents>{body}</file-contents></file-put>")


def cli(m: Any, text: str) -> str:
    reply = m.command(command=text, format="text")
    return str(reply.xpath("//output")[0].text)


def cert_infos(m: Any, rpc: str) -> list[Any]:
    return list(m.rpc(rpc).xpath("//x509-certificate-info"))


def test_a_ca_certificate_needs_its_committed_profile_and_shows_as_loaded(
        emu: ServerThread, mat: GatewayMaterial) -> None:
    with session(emu) as m:
        put(m, "/var/tmp/ca.pem", mat.ca_pem)
        load = f"request security pki ca-certificate load ca-profile {CA_PROFILE} " \
               "filename /var/tmp/ca.pem"
        with pytest.raises(RPCError, match=f"CA profile {CA_PROFILE} is not configured"):
            cli(m, load)
        commit_ca_profile(m)
        assert cli(m, load).strip() == f"CA certificate for profile {CA_PROFILE} loaded " \
                                       "successfully"
        with pytest.raises(RPCError, match="already exists"):
            cli(m, load)
        [info] = cert_infos(m, f"<get-pki-ca-certificate><ca-profile>{CA_PROFILE}"
                               "</ca-profile></get-pki-ca-certificate>")
        ca = x509.load_pem_x509_certificate(mat.ca_pem)
        der = ca.public_bytes(serialization.Encoding.DER)
        assert info.findtext("identifier") == CA_PROFILE
        assert int(info.findtext("serial-number-list/serial-number-x509"), 16) == \
            ca.serial_number
        prints = {f.findtext("fingerprint-hash-algorithm"): f.findtext("fingerprint-content")
                  for f in info.findall("fingerprint")}
        assert prints["sha1"].replace(":", "") == hashlib.sha1(der).hexdigest()
        assert cert_infos(m, "<get-pki-ca-certificate><ca-profile>other</ca-profile>"
                             "</get-pki-ca-certificate>") == []
        cli(m, f"clear security pki ca-certificate ca-profile {CA_PROFILE}")
        assert cert_infos(m, "<get-pki-ca-certificate/>") == []


def test_local_certificate_load_checks_file_key_and_identifier(
        emu: ServerThread, mat: GatewayMaterial) -> None:
    load = f"request security pki local-certificate load certificate-id {GW} " \
           "filename /var/tmp/cert.pem key /var/tmp/key.pem"
    with session(emu) as m:
        with pytest.raises(RPCError, match=re.escape("Failed to open file /var/tmp/cert.pem")):
            cli(m, load)
        put(m, "/var/tmp/cert.pem", b"not a certificate")
        put(m, "/var/tmp/key.pem", mat.key_pem, "0600", encoding="ascii")
        with pytest.raises(RPCError, match=re.escape("not a PEM or DER X.509 certificate")):
            cli(m, load)
        put(m, "/var/tmp/cert.pem", mat.cert_pem)
        other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        put(m, "/var/tmp/key.pem", other, "0600")
        with pytest.raises(RPCError, match=f"does not match the public key in certificate {GW}"
                           ):
            cli(m, load)
        assert cert_infos(m, "<get-pki-local-certificate/>") == []  # nothing half-loaded
        put(m, "/var/tmp/key.pem", mat.key_pem, "0600")
        assert cli(m, load).strip() == "Local certificate loaded successfully"
        with pytest.raises(RPCError, match=f"Certificate id {GW} already exists"):
            cli(m, load)
        [info] = cert_infos(m, f"<get-pki-local-certificate><certificate-id>{GW}"
                               "</certificate-id></get-pki-local-certificate>")
        cert = x509.load_pem_x509_certificate(mat.cert_pem)
        assert int(info.findtext("serial-number-list/serial-number-x509"), 16) == \
            cert.serial_number
        [cn] = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        assert info.findtext("subject/distinguished-name/common-name") == cn.value
        cli(m, f"clear security pki local-certificate certificate-id {GW}")  # with its key pair
        assert cli(m, load).strip() == "Local certificate loaded successfully"
        without_key = load.rsplit(" key ", 1)[0].replace(GW, "other")
        with pytest.raises(RPCError, match="Keypair doesn't exist for certificate other"):
            cli(m, without_key)
        with pytest.raises(RPCError, match="syntax error"):
            cli(m, load + " bogus")


def test_a_crl_needs_the_ca_that_signed_it(emu: ServerThread, mat: GatewayMaterial) -> None:
    with session(emu) as m:
        commit_ca_profile(m)
        put(m, "/var/tmp/crl.pem", mat.crl_pem)
        load = f"request security pki crl load ca-profile {CA_PROFILE} filename /var/tmp/crl.pem"
        with pytest.raises(RPCError, match=f"CA certificate for profile {CA_PROFILE} is not "
                                           "loaded"):
            cli(m, load)
        put(m, "/var/tmp/ca.pem", mat.cert_pem)  # a certificate that did not sign the CRL
        cli(m, f"request security pki ca-certificate load ca-profile {CA_PROFILE} "
               "filename /var/tmp/ca.pem")
        with pytest.raises(RPCError, match="signature verification failed"):
            cli(m, load)
        cli(m, f"clear security pki ca-certificate ca-profile {CA_PROFILE}")
        put(m, "/var/tmp/ca.pem", mat.ca_pem)
        cli(m, f"request security pki ca-certificate load ca-profile {CA_PROFILE} "
               "filename /var/tmp/ca.pem")
        assert "loaded successfully" in cli(m, load)
        crl = x509.load_pem_x509_crl(mat.crl_pem)
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        info = m.rpc("<get-pki-crl/>").xpath("//pkid-x509-crl-information")[0]
        assert info.findtext("identifier") == CA_PROFILE
        assert info.findtext("crl-number") == str(number)


def test_file_put_and_delete_follow_the_device_rules(emu: ServerThread) -> None:
    with session(emu) as m:
        put(m, "/var/tmp/a.txt", b"one")
        with pytest.raises(RPCError, match="exists"):
            put(m, "/var/tmp/a.txt", b"two", replace=False)
        with pytest.raises(RPCError, match="Directory /etc does not exist"):
            put(m, "/etc/passwd", b"x")
        with pytest.raises(RPCError, match="Invalid encoding"):
            put(m, "/var/tmp/b.txt", b"x", encoding="utf16")
        m.rpc("<file-delete><path>/var/tmp/a.txt</path></file-delete>")
        with pytest.raises(RPCError, match="not found"):
            m.rpc("<file-delete><path>/var/tmp/a.txt</path></file-delete>")
        put(m, "relative.txt", b"home")  # relative: the user's home folder
        m.rpc(f"<file-delete><path>/var/home/{'lab'}/relative.txt</path></file-delete>")
