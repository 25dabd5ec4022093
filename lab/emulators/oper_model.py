"""Operational state of emulated gateways, derived from committed configuration alone.

Each platform's extractor (oper_junos_extract, oper_iosxe_extract) turns a committed config
into a DeviceIntent: tunnel endpoints and BGP neighbors in the model's spellings. The pure
functions here decide what two such intents would negotiate:

- a tunnel is up when both ends point at each other's public address, share an IKE and an ESP
  proposal (encryption, integrity, PRF, DH / PFS group), each sends the identity the other
  expects, both authenticate the same way (the same pre-shared key, or both certificates) and
  their inner addresses are the two ends of one /31 or /30;
- a BGP session is Established when the tunnel holding its neighbor address is up and both
  ends name each other as neighbor with the other's AS number, neither shut down; a receiver
  gets what the sender's export policy lets out of its originated prefixes and its own import
  policy lets in.

This stands in for real IKE daemons: no packet is exchanged, so a peer that is not an emulated
device of the same PeerRegistry (a real strongSwan gateway, an unknown address) means down.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from ipaddress import IPv4Interface, IPv4Network, ip_address
from typing import TypeVar


class AuthMethod(StrEnum):
    PSK = "psk"
    CERTIFICATE = "certificate"


@dataclass(frozen=True)
class IkeProposal:
    encryption: str  # model spelling, e.g. aes256gcm16
    integrity: str | None  # None for AEAD ciphers
    prf: str
    dh_group: int


@dataclass(frozen=True)
class EspProposal:
    encryption: str
    integrity: str | None
    pfs_group: int | None
    esn: bool = False


@dataclass(frozen=True)
class Identity:
    kind: str  # fqdn | address | email | dn | key-id
    value: str


@dataclass(frozen=True)
class TunnelEndpoint:
    """One end of a route-based tunnel as its committed configuration describes it.

    since: device time at which this exact endpoint was first committed (not compared).
    psk_digest: a SHA-256 of the pre-shared key, so that the key itself never sits in the model.
    """

    name: str  # ipsec vpn name / crypto ipsec profile
    interface: str  # st0.20 / Tunnel20
    local_address: str
    remote_address: str
    ike: tuple[IkeProposal, ...]
    esp: tuple[EspProposal, ...]
    local_id: Identity
    remote_id: Identity | None  # None: any identity is accepted
    auth: AuthMethod
    inner: str | None  # local inner address with prefix length, e.g. 100.64.0.0/31
    ike_lifetime: int = 28800
    esp_lifetime: int = 3600
    cert_method: str = ""  # platform word for the signature method, for reports
    enabled: bool = True
    psk_digest: str | None = field(default=None, repr=False)
    since: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class PrefixRule:
    """One prefix-list entry: network with optional ge/le (exact when both are None)."""

    network: str
    ge: int | None = None
    le: int | None = None
    permit: bool = True

    def matches(self, prefix: str) -> bool:
        (net, net_len), (candidate, length) = _network(self.network), _network(prefix)
        if length < net_len or candidate >> (32 - net_len) != net >> (32 - net_len):
            return False  # not a subnet of the entry's network
        if self.ge is None and self.le is None:
            return length == net_len
        low = self.ge if self.ge is not None else net_len
        high = self.le if self.le is not None else 32
        return low <= length <= high


@lru_cache(maxsize=1 << 16)
def _network(text: str) -> tuple[int, int]:
    """(network address, prefix length) of an IPv4 network; parsed once per text: a hub
    filters hundreds of prefixes through a fabric-wide list per neighbor and state read."""
    network = IPv4Network(text)
    return int(network.network_address), network.prefixlen


@lru_cache(maxsize=1 << 16)
def _interface(text: str) -> IPv4Interface:
    """An address with its prefix ("169.254.0.1/30"), parsed once per text (immutable)."""
    return IPv4Interface(text)


@lru_cache(maxsize=1 << 16)
def _packed(text: str) -> bytes:
    return ip_address(text).packed


PrefixList = tuple[PrefixRule, ...]


def list_permits(rules: PrefixList, prefix: str) -> bool:
    """First matching entry decides; no match denies (both IOS and Junos prefix lists)."""
    return next((r.permit for r in rules if r.matches(prefix)), False)


@dataclass(frozen=True)
class FilterTerm:
    """A route-map sequence / policy term: matches when any list permits (None: matches all).

    accept None is a term that only modifies attributes: evaluation goes on.
    """

    lists: tuple[PrefixList, ...] | None
    accept: bool | None


@dataclass(frozen=True)
class RouteFilter:
    terms: tuple[FilterTerm, ...] = ()
    default: bool = True

    def accepts(self, prefix: str) -> bool:
        for term in self.terms:
            matched = term.lists is None or any(list_permits(rules, prefix)
                                                for rules in term.lists)
            if matched and term.accept is not None:
                return term.accept
        return self.default


ACCEPT_ALL = RouteFilter()


@dataclass(frozen=True)
class BgpNeighbor:
    address: str
    remote_as: int
    description: str = ""
    enabled: bool = True
    announces: tuple[str, ...] = ()  # what this device sends: originated, through export
    accepts: RouteFilter = ACCEPT_ALL  # import policy
    since: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class DeviceIntent:
    gateway: str
    platform: str
    local_addresses: frozenset[str] = frozenset()
    tunnels: tuple[TunnelEndpoint, ...] = ()
    local_as: int | None = None
    router_id: str | None = None
    neighbors: tuple[BgpNeighbor, ...] = ()


# ---- matching ----------------------------------------------------------------------------

P = TypeVar("P", IkeProposal, EspProposal)


@dataclass(frozen=True)
class TunnelMatch:
    up: bool
    reason: str  # why it is down ("" when up)
    ike: IkeProposal | None = None
    esp: EspProposal | None = None


def _initiator_first(a: TunnelEndpoint, b: TunnelEndpoint) -> tuple[TunnelEndpoint,
                                                                    TunnelEndpoint]:
    """Both ends agree on one initiator (the lower public address) and so on one proposal."""
    key = (_packed(a.local_address), _packed(b.local_address))
    return (a, b) if key[0] <= key[1] else (b, a)


def _chosen(initiator: Iterable[P], responder: tuple[P, ...]) -> P | None:
    return next((p for p in initiator if p in responder), None)


def _inner_pair(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    left, right = _interface(a), _interface(b)
    return (left.network == right.network and left.network.prefixlen in (30, 31)
            and left.ip != right.ip
            and all(ip not in (left.network.network_address, left.network.broadcast_address)
                    for ip in (left.ip, right.ip) if left.network.prefixlen == 30))


def tunnel_match(a: TunnelEndpoint, b: TunnelEndpoint) -> TunnelMatch:
    """What two committed tunnel ends negotiate; symmetric in a and b."""
    if a.remote_address != b.local_address or b.remote_address != a.local_address:
        return TunnelMatch(False, "endpoints do not point at each other")
    if not (a.enabled and b.enabled):
        return TunnelMatch(False, "tunnel interface shut down")
    first, second = _initiator_first(a, b)
    ike = _chosen(first.ike, second.ike)
    if ike is None:
        return TunnelMatch(False, "no IKE proposal chosen")
    if not _identity_ok(a, b) or not _identity_ok(b, a):
        return TunnelMatch(False, "identity mismatch", ike)
    if a.auth is not b.auth:
        return TunnelMatch(False, "authentication methods differ", ike)
    if a.auth is AuthMethod.PSK and (a.psk_digest is None or a.psk_digest != b.psk_digest):
        return TunnelMatch(False, "pre-shared keys differ", ike)
    esp = _chosen(first.esp, second.esp)
    if esp is None:
        return TunnelMatch(False, "no ESP proposal chosen", ike)
    if not _inner_pair(a.inner, b.inner):
        return TunnelMatch(False, "inner addresses are not one /31 or /30", ike, esp)
    return TunnelMatch(True, "", ike, esp)


def _identity_ok(sender: TunnelEndpoint, receiver: TunnelEndpoint) -> bool:
    return receiver.remote_id is None or receiver.remote_id == sender.local_id


# ---- one device's state --------------------------------------------------------------------

@dataclass(frozen=True)
class TunnelState:
    endpoint: TunnelEndpoint
    match: TunnelMatch
    peer_gateway: str | None = None
    since: float | None = None  # device time both ends have agreed since (up only)

    @property
    def up(self) -> bool:
        return self.match.up


class BgpPhase(StrEnum):
    ESTABLISHED = "Established"
    ACTIVE = "Active"  # enabled, nobody answers
    IDLE = "Idle"  # administratively shut down


@dataclass(frozen=True)
class BgpState:
    neighbor: BgpNeighbor
    phase: BgpPhase
    received: tuple[str, ...] = ()  # accepted by our import policy
    since: float | None = None
    local_address: str | None = None  # our inner address towards the neighbor
    offered: tuple[str, ...] = ()  # what the peer sends, before our import policy


@dataclass(frozen=True)
class DeviceState:
    tunnels: tuple[TunnelState, ...]
    sessions: tuple[BgpState, ...]


PeerLookup = Callable[[str], DeviceIntent | None]


def _peer_endpoint(mine: TunnelEndpoint, peer: DeviceIntent) -> TunnelEndpoint | None:
    candidates = [t for t in peer.tunnels if t.local_address == mine.remote_address
                  and t.remote_address == mine.local_address]
    same_link = [t for t in candidates if _inner_pair(mine.inner, t.inner)]
    found = same_link or candidates
    return found[0] if found else None


@dataclass
class StateMemo:
    """What device_state worked out for one DeviceIntent (`local`), by tunnel and neighbor
    position, with the peer intents it came from: a tunnel whose peer intent is the same
    object is not matched again. Intents are immutable, so identity is enough. A hub's state
    after one spoke's commit recomputes that spoke's tunnel and session only."""

    local: DeviceIntent
    tunnels: dict[int, tuple[DeviceIntent | None, TunnelState]] = field(default_factory=dict)
    links: dict[int, int | None] = field(default_factory=dict)  # neighbor -> tunnel position
    sessions: dict[int, tuple[TunnelState | None, DeviceIntent | None, BgpState]] = field(
        default_factory=dict)


def _tunnel_state(mine: TunnelEndpoint, peer: DeviceIntent | None) -> TunnelState:
    if peer is None:
        return TunnelState(mine, TunnelMatch(False, "no emulated peer at that address"))
    theirs = _peer_endpoint(mine, peer)
    if theirs is None:
        return TunnelState(mine, TunnelMatch(False, "peer has no tunnel back"), peer.gateway)
    match = tunnel_match(mine, theirs)
    since = max(mine.since, theirs.since) if match.up else None
    return TunnelState(mine, match, peer.gateway, since)


def tunnel_states(local: DeviceIntent, lookup: PeerLookup,
                  memo: StateMemo | None = None) -> tuple[TunnelState, ...]:
    out = []
    for position, mine in enumerate(local.tunnels):
        peer = lookup(mine.remote_address)
        known = memo.tunnels.get(position) if memo is not None else None
        if known is not None and known[0] is peer:
            out.append(known[1])
            continue
        state = _tunnel_state(mine, peer)
        if memo is not None:
            memo.tunnels[position] = (peer, state)
        out.append(state)
    return tuple(out)


def _link_finder(tunnels: Iterable[TunnelState]) -> Callable[[str], TunnelState | None]:
    """neighbor address -> the tunnel whose inner link holds it (the first in order; not the
    tunnel's own address), indexed once by link (prefix length, network): n neighbors over
    n tunnels cost n, not n * n, address parses."""
    links: dict[tuple[int, int], list[tuple[int, int, TunnelState]]] = {}
    for order, state in enumerate(tunnels):
        inner = state.endpoint.inner
        if inner:
            iface = _interface(inner)
            key = (iface.network.prefixlen, int(iface.network.network_address))
            links.setdefault(key, []).append((order, int(iface.ip), state))
    lengths = sorted({length for length, _ in links})

    def find(neighbor: str) -> TunnelState | None:
        address = int.from_bytes(_packed(neighbor), "big")
        found = [(order, state) for length in lengths
                 for order, own, state in links.get(
                     (length, address & (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF), ())
                 if own != address]
        return min(found, key=lambda f: f[0])[1] if found else None

    return find


def bgp_states(local: DeviceIntent, tunnels: tuple[TunnelState, ...],
               lookup: PeerLookup, memo: StateMemo | None = None) -> tuple[BgpState, ...]:
    out = []
    finder: Callable[[str], TunnelState | None] | None = None
    positions = {id(state): position for position, state in enumerate(tunnels)}
    for index, neighbor in enumerate(local.neighbors):
        if not neighbor.enabled:
            out.append(BgpState(neighbor, BgpPhase.IDLE))
            continue
        if memo is not None and index in memo.links:  # the links follow from `local` alone
            at = memo.links[index]
            tunnel = tunnels[at] if at is not None else None
        else:
            finder = finder or _link_finder(tunnels)
            tunnel = finder(neighbor.address)
            if memo is not None:
                memo.links[index] = positions[id(tunnel)] if tunnel is not None else None
        peer = lookup(tunnel.endpoint.remote_address) if tunnel and tunnel.up else None
        known = memo.sessions.get(index) if memo is not None else None
        if known is not None and known[0] is tunnel and known[1] is peer:
            out.append(known[2])
            continue
        session = _bgp_state(local, neighbor, tunnel, peer)
        if memo is not None:
            memo.sessions[index] = (tunnel, peer, session)
        out.append(session)
    return tuple(out)


def _bgp_state(local: DeviceIntent, neighbor: BgpNeighbor, tunnel: TunnelState | None,
               peer: DeviceIntent | None) -> BgpState:
    own = str(_interface(tunnel.endpoint.inner).ip) if tunnel and tunnel.endpoint.inner \
        else None
    back = next((n for n in peer.neighbors if n.address == own), None) if peer else None
    if (peer is None or back is None or tunnel is None or tunnel.since is None
            or not back.enabled or local.local_as is None
            or back.remote_as != local.local_as or neighbor.remote_as != peer.local_as):
        return BgpState(neighbor, BgpPhase.ACTIVE, local_address=own)
    received = tuple(p for p in back.announces if neighbor.accepts.accepts(p))
    since = max(tunnel.since, neighbor.since, back.since)
    return BgpState(neighbor, BgpPhase.ESTABLISHED, received, since, own, back.announces)


def device_state(local: DeviceIntent, lookup: PeerLookup,
                 memo: StateMemo | None = None) -> DeviceState:
    """With memo (made for this `local`), what is known of a tunnel or session whose peer
    intent is unchanged is taken from it, and what is worked out is kept there."""
    if memo is not None and memo.local is not local:
        raise ValueError("a StateMemo serves the DeviceIntent it was made for")
    tunnels = tunnel_states(local, lookup, memo)
    return DeviceState(tunnels, bgp_states(local, tunnels, lookup, memo))


def stamped(previous: DeviceIntent | None, current: DeviceIntent, now: float) -> DeviceIntent:
    """current with `since` kept for every endpoint/neighbor that previous already had."""
    old_tunnels = {t: t.since for t in previous.tunnels} if previous else {}
    old_neighbors = {n: n.since for n in previous.neighbors} if previous else {}
    return replace(
        current,
        tunnels=tuple(replace(t, since=old_tunnels.get(t, now)) for t in current.tunnels),
        neighbors=tuple(replace(n, since=old_neighbors.get(n, now)) for n in current.neighbors))
