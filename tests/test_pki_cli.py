"""`dcvpn pki` on the command line: exit codes, formats, env options, bad input."""

import argparse
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import EXAMPLES
from cryptography import x509
from pki_support import mode, parse_prometheus, snapshot

from inventory.loader import load_fabric
from pipelines import pki_cmd
from tasks.pki.ca import init_ca
from tasks.pki.issue import issue_certs
from tasks.pki.keys import Passphrase
from tasks.pki.store import Layout

LAB3 = str(EXAMPLES / "lab3.yaml")
PASS = "s3cret-Passphrase-for-tests"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("DCVPN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    return tmp_path / "pki"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = pki_cmd.main(["pki", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "PRIVATE KEY" not in out + err and PASS not in out + err
    return code, out, err


def dcvpn(capsys: pytest.CaptureFixture[str], sub: str, *argv: str, pki: Path,
          fabric: str = LAB3) -> tuple[int, str, str]:
    return run(capsys, sub, "-f", fabric, "--pki-dir", str(pki), *argv)


def test_init_issue_revoke_status_flow(capsys: pytest.CaptureFixture[str], pki: Path) -> None:
    code, out, err = dcvpn(capsys, "init", pki=pki)
    assert code == 0 and "subject    CN=dcvpn lab3 fabric CA" in out
    assert "not encrypted" in err
    code, out, _ = dcvpn(capsys, "issue", "--format", "json", pki=pki)
    data = json.loads(out)
    assert code == 0 and data["ok"]
    assert [(c["gateway"], c["outcome"]) for c in data["certificates"]] == [
        ("ams1-gw1", "created"), ("lon1-gw1", "created"), ("nyc1-gw1", "created")]
    code, out, err = dcvpn(capsys, "issue", "--all", pki=pki)
    assert code == 0 and out.count("unchanged") == 3 and "3 unchanged" in err
    code, out, _ = dcvpn(capsys, "status", "--format", "json", pki=pki)
    status = json.loads(out)
    assert code == 0 and status["ok"]
    assert {c["gateway"]: c["status"] for c in status["certificates"]} == {
        "ams1-gw1": "valid", "lon1-gw1": "valid", "nyc1-gw1": "valid"}
    assert all(c["days_left"] == 364 for c in status["certificates"])  # 364 d 23 h 59 m ..

    code, out, err = dcvpn(capsys, "revoke", "lon1-gw1", "--reason", "key-compromise", pki=pki)
    assert code == 0 and "revoked" in out and "deploy crl.pem" in err
    code, out, err = dcvpn(capsys, "status", pki=pki)
    assert code == 1 and "lon1-gw1: revoked" in err
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [
        ["ca", "valid"], ["crl", "valid"], ["ams1-gw1", "valid"], ["lon1-gw1", "revoked"],
        ["nyc1-gw1", "valid"]]
    code, _, err = dcvpn(capsys, "issue", pki=pki)
    assert code == 1 and "use --reissue-revoked" in err
    code, out, _ = dcvpn(capsys, "issue", "--reissue-revoked", "--site", "lon1", pki=pki)
    assert code == 0 and "reissued" in out
    assert dcvpn(capsys, "status", pki=pki)[0] == 0


def test_init_refuses_an_existing_ca_with_exit_1(capsys: pytest.CaptureFixture[str],
                                                 pki: Path) -> None:
    assert dcvpn(capsys, "init", pki=pki)[0] == 0
    before = snapshot(pki)
    code, out, err = dcvpn(capsys, "init", "--format", "json", pki=pki)
    assert code == 1 and "refusing to overwrite" in err
    assert json.loads(out)["ok"] is False
    assert snapshot(pki) == before


def test_default_directory_follows_xdg_data_home(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    assert run(capsys, "init", "-f", LAB3)[0] == 0
    assert (tmp_path / "xdg" / "dcvpn" / "lab3" / "pki" / "ca.pem").is_file()


def test_every_option_reads_its_env_var(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch, pki: Path) -> None:
    monkeypatch.setenv("DCVPN_FABRIC", LAB3)
    monkeypatch.setenv("DCVPN_PKI_DIR", str(pki))
    monkeypatch.setenv("DCVPN_FORMAT", "json")
    monkeypatch.setenv("DCVPN_KEY_TYPE", "ecdsa-p256")
    monkeypatch.setenv("DCVPN_DAYS", "90")
    monkeypatch.setenv("DCVPN_SITE", "ams1,nyc1")
    code, out, _ = run(capsys, "init")
    assert code == 0 and json.loads(out)["key_type"] == "ecdsa-p256"
    code, out, _ = run(capsys, "issue")
    certs = json.loads(out)["certificates"]
    assert code == 0 and [c["gateway"] for c in certs] == ["ams1-gw1", "nyc1-gw1"]
    cert = x509.load_pem_x509_certificate((pki / "certs" / "ams1-gw1.pem").read_bytes())
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 90
    monkeypatch.setenv("DCVPN_FORMAT", "text")
    assert run(capsys, "issue", "--format", "json")[1].startswith("{")  # the command line wins


def test_passphrase_comes_from_the_named_env_var(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 pki: Path) -> None:
    monkeypatch.setenv("DCVPN_PKI_PASSPHRASE", PASS)
    code, out, err = dcvpn(capsys, "init", pki=pki)
    assert code == 0 and "encrypted  yes" in out
    assert (pki / "ca.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY")
    assert dcvpn(capsys, "issue", pki=pki)[0] == 0
    assert (pki / "private" / "ams1-gw1.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED")
    monkeypatch.delenv("DCVPN_PKI_PASSPHRASE")
    monkeypatch.setenv("MY_CI_SECRET", PASS)
    code, _, err = dcvpn(capsys, "revoke", "ams1-gw1", pki=pki)
    assert code == 2 and "is encrypted: set DCVPN_PKI_PASSPHRASE" in err
    code, out, err = dcvpn(capsys, "revoke", "ams1-gw1", "--passphrase-env", "MY_CI_SECRET",
                           pki=pki)
    assert code == 0
    assert PASS not in out + err


def test_passphrase_is_never_taken_on_the_command_line(capsys: pytest.CaptureFixture[str],
                                                       pki: Path) -> None:
    code, out, err = dcvpn(capsys, "init", "--passphrase-env", "hunter 2!", pki=pki)
    assert code == 2 and "NAME of an environment variable" in err
    assert "hunter" not in out + err
    assert not pki.exists()
    with pytest.raises(SystemExit):
        pki_cmd.main(["pki", "init", "-f", LAB3, "--passphrase", PASS])


# --- bad input: a clear error, exit 2, nothing changed --------------------------------------

def _corrupt_gateway_key(pki: Path) -> None:
    (pki / "private" / "lon1-gw1.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n")


def _corrupt_ca_key(pki: Path) -> None:
    key = pki / "ca.key"
    key.write_bytes(key.read_bytes()[:60] + b"garbage" + key.read_bytes()[80:])


def _corrupt_cert(pki: Path) -> None:
    (pki / "certs" / "nyc1-gw1.pem").write_text("not a certificate\n")


def _foreign_ca(pki: Path) -> None:
    other = Layout(pki.parent / "other")
    init_ca(other, "lab3", "ecdsa-p384", Passphrase(), datetime.now(UTC))
    for name in ("ca.pem", "ca.key", "crl.pem"):
        (pki / name).write_bytes((other.root / name).read_bytes())


def _foreign_crl(pki: Path) -> None:
    other = Layout(pki.parent / "other")
    init_ca(other, "lab3", "ecdsa-p384", Passphrase(), datetime.now(UTC))
    (pki / "crl.pem").write_bytes(other.crl.read_bytes())


@pytest.mark.parametrize(("damage", "command", "message"), [
    (_corrupt_gateway_key, ("issue",), "lon1-gw1.key: not a readable PEM private key"),
    (_corrupt_gateway_key, ("renew", "--within", "400d", "--days", "500"),
     "lon1-gw1.key: not a readable PEM private key"),
    (_corrupt_ca_key, ("issue",), "ca.key: not a readable PEM private key"),
    (_corrupt_ca_key, ("revoke", "ams1-gw1"), "ca.key: not a readable PEM private key"),
    (_corrupt_cert, ("issue",), "nyc1-gw1.pem: not a readable PEM certificate"),
    (_corrupt_cert, ("status",), "nyc1-gw1.pem: not a readable PEM certificate"),
    (_foreign_ca, ("issue",), "was not issued by the CA"),
    (_foreign_ca, ("renew", "--within", "400d", "--days", "500"), "was not issued by the CA"),
    (_foreign_ca, ("revoke", "ams1-gw1"), "was not issued by the CA"),
    (_foreign_ca, ("status",), "was not issued by the CA"),
    (_foreign_crl, ("revoke", "ams1-gw1"), "crl.pem was not signed by the CA"),
    (_foreign_crl, ("status",), "crl.pem was not signed by the CA"),
])
def test_bad_pki_files_give_a_clear_error_and_change_nothing(
        capsys: pytest.CaptureFixture[str], pki: Path, tmp_path: Path,
        damage: object, command: tuple[str, ...], message: str) -> None:
    assert dcvpn(capsys, "init", pki=pki)[0] == 0
    assert dcvpn(capsys, "issue", pki=pki)[0] == 0
    damage(pki)  # type: ignore[operator]
    before = snapshot(pki)
    prom = tmp_path / "x.prom"
    extra = ("--prometheus", str(prom)) if command[0] == "status" else ()
    code, out, err = dcvpn(capsys, *command, *extra, "--format", "json", pki=pki)
    assert code == 2
    assert message in err
    assert json.loads(out) == {"ok": False, "errors": [err.strip()]}
    assert snapshot(pki) == before
    assert not prom.exists()


def test_wrong_passphrase_gives_a_clear_error_and_changes_nothing(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, pki: Path) -> None:
    monkeypatch.setenv("DCVPN_PKI_PASSPHRASE", PASS)
    assert dcvpn(capsys, "init", pki=pki)[0] == 0
    assert dcvpn(capsys, "issue", "--site", "ams1", pki=pki)[0] == 0
    before = snapshot(pki)
    monkeypatch.setenv("DCVPN_PKI_PASSPHRASE", "not-the-passphrase")
    for command in (("issue",), ("revoke", "ams1-gw1"), ("renew", "--within", "400d",
                                                        "--days", "500")):
        code, out, err = dcvpn(capsys, *command, pki=pki)
        assert code == 2
        assert "cannot decrypt" in err and "wrong passphrase in DCVPN_PKI_PASSPHRASE" in err
        assert "not-the-passphrase" not in out + err
    assert snapshot(pki) == before


# --- status exit codes and the Prometheus file ----------------------------------------------

def _aged(pki: Path, issued_days_ago: int) -> None:
    """A lab3 PKI whose certificates were issued `issued_days_ago` days ago (365-day validity)."""
    fabric = load_fabric(LAB3).fabric
    now = datetime.now(UTC)
    layout = Layout(pki)
    init_ca(layout, "lab3", "ecdsa-p384", Passphrase(), now - timedelta(days=500),
            crl_days=1000)
    gws = [gw for s in fabric.sites for gw in s.gateways]
    issue_certs(layout, fabric, gws, Passphrase(), now - timedelta(days=issued_days_ago))


def test_status_exit_1_when_a_certificate_expires_within_the_window(
        capsys: pytest.CaptureFixture[str], pki: Path, tmp_path: Path) -> None:
    _aged(pki, 340)  # 25 days left
    prom = tmp_path / "textfile" / "dcvpn.prom"
    prom.parent.mkdir()
    code, out, err = dcvpn(capsys, "status", "--prometheus", str(prom), pki=pki)
    assert code == 1
    assert "ams1-gw1: expiring" in err
    assert "expiring" in out
    metrics = parse_prometheus(prom.read_text())
    values = {s["gateway"]: v for s, v in metrics["dcvpn_cert_expiry_seconds"]}
    assert sorted(values) == ["ams1-gw1", "lon1-gw1", "nyc1-gw1"]
    assert all(24 * 86400 < v <= 25 * 86400 for v in values.values())
    assert mode(prom) == 0o644 and os.listdir(prom.parent) == ["dcvpn.prom"]
    assert dcvpn(capsys, "status", "--warn-days", "20", pki=pki)[0] == 0


def test_status_exit_1_when_a_certificate_expired(capsys: pytest.CaptureFixture[str],
                                                  pki: Path) -> None:
    _aged(pki, 400)
    code, out, _ = dcvpn(capsys, "status", "--format", "json", pki=pki)
    data = json.loads(out)
    assert code == 1 and not data["ok"]
    assert {c["status"] for c in data["certificates"]} == {"expired"}
    assert all(c["days_left"] == -35 for c in data["certificates"])


def test_renew_then_status_is_clean(capsys: pytest.CaptureFixture[str], pki: Path) -> None:
    _aged(pki, 340)
    code, out, err = dcvpn(capsys, "renew", pki=pki)
    assert code == 0 and out.count("renewed") == 3 and "deploy" in err
    assert (pki / "certs" / "ams1-gw1.prev.pem").is_file()
    assert dcvpn(capsys, "status", pki=pki)[0] == 0
    code, out, _ = dcvpn(capsys, "renew", "--format", "json", pki=pki)
    assert code == 0 and {c["outcome"] for c in json.loads(out)["certificates"]} == {
        "unchanged"}


def test_status_without_a_ca(capsys: pytest.CaptureFixture[str], pki: Path) -> None:
    code, _, err = dcvpn(capsys, "status", pki=pki)
    assert code == 2 and "run dcvpn pki init" in err


# --- usage ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (("issue", "--site", "mars1"), "unknown site(s): mars1"),
    (("issue", "--days", "soon"), "--days takes a whole number"),
    (("issue", "--days", "0"), "--days must be at least 1"),
    (("renew", "--within", "a while"), "--within:"),
    (("renew", "--within", "30d", "--days", "20"), "--days must be longer"),
    (("init", "--key-type", "dsa-1024"), "--key-type must be one of"),
    (("revoke", "ams1-gw1", "--reason", "boredom"), "--reason must be one of"),
    (("status", "--format", "xml"), "--format must be one of"),
    (("status", "--warn-days", "-3"), "--warn-days must be at least 1"),
])
def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str], pki: Path,
                           argv: tuple[str, ...], message: str) -> None:
    assert dcvpn(capsys, "init", pki=pki)[0] == 0
    before = snapshot(pki)
    code, _, err = dcvpn(capsys, *argv, pki=pki)
    assert code == 2 and message in err
    assert snapshot(pki) == before


def test_missing_fabric_and_missing_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status")
    assert code == 2 and "no fabric given" in err
    code, _, err = run(capsys)
    assert code == 2 and "init" in err and "psk" in err


def test_a_model_with_lint_errors_is_refused(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path, pki: Path) -> None:
    text = Path(LAB3).read_text().replace("id: 2", "id: 1")  # duplicate site id
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert dcvpn(capsys, "init", pki=pki)[0] == 0
    code, _, err = dcvpn(capsys, "issue", pki=pki, fabric=str(bad))
    assert code == 2 and "lint error" in err
    assert not (pki / "certs").exists()


def test_register_plugs_into_the_dcvpn_parser(pki: Path) -> None:
    parser = argparse.ArgumentParser(prog="dcvpn")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("lint")
    pki_cmd.register(sub)
    args = parser.parse_args(["pki", "status", "-f", LAB3, "--pki-dir", str(pki)])
    assert args.command == "pki" and args.pki_command == "status"
    assert args.handler is not None and args.format_choices == ("text", "json")
    assert parser.parse_args(["pki"]).handler(args) == 2
