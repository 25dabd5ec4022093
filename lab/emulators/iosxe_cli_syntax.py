"""IOS command templates and the matcher that checks a typed line against them.

A template is a line of tokens: `keyword`, `{alt|ernatives}`, `<arg>` (word, line, ip, mask,
prefix, if, url, num or a range like `<1-65535>`), `[optional group]` and a trailing `+` for
"one or more". Keywords match by unambiguous prefix, like IOS; the canonical words of a match
spell keywords in full and interface names in their long form, which is what the running
configuration stores.
"""

import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

INTERFACE_TYPES = ("GigabitEthernet", "TenGigabitEthernet", "Tunnel", "Loopback",
                   "Port-channel", "Vlan", "BDI", "Null", "VirtualPortGroup")
SPECIAL_FILES = ("running-config", "startup-config")
MAX_U32 = 4294967295
T = TypeVar("T")

_IF_RE = re.compile(r"([A-Za-z][A-Za-z-]*)(\d+(?:/\d+)*(?:\.\d+)?)")
_RANGE_RE = re.compile(r"(\d+)-(\d+)")


@dataclass(frozen=True)
class Kw:
    words: tuple[str, ...]  # one keyword, or the alternatives of {a|b}


@dataclass(frozen=True)
class Arg:
    kind: str
    lo: int = 0
    hi: int = MAX_U32


@dataclass(frozen=True)
class Opt:
    items: tuple["Item", ...]


@dataclass(frozen=True)
class Rep:
    item: "Item"


Item = Kw | Arg | Opt | Rep


@dataclass(frozen=True)
class Word:
    text: str
    column: int


def split_words(line: str) -> tuple[Word, ...]:
    return tuple(Word(m.group(), m.start()) for m in re.finditer(r"\S+", line))


def compile_syntax(syntax: str) -> tuple[Item, ...]:
    """Compile a template string into matcher items."""
    tokens = re.findall(r"\[|\]|\{[^}]*\}\+?|<[^>]*>\+?|[^\s\[\]]+\+?", syntax)
    items, rest = _compile_seq(tokens, 0)
    if rest != len(tokens):
        raise ValueError(f"unbalanced ']' in template {syntax!r}")
    return items


def _compile_seq(tokens: list[str], pos: int) -> tuple[tuple[Item, ...], int]:
    items: list[Item] = []
    while pos < len(tokens) and tokens[pos] != "]":
        token = tokens[pos]
        if token == "[":
            inner, pos = _compile_seq(tokens, pos + 1)
            if pos >= len(tokens):
                raise ValueError("unbalanced '[' in template")
            items.append(Opt(inner))
            pos += 1
            continue
        repeat = token.endswith("+") and len(token) > 1
        item = _compile_atom(token[:-1] if repeat else token)
        items.append(Rep(item) if repeat else item)
        pos += 1
    return tuple(items), pos


def _compile_atom(token: str) -> Item:
    if token.startswith("{"):
        choices = tuple(token[1:-1].split("|"))
        if any(not re.fullmatch(r"[^\s<>\[\]{}|]+", choice) for choice in choices):
            raise ValueError(f"alternatives must be keywords: {token}")
        return Kw(choices)
    if token.startswith("<"):
        kind = token[1:-1]
        bounds = _RANGE_RE.fullmatch(kind)
        if bounds:
            return Arg("num", int(bounds.group(1)), int(bounds.group(2)))
        return Arg(kind)
    return Kw((token,))


def interface_name(text: str) -> str | None:
    """The long form of an interface name (`gi1` -> `GigabitEthernet1`), None if not one."""
    match = _IF_RE.fullmatch(text)
    if not match:
        return None
    kind = interface_type(match.group(1))
    return None if kind is None else kind + match.group(2)


def interface_type(prefix: str) -> str | None:
    low = prefix.lower()
    exact = [t for t in INTERFACE_TYPES if t.lower() == low]
    found = exact or [t for t in INTERFACE_TYPES if t.lower().startswith(low)]
    return found[0] if len(found) == 1 else None


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _is_prefix(text: str) -> bool:
    address, slash, length = text.partition("/")
    return bool(slash) and _is_ipv4(address) and length.isdigit() and int(length) <= 32


def _url(text: str) -> str | None:
    low = text.lower()
    for name in SPECIAL_FILES:
        if len(low) >= 3 and name.startswith(low):
            return name
    return text if ":" in text else None


def _single_arg(arg: Arg, text: str) -> str | None:
    """The canonical form of text as a one-word argument of this kind, None if invalid."""
    match arg.kind:
        case "word":
            return text
        case "ip" | "mask":
            return text if _is_ipv4(text) else None
        case "prefix":
            return text if _is_prefix(text) else None
        case "num":
            return str(int(text)) if text.isdigit() and arg.lo <= int(text) <= arg.hi else None
        case "url":
            return _url(text)
        case "if":
            return interface_name(text)
        case "hex":
            return text if re.fullmatch(r"[0-9a-fA-F]+", text) else None
    raise ValueError(f"unknown argument kind <{arg.kind}>")


@dataclass
class _Search:
    """What one template match learned about the input beyond its full matches."""

    words: tuple[Word, ...]
    line: str
    furthest: int = 0  # index of the first word no path could accept
    ran_out: bool = False  # some path consumed every word but needed more
    partial: tuple[str, ...] | None = None  # canonical words of the longest such path
    ambiguous: bool = False

    def fail(self, pos: int) -> None:
        self.furthest = max(self.furthest, pos)
        if pos >= len(self.words):
            self.ran_out = True


Path = tuple[str, ...]


def _match_items(items: Sequence[Item], k: int, pos: int, acc: Path,
                 search: _Search) -> Iterator[tuple[int, Path]]:
    if k == len(items):
        yield pos, acc
        return
    for next_pos, next_acc in _match_item(items[k], pos, acc, search):
        yield from _match_items(items, k + 1, next_pos, next_acc, search)


def _match_item(item: Item, pos: int, acc: Path, search: _Search) -> Iterator[tuple[int, Path]]:
    words = search.words
    if pos >= len(words) and not isinstance(item, Opt):
        search.fail(pos)
        if search.partial is None or len(acc) > len(search.partial):
            search.partial = acc
        return
    match item:
        case Opt(items):
            yield from _match_items(items, 0, pos, acc, search)
            yield pos, acc
        case Rep(inner):
            for next_pos, next_acc in _match_item(inner, pos, acc, search):
                if next_pos < len(words):
                    yield from _match_item(item, next_pos, next_acc, search)
                yield next_pos, next_acc
        case Kw(choices):
            typed = words[pos].text.lower()
            exact = [c for c in choices if c.lower() == typed]
            found = exact or [c for c in choices if c.lower().startswith(typed)]
            if len(found) == 1:
                yield pos + 1, (*acc, found[0])
            else:
                search.ambiguous = search.ambiguous or len(found) > 1
                search.fail(pos)
        case Arg(kind="line"):
            yield len(words), (*acc, search.line[words[pos].column:].rstrip())
        case Arg(kind="if") if pos + 1 < len(words) and interface_type(words[pos].text):
            joined = interface_name(words[pos].text + words[pos + 1].text)
            single = interface_name(words[pos].text)
            if single is not None:
                yield pos + 1, (*acc, single)
            if joined is not None:
                yield pos + 2, (*acc, joined)
            if single is None and joined is None:
                search.fail(pos)
        case Arg():
            value = _single_arg(item, words[pos].text)
            if value is None:
                search.fail(pos)
            else:
                yield pos + 1, (*acc, value)


@dataclass(frozen=True)
class Outcome:
    """A template checked against a line: the canonical words when it matched in full."""

    words: Path | None
    furthest: int
    ran_out: bool
    partial: Path | None
    ambiguous: bool


def match(items: Sequence[Item], words: tuple[Word, ...], line: str) -> Outcome:
    search = _Search(words, line)
    for pos, acc in _match_items(items, 0, 0, (), search):
        if pos == len(words):
            return Outcome(acc, len(words), False, acc, False)
        search.fail(pos)
    return Outcome(None, search.furthest, search.ran_out, search.partial, search.ambiguous)


@dataclass(frozen=True)
class Template:
    syntax: str
    items: tuple[Item, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", compile_syntax(self.syntax))

    @property
    def first(self) -> tuple[str, ...]:
        head = self.items[0] if self.items else None
        return head.words if isinstance(head, Kw) else ()

    @property
    def leading_keywords(self) -> int:
        count = 0
        for item in self.items:
            if not (isinstance(item, Kw) and len(item.words) == 1):
                break
            count += 1
        return count


@dataclass(frozen=True)
class ParseError:
    kind: str  # "invalid" | "incomplete" | "ambiguous"
    column: int


@dataclass(frozen=True)
class Parsed(Generic[T]):
    entry: T
    words: Path
    complete: bool  # False: a `no` form that gave only the leading words


def resolve(entries: Sequence[T], template: Callable[[T], Template], line: str, *,
               partial_min: Callable[[T], int] | None = None) -> Parsed[T] | ParseError | None:
    """The first entry whose template matches line in full (None for an empty line).

    With partial_min, an entry whose template matched at least that many leading words and
    then ran out of input also counts (the `no` forms of IOS take only the leading words).
    """
    words = split_words(line)
    if not words:
        return None
    typed = words[0].text.lower()
    firsts = {kw for e in entries for kw in template(e).first if kw.lower().startswith(typed)}
    if len(firsts) > 1 and typed not in {kw.lower() for kw in firsts}:
        return ParseError("ambiguous", words[0].column)
    outcomes = [(entry, match(template(entry).items, words, line)) for entry in entries]
    for entry, outcome in outcomes:
        if outcome.words is not None:
            return Parsed(entry, outcome.words, True)
    if partial_min is not None:
        partials = [(len(o.partial), i) for i, (e, o) in enumerate(outcomes)
                    if o.partial is not None and len(o.partial) >= partial_min(e)]
        if partials:
            best = outcomes[max(partials, key=lambda p: (p[0], -p[1]))[1]]
            return Parsed(best[0], best[1].partial or (), False)
    if any(o.ran_out for _, o in outcomes):
        return ParseError("incomplete", len(line))
    furthest = max((o.furthest for _, o in outcomes), default=0)
    if any(o.ambiguous and o.furthest == furthest for _, o in outcomes):
        return ParseError("ambiguous", words[min(furthest, len(words) - 1)].column)
    column = words[furthest].column if furthest < len(words) else len(line)
    return ParseError("invalid", column)
