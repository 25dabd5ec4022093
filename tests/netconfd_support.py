"""Debian's netconfd (yuma123) behind an asyncssh front, as an independent NETCONF peer.

netconfd speaks NETCONF to `netconf-subsystem` over a UNIX socket; sshd normally starts that
program for the `netconf` subsystem. Here an asyncssh server on a loopback port plays sshd:
it checks the password and starts `netconf-subsystem` with the SSH_CONNECTION and USER that
sshd would set (netconfd refuses sessions whose port it was not started with: --port).

netconfd creates `~/.yuma` in the home directory of its user whatever $HOME says, so it runs
in a private mount namespace with a temporary directory mounted over that home; where mount
namespaces are not available it runs directly and the `.yuma` folder it made is removed.
"""

import asyncio
import contextlib
import hmac
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import asyncssh

CONFORMANCE_YANG = """module dcvpn-conformance {
  namespace "urn:dcvpn:conformance";
  prefix dc;
  revision 2026-01-01;
  container settings {
    leaf hostname { type string; }
    list entry {
      key name;
      leaf name { type string; }
      leaf value { type string; }
    }
  }
}
"""
CONFORMANCE_NS = "urn:dcvpn:conformance"
START_TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _unshare_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run([unshare, "--mount", "--propagation", "private", "true"],
                           capture_output=True, check=False, timeout=10)
    return probe.returncode == 0


async def _pump(source: asyncssh.SSHReader[bytes], sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncssh.Error):
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    sink.close()


class _Front(asyncssh.SSHServer):
    def __init__(self, owner: "NetconfdServer") -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return (hmac.compare_digest(username.encode(), self._owner.username.encode())
                and hmac.compare_digest(password.encode(), self._owner.password.encode()))


class NetconfdServer:
    """netconfd with the candidate datastore and a test module, on 127.0.0.1:port over SSH."""

    def __init__(self, workdir: Path, username: str, password: str) -> None:
        self.workdir = workdir
        self.username = username
        self.password = password
        self.port = _free_port()
        self.socket_path = workdir / "ncxserver.sock"
        self.log_path = workdir / "netconfd.log"
        self._daemon: subprocess.Popen[bytes] | None = None
        self._children: set[asyncio.subprocess.Process] = set()
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="netconfd-front")
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._home = Path(pwd.getpwuid(os.getuid()).pw_dir)
        self._made_yuma_dir = False

    # --- daemon -----------------------------------------------------------------------

    def _daemon_command(self, netconfd: str) -> list[str]:
        module = self.workdir / "dcvpn-conformance.yang"
        module.write_text(CONFORMANCE_YANG)
        return [netconfd, f"--ncxserver-sockname={self.socket_path}", f"--port={self.port}",
                "--target=candidate", "--no-startup", "--with-startup=false",
                f"--superuser={self.username}", "--access-control=off",
                f"--module={module}", f"--log={self.log_path}", "--log-level=info",
                "--idle-timeout=0"]

    def _start_daemon(self, netconfd: str) -> None:
        command = self._daemon_command(netconfd)
        if _unshare_works():
            fake_home = self.workdir / "home"
            fake_home.mkdir()
            script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                       "netconfd", str(fake_home), str(self._home), *command]
        else:
            self._made_yuma_dir = not (self._home / ".yuma").exists()
        self._daemon = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.socket_path.exists():
            if self._daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"netconfd did not start; log: {self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-2000:]

    # --- SSH front --------------------------------------------------------------------

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        if process.subsystem != "netconf":
            process.exit(1)
            return
        peer = process.get_extra_info("peername") or ("127.0.0.1", 0)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "USER": self.username,
               "SSH_CONNECTION": f"{peer[0]} {peer[1]} 127.0.0.1 {self.port}"}
        child = await asyncio.create_subprocess_exec(
            shutil.which("netconf-subsystem") or "netconf-subsystem",
            f"--ncxserver-sockname={self.port}@{self.socket_path}",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env=env)
        self._children.add(child)
        assert child.stdin is not None and child.stdout is not None
        to_daemon = asyncio.ensure_future(_pump(process.stdin, child.stdin))
        try:
            while chunk := await child.stdout.read(65536):
                process.stdout.write(chunk)
            await child.wait()
        finally:
            to_daemon.cancel()
            self._children.discard(child)
            if child.returncode is None:
                child.kill()
                await child.wait()
            process.exit(0)

    async def _start_front(self) -> None:
        key = asyncssh.generate_private_key("ssh-ed25519")
        self._acceptor = await asyncssh.create_server(
            lambda: _Front(self), "127.0.0.1", self.port, server_host_keys=[key],
            process_factory=self._handle, encoding=None, allow_scp=False,
            agent_forwarding=False, x11_forwarding=False)

    async def _stop_front(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        for conn in list(self.connections):
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)
        for child in list(self._children):
            if child.returncode is None:
                child.kill()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(child.wait(), 5)

    # --- life cycle -------------------------------------------------------------------

    def start(self, netconfd: str) -> "NetconfdServer":
        try:
            self._start_daemon(netconfd)
            self._thread.start()
            asyncio.run_coroutine_threadsafe(self._start_front(), self._loop).result(10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._stop_front(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if self._daemon is not None and self._daemon.poll() is None:
            # SIGTERM takes netconfd a second (its select timeout); it keeps nothing worth
            # a clean shutdown here
            self._daemon.send_signal(signal.SIGKILL)
            self._daemon.wait(10)
        if self._made_yuma_dir:
            shutil.rmtree(self._home / ".yuma", ignore_errors=True)
            self._made_yuma_dir = False
