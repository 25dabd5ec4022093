"""`dcvpn deploy / confirm / rollback` end to end against in-process JunOS emulators that share
one PeerRegistry (a tunnel is up when both committed configurations agree), reached through a
devices.json written here, as `--lab --lab-dir` finds a lab's devices. No root needed.

Every wait is bounded; the emulators' time scale makes a device minute short where a test
waits for a confirm timer.
"""

import asyncio
import copy
import json
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from ncclient import manager  # type: ignore[import-untyped]
from ncclient.transport import session as nc_session  # type: ignore[import-untyped]

from drivers.base import ConfigDriver, DeviceTarget, driver_class
from inventory.model import Fabric, Platform, Transport
from inventory.topology import compile_fabric
from lab.emulators.peers import PeerRegistry
from lab.emulators.ssh_server import NetconfServer, ServerThread
from pipelines import deploy_cmd, deploy_flow
from pipelines.exit_codes import Exit
from tasks.lab_devices import write_lab_devices
from tasks.pki.psk import ensure_psks

USER = "lab"
PASSWORD = "lab-secret"
WAIT = 20.0
SLOW = 1.0  # device seconds are real seconds: no confirm timer fires during a test
FAST = 0.1  # a device minute lasts 6 s: tests that wait for a timer
GATEWAYS = ("dp1-gw1", "dp2-gw1", "dp3-gw1")
OUTCOMES = {"unchanged", "would-change", "committed", "confirmed", "rolled-back",
            "timer-expired", "unreachable", "failed", "not-run"}
CHECK_STATUSES = {"pass", "fail", "skipped", "not-applicable"}


JUNOS_ONLY = ("junos", "junos", "junos")
MIXED = ("junos", "iosxe", "junos")


def fabric_data(profile: str = "strict",
                platforms: tuple[str, ...] = JUNOS_ONLY) -> dict[str, Any]:
    sites = [{"name": f"dp{i}", "id": i, "region": "eu", "asn": 65100 + i,
              "prefixes": [f"10.{i}.0.0/24"],
              "gateways": [{"name": f"dp{i}-gw1", "platform": platform, "transport": "netconf",
                            "host": f"dp{i}-gw1.mgmt.example.net",
                            "public_ip": f"198.51.100.{i}"}]}
             for i, platform in zip((1, 2, 3), platforms, strict=True)]
    return {"fabric": {"name": "dpfab", "topology": "full_mesh",
                       "tunnel_pool": "169.254.0.0/16", "crypto": {"profile": profile},
                       "auth": {"method": "psk"}, "bgp": {"mode": "ebgp"},
                       "mtu": {"path_mtu": 1500}},
            "sites": sites}


class Lab:
    """Three emulated JunOS gateways, their devices.json, PSKs and a fabric file."""

    def __init__(self, root: Path, scale: float,
                 platforms: tuple[str, ...] = JUNOS_ONLY) -> None:
        self.root = root
        self.platforms = dict(zip(GATEWAYS, platforms, strict=True))
        self.registry = PeerRegistry()
        self.threads: dict[str, ServerThread] = {}
        self.lab_dir = root / "lab"
        self.lab_dir.mkdir()
        self.known_hosts = self.lab_dir / "known_hosts"
        self.fabric = root / "fabric.yaml"
        self.report = root / "report.json"
        self.state = root / "state" / "deploy-dpfab.json"
        self.secrets = root / "secrets"
        for name in GATEWAYS:
            server = NetconfServer(self.platforms[name], USER, PASSWORD, root / "emu" / name, scale,
                                   hostname=name,
                                   device_options={"peers": self.registry, "gateway": name})
            self.threads[name] = ServerThread(server).start(timeout=30)
        self.known_hosts.write_text("".join(t.known_hosts_line() for t in self.threads.values()))
        write_lab_devices(self.lab_dir, "dpfab", {
            name: {"platform": self.platforms[name], "transport": "netconf",
                   "host": "127.0.0.1",
                   "port": t.port, "username": USER, "password": PASSWORD,
                   "known_hosts": str(self.known_hosts)}
            for name, t in self.threads.items()})
        self.write_fabric(fabric_data(platforms=platforms))
        compiled = compile_fabric(Fabric.model_validate(fabric_data(platforms=platforms)))
        ensure_psks(self.secrets, [t.name for t in compiled.tunnels])

    def write_fabric(self, data: dict[str, Any]) -> None:
        self.fabric.write_text(yaml.safe_dump(data))

    def stop(self) -> None:
        for thread in self.threads.values():
            thread.stop()

    def deploy(self, *extra: str, command: str = "deploy") -> tuple[int, dict[str, Any]]:
        args = [command, "-f", str(self.fabric), "--report", str(self.report),
                "--state", str(self.state), "--format", "json"]
        if command == "deploy":
            args += ["--lab", "--lab-dir", str(self.lab_dir), "--secrets-dir",
                     str(self.secrets), "--interval", "0.3"]
        code = deploy_cmd.main([*args, *extra])
        report = json.loads(self.report.read_text())
        check_schema(report)
        assert report["exit_code"] == code
        return code, report

    @contextmanager
    def driver(self, name: str, **options: str) -> Iterator[ConfigDriver]:
        target = DeviceTarget(name=name, host="127.0.0.1", port=self.threads[name].port,
                              username=USER, password=PASSWORD, known_hosts=self.known_hosts,
                              timeout=WAIT, options=options)
        drv: ConfigDriver = driver_class(Platform(self.platforms[name]), Transport.NETCONF)(
            target)
        drv.open()
        try:
            yield drv
        finally:
            drv.close()

    def running(self, name: str) -> str:
        with self.driver(name) as drv:
            return drv.get_running()

    def pending(self, name: str, **options: str) -> bool:
        with self.driver(name, **options) as drv:
            return drv.has_pending_commit()

    def commits(self, name: str) -> int:
        with self.session(name) as m:
            return len(m.rpc("<get-commit-information/>").xpath("//commit-history"))

    def session(self, name: str) -> Any:
        return manager.connect(host="127.0.0.1", port=self.threads[name].port, username=USER,
                               password=PASSWORD, device_params={"name": "junos"},
                               hostkey_verify=False, allow_agent=False, look_for_keys=False,
                               timeout=WAIT)

    def candidate_released(self, name: str) -> bool:
        """Nothing of a deploy left in the device's candidate, and its lock free."""
        with self.session(name) as m:
            m.rpc("<lock-configuration/>")  # raises while another session holds it
            m.rpc("<unlock-configuration/>")
        modified: bool = self.threads[name].call(lambda d: d.store.candidate_modified())
        return not modified

    def committed_in_device(self, name: str) -> str:
        """The running configuration straight from the emulator (when SSH is cut off)."""
        from lxml import etree
        running: str = self.threads[name].call(
            lambda d: etree.tostring(d.store.running, encoding="unicode"))
        return running

    def cut_off(self, name: str) -> None:
        """The device stops answering: listener closed, sessions dropped, timers kept."""
        thread = self.threads[name]
        server = thread.server

        async def cut() -> None:
            if server._acceptor is not None:
                server._acceptor.close()
                await server._acceptor.wait_closed()
                server._acceptor = None
            connections = list(server.connections)
            for conn in connections:
                conn.close()
            for conn in connections:  # gone before the test goes on: the next read must fail
                await asyncio.wait_for(conn.wait_closed(), WAIT)

        asyncio.run_coroutine_threadsafe(cut(), thread._loop).result(2 * WAIT)


def wait_until(predicate: Callable[[], bool], what: str, bound: float = WAIT) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def check_schema(report: dict[str, Any]) -> None:
    """The report's JSON schema (pipelines.deploy_report), checked on every report."""
    assert report["schema"] == "dcvpn-deploy-report/2"
    top = {"schema", "run_id", "command", "fabric", "fabric_file", "started", "finished",
           "dry_run", "options", "outcome", "exit_code", "message", "errors", "waves",
           "devices", "timings"}
    assert set(report) == top
    assert set(report["timings"]) <= {"prepare", "diff", "waves"}
    assert all(s >= 0 for s in report["timings"].values())
    assert isinstance(report["run_id"], str) and report["run_id"]
    assert report["command"] in ("deploy", "confirm", "rollback")
    for key in ("started", "finished"):
        assert time.strptime(report[key], "%Y-%m-%dT%H:%M:%SZ")
    assert report["exit_code"] in (0, 1, 2, 3)
    assert isinstance(report["errors"], list)
    for wave in report["waves"]:
        assert set(wave) == {"number", "kind", "region", "gateways", "outcome", "health",
                             "timings"}
        assert set(wave["timings"]) <= {"commit", "health", "confirm"}
        assert ("health" in wave["timings"]) == (wave["health"] is not None)
        assert wave["kind"] in ("first", "canary", "region")
        health = wave["health"]
        if health is not None:
            assert set(health) == {"healthy", "attempts", "seconds", "counts", "failed",
                                   "unreachable", "checks", "not_evaluated"}
            assert set(health["counts"]) == CHECK_STATUSES
            for check in health["checks"]:
                assert set(check) == {"name", "kind", "gateway", "subject", "status",
                                      "expected", "observed", "sites", "gateways"}
                assert check["status"] in ("pass", "fail")
            for group in health["not_evaluated"]:
                assert set(group) == {"status", "kind", "reason", "count", "gateways"}
                assert group["status"] in ("skipped", "not-applicable") and group["count"] > 0
            for status in CHECK_STATUSES:  # every check counted, listed or in a group
                listed = sum(1 for c in health["checks"] if c["status"] == status)
                grouped = sum(g["count"] for g in health["not_evaluated"]
                              if g["status"] == status)
                assert health["counts"][status] == listed + grouped
            assert health["failed"] == [c["name"] for c in health["checks"]
                                        if c["status"] == "fail"]
    for device in report["devices"].values():
        assert set(device) == {"site", "platform", "transport", "wave", "outcome",
                               "armed_seconds", "committed_at", "deadline", "diff", "errors"}
        assert device["outcome"] in OUTCOMES
        if device["diff"] is not None:
            assert set(device["diff"]) == {"changed", "added", "removed", "text"}


def psk_values(lab: Lab) -> list[str]:
    return [p.read_text().strip() for p in (lab.secrets / "psk").iterdir()]


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """ncclient sends a queued request only when its 0.1 s select tick ends; shorten it."""
    monkeypatch.setattr(nc_session, "TICK", 0.005)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    bench = Lab(tmp_path, SLOW)
    try:
        yield bench
    finally:
        bench.stop()


@pytest.fixture
def fast_lab(tmp_path: Path) -> Iterator[Lab]:
    bench = Lab(tmp_path, FAST)
    try:
        yield bench
    finally:
        bench.stop()


def cut_off_after(monkeypatch: pytest.MonkeyPatch, lab: Lab, method: str, gateway: str,
                  wave: int | None = None) -> None:
    """Deployer.<method> (a step of a wave) runs as usual, then `gateway` stops answering
    (after that step of wave `wave` only, when given)."""
    original = getattr(deploy_flow.Deployer, method)

    def step_then_cut(self: deploy_flow.Deployer, step_wave: Any, *rest: Any) -> Any:
        found = original(self, step_wave, *rest)
        if wave is None or step_wave.number == wave:
            lab.cut_off(gateway)
        return found

    monkeypatch.setattr(deploy_flow.Deployer, method, step_then_cut)


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {name: d["outcome"] for name, d in report["devices"].items()}


def checks(report: dict[str, Any], wave: int) -> list[dict[str, Any]]:
    health = report["waves"][wave - 1]["health"]
    assert health is not None
    result: list[dict[str, Any]] = health["checks"]
    return result


def not_evaluated(report: dict[str, Any], wave: int) -> list[dict[str, Any]]:
    health = report["waves"][wave - 1]["health"]
    assert health is not None
    result: list[dict[str, Any]] = health["not_evaluated"]
    return result


# --- the clean path ----------------------------------------------------------------------------

def test_clean_deploy_is_validated_confirmed_and_a_second_run_changes_nothing(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = lab.deploy("--canary", "dp1", "--workers", "2", "--confirm-timeout", "120")
    assert code == Exit.OK, report["errors"]
    assert report["outcome"] == "ok"
    assert [(w["kind"], w["gateways"], w["outcome"]) for w in report["waves"]] == [
        ("canary", ["dp1-gw1"], "confirmed"), ("region", ["dp2-gw1", "dp3-gw1"], "confirmed")]
    assert outcomes(report) == dict.fromkeys(GATEWAYS, "confirmed")
    assert all(d["armed_seconds"] == 120 for d in report["devices"].values())
    # the canary's tunnels all lead to gateways of wave 2: deferred there, checked in wave 2
    assert checks(report, 1) == []
    first = not_evaluated(report, 1)
    assert {(g["status"], g["reason"]) for g in first} == {("skipped", "deferred to wave 2")}
    assert {g["kind"] for g in first} >= {"ike", "child", "bgp"}
    assert report["waves"][0]["health"]["counts"]["skipped"] == sum(g["count"] for g in first)
    second = {c["name"]: c for c in checks(report, 2)}
    tunnels = {t.name for t in compile_fabric(Fabric.model_validate(fabric_data())).tunnels}
    for gw in GATEWAYS:
        for tunnel in tunnels:
            if gw.split("-")[0] in tunnel:
                for kind in ("ike", "child"):
                    assert second[f"{kind} {gw} {tunnel}"]["status"] == "pass"
    bgp = [c for c in second.values() if c["kind"] == "bgp"]
    assert len(bgp) == 12 and {c["status"] for c in bgp} == {"pass"}  # session + prefixes
    assert any(c["observed"] == "1 prefix(es) received" for c in bgp)
    routes = [g for g in not_evaluated(report, 2) if g["kind"] in ("route", "ping")]
    assert {g["kind"] for g in routes} == {"route", "ping"}
    assert {g["status"] for g in routes} == {"not-applicable"}
    assert {g["reason"] for g in routes} == {"the driver's get_state has no routing table",
                                             "the driver's get_state cannot ping"}
    for gw in GATEWAYS:
        assert "<name>DCVPN-GW-" in lab.running(gw) or "DCVPN" in lab.running(gw)
        assert not lab.pending(gw)
    text = lab.report.read_text() + capsys.readouterr().out
    assert not any(key in text for key in psk_values(lab))
    commits = {gw: lab.commits(gw) for gw in GATEWAYS}

    code, again = lab.deploy("--canary", "dp1")
    assert code == Exit.OK
    assert again["outcome"] == "no-changes" and again["waves"] == []
    assert "no changes" in again["message"]
    assert outcomes(again) == dict.fromkeys(GATEWAYS, "unchanged")
    assert {gw: lab.commits(gw) for gw in GATEWAYS} == commits


def test_dry_run_changes_nothing_and_shows_the_diff(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    commits = {gw: lab.commits(gw) for gw in GATEWAYS}
    code = deploy_cmd.main(["deploy", "-f", str(lab.fabric), "--lab", "--lab-dir",
                            str(lab.lab_dir), "--secrets-dir", str(lab.secrets), "--dry-run",
                            "--report", str(lab.report), "--state", str(lab.state)])
    out = capsys.readouterr()
    report = json.loads(lab.report.read_text())
    check_schema(report)
    assert code == Exit.OK and report["outcome"] == "dry-run" and report["dry_run"] is True
    assert outcomes(report) == dict.fromkeys(GATEWAYS, "would-change")
    for gw in GATEWAYS:
        diff = report["devices"][gw]["diff"]
        assert diff["changed"] and diff["added"] > 20 and diff["removed"] == 0
        assert "+          proposal DCVPN-IKE-PROP {" in diff["text"]
        assert "ascii-text <masked>" in diff["text"]
        assert lab.commits(gw) == commits[gw]
        assert "DCVPN" not in lab.running(gw)
    assert "proposal DCVPN-IKE-PROP" in out.out  # text format: the diff on stdout
    assert "nothing was changed" in out.err
    assert not any(key in lab.report.read_text() + out.out for key in psk_values(lab))


# --- failures -------------------------------------------------------------------------------------

def test_a_failing_tunnel_rolls_back_every_device_of_the_wave(lab: Lab) -> None:
    code, _ = lab.deploy("--workers", "3")
    assert code == Exit.OK
    before = {gw: lab.running(gw) for gw in GATEWAYS}
    lab.write_fabric(fabric_data("cbc"))  # dp2 keeps strict: its tunnels cannot agree
    code, report = lab.deploy("--site", "dp1", "--site", "dp3", "--workers", "2",
                              "--settle", "2")
    assert code == Exit.FAILED
    assert report["outcome"] == "rolled-back"
    (wave,) = report["waves"]
    assert wave["gateways"] == ["dp1-gw1", "dp3-gw1"] and wave["outcome"] == "rolled-back"
    failed = wave["health"]["failed"]
    assert failed and all("dp2-gw1" in c["gateways"] for c in wave["health"]["checks"]
                          if c["status"] == "fail")  # only what involves dp2 fails
    assert "ike dp1-gw1 dp1-dp2-p0" in failed and "ike dp3-gw1 dp2-dp3-p0" in failed
    passed = [c["name"] for c in wave["health"]["checks"] if c["status"] == "pass"]
    assert "ike dp1-gw1 dp1-dp3-p0" in passed  # the two new ends agree with each other
    assert outcomes(report) == {"dp1-gw1": "rolled-back", "dp3-gw1": "rolled-back"}
    assert "ike dp1-gw1 dp1-dp2-p0" in report["message"]
    assert "earlier confirmed waves were left as they are" in report["message"]
    for gw in GATEWAYS:  # every device back on its previous configuration
        assert lab.running(gw) == before[gw]
        assert not lab.pending(gw)


def test_a_device_lost_after_commit_is_left_to_its_timer_and_the_others_roll_back(
        fast_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = fast_lab
    before = {gw: lab.running(gw) for gw in GATEWAYS}
    cut_off_after(monkeypatch, lab, "_commit", "dp2-gw1")
    # two device minutes (12 s here): room for the deploy to finish under load before the
    # lost device's own timer fires, and the wait below (20 s) still sees it fire
    code, report = lab.deploy("--workers", "3", "--confirm-timeout", "120", "--settle", "5")
    assert code == Exit.DEVICE
    assert outcomes(report) == {"dp1-gw1": "rolled-back", "dp2-gw1": "unreachable",
                                "dp3-gw1": "rolled-back"}
    lost = report["devices"]["dp2-gw1"]
    assert any("its confirm timer (120s) rolls it back" in e for e in lost["errors"])
    assert report["waves"][0]["health"]["unreachable"].keys() == {"dp2-gw1"}
    assert "lost dp2-gw1" in report["message"]
    for gw in ("dp1-gw1", "dp3-gw1"):
        assert lab.running(gw) == before[gw] and not lab.pending(gw)
    assert "DCVPN" in lab.committed_in_device("dp2-gw1")  # committed, not confirmed ...
    wait_until(lambda: "DCVPN" not in lab.committed_in_device("dp2-gw1"),
               "dp2's own confirm timer to roll it back")  # ... until its timer fired


def test_rollback_all_also_undoes_the_confirmed_canary_when_a_later_wave_fails(
        fast_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = fast_lab
    before = {gw: lab.running(gw) for gw in GATEWAYS}
    cut_off_after(monkeypatch, lab, "_commit", "dp3-gw1", wave=2)
    code, report = lab.deploy("--canary", "dp1", "--workers", "2", "--confirm-timeout", "60",
                              "--settle", "5", "--rollback-all")
    assert code == Exit.DEVICE
    assert [w["outcome"] for w in report["waves"]] == ["rolled-back", "rolled-back"]
    assert outcomes(report) == {"dp1-gw1": "rolled-back", "dp2-gw1": "rolled-back",
                                "dp3-gw1": "unreachable"}
    assert "earlier waves were rolled back too (--rollback-all)" in report["message"]
    for gw in ("dp1-gw1", "dp2-gw1"):
        assert lab.running(gw) == before[gw] and not lab.pending(gw)


def test_a_wave_that_cannot_be_confirmed_takes_back_the_next_wave_committed_meanwhile(
        fast_lab: Lab, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The canary's confirm runs while wave 2 commits: the canary lost after its gate cannot
    be confirmed, so wave 2's fresh commits go back too and the run stops."""
    lab = fast_lab
    before = {gw: lab.running(gw) for gw in GATEWAYS}
    cut_off_after(monkeypatch, lab, "_gate", "dp1-gw1", wave=1)
    code, report = lab.deploy("--canary", "dp1", "--workers", "2", "--confirm-timeout", "120",
                              "--settle", "3")
    assert code == Exit.DEVICE
    assert [w["outcome"] for w in report["waves"]] == ["rolled-back", "rolled-back"]
    assert outcomes(report) == {"dp1-gw1": "unreachable", "dp2-gw1": "rolled-back",
                                "dp3-gw1": "rolled-back"}
    assert report["devices"]["dp2-gw1"]["armed_seconds"] == 120  # it was committed
    assert "could not confirm dp1-gw1" in report["message"]
    assert "wave 2, committed meanwhile, was rolled back too" in report["message"]
    lost = report["devices"]["dp1-gw1"]["errors"]
    assert any("its confirm timer (120s) rolls it back" in e for e in lost)
    for gw in ("dp2-gw1", "dp3-gw1"):
        assert lab.running(gw) == before[gw] and not lab.pending(gw)
    err = capsys.readouterr().err
    # the canary's lines come after wave 2's commit has run, not mixed into its lines
    assert err.index("wave 2/2 (region eu): committing") < err.index(
        "wave 2/2: wave 1 could not be confirmed") < err.index("rolling back dp2-gw1, dp3-gw1")


def test_a_lock_held_elsewhere_is_a_clear_error_and_nothing_changes(lab: Lab) -> None:
    commits = {gw: lab.commits(gw) for gw in GATEWAYS}
    with lab.session("dp2-gw1") as other:
        other.rpc("<lock-configuration/>")
        code, report = lab.deploy()
        other.rpc("<unlock-configuration/>")
    assert code == Exit.DEVICE
    assert report["outcome"] == "failed" and report["waves"] == []
    assert "diff failed on dp2-gw1: nothing was changed on any device" in report["message"]
    (error,) = report["devices"]["dp2-gw1"]["errors"]
    assert "locked by lab" in error and "nothing was changed" in error
    assert outcomes(report)["dp2-gw1"] == "failed"
    assert {outcomes(report)[g] for g in ("dp1-gw1", "dp3-gw1")} == {"not-run"}
    for gw in GATEWAYS:
        assert lab.commits(gw) == commits[gw] and "DCVPN" not in lab.running(gw)
        assert lab.candidate_released(gw)  # the diff's loaded candidates were discarded


def test_the_diff_candidate_is_committed_as_loaded_and_later_waves_are_released_on_failure(
        fast_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit uses the candidate the diff loaded (one load per device); when the canary
    fails, the later waves' loaded candidates are discarded and their locks freed."""
    lab = fast_lab
    loads: dict[str, int] = {}
    original_load = deploy_flow.commit_device.__globals__["_load_and_diff"]

    def counting(driver: Any, config: str, unified: bool = True) -> Any:
        loads[driver.target.name] = loads.get(driver.target.name, 0) + 1
        return original_load(driver, config, unified)

    monkeypatch.setitem(deploy_flow.commit_device.__globals__, "_load_and_diff", counting)
    code, report = lab.deploy("--workers", "3", "--confirm-timeout", "120")
    assert code == Exit.OK and outcomes(report) == dict.fromkeys(GATEWAYS, "confirmed")
    assert loads == dict.fromkeys(GATEWAYS, 1)
    for gw in GATEWAYS:
        assert lab.candidate_released(gw)

    lab.write_fabric(fabric_data("cbc"))
    before = {gw: lab.running(gw) for gw in GATEWAYS}
    cut_off_after(monkeypatch, lab, "_commit", "dp1-gw1")
    code, report = lab.deploy("--canary", "dp1", "--confirm-timeout", "120", "--settle", "3")
    assert code == Exit.DEVICE
    assert outcomes(report) == {"dp1-gw1": "unreachable", "dp2-gw1": "not-run",
                                "dp3-gw1": "not-run"}
    for gw in ("dp2-gw1", "dp3-gw1"):  # diffed and loaded, never committed: released
        assert lab.running(gw) == before[gw] and lab.candidate_released(gw)


# --- pending deploys: confirm / rollback --------------------------------------------------------

def test_no_auto_confirm_leaves_commits_pending_for_confirm_and_rollback(lab: Lab) -> None:
    code, report = lab.deploy("--no-auto-confirm", "--workers", "3")
    assert code == Exit.OK and report["outcome"] == "pending-confirmation"
    assert outcomes(report) == dict.fromkeys(GATEWAYS, "committed")
    assert stat.S_IMODE(lab.state.stat().st_mode) == 0o600
    state = json.loads(lab.state.read_text())
    assert state["run_id"] == report["run_id"] and sorted(state["devices"]) == list(GATEWAYS)
    assert all(lab.pending(gw) for gw in GATEWAYS)
    code, blocked = lab.deploy()  # a second deploy waits for this one
    assert code == Exit.FAILED and blocked["outcome"] == "refused"
    assert "waiting for confirmation" in blocked["message"]

    code, confirmed = lab.deploy(command="confirm")
    assert code == Exit.OK and confirmed["command"] == "confirm"
    assert confirmed["run_id"] == report["run_id"]
    assert outcomes(confirmed) == dict.fromkeys(GATEWAYS, "confirmed")
    assert not lab.state.exists()
    for gw in GATEWAYS:
        assert not lab.pending(gw) and "DCVPN" in lab.running(gw)
    code, again = lab.deploy(command="confirm")
    assert code == Exit.FAILED and "no deploy is waiting for confirmation" in again["message"]

    before = {gw: lab.running(gw) for gw in GATEWAYS}
    lab.write_fabric(fabric_data("cbc"))
    code, _ = lab.deploy("--no-auto-confirm", "--workers", "3")
    assert code == Exit.OK
    assert lab.running("dp1-gw1") != before["dp1-gw1"]
    code, rolled = lab.deploy(command="rollback")
    assert code == Exit.OK and outcomes(rolled) == dict.fromkeys(GATEWAYS, "rolled-back")
    assert not lab.state.exists()
    for gw in GATEWAYS:
        assert lab.running(gw) == before[gw] and not lab.pending(gw)


def test_confirm_after_the_timer_expired_names_the_devices(fast_lab: Lab) -> None:
    lab = fast_lab
    code, report = lab.deploy("--no-auto-confirm", "--workers", "3", "--confirm-timeout", "60",
                              "--settle", "5")
    assert code == Exit.OK, report["errors"]
    for gw in GATEWAYS:
        wait_until(lambda gw=gw: "DCVPN" not in lab.committed_in_device(gw),  # type: ignore[misc]
                   f"{gw}'s confirm timer")
    code, late = lab.deploy(command="confirm")
    assert code == Exit.FAILED
    assert outcomes(late) == dict.fromkeys(GATEWAYS, "timer-expired")
    assert late["message"].startswith("cannot confirm: ")
    for gw in GATEWAYS:  # each device says why, in its own words
        assert f"{gw}: cannot confirm: the confirm timer already expired" in late["message"]
    assert "nothing was confirmed" in late["message"]
    assert not lab.state.exists()
    for gw in GATEWAYS:
        assert "DCVPN" not in lab.running(gw)


# --- bad input ----------------------------------------------------------------------------------

def test_bad_input_is_exit_2_with_a_report(lab: Lab) -> None:
    code, report = lab.deploy("--settle", "300", "--confirm-timeout", "300")
    assert code == Exit.BAD_INPUT and report["outcome"] == "bad-input"
    assert "--settle 300s leaves no time to confirm" in report["message"]
    code, report = lab.deploy("--canary", "nowhere")
    assert code == Exit.BAD_INPUT and "--canary nowhere: no such site" in report["message"]
    broken = copy.deepcopy(fabric_data())
    broken["sites"][1]["gateways"][0]["name"] = "dp9-gw1"  # not in the lab
    lab.write_fabric(broken)
    code, report = lab.deploy()
    assert code == Exit.BAD_INPUT and "has no device for dp9-gw1" in report["message"]


# --- IOS-XE beside JunOS ------------------------------------------------------------------------

@pytest.fixture
def mixed_lab(tmp_path: Path) -> Iterator[Lab]:
    from netconf_support import require_yang
    require_yang()
    bench = Lab(tmp_path, SLOW, MIXED)
    try:
        yield bench
    finally:
        bench.stop()


def test_iosxe_and_junos_deploy_and_a_new_process_confirms_with_the_persist_id(
        mixed_lab: Lab) -> None:
    lab = mixed_lab
    code, report = lab.deploy("--no-auto-confirm", "--workers", "3")
    assert code == Exit.OK, report["errors"]
    assert outcomes(report) == dict.fromkeys(GATEWAYS, "committed")
    (wave,) = report["waves"]
    passed = {c["name"] for c in wave["health"]["checks"] if c["status"] == "pass"}
    assert {"ike dp2-gw1 dp1-dp2-p0", "child dp1-gw1 dp1-dp2-p0",
            "ike dp2-gw1 dp2-dp3-p0"} <= passed  # both ends of the IOS-XE tunnels
    tokens = json.loads(lab.state.read_text())["devices"]["dp2-gw1"]["tokens"]
    persist_id = tokens["persist_id"]
    assert persist_id and persist_id not in lab.report.read_text()  # the state file only
    assert lab.pending("dp2-gw1", persist_id=persist_id)

    code, confirmed = lab.deploy(command="confirm")
    assert code == Exit.OK, confirmed["errors"]
    assert outcomes(confirmed) == dict.fromkeys(GATEWAYS, "confirmed")
    assert not lab.pending("dp2-gw1", persist_id=persist_id)
    assert "DCVPN" in lab.running("dp2-gw1")
    code, again = lab.deploy()
    assert code == Exit.OK and again["outcome"] == "no-changes"
