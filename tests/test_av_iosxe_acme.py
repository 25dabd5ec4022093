"""An ACME PKI directory (root -> intermediate(s) -> leaf, serverAuth/clientAuth only, as
pebble issues) deployed to IOS-XE over SSH: `crypto pki import` takes the CA that issued the
device certificate (the last intermediate) for the trustpoint, the rendered chain holds that
CA too (so the replace after the import changes nothing), a second deploy is a no-op, a new
leaf is imported again, and the key never shows."""

import logging
import re
from dataclasses import replace
from pathlib import Path

import pytest
from av_support import AcmePki
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from ip_support import GATEWAY, SSH_KEY, TRUSTPOINT, acme, candidate, driver, emulator

from drivers.errors import LoadError
from drivers.iosxe_pki import KEY_SHOWN, pack_candidate, split_candidate
from lab.emulators.iosxe_cli_pki import keys_of
from tasks.pki.deploy_material import with_device_certificates
from tasks.pki.errors import PkiError
from tasks.render import render_gateway

CURVE = ec.SECP384R1()  # the acme-hybrid example's key type (ecdsa-p384)


def chain_serials(config: str) -> list[int]:
    return [int(m, 16) for m in re.findall(r"^ certificate (?:ca )?(\S+)$", config, re.M)]


@pytest.mark.parametrize("depth", [1, 2])
def test_the_trustpoint_gets_the_issuing_ca_and_a_second_deploy_is_a_no_op(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, depth: int) -> None:
    compiled = acme()
    ca = AcmePki(tmp_path / "acme", depth)
    leaf = ca.issue(GATEWAY, CURVE)
    issuing = ca.intermediates[-1][0]
    pki = ca.layout.root
    rendered = render_gateway(compiled, GATEWAY, pki)["config.cli"]
    assert chain_serials(rendered) == [leaf.serial_number, issuing.serial_number]
    caplog.set_level(logging.DEBUG)
    key_pieces = [ln for ln in ca.layout.key(GATEWAY).read_text().splitlines()
                  if len(ln) >= 16 and not ln.startswith("-----")]
    with emulator(tmp_path / "state") as emu, driver(emu) as drv:
        drv.load_candidate(candidate(compiled, pki))
        first = drv.diff()
        shown = (first.native or "") + first.unified
        assert f"+ca-certificate {TRUSTPOINT}: serial {issuing.serial_number:X}" in shown
        assert f"+key-pair {TRUSTPOINT}: {KEY_SHOWN}" in shown
        drv.commit()
        running = str(emu.call(lambda d: d.config_text()))
        assert chain_serials(running) == [leaf.serial_number, issuing.serial_number]
        stored = emu.call(lambda d: keys_of(d).get(TRUSTPOINT))
        assert stored is not None

        drv.load_candidate(candidate(compiled, pki))
        again = drv.diff()
        assert (again.native or "") + again.unified == ""
        drv.commit()
        assert emu.call(lambda d: keys_of(d).get(TRUSTPOINT)) is stored  # not imported again

        renewed = ca.issue(GATEWAY, CURVE)
        drv.load_candidate(candidate(compiled, pki))
        change = drv.diff()
        assert f"+certificate {TRUSTPOINT}: serial {renewed.serial_number:X}" in change.unified
        drv.commit()
        running = str(emu.call(lambda d: d.config_text()))
        assert chain_serials(running) == [renewed.serial_number, issuing.serial_number]
    seen = shown + change.unified + (change.native or "") + caplog.text + running
    assert "PRIVATE KEY" not in seen and not [p for p in key_pieces if p in seen]


def test_the_pki_section_carries_the_issuing_ca_and_a_broken_chain_is_refused(
        tmp_path: Path) -> None:
    compiled = acme()
    ca = AcmePki(tmp_path / "acme", depth=2)
    ca.issue(GATEWAY, CURVE)
    pki = ca.layout.root
    config = render_gateway(compiled, GATEWAY, pki)["config.cli"]
    _, bundle = split_candidate(candidate(compiled, pki), GATEWAY)
    assert bundle is not None
    assert bundle.ca_pem == ca.intermediates[-1][0].public_bytes(Encoding.PEM).decode()
    # the root as the trustpoint's CA (what the import got before ACME chains): refused
    root_pem = ca.root.public_bytes(Encoding.PEM).decode()
    with pytest.raises(LoadError, match=r"was not issued by the CA in ca\.pem") as caught:
        split_candidate(pack_candidate(config, replace(bundle, ca_pem=root_pem)), GATEWAY)
    assert "PRIVATE KEY" not in str(caught.value)
    # the chain file loses the intermediate the root issued: no path to the root any more
    chain = ca.layout.chain(GATEWAY)
    pems = chain.read_text().split("-----END CERTIFICATE-----\n")
    chain.write_text(pems[0] + "-----END CERTIFICATE-----\n")
    with pytest.raises(PkiError, match="was not issued by the CA"):
        with_device_certificates(SSH_KEY, config, pki, GATEWAY)
