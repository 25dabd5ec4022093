"""One NETCONF session (RFC 6241): hello exchange, framing choice, RPC parsing and replies.

Transport-free: it is fed bytes and given a send and a close function, so the SSH glue (or a
test) only moves bytes. <close-session> and <kill-session> are handled here; every other
operation goes to the device's dispatch.
"""

import logging
from collections.abc import Callable

from lxml import etree

from lab.emulators.device import BASE_10, BASE_11, NetconfDevice, SessionInfo
from lab.emulators.errors import FramingError
from lab.emulators.netconf_framing import Deframer, encode_chunked, encode_eom
from lab.emulators.rpc_errors import RpcErrorInfo, RpcReplyError
from lab.emulators.xmlutil import NC_NS, Element, children, local_name, parse

log = logging.getLogger(__name__)


class NetconfSession:
    def __init__(self, device: NetconfDevice, username: str, send: Callable[[bytes], None],
                 close: Callable[[], None]) -> None:
        self.device = device
        self._send = send
        self._close = close
        self._deframer = Deframer()
        self._hello_done = False
        self.closed = False
        self.info: SessionInfo = device.open_session(username, self.terminate)

    # --- transport side ---------------------------------------------------------------

    def start(self) -> None:
        """Send the server hello (always base:1.0 framed)."""
        self._send(encode_eom(self._hello()))

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            messages = self._deframer.feed(data)
            for message in messages:
                self._handle(message)
                if self.closed:
                    return
        except FramingError as exc:
            log.info("session %s: framing error: %s", self.info.session_id, exc)
            self._reply_error(None, RpcErrorInfo(str(exc), tag="malformed-message",
                                                 type="rpc"))
            self.terminate()

    def connection_lost(self) -> None:
        """The transport went away: release the session's resources (once)."""
        if not self.closed:
            self.closed = True
            self.device.end_session(self.info.session_id)

    def terminate(self) -> None:
        """Close from the server side (close-session, kill-session, protocol error)."""
        if not self.closed:
            self.closed = True
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
            for pending in self._deframer.switch_to_chunked():
                self._handle(pending)

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
            body = self.device.dispatch(self.info, operation, name)
        except RpcReplyError as failure:
            self._reply(attributes, failure.reply_body())
            return
        except Exception:  # a handler bug must not take the device down
            log.exception("session %s: %s failed", self.info.session_id, name)
            self._reply_error(attributes, RpcErrorInfo(
                f"internal error while processing {name}", tag="operation-failed",
                type="application"))
            return
        if body is None:
            self._reply(attributes, [etree.Element("ok")])
        else:
            self._reply(attributes, body if isinstance(body, list) else [body])

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

