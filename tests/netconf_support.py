"""Helpers shared by the NETCONF emulator tests: constants, clients, bounded waits."""

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from ncclient import manager

from lab.emulators.ssh_server import NetconfServer, ServerThread
from lab.yang import yang_dir

USER = "lab"
PASSWORD = "lab-secret"
WAIT = 10.0  # upper bound on any wait
REPLY_WAIT = 1.0  # a raw request without an answer by then counts as unanswered
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NC_OP = f'xmlns:nc="{NC}"'
NATIVE = "http://cisco.com/ns/yang/Cisco-IOS-XE-native"
EMULATOR_SCALE = 0.005  # real seconds per device second: a minute lasts 0.3 s


def require_yang() -> None:
    reason = None
    if yang_dir() is None:
        reason = "vendor YANG folder absent (set DCVPN_YANG_DIR; default ../shared/yang)"
    else:
        try:
            import libyang  # noqa: F401
        except ImportError:
            reason = "libyang binding missing: apt-get install libyang2-dev; pip install libyang"
    if reason is not None:
        if os.environ.get("CI") or os.environ.get("DCVPN_REQUIRE_ALL"):
            pytest.fail(reason)
        pytest.skip(reason)


def connect(port: int, handler: str = "default", **kwargs: Any) -> Any:
    return manager.connect(host="127.0.0.1", port=port, username=USER, password=PASSWORD,
                           hostkey_verify=False, allow_agent=False, look_for_keys=False,
                           timeout=WAIT, device_params={"name": handler}, **kwargs)


def wait_until(predicate: Callable[[], bool], what: str, *, interval: float = 0.02,
               bound: float = WAIT) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}")


def start_emulator(tmp_path: Path, scale: float = EMULATOR_SCALE,
                   **options: Any) -> ServerThread:
    server = NetconfServer("iosxe", USER, PASSWORD, tmp_path / "state", scale,
                           device_options=options)
    return ServerThread(server).start(timeout=30)


async def raw_exchange(port: int, messages: list[bytes]) -> list[bytes | None]:
    """Client hello then messages (base:1.0 framing); a reply is None if the server hung up."""
    async with asyncssh.connect("127.0.0.1", port, username=USER, password=PASSWORD,
                                known_hosts=None, client_keys=None,
                                connect_timeout=WAIT) as conn:
        writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
        buffer = b""

        async def read_message() -> bytes | None:
            nonlocal buffer
            while b"]]>]]>" not in buffer:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), REPLY_WAIT)
                except TimeoutError:
                    return None
                if not chunk:
                    return None
                buffer += chunk
            message, buffer = buffer.split(b"]]>]]>", 1)
            return message

        await read_message()
        writer.write(f'<hello xmlns="{NC}"><capabilities><capability>'
                     "urn:ietf:params:netconf:base:1.0</capability></capabilities>"
                     "</hello>]]>]]>".encode())
        replies: list[bytes | None] = []
        for message in messages:
            if writer.channel.is_closing():
                replies.append(None)
                continue
            writer.write(message + b"]]>]]>")
            replies.append(await read_message())
        writer.close()
        return replies
