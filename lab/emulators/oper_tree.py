"""Reading committed XML configuration by local names (Junos has none, IOS-XE several).

Elements marked inactive (Junos `inactive="inactive"`) count as absent, as on the device.
"""

import hashlib
from collections.abc import Iterator

from lab.emulators.xmlutil import Element, text_of


def _active(element: Element) -> bool:
    keys = element.keys()
    return not keys or not any(key.rsplit("}", 1)[-1] == "inactive" for key in keys)


def each(element: Element | None, path: str) -> Iterator[Element]:
    """Active descendants along path ("a/b/c", local names), in document order."""
    if element is None:
        return
    head, _, rest = path.partition("/")
    for item in element.iterchildren(f"{{*}}{head}"):  # any namespace or none, matched in C
        if _active(item):
            if rest:
                yield from each(item, rest)
            else:
                yield item


def first(element: Element | None, path: str) -> Element | None:
    return next(each(element, path), None)


def leaf(element: Element | None, path: str) -> str:
    return text_of(first(element, path))


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
