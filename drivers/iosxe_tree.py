"""The Cisco-IOS-XE-native tree as the IOS-XE driver reads it: namespaces, list keys, paths.

Paths are tuples of local names below <native> (the augmenting modules' namespaces are
carried by the elements themselves). LIST_KEYS names the key leaves of the lists dcvpn
renders or reads; every interface type (interface/GigabitEthernet, interface/Tunnel, ...) is
a list keyed by name. Lists not in the table are recognised by a first child named like a
key (FALLBACK_KEYS), which is how Cisco's native model names them.
"""

from lxml import etree

Element = etree._Element
Path = tuple[str, ...]

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
NATIVE_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-native"
OPERATION = f"{{{NC_NS}}}operation"

LIST_KEYS: dict[Path, tuple[str, ...]] = {
    ("crypto", "ikev2", "keyring"): ("name",),
    ("crypto", "ikev2", "keyring", "peer"): ("name",),
    ("crypto", "ikev2", "policy"): ("name",),
    ("crypto", "ikev2", "profile"): ("name",),
    ("crypto", "ikev2", "proposal"): ("name",),
    ("crypto", "ipsec", "profile"): ("name",),
    ("crypto", "ipsec", "transform-set"): ("tag",),
    ("crypto", "pki", "trustpoint"): ("id",),
    ("ip", "prefix-lists", "prefixes"): ("name", "no"),
    ("route-map",): ("name",),
    ("route-map", "route-map-without-order-seq"): ("seq_no",),
    ("router", "bgp"): ("id",),
    ("router", "bgp", "neighbor"): ("id",),
    ("router", "bgp", "address-family", "no-vrf", "ipv4"): ("af-name",),
    ("router", "bgp", "address-family", "no-vrf", "ipv4", "ipv4-unicast", "neighbor"): ("id",),
    ("router", "bgp", "address-family", "no-vrf", "ipv4", "ipv4-unicast", "neighbor",
     "route-map"): ("inout",),
    ("router", "bgp", "address-family", "no-vrf", "ipv4", "ipv4-unicast", "network",
     "with-mask"): ("number", "mask"),
}
INTERFACE_PARENT: Path = ("interface",)
FALLBACK_KEYS = ("name", "id", "tag", "seq_no", "number", "af-name")


_LOCAL_NAMES: dict[str, str] = {}  # Clark name -> local name (a device has a few hundred)
_LOCAL_NAMES_KEPT = 4096


def local(element: Element) -> str:
    tag = element.tag
    if isinstance(tag, str):  # what QName(element).localname says, without building one
        name = _LOCAL_NAMES.get(tag)
        if name is None:
            name = tag[tag.index("}") + 1:] if tag.startswith("{") else tag
            if len(_LOCAL_NAMES) < _LOCAL_NAMES_KEPT:
                _LOCAL_NAMES[tag] = name
        return name
    return etree.QName(element).localname


def elements(parent: Element) -> list[Element]:
    if not len(parent):  # a leaf: most of a configuration
        return []
    return list(parent.iterchildren(etree.Element))


def keys_of(path: Path, element: Element | None = None) -> tuple[str, ...]:
    """The key leaves of the list entry at path (empty when it is not a list entry)."""
    if path in LIST_KEYS:
        return LIST_KEYS[path]
    if path[:-1] == INTERFACE_PARENT:
        return ("name",)
    if element is not None:
        first = next(iter(elements(element)), None)
        if first is not None and local(first) in FALLBACK_KEYS and len(first) == 0:
            return (local(first),)
    return ()


def child_text(element: Element, name: str) -> str:
    for item in element.iterchildren(f"{{*}}{name}"):  # any namespace or none, in C
        return (item.text or "").strip()
    return ""


def key_values(path: Path, element: Element) -> tuple[str, ...]:
    return tuple(child_text(element, k) for k in keys_of(path, element))


def native_of(root: Element) -> Element | None:
    """The <native> element of a <config>, <data> or <native> document."""
    if root.tag == f"{{{NATIVE_NS}}}native":
        return root
    found = root.find(f"{{{NATIVE_NS}}}native")
    return found
