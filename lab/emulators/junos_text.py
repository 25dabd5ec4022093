"""Parsing Junos configuration text: the curly-brace format and `set` commands.

Parsing walks the grammar table (junos_schema), so `interfaces st0 unit 0 family inet address
X` and `interfaces { st0 { unit 0 { family { inet { address X; } } } } }` give the same XML
as <configuration><interfaces><interface><name>st0</name>... would.
"""

from dataclasses import dataclass, field

from lxml import etree

from lab.emulators.config_tree import Path, find_match, insert_ordered
from lab.emulators.errors import ConfigSyntaxError
from lab.emulators.junos_config import JunosRules, statement_words
from lab.emulators.junos_schema import Kind, SchemaNode, junos_schema
from lab.emulators.xmlutil import Element, children

_PUNCT = "{};[]"
_TAGS = {"replace:": "replace", "delete:": "delete"}
_UNSUPPORTED_TAGS = ("inactive:", "active:", "protect:", "unprotect:")
_RULES = JunosRules()


@dataclass(frozen=True)
class Token:
    value: str
    line: int
    quoted: bool = False

    @property
    def punct(self) -> str | None:
        return self.value if not self.quoted and self.value in _PUNCT else None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ConfigSyntaxError("syntax error: unterminated comment", line=line)
            line += text.count("\n", i, end)
            i = end + 2
        elif c == '"':
            value, i, line = _string(text, i, line)
            tokens.append(Token(value, line, quoted=True))
        elif c in _PUNCT:
            tokens.append(Token(c, line))
            i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _PUNCT + '"':
                i += 1
            tokens.append(Token(text[start:i], line))
    return tokens


def _string(text: str, i: int, line: int) -> tuple[str, int, int]:
    out: list[str] = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1, line
        line += c == "\n"
        out.append(c)
        i += 1
    raise ConfigSyntaxError("syntax error: unterminated string", line=line)


# --- curly-brace text -> XML ------------------------------------------------------------

def parse_text(text: str) -> Element:
    """A <configuration> tree; `replace:`/`delete:` tags become replace/delete attributes."""
    parser = _TextParser(tokenize(text))
    root = etree.Element("configuration")
    parser.block(root, junos_schema(), (), [], top=True)
    return root


@dataclass
class _TextParser:
    tokens: list[Token]
    pos: int = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, words: list[str]) -> Token:
        token = self.peek()
        if token is None:
            raise ConfigSyntaxError("syntax error: unexpected end of input", path=tuple(words))
        self.pos += 1
        return token

    def expect(self, punct: str, words: list[str]) -> None:
        token = self.take(words)
        if token.punct != punct:
            raise ConfigSyntaxError(f"syntax error, expecting '{punct}'",
                                    bad_element=token.value, path=tuple(words), line=token.line)

    def value(self, words: list[str]) -> str:
        token = self.take(words)
        if token.punct is not None:
            raise ConfigSyntaxError("syntax error", bad_element=token.value, path=tuple(words),
                                    line=token.line)
        return token.value

    def block(self, parent: Element, node: SchemaNode, path: Path, words: list[str],
              *, top: bool = False) -> None:
        while (token := self.peek()) is not None:
            if token.punct == "}":
                if top:
                    raise ConfigSyntaxError("syntax error", bad_element="}", line=token.line)
                self.pos += 1
                return
            self.statement(parent, node, path, words)
        if not top:
            raise ConfigSyntaxError("syntax error, expecting '}'", path=tuple(words))

    def statement(self, parent: Element, node: SchemaNode, path: Path,
                  words: list[str]) -> None:
        token = self.take(words)
        tag: str | None = None
        if not token.quoted and token.value in _UNSUPPORTED_TAGS:
            raise ConfigSyntaxError(f"{token.value} tag is not supported by the emulator",
                                    bad_element=token.value, path=tuple(words), line=token.line)
        if not token.quoted and token.value in _TAGS:
            tag = _TAGS[token.value]
            token = self.take(words)
        if token.punct is not None:
            raise ConfigSyntaxError("syntax error", bad_element=token.value, path=tuple(words),
                                    line=token.line)
        child = node.by_keyword(token.value)
        if child is None:
            implicit = node.implicit_list()
            if implicit is None:
                raise ConfigSyntaxError("syntax error", bad_element=token.value,
                                        path=tuple(words), line=token.line)
            self.list_entry(parent, implicit, path, words, token.value, tag)
        elif child.kind is Kind.LIST:
            nxt = self.peek()
            if child.grouped and nxt is not None and nxt.punct == "{":
                self.pos += 1
                while (entry := self.peek()) is not None and entry.punct != "}":
                    self.list_entry(parent, child, path, words, self.value(words), tag)
                self.expect("}", words)
            else:
                self.list_entry(parent, child, path, words, self.value(words), tag)
        elif child.kind is Kind.CONTAINER:
            self.container(parent, child, path, words, tag)
        else:
            self.leafy(parent, child, path, words, tag)

    def list_entry(self, parent: Element, node: SchemaNode, path: Path, words: list[str],
                   first_key: str, tag: str | None) -> None:
        entry = etree.Element(node.name)
        key_values = [first_key]
        for key, keyword in zip(node.keys[1:], node.key_keywords[1:], strict=True):
            if key == _choice_value(node):
                key_values.append("")
                continue
            if keyword is not None:
                word = self.value(words)
                if word != keyword:
                    raise ConfigSyntaxError("syntax error", bad_element=word,
                                            path=tuple(words))
            key_values.append(self.value(words))
        for key, value in zip(node.keys, key_values, strict=True):
            _check_value(node.children[key], value, words)
            etree.SubElement(entry, key).text = value
        _tag(entry, tag)
        parent.append(entry)
        entry_path = (*path, node.name)
        entry_words = [*words, *statement_words(entry, node)]
        token = self.take(words)
        if token.punct == "{":
            self.block(entry, node, entry_path, entry_words)
        elif token.punct != ";":
            raise ConfigSyntaxError("syntax error", bad_element=token.value,
                                    path=tuple(entry_words), line=token.line)

    def container(self, parent: Element, node: SchemaNode, path: Path, words: list[str],
                  tag: str | None) -> None:
        element = etree.SubElement(parent, node.name)
        _tag(element, tag)
        token = self.take(words)
        inner = [*words, node.name]
        if token.punct == "{":
            self.block(element, node, (*path, node.name), inner)
        elif token.punct == ";":
            return
        elif node.positional is not None:
            inline = [token]
            while (more := self.take(inner)).punct != ";":
                inline.append(more)
            frame = _Frame(element, node, (*path, node.name), inner)
            if node.by_keyword(token.value) is None:
                leaf = node.children[node.positional]
                _check_value(leaf, token.value, inner)
                etree.SubElement(element, leaf.name).text = token.value
                inline = inline[1:]
            if inline:
                _Walker(create=True).run(inline, [frame])
        elif token.punct is None:
            self.pos -= 1
            self.statement(element, node, (*path, node.name), inner)
        else:
            raise ConfigSyntaxError("syntax error", bad_element=token.value,
                                    path=tuple(inner), line=token.line)

    def leafy(self, parent: Element, node: SchemaNode, path: Path, words: list[str],
              tag: str | None) -> None:
        values: list[str] = []
        token = self.take(words)
        if token.punct == "[" and node.kind is Kind.LEAF_LIST:
            while (item := self.take(words)).punct != "]":
                values.append(item.value)
            self.expect(";", words)
        elif token.punct == ";":
            if node.kind is not Kind.EMPTY and tag != "delete":
                raise ConfigSyntaxError(f"missing argument for '{node.name}'",
                                        bad_element=node.name, path=tuple(words),
                                        line=token.line)
        elif node.kind is Kind.EMPTY:
            raise ConfigSyntaxError("syntax error", bad_element=token.value, path=tuple(words),
                                    line=token.line)
        else:
            values.append(token.value)
            self.expect(";", words)
        for value in values or [""]:
            if value:
                _check_value(node, value, words)
            element = etree.SubElement(parent, node.name)
            element.text = value or None
            _tag(element, tag)


def _tag(element: Element, tag: str | None) -> None:
    if tag is not None:
        element.set(tag, tag)


def _choice_value(node: SchemaNode) -> str | None:
    """The key holding a match type's value: never written for exact/longer/orlonger."""
    return node.choice_keys[1] if node.choice_keys is not None else None


def _check_value(node: SchemaNode, value: str, words: list[str]) -> None:
    problem = node.constraint.problem(value)
    if problem is not None:
        raise ConfigSyntaxError(problem, bad_element=value, path=(*words, node.name))


# --- set commands -----------------------------------------------------------------------

@dataclass
class _Frame:
    element: Element
    node: SchemaNode
    path: Path
    words: list[str]


@dataclass
class _Target:
    parent: _Frame
    node: SchemaNode
    element: Element | None
    values: list[str] = field(default_factory=list)


class StatementNotFoundError(ConfigSyntaxError):
    """A delete of something that is not in the configuration (a warning on the device)."""


@dataclass
class _Walker:
    """Follows set/delete words through the grammar, creating nodes when create is True."""

    create: bool

    def run(self, tokens: list[Token], frames: list[_Frame]) -> _Target | None:
        floor = len(frames) - 1
        target: _Target | None = None
        i = 0
        while i < len(tokens):
            token = tokens[i]
            depth, child = self._resolve(token, frames, floor)
            frames = frames[:depth + 1]
            frame = frames[-1]
            if child.kind is Kind.LIST:
                is_implicit = frame.node.by_keyword(token.value) is None
                i, entry = self._list_entry(tokens, i if is_implicit else i + 1, frame, child)
                frames.append(entry)
                floor = len(frames) - 1
                target = _Target(frame, child, entry.element)
            elif child.kind is Kind.CONTAINER:
                element = self._get(frame, child, [])
                inner = _Frame(element, child, (*frame.path, child.name),
                               [*frame.words, child.name]) if element is not None else None
                target = _Target(frame, child, element)
                i += 1
                nxt = tokens[i] if i < len(tokens) else None
                if inner is None:
                    raise StatementNotFoundError("statement not found", path=tuple(frame.words))
                frames.append(inner)
                if (child.positional is not None and nxt is not None and nxt.punct is None
                        and child.by_keyword(nxt.value) is None):
                    leaf = child.children[child.positional]
                    _check_value(leaf, nxt.value, inner.words)
                    if self.create:
                        self._set_leaf(inner, leaf, nxt.value)
                    target = _Target(inner, leaf, self._get(inner, leaf, []), [nxt.value])
                    i += 1
                else:
                    floor = len(frames) - 1
            else:
                i, target = self._leafy(tokens, i + 1, frame, child)
        return target

    def _resolve(self, token: Token, frames: list[_Frame],
                 floor: int) -> tuple[int, SchemaNode]:
        if token.punct is None:
            for depth in range(len(frames) - 1, floor - 1, -1):
                node = frames[depth].node
                child = node.by_keyword(token.value) or node.implicit_list()
                if child is not None:
                    return depth, child
        raise ConfigSyntaxError("syntax error", bad_element=token.value,
                                path=tuple(frames[-1].words), line=token.line)

    def _list_entry(self, tokens: list[Token], i: int, frame: _Frame,
                    node: SchemaNode) -> tuple[int, _Frame]:
        values: list[str] = []
        for n, keyword in enumerate(node.key_keywords):
            if node.keys[n] == _choice_value(node):
                values.append("")
                continue
            if keyword is not None and n > 0:
                if i >= len(tokens) or tokens[i].value != keyword:
                    bad = tokens[i].value if i < len(tokens) else keyword
                    raise ConfigSyntaxError("syntax error", bad_element=bad,
                                            path=tuple(frame.words))
                i += 1
            if i >= len(tokens) or tokens[i].punct is not None:
                raise ConfigSyntaxError(f"missing argument for '{node.keyword or node.name}'",
                                        path=tuple(frame.words))
            _check_value(node.children[node.keys[n]], tokens[i].value, frame.words)
            values.append(tokens[i].value)
            i += 1
        probe = etree.Element(node.name)
        for key, value in zip(node.keys, values, strict=True):
            etree.SubElement(probe, key).text = value
        path = (*frame.path, node.name)
        element = find_match(frame.element, path, probe, _RULES)
        if element is None:
            if not self.create:
                raise StatementNotFoundError("statement not found", path=tuple(frame.words))
            element = probe
            insert_ordered(frame.element, element, frame.path, _RULES)
        return i, _Frame(element, node, path, [*frame.words, *statement_words(element, node)])

    def _get(self, frame: _Frame, node: SchemaNode, values: list[str]) -> Element | None:
        """The existing child (first one, or the one with this leaf-list value), or a new one."""
        for item in children(frame.element):
            if item.tag == node.name and (not values or (item.text or "") == values[0]):
                return item
        if not self.create:
            return None
        element = etree.Element(node.name)
        if values:
            element.text = values[0]
        insert_ordered(frame.element, element, frame.path, _RULES)
        return element

    def _set_leaf(self, frame: _Frame, node: SchemaNode, value: str) -> None:
        element = self._get(frame, node, [])
        if element is not None:
            element.text = value

    def _leafy(self, tokens: list[Token], i: int, frame: _Frame,
               node: SchemaNode) -> tuple[int, _Target]:
        values: list[str] = []
        if node.kind is Kind.LEAF_LIST and i < len(tokens) and tokens[i].punct == "[":
            i += 1
            while i < len(tokens) and tokens[i].punct != "]":
                values.append(tokens[i].value)
                i += 1
            i += 1
        elif node.kind is not Kind.EMPTY and i < len(tokens) and tokens[i].punct is None:
            values.append(tokens[i].value)
            i += 1
        if node.kind is not Kind.EMPTY and not values and self.create:
            raise ConfigSyntaxError(f"missing argument for '{node.name}'",
                                    bad_element=node.name, path=tuple(frame.words))
        for value in values:
            _check_value(node, value, frame.words)
        if not self.create:
            return i, _Target(frame, node, None, values)
        if node.kind is Kind.LEAF:
            self._set_leaf(frame, node, values[0])
        elif node.kind is Kind.EMPTY:
            self._get(frame, node, [])
        else:
            for value in values:
                self._get(frame, node, [value])
        return i, _Target(frame, node, None, values)


def apply_set_commands(config: Element, text: str) -> list[str]:
    """Apply set/delete/edit/top/up lines to config in place; returns warning messages.

    Raises ConfigSyntaxError (with the line number) for anything the device would reject.
    """
    warnings: list[str] = []
    edit_prefix: list[list[Token]] = []
    root = _Frame(config, junos_schema(), (), [])
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens = tokenize(raw)
        if not tokens:
            continue
        verb, rest = tokens[0].value, [Token(t.value, number, t.quoted) for t in tokens[1:]]
        try:
            if verb == "set":
                _Walker(create=True).run(_flat(edit_prefix) + rest, [root])
            elif verb == "delete":
                if not _delete(root, _flat(edit_prefix) + rest):
                    warnings.append("statement not found")
            elif verb == "edit":
                _Walker(create=True).run(_flat(edit_prefix) + rest, [_scratch()])
                edit_prefix.append(rest)
            elif verb == "top":
                edit_prefix.clear()
            elif verb in ("up", "exit"):
                if edit_prefix:
                    edit_prefix.pop()
            else:
                raise ConfigSyntaxError("syntax error", bad_element=verb, line=number)
        except StatementNotFoundError:
            warnings.append("statement not found")
        except ConfigSyntaxError as exc:
            exc.line = number
            raise
    return warnings


def _scratch() -> _Frame:
    return _Frame(etree.Element("configuration"), junos_schema(), (), [])


def _flat(groups: list[list[Token]]) -> list[Token]:
    return [t for group in groups for t in group]


def _delete(root: _Frame, tokens: list[Token]) -> bool:
    """Remove what tokens name; False when it is not there."""
    if not tokens:
        for item in children(root.element):
            root.element.remove(item)
        return True
    target = _Walker(create=False).run(tokens, [root])
    if target is None:
        return False
    parent = target.parent.element
    if target.node.kind in (Kind.LIST, Kind.CONTAINER):
        if target.element is None:
            return False
        owner = target.element.getparent()
        if owner is not None:
            owner.remove(target.element)
        return True
    if target.node.name in target.parent.node.keys:
        return False
    matches = [c for c in children(parent) if c.tag == target.node.name
               and (not target.values or (c.text or "") in target.values)]
    for item in matches:
        parent.remove(item)
    return bool(matches)
