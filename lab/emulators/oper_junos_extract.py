"""A committed Junos (SRX) configuration as the operational model's DeviceIntent.

The chain a device follows: ipsec vpn -> bind-interface (st0 unit address), ike gateway
(addresses, identities) -> ike policy (proposals, PSK or certificate) -> ike proposals; ipsec
policy -> proposals and PFS. proposal-set shortcuts are not expanded (no proposal: down).

Junos has no `network` statement: the emulator takes as the routes a device originates its
static routes and the prefix-list entries that its BGP export policies name but its own import
policies would not accept from a peer (routes it can only have originated itself). Transit of
learnt routes is not modelled.
"""

from dataclasses import dataclass
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
from lab.emulators.oper_tree import (
    by_name,
    count,
    each,
    first,
    first_of,
    has,
    leaf,
    leaves,
    number,
    secret_digest,
)
from lab.emulators.xmlutil import Element

IKE_ENCRYPTION = {
    "des-cbc": "des", "3des-cbc": "3des", "aes-128-cbc": "aes128", "aes-192-cbc": "aes192",
    "aes-256-cbc": "aes256", "aes-128-gcm": "aes128gcm16", "aes-256-gcm": "aes256gcm16",
}
# no PRF setting in 24.4R1: AES-GCM implies one by key size, CBC uses its HMAC
IKE_IMPLIED_PRF = {"aes-128-gcm": "sha256", "aes-256-gcm": "sha384"}
IKE_HASH = {"md5": "md5", "sha1": "sha1", "sha-256": "sha256", "sha-384": "sha384",
            "sha-512": "sha512"}
ESP_ENCRYPTION = {
    "des-cbc": "des", "3des-cbc": "3des", "aes-128-cbc": "aes128", "aes-192-cbc": "aes192",
    "aes-256-cbc": "aes256", "aes-128-gcm": "aes128gcm16", "aes-192-gcm": "aes192gcm16",
    "aes-256-gcm": "aes256gcm16", "chacha20-poly1305": "chacha20poly1305",
}
ESP_HMAC = {"hmac-md5-96": "md5", "hmac-sha1-96": "sha1", "hmac-sha-256-128": "sha256",
            "hmac-sha-256-96": "sha256", "hmac-sha-384": "sha384", "hmac-sha-512": "sha512"}
PSK_METHOD = "pre-shared-keys"
# local-identity / remote-identity choice -> (model kind, value leaf)
IDENTITY_KINDS = {"hostname": ("fqdn", "identity-hostname"),
                  "inet": ("address", "identity-ipv4"),
                  "user-at-hostname": ("email", "identity-user")}
# prefix-list-filter match type -> how much longer than a list entry a route may be (at least)
FILTER_LONGER = {"orlonger": 0, "longer": 1}
DEFAULT_IKE_LIFETIME = 28800
DEFAULT_ESP_LIFETIME = 3600


def _group(text: str) -> int | None:
    return number(text.removeprefix("group"))


def _ike_proposal(entry: Element) -> IkeProposal | None:
    encryption = leaf(entry, "encryption-algorithm")
    integrity = IKE_HASH.get(leaf(entry, "authentication-algorithm"))
    prf = IKE_IMPLIED_PRF.get(encryption) or integrity
    group = _group(leaf(entry, "dh-group"))
    if encryption not in IKE_ENCRYPTION or prf is None or group is None:
        return None
    aead = encryption in IKE_IMPLIED_PRF
    return IkeProposal(IKE_ENCRYPTION[encryption], None if aead else integrity, prf, group)


def _esp_proposal(entry: Element, pfs: int | None) -> EspProposal | None:
    encryption = ESP_ENCRYPTION.get(leaf(entry, "encryption-algorithm"))
    if encryption is None:
        return None
    return EspProposal(encryption, ESP_HMAC.get(leaf(entry, "authentication-algorithm")), pfs,
                       has(entry, "extended-sequence-number"))


def _identity(holder: Element | None) -> Identity | None:
    if holder is None:
        return None
    for choice, (kind, value) in IDENTITY_KINDS.items():
        found = first(holder, choice)
        if found is not None:
            return Identity(kind, leaf(found, value))
    container = leaf(holder, "distinguished-name/container")
    if has(holder, "distinguished-name"):
        return Identity("dn", container)
    return None


def _interfaces(config: Element) -> tuple[dict[str, tuple[str | None, bool]], set[str]]:
    """unit name (st0.20) -> (first inet address, enabled); and every local inet address."""
    units: dict[str, tuple[str | None, bool]] = {}
    addresses: set[str] = set()
    for interface in each(config, "interfaces/interface"):
        name = leaf(interface, "name")
        for unit in each(interface, "unit"):
            inet = leaves(unit, "family/inet/address/name")
            addresses.update(str(IPv4Interface(a).ip) for a in inet)
            enabled = not has(interface, "disable") and not has(unit, "disable")
            units[f"{name}.{leaf(unit, 'name')}"] = (inet[0] if inet else None, enabled)
    return units, addresses


def _tunnels(config: Element, units: dict[str, tuple[str | None, bool]]) -> list[TunnelEndpoint]:
    ike = first(config, "security/ike")
    ipsec = first(config, "security/ipsec")
    ike_proposals = by_name(ike, "proposal")
    ike_policies = by_name(ike, "policy")
    gateways = by_name(ike, "gateway")
    esp_proposals = by_name(ipsec, "proposal")
    ipsec_policies = by_name(ipsec, "policy")
    out = []
    for vpn in each(ipsec, "vpn"):
        gateway = gateways.get(leaf(vpn, "ike/gateway"))
        if gateway is None:
            continue
        policy = ike_policies.get(leaf(gateway, "ike-policy"))
        proposals = [ike_proposals[n] for n in leaves(policy, "proposals") if n in ike_proposals]
        offered = tuple(p for p in map(_ike_proposal, proposals) if p is not None)
        methods = {leaf(p, "authentication-method") for p in proposals}
        psk = (leaf(policy, "pre-shared-key/ascii-text")
               or leaf(policy, "pre-shared-key/hexadecimal"))
        auth = AuthMethod.PSK if methods == {PSK_METHOD} else AuthMethod.CERTIFICATE
        ipsec_policy = ipsec_policies.get(leaf(vpn, "ike/ipsec-policy"))
        pfs = _group(leaf(ipsec_policy, "perfect-forward-secrecy/keys"))
        esp_entries = [esp_proposals[n] for n in leaves(ipsec_policy, "proposals")
                       if n in esp_proposals]
        esp = tuple(p for p in (_esp_proposal(e, pfs) for e in esp_entries) if p is not None)
        local = leaf(gateway, "local-address")
        remote = leaf(gateway, "address")
        unit = leaf(vpn, "bind-interface")
        inner, enabled = units.get(unit, (None, False))
        out.append(TunnelEndpoint(
            name=leaf(vpn, "name"), interface=unit, local_address=local, remote_address=remote,
            ike=offered, esp=esp,
            local_id=_identity(first(gateway, "local-identity")) or Identity("address", local),
            remote_id=_identity(first(gateway, "remote-identity")) or Identity("address", remote),
            auth=auth, inner=inner,
            ike_lifetime=count(leaf(first_of(proposals), "lifetime-seconds"),
                               DEFAULT_IKE_LIFETIME),
            esp_lifetime=count(leaf(first_of(esp_entries), "lifetime-seconds"),
                               DEFAULT_ESP_LIFETIME),
            cert_method="" if auth is AuthMethod.PSK else ",".join(sorted(methods)),
            enabled=enabled,
            psk_digest=secret_digest(psk) if auth is AuthMethod.PSK else None))
    return out


def _filtered(rules: PrefixList, kind: str) -> PrefixList:
    """A prefix list as `prefix-list-filter LIST kind` matches: exact (as `prefix-list`),
    longer (strictly inside an entry) or orlonger (an entry or inside it)."""
    if kind not in FILTER_LONGER:
        return rules
    return tuple(PrefixRule(r.network, IPv4Network(r.network).prefixlen + FILTER_LONGER[kind],
                            32) for r in rules)


@dataclass(frozen=True)
class _Policies:
    """A configuration's prefix lists and policy statements, read once for all neighbors."""

    entries: dict[str, Element]  # prefix-list name -> its element
    lists: dict[str, PrefixList]
    statements: dict[str, Element]


def _policies(config: Element) -> _Policies:
    entries = by_name(config, "policy-options/prefix-list")
    return _Policies(entries, {
        name: tuple(PrefixRule(leaf(item, "name")) for item in each(entry, "prefix-list-item"))
        for name, entry in entries.items()}, by_name(config, "policy-options/policy-statement"))


def _policy_filter(policies: _Policies, names: list[str], default: bool) -> RouteFilter:
    lists, statements = policies.lists, policies.statements
    terms: list[FilterTerm] = []
    for name in names:
        statement = statements.get(name)
        for term in [*each(statement, "term"), statement] if statement is not None else []:
            referenced = [lists.get(r, ()) for r in leaves(term, "from/prefix-list/name")]
            referenced += [_filtered(lists.get(leaf(f, "list_name"), ()), leaf(f, "choice-ident"))
                           for f in each(term, "from/prefix-list-filter")]
            matcher = tuple(referenced) if referenced else None
            if has(term, "then/accept") or has(term, "then/reject"):
                terms.append(FilterTerm(matcher, has(term, "then/accept")))
    return RouteFilter(tuple(terms), default)


def _policy_prefixes(policies: _Policies, names: list[str]) -> set[str]:
    """Every prefix-list entry named by the `from` of these policies."""
    lists, statements = policies.entries, policies.statements
    out: set[str] = set()
    for name in names:
        statement = statements.get(name)
        if statement is None:
            continue
        for ref in [*leaves(statement, "term/from/prefix-list/name"),
                    *leaves(statement, "from/prefix-list/name")]:
            out.update(leaves(lists.get(ref), "prefix-list-item/name"))
    return out


def _neighbors(config: Element) -> list[BgpNeighbor]:
    statics = set(leaves(config, "routing-options/static/route/name"))
    peers = [(group, neighbor) for group in each(config, "protocols/bgp/group")
             for neighbor in each(group, "neighbor")]
    policies = [(leaves(n, "import") or leaves(g, "import"),
                 leaves(n, "export") or leaves(g, "export")) for g, n in peers]
    # neighbors share their group's policies: each distinct one is read once (a hub has
    # hundreds of neighbors, every policy naming the fabric-wide prefix list)
    filters: dict[tuple[tuple[str, ...], bool], RouteFilter] = {}
    tables = _policies(config)

    def policy_filter(names: list[str], default: bool) -> RouteFilter:
        key = (tuple(names), default)
        if key not in filters:
            filters[key] = _policy_filter(tables, names, default)
        return filters[key]

    imports = [policy_filter(i, True) for i, _ in policies]
    exports = {tuple(e) for _, e in policies}
    named = set().union(*(_policy_prefixes(tables, list(e)) for e in exports)) if peers \
        else set()
    # accepted by an explicit term of an import policy = learnt from peers, not originated
    learnt = list({id(f): RouteFilter(f.terms, False) for f in imports}.values())
    originated = sorted(statics | {p for p in named if not any(f.accepts(p) for f in learnt)})
    out = []
    for (group, neighbor), accepts, (_, export) in zip(peers, imports, policies, strict=True):
        sends = policy_filter(export, False) if export else RouteFilter((), False)
        out.append(BgpNeighbor(
            address=leaf(neighbor, "name"),
            remote_as=number(leaf(neighbor, "peer-as") or leaf(group, "peer-as"), 0) or 0,
            description=leaf(neighbor, "description") or leaf(group, "description"),
            announces=tuple(p for p in originated if sends.accepts(p)),
            accepts=accepts))
    return out


def junos_intent(config: Element, gateway: str) -> DeviceIntent:
    """config: the committed <configuration> tree (no namespaces)."""
    units, addresses = _interfaces(config)
    tunnels = _tunnels(config, units)
    addresses.update(t.local_address for t in tunnels if t.local_address)
    bgp = first(config, "protocols/bgp")
    return DeviceIntent(
        gateway=gateway, platform="junos", local_addresses=frozenset(addresses),
        tunnels=tuple(tunnels),
        local_as=number(leaf(config, "routing-options/autonomous-system/as-number")),
        router_id=leaf(config, "routing-options/router-id") or None,
        neighbors=tuple(_neighbors(config)) if bgp is not None else ())
