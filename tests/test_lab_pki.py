"""The 3-site lab with certificates from a fabric CA made by `dcvpn pki`, and revocation.

`dcvpn pki init/issue` make an encrypted PKI in a temporary folder; `dcvpn lab up --pki-dir`
runs lab3 with it and validates green. Then `dcvpn pki revoke nyc1-gw1` and `dcvpn lab
reload-creds`: nyc1's peers refuse its certificate, its tunnels fail validation by name, and
the ams1-lon1 tunnel stays green. `down` removes the lab and leaves the PKI alone.
Also, without root: the option checks and the restart plan.
"""

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import EXAMPLES
from cryptography import x509
from lab_support import Footprint, Lab, cli, failed, footprint, lab, lab_machine, leftovers
from pki_support import snapshot

from inventory.loader import load_fabric
from inventory.topology import compile_fabric
from lab import requirements
from lab.creds import restart_plan
from lab.state import LabState
from lab.up import swanctl_env
from pipelines import pki_cmd
from tasks.pki.keys import PASSPHRASE_ENV
from tasks.validate_checks import Kind
from tasks.validate_strongswan import LocalGateway

LAB3 = str(EXAMPLES / "lab3.yaml")
GATEWAYS = ("ams1-gw1", "lon1-gw1", "nyc1-gw1")
REVOKED = "nyc1-gw1"
PASS = "lab-pki-test-passphrase"
TUNNEL_KINDS = frozenset({Kind.IKE, Kind.CHILD, Kind.BGP})
# every check that a refused nyc1 must fail, seen from both ends of its two tunnels
REFUSED = ({f"{k} {gw} {t}" for k in ("ike", "child")
            for gw, t in (("ams1-gw1", "ams1-nyc1-p0"), ("nyc1-gw1", "ams1-nyc1-p0"),
                          ("lon1-gw1", "lon1-nyc1-p0"), ("nyc1-gw1", "lon1-nyc1-p0"))}
           | {"bgp nyc1-gw1 169.254.0.8", "bgp nyc1-gw1 169.254.0.16",
              "bgp ams1-gw1 169.254.0.9", "bgp lon1-gw1 169.254.0.17"})
GREEN = {"ike ams1-gw1 ams1-lon1-p0", "ike lon1-gw1 ams1-lon1-p0",
         "child ams1-gw1 ams1-lon1-p0", "child lon1-gw1 ams1-lon1-p0",
         "bgp ams1-gw1 169.254.0.1", "bgp lon1-gw1 169.254.0.0"}


def pki(capsys: pytest.CaptureFixture[str] | None, *argv: str) -> tuple[int, str, str]:
    return cli(capsys, pki_cmd.main, "pki", *argv)


@dataclass
class PkiLab:
    lab: Lab
    pki_dir: Path
    before: dict[str, tuple[bytes, int, int]]  # the PKI's files before up


@pytest.fixture(scope="module")
def lab3() -> Iterator[PkiLab]:
    with lab_machine() as root, pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSPHRASE_ENV, PASS)
        pki_dir = root / "pki"
        for sub in ("init", "issue"):
            code, _, err = pki(None, sub, "-f", LAB3, "--pki-dir", str(pki_dir))
            assert code == 0, err
        before = snapshot(pki_dir)
        lab_dir = root / "lab3"
        try:
            code, out, err = lab(None, "up", "-f", LAB3, "--lab-dir", str(lab_dir),
                                 "--pki-dir", str(pki_dir), "--format", "json")
            assert code == 0, err
            yield PkiLab(Lab(LAB3, lab_dir, json.loads(out)), pki_dir, before)
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


def swanctl(gateway: LocalGateway, *argv: str) -> str:
    done = subprocess.run(["swanctl", *argv], cwd=gateway.folder, env=swanctl_env(gateway),
                          capture_output=True, text=True, timeout=10, check=True)
    return done.stdout


# --- without root -------------------------------------------------------------------------------

def test_restart_plan_terminates_from_the_responder() -> None:
    # the initiator (lower site id) re-initiates through its close_action
    compiled = compile_fabric(load_fabric(LAB3).fabric)
    plan = [(t.name, end) for t, end in restart_plan(compiled, GATEWAYS, [REVOKED])]
    assert plan == [("ams1-nyc1-p0", "nyc1-gw1"), ("lon1-nyc1-p0", "nyc1-gw1")]
    both = [(t.name, end) for t, end in restart_plan(compiled, GATEWAYS, ["ams1-gw1", REVOKED])]
    assert both == [("ams1-lon1-p0", "lon1-gw1"), ("ams1-nyc1-p0", "nyc1-gw1"),
                    ("lon1-nyc1-p0", "nyc1-gw1")]
    assert restart_plan(compiled, ["ams1-gw1", "lon1-gw1"], [REVOKED]) == []
    assert restart_plan(compiled, GATEWAYS, []) == []


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requirements, "is_root", lambda: True)
    monkeypatch.setattr(requirements, "missing", lambda: [])
    for name in list(os.environ):
        if name.startswith("DCVPN_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("as_root")
def test_up_refuses_a_pki_dir_without_every_certificate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki_dir = tmp_path / "pki"
    assert pki(capsys, "init", "-f", LAB3, "--pki-dir", str(pki_dir))[0] == 0
    assert pki(capsys, "issue", "-f", LAB3, "--pki-dir", str(pki_dir), "--site", "ams1")[0] == 0
    lab_dir = tmp_path / "lab"
    code, _, err = lab(capsys, "up", "-f", LAB3, "--lab-dir", str(lab_dir),
                       "--pki-dir", str(pki_dir))
    assert code == 2
    assert "--pki-dir" in err and "gateway lon1-gw1 has no certificate" in err
    assert not lab_dir.exists()


@pytest.mark.usefixtures("as_root")
def test_up_refuses_an_encrypted_pki_without_its_passphrase(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    pki_dir = tmp_path / "pki"
    monkeypatch.setenv(PASSPHRASE_ENV, PASS)
    for sub in ("init", "issue"):
        assert pki(capsys, sub, "-f", LAB3, "--pki-dir", str(pki_dir))[0] == 0
    monkeypatch.delenv(PASSPHRASE_ENV)
    lab_dir = tmp_path / "lab"
    code, _, err = lab(capsys, "up", "-f", LAB3, "--lab-dir", str(lab_dir),
                       "--pki-dir", str(pki_dir))
    assert code == 2 and PASSPHRASE_ENV in err and PASS not in err
    assert not lab_dir.exists()


@pytest.mark.usefixtures("as_root")
def test_reload_creds_without_a_lab_exits_1(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = lab(capsys, "reload-creds", "-f", LAB3, "--lab-dir", str(tmp_path / "no"),
                         "--format", "json")
    assert code == 1 and "no lab in" in err and json.loads(out)["ok"] is False


@pytest.mark.usefixtures("as_root")
def test_reload_creds_of_a_psk_lab_exits_2(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    lab_dir = tmp_path / "psk"
    lab_dir.mkdir()
    LabState.create(lab_dir, "lab3", LAB3, False, list(GATEWAYS), [])  # as `up` of a PSK lab
    before = (lab_dir / "state.json").read_bytes()
    code, _, err = lab(capsys, "reload-creds", "-f", LAB3, "--lab-dir", str(lab_dir))
    assert code == 2 and "pre-shared keys" in err
    assert (lab_dir / "state.json").read_bytes() == before


# --- the 3-site lab with the fabric CA ----------------------------------------------------------

@pytest.mark.lab
def test_up_delivers_the_given_pki(lab3: PkiLab) -> None:
    state = lab3.lab.state()
    assert lab3.lab.up["ok"] is True
    assert state.pki_dir == lab3.pki_dir
    assert not (lab3.lab.lab_dir / "pki").exists()  # no throwaway CA
    assert str(lab3.pki_dir) not in {str(p) for p in state.dirs + state.files}
    for gw in GATEWAYS:
        folder = lab3.lab.lab_dir / gw
        assert (folder / "x509" / f"{gw}.pem").read_bytes() == (
            lab3.pki_dir / "certs" / f"{gw}.pem").read_bytes()
        assert (folder / "x509ca" / "ca.pem").read_bytes() == (
            lab3.pki_dir / "ca.pem").read_bytes()
        assert (folder / "x509crl" / "crl.pem").read_bytes() == (
            lab3.pki_dir / "crl.pem").read_bytes()
        key = folder / "private" / f"{gw}.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        # charon gets the key decrypted (the PKI's copy is encrypted with the passphrase)
        assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        assert b"ENCRYPTED" in (lab3.pki_dir / "private" / f"{gw}.key").read_bytes()


@pytest.mark.lab
def test_charon_loads_the_revocation_plugin_and_the_crl(lab3: PkiLab) -> None:
    ca = x509.load_pem_x509_certificate((lab3.pki_dir / "ca.pem").read_bytes())
    for gw in GATEWAYS:
        conf = (lab3.lab.lab_dir / gw / "strongswan.conf").read_text()
        loads = [line.split("=", 1)[1].split() for line in conf.splitlines()
                 if line.strip().startswith("load =")]
        assert len(loads) == 2 and all("revocation" in plugins for plugins in loads)
        crls = swanctl(LocalGateway.in_lab(lab3.lab.lab_dir, gw), "--list-certs",
                       "--type", "x509crl")
        assert crls.count("issuer:") == 1
        issuer = ", ".join(rdn.rfc4514_string() for rdn in ca.subject.rdns)  # in DER order
        assert f'issuer:   "{issuer}"' in crls
        assert "0 revoked certificates" in crls


@pytest.mark.lab
def test_validate_is_green(lab3: PkiLab, capsys: pytest.CaptureFixture[str]) -> None:
    code, data = lab3.lab.validate(capsys)
    assert code == 0 and data["ok"], failed(data["checks"])


@pytest.mark.lab
def test_revoked_gateway_is_refused_and_the_others_stay_up(
        lab3: PkiLab, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = pki(capsys, "revoke", REVOKED, "-f", LAB3, "--pki-dir", str(lab3.pki_dir),
                         "--format", "json")
    assert code == 0, err
    serial = json.loads(out)["revoked"][0]
    code, out, err = lab(capsys, "reload-creds", "-f", LAB3,
                         "--lab-dir", str(lab3.lab.lab_dir), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["revoked"] == {REVOKED: serial}
    assert data["restarted"] == ["ams1-nyc1-p0", "lon1-nyc1-p0"] and data["absent"] == []
    for gw in GATEWAYS:  # the new CRL, in every gateway's folder and in its charon
        assert (lab3.lab.lab_dir / gw / "x509crl" / "crl.pem").read_bytes() == (
            lab3.pki_dir / "crl.pem").read_bytes()
        crls = swanctl(LocalGateway.in_lab(lab3.lab.lab_dir, gw), "--list-certs",
                       "--type", "x509crl")
        assert crls.count("issuer:") == 1 and "1 revoked certificate:" in crls

    lab3.lab.wait(lambda rs: failed(rs) >= REFUSED, TUNNEL_KINDS)
    code, result = lab3.lab.validate(capsys)
    assert code == 1
    bad = failed(result["checks"])
    assert bad >= REFUSED
    assert not GREEN & bad and "ping ams1->lon1" not in bad
    assert all("nyc1" in c["sites"] for c in result["checks"] if c["status"] == "fail")
    # refused by its peers for the revocation, not for anything else
    for peer in ("ams1-gw1", "lon1-gw1"):
        log = (lab3.lab.lab_dir / peer / "charon.log").read_text()
        assert "certificate was revoked" in log
        assert f"no trusted ECDSA public key found for '{REVOKED}.lab3.dcvpn'" in log
    # nyc1 (the highest site id) only responds, so it is its peers that initiate, read its
    # revoked certificate and drop the SA: their logs above are the evidence


@pytest.mark.lab
def test_reload_creds_again_finds_no_sa_to_restart(lab3: PkiLab,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = lab(capsys, "reload-creds", "-f", LAB3,
                         "--lab-dir", str(lab3.lab.lab_dir), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["restarted"] == [] and data["absent"] == ["ams1-nyc1-p0", "lon1-nyc1-p0"]
    assert not GREEN & failed(lab3.lab.checks(TUNNEL_KINDS))


@pytest.fixture(scope="module")
def lab3_footprint(lab3: PkiLab) -> Footprint:
    return footprint(lab3.lab.lab_dir)


@pytest.mark.lab
def test_down_removes_the_lab_and_leaves_the_pki(lab3: PkiLab, lab3_footprint: Footprint,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = lab(capsys, "down", "--lab-dir", str(lab3.lab.lab_dir))
    assert code == 0, err
    assert leftovers(lab3_footprint) == []
    after = snapshot(lab3.pki_dir)
    assert set(after) == set(lab3.before)
    changed = {name for name in after if after[name] != lab3.before[name]}
    assert changed == {"crl.pem"}  # by `pki revoke`; the lab only read the PKI
