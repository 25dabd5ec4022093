"""Semantic IPsec/BGP diff between two intents of the same gateways, and masked text diffs.

Pure functions: inputs are intent dicts (tasks.intent) and file texts; outputs are change
records a report can print as text, JSON or Markdown.
"""

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tasks.render_context import SECRET_PREFIX

LABELS = {
    ("crypto", "ike"): "IKE",
    ("crypto", "esp"): "ESP",
    ("crypto", "dpd"): "DPD",
    ("auth",): "auth",
    ("bgp",): "BGP",
    ("bgp", "bfd"): "BFD",
    ("bgp", "timers"): "BGP timers",
}


@dataclass(frozen=True, slots=True)
class Change:
    gateway: str
    scope: str  # "gateway", "tunnel <name>", "neighbor <address>"
    text: str  # e.g. "ESP lifetime 1h -> 30m"

    def as_dict(self) -> dict[str, str]:
        return {"gateway": self.gateway, "scope": self.scope, "change": self.text}


def _show(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(empty)"
    return str(value)


def _walk(old: Mapping[str, Any], new: Mapping[str, Any], path: tuple[str, ...]
          ) -> Iterator[str]:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            yield from _walk(a, b, (*path, key))
            continue
        label = LABELS.get(path, " ".join(path))
        name = key.replace("_", " ")
        yield f"{label} {name} {_show(a)} -> {_show(b)}".strip()


def _keyed(old: Mapping[str, Any], new: Mapping[str, Any], what: str
           ) -> Iterator[tuple[str, str]]:
    """Added / removed / changed entries of a name -> fields mapping."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a is None and b is not None:
            yield key, f"new {what}"
        elif b is None and a is not None:
            yield key, f"{what} removed"
        elif a != b and a is not None and b is not None:
            for line in _walk(a, b, ()):
                yield key, line


def _prefix_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[str]:
    for kind in ("announce", "accept"):
        a, b = set(old.get(kind, ())), set(new.get(kind, ()))
        for p in sorted(b - a):
            yield f"{kind}s {p} (new)"
        for p in sorted(a - b):
            yield f"no longer {kind}s {p}"


def gateway_changes(gateway: str, old: Mapping[str, Any] | None,
                    new: Mapping[str, Any] | None) -> list[Change]:
    if old is None and new is None:
        return []
    if old is None:
        return [Change(gateway, "gateway", "new gateway")]
    if new is None:
        return [Change(gateway, "gateway", "gateway removed from the model")]
    out: list[Change] = []
    for section in ("crypto", "auth", "bgp"):
        for line in _walk(old.get(section, {}), new.get(section, {}), (section,)):
            out.append(Change(gateway, "gateway", line))
    for key in ("asn", "public_ip", "platform"):
        if old.get(key) != new.get(key):
            out.append(Change(gateway, "gateway",
                              f"{key} {_show(old.get(key))} -> {_show(new.get(key))}"))
    for line in _prefix_changes(old.get("prefixes", {}), new.get("prefixes", {})):
        out.append(Change(gateway, "gateway", line))
    for name, line in _keyed(old.get("tunnels", {}), new.get("tunnels", {}), "tunnel"):
        out.append(Change(gateway, f"tunnel {name}", line))
    for addr, line in _keyed(old.get("bgp_neighbors", {}), new.get("bgp_neighbors", {}),
                             "BGP neighbor"):
        out.append(Change(gateway, f"neighbor {addr}", line))
    return out


# Where secrets sit in the syntaxes dcvpn reads: swanctl `secret = X`, IOS
# `pre-shared-key [local|remote] [0|6|7] X`, `key [0|7] X`, JunOS `ascii-text "X"`, XML
# elements, `password X`. The value group is replaced unless it is a reference.
SECRET_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"(?P<key><(?P<tag>key|secret|ascii-text|pre-shared-key|password|passphrase)>)"
    r"(?P<value>[^<]+)(?=</(?P=tag)>)",
    r"(?P<key>(?<![\w-])pre-shared-key\s+(?:(?:local|remote)\s+)?(?:[0-9]\s+)?)"
    r"(?!ascii-text|hexadecimal|\{)(?P<value>[^\s<]+)",  # JunOS `pre-shared-key {` opens
    r"(?P<key>(?<![\w</-])(?:secret|ascii-text|hexadecimal|password|passphrase)(?![\w>-])"
    r"(?:\s*=\s*|\s+)(?:[0-9]\s+)?)(?P<value>[^\s<]+)",
    r"(?P<key>^\s*key\s+(?:[0-9]\s+)?)(?P<value>\S+)",
))


# every pattern above needs one of these words: lines without any skip the four patterns
_TRIGGER = re.compile(r"key|secret|ascii-text|hexadecimal|password|passphrase", re.IGNORECASE)
# the same words in lower case: scanning text.lower() is several times faster than
# IGNORECASE, and keeps every position where the text is ASCII
_TRIGGER_LOWER = re.compile(_TRIGGER.pattern)


def _hide(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.strip("\"'").startswith(SECRET_PREFIX):
        return match.group(0)
    return f"{match.group('key')}<masked>"


def mask_secrets(text: str) -> str:
    """Hide anything in a secret position that is not a `${dcvpn-secret:...}` reference.

    Line by line; only the lines holding a trigger word are looked at (found in one scan of
    the whole text: a diff of a new hub configuration has thousands of lines, few of them
    with a secret)."""
    out: list[str] = []
    done = 0  # text[:done] is in out
    triggers = (_TRIGGER_LOWER.finditer(text.lower()) if text.isascii()
                else _TRIGGER.finditer(text))
    for found in triggers:
        if found.start() < done:
            continue  # a second trigger on a line already masked
        start = text.rfind("\n", 0, found.start()) + 1
        end = text.find("\n", found.end())
        end = len(text) if end < 0 else end
        line = text[start:end]
        for pattern in SECRET_PATTERNS:
            line = pattern.sub(_hide, line)
        out += (text[done:start], line)
        done = end
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _masked_line(index: int, line: str) -> str:
    """A unified diff line with its content masked (the +/-/space column kept); the first
    two lines are the file headers, `@@` lines the hunk headers."""
    if index < 2 or line.startswith("@@"):
        return line
    return line[0] + mask_secrets(line[1:])


def unified(old: str | None, new: str | None, name: str,
            labels: tuple[str, str] = ("running", "intended")) -> str:
    """Unified diff of two texts, secrets masked; None stands for a missing file.

    The texts are diffed as they are and only the lines of the diff are masked (a changed
    secret shows as a changed, masked line): masking whole files first cost most of the
    time of an offline diff of a large fabric.
    """
    if old == new:
        return ""
    a = old.splitlines(keepends=True) if old is not None else []
    b = new.splitlines(keepends=True) if new is not None else []
    skip, a, b = _trimmed(a, b)
    lines = list(difflib.unified_diff(
        a, b, f"{labels[0]}/{name}" if old is not None else "/dev/null",
        f"{labels[1]}/{name}" if new is not None else "/dev/null", n=CONTEXT))
    if skip:
        lines = [_shift(line, skip) if line.startswith("@@") else line for line in lines]
    return "".join(_masked_line(i, line if line.endswith("\n") else line + "\n")
                   for i, line in enumerate(lines))


CONTEXT = 3  # lines of context around a change
_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def _trimmed(a: list[str], b: list[str]) -> tuple[int, list[str], list[str]]:
    """Cut the lines both texts share at their start and end, but CONTEXT of them: difflib
    then matches only the changed middle (one prefix added to a 500-line prefix list used to
    cost a full SequenceMatcher run). Returns the lines cut from the start and both middles;
    the diff is the same once the hunk headers are shifted by the lines cut."""
    head = 0
    limit = min(len(a), len(b))
    while head < limit and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < limit - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    skip = max(head - CONTEXT, 0)
    keep = max(tail - CONTEXT, 0)
    return skip, a[skip:len(a) - keep], b[skip:len(b) - keep]


def _shift(header: str, lines: int) -> str:
    """An `@@ -l,s +l,s @@` header moved down by `lines` lines."""
    def moved(m: re.Match[str]) -> str:
        return (f"@@ -{int(m[1]) + lines}{m[2] or ''} "
                f"+{int(m[3]) + lines}{m[4] or ''} @@")
    return _HUNK.sub(moved, header, count=1)
