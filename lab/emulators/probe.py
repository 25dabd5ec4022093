"""Does an emulator answer? A login with its pinned host key, then the NETCONF server hello
(netconf subsystem) or one CLI command (exec request) — what `lab up` waits for.

Also the cheap check `lab status` uses: the SSH identification line on the port (no login).
"""

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import asyncssh

END_OF_MESSAGE = b"]]>]]>"
CLI_PROBE = "show version"
READ_SIZE = 65536


@dataclass(frozen=True)
class Probe:
    name: str
    host: str
    port: int
    transport: str  # netconf | ssh
    username: str
    password: str
    known_hosts: str  # one OpenSSH known_hosts line: the only key accepted


async def _netconf_hello(conn: asyncssh.SSHClientConnection) -> str | None:
    writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
    buffer = b""
    try:
        while END_OF_MESSAGE not in buffer and len(buffer) < 4 * READ_SIZE:
            chunk = await reader.read(READ_SIZE)
            if not chunk:
                return "closed the netconf session before its hello"
            buffer += chunk
    finally:
        writer.close()
    return None if b"<hello" in buffer and b"capabilit" in buffer else "sent no NETCONF hello"


async def _cli(conn: asyncssh.SSHClientConnection) -> str | None:
    result = await conn.run(CLI_PROBE, check=False)
    output = result.stdout if isinstance(result.stdout, str) else ""
    return None if "Version" in output else f"did not answer `{CLI_PROBE}`"


async def _one(probe: Probe, timeout: float) -> str | None:
    """None when the emulator answered, else why not (one line, no secrets)."""
    try:
        async with asyncio.timeout(timeout):
            async with asyncssh.connect(
                    probe.host, probe.port, username=probe.username, password=probe.password,
                    known_hosts=asyncssh.import_known_hosts(probe.known_hosts),
                    client_keys=None, agent_path=None, connect_timeout=timeout) as conn:
                if probe.transport == "netconf":
                    return await _netconf_hello(conn)
                return await _cli(conn)
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except (OSError, asyncssh.Error) as exc:
        return str(getattr(exc, "reason", "") or getattr(exc, "strerror", "") or exc)


def probe_all(probes: Sequence[Probe], timeout: float = 5.0) -> dict[str, str | None]:
    """Each probe's outcome by name (None: answered), all at once."""
    async def run() -> list[str | None]:
        return list(await asyncio.gather(*(_one(p, timeout) for p in probes)))
    return dict(zip((p.name for p in probes), asyncio.run(run()), strict=True))


def ssh_banner(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when the port answers with an SSH identification line."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False
