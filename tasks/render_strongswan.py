"""strongSwan (swanctl) + FRR renderer: swanctl.conf, strongswan.conf, frr.conf, interfaces.sh.

Layout decisions (the lab and the deploy step rely on them):

- strongswan.conf is complete for charon-systemd (`load_modular = no`, explicit plugin list).
  Its vici socket (`charon.vici`) and log (`charon.log`) are *relative paths*: they resolve
  against the working directory of charon-systemd and swanctl, so whoever starts them picks
  the folder. Start both with the gateway's folder as working directory and
  `STRONGSWAN_CONF=<folder>/strongswan.conf`; swanctl then finds the socket through its
  `swanctl.socket` setting (or pass `--uri unix://<folder>/charon.vici`).
- swanctl.conf never holds a secret. With PSK auth its `secrets` section includes
  `swanctl-secrets.conf` (resolved relative to swanctl.conf's folder), which is rendered with
  `${dcvpn-secret:psk/<tunnel>}` references only: the deploy step replaces them from the
  secrets directory and installs the file 0600. An unresolved reference is a swanctl syntax
  error, so a forgotten substitution cannot load as a key. Certificate auth expects
  `x509/<gateway>.pem`, its key under `private/` and the fabric CA under `x509ca/`.
- Data plane XFRM (production): `if_id_in/out` = the tunnel's interface index, 0/0 selectors,
  the initiating end `start_action = trap|start`.
- Exactly one end of a tunnel initiates (TunnelRole says which, and why).
- kernel-libipsec (the lab) has no interface ids: it picks the outbound SA by the most specific
  matching policy, checks decrypted packets against the inbound policy, and installs a route
  per outbound policy only if the host has an address inside the negotiated *local* selector.
  So selectors are narrowed per tunnel: local = own inner /32 + own prefixes, remote = peer
  inner /32 + peer prefixes. Transit through a hub uses 0/0 instead of prefix lists (which IKE
  narrowing would turn into unaddressed local selectors on the hub): the spoke's tunnel that
  carries transit (TunnelView.transit, at most one) has remote 0/0, and a hub offers
  local 0/0 on plane 0 towards non-hubs. Only plane 0 carries prefixes; planes > 0 carry the
  inner /32s only. The narrowed remote selectors of a gateway must not overlap (checked
  here). Trap policies fail to install on libipsec, hence the initiating end's
  `start_action = start`. libipsec
  reads ipsec0 with a buffer of its initial MTU (1400), so its tunnel MTU is capped at 1400.
- frr.conf has no `exit` lines: a daemon started with `-f frr.conf` reads the whole file,
  skips the other daemons' commands and would leave config mode at an `exit` it cannot pair.
- interfaces.sh (idempotent, root) sets addresses, MTU, the TCP MSS clamp (nftables) and IP
  forwarding; on libipsec it runs after charon has created ipsec0 and before
  `swanctl --load-all` (again after a restart), and removes charon's table-220 rule so only
  BGP decides routing.
"""

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Network

import jinja2

from inventory.capacity import rekey_jitter as jitter
from inventory.crypto import CIPHERS, DH_GROUPS
from inventory.durations import format_duration
from inventory.model import MAX_SITE_ID, DataPlane, EspPolicy, IkePolicy, Platform
from inventory.mtu import IPV4_HEADER, TCP_HEADER
from inventory.multihoming import MULTIHOMING
from inventory.topology import CompiledFabric, Endpoint
from tasks.errors import RenderError
from tasks.render_context import GatewayView, TunnelView
from tasks.running_intent import orlonger

VICI_SOCKET = "charon.vici"
CHARON_LOG = "charon.log"
SECRETS_FILE = "swanctl-secrets.conf"
LIBIPSEC_DEVICE = "ipsec0"
LIBIPSEC_TUN_MTU = 1400
ROUTING_TABLE = 220
ROUTING_TABLE_PRIO = 32800  # behind main (32766): charon's routes never beat BGP's
ANY = IPv4Network("0.0.0.0/0")

CHARON_PLUGINS = ("random nonce openssl pem pkcs1 pkcs8 x509 pubkey constraints revocation hmac "
                  "kdf gcm aes sha2 {kernel} socket-default vici updown")
SWANCTL_PLUGINS = "pem pkcs1 pkcs8 x509 revocation constraints pubkey openssl random"
# With fabric.auth.crl_url: the revocation plugin fetches a peer certificate's CRL distribution
# point over HTTP through a fetcher plugin when no installed CRL is current.
CRL_FETCHER_PLUGIN = "curl"


@dataclass(frozen=True, slots=True)
class DataPlaneStyle:
    kernel_plugins: str
    start_action: str  # of the initiating end (TunnelRole)
    close_action: str  # of the initiating end
    narrowed: bool  # per-tunnel selectors instead of 0/0 + if_id
    routing_table: int | None  # charon's own route table, whose rule interfaces.sh removes


DATA_PLANES: dict[DataPlane, DataPlaneStyle] = {
    DataPlane.XFRM: DataPlaneStyle("kernel-netlink", "trap|start", "trap", narrowed=False,
                                   routing_table=None),
    DataPlane.LIBIPSEC: DataPlaneStyle("kernel-libipsec kernel-netlink", "start", "start",
                                       narrowed=True, routing_table=ROUTING_TABLE),
}


@dataclass(frozen=True, slots=True)
class Retransmit:
    """charon's IKE retransmission schedule (strongswan.conf `retransmit_*`).

    A dead peer is declared after dpd_delay plus the whole schedule: timeout * base^n for
    n = 0..tries (charon's default 4 s, 1.8, 5 tries waits 165 s). That window is the
    failover time of an anycast hub, so gateways with anycast tunnels get a shorter one.
    """

    timeout: float
    base: float
    tries: int

    @property
    def window(self) -> float:
        return sum(self.timeout * self.base ** n for n in range(self.tries + 1))


ANYCAST_RETRANSMIT = Retransmit(timeout=2.0, base=1.4, tries=3)  # 14.2 s


INHERIT = ""  # SaActions: the data plane's start/close action, the model's crypto.dpd.action


@dataclass(frozen=True, slots=True)
class SaActions:
    """A CHILD_SA's swanctl start/close/dpd actions."""

    start_action: str
    close_action: str
    dpd_action: str


class TunnelRole(StrEnum):
    """Exactly one end of a tunnel brings it up and keeps it up; the other only responds.

    Why: with `start_action = start` and `close_action = start` on both ends (the rendering
    before), every reload of a changed connection duplicated SAs. swanctl.conf(5): replacing a
    CHILD_SA config whose start_action is not `none` performs "the inverse action" (its SAs
    are closed; vici closes the whole IKE_SA when that child is its only one), then the start
    action again. A deploy reloads both ends, so both closed and both initiated, and each
    end's close_action = start answered the other's DELETE with one more initiation: up to
    three IKE SAs per tunnel, which kernel-libipsec (outbound SA chosen by selectors alone)
    sometimes blackholed. close_action "acts on explicit close messages only"
    (swanctl.conf(5)); ipsec.conf(5) warns that a close action "should not be used if the
    peer uses reauthentication or uniqueids checking, as these events might trigger the
    defined action when not desired". strongSwan does not merge SAs two ends negotiate at the
    same time ("duplicates can still get created if e.g. both peers initiate them
    concurrently", strongSwan commit "child-create: Abort initiating a duplicate CHILD_SA"),
    and `unique = replace` on both ends would let each end delete the IKE SA the other
    initiated when two cross. So the roles are split and `unique` stays at its default `no`:
    a restarted initiator's IKE_AUTH carries INITIAL_CONTACT, and the responder drops the
    stale SAs of that identity.

    initiator  libipsec: start_action = start, close_action = start (the peer deleted it:
               bring it back; libipsec has no trap policies). XFRM: start_action =
               `trap|start`, close_action = trap (redundant, swanctl.conf(5), i.e. none):
               traffic re-initiates after a delete or a failed start, so a vendor peer that
               re-initiates by itself after deleting is not crossed at once. dpd_action = the
               model's crypto.dpd.action (restart by default).
    responder  start_action = none: a reload neither closes nor initiates (the running SA
               keeps its settings until the initiator rekeys or replaces it);
               close_action = none; dpd_action = clear: the initiator comes back by itself.

    Who initiates (`role`): between two strongSwan gateways the end of the lower site id (the
    compiled tunnel's first endpoint), the lower public IP on a tie. Towards IOS-XE or JunOS
    the strongSwan end always initiates, so such a tunnel never depends on the vendor side
    initiating (their sVTI / `establish-tunnels immediately` may initiate as well; strongSwan
    answers as before). What a responder cannot do alone: come back after its own charon
    restarted while the initiator still holds the old SA; the initiator's DPD notices (after
    dpd_delay and its retransmissions) and restarts, unless the restarted end is told to
    initiate once, which is safe because it holds no SA (lab.heal does that). And a
    libipsec initiator whose IKE_SA_INIT met a responder without the connection (or with
    other proposals) gets NO_PROPOSAL_CHOSEN and does not retry (seen with 5.9.8; XFRM's
    trap policies retry on traffic, libipsec has none): lab.up loads responders first, but a
    deploy that adds a tunnel or changes proposals with the initiator in an earlier wave
    than its responder leaves that libipsec tunnel down until the initiator initiates again.
    """

    INITIATOR = "initiator"
    RESPONDER = "responder"


SA_ROLES: dict[TunnelRole, SaActions] = {
    TunnelRole.INITIATOR: SaActions(INHERIT, INHERIT, INHERIT),
    TunnelRole.RESPONDER: SaActions("none", "none", "clear"),
}


ANYCAST_RANK = (1 << 32, 0)  # above every site id: an anycast end never initiates


MULTIHOMED_OFFSET = MAX_SITE_ID + 1  # subtracted: a multihomed end ranks below every other


def initiator_rank(end: Endpoint) -> tuple[int, int]:
    """Between two strongSwan gateways the lower rank initiates.

    A multihomed end (Gateway.uplinks) initiates towards single-homed ones: with MOBIKE only
    the original initiator of an IKE SA moves it to other addresses (RFC 4555 3.2; a
    responder can only tell the initiator its new address list), so the end that loses an
    uplink must be the one that decides.
    """
    if end.anycast:
        return ANYCAST_RANK
    if end.multihomed:
        return end.site_id - MULTIHOMED_OFFSET, int(end.public_ip)
    return end.site_id, int(end.public_ip)


def role(local: Endpoint, remote: Endpoint) -> TunnelRole:
    """Whether `local` initiates the tunnel to `remote` (TunnelRole).

    An anycast hub end only responds, whatever the platforms: each of its gateways would
    otherwise initiate from the shared address, and the answers reach only the one the
    underlay routes the address to.
    """
    if local.anycast:
        return TunnelRole.RESPONDER
    if remote.anycast:
        return TunnelRole.INITIATOR
    if remote.platform is not Platform.STRONGSWAN:
        return TunnelRole.INITIATOR
    if local.platform is not Platform.STRONGSWAN:
        return TunnelRole.RESPONDER
    if initiator_rank(local) < initiator_rank(remote):
        return TunnelRole.INITIATOR
    return TunnelRole.RESPONDER


def ike_proposal(ike: IkePolicy) -> str:
    """`enc-[integ-]prf<hash>-<dh>`, e.g. aes256gcm16-prfsha384-ecp384."""
    parts = [ike.encryption]
    if ike.integrity and not CIPHERS[ike.encryption].aead:
        parts.append(ike.integrity)
    parts += [f"prf{ike.prf}", DH_GROUPS[ike.dh_group].token]
    return "-".join(parts)


def esp_proposal(esp: EspPolicy) -> str:
    """`enc[-integ][-<pfs dh>][-esn]`, e.g. aes256gcm16-ecp384."""
    parts = [esp.encryption]
    if esp.integrity and not CIPHERS[esp.encryption].aead:
        parts.append(esp.integrity)
    if esp.pfs_group is not None:
        parts.append(DH_GROUPS[esp.pfs_group].token)
    if esp.esn:
        parts.append("esn")
    return "-".join(parts)


def traffic_selectors(view: GatewayView, tv: TunnelView
                      ) -> tuple[tuple[IPv4Network, ...], tuple[IPv4Network, ...]]:
    """(local_ts, remote_ts) of one tunnel; see the module docstring for the libipsec rule."""
    if not DATA_PLANES[view.data_plane].narrowed:
        return (ANY,), (ANY,)
    local: tuple[IPv4Network, ...] = (IPv4Network(tv.local.inner_ip),)
    remote: tuple[IPv4Network, ...] = (IPv4Network(tv.remote.inner_ip),)
    if tv.tunnel.plane == 0:
        local += view.own_prefixes
        remote += tv.remote_prefixes
        if view.is_hub and not tv.remote.hub:
            local = (ANY,)  # the spoke may send everything it does not reach directly
        if tv.transit:
            remote = (ANY,)
    return local, remote


def effective_mtu(view: GatewayView, tv: TunnelView) -> int:
    """Tunnel MTU on this gateway's data plane (libipsec cannot read more than 1400 bytes)."""
    if view.data_plane is DataPlane.LIBIPSEC:
        return min(tv.tunnel.mtu, LIBIPSEC_TUN_MTU)
    return tv.tunnel.mtu


def _require_disjoint(view: GatewayView,
                      selectors: list[tuple[str, tuple[IPv4Network, ...]]]) -> None:
    """libipsec prefers the most specific policy, so one 0/0 (transit) tunnel may coexist with
    narrowed ones; the narrowed ones must not overlap each other."""
    defaults = [name for name, nets in selectors if ANY in nets]
    clash = tuple(defaults[:2]) if len(defaults) > 1 else None
    spans = sorted((int(n.network_address), int(n.broadcast_address), name)
                   for name, nets in selectors if ANY not in nets for n in nets)
    end, owner = -1, ""
    for start, stop, name in spans:
        if clash is None and start <= end and name != owner:
            clash = (owner, name)
        if stop > end:
            end, owner = stop, name
    if clash is not None:
        raise RenderError(f"{view.gateway.name}: remote selectors of {clash[0]} and {clash[1]} "
                          "overlap; kernel-libipsec cannot tell the tunnels apart (run dcvpn lint)")


def _csv(nets: tuple[IPv4Network, ...]) -> str:
    return ",".join(str(n) for n in nets)


@dataclass(frozen=True, slots=True)
class SwanConn:
    name: str
    local_addrs: str
    remote_addrs: str
    mobike: str  # yes | no
    local_id: str
    remote_id: str
    encap: bool
    if_id: int | None
    local_ts: str
    remote_ts: str
    psk_ref: str
    start_action: str
    close_action: str
    dpd_action: str


@dataclass(frozen=True, slots=True)
class Iface:
    name: str
    if_id: int | None  # XFRM interface id; None: the device exists already (ipsec0)
    addresses: tuple[str, ...]
    mtu: int
    mss: int


@dataclass(frozen=True, slots=True)
class RouteMapEntry:
    action: str  # permit | deny
    seq: int
    prefix_list: str
    set: str | None


@dataclass(frozen=True, slots=True)
class RouteMap:
    name: str
    entries: tuple[RouteMapEntry, ...]


@dataclass(frozen=True, slots=True)
class Neighbor:
    address: str
    remote_as: int
    description: str
    route_map_in: str
    route_map_out: str
    rr_client: bool
    next_hop_self: bool


OWN_LIST = "DCVPN-OWN"
FABRIC_LIST = "DCVPN-FABRIC"


def sa_actions(view: GatewayView, tv: TunnelView) -> SaActions:
    """The tunnel's CHILD_SA actions on this gateway, INHERIT resolved (TunnelRole)."""
    actions = SA_ROLES[role(tv.local, tv.remote)]
    style = DATA_PLANES[view.data_plane]
    return SaActions(actions.start_action or style.start_action,
                     actions.close_action or style.close_action,
                     actions.dpd_action or view.spec.crypto.dpd.action)


def _addrs(end: Endpoint) -> str:
    """local_addrs / remote_addrs: the primary first, which is the one an initiator uses."""
    return ",".join(str(a) for a in end.addresses)


def mobike(tv: TunnelView) -> str:
    """`yes` where an end is multihomed and both ends can do MOBIKE (it is negotiated only
    when both announce it; IOS-XE and JunOS never do, inventory.multihoming). Elsewhere `no`:
    it would only float IKE to port 4500 (VENDOR-SYNTAX). Towards a vendor peer the
    multihomed end still lists every address in local_addrs, so it answers a peer that
    re-initiates to an uplink (JunOS backup peers); as initiator it uses the first."""
    both = MULTIHOMING[tv.local.platform].mobike and MULTIHOMING[tv.remote.platform].mobike
    return "yes" if both and (tv.local.multihomed or tv.remote.multihomed) else "no"


def _conns(view: GatewayView) -> list[SwanConn]:
    xfrm = not DATA_PLANES[view.data_plane].narrowed
    conns, remotes = [], []
    for tv in view.tunnels:
        local_ts, remote_ts = traffic_selectors(view, tv)
        remotes.append((tv.name, remote_ts))
        actions = sa_actions(view, tv)
        conns.append(SwanConn(
            tv.name, _addrs(tv.local), _addrs(tv.remote), mobike(tv), tv.local.identity,
            tv.remote.identity, tv.tunnel.udp_encap, tv.local.if_index if xfrm else None,
            _csv(local_ts), _csv(remote_ts), tv.psk_ref, actions.start_action,
            actions.close_action, actions.dpd_action))
    if not xfrm:
        _require_disjoint(view, remotes)
    return conns


def _ifaces(view: GatewayView) -> list[Iface]:
    tunnels = view.tunnels
    if view.data_plane is DataPlane.XFRM:
        return [Iface(f"xfrm{tv.local.if_index}", tv.local.if_index,
                      (f"{tv.local.inner_ip}/{tv.tunnel.network.prefixlen}",),
                      tv.tunnel.mtu, tv.tunnel.mss) for tv in tunnels]
    if not tunnels:
        return []
    mtu = min(effective_mtu(view, tv) for tv in tunnels)
    addresses = tuple(f"{tv.local.inner_ip}/{tv.tunnel.network.prefixlen}" for tv in tunnels)
    return [Iface(LIBIPSEC_DEVICE, None, addresses, mtu, mtu - IPV4_HEADER - TCP_HEADER)]


_last_fabric_list: tuple[CompiledFabric, str] | None = None


def _prefix_list(env: jinja2.Environment, name: str, prefixes: tuple[IPv4Network, ...]) -> str:
    return _entries(env, name, [("permit", str(p)) for p in prefixes])


def _entries(env: jinja2.Environment, name: str, entries: list[tuple[str, str]]) -> str:
    """`ip prefix-list` lines of (action, prefix with any ge/le) entries, numbered by 10."""
    return env.get_template("frr/prefix-list.j2").render(
        name=name, entries=[(10 * (i + 1), *e) for i, e in enumerate(entries)])


def _fabric_list(view: GatewayView, env: jinja2.Environment) -> str:
    """What a gateway accepts from the fabric.

    fabric.bgp.accept set: its ranges and every prefix inside them, but not the gateway's own
    prefixes or anything inside those (a peer's more-specific would pull the site's own
    traffic into a tunnel). Unset: every fabric prefix; the same text for all gateways, made
    once (the inbound route map denies the own ones first).
    """
    if view.accept_ranges:
        return _entries(env, FABRIC_LIST,
                        [("deny", orlonger(str(p))) for p in view.own_prefixes]
                        + [("permit", orlonger(str(r))) for r in view.accept_ranges])
    global _last_fabric_list  # noqa: PLW0603 - a one-entry memo; assignment is atomic
    compiled = view.compiled
    last = _last_fabric_list
    if last is not None and last[0] is compiled:
        return last[1]
    text = _prefix_list(env, FABRIC_LIST, compiled.fabric_prefixes)
    _last_fabric_list = (compiled, text)
    return text


def _policy(view: GatewayView) -> tuple[list[RouteMap], list[Neighbor]]:
    """Route maps and neighbors: announce own (hubs: the fabric), accept fabric but not own."""
    maps: dict[str, RouteMap] = {}
    neighbors = []
    ibgp = view.spec.bgp.mode == "ibgp"
    for tv in view.tunnels:
        lp, med, export = tv.session.local_pref, tv.session.med, tv.bgp_local.export
        rm_in = f"DCVPN-IN-LP{lp}"
        maps[rm_in] = RouteMap(rm_in, (
            RouteMapEntry("deny", 10, OWN_LIST, None),
            RouteMapEntry("permit", 20, FABRIC_LIST, f"local-preference {lp}")))
        rm_out = f"DCVPN-OUT-{export.upper()}-MED{med}"
        metric = f"metric {med}"
        if export == "fabric" and view.accept_ranges:  # the fabric list denies the own ones
            maps[rm_out] = RouteMap(rm_out, (RouteMapEntry("permit", 10, OWN_LIST, metric),
                                             RouteMapEntry("permit", 20, FABRIC_LIST, metric)))
        else:
            exported = FABRIC_LIST if export == "fabric" else OWN_LIST
            maps[rm_out] = RouteMap(rm_out, (RouteMapEntry("permit", 10, exported, metric),))
        neighbors.append(Neighbor(
            str(tv.bgp_remote.address), tv.bgp_remote.asn, tv.name, rm_in, rm_out,
            rr_client=tv.bgp_local.role == "route-reflector",
            # A reflector passes routes on whose next hop only it can reach.
            next_hop_self=ibgp and view.is_hub))
    return [maps[k] for k in sorted(maps)], neighbors


def _swanctl(view: GatewayView, env: jinja2.Environment, conns: list[SwanConn],
             secrets_file: str | None) -> str:
    crypto = view.spec.crypto
    ike, esp = crypto.ike, crypto.esp
    psk = view.spec.auth.method == "psk"
    return env.get_template("strongswan/swanctl.conf.j2").render(
        _common(view), conns=conns, ike_proposal=ike_proposal(ike),
        esp_proposal=esp_proposal(esp), dpd_delay=format_duration(crypto.dpd.interval),
        ike_rekey=format_duration(ike.lifetime),
        ike_rand=format_duration(jitter(ike.lifetime)), esp_rekey=format_duration(esp.lifetime),
        esp_life=format_duration(esp.lifetime + jitter(esp.lifetime)),
        esp_rand=format_duration(jitter(esp.lifetime)), auth="psk" if psk else "pubkey",
        cert=None if psk else f"{view.gateway.name}.pem", secrets_file=secrets_file)


def _frr(view: GatewayView, env: jinja2.Environment) -> str:
    bgp = view.spec.bgp
    route_maps, neighbors = _policy(view)
    return env.get_template("frr/frr.conf.j2").render(
        _common(view), asn=view.asn, router_id=str(view.router_id),
        own_prefixes=[str(p) for p in view.own_prefixes],
        own_list=_prefix_list(env, OWN_LIST, view.own_prefixes),
        fabric_list=_fabric_list(view, env),
        route_maps=route_maps, neighbors=neighbors, keepalive=bgp.timers.keepalive,
        hold=bgp.timers.hold, max_prefixes=bgp.max_prefixes, bfd=bgp.bfd)


def _common(view: GatewayView) -> dict[str, str]:
    return {"name": view.gateway.name, "site": view.site.name,
            "data_plane": str(view.data_plane)}


def _charon_plugins(view: GatewayView, style: DataPlaneStyle) -> str:
    plugins = CHARON_PLUGINS.format(kernel=style.kernel_plugins)
    fetch = view.spec.auth.method == "certificate" and view.spec.auth.crl_url is not None
    return f"{plugins} {CRL_FETCHER_PLUGIN}" if fetch else plugins


class StrongswanRenderer:
    platform = Platform.STRONGSWAN

    def render(self, view: GatewayView, env: jinja2.Environment) -> dict[str, str]:
        style = DATA_PLANES[view.data_plane]
        conns = _conns(view)
        psk = view.spec.auth.method == "psk" and bool(conns)
        files = {
            "swanctl.conf": _swanctl(view, env, conns, SECRETS_FILE if psk else None),
            "strongswan.conf": env.get_template("strongswan/strongswan.conf.j2").render(
                _common(view), plugins=_charon_plugins(view, style),
                retransmit=ANYCAST_RETRANSMIT if any(tv.tunnel.anycast for tv in view.tunnels)
                else None,
                routing_table=style.routing_table, routing_table_prio=ROUTING_TABLE_PRIO,
                vici_socket=VICI_SOCKET, log_file=CHARON_LOG, swanctl_plugins=SWANCTL_PLUGINS),
            "interfaces.sh": env.get_template("strongswan/interfaces.sh.j2").render(
                _common(view), ifaces=_ifaces(view), public_ip=str(view.gateway.public_ip),
                xfrm=view.data_plane is DataPlane.XFRM, routing_table=style.routing_table,
                routing_table_prio=ROUTING_TABLE_PRIO),
            "frr.conf": _frr(view, env),
        }
        if psk:
            files[SECRETS_FILE] = env.get_template("strongswan/swanctl-secrets.conf.j2").render(
                _common(view), conns=conns)
        return files
