"""The JunOS driver loading certificates (drivers/junos_pki.py through JunosNetconfDriver)
against the emulated SRX: the diff shows what the commit would load (the key only as
<private key>), the commit loads it after the configuration, a second run is a no-op, a
renewal loads the new certificate, bad material is refused before the device is touched, a
failed load rolls the confirmed commit back and leaves no file in /var/tmp."""

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from jp_support import (
    CA_PROFILE,
    GATEWAYS,
    PASSWORD,
    USER,
    WAIT,
    key_lines,
    make_pki,
    renew,
    start_junos,
    write_fabric,
)
from ncclient.transport import session as nc_session  # type: ignore[import-untyped]

from drivers import junos_pki
from drivers.base import DeviceTarget
from drivers.errors import CommitError, LoadError
from drivers.junos_netconf import JunosNetconfDriver
from drivers.junos_pki import KEY_SHOWN, PkiBundle, pack_candidate, split_candidate
from inventory.model import Platform, Transport
from lab.emulators.junos import JunosDevice
from lab.emulators.ssh_server import ServerThread
from tasks.pki.deploy_material import resolve_keys, with_device_certificates
from tasks.pki.store import Layout
from tasks.render import render_gateway

GW = GATEWAYS[0]
JUNOS = (Platform.JUNOS, Transport.NETCONF)


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nc_session, "TICK", 0.005)


class Setup:
    def __init__(self, root: Path, emu: ServerThread) -> None:
        self.root = root
        self.emu = emu
        _, self.compiled = write_fabric(root)
        self.pki = make_pki(root / "pki", self.compiled)
        self.known = root / "known_hosts"
        self.known.write_text(emu.known_hosts_line())

    @property
    def device(self) -> JunosDevice:
        device = self.emu.server.device
        assert isinstance(device, JunosDevice)
        return device

    def candidate(self) -> str:
        config = render_gateway(self.compiled, GW, self.pki)["config.xml"]
        text, _ = resolve_keys(with_device_certificates(JUNOS, config, self.pki, GW), self.pki)
        return text

    def driver(self) -> JunosNetconfDriver:
        return JunosNetconfDriver(DeviceTarget(GW, "127.0.0.1", self.emu.port, USER, PASSWORD,
                                               known_hosts=self.known, timeout=WAIT))

    def serial(self, previous: bool = False) -> int:
        cert = x509.load_pem_x509_certificate(Layout(self.pki).cert(GW, previous).read_bytes())
        return cert.serial_number

    def loaded_serial(self) -> int | None:
        cert = self.device.pki.state.local_certs.get(GW)
        return cert.serial_number if cert is not None else None


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    emu = start_junos(tmp_path / "emu", scale=0.05)
    try:
        yield Setup(tmp_path, emu)
    finally:
        emu.stop()


def no_key(pki: Path, *texts: str) -> None:
    pieces = key_lines(pki, GW) + key_lines(pki, GW, previous=True) \
        if Layout(pki).key(GW, previous=True).exists() else key_lines(pki, GW)
    assert pieces
    for text in texts:
        assert "PRIVATE KEY" not in text
        assert not [p for p in pieces if p in text]


def test_first_deploy_loads_everything_a_second_is_a_no_op_a_renewal_loads_the_new_one(
        setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with setup.driver() as drv:
        drv.load_candidate(setup.candidate())
        first = drv.diff()
        assert f"+local-certificate {GW}: serial {setup.serial():X}" in first.unified
        assert f"+ca-certificate {CA_PROFILE}: serial" in first.unified
        assert f"+crl {CA_PROFILE}: number" in first.unified
        assert f"+key-pair {GW}: {KEY_SHOWN}" in first.unified
        assert first.native is not None and "+local-certificate" in first.native
        drv.commit(confirm_timeout=120)
        drv.confirm()
    state = setup.device.pki.state
    assert setup.loaded_serial() == setup.serial()
    assert CA_PROFILE in state.ca_certs and CA_PROFILE in state.crls
    assert state.files == {}  # uploaded files (the key first) deleted after loading

    with setup.driver() as drv:  # the same again: nothing to do
        drv.load_candidate(setup.candidate())
        assert drv.diff().empty
        drv.discard()

    old = setup.serial()
    renew(setup.pki, setup.compiled)
    assert setup.serial() != old
    with setup.driver() as drv:
        drv.load_candidate(setup.candidate())
        change = drv.diff()
        assert f"-local-certificate {GW}: serial {old:X}" in change.unified
        assert f"+local-certificate {GW}: serial {setup.serial():X}" in change.unified
        assert "ca-certificate" not in change.unified  # same CA: not reloaded
        drv.commit(confirm_timeout=None)
    assert setup.loaded_serial() == setup.serial()
    assert setup.device.pki.state.files == {}
    logs = "\n".join(r.getMessage() for r in caplog.records)
    no_key(setup.pki, first.unified, first.native or "", change.unified, logs)


def test_bad_material_is_refused_before_the_device_is_touched(setup: Setup) -> None:
    text = setup.candidate()
    config, bundle = split_candidate(text, GW)
    assert bundle is not None
    other = Layout(setup.pki).key(GATEWAYS[1]).read_text()
    cases = {
        "does not belong to the certificate": PkiBundle(
            CA_PROFILE, GW, bundle.ca_pem, bundle.cert_pem, other, bundle.crl_pem),
        "not a PEM X.509 certificate": PkiBundle(
            CA_PROFILE, GW, bundle.ca_pem, "-----BEGIN CERTIFICATE-----\nAAAA\n"
            "-----END CERTIFICATE-----\n", bundle.key_pem, bundle.crl_pem),
        "not issued by the CA": PkiBundle(
            CA_PROFILE, GW, bundle.cert_pem, bundle.cert_pem, bundle.key_pem, bundle.crl_pem),
        "unresolved reference": PkiBundle(
            CA_PROFILE, GW, bundle.ca_pem, bundle.cert_pem, "${dcvpn-secret:pki-key/x}",
            bundle.crl_pem),
    }
    with setup.driver() as drv:
        for message, bad in cases.items():
            with pytest.raises(LoadError, match=message) as caught:
                drv.load_candidate(pack_candidate(config, bad))
            assert GW in str(caught.value) and "PRIVATE KEY" not in str(caught.value)
    device = setup.device
    assert device.store.lock_holder is None and device.pki.state.files == {}


def test_a_failed_load_rolls_the_confirmed_commit_back_and_deletes_the_files(
        setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(junos_pki.COMMANDS, "load_local",
                        junos_pki.COMMANDS["load_local"] + " bogus-word")
    commits = len(setup.device.store.history)
    with setup.driver() as drv:
        drv.load_candidate(setup.candidate())
        with pytest.raises(CommitError, match=r"certificates could not be loaded.*syntax error"
                                              r".*the confirmed commit was rolled back") as err:
            drv.commit(confirm_timeout=120)
        no_key(setup.pki, str(err.value))
        assert not drv.has_pending_commit()
    device = setup.device
    assert device.pki.state.files == {}  # the key too
    assert setup.loaded_serial() is None
    assert len(device.store.history) == commits + 2  # the commit and its rollback
    running: Any = device.store.running
    assert running.find("security/pki") is None  # the configuration is back as it was
