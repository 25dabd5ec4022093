"""The IOS-XE datastore's schema: tree rules for NETCONF edits and the YANG checks of a device.

With the vendor YANG folder (lab.yang.yang_dir()) the rules come from libyang: which element
is a list (and its keys), a leaf-list or a leaf, and every candidate is parsed (schema and
types) after an edit and fully validated (leafref, must, the name references the YANG leaves
as strings) on validate and commit. Without the folder the rules come from FALLBACK_LISTS and
the shape of the trees, and nothing is checked.
"""

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from lab.emulators.config_tree import Op
from lab.emulators.config_tree import Path as TreePath
from lab.emulators.xmlutil import NC_NS, Element, children
from lab.yang import SchemaContext, YangUnavailable, cached_context, yang_dir
from lab.yang.iosxe import MODULES, dangling_references, yang_release

log = logging.getLogger(__name__)

NATIVE_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-native"
OPERATION_ATTR = f"{{{NC_NS}}}operation"
YANG_INSERT_ATTRS = ("{urn:ietf:params:xml:ns:yang:1}insert",
                     "{urn:ietf:params:xml:ns:yang:1}key", "{urn:ietf:params:xml:ns:yang:1}value")


class Kind(Enum):
    CONTAINER = "container"
    LIST = "list"
    LEAF = "leaf"
    LEAF_LIST = "leaf-list"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class NodeKind:
    kind: Kind
    keys: tuple[str, ...] = ()  # Clark names of the list's key leaves


# Lists and leaf-lists of the native tree by the local names of their path; the rules use
# them only when the YANG folder is absent (tests check them against the YANG).
FALLBACK_LISTS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("native", "crypto", "ikev2", "keyring"): ("name",),
    ("native", "crypto", "ikev2", "keyring", "peer"): ("name",),
    ("native", "crypto", "ikev2", "policy"): ("name",),
    ("native", "crypto", "ikev2", "policy", "proposal"): ("proposals",),
    ("native", "crypto", "ikev2", "profile"): ("name",),
    ("native", "crypto", "ikev2", "profile", "pki", "trust-points"): ("name",),
    ("native", "crypto", "ikev2", "proposal"): ("name",),
    ("native", "crypto", "ipsec", "profile"): ("name",),
    ("native", "crypto", "ipsec", "transform-set"): ("tag",),
    ("native", "crypto", "pki", "trustpoint"): ("id",),
    ("native", "ip", "prefix-lists", "prefixes"): ("name", "no"),
    ("native", "ip", "prefix-list", "prefixes"): ("name",),
    ("native", "ip", "route", "ip-route-interface-forwarding-list"): ("prefix", "mask"),
    ("native", "route-map"): ("name",),
    ("native", "route-map", "route-map-without-order-seq"): ("seq_no",),
    ("native", "router", "bgp"): ("id",),
    ("native", "router", "bgp", "neighbor"): ("id",),
    ("native", "router", "bgp", "address-family", "no-vrf", "ipv4"): ("af-name",),
    ("native", "router", "bgp", "address-family", "no-vrf", "ipv4", "ipv4-unicast",
     "neighbor"): ("id",),
    ("native", "router", "bgp", "address-family", "no-vrf", "ipv4", "ipv4-unicast",
     "neighbor", "route-map"): ("inout",),
    ("native", "router", "bgp", "address-family", "no-vrf", "ipv4", "ipv4-unicast",
     "network", "with-mask"): ("number", "mask"),
}
FALLBACK_LEAF_LISTS: frozenset[tuple[str, ...]] = frozenset({
    ("native", "crypto", "ikev2", "policy", "match", "address", "local-ip"),
    ("native", "crypto", "ikev2", "profile", "match", "identity", "remote", "fqdn",
     "fqdn-name"),
    ("native", "crypto", "ipsec", "profile", "set", "transform-set"),
    ("native", "crypto", "pki", "trustpoint", "revocation-check"),
    ("native", "route-map", "route-map-without-order-seq", "match", "ip", "address",
     "prefix-list"),
    ("native", "route-map", "route-map-without-order-seq", "match", "ip", "address",
     "prefix-list-ordered"),
})
INTERFACE_PARENT = ("native", "interface")  # every interface type is a list keyed by name


# --- the YANG folder ------------------------------------------------------------------------

@dataclass(frozen=True)
class YangModule:
    name: str
    namespace: str  # "" for submodules
    revision: str
    yang_version: str
    submodule: bool


_MODULE = re.compile(r"^(module|submodule)\s+(\S+)\s*\{", re.M)
_NAMESPACE = re.compile(r'^\s*namespace\s+"([^"]+)"', re.M)
_REVISION = re.compile(r"^\s*revision\s+\"?(\d{4}-\d{2}-\d{2})", re.M)
_VERSION = re.compile(r"^\s*yang-version\s+\"?([0-9.]+)", re.M)


@cache
def folder_modules(folder: Path) -> tuple[YangModule, ...]:
    """The modules and submodules of a YANG folder, sorted by name."""
    found = []
    for path in sorted(folder.glob("*.yang")):
        text = path.read_text(encoding="utf-8", errors="replace")
        head = _MODULE.search(text)
        if head is None:
            continue
        namespace = _NAMESPACE.search(text)
        revision = _REVISION.search(text)
        version = _VERSION.search(text)
        found.append(YangModule(head.group(2), namespace.group(1) if namespace else "",
                                revision.group(1) if revision else "",
                                version.group(1) if version else "1",
                                head.group(1) == "submodule"))
    return tuple(sorted(found, key=lambda m: m.name))


def release_folder(version: str) -> Path | None:
    """<yang dir>/iosxe/<release> for an os_version, or None when the YANG is absent."""
    base = yang_dir()
    folder = base / "iosxe" / yang_release(version) if base is not None else None
    return folder if folder is not None and folder.is_dir() else None


# --- tree rules -------------------------------------------------------------------------

def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def namespace_of(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


class IosxeRules:
    """TreeRules for NETCONF edit-config on namespaced trees; subclasses say what a node is."""

    sorts_siblings = False  # insertion order (order() is 0 for everything)

    def node(self, path: TreePath) -> NodeKind:
        raise NotImplementedError

    def identity(self, path: TreePath, element: Element) -> tuple[str, ...]:
        node = self.node(path)
        name = str(element.tag)
        if node.kind is Kind.LIST:
            return (name, *(_child_text(element, key) for key in node.keys))
        if node.kind is Kind.LEAF_LIST:
            return (name, (element.text or "").strip())
        return (name,)

    def order(self, path: TreePath) -> int:
        return 0  # insertion order; the YANG printer sorts by schema when it is present

    def keys(self, path: TreePath) -> tuple[str, ...]:
        return self.node(path).keys

    def is_value(self, path: TreePath) -> bool:
        return self.node(path).kind in (Kind.LEAF, Kind.LEAF_LIST)

    def operation(self, element: Element, inherited: Op) -> Op:
        value = element.get(OPERATION_ATTR)
        return inherited if value is None else Op(value)

    def clean(self, element: Element) -> None:
        for name in (OPERATION_ATTR, *YANG_INSERT_ATTRS):
            element.attrib.pop(name, None)


def _child_text(element: Element, tag: str) -> str:
    for item in children(element):
        if item.tag == tag:
            return (item.text or "").strip()
    return ""


class FallbackRules(IosxeRules):
    """Rules without YANG: FALLBACK_LISTS, and leaves are what never has element children."""

    def __init__(self, trees: Iterable[Element]) -> None:
        self._leafy: dict[TreePath, bool] = {}
        for tree in trees:
            for path, element in _walk(tree, ()):
                has_children = bool(children(element))
                self._leafy[path] = self._leafy.get(path, True) and not has_children

    def node(self, path: TreePath) -> NodeKind:
        names = tuple(local(p) for p in path)
        keys = FALLBACK_LISTS.get(names)
        if keys is None and names[:-1] == INTERFACE_PARENT:
            keys = ("name",)
        if keys is not None:
            space = namespace_of(path[-1])
            return NodeKind(Kind.LIST, tuple(f"{{{space}}}{k}" if space else k for k in keys))
        if names in FALLBACK_LEAF_LISTS:
            return NodeKind(Kind.LEAF_LIST)
        if self._leafy.get(path, False):
            return NodeKind(Kind.LEAF)
        return NodeKind(Kind.CONTAINER)


def _walk(element: Element, path: TreePath) -> Iterator[tuple[TreePath, Element]]:
    for item in children(element):
        item_path = (*path, str(item.tag))
        yield item_path, item
        yield from _walk(item, item_path)


class SchemaRules(IosxeRules):
    def __init__(self, schema: "IosxeYang") -> None:
        self._schema = schema

    def node(self, path: TreePath) -> NodeKind:
        return self._schema.node(path)


# --- libyang ----------------------------------------------------------------------------

@dataclass(frozen=True)
class YangProblem:
    """A schema or validation failure as the device reports it."""

    tag: str
    message: str
    bad_element: str | None = None


_NOT_A_CHILD = re.compile(r'Node "([^"]+)" not found as a child')
_UNKNOWN_NAMESPACE = re.compile(r'No module with namespace "([^"]+)"')


def _problem(message: str, default_tag: str) -> YangProblem:
    text = message.removeprefix("failed to parse data tree: ")
    unknown = _NOT_A_CHILD.search(text)
    if unknown is not None:
        return YangProblem("unknown-element", text, unknown.group(1))
    if _UNKNOWN_NAMESPACE.search(text):
        return YangProblem("unknown-namespace", text)
    return YangProblem(default_tag, text)


class IosxeYang:
    """The IOS-XE YANG of one release, loaded once per process and shared by all devices."""

    def __init__(self, version: str, folder: Path) -> None:
        self.version = version
        self.folder = folder
        self.context: SchemaContext = cached_context(("iosxe", folder.name), folder, MODULES)
        self._module_of = {m.namespace: m.name for m in folder_modules(folder) if m.namespace}
        self._nodes: dict[TreePath, NodeKind] = {}
        self._nodes_lock = threading.Lock()

    def _libyang(self) -> tuple[Any, Any]:
        # SchemaContext keeps its libyang context and lock private; the emulator needs
        # schema lookups and the printer too, under the same lock.
        return self.context._ctx, self.context._lock

    def node(self, path: TreePath) -> NodeKind:
        with self._nodes_lock:
            known = self._nodes.get(path)
        if known is not None:
            return known
        found = self._lookup(path)
        with self._nodes_lock:
            self._nodes[path] = found
        return found

    def _lookup(self, path: TreePath) -> NodeKind:
        import libyang  # noqa: PLC0415 - optional dependency, present when the YANG is used

        segments = []
        previous = ""
        for tag in path:
            space = namespace_of(tag)
            module = self._module_of.get(space)
            if module is None:
                return NodeKind(Kind.UNKNOWN)
            segments.append(local(tag) if space == previous else f"{module}:{local(tag)}")
            previous = space
        ctx, lock = self._libyang()
        with lock:
            try:
                snode = next(iter(ctx.find_path("/" + "/".join(segments))), None)
            except libyang.LibyangError:
                snode = None
            if snode is None:
                return NodeKind(Kind.UNKNOWN)
            if isinstance(snode, libyang.SList):
                space = namespace_of(path[-1])
                key_nodes = snode.keys()
                return NodeKind(Kind.LIST, tuple(f"{{{space}}}{k.name()}" for k in key_nodes))
            if isinstance(snode, libyang.SLeafList):
                return NodeKind(Kind.LEAF_LIST)
            if isinstance(snode, libyang.SLeaf):
                return NodeKind(Kind.LEAF)
        return NodeKind(Kind.CONTAINER)

    def parse(self, datastore: Element) -> Element | YangProblem:
        """Schema and type check of a datastore; the same data in schema order on success."""
        printed = self._printed(serialized(datastore), validate=False)
        return self.tree_of(str(datastore.tag), printed)[0]

    def checked(self, datastore: Element) -> tuple[Element | YangProblem, list[YangProblem] | None]:
        """parse() and, in the same libyang pass, validate(): the second item is validate's
        answer when the data parses and passes libyang's validation too ([] or the name
        references the YANG misses), None when only the schema check was made (a candidate
        may be invalid until validate or commit: its errors are validate's to report)."""
        return self.tree_of(str(datastore.tag), self.check_text(serialized(datastore)))

    def check_text(self, document: str) -> "Printed":
        """checked()'s libyang pass alone, from the serialized datastore (serialized()) to
        libyang's printout: no lxml, so it may run on another thread than the event loop's
        (lxml's parsers on a second thread read the first thread's name dictionary while it
        grows: a parse there fails at random, or the process crashes)."""
        printed = self._printed(document, validate=True)
        if isinstance(printed.data, YangProblem) or not printed.validated:
            return self._printed(document, validate=False)
        return printed

    def tree_of(self, tag: str, printed: "Printed"
                ) -> tuple[Element | YangProblem, list[YangProblem] | None]:
        """checked()'s answer from check_text's printout (on the thread that owns the trees)."""
        if isinstance(printed.data, YangProblem):
            return printed.data, None
        if tag.startswith("{"):
            result = etree.Element(tag)
            if printed.data:
                result.extend(children(etree.fromstring(f"<p>{printed.data}</p>")))
        else:  # the usual root: parsed as the printout's parent (nothing to move across)
            result = etree.fromstring(f"<{tag}>{printed.data}</{tag}>")
        return result, (self._references(result) if printed.validated else None)

    def _printed(self, document: str, *, validate: bool) -> "Printed":
        import libyang  # noqa: PLC0415

        if not document:
            return Printed("", validated=False)
        ctx, lock = self._libyang()
        with lock:
            try:
                node = ctx.parse_data_mem(document, "xml", no_state=True, strict=True,
                                          parse_only=not validate)
            except libyang.LibyangError as exc:
                return Printed(_problem(str(exc), "invalid-value"), validated=False)
            if node is None:
                return Printed("", validated=False)
            try:  # implicit defaults that validation adds are not printed (explicit mode)
                text = node.print_mem("xml", with_siblings=True, pretty=False)
            finally:
                node.free()
        return Printed(text.decode() if isinstance(text, bytes) else text, validated=validate)

    def validate(self, datastore: Element) -> list[YangProblem]:
        """Full validation (leafref, must, mandatory) and the references the YANG misses."""
        outcome = self.context.validate(serialized(datastore))
        problems = [_problem(text, "operation-failed") for text in outcome.errors]
        return problems or self._references(datastore)

    @staticmethod
    def _references(datastore: Element) -> list[YangProblem]:
        return [YangProblem("operation-failed", text)
                for native in children(datastore) if native.tag == f"{{{NATIVE_NS}}}native"
                for text in dangling_references(native)]


@dataclass(frozen=True, slots=True)
class Printed:
    """libyang's printout of a datastore (schema order), or why it refused the data."""

    data: str | YangProblem
    validated: bool  # parsed with validation, and it passed


def serialized(datastore: Element) -> str:
    """The datastore's children serialized, as libyang reads them."""
    return "".join(etree.tostring(c, encoding="unicode") for c in children(datastore))


_schemas: dict[str, IosxeYang | None] = {}
_schemas_lock = threading.Lock()


def load_yang(version: str) -> IosxeYang | None:
    """The YANG of an os_version ("17.15"), loaded once; None (logged) when it is absent."""
    with _schemas_lock:
        if version in _schemas:
            return _schemas[version]
        folder = release_folder(version)
        schema = None
        if folder is not None:
            try:
                schema = IosxeYang(version, folder)
            except YangUnavailable as exc:
                log.warning("IOS-XE YANG unusable: %s", exc)
        if schema is None:
            log.warning("IOS-XE %s YANG folder not found (set DCVPN_YANG_DIR): edit-config, "
                        "validate and commit accept any configuration without schema checks",
                        version)
        _schemas[version] = schema
        return schema
