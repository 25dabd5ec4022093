"""drivers.ncclient_session: the session that sends at once, and the root-tag reader."""

import socket
import threading
from typing import Any

import paramiko  # type: ignore[import-untyped]
import pytest
from ncclient.devices.default import DefaultDeviceHandler  # type: ignore[import-untyped]
from ncclient.transport.errors import TransportError  # type: ignore[import-untyped]
from ncclient.transport.session import (  # type: ignore[import-untyped]
    NetconfBase,
    SessionListener,
)

from drivers.ncclient_session import CIPHERS_FIRST, PromptSession, prefer_ciphers, root_of

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


class Channel:
    """What PromptSession writes to (a paramiko Channel's sendall)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.threads: list[threading.Thread] = []

    def sendall(self, data: bytes) -> None:
        self.sent.append(data)
        self.threads.append(threading.current_thread())


def session(base: Any) -> tuple[PromptSession, Channel]:
    made = PromptSession(DefaultDeviceHandler({"name": "default"}))
    channel = Channel()
    made._channel, made._connected, made._base = channel, True, base
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
