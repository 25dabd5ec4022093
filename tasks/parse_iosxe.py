"""Read an IOS-XE configuration back into intent (tasks.running_intent), from CLI or XML.

`from_cli` reads `show running-config` style text (the rendered config.cli, or what the SSH
driver reads), `from_xml` reads Cisco-IOS-XE-native XML (config.xml, or a NETCONF get-config
reply). Both follow the chain a device follows: interface TunnelN -> tunnel protection ipsec
profile -> transform-set, pfs, lifetime, ikev2-profile (identities, DPD, IKE lifetime) and the
ikev2 policy matching the tunnel source -> proposal. Only dcvpn's items count: tunnels
protected by a `DCVPN-*` profile, `DCVPN-*` prefix lists and route maps, BGP neighbors on
those tunnels (or described `dcvpn ...`); management and other interfaces are ignored.

The tables translate IOS-XE spellings into the model's, independently of tasks.render_iosxe
(the render agreement test compares both ends of every tunnel through them).
"""

from collections.abc import Iterable
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
    plane_of,
    shared_crypto,
)

PREFIX = "DCVPN-"
OWN_LIST, FABRIC_LIST = "DCVPN-OWN", "DCVPN-FABRIC"
DESCRIPTION = "dcvpn "  # "dcvpn <tunnel> to <peer gateway>"

IKE_ENCRYPTION = {
    "aes-cbc-128": "aes128", "aes-cbc-192": "aes192", "aes-cbc-256": "aes256",
    "aes-gcm-128": "aes128gcm16", "aes-gcm-256": "aes256gcm16",
    "3des": "3des", "en-3des": "3des", "des": "des",
}
GROUP_NUMBERS = {
    "one": 1, "two": 2, "five": 5, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "nineteen": 19, "twenty": 20, "twenty-one": 21, "twenty-four": 24,
}
HASHES = ("md5", "sha1", "sha256", "sha384", "sha512")
# transform-set: (esp transform, key bits) -> model cipher; None = no key-bit given
ESP_CIPHER = {
    ("esp-gcm", "128"): "aes128gcm16", ("esp-gcm", "256"): "aes256gcm16",
    ("esp-gcm", None): "aes128gcm16",
    ("esp-gmac", "128"): "aes128gmac", ("esp-gmac", "256"): "aes256gmac",
    ("esp-gmac", None): "aes128gmac",
    ("esp-aes", "128"): "aes128", ("esp-aes", "192"): "aes192", ("esp-aes", "256"): "aes256",
    ("esp-aes", None): "aes128", ("esp-192-aes", None): "aes192", ("esp-256-aes", None): "aes256",
    ("esp-3des", None): "3des", ("esp-des", None): "des",
}
ESP_HMAC = {
    "esp-md5-hmac": "md5", "esp-sha-hmac": "sha1", "esp-sha256-hmac": "sha256",
    "esp-sha384-hmac": "sha384", "esp-sha512-hmac": "sha512",
}
# ikev2 profile `authentication local` -> (auth method, key type)
AUTH_METHOD: dict[str, tuple[str, str | None]] = {
    "pre-share": ("psk", None), "ecdsa-sig": ("certificate", "ecdsa"),
    "rsa-sig": ("certificate", "rsa"),
}

READBACK = ReadBack(
    unreadable=frozenset({
        "tunnels.*.crypto.esp.esn",  # not rendered for IOS-XE
        "tunnels.*.crypto.dpd.action",  # periodic DPD; the reaction is the platform's own
        "tunnels.*.peer_site",
        "bgp_neighbors.*.role",
    }),
    canonical={"auth.key_type": {"ecdsa-p256": "ecdsa", "ecdsa-p384": "ecdsa",
                                 "rsa-3072": "rsa", "rsa-4096": "rsa"}},
)


@dataclass
class _Proposal:
    encryption: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    prf: list[str] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)


@dataclass
class _IkeProfile:
    description: str = ""
    remote_id: str = ""
    local_id: str = ""
    auth: str = ""
    dpd_interval: int | None = None
    lifetime: int | None = None


@dataclass
class _IpsecProfile:
    transform_sets: list[str] = field(default_factory=list)
    pfs: int | None = None
    lifetime: int | None = None
    ike_profile: str = ""


@dataclass
class _Tunnel:
    number: int
    description: str = ""
    inner: str = ""  # address/len
    mtu: int | None = None
    mss: int | None = None
    source: str = ""
    destination: str = ""
    profile: str = ""
    bfd_interval: int | None = None
    bfd_multiplier: int | None = None


@dataclass
class _Neighbor:
    remote_as: int | None = None
    description: str = ""
    keepalive: int | None = None
    hold: int | None = None
    max_prefixes: int | None = None
    route_map_in: str = ""
    route_map_out: str = ""


@dataclass
class _RouteMap:
    prefix_lists: list[str] = field(default_factory=list)
    local_pref: int | None = None
    metric: int | None = None


@dataclass
class IosxeObjects:
    proposals: dict[str, _Proposal] = field(default_factory=dict)
    policies: list[tuple[set[str], list[str]]] = field(default_factory=list)
    ike_profiles: dict[str, _IkeProfile] = field(default_factory=dict)
    transform_sets: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    ipsec_profiles: dict[str, _IpsecProfile] = field(default_factory=dict)
    tunnels: list[_Tunnel] = field(default_factory=list)
    asn: int | None = None
    neighbors: dict[str, _Neighbor] = field(default_factory=dict)
    prefix_lists: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    route_maps: dict[str, list[_RouteMap]] = field(default_factory=dict)

    def _need(self, table: dict[str, Any], name: str, what: str, user: str) -> Any:
        if name not in table:
            raise ParseError(f"{user} refers to {what} {name!r}, which the configuration "
                             "does not have")
        return table[name]

    def _ike(self, source: str) -> dict[str, Any]:
        names = [n for local, ns in self.policies if not local or source in local for n in ns]
        if not names:
            return {}
        p = self._need(self.proposals, names[0], "ikev2 proposal", "ikev2 policy")
        integrity = p.integrity[0] if p.integrity else None
        return {"encryption": p.encryption[0] if p.encryption else None,
                "prf": p.prf[0] if p.prf else integrity, "integrity": integrity,
                "dh_group": p.groups[0] if p.groups else None}

    def _crypto(self, tunnel: _Tunnel, ipsec: _IpsecProfile, ike: _IkeProfile
                ) -> dict[str, Any]:
        esp_token = None
        if ipsec.transform_sets:
            esp_token = self._need(self.transform_sets, ipsec.transform_sets[0],
                                   "transform-set", tunnel.profile)
        return {
            "ike": {**self._ike(tunnel.source), "lifetime": _duration(ike.lifetime)},
            "esp": {"encryption": esp_token[0] if esp_token else None,
                    "integrity": esp_token[1] if esp_token else None,
                    "pfs_group": ipsec.pfs, "lifetime": _duration(ipsec.lifetime),
                    "esn": False},
            "dpd": {"interval": _duration(ike.dpd_interval)},
        }

    def intent(self) -> Intent:
        out = empty_intent()
        out["asn"] = self.asn
        managed = [t for t in self.tunnels if t.profile.startswith(PREFIX)]
        networks: dict[str, IPv4Interface] = {}
        auths, bfd = set(), set()
        for t in sorted(managed, key=lambda t: t.number):
            ipsec = self._need(self.ipsec_profiles, t.profile, "ipsec profile",
                               f"Tunnel{t.number}")
            ike = self._need(self.ike_profiles, ipsec.ike_profile, "ikev2 profile", t.profile)
            name = _tunnel_name(t.description) or _tunnel_name(ike.description) \
                or f"Tunnel{t.number}"
            inner = IPv4Interface(t.inner) if t.inner else None
            auths.add(ike.auth)
            bfd.add((t.bfd_interval, t.bfd_multiplier))
            out["tunnels"][name] = {
                "peer_gateway": _peer_gateway(t.description), "peer_public_ip": t.destination,
                "plane": plane_of(name), "interface_index": t.number,
                "network": str(inner.network) if inner else None,
                "local_inner": str(inner.ip) if inner else None, "remote_inner": None,
                "local_identity": ike.local_id, "peer_identity": ike.remote_id,
                "mtu": t.mtu, "mss": t.mss, "crypto": self._crypto(t, ipsec, ike),
            }
            if inner is not None:
                networks[name] = inner
        sources = {t.source for t in managed}
        out["public_ip"] = sources.pop() if len(sources) == 1 else None
        if len(auths) == 1:
            method, key_type = AUTH_METHOD.get(auths.pop(), ("unknown", None))
            out["auth"] = {"method": method, "key_type": key_type}
        lists = {name: [p for _, p in sorted(entries)]
                 for name, entries in self.prefix_lists.items()}
        out["prefixes"] = {"announce": lists.get(OWN_LIST, []),
                           "accept": lists.get(FABRIC_LIST, [])}
        mine = []
        for address, n in sorted(self.neighbors.items(), key=lambda i: IPv4Address(i[0])):
            tunnel = next((name for name, inner in networks.items()
                           if IPv4Address(address) in inner.network
                           and IPv4Address(address) != inner.ip), None)
            if tunnel is None and not n.description.startswith(DESCRIPTION):
                continue  # not a dcvpn session
            if tunnel is not None:
                out["tunnels"][tunnel]["remote_inner"] = address
            mine.append(n)
            maps_in = self.route_maps.get(n.route_map_in, [])
            maps_out = self.route_maps.get(n.route_map_out, [])
            out["bgp_neighbors"][address] = {
                "remote_as": n.remote_as, "local_as": self.asn,
                "export": ("fabric" if any(FABRIC_LIST in m.prefix_lists for m in maps_out)
                           else "own") if maps_out else None,
                "local_pref": next((m.local_pref for m in maps_in
                                    if m.local_pref is not None), None),
                "med": next((m.metric for m in maps_out if m.metric is not None), None),
                "tunnel": tunnel or _tunnel_name(n.description),
            }
        if mine:
            first = mine[0]
            ibgp = all(n.remote_as == self.asn for n in mine)
            interval, multiplier = sorted(bfd, key=str)[0] if bfd else (None, None)
            out["bgp"] = {"mode": "ibgp" if ibgp else "ebgp",
                          "bfd": {"interval_ms": interval, "multiplier": multiplier},
                          "timers": {"keepalive": first.keepalive, "hold": first.hold},
                          "max_prefixes": first.max_prefixes}
        return shared_crypto(out)


def _duration(seconds: int | None) -> str | None:
    return format_duration(seconds) if seconds else None


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


def _prefixlen(mask: str) -> int:
    return IPv4Interface(f"0.0.0.0/{mask}").network.prefixlen


def _esp(words: list[str]) -> tuple[str, str | None]:
    """`esp-gcm 256` / `esp-aes 256 esp-sha384-hmac` -> (cipher, integrity)."""
    bits = next((w for w in words[1:] if w.isdigit()), None)
    hmac = next((ESP_HMAC[w] for w in words[1:] if w in ESP_HMAC), None)
    return ESP_CIPHER.get((words[0], bits), words[0]), hmac


# ---- CLI -------------------------------------------------------------------------------

def _blocks(cli: str) -> Iterable[tuple[list[str], list[list[str]]]]:
    """Top-level commands with their (indented) sub-commands, as word lists."""
    head: list[str] | None = None
    body: list[list[str]] = []
    for raw in cli.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.strip() == "!":
            continue
        if not line.startswith(" "):
            if head is not None:
                yield head, body
            head, body = line.split(), []
        else:
            body.append(line.split())
    if head is not None:
        yield head, body


def _cli_proposal(body: list[list[str]]) -> _Proposal:
    p = _Proposal()
    for words in body:
        match words:
            case ["encryption", *names]:
                p.encryption = [IKE_ENCRYPTION.get(n, n) for n in names]
            case ["integrity", *names]:
                p.integrity = [n for n in names if n in HASHES]
            case ["prf", *names]:
                p.prf = [n for n in names if n in HASHES]
            case ["group", *numbers]:
                p.groups = [int(n) for n in numbers if n.isdigit()]
    return p


def _cli_ike_profile(body: list[list[str]]) -> _IkeProfile:
    p = _IkeProfile()
    for words in body:
        match words:
            case ["description", *text]:
                p.description = " ".join(text)
            case ["match", "identity", "remote", "fqdn", value]:
                p.remote_id = value
            case ["identity", "local", "fqdn", value]:
                p.local_id = value
            case ["authentication", "local", method, *_]:
                p.auth = method
            case ["dpd", interval, *_]:
                p.dpd_interval = _int(interval)
            case ["lifetime", seconds]:
                p.lifetime = _int(seconds)
    return p


def _cli_ipsec_profile(body: list[list[str]]) -> _IpsecProfile:
    p = _IpsecProfile()
    for words in body:
        match words:
            case ["set", "transform-set", *names]:
                p.transform_sets = names
            case ["set", "pfs", group]:
                p.pfs = _int(group.removeprefix("group"))
            case ["set", "security-association", "lifetime", "seconds", value]:
                p.lifetime = _int(value)
            case ["set", "ikev2-profile", name]:
                p.ike_profile = name
    return p


def _cli_tunnel(number: int, body: list[list[str]]) -> _Tunnel:
    t = _Tunnel(number)
    for words in body:
        match words:
            case ["description", *text]:
                t.description = " ".join(text)
            case ["ip", "address", address, mask]:
                t.inner = f"{address}/{_prefixlen(mask)}"
            case ["ip", "mtu", value]:
                t.mtu = _int(value)
            case ["ip", "tcp", "adjust-mss", value]:
                t.mss = _int(value)
            case ["tunnel", "source", value]:
                t.source = value
            case ["tunnel", "destination", value]:
                t.destination = value
            case ["tunnel", "protection", "ipsec", "profile", name, *_]:
                t.profile = name
            case ["bfd", "interval", interval, "min_rx", _, "multiplier", multiplier]:
                t.bfd_interval, t.bfd_multiplier = _int(interval), _int(multiplier)
    return t


def _cli_bgp(o: IosxeObjects, body: list[list[str]]) -> None:
    for words in body:
        if len(words) < 3 or words[0] != "neighbor":
            continue
        n = o.neighbors.setdefault(words[1], _Neighbor())
        match words[2:]:
            case ["remote-as", number]:
                n.remote_as = _int(number)
            case ["description", *text]:
                n.description = " ".join(text)
            case ["timers", keepalive, hold, *_]:
                n.keepalive, n.hold = _int(keepalive), _int(hold)
            case ["maximum-prefix", number, *_]:
                n.max_prefixes = _int(number)
            case ["route-map", name, "in"]:
                n.route_map_in = name
            case ["route-map", name, "out"]:
                n.route_map_out = name


def _cli_route_map(body: list[list[str]]) -> _RouteMap:
    m = _RouteMap()
    for words in body:
        match words:
            case ["match", "ip", "address", "prefix-list", *names]:
                m.prefix_lists += names
            case ["set", "local-preference", value]:
                m.local_pref = _int(value)
            case ["set", "metric", value]:
                m.metric = _int(value)
    return m


def objects_from_cli(cli: str) -> IosxeObjects:
    o = IosxeObjects()
    for head, body in _blocks(cli):
        match head:
            case ["crypto", "ikev2", "proposal", name] if name.startswith(PREFIX):
                o.proposals[name] = _cli_proposal(body)
            case ["crypto", "ikev2", "policy", name] if name.startswith(PREFIX):
                local = {w[3] for w in body if w[:3] == ["match", "address", "local"]}
                o.policies.append((local, [n for w in body if w[0] == "proposal"
                                           for n in w[1:]]))
            case ["crypto", "ikev2", "profile", name] if name.startswith(PREFIX):
                o.ike_profiles[name] = _cli_ike_profile(body)
            case ["crypto", "ipsec", "transform-set", name, *words] if (
                    name.startswith(PREFIX) and words):
                o.transform_sets[name] = _esp(words)
            case ["crypto", "ipsec", "profile", name] if name.startswith(PREFIX):
                o.ipsec_profiles[name] = _cli_ipsec_profile(body)
            case ["interface", ifname] if ifname.startswith("Tunnel") and \
                    ifname[6:].isdigit():
                o.tunnels.append(_cli_tunnel(int(ifname[6:]), body))
            case ["ip", "prefix-list", name, "seq", seq, "permit", prefix, *bounds] if (
                    name.startswith(PREFIX)):
                o.prefix_lists.setdefault(name, []).append((int(seq),
                                                            " ".join([prefix, *bounds])))
            case ["route-map", name, "permit", _] if name.startswith(PREFIX):
                o.route_maps.setdefault(name, []).append(_cli_route_map(body))
            case ["router", "bgp", number]:
                o.asn = _int(number)
                _cli_bgp(o, body)
            case _:
                pass
    return o


def from_cli(cli: str) -> Intent:
    """Intent of IOS-XE CLI configuration (config.cli, show running-config)."""
    return objects_from_cli(cli).intent()


# ---- XML -------------------------------------------------------------------------------



def _t(node: etree._Element, path: str) -> str | None:
    found = node.find(path)
    return found.text.strip() if found is not None and found.text else None


def _all(node: etree._Element, path: str) -> list[str]:
    return [(e.text or "").strip() for e in node.iterfind(path)]


def _children(node: etree._Element, path: str) -> list[str]:
    parent = node.find(path)
    return [] if parent is None else [str(c.tag) for c in parent]


def _first_of(node: etree._Element, *paths: str) -> str | None:
    return next((v for p in paths if (v := _t(node, p)) is not None), None)


def _xml_crypto(o: IosxeObjects, native: etree._Element) -> None:
    for p in native.iterfind("crypto/ikev2/proposal"):
        if (name := _t(p, "name") or "").startswith(PREFIX):
            o.proposals[name] = _Proposal(
                [IKE_ENCRYPTION.get(e, e) for e in _children(p, "encryption")],
                [h for h in _children(p, "integrity") if h in HASHES],
                [h for h in _children(p, "prf") if h in HASHES],
                [GROUP_NUMBERS[g] for g in _children(p, "group") if g in GROUP_NUMBERS])
    for pol in native.iterfind("crypto/ikev2/policy"):
        if (_t(pol, "name") or "").startswith(PREFIX):
            o.policies.append((set(_all(pol, "match/address/local-ip")),
                               _all(pol, "proposal/proposals")))
    for prof in native.iterfind("crypto/ikev2/profile"):
        if (name := _t(prof, "name") or "").startswith(PREFIX):
            auth = _children(prof, "authentication/local")
            o.ike_profiles[name] = _IkeProfile(
                _t(prof, "description") or "",
                _t(prof, "match/identity/remote/fqdn/fqdn-name") or "",
                _t(prof, "identity/local/fqdn") or "", auth[0] if auth else "",
                _int(_t(prof, "dpd/interval")), _int(_t(prof, "lifetime/seconds")))
    for ts in native.iterfind("crypto/ipsec/transform-set"):
        if (name := _t(ts, "tag") or "").startswith(PREFIX) and _t(ts, "esp"):
            o.transform_sets[name] = _esp([_t(ts, "esp") or "", *_all(ts, "key-bit"),
                                           *_all(ts, "esp-hmac")])
    for prof in native.iterfind("crypto/ipsec/profile"):
        if (name := _t(prof, "name") or "").startswith(PREFIX):
            group = _t(prof, "set/pfs/group")
            o.ipsec_profiles[name] = _IpsecProfile(
                _all(prof, "set/transform-set"),
                _int(group.removeprefix("group")) if group else None,
                _int(_first_of(prof, "set/security-association/lifetime/seconds-case",
                               "set/security-association/lifetime/seconds")),
                _t(prof, "set/ikev2-profile") or "")


def _xml_tunnels(o: IosxeObjects, native: etree._Element) -> None:
    for tun in native.iterfind("interface/Tunnel"):
        number = _int(_t(tun, "name"))
        if number is None:
            continue
        address, mask = _t(tun, "ip/address/primary/address"), _t(tun, "ip/address/primary/mask")
        o.tunnels.append(_Tunnel(
            number, _t(tun, "description") or "",
            f"{address}/{_prefixlen(mask)}" if address and mask else "",
            _int(_t(tun, "ip/mtu")), _int(_t(tun, "ip/tcp/adjust-mss")),
            _t(tun, "tunnel/source") or "", _t(tun, "tunnel/destination-config/ipv4") or "",
            _t(tun, "tunnel/protection/ipsec/profile-option/name") or "",
            _int(_t(tun, "bfd/interval-interface/msecs")),
            _int(_t(tun, "bfd/interval-interface/multiplier"))))


def _xml_routing(o: IosxeObjects, native: etree._Element) -> None:
    for entry in native.iterfind("ip/prefix-lists/prefixes"):
        name = _t(entry, "name") or ""
        if name.startswith(PREFIX) and _t(entry, "action") == "permit":
            bounds = [f"{b} {v}" for b in ("ge", "le") if (v := _t(entry, b)) is not None]
            o.prefix_lists.setdefault(name, []).append((_int(_t(entry, "no")) or 0, " ".join(
                [_t(entry, "ip") or "", *bounds])))
    for rm in native.iterfind("route-map"):
        if not (name := _t(rm, "name") or "").startswith(PREFIX):
            continue
        for seq in rm.iterfind("route-map-without-order-seq"):
            if _t(seq, "operation") != "permit":
                continue
            o.route_maps.setdefault(name, []).append(_RouteMap(
                _all(seq, "match/ip/address/prefix-list-ordered")
                + _all(seq, "match/ip/address/prefix-list"),
                _int(_t(seq, "set/bgp-route-map-set/local-preference")),
                _int(_t(seq, "set/metric/values/value"))))
    bgp = native.find("router/bgp")
    if bgp is None:
        return
    o.asn = _int(_t(bgp, "id"))
    for nbr in bgp.iterfind("neighbor"):
        o.neighbors[_t(nbr, "id") or ""] = _Neighbor(
            _int(_t(nbr, "remote-as")), _t(nbr, "description") or "",
            _int(_t(nbr, "timers/keepalive-interval")), _int(_t(nbr, "timers/holdtime")))
    for nbr in bgp.iterfind("address-family/no-vrf/ipv4/ipv4-unicast/neighbor"):
        n = o.neighbors.setdefault(_t(nbr, "id") or "", _Neighbor())
        n.max_prefixes = _int(_t(nbr, "maximum-prefix/max-prefix-no"))
        for rm in nbr.iterfind("route-map"):
            if _t(rm, "inout") == "in":
                n.route_map_in = _t(rm, "route-map-name") or ""
            elif _t(rm, "inout") == "out":
                n.route_map_out = _t(rm, "route-map-name") or ""


def objects_from_xml(xml: str) -> IosxeObjects:
    try:
        root = etree.fromstring(xml.encode(), untrusted_parser(huge_tree=True))
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"not well-formed XML: {exc}") from None
    for node in root.iter():
        if isinstance(node.tag, str):
            node.tag = etree.QName(node).localname
    native = root if root.tag == "native" else root.find(".//native")
    o = IosxeObjects()
    if native is None:
        return o
    _xml_crypto(o, native)
    _xml_tunnels(o, native)
    _xml_routing(o, native)
    return o


def from_xml(xml: str) -> Intent:
    """Intent of Cisco-IOS-XE-native XML (config.xml, a get-config reply)."""
    return objects_from_xml(xml).intent()


def from_running(text: str) -> Intent:
    """Intent of what a driver read: XML over NETCONF, CLI over SSH."""
    return from_xml(text) if text.lstrip().startswith("<") else from_cli(text)


def from_files(files: dict[str, str]) -> Intent:
    """Intent of a gateway's rendered files (config.cli)."""
    return from_cli(files["config.cli"])
