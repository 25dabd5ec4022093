"""A device's configuration read back as intent, and the view running and intended meet in.

The parsers (tasks.parse_junos, tasks.parse_iosxe, tasks.parse_strongswan) read only what
dcvpn manages (its `DCVPN-*` objects, the tunnels they bind, the BGP sessions on those tunnels)
and return the structure of tasks.intent.gateway_intent, with one addition: every tunnel
carries the `crypto` its own chain of objects leads to (a device has one IKE/IPsec policy per
tunnel, and a hand edit can make one tunnel differ). The gateway's `crypto` is the one all
tunnels share, `{}` when they do not.

A platform cannot show every model field (Junos has no BGP keepalive, one TCP MSS per device;
IOS-XE spells both RSA key sizes `rsa-sig`): each parser's ReadBack says which fields it
cannot read and which model values it cannot tell apart. `device_view` applies that to both
sides, so `tasks.semantic_diff.gateway_changes(running, intended)` reports only real changes.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inventory.crypto import CIPHERS
from tasks.errors import TaskError

Intent = dict[str, Any]

# identity of the gateway in the model, not configuration of the device
MODEL_ONLY = ("gateway", "site", "platform")


class ParseError(TaskError):
    """A running configuration holds a dcvpn object that cannot be read (names the object)."""


@dataclass(frozen=True, slots=True)
class ReadBack:
    """What one platform's configuration can show of the intent.

    unreadable: dotted paths of the device view (`*` for any tunnel or neighbor name), e.g.
    `tunnels.*.mss`; canonical: path -> model value -> the value the device shows for it.
    """

    unreadable: frozenset[str] = frozenset()
    canonical: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)


ORLONGER = "le 32"  # the intent's spelling of "this prefix and every longer one inside it"


def orlonger(prefix: str) -> str:
    """`10.0.0.0/8` -> `10.0.0.0/8 le 32`: an accepted range (fabric.bgp.accept) in intent."""
    return f"{prefix} {ORLONGER}"


def empty_intent() -> Intent:
    """The read-back intent of a device that holds nothing of dcvpn's."""
    return {
        "public_ip": None, "asn": None, "crypto": {}, "auth": {},
        "bgp": {"mode": None, "bfd": {}, "timers": {}, "max_prefixes": None},
        "prefixes": {"announce": [], "accept": []},
        "tunnels": {}, "bgp_neighbors": {},
    }


def shared_crypto(intent: Intent) -> Intent:
    """Set the gateway's crypto to what every tunnel has (in place); returns the intent."""
    found = [t.get("crypto", {}) for t in intent["tunnels"].values()]
    intent["crypto"] = found[0] if found and all(c == found[0] for c in found) else {}
    return intent


def plane_of(tunnel: str) -> int | None:
    """`fra1-iad1-p1` -> 1 (tunnel names end in the plane)."""
    head, sep, number = tunnel.rpartition("-p")
    return int(number) if sep and head and number.isdigit() else None


def _aead(section: Mapping[str, Any]) -> bool:
    cipher = CIPHERS.get(str(section.get("encryption")))
    return cipher is not None and cipher.aead


def _normal_crypto(crypto: Mapping[str, Any]) -> dict[str, Any]:
    """An AEAD cipher has no separate integrity algorithm, whatever the model says."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in crypto.items()}
    for part in ("ike", "esp"):
        section = out.get(part)
        if isinstance(section, dict) and _aead(section):
            section["integrity"] = None
    return out


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path,
                                                                          strict=True))


def _apply(node: Any, path: tuple[str, ...], drop: list[tuple[str, ...]],
           canon: list[tuple[tuple[str, ...], Mapping[Any, Any]]]) -> Any:
    if not isinstance(node, dict):
        for pattern, table in canon:
            if _matches(pattern, path):
                return table.get(node, node)
        return node
    out = {}
    for key, value in node.items():
        here = (*path, key)
        if any(_matches(p, here) for p in drop):
            continue
        out[key] = _apply(value, here, drop, canon)
    return out


def device_view(intent: Mapping[str, Any], readback: ReadBack) -> Intent:
    """What of an intent (read back or compiled) a device diff compares.

    Crypto moves to the tunnels (from the gateway when the intent is the model's), fields the
    platform cannot show are dropped, values it cannot tell apart are merged.
    """
    view: Intent = {k: v for k, v in intent.items() if k not in MODEL_ONLY and k != "crypto"}
    gateway_crypto = _normal_crypto(intent.get("crypto", {}))
    view["tunnels"] = {
        name: {**fields, "crypto": _normal_crypto(fields.get("crypto", gateway_crypto))}
        for name, fields in intent.get("tunnels", {}).items()
    }
    if intent.get("auth", {}).get("method") == "psk":
        view["auth"] = {"method": "psk"}
    drop = [tuple(p.split(".")) for p in readback.unreadable]
    canon = [(tuple(p.split(".")), table) for p, table in readback.canonical.items()]
    result: Intent = _apply(view, (), drop, canon)
    return result
