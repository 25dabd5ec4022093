"""`show archive config differences` and `incremental-diffs` between configuration trees.

IOS prints a contextual diff: first the lines only the second configuration has (`+`), then
the lines only the first has (`-`), each under the unchanged section headers that lead to it,
with the sign after the line's indentation.
"""

from lab.emulators.iosxe_cli_config import Node

DIFF_HEADER = "!Contextual Config Diffs:"
NO_CHANGES = "!No changes were found"
COMMANDS_HEADER = "!List of Commands:"


def _subtree(node: Node, sign: str, depth: int) -> list[str]:
    lines: list[str] = []
    for child in node.children:
        lines.append(f"{' ' * depth}{sign}{child.line}")
        lines.extend(_subtree(child, sign, depth + 1))
    return lines


def _only_in(mine: Node, other: Node, sign: str, depth: int = 0) -> list[str]:
    lines: list[str] = []
    indent = " " * depth
    for child in mine.children:
        twin = other.find(child.line)
        if twin is None:
            lines.append(f"{indent}{sign}{child.line}")
            lines.extend(_subtree(child, sign, depth + 1))
            continue
        inner = _only_in(child, twin, sign, depth + 1)
        if inner:
            lines.append(f"{indent}{child.line}")
            lines.extend(inner)
    return lines


def _removed(running: Node, merged: Node, depth: int = 0) -> list[str]:
    """`no` commands for what a merge removed (not for settings it only gave a new value)."""
    lines: list[str] = []
    indent = " " * depth
    for child in running.children:
        twin = merged.find(child.line)
        if twin is None:
            if not any(c.key == child.key and c.mode == child.mode for c in merged.children):
                lines.append(f"{indent}no {child.line}")
            continue
        inner = _removed(child, twin, depth + 1)
        if inner:
            lines += [f"{indent}{child.line}", *inner]
    return lines


def _resign(line: str, sign: str, replacement: str) -> str:
    """Swap the sign after the indentation of a diff line (context lines have none)."""
    text = line.lstrip(" ")
    indent = line[:len(line) - len(text)]
    return indent + replacement + text[1:] if text.startswith(sign) else line


def contextual_diff(first: Node, second: Node) -> list[str]:
    changes = _only_in(second, first, "+") + _only_in(first, second, "-")
    return [DIFF_HEADER, *(changes or [NO_CHANGES])]


def incremental_diff(running: Node, merged: Node) -> list[str]:
    """The commands that turn the running configuration into merged, under their headers."""
    added = [_resign(line, "+", "") for line in _only_in(merged, running, "+")]
    removed = _removed(running, merged)
    if not added and not removed:
        return [COMMANDS_HEADER, NO_CHANGES]
    return [COMMANDS_HEADER, *added, *removed, "end"]
