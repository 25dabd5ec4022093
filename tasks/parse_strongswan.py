"""Read a strongSwan+FRR gateway's files back into intent (tasks.running_intent).

swanctl.conf gives the tunnels (one connection each, named after the tunnel), their
identities and proposals; frr.conf the BGP side (a neighbor's description is its tunnel's
name); interfaces.sh the inner addresses. Proposals are strongSwan tokens, the model's own
spelling: `aes256gcm16-prfsha384-ecp384`, `aes256-sha256-ecp384-esn`. Only dcvpn's items
count: connections of swanctl.conf, `DCVPN-*` prefix lists and route maps, neighbors with a
connection's name or on a tunnel's link.
"""

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from inventory.crypto import DH_GROUPS, INTEGRITY
from tasks.running_intent import (
    Intent,
    ParseError,
    ReadBack,
    empty_intent,
    plane_of,
    shared_crypto,
)
from tasks.swanctl_conf import Section, SwanctlParseError, parse_settings

OWN_LIST, FABRIC_LIST = "DCVPN-OWN", "DCVPN-FABRIC"
DH_NUMBERS = {g.token: g.number for g in DH_GROUPS.values()}
AUTH_METHOD = {"pubkey": "certificate", "psk": "psk"}

READBACK = ReadBack(unreadable=frozenset({
    "auth.key_type",  # in the certificate, not in swanctl.conf
    "tunnels.*.peer_site", "tunnels.*.peer_gateway",
    "tunnels.*.interface_index", "tunnels.*.mtu", "tunnels.*.mss",  # one ipsec0 on libipsec
    "bgp_neighbors.*.role",
    # one end initiates (tasks.render_strongswan.TunnelRole): a responder's dpd_action is
    # `clear` whatever crypto.dpd.action says, so the device cannot show the model's value
    "tunnels.*.crypto.dpd.action",
}))


def parse_swanctl(text: str) -> Section:
    """Nested sections of a swanctl.conf/strongswan.conf: name -> dict | str."""
    try:
        return parse_settings(text)
    except SwanctlParseError as exc:
        raise ParseError(str(exc)) from None


@dataclass
class _Neighbor:
    remote_as: int | None = None
    description: str = ""
    keepalive: int | None = None
    hold: int | None = None
    max_prefixes: int | None = None
    route_map_in: str = ""
    route_map_out: str = ""


@dataclass
class FrrObjects:
    asn: int | None = None
    neighbors: dict[str, _Neighbor] = field(default_factory=dict)
    prefix_lists: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    route_maps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bfd: dict[str, dict[str, int]] = field(default_factory=dict)  # peer -> settings


def parse_frr(text: str) -> FrrObjects:
    o = FrrObjects()
    block: list[str] = []
    route_map: dict[str, Any] | None = None
    bfd_peer: str | None = None
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("!"):
            continue
        words = raw.split()
        if not raw.startswith(" "):
            block, route_map, bfd_peer = words, None, None
        match block, words:
            case (["router", "bgp", number, *_], ["router", *_]):
                o.asn = int(number)
            case (["router", "bgp", *_], ["neighbor", address, *rest]):
                n = o.neighbors.setdefault(address, _Neighbor())
                match rest:
                    case ["remote-as", number]:
                        n.remote_as = int(number) if number.isdigit() else None
                    case ["description", *text_]:
                        n.description = " ".join(text_)
                    case ["timers", keepalive, hold] if keepalive.isdigit():
                        n.keepalive, n.hold = int(keepalive), int(hold)
                    case ["maximum-prefix", number, *_]:
                        n.max_prefixes = int(number)
                    case ["route-map", name, "in"]:
                        n.route_map_in = name
                    case ["route-map", name, "out"]:
                        n.route_map_out = name
            case (["ip", "prefix-list", name, "seq", seq, "permit", prefix, *bounds], _):
                o.prefix_lists.setdefault(name, []).append((int(seq),
                                                            " ".join([prefix, *bounds])))
            case (["route-map", name, "permit", _], ["route-map", *_]):
                route_map = {"lists": [], "local_pref": None, "metric": None}
                o.route_maps.setdefault(name, []).append(route_map)
            case (["route-map", *_], ["match", "ip", "address", "prefix-list", *names]) \
                    if route_map is not None:
                route_map["lists"] += names
            case (["route-map", *_], ["set", "local-preference", value]) \
                    if route_map is not None:
                route_map["local_pref"] = int(value)
            case (["route-map", *_], ["set", "metric", value]) if route_map is not None:
                route_map["metric"] = int(value)
            case (["bfd"], ["peer", address, *_]):
                bfd_peer = address
                o.bfd[address] = {}
            case (["bfd"], [key, value]) if bfd_peer is not None and value.isdigit():
                o.bfd[bfd_peer][key] = int(value)
    return o


def inner_addresses(script: str) -> list[IPv4Interface]:
    return [IPv4Interface(m) for m in re.findall(r"^ip addr replace (\S+) dev \S+$", script,
                                                 re.MULTILINE)]


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _primary(addrs: Any) -> Any:
    """The first of a comma list (local_addrs / remote_addrs of a multihomed gateway list its
    uplinks after its public_ip, which an initiator uses)."""
    return addrs.split(",")[0].strip() if isinstance(addrs, str) else addrs


def proposal_fields(token: str) -> dict[str, Any]:
    """`aes256-sha256-prfsha256-ecp384-esn` -> encryption, integrity, prf, dh_group, esn."""
    parts = token.split("-")
    out: dict[str, Any] = {"encryption": parts[0], "integrity": None, "prf": None,
                           "dh_group": None, "esn": False}
    for part in parts[1:]:
        if part.startswith("prf"):
            out["prf"] = part[3:]
        elif part in INTEGRITY:
            out["integrity"] = part
        elif part in DH_NUMBERS:
            out["dh_group"] = DH_NUMBERS[part]
        elif part == "esn":
            out["esn"] = True
    return out


def _crypto(conn: Section, child: Section) -> dict[str, Any]:
    ike_tokens = _list(conn.get("proposals", ""))
    esp_tokens = _list(child.get("esp_proposals", ""))
    ike = proposal_fields(ike_tokens[0]) if ike_tokens else {}
    esp = proposal_fields(esp_tokens[0]) if esp_tokens else {}
    return {
        "ike": {"encryption": ike.get("encryption"), "prf": ike.get("prf"),
                "integrity": ike.get("integrity"), "dh_group": ike.get("dh_group"),
                "lifetime": conn.get("rekey_time")},
        "esp": {"encryption": esp.get("encryption"), "integrity": esp.get("integrity"),
                "pfs_group": esp.get("dh_group"), "lifetime": child.get("rekey_time"),
                "esn": bool(esp.get("esn"))},
        "dpd": {"interval": conn.get("dpd_delay"), "action": child.get("dpd_action")},
    }


def from_files(files: dict[str, str]) -> Intent:
    """Intent of a strongSwan gateway's swanctl.conf, frr.conf and interfaces.sh."""
    conf = parse_swanctl(files.get("swanctl.conf", ""))
    frr = parse_frr(files.get("frr.conf", ""))
    addresses = inner_addresses(files.get("interfaces.sh", ""))
    out = empty_intent()
    out["asn"] = frr.asn
    by_description = {n.description: a for a, n in frr.neighbors.items()}
    publics, auths = set(), set()
    links: dict[str, IPv4Interface] = {}
    for name, conn in sorted(conf.get("connections", {}).items()):
        children = list(conn.get("children", {}).values())
        child = children[0] if children else {}
        peer = by_description.get(name)
        inner = None
        if peer is not None:
            found = [a for a in addresses if IPv4Address(peer) in a.network
                     and a.ip != IPv4Address(peer)]
            inner = found[0] if len(found) == 1 else None
        publics.add(_primary(conn.get("local_addrs")))
        auths.add(conn.get("local", {}).get("auth"))
        out["tunnels"][name] = {
            "peer_public_ip": _primary(conn.get("remote_addrs")), "plane": plane_of(name),
            "network": str(inner.network) if inner else None,
            "local_inner": str(inner.ip) if inner else None, "remote_inner": peer,
            "local_identity": conn.get("local", {}).get("id"),
            "peer_identity": conn.get("remote", {}).get("id"),
            "crypto": _crypto(conn, child),
        }
        if inner is not None:
            links[name] = inner
    out["public_ip"] = publics.pop() if len(publics) == 1 else None
    if len(auths) == 1:
        out["auth"] = {"method": AUTH_METHOD.get(str(auths.pop()), "unknown")}
    lists = {n: [p for _, p in sorted(e)] for n, e in frr.prefix_lists.items()}
    own = lists.get(OWN_LIST, [])
    out["prefixes"] = {"announce": own,
                       "accept": [p for p in lists.get(FABRIC_LIST, []) if p not in own]}
    mine: list[tuple[str, _Neighbor]] = []
    for address, n in sorted(frr.neighbors.items(), key=lambda i: IPv4Address(i[0])):
        tunnel = n.description if n.description in out["tunnels"] else next(
            (t for t, inner in links.items() if IPv4Address(address) in inner.network), None)
        if tunnel is None:
            continue
        mine.append((address, n))
        maps_in = frr.route_maps.get(n.route_map_in, [])
        maps_out = frr.route_maps.get(n.route_map_out, [])
        out["bgp_neighbors"][address] = {
            "remote_as": n.remote_as, "local_as": frr.asn,
            "export": ("fabric" if any(FABRIC_LIST in m["lists"] for m in maps_out)
                       else "own") if maps_out else None,
            "local_pref": next((m["local_pref"] for m in maps_in
                                if m["local_pref"] is not None), None),
            "med": next((m["metric"] for m in maps_out if m["metric"] is not None), None),
            "tunnel": tunnel,
        }
    if mine:
        address, first = mine[0]
        bfd = frr.bfd.get(address, {})
        out["bgp"] = {
            "mode": "ibgp" if all(n.remote_as == frr.asn for _, n in mine) else "ebgp",
            "bfd": {"interval_ms": bfd.get("receive-interval"),
                    "multiplier": bfd.get("detect-multiplier")},
            "timers": {"keepalive": first.keepalive, "hold": first.hold},
            "max_prefixes": first.max_prefixes}
    return shared_crypto(out)
