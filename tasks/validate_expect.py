"""Expected state of every gateway, derived from the compiled model alone (pure).

What a healthy fabric shows on each gateway: one IKE SA per tunnel with the intended
proposal and an INSTALLED CHILD SA, one Established BGP session per tunnel, a kernel route
for every fabric prefix of the other sites through a tunnel, and LAN-to-LAN reachability
between every pair of sites. Probe addresses: gateway k (0-based, model order) of a site
holds host k+1 of each site prefix; pings run between the first gateways of two sites, from
the lower site id to the higher one. The MTU probe runs on directly connected pairs only:
its expected value is the tunnel MTU the source and target gateways actually use
(kernel-libipsec caps it at its TUN device's 1400 bytes).
"""

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from itertools import combinations

from inventory.crypto import CIPHERS, DH_GROUPS
from inventory.model import DataPlane, EspPolicy, IkePolicy, Platform, Site
from inventory.topology import CompiledFabric
from tasks.render_context import GatewayView, TunnelView, gateway_view
from tasks.render_strongswan import effective_mtu

# Model token -> (strongSwan transform name, key size or None when it is fixed/not reported)
ENCRYPTION: dict[str, tuple[str, int | None]] = {
    "aes128gcm16": ("AES_GCM_16", 128), "aes256gcm16": ("AES_GCM_16", 256),
    "aes128gcm12": ("AES_GCM_12", 128), "aes256gcm12": ("AES_GCM_12", 256),
    "aes128gcm8": ("AES_GCM_8", 128), "aes256gcm8": ("AES_GCM_8", 256),
    "chacha20poly1305": ("CHACHA20_POLY1305", None),
    "aes128gmac": ("NULL_AES_GMAC", 128), "aes256gmac": ("NULL_AES_GMAC", 256),
    "aes128": ("AES_CBC", 128), "aes192": ("AES_CBC", 192), "aes256": ("AES_CBC", 256),
    "3des": ("3DES_CBC", None), "des": ("DES_CBC", None),
}
INTEGRITY = {"sha256": "HMAC_SHA2_256_128", "sha384": "HMAC_SHA2_384_192",
             "sha512": "HMAC_SHA2_512_256", "sha1": "HMAC_SHA1_96", "md5": "HMAC_MD5_96"}
PRF = {"sha256": "PRF_HMAC_SHA2_256", "sha384": "PRF_HMAC_SHA2_384",
       "sha512": "PRF_HMAC_SHA2_512", "sha1": "PRF_HMAC_SHA1", "md5": "PRF_HMAC_MD5"}
DH = {1: "MODP_768", 2: "MODP_1024", 5: "MODP_1536", 14: "MODP_2048", 15: "MODP_3072",
      16: "MODP_4096", 17: "MODP_6144", 18: "MODP_8192", 19: "ECP_256", 20: "ECP_384",
      21: "ECP_521", 22: "MODP_1024_160", 23: "MODP_2048_224", 24: "MODP_2048_256",
      31: "CURVE_25519", 32: "CURVE_448"}
assert set(ENCRYPTION) == set(CIPHERS) and set(DH) == set(DH_GROUPS)


@dataclass(frozen=True, slots=True)
class Proposal:
    """Negotiated algorithms in strongSwan's spelling; prf only for IKE."""

    encryption: str
    key_size: int | None
    integrity: str | None
    prf: str | None
    dh_group: str | None

    def describe(self) -> str:
        enc = self.encryption + (f"_{self.key_size}" if self.key_size else "")
        return "/".join(p for p in (enc, self.integrity, self.prf, self.dh_group) if p)


def ike_proposal(ike: IkePolicy) -> Proposal:
    enc, size = ENCRYPTION[ike.encryption]
    integ = None if CIPHERS[ike.encryption].aead else INTEGRITY.get(ike.integrity or "")
    return Proposal(enc, size, integ, PRF[ike.prf], DH[ike.dh_group])


def esp_proposal(esp: EspPolicy) -> Proposal:
    enc, size = ENCRYPTION[esp.encryption]
    integ = None if CIPHERS[esp.encryption].aead else INTEGRITY.get(esp.integrity or "")
    return Proposal(enc, size, integ, None,
                    DH[esp.pfs_group] if esp.pfs_group is not None else None)


@dataclass(frozen=True, slots=True)
class TunnelExpect:
    name: str
    gateway: str
    peer_gateway: str
    sites: tuple[str, str]  # (local, remote)
    remote_host: IPv4Address
    remote_id: str
    ike: Proposal
    esp: Proposal
    # Every gateway of this gateway's anycast hub that serves the tunnel (empty: unicast).
    # One of them holds the SA; the others stand by (tasks.validate_anycast).
    anycast_gateways: tuple[str, ...] = ()
    # every underlay address of the peer (a multihomed peer's uplinks after remote_host): an
    # SA that moved to an uplink (MOBIKE, a JunOS backup peer) is still this tunnel's SA
    remote_hosts: tuple[IPv4Address, ...] = ()


@dataclass(frozen=True, slots=True)
class BgpExpect:
    gateway: str
    tunnel: str
    peer_gateway: str
    sites: tuple[str, str]
    address: IPv4Address
    remote_as: int


@dataclass(frozen=True, slots=True)
class RouteExpect:
    gateway: str
    prefix: IPv4Network
    owner_site: str
    via: tuple[IPv4Address, ...]  # acceptable next hops (tunnel peers' inner addresses)
    tunnels: tuple[str, ...]  # the tunnels behind `via`, same order
    gateways: tuple[str, ...]  # every gateway the route depends on
    sites: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PingExpect:
    gateway: str  # where the probe runs
    pair: tuple[str, str]  # (source site, target site)
    source: IPv4Address
    target: IPv4Address
    target_gateway: str
    mtu: int | None  # probe at this IP packet size (direct pairs only)
    gateways: tuple[str, ...]  # every gateway on the way (a hub for transit pairs)
    sites: tuple[str, ...]
    # an anycast hub target: the other hub gateways' (gateway, probe address); whichever
    # holds the tunnel answers, so one reply from any of them passes
    alternatives: tuple[tuple[str, IPv4Address], ...] = ()


@dataclass(frozen=True, slots=True)
class GatewayExpect:
    gateway: str
    site: str
    platform: Platform
    tunnels: tuple[TunnelExpect, ...]
    bgp: tuple[BgpExpect, ...]
    routes: tuple[RouteExpect, ...]
    pings: tuple[PingExpect, ...]


def probe_address(site: Site, gateway_index: int, prefix: IPv4Network) -> IPv4Address:
    """Host `gateway_index + 1` of `prefix` (the prefix itself for a /32, the last for a /31)."""
    if prefix.prefixlen >= 31:
        return prefix.network_address + min(gateway_index, prefix.num_addresses - 1)
    return prefix.network_address + 1 + gateway_index


def interface_mtu(view: GatewayView, tv: TunnelView) -> int:
    """MTU of the interface this gateway sends the tunnel's traffic on."""
    if view.gateway.platform is not Platform.STRONGSWAN:
        return tv.tunnel.mtu
    if view.data_plane is DataPlane.LIBIPSEC:  # one ipsec0 device for every tunnel
        return min(effective_mtu(view, t) for t in view.tunnels)
    return effective_mtu(view, tv)


def _tunnel(view: GatewayView, tv: TunnelView) -> TunnelExpect:
    crypto = view.spec.crypto
    return TunnelExpect(tv.name, view.gateway.name, tv.remote.gateway,
                        (view.site.name, tv.remote.site), tv.remote.public_ip,
                        tv.remote.identity, ike_proposal(crypto.ike), esp_proposal(crypto.esp),
                        tv.local.anycast, tv.remote.addresses)


def _routes(view: GatewayView) -> tuple[RouteExpect, ...]:
    """Direct prefixes via the lowest plane to their site; others via any hub (transit)."""
    owner = {p: s for s in view.fabric.sites for p in s.prefixes}
    first_gw = {s.name: s.gateways[0].name for s in view.fabric.sites}
    by_site: dict[str, TunnelView] = {}
    for tv in view.tunnels:
        best = by_site.get(tv.remote.site)
        if best is None or tv.tunnel.plane < best.tunnel.plane:
            by_site[tv.remote.site] = tv
    transit = [tv for tv in view.tunnels if tv.remote.hub] or list(view.tunnels)
    out = []
    for prefix in view.fabric_prefixes:
        site = owner[prefix]
        direct = by_site.get(site.name)
        chosen = [direct] if direct is not None else transit
        if not chosen:
            continue
        gateways = sorted({view.gateway.name, first_gw[site.name],
                           *(tv.remote.gateway for tv in chosen)})
        sites = sorted({view.site.name, site.name, *(tv.remote.site for tv in chosen)})
        out.append(RouteExpect(view.gateway.name, prefix, site.name,
                               tuple(tv.remote.inner_ip for tv in chosen),
                               tuple(tv.name for tv in chosen), tuple(gateways), tuple(sites)))
    return tuple(out)


def _pings(compiled: CompiledFabric, views: dict[str, GatewayView]) -> dict[str, list[PingExpect]]:
    direct = set(compiled.site_pairs)
    out: dict[str, list[PingExpect]] = {}
    hub_sites = set(compiled.fabric.fabric.hubs)

    def anycast_tunnel(spoke: Site, hub: Site) -> bool:
        """Hub-to-hub tunnels stay unicast; a site's tunnel to an anycast hub is anycast."""
        return hub.anycast_ip is not None and spoke.name not in hub_sites

    for low, high in combinations(sorted(compiled.fabric.sites, key=lambda s: s.id), 2):
        a, b = low, high
        if anycast_tunnel(b, a) and (a.id, b.id) in direct:
            a, b = b, a  # into an anycast hub from the spoke: its one tunnel carries it
        src, dst = a.gateways[0], b.gateways[0]
        mtu = None
        gateways, involved = {src.name, dst.name}, {a.name, b.name}
        is_direct = (min(a.id, b.id), max(a.id, b.id)) in direct
        alternatives: tuple[tuple[str, IPv4Address], ...] = ()
        if anycast_tunnel(a, b) and is_direct:
            alternatives = tuple((gw.name, probe_address(b, i, sorted(b.prefixes)[0]))
                                 for i, gw in enumerate(b.gateways) if i > 0)
            gateways |= {gw.name for gw in b.gateways}
        if not is_direct:  # through a hub: it takes part too
            hubs = [tv.remote for g in (src.name, dst.name) for tv in views[g].tunnels
                    if tv.remote.hub]
            gateways |= {h.gateway for h in hubs}
            involved |= {h.site for h in hubs}
        else:
            there = views[dst.name]
            path = [(views[src.name], tv) for tv in views[src.name].tunnels
                    if tv.remote.gateway == dst.name]
            path += [(there, tv) for tv in there.tunnels if tv.remote.gateway == src.name]
            mtu = min((interface_mtu(v, tv) for v, tv in path), default=None)
        out.setdefault(src.name, []).append(PingExpect(
            src.name, (a.name, b.name), probe_address(a, 0, sorted(a.prefixes)[0]),
            probe_address(b, 0, sorted(b.prefixes)[0]), dst.name, mtu,
            tuple(sorted(gateways)), tuple(sorted(involved)), alternatives))
    return out


def expect_fabric(compiled: CompiledFabric) -> dict[str, GatewayExpect]:
    """Gateway name -> its expected state, for every gateway of the fabric."""
    views = {gw.name: gateway_view(compiled, gw.name) for _, gw in compiled.gateways()}
    pings = _pings(compiled, views)
    out = {}
    for name, view in views.items():
        out[name] = GatewayExpect(
            name, view.site.name, view.gateway.platform,
            tuple(_tunnel(view, tv) for tv in view.tunnels),
            tuple(BgpExpect(name, tv.name, tv.remote.gateway, (view.site.name, tv.remote.site),
                            tv.bgp_remote.address, tv.bgp_remote.asn) for tv in view.tunnels),
            _routes(view), tuple(pings.get(name, ())))
    return out


def lan_addresses(compiled: CompiledFabric, gateway: str) -> tuple[tuple[IPv4Address,
                                                                         IPv4Network], ...]:
    """(probe address, prefix) of every prefix of the gateway's site: its LAN in the lab."""
    for site, gw in compiled.gateways():
        if gw.name == gateway:
            index = site.gateways.index(gw)
            return tuple((probe_address(site, index, p), p) for p in sorted(site.prefixes))
    raise KeyError(gateway)
