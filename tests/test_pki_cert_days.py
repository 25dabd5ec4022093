"""fabric.auth.cert_days: the model's certificate validity, the default of `pki issue/renew`."""

import os
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES
from cryptography import x509
from pydantic import ValidationError

from inventory.model import Auth
from pipelines import pki_cmd

LAB3 = EXAMPLES / "lab3.yaml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DCVPN_"):
            monkeypatch.delenv(name)


def fabric_with(tmp_path: Path, auth: dict[str, object]) -> str:
    data = yaml.safe_load(LAB3.read_text())
    data["fabric"]["auth"] = auth
    path = tmp_path / "fabric.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def validity_days(pki: Path, gateway: str) -> int:
    cert = x509.load_pem_x509_certificate((pki / "certs" / f"{gateway}.pem").read_bytes())
    # not-before is set back by the CA's clock-skew allowance: round to whole days
    return round((cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() / 86400)


def pki(capsys: pytest.CaptureFixture[str], *argv: str) -> int:
    code = pki_cmd.main(["pki", *argv])
    capsys.readouterr()
    return code


def test_default_is_one_year() -> None:
    assert Auth().cert_days == 365


@pytest.mark.parametrize("value", [0, 3651, "soon"])
def test_out_of_range_is_refused(value: object) -> None:
    with pytest.raises(ValidationError, match="cert_days"):
        Auth.model_validate({"cert_days": value})


def test_issue_takes_the_models_validity_and_days_overrides_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fabric = fabric_with(tmp_path, {"method": "certificate", "cert_days": 90})
    pki_dir = tmp_path / "pki"
    common = ("-f", fabric, "--pki-dir", str(pki_dir))
    assert pki(capsys, "init", *common) == 0
    assert pki(capsys, "issue", *common, "--site", "ams1") == 0
    assert pki(capsys, "issue", *common, "--site", "lon1", "--days", "30") == 0
    assert validity_days(pki_dir, "ams1-gw1") == 90
    assert validity_days(pki_dir, "lon1-gw1") == 30


def test_without_cert_days_issue_keeps_its_one_year_default(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fabric = fabric_with(tmp_path, {"method": "certificate"})
    pki_dir = tmp_path / "pki"
    assert pki(capsys, "init", "-f", fabric, "--pki-dir", str(pki_dir)) == 0
    assert pki(capsys, "issue", "-f", fabric, "--pki-dir", str(pki_dir), "--site", "nyc1") == 0
    assert validity_days(pki_dir, "nyc1-gw1") == 365
