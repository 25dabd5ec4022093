"""The IOS-XE CLI emulator's PKI (lab/emulators/iosxe_cli_pki.py) driven by plain netmiko, as
an operator's script would: `crypto pki import <tp> pem terminal password <pw>` pasted in
configuration mode, then `show crypto pki certificates` / `show crypto key mypubkey`."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ip_support import (
    GATEWAY,
    PASSWORD,
    TRUSTPOINT,
    USER,
    WAIT,
    Material,
    acme,
    make_pki,
    material,
    start_emulator,
)
from netmiko import ConnectHandler

from drivers.pem_legacy import encrypt_traditional
from lab.emulators.iosxe_cli import CliServerThread
from lab.emulators.iosxe_cli_pki import MESSAGES, keys_of

PW = "OneTime4711pw"
PROMPT = re.escape(GATEWAY) + r"\(config\)#\s*$"


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[CliServerThread]:
    thread = start_emulator(tmp_path / "state")
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def mat(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return material(make_pki(tmp_path_factory.mktemp("pki"), acme()))


@pytest.fixture
def cli(emu: CliServerThread) -> Iterator[Any]:
    conn = ConnectHandler(device_type="cisco_xe", host="127.0.0.1", port=emu.port,
                          username=USER, password=PASSWORD, timeout=WAIT, allow_agent=False,
                          use_keys=False, system_host_keys=False, ssh_strict=False)
    try:
        yield conn
    finally:
        conn.disconnect()


def paste(conn: Any, pem: str, until: str) -> str:
    conn.write_channel("\n".join([*pem.strip().splitlines(), "quit"]) + "\n")
    return str(conn.read_until_pattern(pattern=until, read_timeout=WAIT))


def dialog(conn: Any, ca: str, key: str, cert: str, tp: str = TRUSTPOINT) -> str:
    """The whole import as typed; everything the device answered."""
    conn.config_mode()
    out = str(conn.send_command(f"crypto pki import {tp} pem terminal password {PW}",
                                expect_string=r"by itself\.|" + PROMPT, read_timeout=WAIT))
    if "CA certificate" in out:
        out += paste(conn, ca, r"key\.\s*\n[^\n]*by itself\.|" + PROMPT)
    if "private General Purpose key" in out:
        out += paste(conn, key, r"General Purpose certificate\.\s*\n[^\n]*by itself\.|" + PROMPT)
    if "General Purpose certificate" in out:
        out += paste(conn, cert, PROMPT)
    conn.exit_config_mode()
    return out


def device(emu: CliServerThread) -> tuple[str, dict[str, Any]]:
    return emu.call(lambda d: (d.config_text(), dict(keys_of(d))))


def test_import_asks_like_the_device_and_the_show_commands_report_it(
        emu: CliServerThread, cli: Any, mat: Material) -> None:
    out = dialog(cli, mat.ca_pem, encrypt_traditional(mat.key_pem, PW), mat.cert_pem)
    asked = [MESSAGES["ask_ca"], MESSAGES["ask_key"], MESSAGES["ask_cert"], MESSAGES["done"]]
    positions = [out.replace("\r\n", "\n").find(text) for text in asked]
    assert -1 not in positions and positions == sorted(positions), out
    certs = cli.send_command(f"show crypto pki certificates {TRUSTPOINT}")
    serials = re.findall(r"Certificate Serial Number \(hex\): (\S+)", certs)
    assert [int(s, 16) for s in serials] == [mat.cert.serial_number, mat.ca.serial_number]
    assert certs.index("\nCA Certificate") > certs.index("Certificate\n")
    assert f"Associated Trustpoints: {TRUSTPOINT}" in certs
    keys = cli.send_command(f"show crypto key mypubkey ec {TRUSTPOINT}")
    assert f"Key name: {TRUSTPOINT}" in keys and "Key type: EC KEYS" in keys
    data = "".join(ln.strip().replace(" ", "") for ln in keys.split("Key Data:")[1].splitlines())
    assert bytes.fromhex(data) == mat.public_der()
    assert cli.send_command(f"show crypto key mypubkey rsa {TRUSTPOINT}").strip() == ""
    running, stored = device(emu)
    assert f"crypto pki certificate chain {TRUSTPOINT}" in running
    assert f"crypto pki trustpoint {TRUSTPOINT}" in running  # created by the import
    assert list(stored) == [TRUSTPOINT]
    assert "PRIVATE KEY" not in running
    assert not [ln for ln in mat.key_lines() if ln in out + running]


@pytest.mark.parametrize("case", ["wrong_password", "foreign_key", "plain_key", "bad_ca"])
def test_refused_imports_say_why_and_change_nothing(
        emu: CliServerThread, cli: Any, mat: Material, case: str) -> None:
    other = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()).decode()
    key = {"wrong_password": encrypt_traditional(mat.key_pem, "NotThePassword1"),
           "foreign_key": encrypt_traditional(other, PW),
           "plain_key": mat.key_pem,
           "bad_ca": encrypt_traditional(mat.key_pem, PW)}[case]
    ca = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----" \
        if case == "bad_ca" else mat.ca_pem
    before, _ = device(emu)
    out = dialog(cli, ca, key, mat.cert_pem)
    expected = {"wrong_password": "bad_password", "foreign_key": "key_mismatch",
                "plain_key": "bad_key", "bad_ca": "bad_ca"}[case]
    assert MESSAGES[expected] in out and MESSAGES["done"] not in out
    after, stored = device(emu)
    assert after == before and stored == {}


def test_unknown_trustpoint_and_exec_mode(cli: Any) -> None:
    assert MESSAGES["no_trustpoint"].format(tp="NOPE") in cli.send_command(
        "show crypto pki certificates NOPE")
    answer = cli.send_command(f"crypto pki import {TRUSTPOINT} pem terminal password {PW}")
    assert "% Unknown command" in answer  # an exec-mode line: the command is configuration


def test_the_key_pair_is_outside_the_configuration_a_replace_keeps_it(
        emu: CliServerThread, cli: Any, mat: Material) -> None:
    base, _ = device(emu)
    dialog(cli, mat.ca_pem, encrypt_traditional(mat.key_pem, PW), mat.cert_pem)
    emu.call(lambda d: d.write_file("base.cfg", base.encode()))
    answer = cli.send_command("configure replace flash:base.cfg force", read_timeout=WAIT)
    assert "Rollback Done" in answer
    running, stored = device(emu)
    assert f"crypto pki certificate chain {TRUSTPOINT}" not in running  # the chain is config
    assert list(stored) == [TRUSTPOINT]  # the key pair is not
