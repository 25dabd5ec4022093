"""Junos configuration trees: tree rules from the grammar table, and checks of loaded XML."""

from dataclasses import dataclass

from lxml import etree

from lab.emulators.config_tree import Op, Path, walk
from lab.emulators.errors import ConfigSyntaxError
from lab.emulators.junos_schema import Kind, SchemaNode, choice_lists, junos_schema, schema_at
from lab.emulators.xmlutil import Element, children, local_name, strip_namespaces

_UNKNOWN_ORDER = 1 << 20
_OPERATION_ATTRS = ("delete", "replace", "operation", "inactive", "active", "insert", "key",
                    "name", "uuid", "rename", "protect", "unprotect")


@dataclass(frozen=True)
class JunosRules:
    """TreeRules for Junos; replace="replace" is honoured only for load action replace."""

    honor_replace: bool = False
    sorts_siblings = True  # statements in the schema's order

    def identity(self, path: Path, element: Element) -> tuple[str, ...]:
        node = schema_at(path)
        name = str(element.tag)
        if node is None:
            return (name,)
        if node.kind is Kind.LIST:
            return (name, *(_child_text(element, key) for key in node.keys))
        if node.kind is Kind.LEAF_LIST:
            return (name, (element.text or "").strip())
        return (name,)

    def order(self, path: Path) -> int:
        node = schema_at(path)
        return _UNKNOWN_ORDER if node is None else node.order

    def keys(self, path: Path) -> tuple[str, ...]:
        node = schema_at(path)
        return node.keys if node is not None else ()

    def is_value(self, path: Path) -> bool:
        node = schema_at(path)
        return node is not None and node.is_leafy

    def operation(self, element: Element, inherited: Op) -> Op:
        attrs = {local_name_attr(k): v for k, v in element.attrib.items()}
        if attrs.get("delete") == "delete":
            return Op.DELETE
        if "operation" in attrs:
            try:
                return Op(attrs["operation"])
            except ValueError:
                return inherited
        if self.honor_replace and attrs.get("replace") == "replace":
            return Op.REPLACE
        return inherited

    def clean(self, element: Element) -> None:
        for name in list(element.attrib):
            if local_name_attr(name) in _OPERATION_ATTRS:
                del element.attrib[name]


_RULES = JunosRules()


def local_name_attr(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _child_text(element: Element, name: str) -> str:
    for item in children(element):
        if item.tag == name:
            return (item.text or "").strip()
    return ""


def statement_words(element: Element, node: SchemaNode) -> list[str]:
    """How element is named in an [edit ...] path: `proposal P`, `ge-0/0/0`, `security`."""
    if node.kind is not Kind.LIST:
        return [node.name]
    words = [] if node.keyword is None else [node.keyword]
    optional = node.choice_keys[1] if node.choice_keys else None
    for key, keyword in zip(node.keys, node.key_keywords, strict=True):
        value = _child_text(element, key)
        if key == optional and not value:
            continue
        if keyword is not None:
            words.append(keyword)
        words.append(quote(value))
    return words


def edit_path(words: list[str]) -> str:
    return "[edit" + "".join(" " + w for w in words) + "]"


_NEEDS_QUOTES = set(' \t\n;{}[]#"\'()$&|<>!')


def quote(value: str) -> str:
    if value and not (_NEEDS_QUOTES & set(value)):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def normalize_loaded(config: Element) -> Element:
    """A namespace-free copy of a loaded <configuration>, checked against the grammar.

    Raises ConfigSyntaxError like the device: unknown statement -> `syntax error` naming it,
    bad value -> `syntax error` or the range message, list entry without its key.
    """
    copy = strip_namespaces(config)
    root = junos_schema()
    _check(copy, root, (), None)
    return copy


# the statements above an element, innermost last: (outer trail, statement, its schema node);
# an error message names them ([edit ...]), so their words are made only for one
Trail = tuple["Trail | None", Element, SchemaNode] | None


def trail_words(trail: Trail) -> tuple[str, ...]:
    out: list[list[str]] = []
    while trail is not None:
        trail, element, node = trail
        out.append(statement_words(element, node))
    return tuple(word for words in reversed(out) for word in words)


def _check(element: Element, node: SchemaNode, path: Path, trail: Trail) -> None:
    for item in children(element):
        name = str(item.tag)
        child = node.child(name)
        if child is None:
            raise ConfigSyntaxError("syntax error", bad_element=name, path=trail_words(trail))
        deleting = bool(item.attrib) and _RULES.operation(item, Op.MERGE) is Op.DELETE
        if node.choice_keys and name == node.choice_keys[1] and not (item.text or "").strip():
            continue
        if child.is_leafy:
            _check_value(item, child, deleting, trail)
            continue
        if (item.text or "").strip():
            raise ConfigSyntaxError("syntax error", bad_element=(item.text or "").strip(),
                                    path=trail_words(trail))
        if child.kind is Kind.LIST:
            if child.choice_keys is not None:
                _fold_choice(item, child, trail)
            for key in child.keys:
                if not _child_text(item, key) and key not in (child.choice_keys or ())[1:]:
                    raise ConfigSyntaxError(f"missing mandatory statement: '{key}'",
                                            bad_element=name, path=trail_words(trail))
        _check(item, child, (*path, name), (trail, item, child))


def _check_value(item: Element, node: SchemaNode, deleting: bool, trail: Trail) -> None:
    if children(item):
        raise ConfigSyntaxError("syntax error", bad_element=local_name(children(item)[0]),
                                path=trail_words(trail))
    value = (item.text or "").strip()
    if node.kind is Kind.EMPTY:
        if value:
            raise ConfigSyntaxError("syntax error", bad_element=value, path=trail_words(trail))
        return
    if not value:
        if deleting:
            return
        raise ConfigSyntaxError(f"missing argument for '{node.name}'",
                                bad_element=node.name, path=trail_words(trail))
    problem = node.constraint.problem(value)
    if problem is not None:
        raise ConfigSyntaxError(problem, bad_element=value, path=(*trail_words(trail), node.name))


def _fold_choice(item: Element, node: SchemaNode, trail: Trail) -> None:
    """Junos' own spelling of a match type (<orlonger/>) as the stored YANG keys."""
    assert node.choice_keys is not None
    ident, value = node.choice_keys
    allowed = node.children[ident].constraint.values
    native = [c for c in children(item) if c.tag in allowed]
    if len(native) > 1 or (native and any(c.tag in (ident, value) for c in children(item))):
        raise ConfigSyntaxError("syntax error", bad_element=str(native[-1].tag),
                                path=trail_words(trail))
    if native:
        chosen = native[0]
        kind, held = etree.Element(ident), etree.Element(value)
        kind.text, held.text = str(chosen.tag), (chosen.text or "").strip() or None
        chosen.addnext(held)
        chosen.addnext(kind)
        item.remove(chosen)
    elif _child_text(item, value):
        raise ConfigSyntaxError("syntax error", bad_element=_child_text(item, value),
                                path=trail_words(trail))
    elif value not in {str(c.tag) for c in children(item)} and _child_text(item, ident):
        item.insert(item.index(_first_child(item, ident)) + 1, etree.Element(value))


def _first_child(element: Element, name: str) -> Element:
    return next(c for c in children(element) if c.tag == name)


def native_choices(config: Element) -> Element:
    """config, changed in place (pass a copy), with match types in Junos' own XML spelling:
    <choice-ident>orlonger</choice-ident><choice-value/> becomes <orlonger/>."""
    for path, node in choice_lists():
        assert node.choice_keys is not None
        ident, value = node.choice_keys
        for item in config.iterfind("/".join(path)):
            kind = _child_text(item, ident)
            if not kind:
                continue
            text = _child_text(item, value)
            position = item.index(_first_child(item, ident))
            for child in [c for c in children(item) if c.tag in (ident, value)]:
                item.remove(child)
            native = etree.Element(kind)
            native.text = text or None
            item.insert(position, native)
    return config


def paths_with_values(config: Element) -> list[tuple[Path, str]]:
    """(path, text) of every leaf; used by checks that look values up."""
    return [(p, (e.text or "").strip()) for p, e in walk(config) if not children(e)]
