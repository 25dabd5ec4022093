"""`dcvpn lab serve`: one emulator in the foreground, as a user runs it (a subprocess).

It prints the known_hosts line of its host key, answers the client library with that key
pinned, keeps the key across restarts, refuses non-loopback addresses (exit 2) and stops on
SIGTERM with exit 0. No root needed.
"""

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from ncclient import manager  # type: ignore[import-untyped]
from ncclient.transport.errors import SSHUnknownHostError  # type: ignore[import-untyped]
from netconf_support import require_yang

from lab.emulators.hosting import EmulatorSpec, make_server
from lab.emulators.iosxe import IosxeDevice
from lab.emulators.peers import PeerRegistry
from lab.emulators.ssh_server import HOST_KEY_FILE
from pipelines import lab_cmd

START_WAIT = 60.0  # the IOS-XE YANG takes seconds to load on a busy 2-core machine
STOP_WAIT = 15.0
CONFIRMED_COMMIT = "urn:ietf:params:netconf:capability:confirmed-commit:1.1"
CANDIDATE = "urn:ietf:params:netconf:capability:candidate:1.0"


@dataclass
class Served:
    proc: subprocess.Popen[str]
    first_line: str  # what it printed on stdout

    @property
    def known_hosts(self) -> str:
        return self.first_line

    @property
    def port(self) -> int:
        host_port = self.first_line.split()[0]  # [127.0.0.1]:PORT
        return int(host_port.rsplit(":", 1)[1])

    @property
    def key_b64(self) -> str:
        return self.first_line.split()[2]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCVPN_")}
    if "DCVPN_YANG_DIR" in os.environ:
        env["DCVPN_YANG_DIR"] = os.environ["DCVPN_YANG_DIR"]
    env.update(extra or {})
    return env


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "lab", "serve", *args]


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, bounded in time (the process keeps running after it)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buffer = b""
    while time.monotonic() < deadline and b"\n" not in buffer:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buffer += chunk
    if b"\n" in buffer:
        return buffer.decode().split("\n", 1)[0]
    proc.kill()
    _, err = proc.communicate(timeout=STOP_WAIT)
    pytest.fail(f"lab serve printed no line (exit {proc.returncode}): {err}")


def _stop(proc: subprocess.Popen[str], signum: int = signal.SIGTERM) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=STOP_WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("lab serve did not stop on the signal")
    return proc.returncode, err


@contextmanager
def serve(*args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    proc = subprocess.Popen(_argv(*args), env=_env(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield Served(proc, _read_line(proc, START_WAIT))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=STOP_WAIT)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(*args), env=_env(env), capture_output=True, text=True,
                          timeout=START_WAIT, check=False)


def _ncclient(port: int, key_b64: str, handler: str = "junos",
              password: str = "admin") -> Any:
    """A session that accepts only the pinned key."""
    return manager.connect(host="127.0.0.1", port=port, username="admin", password=password,
                           hostkey_verify=True, hostkey_b64=key_b64, allow_agent=False,
                           look_for_keys=False, timeout=10, device_params={"name": handler})


def test_junos_netconf_answers_ncclient_with_the_printed_key_and_stops_on_sigterm(
        tmp_path: Path) -> None:
    state = tmp_path / "state"
    with serve("--platform", "junos", "--transport", "netconf", "--port", "0",
               "--state-dir", str(state), "--hostname", "em-srx1") as served:
        assert served.known_hosts.startswith("[127.0.0.1]:")
        with _ncclient(served.port, served.key_b64) as m:
            config = m.get_config(source="running").data_xml
            assert "em-srx1" in config
        code, err = _stop(served.proc)
    assert code == 0, err
    assert "junos NETCONF emulator listening on 127.0.0.1:" in err
    assert "login admin/admin" in err and "stopped" in err
    assert "Traceback" not in err
    with socket.socket() as sock:  # nothing listens any more
        assert sock.connect_ex(("127.0.0.1", served.port)) != 0


def test_a_wrong_host_key_is_refused_by_the_client(tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[1]
    with serve("--platform", "junos", "--transport", "netconf", "--port", "0",
               "--state-dir", str(tmp_path)) as served:
        with pytest.raises(SSHUnknownHostError):
            _ncclient(served.port, other)
        code, _ = _stop(served.proc, signal.SIGINT)
    assert code == 0


def test_host_key_is_made_once_and_kept_across_restarts(tmp_path: Path) -> None:
    """In the per-user state folder by default: $XDG_STATE_HOME/dcvpn/lab."""
    env = {"XDG_STATE_HOME": str(tmp_path / "xdg")}
    args = ("--platform", "iosxe", "--transport", "ssh", "--port", "0")
    with serve(*args, env=env) as first:
        assert _stop(first.proc)[0] == 0
    key_file = tmp_path / "xdg" / "dcvpn" / "lab" / HOST_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    with serve(*args, env=env) as second:
        assert second.key_b64 == first.key_b64
        assert _stop(second.proc)[0] == 0
    key_file.chmod(0o644)  # a key others can read is refused, not used
    done = _run(*args, env=env)
    assert done.returncode == 2 and "chmod 600" in done.stderr


def test_iosxe_options_from_the_environment_and_json(tmp_path: Path) -> None:
    """Every option also comes from DCVPN_*; 17.12 without :confirmed-commit as asked."""
    env = {"DCVPN_PLATFORM": "iosxe", "DCVPN_TRANSPORT": "netconf", "DCVPN_PORT": "0",
           "DCVPN_STATE_DIR": str(tmp_path / "s"), "DCVPN_OS_VERSION": "17.12",
           "DCVPN_NO_CONFIRMED_COMMIT": "1", "DCVPN_USERNAME": "admin",
           "DCVPN_PASSWORD": "em-pass", "DCVPN_FORMAT": "json"}
    with serve(env=env) as served:
        info = json.loads(served.first_line)
        assert info["platform"] == "iosxe" and info["transport"] == "netconf"
        assert "password" not in info
        line = info["known_hosts"]
        with _ncclient(info["port"], line.split()[2], "iosxe", password="em-pass") as m:
            caps = set(m.server_capabilities)
        assert CANDIDATE in caps and CONFIRMED_COMMIT not in caps
        # the 17.12 release's cisco-ia revision (17.15 advertises 2024-07-01)
        assert "http://cisco.com/yang/cisco-ia?module=cisco-ia&revision=2021-11-01" in caps
        code, err = _stop(served.proc)
    assert code == 0, err
    assert "em-pass" not in err  # a password the user chose is not printed


def test_iosxe_cli_answers_an_ssh_client_with_the_printed_key(tmp_path: Path) -> None:
    with serve("--platform", "iosxe", "--transport", "ssh", "--port", "0", "--hostname",
               "em-c8k", "--state-dir", str(tmp_path)) as served:
        async def show() -> str:
            async with asyncssh.connect(
                    "127.0.0.1", served.port, username="admin", password="admin",
                    known_hosts=asyncssh.import_known_hosts(served.known_hosts),
                    client_keys=None, agent_path=None, connect_timeout=10) as conn:
                result = await conn.run("show running-config | include hostname",
                                        timeout=10)
                return str(result.stdout)
        assert "hostname em-c8k" in asyncio.run(show())
        assert _stop(served.proc)[0] == 0


def _in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                *args: str) -> tuple[int, str, str]:
    for name in list(os.environ):
        if name.startswith("DCVPN_") and name != "DCVPN_YANG_DIR":
            monkeypatch.delenv(name)
    code = lab_cmd.main(["lab", "serve", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_non_loopback_address_is_refused_by_the_command(tmp_path: Path) -> None:
    state = tmp_path / "never"
    done = _run("--platform", "junos", "--transport", "netconf", "--port", "0", "--host",
                "0.0.0.0", "--state-dir", str(state))
    assert done.returncode == 2
    assert "loopback addresses only, not '0.0.0.0'" in done.stderr
    assert done.stdout == "" and not state.exists()


@pytest.mark.parametrize("host", ["192.0.2.1", "em-host.example", "::"])
def test_non_loopback_addresses_are_refused(tmp_path: Path, host: str,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "never"
    code, out, err = _in_process(capsys, monkeypatch, "--platform", "iosxe", "--transport",
                                 "ssh", "--port", "0", "--host", host, "--state-dir",
                                 str(state))
    assert code == 2
    assert f"loopback addresses only, not {host!r}" in err
    assert out == "" and not state.exists()


@pytest.mark.parametrize(("args", "message"), [
    (("--platform", "junos", "--transport", "ssh", "--port", "0"),
     "no emulator for platform 'junos' with transport 'ssh'"),
    (("--platform", "junos", "--transport", "netconf", "--port", "0", "--os-version", "17.15"),
     "os_version is an IOS-XE setting"),
    (("--platform", "iosxe", "--transport", "netconf", "--port", "0", "--os-version", "16.9"),
     "no IOS-XE emulator for os_version '16.9'"),
    (("--platform", "iosxe", "--transport", "ssh", "--port", "0", "--no-confirmed-commit"),
     "IOS-XE NETCONF setting"),
    (("--platform", "iosxe", "--transport", "ssh"), "give --port N"),
    (("--platform", "iosxe", "--transport", "ssh", "--port", "x"), "--port takes a number"),
    (("--platform", "iosxe", "--transport", "ssh", "--port", "70000"), "not a TCP port"),
    (("--platform", "iosxe", "--transport", "ssh", "--port", "0", "--time-scale", "0"),
     "--time-scale must be positive"),
    (("--transport", "ssh", "--port", "0"), "give --platform"),
])
def test_bad_usage_is_exit_2(tmp_path: Path, args: tuple[str, ...], message: str,
                             capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _in_process(capsys, monkeypatch, *args, "--state-dir",
                                 str(tmp_path / "s"))
    assert code == 2, err
    assert message in err and out == ""
    assert not (tmp_path / "s").exists()


def test_a_port_in_use_is_exit_3(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run("--platform", "iosxe", "--transport", "ssh", "--port", str(port),
                    "--state-dir", str(tmp_path))
    assert done.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


# --- hosting several emulators in one process (what the lab's supervisor does) -------------

def test_one_process_shares_the_yang_and_joins_every_device_to_the_peer_registry(
        tmp_path: Path) -> None:
    require_yang()
    registry = PeerRegistry()
    specs = [EmulatorSpec("iosxe", "netconf", "admin", "admin", tmp_path / name,
                          hostname=name, gateway=name)
             for name in ("em-a1", "em-a2")]
    specs += [EmulatorSpec("iosxe", "ssh", "admin", "admin", tmp_path / "em-c1",
                           gateway="em-c1"),
              EmulatorSpec("junos", "netconf", "admin", "admin", tmp_path / "em-j1",
                           gateway="em-j1")]

    async def run() -> tuple[tuple[str, ...], tuple[str, ...], bool]:
        servers = [make_server(spec, registry) for spec in specs]
        for server in servers:
            await server.start()
        try:
            joined = registry.gateways()
            first, second = (s.device for s in servers[:2])
            shared = isinstance(first, IosxeDevice) and isinstance(second, IosxeDevice) and (
                first.yang is not None and first.yang is second.yang)
        finally:
            for server in servers:
                await server.stop()
        return joined, registry.gateways(), shared

    joined, after, shared = asyncio.run(run())
    assert joined == ("em-a1", "em-a2", "em-c1", "em-j1")
    assert after == ()  # a stopped device leaves the registry
    assert shared
