"""The strongSwan+FRR driver: bundle, layout, state parsing, the host-side lifecycle and timer
(in a temp folder standing in for the host, with fake reload commands), the SSH transport
against a local SSH server, and (lab-marked) a real 2-gateway lab: changed ESP lifetime
confirmed, not confirmed, the committing process killed, an FRR neighbor removed.
"""

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest
import yaml
from conftest import ROOT, require_binary
from lab_support import lab, lab_machine, start
from ssh_exec_support import PASSWORD, USER, ExecServer

from drivers.base import ConfigDriver, DeviceTarget, LoadMode, driver_class
from drivers.errors import (
    CommitError,
    CommitPendingError,
    ConnectError,
    LoadError,
    NoPendingCommitError,
    UnsupportedError,
)
from drivers.strongswan import StrongswanDriver, StrongswanLocalDriver, StrongswanSshDriver
from drivers.strongswan_bundle import pack, unpack
from drivers.strongswan_host import LocalRunner, Runner
from drivers.strongswan_layout import Layout, local_layout, ssh_layout
from drivers.strongswan_scripts import StepResult, parse_steps, step_problems
from drivers.strongswan_state import bgp_from_json, parse_pretty, sas_from_pretty
from drivers.strongswan_timer import parse_status
from inventory.model import Platform, Transport

SWANCTL = ("connections {\n  a-b {\n    version = 2\n  }\n}\n"
           "secrets {\n  include swanctl-secrets.conf\n}\n")
SECRETS = "ike-a-b {\n  id-1 = a\n  id-2 = b\n  secret = PSK\n}\n"
FRR = ("frr defaults traditional\nhostname a\nrouter bgp 65001\n"
       " neighbor 169.254.0.1 remote-as 65002\n")
IFACES = "#!/bin/sh\ntrue\n"
OLD_PSK, NEW_PSK = "0sT1dPTGRQU0s=", "0sTmV3UFNLdmFsdWU="


def files(psk: str = OLD_PSK, lifetime: str = "1h", frr: str = FRR) -> dict[str, str]:
    return {"swanctl.conf": SWANCTL.replace("version = 2", f"version = 2\n    rekey = {lifetime}"),
            "swanctl-secrets.conf": SECRETS.replace("PSK", psk), "frr.conf": frr,
            "interfaces.sh": IFACES}


# --- the bundle ---------------------------------------------------------------------------------

def test_bundle_round_trip_keeps_every_byte() -> None:
    given = {"b.conf": "x\n\n  y\n", "a.conf": "# comment\n### not a marker\n", "c": ""}
    assert unpack(pack(given)) == given
    assert unpack(pack({"x": "no newline"})) == {"x": "no newline\n"}


def test_bundle_refuses_what_it_cannot_carry() -> None:
    with pytest.raises(LoadError, match="holds a line starting with"):
        pack({"a.conf": "ok\n### dcvpn-file: sneaky\n"})
    with pytest.raises(LoadError, match="one path component"):
        pack({"../etc/passwd": "x"})
    with pytest.raises(LoadError, match="not a strongSwan bundle"):
        unpack("connections {\n}\n", "gw1")
    with pytest.raises(LoadError, match="appears twice"):
        unpack("### dcvpn-file: a\nx\n### dcvpn-file: a\ny\n")
    with pytest.raises(LoadError, match="holds no file"):
        unpack("# only a comment\n")


# --- the layout ---------------------------------------------------------------------------------

def test_local_layout_follows_the_lab_contract() -> None:
    layout = local_layout({"netns": "dcvpn-sd1-gw1", "dir": "/lab/sd1-gw1"})
    paths = {f.name: (f.path, f.mode) for f in layout.files}
    assert paths == {
        "swanctl.conf": ("/lab/sd1-gw1/swanctl.conf", 0o644),
        "swanctl-secrets.conf": ("/lab/sd1-gw1/swanctl-secrets.conf", 0o600),
        "strongswan.conf": ("/lab/sd1-gw1/strongswan.conf", 0o644),
        "interfaces.sh": ("/lab/sd1-gw1/interfaces.sh", 0o644),
        "frr.conf": ("/lab/sd1-gw1/frr/frr.conf", 0o644)}
    assert layout.state_dir == "/lab/sd1-gw1/.dcvpn"
    steps = {s.name: s.command for s in layout.steps}
    assert list(steps) == ["interfaces", "settings", "swanctl", "frr", "initiate"]
    assert "ip netns exec dcvpn-sd1-gw1 sh /lab/sd1-gw1/interfaces.sh" in steps["interfaces"]
    # after a reload, only connections without any IKE SA are brought up, without waiting
    assert "--uri unix:///lab/sd1-gw1/charon.vici" in steps["initiate"]
    assert "*INSTALLED*) continue" in steps["initiate"]
    assert "--initiate --ike \"$c\" --child \"$c\" --timeout 1" in steps["initiate"]
    assert "--uri unix:///lab/sd1-gw1/charon.vici" in steps["swanctl"]
    assert "--vty_socket /lab/sd1-gw1/frr" in steps["frr"]
    with pytest.raises(UnsupportedError, match="netns"):
        local_layout({"dir": "/lab/x"})


def test_ssh_layout_defaults_and_overrides() -> None:
    layout = ssh_layout({})
    assert {f.name: f.path for f in layout.files} == {
        "swanctl.conf": "/etc/swanctl/swanctl.conf",
        "swanctl-secrets.conf": "/etc/swanctl/swanctl-secrets.conf",
        "interfaces.sh": "/etc/dcvpn/interfaces.sh", "frr.conf": "/etc/frr/frr.conf"}
    assert layout.ignored == ("strongswan.conf",)  # the lab's charon-systemd settings
    assert [s.name for s in layout.steps] == ["interfaces", "swanctl", "frr", "initiate"]
    moved = ssh_layout({"path:strongswan.conf": "/etc/strongswan.d/dcvpn.conf",
                        "path:interfaces.sh": "", "reload:frr": "systemctl reload frr",
                        "state_dir": "/srv/dcvpn"})
    assert moved.file("strongswan.conf") is not None and moved.file("interfaces.sh") is None
    assert [s.name for s in moved.steps] == ["interfaces", "settings", "swanctl", "frr",
                                             "initiate"]
    assert moved.steps[-2].command == "systemctl reload frr" and moved.state_dir == "/srv/dcvpn"
    with pytest.raises(UnsupportedError, match="absolute"):
        ssh_layout({"path:frr.conf": "frr.conf"})


def test_drivers_are_registered() -> None:
    assert driver_class(Platform.STRONGSWAN, Transport.LOCAL) is StrongswanLocalDriver
    assert driver_class(Platform.STRONGSWAN, Transport.SSH) is StrongswanSshDriver
    target = DeviceTarget("sd1-gw1", "localhost", 0, options={"netns": "n", "dir": "/x"})
    assert isinstance(StrongswanLocalDriver(target), ConfigDriver)


# --- state parsing ------------------------------------------------------------------------------

# `swanctl --list-sas --pretty` of a lab gateway (strongSwan 5.9.8), a DN id added
LIST_SAS = """list-sa event {
  sd1-sd2-p0 {
    uniqueid = 2
    version = 2
    state = ESTABLISHED
    local-host = 192.0.2.1
    local-id = C=CH, O=dcvpn, CN=sd1-gw1
    remote-host = 192.0.2.2
    remote-id = sd2-gw1.sd.dcvpn
    encr-alg = AES_GCM_16
    encr-keysize = 256
    prf-alg = PRF_HMAC_SHA2_384
    dh-group = ECP_384
    child-sas {
      sd1-sd2-p0-1 {
        name = sd1-sd2-p0
        state = INSTALLED
        encr-alg = AES_CBC
        encr-keysize = 128
        integ-alg = HMAC_SHA2_256_128
        dh-group = ECP_384
        bytes-in = 1180
        bytes-out = 1148
        local-ts = [
          10.1.0.0/24
          169.254.0.0/32
        ]
      }
    }
  }
}
list-sas reply {
}
"""
BGP = json.dumps({"ipv4Unicast": {"peers": {
    "169.254.0.1": {"remoteAs": 65002, "state": "Established", "pfxRcd": 1},
    "169.254.0.9": {"remoteAs": 65003, "state": "Active"}}}})


def test_list_sas_in_model_spelling() -> None:
    (ike,), (child,) = sas_from_pretty(LIST_SAS)
    assert (ike.local_address, ike.remote_address, ike.state) == (
        "192.0.2.1", "192.0.2.2", "ESTABLISHED")
    assert ike.local_id == "C=CH, O=dcvpn, CN=sd1-gw1"  # a value runs to the end of its line
    assert (ike.encryption, ike.integrity, ike.prf, ike.dh_group) == (
        "aes256gcm16", None, "sha384", 20)
    assert (child.name, child.remote_address, child.state) == (
        "sd1-sd2-p0", "192.0.2.2", "INSTALLED")
    assert (child.encryption, child.integrity, child.dh_group) == ("aes128", "sha256", 20)
    assert (child.bytes_in, child.bytes_out) == (1180, 1148)
    assert parse_pretty(LIST_SAS)[0][1]["sd1-sd2-p0"]["child-sas"]["sd1-sd2-p0-1"][
        "local-ts"] == ["10.1.0.0/24", "169.254.0.0/32"]


def test_bgp_summary() -> None:
    sessions = bgp_from_json(BGP)
    assert [(s.neighbor, s.remote_as, s.state, s.prefixes_received) for s in sessions] == [
        ("169.254.0.1", 65002, "Established", 1), ("169.254.0.9", 65003, "Active", 0)]


def test_step_output_is_judged_by_exit_code_and_swanctl_words() -> None:
    layout = ssh_layout({})
    output = ("@@step interfaces\n@@rc 0\n@@step swanctl\nloaded connection 'a-b'\n"
              "/etc/swanctl/swanctl.conf:3: syntax error, unexpected }\n@@rc 0\n"
              "@@step frr\n% Can't open configuration file vtysh.conf\n@@rc 0\n"
              "@@step initiate\n@@rc 0\n")
    results = parse_steps(output)
    assert [(r.name, r.rc) for r in results] == [("interfaces", 0), ("swanctl", 0), ("frr", 0),
                                                 ("initiate", 0)]
    assert step_problems(layout, results) == [
        "swanctl (exit 0): /etc/swanctl/swanctl.conf:3: syntax error, unexpected }"]
    assert step_problems(layout, [StepResult("interfaces", 0, "")]) == [
        "swanctl: did not run", "frr: did not run", "initiate: did not run"]
    assert step_problems(layout, [*results[:2], StepResult("frr", 1, "a\nb\nline 4: % Unknown")]
                         )[1] == "frr (exit 1): a; b; line 4: % Unknown"


def test_timer_status_parsing() -> None:
    status = parse_status("@@state\npid=42\ntoken=ab\narmed=5\nstarted=100\ndeadline=105\n"
                          "@@backup\n@@alive\n")
    assert status.pending and status.timer is not None and status.timer.deadline == 105
    assert not parse_status("@@state\npid=42\ntoken=ab\narmed=5\nstarted=1\ndeadline=6\n").pending
    expired = parse_status("@@expired\ntoken=ab\nfired=106\nrestore_rc=0\napply_rc=1\n").expired
    assert expired is not None and (expired.fired, expired.apply_rc) == (106, 1)


# --- the lifecycle on a host that is a temp folder ----------------------------------------------

class TmpHostDriver(StrongswanDriver):
    """The real lifecycle and host scripts, run locally against paths in a temp folder."""

    transport = Transport.SSH

    def make_layout(self, target: DeviceTarget) -> Layout:
        return ssh_layout(target.options)

    def make_runner(self) -> Runner:
        return LocalRunner(self.name)


@dataclass
class Host:
    root: Path
    options: dict[str, str]

    def path(self, name: str) -> Path:
        return Path(self.options[f"path:{name}"])

    @property
    def state(self) -> Path:
        return Path(self.options["state_dir"])

    def loaded(self) -> list[str]:
        """swanctl.conf as each (fake) reload saw it, oldest first."""
        log = self.root / "reloads.log"
        text = log.read_text() if log.exists() else ""
        return [part for part in text.split("#reload\n")[1:]]

    def frr_reloads(self) -> int:
        log = self.root / "frr.log"
        return len(log.read_text().splitlines()) if log.exists() else 0

    def driver(self, name: str = "sd1-gw1") -> TmpHostDriver:
        driver = TmpHostDriver(DeviceTarget(name, "localhost", 22, options=self.options))
        driver.open()
        return driver

    def install(self, given: dict[str, str]) -> None:
        for name, text in given.items():
            self.path(name).parent.mkdir(parents=True, exist_ok=True)
            self.path(name).write_text(text)
        self.path("swanctl-secrets.conf").chmod(0o600)


def host_options(root: Path) -> dict[str, str]:
    swanctl = root / "etc" / "swanctl" / "swanctl.conf"
    q = shlex.quote
    return {
        "path:swanctl.conf": str(swanctl),
        "path:swanctl-secrets.conf": str(root / "etc" / "swanctl" / "swanctl-secrets.conf"),
        "path:frr.conf": str(root / "etc" / "frr" / "frr.conf"),
        "path:interfaces.sh": str(root / "etc" / "dcvpn" / "interfaces.sh"),
        "state_dir": str(root / "var" / "lib" / "dcvpn"),
        "reload:interfaces": "true",
        # like swanctl: a syntax error is reported with exit code 0
        "reload:swanctl": (f"if grep -q BROKEN {q(str(swanctl))}; then echo 'swanctl.conf:2: "
                           f"syntax error, unexpected }}'; fi; "
                           f"{{ echo '#reload'; cat {q(str(swanctl))}; }} >> "
                           f"{q(str(root / 'reloads.log'))}"),
        "reload:frr": f"echo frr >> {q(str(root / 'frr.log'))}",
        "reload:initiate": "true",
    }


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    for program in ("flock", "setsid", "timeout"):
        require_binary(program)
    h = Host(tmp_path, host_options(tmp_path))
    h.install(files())
    try:
        yield h
    finally:
        _kill_timer(h.state)


def _kill_timer(state: Path) -> None:
    """Test cleanup: end a timer left running (only a process that is that timer)."""
    path = state / "timer.state"
    if not path.exists():
        return
    fields = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    pid = int(fields["pid"])
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return
    if f"{state}/timer.sh {fields['token']} " in cmdline:
        os.killpg(pid, signal.SIGKILL)


def wait_until(check: object, timeout: float, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.1)


def pid_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def timer_pid(h: Host) -> int:
    return int(next(line.split("=")[1] for line in (h.state / "timer.state").read_text()
                    .splitlines() if line.startswith("pid=")))


def test_running_diff_and_candidate_checks(host: Host) -> None:
    driver = host.driver()
    assert unpack(driver.get_running()) == files()
    driver.load_candidate(pack(files(psk=NEW_PSK, lifetime="50m")))
    text = driver.diff().unified
    assert driver.diff().native is None  # `swanctl --list-conns` is no diff
    assert "-    rekey = 1h\n+    rekey = 50m\n" in text
    # a PSK change still shows as a change, but never its value
    assert "-  secret = <masked>\n+  secret = <masked>\n" in text
    assert OLD_PSK not in text and NEW_PSK not in text
    assert "candidate/swanctl-secrets.conf" in text and "frr.conf" not in text
    driver.load_candidate(pack(files()))
    assert driver.diff().empty
    with pytest.raises(LoadError, match="unknown file"):
        driver.load_candidate(pack({**files(), "evil.sh": "x"}))
    with pytest.raises(LoadError, match=r"swanctl-secrets.conf still hold"):
        driver.load_candidate(pack({**files(), "swanctl-secrets.conf":
                                    "secret = ${dcvpn-secret:psk/a-b}\n"}))
    with pytest.raises(LoadError, match=r"must hold interfaces\.sh, frr\.conf; nothing was loaded"):
        driver.load_candidate(pack({"swanctl.conf": SWANCTL}))
    driver.load_candidate(pack({"swanctl.conf": SWANCTL}), LoadMode.MERGE)
    assert "frr.conf" not in driver.diff().unified  # merge: the other files stay as they are
    driver.load_candidate(pack({**files(), "strongswan.conf": "charon {}\n"}))
    assert driver.skipped == ("strongswan.conf",)  # not installed on this host by default


def test_commit_confirm_installs_and_kills_only_the_timer(host: Host) -> None:
    driver = host.driver()
    driver.load_candidate(pack(files(psk=NEW_PSK, lifetime="50m")))
    assert driver.commit(confirm_timeout=30) == 30
    assert host.path("swanctl.conf").read_text() == files(lifetime="50m")["swanctl.conf"]
    secret = host.path("swanctl-secrets.conf")
    assert NEW_PSK in secret.read_text() and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert host.loaded()[-1] == files(lifetime="50m")["swanctl.conf"]
    assert host.frr_reloads() == 1
    pid = timer_pid(host)
    assert pid_alive(pid)
    # a second process (a new driver) sees the pending commit and refuses a second one
    other = host.driver()
    assert other.has_pending_commit()
    other.load_candidate(pack(files(lifetime="2h")))
    with pytest.raises(CommitPendingError, match=r"already pending \(rollback timer pid"):
        other.commit(30)
    other.confirm()
    wait_until(lambda: not pid_alive(pid), 5, "the timer process ends")
    assert not other.has_pending_commit()
    assert host.path("swanctl.conf").read_text() == files(lifetime="50m")["swanctl.conf"]
    with pytest.raises(NoPendingCommitError, match="no confirmed commit is pending"):
        other.confirm()


def test_unconfirmed_commit_is_rolled_back_by_the_timer(host: Host) -> None:
    before = {n: host.path(n).read_text() for n in files()}
    driver = host.driver()
    given = files(lifetime="50m")
    del given["swanctl-secrets.conf"]  # e.g. certificates now: a replace removes the file
    driver.load_candidate(pack(given))
    assert driver.commit(confirm_timeout=2) == 2
    assert not host.path("swanctl-secrets.conf").exists()
    wait_until(lambda: not (host.state / "timer.state").exists(), 15, "the timer fires")
    assert {n: host.path(n).read_text() for n in files()} == before
    assert stat.S_IMODE(host.path("swanctl-secrets.conf").stat().st_mode) == 0o600
    assert host.loaded()[-1] == before["swanctl.conf"]  # reloaded with the old files
    assert host.frr_reloads() == 2
    with pytest.raises(NoPendingCommitError, match=r"confirm timer already expired at .* and "
                                                   r"restored the previous configuration"):
        driver.confirm()
    with pytest.raises(NoPendingCommitError, match="already expired"):
        driver.rollback()


def test_the_timer_fires_when_the_committing_process_dies(host: Host) -> None:
    before = host.path("swanctl.conf").read_text()
    script = (
        "import sys, time\n"
        "from drivers.base import DeviceTarget\n"
        "from drivers.strongswan_bundle import pack\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_driver_strongswan import TmpHostDriver, files, host_options\n"
        "from pathlib import Path\n"
        "d = TmpHostDriver(DeviceTarget('sd1-gw1', 'localhost', 22, "
        "options=host_options(Path(sys.argv[2]))))\n"
        "d.open(); d.load_candidate(pack(files(lifetime='50m'))); d.commit(3)\n"
        "print('committed', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(ROOT / "tests"), str(host.root)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "committed"
        proc.kill()
        proc.wait(10)
        assert host.path("swanctl.conf").read_text() != before
        wait_until(lambda: host.path("swanctl.conf").read_text() == before, 15,
                   "the timer restores the files")
        # the files are restored first, then reloaded: wait for the reload, bounded
        wait_until(lambda: bool(host.loaded()) and host.loaded()[-1] == before, 15,
                   "the timer reloads the restored files")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_rollback_now_and_of_the_last_change(host: Host) -> None:
    before = host.path("swanctl.conf").read_text()
    driver = host.driver()
    driver.load_candidate(pack(files(lifetime="50m")))
    driver.commit(confirm_timeout=60)
    pid = timer_pid(host)
    driver.rollback()
    assert host.path("swanctl.conf").read_text() == before and host.loaded()[-1] == before
    assert not pid_alive(pid) and not driver.has_pending_commit()
    with pytest.raises(NoPendingCommitError, match="no backup"):
        driver.rollback()
    # without a timer: rollback restores the files of before the last commit, once
    driver.load_candidate(pack(files(lifetime="2h")))
    assert driver.commit() is None
    assert "rekey = 2h" in host.path("swanctl.conf").read_text()
    with pytest.raises(NoPendingCommitError, match="no confirmed commit"):
        driver.confirm()
    driver.rollback()
    assert host.path("swanctl.conf").read_text() == before


def test_a_failed_reload_restores_the_previous_files(host: Host) -> None:
    before = {n: host.path(n).read_text() for n in files()}
    driver = host.driver()
    broken = files(psk=NEW_PSK)
    broken["swanctl.conf"] = broken["swanctl.conf"].replace("version = 2", "BROKEN")
    driver.load_candidate(pack(broken))
    with pytest.raises(CommitError) as failure:
        driver.commit(confirm_timeout=60)
    message = str(failure.value)
    assert "syntax error" in message and "previous files were restored and reloaded" in message
    assert NEW_PSK not in message
    assert {n: host.path(n).read_text() for n in files()} == before
    assert host.loaded()[-1] == before["swanctl.conf"]
    assert not driver.has_pending_commit() and not (host.state / "timer.state").exists()


def test_a_recycled_pid_is_never_killed(host: Host) -> None:
    driver = host.driver()
    driver.load_candidate(pack(files(lifetime="50m")))
    driver.commit(confirm_timeout=60)
    real = timer_pid(host)
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        text = (host.state / "timer.state").read_text()
        (host.state / "timer.state").write_text(text.replace(f"pid={real}",
                                                             f"pid={stranger.pid}"))
        assert not driver.has_pending_commit()
        with pytest.raises(NoPendingCommitError, match="no longer running and did not roll "
                                                       "back"):
            driver.confirm()
        assert stranger.poll() is None  # not signalled
        driver.rollback()  # restores the backup; the stranger is still left alone
        assert stranger.poll() is None
        assert "rekey = 1h" in host.path("swanctl.conf").read_text()
    finally:
        stranger.kill()
        stranger.wait()
        if pid_alive(real):
            os.killpg(real, signal.SIGKILL)


# --- SSH ----------------------------------------------------------------------------------------

@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[ExecServer]:
    with ExecServer(tmp_path) as server:
        yield server


def ssh_target(server: ExecServer, known_hosts: Path | None, options: dict[str, str],
               verify: bool = True) -> DeviceTarget:
    return DeviceTarget("sd1-gw1", "127.0.0.1", server.port, username=USER, password=PASSWORD,
                        known_hosts=known_hosts, verify_host_key=verify, timeout=10,
                        options=options)


def test_ssh_refuses_unknown_and_changed_host_keys(ssh_server: ExecServer,
                                                   tmp_path: Path) -> None:
    options = host_options(tmp_path)
    with pytest.raises(ConnectError, match=r"known_hosts file .* does not exist"):
        StrongswanSshDriver(ssh_target(ssh_server, tmp_path / "none", options)).open()
    other = tmp_path / "other_hosts"
    elsewhere = ssh_server.host_key.export_public_key().decode().strip()
    other.write_text(f"[127.0.0.1]:1 {elsewhere}\n")  # the right key, for another port
    with pytest.raises(ConnectError, match=r"no host key for \[127.0.0.1\]"):
        StrongswanSshDriver(ssh_target(ssh_server, other, options)).open()
    wrong = ssh_server.known_hosts(tmp_path / "wrong_hosts",
                                   asyncssh.generate_private_key("ssh-ed25519"))
    with pytest.raises(ConnectError, match="does not match"):
        StrongswanSshDriver(ssh_target(ssh_server, wrong, options)).open()
    garbled = tmp_path / "garbled_hosts"
    garbled.write_text(f"[127.0.0.1]:{ssh_server.port} ssh-ed25519 AAAAnot-base64\n")
    with pytest.raises(ConnectError, match="cannot read known_hosts"):
        StrongswanSshDriver(ssh_target(ssh_server, garbled, options)).open()
    bad_login = DeviceTarget("sd1-gw1", "127.0.0.1", ssh_server.port, username=USER,
                             password="nope", verify_host_key=False, timeout=10)
    with pytest.raises(ConnectError, match="authentication failed"):
        StrongswanSshDriver(bad_login).open()
    driver = StrongswanSshDriver(ssh_target(ssh_server, None, options, verify=False))
    driver.open()  # the explicit opt-out
    driver.close()


def test_ssh_lifecycle_on_a_host(ssh_server: ExecServer, tmp_path: Path) -> None:
    require_binary("flock")
    h = Host(tmp_path, host_options(tmp_path))
    h.install(files())
    sas, bgp = tmp_path / "sas.txt", tmp_path / "bgp.json"
    sas.write_text(LIST_SAS)
    bgp.write_text(BGP)
    options = {**h.options, "state:list-sas": f"cat {sas}", "state:bgp-summary": f"cat {bgp}"}
    known = ssh_server.known_hosts(tmp_path / "known_hosts")
    driver = StrongswanSshDriver(ssh_target(ssh_server, known, options))
    try:
        driver.open()
        assert unpack(driver.get_running()) == files()
        driver.load_candidate(pack(files(psk=NEW_PSK, lifetime="50m")))
        assert "+    rekey = 50m" in driver.diff().unified
        assert driver.commit(confirm_timeout=30) == 30
        assert NEW_PSK in h.path("swanctl-secrets.conf").read_text()
        assert stat.S_IMODE(h.path("swanctl-secrets.conf").stat().st_mode) == 0o600
        assert driver.has_pending_commit()
        driver.confirm()
        assert not driver.has_pending_commit()
        assert h.loaded()[-1] == files(lifetime="50m")["swanctl.conf"]
        state = driver.get_state()
        assert [s.state for s in state.ike_sas] == ["ESTABLISHED"]
        assert [s.neighbor for s in state.bgp_sessions] == ["169.254.0.1", "169.254.0.9"]
    finally:
        driver.close()
        _kill_timer(h.state)


# --- the lab: real charon and FRR ---------------------------------------------------------------

LAB_FABRIC = "sddrv"
GW1, GW2, GW3 = "sdd1-gw1", "sdd2-gw1", "sdd3-gw1"


def _site(i: int) -> dict[str, object]:
    return {"name": f"sdd{i}", "id": i, "region": "eu", "asn": 65000 + i,
            "prefixes": [f"10.{i}.0.0/24"],
            "gateways": [{"name": f"sdd{i}-gw1", "platform": "strongswan", "transport": "local",
                          "host": "localhost", "public_ip": f"192.0.2.{i}"}]}


def lab_fabric(sites: int = 2, esp_lifetime: str = "1h") -> dict[str, object]:
    return {"fabric": {
        "name": LAB_FABRIC, "topology": "full_mesh", "tunnel_pool": "169.254.0.0/16",
        "data_plane": "libipsec",
        "crypto": {"ike": {"encryption": "aes256gcm16", "prf": "sha384", "dh_group": 20,
                           "lifetime": "8h"},
                   "esp": {"encryption": "aes256gcm16", "pfs_group": 20,
                           "lifetime": esp_lifetime},
                   "dpd": {"interval": "10s", "action": "restart"}},
        "auth": {"method": "psk"},
        "bgp": {"mode": "ebgp", "timers": {"keepalive": 3, "hold": 9}},
        "mtu": {"path_mtu": 1500}},
        "sites": [_site(i) for i in range(1, sites + 1)]}


@dataclass
class DriverLab:
    lab_dir: Path
    fabric_file: Path
    root: Path

    def target(self, gateway: str) -> DeviceTarget:
        return DeviceTarget(gateway, "localhost", 0, options={
            "netns": f"dcvpn-{gateway}", "dir": str(self.lab_dir / gateway)})

    def driver(self, gateway: str = GW1) -> StrongswanLocalDriver:
        driver = StrongswanLocalDriver(self.target(gateway))
        driver.open()
        return driver

    def candidate(self, gateway: str = GW1, sites: int = 2, esp_lifetime: str = "1h") -> str:
        """The gateway's rendered files as tasks/deploy.py builds them, secrets resolved."""
        from inventory.loader import load_fabric
        from inventory.topology import compile_fabric
        from tasks.pki.psk import ensure_psks, resolve_secrets
        from tasks.render import render_gateway

        path = self.root / f"candidate-{len(list(self.root.glob('candidate-*')))}.yaml"
        path.write_text(yaml.safe_dump(lab_fabric(sites, esp_lifetime)))
        compiled = compile_fabric(load_fabric(path).fabric)
        # a tunnel the lab does not have yet needs its PSK (the lab's keep theirs)
        ensure_psks(self.lab_dir / "secrets", [t.name for t in compiled.tunnels])
        return resolve_secrets(pack(render_gateway(compiled, gateway)), self.lab_dir / "secrets")

    def swanctl(self, gateway: str, *argv: str) -> list[tuple[str, dict[str, object]]]:
        folder = self.lab_dir / gateway
        done = subprocess.run(["swanctl", *argv, "--pretty", "--uri",
                               f"unix://{folder}/charon.vici"], capture_output=True, text=True,
                              timeout=10, check=True)
        return parse_pretty(done.stdout)

    def child_rekey_config(self, gateway: str) -> int:
        """children.<name>.rekey_time as charon has it loaded (seconds)."""
        (_, conns), *_ = [s for s in self.swanctl(gateway, "--list-conns")
                          if s[0] == "list-conn event"]
        conn = next(iter(conns.values()))
        assert isinstance(conn, dict)
        return int(next(iter(conn["children"].values()))["rekey_time"])

    def installed_children(self, gateway: str) -> list[tuple[int, int]]:
        """(seconds to the next rekey, seconds since installed) of each INSTALLED CHILD SA."""
        out = []
        for label, body in self.swanctl(gateway, "--list-sas"):
            if label != "list-sa event":
                continue
            for sa in body.values():
                if isinstance(sa, dict) and sa.get("state") == "ESTABLISHED":
                    out += [(int(c["rekey-time"]), int(c["install-time"]))
                            for c in (sa.get("child-sas") or {}).values()
                            if c.get("state") == "INSTALLED"]
        return out

    def bgp_neighbors(self, gateway: str) -> set[str]:
        frr = self.lab_dir / gateway / "frr"
        done = subprocess.run(["vtysh", "--vty_socket", str(frr), "-c",
                               "show bgp summary json"], capture_output=True, text=True,
                              timeout=10, check=True)
        return {s.neighbor for s in bgp_from_json(done.stdout)}

    def running_config(self, gateway: str) -> str:
        frr = self.lab_dir / gateway / "frr"
        return subprocess.run(["vtysh", "--vty_socket", str(frr), "-c", "show running-config"],
                              capture_output=True, text=True, timeout=10, check=True).stdout


@pytest.fixture(scope="module")
def driver_lab() -> Iterator[DriverLab]:
    with lab_machine() as root:
        require_binary("flock")
        fabric = root / f"{LAB_FABRIC}.yaml"
        fabric.write_text(yaml.safe_dump(lab_fabric()))
        lab_dir = root / LAB_FABRIC
        try:
            start(None, str(fabric), lab_dir)
            yield DriverLab(lab_dir, fabric, root)
        finally:
            for gw in (GW1, GW2):
                _kill_timer(lab_dir / gw / ".dcvpn")
            lab(None, "down", "--lab-dir", str(lab_dir))


def tunnel_up(lab: DriverLab, since: float | None, rekey_at_most: int) -> bool:
    """Both ends have an INSTALLED CHILD SA, GW1 one installed after `since` (monotonic; None:
    any) that rekeys as the expected config says, and BGP is Established on GW1."""
    age = time.monotonic() - since if since is not None else float("inf")
    fresh = [r for r, installed in lab.installed_children(GW1)
             if installed <= age and r <= rekey_at_most]
    return (bool(fresh) and bool(lab.installed_children(GW2))
            and lab.driver(GW1).get_state().bgp_sessions[0].state == "Established")


def settled(driver: StrongswanDriver) -> StrongswanDriver:
    """No timer of an earlier test still restoring."""
    wait_until(lambda: not driver.has_pending_commit(), 30, "no commit pending")
    return driver


@pytest.mark.lab
def test_lab_commit_confirm_new_esp_lifetime(driver_lab: DriverLab) -> None:
    driver = driver_lab.driver()
    assert driver_lab.child_rekey_config(GW1) == 3600
    state = driver.get_state()
    # both ends initiate at start: for a while there may be two IKE SAs
    assert {(s.state, s.encryption, s.prf, s.dh_group) for s in state.ike_sas} == {
        ("ESTABLISHED", "aes256gcm16", "sha384", 20)}
    assert {(s.name, s.state) for s in state.child_sas} == {("sdd1-sdd2-p0", "INSTALLED")}
    driver.load_candidate(driver_lab.candidate(esp_lifetime="50m"))
    diff = driver.diff().unified
    assert "+        rekey_time = 50m" in diff and "frr.conf" not in diff
    since = time.monotonic()
    assert driver.commit(confirm_timeout=120) == 120
    driver.confirm()
    assert not driver.has_pending_commit()
    assert driver_lab.child_rekey_config(GW1) == 3000  # charon has the new config
    # charon re-initiated the changed connection: a new CHILD SA, rekeying within 50m
    wait_until(lambda: tunnel_up(driver_lab, since, 3000), 30, "the tunnel re-establishes")
    secrets = driver_lab.lab_dir / GW1 / "swanctl-secrets.conf"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    driver.load_candidate(driver_lab.candidate(esp_lifetime="50m"))
    assert driver.diff().empty  # a second run changes nothing


@pytest.mark.lab
def test_lab_unconfirmed_commit_comes_back_with_the_old_config(driver_lab: DriverLab) -> None:
    driver = settled(driver_lab.driver())
    before = driver.get_running()
    old_rekey = driver_lab.child_rekey_config(GW1)
    driver.load_candidate(driver_lab.candidate(esp_lifetime="40m"))
    assert driver.commit(confirm_timeout=3) == 3
    since = time.monotonic() + 2  # the timer fires 3 s after the commit
    assert driver_lab.child_rekey_config(GW1) == 2400
    wait_until(lambda: not driver.has_pending_commit(), 20, "the timer fires")
    assert driver.get_running() == before
    assert driver_lab.child_rekey_config(GW1) == old_rekey
    wait_until(lambda: tunnel_up(driver_lab, since, old_rekey), 30, "the tunnel comes back")
    with pytest.raises(NoPendingCommitError, match=r"expired at .* restored the previous"):
        driver.confirm()


@pytest.mark.lab
def test_lab_timer_fires_after_the_dcvpn_process_is_killed(driver_lab: DriverLab) -> None:
    driver = settled(driver_lab.driver())
    before = driver.get_running()
    old_rekey = driver_lab.child_rekey_config(GW1)
    candidate = driver_lab.root / "killed-candidate.txt"
    candidate.write_text(driver_lab.candidate(esp_lifetime="45m"))
    candidate.chmod(0o600)
    target = driver_lab.target(GW1)
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from drivers.base import DeviceTarget\n"
        "from drivers.strongswan import StrongswanLocalDriver\n"
        "d = StrongswanLocalDriver(DeviceTarget(sys.argv[1], 'localhost', 0, "
        "options={'netns': sys.argv[2], 'dir': sys.argv[3]}))\n"
        "d.open(); d.load_candidate(Path(sys.argv[4]).read_text()); d.commit(4)\n"
        "print('committed', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, GW1, target.options["netns"],
                             target.options["dir"], str(candidate)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "committed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        since = time.monotonic() + 2  # the timer fires 4 s after the commit
        assert driver_lab.child_rekey_config(GW1) == 2700
        wait_until(lambda: driver.get_running() == before, 20, "the timer restores the files")
        wait_until(lambda: driver_lab.child_rekey_config(GW1) == old_rekey, 20,
                   "charon has the old config again")
        wait_until(lambda: not driver.has_pending_commit(), 20, "the timer is done")
        assert "apply_rc=0" in (driver_lab.lab_dir / GW1 / ".dcvpn" / "expired").read_text()
        wait_until(lambda: tunnel_up(driver_lab, since, old_rekey), 30, "the tunnel comes back")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.lab
def test_lab_frr_replace_removes_a_neighbor_no_longer_rendered(driver_lab: DriverLab) -> None:
    driver = settled(driver_lab.driver())
    gw3_inner = "169.254.0.9"  # sdd1-sdd3-p0: the second tunnel of sdd1
    two_sites = driver_lab.candidate()
    driver.load_candidate(driver_lab.candidate(sites=3))
    driver.commit(confirm_timeout=120)
    driver.confirm()
    assert driver_lab.bgp_neighbors(GW1) == {"169.254.0.1", gw3_inner}
    assert "10.3.0.0/24" in driver_lab.running_config(GW1)
    driver.load_candidate(two_sites)
    assert f"- neighbor {gw3_inner} remote-as 65003" in driver.diff().unified
    driver.commit(confirm_timeout=120)
    driver.confirm()
    assert driver_lab.bgp_neighbors(GW1) == {"169.254.0.1"}
    running = driver_lab.running_config(GW1)
    assert gw3_inner not in running and "10.3.0.0/24" not in running  # prefix-list entry too
    # sdd1-sdd2-p0 did not change: its SAs were left alone
    wait_until(lambda: tunnel_up(driver_lab, None, 3600), 30, "the remaining tunnel is up")
