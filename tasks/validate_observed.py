"""Observed state of one gateway, as plain data, and the reader Protocol that produces it.

A reader (strongSwan+FRR in the lab: tasks.validate_strongswan; emulated or real IOS-XE and
JunOS devices later) turns whatever the device reports into these types; the checks in
tasks.validate_checks compare them with the expected state and never touch a device.
Algorithm names are strongSwan's (vici) spelling, e.g. AES_GCM_16 / PRF_HMAC_SHA2_384 /
ECP_384: a reader for another platform translates its own names into them.
"""

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Protocol


class ReadError(Exception):
    """A reader could not get one kind of state (the daemon is down, a socket is missing)."""


@dataclass(frozen=True, slots=True)
class ChildSa:
    name: str
    state: str  # INSTALLED, REKEYING, ...
    encryption: str
    key_size: int | None
    integrity: str | None
    dh_group: str | None  # only after a rekey with PFS; the first CHILD_SA has none
    local_ts: tuple[str, ...] = ()
    remote_ts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IkeSa:
    name: str  # the connection (tunnel) name
    state: str  # ESTABLISHED, CONNECTING, ...
    remote_host: str
    remote_id: str
    encryption: str | None
    key_size: int | None
    integrity: str | None
    prf: str | None
    dh_group: str | None
    children: tuple[ChildSa, ...] = ()


@dataclass(frozen=True, slots=True)
class BgpPeer:
    address: IPv4Address
    remote_as: int
    state: str  # Established, Active, Connect, ...
    prefixes_received: int | None = None


@dataclass(frozen=True, slots=True)
class Route:
    prefix: IPv4Network
    protocol: str  # bgp, kernel, static, ...
    device: str | None
    gateway: IPv4Address | None


@dataclass(frozen=True, slots=True)
class PingResult:
    ok: bool
    detail: str  # the tool's summary line or error


class DeviceReader(Protocol):
    """Reads one gateway's state. Each method raises ReadError when it cannot."""

    def ike_sas(self) -> tuple[IkeSa, ...]: ...

    def bgp_peers(self) -> tuple[BgpPeer, ...]: ...

    def routes(self) -> tuple[Route, ...]: ...

    def ping(self, source: IPv4Address, target: IPv4Address, size: int | None = None,
             dont_fragment: bool = False) -> PingResult:
        """ICMP echo from `source` (a LAN address of the gateway); size = IP packet bytes."""
        ...

    def negotiation_errors(self) -> dict[str, str]:
        """Connection name -> the last IKE/CHILD negotiation error the device logged."""
        ...
