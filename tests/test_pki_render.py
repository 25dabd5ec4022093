"""Certificates in rendered configuration: `dcvpn render --pki-dir` (tasks.render pki_dir).

IOS-XE config.cli gets `crypto pki certificate chain DCVPN-<fabric>` with the device and CA
certificates as IOS-XE keeps them (read back here with an independent parser and compared
with the PKI's files); config.xml does not change (the Cisco-IOS-XE-crypto chain list has no
certificate content: see tasks/render_iosxe.py). Without a PKI directory every file is byte
for byte what it was. No rendered file holds private key material.
"""

import base64
import os
import re
from pathlib import Path

import pytest
from conftest import EXAMPLES, GOLDEN
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from inventory.loader import load_fabric
from inventory.model import Platform
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import cli, pki_cmd
from tasks.errors import RenderError
from tasks.pki.keys import PASSPHRASE_ENV, Passphrase, load_key
from tasks.pki.store import Layout
from tasks.render import render_gateway

ACME = EXAMPLES / "acme-hybrid.yaml"
PASS = "render-test-passphrase"
IOSXE = ("fra1-gw1", "fra1-gw2", "par1-gw1")
_CHAIN = re.compile(r"^crypto pki certificate chain (\S+)$")
_CERT = re.compile(r"^ certificate (ca )?([0-9A-F]+)$")
_HEX = re.compile(r"^  ([0-9A-F]{1,8}(?: [0-9A-F]{1,8}){0,7})$")


@pytest.fixture(scope="module")
def acme() -> CompiledFabric:
    return compile_fabric(load_fabric(ACME).fabric)


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki") / "pki"
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("DCVPN_"):
                mp.delenv(name)
        mp.setenv(PASSPHRASE_ENV, PASS)
        for sub in ("init", "issue"):
            assert pki_cmd.main(["pki", sub, "-f", str(ACME), "--pki-dir", str(root)]) == 0
    return root


def chains(text: str) -> dict[str, list[tuple[bool, str, bytes]]]:
    """trustpoint -> [(is CA, serial, DER)], from `crypto pki certificate chain` blocks."""
    out: dict[str, list[tuple[bool, str, bytes]]] = {}
    lines = iter(text.splitlines())
    for line in lines:
        chain = _CHAIN.match(line)
        if not chain:
            continue
        entries = out.setdefault(chain[1], [])
        for entry in lines:
            if entry == "!":
                break
            cert = _CERT.match(entry)
            assert cert, f"unexpected line in the chain: {entry!r}"
            hex_text = []
            for data in lines:
                if data == "  \tquit":
                    break
                hex_line = _HEX.match(data)
                assert hex_line, f"not a hex line: {data!r}"
                hex_text.append(hex_line[1].replace(" ", ""))
            entries.append((cert[1] is not None, cert[2], bytes.fromhex("".join(hex_text))))
    return out


def der(path: Path) -> bytes:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("gateway", IOSXE)
def test_config_cli_carries_the_chain_that_parses_back_to_the_pki(
        acme: CompiledFabric, pki_dir: Path, gateway: str) -> None:
    files = render_gateway(acme, gateway, pki_dir)
    found = chains(files["config.cli"])
    assert list(found) == ["DCVPN-acme"]  # the trustpoint's own name
    (dev_ca, dev_serial, dev_der), (ca_ca, ca_serial, ca_der) = found["DCVPN-acme"]
    layout = Layout(pki_dir)
    assert (dev_ca, dev_der) == (False, der(layout.cert(gateway)))
    assert (ca_ca, ca_der) == (True, der(layout.ca_cert))
    device = x509.load_der_x509_certificate(dev_der)
    ca = x509.load_der_x509_certificate(ca_der)
    assert int(dev_serial, 16) == device.serial_number and len(dev_serial) % 2 == 0
    assert int(ca_serial, 16) == ca.serial_number
    device.verify_directly_issued_by(ca)
    # the chain follows its trustpoint, which it needs on a device
    text = files["config.cli"]
    assert text.index("crypto pki trustpoint DCVPN-acme") < text.index(
        "crypto pki certificate chain DCVPN-acme")


@pytest.mark.parametrize("gateway", IOSXE)
def test_config_xml_is_unchanged_by_the_pki(acme: CompiledFabric, pki_dir: Path,
                                            gateway: str) -> None:
    assert render_gateway(acme, gateway, pki_dir)["config.xml"] == (
        GOLDEN / "acme-hybrid" / gateway / "config.xml").read_text()


def test_without_a_pki_dir_every_file_is_the_golden_one(acme: CompiledFabric) -> None:
    for _, gw in acme.gateways():
        for name, text in render_gateway(acme, gw.name, None).items():
            assert text == (GOLDEN / "acme-hybrid" / gw.name / name).read_text(), (gw.name, name)


def test_other_platforms_render_the_same_with_a_pki_dir(acme: CompiledFabric,
                                                        pki_dir: Path) -> None:
    others = [gw.name for _, gw in acme.gateways() if gw.platform is not Platform.IOSXE]
    assert others
    for name in others:
        assert render_gateway(acme, name, pki_dir) == render_gateway(acme, name)


def test_a_psk_fabric_ignores_the_pki_dir(pki_dir: Path) -> None:
    fabric = load_fabric(ACME).fabric
    spec = fabric.fabric.model_copy(update={
        "auth": fabric.fabric.auth.model_copy(update={"method": "psk"})})
    psk = compile_fabric(fabric.model_copy(update={"fabric": spec}))
    files = render_gateway(psk, "fra1-gw1", pki_dir)
    assert files == render_gateway(psk, "fra1-gw1")
    assert "crypto pki" not in files["config.cli"]


def test_a_gateway_without_a_certificate_is_a_render_error(acme: CompiledFabric,
                                                           pki_dir: Path,
                                                           tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    (partial / "certs").mkdir(parents=True)
    for name in ("ca.pem", "crl.pem"):
        (partial / name).write_bytes((pki_dir / name).read_bytes())
    with pytest.raises(RenderError, match=r"fra1-gw1: .*no certificate \(run dcvpn pki issue\)"):
        render_gateway(acme, "fra1-gw1", partial)


def _key_forms(pki_dir: Path) -> dict[str, list[bytes]]:
    """Each private key of the PKI in the spellings it could leak in: PEM/DER base64 (also
    its 64-character lines), DER and private value in hex."""
    layout = Layout(pki_dir)
    paths = {"ca": layout.ca_key, **{p.stem: p for p in sorted(layout.keys_dir.glob("*.key"))}}
    forms: dict[str, list[bytes]] = {}
    for name, path in paths.items():
        key = load_key(path, Passphrase(PASS.encode()))
        der_key = key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        b64 = base64.b64encode(der_key)
        value = (key.private_numbers().private_value
                 if isinstance(key, ec.EllipticCurvePrivateKey) else key.private_numbers().d)
        size = (value.bit_length() + 7) // 8
        forms[name] = [b64, *(b64[i:i + 64] for i in range(0, len(b64), 64)),
                       der_key.hex().encode(), der_key.hex().upper().encode(),
                       value.to_bytes(size, "big").hex().encode(),
                       value.to_bytes(size, "big").hex().upper().encode()]
    return forms


def test_no_rendered_file_holds_private_key_material(pki_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DCVPN_"):
            monkeypatch.delenv(name)
    out = tmp_path / "out"
    assert cli.main(["render", "-f", str(ACME), "-o", str(out), "--pki-dir", str(pki_dir)]) == 0
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) > 20 and (out / "fra1-gw1" / "config.cli").is_file()
    assert b"crypto pki certificate chain" in (out / "fra1-gw1" / "config.cli").read_bytes()
    forms = _key_forms(pki_dir)
    assert len(forms) == 9  # the CA and eight gateways
    for path in files:
        data = path.read_bytes()
        flat = re.sub(rb"\s+", b"", data)
        assert b"PRIVATE KEY" not in data and b"ENCRYPTED" not in data, path
        for owner, spellings in forms.items():
            for form in spellings:
                assert form not in data and form not in flat, (path, owner)
