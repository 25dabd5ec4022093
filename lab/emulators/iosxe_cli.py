"""SSH transport of the IOS-XE CLI emulator: interactive vty shells, exec requests, SCP to flash:.

netmiko (`cisco_xe`, `cisco_ios`) and napalm's `ios` driver use it unchanged: an interactive
shell for commands and a second connection running `scp -t flash:/<file>` for transfers, as
with a Catalyst 8000V that has `ip scp server enable`. IOS-XE has no SFTP server, so the sftp
subsystem answers every request with "operation unsupported". Password logins use the
server's credentials; the user's privilege (15: straight to `#`) comes from its `username`
line in the running configuration. The host key is shared with the NETCONF emulator
(ssh_server.load_or_create_host_key: made once per state folder, mode 0600).
"""

import asyncio
import contextlib
import hmac
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, cast

import asyncssh
from asyncssh.constants import FILEXFER_TYPE_DIRECTORY, FILEXFER_TYPE_REGULAR, FXF_WRITE

from lab.emulators.datastore import DeviceClock
from lab.emulators.errors import EmulatorError
from lab.emulators.iosxe_cli_commands import SCP_DISABLED
from lab.emulators.iosxe_cli_device import IosXeCliDevice, parse_url
from lab.emulators.iosxe_cli_session import CliSession
from lab.emulators.peers import PeerRegistry
from lab.emulators.ssh_server import LoopThread, load_or_create_host_key, require_loopback

log = logging.getLogger(__name__)

DEFAULT_VERSION = "17.15.1a"
DEFAULT_USERNAME = "admin"  # the lab's credentials unless the user picks others
DEFAULT_PASSWORD = "admin"
READ_SIZE = 65536


@dataclass
class _Upload:
    name: str
    data: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class _Download:
    data: bytes


def _unsupported() -> NoReturn:
    raise asyncssh.SFTPOpUnsupported("no such operation on flash:")


class _Flash(asyncssh.SFTPServer):
    """flash: for the SCP server; the sftp subsystem is refused like on a device.

    asyncssh's SFTPServer serves the host's file system by default: every path goes through
    map_path and every open file through the methods below, so refusing there keeps the host
    out of reach whatever a client asks for.
    """

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], device: IosXeCliDevice) -> None:
        super().__init__(chan)
        self._device = device
        self._scp = (chan.get_command() or "").startswith("scp ")

    def map_path(self, path: bytes) -> NoReturn:
        _unsupported()

    def open56(self, path: bytes, desired_access: int, flags: int,
               attrs: asyncssh.SFTPAttrs) -> NoReturn:
        _unsupported()

    def fstat(self, file_obj: object) -> NoReturn:
        _unsupported()

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> NoReturn:
        _unsupported()

    def fstatvfs(self, file_obj: object) -> NoReturn:
        _unsupported()

    def fsync(self, file_obj: object) -> NoReturn:
        _unsupported()

    def lock(self, file_obj: object, offset: int, length: int, flags: int) -> NoReturn:
        _unsupported()

    def unlock(self, file_obj: object, offset: int, length: int) -> NoReturn:
        _unsupported()

    def _name(self, path: bytes) -> str:
        if not self._scp:
            raise asyncssh.SFTPOpUnsupported("SFTP is not supported; use SCP")
        url = parse_url(path.decode(errors="replace"))
        if url.kind != "flash":
            raise asyncssh.SFTPNoSuchFile(f"no file system for {url.text}")
        return url.name

    def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        name = self._name(path)
        if not name:
            return asyncssh.SFTPAttrs(type=FILEXFER_TYPE_DIRECTORY, permissions=0o40755)
        found = self._device.flash.files.get(name)
        if found is None:
            raise asyncssh.SFTPNoSuchFile(f"{name}: no such file")
        return asyncssh.SFTPAttrs(type=FILEXFER_TYPE_REGULAR, size=len(found.data),
                                  permissions=0o100644, mtime=int(found.mtime))

    def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self.stat(path)

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self.stat(path)

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        name = self._name(path)
        if not name:
            raise asyncssh.SFTPFailure("is a directory")
        if pflags & FXF_WRITE:
            if not self._device.has_line("ip scp server enable"):
                raise asyncssh.SFTPPermissionDenied(SCP_DISABLED)
            return _Upload(name)
        found = self._device.flash.files.get(name)
        if found is None:
            raise asyncssh.SFTPNoSuchFile(f"{name}: no such file")
        return _Download(found.data)

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        if not isinstance(file_obj, _Download):
            raise asyncssh.SFTPFailure("not open for reading")
        return file_obj.data[offset:offset + size]

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        if not isinstance(file_obj, _Upload):
            raise asyncssh.SFTPFailure("not open for writing")
        buffer = file_obj.data
        if len(buffer) < offset:
            buffer.extend(bytes(offset - len(buffer)))
        buffer[offset:offset + len(data)] = data
        return len(data)

    def close(self, file_obj: object) -> None:
        if isinstance(file_obj, _Upload):
            self._device.write_file(file_obj.name, bytes(file_obj.data))


class _Login(asyncssh.SSHServer):
    def __init__(self, server: "CliServer") -> None:
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


@dataclass
class CliServer:
    """One emulated IOS-XE device behind one SSH listener on a loopback address."""

    username: str
    password: str
    state_dir: Path
    time_scale: float = 1.0
    host: str = "127.0.0.1"
    port: int = 0
    hostname: str | None = None
    enable_secret: str | None = None
    privilege: int = 15
    version: str = DEFAULT_VERSION
    peers: PeerRegistry | None = None  # the lab's registry: SA/BGP answers follow peers
    gateway: str | None = None  # the lab gateway this device stands for
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    host_key: asyncssh.SSHKey | None = None
    _acceptor: asyncssh.SSHAcceptor | None = None
    _device: IosXeCliDevice | None = None
    _session_ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))

    @property
    def device(self) -> IosXeCliDevice:
        if self._device is None:
            raise EmulatorError("server not started")
        return self._device

    async def start(self) -> None:
        require_loopback(self.host)
        loop = asyncio.get_running_loop()
        device = self._device = IosXeCliDevice(
            DeviceClock(self.time_scale), loop.call_later, hostname=self.hostname,
            version=self.version, username=self.username, password=self.password,
            privilege=self.privilege, enable_secret=self.enable_secret, peers=self.peers,
            gateway=self.gateway)
        key = self.host_key = load_or_create_host_key(self.state_dir)
        self._acceptor = await asyncssh.create_server(
            lambda: _Login(self), self.host, self.port, server_host_keys=[key],
            encoding=None, session_factory=self._session,
            sftp_factory=lambda chan: _Flash(chan, device), allow_scp=True,
            line_editor=False, agent_forwarding=False, x11_forwarding=False, login_timeout=30)
        self.port = self._acceptor.sockets[0].getsockname()[1]

    async def _session(self, stdin: asyncssh.SSHReader[bytes],
                       stdout: asyncssh.SSHWriter[bytes],
                       stderr: asyncssh.SSHWriter[bytes]) -> None:
        chan = cast(asyncssh.SSHServerChannel[bytes], stdout.channel)
        device = self.device
        user = str(chan.get_extra_info("username") or "")
        session_id = next(self._session_ids)
        session = CliSession(device, user, session_id, enable_secret=self.enable_secret,
                             privileged=device.user_privilege(user) >= 15)
        device.sessions[session_id] = user
        try:
            command = chan.get_command()
            if command:
                stdout.write(_lines(session.exec_line(command).text))
                return
            stdout.write(session.greeting())
            while not session.closed:
                try:
                    data = await stdin.read(READ_SIZE)
                except (asyncssh.BreakReceived, asyncssh.SignalReceived,
                        asyncssh.TerminalSizeChanged):
                    continue
                if not data:
                    break
                stdout.write(_feed(session, data))
        except (asyncssh.DisconnectError, asyncssh.ConnectionLost, BrokenPipeError):
            pass
        finally:
            device.sessions.pop(session_id, None)
            if not chan.is_closing():
                chan.exit(0)

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


def _feed(session: CliSession, data: bytes) -> bytes:
    try:
        return session.feed(data)
    except Exception:
        log.exception("IOS-XE CLI emulator failed on a line of input")
        return b"\r\n% Internal error in the emulator\r\n" + session.prompt().encode()


def _lines(text: str) -> bytes:
    return (text.rstrip("\n") + "\n").replace("\n", "\r\n").encode() if text else b""


def serve_cli(host: str, port: int, username: str, password: str, state_dir: Path,
              time_scale: float, hostname: str | None = None, *,
              enable_secret: str | None = None, privilege: int = 15,
              version: str = DEFAULT_VERSION) -> None:
    """Run one IOS-XE SSH CLI emulator in the foreground until interrupted."""
    server = CliServer(username, password, state_dir, time_scale, host, port, hostname,
                       enable_secret, privilege, version)

    async def run() -> None:
        await server.start()
        log.info("IOS-XE SSH CLI emulator on %s:%s", host, server.port)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


class CliServerThread(LoopThread[CliServer]):
    def __init__(self, server: CliServer) -> None:
        super().__init__(server, "emulator-iosxe-cli")
