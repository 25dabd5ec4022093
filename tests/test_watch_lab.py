"""`dcvpn watch` against a real 3-site lab (tests/fabrics/wt-watch.yaml, one lab for the module)
with a TCP service in wt2 for the application probe. Faults are injected one after the other
while `dcvpn watch` runs as its own process (stopped with SIGTERM): a charon killed (restarted
through `dcvpn lab heal`, its tunnels recover, the webhook gets every alert), an IKE SA removed
at both ends without either end told (re-initiated), a limit of one action per hour (the second
kill is refused and said so), and `lab down` stopping the restarted daemons too.
"""

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from lab_support import Lab, cli, footprint, lab, lab_machine, leftovers
from test_watch import Receiver

from lab import procs
from pipelines import lab_cmd, watch_cmd
from tasks.validate_checks import Kind, Status

FABRIC = str(ROOT / "tests" / "fabrics" / "wt-watch.yaml")
SERVICE = ("10.232.0.1", 8080)  # wt2's `web` probe in the fabric
STATE_KINDS = frozenset({Kind.IKE, Kind.CHILD, Kind.BGP, Kind.ROUTE})
# a TCP service: accept and close, forever (stopped by the fixture)
SERVER = """\
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""
Alert = dict[str, Any]


@dataclass
class WatchLab:
    lab: Lab
    root: Path
    service: subprocess.Popen[str]  # the TCP service in wt2 (not the lab's: stop before down)
    restarted: list[procs.ProcessRecord] = field(default_factory=list)


def _service(namespace: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-I", "-c",
                             SERVER, SERVICE[0], str(SERVICE[1])],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    assert ready and proc.stdout.readline().strip() == "ready", "the test service did not start"
    return proc


@pytest.fixture(scope="module")
def wtlab() -> Iterator[WatchLab]:
    with lab_machine() as root:
        lab_dir = root / "wtwatch"
        service = None
        try:
            code, out, err = lab(None, "up", "-f", FABRIC, "--lab-dir", str(lab_dir),
                                 "--format", "json", "--timeout", "60")
            assert code == 0, err
            service = _service("dcvpn-wt2-gw1")
            yield WatchLab(Lab(FABRIC, lab_dir, json.loads(out)), root, service)
        finally:
            if service is not None and service.poll() is None:
                service.kill()
                service.wait(timeout=10)
            lab(None, "down", "--lab-dir", str(lab_dir))


class Watcher:
    """`dcvpn watch` as its own process; its stdout alerts are collected as they come."""

    def __init__(self, wl: WatchLab, *extra: str) -> None:
        argv = [sys.executable, "-m", "pipelines.cli", "watch", "-f", FABRIC, "--lab-dir",
                str(wl.lab.lab_dir), "--interval", "1", "--duration", "150", *extra]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.alerts: list[Alert] = []
        self.stderr = ""
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._out, daemon=True),
                         threading.Thread(target=self._err, daemon=True)]
        for t in self._threads:
            t.start()

    def _out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.alerts.append(json.loads(line))

    def _err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def seen(self) -> list[Alert]:
        with self._lock:
            return list(self.alerts)

    def wait_for(self, what: str, match: Callable[[Alert], bool],
                 timeout: float = 90.0) -> Alert:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((a for a in self.seen() if match(a)), None)
            if found is not None:
                return found
            assert self.proc.poll() is None, f"watch ended early: {self.stderr}"
            time.sleep(0.2)
        raise AssertionError(f"no alert {what} within {timeout}s; alerts: "
                             f"{json.dumps(self.seen(), indent=1)}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        for t in self._threads:
            t.join(timeout=10)
        return code

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def alert(kind: str, gateway: str, **fields: str) -> Callable[[Alert], bool]:
    return lambda a: (a["kind"] == kind and a["gateway"] == gateway
                      and all(a.get(k) == v for k, v in fields.items()))


def kill_charon(wl: WatchLab, gateway: str) -> procs.ProcessRecord:
    record = wl.lab.record(gateway, "charon")
    assert procs.is_running(record)
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while procs.is_running(record) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):  # lab up ran in this process
            os.waitpid(record.pid, os.WNOHANG)
        time.sleep(0.05)
    assert not procs.is_running(record)
    return record


def swanctl(wl: WatchLab, gateway: str, *argv: str) -> str:
    folder = wl.lab.lab_dir / gateway
    env = {**os.environ, "STRONGSWAN_CONF": str(folder / "strongswan.conf"),
           "SWANCTL_DIR": str(folder)}
    done = subprocess.run(["swanctl", *argv], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    return done.stdout + done.stderr


def wait_healthy(wl: WatchLab) -> None:
    results = wl.lab.wait(lambda rs: all(r.status is Status.PASS for r in rs), STATE_KINDS,
                          timeout=40)
    assert [r.name for r in results if r.status is not Status.PASS] == []


def metrics_cycles(path: Path) -> int:
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            if line.startswith("dcvpn_watch_cycles_total "):
                return int(line.split()[1])
    return 0


def wait_cycles(path: Path, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while metrics_cycles(path) < n:
        assert time.monotonic() < deadline, f"fewer than {n} watch cycles in {timeout}s"
        time.sleep(0.2)


# --- the tests (in this order: each leaves the lab healthy for the next) ----------------------

@pytest.mark.lab
def test_lab_healthy_fabric_one_cycle(wtlab: WatchLab,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    metrics = wtlab.root / "healthy.prom"
    code, out, err = cli(capsys, watch_cmd.main, "watch", "-f", FABRIC, "--lab-dir",
                         str(wtlab.lab.lab_dir), "--cycles", "1", "--metrics-file",
                         str(metrics), "--format", "json")
    lines = [json.loads(ln) for ln in out.splitlines()]
    assert code == 0, out + err
    assert [ln["kind"] for ln in lines] == ["summary"]  # nothing down: no alert
    assert lines[0]["down"] == [] and lines[0]["cycles"] == 1
    text = metrics.read_text().splitlines()
    for check, gw, subject in (("probe", "wt1-gw1", "wt2/web from wt1"),
                               ("probe", "wt3-gw1", "wt2/web from wt3"),
                               ("ping", "wt1-gw1", "wt1->wt2"),
                               ("tunnel", "wt2-gw1", "wt2-wt3-p0"),
                               ("prefixes", "wt3-gw1", "169.254.0.16"),
                               ("route", "wt1-gw1", "10.233.0.0/24"),
                               ("daemon", "wt2-gw1", "charon")):
        assert (f'dcvpn_watch_check_up{{check="{check}",gateway="{gw}",subject="{subject}"}} 1'
                in text)
    assert not [ln for ln in text if ln.startswith("dcvpn_watch_check_up") and
                ln.endswith(" 0")]
    # the fabric's runtime families are in the same file
    assert any(ln.startswith('dcvpn_tunnel_up{tunnel="wt1-wt2-p0",gateway="wt1-gw1"')
               and ln.endswith(" 1") for ln in text)


@pytest.mark.lab
def test_lab_killed_charon_is_restarted_alerted_and_posted(wtlab: WatchLab) -> None:
    metrics = wtlab.root / "kill.prom"
    with Receiver() as hook, Watcher(wtlab, "--webhook", hook.url, "--metrics-file",
                                     str(metrics), "--settle", "15") as w:
        wait_cycles(metrics, 1)
        assert [a for a in w.seen() if a["gateway"] == "wt2-gw1"] == []
        old = kill_charon(wtlab, "wt2-gw1")
        down = w.wait_for("charon down", alert("down", "wt2-gw1", check="daemon",
                                               subject="charon"))
        assert down["action"] == "restart charon" and down["from"] == "up"
        assert down["reason"] == f"pid {old.pid} recorded by the lab is gone"
        done = w.wait_for("restart", alert("action", "wt2-gw1", action="restart charon"))
        assert done["result"] == "ok", done
        assert done["reason"] == f"charon is not running: pid {old.pid} recorded by the lab is gone"
        for tunnel in ("wt1-wt2-p0", "wt2-wt3-p0"):
            w.wait_for(f"{tunnel} recovered", alert("recovered", "wt2-gw1", check="tunnel",
                                                    subject=tunnel))
        w.wait_for("ping recovered", lambda a: a["kind"] == "recovered"
                   and a["check"] == "ping" and "wt2" in a["subject"])
        code = w.stop()
        assert code == 0, w.stderr
        assert "stopped by SIGTERM" in w.stderr
        # everything on stdout was also POSTed, in order
        assert hook.received == w.seen()
    assert [a for a in w.seen() if a["kind"] == "action"] == [done]
    new = wtlab.lab.record("wt2-gw1", "charon")
    assert new.pid != old.pid and procs.is_running(new)
    assert old not in wtlab.lab.state().processes  # the dead record was replaced
    wtlab.restarted.append(new)
    wait_healthy(wtlab)


@pytest.mark.lab
def test_lab_vanished_sa_is_reinitiated(wtlab: WatchLab) -> None:
    tunnel = "wt1-wt2-p0"
    # both ends drop the IKE SA and neither hears of it (their DELETEs are blocked), so
    # neither close_action nor DPD brings it back: only an initiate does
    block = ("table inet wtblock {\n  chain out {\n"
             "    type filter hook output priority 0; policy accept;\n"
             "    udp dport { 500, 4500 } drop\n  }\n}\n")
    for gw in ("wt1-gw1", "wt2-gw1"):
        subprocess.run(["ip", "netns", "exec", f"dcvpn-{gw}", "nft", "-f", "-"], input=block,
                       text=True, check=True, timeout=10)
    try:
        for gw in ("wt1-gw1", "wt2-gw1"):
            swanctl(wtlab, gw, "--terminate", "--ike", tunnel, "--force", "--timeout", "1")
    finally:
        for gw in ("wt1-gw1", "wt2-gw1"):
            subprocess.run(["ip", "netns", "exec", f"dcvpn-{gw}", "nft", "delete", "table",
                            "inet", "wtblock"], check=True, timeout=10)
    assert tunnel not in swanctl(wtlab, "wt1-gw1", "--list-sas")
    with Watcher(wtlab, "--heal-after", "2", "--settle", "15") as w:
        down = w.wait_for("tunnel down", alert("down", "wt1-gw1", check="tunnel",
                                               subject=tunnel))
        assert down["reason"].startswith("IKE SA none") and down["from"] is None
        done = w.wait_for("initiate", alert("action", "wt1-gw1", tunnel=tunnel))
        assert (done["action"], done["result"]) == (f"initiate {tunnel}", "ok"), done
        assert done["reason"].startswith("tunnel down for 2 cycles: IKE SA none")
        for gw in ("wt1-gw1", "wt2-gw1"):
            w.wait_for(f"{tunnel} recovered at {gw}",
                       alert("recovered", gw, check="tunnel", subject=tunnel))
        assert w.stop() == 0, w.stderr
    assert [a["action"] for a in w.seen() if a["kind"] == "action"] == [f"initiate {tunnel}"]
    wait_healthy(wtlab)


@pytest.mark.lab
def test_lab_action_limit_refuses_and_says_so(wtlab: WatchLab,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    metrics = wtlab.root / "limit.prom"
    with Watcher(wtlab, "--max-actions-per-hour", "1", "--settle", "3", "--metrics-file",
                 str(metrics)) as w:
        wait_cycles(metrics, 1)
        kill_charon(wtlab, "wt3-gw1")
        first = w.wait_for("restart", alert("action", "wt3-gw1", action="restart charon"))
        assert first["result"] == "ok", first
        w.wait_for("charon recovered", alert("recovered", "wt3-gw1", check="daemon",
                                             subject="charon"))
        restarted = wtlab.lab.record("wt3-gw1", "charon")
        wtlab.restarted.append(restarted)
        kill_charon(wtlab, "wt3-gw1")
        refused = w.wait_for("rate-limited", alert("rate-limited", "wt3-gw1"))
        assert refused["action"] == "restart charon"
        assert refused["reason"].startswith(
            "1 action(s) on wt3-gw1 in the last hour (limit 1): not done, charon is not "
            f"running: pid {restarted.pid}")
        at = metrics_cycles(metrics)
        wait_cycles(metrics, at + 4)  # no further action, and the limit is said only once
        assert w.stop() == 0, w.stderr
    actions = [a for a in w.seen() if a["kind"] == "action"]
    assert actions == [first]
    assert len([a for a in w.seen() if a["kind"] == "rate-limited"]) == 1
    assert 'dcvpn_watch_actions_refused_total{gateway="wt3-gw1"}' in metrics.read_text()
    assert not procs.is_running(wtlab.lab.record("wt3-gw1", "charon"))
    # by hand: the same heal watch would have done
    code, out, err = cli(capsys, lab_cmd.main, "lab", "heal", "wt3-gw1", "--lab-dir",
                         str(wtlab.lab.lab_dir), "--restart", "charon", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["changed"] is True
    again = wtlab.lab.record("wt3-gw1", "charon")
    assert procs.is_running(again)
    wtlab.restarted.append(again)
    code, out, _ = cli(capsys, lab_cmd.main, "lab", "heal", "wt3-gw1", "--lab-dir",
                       str(wtlab.lab.lab_dir), "--restart", "charon", "--format", "json")
    assert code == 0 and json.loads(out)["changed"] is False  # it runs: nothing to do
    wait_healthy(wtlab)


@pytest.mark.lab
def test_lab_down_stops_the_restarted_daemons(wtlab: WatchLab) -> None:
    restarted = [r for r in wtlab.restarted if procs.is_running(r)]
    assert len(restarted) == 2  # wt2's charon, and wt3's restarted by hand (the other died)
    seen = footprint(wtlab.lab.lab_dir)
    assert set(restarted) <= set(seen.processes)
    wtlab.service.kill()  # not the lab's: down would leave its namespace to it
    wtlab.service.wait(timeout=10)
    code, _, err = lab(None, "down", "--lab-dir", str(wtlab.lab.lab_dir))
    assert code == 0, err
    assert leftovers(seen) == []
    assert not any(procs.is_running(r) for r in wtlab.restarted)
