"""A CLI-like diff of two Cisco-IOS-XE-native trees: IOS-XE NETCONF has no native diff.

Every leaf becomes one line, its list entries as headers, e.g.

    + interface Tunnel101 / ip mtu 1438
    - router bgp 65001 / neighbor 169.254.0.1 / remote-as 65002

Lines are compared with their real values and masked when shown, so a changed secret shows
as a change (`- ... key <masked>` / `+ ... key <masked>`) without showing either value.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from drivers.iosxe_tree import INTERFACE_PARENT, Element, Path, elements, key_values, keys_of, local
from tasks.semantic_diff import mask_secrets

MASK = "<masked>"
# leaves whose value is a secret wherever they sit in the native tree
SECRET_LEAVES = frozenset({"key", "password", "secret", "pre-shared-key", "passphrase"})
HEADER_SEPARATOR = " / "
# (container, leaf) pairs the CLI spells by the container alone: `pre-shared-key X`
UNNAMED_LEAVES = frozenset({("pre-shared-key", "key")})


@dataclass(frozen=True, slots=True)
class LeafLine:
    header: tuple[str, ...]  # the list entries above the leaf, e.g. ("interface Tunnel20",)
    words: tuple[str, ...]  # containers below the last entry, then the leaf
    value: str
    secret: bool

    def show(self) -> str:
        value = MASK if self.secret and self.value else self.value
        statement = " ".join(w for w in (*self.words, value) if w)
        return HEADER_SEPARATOR.join((*self.header, statement) if statement else self.header)


def _entry_header(path: Path, words: tuple[str, ...], element: Element,
                  values: tuple[str, ...]) -> str:
    name = local(element)
    if path[:-1] == INTERFACE_PARENT:  # interface Tunnel20, not interface Tunnel 20
        return " ".join((*words, name + "".join(values)))
    return " ".join((*words, name, *values))


def leaf_lines(native: Element) -> Iterator[LeafLine]:
    """The leaves of a <native> tree in document order."""

    def visit(item: Element, path: Path, header: tuple[str, ...],
              words: tuple[str, ...]) -> Iterator[LeafLine]:
        here = (*path, local(item))
        keys = keys_of(here, item)
        if keys:
            entry = _entry_header(here, words, item, key_values(here, item))
            children = [c for c in elements(item) if local(c) not in keys]
            if not children:
                yield LeafLine((*header, entry), (), "", False)
            for child in children:
                yield from visit(child, here, (*header, entry), ())
        elif elements(item):
            for child in elements(item):
                yield from visit(child, here, header, (*words, local(item)))
        else:
            name = local(item)
            spelled = words if words[-1:] and (words[-1], name) in UNNAMED_LEAVES else \
                (*words, name)
            yield LeafLine(header, spelled, (item.text or "").strip(), name in SECRET_LEAVES)

    for top in elements(native):
        yield from visit(top, (), (), ())


def cli_diff(running: Element, candidate: Element) -> str:
    """`- line` for each leaf only in running, `+ line` for each only in candidate, grouped
    by the first header (top-level statement) in the order the trees have them."""
    before = list(leaf_lines(running))
    after = list(leaf_lines(candidate))
    kept_before, kept_after = set(before), set(after)
    gone = [line for line in before if line not in kept_after]
    new = [line for line in after if line not in kept_before]
    if not gone and not new:
        return ""
    order: dict[str, int] = {}
    for line in (*before, *after):
        order.setdefault(_top(line), len(order))
    changes = sorted([(order[_top(line)], 0, index, "- " + _shown(line))
                      for index, line in enumerate(gone)] +
                     [(order[_top(line)], 1, index, "+ " + _shown(line))
                      for index, line in enumerate(new)])
    return "\n".join(text for *_, text in changes) + "\n"


def _shown(line: LeafLine) -> str:
    """Secret leaves are masked by position; every other line also by the patterns of
    tasks.semantic_diff (a secret in a leaf the table does not name)."""
    return line.show() if line.secret else mask_secrets(line.show())


def _top(line: LeafLine) -> str:
    return line.header[0] if line.header else " ".join(line.words[:1])
