"""Small lxml helpers shared by the emulators (namespaces, parsing, comparison)."""

import copy

from lxml import etree

from drivers.xml_parsing import untrusted_parser

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"

Element = etree._Element


def parse(data: bytes | str) -> Element:
    """Parse untrusted XML (no entities, no network); raises etree.XMLSyntaxError."""
    raw = data.encode() if isinstance(data, str) else data
    return etree.fromstring(raw, untrusted_parser())


def _local(name: str) -> str:
    return name[name.index("}") + 1:] if name.startswith("{") else name


def local_name(element: Element) -> str:
    tag = element.tag
    return _local(tag) if isinstance(tag, str) else etree.QName(element).localname


def strip_namespaces(element: Element) -> Element:
    """A copy of element with every tag and attribute name reduced to its local name."""
    stripped = _copy(element)
    for node in stripped.iter(etree.Element):  # elements only (no comments)
        node.tag = _local(str(node.tag))
        if node.attrib:
            for name in [n for n in node.attrib if n.startswith("{")]:
                value = node.attrib.pop(name)
                node.attrib[_local(name)] = value
    etree.cleanup_namespaces(stripped)
    return stripped


def children(element: Element) -> list[Element]:
    """Element children only (no comments or processing instructions), selected in C."""
    if not len(element):  # a leaf: most of a configuration
        return []
    return list(element.iterchildren(etree.Element))


def child(element: Element, name: str) -> Element | None:
    """First element child with this local name, whatever its namespace."""
    for c in children(element):
        if local_name(c) == name:
            return c
    return None


def text_of(element: Element | None) -> str:
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def _copy(element: Element) -> Element:
    """A deep copy, alone in a document of its own (without the tail text it had). lxml's
    copy.copy copies the whole subtree too, without copy.deepcopy's memo bookkeeping (twice
    the cost of a leaf's copy)."""
    copied = copy.copy(element)
    copied.tail = None
    return copied


def copy_tree(element: Element) -> Element:
    return _copy(element)


def canonical(element: Element) -> bytes:
    """Bytes that are equal exactly when two trees hold the same data (order included)."""
    return etree.tostring(element, method="c14n")


def same_tree(a: Element, b: Element) -> bool:
    return canonical(a) == canonical(b)
