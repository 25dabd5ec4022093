"""bench/bench_emulators.py: a tiny run end to end, and its verifier catching what a run can
leave behind (a pending confirmed commit, a held lock, a lost change)."""

import importlib.util
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "bench_emulators.py"
TIME_SCALE = 0.02  # real seconds per device second
CONFIRM_MINUTES = 10  # the verifier test's unconfirmed commits: 12 s real


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_emulators", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_verifies_and_reports_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--emulators", "4", "--clients", "2", "--cycles", "2",
         "--client-procs", "2", "--time-scale", str(TIME_SCALE), "--confirm-minutes", "1",
         "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(done.stdout)
    assert data["ok"] is True
    verification = data["verification"]
    assert verification["ok"] is True, verification["problems"]
    # 2 clients x 2 cycles over 2 devices each: every device took one confirmed change
    assert (verification["devices"], verification["devices_ok"],
            verification["devices_changed"]) == (4, 4, 4)
    assert data["emulators"] == {"junos": 2, "iosxe": 2}
    assert data["errors"] == {"count": 0, "by_op": {}, "samples": []}
    load = data["load"]
    assert (load["cycles"], load["ops"]) == (4, 20)
    assert load["ops_per_s"] == pytest.approx(20 / load["wall_s"], rel=0.05)
    assert load["cycles_per_s"] == pytest.approx(4 / load["wall_s"], rel=0.05)
    for kind, count in {"connect": 4, "lock": 4, "load": 4, "commit_confirmed": 4,
                        "confirm": 4, "unlock": 4, "cycle": 4}.items():
        row = data["latency"][kind]
        assert row["count"] == count, kind
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"], kind
        assert row["p50_junos_ms"] > 0 and row["p50_iosxe_ms"] > 0, kind
    cycle, parts = data["latency"]["cycle"], ("lock", "load", "commit_confirmed", "confirm",
                                               "unlock")
    assert cycle["max_ms"] >= max(data["latency"][p]["p50_ms"] for p in parts)
    server = data["server"]
    assert server["peak_rss_mb"] >= server["rss_mb_ready"] > 0
    assert server["cpu_s"] > 0 and server["cpu_pct_of_core"] > 0
    assert data["settings"]["confirm_window_s"] == pytest.approx(60 * TIME_SCALE)
    assert {"cores", "loadavg_before", "busy_pct_of_machine"} <= set(data["machine"])


def test_plan_gives_each_client_its_own_devices_of_both_flavours() -> None:
    bench = _bench()
    names = bench.plan(200, 50)
    assert Counter(p for _, p in names) == {"junos": 100, "iosxe": 100}
    devices = [bench.Device(n, p, 1000 + i, "key") for i, (n, p) in enumerate(names)]
    owned = bench.assign(devices, 50)
    assert sorted(d.name for c in owned for d in c) == sorted(n for n, _ in names)
    assert all(len(c) == 4 and {d.platform for d in c} == {"junos", "iosxe"} for c in owned)


def test_bad_options_exit_2() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--emulators", "2", "--clients", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--emulators must be at least --clients" in done.stderr


def test_verifier_catches_pending_commit_held_lock_and_lost_change(tmp_path: Path) -> None:
    bench = _bench()
    names = [("bench-000", "junos"), ("bench-001", "iosxe")]
    password = "verifier-test-login"
    window = CONFIRM_MINUTES * 60 * TIME_SCALE
    with bench.supervisor(tmp_path, names, password, TIME_SCALE) as (_, devices, _):
        sessions = [bench.connect(d, password, 30.0) for d in devices]
        try:
            for session, device in zip(sessions, devices, strict=True):
                session.lock("candidate")
                bench.load(session, device, bench.hostname(device, 1))
                session.commit(confirmed=True, timeout=str(CONFIRM_MINUTES * 60))
            committed = time.monotonic()
            # the client believes cycle 1 was confirmed on both devices
            claimed = [{"confirmed": {d.name: 1 for d in devices}}]
            held = bench.verify(devices, claimed, password, 30.0)
            assert time.monotonic() - committed < window, "verification outlasted the window"
        finally:
            for session in sessions:
                session.close_session()
        junos, iosxe = (d.name for d in devices)
        problems = "\n".join(held["problems"])
        assert held["ok"] is False and held["devices_ok"] == 0
        assert f"{junos}: cannot lock candidate" in problems
        assert f"{junos}: a confirmed commit is pending" in problems
        assert f"{iosxe}: cannot lock running" in problems
        assert f"{iosxe}: cannot lock candidate" in problems
        assert f"{iosxe}: cancel-commit probe" in problems
        assert "host-name" not in problems  # the change is still in running meanwhile

        time.sleep(max(0.0, committed + window + 1.0 - time.monotonic()))
        lost = bench.verify(devices, claimed, password, 30.0)
        problems = "\n".join(lost["problems"])
        assert lost["ok"] is False
        for device in devices:
            assert (f"{device.name}: committed host-name {device.name!r}, expected "
                    f"{bench.hostname(device, 1)!r}") in problems
        assert f"{junos}: 1 automatic rollback(s) in the commit history" in problems
        assert "cannot lock" not in problems and "pending" not in problems

        nothing_claimed = bench.verify(devices, [{"confirmed": {}}], password, 30.0)
        assert nothing_claimed["problems"] == [f"{junos}: 1 automatic rollback(s) in the "
                                               "commit history"]
