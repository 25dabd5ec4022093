"""Hosting emulators in one process: what to run (EmulatorSpec), the server for a spec, and an
event loop that runs a set of them until SIGINT/SIGTERM.

`dcvpn lab serve` hosts one emulator this way and the lab's supervisor
(lab.emulators.supervisor) hosts every emulated gateway of a fabric, in one loop: the IOS-XE
YANG is loaded once per process (iosxe_schema.load_yang) and shared by all its devices.
"""

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.emulators.catalog import EMULATED, LOOPBACK, NETCONF, SSH, emulated
from lab.emulators.errors import EmulatorError
from lab.emulators.iosxe import DEFAULT_VERSION
from lab.emulators.iosxe_caps import RELEASE_MODULES
from lab.emulators.iosxe_cli import CliServer
from lab.emulators.iosxe_schema import load_yang
from lab.emulators.peers import PeerRegistry
from lab.emulators.ssh_server import NetconfServer, require_loopback

# what `show version` of the CLI emulator prints for an os_version
CLI_RELEASES: dict[str, str] = {"17.15": "17.15.1a", "17.12": "17.12.4"}

Server = NetconfServer | CliServer


@dataclass(frozen=True)
class EmulatorSpec:
    platform: str  # junos | iosxe
    transport: str  # netconf | ssh
    username: str
    password: str
    state_dir: Path  # holds the SSH host key
    host: str = LOOPBACK
    port: int = 0  # 0: any free port
    time_scale: float = 1.0  # real seconds per device second
    hostname: str | None = None
    os_version: str | None = None  # iosxe: 17.15 (default) or 17.12
    confirmed_commit: bool = True  # iosxe NETCONF: advertise :confirmed-commit:1.1
    gateway: str | None = None  # the lab gateway it stands for

    @property
    def label(self) -> str:
        kind = "SSH CLI" if self.transport == SSH else "NETCONF"
        what = f"{self.platform} {kind} emulator"
        return f"{self.gateway} ({what})" if self.gateway else what

    def check(self) -> None:
        """EmulatorError naming the bad setting; nothing is started."""
        if not emulated(self.platform, self.transport):
            have = "; ".join(f"{p}: {', '.join(t)}" for p, t in sorted(EMULATED.items()))
            raise EmulatorError(f"no emulator for platform {self.platform!r} with transport "
                                f"{self.transport!r} (have {have})")
        require_loopback(self.host)
        if not 0 <= self.port <= 65535:
            raise EmulatorError(f"port {self.port} is not a TCP port (0-65535)")
        if not self.time_scale > 0:
            raise EmulatorError(f"time scale must be positive, not {self.time_scale}")
        if self.os_version is not None:
            if self.platform != "iosxe":
                raise EmulatorError("os_version is an IOS-XE setting")
            if self.os_version not in RELEASE_MODULES:
                raise EmulatorError(f"no IOS-XE emulator for os_version {self.os_version!r} "
                                    f"(have: {', '.join(sorted(RELEASE_MODULES))})")
        if not self.confirmed_commit and (self.platform, self.transport) != ("iosxe", NETCONF):
            raise EmulatorError("turning confirmed-commit off is an IOS-XE NETCONF setting")
        if not self.username or not self.password:
            raise EmulatorError("the emulator needs a username and a password")


def make_server(spec: EmulatorSpec, peers: PeerRegistry | None = None) -> Server:
    """The server for a spec; a lab gateway's device joins the lab's PeerRegistry (`peers`)
    under its gateway name, so its SA/BGP state follows its peers' configuration."""
    spec.check()
    peers = peers if spec.gateway is not None else None
    if spec.transport == SSH:
        version = CLI_RELEASES[spec.os_version or DEFAULT_VERSION]
        return CliServer(spec.username, spec.password, spec.state_dir, spec.time_scale,
                         spec.host, spec.port, spec.hostname, version=version, peers=peers,
                         gateway=spec.gateway)
    options: dict[str, Any] = ({"peers": peers, "gateway": spec.gateway} if peers is not None
                               else {})
    if spec.platform == "iosxe":
        options["os_version"] = spec.os_version or DEFAULT_VERSION
        options["confirmed_commit"] = spec.confirmed_commit
    return NetconfServer(spec.platform, spec.username, spec.password, spec.state_dir,
                         spec.time_scale, spec.host, spec.port, spec.hostname, options)


def preload(specs: Sequence[EmulatorSpec]) -> None:
    """Load the IOS-XE YANG of every release the specs need (seconds each), once for all
    their devices. One after the other: loading two in threads was slower here (GIL)."""
    for version in sorted({s.os_version or DEFAULT_VERSION for s in specs
                           if (s.platform, s.transport) == ("iosxe", NETCONF)}):
        load_yang(version)


Ready = Callable[[Sequence[tuple[EmulatorSpec, Server]]], None]
Reload = Callable[[], Sequence[EmulatorSpec]]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
RELOAD_SIGNAL = signal.SIGHUP
log = logging.getLogger(__name__)


async def _start(spec: EmulatorSpec, peers: PeerRegistry | None,
                 started: list[tuple[EmulatorSpec, Server]]) -> None:
    server = make_server(spec, peers)
    started.append((spec, server))
    try:
        await server.start()
    except OSError as exc:
        raise EmulatorError(f"{spec.label}: cannot listen on {spec.host}:{spec.port}: "
                            f"{exc.strerror or exc}") from exc


async def _add_more(reload: Reload, started: list[tuple[EmulatorSpec, Server]],
                    peers: PeerRegistry | None, ready: Ready) -> None:
    """Start the specs that `reload` lists and are not hosted yet (by gateway, else label),
    in the same loop and registry; then report all of them again. A failure is logged and
    the emulators already running keep running."""
    hosted = {spec.gateway or spec.label for spec, _ in started}
    try:
        fresh = [s for s in reload() if (s.gateway or s.label) not in hosted]
        for spec in fresh:
            spec.check()
        await asyncio.get_running_loop().run_in_executor(None, preload, fresh)
        for spec in fresh:
            await _start(spec, peers, started)
            log.info("added %s on %s:%s", spec.label, spec.host, started[-1][1].port)
    except (EmulatorError, OSError) as exc:
        log.error("adding emulators failed: %s", exc)
    try:
        ready([(spec, server) for spec, server in started if server.host_key is not None])
    except (EmulatorError, OSError) as exc:
        log.error("reporting the emulators failed: %s", exc)


async def _host(specs: Sequence[EmulatorSpec], ready: Ready, peers: PeerRegistry | None,
                early: threading.Event, reload: Reload | None = None,
                early_reload: threading.Event | None = None) -> None:
    stop = asyncio.Event()
    more = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    if reload is not None:
        loop.add_signal_handler(RELOAD_SIGNAL, more.set)
    if early.is_set():
        return
    started: list[tuple[EmulatorSpec, Server]] = []
    try:
        for spec in specs:
            await _start(spec, peers, started)
            if stop.is_set():
                return
        ready(started)
        if early_reload is not None and early_reload.is_set():
            more.set()  # a SIGHUP came before the loop took the signal over
        while not stop.is_set():
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(more.wait())]
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if more.is_set() and not stop.is_set() and reload is not None:
                more.clear()
                await _add_more(reload, started, peers, ready)
    finally:
        for _, server in reversed(started):
            with contextlib.suppress(Exception):
                await server.stop()


def host_until_signalled(specs: Sequence[EmulatorSpec], ready: Ready,
                         peers: PeerRegistry | None = None, reload: Reload | None = None) -> None:
    """Start every spec's server in one event loop, call ready(servers) once all listen, and
    serve until SIGINT or SIGTERM; then stop them all and return. EmulatorError when one
    cannot start (those already started are stopped). With `reload`, SIGHUP starts the specs
    it returns that are not hosted yet, and calls ready(servers) again with all of them."""
    for spec in specs:
        spec.check()
    early = threading.Event()  # a signal before the event loop takes them over
    early_reload = threading.Event()
    previous = {s: signal.signal(s, lambda *_: early.set()) for s in STOP_SIGNALS}
    if reload is not None:
        previous[RELOAD_SIGNAL] = signal.signal(RELOAD_SIGNAL, lambda *_: early_reload.set())
    try:
        preload(specs)
        if not early.is_set():
            asyncio.run(_host(specs, ready, peers, early, reload, early_reload))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
