"""Edits of configuration trees (lxml, namespace-free) driven by a platform's TreeRules.

The rules say how siblings are identified (list keys, leaf-list values), where a new statement
goes among its siblings, and which edit operation an element asks for (Junos `delete="delete"`
or `replace="replace"`, NETCONF `operation="..."`). The functions here only apply them.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from lxml import etree

from lab.emulators.xmlutil import Element, children, copy_tree


class Op(Enum):
    MERGE = "merge"
    REPLACE = "replace"
    CREATE = "create"
    DELETE = "delete"
    REMOVE = "remove"
    NONE = "none"  # NETCONF default-operation none: only walk, never create


Path = tuple[str, ...]


class TreeRules(Protocol):
    # False when order() is the same for every statement (siblings keep the order they came in)
    sorts_siblings: bool

    def identity(self, path: Path, element: Element) -> tuple[str, ...]:
        """What makes element (at path, its own name last) distinct among its siblings."""

    def order(self, path: Path) -> int:
        """Position of the statement at path among its siblings' kinds."""

    def keys(self, path: Path) -> tuple[str, ...]:
        """Names of the key leaves of the list at path (empty for anything else)."""

    def is_value(self, path: Path) -> bool:
        """True for leaves and leaf-lists: elements whose text is their content."""

    def operation(self, element: Element, inherited: Op) -> Op:
        """The operation element asks for (its attributes), given the inherited one."""

    def clean(self, element: Element) -> None:
        """Drop the operation attributes from a copied element (in place, not descendants)."""


@dataclass(frozen=True)
class EditProblem:
    """An edit that could not apply: missing (delete of nothing) or exists (create of a thing)."""

    kind: str
    path: Path
    identity: tuple[str, ...]


def find_match(parent: Element, path: Path, element: Element,
               rules: TreeRules) -> Element | None:
    wanted = rules.identity(path, element)
    for candidate in children(parent):
        if candidate.tag == element.tag and rules.identity(path, candidate) == wanted:
            return candidate
    return None


Key = tuple[object, tuple[str, ...]]


class _Siblings:
    """The children of one target node by (tag, identity), the first of equals winning as in
    find_match: an edit looks each source child up in constant time (a list of n entries
    merged into one of n was n * n identity computations). Kept in step with the edit's own
    changes; rebuilt after a removal (rare: delete/remove operations)."""

    def __init__(self, parent: Element, path: Path, rules: TreeRules) -> None:
        self.parent, self.path, self.rules = parent, path, rules
        self._index: dict[Key, Element] | None = None

    def key(self, element: Element) -> Key:
        return (element.tag, self.rules.identity((*self.path, str(element.tag)), element))

    def _built(self) -> dict[Key, Element]:
        if self._index is None:
            self._index = {}
            for item in reversed(children(self.parent)):
                self._index[self.key(item)] = item  # reversed: the first one stays
        return self._index

    def match(self, key: Key) -> Element | None:
        return self._built().get(key)

    def removed(self) -> None:
        self._index = None

    def replaced(self, key: Key, new: Element) -> None:
        self._built()[key] = new

    def added(self, key: Key, new: Element) -> None:
        self._built().setdefault(key, new)


def insert_ordered(parent: Element, new: Element, parent_path: Path, rules: TreeRules) -> None:
    """Insert new after the last sibling that sorts before or with it."""
    rank = rules.order((*parent_path, str(new.tag)))
    for index in range(len(parent) - 1, -1, -1):  # from the end: appends stop at once
        sibling = parent[index]
        if isinstance(sibling.tag, str) and rules.order(
                (*parent_path, sibling.tag)) <= rank:
            parent.insert(index + 1, new)
            return
    parent.insert(0, new)


def edit(target: Element, source: Element, rules: TreeRules, path: Path = (),
         inherited: Op = Op.MERGE) -> list[EditProblem]:
    """Apply source's children to target's (both are the same node at path)."""
    problems: list[EditProblem] = []
    siblings = _Siblings(target, path, rules)
    for item in children(source):
        child_path = (*path, str(item.tag))
        op = rules.operation(item, inherited)
        key = siblings.key(item)
        identity = key[1]
        match = siblings.match(key)
        if op in (Op.DELETE, Op.REMOVE):
            if match is not None:
                target.remove(match)
                siblings.removed()
            elif op is Op.DELETE:
                problems.append(EditProblem("missing", child_path, identity))
            continue
        if op is Op.CREATE and match is not None:
            problems.append(EditProblem("exists", child_path, identity))
            continue
        if op is Op.NONE:
            if match is None:
                problems.append(EditProblem("missing", child_path, identity))
            elif not rules.is_value(child_path):
                problems.extend(edit(match, item, rules, child_path, Op.NONE))
            continue
        if rules.is_value(child_path) or op is Op.REPLACE:
            replacement = fresh_copy(item, child_path, rules)
            if match is not None:
                target.replace(match, replacement)
                siblings.replaced(key, replacement)
            else:
                insert_ordered(target, replacement, path, rules)
                siblings.added(key, replacement)
            continue
        if match is None and not _NOT_BARE(item) and _merges_as_copied(item, child_path, rules):
            new = copy_tree(item)  # what the merge into its skeleton would build, in C
            insert_ordered(target, new, path, rules)
            siblings.added(key, new)
            continue
        if match is None:
            match = _skeleton(item, child_path, rules)
            insert_ordered(target, match, path, rules)
            siblings.added(key, match)
        problems.extend(edit(match, item, rules, child_path,
                             Op.MERGE if op is Op.CREATE else op))
    return problems


# an attribute (an operation among them) on the node or below, a comment or processing
# instruction, or any text beside child elements: what a merge into a skeleton would drop
_NOT_BARE = etree.XPath("boolean(descendant-or-self::*/@* | descendant::comment() | "
                        "descendant::processing-instruction() | "
                        "descendant-or-self::*[*]/text())")


def _merges_as_copied(element: Element, path: Path, rules: TreeRules) -> bool:
    """Whether merging element into a new node (its skeleton: the keys first) builds a copy of
    it: below every node the key leaves come first, no two siblings are the same statement
    (the merge would fold them), siblings are in the rules' order, and only value leaves hold
    text. A new list entry or container of a fleet's first deploy is one whole subtree."""
    nodes = children(element)
    keys = rules.keys(path)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    keyed = True  # still within the leading key leaves
    last = -1
    for item in nodes:
        name = str(item.tag)
        item_path = (*path, name)
        if name in keys:
            if not keyed:
                return False
        else:
            keyed = False
        identity = (name, rules.identity(item_path, item))
        if identity in seen:
            return False
        seen.add(identity)
        if rules.sorts_siblings:
            rank = rules.order(item_path)
            if rank < last:
                return False
            last = rank
        if len(item):
            if not _merges_as_copied(item, item_path, rules):
                return False
        elif item.text is not None and not rules.is_value(item_path):
            return False
    return True


# below the root: an attribute (an operation among them), a comment or processing instruction,
# or text beside child elements: what a fresh copy would drop
_NOT_PLAIN = etree.XPath("boolean(descendant::*/@* | descendant::comment() | "
                         "descendant::processing-instruction() | "
                         "descendant-or-self::*[*]/text()[normalize-space()])")


def _ordered(element: Element, path: Path, rules: TreeRules) -> bool:
    """Whether every element below is already in the rules' sibling order (what the sort
    of fresh_copy, a stable one, would leave as it is)."""
    last = -1
    for item in element.iterchildren(etree.Element):
        item_path = (*path, str(item.tag))
        rank = rules.order(item_path)
        if rank < last:
            return False
        last = rank
        if len(item) and not _ordered(item, item_path, rules):
            return False
    return True


def fresh_copy(element: Element, path: Path, rules: TreeRules) -> Element:
    """A copy without operation attributes, children in schema order, deletions dropped."""
    if not len(element) and not element.attrib:  # a bare leaf (most of a configuration)
        bare = copy_tree(element)
        if not rules.is_value(path):
            bare.text = None
        return bare
    if not _NOT_PLAIN(element) and (not rules.sorts_siblings or _ordered(element, path, rules)):
        # nothing to drop or reorder below the root: lxml copies the subtree in C
        plain = copy_tree(element)
        plain.attrib.clear()
        if not rules.is_value(path):
            plain.text = None
        return plain
    out = etree.Element(element.tag)
    out.text = element.text if rules.is_value(path) else None
    kept: list[tuple[int, Element]] = []
    for item in element.iterchildren(etree.Element):
        if item.attrib and rules.operation(item, Op.MERGE) in (Op.DELETE, Op.REMOVE):
            continue  # (operations are attributes)
        item_path = (*path, str(item.tag))
        if len(item) or not rules.sorts_siblings:
            made = fresh_copy(item, item_path, rules)
        else:  # a leaf (most of a configuration) of a namespace-free tree: made here
            made = etree.Element(item.tag)
            if rules.is_value(item_path):
                made.text = item.text
        kept.append((rules.order(item_path), made))
    kept.sort(key=lambda ranked: ranked[0])  # stable: what insert_ordered one by one gives
    out.extend(item for _, item in kept)
    return out


def _skeleton(element: Element, path: Path, rules: TreeRules) -> Element:
    """An empty node with the same identity (its key leaves) as element."""
    node = etree.Element(element.tag)
    keys = rules.keys(path)
    for item in children(element):
        if item.tag in keys:
            item_path = (*path, str(item.tag))
            insert_ordered(node, fresh_copy(item, item_path, rules), path, rules)
    return node


def walk(element: Element, path: Path = ()) -> Iterator[tuple[Path, Element]]:
    """Every descendant with its path (element names from the root, the root excluded)."""
    for item in children(element):
        item_path = (*path, str(item.tag))
        yield item_path, item
        yield from walk(item, item_path)


def subtree_filter(data: Element, selection: Element, *,
                   take: bool = False) -> Element | None:
    """RFC 6241 section 6 subtree filtering of data by selection (both namespace-free).

    A filter element without children selects the whole node; one with only text is a
    content match its data siblings must satisfy; others are containment nodes. With take,
    data is a throwaway tree: what is not selected is removed from it and it is returned
    itself, nothing copied.
    """
    if take:
        return _pruned(data, selection)
    split = _split(data, selection)
    if split is None:
        return None
    matches, others = split
    if not others:
        return copy_tree(data)
    namespace = etree.QName(data).namespace  # declared as the default: no ns0 prefixes
    out = etree.Element(data.tag, nsmap={None: namespace} if namespace else None)
    for item in children(data):
        if any(_same_leaf(item, match) for match in matches):
            out.append(copy_tree(item))
            continue
        for want in others:
            if want.tag == item.tag:
                kept = subtree_filter(item, want)
                if kept is not None:
                    out.append(kept)
                    break
    return out if len(out) else None


def _pruned(data: Element, selection: Element) -> Element | None:
    """subtree_filter with take: what the selection does not keep is removed from data, in
    place (moving the kept nodes into a new document costs more than copying them)."""
    split = _split(data, selection)
    if split is None:
        return None
    matches, others = split
    if not others:
        return data
    kept_any = False
    for item in children(data):
        if any(_same_leaf(item, match) for match in matches):
            kept_any = True
            continue
        kept = None
        for want in others:
            if want.tag == item.tag:
                kept = _pruned(item, want)
                if kept is not None:
                    break
        if kept is None:
            data.remove(item)
        else:
            kept_any = True
    return data if kept_any else None


def _split(data: Element, selection: Element) -> tuple[list[Element], list[Element]] | None:
    """A filter node's content matches and its other nodes (both empty: all of data is
    selected); None when data fails one of the content matches."""
    wanted = children(selection)
    matches = [w for w in wanted if _is_content_match(w)]
    for match in matches:
        if not any(_same_leaf(d, match) for d in children(data)):
            return None
    return matches, [w for w in wanted if w not in matches]


def _is_content_match(element: Element) -> bool:
    return not children(element) and bool((element.text or "").strip())


def _same_leaf(item: Element, match: Element) -> bool:
    return (item.tag == match.tag and not children(item)
            and (item.text or "").strip() == (match.text or "").strip())
