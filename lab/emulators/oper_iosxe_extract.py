"""A committed Cisco-IOS-XE-native configuration (NETCONF emulator) as IosConfig facts.

Element names follow the 17.15 native model (17.12 spellings where they differ: `seconds` for
`seconds-case`, `prefix-list` for `prefix-list-ordered`).
"""

from lab.emulators.oper_iosxe_common import (
    IkeProfileCfg,
    IkeProposalCfg,
    InterfaceCfg,
    IosConfig,
    IpsecProfileCfg,
    NeighborCfg,
    group_number,
    interface_address,
    ios_intent,
    network,
    transform_set,
)
from lab.emulators.oper_model import DeviceIntent, FilterTerm, Identity, PrefixRule
from lab.emulators.oper_tree import count, each, first, has, leaf, leaf_texts, leaves, number
from lab.emulators.xmlutil import Element, children, local_name

# match identity remote <kind> / identity local <kind> -> (model kind, value path)
REMOTE_IDS = {"fqdn": ("fqdn", "fqdn-name"), "email": ("email", "email-string"),
              "address": ("address", "ipv4/ipv4-address"), "key-id": ("key-id", "key-id")}
LOCAL_IDS = {"fqdn": "fqdn", "email": "email", "address": "address", "key-id": "key-id"}


def _names(element: Element | None) -> list[str]:
    """The empty leaves of a choice container (<encryption><aes-gcm-256/></encryption>)."""
    return [local_name(c) for c in children(element)] if element is not None else []


def _proposal(entry: Element) -> IkeProposalCfg:
    return IkeProposalCfg(
        encryption=[n for e in each(entry, "encryption") for n in _names(e)],
        integrity=[n for e in each(entry, "integrity") for n in _names(e)],
        prf=[n for e in each(entry, "prf") for n in _names(e)],
        groups=[g for e in each(entry, "group") for n in _names(e)
                if (g := group_number(n)) is not None])


def _remote_id(entry: Element) -> Identity | None:
    holder = first(entry, "match/identity/remote")
    for name, (kind, path) in REMOTE_IDS.items():
        found = first(holder, name)
        if found is not None:
            return Identity(kind, leaf(found, path) or leaf(holder, name))
    return None


def _local_id(entry: Element) -> Identity | None:
    holder = first(entry, "identity/local")
    for name, kind in LOCAL_IDS.items():
        value = leaf(holder, name)
        if value:
            return Identity(kind, value)
    return None


def _profile(entry: Element) -> IkeProfileCfg:
    return IkeProfileCfg(
        local_id=_local_id(entry), remote_id=_remote_id(entry),
        auth_local=next(iter(_names(first(entry, "authentication/local"))), ""),
        auth_remote=next(iter(_names(first(entry, "authentication/remote"))), ""),
        keyring=leaf(entry, "keyring/local/name"),
        lifetime=count(leaf(entry, "lifetime/seconds"), IkeProfileCfg().lifetime))


def _keyring(entry: Element) -> dict[str, str]:
    out: dict[str, str] = {}
    for peer in each(entry, "peer"):
        address = leaf(peer, "address/ipv4/ipv4-address")
        key = leaf(peer, "pre-shared-key/key") or leaf(peer, "pre-shared-key/local/key")
        if address:
            out[address] = key
    return out


def _ipsec_profile(entry: Element) -> IpsecProfileCfg:
    lifetime = (leaf(entry, "set/security-association/lifetime/seconds-case")
                or leaf(entry, "set/security-association/lifetime/seconds"))
    pfs = leaf(entry, "set/pfs/group")
    return IpsecProfileCfg(
        transform_sets=leaves(entry, "set/transform-set"),
        pfs=group_number(pfs.removeprefix("group")) if pfs else None,
        lifetime=count(lifetime, IpsecProfileCfg().lifetime),
        ikev2_profile=leaf(entry, "set/ikev2-profile"))


def _interface(entry: Element) -> InterfaceCfg:
    address, mask = leaf(entry, "ip/address/primary/address"), leaf(entry,
                                                                    "ip/address/primary/mask")
    return InterfaceCfg(
        address=interface_address(address, mask) if address and mask else None,
        shutdown=has(entry, "shutdown"),
        source=leaf(entry, "tunnel/source"),
        destination=leaf(entry, "tunnel/destination-config/ipv4"),
        protection=leaf(entry, "tunnel/protection/ipsec/profile-option/name"))


def _route_map_term(cfg: IosConfig, entry: Element) -> FilterTerm:
    names = [*leaves(entry, "match/ip/address/prefix-list-ordered"),
             *leaves(entry, "match/ip/address/prefix-list")]
    lists = tuple(tuple(cfg.prefix_lists.get(n, [])) for n in names) if names else None
    return FilterTerm(lists, leaf(entry, "operation") != "deny")


def _neighbor_policies(entry: NeighborCfg, af_neighbor: Element) -> None:
    for item in each(af_neighbor, "route-map"):
        if leaf(item, "inout") == "in":
            entry.route_map_in = leaf(item, "route-map-name")
        else:
            entry.route_map_out = leaf(item, "route-map-name")
    for item in each(af_neighbor, "prefix-list"):
        if leaf(item, "inout") == "in":
            entry.prefix_list_in = leaf(item, "prefix-list-name")
        else:
            entry.prefix_list_out = leaf(item, "prefix-list-name")


def _bgp(cfg: IosConfig, bgp: Element) -> None:
    cfg.asn = number(leaf(bgp, "id"))
    cfg.router_id = leaf(bgp, "bgp/router-id/ip-id") or None
    for item in each(bgp, "neighbor"):
        cfg.neighbors[leaf(item, "id")] = NeighborCfg(
            remote_as=count(leaf(item, "remote-as"), 0), description=leaf(item, "description"),
            shutdown=has(item, "shutdown"))
    for unicast in each(bgp, "address-family/no-vrf/ipv4"):
        if leaf(unicast, "af-name") != "unicast":
            continue
        body = first(unicast, "ipv4-unicast")
        for item in each(body, "neighbor"):
            _neighbor_policies(cfg.neighbors.setdefault(leaf(item, "id"), NeighborCfg()), item)
        for item in each(body, "network/with-mask"):
            cfg.networks.append(network(leaf(item, "number"), leaf(item, "mask")))
        for item in each(body, "network/no-mask"):
            cfg.networks.append(network(leaf(item, "number"), None))


def ios_config(native: Element) -> IosConfig:
    cfg = IosConfig()
    ikev2, ipsec = first(native, "crypto/ikev2"), first(native, "crypto/ipsec")
    for entry in each(ikev2, "proposal"):
        cfg.proposals[leaf(entry, "name")] = _proposal(entry)
    for entry in each(ikev2, "policy"):
        cfg.policies.append((leaves(entry, "match/address/local-ip"),
                             leaves(entry, "proposal/proposals")))
    for entry in each(ikev2, "keyring"):
        cfg.keyrings[leaf(entry, "name")] = _keyring(entry)
    for entry in each(ikev2, "profile"):
        cfg.ike_profiles[leaf(entry, "name")] = _profile(entry)
    for entry in each(ipsec, "transform-set"):
        cfg.transform_sets[leaf(entry, "tag")] = transform_set(
            leaf(entry, "esp"), number(leaf(entry, "key-bit")), leaf(entry, "esp-hmac"))
    for entry in each(ipsec, "profile"):
        cfg.ipsec_profiles[leaf(entry, "name")] = _ipsec_profile(entry)
    interfaces = first(native, "interface")
    for kind in children(interfaces) if interfaces is not None else []:
        cfg.interfaces[f"{local_name(kind)}{leaf(kind, 'name')}"] = _interface(kind)
    for entry in each(native, "ip/prefix-lists/prefixes"):
        value = leaf_texts(entry).get
        rule = PrefixRule(network(value("ip", ""), None), number(value("ge", "")),
                          number(value("le", "")), value("action", "") != "deny")
        cfg.prefix_lists.setdefault(value("name", ""), []).append(rule)
    for entry in each(native, "route-map"):
        for term in each(entry, "route-map-without-order-seq"):
            cfg.route_maps.setdefault(leaf(entry, "name"), []).append(_route_map_term(cfg, term))
    bgp = first(native, "router/bgp")
    if bgp is not None:
        _bgp(cfg, bgp)
    return cfg


def native_intent(datastore: Element, gateway: str) -> DeviceIntent:
    """datastore: the emulator's committed tree (its <native> child holds the config)."""
    native = first(datastore, "native")
    return ios_intent(ios_config(native) if native is not None else IosConfig(), gateway)
