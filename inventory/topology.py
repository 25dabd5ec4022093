"""Topology compiler: which sites connect, HA planes, inner addresses, BGP sessions, MTU.

Pure function of the model. Everything is ordered by site ids (never by list order), so the
output for a site pair does not change when other sites come or go.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network
from itertools import combinations
from typing import Literal

from inventory.addressing import MAX_PLANES, if_index, link_hosts, link_network, tunnel_id
from inventory.errors import TopologyError
from inventory.model import DataPlane, Fabric, Gateway, Platform, Site, Topology
from inventory.mtu import tunnel_mtu

BgpRole = Literal["peer", "route-reflector", "rr-client"]
ExportScope = Literal["own", "fabric"]
IDENTITY_DOMAIN = "dcvpn"


def ike_identity(fabric: Fabric, gateway: Gateway) -> str:
    return gateway.ike_id or f"{gateway.name}.{fabric.fabric.name}.{IDENTITY_DOMAIN}"


ANYCAST_LABEL = "anycast"


def anycast_identity(fabric: Fabric, site: Site) -> str:
    """The IKE identity every gateway of an anycast hub site uses on its anycast tunnels.

    Four labels, so it never equals a derived gateway identity (three labels; names hold no
    dot) even when a gateway is named like its site.
    """
    return site.anycast_id or f"{site.name}.{ANYCAST_LABEL}.{fabric.fabric.name}.{IDENTITY_DOMAIN}"


def anycast_hubs(fabric: Fabric) -> dict[int, Site]:
    """Site id -> hub site that serves an anycast_ip (full_mesh has no hubs, so none)."""
    spec = fabric.fabric
    if spec.topology is Topology.FULL_MESH:
        return {}
    return {s.id: s for s in fabric.sites if s.anycast_ip is not None and s.name in spec.hubs}


@dataclass(frozen=True, slots=True)
class Endpoint:
    site: str
    site_id: int
    gateway: str
    platform: Platform
    public_ip: IPv4Address
    inner_ip: IPv4Address
    if_index: int  # interface number on this gateway (TunnelN / st0.N / XFRM if_id)
    identity: str
    hub: bool
    # An anycast hub end: every gateway of the site serves it (gateway is the first of them,
    # public_ip the site's anycast_ip, identity the shared one). Empty for a unicast end.
    anycast: tuple[str, ...] = ()
    # The gateway's other public addresses (Gateway.uplinks); never used for an anycast end.
    uplinks: tuple[IPv4Address, ...] = ()

    @property
    def addresses(self) -> tuple[IPv4Address, ...]:
        """Every underlay address this end answers IKE on, the primary (public_ip) first."""
        return (self.public_ip,) if self.anycast else (self.public_ip, *self.uplinks)

    @property
    def multihomed(self) -> bool:
        return len(self.addresses) > 1

    @property
    def gateways(self) -> tuple[str, ...]:
        """The gateways that terminate this end."""
        return self.anycast or (self.gateway,)

    def serves(self, gateway: str) -> bool:
        return gateway == self.gateway or gateway in self.anycast

    def on(self, gateway: str) -> "Endpoint":
        """This end as `gateway` (one of `gateways`) renders it."""
        return self if gateway == self.gateway else replace(self, gateway=gateway)


@dataclass(frozen=True, slots=True)
class Tunnel:
    id: int
    plane: int
    endpoints: tuple[Endpoint, Endpoint]  # lower site id first
    network: IPv4Network
    mtu: int
    mss: int
    udp_encap: bool

    @property
    def name(self) -> str:
        a, b = self.endpoints
        return f"{a.site}-{b.site}-p{self.plane}"

    @property
    def anycast(self) -> bool:
        return any(e.anycast for e in self.endpoints)

    def side(self, gateway: str) -> tuple[Endpoint, Endpoint]:
        """(local, remote) as seen from `gateway` (any gateway of an anycast end)."""
        a, b = self.endpoints
        if a.serves(gateway):
            return a.on(gateway), b
        if b.serves(gateway):
            return b.on(gateway), a
        raise KeyError(gateway)


@dataclass(frozen=True, slots=True)
class BgpEndpoint:
    site: str
    gateway: str
    address: IPv4Address
    asn: int
    role: BgpRole  # how this side treats its neighbor
    export: ExportScope  # own prefixes, or the whole fabric (hubs transit)
    anycast: tuple[str, ...] = ()  # as Endpoint.anycast

    def serves(self, gateway: str) -> bool:
        return gateway == self.gateway or gateway in self.anycast

    def on(self, gateway: str) -> "BgpEndpoint":
        return self if gateway == self.gateway else replace(self, gateway=gateway)


@dataclass(frozen=True, slots=True)
class BgpSession:
    tunnel_id: int
    plane: int
    endpoints: tuple[BgpEndpoint, BgpEndpoint]
    local_pref: int  # plane 0 is preferred: higher local-pref inbound,
    med: int  # lower MED outbound

    def side(self, gateway: str) -> tuple[BgpEndpoint, BgpEndpoint]:
        a, b = self.endpoints
        if a.serves(gateway):
            return a.on(gateway), b
        if b.serves(gateway):
            return b.on(gateway), a
        raise KeyError(gateway)


@dataclass(frozen=True)
class CompiledFabric:
    fabric: Fabric
    tunnels: tuple[Tunnel, ...]
    sessions: tuple[BgpSession, ...]
    site_pairs: tuple[tuple[int, int], ...]
    _by_gateway: dict[str, list[int]] = field(repr=False, default_factory=dict)

    @cached_property
    def sites_by_id(self) -> dict[int, Site]:
        return {s.id: s for s in self.fabric.sites}

    @cached_property
    def fabric_prefixes(self) -> tuple[IPv4Network, ...]:
        return tuple(sorted({p for s in self.fabric.sites for p in s.prefixes}))

    def tunnels_of(self, gateway: str) -> Iterator[tuple[Tunnel, BgpSession]]:
        for i in self._by_gateway.get(gateway, ()):
            yield self.tunnels[i], self.sessions[i]

    def gateways(self) -> Iterator[tuple[Site, Gateway]]:
        for site in sorted(self.fabric.sites, key=lambda s: s.id):
            for gw in site.gateways:
                yield site, gw


def site_pairs(fabric: Fabric) -> list[tuple[int, int]]:
    """Connected site pairs (lo id, hi id), sorted, per DESIGN.md's topology definitions."""
    spec = fabric.fabric
    sites = sorted(fabric.sites, key=lambda s: s.id)
    by_name = {s.name: s for s in sites}
    missing = [h for h in spec.hubs if h not in by_name]
    if missing and spec.topology is not Topology.FULL_MESH:
        raise TopologyError(f"hubs are not sites: {', '.join(missing)}")
    hubs = [by_name[h] for h in spec.hubs if h in by_name]
    hub_ids = {h.id for h in hubs}
    pairs: set[tuple[int, int]] = set()

    def add(a: Site, b: Site) -> None:
        if a.id != b.id:
            pairs.add((min(a.id, b.id), max(a.id, b.id)))

    if spec.topology is Topology.FULL_MESH:
        return sorted({(a.id, b.id) for a, b in combinations(sites, 2) if a.id != b.id})
    if not hubs:
        raise TopologyError(f"topology {spec.topology} needs at least one hub")
    for a, b in combinations(hubs, 2):
        add(a, b)
    if spec.topology is Topology.HUB_SPOKE:
        for spoke in sites:
            if spoke.id not in hub_ids:
                for hub in hubs:
                    add(spoke, hub)
    else:  # hybrid
        regions: dict[str, list[Site]] = {}
        for s in sites:
            if s.region is not None:
                regions.setdefault(s.region, []).append(s)
        for members in regions.values():
            for a, b in combinations(members, 2):
                add(a, b)
        for s in sites:
            if s.id in hub_ids:
                continue
            own = [h for h in hubs if s.region is not None and h.region == s.region]
            for hub in own or hubs:
                add(s, hub)
    return sorted(pairs)


def _udp_encap(fabric: Fabric, a: tuple[Site, Gateway], b: tuple[Site, Gateway]) -> bool:
    forced = fabric.fabric.mtu.udp_encap
    if forced is not None:
        return forced
    return any(
        gw.platform is Platform.STRONGSWAN and fabric.data_plane(site) is DataPlane.LIBIPSEC
        for site, gw in (a, b)
    )


def _require_unique(fabric: Fabric) -> None:
    for what, values in (
        ("site id", [s.id for s in fabric.sites]),
        ("site name", [s.name for s in fabric.sites]),
        ("gateway name", [g.name for s in fabric.sites for g in s.gateways]),
    ):
        seen: set[object] = set()
        for v in values:
            if v in seen:
                raise TopologyError(f"duplicate {what} {v} (run dcvpn lint)")
            seen.add(v)
    for s in fabric.sites:
        if len(s.gateways) > MAX_PLANES:
            raise TopologyError(f"site {s.name} has more than {MAX_PLANES} gateways")


def compile_fabric(fabric: Fabric) -> CompiledFabric:
    _require_unique(fabric)
    spec = fabric.fabric
    sites = {s.id: s for s in fabric.sites}
    hub_names = set(spec.hubs) if spec.topology is not Topology.FULL_MESH else set()
    ibgp = spec.bgp.mode == "ibgp"
    esp = spec.crypto.esp
    mtu_cache: dict[bool, tuple[int, int]] = {}
    pairs = site_pairs(fabric)
    tunnels: list[Tunnel] = []
    sessions: list[BgpSession] = []
    by_gateway: dict[str, list[int]] = {}
    anycast = anycast_hubs(fabric)

    for lo_id, hi_id in pairs:
        lo, hi = sites[lo_id], sites[hi_id]
        # A non-hub site reaches an anycast hub with one tunnel per own gateway, to the
        # anycast address; hub pairs stay unicast (anycast at both ends would be ambiguous).
        via = _anycast_end(anycast, lo, hi, hub_names)
        planes = max(len(lo.gateways), len(hi.gateways))
        if via is not None:
            planes = len((hi if via is lo else lo).gateways)
        for plane in range(planes):
            gw_lo = lo.gateways[plane % len(lo.gateways)]
            gw_hi = hi.gateways[plane % len(hi.gateways)]
            tid = tunnel_id(lo_id, hi_id, plane)
            net = link_network(spec.tunnel_pool, spec.link_prefix, tid)
            if net is None:
                raise TopologyError(
                    f"tunnel_pool {spec.tunnel_pool} is too small: tunnel {lo.name}-{hi.name} "
                    f"plane {plane} needs block {tid} (run dcvpn lint)"
                )
            ip_lo, ip_hi = link_hosts(net)
            encap = _udp_encap(fabric, (lo, gw_lo), (hi, gw_hi))
            if encap not in mtu_cache:
                m = tunnel_mtu(spec.mtu.path_mtu, esp.encryption, esp.integrity, encap)
                mtu_cache[encap] = (m.mtu, m.mss)
            mtu, mss = mtu_cache[encap]
            ends = (
                Endpoint(lo.name, lo.id, gw_lo.name, gw_lo.platform, gw_lo.public_ip, ip_lo,
                         if_index(hi.id, plane), ike_identity(fabric, gw_lo),
                         lo.name in hub_names, uplinks=gw_lo.uplinks),
                Endpoint(hi.name, hi.id, gw_hi.name, gw_hi.platform, gw_hi.public_ip, ip_hi,
                         if_index(lo.id, plane), ike_identity(fabric, gw_hi),
                         hi.name in hub_names, uplinks=gw_hi.uplinks),
            )
            if via is not None:
                ends = _with_anycast(fabric, ends, via)
            index = len(tunnels)
            tunnels.append(Tunnel(tid, plane, ends, net, mtu, mss, encap))
            sessions.append(_session(fabric, tid, plane, ends, lo, hi, hub_names, ibgp))
            for end in ends:
                for name in end.gateways:
                    by_gateway.setdefault(name, []).append(index)

    return CompiledFabric(fabric, tuple(tunnels), tuple(sessions), tuple(pairs), by_gateway)


def _anycast_end(anycast: dict[int, Site], lo: Site, hi: Site,
                 hubs: set[str]) -> Site | None:
    """The anycast hub of a (hub, non-hub) pair, if that hub serves an anycast_ip."""
    for hub, other in ((lo, hi), (hi, lo)):
        if hub.id in anycast and other.name not in hubs:
            return hub
    return None


def _with_anycast(fabric: Fabric, ends: tuple[Endpoint, Endpoint],
                  hub: Site) -> tuple[Endpoint, Endpoint]:
    address = hub.anycast_ip
    assert address is not None
    first = hub.gateways[0]
    names = tuple(gw.name for gw in hub.gateways)

    def shared(e: Endpoint) -> Endpoint:
        if e.site_id != hub.id:
            return e
        return replace(e, gateway=first.name, platform=first.platform,
                       public_ip=address, identity=anycast_identity(fabric, hub),
                       anycast=names)

    return shared(ends[0]), shared(ends[1])


def _session(fabric: Fabric, tid: int, plane: int, ends: tuple[Endpoint, Endpoint],
             lo: Site, hi: Site, hubs: set[str], ibgp: bool) -> BgpSession:
    def role(me: Site, peer: Site) -> BgpRole:
        if ibgp and me.name in hubs and peer.name not in hubs:
            return "route-reflector"
        if ibgp and peer.name in hubs and me.name not in hubs:
            return "rr-client"
        return "peer"

    def asn(site: Site) -> int:
        value = fabric.fabric.bgp.asn if ibgp else site.asn
        if value is None:
            raise TopologyError(f"site {site.name} has no BGP ASN (run dcvpn lint)")
        return value

    def export(site: Site) -> ExportScope:
        return "fabric" if site.name in hubs else "own"

    a, b = ends
    return BgpSession(
        tunnel_id=tid,
        plane=plane,
        endpoints=(
            BgpEndpoint(lo.name, a.gateway, a.inner_ip, asn(lo), role(lo, hi), export(lo),
                        a.anycast),
            BgpEndpoint(hi.name, b.gateway, b.inner_ip, asn(hi), role(hi, lo), export(hi),
                        b.anycast),
        ),
        local_pref=200 - 10 * plane,
        med=10 * plane,
    )
