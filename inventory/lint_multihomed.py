"""Lint rules DCV300-DCV309: multihomed gateways (Gateway.uplinks) and MOBIKE.

A multihomed gateway answers IKE on public_ip and every uplink; strongSwan moves its SAs
between them with MOBIKE, which the peer must support too (README "Multihomed gateways
(MOBIKE)"). What each platform can do is the table inventory.multihoming.MULTIHOMING.
inventory.lint registers MULTIHOMED_RULES.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from inventory.errors import TopologyError
from inventory.findings import Path, Severity, format_path
from inventory.model import Fabric, Gateway, Topology
from inventory.multihoming import MULTIHOMING
from inventory.topology import compile_fabric

E, W = Severity.ERROR, Severity.WARNING
Check = Callable[[Fabric], Iterator[tuple[Path, str]]]


@dataclass(frozen=True)
class MultihomedRule:
    code: str
    severity: Severity
    summary: str
    check: Check


MULTIHOMED_RULES: list[MultihomedRule] = []


def _rule(code: str, severity: Severity, summary: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        MULTIHOMED_RULES.append(MultihomedRule(code, severity, summary, fn))
        return fn
    return register


def _multihomed(fabric: Fabric) -> Iterator[tuple[Path, Gateway]]:
    for i, site in enumerate(fabric.sites):
        for j, gw in enumerate(site.gateways):
            if gw.uplinks:
                yield ("sites", i, "gateways", j), gw


def _uplinks(fabric: Fabric) -> Iterator[tuple[Path, Gateway, IPv4Address]]:
    for path, gw in _multihomed(fabric):
        for k, address in enumerate(gw.uplinks):
            yield (*path, "uplinks", k), gw, address


@_rule("DCV300", E, "uplink repeating the gateway's own public_ip or another of its uplinks")
def uplink_repeats_own(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    for path, gw in _multihomed(fabric):
        seen = {gw.public_ip: "its public_ip"}
        for k, address in enumerate(gw.uplinks):
            if address in seen:
                yield (*path, "uplinks", k), (
                    f"gateway {gw.name}: uplink {address} is already {seen[address]}; list "
                    "each additional address once")
            seen.setdefault(address, f"uplinks[{k}]")


@_rule("DCV301", E, "uplink equal to another gateway's address or a site's anycast_ip")
def uplink_clash(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    owners: dict[IPv4Address, tuple[str, Path]] = {}
    for i, site in enumerate(fabric.sites):
        for j, gw in enumerate(site.gateways):
            base: Path = ("sites", i, "gateways", j)
            owners.setdefault(gw.public_ip, (gw.name, (*base, "public_ip")))
            for k, address in enumerate(gw.uplinks):
                owners.setdefault(address, (gw.name, (*base, "uplinks", k)))
        if site.anycast_ip is not None:
            owners.setdefault(site.anycast_ip, (f"site {site.name}", ("sites", i, "anycast_ip")))
    for path, gw, address in _uplinks(fabric):
        owner, where = owners[address]
        if owner != gw.name:
            yield path, (f"gateway {gw.name}: uplink {address} is also {format_path(where)} "
                         f"({owner}); peers could not tell the gateways apart")


@_rule("DCV302", E, "uplink inside the tunnel pool or a routed fabric prefix")
def uplink_routed(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    spec = fabric.fabric
    ranges: list[tuple[IPv4Network, str]] = [(spec.tunnel_pool, "fabric.tunnel_pool")]
    ranges += [(n, f"fabric.bgp.accept {n}") for n in spec.bgp.accept]
    ranges += [(n, f"prefix {n} of site {s.name}") for s in fabric.sites for n in s.prefixes]
    for path, gw, address in _uplinks(fabric):
        for net, what in ranges:
            if address in net:
                yield path, (f"gateway {gw.name}: uplink {address} is inside {what}; the IKE "
                             "endpoint would be routed into the tunnels it carries")
                break


@_rule("DCV303", E, "uplinks on a platform that cannot terminate IKE on several addresses")
def uplink_platform(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    for path, gw in _multihomed(fabric):
        why = MULTIHOMING[gw.platform].local
        if why is not None:
            yield (*path, "uplinks"), (
                f"gateway {gw.name} ({gw.platform}) cannot use uplinks: {why}; nothing would be "
                "rendered for them. Multihome a strongswan gateway, or drop uplinks")


@_rule("DCV304", W, "multihomed gateway with a peer platform that has no MOBIKE")
def peer_without_mobike(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    paths = {gw.name: path for path, gw in _multihomed(fabric)}
    if not paths:
        return
    try:
        compiled = compile_fabric(fabric)
    except TopologyError:
        return  # reported by the topology rules
    for t in compiled.tunnels:
        for here, peer in (t.endpoints, t.endpoints[::-1]):
            caps = MULTIHOMING[peer.platform]
            if here.multihomed and here.gateway in paths and not caps.mobike:
                yield (*paths[here.gateway], "uplinks"), (
                    f"gateway {here.gateway}: tunnel {t.name} peer {peer.gateway} is "
                    f"{peer.platform}, which cannot do MOBIKE; rendered there: {caps.as_peer}")


@_rule("DCV305", E, "more addresses than the peer platform can configure")
def too_many_for_peer(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    paths = {gw.name: path for path, gw in _multihomed(fabric)}
    if not paths:
        return
    try:
        compiled = compile_fabric(fabric)
    except TopologyError:
        return
    reported: set[tuple[str, str]] = set()
    for t in compiled.tunnels:
        for here, peer in (t.endpoints, t.endpoints[::-1]):
            most = MULTIHOMING[peer.platform].peer_addresses
            key = (here.gateway, str(peer.platform))
            count = len(here.addresses)
            if (here.gateway in paths and most is not None and most > 1 and count > most
                    and key not in reported):
                reported.add(key)
                yield (*paths[here.gateway], "uplinks"), (
                    f"gateway {here.gateway} has {count} addresses but its {peer.platform} "
                    f"peer {peer.gateway} can list at most {most} (public_ip and "
                    f"{most - 1} uplinks)")


@_rule("DCV306", W, "uplinks on a gateway of an anycast hub (not used on anycast tunnels)")
def uplink_anycast(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    if fabric.fabric.topology is Topology.FULL_MESH:
        return
    for i, site in enumerate(fabric.sites):
        if site.anycast_ip is None or site.name not in fabric.fabric.hubs:
            continue
        for j, gw in enumerate(site.gateways):
            if gw.uplinks:
                yield ("sites", i, "gateways", j, "uplinks"), (
                    f"gateway {gw.name} serves anycast_ip {site.anycast_ip}: its anycast "
                    "tunnels use that shared address only, so the uplinks apply to its unicast "
                    "tunnels (to other hubs) alone")
