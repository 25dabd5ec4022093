"""What a NETCONF session needs from an emulated device, and the shared session bookkeeping.

A platform flavour subclasses NetconfDevice: it fills a FlavourSpec (capabilities, reply
namespaces, error spellings) and a table of RPC handlers; the session core does the rest.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.emulators.datastore import Cancellable, DeviceClock, Scheduler
from lab.emulators.rpc_errors import RpcErrorInfo, RpcReplyError, fail
from lab.emulators.xmlutil import Element

BASE_10 = "urn:ietf:params:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"


@dataclass(frozen=True)
class FlavourSpec:
    """Per-platform protocol facts (data, not code)."""

    name: str
    capabilities: tuple[str, ...]
    first_session_id: int = 1
    hello_comments: tuple[str, ...] = ()
    reply_namespaces: tuple[tuple[str, str], ...] = ()
    require_message_id: bool = True
    unknown_rpc: Callable[[str], RpcErrorInfo] = field(
        default=lambda name: RpcErrorInfo(f"unknown rpc {name}", tag="operation-not-supported",
                                          type="rpc", info=(("bad-element", name),)))

    @property
    def supports_11(self) -> bool:
        return BASE_11 in self.capabilities


@dataclass
class SessionInfo:
    session_id: int
    username: str
    started: float
    terminate: Callable[[], None]
    base_11: bool = False


Body = Element | list[Element] | None


@dataclass(frozen=True)
class Deferred:
    """A handler's answer whose slow part runs off the event loop (a libyang parse: C code
    that releases the GIL, so a host of many devices goes on serving the others meanwhile).

    work runs on a worker thread and touches nothing of the device (only what the handler
    handed it); then runs back on the loop with a function returning work's result (or
    raising its exception) and gives the reply body. The device is busy in between: its
    other sessions' requests and its timers wait, as a device answers one request at a time.
    """

    work: Callable[[], Any]
    then: Callable[[Callable[[], Any]], Body]


Handler = Callable[[SessionInfo, Element], "Body | Deferred"]


class NetconfDevice:
    """Sessions of one device and the dispatch of RPCs to the flavour's handlers."""

    spec: FlavourSpec

    def __init__(self, clock: DeviceClock, scheduler: Scheduler, *,
                 hostname: str | None = None) -> None:
        self.clock = clock
        self._loop_scheduler = scheduler
        self.busy = False  # a Deferred of one of its sessions is running
        self._waiting: deque[Callable[[], None]] = deque()
        self.sessions: dict[int, SessionInfo] = {}
        self._next_session = self.spec.first_session_id
        self.handlers: dict[str, Handler] = {}

    def scheduler(self, delay: float, action: Callable[[], None]) -> Cancellable:
        """The server's call_later, the action waiting while the device is busy."""
        return self._loop_scheduler(delay, lambda: self.when_free(action))

    def soon(self, action: Callable[[], object]) -> None:
        """Run action once the request being handled is answered (the reply goes first)."""
        def run() -> None:
            action()

        self.scheduler(0.0, run)

    def when_free(self, action: Callable[[], None]) -> None:
        """Run action now, or once the request the device is busy with has been answered."""
        if self.busy:
            self._waiting.append(action)
        else:
            action()

    def release(self) -> None:
        """The Deferred is answered: run what waited, in order, until one makes it busy."""
        self.busy = False
        while self._waiting and not self.busy:
            self._waiting.popleft()()

    def open_session(self, username: str, terminate: Callable[[], None]) -> SessionInfo:
        session = SessionInfo(self._next_session, username, self.clock.now(), terminate)
        self._next_session += 1
        self.sessions[session.session_id] = session
        return session

    def end_session(self, session_id: int, *, killed: bool = False) -> None:
        """Release what the session held (locks, private candidates); later calls do nothing."""
        if self.sessions.pop(session_id, None) is not None:
            self.session_ended(session_id, killed=killed)

    def session_ended(self, session_id: int, *, killed: bool) -> None:
        """Flavour hook: release locks, discard uncommitted changes, ..."""

    def shutdown(self) -> None:
        """Flavour hook: cancel timers when the server stops."""

    def kill(self, caller: SessionInfo, target_id: int) -> None:
        if target_id == caller.session_id:
            raise fail("cannot kill own session", tag="invalid-value", error_type="protocol")
        target = self.sessions.get(target_id)
        if target is None:
            raise fail(f"session {target_id} does not exist", tag="invalid-value",
                       error_type="protocol", info=(("session-id", str(target_id)),))
        self.end_session(target_id, killed=True)
        target.terminate()

    def dispatch(self, session: SessionInfo, operation: Element, name: str) -> Body | Deferred:
        handler = self.handlers.get(name)
        if handler is None:
            raise RpcReplyError([self.spec.unknown_rpc(name)])
        return handler(session, operation)
