"""`show | compare`: what changed between two configurations, in the device's patch style.

Each changed hierarchy gets an `[edit ...]` header; statements only in the new configuration
are prefixed `+`, only in the old one `-`; a changed value shows the old line then the new.
Statements directly under a header start in column 4 (column 3 under `[edit]`).
"""

from lab.emulators.config_tree import Path
from lab.emulators.junos_config import JunosRules, edit_path, statement_words
from lab.emulators.junos_print import child_groups, render_entry, render_group
from lab.emulators.junos_schema import Kind, SchemaNode, junos_schema
from lab.emulators.xmlutil import Element, canonical

_RULES = JunosRules()


def compare(old: Element, new: Element) -> str:
    """The configuration-output text: '\\n' when nothing differs."""
    blocks = _diff(old, new, junos_schema(), (), [])
    lines: list[str] = []
    for words, body in blocks:
        pad = "  " if not words else "   "
        lines.append(edit_path(words))
        lines.extend(f"{sign}{pad}{text}" for sign, text in body)
    return "\n" + "".join(line + "\n" for line in lines)


Block = tuple[list[str], list[tuple[str, str]]]


def _diff(old: Element, new: Element, node: SchemaNode, path: Path,
          words: list[str]) -> list[Block]:
    blocks: list[Block] = []
    current: list[tuple[str, str]] = []
    old_groups = _statement_groups(old, node, path)
    new_groups = _statement_groups(new, node, path)
    for ident in _merged_order(old_groups, new_groups):
        before, after = old_groups.get(ident), new_groups.get(ident)
        child_node = before[0] if before else after[0] if after else None
        if child_node is None:
            continue
        old_items = before[1] if before else []
        new_items = after[1] if after else []
        if _same(old_items, new_items):
            continue
        if child_node.grouped:
            if current:
                blocks.append((words, current))
                current = []
            blocks.extend(_diff_entry(old_items, new_items, child_node, path, words))
            continue
        # a one-line `from ...;` / `then ...;` is a hierarchy too: the device shows the
        # change inside it (`[edit ... term T from]`), as for a block
        nested = (old_items and new_items and not child_node.is_leafy
                  and ((child_node.single_line and child_node.positional is None)
                       or (len(render_group(child_node, new_items, 0)) > 1
                           and len(render_group(child_node, old_items, 0)) > 1)))
        if nested:
            if current:
                blocks.append((words, current))
                current = []
            inner_words = [*words, *statement_words(new_items[0], child_node)]
            differ = _diff_joined if child_node.joined else _diff
            blocks.extend(differ(old_items[0], new_items[0], child_node,
                                 (*path, child_node.name), inner_words))
            continue
        if old_items:
            current.extend(("-", line) for line in render_group(child_node, old_items, 0))
        if new_items:
            current.extend(("+", line) for line in render_group(child_node, new_items, 0))
    if current:
        blocks.append((words, current))
    return blocks


def _diff_entry(old_items: list[Element], new_items: list[Element], node: SchemaNode,
                path: Path, words: list[str]) -> list[Block]:
    """One entry of a grouped list (`interfaces { st0.0 {...} }` in a zone)."""
    group_words = [*words, node.keyword or node.name]
    if old_items and new_items:
        entry_words = [*words, *statement_words(new_items[0], node)]
        return _diff(old_items[0], new_items[0], node, (*path, node.name), entry_words)
    body = [("-", line) for item in old_items for line in render_entry(item, node, 0)]
    body += [("+", line) for item in new_items for line in render_entry(item, node, 0)]
    return [(group_words, body)]


def _diff_joined(old: Element, new: Element, node: SchemaNode, path: Path,
                 words: list[str]) -> list[Block]:
    """`family` and the like: each child gets its own `[edit ... family inet]` header."""
    blocks: list[Block] = []
    old_groups = _statement_groups(old, node, path)
    new_groups = _statement_groups(new, node, path)
    for ident in _merged_order(old_groups, new_groups):
        before, after = old_groups.get(ident), new_groups.get(ident)
        entry = after or before
        if entry is None:
            continue
        child_node = entry[0]
        empty = entry[1][0].makeelement(entry[1][0].tag)
        old_item = before[1][0] if before else empty
        new_item = after[1][0] if after else empty
        blocks.extend(_diff(old_item, new_item, child_node, (*path, child_node.name),
                            [*words, child_node.name]))
    return blocks


Groups = dict[tuple[str, ...], tuple[SchemaNode, list[Element]]]


def _statement_groups(element: Element, node: SchemaNode, path: Path) -> Groups:
    """Statements keyed by identity; leaf-list values and grouped entries stay together."""
    groups: Groups = {}
    for child_node, items in child_groups(element, node):
        if child_node.kind is Kind.LEAF_LIST:
            groups[(child_node.name,)] = (child_node, items)
        elif child_node.grouped:
            for item in items:
                ident = _RULES.identity((*path, child_node.name), item)
                groups[ident] = (child_node, [item])
        else:
            ident = _RULES.identity((*path, child_node.name), items[0])
            groups[ident] = (child_node, items)
    return groups


def _merged_order(old: Groups, new: Groups) -> list[tuple[str, ...]]:
    """New statements in their order, old-only ones placed after their old predecessor."""
    order = list(new)
    previous: tuple[str, ...] | None = None
    for ident in old:
        if ident not in new:
            at = order.index(previous) + 1 if previous in order else 0
            order.insert(at, ident)
        previous = ident
    rank = {ident: (old.get(ident) or new[ident])[0].order for ident in order}
    return sorted(order, key=lambda ident: rank[ident])


def _same(old: list[Element], new: list[Element]) -> bool:
    return [canonical(e) for e in old] == [canonical(e) for e in new]
