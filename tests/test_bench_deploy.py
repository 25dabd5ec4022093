"""bench/bench_deploy.py end to end on a tiny fabric (4 emulated gateways, 2 workers), so the
bench does not rot: every run ends as the bench expects, every figure is there, and every
device of the fleet deploy ended confirmed."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from netconf_support import require_yang

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "bench_deploy.py"


def _bench() -> ModuleType:
    sys.path.insert(0, str(BENCH.parent))  # it imports gen_fabric beside it
    try:
        spec = importlib.util.spec_from_file_location("bench_deploy", BENCH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH.parent))


def test_tiny_bench_deploys_confirms_and_reports_every_figure() -> None:
    require_yang()  # the IOS-XE emulators validate against the vendor YANG
    done = subprocess.run([sys.executable, str(BENCH), "--gateways", "4", "--workers", "2",
                           "--rounds", "2", "--bound", "240", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert data["missed"] == []
    assert data["settings"]["gateways"] == 4 and data["settings"]["workers"] == 2
    assert data["settings"]["rounds"] == 2
    assert sorted((r["round"], r["name"]) for r in data["runs"]) == [
        (1, "again"), (1, "fleet"), (1, "single-iosxe"), (1, "single-junos"),
        (2, "fleet"), (2, "single-iosxe"), (2, "single-junos")]
    # each round starts from factory configurations: its fleet deploy changes every device
    assert [r["changed"] for r in data["runs"] if r["name"] == "fleet"] == [4, 4]
    every = data["runs"]
    runs = {r["name"]: r for r in every if r["round"] == 1}

    fleet = runs["fleet"]
    assert (fleet["exit_code"], fleet["outcome"]) == (0, "ok")
    assert fleet["gateways"] == fleet["changed"] == fleet["confirmed"] == 4
    # one hub site of 2 gateways: never both hub gateways in one wave, regions apart
    assert sum(w["gateways"] for w in fleet["waves"]) == 4 and len(fleet["waves"]) >= 2
    assert all(w["outcome"] == "confirmed" for w in fleet["waves"])
    assert set(fleet["timings"]) == {"prepare", "diff", "waves"}
    for wave in fleet["waves"]:
        assert set(wave["timings"]) == {"commit", "health", "confirm"}
        assert all(s > 0 for s in wave["timings"].values())
        assert wave["health_rounds"] >= 1
    # a wave's confirm runs beside the next wave's commit: commits, gates and the last
    # confirm follow one another
    waves = fleet["waves"]
    serial = sum(w["timings"]["commit"] + w["timings"]["health"] for w in waves)
    assert serial + waves[-1]["timings"]["confirm"] <= fleet["timings"]["waves"] + 0.01
    assert fleet["timings"]["waves"] + fleet["timings"]["diff"] < fleet["wall_s"]

    again = runs["again"]
    assert (again["exit_code"], again["outcome"], again["changed"]) == (0, "no-changes", 0)
    assert again["waves"] == []

    for name in ("single-junos", "single-iosxe"):
        single = runs[name]
        assert (single["exit_code"], single["outcome"]) == (0, "ok"), single["error"]
        assert single["gateways"] == single["changed"] == single["confirmed"] == 1
        assert len(single["waves"]) == 1

    for run in runs.values():
        assert run["wall_s"] > 0 and run["peak_rss_mb"] > 10 and run["cpu_s"] > 0
    fastest = min(r["wall_s"] for r in every if r["name"].startswith("single-"))
    fleets = [r["wall_s"] for r in every if r["name"] == "fleet"]
    assert data["fleet_vs_single"] == round(min(fleets) / fastest, 2)
    singles = sorted(r["wall_s"] for r in every if r["name"].startswith("single-"))
    assert data["fleet_vs_single_median"] == round(
        (fleets[0] + fleets[1]) / 2 / ((singles[1] + singles[2]) / 2), 2)
    host = data["emulator_host"]
    assert host["emulators"] == 4 and host["startup_s"] > 0
    assert host["peak_rss_mb"] >= host["rss_mb_end"] > 10

    text = _bench().table(data)  # the Markdown the bench prints without --json
    assert "| fleet | 1 | 4 | 4 |" in text and "| fleet | 2 | 4 | 4 |" in text
    assert "| wave 1 (" in text
    assert f"{data['fleet_vs_single']:.2f}x (target < 6x). Result: ok" in text


def test_bad_options_are_refused_with_exit_2_before_anything_starts() -> None:
    for bad in (["--rounds", "0"], ["--gateways", "3"], ["--workers", "0"], ["--bound", "0"]):
        done = subprocess.run([sys.executable, str(BENCH), *bad], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 2, (bad, done.stderr[-500:])
        assert "--rounds at least 1" in done.stderr and "Traceback" not in done.stderr


def test_accept_sets_the_fabric_import_ranges_and_keeps_each_filter_small() -> None:
    bench = _bench()
    listed = bench.fabric_data(8)
    ranged = bench.fabric_data(8, ("10.0.0.0/8",))
    assert "accept" not in listed["fabric"].get("bgp", {})
    assert ranged["fabric"]["bgp"]["accept"] == ["10.0.0.0/8"]
    assert ranged["sites"] == listed["sites"]  # the same gateways, only the filters differ


def test_a_bad_accept_range_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--accept", "10.0.0.0/33"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--accept 10.0.0.0/33" in done.stderr and "Traceback" not in done.stderr
