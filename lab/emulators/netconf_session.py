"""One NETCONF session (RFC 6241): hello exchange, framing choice, RPC parsing and replies.

Transport-free: it is fed bytes and given a send and a close function, so the SSH glue (or a
test) only moves bytes. <close-session> and <kill-session> are handled here; every other
operation goes to the device's dispatch. A handler may answer with a Deferred: its work goes
to the transport's offload (by default run at once, in line) and the session holds its later
requests until the reply is sent, as do the device's other sessions.
"""

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from lxml import etree

from lab.emulators.device import BASE_10, BASE_11, Body, Deferred, NetconfDevice, SessionInfo
from lab.emulators.errors import FramingError
from lab.emulators.netconf_framing import Deframer, encode_chunked, encode_eom
from lab.emulators.rpc_errors import RpcErrorInfo, RpcReplyError
from lab.emulators.xmlutil import NC_NS, Element, children, local_name, parse

log = logging.getLogger(__name__)


Outcome = Callable[[], Any]  # returns the work's result or raises its exception
Offload = Callable[[Callable[[], Any], Callable[[Outcome], None]], None]


def run_in_line(work: Callable[[], Any], done: Callable[[Outcome], None]) -> None:
    """The default offload: the work runs at once, on the caller's thread."""
    try:
        result = work()
    except Exception as exc:  # handed over to the Deferred's then, which raises it there
        failure = exc

        def outcome() -> Any:
            raise failure
    else:
        def outcome() -> Any:
            return result
    done(outcome)


class NetconfSession:
    def __init__(self, device: NetconfDevice, username: str, send: Callable[[bytes], None],
                 close: Callable[[], None], offload: Offload = run_in_line) -> None:
        """offload(work, done): run work (off the event loop), then call done(outcome) back
        on the loop."""
        self.device = device
        self._send = send
        self._close = close
        self._offload = offload
        self._deframer = Deframer()
        self._hello_done = False
        self.closed = False
        self._backlog: deque[bytes] = deque()  # requests held while a Deferred runs
        self._in_flight = False
        self._waiting_device = False
        self._lost = False  # the transport went away while a Deferred ran
        self.info: SessionInfo = device.open_session(username, self.terminate)

    # --- transport side ---------------------------------------------------------------

    def start(self) -> None:
        """Send the server hello (always base:1.0 framed)."""
        self._send(encode_eom(self._hello()))

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self._backlog.extend(self._deframer.feed(data))
        except FramingError as exc:  # the requests held before it are answered first
            self._drain()
            log.info("session %s: framing error: %s", self.info.session_id, exc)
            self._reply_error(None, RpcErrorInfo(str(exc), tag="malformed-message",
                                                 type="rpc"))
            self.terminate()
            return
        self._drain()

    def _drain(self) -> None:
        """Handle held requests in order until one is deferred or the device is busy."""
        while self._backlog and not self.closed and not self._in_flight:
            if self.device.busy:  # another session's Deferred: wait for the device
                if not self._waiting_device:
                    self._waiting_device = True
                    self.device.when_free(self._device_free)
                return
            self._handle(self._backlog.popleft())

    def _device_free(self) -> None:
        self._waiting_device = False
        self._drain()

    def connection_lost(self) -> None:
        """The transport went away: release the session's resources (once)."""
        if not self.closed:
            self.closed = True
            if self._in_flight:  # its request completes first, as on a device
                self._lost = True
                return
            self.device.end_session(self.info.session_id)

    def terminate(self) -> None:
        """Close from the server side (close-session, kill-session, protocol error)."""
        if not self.closed:
            self.closed = True
            if self._in_flight:  # its request completes first (unanswered)
                self._lost = True
            else:
                self.device.end_session(self.info.session_id)
            self._close()

    # --- protocol ---------------------------------------------------------------------

    def _hello(self) -> bytes:
        hello = etree.Element(f"{{{NC_NS}}}hello", nsmap={None: NC_NS})
        caps = etree.SubElement(hello, f"{{{NC_NS}}}capabilities")
        for uri in self.device.spec.capabilities:
            etree.SubElement(caps, f"{{{NC_NS}}}capability").text = uri
        etree.SubElement(hello, f"{{{NC_NS}}}session-id").text = str(self.info.session_id)
        comments = "".join(
            f"<!-- {c.format(user=self.info.username)} -->\n"
            for c in self.device.spec.hello_comments)
        return comments.encode() + etree.tostring(hello)

    def _handle(self, message: bytes) -> None:
        if not self._hello_done:
            self._client_hello(message)
            return
        try:
            root = parse(message)
        except etree.XMLSyntaxError as exc:
            self._reply_error(None, self._malformed(f"xml parse error: {exc}"))
            return
        if local_name(root) != "rpc":
            self._reply_error(None, self._malformed(f"expected <rpc>, got <{local_name(root)}>"))
            return
        self._rpc(root)

    def _malformed(self, message: str) -> RpcErrorInfo:
        if self.info.base_11:
            return RpcErrorInfo(message, tag="malformed-message", type="rpc")
        return RpcErrorInfo(message, tag="operation-failed", type="rpc")

    def _client_hello(self, message: bytes) -> None:
        try:
            root = parse(message)
        except etree.XMLSyntaxError:
            self.terminate()
            return
        caps = {(c.text or "").strip() for c in root.iter(f"{{{NC_NS}}}capability")}
        has_session_id = any(local_name(c) == "session-id" for c in children(root))
        if local_name(root) != "hello" or has_session_id or not caps & {BASE_10, BASE_11}:
            log.info("session %s: bad client hello", self.info.session_id)
            self.terminate()
            return
        self._hello_done = True
        if BASE_11 in caps and self.device.spec.supports_11:
            self.info.base_11 = True
            self._backlog.extendleft(reversed(self._deframer.switch_to_chunked()))

    def _rpc(self, rpc: Element) -> None:
        attributes = dict(rpc.attrib)
        if "message-id" not in attributes and self.device.spec.require_message_id:
            self._reply_error(attributes, RpcErrorInfo(
                "missing message-id attribute", tag="missing-attribute", type="rpc",
                info=(("bad-attribute", "message-id"), ("bad-element", "rpc"))))
            return
        operations = children(rpc)
        if len(operations) != 1:
            self._reply_error(attributes, RpcErrorInfo(
                "an <rpc> holds exactly one operation", tag="malformed-message"
                if self.info.base_11 else "operation-failed", type="rpc"))
            return
        operation = operations[0]
        name = local_name(operation)
        try:
            if name == "close-session":
                self._reply(attributes, [etree.Element("ok")])
                self.terminate()
                return
            if name == "kill-session":
                self._kill(operation)
                self._reply(attributes, [etree.Element("ok")])
                return
            answer = self.device.dispatch(self.info, operation, name)
        except Exception as exc:
            self._failed(attributes, name, exc)
            return
        if isinstance(answer, Deferred):
            self._defer(attributes, name, answer)
        else:
            self._answer(attributes, answer)

    def _answer(self, attributes: dict[str, str], body: Body) -> None:
        if body is None:
            self._reply(attributes, [etree.Element("ok")])
        else:
            self._reply(attributes, body if isinstance(body, list) else [body])

    def _failed(self, attributes: dict[str, str], name: str, exc: Exception) -> None:
        if isinstance(exc, RpcReplyError):
            self._reply(attributes, exc.reply_body())
            return
        # a handler bug must not take the device down
        log.error("session %s: %s failed", self.info.session_id, name, exc_info=exc)
        self._reply_error(attributes, RpcErrorInfo(
            f"internal error while processing {name}", tag="operation-failed",
            type="application"))

    def _defer(self, attributes: dict[str, str], name: str, deferred: Deferred) -> None:
        self._in_flight = True
        self.device.busy = True

        def done(outcome: Callable[[], Any]) -> None:
            try:
                body = deferred.then(outcome)
            except Exception as exc:
                if not self._lost:
                    self._failed(attributes, name, exc)
            else:
                if not self._lost:
                    self._answer(attributes, body)
            finally:
                self._in_flight = False
                if self._lost:
                    self.device.end_session(self.info.session_id)
                self.device.release()
                self._drain()

        self._offload(deferred.work, done)

    def _kill(self, operation: Element) -> None:
        target = next((c for c in children(operation) if local_name(c) == "session-id"), None)
        text = (target.text or "").strip() if target is not None else ""
        if not text.isdigit():
            raise RpcReplyError([RpcErrorInfo("kill-session needs a session-id",
                                           tag="missing-element", type="protocol",
                                           info=(("bad-element", "session-id"),))])
        self.device.kill(self.info, int(text))

    def _reply_error(self, attributes: dict[str, str] | None, error: RpcErrorInfo) -> None:
        self._reply(attributes, [error.to_element()])

    def _reply(self, attributes: dict[str, str] | None, body: list[Element]) -> None:
        nsmap: dict[str | None, str] = {None: NC_NS}
        nsmap.update(dict(self.device.spec.reply_namespaces))
        reply = etree.Element(f"{{{NC_NS}}}rpc-reply", nsmap=nsmap)
        for key, value in (attributes or {}).items():
            reply.set(key, value)
        # the body goes inside the envelope as serialized: its elements in no namespace take
        # the envelope's default one (NETCONF base), as on a device, without visiting each
        envelope = etree.tostring(reply)
        data = b"".join((envelope[:-2], b">", *(etree.tostring(e) for e in body),
                         b"</rpc-reply>"))
        self._send(encode_chunked(data) if self.info.base_11 else encode_eom(data))

