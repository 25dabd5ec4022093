"""Shared pieces of the IOS-XE PKI tests (test_ip_*): the CLI emulator on a loopback port, a
driver target for it, and certificate material from dcvpn's own PKI code."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import EXAMPLES
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from drivers.base import DeviceTarget
from drivers.iosxe_ssh import IosxeSshDriver
from inventory.loader import load_fabric
from inventory.model import Platform, Transport
from inventory.topology import CompiledFabric, compile_fabric
from lab.emulators.iosxe_cli import CliServer, CliServerThread
from tasks.pki.ca import init_ca
from tasks.pki.deploy_material import resolve_keys, with_device_certificates
from tasks.pki.issue import issue_certs
from tasks.pki.keys import Passphrase
from tasks.pki.store import Layout
from tasks.render import render_gateway

USER = "lab"
PASSWORD = "lab-secret"
GATEWAY = "par1-gw1"  # iosxe over ssh in the acme-hybrid example (certificate auth)
TRUSTPOINT = "DCVPN-acme"
WAIT = 15.0
SSH_KEY = (Platform.IOSXE, Transport.SSH)


def start_emulator(state: Path, scale: float = 0.05) -> CliServerThread:
    return CliServerThread(CliServer(USER, PASSWORD, state, scale, hostname=GATEWAY)).start()


@contextmanager
def emulator(state: Path) -> Iterator[CliServerThread]:
    thread = start_emulator(state)
    try:
        yield thread
    finally:
        thread.stop()


def target(emu: CliServerThread, **changes: Any) -> DeviceTarget:
    known = emu.server.state_dir / "known_hosts"
    known.write_text(emu.known_hosts_line() + "\n")
    base = DeviceTarget(name=GATEWAY, host="127.0.0.1", port=emu.port, username=USER,
                        password=PASSWORD, timeout=WAIT, known_hosts=known)
    return replace(base, **changes)


@contextmanager
def driver(emu: CliServerThread) -> Iterator[IosxeSshDriver]:
    with IosxeSshDriver(target(emu)) as drv:
        yield drv


def acme() -> CompiledFabric:
    return compile_fabric(load_fabric(EXAMPLES / "acme-hybrid.yaml").fabric)


def make_pki(root: Path, compiled: CompiledFabric, key_type: str | None = None) -> Path:
    fabric = compiled.fabric
    now = datetime.now(UTC)
    init_ca(Layout(root), fabric.fabric.name, key_type or fabric.fabric.auth.key_type,
            Passphrase(), now, days=60, crl_days=30)
    issue_certs(Layout(root), fabric, [gw for _, gw in compiled.gateways()], Passphrase(), now,
                days=20)
    return root


@dataclass(frozen=True)
class Material:
    ca_pem: str
    cert_pem: str
    key_pem: str

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode())

    @property
    def ca(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.ca_pem.encode())

    def public_der(self) -> bytes:
        return self.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def key_lines(self) -> list[str]:
        return [ln for ln in self.key_pem.splitlines() if ln and not ln.startswith("-----")]


def material(pki: Path, gateway: str = GATEWAY) -> Material:
    layout = Layout(pki)
    return Material(layout.ca_cert.read_text(), layout.cert(gateway).read_text(),
                    layout.key(gateway).read_text())


def candidate(compiled: CompiledFabric, pki: Path, gateway: str = GATEWAY) -> str:
    """config.cli with its PKI section, the key reference resolved (what the driver gets)."""
    config = render_gateway(compiled, gateway, pki)["config.cli"]
    text, _ = resolve_keys(with_device_certificates(SSH_KEY, config, pki, gateway), pki)
    return text
