"""ncclient sessions for the NETCONF drivers: host-key policy, error mapping, log redaction.

Host keys: ncclient only reads ~/.ssh/known_hosts (or an ssh_config's UserKnownHostsFile), so
the key for `[host]:port` / `host` is looked up in DeviceTarget.known_hosts here and handed to
ncclient as the one key the server must present (hostkey_b64). A host missing from the file
is refused before any connection is made; `verify_host_key=False` is the explicit opt-out.

ncclient logs every message it sends and receives: its loggers get drivers.redact's filter.
Replies are read with RaiseMode.NONE and every <rpc-error> is looked at here: ncclient's own
ERRORS mode only checks the severity of the first error of a reply.
"""

import re
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import paramiko  # type: ignore[import-untyped]
from lxml import etree
from ncclient import NCClientError, manager  # type: ignore[import-untyped]
from ncclient.operations import RaiseMode  # type: ignore[import-untyped]
from ncclient.operations.errors import TimeoutExpiredError  # type: ignore[import-untyped]
from ncclient.transport import SSHSession  # type: ignore[import-untyped]
from ncclient.transport.errors import (  # type: ignore[import-untyped]
    AuthenticationError,
    SessionCloseError,
    SSHUnknownHostError,
    TransportError,
)
from ncclient.transport.parser import (  # type: ignore[import-untyped]
    DefaultXMLParser,
    SAXFilterXMLNotFoundError,
)
from ncclient.transport.session import NetconfBase  # type: ignore[import-untyped]

from drivers.base import DeviceTarget
from drivers.errors import ConnectError, DriverError
from drivers.known_hosts import known_host_names, known_hosts
from drivers.netconf_frames import FrameReader
from drivers.redact import guard_loggers
from drivers.xml_parsing import own_dictionary, untrusted_parser
from tasks.semantic_diff import mask_secrets

Element = etree._Element

# key types in the order they are preferred when known_hosts has several for one host
HOST_KEY_PREFERENCE = ("ssh-ed25519", "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp384",
                       "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


def pinned_host_key(target: DeviceTarget) -> str:
    """The base64 host key the device must present; ConnectError when there is none."""
    path = target.known_hosts
    if path is None or not path.is_file():
        raise ConnectError(f"{target.name}: known_hosts file {path} does not exist; add the "
                           "device's host key or opt out with DCVPN_NO_HOST_KEY_CHECK=1")
    try:
        keys = known_hosts(path)
    except (OSError, paramiko.SSHException) as exc:
        raise ConnectError(f"{target.name}: cannot read known_hosts {path}: {exc}") from None
    for name in known_host_names(target.host, target.port):
        found = keys.lookup(name)
        if not found:
            continue
        ranked = sorted(found.keys(), key=lambda k: (
            HOST_KEY_PREFERENCE.index(k) if k in HOST_KEY_PREFERENCE else len(
                HOST_KEY_PREFERENCE), k))
        return str(found[ranked[0]].get_base64())
    raise ConnectError(
        f"{target.name}: no host key for {known_host_names(target.host, target.port)[0]} in "
        f"{path}; add it (ssh-keyscan -p {target.port} {target.host}) or opt out with "
        "DCVPN_NO_HOST_KEY_CHECK=1")


IDLE_TICK = 2.0  # seconds one read of a session waits before looking again
DEFAULT_REPLY_TIMEOUT = 60.0  # seconds, when connect is given none

# ciphers offered first, before paramiko's own order (which starts with CTR + a separate HMAC):
# AES-GCM encrypts and authenticates a packet in one call on both ends; a server without
# them (older IOS-XE) agrees on the next one both know
CIPHERS_FIRST = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def prefer_ciphers(transport: paramiko.Transport) -> None:
    """Move CIPHERS_FIRST (those paramiko knows) to the front of the transport's offer."""
    options = transport.get_security_options()
    offered = tuple(options.ciphers)
    first = tuple(c for c in CIPHERS_FIRST if c in offered)
    options.ciphers = (*first, *(c for c in offered if c not in first))


class PromptSession(SSHSession):  # type: ignore[misc]
    """An ncclient SSH session without a reader thread: the thread that sends an RPC reads the
    reply itself.

    ncclient's session reads in a thread of its own, which hands every reply over to the
    waiting thread, and it sends a queued message only when that thread's wait of up to
    100 ms ends (about 100 ms per RPC against the emulators). Here a message is written at
    once from the calling thread, which then reads until its reply has arrived and been
    delivered to the RPC by ncclient's listener (so the RPC's own wait returns at once).
    A fleet run holds hundreds of sessions beside its workers: without the reader threads
    each reply wakes one thread fewer (a 200-device deploy: about 9% less client CPU).
    paramiko's transport thread still does the SSH side. Requests sent back to back
    (execute_many) read their replies after the last one is sent.
    """

    parser: Any  # ncclient's DefaultXMLParser or SAXParser

    def __init__(self, device_handler: Any) -> None:
        super().__init__(device_handler)
        self._send_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._frames = FrameReader()
        self._answered: set[str] = set()  # message-ids of replies read, not yet collected
        self._abandoned: set[str] = set()  # message-ids whose wait timed out
        self._hello = False  # the server's hello has been read
        self._pipelined = False
        self.reply_timeout = DEFAULT_REPLY_TIMEOUT

    # ncclient makes the paramiko Transport inside connect() and starts it at once: this
    # setter is the one moment between the two (the cipher offer is fixed when it starts)
    @property
    def _transport(self) -> Any:
        return self.__dict__.get("_paramiko_transport")

    @_transport.setter
    def _transport(self, transport: Any) -> None:
        if isinstance(transport, paramiko.Transport):
            prefer_ciphers(transport)
        self.__dict__["_paramiko_transport"] = transport

    @property
    def connected(self) -> bool:
        """ncclient's flag, and false as soon as the SSH channel or transport has closed (no
        reader thread is there to notice the device hanging up)."""
        channel, transport = self._channel, self.__dict__.get("_paramiko_transport")
        return bool(self._connected and channel is not None and not channel.closed
                    and transport is not None and transport.is_active())

    def send(self, message: str) -> None:
        if not self.connected:
            raise TransportError("Not connected to NETCONF server")
        data = message.encode()
        if self._base == NetconfBase.BASE_11:
            data = b"\n#%d\n%s\n##\n" % (len(data), data)
        else:
            data += b"]]>]]>"
        self.logger.info("Sending:\n%s", data)  # as ncclient logs it (drivers.redact masks)
        with self._send_lock:
            self._channel.sendall(data)
        wanted = None if self._pipelined else message_id(message)
        if wanted is not None:
            self.read_replies((wanted,), self.reply_timeout)

    def connect(self, *args: Any, **kwargs: Any) -> None:
        self.reply_timeout = float(kwargs.get("timeout") or DEFAULT_REPLY_TIMEOUT)
        super().connect(*args, **kwargs)
        self.transport.sock.settimeout(IDLE_TICK)  # paramiko's reader: 0.1 s by default

    def start(self) -> None:
        """Where ncclient starts its reader thread, once it has sent its hello: read the
        server's hello here (ncclient's capability exchange then finds it arrived)."""
        self._channel.settimeout(IDLE_TICK)
        try:
            self._read_until(lambda: self._hello, self.reply_timeout)
        except Exception as exc:  # ncclient raises what its hello listener is told
            self._dispatch_error(exc)

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """Messages sent meanwhile do not wait for their replies (read_replies reads them)."""
        self._pipelined = True
        try:
            yield
        finally:
            self._pipelined = False

    def read_replies(self, ids: Collection[str], timeout: float) -> None:
        """Read until the replies to these message-ids have arrived (each delivered to its
        RPC); TimeoutExpiredError when they have not within `timeout` seconds."""
        wanted = set(ids)
        with self._read_lock:
            try:
                self._read_until(lambda: wanted <= self._answered, timeout)
            except TimeoutExpiredError:  # a reply that comes later is not kept for anyone
                self._abandoned |= wanted - self._answered
                raise
            finally:
                self._answered -= wanted

    def _read_until(self, done: Callable[[], bool], timeout: float) -> None:
        """Read and dispatch messages until done(); bounded by `timeout` (each read waits at
        most IDLE_TICK). A broken session is closed, as ncclient's reader closes it. It reads
        in the channel's recv, never in a select on the channel: a channel asked for its file
        descriptor makes paramiko write to a pipe (to be read back) for every packet."""
        own_dictionary()  # ncclient parses what arrives through parsers every thread shares
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= deadline:
                raise TimeoutExpiredError("ncclient timed out while waiting for an rpc reply.")
            try:
                data = self._transport_read()
            except TimeoutError:  # nothing yet
                continue
            try:
                if not data:
                    raise SessionCloseError(self._frames.pending.decode(errors="replace"))
                self._receive(data)
            except Exception as exc:
                self.logger.debug("Broke out of reading, error=%r", exc)
                self._dispatch_error(exc)
                self.close()
                raise

    def _receive(self, data: bytes) -> None:
        """Messages out of the bytes, each dispatched; a SAX parser that ncclient set for a
        filtered RPC reads them itself (none of the drivers' RPCs asks for one)."""
        if type(self.parser) is not DefaultXMLParser:
            try:
                self.parser.parse(data)
                return
            except SAXFilterXMLNotFoundError:  # as ncclient: back to DOM parsing
                self.parser = DefaultXMLParser(self)
        for message in self._frames.feed(data, chunked=self._base == NetconfBase.BASE_11):
            self._dispatch_message(message.decode().strip())

    def _dispatch_message(self, raw: str) -> None:
        """ncclient's dispatch, with the root element read from the start of the message: its
        parse_root parses all of it (then the reply is parsed again in full)."""
        root = root_of(raw)
        if root is None:  # let ncclient's own handling speak
            super()._dispatch_message(raw)
            return
        self.logger.info("Received message from host")
        self.logger.debug("Received:\n%s", raw)
        tag, attributes = root
        if tag.rpartition("}")[2] == "hello":
            self._hello = True
        elif "message-id" in attributes:
            ident = attributes["message-id"]
            if ident in self._abandoned:
                self._abandoned.discard(ident)
            else:
                self._answered.add(ident)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.callback(root, raw)


# the root element's start tag, after an optional XML declaration, comments and blanks
# (attribute values hold no "<" and are quoted, so the first unquoted ">" ends the tag)
_ROOT_TAG = re.compile(r"""\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*"""
                       r"""(<[^\s/>!?]+(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*/?>""",
                       re.DOTALL)


# the message-id of an <rpc> (ncclient writes it as the rpc element's attribute)
_MESSAGE_ID = re.compile(r"""<(?:[\w.-]+:)?rpc\s[^>]*?\bmessage-id\s*=\s*["']([^"']+)["']""")


def message_id(message: str) -> str | None:
    """The message-id of an <rpc> message; None for other messages (a hello)."""
    found = _MESSAGE_ID.search(message, 0, 2000)
    return found.group(1) if found else None


def root_of(raw: str) -> tuple[str, dict[str, str]] | None:
    """(tag, attributes) of the message's root element, parsing its start tag only; None
    when the text does not start with one."""
    found = _ROOT_TAG.match(raw)
    if found is None:
        return None
    try:
        root = etree.fromstring(found.group(1) + "/>")
    except etree.XMLSyntaxError:
        return None
    return str(root.tag), dict(root.attrib)


def _open(options: dict[str, Any]) -> Any:
    """manager.connect_ssh with a PromptSession, over a socket without Nagle's algorithm.

    ncclient's own socket keeps it: a small SSH packet written while the previous one is not
    acknowledged waits for the peer's delayed ACK, 40 ms on Linux. Measured against the
    emulators: twice in every connect (key exchange, authentication) and once in every close,
    so 94 ms per connect and 38 ms per close where the work took a few.
    """
    own_dictionary()  # before ncclient builds its hello (drivers.xml_parsing)
    handler = manager.make_device_handler(options.pop("device_params"))
    manager_params = options.pop("manager_params")
    handler.add_additional_ssh_connect_params(options)
    handler.add_additional_netconf_params({})
    sock = socket.create_connection((options["host"], options["port"]), options["timeout"])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    session = PromptSession(handler)
    try:
        session.connect(sock=sock, **options)
    except Exception:
        if session.transport:
            session.close()
        sock.close()
        raise
    return manager.Manager(session, handler, raise_mode=RaiseMode.NONE, **manager_params)


def connect(target: DeviceTarget, device: str, handler: type | None = None) -> Any:
    """An ncclient Manager for `device` (ncclient device handler name), errors as ConnectError.

    handler: an ncclient device handler class to use instead of the named one (the iosxe
    handler, for one, accepts any host key; see drivers.iosxe_netconf).
    """
    guard_loggers("ncclient")
    device_params: dict[str, Any] = {"name": device}
    if handler is not None:
        device_params["handler"] = handler
    options: dict[str, Any] = {
        "host": target.host, "port": target.port, "username": target.username,
        "password": target.password, "timeout": target.timeout,
        "device_params": device_params,
        "manager_params": {"timeout": target.timeout},
        "allow_agent": False, "look_for_keys": False,
        "hostkey_verify": target.verify_host_key,
    }
    if target.ssh_key:
        options["key_filename"] = target.ssh_key
    if target.verify_host_key:
        options["hostkey_b64"] = pinned_host_key(target)
    where = f"{target.name} ({target.host}:{target.port})"
    try:
        session = _open(options)
        guard_loggers("ncclient")  # loggers ncclient made while connecting (transport.ssh)
        return session
    except SSHUnknownHostError:
        raise ConnectError(f"{where}: the host key does not match {target.known_hosts}; "
                           "refusing to connect") from None
    except AuthenticationError:
        raise ConnectError(f"{where}: authentication failed for user "
                           f"{target.username!r}") from None
    except (NCClientError, paramiko.SSHException, OSError) as exc:
        raise ConnectError(f"{where}: cannot open a NETCONF session: {exc}") from None


@dataclass(frozen=True, slots=True)
class DeviceError:
    """One <rpc-error> of a reply, as the device worded it."""

    severity: str
    message: str
    path: str | None = None
    bad_element: str | None = None
    session_id: str | None = None
    tag: str | None = None

    def describe(self) -> str:
        where = " ".join(p for p in (self.path, self.bad_element and
                                     f"(at {self.bad_element!r})") if p)
        return mask_secrets(f"{self.message} {where}".strip())


def _local(element: Element) -> str:
    tag = element.tag
    if isinstance(tag, str):  # what QName(element).localname says, without building one
        return tag[tag.index("}") + 1:] if tag.startswith("{") else tag
    return etree.QName(element).localname


def _first_text(element: Element, name: str) -> str | None:
    for item in element.iter(f"{{*}}{name}"):  # any namespace or none, matched in C
        if (item.text or "").strip():
            return (item.text or "").strip()
    return None


def device_errors(reply: Element) -> list[DeviceError]:
    """Every distinct <rpc-error> in a reply (Junos repeats some inside its result body)."""
    seen: dict[tuple[str, str | None, str | None], DeviceError] = {}
    for item in reply.iter("{*}rpc-error"):
        error = DeviceError(
            severity=_first_text(item, "error-severity") or "error",
            message=_first_text(item, "error-message") or "unspecified error",
            path=_first_text(item, "error-path"),
            bad_element=_first_text(item, "bad-element"),
            session_id=_first_text(item, "session-id"),
            tag=_first_text(item, "error-tag"),
        )
        seen.setdefault((error.message, error.path, error.bad_element), error)
    return list(seen.values())


def as_received(root: Element) -> Element:
    """A device handler's reply transform that keeps the reply ncclient parsed (a function:
    NCElement applies it to the parsed root; handlers without one make execute parse the
    reply a second time)."""
    return root


def document(reply: Any) -> Element:
    """The <rpc-reply> element of an ncclient reply (NCElement or RPCReply)."""
    if hasattr(reply, "find"):  # NCElement: its document's root ("." is cheaper than XPath)
        found = reply.find(".")
        if found is not None:
            root: Element = found
            return root
    root = etree.fromstring(str(reply).encode(),
                            untrusted_parser(remove_blank_text=False, huge_tree=True))
    return root


@contextmanager
def _client_errors(name: str) -> Iterator[None]:
    """ncclient's and the socket's exceptions as the drivers' (rpc-errors are not here)."""
    try:
        yield
    except TimeoutExpiredError:
        raise ConnectError(f"{name}: no reply from the device in time") from None
    except (TransportError, OSError) as exc:
        raise ConnectError(f"{name}: the session to the device broke: {exc}") from None
    except NCClientError as exc:
        raise DriverError(f"{name}: {mask_secrets(str(exc))}") from None


def execute(session: Any, name: str, request: Element | str) -> Element:
    """Run one RPC; transport failures become ConnectError. rpc-errors are left to the caller."""
    with _client_errors(name):
        return document(session.rpc(request))


def execute_many(session: Any, name: str, requests: list[Element | str]) -> list[Element]:
    """Several RPCs sent back to back, the replies read after (NETCONF servers answer in
    order, RFC 6241 4.1): one round trip instead of one each. For requests that do not
    depend on each other's outcome: all of them run, whatever the earlier ones answered.
    Transport failures become ConnectError; rpc-errors are left to the caller."""
    transport = session._session
    reads = isinstance(transport, PromptSession)
    session.async_mode = True
    try:
        with _client_errors(name), (transport.pipelined() if reads else nullcontext()):
            operations = [session.rpc(request) for request in requests]
    finally:
        session.async_mode = False
    if reads:
        with _client_errors(name):
            transport.read_replies([operation.id for operation in operations],
                                   session.timeout)
    replies = []
    for operation in operations:
        if not operation.event.wait(session.timeout):
            raise ConnectError(f"{name}: no reply from the device in time")
        if operation.error is not None:
            raise ConnectError(f"{name}: the session to the device broke: {operation.error}")
        replies.append(document(operation.reply))
    return replies


def children_named(parent: Element, name: str) -> Iterator[Element]:
    """Child elements with this local name, in any namespace or none (matched in C)."""
    return parent.iterchildren(f"{{*}}{name}")


# element children only, in no namespace, no attributes; a leaf keeps its text
_STRIP = b"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="*[*]">
    <xsl:element name="{local-name()}"><xsl:apply-templates select="*"/></xsl:element>
  </xsl:template>
  <xsl:template match="*">
    <xsl:element name="{local-name()}"><xsl:value-of select="."/></xsl:element>
  </xsl:template>
</xsl:stylesheet>"""
_strippers = threading.local()  # an lxml XSLT object is used by one thread at a time


def strip_namespaces(element: Element) -> Element:
    """A copy with every element in no namespace and no attributes (device metadata).
    In XSLT: a fleet's replies hold 10^6 elements, too many to copy one by one in Python."""
    strip = getattr(_strippers, "xslt", None)
    if strip is None:
        strip = _strippers.xslt = etree.XSLT(etree.XML(_STRIP))
    root = strip(element).getroot()
    return root if root is not None else etree.Element(_local(element))


_SPACES = re.compile(r"\s+")


def leaf_text(element: Element | None) -> str:
    return _SPACES.sub(" ", (element.text or "") if element is not None else "").strip()
