"""A CLI-like diff of two Cisco-IOS-XE-native trees: IOS-XE NETCONF has no native diff.

Every leaf becomes one line, its list entries as headers, e.g.

    + interface Tunnel101 / ip mtu 1438
    - router bgp 65001 / neighbor 169.254.0.1 / remote-as 65002

Lines are compared with their real values and masked when shown, so a changed secret shows
as a change (`- ... key <masked>` / `+ ... key <masked>`) without showing either value.
"""

from collections.abc import Iterator
from typing import NamedTuple

from lxml import etree

from drivers.iosxe_tree import INTERFACE_PARENT, Element, Path, elements, key_values, keys_of, local
from tasks.semantic_diff import mask_secrets

MASK = "<masked>"
# leaves whose value is a secret wherever they sit in the native tree
SECRET_LEAVES = frozenset({"key", "password", "secret", "pre-shared-key", "passphrase"})
HEADER_SEPARATOR = " / "
# (container, leaf) pairs the CLI spells by the container alone: `pre-shared-key X`
UNNAMED_LEAVES = frozenset({("pre-shared-key", "key")})


class LeafLine(NamedTuple):  # a tuple: built, hashed and compared in C (thousands a device)
    header: tuple[str, ...]  # the list entries above the leaf, e.g. ("interface Tunnel20",)
    words: tuple[str, ...]  # containers below the last entry, then the leaf
    value: str
    secret: bool
    top: str  # the top-level statement the line belongs to (header[0], else the first word)

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


_ENTRY_LINES: dict[tuple[Path, tuple[str, ...], tuple[str, ...], bytes],
                   tuple[LeafLine, ...]] = {}
ENTRY_LINES_KEPT = 20_000  # list entries (a hub has a few thousand)


def leaf_lines(native: Element, skip: frozenset[str] = frozenset()) -> Iterator[LeafLine]:
    """The leaves of a <native> tree in document order (but those of the top-level
    statements whose tag is in skip)."""
    out: list[LeafLine] = []  # appended to, not yielded: a line passes no generator chain

    def visit(item: Element, name: str, path: Path, header: tuple[str, ...],
              words: tuple[str, ...]) -> None:
        inner = elements(item)
        if not inner:  # a leaf: most of the tree
            spelled = words if words and (words[-1], name) in UNNAMED_LEAVES else \
                (*words, name)
            out.append(LeafLine(header, spelled, (item.text or "").strip(),
                                name in SECRET_LEAVES,
                                header[0] if header else spelled[0] if spelled else ""))
            return
        here = (*path, name)
        keys = keys_of(here, item)
        if keys:
            # the lines of a list entry follow from the entry and where it sits: many devices
            # share entries (the fabric's prefix lists), which are lined up once a process
            memo = (here, header, words, etree.tostring(item, with_tail=False))
            known = _ENTRY_LINES.get(memo)
            if known is not None:
                out.extend(known)
                return
            start = len(out)
        named = [(c, local(c)) for c in inner]
        if keys:
            entry = (*header, _entry_header(here, words, item, key_values(here, item)))
            children = [(c, n) for c, n in named if n not in keys]
            if not children:
                out.append(LeafLine(entry, (), "", False, entry[0]))
            for child, child_name in children:
                visit(child, child_name, here, entry, ())
            lines = tuple(out[start:])
            if not any(line.secret for line in lines):  # no secret kept past its diff
                if len(_ENTRY_LINES) >= ENTRY_LINES_KEPT:
                    _ENTRY_LINES.clear()
                _ENTRY_LINES[memo] = lines
        else:
            words = (*words, name)
            for child, child_name in named:
                visit(child, child_name, here, header, words)

    for top in elements(native):
        if str(top.tag) not in skip:
            visit(top, local(top), (), (), ())
    return iter(out)


def cli_diff(running: Element, candidate: Element) -> str:
    """`- line` for each leaf only in running, `+ line` for each only in candidate, grouped
    by the first header (top-level statement) in the order the trees have them."""
    same = _same_tops(running, candidate)
    before = list(leaf_lines(running, same))
    after = list(leaf_lines(candidate, same))
    kept_before, kept_after = set(before), set(after)
    gone = [line for line in before if line not in kept_after]
    new = [line for line in after if line not in kept_before]
    if not gone and not new:
        return ""
    # per top-level statement (in the order the trees have them): its `-` lines, then its
    # `+` lines, each in tree order
    order = dict.fromkeys([line.top for line in before] + [line.top for line in after])
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for side, lines, sign in ((0, gone, "- "), (1, new, "+ ")):
        for line in lines:
            group = groups.get(line.top)
            if group is None:
                group = groups[line.top] = ([], [])
            group[side].append(sign + _shown(line))
    text = "\n".join(shown for top in order if top in groups
                     for side in groups[top] for shown in side)
    # secret leaves are masked by position (show); every line also by the patterns of
    # tasks.semantic_diff (a secret in a leaf the table does not name), in one pass
    return mask_secrets(text + "\n")


def _same_tops(running: Element, candidate: Element) -> frozenset[str]:
    """Tags of the top-level statements that both trees hold once and equal: they add the
    same lines to both sides, so their leaves need not be listed (and no line of another
    statement can match one of theirs: each line starts with its statement's name)."""
    left, right = _single_tops(running), _single_tops(candidate)
    return frozenset(tag for tag in left.keys() & right.keys()
                     if etree.tostring(left[tag], method="c14n")
                     == etree.tostring(right[tag], method="c14n"))


def _single_tops(tree: Element) -> dict[str, Element]:
    found: dict[str, list[Element]] = {}
    for top in elements(tree):
        found.setdefault(str(top.tag), []).append(top)
    return {tag: tops[0] for tag, tops in found.items() if len(tops) == 1}


_SHOWN: dict[LeafLine, str] = {}  # lines without a secret, as shown (shared entries' lines)


def _shown(line: LeafLine) -> str:
    text = _SHOWN.get(line)
    if text is None:
        text = line.show()
        if not line.secret:
            if len(_SHOWN) >= ENTRY_LINES_KEPT:
                _SHOWN.clear()
            _SHOWN[line] = text
    return text
