"""`dcvpn deploy --pki-dir` to emulated JunOS gateways (found through a lab's devices.json,
as `--lab --lab-dir` finds them): the first deploy commits the configuration and loads CA,
CRL and each gateway's certificate and key over NETCONF; a second deploy changes nothing; after
`pki renew` the next deploy loads the new certificates; a broken PKI directory is bad input
(exit 2) before any device; no key in the report, the output or the logs."""

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from jp_support import (
    CA_PROFILE,
    FABRIC,
    GATEWAYS,
    PASSWORD,
    USER,
    key_lines,
    make_pki,
    renew,
    start_junos,
    write_fabric,
)
from ncclient.transport import session as nc_session  # type: ignore[import-untyped]

from inventory.topology import CompiledFabric
from lab.emulators.junos import JunosDevice
from lab.emulators.peers import PeerRegistry
from lab.emulators.ssh_server import ServerThread
from pipelines import deploy_cmd
from pipelines.exit_codes import Exit
from tasks.lab_devices import write_lab_devices
from tasks.pki.deploy_material import not_installed
from tasks.pki.store import Layout


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nc_session, "TICK", 0.005)


class Lab:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.fabric, self.compiled = write_fabric(root)
        self.pki = make_pki(root / "pki", self.compiled)
        self.lab_dir = root / "lab"
        self.lab_dir.mkdir()
        self.report = root / "report.json"
        registry = PeerRegistry()
        self.threads: dict[str, ServerThread] = {}
        for name in GATEWAYS:
            self.threads[name] = start_junos(root / "emu" / name, name, 1.0,
                                             peers=registry, gateway=name)
        known = self.lab_dir / "known_hosts"
        known.write_text("".join(t.known_hosts_line() for t in self.threads.values()))
        write_lab_devices(self.lab_dir, FABRIC, {
            name: {"platform": "junos", "transport": "netconf", "host": "127.0.0.1",
                   "port": t.port, "username": USER, "password": PASSWORD,
                   "known_hosts": str(known)} for name, t in self.threads.items()})

    def device(self, name: str) -> JunosDevice:
        device = self.threads[name].server.device
        assert isinstance(device, JunosDevice)
        return device

    def deploy(self, *extra: str) -> tuple[int, dict[str, Any]]:
        code = deploy_cmd.main(["deploy", "-f", str(self.fabric), "--lab", "--lab-dir",
                                str(self.lab_dir), "--report", str(self.report), "--format",
                                "json", "--interval", "0.3", "--settle", "30",
                                "--state", str(self.root / "state.json"), *extra])
        return code, json.loads(self.report.read_text())

    def serial(self, name: str) -> int:
        return x509.load_pem_x509_certificate(Layout(self.pki).cert(name).read_bytes()
                                              ).serial_number

    def loaded(self, name: str) -> int | None:
        cert = self.device(name).pki.state.local_certs.get(name)
        return cert.serial_number if cert is not None else None

    def stop(self) -> None:
        for thread in self.threads.values():
            thread.stop()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    made = Lab(tmp_path)
    try:
        yield made
    finally:
        made.stop()


def all_keys(pki: Path, compiled: CompiledFabric) -> list[str]:
    out = []
    for name in GATEWAYS:
        out += key_lines(pki, name)
        if Layout(pki).key(name, previous=True).exists():
            out += key_lines(pki, name, previous=True)
    return out


def test_deploy_loads_certificates_then_is_a_no_op_then_loads_a_renewal(
        lab: Lab, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pki = str(lab.pki)
    code, report = lab.deploy("--pki-dir", pki)
    out = capsys.readouterr()
    assert code == Exit.OK, (report["errors"], out.err)
    assert "not installed" not in out.err  # no "load them by hand" note for JunOS any more
    assert not_installed(lab.compiled, list(GATEWAYS)) == []
    assert {n: d["outcome"] for n, d in report["devices"].items()} == {
        gw: "confirmed" for gw in GATEWAYS}
    for name in GATEWAYS:
        state = lab.device(name).pki.state
        assert lab.loaded(name) == lab.serial(name)
        assert CA_PROFILE in state.ca_certs and CA_PROFILE in state.crls
        assert state.files == {}
    texts = [lab.report.read_text(), out.out, out.err]

    code, report = lab.deploy("--pki-dir", pki)
    out = capsys.readouterr()
    assert code == Exit.OK and report["outcome"] == "no-changes", report["errors"]
    texts += [out.out, out.err]

    before = {name: lab.serial(name) for name in GATEWAYS}
    renew(lab.pki, lab.compiled)
    code, report = lab.deploy("--pki-dir", pki)
    out = capsys.readouterr()
    assert code == Exit.OK, report["errors"]
    for name in GATEWAYS:
        assert lab.serial(name) != before[name]
        assert lab.loaded(name) == lab.serial(name)
    shown = json.dumps(report)
    assert f"-local-certificate {GATEWAYS[0]}: serial {before[GATEWAYS[0]]:X}" in shown
    texts += [lab.report.read_text(), out.out, out.err,
              "\n".join(r.getMessage() for r in caplog.records)]
    pieces = all_keys(lab.pki, lab.compiled)
    assert pieces
    for text in texts:
        assert "PRIVATE KEY" not in text
        assert not [p for p in pieces if p in text]


def test_a_corrupt_certificate_is_bad_input_before_any_device(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    path = Layout(lab.pki).cert(GATEWAYS[1])
    path.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    code, report = lab.deploy("--pki-dir", str(lab.pki))
    err = capsys.readouterr().err
    assert code == Exit.BAD_INPUT
    assert str(path) in err + json.dumps(report)
    assert "Traceback" not in err
    for name in GATEWAYS:
        assert len(lab.device(name).store.history) == 1  # the factory commit only
        assert lab.loaded(name) is None


def test_a_missing_key_is_bad_input_before_any_device(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    path = Layout(lab.pki).key(GATEWAYS[0])
    path.unlink()
    code, report = lab.deploy("--pki-dir", str(lab.pki))
    err = capsys.readouterr().err
    assert code == Exit.BAD_INPUT
    assert str(path) in err + json.dumps(report)
    for name in GATEWAYS:
        assert len(lab.device(name).store.history) == 1
