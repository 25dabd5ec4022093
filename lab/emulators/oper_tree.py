"""Reading committed XML configuration by local names (Junos has none, IOS-XE several).

Elements marked inactive (Junos `inactive="inactive"`) count as absent, as on the device.
"""

import hashlib
from collections.abc import Iterator
from functools import cache

from lab.emulators.xmlutil import Element, children, local_name, text_of


def _active(element: Element) -> bool:
    keys = element.keys()
    return not keys or not any(key.rsplit("}", 1)[-1] == "inactive" for key in keys)


@cache
def _steps(path: str) -> tuple[str, ...]:
    """lxml tag patterns of a path's names: any namespace or none, matched in C."""
    return tuple(f"{{*}}{name}" for name in path.split("/"))


def _collect(element: Element, steps: tuple[str, ...], depth: int, out: list[Element]) -> None:
    last = depth == len(steps) - 1
    for item in element.iterchildren(steps[depth]):
        if _active(item):
            if last:
                out.append(item)
            else:
                _collect(item, steps, depth + 1, out)


def _first(element: Element, steps: tuple[str, ...], depth: int) -> Element | None:
    last = depth == len(steps) - 1
    for item in element.iterchildren(steps[depth]):
        if _active(item):
            found = item if last else _first(item, steps, depth + 1)
            if found is not None:
                return found
    return None


def each(element: Element | None, path: str) -> Iterator[Element]:
    """Active descendants along path ("a/b/c", local names), in document order."""
    if element is None:
        return iter(())
    out: list[Element] = []
    _collect(element, _steps(path), 0, out)
    return iter(out)


def first(element: Element | None, path: str) -> Element | None:
    """The first of each(element, path), found without listing the others."""
    return None if element is None else _first(element, _steps(path), 0)


def leaf(element: Element | None, path: str) -> str:
    return text_of(first(element, path))


def leaf_texts(element: Element) -> dict[str, str]:
    """leaf(element, name) of every child name, read in one pass (list entries with several
    leaves, hundreds of them in a prefix list)."""
    out: dict[str, str] = {}
    for item in children(element):
        if _active(item):
            out.setdefault(local_name(item), text_of(item))
    return out


def leaves(element: Element | None, path: str) -> list[str]:
    return [text_of(item) for item in each(element, path)]


def has(element: Element | None, path: str) -> bool:
    return first(element, path) is not None


def by_name(element: Element | None, path: str, key: str = "name") -> dict[str, Element]:
    """List entries along path keyed by their key leaf (the first entry of a name wins)."""
    out: dict[str, Element] = {}
    for item in each(element, path):
        out.setdefault(leaf(item, key), item)
    return out


def secret_digest(value: str) -> str | None:
    """What the oper model keeps of a pre-shared key: a digest, never the key."""
    return hashlib.sha256(value.encode()).hexdigest() if value else None


def number(text: str, default: int | None = None) -> int | None:
    digits = text.strip()
    return int(digits) if digits.isdigit() else default


def count(text: str, default: int) -> int:
    value = number(text)
    return default if value is None else value


def first_of(items: list[Element]) -> Element | None:
    return items[0] if items else None
