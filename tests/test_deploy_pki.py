"""Certificates in the deploy flow (`dcvpn diff/deploy --pki-dir`, tasks.pki.deploy_material).

In-process, no root: two strongSwan gateways reached over SSH (a local test SSH server whose
"host" is a temp folder, fake reload commands) get their certificate, key, CA and CRL through
tasks.deploy's diff_device / commit_device: installed with their modes (key 0600), shown in
the diff by subject/serial/validity, the key never (diffs, results, logs, errors); a renewed
certificate is a change the next deploy installs, a rollback puts the previous pair back; a
candidate without certificates leaves them alone. IOS-XE over SSH (the CLI emulator): the
certificate chain of config.cli is deployed, a renewal shows in its diff.

Lab-marked: a 2-site strongSwan lab with certificate auth (fabric "cdpki", gateways cd1-gw1 and
cd2-gw1): `dcvpn deploy --lab` installs the lab's certificates, `dcvpn pki renew` then
`dcvpn diff --lab --pki-dir` shows the change without key material, `dcvpn deploy --lab
--pki-dir` installs the new certificate while the tunnel stays up, and validate passes.
"""

import json
import logging
import os
import shlex
import signal
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import require_binary
from cryptography import x509
from nornir.core import Nornir
from nornir.core.inventory import ConnectionOptions
from ssh_exec_support import PASSWORD, USER, ExecServer

from drivers.nornir_connection import CONNECTION
from drivers.strongswan_creds import KEY_SHOWN
from inventory.loader import load_fabric
from inventory.topology import CompiledFabric, compile_fabric
from pipelines.fleet import make_nornir
from tasks.deploy import commit_device, confirm_device, diff_device, rollback_device
from tasks.lab_records import STATE_FILE
from tasks.pki.ca import init_ca
from tasks.pki.deploy_material import (
    check_pki_dir,
    choose_pki_dir,
    key_ref,
    not_installed,
    resolve_keys,
    secret_pieces,
    strongswan_credentials,
)
from tasks.pki.errors import PkiError
from tasks.pki.issue import issue_certs, renew_certs
from tasks.pki.keys import Passphrase
from tasks.pki.store import Layout

GATEWAYS = ("cdu1-gw1", "cdu2-gw1")


def fabric_data(name: str = "cdunit", platform: str = "strongswan", transport: str = "ssh",
                auth: str = "certificate", prefix: str = "cdu") -> dict[str, Any]:
    sites = [{"name": f"{prefix}{i}", "id": i, "region": "eu", "asn": 65200 + i,
              "prefixes": [f"10.{i}.0.0/24"],
              "gateways": [{"name": f"{prefix}{i}-gw1", "platform": platform,
                            "transport": transport, "host": f"{prefix}{i}.mgmt.example.net",
                            "public_ip": f"198.51.100.{i}"}]}
             for i in (1, 2)]
    spec: dict[str, Any] = {"method": auth}
    if auth == "certificate":
        spec["key_type"] = "ecdsa-p256"
    return {"fabric": {"name": name, "topology": "full_mesh", "tunnel_pool": "169.254.0.0/16",
                       "crypto": {"profile": "strict"}, "auth": spec,
                       "bgp": {"mode": "ebgp"}, "mtu": {"path_mtu": 1500}},
            "sites": sites}


def write_fabric(folder: Path, data: dict[str, Any]) -> tuple[Path, CompiledFabric]:
    path = folder / f"{data['fabric']['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, compile_fabric(load_fabric(path).fabric)


def make_pki(root: Path, compiled: CompiledFabric, now: datetime) -> Path:
    fabric = compiled.fabric
    init_ca(Layout(root), fabric.fabric.name, fabric.fabric.auth.key_type, Passphrase(), now,
            days=60, crl_days=30)
    issue_certs(Layout(root), fabric, [gw for _, gw in compiled.gateways()], Passphrase(), now,
                days=20)
    return root


def serial_of(pem: bytes | str) -> str:
    data = pem.encode() if isinstance(pem, str) else pem
    return f"{x509.load_pem_x509_certificate(data).serial_number:X}"


def key_lines(pki: Path, gateway: str, previous: bool = False) -> list[str]:
    """Base64 body lines of a gateway's key file as the PKI keeps it (unencrypted here)."""
    text = Layout(pki).key(gateway, previous).read_text()
    return [ln for ln in text.splitlines() if ln and not ln.startswith("-----")]


# --- PKI choice and key resolution -------------------------------------------------------------

def test_the_pki_dir_is_the_given_one_else_the_labs_for_certificate_fabrics(
        tmp_path: Path) -> None:
    _, cert = write_fabric(tmp_path, fabric_data())
    _, psk = write_fabric(tmp_path, fabric_data("cdpsk", auth="psk"))
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    assert choose_pki_dir(cert, None, lab_dir).path is None  # no lab state: nothing to take
    (lab_dir / STATE_FILE).write_text(json.dumps({"fabric": "cdunit", "gateways": [],
                                                  "dirs": [str(lab_dir / "pki")]}))
    assert choose_pki_dir(cert, None, lab_dir) == choose_pki_dir(cert, None, lab_dir)
    assert choose_pki_dir(cert, None, lab_dir).path == lab_dir / "pki"  # the throwaway CA
    assert choose_pki_dir(cert, None, lab_dir).source == "lab"
    given = choose_pki_dir(cert, str(tmp_path / "mine"), lab_dir)
    assert (given.path, given.source) == (tmp_path / "mine", "--pki-dir")
    assert choose_pki_dir(cert, None, None).path is None  # not a lab: only when given
    assert choose_pki_dir(psk, str(tmp_path / "mine"), lab_dir).path is None  # PSK fabric
    (lab_dir / STATE_FILE).write_text("{not json")
    with pytest.raises(PkiError, match="unreadable lab state"):
        choose_pki_dir(cert, None, lab_dir)


def test_the_key_is_a_reference_until_resolved_and_every_piece_is_scrubbed(
        tmp_path: Path) -> None:
    _, compiled = write_fabric(tmp_path, fabric_data())
    pki = make_pki(tmp_path / "pki", compiled, datetime.now(UTC))
    files = strongswan_credentials(pki, GATEWAYS[0])
    assert files["key.pem"] == key_ref(GATEWAYS[0]) == "${dcvpn-secret:pki-key/cdu1-gw1}"
    assert "PRIVATE KEY" not in "".join(files.values())
    assert serial_of(files["cert.pem"]) == serial_of(Layout(pki).cert(GATEWAYS[0]).read_bytes())
    text, pieces = resolve_keys(f"a\n{key_ref(GATEWAYS[0])}\nb\n", pki)
    assert "-----BEGIN PRIVATE KEY-----" in text and key_ref(GATEWAYS[0]) not in text
    assert all(line in pieces for line in key_lines(pki, GATEWAYS[0]) if len(line) >= 16)
    assert pieces == secret_pieces(text.split("\n", 1)[1].rsplit("\nb", 1)[0])
    with pytest.raises(PkiError, match="no PKI directory"):
        resolve_keys(key_ref(GATEWAYS[0]), None)
    with pytest.raises(PkiError, match="no certificate"):
        resolve_keys(key_ref("cdu9-gw1"), pki)


def test_the_labs_pki_covers_its_own_gateways_a_given_one_every_selected(
        tmp_path: Path) -> None:
    _, compiled = write_fabric(tmp_path, fabric_data())
    pki = make_pki(tmp_path / "pki", compiled, datetime.now(UTC))
    Layout(pki).cert(GATEWAYS[1]).unlink()  # as a lab PKI has no certificate for an emulator
    with pytest.raises(PkiError, match="cdu2-gw1 has no certificate"):
        check_pki_dir(compiled, pki, list(GATEWAYS))  # --pki-dir: exit 2 before any device
    check_pki_dir(compiled, pki, list(GATEWAYS), strict=False)  # the lab's: what it covers
    assert not_installed(compiled, list(GATEWAYS)) == []  # strongSwan: all installed
    _, iosxe = write_fabric(tmp_path, fabric_data("cdx", platform="iosxe",
                                                  transport="netconf"))
    assert [ln.split(":")[0] for ln in not_installed(iosxe, list(GATEWAYS))] == list(GATEWAYS)
    assert "private key are not installed" in not_installed(iosxe, [GATEWAYS[0]])[0]
    _, iosxe_ssh = write_fabric(tmp_path, fabric_data("cdy", platform="iosxe"))
    assert not_installed(iosxe_ssh, list(GATEWAYS)) == []  # ssh: crypto pki import


# --- strongSwan over SSH, through the deploy tasks ---------------------------------------------

@dataclass
class Hosts:
    nr: Nornir
    root: Path
    pki: Path
    fabric: Path
    compiled: CompiledFabric

    def swanctl_dir(self, gateway: str) -> Path:
        return self.root / gateway / "etc" / "swanctl"

    def installed(self, gateway: str) -> dict[str, tuple[bytes, int]]:
        folder = self.swanctl_dir(gateway)
        return {str(p.relative_to(folder)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
                for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".conf"}

    def reloads(self, gateway: str) -> int:
        log = self.root / gateway / "reloads.log"
        return len(log.read_text().splitlines()) if log.exists() else 0

    def run(self, task: Any, **kwargs: Any) -> dict[str, Any]:
        results = self.nr.run(task=task, on_failed=True, **kwargs)
        out = {}
        for name, multi in results.items():
            result = multi[0]
            assert not result.failed, f"{name}: {result.exception}"
            out[name] = result.result
        return out


def host_options(root: Path, gateway: str) -> dict[str, str]:
    base = root / gateway
    q = shlex.quote
    log = q(str(base / "reloads.log"))
    # the swanctl step records what it would load: charon reads x509/, private/, ... from here
    swanctl = (f"ls -R {q(str(base / 'etc' / 'swanctl'))} > /dev/null && echo load-all >> "
               f"{log}")
    return {"path:swanctl.conf": str(base / "etc" / "swanctl" / "swanctl.conf"),
            "path:swanctl-secrets.conf": str(base / "etc" / "swanctl" / "swanctl-secrets.conf"),
            "path:frr.conf": str(base / "etc" / "frr" / "frr.conf"),
            "path:interfaces.sh": str(base / "etc" / "dcvpn" / "interfaces.sh"),
            "state_dir": str(base / "var" / "lib" / "dcvpn"),
            "reload:interfaces": "true", "reload:swanctl": swanctl, "reload:frr": "true"}


def kill_timer(state: Path) -> None:
    """Cleanup: end a rollback timer a test left running (only that timer's process)."""
    path = state / "timer.state"
    if not path.exists():
        return
    fields = dict(ln.split("=", 1) for ln in path.read_text().splitlines() if "=" in ln)
    try:
        cmdline = Path(f"/proc/{fields['pid']}/cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, KeyError):
        return
    if f"{state}/timer.sh {fields.get('token')} ".encode() in cmdline:
        os.killpg(int(fields["pid"]), signal.SIGKILL)


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    for program in ("flock", "setsid", "timeout", "sha256sum"):
        require_binary(program)
    fabric, compiled = write_fabric(tmp_path, fabric_data())
    pki = make_pki(tmp_path / "pki", compiled, datetime.now(UTC))
    with ExecServer(tmp_path) as server:
        known = server.known_hosts(tmp_path / "known_hosts")
        nr = make_nornir(str(fabric), compiled)
        for name, host in nr.inventory.hosts.items():
            host.hostname, host.port = "127.0.0.1", server.port
            host.username, host.password = USER, PASSWORD
            host.connection_options[CONNECTION] = ConnectionOptions(extras={
                "transport": "ssh", "known_hosts": str(known), "timeout": 10,
                **host_options(tmp_path, name)})
        h = Hosts(nr, tmp_path, pki, fabric, compiled)
        try:
            yield h
        finally:
            nr.close_connections(on_failed=True)
            for gw in GATEWAYS:
                kill_timer(tmp_path / gw / "var" / "lib" / "dcvpn")


def no_key_anywhere(pki: Path, texts: list[str], previous: bool = False) -> None:
    pieces = [ln for gw in GATEWAYS for ln in key_lines(pki, gw) if len(ln) >= 16]
    if previous:
        pieces += [ln for gw in GATEWAYS for ln in key_lines(pki, gw, True) if len(ln) >= 16]
    assert pieces
    for text in texts:
        assert "PRIVATE KEY" not in text
        assert not [p for p in pieces if p in text]


def test_deploy_installs_certificates_and_a_renewal_is_the_next_change(
        hosts: Hosts, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pki = str(hosts.pki)
    diffs = hosts.run(diff_device, pki_dir=pki)
    first = diffs[GATEWAYS[0]]["diff"]["unified"]
    cert = Layout(hosts.pki).cert(GATEWAYS[0]).read_bytes()
    assert f"+# serial: {serial_of(cert)}" in first
    assert "+# subject: CN=cdu1-gw1" in first and "+# not-after: " in first
    assert f"+{KEY_SHOWN}" in first and "candidate/key.pem" in first
    assert "+# revoked: none" in first  # the CRL
    done = hosts.run(commit_device, confirm_timeout=None, pki_dir=pki)
    assert all(r["committed"] for r in done.values())
    for gw in GATEWAYS:
        files = hosts.installed(gw)
        key = Layout(hosts.pki).key(gw).read_bytes()
        assert files[f"private/{gw}.key"] == (key, 0o600)
        assert files[f"x509/{gw}.pem"] == (Layout(hosts.pki).cert(gw).read_bytes(), 0o644)
        assert files["x509ca/ca.pem"] == (Layout(hosts.pki).ca_cert.read_bytes(), 0o644)
        assert files["x509crl/crl.pem"][1] == 0o644
        assert hosts.reloads(gw) == 1  # swanctl --load-all after the install
    assert not any(r["changed"] for r in hosts.run(diff_device, pki_dir=pki).values())
    # without --pki-dir the certificates are no part of the candidate: left alone
    assert not any(r["changed"] for r in hosts.run(diff_device).values())
    before = hosts.installed(GATEWAYS[0])

    fabric = hosts.compiled.fabric
    renewed = renew_certs(Layout(hosts.pki), fabric, [gw for _, gw in hosts.compiled.gateways()],
                          Passphrase(), datetime.now(UTC) + timedelta(days=1),
                          within=timedelta(days=30), days=40)
    assert len(renewed.certs) == 2
    new_cert = Layout(hosts.pki).cert(GATEWAYS[0]).read_bytes()
    assert serial_of(new_cert) != serial_of(cert)
    assert Layout(hosts.pki).cert(GATEWAYS[0], previous=True).read_bytes() == cert
    change = hosts.run(diff_device, pki_dir=pki)[GATEWAYS[0]]["diff"]["unified"]
    assert f"-# serial: {serial_of(cert)}" in change
    assert f"+# serial: {serial_of(new_cert)}" in change
    assert f"-{KEY_SHOWN}\n+{KEY_SHOWN}" in change  # a new key, shown as such only
    assert "swanctl.conf" not in change  # the configuration itself did not change
    result = hosts.run(commit_device, confirm_timeout=60, pki_dir=pki)[GATEWAYS[0]]
    assert result["committed"] and result["armed_seconds"] == 60
    assert hosts.installed(GATEWAYS[0])[f"x509/{GATEWAYS[0]}.pem"] == (new_cert, 0o644)
    hosts.run(rollback_device)  # the pending change goes: the previous pair is back
    assert hosts.installed(GATEWAYS[0]) == before
    hosts.run(commit_device, confirm_timeout=60, pki_dir=pki)
    hosts.run(confirm_device)
    assert hosts.installed(GATEWAYS[0])[f"private/{GATEWAYS[0]}.key"] == (
        Layout(hosts.pki).key(GATEWAYS[0]).read_bytes(), 0o600)
    logs = "\n".join(r.getMessage() for r in caplog.records)
    no_key_anywhere(hosts.pki, [first, change, json.dumps(diffs, default=str), logs],
                    previous=True)


def test_a_missing_key_is_a_clear_error_that_changes_nothing(hosts: Hosts) -> None:
    Layout(hosts.pki).key(GATEWAYS[1]).unlink()
    results = hosts.nr.run(task=commit_device, confirm_timeout=None, pki_dir=str(hosts.pki),
                           on_failed=True)
    failed = results[GATEWAYS[1]][0]
    assert failed.failed and isinstance(failed.exception, PkiError)
    assert str(Layout(hosts.pki).key(GATEWAYS[1])) in str(failed.exception)
    assert not (hosts.swanctl_dir(GATEWAYS[1]) / "x509").exists()


# --- the lab: real charon with certificate auth -------------------------------------------------

LAB_FABRIC = "cdpki"
LAB_GATEWAYS = ("cd1-gw1", "cd2-gw1")


def lab_fabric_data() -> dict[str, Any]:
    data = fabric_data(LAB_FABRIC, transport="local", prefix="cd")
    data["fabric"]["data_plane"] = "libipsec"
    data["fabric"]["bgp"]["timers"] = {"keepalive": 3, "hold": 9}
    for i, site in enumerate(data["sites"], 1):
        site["gateways"][0].update(host="localhost", public_ip=f"192.0.2.{i}")
    return data


def lab_installed(lab_dir: Path, gateway: str) -> dict[str, tuple[bytes, int]]:
    folder = lab_dir / gateway
    names = (f"x509/{gateway}.pem", f"private/{gateway}.key", "x509ca/ca.pem",
             "x509crl/crl.pem")
    return {n: ((folder / n).read_bytes(), stat.S_IMODE((folder / n).stat().st_mode))
            for n in names}


def loaded_serials(lab_dir: Path, gateway: str) -> set[str]:
    """Serials of the X.509 certificates charon holds (swanctl --list-certs)."""
    import subprocess

    done = subprocess.run(["swanctl", "--list-certs", "--type", "x509", "--uri",
                           f"unix://{lab_dir / gateway}/charon.vici"], capture_output=True,
                          text=True, timeout=10, check=True)
    return {ln.split(":", 1)[1].strip().replace(":", "").upper().lstrip("0")
            for ln in done.stdout.splitlines() if ln.strip().startswith("serial:")}


@pytest.mark.lab
def test_lab_renewed_certificate_is_diffed_and_deployed_while_tunnels_stay_up(
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    from lab_support import cli, lab, lab_machine, start

    from pipelines import cli as dcvpn_cli
    from pipelines import deploy_cmd, pki_cmd
    from tasks.validate_checks import Kind, Status

    caplog.set_level(logging.DEBUG)
    with lab_machine() as root:
        fabric = root / f"{LAB_FABRIC}.yaml"
        fabric.write_text(yaml.safe_dump(lab_fabric_data()))
        lab_dir = root / LAB_FABRIC
        try:
            up = start(capsys, str(fabric), lab_dir)
            pki = lab_dir / "pki"  # no --pki-dir: the lab made its own CA
            up.wait(lambda rs: bool(rs) and all(r.status is Status.PASS for r in rs),
                    frozenset({Kind.IKE, Kind.CHILD}), timeout=60)
            old = {gw: lab_installed(lab_dir, gw) for gw in LAB_GATEWAYS}
            old_serial = serial_of(old[LAB_GATEWAYS[0]][f"x509/{LAB_GATEWAYS[0]}.pem"][0])

            code, out, err = cli(capsys, pki_cmd.main, "pki", "renew", "-f", str(fabric),
                                 "--pki-dir", str(pki), "--within", "60d")
            assert code == 0, err
            new_cert = Layout(pki).cert(LAB_GATEWAYS[0]).read_bytes()
            new_serial = serial_of(new_cert)
            assert new_serial != old_serial

            # the lab's own PKI is the default under --lab; --pki-dir says the same
            texts = []
            for extra in ((), ("--pki-dir", str(pki))):
                code, out, err = cli(capsys, dcvpn_cli.main, "diff", "-f", str(fabric), "--lab",
                                     "--lab-dir", str(lab_dir), "--format", "json", *extra)
                assert code == 0, err
                texts.append(out + err)
                shown = json.loads(out)
                assert "2 of 2 gateway(s) change" in err
                text = json.dumps(shown)
                assert f"-# serial: {old_serial}" in text and f"+# serial: {new_serial}" in text
                assert KEY_SHOWN in text

            report = root / "deploy.json"
            code, out, err = cli(capsys, deploy_cmd.main, "deploy", "-f", str(fabric), "--lab",
                                 "--lab-dir", str(lab_dir), "--pki-dir", str(pki), "--report",
                                 str(report), "--format", "json", "--settle", "60",
                                 "--confirm-timeout", "120")
            assert code == 0, err
            run = json.loads(report.read_text())
            assert run["outcome"] == "ok"
            assert {n: d["outcome"] for n, d in run["devices"].items()} == {
                gw: "confirmed" for gw in LAB_GATEWAYS}
            for gw in LAB_GATEWAYS:
                files = lab_installed(lab_dir, gw)
                assert files[f"x509/{gw}.pem"] == (Layout(pki).cert(gw).read_bytes(), 0o644)
                assert files[f"private/{gw}.key"] == (Layout(pki).key(gw).read_bytes(), 0o600)
                assert files[f"private/{gw}.key"] != old[gw][f"private/{gw}.key"]
            assert new_serial in loaded_serials(lab_dir, LAB_GATEWAYS[0])  # creds reloaded
            code, data = up.validate(capsys)
            assert code == 0, data

            # a second deploy has nothing left to do
            code, out, err = cli(capsys, deploy_cmd.main, "deploy", "-f", str(fabric), "--lab",
                                 "--lab-dir", str(lab_dir), "--report", str(report),
                                 "--format", "json")
            assert code == 0 and json.loads(report.read_text())["outcome"] == "no-changes", err
            logs = "\n".join(r.getMessage() for r in caplog.records)
            for text in [*texts, report.read_text(), out, err, logs]:
                assert "PRIVATE KEY" not in text
                for gw in LAB_GATEWAYS:
                    for cert_key in (Layout(pki).key(gw), Layout(pki).key(gw, previous=True)):
                        lines = [ln for ln in cert_key.read_text().splitlines()
                                 if len(ln) >= 16 and not ln.startswith("-----")]
                        assert lines and not [ln for ln in lines if ln in text]
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


# --- IOS-XE over SSH: the certificate chain of config.cli, against the CLI emulator ------------

IOSXE_GATEWAY = "par1-gw1"  # iosxe over ssh in the acme-hybrid example (certificate auth)


def chain_serials(config: str) -> list[str]:
    """`certificate [ca] <serial>` lines of the DCVPN chain, in order."""
    lines = config.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("crypto pki certificate chain"))
    return [ln.split()[-1] for ln in lines[start + 1:]
            if ln.startswith(" certificate ")][:2]


def test_iosxe_ssh_deploy_installs_the_chain_and_a_renewal_changes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import EXAMPLES

    from lab.emulators.iosxe_cli import CliServer, CliServerThread
    from tasks.pki.store import serial_hex

    fabric = EXAMPLES / "acme-hybrid.yaml"
    compiled = compile_fabric(load_fabric(fabric).fabric)
    pki = make_pki(tmp_path / "pki", compiled, datetime.now(UTC))
    server = CliServer(USER, PASSWORD, tmp_path / "state", 0.05, hostname=IOSXE_GATEWAY)
    emu = CliServerThread(server).start()
    known = tmp_path / "known_hosts"
    known.write_text(emu.known_hosts_line() + "\n")
    for name in [n for n in os.environ if n.startswith("DCVPN_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DCVPN_USERNAME", USER)
    monkeypatch.setenv("DCVPN_PASSWORD", PASSWORD)
    monkeypatch.setenv("DCVPN_KNOWN_HOSTS", str(known))
    nr = make_nornir(str(fabric), compiled).filter(name=IOSXE_GATEWAY)
    host = nr.inventory.hosts[IOSXE_GATEWAY]
    assert (host.platform, host.get("transport")) == ("iosxe", "ssh")
    host.hostname, host.port = "127.0.0.1", emu.port

    def running() -> str:
        return str(emu.call(lambda d: d.config_text()))

    def run(task: Any, **kwargs: Any) -> Any:
        result = nr.run(task=task, on_failed=True, **kwargs)[IOSXE_GATEWAY][0]
        assert not result.failed, result.exception
        return result

    try:
        cert = Layout(pki).cert(IOSXE_GATEWAY).read_bytes()
        ca = Layout(pki).ca_cert.read_bytes()
        first = run(diff_device, pki_dir=str(pki))
        assert f"certificate {serial_hex(int(serial_of(cert), 16))}" in first.diff
        run(commit_device, confirm_timeout=300, pki_dir=str(pki))
        run(confirm_device)
        assert chain_serials(running()) == [serial_hex(int(serial_of(cert), 16)), serial_hex(
            int(serial_of(ca), 16))]
        assert not run(diff_device, pki_dir=str(pki)).changed
        # without a PKI directory the chain stays on the device
        assert not run(diff_device).changed

        renew_certs(Layout(pki), compiled.fabric, [gw for _, gw in compiled.gateways()],
                    Passphrase(), datetime.now(UTC) + timedelta(days=1),
                    within=timedelta(days=30), days=40)
        new = serial_hex(int(serial_of(Layout(pki).cert(IOSXE_GATEWAY).read_bytes()), 16))
        change = run(diff_device, pki_dir=str(pki))
        assert change.changed and f"certificate {new}" in change.diff
        run(commit_device, confirm_timeout=300, pki_dir=str(pki))
        run(confirm_device)
        assert chain_serials(running())[0] == new
        assert "PRIVATE KEY" not in change.diff + running()
    finally:
        nr.close_connections()
        emu.stop()
