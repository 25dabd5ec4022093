"""<rpc-error> contents (RFC 6241 section 4.3) and the exception handlers raise to send them."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

from lab.emulators.errors import EmulatorError
from lab.emulators.xmlutil import Element


@dataclass(frozen=True)
class RpcErrorInfo:
    """One <rpc-error>. info holds (element name, text) pairs for <error-info>."""

    message: str
    tag: str = "operation-failed"
    type: str = "protocol"
    severity: str = "error"
    app_tag: str | None = None
    path: str | None = None
    info: tuple[tuple[str, str], ...] = field(default=())

    def to_element(self) -> Element:
        error = etree.Element("rpc-error")
        etree.SubElement(error, "error-type").text = self.type
        etree.SubElement(error, "error-tag").text = self.tag
        etree.SubElement(error, "error-severity").text = self.severity
        if self.app_tag is not None:
            etree.SubElement(error, "error-app-tag").text = self.app_tag
        if self.path is not None:
            etree.SubElement(error, "error-path").text = self.path
        etree.SubElement(error, "error-message").text = self.message
        if self.info:
            info = etree.SubElement(error, "error-info")
            for name, text in self.info:
                etree.SubElement(info, name).text = text
        return error


class RpcReplyError(EmulatorError):
    """Raised by an RPC handler: the reply carries these errors.

    When body is given it is the reply content as is (the handler placed the errors inside,
    e.g. Junos wraps load errors in <load-configuration-results>).
    """

    def __init__(self, errors: Iterable[RpcErrorInfo], *,
                 body: list[Element] | None = None) -> None:
        self.errors = tuple(errors)
        self.body = body
        super().__init__("; ".join(e.message for e in self.errors))

    def reply_body(self) -> list[Element]:
        if self.body is not None:
            return self.body
        return [e.to_element() for e in self.errors]


def fail(message: str, *, tag: str = "operation-failed", error_type: str = "protocol",
         severity: str = "error", path: str | None = None,
         info: tuple[tuple[str, str], ...] = ()) -> RpcReplyError:
    """A one-error RpcReplyError."""
    return RpcReplyError([RpcErrorInfo(message, tag=tag, type=error_type, severity=severity,
                                    path=path, info=info)])
