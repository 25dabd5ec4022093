"""IOS-XE over SSH imports the gateway's key and certificates (drivers/iosxe_pki.py,
drivers/pem_legacy.py) through the CLI emulator's `crypto pki import ... pem terminal` dialog:
only when the device lacks them or holds others, before the configure replace, and never
showing the key, its transport encryption or the one-time password."""

import logging
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from ip_support import (
    GATEWAY,
    PASSWORD,
    TRUSTPOINT,
    USER,
    acme,
    candidate,
    driver,
    emulator,
    make_pki,
    material,
)

from drivers.errors import LoadError
from drivers.iosxe_pki import (
    KEY_SHOWN,
    PKI_MARKER,
    IosxePki,
    pack_candidate,
    parse_certificates,
    parse_key,
    split_candidate,
)
from drivers.iosxe_ssh import IosxeSshDriver
from drivers.iosxe_ssh_table import CANDIDATE_FILE
from drivers.pem_legacy import PASSWORD_ALPHABET, encrypt_traditional, one_time_password
from inventory.model import Platform, Transport
from lab.emulators.iosxe_cli import CliServerThread
from lab.emulators.iosxe_cli_pki import keys_of
from pipelines.fleet import make_nornir
from tasks.deploy import commit_device, confirm_device, diff_device
from tasks.pki.deploy_material import KEY_DELIVERED, LOADED_BY_DRIVER, NOT_INSTALLED
from tasks.pki.issue import renew_certs
from tasks.pki.keys import Passphrase
from tasks.pki.store import Layout

CONFIG = f"crypto pki trustpoint {TRUSTPOINT}\n eckeypair {TRUSTPOINT}\n!\nend\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"), acme())


def device_key(emu: CliServerThread) -> Any:
    return emu.call(lambda d: keys_of(d).get(TRUSTPOINT))


def running(emu: CliServerThread) -> str:
    return str(emu.call(lambda d: d.config_text()))


def shown(drv: IosxeSshDriver) -> str:
    """Both views of the driver's diff (native and unified), as a report may show either."""
    diff = drv.diff()
    return (diff.native or "") + diff.unified


def chain_serials(config: str) -> list[int]:
    return [int(m, 16) for m in re.findall(r"^ certificate (?:ca )?(\S+)$", config, re.M)]


# --- transport encryption -----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["EC", "RSA"])
def test_the_key_travels_as_3des_traditional_pem_only_its_password_opens(kind: str) -> None:
    key = (ec.generate_private_key(ec.SECP384R1()) if kind == "EC"
           else rsa.generate_private_key(public_exponent=65537, key_size=2048))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    password = one_time_password()
    assert len(password) == 32 and set(password) <= set(PASSWORD_ALPHABET)
    assert password != one_time_password()
    text = encrypt_traditional(pem, password)
    lines = text.splitlines()
    assert lines[0] == f"-----BEGIN {kind} PRIVATE KEY-----"
    assert lines[1:3] == ["Proc-Type: 4,ENCRYPTED", lines[2]]
    assert re.fullmatch(r"DEK-Info: DES-EDE3-CBC,[0-9A-F]{16}", lines[2]) and lines[3] == ""
    opened = serialization.load_pem_private_key(text.encode(), password.encode())
    assert opened.private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(text.encode(), b"wrong-password")


# --- the candidate's PKI section, checked before any device --------------------------------

def test_the_section_round_trips_and_bad_material_is_a_load_error_without_the_key(
        pki: Path, tmp_path: Path) -> None:
    mat = material(pki)
    bundle = IosxePki(TRUSTPOINT, mat.ca_pem, mat.cert_pem, mat.key_pem)
    config, back = split_candidate(pack_candidate(CONFIG, bundle), GATEWAY)
    assert config == CONFIG and back == bundle
    assert split_candidate(CONFIG, GATEWAY) == (CONFIG, None)
    other = material(pki, "fra1-gw1")
    foreign_ca = material(make_pki(tmp_path / "other", acme()))
    cases = {
        "does not belong to the certificate": bundle.__class__(
            TRUSTPOINT, mat.ca_pem, mat.cert_pem, other.key_pem),
        "was not issued by the CA": IosxePki(TRUSTPOINT, foreign_ca.ca_pem, mat.cert_pem,
                                             mat.key_pem),
        "unresolved reference": IosxePki(TRUSTPOINT, mat.ca_pem, mat.cert_pem,
                                         "${dcvpn-secret:pki-key/par1-gw1}"),
        "key.pem missing": IosxePki(TRUSTPOINT, mat.ca_pem, mat.cert_pem, ""),
        "not a PEM X.509": IosxePki(TRUSTPOINT, "junk", mat.cert_pem, mat.key_pem),
        "does not configure trustpoint DCVPN-other": IosxePki("DCVPN-other", mat.ca_pem,
                                                              mat.cert_pem, mat.key_pem),
    }
    for expected, bad in cases.items():
        with pytest.raises(LoadError, match=expected) as caught:
            split_candidate(pack_candidate(CONFIG, bad), GATEWAY)
        assert GATEWAY in str(caught.value)
        assert not [ln for ln in mat.key_lines() + other.key_lines() if ln in str(caught.value)]
    with pytest.raises(LoadError, match="trustpoint="):
        split_candidate(CONFIG + PKI_MARKER + "\n", GATEWAY)


def test_parsers_read_the_device_layout() -> None:
    certs = ("Certificate\n  Status: Available\n  Certificate Serial Number (hex): 0F64\n"
             "  Associated Trustpoints: TP\n\nCA Certificate\n  Status: Available\n"
             "  Certificate Serial Number (hex): 01\n")
    assert parse_certificates(certs) == (0x01, 0x0F64)
    assert parse_certificates("") == (None, None)
    keys = ("% Key pair was generated at: 13:41:45 PDT Jul 11 2024\nKey name: OTHER\n"
            " Key Data:\n  0102\nKey name: TP\nKey type: EC KEYS\n Key Data:\n"
            "  30763010 06072A86\n  48CE\n")
    assert parse_key(keys, "TP") == bytes.fromhex("3076301006072A8648CE")
    assert parse_key(keys, "NONE") is None


def test_tables_say_ssh_delivers_the_key_and_netconf_does_not() -> None:
    ssh = (Platform.IOSXE, Transport.SSH)
    assert ssh in LOADED_BY_DRIVER and ssh in KEY_DELIVERED and ssh not in NOT_INSTALLED
    assert (Platform.IOSXE, Transport.NETCONF) in NOT_INSTALLED


# --- against the CLI emulator --------------------------------------------------------------

def test_first_deploy_imports_a_second_is_a_no_op_a_renewal_imports_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = acme()
    pki = make_pki(tmp_path / "pki", compiled)
    mat = material(pki)
    sent: list[str] = []
    real = encrypt_traditional

    def spy(pem: str, password: str) -> str:
        text = real(pem, password)
        sent.extend([password, *(ln for ln in text.splitlines()[4:-1] if len(ln) > 16)])
        return text

    monkeypatch.setattr("drivers.iosxe_ssh.encrypt_traditional", spy)
    caplog.set_level(logging.DEBUG)
    with emulator(tmp_path / "state") as emu, driver(emu) as drv:
        drv.load_candidate(candidate(compiled, pki))
        diff = shown(drv)
        assert f"+key-pair {TRUSTPOINT}: {KEY_SHOWN}" in diff
        assert f"-key-pair {TRUSTPOINT}: none" in diff
        assert f"serial {mat.cert.serial_number:X}" in diff
        drv.commit()
        first = device_key(emu)
        assert first is not None and first.public_der == mat.public_der()
        assert chain_serials(running(emu)) == [mat.cert.serial_number, mat.ca.serial_number]

        drv.load_candidate(candidate(compiled, pki))
        assert shown(drv) == ""  # device holds the same: nothing to import or replace
        drv.commit()
        assert device_key(emu) is first  # not imported again

        renew_certs(Layout(pki), compiled.fabric, [gw for _, gw in compiled.gateways()],
                    Passphrase(), datetime.now(UTC) + timedelta(days=1),
                    within=timedelta(days=30), days=40)
        new = material(pki)
        assert new.cert.serial_number != mat.cert.serial_number
        drv.load_candidate(candidate(compiled, pki))
        change = shown(drv)
        assert f"-certificate {TRUSTPOINT}: serial {mat.cert.serial_number:X}" in change
        drv.commit()
        assert device_key(emu).public_der == new.public_der()
        assert chain_serials(running(emu))[0] == new.cert.serial_number
        seen = diff + change + caplog.text
        secrets = mat.key_lines() + new.key_lines() + sent
        assert len(sent) > 4 and not [s for s in secrets if s in seen]
        assert "crypto pki import" in caplog.text and "<masked>" in caplog.text
        assert "PRIVATE KEY" not in seen + running(emu)


def test_a_revert_keeps_certificate_and_key_in_step(tmp_path: Path) -> None:
    """The import comes before the checkpoint: a rolled-back change keeps the new chain,
    matching the new key pair (which no configuration rollback can take back)."""
    compiled = acme()
    pki = make_pki(tmp_path / "pki", compiled)
    with emulator(tmp_path / "state") as emu, driver(emu) as drv:
        drv.load_candidate(candidate(compiled, pki))
        drv.commit()
        renew_certs(Layout(pki), compiled.fabric, [gw for _, gw in compiled.gateways()],
                    Passphrase(), datetime.now(UTC) + timedelta(days=1),
                    within=timedelta(days=30), days=40)
        new = material(pki)
        drv.load_candidate(candidate(compiled, pki))
        assert drv.commit(confirm_timeout=300) is not None
        drv.rollback()
        assert not emu.call(lambda d: d.pending is not None)
        assert chain_serials(running(emu))[0] == new.cert.serial_number
        assert device_key(emu).public_der == new.public_der()


def test_a_refused_import_is_a_load_error_and_nothing_is_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = acme()
    pki = make_pki(tmp_path / "pki", compiled)
    mat = material(pki)
    # the device gets a key encrypted with another password than the command names
    monkeypatch.setattr("drivers.iosxe_ssh.encrypt_traditional",
                        lambda pem, _: encrypt_traditional(pem, "SomethingElse123"))
    with emulator(tmp_path / "state") as emu, driver(emu) as drv:
        before = running(emu)
        drv.load_candidate(candidate(compiled, pki))
        with pytest.raises(LoadError, match="decryption of the private key failed") as caught:
            drv.commit()
        assert "nothing was changed" in str(caught.value)
        assert not [ln for ln in mat.key_lines() if ln in str(caught.value)]
        assert running(emu) == before and device_key(emu) is None
        assert CANDIDATE_FILE not in emu.call(lambda d: set(d.flash.files))
        assert drv.get_running().startswith("!")  # the session is usable: exec mode again


def test_deploy_tasks_import_through_nornir(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import EXAMPLES

    compiled = acme()
    pki = make_pki(tmp_path / "pki", compiled)
    mat = material(pki)
    with emulator(tmp_path / "state") as emu:
        known = tmp_path / "known_hosts"
        known.write_text(emu.known_hosts_line() + "\n")
        for name in [n for n in os.environ if n.startswith("DCVPN_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("DCVPN_USERNAME", USER)
        monkeypatch.setenv("DCVPN_PASSWORD", PASSWORD)
        monkeypatch.setenv("DCVPN_KNOWN_HOSTS", str(known))
        nr = make_nornir(str(EXAMPLES / "acme-hybrid.yaml"), compiled).filter(name=GATEWAY)
        host = nr.inventory.hosts[GATEWAY]
        host.hostname, host.port = "127.0.0.1", emu.port

        def run(task: Any, **kwargs: Any) -> Any:
            result = nr.run(task=task, on_failed=True, **kwargs)[GATEWAY][0]
            assert not result.failed, result.exception
            return result

        try:
            first = run(diff_device, pki_dir=str(pki))
            assert first.changed and KEY_SHOWN in first.diff
            run(commit_device, confirm_timeout=300, pki_dir=str(pki))
            run(confirm_device)
            assert device_key(emu).public_der == mat.public_der()
            assert not run(diff_device, pki_dir=str(pki)).changed
            assert not [ln for ln in mat.key_lines() if ln in first.diff]
        finally:
            nr.close_connections()
