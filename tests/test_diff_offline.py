import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES

from pipelines.cli import main
from tasks.semantic_diff import mask_secrets


def _write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _lab3() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "lab3.yaml").read_text())
    return data


@pytest.fixture
def old_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "old"
    assert main(["render", "-f", str(EXAMPLES / "lab3.yaml"), "-o", str(out)]) == 0
    capsys.readouterr()
    return out


def _diff(fabric: Path, old: Path, capsys: pytest.CaptureFixture[str], *extra: str
          ) -> tuple[int, str, str]:
    code = main(["diff", "-f", str(fabric), "--offline", str(old), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_no_model_change_means_no_diff(tmp_path: Path, old_out: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _diff(EXAMPLES / "lab3.yaml", old_out, capsys, "--exit-code")
    assert code == 0
    assert out == ""
    assert "0 of 3 gateway(s) change" in err


def test_esp_lifetime_change_is_named_per_gateway(tmp_path: Path, old_out: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = _lab3()
    data["fabric"]["crypto"]["esp"] = {"lifetime": "30m"}
    code, out, _ = _diff(_write(tmp_path, "f.yaml", data), old_out, capsys, "--format", "json",
                         "--exit-code")
    assert code == 1
    doc = json.loads(out)
    assert doc["changed"] == ["ams1-gw1", "lon1-gw1", "nyc1-gw1"]
    for gw in doc["changed"]:
        entry = doc["gateways"][gw]
        assert {"gateway": gw, "scope": "gateway", "change": "ESP lifetime 1h -> 30m"} in \
            entry["semantic"]
        assert "+        rekey_time = 30m" in entry["files"]["swanctl.conf"]
        assert "frr.conf" not in entry["files"]  # untouched files have no diff


def test_adding_a_site_only_touches_its_peers(tmp_path: Path, old_out: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = _lab3()
    data["fabric"]["topology"] = "hub_spoke"
    data["fabric"]["hubs"] = ["ams1"]
    base = _write(tmp_path, "hub.yaml", data)
    hub_out = tmp_path / "hub-out"
    assert main(["render", "-f", str(base), "-o", str(hub_out)]) == 0
    new_site = {"name": "sin1", "id": 4, "region": "ap", "asn": 65004,
                "prefixes": ["10.4.0.0/24"],
                "gateways": [{"name": "sin1-gw1", "platform": "strongswan",
                              "transport": "local", "host": "localhost",
                              "public_ip": "192.0.2.4"}]}
    data["sites"].append(new_site)
    capsys.readouterr()
    _, out, _ = _diff(_write(tmp_path, "grown.yaml", data), hub_out, capsys, "--format", "json")
    doc = json.loads(out)
    gws = doc["gateways"]
    assert {"gateway": "sin1-gw1", "scope": "gateway", "change": "new gateway"} in \
        gws["sin1-gw1"]["semantic"]
    hub = {(c["scope"], c["change"]) for c in gws["ams1-gw1"]["semantic"]}
    assert ("tunnel ams1-sin1-p0", "new tunnel") in hub
    assert any(scope.startswith("neighbor ") and change == "new BGP neighbor"
               for scope, change in hub)
    # the hub's existing tunnels are not touched
    assert not any(scope in ("tunnel ams1-lon1-p0", "tunnel ams1-nyc1-p0") for scope, _ in hub)
    # spokes only learn the new prefix in their import policy
    for spoke in ("lon1-gw1", "nyc1-gw1"):
        assert [c["change"] for c in gws[spoke]["semantic"]] == ["accepts 10.4.0.0/24 (new)"]


def test_markdown_report_for_a_merge_request(tmp_path: Path, old_out: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = _lab3()
    data["fabric"]["crypto"]["dpd"] = {"interval": "30s", "action": "restart"}
    report = tmp_path / "diff.md"
    code, out, _ = _diff(_write(tmp_path, "f.yaml", data), old_out, capsys, "--format",
                         "markdown", "--report", str(report))
    assert code == 0
    assert out == report.read_text()
    assert out.startswith("## dcvpn diff: lab3\n")
    assert "3 of 3 gateway(s) change." in out
    assert "- **gateway**: DPD interval 10s -> 30s" in out
    assert "```diff" in out


def test_secrets_in_old_output_never_show(tmp_path: Path, old_out: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    swanctl = old_out / "ams1-gw1" / "swanctl.conf"
    swanctl.write_text(swanctl.read_text() + 'secrets {\n  ike-x {\n    secret = "hunter2"\n'
                       "  }\n}\n")
    _, out, err = _diff(EXAMPLES / "lab3.yaml", old_out, capsys)
    assert "hunter2" not in out + err
    assert '-    secret = <masked>' in out


def test_missing_old_output_is_a_usage_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _diff(EXAMPLES / "lab3.yaml", tmp_path / "nope", capsys)
    assert code == 2
    assert out == ""
    assert "no such render output folder" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("text", "masked"), [
    ('secret = "abc"', "secret = <masked>"),
    ("  <key>s3cr3t</key>", "  <key><masked></key>"),
    (" pre-shared-key local cisco123", " pre-shared-key local <masked>"),
    ('set security ike policy p pre-shared-key ascii-text "$9$abc"',
     "set security ike policy p pre-shared-key ascii-text <masked>"),
    (" key 7 0822455D0A16", " key 7 <masked>"),
    ("username admin password 0 hunter2", "username admin password 0 <masked>"),
    ("<key>${dcvpn-secret:psk/a}</key>", "<key>${dcvpn-secret:psk/a}</key>"),
    ("secret = ${dcvpn-secret:psk/x}", "secret = ${dcvpn-secret:psk/x}"),
    ("tunnel key 5", "tunnel key 5"),
    ("## SECRET-DATA", "## SECRET-DATA"),
    ("<ascii-text>$9$abc</ascii-text>", "<ascii-text><masked></ascii-text>"),
    ("<pre-shared-key><ascii-text>k</ascii-text></pre-shared-key>",
     "<pre-shared-key><ascii-text><masked></ascii-text></pre-shared-key>"),
    ("secret-key-file x", "secret-key-file x"),
    # a JunOS hierarchy opening is no value: its ascii-text line below holds the secret
    ("+              pre-shared-key {", "+              pre-shared-key {"),
    ('+                  ascii-text "$9$abc"; ## SECRET-DATA',
     "+                  ascii-text <masked> ## SECRET-DATA"),
])
def test_mask_secrets(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked
