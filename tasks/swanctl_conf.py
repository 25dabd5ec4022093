"""Reading a swanctl.conf (and its secrets file) back: what one end of each tunnel offers.

A small parser of strongSwan's settings syntax (`name {`, `key = value`, `}`, `#` comments,
`include`) and the few connection fields a diagnosis compares: IKE and ESP proposals,
identities, addresses, auth. A pre-shared key is never kept: only a digest, so that the two
ends' keys can be compared without showing either.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

Section = dict[str, Any]


class SwanctlParseError(ValueError):
    """The text is not in the settings syntax."""


def parse_settings(text: str) -> Section:
    """Nested sections: name -> dict | str (an `include` line is kept under "include")."""
    root: Section = {}
    stack = [root]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line == "}":
            if len(stack) == 1:
                raise SwanctlParseError(f"line {number}: unbalanced '}}'")
            stack.pop()
        elif line.endswith("{"):
            child: Section = {}
            stack[-1][line[:-1].strip()] = child
            stack.append(child)
        elif "=" in line:
            key, value = line.split("=", 1)
            stack[-1][key.strip()] = value.strip()
        elif line.startswith("include "):
            stack[-1].setdefault("include", []).append(line.split(None, 1)[1])
        else:
            raise SwanctlParseError(f"line {number}: cannot parse {raw.strip()!r}")
    if len(stack) != 1:
        raise SwanctlParseError("a section is not closed")
    return root


def split_list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def same_algorithms(a: str, b: str) -> bool:
    """Two proposal tokens name the same algorithms (the order of the parts is free)."""
    return frozenset(a.split("-")) == frozenset(b.split("-"))


def proposals_agree(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """At least one proposal of `a` is also one of `b`: IKE can pick it."""
    return any(same_algorithms(x, y) for x in a for y in b)


@dataclass(frozen=True, slots=True)
class ConnConfig:
    """One connection of a swanctl.conf (its CHILD_SA of the same name)."""

    name: str
    local_addrs: tuple[str, ...]
    remote_addrs: tuple[str, ...]
    ike_proposals: tuple[str, ...]
    esp_proposals: tuple[str, ...]
    local_id: str
    remote_id: str
    auth: str
    secret_digest: str | None = None  # sha256 of the PSK (never the key itself)
    secret_ref: str | None = None  # an unresolved `${dcvpn-secret:...}` reference

    def with_secret(self, value: str | None) -> "ConnConfig":
        if value is None:
            return self
        if value.startswith("${"):
            return replace(self, secret_digest=None, secret_ref=value)
        return replace(self, secret_digest=hashlib.sha256(value.encode()).hexdigest(),
                       secret_ref=None)


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def connections(swanctl: str) -> dict[str, ConnConfig]:
    """Connection name -> ConnConfig of a swanctl.conf text."""
    tree = parse_settings(swanctl)
    out = {}
    for name, conn in _section(tree, "connections").items():
        if not isinstance(conn, Mapping):
            continue
        local, remote = _section(conn, "local"), _section(conn, "remote")
        child = _section(_section(conn, "children"), name)
        out[name] = ConnConfig(
            name, split_list(_text(conn, "local_addrs")), split_list(_text(conn, "remote_addrs")),
            split_list(_text(conn, "proposals")) or ("default",),
            split_list(_text(child, "esp_proposals")) or ("default",),
            _text(local, "id"), _text(remote, "id"), _text(local, "auth"))
    return out


def secrets(text: str) -> dict[frozenset[str], str]:
    """{id-1, id-2} -> secret, from `ike-<name> { id-1 = .. id-2 = .. secret = .. }` sections
    (a swanctl-secrets.conf, or the `secrets` section of a swanctl.conf)."""
    tree = parse_settings(text)
    scope = _section(tree, "secrets") or tree
    out = {}
    for name, sec in scope.items():
        if not name.startswith("ike") or not isinstance(sec, Mapping):
            continue
        ids = frozenset(v for k, v in sec.items() if k.startswith("id") and isinstance(v, str))
        secret = _text(sec, "secret")
        if ids and secret:
            out[ids] = secret.strip('"')
    return out


def with_secrets(conns: Mapping[str, ConnConfig],
                 found: Mapping[frozenset[str], str]) -> dict[str, ConnConfig]:
    """Each connection with the digest (or reference) of the PSK for its two identities."""
    return {name: c.with_secret(found.get(frozenset({c.local_id, c.remote_id})))
            for name, c in conns.items()}
