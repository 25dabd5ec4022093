"""What a test reads back from one gateway's rendered files, in the model's spelling.

The production parsers (tasks/parse_<platform>.py, written against the rendered syntax
independently of the renderers' tables) read the files back into intent; `tunnels` turns
that intent into one RenderedTunnel per tunnel, proposals spelled as strongSwan tokens, so
that the two ends of a tunnel can be compared whatever their platforms.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Interface
from typing import Any

from inventory.crypto import CIPHERS, DH_GROUPS
from tasks import parse_iosxe, parse_junos, parse_strongswan

FROM_FILES = {"iosxe": parse_iosxe.from_files, "junos": parse_junos.from_files,
              "strongswan": parse_strongswan.from_files}


@dataclass(frozen=True)
class RenderedTunnel:
    local_public_ip: str
    peer_public_ip: str
    local_id: str  # IKE identity this end presents
    remote_id: str  # IKE identity this end expects from the peer
    ike_proposals: frozenset[str]  # strongSwan tokens, e.g. "aes256gcm16-prfsha384-ecp384"
    esp_proposals: frozenset[str]  # e.g. "aes256gcm16-ecp384" (PFS group included)
    inner_interface: str  # local inner address with prefix length, e.g. "169.254.0.0/31"
    bgp_local_as: int
    bgp_neighbor: str  # the peer's inner address
    bgp_remote_as: int


def _dh(group: int | None) -> list[str]:
    return [DH_GROUPS[group].token] if group is not None else []


def ike_token(ike: Mapping[str, Any]) -> str:
    aead = CIPHERS[ike["encryption"]].aead
    integ = [ike["integrity"]] if ike["integrity"] and not aead else []
    return "-".join([ike["encryption"], *integ, f"prf{ike['prf']}", *_dh(ike["dh_group"])])


def esp_token(esp: Mapping[str, Any]) -> str:
    return "-".join([esp["encryption"], *([esp["integrity"]] if esp["integrity"] else []),
                     *_dh(esp["pfs_group"]), *(["esn"] if esp["esn"] else [])])


def tunnels(intent: Mapping[str, Any]) -> list[RenderedTunnel]:
    """One RenderedTunnel per tunnel of a read-back intent."""
    by_tunnel = {n["tunnel"]: (address, n) for address, n in intent["bgp_neighbors"].items()}
    out = []
    for name, t in intent["tunnels"].items():
        address, neighbor = by_tunnel[name]
        assert t["remote_inner"] == address, f"{name}: neighbor {address} is not on the link"
        prefixlen = IPv4Interface(t["network"]).network.prefixlen
        out.append(RenderedTunnel(
            local_public_ip=intent["public_ip"], peer_public_ip=t["peer_public_ip"],
            local_id=t["local_identity"], remote_id=t["peer_identity"],
            ike_proposals=frozenset({ike_token(t["crypto"]["ike"])}),
            esp_proposals=frozenset({esp_token(t["crypto"]["esp"])}),
            inner_interface=f"{t['local_inner']}/{prefixlen}",
            bgp_local_as=intent["asn"], bgp_neighbor=address,
            bgp_remote_as=neighbor["remote_as"],
        ))
    return sorted(out, key=lambda t: IPv4Interface(t.inner_interface))


def parsed(platform: str, files: dict[str, str]) -> list[RenderedTunnel]:
    """The tunnels of one gateway, read from its rendered files."""
    return tunnels(FROM_FILES[platform](files))
