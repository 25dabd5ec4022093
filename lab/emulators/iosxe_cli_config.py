"""The IOS-XE configuration as a tree of lines, and the editor that applies CLI lines to it.

A node is one configuration line; a section header (interface, router bgp, crypto ... ) holds
its sub-mode's lines as children, which the text form indents by one space per level. The
editor follows IOS's mode rules: a line is tried in the current mode and then in each parent
mode (leaving the sub-mode when a parent accepts it), `exit` leaves one level, `end` leaves
configuration mode, `no` removes what the command set (or stores the `no` line for the few
commands whose negation the running configuration shows).
"""

from dataclasses import dataclass, field

from lab.emulators.iosxe_cli_commands import MODES, ConfigCmd
from lab.emulators.iosxe_cli_syntax import Parsed, ParseError, resolve, split_words

ROOT_MODE = "config"


@dataclass
class Node:
    line: str
    mode: str | None = None  # the sub-mode a section header opens; None for a plain line
    rank: int = 0
    key: tuple[str, ...] = ()
    children: list["Node"] = field(default_factory=list)

    def copy(self) -> "Node":
        return Node(self.line, self.mode, self.rank, self.key, [c.copy() for c in self.children])

    def find(self, line: str) -> "Node | None":
        return next((c for c in self.children if c.line == line), None)

    def same(self, other: "Node") -> bool:
        return (self.line == other.line and len(self.children) == len(other.children)
                and all(a.same(b) for a, b in zip(self.children, other.children, strict=True)))

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self.line.split())


def empty_config() -> Node:
    return Node("", ROOT_MODE)


def _key(cmd: ConfigCmd, words: tuple[str, ...]) -> tuple[str, ...]:
    if not cmd.key:
        return words
    return tuple(words[i] for i in cmd.key if i < len(words))


def _insert(parent: Node, node: Node) -> None:
    """After the last sibling of the same or an earlier rank (IOS shows lines in rank order)."""
    index = 0
    for i in range(len(parent.children) - 1, -1, -1):
        if parent.children[i].rank <= node.rank:
            index = i + 1
            break
    parent.children.insert(index, node)


def set_line(parent: Node, rank: int, cmd: ConfigCmd, words: tuple[str, ...]) -> Node:
    """Add or replace the setting; a section header returns its (new or existing) node."""
    line = " ".join(words)
    key = _key(cmd, words)
    for index, child in enumerate(() if cmd.append else parent.children):
        if child.key == key and child.mode == cmd.enters:
            if cmd.enters is None:
                parent.children[index] = Node(line, None, rank, key)
                return parent.children[index]
            child.line = line
            return child
    node = Node(line, cmd.enters, rank, key)
    _insert(parent, node)
    return node


def _starts(node: Node, prefix: tuple[str, ...]) -> bool:
    return node.words[:len(prefix)] == prefix


def _remove_tree(node: Node, prefix: tuple[str, ...]) -> None:
    node.children = [c for c in node.children if not _starts(c, prefix)]
    for child in node.children:
        _remove_tree(child, prefix)


def no_line(parent: Node, rank: int, cmd: ConfigCmd, words: tuple[str, ...],
            complete: bool) -> None:
    """Apply `no <words>`: remove the setting, or store the negation where IOS shows it."""
    if cmd.stored_no:
        key = _key(cmd, words) if complete else words
        for index, child in enumerate(parent.children):
            if child.key == key and child.mode is None:
                del parent.children[index]
                break
        _insert(parent, Node("no " + " ".join(key), None, rank, key))
        return
    if cmd.no_scope:
        _remove_tree(parent, words[:cmd.no_scope])
        return
    if complete:
        setting = _key(cmd, words)
        parent.children = [c for c in parent.children if c.key != setting]
    else:
        parent.children = [c for c in parent.children if not _starts(c, words)]


@dataclass(frozen=True)
class LineError:
    kind: str  # "invalid" | "incomplete" | "ambiguous"
    column: int


class ConfigEditor:
    """Configuration mode of one CLI session (or of a file being applied)."""

    def __init__(self, root: Node) -> None:
        self.root = root
        self.stack: list[Node] = [root]

    @property
    def mode(self) -> str:
        self._reattach()
        return self.stack[-1].mode or ROOT_MODE

    def _reattach(self) -> None:
        """Leave sub-modes whose section another session or a revert removed meanwhile."""
        for depth in range(1, len(self.stack)):
            if not any(c is self.stack[depth] for c in self.stack[depth - 1].children):
                del self.stack[depth:]
                return

    def apply(self, line: str) -> str | LineError | None:
        """Apply one line; "end" or "exit" when it leaves configuration mode."""
        self._reattach()
        words = split_words(line)
        if not words or words[0].text.startswith("!"):
            return None
        first = words[0].text.lower()
        if first == "end" and len(words) == 1:
            return "end"
        if len(words) == 1 and (first == "exit" or first in MODES[self.mode].exits):
            if len(self.stack) == 1:
                return "exit"
            self.stack.pop()
            return None
        negate = first == "no" and len(words) > 1
        body = " " * words[1].column + line[words[1].column:] if negate else line
        errors: list[ParseError] = []
        for depth in range(len(self.stack) - 1, -1, -1):
            node = self.stack[depth]
            entries = MODES[node.mode or ROOT_MODE].commands()
            parsed = resolve(entries, lambda e: e[1].template, body,
                             partial_min=(lambda e: e[1].no_words()) if negate else None)
            if isinstance(parsed, Parsed):
                del self.stack[depth + 1:]
                self._apply(node, parsed, negate)
                return None
            if parsed is not None:
                errors.append(parsed)
        best = max(errors, key=lambda e: (e.kind == "incomplete", e.column, e.kind == "ambiguous"))
        return LineError(best.kind, best.column)

    def _apply(self, node: Node, parsed: Parsed[tuple[int, ConfigCmd]], negate: bool) -> None:
        rank, cmd = parsed.entry
        if negate:
            no_line(node, rank, cmd, parsed.words, parsed.complete)
            return
        child = set_line(node, rank, cmd, parsed.words)
        if cmd.enters is not None:
            self.stack.append(child)


@dataclass(frozen=True)
class FileError:
    number: int  # 1-based line number in the file
    line: str
    error: LineError


def apply_text(root: Node, text: str) -> list[FileError]:
    """Apply a configuration file line by line (as `copy <file> running-config` does)."""
    editor = ConfigEditor(root)
    errors: list[FileError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        result = editor.apply(line.rstrip("\r"))
        if result == "end":
            break
        if result == "exit":
            editor = ConfigEditor(root)
        elif isinstance(result, LineError):
            errors.append(FileError(number, line.rstrip("\r"), result))
    return errors


def parse_text(text: str) -> tuple[Node, list[FileError]]:
    root = empty_config()
    return root, apply_text(root, text)


def render(root: Node) -> list[str]:
    """The lines of the running configuration (without the header and `end`)."""
    out: list[str] = []
    _render(root, 0, out)
    return out


def _render(node: Node, depth: int, out: list[str]) -> None:
    indent = " " * depth
    previous: int | None = None
    for child in node.children:
        spec = MODES[child.mode] if child.mode else None
        if depth == 0 and (spec is not None or previous not in (None, child.rank)):
            if out and out[-1] != "!":
                out.append("!")
        elif spec is not None and spec.bang == "before":
            out.append(indent + "!")
        out.append(indent + child.line)
        if spec is not None:
            _render(child, depth + 1, out)
            if spec.closing:
                out.append(indent + spec.closing)
            if depth == 0:
                out.append("!")
            elif spec.bang == "after":
                out.append(indent + "!")
        previous = child.rank


def walk(node: Node, depth: int = 0) -> list[tuple[int, Node]]:
    """Every node under node with its depth, in configuration order."""
    found: list[tuple[int, Node]] = []
    for child in node.children:
        found.append((depth, child))
        found.extend(walk(child, depth + 1))
    return found
