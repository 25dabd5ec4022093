"""What each platform can do with a multihomed gateway (Gateway.uplinks), as data.

strongSwan moves an IKE SA and its CHILD SAs to another address with MOBIKE (RFC 4555), which
both ends must announce. Neither IOS-XE nor JunOS offers MOBIKE for route-based site-to-site
tunnels: Cisco documents IKEv2 MOBIKE for StarOS (ASR 5500), not for IOS-XE sVTIs; the
junos-es 24.4R1 YANG has no MOBIKE leaf, only the `ike gateway address` leaf-list ("1 primary,
upto 4 backups"). Lint (inventory.lint_multihomed) and the renderers read this table.
"""

from dataclasses import dataclass

from inventory.model import Platform


@dataclass(frozen=True, slots=True)
class Multihoming:
    mobike: bool
    # None: the platform terminates IKE on several local addresses; else why it cannot.
    local: str | None
    # What the platform renders towards a multihomed (strongSwan) peer.
    as_peer: str
    # How many addresses of one peer it can configure (None: any number).
    peer_addresses: int | None


MULTIHOMING: dict[Platform, Multihoming] = {
    Platform.STRONGSWAN: Multihoming(
        mobike=True, local=None,
        as_peer="mobike = yes and every address in remote_addrs: the IKE SA moves",
        peer_addresses=None),
    Platform.IOSXE: Multihoming(
        mobike=False,
        local="an IOS-XE sVTI has one `tunnel source` and the IKEv2 policy matches one local "
              "address; IOS-XE has no MOBIKE for site-to-site tunnels",
        as_peer="only the peer's public_ip (`tunnel destination`, keyring address): IOS-XE has "
                "no MOBIKE and an sVTI has one destination, so this tunnel is down while the "
                "peer's primary uplink is",
        peer_addresses=1),
    Platform.JUNOS: Multihoming(
        mobike=False,
        local="a JunOS `ike gateway` has one `local-address`; JunOS has no MOBIKE",
        as_peer="`ike gateway address` with the peer's public_ip first and its uplinks as "
                "backup peers, and mobike = no on the strongSwan end (which answers on every "
                "address): JunOS has no MOBIKE, so the tunnel is re-negotiated to the next "
                "address (a new IKE SA, not a moved one) once JunOS DPD declares the address "
                "in use dead",
        peer_addresses=5),
}
