"""Cisco IOS-XE renderer: route-based IKEv2 tunnels (sVTI) with BGP, as a NETCONF `<config>`
payload in Cisco-IOS-XE-native (config.xml) and the same intent as CLI lines (config.cli).

Vendor spellings are data tables taken from the YANG of the supported releases (17.15.1,
17.12.1); the per-release differences live in RELEASES. Templates only loop over IosxeConfig.

With a PKI directory (`render_pki`), config.cli also carries the trustpoint's certificates
the way IOS-XE keeps them in its configuration: `crypto pki certificate chain <trustpoint>`
with the device certificate and the CA certificate as DER in hex lines. config.xml does not:
in Cisco-IOS-XE-crypto the chain list (`native/crypto/pki/certificate/chain`) has only the
serial and type of each certificate, no content (17.12.1), and is obsolete in 17.15.1. The
private key is never rendered; see tasks/pki/__init__.py for the deploy steps.
"""

from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Literal, TypeVar

import jinja2
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from inventory.model import Platform
from inventory.topology import ike_identity
from tasks.errors import RenderError
from tasks.pki.delivery import DevicePems, device_pems, issuing_ca
from tasks.pki.errors import PkiError
from tasks.pki.store import serial_hex
from tasks.render_context import GatewayView, TunnelView, require_unicast


@dataclass(frozen=True, slots=True)
class Spelling:
    xml: str  # element name or enum value in the native model
    cli: str  # CLI keyword


@dataclass(frozen=True, slots=True)
class Release:
    """What differs between the IOS-XE releases' YANG for the same CLI."""

    yang: str  # folder <yang dir>/iosxe/<yang>
    tunnel_mode_ipv4: str  # `tunnel mode ipsec ipv4`: <tunnel><mode><ipsec><X/>
    sa_lifetime_seconds: str  # `set security-association lifetime seconds`: <lifetime><X>
    match_prefix_list: str  # `match ip address prefix-list`: <match><ip><address><X>


RELEASES: dict[str, Release] = {
    "17.15": Release("17.15.1", "ipv4-mode", "seconds-case", "prefix-list-ordered"),
    "17.12": Release("17.12.1", "ipv4", "seconds", "prefix-list"),
}

# crypto ikev2 proposal: encryption (XML empty leaf / CLI keyword)
IKE_ENCRYPTION: dict[str, Spelling] = {
    "aes128": Spelling("aes-cbc-128", "aes-cbc-128"),
    "aes192": Spelling("aes-cbc-192", "aes-cbc-192"),
    "aes256": Spelling("aes-cbc-256", "aes-cbc-256"),
    "aes128gcm16": Spelling("aes-gcm-128", "aes-gcm-128"),
    "aes256gcm16": Spelling("aes-gcm-256", "aes-gcm-256"),
    "3des": Spelling("en-3des", "3des"),
    "des": Spelling("des", "des"),
}
# crypto ikev2 proposal: integrity / prf (same spelling in XML and CLI)
IKE_HASH: dict[str, str] = {h: h for h in ("md5", "sha1", "sha256", "sha384", "sha512")}
IKE_GROUP: dict[int, Spelling] = {
    1: Spelling("one", "1"),
    2: Spelling("two", "2"),
    5: Spelling("five", "5"),
    14: Spelling("fourteen", "14"),
    15: Spelling("fifteen", "15"),
    16: Spelling("sixteen", "16"),
    19: Spelling("nineteen", "19"),
    20: Spelling("twenty", "20"),
    21: Spelling("twenty-one", "21"),
    24: Spelling("twenty-four", "24"),
}
# crypto ipsec transform-set: (esp enum, key-bit or None)
ESP_ENCRYPTION: dict[str, tuple[str, int | None]] = {
    "aes128": ("esp-aes", 128),
    "aes192": ("esp-aes", 192),
    "aes256": ("esp-aes", 256),
    "aes128gcm16": ("esp-gcm", 128),
    "aes256gcm16": ("esp-gcm", 256),
    "aes128gmac": ("esp-gmac", 128),
    "aes256gmac": ("esp-gmac", 256),
    "3des": ("esp-3des", None),
    "des": ("esp-des", None),
}
ESP_HMAC: dict[str, str] = {
    "md5": "esp-md5-hmac",
    "sha1": "esp-sha-hmac",
    "sha256": "esp-sha256-hmac",
    "sha384": "esp-sha384-hmac",
    "sha512": "esp-sha512-hmac",
}
# crypto ipsec profile: set pfs <group>
PFS_GROUP: dict[int, str] = {n: f"group{n}" for n in IKE_GROUP}

KeyPair = Literal["eckeypair", "rsakeypair"]
# fabric.auth.key_type -> (ikev2 profile authentication method, trustpoint key pair kind)
CERT_AUTH: dict[str, tuple[str, KeyPair]] = {
    "ecdsa-p256": ("ecdsa-sig", "eckeypair"),
    "ecdsa-p384": ("ecdsa-sig", "eckeypair"),
    "rsa-3072": ("rsa-sig", "rsakeypair"),
    "rsa-4096": ("rsa-sig", "rsakeypair"),
}
PSK_AUTH = "pre-share"
# Without fabric.auth.crl_url: try a CRL when one is at hand, accept the certificate when not
# (the fabric CA's certificates name no distribution point, so in effect no check).
REVOCATION_CHECK: tuple[str, ...] = ("crl", "none")
# With it: fetch the CRL from the peer certificate's distribution point and refuse the peer
# when it cannot be fetched (strict), keeping a fetched CRL at most this many minutes
# (`crl cache delete-after`, 1..43200) so a revocation published there is seen within the hour
# rather than at the CRL's next-update (render_junos.CRL_REFRESH_HOURS likewise).
REVOCATION_CHECK_CDP: tuple[str, ...] = ("crl",)
CRL_CACHE_MINUTES = 60

# Value ranges of the YANG leaves (identical in 17.15.1 and 17.12.1).
LIMITS: dict[str, tuple[int, int]] = {
    "IKE lifetime": (120, 86400),
    "ESP lifetime": (120, 2592000),
    "DPD interval": (10, 3600),
    "BFD interval": (50, 9999),
    "BFD multiplier": (3, 50),
    "ip mtu": (68, 18000),
    "ip tcp adjust-mss": (500, 1460),
    "BGP keepalive": (0, 65535),
    "BGP hold time": (0, 65535),
    "BGP maximum-prefix": (1, 2147483647),
}
DPD_RETRY = 3  # seconds between DPD retransmissions (`dpd <interval> <retry> periodic`)
# `crypto pki certificate chain`: DER in upper-case hex, 4-byte groups, 8 groups a line
CHAIN_GROUP_BYTES = 4
CHAIN_LINE_GROUPS = 8
CHAIN_CA_KEYWORD = "ca"  # `certificate ca <serial>`; the device certificate has none

PREFIX = "DCVPN"
IKE_PROPOSAL = f"{PREFIX}-IKE-PROP"
IKE_POLICY = f"{PREFIX}-IKE-POL"
KEYRING = f"{PREFIX}-KEYRING"
TRANSFORM_SET = f"{PREFIX}-ESP"
OWN_LIST = f"{PREFIX}-OWN"
FABRIC_LIST = f"{PREFIX}-FABRIC"
PREFIX_LIST_STEP = 10
PREFIX_LEN_MAX = 32  # `le 32`: a prefix and every longer one inside it
ROUTE_MAP_SEQ = 10

NextHopSelf = Literal["", "self", "all"]


@dataclass(frozen=True, slots=True)
class IkeProposal:
    name: str
    encryption: Spelling
    integrity: str | None
    prf: str
    group: Spelling


@dataclass(frozen=True, slots=True)
class TransformSet:
    name: str
    esp: str
    key_bits: int | None
    hmac: str | None


@dataclass(frozen=True, slots=True)
class ChainCertificate:
    """One `certificate [ca] <serial>` entry of `crypto pki certificate chain`."""

    header: str  # "ca 01..." or "0F64..."
    hex_lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Trustpoint:
    name: str
    subject: str
    fqdn: str
    keypair: KeyPair
    revocation: tuple[str, ...]
    chain: tuple[ChainCertificate, ...] = ()  # empty unless rendered with a PKI directory
    crl_cache_minutes: int | None = None  # set with fabric.auth.crl_url


@dataclass(frozen=True, slots=True)
class PrefixEntry:
    seq: int
    action: str
    prefix: str
    le: int | None


@dataclass(frozen=True, slots=True)
class PrefixList:
    name: str
    entries: tuple[PrefixEntry, ...]


@dataclass(frozen=True, slots=True)
class RouteMap:
    name: str
    seq: int
    match: tuple[str, ...]  # prefix-list names (any of them)
    local_pref: int | None
    metric: int | None


@dataclass(frozen=True, slots=True)
class Network:
    address: str
    mask: str


@dataclass(frozen=True, slots=True)
class Peer:
    """One tunnel: its crypto objects, TunnelN interface and BGP neighbor."""

    name: str
    description: str
    ike_profile: str
    ipsec_profile: str
    psk_ref: str  # a secret reference, never the key
    local_id: str
    remote_id: str
    remote_public_ip: str
    interface: int
    inner_ip: str
    inner_mask: str
    mtu: int
    mss: int
    nat_force_encap: bool
    neighbor: str
    remote_as: int
    route_map_in: str
    route_map_out: str
    rr_client: bool
    next_hop_self: NextHopSelf


@dataclass(frozen=True, slots=True)
class IosxeConfig:
    release: Release
    local_public_ip: str
    proposal: IkeProposal
    policy: str
    auth: str  # pre-share | ecdsa-sig | rsa-sig
    keyring: str | None
    trustpoint: Trustpoint | None
    ike_lifetime: int
    dpd_interval: int
    dpd_retry: int
    transform_set: TransformSet
    pfs: str | None
    esp_lifetime: int
    bfd_interval: int
    bfd_multiplier: int
    asn: int
    router_id: str
    keepalive: int
    hold: int
    max_prefixes: int
    networks: tuple[Network, ...]
    prefix_lists: tuple[PrefixList, ...]
    route_maps: tuple[RouteMap, ...]
    peers: tuple[Peer, ...]


K = TypeVar("K")
V = TypeVar("V")


def _lookup(table: dict[K, V], key: K, what: str) -> V:
    try:
        return table[key]
    except KeyError:
        raise RenderError(f"IOS-XE has no {what} {key!r} (run dcvpn lint)") from None


def _check(what: str, value: int) -> int:
    lo, hi = LIMITS[what]
    if not lo <= value <= hi:
        raise RenderError(f"IOS-XE {what} {value} is outside {lo}..{hi}")
    return value


def release_of(view: GatewayView) -> Release:
    version = view.os_version
    if version not in RELEASES:
        raise RenderError(f"{view.gateway.name}: IOS-XE os_version {version!r} is not supported; "
                          f"known: {', '.join(RELEASES)}")
    return RELEASES[version]


def _proposal(view: GatewayView) -> IkeProposal:
    ike = view.spec.crypto.ike
    return IkeProposal(
        name=IKE_PROPOSAL,
        encryption=_lookup(IKE_ENCRYPTION, ike.encryption, "IKEv2 encryption"),
        integrity=_lookup(IKE_HASH, ike.integrity, "IKEv2 integrity") if ike.integrity else None,
        prf=_lookup(IKE_HASH, ike.prf, "IKEv2 prf"),
        group=_lookup(IKE_GROUP, ike.dh_group, "IKEv2 DH group"),
    )


def _transform_set(view: GatewayView) -> TransformSet:
    esp = view.spec.crypto.esp
    if esp.esn:
        raise RenderError("ESN is not rendered for IOS-XE (platform support is hardware-specific)")
    cipher, bits = _lookup(ESP_ENCRYPTION, esp.encryption, "ESP encryption")
    hmac = _lookup(ESP_HMAC, esp.integrity, "ESP integrity") if esp.integrity else None
    return TransformSet(TRANSFORM_SET, cipher, bits, hmac)


def chain_hex_lines(der: bytes) -> tuple[str, ...]:
    groups = [der[i:i + CHAIN_GROUP_BYTES].hex().upper()
              for i in range(0, len(der), CHAIN_GROUP_BYTES)]
    return tuple(" ".join(groups[i:i + CHAIN_LINE_GROUPS])
                 for i in range(0, len(groups), CHAIN_LINE_GROUPS))


def _chain_entry(pem: str, ca: bool) -> ChainCertificate:
    cert = x509.load_pem_x509_certificate(pem.encode())
    serial = serial_hex(cert.serial_number)
    return ChainCertificate(f"{CHAIN_CA_KEYWORD} {serial}" if ca else serial,
                            chain_hex_lines(cert.public_bytes(serialization.Encoding.DER)))


def certificate_chain(pems: DevicePems) -> tuple[ChainCertificate, ...]:
    """Device certificate first, then the CA (the order `show running-config` shows); from an
    ACME chain the CA that issued it (the one `crypto pki import` took, drivers.iosxe_pki)."""
    return (_chain_entry(pems.cert, ca=False), _chain_entry(issuing_ca(pems), ca=True))


def _trustpoint(view: GatewayView, pems: DevicePems | None) -> Trustpoint:
    identity = ike_identity(view.fabric, view.gateway)
    _, keypair = CERT_AUTH[view.spec.auth.key_type]
    fetch = view.spec.auth.crl_url is not None
    return Trustpoint(f"{PREFIX}-{view.spec.name}", f"CN={identity}", identity, keypair,
                      REVOCATION_CHECK_CDP if fetch else REVOCATION_CHECK,
                      certificate_chain(pems) if pems else (),
                      CRL_CACHE_MINUTES if fetch else None)


def _prefix_list(name: str, prefixes: tuple[IPv4Network, ...]) -> PrefixList:
    entries = tuple(PrefixEntry(PREFIX_LIST_STEP * (i + 1), "permit", str(p), None)
                    for i, p in enumerate(prefixes))
    if not entries:  # a missing prefix-list would match everything: make it match nothing
        entries = (PrefixEntry(PREFIX_LIST_STEP, "deny", "0.0.0.0/0", 32),)
    return PrefixList(name, entries)


def _accept_list(view: GatewayView) -> PrefixList:
    """What the gateway accepts from the fabric: with fabric.bgp.accept its ranges and every
    prefix inside them, its own prefixes and anything inside those first denied; otherwise
    every other site's prefix."""
    if not view.accept_ranges:
        return _prefix_list(FABRIC_LIST, view.fabric_prefixes)
    entries = [("deny", p) for p in view.own_prefixes]
    entries += [("permit", r) for r in view.accept_ranges]
    return PrefixList(FABRIC_LIST, tuple(
        PrefixEntry(PREFIX_LIST_STEP * (i + 1), action, str(net), PREFIX_LEN_MAX)
        for i, (action, net) in enumerate(entries)))


def _route_map_in(t: TunnelView) -> RouteMap:
    lp = t.session.local_pref
    return RouteMap(f"{PREFIX}-IN-LP{lp}", ROUTE_MAP_SEQ, (FABRIC_LIST,), lp, None)


def _route_map_out(t: TunnelView) -> RouteMap:
    med = t.session.med
    if t.bgp_local.export == "fabric":
        return RouteMap(f"{PREFIX}-OUT-FABRIC-MED{med}", ROUTE_MAP_SEQ,
                        (OWN_LIST, FABRIC_LIST), None, med)
    return RouteMap(f"{PREFIX}-OUT-OWN-MED{med}", ROUTE_MAP_SEQ, (OWN_LIST,), None, med)


def _next_hop_self(view: GatewayView) -> NextHopSelf:
    """iBGP: the peer's inner address is not reachable from other sites; route reflectors
    must also rewrite reflected routes (`all`)."""
    if view.spec.bgp.mode != "ibgp":
        return ""
    return "all" if view.is_hub else "self"


def _peer(view: GatewayView, t: TunnelView) -> Peer:
    return Peer(
        name=t.name,
        description=f"dcvpn {t.name} to {t.remote.gateway}",
        ike_profile=f"{PREFIX}-IKE-{t.name}",
        ipsec_profile=f"{PREFIX}-IPSEC-{t.name}",
        psk_ref=t.psk_ref,
        local_id=t.local.identity,
        remote_id=t.remote.identity,
        remote_public_ip=str(t.remote.public_ip),
        interface=t.local.if_index,
        inner_ip=str(t.local.inner_ip),
        inner_mask=str(t.tunnel.network.netmask),
        mtu=_check("ip mtu", t.tunnel.mtu),
        mss=_check("ip tcp adjust-mss", t.tunnel.mss),
        nat_force_encap=t.tunnel.udp_encap,
        neighbor=str(t.bgp_remote.address),
        remote_as=t.bgp_remote.asn,
        route_map_in=_route_map_in(t).name,
        route_map_out=_route_map_out(t).name,
        rr_client=t.bgp_local.role == "route-reflector",
        next_hop_self=_next_hop_self(view),
    )


def build_config(view: GatewayView, pems: DevicePems | None = None) -> IosxeConfig:
    require_unicast(view, "IOS-XE")
    spec = view.spec
    crypto = spec.crypto
    psk = spec.auth.method == "psk"
    route_maps = {rm.name: rm for t in view.tunnels for rm in (_route_map_in(t), _route_map_out(t))}
    pfs = crypto.esp.pfs_group
    return IosxeConfig(
        release=release_of(view),
        local_public_ip=str(view.gateway.public_ip),
        proposal=_proposal(view),
        policy=IKE_POLICY,
        auth=PSK_AUTH if psk else CERT_AUTH[spec.auth.key_type][0],
        keyring=KEYRING if psk else None,
        trustpoint=None if psk else _trustpoint(view, pems),
        ike_lifetime=_check("IKE lifetime", crypto.ike.lifetime),
        dpd_interval=_check("DPD interval", crypto.dpd.interval),
        dpd_retry=DPD_RETRY,
        transform_set=_transform_set(view),
        pfs=_lookup(PFS_GROUP, pfs, "PFS group") if pfs is not None else None,
        esp_lifetime=_check("ESP lifetime", crypto.esp.lifetime),
        bfd_interval=_check("BFD interval", spec.bgp.bfd.interval_ms),
        bfd_multiplier=_check("BFD multiplier", spec.bgp.bfd.multiplier),
        asn=view.asn,
        router_id=str(view.router_id),
        keepalive=_check("BGP keepalive", spec.bgp.timers.keepalive),
        hold=_check("BGP hold time", spec.bgp.timers.hold),
        max_prefixes=_check("BGP maximum-prefix", spec.bgp.max_prefixes),
        networks=tuple(Network(str(p.network_address), str(p.netmask))
                       for p in view.own_prefixes),
        prefix_lists=(_accept_list(view),
                      _prefix_list(OWN_LIST, view.own_prefixes)),
        route_maps=tuple(route_maps[name] for name in sorted(route_maps)),
        peers=tuple(_peer(view, t) for t in view.tunnels),
    )


def _files(cfg: IosxeConfig, env: jinja2.Environment) -> dict[str, str]:
    return {name: env.get_template(f"iosxe/{name}.j2").render(cfg=cfg)
            for name in ("config.xml", "config.cli")}


class IosxeRenderer:
    platform = Platform.IOSXE

    def render(self, view: GatewayView, env: jinja2.Environment) -> dict[str, str]:
        return _files(build_config(view), env)

    def render_file(self, view: GatewayView, env: jinja2.Environment, name: str) -> str:
        return env.get_template(f"iosxe/{name}.j2").render(cfg=build_config(view))

    def render_pki(self, view: GatewayView, env: jinja2.Environment,
                   pki_dir: Path) -> dict[str, str]:
        """`render`, with the CA and device certificate of `pki_dir` in config.cli."""
        if view.spec.auth.method != "certificate":
            return self.render(view, env)
        try:
            pems = device_pems(pki_dir, view.gateway.name)
        except PkiError as exc:
            raise RenderError(f"{view.gateway.name}: {exc}") from exc
        return _files(build_config(view, pems), env)
