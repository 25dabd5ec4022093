"""A tiny SSH server for driver tests: password login, runs each exec request with `sh -c`.

It listens on 127.0.0.1 only, on a free port, in a thread with its own event loop. Commands
run as the test's user on this machine; the tests point every path of the driver into a
temporary folder, so the "host" is that folder.
"""

import asyncio
import threading
from pathlib import Path

import asyncssh

USER, PASSWORD = "dcvpn", "sd-test-password"


class _Login(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USER and password == PASSWORD


async def _run(process: asyncssh.SSHServerProcess[bytes]) -> None:
    """The whole stdin (the client closes it), then the command, then its output and exit
    status, in that order (asyncssh's redirect can still be sending when exit() closes)."""
    data = await process.stdin.read()
    local = await asyncio.create_subprocess_exec(
        "sh", "-c", process.command or "true", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await local.communicate(data)
    process.stdout.write(out)
    process.stderr.write(err)
    process.exit(local.returncode or 0)


class ExecServer:
    def __init__(self, key_dir: Path) -> None:
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncssh.SSHAcceptor | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="sd-ssh")
        self.key_dir = key_dir

    async def _start(self) -> None:
        self._server = await asyncssh.create_server(
            _Login, "127.0.0.1", 0, server_host_keys=[self.host_key], process_factory=_run,
            encoding=None)
        self.port = self._server.sockets[0].getsockname()[1]

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        if self._server is not None:
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    def __enter__(self) -> "ExecServer":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test SSH server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def known_hosts(self, path: Path, key: asyncssh.SSHKey | None = None) -> Path:
        line = (key or self.host_key).export_public_key().decode().strip()
        path.write_text(f"[127.0.0.1]:{self.port} {line}\n")
        return path
