"""Read rendered IOS-XE files back into RenderedTunnel, independently of tasks.render_iosxe.

`tunnels` reads config.cli, `tunnels_from_xml` reads config.xml; both follow the chain a
device follows: interface TunnelN -> tunnel protection ipsec profile -> transform-set, pfs,
ikev2-profile (identities) and the ikev2 policy matching the tunnel source (proposals). The
tables below translate IOS-XE spellings into strongSwan tokens. IKE proposals are spelled
with an explicit PRF: `aes256gcm16-prfsha384-ecp384`, `aes256-sha384-prfsha384-ecp384`.
"""

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Interface
from itertools import product

from rendered import RenderedTunnel

IKE_ENCRYPTION = {
    "aes-cbc-128": "aes128", "aes-cbc-192": "aes192", "aes-cbc-256": "aes256",
    "aes-gcm-128": "aes128gcm16", "aes-gcm-256": "aes256gcm16",
    "3des": "3des", "en-3des": "3des", "des": "des",
}
GROUP_NUMBERS = {
    "one": 1, "two": 2, "five": 5, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "nineteen": 19, "twenty": 20, "twenty-one": 21, "twenty-four": 24,
}
DH_TOKEN = {
    1: "modp768", 2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072",
    16: "modp4096", 19: "ecp256", 20: "ecp384", 21: "ecp521", 24: "modp2048s256",
}
HASHES = {"md5", "sha1", "sha256", "sha384", "sha512"}
# transform-set: (esp transform, key bits) -> strongSwan cipher; None = no key-bit given
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


@dataclass(frozen=True)
class _Proposal:
    encryption: tuple[str, ...]
    integrity: tuple[str, ...]
    prf: tuple[str, ...]
    groups: tuple[int, ...]

    def tokens(self) -> set[str]:
        out = set()
        prfs = self.prf or self.integrity  # IOS-XE derives the PRF from integrity if unset
        for enc, prf, group in product(self.encryption, prfs, self.groups):
            dh = DH_TOKEN[group]
            if "gcm" in enc:
                out.add(f"{enc}-prf{prf}-{dh}")
            else:
                out.update(f"{enc}-{integ}-prf{prf}-{dh}" for integ in self.integrity)
        return out


@dataclass(frozen=True)
class _Intent:
    """The device's view, whichever file it came from."""

    proposals: dict[str, _Proposal]
    policies: list[tuple[set[str], list[str]]]  # (local addresses; empty = any, proposals)
    ike_profiles: dict[str, tuple[str, str]]  # name -> (local id, remote id)
    transform_sets: dict[str, str]  # name -> ESP token without PFS
    ipsec_profiles: dict[str, tuple[list[str], int | None, str]]  # ts, pfs, ikev2-profile
    interfaces: list[tuple[str, str, str, str]]  # inner/len, source, destination, profile
    asn: int
    neighbors: dict[str, int]  # address -> remote-as

    def tunnels(self) -> list[RenderedTunnel]:
        out = []
        for inner, source, dest, profile_name in self.interfaces:
            ts_names, pfs, ike_name = self.ipsec_profiles[profile_name]
            local_id, remote_id = self.ike_profiles[ike_name]
            esp = {self.transform_sets[n] + (f"-{DH_TOKEN[pfs]}" if pfs else "")
                   for n in ts_names}
            ike: set[str] = set()
            for local_ips, names in self.policies:
                if not local_ips or source in local_ips:
                    for name in names:
                        ike |= self.proposals[name].tokens()
            net = IPv4Interface(inner).network
            peers = [a for a in self.neighbors if IPv4Interface(f"{a}/32").ip in net
                     and a != inner.split("/")[0]]
            assert len(peers) == 1, f"{inner}: expected one BGP neighbor on the link, {peers}"
            out.append(RenderedTunnel(
                local_public_ip=source, peer_public_ip=dest, local_id=local_id,
                remote_id=remote_id, ike_proposals=frozenset(ike), esp_proposals=frozenset(esp),
                inner_interface=inner, bgp_local_as=self.asn, bgp_neighbor=peers[0],
                bgp_remote_as=self.neighbors[peers[0]],
            ))
        return sorted(out, key=lambda t: IPv4Interface(t.inner_interface))


def _prefixlen(mask: str) -> int:
    return IPv4Interface(f"0.0.0.0/{mask}").network.prefixlen


def _esp(words: list[str]) -> str:
    """`esp-gcm 256` / `esp-aes 256 esp-sha384-hmac` -> aes256gcm16 / aes256-sha384."""
    cipher, bits, hmac = words[0], None, None
    for w in words[1:]:
        if w.isdigit():
            bits = w
        elif w in ESP_HMAC:
            hmac = ESP_HMAC[w]
    token = ESP_CIPHER[(cipher, bits)]
    return f"{token}-{hmac}" if hmac else token


# ---- config.cli ------------------------------------------------------------------------

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


def _from_cli(cli: str) -> _Intent:
    intent = _Intent({}, [], {}, {}, {}, [], 0, {})
    asn = 0
    for head, body in _blocks(cli):
        match head:
            case ["crypto", "ikev2", "proposal", name]:
                fields: dict[str, tuple[str, ...]] = {k: () for k in
                                                      ("encryption", "integrity", "prf", "group")}
                for words in body:
                    fields[words[0]] = tuple(words[1:])
                intent.proposals[name] = _Proposal(
                    tuple(IKE_ENCRYPTION[w] for w in fields["encryption"]),
                    tuple(w for w in fields["integrity"] if w in HASHES),
                    tuple(w for w in fields["prf"] if w in HASHES),
                    tuple(int(g) for g in fields["group"]))
            case ["crypto", "ikev2", "policy", _]:
                local = {w[3] for w in body if w[:3] == ["match", "address", "local"]}
                names = [n for w in body if w[0] == "proposal" for n in w[1:]]
                intent.policies.append((local, names))
            case ["crypto", "ikev2", "profile", name]:
                ids = {" ".join(w[:-1]): w[-1] for w in body}
                intent.ike_profiles[name] = (ids["identity local fqdn"],
                                             ids["match identity remote fqdn"])
            case ["crypto", "ipsec", "transform-set", name, *words]:
                intent.transform_sets[name] = _esp(words)
            case ["crypto", "ipsec", "profile", name]:
                ts = [n for w in body if w[:2] == ["set", "transform-set"] for n in w[2:]]
                pfs = next((int(w[2].removeprefix("group")) for w in body
                            if w[:2] == ["set", "pfs"]), None)
                ike = next(w[2] for w in body if w[:2] == ["set", "ikev2-profile"])
                intent.ipsec_profiles[name] = (ts, pfs, ike)
            case ["interface", ifname] if ifname.startswith("Tunnel"):
                sub = {" ".join(w[:2]): w[2:] for w in body}
                address, mask = sub["ip address"]
                intent.interfaces.append((
                    f"{address}/{_prefixlen(mask)}", sub["tunnel source"][0],
                    sub["tunnel destination"][0], sub["tunnel protection"][-1]))
            case ["router", "bgp", number]:
                asn = int(number)
                for w in body:
                    if w[0] == "neighbor" and w[2] == "remote-as":
                        intent.neighbors[w[1]] = int(w[3])
            case _:
                pass
    return replace(intent, asn=asn)


def tunnels(files: dict[str, str]) -> list[RenderedTunnel]:
    """The tunnels of one IOS-XE gateway, read from its config.cli."""
    return _from_cli(files["config.cli"]).tunnels()


# ---- config.xml ------------------------------------------------------------------------

NS = {
    "nc": "urn:ietf:params:xml:ns:netconf:base:1.0",
    "n": "http://cisco.com/ns/yang/Cisco-IOS-XE-native",
    "c": "http://cisco.com/ns/yang/Cisco-IOS-XE-crypto",
    "t": "http://cisco.com/ns/yang/Cisco-IOS-XE-tunnel",
    "b": "http://cisco.com/ns/yang/Cisco-IOS-XE-bgp",
}


def _text(node: ET.Element, path: str) -> str:
    found = node.find(path, NS)
    assert found is not None and found.text is not None, f"{path} missing"
    return found.text


def _children(node: ET.Element, path: str) -> tuple[str, ...]:
    parent = node.find(path, NS)
    return () if parent is None else tuple(c.tag.split("}")[1] for c in parent)


def _from_xml(xml: str) -> _Intent:
    native = ET.fromstring(xml).find("n:native", NS)
    assert native is not None, "no <native> under <config>"
    ikev2 = "n:crypto/c:ikev2"
    intent = _Intent({}, [], {}, {}, {}, [],
                     int(_text(native, "n:router/b:bgp/b:id")), {})
    for p in native.iterfind(f"{ikev2}/c:proposal", NS):
        intent.proposals[_text(p, "c:name")] = _Proposal(
            tuple(IKE_ENCRYPTION[e] for e in _children(p, "c:encryption")),
            _children(p, "c:integrity"), _children(p, "c:prf"),
            tuple(GROUP_NUMBERS[g] for g in _children(p, "c:group")))
    for pol in native.iterfind(f"{ikev2}/c:policy", NS):
        local = {e.text or "" for e in pol.iterfind("c:match/c:address/c:local-ip", NS)}
        names = [e.text or "" for e in pol.iterfind("c:proposal/c:proposals", NS)]
        intent.policies.append((local, names))
    for prof in native.iterfind(f"{ikev2}/c:profile", NS):
        intent.ike_profiles[_text(prof, "c:name")] = (
            _text(prof, "c:identity/c:local/c:fqdn"),
            _text(prof, "c:match/c:identity/c:remote/c:fqdn/c:fqdn-name"))
    for ts in native.iterfind("n:crypto/c:ipsec/c:transform-set", NS):
        words = [_text(ts, "c:esp")]
        words += [e.text or "" for tag in ("c:key-bit", "c:esp-hmac")
                  for e in ts.iterfind(tag, NS)]
        intent.transform_sets[_text(ts, "c:tag")] = _esp(words)
    for prof in native.iterfind("n:crypto/c:ipsec/c:profile", NS):
        group = prof.find("c:set/c:pfs/c:group", NS)
        intent.ipsec_profiles[_text(prof, "c:name")] = (
            [e.text or "" for e in prof.iterfind("c:set/c:transform-set", NS)],
            int(group.text.removeprefix("group")) if group is not None and group.text else None,
            _text(prof, "c:set/c:ikev2-profile"))
    for tun in native.iterfind("n:interface/n:Tunnel", NS):
        primary = "n:ip/n:address/n:primary"
        intent.interfaces.append((
            f"{_text(tun, f'{primary}/n:address')}/{_prefixlen(_text(tun, f'{primary}/n:mask'))}",
            _text(tun, "t:tunnel/t:source"), _text(tun, "t:tunnel/t:destination-config/t:ipv4"),
            _text(tun, "t:tunnel/t:protection/c:ipsec/c:profile-option/c:name")))
    for nbr in native.iterfind("n:router/b:bgp/b:neighbor", NS):
        intent.neighbors[_text(nbr, "b:id")] = int(_text(nbr, "b:remote-as"))
    return intent


def tunnels_from_xml(files: dict[str, str]) -> list[RenderedTunnel]:
    """The tunnels of one IOS-XE gateway, read from its config.xml."""
    return _from_xml(files["config.xml"]).tunnels()
