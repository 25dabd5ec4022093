"""Precomputed values for one gateway's templates (templates hold no logic beyond loops).

Platform modules start from GatewayView and add their own spellings (algorithm names,
interface names); nothing here is vendor specific.
"""

from dataclasses import dataclass
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network

from inventory.model import DataPlane, Fabric, FabricSpec, Gateway, Site
from inventory.platforms import default_os_version
from inventory.topology import BgpEndpoint, BgpSession, CompiledFabric, Endpoint, Tunnel
from tasks.errors import RenderError

SECRET_PREFIX = "${dcvpn-secret:"


def secret_ref(kind: str, name: str) -> str:
    """A placeholder that stands for a secret in rendered (reviewable) artifacts.

    Drivers resolve it from the secrets directory at push time; review artifacts, diffs and
    logs only ever show the reference.
    """
    return f"{SECRET_PREFIX}{kind}/{name}}}"


@dataclass(frozen=True, slots=True)
class TunnelView:
    tunnel: Tunnel
    session: BgpSession
    local: Endpoint
    remote: Endpoint
    bgp_local: BgpEndpoint
    bgp_remote: BgpEndpoint
    remote_prefixes: tuple[IPv4Network, ...]  # the peer site's own prefixes
    # Traffic to the sites this gateway has no tunnel to goes through this peer (a hub); at
    # most one tunnel of a gateway carries it. (A flag, not the list of those sites' prefixes:
    # building that list for every spoke of a large fabric cost most of a render.)
    transit: bool

    @property
    def name(self) -> str:
        return self.tunnel.name

    @property
    def psk_ref(self) -> str:
        return secret_ref("psk", self.tunnel.name)


@dataclass(frozen=True)
class GatewayView:
    compiled: CompiledFabric
    site: Site
    gateway: Gateway

    @property
    def fabric(self) -> Fabric:
        return self.compiled.fabric

    @property
    def spec(self) -> FabricSpec:
        return self.compiled.fabric.fabric

    @property
    def data_plane(self) -> DataPlane:
        return self.fabric.data_plane(self.site)

    @property
    def os_version(self) -> str | None:
        return self.gateway.os_version or default_os_version(self.gateway.platform)

    @property
    def is_hub(self) -> bool:
        return self.site.name in self.spec.hubs and self.spec.topology != "full_mesh"

    @property
    def router_id(self) -> IPv4Address:
        return self.gateway.public_ip

    @property
    def asn(self) -> int:
        bgp = self.spec.bgp
        value = bgp.asn if bgp.mode == "ibgp" else self.site.asn
        assert value is not None, "lint DCV262/DCV263 guarantees an ASN"
        return value

    @property
    def own_prefixes(self) -> tuple[IPv4Network, ...]:
        return tuple(sorted(self.site.prefixes))

    @property
    def accept_ranges(self) -> tuple[IPv4Network, ...]:
        """fabric.bgp.accept, sorted, each once. When set, a gateway accepts any prefix inside
        them (own prefixes and their more-specifics excepted) instead of fabric_prefixes."""
        return tuple(sorted(set(self.spec.bgp.accept)))

    @cached_property
    def fabric_prefixes(self) -> tuple[IPv4Network, ...]:
        """Every prefix of the fabric except this site's own."""
        position = fabric_index(self.compiled).position
        own = {position.get(p) for p in self.site.prefixes}
        return tuple(p for i, p in enumerate(self.compiled.fabric_prefixes) if i not in own)

    @property
    def fabric_prefix_texts(self) -> tuple[str, ...]:
        """fabric_prefixes as strings (formatted once per fabric, not once per gateway)."""
        index = fabric_index(self.compiled)
        own = {index.position.get(p) for p in self.site.prefixes}
        return tuple(t for i, t in enumerate(index.prefix_texts) if i not in own)

    @cached_property
    def tunnels(self) -> tuple[TunnelView, ...]:
        index = fabric_index(self.compiled)
        sites = index.sites
        direct = {self.site.name}
        pairs = list(self.compiled.tunnels_of(self.gateway.name))
        for tunnel, _ in pairs:
            direct.add(tunnel.side(self.gateway.name)[1].site)
        # Transit goes to plane 0 towards the lowest-id hub peer (selectors must not overlap
        # on the kernel-libipsec data plane, which has no interface ids), if any site is not
        # reached directly.
        hub_peers = sorted((t.side(self.gateway.name)[1].site_id, t.id) for t, _ in pairs
                           if t.side(self.gateway.name)[1].hub and t.plane == 0)
        indirect = len(direct) < len(sites)
        transit_tid = hub_peers[0][1] if hub_peers and indirect and not self.is_hub else None
        views = []
        for tunnel, session in pairs:
            local, remote = tunnel.side(self.gateway.name)
            bgp_local, bgp_remote = session.side(self.gateway.name)
            views.append(TunnelView(
                tunnel, session, local, remote, bgp_local, bgp_remote,
                tuple(sorted(sites[remote.site].prefixes)), tunnel.id == transit_tid,
            ))
        views.sort(key=lambda v: (v.remote.site_id, v.tunnel.plane))
        return tuple(views)


@dataclass(frozen=True)
class FabricIndex:
    """Lookups shared by all gateways of one compiled fabric, built once: rendering every
    gateway of a 1,000-site fabric would otherwise scan, hash and sort the whole fabric per
    gateway."""

    compiled: CompiledFabric
    gateways: dict[str, tuple[Site, Gateway]]
    sites: dict[str, Site]
    position: dict[IPv4Network, int]  # prefix -> its index in compiled.fabric_prefixes
    prefix_texts: tuple[str, ...]  # compiled.fabric_prefixes as strings


_last_index: FabricIndex | None = None


def fabric_index(compiled: CompiledFabric) -> FabricIndex:
    """The index of the fabric last asked for (renders go fabric by fabric)."""
    global _last_index  # noqa: PLW0603 - a one-entry memo; assignment is atomic
    last = _last_index
    if last is not None and last.compiled is compiled:
        return last
    position = {p: i for i, p in enumerate(compiled.fabric_prefixes)}
    gateways: dict[str, tuple[Site, Gateway]] = {}
    for site, gw in compiled.gateways():
        gateways.setdefault(gw.name, (site, gw))
    index = FabricIndex(
        compiled, gateways, sites={s.name: s for s in compiled.fabric.sites}, position=position,
        prefix_texts=tuple(str(p) for p in compiled.fabric_prefixes),
    )
    _last_index = index
    return index


_last_view: GatewayView | None = None


def gateway_view(compiled: CompiledFabric, gateway: str) -> GatewayView:
    """The view of one gateway; the last one asked for is kept, so rendering a gateway and
    then computing its intent (render, offline diff) build its tunnels once."""
    global _last_view  # noqa: PLW0603 - a one-entry memo; assignment is atomic
    last = _last_view
    if last is not None and last.compiled is compiled and last.gateway.name == gateway:
        return last
    site, gw = fabric_index(compiled).gateways[gateway]
    view = GatewayView(compiled, site, gw)
    _last_view = view
    return view


def require_unicast(view: GatewayView, platform: str) -> None:
    """Refuse to render anycast termination on a platform that would initiate from the shared
    address (lint DCV325 says so first)."""
    held = [tv.name for tv in view.tunnels if tv.local.anycast]
    if held:
        raise RenderError(f"{view.gateway.name}: {platform} cannot terminate the anycast "
                          f"tunnels {', '.join(held)} (responder-only termination is rendered "
                          "for strongswan gateways only; run dcvpn lint)")
