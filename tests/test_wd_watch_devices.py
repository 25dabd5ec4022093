"""`dcvpn watch --devices`: gateways read and healed through their drivers, no lab, no root.

The rules for actions a device cannot do (never decided, said once, never counted), the
strongSwan heal commands per layout, the strongSwan driver's HealingDriver against a host
that is a temp folder behind a loopback SSH server (swanctl and systemctl stand-ins record
what they were asked), the watch loop healing through that driver within the hourly limit,
and the command end to end against JunOS and IOS-XE NETCONF emulators deployed by dcvpn
deploy (credentials and known_hosts from DCVPN_* as deploy takes them).
"""

import json
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import require_binary
from lab_support import cli
from ssh_exec_support import PASSWORD, USER, ExecServer

from drivers.base import DeviceTarget
from drivers.errors import DriverError, UnsupportedError
from drivers.healing import HealingDriver, healing_of
from drivers.junos_netconf import JunosNetconfDriver
from drivers.strongswan import StrongswanSshDriver
from drivers.strongswan_host import LocalRunner, Runner
from drivers.strongswan_layout import local_layout, ssh_layout
from inventory.loader import load_fabric
from inventory.model import Platform
from inventory.topology import CompiledFabric, compile_fabric
from lab.emulators.peers import PeerRegistry
from lab.emulators.ssh_server import NetconfServer, ServerThread
from pipelines import deploy_cmd, watch_cmd
from pipelines.watch_alerts import AlertSink
from pipelines.watch_devices import DeviceWatch, device_watch
from tasks.pki.psk import ensure_psks
from tasks.validate_expect import expect_fabric
from tasks.watch_observe import Cycle, Targets
from tasks.watch_rules import (
    ActionKind,
    AlertKind,
    Check,
    HealPolicy,
    Observation,
    WatchState,
    step,
)

A, B = "wd1-gw1", "wd2-gw1"
TUNNEL = "wd1-wd2-p0"
q = shlex.quote


# --- rules: what a device cannot do ---------------------------------------------------------------

def _tunnel(at: str, peer: str, up: bool) -> Observation:
    return Observation(Check.TUNNEL, at, TUNNEL, up, "IKE SA none" if not up else "up",
                       TUNNEL, peer)


def _answering() -> list[Observation]:
    return [Observation(Check.GATEWAY, g, g, True, "driver connected") for g in (A, B)]


def _cycles(policy: HealPolicy, ups: list[bool]) -> list[Any]:
    state, steps = WatchState(), []
    for i, up in enumerate(ups):
        result = step(state, [*_answering(), _tunnel(A, B, up), _tunnel(B, A, up)],
                      1000.0 + 10 * i, policy)
        state = result.state
        steps.append(result)
    return steps


def test_wd_unsupported_is_said_once_per_outage_and_never_counted() -> None:
    why = "not supported on junos: heal it by hand"
    policy = HealPolicy(True, 1, 2, 0.0, frozenset({A, B}), unsupported={
        (A, ActionKind.INITIATE): why, (B, ActionKind.INITIATE): why})
    steps = _cycles(policy, [False, False, False, True, False, False])
    assert all(s.actions == () and s.refused == () for s in steps)
    said = [[a for a in s.alerts if a.kind is AlertKind.UNSUPPORTED] for s in steps]
    assert [len(x) for x in said] == [0, 1, 0, 0, 0, 1]  # at heal_after, once per outage
    alert = said[1][0].as_dict()
    assert (alert["kind"], alert["gateway"], alert["action"], alert["result"],
            alert["detail"]) == ("not-supported", A, f"initiate {TUNNEL}", "not-supported", why)
    assert alert["reason"] == "tunnel down for 2 cycles: IKE SA none"
    assert steps[-1].state.actions == {}  # nothing counted against the limit
    assert not any(a.kind is AlertKind.RATE_LIMITED for s in steps for a in s.alerts)


def test_wd_the_end_that_can_heal_takes_the_tunnel() -> None:
    policy = HealPolicy(True, 3, 1, 0.0, frozenset({A, B}),
                        unsupported={(A, ActionKind.INITIATE): "not supported on iosxe"})
    (first,) = _cycles(policy, [False])
    assert [(a.kind, a.gateway) for a in first.actions] == [(ActionKind.INITIATE, B)]
    assert not any(a.kind is AlertKind.UNSUPPORTED for a in first.alerts)


def test_wd_unsupported_restart_of_a_dead_daemon() -> None:
    why = "not supported on strongswan over local: no restart command"
    policy = HealPolicy(True, 3, 1, 0.0, frozenset({A}),
                        unsupported={(A, ActionKind.RESTART): why})
    dead = [*_answering()[:1], Observation(Check.DAEMON, A, "charon", False, "no vici")]
    state = WatchState()
    said = []
    for t in (0.0, 10.0, 20.0):
        result = step(state, dead, t, policy)
        state = result.state
        assert result.actions == ()
        said += [a for a in result.alerts if a.kind is AlertKind.UNSUPPORTED]
    assert [(a.action, a.detail) for a in said] == [("restart charon", why)]


# --- heal commands per layout (data) --------------------------------------------------------------

def test_wd_heal_commands_per_layout() -> None:
    ssh = ssh_layout({}).heal
    # Debian 12: charon-systemd's unit is strongswan.service (strongswan-starter is ipsec.conf's)
    assert ssh.restart == "systemctl restart strongswan.service"
    assert ssh.initiate == 'swanctl --initiate --ike "$1" --child "$2" --timeout "$3"'
    assert ssh.probe.startswith("swanctl --stats")
    local = local_layout({"netns": "dcvpn-wd1-gw1", "dir": "/lab/wd1-gw1"}).heal
    assert local.restart == ""  # the lab's charon belongs to dcvpn lab up / lab heal
    assert "--uri unix:///lab/wd1-gw1/charon.vici" in local.initiate
    assert "SWANCTL_DIR=/lab/wd1-gw1" in local.probe
    moved = ssh_layout({"heal:restart": "rc-service strongswan restart", "heal:initiate": ""})
    assert (moved.heal.restart, moved.heal.initiate) == ("rc-service strongswan restart", "")


def test_wd_capabilities() -> None:
    junos = JunosNetconfDriver(DeviceTarget("wd1-gw1", "127.0.0.1", 830))
    assert not isinstance(junos, HealingDriver)
    healing = healing_of(junos, Platform.JUNOS)
    assert healing.initiate is not None and healing.initiate.startswith("not supported on junos")
    assert "clear security ike security-associations" in healing.initiate
    ssh = StrongswanSshDriver(DeviceTarget("wd1-gw1", "127.0.0.1", 22))
    assert isinstance(ssh, HealingDriver)
    assert healing_of(ssh, Platform.STRONGSWAN).initiate is None
    assert ssh.healing().restart is None and ssh.healing().daemon == "charon"
    no_restart = StrongswanSshDriver(DeviceTarget("wd1-gw1", "127.0.0.1", 22,
                                                  options={"heal:restart": ""}))
    assert (no_restart.healing().restart or "").startswith(
        "not supported on strongswan over ssh: no restart command")


# --- a strongSwan host behind SSH: stand-ins for swanctl and systemctl ----------------------------

def list_sas(conn: str, remote: str) -> str:
    return (f"list-sa event {{\n  {conn} {{\n    uniqueid = 1\n    version = 2\n"
            f"    state = ESTABLISHED\n    local-host = 192.0.2.250\n    remote-host = {remote}\n"
            f"    remote-id = peer\n    encr-alg = AES_GCM_16\n    encr-keysize = 256\n"
            f"    prf-alg = PRF_HMAC_SHA2_384\n    dh-group = ECP_384\n    child-sas {{\n"
            f"      {conn}-1 {{\n        name = {conn}\n        state = INSTALLED\n"
            f"        encr-alg = AES_GCM_16\n        encr-keysize = 256\n      }}\n    }}\n"
            f"  }}\n}}\nlist-sas reply {{\n}}\n")


@dataclass
class FakeHost:
    """One gateway's host in a folder: sas.txt is what `swanctl --list-sas` prints, charon.up
    exists while charon answers, log.txt records the heal commands in order."""

    root: Path
    up_sas: str  # what list-sas prints once the tunnel is initiated
    bgp: str
    peers: tuple["FakeHost", ...] = ()  # hosts whose SA also comes up when this one initiates

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "up.txt").write_text(self.up_sas)
        (self.root / "bgp.json").write_text(self.bgp)
        self.tunnel(False)
        self.charon(True)

    def tunnel(self, up: bool) -> None:
        (self.root / "sas.txt").write_text(self.up_sas if up else "list-sas reply {\n}\n")

    def charon(self, up: bool) -> None:
        flag = self.root / "charon.up"
        if up:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def log(self) -> list[str]:
        path = self.root / "log.txt"
        return path.read_text().splitlines() if path.exists() else []

    def options(self, initiate_fails: bool = False) -> dict[str, str]:
        r = self.root
        copies = " && ".join(f"cp {q(str(h.root / 'up.txt'))} {q(str(h.root / 'sas.txt'))}"
                             for h in (self, *self.peers))
        initiate = (f'echo "initiate $1 $2 $3" >> {q(str(r / "log.txt"))}; '
                    + ("echo 'establishing CHILD_SA failed' >&2; exit 1" if initiate_fails
                       else f"{copies} && echo 'initiate completed successfully'"))
        return {
            "state:list-sas": f"cat {q(str(r / 'sas.txt'))}",
            "state:bgp-summary": f"cat {q(str(r / 'bgp.json'))}",
            "heal:initiate": initiate,
            "heal:probe": (f"test -f {q(str(r / 'charon.up'))} || {{ echo \"connecting to "
                           "'unix:///var/run/charon.vici' failed: No such file or "
                           "directory\" >&2; exit 1; }"),
            "heal:restart": f"echo restart >> {q(str(r / 'log.txt'))}; "
                            f"touch {q(str(r / 'charon.up'))}",
            "reload:initiate": f"echo initiate-all >> {q(str(r / 'log.txt'))}",
        }


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[ExecServer]:
    with ExecServer(tmp_path) as server:
        yield server


def _driver(server: ExecServer, known: Path, options: dict[str, str]) -> StrongswanSshDriver:
    driver = StrongswanSshDriver(DeviceTarget(A, "127.0.0.1", server.port, username=USER,
                                              password=PASSWORD, known_hosts=known, timeout=10,
                                              options=options))
    driver.open()
    return driver


def test_wd_strongswan_driver_initiates_and_restarts(ssh_server: ExecServer,
                                                     tmp_path: Path) -> None:
    known = ssh_server.known_hosts(tmp_path / "known_hosts")
    host = FakeHost(tmp_path / "host", list_sas(TUNNEL, "192.0.2.251"), "{}")
    driver = _driver(ssh_server, known, host.options())
    try:
        assert driver.ike_daemon().running
        assert driver.restart_ike(5) == "charon answers: nothing to do"
        assert driver.initiate(TUNNEL, 7) == "initiate completed successfully"
        assert host.log() == [f"initiate {TUNNEL} {TUNNEL} 7"]
        assert driver.initiate(TUNNEL, 7) == f"{TUNNEL} is up: nothing to do"
        assert len(host.log()) == 1  # never initiated twice
        host.charon(False)
        status = driver.ike_daemon()
        assert not status.running and "charon.vici' failed" in status.detail
        detail = driver.restart_ike(5)
        assert detail.startswith("charon restarted (echo restart")
        assert "connections without a CHILD SA initiated" in detail
        assert host.log()[1:] == ["restart", "initiate-all"]
        assert driver.ike_daemon().running
    finally:
        driver.close()


def test_wd_strongswan_driver_reports_failures(ssh_server: ExecServer, tmp_path: Path) -> None:
    known = ssh_server.known_hosts(tmp_path / "known_hosts")
    host = FakeHost(tmp_path / "host", list_sas(TUNNEL, "192.0.2.251"), "{}")
    driver = _driver(ssh_server, known, {**host.options(initiate_fails=True),
                                         "heal:restart": "echo 'Job failed' >&2; exit 1"})
    try:
        with pytest.raises(DriverError, match=r"swanctl --initiate .* \(exit 1\): establishing "
                                              "CHILD_SA failed"):
            driver.initiate(TUNNEL, 3)
        host.charon(False)
        with pytest.raises(DriverError, match=r"restarting charon failed \(exit 1\): Job failed"):
            driver.restart_ike(3)
    finally:
        driver.close()
    nothing = _driver(ssh_server, known, {**host.options(), "heal:restart": ""})
    try:
        with pytest.raises(UnsupportedError, match="no restart command"):
            nothing.restart_ike(3)
    finally:
        nothing.close()


class LocalHostDriver(StrongswanSshDriver):
    """The strongSwan driver with the local runner (the lab's transport) on a temp folder."""

    def make_runner(self) -> Runner:
        return LocalRunner(self.name)


def test_wd_strongswan_healing_with_the_local_runner(tmp_path: Path) -> None:
    host = FakeHost(tmp_path / "host", list_sas(TUNNEL, "192.0.2.251"), "{}")
    host.charon(False)
    driver = LocalHostDriver(DeviceTarget(A, "localhost", 0, options=host.options()))
    driver.open()
    try:
        assert not driver.ike_daemon().running
        assert driver.restart_ike(5).startswith("charon restarted")
        assert driver.initiate(TUNNEL, 4) == "initiate completed successfully"
        assert host.log() == ["restart", "initiate-all", f"initiate {TUNNEL} {TUNNEL} 4"]
    finally:
        driver.close()


# --- the watch loop through the strongSwan driver -------------------------------------------------

def _fabric(root: Path, platforms: tuple[str, str], transport: str,
            ports: tuple[int, int]) -> tuple[Path, CompiledFabric]:
    sites = [{"name": f"wd{i}", "id": i, "region": "eu", "asn": 65400 + i,
              "prefixes": [f"10.{40 + i}.0.0/24"],
              "gateways": [{"name": f"wd{i}-gw1", "platform": platform,
                            "transport": transport, "host": "127.0.0.1", "port": port,
                            "public_ip": f"198.51.100.{40 + i}"}]}
             for i, platform, port in zip((1, 2), platforms, ports, strict=True)]
    data = {"fabric": {"name": "wdfab", "topology": "full_mesh",
                       "tunnel_pool": "169.254.0.0/16", "crypto": {"profile": "strict"},
                       "auth": {"method": "psk"}, "bgp": {"mode": "ebgp"},
                       "mtu": {"path_mtu": 1500}},
            "sites": sites}
    path = root / "wdfab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, compile_fabric(load_fabric(path).fabric)


def _hosts(root: Path, compiled: CompiledFabric) -> dict[str, FakeHost]:
    expected = expect_fabric(compiled)
    public = {gw.name: str(gw.public_ip) for _, gw in compiled.gateways()}
    hosts: dict[str, FakeHost] = {}
    for me, peer in ((A, B), (B, A)):
        bgp = expected[me].bgp[0]
        summary = json.dumps({"ipv4Unicast": {"peers": {str(bgp.address): {
            "remoteAs": 65400 + (2 if me == A else 1), "state": "Established", "pfxRcd": 1}}}})
        hosts[me] = FakeHost(root / me, list_sas(TUNNEL, public[peer]), summary)
    hosts[A].peers = (hosts[B],)
    hosts[B].peers = (hosts[A],)
    return hosts


@dataclass
class Watched:
    dw: DeviceWatch
    hosts: dict[str, FakeHost]


@pytest.fixture
def watched(ssh_server: ExecServer, tmp_path: Path) -> Watched:
    require_binary("sh")
    _, compiled = _fabric(tmp_path, ("strongswan", "strongswan"), "ssh",
                          (ssh_server.port, ssh_server.port))
    known = ssh_server.known_hosts(tmp_path / "known_hosts")
    hosts = _hosts(tmp_path, compiled)
    env = {"DCVPN_USERNAME": USER, "DCVPN_PASSWORD": PASSWORD,
           "DCVPN_KNOWN_HOSTS": str(known)}
    dw = device_watch(compiled, 10.0, {g: h.options() for g, h in hosts.items()}, env)
    assert sorted(dw.devices) == [A, B]
    return Watched(dw, hosts)


def _loop(w: Watched, out: Path, cycles: int, limit: int,
          before: dict[int, Callable[[], None]]) -> watch_cmd.Run:
    count = 0

    def read(t: Targets) -> Cycle:
        nonlocal count
        count += 1
        if count in before:
            before[count]()
        return w.dw.read(t)

    opts = watch_cmd.Options(0.01, None, cycles, 10.0, 10.0, 1.0, (True, limit, 1, 0.0))
    with watch_cmd.Stop() as stop, out.open("w") as stream:
        return watch_cmd.watch(w.dw.targets, opts, AlertSink(stream), stop, None, w.dw.heal,
                               read=read, policy=w.dw.policy(True, limit, 1, 0.0))


def _alerts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_wd_watch_reinitiates_through_the_driver_within_the_limit(watched: Watched,
                                                                  tmp_path: Path) -> None:
    hosts = watched.hosts

    def break_tunnel() -> None:
        for h in hosts.values():
            h.tunnel(False)

    out = tmp_path / "alerts.jsonl"
    run = _loop(watched, out, 4, 1, {3: break_tunnel})
    alerts = _alerts(out)
    summary = [(a["kind"], a["gateway"], a["check"], a["action"], a["result"]) for a in alerts]
    assert summary == [
        # cycle 1: down at both ends; initiated from the first end by name
        ("down", A, "tunnel", f"initiate {TUNNEL}", None), ("down", B, "tunnel", None, None),
        ("action", A, None, f"initiate {TUNNEL}", "ok"),
        # cycle 2: both ends see it up
        ("recovered", A, "tunnel", None, None), ("recovered", B, "tunnel", None, None),
        # cycle 3: down again; A already acted this hour (limit 1): refused, said once
        ("down", A, "tunnel", None, None), ("down", B, "tunnel", None, None),
        ("rate-limited", A, None, f"initiate {TUNNEL}", None)]
    action = alerts[2]
    assert action["detail"] == "initiate completed successfully"
    assert action["reason"].startswith("tunnel down for 1 cycles: IKE SA none")
    assert hosts[A].log() == [f"initiate {TUNNEL} {TUNNEL} 10"]  # once: the limit held
    assert hosts[B].log() == []
    assert run.actions == 1 and sum(run.totals.refused.values()) == 2  # cycles 3 and 4
    assert run.state.down() != ()


def test_wd_watch_restarts_a_dead_charon_through_the_driver(watched: Watched,
                                                            tmp_path: Path) -> None:
    hosts = watched.hosts
    for h in hosts.values():
        h.tunnel(True)
    hosts[B].charon(False)
    out = tmp_path / "alerts.jsonl"
    run = _loop(watched, out, 2, 3, {})
    alerts = _alerts(out)
    assert [(a["kind"], a["gateway"], a["subject"], a["action"], a["result"])
            for a in alerts] == [
        ("down", B, "charon", "restart charon", None),
        ("action", B, None, "restart charon", "ok"),
        ("recovered", B, "charon", None, None)]
    assert alerts[1]["reason"].startswith("charon is not running: charon does not answer: "
                                          "connecting to 'unix:///var/run/charon.vici' failed")
    assert hosts[B].log() == ["restart", "initiate-all"] and hosts[A].log() == []
    assert run.actions == 1 and run.state.down() == ()


# --- the command against JunOS and IOS-XE NETCONF emulators ---------------------------------------

EMU_USER, EMU_PASSWORD = "wd", "wd-emulator-secret"


@dataclass
class Emulated:
    fabric: Path
    compiled: CompiledFabric
    threads: dict[str, ServerThread]
    known_hosts: Path
    root: Path

    def env(self, monkeypatch: pytest.MonkeyPatch, known_hosts: Path | None = None) -> None:
        for name in ("DCVPN_SSH_KEY", "DCVPN_NO_HOST_KEY_CHECK", "DCVPN_TIMEOUT", "DCVPN_LAB_DIR",
                     "DCVPN_DEVICES", "DCVPN_FORMAT"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("DCVPN_USERNAME", EMU_USER)
        monkeypatch.setenv("DCVPN_PASSWORD", EMU_PASSWORD)
        monkeypatch.setenv("DCVPN_KNOWN_HOSTS", str(known_hosts or self.known_hosts))


@pytest.fixture(scope="module")
def emulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulated]:
    root = tmp_path_factory.mktemp("wd-emu")
    registry = PeerRegistry()
    threads: dict[str, ServerThread] = {}
    try:
        for name, platform in ((A, "junos"), (B, "iosxe")):
            server = NetconfServer(platform, EMU_USER, EMU_PASSWORD, root / "emu" / name, 1.0,
                                   hostname=name,
                                   device_options={"peers": registry, "gateway": name})
            threads[name] = ServerThread(server).start(timeout=30)
        known = root / "known_hosts"
        known.write_text("".join(t.known_hosts_line() for t in threads.values()))
        fabric, compiled = _fabric(root, ("junos", "iosxe"), "netconf",
                                   (threads[A].port, threads[B].port))
        ensure_psks(root / "secrets", [t.name for t in compiled.tunnels])
        yield Emulated(fabric, compiled, threads, known, root)
    finally:
        for thread in threads.values():
            thread.stop()


def _watch(capsys: pytest.CaptureFixture[str], e: Emulated, *extra: str
           ) -> tuple[int, list[dict[str, Any]], str]:
    code, out, err = cli(capsys, watch_cmd.main, "watch", "-f", str(e.fabric), "--devices",
                         "--interval", "0.1", "--timeout", "10", "--format", "json", *extra)
    lines = [json.loads(line) for line in out.splitlines()]
    return code, lines, err


def test_wd_watch_devices_on_emulators(capsys: pytest.CaptureFixture[str], emulated: Emulated,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    emulated.env(monkeypatch)
    # nothing deployed yet: no tunnel, no BGP; JunOS / IOS-XE cannot heal: said once, not counted
    code, lines, err = _watch(capsys, emulated, "--cycles", "3", "--heal-after", "2",
                              "--max-actions-per-hour", "1")
    assert code == 1, err
    *alerts, summary = lines
    assert {(a["kind"], a["gateway"], a["check"]) for a in alerts if a["kind"] == "down"} == {
        (k, g, c) for g in (A, B) for k, c in (("down", "tunnel"), ("down", "bgp"),
                                               ("down", "prefixes"))}
    unsupported = [a for a in alerts if a["kind"] == "not-supported"]
    assert [(a["gateway"], a["action"]) for a in unsupported] == [(A, f"initiate {TUNNEL}")]
    assert "not supported on junos" in unsupported[0]["detail"]
    assert "not supported on iosxe" in unsupported[0]["detail"]
    assert (summary["kind"], summary["actions"], summary["refused_actions"]) == (
        "summary", 0, 0)
    assert summary["not_checked"] == ["ping", "probe", "route"]
    assert "not applicable through the drivers' get_state, not checked" in err
    assert "2 gateway(s) of fabric wdfab through their drivers" in err

    # deploy the fabric the same way (model hosts, DCVPN_* credentials): everything comes up
    code, _, err = cli(capsys, deploy_cmd.main, "deploy", "-f", str(emulated.fabric),
                         "--secrets-dir", str(emulated.root / "secrets"), "--interval", "0.3",
                         "--report", str(emulated.root / "report.json"), "--state",
                         str(emulated.root / "state.json"), "--format", "json")
    assert code == 0, err
    code, lines, err = _watch(capsys, emulated, "--cycles", "2")
    assert code == 0, err
    assert [x["kind"] for x in lines] == ["summary"] and lines[0]["down"] == []

    # a gateway that is gone: its checks go down, the other end's tunnel and BGP with it
    emulated.threads[B].stop()
    code, lines, err = _watch(capsys, emulated, "--cycles", "2", "--heal-after", "1")
    assert code == 1
    *alerts, summary = lines
    gone = next(a for a in alerts if a["check"] == "gateway")
    assert gone["gateway"] == B and gone["kind"] == "down"
    assert {(a["gateway"], a["check"]) for a in alerts if a["kind"] == "down"} >= {
        (A, "tunnel"), (A, "bgp"), (B, "tunnel")}
    assert summary["actions"] == 0


def test_wd_watch_devices_verifies_host_keys(capsys: pytest.CaptureFixture[str],
                                             emulated: Emulated, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    emulated.env(monkeypatch, empty)
    code, lines, _ = _watch(capsys, emulated, "--cycles", "1")
    assert code == 1
    (gateway,) = [a for a in lines if a.get("check") == "gateway" and a["gateway"] == A]
    assert gateway["kind"] == "down" and "no host key for [127.0.0.1]" in gateway["reason"]


def test_wd_devices_and_lab_dir_exclude_each_other(capsys: pytest.CaptureFixture[str],
                                                   emulated: Emulated, tmp_path: Path) -> None:
    code, _, err = cli(capsys, watch_cmd.main, "watch", "-f", str(emulated.fabric), "--devices",
                       "--lab-dir", str(tmp_path), "--cycles", "1")
    assert code == 2 and "--lab-dir watches the lab; --devices reads" in err
