"""An ACME PKI directory (root -> intermediate(s) -> leaf, serverAuth/clientAuth only, as
pebble issues) deployed to JunOS: a ca-profile per CA in the chain (the intermediates' added
to the configuration, YANG-valid), each CA loaded into its profile, then the local
certificate; a second deploy is a no-op; the key never shows; bad chains are refused before
the device is touched; a fabric-CA candidate is unchanged."""

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from av_support import AcmePki
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jp_support import (
    CA_PROFILE,
    GATEWAYS,
    PASSWORD,
    USER,
    WAIT,
    key_lines,
    make_pki,
    start_junos,
    write_fabric,
)
from ncclient.transport import session as nc_session  # type: ignore[import-untyped]
from netconf_support import require_yang

from drivers.base import DeviceTarget
from drivers.errors import LoadError
from drivers.junos_netconf import JunosNetconfDriver
from drivers.junos_pki import KEY_SHOWN, PkiBundle, pack_candidate, split_candidate
from inventory.model import Platform, Transport
from lab.emulators.junos import JunosDevice
from lab.emulators.ssh_server import ServerThread
from tasks.pki.deploy_material import resolve_keys, with_device_certificates
from tasks.render import render_gateway

GW = GATEWAYS[0]
JUNOS = (Platform.JUNOS, Transport.NETCONF)


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nc_session, "TICK", 0.005)


class Setup:
    def __init__(self, root: Path, emu: ServerThread, depth: int) -> None:
        self.emu = emu
        _, self.compiled = write_fabric(root)
        self.pki_dir = root / "acme"
        self.acme = AcmePki(self.pki_dir, depth)
        for gateway in GATEWAYS:
            self.acme.issue(gateway)
        self.known = root / "known_hosts"
        self.known.write_text(emu.known_hosts_line())

    @property
    def device(self) -> JunosDevice:
        device = self.emu.server.device
        assert isinstance(device, JunosDevice)
        return device

    def unresolved(self) -> str:
        config = render_gateway(self.compiled, GW, self.pki_dir)["config.xml"]
        return with_device_certificates(JUNOS, config, self.pki_dir, GW)

    def candidate(self) -> str:
        text, _ = resolve_keys(self.unresolved(), self.pki_dir)
        return text

    def driver(self) -> JunosNetconfDriver:
        return JunosNetconfDriver(DeviceTarget(GW, "127.0.0.1", self.emu.port, USER, PASSWORD,
                                               known_hosts=self.known, timeout=WAIT))


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[ServerThread]:
    server = start_junos(tmp_path / "emu", scale=0.05)
    try:
        yield server
    finally:
        server.stop()


def no_key(pki: Path, *texts: str) -> None:
    pieces = key_lines(pki, GW)
    assert pieces
    for text in texts:
        assert "PRIVATE KEY" not in text
        assert not [p for p in pieces if p in text]


@pytest.mark.parametrize("depth", [1, 2])
def test_each_ca_goes_into_its_own_profile_then_the_leaf_and_a_second_deploy_is_a_no_op(
        tmp_path: Path, emu: ServerThread, depth: int,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    setup = Setup(tmp_path, emu, depth)
    profiles = [f"{CA_PROFILE}-{i}" for i in range(1, depth + 1)]
    with setup.driver() as drv:
        drv.load_candidate(setup.candidate())
        first = drv.diff()
        for profile in [CA_PROFILE, *profiles]:
            assert f"+ca-certificate {profile}: serial" in first.unified
            assert f"<name>{profile}</name>" in first.unified  # the ca-profile is configured
        assert f"+key-pair {GW}: {KEY_SHOWN}" in first.unified
        assert f"crl {CA_PROFILE}:" not in first.unified  # ACME: no CRL to load
        drv.commit(confirm_timeout=120)
        drv.confirm()
    state = setup.device.pki.state
    assert state.ca_certs[CA_PROFILE] == setup.acme.root
    # root side first: DCVPN-CA-1 holds the CA the root issued, the last one the leaf's issuer
    assert [state.ca_certs[p] for p in profiles] == [c for c, _ in setup.acme.intermediates]
    leaf = x509.load_pem_x509_certificate(setup.acme.layout.cert(GW).read_bytes())
    assert state.local_certs[GW] == leaf
    assert state.crls == {} and state.files == {}

    with setup.driver() as drv:
        drv.load_candidate(setup.candidate())
        assert drv.diff().empty
        drv.discard()

    renewed = setup.acme.issue(GW)  # a new leaf from the same chain
    with setup.driver() as drv:
        drv.load_candidate(setup.candidate())
        change = drv.diff()
        assert f"+local-certificate {GW}: serial {renewed.serial_number:X}" in change.unified
        assert "ca-certificate" not in change.unified
        drv.commit(confirm_timeout=None)
    assert setup.device.pki.state.local_certs[GW] == renewed
    logs = "\n".join(r.getMessage() for r in caplog.records)
    no_key(setup.pki_dir, first.unified, first.native or "", change.unified, logs)


def test_the_intermediate_profiles_exist_only_with_an_acme_chain(tmp_path: Path) -> None:
    setup_dir = tmp_path / "fabric"
    setup_dir.mkdir()
    _, compiled = write_fabric(setup_dir)
    fabric_pki = make_pki(tmp_path / "pki", compiled)
    config = render_gateway(compiled, GW, fabric_pki)["config.xml"]
    packed = with_device_certificates(JUNOS, config, fabric_pki, GW)
    assert packed.startswith(config) and f"{CA_PROFILE}-1" not in packed
    assert "chain" not in packed.splitlines()[len(config.splitlines())]  # the header

    acme = AcmePki(tmp_path / "acme", depth=0)  # an ACME CA issuing from its root
    acme.issue(GW)
    packed = with_device_certificates(JUNOS, config, acme.layout.root, GW)
    assert packed.startswith(config) and f"{CA_PROFILE}-1" not in packed


@pytest.fixture(scope="module")
def validate() -> Callable[[str], tuple[str, ...]]:
    require_yang()
    from lab.yang.junos import validate_junos
    return lambda xml: validate_junos(xml).errors


def test_the_configuration_with_chain_profiles_is_yang_valid(
        tmp_path: Path, validate: Callable[[str], tuple[str, ...]]) -> None:
    _, compiled = write_fabric(tmp_path)
    acme = AcmePki(tmp_path / "acme", depth=2)
    acme.issue(GW)
    config = render_gateway(compiled, GW, acme.layout.root)["config.xml"]
    packed = with_device_certificates(JUNOS, config, acme.layout.root, GW)
    xml, bundle = split_candidate(resolve_keys(packed, acme.layout.root)[0], GW)
    assert bundle is not None and [p for p, _ in bundle.chain] == [f"{CA_PROFILE}-1",
                                                                   f"{CA_PROFILE}-2"]
    assert xml.count("<ca-profile>\n") == 3  # root and two intermediates
    assert validate(xml) == ()
    assert validate(xml.replace(f"<name>{CA_PROFILE}-2</name>", "<nme>x</nme>")) != ()


def test_a_broken_chain_is_refused_before_the_device_is_touched(
        tmp_path: Path, emu: ServerThread) -> None:
    setup = Setup(tmp_path, emu, depth=2)
    config, bundle = split_candidate(setup.candidate(), GW)
    assert bundle is not None
    (p1, mid1), (p2, mid2) = bundle.chain
    other = AcmePki(tmp_path / "other", depth=1)
    foreign = other.issue(GW).public_bytes(serialization.Encoding.PEM).decode()
    foreign_key = other.layout.key(GW).read_text()  # its own key: only the issuer is wrong
    cases: dict[str, Any] = {
        # the intermediates swapped: DCVPN-CA-1 was not issued by the root
        f"CA certificate of {p1} .* was not issued by": ((p1, mid2), (p2, mid1)),
        # a leaf of another ACME CA
        "not issued by the CA in ca.pem .* through chain.pem": None,
    }
    with setup.driver() as drv:
        for message, chain in cases.items():
            bad = (PkiBundle(CA_PROFILE, GW, bundle.ca_pem, bundle.cert_pem, bundle.key_pem,
                             "", chain) if chain is not None else
                   PkiBundle(CA_PROFILE, GW, bundle.ca_pem, foreign, foreign_key, "",
                             bundle.chain))
            with pytest.raises(LoadError, match=message) as caught:
                drv.load_candidate(pack_candidate(config, bad))
            assert GW in str(caught.value) and "PRIVATE KEY" not in str(caught.value)
        header_short = pack_candidate(config, bundle).replace(f",{p2}", "")
        with pytest.raises(LoadError, match=r"chain\.pem holds 2 certificates for 1"):
            drv.load_candidate(header_short)
    assert setup.device.pki.state.files == {} and setup.device.pki.state.ca_certs == {}
