"""Read a strongSwan gateway's rendered files back (swanctl.conf, frr.conf, interfaces.sh).

Independent of the renderer: a small parser of the swanctl brace syntax and of the FRR lines
that matter. A tunnel's BGP neighbor is the one whose description is the connection's name;
its inner address is the interfaces.sh address whose network holds that neighbor.
"""

import re
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from rendered import RenderedTunnel

Section = dict[str, Any]


def parse_swanctl(text: str) -> Section:
    """Nested sections of a swanctl.conf/strongswan.conf: name -> dict | str."""
    root: Section = {}
    stack = [root]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line == "}":
            if len(stack) == 1:
                raise ValueError(f"line {number}: unbalanced '}}'")
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
            raise ValueError(f"line {number}: cannot parse {raw!r}")
    if len(stack) != 1:
        raise ValueError("unclosed section")
    return root


def _list(value: str) -> frozenset[str]:
    return frozenset(v.strip() for v in value.split(",") if v.strip())


def parse_frr(text: str) -> tuple[int, dict[str, dict[str, str]]]:
    """(local AS, neighbor address -> {remote-as, description})."""
    asn = None
    neighbors: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if m := re.match(r"^router bgp (\d+)$", line):
            asn = int(m.group(1))
        elif m := re.match(r"^ neighbor (\S+) (remote-as|description) (\S+)$", line):
            neighbors.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
    if asn is None:
        raise ValueError("frr.conf has no router bgp")
    return asn, neighbors


def inner_addresses(script: str) -> list[IPv4Interface]:
    return [IPv4Interface(m) for m in re.findall(r"^ip addr replace (\S+) dev \S+$", script,
                                                 re.MULTILINE)]


def tunnels(files: dict[str, str]) -> list[RenderedTunnel]:
    conf = parse_swanctl(files["swanctl.conf"])
    local_as, neighbors = parse_frr(files["frr.conf"])
    by_name = {n["description"]: (addr, n) for addr, n in neighbors.items()}
    addresses = inner_addresses(files["interfaces.sh"])
    result = []
    for name, conn in sorted(conf.get("connections", {}).items()):
        peer, neighbor = by_name[name]
        peer_ip = IPv4Address(peer)
        inner = [a for a in addresses if peer_ip in a.network and a.ip != peer_ip]
        if len(inner) != 1:
            raise ValueError(f"{name}: no unique inner address for neighbor {peer}")
        esp: set[str] = set()
        for child in conn["children"].values():
            esp |= _list(child["esp_proposals"])
        result.append(RenderedTunnel(
            local_public_ip=conn["local_addrs"],
            peer_public_ip=conn["remote_addrs"],
            local_id=conn["local"]["id"],
            remote_id=conn["remote"]["id"],
            ike_proposals=_list(conn["proposals"]),
            esp_proposals=frozenset(esp),
            inner_interface=str(inner[0]),
            bgp_local_as=local_as,
            bgp_neighbor=peer,
            bgp_remote_as=int(neighbor["remote-as"]),
        ))
    return result
