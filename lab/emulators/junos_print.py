"""Printing Junos configuration: `show configuration` text and `display set` commands."""

from collections.abc import Iterator

from lab.emulators.junos_config import quote, statement_words
from lab.emulators.junos_schema import Kind, SchemaNode, junos_schema
from lab.emulators.xmlutil import Element, children


def to_text(config: Element, header: str | None = None) -> str:
    lines = [header] if header else []
    lines.extend(render_children(config, junos_schema(), 0))
    return "\n".join(lines) + "\n"


def render_children(element: Element, node: SchemaNode, depth: int) -> list[str]:
    lines: list[str] = []
    for child_node, group in child_groups(element, node):
        lines.extend(render_group(child_node, group, depth))
    return lines


def child_groups(element: Element,
                 node: SchemaNode) -> Iterator[tuple[SchemaNode, list[Element]]]:
    """Children in runs that print together (leaf-list values, grouped list entries)."""
    items = [c for c in children(element) if str(c.tag) not in node.keys]
    i = 0
    while i < len(items):
        child_node = node.child(str(items[i].tag))
        if child_node is None:
            i += 1
            continue
        j = i + 1
        if child_node.kind is Kind.LEAF_LIST or child_node.grouped:
            while j < len(items) and items[j].tag == items[i].tag:
                j += 1
        yield child_node, items[i:j]
        i = j


def render_group(node: SchemaNode, group: list[Element], depth: int) -> list[str]:
    pad = "    " * depth
    if node.kind is Kind.LEAF_LIST:
        values = [quote((e.text or "").strip()) for e in group]
        shown = values[0] if len(values) == 1 else "[ " + " ".join(values) + " ]"
        return [f"{pad}{node.name} {shown};"]
    if node.joined:
        lines = []
        for child_node, child_group in child_groups(group[0], node):
            rendered = render_group(child_node, child_group, depth)
            lines.extend([f"{pad}{node.name} {rendered[0].lstrip()}", *rendered[1:]])
        return lines or [f"{pad}{node.name};"]
    if node.kind is Kind.LIST and node.grouped:
        inner: list[str] = []
        for entry in group:
            inner.extend(render_entry(entry, node, depth + 1))
        return [f"{pad}{node.keyword or node.name} {{", *inner, f"{pad}}}"]
    return _render_node(group[0], node, depth)


def render_entry(entry: Element, node: SchemaNode, depth: int) -> list[str]:
    """A grouped list entry as printed inside its group (no keyword)."""
    return _render_node(entry, node, depth, node_words=_key_words(entry, node))


def _key_words(entry: Element, node: SchemaNode) -> list[str]:
    words = statement_words(entry, node)
    return words[1:] if node.keyword is not None else words


def _render_node(element: Element, node: SchemaNode, depth: int,
                 node_words: list[str] | None = None) -> list[str]:
    pad = "    " * depth
    if node.kind is Kind.LEAF:
        value = quote((element.text or "").strip())
        secret = " ## SECRET-DATA" if node.constraint.secret else ""
        return [f"{pad}{node.name} {value};{secret}"]
    if node.kind is Kind.EMPTY:
        return [f"{pad}{node.name};"]
    head = " ".join(node_words if node_words is not None else statement_words(element, node))
    body = render_children(element, node, depth + 1)
    if not body:
        return [f"{pad}{head};"]
    inline = _inline(element, node)
    if inline is not None:
        return [f"{pad}{head} {inline};"]
    return [f"{pad}{head} {{", *body, f"{pad}}}"]


def _inline(element: Element, node: SchemaNode) -> str | None:
    """The one-line form of a positional or single-statement container, if it has one."""
    if node.positional is None and not node.single_line:
        return None
    groups = list(child_groups(element, node))
    if node.positional is None and len(groups) != 1:
        return None
    parts: list[str] = []
    for child_node, group in groups:
        lines = render_group(child_node, group, 0)
        if len(lines) != 1:
            return None
        text = lines[0].removesuffix(";")
        if child_node.name == node.positional:
            text = text.split(" ", 1)[1]
            parts.insert(0, text)
        else:
            parts.append(text)
    return " ".join(parts)


def to_set(config: Element) -> str:
    lines = list(_set_lines(config, junos_schema(), []))
    return "\n".join(lines) + ("\n" if lines else "")


def _set_lines(element: Element, node: SchemaNode, words: list[str]) -> Iterator[str]:
    for item in children(element):
        name = str(item.tag)
        if name in node.keys:
            continue
        child = node.child(name)
        if child is None:
            continue
        if child.kind is Kind.LEAF or child.kind is Kind.LEAF_LIST:
            value = quote((item.text or "").strip())
            if name == node.positional:
                yield "set " + " ".join([*words, value])
            else:
                yield "set " + " ".join([*words, name, value])
        elif child.kind is Kind.EMPTY:
            yield "set " + " ".join([*words, name])
        else:
            inner = [*words, *statement_words(item, child)]
            lines = list(_set_lines(item, child, inner))
            yield from lines or ["set " + " ".join(inner)]
