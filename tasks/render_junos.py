"""Juniper JunOS (SRX/vSRX) renderer: route-based IKEv2 tunnels bound to st0 units, with BGP,
as a NETCONF `<configuration>` document (config.xml, no YANG namespaces, the form Junos
load-configuration takes) and the same configuration as `set` commands (config.set).

Vendor spellings are data tables taken from the junos-es 24.4R1 YANG. Templates only loop
over JunosConfig. Names of per-tunnel objects carry the st0 unit number, not the tunnel name:
Junos limits IKE/IPsec object names to 32 characters (the tunnel name is in descriptions).

Choices the model does not carry:
- the IKE external interface is EXTERNAL_INTERFACE (ge-0/0/0.0, the first revenue port of a
  vSRX/SRX); it is also put in the UNTRUST_ZONE with host-inbound IKE.
- `security flow tcp-mss ipsec-vpn` is one value per device: the smallest MSS of its tunnels.
- Junos sends BGP keepalives every hold-time / 3; the model's keepalive is not rendered.
- max_prefixes is `prefix-limit ... teardown`: Junos brings the session back after a short
  while (no idle-timeout), unlike IOS-XE's maximum-prefix, which keeps it down.
- NAT traversal is left on (the Junos default): a peer that forces UDP encapsulation
  (strongSwan kernel-libipsec) gets it without any Junos setting.
- Only the fabric's own security policy is rendered: transit inside the vpn zone on gateways
  that pass fabric prefixes on (hubs). Policies towards the site's LAN zones are site-local.
"""

import re
from dataclasses import dataclass
from typing import Literal, TypeVar

import jinja2

from inventory.crypto import CIPHERS
from inventory.model import Platform
from inventory.multihoming import MULTIHOMING
from tasks.errors import RenderError
from tasks.render_context import GatewayView, TunnelView, require_unicast

# security ike proposal encryption-algorithm
IKE_ENCRYPTION: dict[str, str] = {
    "des": "des-cbc",
    "3des": "3des-cbc",
    "aes128": "aes-128-cbc",
    "aes192": "aes-192-cbc",
    "aes256": "aes-256-cbc",
    "aes128gcm16": "aes-128-gcm",
    "aes256gcm16": "aes-256-gcm",
}
# Junos has no IKE PRF setting in 24.4R1: AEAD ciphers imply it (aes-256-gcm -> PRF-HMAC-
# SHA-384, Juniper's prf-algorithm page; aes-128-gcm -> SHA-256 is the same rule, unverified)
# and for CBC the PRF is the HMAC of authentication-algorithm.
IKE_AEAD_PRF: dict[str, str] = {"aes128gcm16": "sha256", "aes256gcm16": "sha384"}
# security ike proposal authentication-algorithm
IKE_HASH: dict[str, str] = {
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha-256",
    "sha384": "sha-384",
    "sha512": "sha-512",
}
# security ike proposal dh-group, security ipsec policy perfect-forward-secrecy keys
DH_GROUP: dict[int, str] = {n: f"group{n}" for n in (1, 2, 5, 14, 15, 16, 19, 20, 21, 24)}
# security ipsec proposal encryption-algorithm
ESP_ENCRYPTION: dict[str, str] = {
    "des": "des-cbc",
    "3des": "3des-cbc",
    "aes128": "aes-128-cbc",
    "aes192": "aes-192-cbc",
    "aes256": "aes-256-cbc",
    "aes128gcm16": "aes-128-gcm",
    "aes256gcm16": "aes-256-gcm",
    "chacha20poly1305": "chacha20-poly1305",
}
# security ipsec proposal authentication-algorithm (the RFC 4868 truncations for SHA-2)
ESP_HMAC: dict[str, str] = {
    "md5": "hmac-md5-96",
    "sha1": "hmac-sha1-96",
    "sha256": "hmac-sha-256-128",
    "sha384": "hmac-sha-384",
    "sha512": "hmac-sha-512",
}
# fabric.auth -> security ike proposal authentication-method
AUTH_METHOD: dict[str, str] = {
    "psk": "pre-shared-keys",
    "ecdsa-p256": "ecdsa-signatures-256",
    "ecdsa-p384": "ecdsa-signatures-384",
    "rsa-3072": "rsa-signatures",
    "rsa-4096": "rsa-signatures",
}
# crypto.dpd.action -> security ipsec vpn establish-tunnels: restart and clear both bring a
# dead tunnel back at once (a fabric link is always wanted), trap waits for traffic.
ESTABLISH: dict[str, str] = {"restart": "immediately", "clear": "immediately",
                             "trap": "on-traffic"}
DPD_THRESHOLD = 3  # missed probes before the peer is declared dead

# Value ranges of the junos-es 24.4R1 YANG leaves.
LIMITS: dict[str, tuple[int, int]] = {
    "IKE lifetime": (180, 86400),
    "ESP lifetime": (180, 86400),
    "DPD interval": (2, 60),
    "BFD interval": (1, 255000),
    "BFD multiplier": (1, 255),
    "BGP hold time": (0, 65535),
    "BGP prefix-limit": (1, 4294967295),
    "tcp-mss": (64, 65535),
}

EXTERNAL_INTERFACE = "ge-0/0/0.0"
UNTRUST_ZONE = "untrust"
VPN_ZONE = "vpn"
VPN_ZONE_PROTOCOLS = ("bgp", "bfd")
UNTRUST_SERVICES = ("ike",)
TUNNEL_INTERFACE = "st0"

PREFIX = "DCVPN"
IKE_PROPOSAL = f"{PREFIX}-IKE-PROP"
ESP_PROPOSAL = f"{PREFIX}-ESP-PROP"
IPSEC_POLICY = f"{PREFIX}-IPSEC-POL"
CA_PROFILE = f"{PREFIX}-CA"
# With fabric.auth.crl_url the ca-profile fetches the CRL itself (`revocation-check crl url`)
# this often (hours, 0..8784; JunOS default 24), so a revocation published there reaches the
# device without a deploy; the IOS-XE trustpoint caches it as long (render_iosxe).
CRL_REFRESH_HOURS = 1
OWN_LIST = f"{PREFIX}-OWN"
FABRIC_LIST = f"{PREFIX}-FABRIC"
TRANSIT_POLICY = f"{PREFIX}-TRANSIT"

GroupType = Literal["external", "internal"]
# (bgp mode, this side's role) -> (group name, type, route reflector cluster)
BGP_GROUPS: dict[tuple[str, str], tuple[str, GroupType, bool]] = {
    ("ebgp", "peer"): (f"{PREFIX}-EBGP", "external", False),
    ("ibgp", "peer"): (f"{PREFIX}-IBGP", "internal", False),
    ("ibgp", "rr-client"): (f"{PREFIX}-IBGP", "internal", False),
    ("ibgp", "route-reflector"): (f"{PREFIX}-RR-CLIENTS", "internal", True),
}

_PLAIN_WORD = re.compile(r"^[A-Za-z0-9._:/@+=-]+$")


@dataclass(frozen=True, slots=True)
class Text:
    """A free-form value: as is in XML (autoescaped), quoted where `set` needs it."""

    xml: str
    set: str


def text(value: str) -> Text:
    if _PLAIN_WORD.match(value):
        return Text(value, value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return Text(value, f'"{escaped}"')


@dataclass(frozen=True, slots=True)
class IkeProposal:
    name: str
    authentication_method: str
    dh_group: str
    encryption: str
    authentication: str | None  # None for AEAD ciphers
    lifetime: int


@dataclass(frozen=True, slots=True)
class EspProposal:
    name: str
    encryption: str
    authentication: str | None
    lifetime: int
    esn: bool


@dataclass(frozen=True, slots=True)
class CaProfile:
    name: str
    identity: str
    crl_url: Text | None = None  # fabric.auth.crl_url
    crl_refresh_hours: int = CRL_REFRESH_HOURS


def _ca_profile(view: GatewayView) -> CaProfile:
    url = view.spec.auth.crl_url
    return CaProfile(CA_PROFILE, CA_PROFILE, text(url) if url is not None else None)


@dataclass(frozen=True, slots=True)
class Peer:
    """One tunnel: IKE policy and gateway, IPsec VPN and its st0 unit."""

    unit: int
    description: Text
    ike_policy: str
    gateway: str
    vpn: str
    psk: Text | None  # a secret reference, never the key
    local_id: Text
    remote_id: Text
    # `ike gateway address`: the peer's public_ip, then its uplinks as backup peers (Junos
    # has no MOBIKE: it re-establishes to the next address once DPD declares one dead)
    remote_addresses: tuple[str, ...]
    address: str  # inner address with prefix length
    mtu: int

    @property
    def interface(self) -> str:
        return f"{TUNNEL_INTERFACE}.{self.unit}"


@dataclass(frozen=True, slots=True)
class Neighbor:
    address: str
    description: Text
    peer_as: int | None  # None in internal groups (the local AS)
    import_policy: str
    export_policy: str


@dataclass(frozen=True, slots=True)
class BgpGroup:
    name: str
    type: GroupType
    cluster: str | None
    neighbors: tuple[Neighbor, ...]


@dataclass(frozen=True, slots=True)
class PrefixList:
    name: str
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Term:
    name: str
    prefix_lists: tuple[str, ...]  # `from prefix-list` (any of them); empty: every route
    local_pref: int | None
    metric: int | None
    next_hop_self: bool
    action: Literal["accept", "reject"]
    # `from prefix-list-filter <list> orlonger` (any of them): a listed prefix or a longer one
    filters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyStatement:
    name: str
    terms: tuple[Term, ...]


@dataclass(frozen=True, slots=True)
class JunosConfig:
    local_public_ip: str
    external_interface: str
    untrust_zone: str
    untrust_services: tuple[str, ...]
    vpn_zone: str
    vpn_zone_protocols: tuple[str, ...]
    tunnel_interface: str
    ike_proposal: IkeProposal
    esp_proposal: EspProposal
    ipsec_policy: str
    pfs: str | None
    ca_profile: CaProfile | None
    local_certificate: Text | None
    dpd_interval: int
    dpd_threshold: int
    establish: str
    peers: tuple[Peer, ...]
    tcp_mss: int | None
    transit_policy: str | None
    asn: int
    router_id: str
    hold_time: int
    bfd_interval: int
    bfd_multiplier: int
    max_prefixes: int
    groups: tuple[BgpGroup, ...]
    prefix_lists: tuple[PrefixList, ...]
    policies: tuple[PolicyStatement, ...]


K = TypeVar("K")
V = TypeVar("V")


def _lookup(table: dict[K, V], key: K, what: str) -> V:
    try:
        return table[key]
    except KeyError:
        raise RenderError(f"JunOS has no {what} {key!r} (run dcvpn lint)") from None


def _check(what: str, value: int) -> int:
    lo, hi = LIMITS[what]
    if not lo <= value <= hi:
        raise RenderError(f"JunOS {what} {value} is outside {lo}..{hi}")
    return value


def _ike_proposal(view: GatewayView) -> IkeProposal:
    ike = view.spec.crypto.ike
    auth = view.spec.auth
    encryption = _lookup(IKE_ENCRYPTION, ike.encryption, "IKE encryption")
    implied = IKE_AEAD_PRF.get(ike.encryption)
    if implied is not None:
        authentication = None
        if ike.prf != implied:
            raise RenderError(f"JunOS derives the IKE PRF of {ike.encryption} ({implied}); "
                              f"the model asks for prf {ike.prf}")
    else:
        if ike.integrity is None:
            raise RenderError(f"IKE encryption {ike.encryption} needs an integrity algorithm")
        if ike.prf != ike.integrity:
            raise RenderError(f"JunOS uses the IKE integrity algorithm as PRF: prf {ike.prf} "
                              f"must equal integrity {ike.integrity}")
        authentication = _lookup(IKE_HASH, ike.integrity, "IKE authentication algorithm")
    method_key = "psk" if auth.method == "psk" else auth.key_type
    return IkeProposal(
        name=IKE_PROPOSAL,
        authentication_method=_lookup(AUTH_METHOD, method_key, "IKE authentication method"),
        dh_group=_lookup(DH_GROUP, ike.dh_group, "IKE DH group"),
        encryption=encryption,
        authentication=authentication,
        lifetime=_check("IKE lifetime", ike.lifetime),
    )


def _esp_proposal(view: GatewayView) -> EspProposal:
    esp = view.spec.crypto.esp
    authentication = None
    if not CIPHERS[esp.encryption].aead:
        if esp.integrity is None:
            raise RenderError(f"ESP encryption {esp.encryption} needs an integrity algorithm")
        authentication = _lookup(ESP_HMAC, esp.integrity, "ESP integrity")
    return EspProposal(
        name=ESP_PROPOSAL,
        encryption=_lookup(ESP_ENCRYPTION, esp.encryption, "ESP encryption"),
        authentication=authentication,
        lifetime=_check("ESP lifetime", esp.lifetime),
        esn=esp.esn,
    )


def _import_policy(view: GatewayView, t: TunnelView) -> PolicyStatement:
    """The fabric's prefixes, nothing else. With fabric.bgp.accept: any prefix inside its
    ranges (DCVPN-FABRIC holds the ranges), but never the own prefixes or one inside them."""
    lp = t.session.local_pref
    if view.accept_ranges:
        terms: tuple[Term, ...] = (
            Term("own", (), None, None, False, "reject", filters=(OWN_LIST,)),
            Term("fabric", (), lp, None, False, "accept", filters=(FABRIC_LIST,)))
    elif view.fabric_prefixes:
        terms = (Term("fabric", (FABRIC_LIST,), lp, None, False, "accept"),)
    else:
        terms = ()
    return PolicyStatement(f"{PREFIX}-IN-LP{lp}",
                           (*terms, Term("reject", (), None, None, False, "reject")))


def _export_policy(view: GatewayView, t: TunnelView) -> PolicyStatement:
    """Own prefixes (and, on a gateway that transits, the fabric's), then nothing else: the
    final reject keeps Junos' default BGP export (every active BGP route) from applying."""
    med = t.session.med
    transit = t.bgp_local.export == "fabric"
    scope = "FABRIC" if transit else "OWN"
    nhs = view.spec.bgp.mode == "ibgp"  # inner addresses are not reachable from other sites
    terms: tuple[Term, ...]
    if transit and view.accept_ranges:
        terms = (Term("export", (OWN_LIST,), None, med, nhs, "accept"),
                 Term("fabric", (), None, med, nhs, "accept", filters=(FABRIC_LIST,)))
    else:
        lists = (OWN_LIST, FABRIC_LIST) if transit and view.fabric_prefixes else (OWN_LIST,)
        terms = (Term("export", lists, None, med, nhs, "accept"),)
    return PolicyStatement(f"{PREFIX}-OUT-{scope}-MED{med}",
                           (*terms, Term("reject", (), None, None, False, "reject")))


def _remote_addresses(t: TunnelView) -> tuple[str, ...]:
    """`ike gateway address`: "1 primary, upto 4 backups" (junos-es 24.4R1 YANG)."""
    addresses = tuple(str(a) for a in t.remote.addresses)
    most = MULTIHOMING[Platform.JUNOS].peer_addresses
    if most is not None and len(addresses) > most:
        raise RenderError(f"JunOS takes at most {most} addresses of peer {t.remote.gateway} "
                          f"({len(addresses)} given; run dcvpn lint)")
    return addresses


def _peer(view: GatewayView, t: TunnelView) -> Peer:
    unit = t.local.if_index
    psk = view.spec.auth.method == "psk"
    return Peer(
        unit=unit,
        description=text(f"dcvpn {t.name} to {t.remote.gateway}"),
        ike_policy=f"{PREFIX}-IKE-POL-{unit}",
        gateway=f"{PREFIX}-GW-{unit}",
        vpn=f"{PREFIX}-VPN-{unit}",
        psk=text(t.psk_ref) if psk else None,
        local_id=text(t.local.identity),
        remote_id=text(t.remote.identity),
        remote_addresses=_remote_addresses(t),
        address=f"{t.local.inner_ip}/{t.tunnel.network.prefixlen}",
        mtu=t.tunnel.mtu,
    )


def _policies(view: GatewayView, t: TunnelView) -> tuple[PolicyStatement, PolicyStatement]:
    """(import, export) policy of one BGP session; sessions of one plane share them by name."""
    return _import_policy(view, t), _export_policy(view, t)


def _groups(view: GatewayView) -> tuple[BgpGroup, ...]:
    members: dict[str, list[Neighbor]] = {}
    for t in view.tunnels:
        name, kind, _ = _lookup(BGP_GROUPS, (view.spec.bgp.mode, t.bgp_local.role), "BGP role")
        imp, exp = _policies(view, t)
        members.setdefault(name, []).append(Neighbor(
            address=str(t.bgp_remote.address),
            description=text(f"dcvpn {t.name} to {t.remote.gateway}"),
            peer_as=t.bgp_remote.asn if kind == "external" else None,
            import_policy=imp.name,
            export_policy=exp.name,
        ))
    return tuple(BgpGroup(name, kind, str(view.router_id) if cluster else None,
                          tuple(members[name]))
                 for name, kind, cluster in dict.fromkeys(BGP_GROUPS.values())
                 if name in members)


def build_config(view: GatewayView) -> JunosConfig:
    require_unicast(view, "JunOS")
    spec = view.spec
    crypto = spec.crypto
    psk = spec.auth.method == "psk"
    policies = {p.name: p for t in view.tunnels for p in _policies(view, t)}
    accepted = view.accept_ranges or view.fabric_prefixes
    lists = [PrefixList(FABRIC_LIST, tuple(str(p) for p in accepted)),
             PrefixList(OWN_LIST, tuple(str(p) for p in view.own_prefixes))]
    pfs = crypto.esp.pfs_group
    peers = tuple(_peer(view, t) for t in view.tunnels)
    mss = min((t.tunnel.mss for t in view.tunnels), default=None)
    transit = any(t.bgp_local.export == "fabric" for t in view.tunnels)
    return JunosConfig(
        local_public_ip=str(view.gateway.public_ip),
        external_interface=EXTERNAL_INTERFACE,
        untrust_zone=UNTRUST_ZONE,
        untrust_services=UNTRUST_SERVICES,
        vpn_zone=VPN_ZONE,
        vpn_zone_protocols=VPN_ZONE_PROTOCOLS,
        tunnel_interface=TUNNEL_INTERFACE,
        ike_proposal=_ike_proposal(view),
        esp_proposal=_esp_proposal(view),
        ipsec_policy=IPSEC_POLICY,
        pfs=_lookup(DH_GROUP, pfs, "PFS group") if pfs is not None else None,
        ca_profile=None if psk else _ca_profile(view),
        local_certificate=None if psk else text(view.gateway.name),
        dpd_interval=_check("DPD interval", crypto.dpd.interval),
        dpd_threshold=DPD_THRESHOLD,
        establish=ESTABLISH[crypto.dpd.action],
        peers=peers,
        tcp_mss=None if mss is None else _check("tcp-mss", mss),
        transit_policy=TRANSIT_POLICY if transit else None,
        asn=view.asn,
        router_id=str(view.router_id),
        hold_time=_check("BGP hold time", spec.bgp.timers.hold),
        bfd_interval=_check("BFD interval", spec.bgp.bfd.interval_ms),
        bfd_multiplier=_check("BFD multiplier", spec.bgp.bfd.multiplier),
        max_prefixes=_check("BGP prefix-limit", spec.bgp.max_prefixes),
        groups=_groups(view),
        prefix_lists=tuple(pl for pl in lists if pl.prefixes),
        policies=tuple(policies[name] for name in sorted(policies)),
    )


class JunosRenderer:
    platform = Platform.JUNOS

    def render(self, view: GatewayView, env: jinja2.Environment) -> dict[str, str]:
        cfg = build_config(view)
        return {
            name: env.get_template(f"junos/{name}.j2").render(cfg=cfg)
            for name in ("config.xml", "config.set")
        }

    def render_file(self, view: GatewayView, env: jinja2.Environment, name: str) -> str:
        return env.get_template(f"junos/{name}.j2").render(cfg=build_config(view))
