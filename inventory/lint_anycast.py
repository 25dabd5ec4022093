"""Lint rules DCV320-DCV329: designs where anycast hub termination would be ambiguous.

An anycast hub site serves one `anycast_ip` from all its gateways; the underlay routes each
spoke's packets to one of them, and that one must be able to terminate every anycast tunnel
exactly as any other would (README "Anycast hub endpoints"). Crypto, auth and data plane
are fabric or site settings, so the gateways cannot differ there; what can differ, clash or
be ambiguous is checked here. inventory.lint registers ANYCAST_RULES.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address

from inventory.errors import TopologyError
from inventory.findings import Path, Severity, format_path
from inventory.model import Fabric, Platform, Site, Topology
from inventory.topology import anycast_hubs, anycast_identity, compile_fabric, ike_identity

E, W = Severity.ERROR, Severity.WARNING
Check = Callable[[Fabric], Iterator[tuple[Path, str]]]

# Platforms that can terminate anycast tunnels: they must only respond (an end that
# initiates from the shared address gets its answers on whichever gateway the underlay
# picks). Value: why not, for the others.
ANYCAST_TERMINATION: dict[Platform, str | None] = {
    Platform.STRONGSWAN: None,
    Platform.IOSXE: "an IOS-XE sVTI always initiates from its tunnel source (a responder-only "
                    "virtual-template design is not rendered)",
    Platform.JUNOS: "JunOS `establish-tunnels responder-only` is not rendered yet",
}


@dataclass(frozen=True)
class AnycastRule:
    code: str
    severity: Severity
    summary: str
    check: Check


ANYCAST_RULES: list[AnycastRule] = []


def _rule(code: str, severity: Severity, summary: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        ANYCAST_RULES.append(AnycastRule(code, severity, summary, fn))
        return fn
    return register


def _with_anycast(fabric: Fabric) -> Iterator[tuple[int, Site, IPv4Address]]:
    for i, site in enumerate(fabric.sites):
        if site.anycast_ip is not None:
            yield i, site, site.anycast_ip


def _served(fabric: Fabric) -> Iterator[tuple[int, Site]]:
    """Sites whose anycast_ip is in effect (hubs of hub_spoke or hybrid)."""
    hubs = anycast_hubs(fabric)
    for i, site in enumerate(fabric.sites):
        if site.id in hubs and hubs[site.id] is site:
            yield i, site


@_rule("DCV320", E, "anycast_ip on a site that is not a hub (or in a full mesh)")
def anycast_not_hub(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    spec = fabric.fabric
    for i, site, ip in _with_anycast(fabric):
        if spec.topology is Topology.FULL_MESH:
            yield ("sites", i, "anycast_ip"), (
                f"site {site.name}: anycast_ip {ip} needs a hub_spoke or hybrid topology; in a "
                "full mesh every site pair has its own unicast tunnels")
        elif site.name not in spec.hubs:
            yield ("sites", i, "anycast_ip"), (
                f"site {site.name} is not in fabric.hubs: only a hub's gateways can share "
                f"anycast_ip {ip} (spokes initiate to it; nothing initiates to a spoke)")


@_rule("DCV321", E, "anycast_ip equal to a gateway public_ip or another site's anycast_ip")
def anycast_address_clash(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    owners: dict[IPv4Address, Path] = {}
    for i, site in enumerate(fabric.sites):
        for j, gw in enumerate(site.gateways):
            owners.setdefault(gw.public_ip, ("sites", i, "gateways", j, "public_ip"))
    seen: dict[IPv4Address, Path] = {}
    for i, site, ip in _with_anycast(fabric):
        path: Path = ("sites", i, "anycast_ip")
        if ip in owners:
            yield path, (f"site {site.name}: anycast_ip {ip} is the public_ip at "
                         f"{format_path(owners[ip])}; a unicast and an anycast endpoint on one "
                         "address cannot be told apart")
        elif ip in seen:
            yield path, (f"site {site.name}: anycast_ip {ip} is also the anycast_ip at "
                         f"{format_path(seen[ip])}; spokes could not tell the hubs apart")
        seen.setdefault(ip, path)


@_rule("DCV322", E, "gateways of an anycast hub on different platforms")
def anycast_platform_mix(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    for i, site in _served(fabric):
        first = site.gateways[0].platform
        for j, gw in enumerate(site.gateways):
            if gw.platform is not first:
                yield ("sites", i, "gateways", j, "platform"), (
                    f"anycast hub {site.name}: {gw.name} is {gw.platform} but "
                    f"{site.gateways[0].name} is {first}; every gateway of the anycast address "
                    "must terminate its tunnels the same way")


@_rule("DCV323", E, "anycast identity equal to another IKE identity")
def anycast_identity_clash(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    owners: dict[str, str] = {}
    for site in fabric.sites:
        for gw in site.gateways:
            owners.setdefault(ike_identity(fabric, gw), f"gateway {gw.name}")
    for i, site in _served(fabric):
        ident = anycast_identity(fabric, site)
        path: Path = ("sites", i, "anycast_id" if site.anycast_id else "anycast_ip")
        if ident in owners:
            yield path, (f"anycast hub {site.name}: identity {ident} is also the IKE identity of "
                         f"{owners[ident]}; set a distinct anycast_id")
        owners.setdefault(ident, f"anycast hub {site.name}")


@_rule("DCV324", W, "anycast hub with a single gateway (no failover)")
def anycast_single(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    for i, site in _served(fabric):
        if len(site.gateways) < 2:
            yield ("sites", i, "anycast_ip"), (
                f"anycast hub {site.name} has one gateway: its anycast_ip gives no failover, "
                "and spokes lose the per-gateway planes they would otherwise have")


@_rule("DCV325", E, "anycast hub gateway on a platform that cannot terminate anycast")
def anycast_platform(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    for i, site in _served(fabric):
        for j, gw in enumerate(site.gateways):
            why = ANYCAST_TERMINATION[gw.platform]
            if why is not None:
                yield ("sites", i, "gateways", j, "platform"), (
                    f"anycast hub {site.name}: {gw.name} ({gw.platform}) cannot terminate "
                    f"anycast tunnels: {why}; use strongswan gateways or drop anycast_ip")


@_rule("DCV326", E, "anycast_ip inside the tunnel pool or a routed fabric prefix")
def anycast_routed(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    spec = fabric.fabric
    ranges = [(spec.tunnel_pool, "fabric.tunnel_pool")]
    ranges += [(n, f"fabric.bgp.accept {n}") for n in spec.bgp.accept]
    ranges += [(n, f"prefix {n} of site {s.name}") for s in fabric.sites for n in s.prefixes]
    for i, site, ip in _with_anycast(fabric):
        for net, what in ranges:
            if ip in net:
                yield ("sites", i, "anycast_ip"), (
                    f"site {site.name}: anycast_ip {ip} is inside {what}; the IKE endpoint "
                    "would be routed into the tunnels it carries")
                break


@_rule("DCV327", E, "two tunnels of an anycast hub with the same peer identity")
def anycast_ambiguous_peer(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    """Every anycast tunnel of a hub shares local address and identity; the hub tells them
    apart by the peer's identity alone (and, on libipsec, by disjoint selectors, which
    distinct site pairs and planes already give)."""
    served = dict((s.id, i) for i, s in _served(fabric))
    if not served:
        return
    try:
        compiled = compile_fabric(fabric)
    except TopologyError:
        return  # reported by the topology rules
    seen: dict[tuple[int, str], str] = {}
    for t in compiled.tunnels:
        hub = next((e for e in t.endpoints if e.anycast), None)
        if hub is None:
            continue
        peer = t.endpoints[1] if hub is t.endpoints[0] else t.endpoints[0]
        key = (hub.site_id, peer.identity)
        if key in seen:
            yield ("sites", served[hub.site_id], "anycast_ip"), (
                f"anycast hub {hub.site}: tunnels {seen[key]} and {t.name} both come from "
                f"identity {peer.identity}; give {peer.gateway} a distinct ike_id")
        seen.setdefault(key, t.name)


@_rule("DCV328", W, "anycast hubs with a dpd action that does not re-initiate")
def anycast_dpd(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    action = fabric.fabric.crypto.dpd.action
    if action != "restart" and any(True for _ in _served(fabric)):
        yield ("fabric", "crypto", "dpd", "action"), (
            f"dpd action {action}: after an anycast hub gateway fails, a spoke only reaches "
            "the next one by re-initiating; use restart")


@_rule("DCV329", W, "anycast_id without anycast_ip (ignored)")
def anycast_id_alone(fabric: Fabric) -> Iterator[tuple[Path, str]]:
    for i, site in enumerate(fabric.sites):
        if site.anycast_id is not None and site.anycast_ip is None:
            yield ("sites", i, "anycast_id"), (
                f"site {site.name}: anycast_id is used only with anycast_ip; it is ignored")
