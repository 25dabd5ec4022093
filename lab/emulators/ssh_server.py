"""SSH transport of the emulators (asyncssh): the `netconf` subsystem, password login, host key.

The host key is generated once per state folder (0600) so that clients can pin it in a
known_hosts file. serve_netconf runs one emulator in the foreground; ServerThread runs one in
a background thread with its own event loop (tests, benchmarks, `dcvpn lab up`).
"""

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

import asyncssh

from drivers.xml_parsing import own_dictionary
from lab.emulators.datastore import DeviceClock
from lab.emulators.device import NetconfDevice
from lab.emulators.errors import EmulatorError
from lab.emulators.iosxe import IosxeDevice
from lab.emulators.junos import JunosDevice
from lab.emulators.netconf_session import NetconfSession, Outcome

log = logging.getLogger(__name__)

HOST_KEY_FILE = "ssh_host_ed25519_key"

PLATFORMS: dict[str, type[NetconfDevice]] = {
    "iosxe": IosxeDevice,
    "junos": JunosDevice,
}


# its thread starts on the first offload
_OFFLOAD_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emulator-offload")


def offload_from_loop(work: Callable[[], Any], done: Callable[[Outcome], None]) -> None:
    """NetconfSession's offload on an event loop: work on the emulators' worker thread (one
    for every device of the process: the slow work is libyang's, which has one lock), done
    back on the loop."""
    future = asyncio.get_running_loop().run_in_executor(_OFFLOAD_POOL, work)
    future.add_done_callback(lambda finished: done(finished.result))


def load_or_create_host_key(state_dir: Path) -> asyncssh.SSHKey:
    """The emulator's host key, made on first use and kept in state_dir (mode 0600)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / HOST_KEY_FILE
    if not path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.export_private_key())
        (state_dir / f"{HOST_KEY_FILE}.pub").write_bytes(key.export_public_key())
    elif path.stat().st_mode & 0o077:
        raise EmulatorError(f"host key {path} is readable by others; chmod 600 it")
    return asyncssh.read_private_key(str(path))


def known_hosts_line(key: asyncssh.SSHKey, host: str, port: int) -> str:
    """An OpenSSH known_hosts entry for this emulator ([host]:port form unless port 22)."""
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key.export_public_key().decode().strip()}\n"


def require_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise EmulatorError(f"emulators listen on loopback addresses only, not {host!r}")


class _Login(asyncssh.SSHServer):
    def __init__(self, server: "NetconfServer") -> None:
        self._server = server
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._server.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._server.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return (hmac.compare_digest(username.encode(), self._server.username.encode())
                and hmac.compare_digest(password.encode(), self._server.password.encode()))

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        return _NetconfChannel(self._server.device)


class _NetconfChannel(asyncssh.SSHServerSession[bytes]):
    def __init__(self, device: NetconfDevice) -> None:
        self._device = device
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._session: NetconfSession | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "netconf"

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        return False

    def session_started(self) -> None:
        chan = self._chan
        if chan is None:
            return
        username = str(chan.get_extra_info("username") or "")
        self._session = NetconfSession(self._device, username, self._write, self._close,
                                       offload_from_loop)
        self._session.start()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self._session is not None:
            self._session.data_received(data)

    def eof_received(self) -> bool:
        if self._session is not None:
            self._session.connection_lost()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._session is not None:
            self._session.connection_lost()

    def _write(self, data: bytes) -> None:
        if self._chan is not None and not self._chan.is_closing():
            self._chan.write(data)

    def _close(self) -> None:
        if self._chan is not None:
            self._chan.close()


@dataclass
class NetconfServer:
    """One emulated device behind one SSH listener (127.0.0.1 or another loopback address)."""

    platform: str
    username: str
    password: str
    state_dir: Path
    time_scale: float = 1.0
    host: str = "127.0.0.1"
    port: int = 0
    hostname: str | None = None
    device_options: dict[str, Any] = field(default_factory=dict)  # e.g. iosxe os_version
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    host_key: asyncssh.SSHKey | None = None
    _acceptor: asyncssh.SSHAcceptor | None = None
    _device: NetconfDevice | None = None

    @property
    def device(self) -> NetconfDevice:
        if self._device is None:
            raise EmulatorError("server not started")
        return self._device

    async def start(self) -> None:
        require_loopback(self.host)
        factory = PLATFORMS.get(self.platform)
        if factory is None:
            raise EmulatorError(f"no NETCONF emulator for platform {self.platform!r} "
                                f"(have: {', '.join(sorted(PLATFORMS))})")
        loop = asyncio.get_running_loop()
        clock = DeviceClock(self.time_scale)
        self._device = factory(clock, loop.call_later, hostname=self.hostname,
                               **self.device_options)
        key = self.host_key = load_or_create_host_key(self.state_dir)
        self._acceptor = await asyncssh.create_server(
            lambda: _Login(self), self.host, self.port, server_host_keys=[key],
            encoding=None, allow_scp=False, agent_forwarding=False,
            x11_forwarding=False, login_timeout=30,
            line_editor=False)  # a NETCONF subsystem: no terminal line editing in the path
        self.port = self._acceptor.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        for conn in list(self.connections):
            conn.close()
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)
        if self._device is not None:
            self._device.shutdown()


def serve_netconf(platform: str, host: str, port: int, username: str, password: str,
                  state_dir: Path, time_scale: float, *, hostname: str | None = None,
                  os_version: str | None = None, confirmed_commit: bool | None = None) -> None:
    """Run one NETCONF emulator in the foreground until interrupted.

    os_version ("17.15", "17.12") and confirmed_commit (advertise and serve RFC 6241
    :confirmed-commit:1.1, default on) are IOS-XE options.
    """
    options: dict[str, Any] = {}
    if os_version is not None:
        options["os_version"] = os_version
    if confirmed_commit is not None:
        options["confirmed_commit"] = confirmed_commit
    server = NetconfServer(platform, username, password, state_dir, time_scale, host, port,
                           hostname, options)

    async def run() -> None:
        await server.start()
        log.info("%s NETCONF emulator on %s:%s", platform, host, server.port)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


T = TypeVar("T")


class HostedServer(Protocol):
    host: str
    host_key: asyncssh.SSHKey | None

    @property
    def port(self) -> int: ...

    @property
    def device(self) -> Any: ...

    def start(self) -> Awaitable[None]: ...

    def stop(self) -> Awaitable[None]: ...


S = TypeVar("S", bound=HostedServer)


class LoopThread(Generic[S]):
    """An emulator server on its own event loop in a daemon thread; every wait is bounded.

    The thread takes an lxml string dictionary of its own before the server builds its device
    (drivers.xml_parsing.own_dictionary): its first element would otherwise tie its dictionary
    to the main thread's, which the main thread writes while it parses the emulator's replies.
    """

    def __init__(self, server: S, name: str) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def _run(self) -> None:
        own_dictionary()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.stop())
        self._loop.close()

    def start(self, timeout: float = 10.0) -> Self:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise EmulatorError(f"emulator did not start within {timeout} s")
        if self._error is not None:
            raise EmulatorError(f"emulator failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise EmulatorError(f"emulator did not stop within {timeout} s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.server.port

    def call(self, function: Callable[[Any], T], timeout: float = 10.0) -> T:
        """Run function(device) on the emulator's loop (tests read state without races)."""
        async def run() -> T:
            return function(self.server.device)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def known_hosts_line(self) -> str:
        if self.server.host_key is None:
            raise EmulatorError("server not started")
        return known_hosts_line(self.server.host_key, self.server.host, self.server.port)


class ServerThread(LoopThread[NetconfServer]):
    def __init__(self, server: NetconfServer) -> None:
        super().__init__(server, f"emulator-{server.platform}")
