"""What <get> and <get-config> return: filtered datastores and the operational trees.

Operational data: ietf-yang-library modules-state, Cisco-IOS-XE-checkpoint-archive-oper (from
the emulator's archive), and Cisco-IOS-XE-crypto-oper / bgp-oper as iosxe_oper_state builds
them from the committed configs of the device and its peers.
"""

import copy
import threading
from collections.abc import Callable

from lxml import etree

from lab.emulators.config_tree import subtree_filter
from lab.emulators.iosxe_caps import YANG_LIBRARY_NS, Advertised
from lab.emulators.iosxe_ia import Archives
from lab.emulators.iosxe_schema import IosxeRules, Kind
from lab.emulators.rpc_errors import RpcReplyError, fail
from lab.emulators.xmlutil import NC_NS, Element, child, children, copy_tree

CRYPTO_OPER_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-crypto-oper"
BGP_OPER_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-bgp-oper"
ARCHIVE_OPER_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-checkpoint-archive-oper"


def _bad_filter(message: str) -> RpcReplyError:
    return fail(message, tag="invalid-value", error_type="protocol",
                info=(("bad-element", "filter"),))


def filtered(datastore: Element, operation: Element, rules: IosxeRules, *,
             take: bool = False) -> Element:
    """<data> holding what the operation's <filter> selects from datastore (all if none);
    with take, a subtree filter moves what it selects out of datastore (a throwaway tree)."""
    data = etree.Element(f"{{{NC_NS}}}data", nsmap={None: NC_NS})
    selection = child(operation, "filter")
    if selection is None:
        kept: list[Element] = [copy_tree(c) for c in children(datastore)]
    elif (selection.get("type") or "subtree") == "subtree":
        kept = _subtree(datastore, selection, take)
    elif selection.get("type") == "xpath":
        kept = _xpath(datastore, selection, rules)
    else:
        raise _bad_filter(f"unsupported filter type {selection.get('type')!r}")
    for item in kept:  # every one a copy made here: tidied in place
        data.append(tidy(item, NC_NS, fresh=True))
    return data


def _subtree(datastore: Element, selection: Element, take: bool = False) -> list[Element]:
    if not children(selection):
        return []  # RFC 6241 6.4.2: an empty filter selects nothing
    result = subtree_filter(datastore, selection, take=take)
    return children(result) if result is not None else []


def _xpath(datastore: Element, selection: Element, rules: IosxeRules) -> list[Element]:
    """The selected nodes with their ancestors (list entries with their keys)."""
    select = selection.get("select")
    if not select:
        raise _bad_filter("an xpath filter needs a select attribute")
    namespaces = {k: v for k, v in selection.nsmap.items() if k is not None}
    # the datastore root stands for the document: make absolute paths relative to it
    expression = select[1:] if select.startswith("/") and not select.startswith("//") else select
    try:
        found = datastore.xpath(expression, namespaces=namespaces)
    except etree.XPathError as exc:
        raise _bad_filter(f"invalid xpath {select!r}: {exc}") from None
    copies: dict[Element, Element] = {datastore: etree.Element("selected")}
    for node in found if isinstance(found, list) else []:
        if isinstance(node, etree._Element) and node is not datastore:
            _copy_with_ancestors(node, rules, copies)
    return children(copies[datastore])


def _copy_with_ancestors(node: Element, rules: IosxeRules,
                         copies: dict[Element, Element]) -> None:
    chain = [*reversed(list(node.iterancestors())), node]
    path: tuple[str, ...] = ()
    for depth, source in enumerate(chain[1:], start=1):
        path = (*path, str(source.tag))
        if source in copies:
            continue
        parent = copies[chain[depth - 1]]
        if source is node:
            copies[source] = copy_tree(source)
        else:
            copies[source] = etree.Element(source.tag)
            kind = rules.node(path)
            for item in children(source):
                if kind.kind is Kind.LIST and item.tag in kind.keys:
                    copies[source].append(copy_tree(item))
        parent.append(copies[source])


def tidy(element: Element, parent_namespace: str | None = None, *,
         fresh: bool = False) -> Element:
    """A copy that declares each namespace as the default where it starts, like a device
    (fresh: element is the caller's own copy, which may be tidied in place)."""
    namespace = etree.QName(element).namespace
    if namespace and namespace != parent_namespace and len(element):
        return _tidy_tree(element, fresh=fresh)
    nsmap = {None: namespace} if namespace and namespace != parent_namespace else None
    copy = etree.Element(element.tag, nsmap=nsmap)
    copy.text = element.text
    for key, value in element.attrib.items():
        copy.set(key, value)
    for item in children(element):
        copy.append(tidy(item, namespace))
    return copy


# what tidy does, in C for the big subtrees (a hub's crypto-oper has 10^4 nodes): xsl:element
# with an unprefixed name declares its namespace as the default where it changes
_TIDY = b"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="*">
    <xsl:element name="{local-name()}" namespace="{namespace-uri()}">
      <xsl:copy-of select="@*"/>
      <xsl:value-of select="node()[1][self::text()]"/>
      <xsl:apply-templates select="*"/>
    </xsl:element>
  </xsl:template>
</xsl:stylesheet>"""
_tidiers = threading.local()


# a prefixed element below (and including) the root: only then is there anything to tidy
_PREFIXED = etree.XPath("boolean(descendant-or-self::*[contains(name(), ':')])")


def _tidy_tree(element: Element, *, fresh: bool = False) -> Element:
    """tidy of a subtree. One without prefixes (what the YANG printer and the oper builders
    make) already declares each namespace as the default where it starts: it only loses the
    declarations it does not use, instead of being rebuilt."""
    if not _PREFIXED(element):
        plain = element if fresh else copy.copy(element)
        etree.cleanup_namespaces(plain)
        return plain
    transform = getattr(_tidiers, "xslt", None)
    if transform is None:
        transform = _tidiers.xslt = etree.XSLT(etree.XML(_TIDY))
    root = transform(element).getroot()
    assert root is not None
    return root


def yang_library(advertised: Advertised) -> Element:
    state = etree.Element(f"{{{YANG_LIBRARY_NS}}}modules-state", nsmap={None: YANG_LIBRARY_NS})
    etree.SubElement(state, f"{{{YANG_LIBRARY_NS}}}module-set-id").text = \
        advertised.module_set_id
    for module in advertised.modules:
        entry = etree.SubElement(state, f"{{{YANG_LIBRARY_NS}}}module")
        for name, value in (("name", module.name), ("revision", module.revision),
                            ("namespace", module.namespace),
                            ("conformance-type", "implement")):
            etree.SubElement(entry, f"{{{YANG_LIBRARY_NS}}}{name}").text = value
    return state


def checkpoint_archives(archives: Archives) -> Element:
    def sub(parent: Element, name: str, text: str | None = None) -> Element:
        element = etree.SubElement(parent, f"{{{ARCHIVE_OPER_NS}}}{name}")
        element.text = text
        return element

    top = etree.Element(f"{{{ARCHIVE_OPER_NS}}}checkpoint-archives",
                        nsmap={None: ARCHIVE_OPER_NS})
    sub(top, "max", str(archives.maximum))
    sub(top, "current", str(len(archives.files)))
    if archives.files:
        sub(top, "recent", archives.files[-1].name)
    listing = sub(top, "archives")
    for archive in archives.files:
        entry = sub(listing, "archive")
        sub(entry, "number", str(archive.number))
        sub(entry, "name", archive.name)
    return top


def operational(advertised: Advertised, archives: Archives, crypto: Element | None = None,
                bgp: Element | None = None, wanted: set[str | None] | None = None
                ) -> list[Element]:
    """crypto / bgp: crypto-oper-data and bgp-state-data (iosxe_oper_state); empty if None.
    wanted: the namespaces to build (None: all of them)."""
    parts: list[tuple[str, Callable[[], Element]]] = [
        (YANG_LIBRARY_NS, lambda: yang_library(advertised)),
        (ARCHIVE_OPER_NS, lambda: checkpoint_archives(archives)),
        (CRYPTO_OPER_NS, lambda: crypto if crypto is not None else etree.Element(
            f"{{{CRYPTO_OPER_NS}}}crypto-oper-data", nsmap={None: CRYPTO_OPER_NS})),
        (BGP_OPER_NS, lambda: bgp if bgp is not None else etree.Element(
            f"{{{BGP_OPER_NS}}}bgp-state-data", nsmap={None: BGP_OPER_NS})),
    ]
    return [build() for namespace, build in parts if wanted is None or namespace in wanted]
