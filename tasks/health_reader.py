"""A DeviceReader over ConfigDriver.get_state, for gateways reached through a driver.

get_state reports SAs by remote address in the model's spelling (aes256gcm16, sha384, group
20); the checks want them per tunnel name in strongSwan's spelling (tasks.validate_observed).
This adapter maps one onto the other with the expected tunnels of the gateway, and has no
routing table and no ping: those checks are not applicable to it (`routes` and `ping` raise
NotApplicableError), which the health gate reports as such, never as passed.
"""

from collections.abc import Sequence
from ipaddress import IPv4Address, ip_address

from drivers.base import ChildSa as DriverChild
from drivers.base import DeviceState
from drivers.base import IkeSa as DriverIke
from tasks.validate_expect import DH, ENCRYPTION, INTEGRITY, PRF, TunnelExpect
from tasks.validate_observed import BgpPeer, ChildSa, IkeSa, PingResult, ReadError, Route


class NotApplicableError(ReadError):
    """The reader cannot observe this kind of state at all (not a failure of the device)."""


# cipher families some devices report without a key size (IOS-XE IKEv2 SA data): the size
# is then not compared
FAMILIES: dict[str, tuple[str, None]] = {
    "aesgcm16": ("AES_GCM_16", None), "aesgcm12": ("AES_GCM_12", None),
    "aesgcm8": ("AES_GCM_8", None), "aes": ("AES_CBC", None),
    "aesgmac": ("NULL_AES_GMAC", None)}
NO_ROUTES = "the driver's get_state has no routing table"
NO_PING = "the driver's get_state cannot ping"


def _cipher(name: str) -> tuple[str | None, int | None]:
    if not name:
        return None, None
    return ENCRYPTION.get(name) or FAMILIES.get(name) or (name.upper(), None)


def _dh(group: int | None) -> str | None:
    return DH.get(group, f"GROUP_{group}") if group is not None else None


def _child(tunnel: str, sa: DriverChild) -> ChildSa:
    encryption, size = _cipher(sa.encryption)
    return ChildSa(tunnel, sa.state, encryption or "?", size,
                   INTEGRITY.get(sa.integrity or "", sa.integrity), _dh(sa.dh_group))


def _ike(tunnel: TunnelExpect, sa: DriverIke, children: tuple[ChildSa, ...]) -> IkeSa:
    encryption, size = _cipher(sa.encryption)
    return IkeSa(tunnel.name, sa.state, sa.remote_address, sa.remote_id, encryption, size,
                 INTEGRITY.get(sa.integrity or "", sa.integrity), PRF.get(sa.prf or "", sa.prf),
                 _dh(sa.dh_group), children)


def _address(text: str) -> IPv4Address | None:
    try:
        found = ip_address(text.strip())
    except ValueError:
        return None
    return found if isinstance(found, IPv4Address) else None


class StateReader:
    """DeviceReader of one gateway from one get_state answer (or the error reading it)."""

    def __init__(self, gateway: str, state: DeviceState | ReadError,
                 tunnels: Sequence[TunnelExpect]) -> None:
        self.gateway = gateway
        self._state = state
        self._tunnels = tuple(tunnels)

    def _read(self) -> DeviceState:
        if isinstance(self._state, ReadError):
            raise self._state
        return self._state

    def ike_sas(self) -> tuple[IkeSa, ...]:
        state = self._read()
        out = []
        for tunnel in self._tunnels:
            remote = {str(a) for a in (tunnel.remote_host, *tunnel.remote_hosts)}
            children = tuple(_child(tunnel.name, c) for c in state.child_sas
                             if c.remote_address in remote)
            out += [_ike(tunnel, sa, children) for sa in state.ike_sas
                    if sa.remote_address in remote]
        return tuple(out)

    def bgp_peers(self) -> tuple[BgpPeer, ...]:
        out = []
        for session in self._read().bgp_sessions:
            address = _address(session.neighbor)
            if address is not None:
                out.append(BgpPeer(address, session.remote_as, session.state,
                                   session.prefixes_received))
        return tuple(out)

    def routes(self) -> tuple[Route, ...]:
        raise NotApplicableError(NO_ROUTES)

    def ping(self, source: IPv4Address, target: IPv4Address, size: int | None = None,
             dont_fragment: bool = False) -> PingResult:
        raise NotApplicableError(NO_PING)

    def negotiation_errors(self) -> dict[str, str]:
        return {}
