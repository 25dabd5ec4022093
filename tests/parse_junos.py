"""Read rendered Junos files back into RenderedTunnel, independently of tasks.render_junos.

`tunnels` reads config.xml, `tunnels_from_set` reads config.set; both follow the chain a
device follows: ipsec vpn -> bind-interface (st0 unit address), ike gateway (addresses,
identities) -> ike policy -> ike proposals; ipsec policy -> proposals and PFS. The tables
below translate Junos spellings into strongSwan tokens. Junos has no IKE PRF setting in
24.4R1: an AES-GCM proposal implies one by key size, a CBC one uses its authentication
algorithm as PRF. IKE proposals are spelled with an explicit PRF, as the other parsers do.
"""

import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface

from rendered import RenderedTunnel

IKE_ENCRYPTION = {
    "des-cbc": "des", "3des-cbc": "3des", "aes-128-cbc": "aes128", "aes-192-cbc": "aes192",
    "aes-256-cbc": "aes256", "aes-128-gcm": "aes128gcm16", "aes-256-gcm": "aes256gcm16",
}
IKE_IMPLIED_PRF = {"aes-128-gcm": "sha256", "aes-256-gcm": "sha384"}
IKE_HASH = {"md5": "md5", "sha1": "sha1", "sha-256": "sha256", "sha-384": "sha384",
            "sha-512": "sha512"}
DH_TOKEN = {
    "group1": "modp768", "group2": "modp1024", "group5": "modp1536", "group14": "modp2048",
    "group15": "modp3072", "group16": "modp4096", "group19": "ecp256", "group20": "ecp384",
    "group21": "ecp521", "group24": "modp2048s256",
}
ESP_ENCRYPTION = {
    "des-cbc": "des", "3des-cbc": "3des", "aes-128-cbc": "aes128", "aes-192-cbc": "aes192",
    "aes-256-cbc": "aes256", "aes-128-gcm": "aes128gcm16", "aes-192-gcm": "aes192gcm16",
    "aes-256-gcm": "aes256gcm16", "chacha20-poly1305": "chacha20poly1305",
}
ESP_HMAC = {"hmac-md5-96": "md5", "hmac-sha1-96": "sha1", "hmac-sha-256-128": "sha256",
            "hmac-sha-256-96": "sha256_96", "hmac-sha-384": "sha384", "hmac-sha-512": "sha512"}


@dataclass
class _IkeProposal:
    encryption: str = ""
    authentication: str | None = None
    dh_group: str = ""

    def token(self) -> str:
        dh = DH_TOKEN[self.dh_group]
        enc = IKE_ENCRYPTION[self.encryption]
        if self.encryption in IKE_IMPLIED_PRF:
            return f"{enc}-prf{IKE_IMPLIED_PRF[self.encryption]}-{dh}"
        assert self.authentication is not None, f"{self.encryption} without integrity"
        integ = IKE_HASH[self.authentication]
        return f"{enc}-{integ}-prf{integ}-{dh}"


@dataclass
class _EspProposal:
    encryption: str = ""
    authentication: str | None = None
    esn: bool = False

    def token(self, pfs: str | None) -> str:
        parts = [ESP_ENCRYPTION[self.encryption]]
        if self.authentication:
            parts.append(ESP_HMAC[self.authentication])
        if pfs:
            parts.append(DH_TOKEN[pfs])
        if self.esn:
            parts.append("esn")
        return "-".join(parts)


@dataclass
class _Gateway:
    ike_policy: str = ""
    address: str = ""
    local_address: str = ""
    local_id: str = ""
    remote_id: str = ""


@dataclass
class _Vpn:
    bind_interface: str = ""
    gateway: str = ""
    ipsec_policy: str = ""


@dataclass
class Intent:
    """What a Junos device would make of the file, whichever format it came from."""

    ike_proposals: dict[str, _IkeProposal] = field(default_factory=dict)
    ike_policies: dict[str, list[str]] = field(default_factory=dict)
    gateways: dict[str, _Gateway] = field(default_factory=dict)
    esp_proposals: dict[str, _EspProposal] = field(default_factory=dict)
    ipsec_policies: dict[str, tuple[str | None, list[str]]] = field(default_factory=dict)
    vpns: dict[str, _Vpn] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)  # "st0.N" -> address/len
    asn: int = 0
    neighbors: dict[str, int | None] = field(default_factory=dict)  # None: internal group

    def tunnels(self) -> list[RenderedTunnel]:
        out = []
        for vpn in self.vpns.values():
            gw = self.gateways[vpn.gateway]
            pfs, esp_names = self.ipsec_policies[vpn.ipsec_policy]
            inner = IPv4Interface(self.addresses[vpn.bind_interface])
            peers = [a for a in self.neighbors
                     if IPv4Address(a) in inner.network and IPv4Address(a) != inner.ip]
            assert len(peers) == 1, f"{inner}: expected one BGP neighbor on the link, {peers}"
            remote_as = self.neighbors[peers[0]]
            out.append(RenderedTunnel(
                local_public_ip=gw.local_address, peer_public_ip=gw.address,
                local_id=gw.local_id, remote_id=gw.remote_id,
                ike_proposals=frozenset(self.ike_proposals[n].token()
                                        for n in self.ike_policies[gw.ike_policy]),
                esp_proposals=frozenset(self.esp_proposals[n].token(pfs) for n in esp_names),
                inner_interface=str(inner), bgp_local_as=self.asn, bgp_neighbor=peers[0],
                bgp_remote_as=self.asn if remote_as is None else remote_as,
            ))
        return sorted(out, key=lambda t: IPv4Interface(t.inner_interface))


# ---- config.xml ------------------------------------------------------------------------

def _text(node: ET.Element, path: str) -> str:
    found = node.find(path)
    assert found is not None and found.text is not None, f"{path} missing"
    return found.text


def _opt(node: ET.Element, path: str) -> str | None:
    found = node.find(path)
    return None if found is None else found.text


def _all(node: ET.Element, path: str) -> list[str]:
    return [e.text or "" for e in node.iterfind(path)]


def intent_from_xml(xml: str) -> Intent:
    root = ET.fromstring(xml)
    assert root.tag == "configuration", root.tag
    intent = Intent(asn=int(_text(root, "routing-options/autonomous-system/as-number")))
    for p in root.iterfind("security/ike/proposal"):
        intent.ike_proposals[_text(p, "name")] = _IkeProposal(
            _text(p, "encryption-algorithm"), _opt(p, "authentication-algorithm"),
            _text(p, "dh-group"))
    for pol in root.iterfind("security/ike/policy"):
        intent.ike_policies[_text(pol, "name")] = _all(pol, "proposals")
    for gw in root.iterfind("security/ike/gateway"):
        intent.gateways[_text(gw, "name")] = _Gateway(
            _text(gw, "ike-policy"), _text(gw, "address"), _text(gw, "local-address"),
            _text(gw, "local-identity/hostname/identity-hostname"),
            _text(gw, "remote-identity/hostname/identity-hostname"))
    for p in root.iterfind("security/ipsec/proposal"):
        intent.esp_proposals[_text(p, "name")] = _EspProposal(
            _text(p, "encryption-algorithm"), _opt(p, "authentication-algorithm"),
            p.find("extended-sequence-number") is not None)
    for pol in root.iterfind("security/ipsec/policy"):
        intent.ipsec_policies[_text(pol, "name")] = (
            _opt(pol, "perfect-forward-secrecy/keys"), _all(pol, "proposals"))
    for vpn in root.iterfind("security/ipsec/vpn"):
        intent.vpns[_text(vpn, "name")] = _Vpn(
            _text(vpn, "bind-interface"), _text(vpn, "ike/gateway"),
            _text(vpn, "ike/ipsec-policy"))
    for ifd in root.iterfind("interfaces/interface"):
        for unit in ifd.iterfind("unit"):
            name = f"{_text(ifd, 'name')}.{_text(unit, 'name')}"
            intent.addresses[name] = _text(unit, "family/inet/address/name")
    for group in root.iterfind("protocols/bgp/group"):
        internal = _text(group, "type") == "internal"
        for n in group.iterfind("neighbor"):
            peer_as = _opt(n, "peer-as") or _opt(group, "peer-as")
            intent.neighbors[_text(n, "name")] = None if internal else int(peer_as or 0)
    return intent


def tunnels(files: dict[str, str]) -> list[RenderedTunnel]:
    """The tunnels of one Junos gateway, read from its config.xml."""
    return intent_from_xml(files["config.xml"]).tunnels()


# ---- config.set ------------------------------------------------------------------------

def set_commands(text: str) -> list[list[str]]:
    """Each `set` line as words, quotes removed."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        words = shlex.split(line)
        assert words[0] == "set", f"not a set command: {line!r}"
        out.append(words[1:])
    return out


def _names(words: list[str]) -> list[str]:
    """A leaf-list value: `a` or `[ a b ]`."""
    return [w for w in words if w not in ("[", "]")]


def intent_from_set(text: str) -> Intent:
    intent = Intent()
    group_types: dict[str, str] = {}
    group_as: dict[str, int] = {}
    peer_as: dict[str, int] = {}
    members: dict[str, str] = {}
    for words in set_commands(text):
        match words:
            case ["security", "ike", "proposal", name, key, value]:
                p = intent.ike_proposals.setdefault(name, _IkeProposal())
                if key == "encryption-algorithm":
                    p.encryption = value
                elif key == "authentication-algorithm":
                    p.authentication = value
                elif key == "dh-group":
                    p.dh_group = value
            case ["security", "ike", "policy", name, "proposals", *names]:
                intent.ike_policies.setdefault(name, []).extend(_names(names))
            case ["security", "ike", "gateway", name, *rest]:
                gw = intent.gateways.setdefault(name, _Gateway())
                match rest:
                    case ["ike-policy", value]:
                        gw.ike_policy = value
                    case ["address", value]:
                        gw.address = value
                    case ["local-address", value]:
                        gw.local_address = value
                    case ["local-identity", "hostname", value]:
                        gw.local_id = value
                    case ["remote-identity", "hostname", value]:
                        gw.remote_id = value
            case ["security", "ipsec", "proposal", name, *rest]:
                esp = intent.esp_proposals.setdefault(name, _EspProposal())
                match rest:
                    case ["encryption-algorithm", value]:
                        esp.encryption = value
                    case ["authentication-algorithm", value]:
                        esp.authentication = value
                    case ["extended-sequence-number"]:
                        esp.esn = True
            case ["security", "ipsec", "policy", name, "perfect-forward-secrecy", "keys", g]:
                _, names = intent.ipsec_policies.get(name, (None, []))
                intent.ipsec_policies[name] = (g, names)
            case ["security", "ipsec", "policy", name, "proposals", *names]:
                pfs, have = intent.ipsec_policies.get(name, (None, []))
                intent.ipsec_policies[name] = (pfs, have + _names(names))
            case ["security", "ipsec", "vpn", name, *rest]:
                vpn = intent.vpns.setdefault(name, _Vpn())
                match rest:
                    case ["bind-interface", value]:
                        vpn.bind_interface = value
                    case ["ike", "gateway", value]:
                        vpn.gateway = value
                    case ["ike", "ipsec-policy", value]:
                        vpn.ipsec_policy = value
            case ["interfaces", ifd, "unit", unit, "family", "inet", "address", address]:
                intent.addresses[f"{ifd}.{unit}"] = address
            case ["routing-options", "autonomous-system", number, *_]:
                intent.asn = int(number)
            case ["protocols", "bgp", "group", g, "type", kind]:
                group_types[g] = kind
            case ["protocols", "bgp", "group", g, "peer-as", number]:
                group_as[g] = int(number)
            case ["protocols", "bgp", "group", g, "neighbor", address, *rest]:
                members[address] = g
                if rest[:1] == ["peer-as"]:
                    peer_as[address] = int(rest[1])
            case _:
                pass
    for address, g in members.items():
        internal = group_types[g] == "internal"
        intent.neighbors[address] = None if internal else peer_as.get(address, group_as.get(g))
    return intent


def tunnels_from_set(files: dict[str, str]) -> list[RenderedTunnel]:
    """The tunnels of one Junos gateway, read from its config.set."""
    return intent_from_set(files["config.set"]).tunnels()
