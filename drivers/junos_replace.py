"""Replace semantics for dcvpn's part of a Junos configuration.

The rendered <configuration> is not the device's whole configuration (system, revenue
interfaces, site-local zones and policies stay the site's), so `load override` would wipe
them, and a plain merge would keep what the model dropped (a removed tunnel's gateway, VPN,
st0 unit and BGP neighbor). dcvpn therefore owns *list entries*, named in OWNED:

- every owned entry the rendering carries gets replace="replace": its content on the device
  becomes exactly the rendered one (load action="replace" honours the attribute);
- every owned entry the device has but the rendering no longer carries gets delete="delete";
- everything else in the rendered document merges (leaves such as routing-options router-id
  and security flow tcp-mss take the rendered value; the untrust zone's host-inbound `ike`
  is added, never removed).

Owned entries are the ones dcvpn names: `DCVPN-*` objects, st0 units and their zone bindings.
"""

import copy
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

Element = etree._Element
Identity = tuple[tuple[str, tuple[str, ...]], ...]  # (element name, key values) from the root

REPLACE_ATTR = ("replace", "replace")
DELETE_ATTR = ("delete", "delete")


@dataclass(frozen=True, slots=True)
class Owned:
    """A list dcvpn owns entries of: the element names from <configuration> down to the list
    (`name=value` selects one entry of an intermediate list), and the key prefix it owns."""

    path: tuple[str, ...]
    prefix: str = ""


OWNED: tuple[Owned, ...] = (
    Owned(("security", "pki", "ca-profile"), "DCVPN-"),
    Owned(("security", "ike", "proposal"), "DCVPN-"),
    Owned(("security", "ike", "policy"), "DCVPN-"),
    Owned(("security", "ike", "gateway"), "DCVPN-"),
    Owned(("security", "ipsec", "proposal"), "DCVPN-"),
    Owned(("security", "ipsec", "policy"), "DCVPN-"),
    Owned(("security", "ipsec", "vpn"), "DCVPN-"),
    Owned(("security", "policies", "policy", "policy"), "DCVPN-"),
    Owned(("security", "zones", "security-zone", "interfaces"), "st0."),
    Owned(("interfaces", "interface=st0", "unit")),
    Owned(("protocols", "bgp", "group"), "DCVPN-"),
    Owned(("policy-options", "prefix-list"), "DCVPN-"),
    Owned(("policy-options", "policy-statement"), "DCVPN-"),
)

# key leaves of the lists on OWNED paths (by element path); every other list is keyed by name
LIST_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("security", "policies", "policy"): ("from-zone-name", "to-zone-name"),
}
_CONTAINERS = frozenset({("security",), ("security", "pki"), ("security", "ike"),
                         ("security", "ipsec"), ("security", "policies"),
                         ("security", "zones"), ("interfaces",), ("protocols",),
                         ("protocols", "bgp"), ("policy-options",)})


def _keys(path: tuple[str, ...]) -> tuple[str, ...]:
    return () if path in _CONTAINERS else LIST_KEYS.get(path, ("name",))


def _key_values(element: Element, path: tuple[str, ...]) -> tuple[str, ...]:
    return tuple((element.findtext(k) or "").strip() for k in _keys(path))


def owned_entries(root: Element, rule: Owned) -> Iterator[tuple[Identity, Element]]:
    """(identity, element) of every entry of root that rule owns."""

    def walk(node: Element, depth: int, trail: Identity) -> Iterator[tuple[Identity, Element]]:
        step = rule.path[depth]
        name, _, selected = step.partition("=")
        path = tuple(s.partition("=")[0] for s in rule.path[:depth + 1])
        last = depth == len(rule.path) - 1
        for item in node:
            if item.tag != name:
                continue
            values = _key_values(item, path)
            if selected and values != (selected,):
                continue
            here = (*trail, (name, values))
            if last:
                if values and values[0].startswith(rule.prefix):
                    yield here, item
            else:
                yield from walk(item, depth + 1, here)

    yield from walk(root, 0, ())


def _find_or_add(parent: Element, name: str, path: tuple[str, ...],
                 values: tuple[str, ...]) -> Element:
    for item in parent:
        if item.tag == name and _key_values(item, path) == values:
            return item
    node = etree.SubElement(parent, name)
    for key, value in zip(_keys(path), values, strict=True):
        etree.SubElement(node, key).text = value
    return node


def _add_delete(doc: Element, identity: Identity) -> None:
    node = doc
    path: tuple[str, ...] = ()
    for name, values in identity[:-1]:
        path = (*path, name)
        node = _find_or_add(node, name, path, values)
    name, values = identity[-1]
    path = (*path, name)
    gone = etree.SubElement(node, name, {DELETE_ATTR[0]: DELETE_ATTR[1]})
    for key, value in zip(_keys(path), values, strict=True):
        etree.SubElement(gone, key).text = value


def replace_document(rendered: Element, current: Element) -> Element:
    """The document to load with action="replace" so that dcvpn's part of `current` (the
    device's candidate) becomes exactly `rendered`, leaving the rest alone."""
    doc = copy.deepcopy(rendered)
    for rule in OWNED:
        wanted = set()
        for identity, element in owned_entries(doc, rule):
            element.set(*REPLACE_ATTR)
            wanted.add(identity)
        for identity, _ in owned_entries(current, rule):
            if identity not in wanted:
                _add_delete(doc, identity)
    return doc
