"""drivers.ncclient_session: the session that sends at once, and the root-tag reader."""

import socket
import threading
import time
from typing import Any

import paramiko  # type: ignore[import-untyped]
import pytest
from ncclient.devices.default import DefaultDeviceHandler  # type: ignore[import-untyped]
from ncclient.operations.errors import TimeoutExpiredError  # type: ignore[import-untyped]
from ncclient.transport.errors import (  # type: ignore[import-untyped]
    SessionCloseError,
    TransportError,
)
from ncclient.transport.session import (  # type: ignore[import-untyped]
    NetconfBase,
    SessionListener,
)

from drivers.ncclient_session import (
    CIPHERS_FIRST,
    PromptSession,
    message_id,
    prefer_ciphers,
    root_of,
)

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


class Channel:
    """What PromptSession writes to (a paramiko Channel's sendall)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.threads: list[threading.Thread] = []
        self.closed = False

        self.replies: list[bytes] = []  # what recv hands out, one item a call
        self.reads = 0

    def sendall(self, data: bytes) -> None:
        self.sent.append(data)
        self.threads.append(threading.current_thread())

    def recv(self, size: int) -> bytes:
        self.reads += 1
        if not self.replies:
            raise TimeoutError  # what a paramiko channel's recv raises after its timeout
        return self.replies.pop(0)

    def close(self) -> None:
        self.closed = True


class Transport:
    """What PromptSession asks of paramiko's Transport."""

    def __init__(self) -> None:
        self.active = True

    def is_active(self) -> bool:
        return self.active

    def close(self) -> None:
        self.active = False


def session(base: Any) -> tuple[PromptSession, Channel]:
    made = PromptSession(DefaultDeviceHandler({"name": "default"}))
    channel = Channel()
    made._channel, made._connected, made._base = channel, True, base
    made._transport = Transport()
    return made, channel


@pytest.mark.parametrize(("base", "framed"), [
    (NetconfBase.BASE_10, b"<get/>]]>]]>"),
    (NetconfBase.BASE_11, b"\n#6\n<get/>\n##\n"),
])
def test_a_message_is_written_by_the_caller_before_send_returns(base: Any,
                                                                framed: bytes) -> None:
    """No reader thread runs here: ncclient's own session would only have queued it."""
    made, channel = session(base)
    made.send("<get/>")
    assert channel.sent == [framed]
    assert channel.threads == [threading.current_thread()]
    assert made._q.empty()


def test_chunk_size_counts_bytes_not_characters() -> None:
    made, channel = session(NetconfBase.BASE_11)
    made.send("<d>é</d>")
    assert channel.sent == ["\n#9\n<d>é</d>\n##\n".encode()]


def test_a_closed_session_refuses_to_send() -> None:
    made, channel = session(NetconfBase.BASE_10)
    made._connected = False
    with pytest.raises(TransportError):
        made.send("<get/>")
    assert channel.sent == []


def test_dispatch_hands_listeners_the_root_tag_and_attributes() -> None:
    made, _ = session(NetconfBase.BASE_11)
    seen: list[tuple[Any, str]] = []

    class Listener(SessionListener):  # type: ignore[misc]
        def callback(self, root: Any, raw: str) -> None:
            seen.append((root, raw))

        def errback(self, err: Exception) -> None:  # pragma: no cover - not called here
            raise err

    made.add_listener(Listener())
    raw = f'<rpc-reply xmlns="{NC}" message-id="m-7"><ok/></rpc-reply>'
    made._dispatch_message(raw)
    assert seen == [((f"{{{NC}}}rpc-reply", {"message-id": "m-7"}), raw)]


@pytest.mark.parametrize(("raw", "root"), [
    (f'<?xml version="1.0" encoding="UTF-8"?>\n<rpc-reply xmlns="{NC}" '
     'xmlns:junos="http://xml.juniper.net/junos/24.4R1/junos" message-id="urn:uuid:1">'
     "<data>" + "<a>x</a>" * 5000 + "</data></rpc-reply>",
     (f"{{{NC}}}rpc-reply", {"message-id": "urn:uuid:1"})),
    (f'<hello xmlns="{NC}"><capabilities/></hello>', (f"{{{NC}}}hello", {})),
    (f"<nc:rpc-reply xmlns:nc='{NC}' message-id='a>b'/>",
     (f"{{{NC}}}rpc-reply", {"message-id": "a>b"})),
    ("<!-- from the device --> <ok/>", ("ok", {})),
    ("no xml at all", None),
    ('<rpc-reply message-id="1"', None),
    ('<rpc-reply message-id="1" message-id="2">', None),
])
def test_root_of_reads_the_start_tag_only(raw: str, root: Any) -> None:
    assert root_of(raw) == root


def test_the_cipher_offer_starts_with_aes_gcm_and_keeps_the_rest_in_order() -> None:
    """A server without AES-GCM still finds what paramiko offers by default."""
    ours, theirs = socket.socketpair()
    transport = paramiko.Transport(ours)  # never started: nothing is negotiated here
    try:
        default = transport.get_security_options().ciphers
        made = PromptSession(DefaultDeviceHandler({"name": "default"}))
        made._transport = transport  # what ncclient's connect does before starting it
        offered = transport.get_security_options().ciphers
        assert offered[:len(CIPHERS_FIRST)] == CIPHERS_FIRST
        assert sorted(offered) == sorted(default)
        assert [c for c in offered if c not in CIPHERS_FIRST] == [
            c for c in default if c not in CIPHERS_FIRST]
        assert made.transport is transport
        prefer_ciphers(transport)  # again: the same offer
        assert transport.get_security_options().ciphers == offered
    finally:
        transport.close()
        theirs.close()


# --- the caller reads its replies -----------------------------------------------------------

class Recorder(SessionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, threading.Thread]] = []
        self.errors: list[Exception] = []

    def callback(self, root: Any, raw: str) -> None:
        tag, attributes = root
        self.seen.append((tag, attributes.get("message-id", ""), threading.current_thread()))

    def errback(self, err: Exception) -> None:
        self.errors.append(err)


def rpc(ident: str) -> str:
    return f'<nc:rpc xmlns:nc="{NC}" message-id="{ident}"><nc:get/></nc:rpc>'


def reply(ident: str) -> bytes:
    return f'<rpc-reply xmlns="{NC}" message-id="{ident}"><ok/></rpc-reply>]]>]]>'.encode()


def reading(timeout: float = 5.0) -> tuple[PromptSession, Channel, Recorder]:
    made, channel = session(NetconfBase.BASE_10)
    made.reply_timeout = timeout
    listener = Recorder()
    made.add_listener(listener)
    return made, channel, listener


@pytest.mark.parametrize(("message", "ident"), [
    (f'<rpc xmlns="{NC}" message-id="urn:uuid:7"><get/></rpc>', "urn:uuid:7"),
    ("<nc:rpc message-id='m 1' xmlns:nc='x'/>", "m 1"),
    (f'<?xml version="1.0"?><rpc message-id="a" xmlns="{NC}"/>', "a"),
    (f'<hello xmlns="{NC}"><capabilities/></hello>', None),
    ('<rpc-reply message-id="1"/>', None),
])
def test_message_id_of_an_rpc(message: str, ident: str | None) -> None:
    assert message_id(message) == ident


def test_send_returns_once_its_reply_was_read_and_delivered_by_the_calling_thread() -> None:
    made, channel, listener = reading()
    whole = reply("m-1")
    channel.replies = [whole[:20], whole[20:], reply("later")]  # split across reads
    made.send(rpc("m-1"))
    assert listener.seen == [(f"{{{NC}}}rpc-reply", "m-1", threading.current_thread())]
    assert channel.replies == [reply("later")]  # read no further than its reply
    assert not made.is_alive()  # no reader thread, ever
    assert made._answered == set()


def test_pipelined_sends_read_nothing_and_read_replies_reads_them_all() -> None:
    made, channel, listener = reading()
    with made.pipelined():
        made.send(rpc("a"))
        made.send(rpc("b"))
    assert channel.reads == 0 and len(channel.sent) == 2
    channel.replies = [reply("a") + reply("b")]  # both in one read
    made.read_replies(["a", "b"], 5.0)
    assert [ident for _, ident, _ in listener.seen] == ["a", "b"]
    made.send("<hello/>")  # no message-id: nothing to wait for
    assert channel.reads == 1


def test_a_reply_that_does_not_come_is_a_timeout_within_the_bound() -> None:
    made, channel, listener = reading(timeout=0.2)
    began = time.monotonic()
    with pytest.raises(TimeoutExpiredError):
        made.send(rpc("m-1"))
    assert 0.2 <= time.monotonic() - began < 2.0
    assert channel.reads > 0 and listener.seen == []
    assert made.connected  # a slow device, not a broken session


def test_a_reply_after_its_timeout_is_not_kept() -> None:
    made, channel, listener = reading(timeout=0.2)
    with pytest.raises(TimeoutExpiredError):
        made.send(rpc("slow"))
    made.reply_timeout = 5.0
    channel.replies = [reply("slow") + reply("next")]  # the late reply, then the next one
    made.send(rpc("next"))
    assert [ident for _, ident, _ in listener.seen] == ["slow", "next"]
    assert made._answered == set() and made._abandoned == set()


def test_a_session_the_device_hangs_up_is_closed_and_its_listeners_told() -> None:
    made, channel, listener = reading()
    channel.replies = [b""]  # end of file
    with pytest.raises(SessionCloseError):
        made.send(rpc("m-1"))
    assert len(listener.errors) == 1 and isinstance(listener.errors[0], SessionCloseError)
    assert not made.connected
    assert channel.closed
    with pytest.raises(TransportError):
        made.send(rpc("m-2"))


def test_connected_follows_the_ssh_channel_and_transport() -> None:
    made, channel = session(NetconfBase.BASE_10)
    assert made.connected
    channel.closed = True  # the device closed the channel: paramiko's thread marks it
    assert not made.connected
    channel.closed = False
    made.transport.active = False
    assert not made.connected
