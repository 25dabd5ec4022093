"""The `dcvpn lint` and `dcvpn topology` commands: exit codes, formats, environment variables."""

import json
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, require_binary

from inventory.lint import RULES
from inventory.loader import load_fabric
from inventory.topology import compile_fabric
from pipelines.cli import main

LAB3 = EXAMPLES / "lab3.yaml"
ACME = EXAMPLES / "acme-hybrid.yaml"
Capture = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def _no_dcvpn_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without DCVPN_* settings from the caller's shell."""
    for name in ("FABRIC", "FORMAT", "SELECT", "OUT", "SITE"):
        monkeypatch.delenv(f"DCVPN_{name}", raising=False)


def _variant(tmp_path: Path, *edits: tuple[str, str], name: str = "fabric.yaml") -> Path:
    text = LAB3.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, f"{old!r} is not in lab3.yaml any more: update the test"
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


DUP_ID = ("    id: 2\n", "    id: 1  # dup\n")  # error DCV201 at sites[1].id
SHORT_ESP = ("    profile: strict\n", "    profile: strict\n    esp: {lifetime: 30m}\n")  # DCV106


def _line(path: Path, fragment: str) -> int:
    (line,) = [n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if fragment in text]
    return line


def _run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- lint ------------------------------------------------------------------------------------

@pytest.mark.parametrize("example", [LAB3, ACME], ids=["lab3", "acme"])
def test_lint_clean_example_exits_0(capsys: Capture, example: Path) -> None:
    code, out, err = _run(capsys, "lint", "-f", str(example))
    # acme's IOS-XE gateways check no CRL: it sets no fabric.auth.crl_url (DCV253, a warning)
    warned = [line.split(": ")[2].split()[1] for line in out.splitlines()]
    assert (code, warned) == (0, ["DCV253"] if example == ACME else [])
    assert err == (f"{example}: 0 errors, {len(warned)} warning{'s' * (len(warned) != 1)}, "
                   "0 infos\n")


def test_lint_error_finding_exits_1(tmp_path: Path, capsys: Capture) -> None:
    path = _variant(tmp_path, DUP_ID)
    code, out, err = _run(capsys, "lint", "-f", str(path))
    assert code == 1
    assert out.splitlines() == [
        f"{path}:{_line(path, '# dup')}: sites[1].id: error DCV201: site id 1 is also used "
        "at sites[0].id"]
    assert err == f"{path}: 1 error, 0 warnings, 0 infos\n"


def test_lint_warnings_only_exits_0(tmp_path: Path, capsys: Capture) -> None:
    path = _variant(tmp_path, SHORT_ESP)
    code, out, err = _run(capsys, "lint", "-f", str(path))
    assert code == 0
    assert [line.split(": ")[1:3] for line in out.splitlines()] == [
        ["fabric.crypto.esp.lifetime", "warning DCV106"]]
    assert "0 errors, 1 warning, 0 infos" in err


@pytest.mark.parametrize("argv", [["lint", "-f", "/nonexistent/fabric.yaml"], ["lint"]],
                         ids=["missing-file", "no-fabric"])
def test_lint_unusable_input_exits_2(capsys: Capture, argv: list[str]) -> None:
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_lint_json_structure(tmp_path: Path, capsys: Capture) -> None:
    path = _variant(tmp_path, DUP_ID, SHORT_ESP)
    code, out, _ = _run(capsys, "lint", "-f", str(path), "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc == {
        "file": str(path),
        "ok": False,
        "counts": {"error": 1, "warning": 1, "info": 0},
        "findings": [
            {"code": "DCV106", "severity": "warning", "path": "fabric.crypto.esp.lifetime",
             "file": str(path), "line": _line(path, "esp: {lifetime: 30m}"),
             "message": doc["findings"][0]["message"]},
            {"code": "DCV201", "severity": "error", "path": "sites[1].id", "file": str(path),
             "line": _line(path, "# dup"), "message": "site id 1 is also used at sites[0].id"},
        ],
    }
    assert "1800s is outside 1h..24h" in doc["findings"][0]["message"]


def test_lint_json_clean_and_unusable(tmp_path: Path, capsys: Capture) -> None:
    code, out, _ = _run(capsys, "lint", "-f", str(LAB3), "--format", "json")
    assert code == 0
    assert json.loads(out) == {"file": str(LAB3), "ok": True,
                               "counts": {"error": 0, "warning": 0, "info": 0}, "findings": []}
    bad = _variant(tmp_path, ("    id: 1\n", "    id: abc\n"))
    code, out, err = _run(capsys, "lint", "-f", str(bad), "--format", "json")
    assert code == 2
    doc = json.loads(out)
    assert doc["ok"] is False
    assert [e.split(": ")[:2] for e in doc["errors"]] == [
        [f"{bad}:{_line(bad, 'id: abc')}", "sites[0].id"]]
    assert err.splitlines() == doc["errors"]


def test_lint_select(tmp_path: Path, capsys: Capture) -> None:
    path = _variant(tmp_path, DUP_ID, SHORT_ESP)
    code, out, _ = _run(capsys, "lint", "-f", str(path), "--select", "DCV106")
    assert code == 0  # the error DCV201 is not selected
    assert [line.split(": ")[2] for line in out.splitlines()] == ["warning DCV106"]
    code, out, _ = _run(capsys, "lint", "-f", str(path), "--select", "DCV201,DCV106",
                        "--format", "json")
    assert code == 1
    assert [f["code"] for f in json.loads(out)["findings"]] == ["DCV106", "DCV201"]


def test_lint_rules_lists_every_rule(capsys: Capture) -> None:
    code, out, _ = _run(capsys, "lint", "--rules")
    assert code == 0
    listed = [line.split()[:2] for line in out.splitlines()]
    assert listed == [[r.code, str(r.severity)] for r in RULES]
    for line, rule in zip(out.splitlines(), RULES, strict=True):
        assert line.endswith(rule.summary)


def test_env_vars_are_used_when_options_are_absent(tmp_path: Path, capsys: Capture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = _variant(tmp_path, DUP_ID, SHORT_ESP)
    monkeypatch.setenv("DCVPN_FABRIC", str(path))
    monkeypatch.setenv("DCVPN_FORMAT", "json")
    code, out, _ = _run(capsys, "lint")
    assert code == 1
    assert json.loads(out)["file"] == str(path)
    monkeypatch.setenv("DCVPN_SELECT", "DCV106")
    code, out, _ = _run(capsys, "lint")
    assert code == 0
    assert [f["code"] for f in json.loads(out)["findings"]] == ["DCV106"]


def test_options_win_over_env_vars(tmp_path: Path, capsys: Capture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCVPN_FABRIC", str(_variant(tmp_path, DUP_ID)))
    monkeypatch.setenv("DCVPN_FORMAT", "json")
    code, out, err = _run(capsys, "lint", "-f", str(LAB3), "--format", "text")
    assert (code, out) == (0, "")
    assert err.startswith(f"{LAB3}: ")


@pytest.mark.parametrize("argv", [["lint", "-f", str(LAB3), "--format", "xml"],
                                  ["topology", "-f", str(LAB3), "--format", "svg"]])
def test_unknown_format_exits_2(capsys: Capture, argv: list[str]) -> None:
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (2, "")
    assert "--format must be one of" in err


def test_unknown_option_exits_2(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["lint", "--no-such-option"])
    assert info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


# --- topology --------------------------------------------------------------------------------

def test_topology_text(capsys: Capture) -> None:
    code, out, _ = _run(capsys, "topology", "-f", str(ACME))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "fabric acme: hybrid, 6 sites, 12 tunnels, 12 BGP sessions (ebgp)"
    compiled = compile_fabric(load_fabric(ACME).fabric)
    for t in compiled.tunnels:
        rows = [line.split() for line in lines if line.startswith(f"{t.name} ")]
        assert len(rows) == 2  # the tunnel row and the BGP session row
        assert rows[0][:3] == [t.name, str(t.id), str(t.network)]


def _endpoint_keys(doc: dict[str, Any]) -> None:
    for t in doc["tunnels"]:
        assert {"id", "plane", "endpoints"} <= set(t)
        assert len(t["endpoints"]) == 2
        for e in t["endpoints"]:
            assert {"site", "gateway", "public_ip", "inner_ip"} <= set(e)
            assert IPv4Address(e["inner_ip"]) in IPv4Network(t["network"])
            IPv4Address(e["public_ip"])


def test_topology_json(capsys: Capture) -> None:
    code, out, _ = _run(capsys, "topology", "-f", str(ACME), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    _endpoint_keys(doc)
    compiled = compile_fabric(load_fabric(ACME).fabric)
    assert [(t["id"], t["plane"]) for t in doc["tunnels"]] == [
        (t.id, t.plane) for t in compiled.tunnels]
    hub_pair = [t for t in doc["tunnels"]
                if {e["site"] for e in t["endpoints"]} == {"fra1", "iad1"}]
    assert [[e["gateway"] for e in t["endpoints"]] for t in hub_pair] == [
        ["fra1-gw1", "iad1-gw1"], ["fra1-gw2", "iad1-gw2"]]
    assert len(doc["bgp_sessions"]) == len(doc["tunnels"])
    for t, s in zip(doc["tunnels"], doc["bgp_sessions"], strict=True):
        assert s["tunnel_id"] == t["id"]
        assert [e["address"] for e in s["endpoints"]] == [e["inner_ip"] for e in t["endpoints"]]
        site_ids = {"fra1": 1, "iad1": 2, "ams1": 3, "par1": 4, "nyc1": 5, "sjc1": 6}
        assert [e["asn"] for e in s["endpoints"]] == [
            65000 + site_ids[e["site"]] for e in t["endpoints"]]
    code, again, _ = _run(capsys, "topology", "-f", str(ACME), "--format", "json")
    assert again == out  # deterministic


def test_topology_dot_is_valid_graphviz(tmp_path: Path, capsys: Capture) -> None:
    dot = require_binary("dot")
    code, out, _ = _run(capsys, "topology", "-f", str(ACME), "--format", "dot")
    assert code == 0
    proc = subprocess.run([dot, "-Tsvg"], input=out, capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith("<?xml") and "</svg>" in proc.stdout
    assert 'subgraph "cluster_eu"' in out and 'subgraph "cluster_us"' in out
    marked = {line.split('"')[1] for line in out.splitlines() if "penwidth=3" in line}
    assert marked == {"fra1", "iad1"}
    assert sum(" -- " in line for line in out.splitlines()) == 12


def test_topology_refuses_a_model_with_lint_errors(tmp_path: Path, capsys: Capture) -> None:
    path = _variant(tmp_path, DUP_ID)
    code, out, err = _run(capsys, "topology", "-f", str(path))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{path}:{_line(path, '# dup')}: sites[1].id: error DCV201: site id 1 is also used "
        "at sites[0].id",
        f"{path}: 1 lint error(s); fix them first"]
    code, out, _ = _run(capsys, "topology", "-f", str(path), "--format", "json")
    assert code == 2
    assert json.loads(out)["ok"] is False


def test_topology_accepts_warnings(tmp_path: Path, capsys: Capture) -> None:
    code, out, _ = _run(capsys, "topology", "-f", str(_variant(tmp_path, SHORT_ESP)))
    assert code == 0
    assert out.startswith("fabric lab3: full_mesh, 3 sites, 3 tunnels")


# --- help and the installed entry point ------------------------------------------------------

def test_no_arguments_prints_help_and_exits_2(capsys: Capture) -> None:
    code, out, err = _run(capsys)
    assert (code, out) == (2, "")
    assert err.startswith("usage: dcvpn")
    for command in ("lint", "topology", "render"):
        assert command in err


@pytest.mark.parametrize("argv", [["--help"], ["lint", "--help"], ["topology", "-h"]])
def test_help(capsys: Capture, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: dcvpn")
    if argv[0] != "--help":
        assert "DCVPN_FABRIC" in out and "DCVPN_FORMAT" in out


def test_console_script(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "dcvpn"
    assert exe.is_file(), f"{exe}: the dcvpn console script is not installed (pip install -e .)"

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(exe), *argv], capture_output=True, text=True, check=False,
                              timeout=60, cwd=tmp_path)

    ok = run("topology", "-f", str(ACME), "--format", "json")
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["tunnels"]) == 12
    failed = run("lint", "-f", str(_variant(tmp_path, DUP_ID)))
    assert failed.returncode == 1
    assert "DCV201" in failed.stdout
    bad = run("lint", "-f", str(tmp_path / "missing.yaml"))
    assert bad.returncode == 2
    assert bad.stderr == f"{tmp_path / 'missing.yaml'}: no such fabric file\n"
