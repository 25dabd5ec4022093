"""NetconfSession with handlers that answer with a Deferred (work off the event loop).

The offload here is a hand-cranked queue: a test decides when the worker's part finishes, so
the order of what the session and the device do meanwhile is checked step by step.
"""

from collections.abc import Callable
from typing import Any

from lxml import etree

from lab.emulators.datastore import DeviceClock
from lab.emulators.device import Body, Deferred, FlavourSpec, NetconfDevice, SessionInfo
from lab.emulators.netconf_framing import Deframer, encode_eom
from lab.emulators.netconf_session import NetconfSession, Outcome, run_in_line
from lab.emulators.rpc_errors import fail
from lab.emulators.xmlutil import NC_NS, Element

HELLO = (f'<hello xmlns="{NC_NS}"><capabilities><capability>'
         "urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>").encode()


class Timers:
    """A scheduler whose callbacks the test fires."""

    def __init__(self) -> None:
        self.due: list[Callable[[], None]] = []

    def __call__(self, delay: float, action: Callable[[], None]) -> Any:
        self.due.append(action)
        return self

    def cancel(self) -> None:
        self.due.clear()

    def fire(self) -> None:
        due, self.due = self.due, []
        for action in due:
            action()


class Slow(NetconfDevice):
    """<slow> is deferred (its work returns its text), <fast> answers at once; both log."""

    spec = FlavourSpec(name="slow", capabilities=("urn:ietf:params:netconf:base:1.0",))

    def __init__(self, timers: Timers) -> None:
        super().__init__(DeviceClock(), timers)
        self.log: list[str] = []
        self.handlers = {"slow": self._slow, "fast": self._fast}

    def _slow(self, session: SessionInfo, op: Element) -> Deferred:
        text = op.text or ""
        self.log.append(f"slow {text} started")

        def then(outcome: Outcome) -> Body:
            value = outcome()
            self.log.append(f"slow {value} applied")
            if value == "refuse":
                raise fail("refused after the work", tag="operation-failed")
            return etree.Element("done")

        return Deferred(work=lambda: text, then=then)

    def _fast(self, session: SessionInfo, op: Element) -> None:
        self.log.append(f"fast {op.text or ''} s{session.session_id}")

    def session_ended(self, session_id: int, *, killed: bool) -> None:
        self.log.append(f"ended s{session_id}")


class Crank:
    """An offload that keeps the work until finish() runs it and hands the outcome back."""

    def __init__(self) -> None:
        self.pending: list[tuple[Callable[[], Any], Callable[[Outcome], None]]] = []

    def __call__(self, work: Callable[[], Any], done: Callable[[Outcome], None]) -> None:
        self.pending.append((work, done))

    def finish(self) -> None:
        work, done = self.pending.pop(0)
        run_in_line(work, done)


class Client:
    def __init__(self, device: Slow, offload: Crank) -> None:
        self.replies: list[Element] = []
        self.closed = False
        self._deframer = Deframer()
        self.session = NetconfSession(device, "u", self._received, self._close, offload)
        self.session.start()
        self.session.data_received(encode_eom(HELLO))
        self.replies.clear()  # the server hello

    def _received(self, data: bytes) -> None:
        self.replies += [etree.fromstring(m) for m in self._deframer.feed(data)]

    def _close(self) -> None:
        self.closed = True

    def send(self, *operations: tuple[str, str, str]) -> None:
        """(message-id, operation, text) each, all in one write."""
        self.session.data_received(b"".join(encode_eom(
            f'<rpc xmlns="{NC_NS}" message-id="{mid}"><{name}>{text}</{name}></rpc>'.encode())
            for mid, name, text in operations))

    def answered(self) -> list[tuple[str, str]]:
        """(message-id, first element of the reply) of every reply so far."""
        return [(r.get("message-id", ""), etree.QName(r[0]).localname) for r in self.replies]


def setup() -> tuple[Slow, Timers, Crank]:
    timers = Timers()
    return Slow(timers), timers, Crank()


def test_later_requests_of_the_session_wait_for_the_deferred_reply() -> None:
    device, _, crank = setup()
    client = Client(device, crank)
    client.send(("1", "slow", "a"), ("2", "fast", "b"), ("3", "fast", "c"))
    assert device.log == ["slow a started"]
    assert client.answered() == []
    assert device.busy
    crank.finish()
    assert device.log == ["slow a started", "slow a applied", "fast b s1", "fast c s1"]
    assert client.answered() == [("1", "done"), ("2", "ok"), ("3", "ok")]
    assert not device.busy


def test_other_sessions_and_timers_wait_while_the_device_is_busy() -> None:
    device, timers, crank = setup()
    first, second = Client(device, crank), Client(device, crank)
    device.scheduler(1.0, lambda: device.log.append("timer"))
    first.send(("1", "slow", "a"))
    second.send(("7", "fast", "x"))
    timers.fire()  # due now, but the device is answering the slow request
    assert device.log == ["slow a started"]
    assert second.answered() == []
    crank.finish()
    assert device.log == ["slow a started", "slow a applied", "fast x s2", "timer"]
    assert first.answered() == [("1", "done")]
    assert second.answered() == [("7", "ok")]


def test_a_deferred_that_fails_when_applied_is_an_rpc_error_and_the_session_goes_on() -> None:
    device, _, crank = setup()
    client = Client(device, crank)
    client.send(("1", "slow", "refuse"), ("2", "fast", "b"))
    crank.finish()
    assert client.answered() == [("1", "rpc-error"), ("2", "ok")]
    message = client.replies[0].findtext(f"{{{NC_NS}}}rpc-error/{{{NC_NS}}}error-message")
    assert message == "refused after the work"


def test_a_session_lost_meanwhile_has_its_request_applied_then_ended_unanswered() -> None:
    device, _, crank = setup()
    client, other = Client(device, crank), Client(device, crank)
    client.send(("1", "slow", "a"), ("2", "fast", "never"))
    client.session.connection_lost()
    other.send(("5", "fast", "y"))
    assert "ended s1" not in device.log  # the device is still answering it
    crank.finish()
    assert device.log == ["slow a started", "slow a applied", "ended s1", "fast y s2"]
    assert client.answered() == []
    assert other.answered() == [("5", "ok")]
    assert 1 not in device.sessions


def test_without_an_offload_a_deferred_is_answered_in_line() -> None:
    timers = Timers()
    device = Slow(timers)
    replies: list[bytes] = []
    session = NetconfSession(device, "u", replies.append, lambda: None)
    session.data_received(encode_eom(HELLO) + encode_eom(
        f'<rpc xmlns="{NC_NS}" message-id="1"><slow>a</slow></rpc>'.encode()))
    assert device.log == ["slow a started", "slow a applied"]
    assert b"<done" in replies[-1]
    assert not device.busy
