"""What a test reads back from one gateway's rendered files, in the model's spelling.

Each platform has a parser module (tests/parse_<platform>.py) with
`tunnels(files: dict[str, str]) -> list[RenderedTunnel]`, written against the rendered syntax
independently of the renderer's own tables, so that the two ends of a tunnel can be compared.
"""

from dataclasses import dataclass


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
