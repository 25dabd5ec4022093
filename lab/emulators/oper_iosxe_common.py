"""IOS-XE configuration facts, whichever way they were read (native XML or CLI text), and the
DeviceIntent they make.

The chain a device follows: interface Tunnel -> tunnel protection ipsec profile -> transform
sets, PFS, ikev2-profile (identities, authentication, keyring peer for the destination); the
IKE proposals are those of the ikev2 policies matching the tunnel source (or matching any
local address). An ikev2 proposal offers every combination of its algorithms. BGP announces
its `network` statements through the neighbor's outbound route-map or prefix-list.
"""

import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Interface, IPv4Network

from lab.emulators.oper_model import (
    AuthMethod,
    BgpNeighbor,
    DeviceIntent,
    EspProposal,
    FilterTerm,
    Identity,
    IkeProposal,
    PrefixList,
    PrefixRule,
    RouteFilter,
    TunnelEndpoint,
)
from lab.emulators.oper_tree import secret_digest

# ikev2 proposal encryption (XML leaf name or CLI keyword) -> model
IKE_ENCRYPTION = {
    "aes-cbc-128": "aes128", "aes-cbc-192": "aes192", "aes-cbc-256": "aes256",
    "aes-gcm-128": "aes128gcm16", "aes-gcm-256": "aes256gcm16", "3des": "3des",
    "en-3des": "3des", "des": "des",
}
AEAD = ("aes128gcm16", "aes256gcm16")
IKE_HASH = {h: h for h in ("md5", "sha1", "sha256", "sha384", "sha512")}
# ikev2 proposal group (XML leaf name or CLI number) -> DH group
IKE_GROUP = {"one": 1, "two": 2, "five": 5, "fourteen": 14, "fifteen": 15, "sixteen": 16,
             "nineteen": 19, "twenty": 20, "twenty-one": 21, "twenty-four": 24}
# transform-set (esp, key bits) -> model
ESP_ENCRYPTION = {
    ("esp-aes", 128): "aes128", ("esp-aes", 192): "aes192", ("esp-aes", 256): "aes256",
    ("esp-aes", None): "aes128", ("esp-gcm", 128): "aes128gcm16",
    ("esp-gcm", 256): "aes256gcm16", ("esp-gcm", None): "aes128gcm16",
    ("esp-gmac", 128): "aes128gmac", ("esp-gmac", 256): "aes256gmac",
    ("esp-3des", None): "3des", ("esp-des", None): "des",
}
ESP_HMAC = {"esp-md5-hmac": "md5", "esp-sha-hmac": "sha1", "esp-sha256-hmac": "sha256",
            "esp-sha384-hmac": "sha384", "esp-sha512-hmac": "sha512"}
PSK_AUTH = "pre-share"
DEFAULT_IKE_LIFETIME = 86400
DEFAULT_ESP_LIFETIME = 3600


def group_number(word: str) -> int | None:
    return IKE_GROUP.get(word) or (int(word) if word.isdigit() else None)


@dataclass
class IkeProposalCfg:
    encryption: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    prf: list[str] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)

    def offers(self) -> list[IkeProposal]:
        ciphers = [IKE_ENCRYPTION[e] for e in self.encryption if e in IKE_ENCRYPTION]
        out = []
        for cipher, group in itertools.product(ciphers, self.groups):
            integrities: list[str | None] = [None] if cipher in AEAD else [
                IKE_HASH[i] for i in self.integrity if i in IKE_HASH]
            for integrity in integrities:
                for prf in [IKE_HASH[p] for p in self.prf if p in IKE_HASH] or (
                        [integrity] if integrity else []):
                    out.append(IkeProposal(cipher, integrity, prf, group))
        return out


@dataclass
class IkeProfileCfg:
    local_id: Identity | None = None
    remote_id: Identity | None = None
    auth_local: str = ""
    auth_remote: str = ""
    keyring: str = ""
    lifetime: int = DEFAULT_IKE_LIFETIME


@dataclass
class IpsecProfileCfg:
    transform_sets: list[str] = field(default_factory=list)
    pfs: int | None = None
    lifetime: int = DEFAULT_ESP_LIFETIME
    ikev2_profile: str = ""


@dataclass
class InterfaceCfg:
    address: str | None = None  # with prefix length
    shutdown: bool = False
    source: str = ""  # address or interface name
    destination: str = ""
    protection: str = ""


@dataclass
class NeighborCfg:
    remote_as: int = 0
    description: str = ""
    shutdown: bool = False
    route_map_in: str = ""
    route_map_out: str = ""
    prefix_list_in: str = ""
    prefix_list_out: str = ""


@dataclass
class IosConfig:
    proposals: dict[str, IkeProposalCfg] = field(default_factory=dict)
    policies: list[tuple[list[str], list[str]]] = field(default_factory=list)  # (locals, props)
    keyrings: dict[str, dict[str, str]] = field(default_factory=dict)  # peer address -> PSK
    ike_profiles: dict[str, IkeProfileCfg] = field(default_factory=dict)
    transform_sets: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    ipsec_profiles: dict[str, IpsecProfileCfg] = field(default_factory=dict)
    interfaces: dict[str, InterfaceCfg] = field(default_factory=dict)
    prefix_lists: dict[str, list[PrefixRule]] = field(default_factory=dict)
    route_maps: dict[str, list[FilterTerm]] = field(default_factory=dict)
    asn: int | None = None
    router_id: str | None = None
    neighbors: dict[str, NeighborCfg] = field(default_factory=dict)
    networks: list[str] = field(default_factory=list)


def transform_set(esp: str, bits: int | None, hmac: str) -> tuple[str | None, str | None]:
    return ESP_ENCRYPTION.get((esp, bits)), ESP_HMAC.get(hmac)


@lru_cache(maxsize=1 << 16)
def network(address: str, mask: str | None) -> str:
    """The network of an address and mask, parsed once per pair (a fabric-wide prefix list
    is the same hundreds of entries on every gateway)."""
    return str(IPv4Network(f"{address}/{mask}" if mask else address, strict=False))


def interface_address(address: str, mask: str) -> str:
    return str(IPv4Interface(f"{address}/{mask}"))


def _local_ip(cfg: IosConfig, source: str) -> str:
    """`tunnel source` names an address or an interface (take its address)."""
    interface = cfg.interfaces.get(source)
    if interface is not None:
        return str(IPv4Interface(interface.address).ip) if interface.address else ""
    return source


def _ike_offers(cfg: IosConfig, local: str) -> tuple[IkeProposal, ...]:
    names = [n for locals_, props in cfg.policies if not locals_ or local in locals_
             for n in props]
    offers = [o for n in names if n in cfg.proposals for o in cfg.proposals[n].offers()]
    return tuple(dict.fromkeys(offers))


def _auth(profile: IkeProfileCfg) -> AuthMethod:
    methods = {profile.auth_local, profile.auth_remote}
    return AuthMethod.PSK if methods == {PSK_AUTH} else AuthMethod.CERTIFICATE


def _tunnel(cfg: IosConfig, name: str, interface: InterfaceCfg) -> TunnelEndpoint | None:
    protection = cfg.ipsec_profiles.get(interface.protection)
    if protection is None:
        return None
    profile = cfg.ike_profiles.get(protection.ikev2_profile, IkeProfileCfg())
    local = _local_ip(cfg, interface.source)
    esp = []
    for ts in protection.transform_sets:
        encryption, integrity = cfg.transform_sets.get(ts, (None, None))
        if encryption is not None:
            esp.append(EspProposal(encryption, integrity, protection.pfs))
    auth = _auth(profile)
    psk = cfg.keyrings.get(profile.keyring, {}).get(interface.destination, "")
    return TunnelEndpoint(
        name=interface.protection, interface=name, local_address=local,
        remote_address=interface.destination, ike=_ike_offers(cfg, local), esp=tuple(esp),
        local_id=profile.local_id or Identity("address", local), remote_id=profile.remote_id,
        auth=auth, inner=interface.address, ike_lifetime=profile.lifetime,
        esp_lifetime=protection.lifetime,
        cert_method="" if auth is AuthMethod.PSK else profile.auth_local,
        enabled=not interface.shutdown,
        psk_digest=secret_digest(psk) if auth is AuthMethod.PSK else None)


def _filter(cfg: IosConfig, route_map: str, prefix_list: str) -> RouteFilter:
    """Neighbor policy: a route-map (no match: deny), a prefix-list, or nothing (all)."""
    if route_map:
        return RouteFilter(tuple(cfg.route_maps.get(route_map, [])), False)
    if prefix_list:
        rules: PrefixList = tuple(cfg.prefix_lists.get(prefix_list, []))
        return RouteFilter((FilterTerm((rules,), True),), False)
    return RouteFilter()


def ios_intent(cfg: IosConfig, gateway: str) -> DeviceIntent:
    tunnels = [t for name, i in cfg.interfaces.items()
               if (t := _tunnel(cfg, name, i)) is not None]
    addresses = {str(IPv4Interface(i.address).ip) for i in cfg.interfaces.values() if i.address}
    addresses.update(t.local_address for t in tunnels if t.local_address)
    addresses.update(a for locals_, _ in cfg.policies for a in locals_)
    neighbors = []
    for address, n in cfg.neighbors.items():
        sends = _filter(cfg, n.route_map_out, n.prefix_list_out)
        neighbors.append(BgpNeighbor(
            address=address, remote_as=n.remote_as, description=n.description,
            enabled=not n.shutdown,
            announces=tuple(p for p in cfg.networks if sends.accepts(p)),
            accepts=_filter(cfg, n.route_map_in, n.prefix_list_in)))
    return DeviceIntent(gateway=gateway, platform="iosxe", local_addresses=frozenset(addresses),
                        tunnels=tuple(tunnels), local_as=cfg.asn, router_id=cfg.router_id,
                        neighbors=tuple(neighbors) if cfg.asn is not None else ())
