"""The IOS-XE CLI emulator's running configuration (a tree of lines) as IosConfig facts.

IOS has no candidate: every accepted line is committed, so the running tree is what counts.
"""

from lab.emulators.iosxe_cli_config import Node
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
from lab.emulators.oper_tree import count, number

IDENTITY_KINDS = {"fqdn": "fqdn", "address": "address", "email": "email", "key-id": "key-id"}


def _identity(words: tuple[str, ...]) -> Identity | None:
    return Identity(IDENTITY_KINDS[words[0]], words[1]) \
        if len(words) >= 2 and words[0] in IDENTITY_KINDS else None


def _proposal(node: Node) -> IkeProposalCfg:
    cfg = IkeProposalCfg()
    for line in node.children:
        head, rest = line.words[0], list(line.words[1:])
        if head == "encryption":
            cfg.encryption += rest
        elif head == "integrity":
            cfg.integrity += rest
        elif head == "prf":
            cfg.prf += rest
        elif head == "group":
            cfg.groups += [g for g in map(group_number, rest) if g is not None]
    return cfg


def _profile(node: Node) -> IkeProfileCfg:
    cfg = IkeProfileCfg()
    for line in node.children:
        w = line.words
        if w[:3] == ("match", "identity", "remote"):
            cfg.remote_id = _identity(w[3:])
        elif w[:2] == ("identity", "local"):
            cfg.local_id = _identity(w[2:])
        elif w[:2] == ("authentication", "local") and len(w) > 2:
            cfg.auth_local = w[2]
        elif w[:2] == ("authentication", "remote") and len(w) > 2:
            cfg.auth_remote = w[2]
        elif w[:2] == ("keyring", "local") and len(w) > 2:
            cfg.keyring = w[2]
        elif w[:1] == ("lifetime",) and len(w) > 1:
            cfg.lifetime = count(w[1], cfg.lifetime)
    return cfg


def _keyring(node: Node) -> dict[str, str]:
    out: dict[str, str] = {}
    for peer in node.children:
        address = next((c.words[1] for c in peer.children
                        if c.words[:1] == ("address",) and len(c.words) > 1), "")
        key = next((c.words[-1] for c in peer.children
                    if c.words[:1] == ("pre-shared-key",) and len(c.words) > 1), "")
        if address:
            out[address] = key
    return out


def _ipsec_profile(node: Node) -> IpsecProfileCfg:
    cfg = IpsecProfileCfg()
    for line in node.children:
        w = line.words
        if w[:2] == ("set", "transform-set"):
            cfg.transform_sets += list(w[2:])
        elif w[:2] == ("set", "pfs") and len(w) > 2:
            cfg.pfs = group_number(w[2].removeprefix("group"))
        elif w[:4] == ("set", "security-association", "lifetime", "seconds") and len(w) > 4:
            cfg.lifetime = count(w[4], cfg.lifetime)
        elif w[:2] == ("set", "ikev2-profile") and len(w) > 2:
            cfg.ikev2_profile = w[2]
    return cfg


def _interface(node: Node) -> InterfaceCfg:
    cfg = InterfaceCfg()
    for line in node.children:
        w = line.words
        if w[:2] == ("ip", "address") and len(w) == 4:
            cfg.address = interface_address(w[2], w[3])
        elif w == ("shutdown",):
            cfg.shutdown = True
        elif w[:2] == ("tunnel", "source") and len(w) > 2:
            cfg.source = w[2]
        elif w[:2] == ("tunnel", "destination") and len(w) > 2:
            cfg.destination = w[2]
        elif w[:4] == ("tunnel", "protection", "ipsec", "profile") and len(w) > 4:
            cfg.protection = w[4]
    return cfg


def _prefix_entry(words: tuple[str, ...]) -> tuple[str, PrefixRule] | None:
    """ip prefix-list NAME [seq N] permit|deny P [ge X] [le Y]."""
    rest = list(words[2:])
    if len(rest) < 3:
        return None
    name = rest.pop(0)
    if rest[0] == "seq":
        rest = rest[2:]
    if len(rest) < 2 or rest[0] not in ("permit", "deny"):
        return None
    bounds = dict(zip(rest[2::2], rest[3::2], strict=False))
    return name, PrefixRule(str(network(rest[1], None)), number(bounds.get("ge", "")),
                            number(bounds.get("le", "")), rest[0] == "permit")


def _route_map_term(cfg: IosConfig, node: Node) -> FilterTerm:
    names = [n for c in node.children if c.words[:4] == ("match", "ip", "address", "prefix-list")
             for n in c.words[4:]]
    lists = tuple(tuple(cfg.prefix_lists.get(n, [])) for n in names) if names else None
    return FilterTerm(lists, node.words[2] == "permit" if len(node.words) > 2 else True)


def _neighbor_line(cfg: IosConfig, w: tuple[str, ...]) -> None:
    entry = cfg.neighbors.setdefault(w[1], NeighborCfg())
    setting = w[2:]
    if setting[:1] == ("remote-as",) and len(setting) > 1:
        entry.remote_as = count(setting[1], 0)
    elif setting[:1] == ("description",):
        entry.description = " ".join(setting[1:])
    elif setting == ("shutdown",):
        entry.shutdown = True
    elif setting[:1] == ("route-map",) and len(setting) == 3:
        if setting[2] == "in":
            entry.route_map_in = setting[1]
        else:
            entry.route_map_out = setting[1]
    elif setting[:1] == ("prefix-list",) and len(setting) == 3:
        if setting[2] == "in":
            entry.prefix_list_in = setting[1]
        else:
            entry.prefix_list_out = setting[1]


def _bgp(cfg: IosConfig, node: Node) -> None:
    cfg.asn = number(node.words[2]) if len(node.words) > 2 else None
    for line in node.children:
        w = line.words
        if w[:2] == ("bgp", "router-id") and len(w) > 2:
            cfg.router_id = w[2]
        elif w[:1] == ("neighbor",) and len(w) > 2:
            _neighbor_line(cfg, w)
        elif w[:2] == ("address-family", "ipv4") and w[2:] in ((), ("unicast",)):
            for item in line.children:
                v = item.words
                if v[:1] == ("network",) and len(v) > 1:
                    mask = v[3] if len(v) > 3 and v[2] == "mask" else None
                    cfg.networks.append(network(v[1], mask))
                elif v[:1] == ("neighbor",) and len(v) > 2:
                    _neighbor_line(cfg, v)
        elif w[:1] == ("network",) and len(w) > 1:
            cfg.networks.append(network(w[1], w[3] if len(w) > 3 else None))


def ios_config(root: Node) -> IosConfig:
    cfg = IosConfig()
    route_maps: list[Node] = []
    for node in root.children:
        w = node.words
        if w[:3] == ("crypto", "ikev2", "proposal") and len(w) > 3:
            cfg.proposals[w[3]] = _proposal(node)
        elif w[:3] == ("crypto", "ikev2", "policy"):
            locals_ = [c.words[3] for c in node.children
                       if c.words[:3] == ("match", "address", "local") and len(c.words) > 3]
            proposals = [n for c in node.children if c.words[:1] == ("proposal",)
                         for n in c.words[1:]]
            cfg.policies.append((locals_, proposals))
        elif w[:3] == ("crypto", "ikev2", "keyring") and len(w) > 3:
            cfg.keyrings[w[3]] = _keyring(node)
        elif w[:3] == ("crypto", "ikev2", "profile") and len(w) > 3:
            cfg.ike_profiles[w[3]] = _profile(node)
        elif w[:3] == ("crypto", "ipsec", "transform-set") and len(w) > 4:
            bits = number(w[5]) if len(w) > 5 else None
            hmac = w[6] if bits is not None and len(w) > 6 else (w[5] if len(w) > 5 else "")
            cfg.transform_sets[w[3]] = transform_set(w[4], bits, hmac)
        elif w[:3] == ("crypto", "ipsec", "profile") and len(w) > 3:
            cfg.ipsec_profiles[w[3]] = _ipsec_profile(node)
        elif w[:1] == ("interface",) and len(w) > 1:
            cfg.interfaces[w[1]] = _interface(node)
        elif w[:2] == ("ip", "prefix-list"):
            entry = _prefix_entry(w)
            if entry is not None:
                cfg.prefix_lists.setdefault(entry[0], []).append(entry[1])
        elif w[:1] == ("route-map",) and len(w) > 1:
            route_maps.append(node)
        elif w[:2] == ("router", "bgp"):
            _bgp(cfg, node)
    for node in route_maps:  # after the prefix lists they refer to
        cfg.route_maps.setdefault(node.words[1], []).append(_route_map_term(cfg, node))
    return cfg


def cli_intent(root: Node, gateway: str) -> DeviceIntent:
    return ios_intent(ios_config(root), gateway)
