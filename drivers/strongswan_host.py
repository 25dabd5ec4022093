"""Running commands on a strongSwan+FRR host: one Runner interface, two transports.

The driver's lifecycle (drivers/strongswan.py) only ever asks a Runner to run an argv with
optional stdin and a timeout, so it is the same for the lab (LocalRunner: subprocess on this
machine) and for a real host (SshRunner: paramiko exec channels, one connection per driver).
File contents travel on stdin, never on a command line.

SSH host keys are checked against DeviceTarget.known_hosts (`[host]:port` entries unless
port 22) unless `verify_host_key` is off (DCVPN_NO_HOST_KEY_CHECK=1): an unknown host or a
changed key is refused before authentication.
"""

import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import paramiko  # type: ignore[import-untyped]

from drivers.base import DeviceTarget
from drivers.errors import ConnectError, DriverError
from drivers.known_hosts import known_host_names
from drivers.redact import guard_loggers

POLL = 0.01
CHUNK = 65536


@dataclass(frozen=True, slots=True)
class Completed:
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr)


class Runner(Protocol):
    where: str  # for messages: "<gateway> (local)", "<gateway> (host:port)"

    def run(self, argv: Sequence[str], stdin: bytes | None = None,
            timeout: float = 60.0) -> Completed: ...

    def close(self) -> None: ...


def sh(script: str, *args: str) -> list[str]:
    """argv running a sh program with positional arguments ($1 ...)."""
    return ["sh", "-c", script, "sh", *args]


class LocalRunner:
    """Commands on this machine (the lab's gateways live in namespaces here)."""

    def __init__(self, name: str) -> None:
        self.where = f"{name} (local)"

    def run(self, argv: Sequence[str], stdin: bytes | None = None,
            timeout: float = 60.0) -> Completed:
        try:
            proc = subprocess.run(list(argv), input=stdin or b"", capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise DriverError(f"{self.where}: {argv[0]} did not finish within "
                              f"{timeout:.0f}s") from None
        except OSError as exc:
            raise ConnectError(f"{self.where}: cannot run {argv[0]}: {exc}") from None
        return Completed(proc.returncode, proc.stdout.decode(errors="replace"),
                         proc.stderr.decode(errors="replace"))

    def close(self) -> None:
        return None


class SshRunner:
    """Commands on a host over SSH (paramiko); `sudo=True` prefixes `sudo -n`."""

    def __init__(self, target: DeviceTarget, sudo: bool = False) -> None:
        self.target = target
        self.sudo = sudo
        self.where = f"{target.name} ({target.host}:{target.port})"
        self._client: Any = None

    def connect(self) -> None:
        if self._client is not None:
            return
        guard_loggers("paramiko")
        t = self.target
        client = paramiko.SSHClient()
        if t.verify_host_key:
            path = t.known_hosts
            if path is None or not path.is_file():
                raise ConnectError(f"{self.where}: known_hosts file {path} does not exist; add "
                                   "the host key or opt out with DCVPN_NO_HOST_KEY_CHECK=1")
            try:
                client.load_host_keys(str(path))
            except (OSError, paramiko.SSHException, paramiko.hostkeys.InvalidHostKey) as exc:
                raise ConnectError(f"{self.where}: cannot read known_hosts {path}: "
                                   f"{exc}") from None
            if not any(client.get_host_keys().lookup(n)
                       for n in known_host_names(t.host, t.port)):
                raise ConnectError(
                    f"{self.where}: no host key for {known_host_names(t.host, t.port)[0]} in "
                    f"{path}; add it (ssh-keyscan -p {t.port} {t.host}) or opt out with "
                    "DCVPN_NO_HOST_KEY_CHECK=1")
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(t.host, port=t.port, username=t.username, password=t.password,
                           key_filename=t.ssh_key, timeout=t.timeout, banner_timeout=t.timeout,
                           auth_timeout=t.timeout, allow_agent=False, look_for_keys=False)
        except paramiko.BadHostKeyException:
            client.close()
            raise ConnectError(f"{self.where}: the host key does not match {t.known_hosts}; "
                               "refusing to connect") from None
        except paramiko.AuthenticationException:
            client.close()
            raise ConnectError(f"{self.where}: authentication failed for user "
                               f"{t.username!r}") from None
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise ConnectError(f"{self.where}: host key not in {t.known_hosts}; "
                                   "refusing to connect") from None
            raise ConnectError(f"{self.where}: SSH failed: {exc}") from None
        except OSError as exc:
            client.close()
            raise ConnectError(f"{self.where}: cannot connect: {exc}") from None
        self._client = client

    def run(self, argv: Sequence[str], stdin: bytes | None = None,
            timeout: float = 60.0) -> Completed:
        self.connect()
        command = shlex.join(["sudo", "-n", *argv] if self.sudo else list(argv))
        try:
            channel = self._client.get_transport().open_session(timeout=self.target.timeout)
            channel.exec_command(command)
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            return self._collect(channel, argv[0], timeout)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            self.close()
            raise ConnectError(f"{self.where}: the SSH session failed: {exc}") from None

    def _collect(self, channel: Any, what: str, timeout: float) -> Completed:
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            while True:
                busy = False
                if channel.recv_ready():
                    out += channel.recv(CHUNK)
                    busy = True
                if channel.recv_stderr_ready():
                    err += channel.recv_stderr(CHUNK)
                    busy = True
                ended = channel.eof_received or channel.closed
                if (not busy and ended and channel.exit_status_ready()
                        and not channel.recv_ready() and not channel.recv_stderr_ready()):
                    break
                if time.monotonic() > deadline:
                    raise DriverError(f"{self.where}: {what} did not finish within "
                                      f"{timeout:.0f}s")
                if not busy:
                    time.sleep(POLL)
            rc = channel.recv_exit_status()
        finally:
            channel.close()
        return Completed(rc, out.decode(errors="replace"), err.decode(errors="replace"))

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
