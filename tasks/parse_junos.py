"""Read a Junos configuration back into intent (tasks.running_intent), from XML or `set` lines.

`from_xml` reads a `<configuration>` (the rendered config.xml, or the running configuration
the NETCONF driver returns), `from_set` reads `set` commands (config.set). Both follow the
chain a device follows: ipsec vpn -> bind-interface (st0 unit address, MTU) and ike gateway
(addresses, identities, DPD) -> ike policy -> ike proposal; ipsec policy -> proposal, PFS.
Only dcvpn's items count: `DCVPN-*` objects, the st0 units their VPNs bind, `DCVPN-*` BGP
groups; the device's own configuration (system, other interfaces, zones) is ignored.

The tables translate Junos spellings into the model's, independently of tasks.render_junos
(the render agreement test compares both ends of every tunnel through them). Junos has no IKE
PRF setting: an AES-GCM proposal implies one by key size, a CBC one uses its integrity.
"""

import shlex
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from lxml import etree

from drivers.xml_parsing import untrusted_parser
from inventory.durations import format_duration
from tasks.running_intent import (
    Intent,
    ParseError,
    ReadBack,
    empty_intent,
    orlonger,
    plane_of,
    shared_crypto,
)

PREFIX = "DCVPN-"
OWN_LIST, FABRIC_LIST = "DCVPN-OWN", "DCVPN-FABRIC"
DESCRIPTION = "dcvpn "  # "dcvpn <tunnel> to <peer gateway>"

IKE_ENCRYPTION = {
    "des-cbc": "des", "3des-cbc": "3des", "aes-128-cbc": "aes128", "aes-192-cbc": "aes192",
    "aes-256-cbc": "aes256", "aes-128-gcm": "aes128gcm16", "aes-256-gcm": "aes256gcm16",
}
IKE_IMPLIED_PRF = {"aes-128-gcm": "sha256", "aes-256-gcm": "sha384"}
IKE_HASH = {"md5": "md5", "sha1": "sha1", "sha-256": "sha256", "sha-384": "sha384",
            "sha-512": "sha512"}
ESP_ENCRYPTION = {
    "des-cbc": "des", "3des-cbc": "3des", "aes-128-cbc": "aes128", "aes-192-cbc": "aes192",
    "aes-256-cbc": "aes256", "aes-128-gcm": "aes128gcm16", "aes-192-gcm": "aes192gcm16",
    "aes-256-gcm": "aes256gcm16", "chacha20-poly1305": "chacha20poly1305",
}
ESP_HMAC = {"hmac-md5-96": "md5", "hmac-sha1-96": "sha1", "hmac-sha-256-128": "sha256",
            "hmac-sha-384": "sha384", "hmac-sha-512": "sha512"}
# authentication-method -> (auth method, key type)
AUTH_METHOD: dict[str, tuple[str, str | None]] = {
    "pre-shared-keys": ("psk", None),
    "ecdsa-signatures-256": ("certificate", "ecdsa-p256"),
    "ecdsa-signatures-384": ("certificate", "ecdsa-p384"),
    "rsa-signatures": ("certificate", "rsa"),
}
ESTABLISH = {"immediately": "restart", "on-traffic": "trap"}
GROUP_MODE = {"external": "ebgp", "internal": "ibgp"}

READBACK = ReadBack(
    unreadable=frozenset({
        "bgp.timers.keepalive",  # Junos derives keepalives from the hold time
        "tunnels.*.mss",  # one `security flow tcp-mss ipsec-vpn` for the whole device
        "tunnels.*.peer_site",
        "bgp_neighbors.*.role",
    }),
    canonical={
        "auth.key_type": {"rsa-3072": "rsa", "rsa-4096": "rsa"},
        "tunnels.*.crypto.dpd.action": {"clear": "restart"},
    },
)


@dataclass
class _IkeProposal:
    encryption: str = ""
    authentication: str | None = None
    dh_group: str = ""
    lifetime: int | None = None
    method: str | None = None


@dataclass
class _EspProposal:
    encryption: str = ""
    authentication: str | None = None
    lifetime: int | None = None
    esn: bool = False


@dataclass
class _Gateway:
    ike_policy: str = ""
    address: str = ""
    local_address: str = ""
    local_id: str = ""
    remote_id: str = ""
    dpd_interval: int | None = None


@dataclass
class _Vpn:
    bind_interface: str = ""
    gateway: str = ""
    ipsec_policy: str = ""
    establish: str | None = None


@dataclass
class _Unit:
    address: str = ""
    mtu: int | None = None
    description: str = ""


@dataclass
class _Group:
    type: str = ""
    hold: int | None = None
    bfd_interval: int | None = None
    bfd_multiplier: int | None = None
    max_prefixes: int | None = None
    peer_as: int | None = None


@dataclass
class _Neighbor:
    group: str = ""
    description: str = ""
    imports: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    peer_as: int | None = None


@dataclass
class _Term:
    prefix_lists: list[str] = field(default_factory=list)
    local_pref: int | None = None
    metric: int | None = None
    action: str | None = None
    filters: list[tuple[str, str]] = field(default_factory=list)  # prefix-list-filter

    def matches(self, name: str) -> bool:
        return name in self.prefix_lists or any(f == name for f, _ in self.filters)


@dataclass
class JunosObjects:
    """dcvpn's objects of one configuration, whichever form it came in."""

    ike_proposals: dict[str, _IkeProposal] = field(default_factory=dict)
    ike_policies: dict[str, list[str]] = field(default_factory=dict)
    gateways: dict[str, _Gateway] = field(default_factory=dict)
    esp_proposals: dict[str, _EspProposal] = field(default_factory=dict)
    ipsec_policies: dict[str, tuple[str | None, list[str]]] = field(default_factory=dict)
    vpns: dict[str, _Vpn] = field(default_factory=dict)
    units: dict[str, _Unit] = field(default_factory=dict)  # "st0.N"
    asn: int | None = None
    groups: dict[str, _Group] = field(default_factory=dict)
    neighbors: dict[str, _Neighbor] = field(default_factory=dict)
    prefix_lists: dict[str, list[str]] = field(default_factory=dict)
    policies: dict[str, dict[str, _Term]] = field(default_factory=dict)

    # --- into intent ----------------------------------------------------------------

    def _need(self, table: dict[str, Any], name: str, what: str, user: str) -> Any:
        if name not in table:
            raise ParseError(f"{user} refers to {what} {name!r}, which the configuration "
                             "does not have")
        return table[name]

    def _crypto(self, vpn_name: str, vpn: _Vpn, gw: _Gateway) -> dict[str, Any]:
        names = self._need(self.ike_policies, gw.ike_policy, "ike policy", vpn_name)
        if not names:
            raise ParseError(f"ike policy {gw.ike_policy} has no proposal")
        ike = self._need(self.ike_proposals, names[0], "ike proposal", gw.ike_policy)
        pfs, esp_names = self._need(self.ipsec_policies, vpn.ipsec_policy, "ipsec policy",
                                    vpn_name)
        if not esp_names:
            raise ParseError(f"ipsec policy {vpn.ipsec_policy} has no proposal")
        esp = self._need(self.esp_proposals, esp_names[0], "ipsec proposal", vpn.ipsec_policy)
        integrity = IKE_HASH.get(ike.authentication) if ike.authentication else None
        return {
            "ike": {"encryption": IKE_ENCRYPTION.get(ike.encryption, ike.encryption),
                    "prf": IKE_IMPLIED_PRF.get(ike.encryption, integrity),
                    "integrity": integrity,
                    "dh_group": _group_number(ike.dh_group),
                    "lifetime": _duration(ike.lifetime)},
            "esp": {"encryption": ESP_ENCRYPTION.get(esp.encryption, esp.encryption),
                    "integrity": ESP_HMAC.get(esp.authentication, esp.authentication)
                    if esp.authentication else None,
                    "pfs_group": _group_number(pfs) if pfs else None,
                    "lifetime": _duration(esp.lifetime), "esn": esp.esn},
            "dpd": {"interval": _duration(gw.dpd_interval),
                    "action": ESTABLISH.get(vpn.establish or "", vpn.establish)},
        }

    def _accepted(self) -> list[str]:
        """DCVPN-FABRIC as intent: its prefixes as they are, or, where a policy matches it
        with `prefix-list-filter ... orlonger` (fabric.bgp.accept), as ranges."""
        kinds = {kind for terms in self.policies.values() for t in terms.values()
                 for name, kind in t.filters if name == FABRIC_LIST}
        items = self.prefix_lists.get(FABRIC_LIST, [])
        if len(kinds) != 1:
            return items
        kind = kinds.pop()
        return [_filtered(p, kind) for p in items]

    def _policy_terms(self, names: list[str]) -> list[_Term]:
        return [t for n in names for t in self.policies.get(n, {}).values()]

    def intent(self) -> Intent:
        out = empty_intent()
        out["asn"] = self.asn
        methods = {p.method for p in self.ike_proposals.values() if p.method}
        if len(methods) == 1:
            method, key_type = AUTH_METHOD.get(methods.pop(), ("unknown", None))
            out["auth"] = {"method": method, "key_type": key_type}
        networks: dict[str, tuple[str, IPv4Interface]] = {}
        publics = set()
        for vpn_name, vpn in sorted(self.vpns.items()):
            gw = self._need(self.gateways, vpn.gateway, "ike gateway", vpn_name)
            unit = self.units.get(vpn.bind_interface, _Unit())
            name = _tunnel_name(unit.description) or vpn_name
            inner = IPv4Interface(unit.address) if unit.address else None
            publics.add(gw.local_address)
            out["tunnels"][name] = {
                "peer_gateway": _peer_gateway(unit.description),
                "peer_public_ip": gw.address, "plane": plane_of(name),
                "interface_index": _unit_number(vpn.bind_interface),
                "network": str(inner.network) if inner else None,
                "local_inner": str(inner.ip) if inner else None,
                "remote_inner": None, "local_identity": gw.local_id,
                "peer_identity": gw.remote_id, "mtu": unit.mtu,
                "crypto": self._crypto(vpn_name, vpn, gw),
            }
            if inner is not None:
                networks[name] = (name, inner)
        out["public_ip"] = publics.pop() if len(publics) == 1 else None
        groups = {n: g for n, g in self.groups.items()}
        if groups:
            first = groups[sorted(groups)[0]]
            out["bgp"] = {
                "mode": GROUP_MODE.get(first.type, first.type),
                "bfd": {"interval_ms": first.bfd_interval, "multiplier": first.bfd_multiplier},
                "timers": {"hold": first.hold}, "max_prefixes": first.max_prefixes,
            }
        out["prefixes"] = {"announce": self.prefix_lists.get(OWN_LIST, []),
                           "accept": self._accepted()}
        for address, n in sorted(self.neighbors.items(), key=lambda i: IPv4Address(i[0])):
            group = groups.get(n.group, _Group())
            internal = group.type == "internal"
            tunnel = _tunnel_name(n.description)
            for tname, (_, inner) in networks.items():
                if IPv4Address(address) in inner.network and tunnel in (None, tname):
                    tunnel = tname
                    out["tunnels"][tname]["remote_inner"] = address
            imports, exports = self._policy_terms(n.imports), self._policy_terms(n.exports)
            accepted = [t for t in exports if t.action == "accept"]
            out["bgp_neighbors"][address] = {
                "remote_as": self.asn if internal else (n.peer_as or group.peer_as),
                "local_as": self.asn,
                "export": ("fabric" if any(t.matches(FABRIC_LIST) for t in accepted)
                           else "own") if accepted else None,
                "local_pref": next((t.local_pref for t in imports
                                    if t.local_pref is not None), None),
                "med": next((t.metric for t in accepted if t.metric is not None), None),
                "tunnel": tunnel,
            }
        return shared_crypto(out)


FILTER_MATCHES = ("exact", "longer", "orlonger")


def _filtered(prefix: str, kind: str) -> str:
    """A prefix-list item under `prefix-list-filter <list> <kind>`, spelled as intent."""
    if kind == "orlonger":
        return orlonger(prefix)
    if kind == "longer":
        length = prefix.partition("/")[2]
        return f"{prefix} ge {int(length) + 1 if length.isdigit() else length} le 32"
    return prefix


def _group_number(group: str | None) -> int | None:
    if not group:
        return None
    number = group.removeprefix("group")
    return int(number) if number.isdigit() else None


def _duration(seconds: int | None) -> str | None:
    return format_duration(seconds) if seconds else None


def _unit_number(interface: str) -> int | None:
    unit = interface.rpartition(".")[2]
    return int(unit) if unit.isdigit() else None


def _tunnel_name(description: str) -> str | None:
    if not description.startswith(DESCRIPTION):
        return None
    return description[len(DESCRIPTION):].split(" to ", 1)[0] or None


def _peer_gateway(description: str) -> str | None:
    if not description.startswith(DESCRIPTION) or " to " not in description:
        return None
    return description.split(" to ", 1)[1]


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _owned(name: str) -> bool:
    return name.startswith(PREFIX)


# ---- XML -------------------------------------------------------------------------------



def _local(root: etree._Element) -> etree._Element:
    """The tree with namespaces removed (a device may answer in the junos namespace)."""
    for node in root.iter():
        if isinstance(node.tag, str):
            node.tag = etree.QName(node).localname
    return root


def _t(node: etree._Element, path: str) -> str | None:
    found = node.find(path)
    return found.text.strip() if found is not None and found.text else None


def _all(node: etree._Element, path: str) -> list[str]:
    return [(e.text or "").strip() for e in node.iterfind(path)]


def _xml_filters(term: etree._Element) -> list[tuple[str, str]]:
    """`from/prefix-list-filter` entries, in the YANG form (<choice-ident>) or Junos' own
    (an empty <orlonger/> element)."""
    out = []
    for f in term.iterfind("from/prefix-list-filter"):
        kind = _t(f, "choice-ident") or next(
            (str(c.tag) for c in f if c.tag in FILTER_MATCHES), "")
        out.append((_t(f, "list_name") or "", kind))
    return out


def objects_from_xml(xml: str) -> JunosObjects:
    try:
        root = _local(etree.fromstring(xml.encode(), untrusted_parser(huge_tree=True)))
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"not well-formed XML: {exc}") from None
    if root.tag != "configuration":
        found = root.find(".//configuration")
        if found is None:
            raise ParseError(f"no <configuration> in <{root.tag!s}>")
        root = found
    o = JunosObjects(asn=_int(_t(root, "routing-options/autonomous-system/as-number")))
    sec = "security"
    for p in root.iterfind(f"{sec}/ike/proposal"):
        if _owned(name := _t(p, "name") or ""):
            o.ike_proposals[name] = _IkeProposal(
                _t(p, "encryption-algorithm") or "", _t(p, "authentication-algorithm"),
                _t(p, "dh-group") or "", _int(_t(p, "lifetime-seconds")),
                _t(p, "authentication-method"))
    for pol in root.iterfind(f"{sec}/ike/policy"):
        if _owned(name := _t(pol, "name") or ""):
            o.ike_policies[name] = _all(pol, "proposals")
    for gw in root.iterfind(f"{sec}/ike/gateway"):
        if _owned(name := _t(gw, "name") or ""):
            o.gateways[name] = _Gateway(
                _t(gw, "ike-policy") or "", _t(gw, "address") or "",
                _t(gw, "local-address") or "",
                _t(gw, "local-identity/hostname/identity-hostname") or "",
                _t(gw, "remote-identity/hostname/identity-hostname") or "",
                _int(_t(gw, "dead-peer-detection/interval")))
    for p in root.iterfind(f"{sec}/ipsec/proposal"):
        if _owned(name := _t(p, "name") or ""):
            o.esp_proposals[name] = _EspProposal(
                _t(p, "encryption-algorithm") or "", _t(p, "authentication-algorithm"),
                _int(_t(p, "lifetime-seconds")), p.find("extended-sequence-number") is not None)
    for pol in root.iterfind(f"{sec}/ipsec/policy"):
        if _owned(name := _t(pol, "name") or ""):
            o.ipsec_policies[name] = (_t(pol, "perfect-forward-secrecy/keys"),
                                      _all(pol, "proposals"))
    for vpn in root.iterfind(f"{sec}/ipsec/vpn"):
        if _owned(name := _t(vpn, "name") or ""):
            o.vpns[name] = _Vpn(_t(vpn, "bind-interface") or "", _t(vpn, "ike/gateway") or "",
                                _t(vpn, "ike/ipsec-policy") or "", _t(vpn, "establish-tunnels"))
    bound = {v.bind_interface for v in o.vpns.values()}
    for ifd in root.iterfind("interfaces/interface"):
        for unit in ifd.iterfind("unit"):
            name = f"{_t(ifd, 'name')}.{_t(unit, 'name')}"
            if name in bound:
                o.units[name] = _Unit(_t(unit, "family/inet/address/name") or "",
                                      _int(_t(unit, "family/inet/mtu")),
                                      _t(unit, "description") or "")
    for group in root.iterfind("protocols/bgp/group"):
        if not _owned(gname := _t(group, "name") or ""):
            continue
        o.groups[gname] = _Group(
            _t(group, "type") or "", _int(_t(group, "hold-time")),
            _int(_t(group, "bfd-liveness-detection/minimum-interval")),
            _int(_t(group, "bfd-liveness-detection/multiplier")),
            _int(_t(group, "family/inet/unicast/prefix-limit/maximum")),
            _int(_t(group, "peer-as")))
        for n in group.iterfind("neighbor"):
            o.neighbors[_t(n, "name") or ""] = _Neighbor(
                gname, _t(n, "description") or "", _all(n, "import"), _all(n, "export"),
                _int(_t(n, "peer-as")))
    for pl in root.iterfind("policy-options/prefix-list"):
        if _owned(name := _t(pl, "name") or ""):
            o.prefix_lists[name] = _all(pl, "prefix-list-item/name")
    for ps in root.iterfind("policy-options/policy-statement"):
        if not _owned(name := _t(ps, "name") or ""):
            continue
        terms: dict[str, _Term] = {}
        for term in ps.iterfind("term"):
            then = term.find("then")
            action = None
            if then is not None:
                action = next((a for a in ("accept", "reject") if then.find(a) is not None),
                              None)
            terms[_t(term, "name") or ""] = _Term(
                _all(term, "from/prefix-list/name"),
                _int(_t(term, "then/local-preference/local-preference")),
                _int(_t(term, "then/metric/metric")), action, _xml_filters(term))
        o.policies[name] = terms
    return o


def from_xml(xml: str) -> Intent:
    """Intent of a Junos `<configuration>` (rendered, or the device's running one)."""
    return objects_from_xml(xml).intent()


# ---- set commands -----------------------------------------------------------------------

def set_commands(text: str) -> list[list[str]]:
    """Each `set` line as words, quotes removed; other lines (comments, blank) skipped."""
    out = []
    for line in text.splitlines():
        if not line.strip().startswith("set "):
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise ParseError(f"cannot read {line.strip()!r}: {exc}") from None
        out.append(words[1:])
    return out


def _names(words: list[str]) -> list[str]:
    """A leaf-list value: `a` or `[ a b ]`."""
    return [w for w in words if w not in ("[", "]")]


def _set_security(o: JunosObjects, words: list[str]) -> None:
    match words:
        case ["ike", "proposal", name, key, value] if _owned(name):
            p = o.ike_proposals.setdefault(name, _IkeProposal())
            if key == "encryption-algorithm":
                p.encryption = value
            elif key == "authentication-algorithm":
                p.authentication = value
            elif key == "dh-group":
                p.dh_group = value
            elif key == "lifetime-seconds":
                p.lifetime = _int(value)
            elif key == "authentication-method":
                p.method = value
        case ["ike", "policy", name, "proposals", *names] if _owned(name):
            o.ike_policies.setdefault(name, []).extend(_names(names))
        case ["ike", "gateway", name, *rest] if _owned(name):
            gw = o.gateways.setdefault(name, _Gateway())
            match rest:
                case ["ike-policy", value]:
                    gw.ike_policy = value
                case ["address", value]:  # the first is the primary, the others backups
                    gw.address = gw.address or value
                case ["local-address", value]:
                    gw.local_address = value
                case ["local-identity", "hostname", value]:
                    gw.local_id = value
                case ["remote-identity", "hostname", value]:
                    gw.remote_id = value
                case ["dead-peer-detection", "interval", value]:
                    gw.dpd_interval = _int(value)
        case ["ipsec", "proposal", name, *rest] if _owned(name):
            esp = o.esp_proposals.setdefault(name, _EspProposal())
            match rest:
                case ["encryption-algorithm", value]:
                    esp.encryption = value
                case ["authentication-algorithm", value]:
                    esp.authentication = value
                case ["lifetime-seconds", value]:
                    esp.lifetime = _int(value)
                case ["extended-sequence-number"]:
                    esp.esn = True
        case ["ipsec", "policy", name, "perfect-forward-secrecy", "keys", g] if _owned(name):
            _, names = o.ipsec_policies.get(name, (None, []))
            o.ipsec_policies[name] = (g, names)
        case ["ipsec", "policy", name, "proposals", *names] if _owned(name):
            pfs, have = o.ipsec_policies.get(name, (None, []))
            o.ipsec_policies[name] = (pfs, have + _names(names))
        case ["ipsec", "vpn", name, *rest] if _owned(name):
            vpn = o.vpns.setdefault(name, _Vpn())
            match rest:
                case ["bind-interface", value]:
                    vpn.bind_interface = value
                case ["ike", "gateway", value]:
                    vpn.gateway = value
                case ["ike", "ipsec-policy", value]:
                    vpn.ipsec_policy = value
                case ["establish-tunnels", value]:
                    vpn.establish = value


def _set_bgp(o: JunosObjects, g: str, rest: list[str]) -> None:
    group = o.groups.setdefault(g, _Group())
    match rest:
        case ["type", kind]:
            group.type = kind
        case ["peer-as", number]:
            group.peer_as = _int(number)
        case ["hold-time", value]:
            group.hold = _int(value)
        case ["bfd-liveness-detection", "minimum-interval", value]:
            group.bfd_interval = _int(value)
        case ["bfd-liveness-detection", "multiplier", value]:
            group.bfd_multiplier = _int(value)
        case ["family", "inet", "unicast", "prefix-limit", "maximum", value]:
            group.max_prefixes = _int(value)
        case ["neighbor", address, *more]:
            n = o.neighbors.setdefault(address, _Neighbor(g))
            match more:
                case ["description", text]:
                    n.description = text
                case ["import", *names]:
                    n.imports += _names(names)
                case ["export", *names]:
                    n.exports += _names(names)
                case ["peer-as", number]:
                    n.peer_as = _int(number)


def _set_policy(o: JunosObjects, name: str, term_name: str, rest: list[str]) -> None:
    term = o.policies.setdefault(name, {}).setdefault(term_name, _Term())
    match rest:
        case ["from", "prefix-list", value]:
            term.prefix_lists.append(value)
        case ["from", "prefix-list-filter", value, kind, *_]:
            term.filters.append((value, kind))
        case ["then", "local-preference", value]:
            term.local_pref = _int(value)
        case ["then", "metric", value]:
            term.metric = _int(value)
        case ["then", ("accept" | "reject") as action]:
            term.action = action


def objects_from_set(text: str) -> JunosObjects:
    o = JunosObjects()
    units: dict[str, _Unit] = {}
    for words in set_commands(text):
        match words:
            case ["security", *rest]:
                _set_security(o, rest)
            case ["interfaces", ifd, "unit", unit, *rest]:
                u = units.setdefault(f"{ifd}.{unit}", _Unit())
                match rest:
                    case ["family", "inet", "address", address]:
                        u.address = address
                    case ["family", "inet", "mtu", value]:
                        u.mtu = _int(value)
                    case ["description", value]:
                        u.description = value
            case ["routing-options", "autonomous-system", number, *_]:
                o.asn = _int(number)
            case ["protocols", "bgp", "group", g, *rest] if _owned(g):
                _set_bgp(o, g, rest)
            case ["policy-options", "prefix-list", name, prefix] if _owned(name):
                o.prefix_lists.setdefault(name, []).append(prefix)
            case ["policy-options", "policy-statement", name, "term", t, *rest] if _owned(name):
                _set_policy(o, name, t, rest)
            case _:
                pass
    bound = {v.bind_interface for v in o.vpns.values()}
    o.units = {name: u for name, u in units.items() if name in bound}
    return o


def from_set(text: str) -> Intent:
    """Intent of Junos `set` commands (config.set)."""
    return objects_from_set(text).intent()


def from_files(files: dict[str, str]) -> Intent:
    """Intent of a gateway's rendered files (config.xml)."""
    return from_xml(files["config.xml"])


def from_running(text: str) -> Intent:
    """Intent of what a driver read: `<configuration>` XML, or `set` commands."""
    return from_xml(text) if text.lstrip().startswith("<") else from_set(text)
