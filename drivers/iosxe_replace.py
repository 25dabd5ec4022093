"""What `replace` means for dcvpn's part of an IOS-XE configuration.

The rendered <config> is not the device's whole configuration: management interfaces, AAA,
users, logging, the archive, site routing stay the site's. A NETCONF <copy-config> or an
edit-config with default-operation="replace" would wipe them, and even operation="replace"
on a container such as <crypto><ikev2> would delete the site's own proposals and keyrings.
A plain merge, on the other hand, keeps what the model dropped (a removed tunnel's profiles,
Tunnel interface and BGP neighbor).

dcvpn therefore owns *list entries*, named in OWNED, and edits the candidate with one
edit-config (default-operation merge) whose document is the rendering plus:

- operation="replace" on every owned entry the rendering carries: its content on the device
  becomes exactly the rendered one (a leaf the model dropped goes too);
- operation="remove" for every owned entry the device has but the rendering no longer
  carries (remove, not delete: no error if it is already gone);
- everything else merges (e.g. `router bgp` leaves such as the router-id, the BGP network
  statements; a site prefix dropped from the model is not withdrawn by dcvpn).

Owned entries: DCVPN-* crypto objects, prefix-list entries and route-maps; Tunnel interfaces
and BGP neighbors whose description starts with "dcvpn " (the renderer writes it) and the
address-family entries of those neighbors. A rendered entry whose key the device already uses
for something dcvpn does not own (a site's Tunnel20) is a conflict: nothing is loaded.
"""

import copy
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from drivers.errors import LoadError
from drivers.iosxe_tree import (
    LIST_KEYS,
    OPERATION,
    Element,
    Path,
    child_text,
    elements,
    key_values,
    keys_of,
    local,
    native_of,
)

Identity = tuple[tuple[str, tuple[str, ...]], ...]  # (local name, key values) from <native>

_AF_NEIGHBOR: Path = ("router", "bgp", "address-family", "no-vrf", "ipv4", "ipv4-unicast",
                      "neighbor")


@dataclass(frozen=True, slots=True)
class Owned:
    """Entries of the list at path that dcvpn owns: those whose leaf starts with prefix, or
    (follows) those whose key names an owned entry of another list of the same document."""

    path: Path
    leaf: str = "name"
    prefix: str = "DCVPN-"
    follows: Path | None = None


OWNED: tuple[Owned, ...] = (
    Owned(("crypto", "ikev2", "proposal")),
    Owned(("crypto", "ikev2", "policy")),
    Owned(("crypto", "ikev2", "keyring")),
    Owned(("crypto", "ikev2", "profile")),
    Owned(("crypto", "ipsec", "transform-set"), leaf="tag"),
    Owned(("crypto", "ipsec", "profile")),
    Owned(("crypto", "pki", "trustpoint"), leaf="id"),
    Owned(("interface", "Tunnel"), leaf="description", prefix="dcvpn "),
    Owned(("ip", "prefix-lists", "prefixes")),
    Owned(("route-map",)),
    Owned(("router", "bgp", "neighbor"), leaf="description", prefix="dcvpn "),
    Owned(_AF_NEIGHBOR, follows=("router", "bgp", "neighbor")),
)

REPLACE = "replace"
REMOVE = "remove"


class ReplaceConflictError(LoadError):
    """A rendered entry would overwrite an entry of the device that dcvpn does not own."""


def _entries(native: Element, path: Path) -> Iterator[tuple[Identity, Element]]:
    def walk(node: Element, depth: int, trail: Identity) -> Iterator[tuple[Identity, Element]]:
        here_path, name = path[:depth + 1], path[depth]
        for item in node.iterchildren(f"{{*}}{name}"):  # by local name, selected in C
            here = (*trail, (name, key_values(here_path, item)))
            if depth == len(path) - 1:
                yield here, item
            else:
                yield from walk(item, depth + 1, here)

    yield from walk(native, 0, ())


def _marked(rule: Owned, identity: Identity, element: Element) -> bool:
    keys = LIST_KEYS.get(rule.path, ())
    if rule.leaf in keys:  # read already: the entry's identity holds its keys' values
        return identity[-1][1][keys.index(rule.leaf)].startswith(rule.prefix)
    return child_text(element, rule.leaf).startswith(rule.prefix)


class _Walks:
    """The entries of each (tree, list) of one replace_document, walked once (a rule that
    follows another asks for that one's entries again)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, Path], list[tuple[Identity, Element]]] = {}
        self._owned: dict[tuple[int, Owned], dict[Identity, Element]] = {}

    def entries(self, native: Element, path: Path) -> list[tuple[Identity, Element]]:
        key = (id(native), path)
        found = self._entries.get(key)
        if found is None:
            found = self._entries[key] = list(_entries(native, path))
        return found

    def owned(self, native: Element, rule: Owned) -> dict[Identity, Element]:
        key = (id(native), rule)
        found = self._owned.get(key)
        if found is None:
            entries = self.entries(native, rule.path)
            if rule.follows is not None:
                leader = next(r for r in OWNED if r.path == rule.follows)
                names = {identity[-1][1] for identity in self.owned(native, leader)}
                found = {i: e for i, e in entries if i[-1][1] in names}
            else:
                found = {i: e for i, e in entries if _marked(rule, i, e)}
            self._owned[key] = found
        return found


def owned_entries(native: Element, rule: Owned) -> dict[Identity, Element]:
    """Every entry of native that rule owns, by identity."""
    return _Walks().owned(native, rule)


def _find_or_add(parent: Element, source: Element, path: Path) -> Element:
    values = key_values(path, source)
    for item in elements(parent):
        if item.tag == source.tag and key_values(path, item) == values:
            return item
    node = etree.SubElement(parent, source.tag)
    for key in keys_of(path, source):
        for leaf in elements(source):
            if local(leaf) == key:
                etree.SubElement(node, leaf.tag).text = leaf.text
    return node


def _add_remove(native_doc: Element, entry: Element, current_native: Element) -> None:
    chain = [a for a in reversed(list(entry.iterancestors())) if a is not current_native
             and current_native in a.iterancestors()] + [entry]
    node = native_doc
    path: Path = ()
    for source in chain:
        path = (*path, local(source))
        node = _find_or_add(node, source, path)
    node.set(OPERATION, REMOVE)


def replace_document(rendered: Element, current: Element) -> Element:
    """The <config> to edit the candidate with so that dcvpn's part of `current` (the
    device's candidate, <data> or <native>) becomes exactly `rendered`, the rest untouched."""
    doc = copy.deepcopy(rendered)
    native_doc = native_of(doc)
    current_native = native_of(current)
    if native_doc is None:
        raise ReplaceConflictError("the candidate has no Cisco-IOS-XE-native <native> element")
    if current_native is None:
        return doc
    conflicts = []
    walks = _Walks()
    for rule in OWNED:
        wanted = walks.owned(native_doc, rule)
        present = walks.entries(current_native, rule.path)
        existing = walks.owned(current_native, rule)
        if rule.follows is None:
            foreign = {i for i, _ in present} - set(existing)
            conflicts += [" ".join(f"{n} {' '.join(v)}".strip() for n, v in identity)
                          for identity in wanted if identity in foreign]
        for element in wanted.values():
            element.set(OPERATION, REPLACE)
        for identity, element in existing.items():
            if identity not in wanted:
                _add_remove(native_doc, element, current_native)
    if conflicts:
        raise ReplaceConflictError("the device already has " + "; ".join(sorted(conflicts)) +
                              " and dcvpn does not own it (no DCVPN- name or 'dcvpn' "
                              "description); rename or remove it on the device first")
    return doc
