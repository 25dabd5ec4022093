"""The ad-hoc Nornir scripts of examples/, run as a network engineer runs them: as programs."""

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT
from lab_support import lab, lab_machine, start

from inventory.loader import load_fabric
from inventory.topology import compile_fabric
from pipelines.cli import main as dcvpn

SCRIPTS = ROOT / "examples"
ACME = EXAMPLES / "acme-hybrid.yaml"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NO_NORNIR_UTILS = "import sys, runpy; sys.modules['nornir_utils.plugins.functions'] = None; " \
                  "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
Capture = pytest.CaptureFixture[str]


def run(script: str, *argv: str, plain: bool = False, cwd: Path = ROOT
        ) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) without colours; plain: as if nornir_utils were missing."""
    path = str(SCRIPTS / script)
    cmd = [sys.executable, "-c", NO_NORNIR_UTILS, path, *argv] if plain \
        else [sys.executable, path, *argv]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                         cwd=cwd)
    out, err = ANSI.sub("", res.stdout), ANSI.sub("", res.stderr)
    assert "Traceback" not in out + err, err
    return res.returncode, out, err


def _gateways(fabric: Path, **where: str) -> list[str]:
    compiled = compile_fabric(load_fabric(fabric).fabric)
    return sorted(gw.name for site, gw in compiled.gateways()
                  if all(str(getattr(site if k != "platform" else gw, k)) == v
                         for k, v in where.items()))


def _render(capsys: Capture, fabric: Path, out: Path, *extra: str) -> Path:
    assert dcvpn(["render", "-f", str(fabric), "-o", str(out), *extra]) == 0
    capsys.readouterr()
    return out


# --- render_region.py -------------------------------------------------------------------------

@pytest.mark.parametrize("plain", [False, True], ids=["print_result", "plain"])
def test_render_region_writes_that_region_only(tmp_path: Path, capsys: Capture,
                                               plain: bool) -> None:
    eu = _gateways(ACME, region="eu")
    assert eu and eu != _gateways(ACME)
    code, out, _ = run("render_region.py", str(ACME), "eu", "-o", str(tmp_path / "eu"),
                       plain=plain)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "eu").iterdir()) == eu
    sites = {name.rsplit("-", 1)[0] for name in eu}
    whole = _render(capsys, ACME, tmp_path / "cli", *[a for s in sorted(sites)
                                                       for a in ("--site", s)])
    for gw in eu:
        for f in (whole / gw).iterdir():
            assert (tmp_path / "eu" / gw / f.name).read_bytes() == f.read_bytes()
    if plain:
        assert out.splitlines() == [
            f"{gw}: {_platform(gw)}: {', '.join(sorted(f.name for f in (whole / gw).iterdir()))}"
            for gw in eu]
    else:
        assert out.startswith("render region eu****")
        for gw in eu:
            assert f"* {gw} ** changed : True" in out
        assert "config.cli, config.xml, intent.json" in out  # iosxe's files


def _platform(gateway: str) -> str:
    compiled = compile_fabric(load_fabric(ACME).fabric)
    return next(str(gw.platform) for _, gw in compiled.gateways() if gw.name == gateway)


def test_render_region_without_out_writes_nothing(tmp_path: Path) -> None:
    code, out, _ = run("render_region.py", str(ACME), "us", plain=True, cwd=tmp_path)
    assert code == 0
    assert [line.split(":")[0] for line in out.splitlines()] == _gateways(ACME, region="us")
    assert list(tmp_path.iterdir()) == []


def test_render_region_names_the_regions_there_are() -> None:
    code, out, err = run("render_region.py", str(ACME), "mars")
    assert (code, out) == (2, "")
    assert "no gateway in region 'mars'; regions: eu, us" in err


# --- offline_diff.py --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def acme_old(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("old")
    assert subprocess.run([sys.executable, "-m", "pipelines.cli", "render", "-f", str(ACME),
                           "-o", str(out)], capture_output=True, check=False,
                          cwd=ROOT).returncode == 0
    return out


def _shorter_esp(tmp_path: Path) -> Path:
    text = ACME.read_text(encoding="utf-8")
    assert "lifetime: 1h}" in text
    path = tmp_path / "acme.yaml"
    path.write_text(text.replace("lifetime: 1h}", "lifetime: 30m}"), encoding="utf-8")
    return path


def test_offline_diff_names_the_change_on_the_selected_gateways(tmp_path: Path,
                                                                acme_old: Path) -> None:
    fabric = _shorter_esp(tmp_path)
    code, out, err = run("offline_diff.py", str(fabric), str(acme_old), "--region", "us",
                         "--platform", "junos")
    assert code == 1
    selected = _gateways(ACME, region="us", platform="junos")
    assert len(selected) == 3
    assert f"3 of 3 gateway(s) change: {', '.join(selected)}" in err
    for gw in selected:
        assert f"* {gw} ** changed : True" in out
        assert f"--- old/{gw}/config.set" in out
    assert out.count("gateway: ESP lifetime 1h -> 30m") == 3
    assert "-set security ipsec proposal DCVPN-ESP-PROP lifetime-seconds 3600" in out
    assert "+set security ipsec proposal DCVPN-ESP-PROP lifetime-seconds 1800" in out


def test_offline_diff_agrees_with_dcvpn_diff(tmp_path: Path, acme_old: Path,
                                             capsys: Capture) -> None:
    fabric = _shorter_esp(tmp_path)
    code, out, _ = run("offline_diff.py", str(fabric), str(acme_old), "--hubs", plain=True)
    assert code == 1
    assert dcvpn(["diff", "-f", str(fabric), "--offline", str(acme_old), "--format",
                  "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    hubs = _gateways(ACME, name="fra1") + _gateways(ACME, name="iad1")
    assert [line[3:].split(":")[0] for line in out.splitlines() if line.startswith("== ")] == hubs
    for gw in hubs:
        section = out.split(f"== {gw}: ", 1)[1].split("\n== ", 1)[0]
        expected = [f"{c['scope']}: {c['change']}" for c in doc["gateways"][gw]["semantic"]]
        assert section.splitlines()[:len(expected)] == expected
        for name, text in doc["gateways"][gw]["files"].items():
            assert text.rstrip("\n") in section, f"{gw}/{name}"


def test_offline_diff_without_change_exits_0(acme_old: Path) -> None:
    code, out, err = run("offline_diff.py", str(ACME), str(acme_old), "--site", "par1",
                         plain=True)
    assert code == 0
    assert out == "== par1-gw1: no change\n"
    assert "0 of 1 gateway(s) change: -" in err


def test_offline_diff_refuses_what_it_cannot_use(acme_old: Path, tmp_path: Path) -> None:
    code, _, err = run("offline_diff.py", str(ACME), str(tmp_path / "nothing"))
    assert code == 2 and "no such render output folder" in err
    code, _, err = run("offline_diff.py", str(ACME), str(acme_old), "--site", "nowhere")
    assert code == 2 and "no gateway matches {'site': 'nowhere'}" in err


# --- validate_lab.py --------------------------------------------------------------------------

def _private_fabric(folder: Path, name: str) -> Path:
    """lab3 with its own fabric, site and gateway names: its namespaces are its own."""
    text = (EXAMPLES / "lab3.yaml").read_text(encoding="utf-8")
    for old, new in (("name: lab3", f"name: {name}"), ("ams1", f"{name}a"),
                     ("lon1", f"{name}b"), ("nyc1", f"{name}c")):
        assert old in text
        text = text.replace(old, new)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_lab_says_when_no_lab_is_running(tmp_path: Path) -> None:
    fabric = _private_fabric(tmp_path, "exnone")
    code, out, err = run("validate_lab.py", str(fabric))
    assert (code, out) == (3, "")
    assert err.strip() == (f"no lab of fabric exnone is running (none of its namespaces "
                           f"exists): start one with `sudo dcvpn lab up -f {fabric}`; "
                           "nothing validated")


@pytest.fixture(scope="module")
def private_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    fabric = _private_fabric(tmp_path_factory.mktemp("fabric"), "exlab")
    with lab_machine() as root:
        lab_dir = root / "exlab"
        try:
            start(None, str(fabric), lab_dir)
            yield fabric, lab_dir
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


@pytest.mark.lab
def test_validate_lab_on_a_running_lab(private_lab: tuple[Path, Path]) -> None:
    fabric, lab_dir = private_lab
    code, out, _ = run("validate_lab.py", str(fabric), "--lab-dir", str(lab_dir), "--region",
                       "eu", plain=True)
    assert code == 0, out
    checks = [line for line in out.splitlines() if not line.startswith("== ")]
    assert [line[3:] for line in out.splitlines() if line.startswith("== ")] == [
        "exlaba-gw1", "exlabb-gw1"]
    assert checks and all(line.startswith("PASS  ") for line in checks)
    for kind in ("ike", "child", "bgp", "route", "ping", "mtu"):
        assert any(line.startswith(f"PASS  {kind} ") for line in checks), kind
    # the lab's namespaces exist, but not where it is told to look
    code, _, err = run("validate_lab.py", str(fabric), "--lab-dir", str(lab_dir / "elsewhere"))
    assert code == 3 and "holds none of its gateways" in err
