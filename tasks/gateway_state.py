"""One gateway's runtime state as plain data, for diagnose and metrics (parsers are pure).

Richer than the validator's view (tasks.validate_observed): SA traffic counters, BGP
connection counts (flaps), the daemons the lab recorded and their CPU and memory, and what
charon's log says per connection. tasks.gateway_read fills it in.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from tasks.charon_log import ConnLog
from tasks.swanctl_conf import ConnConfig

ESTABLISHED = "ESTABLISHED"
INSTALLED = "INSTALLED"
BGP_ESTABLISHED = "Established"


@dataclass(frozen=True, slots=True)
class ChildState:
    name: str
    state: str
    proposal: str
    bytes_in: int
    bytes_out: int
    packets_in: int
    packets_out: int


@dataclass(frozen=True, slots=True)
class SaState:
    conn: str
    state: str
    remote_host: str
    remote_id: str
    proposal: str  # negotiated, strongSwan spelling: AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384
    established_seconds: int | None
    children: tuple[ChildState, ...] = ()


@dataclass(frozen=True, slots=True)
class BgpNeighbor:
    address: IPv4Address
    remote_as: int
    state: str
    established: int  # connectionsEstablished
    dropped: int  # connectionsDropped: each is a flap
    prefixes_received: int | None
    description: str
    last_reset: str | None


@dataclass(frozen=True, slots=True)
class DaemonState:
    name: str  # charon, zebra, bgpd, bfdd
    pid: int
    alive: bool
    cpu_seconds: float | None = None
    rss_bytes: int | None = None


@dataclass(frozen=True)
class GatewayState:
    """What could be read of one gateway; `errors` names each source that could not be read
    (charon, bgpd, config, log, daemons) with the reason."""

    gateway: str
    reachable: bool  # its namespace and folder exist
    sas: tuple[SaState, ...] = ()
    bgp: tuple[BgpNeighbor, ...] = ()
    daemons: tuple[DaemonState, ...] = ()
    log: dict[str, ConnLog] = field(default_factory=dict)
    config: dict[str, ConnConfig] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def daemon(self, name: str) -> DaemonState | None:
        return next((d for d in self.daemons if d.name == name), None)

    def sas_of(self, conn: str) -> tuple[SaState, ...]:
        return tuple(sa for sa in self.sas if sa.conn == conn)

    def neighbor(self, address: IPv4Address) -> BgpNeighbor | None:
        return next((n for n in self.bgp if n.address == address), None)

    def tunnel_up(self, conn: str) -> bool:
        return any(sa.state == ESTABLISHED and any(
            c.name == conn and c.state == INSTALLED for c in sa.children)
            for sa in self.sas_of(conn))


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _opt_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _alg(sa: Mapping[str, Any], with_prf: bool) -> str:
    enc = str(sa.get("encr-alg", "?"))
    size = sa.get("encr-keysize")
    parts = [f"{enc}_{size}" if size else enc]
    keys = ("integ-alg", "prf-alg", "dh-group") if with_prf else ("integ-alg", "dh-group")
    parts += [str(sa[k]) for k in keys if sa.get(k)]
    return "/".join(parts)


def parse_sa_states(entries: Sequence[Mapping[str, Any]]) -> tuple[SaState, ...]:
    """vici `list-sas` events (text leaves, each {conn: {...}}) with their counters."""
    out = []
    for entry in entries:
        for conn, sa in entry.items():
            children = tuple(
                ChildState(str(c.get("name", "")), str(c.get("state", "")), _alg(c, False),
                           _int(c.get("bytes-in")), _int(c.get("bytes-out")),
                           _int(c.get("packets-in")), _int(c.get("packets-out")))
                for c in (sa.get("child-sas") or {}).values())
            out.append(SaState(str(conn), str(sa.get("state", "")),
                               str(sa.get("remote-host", "")), str(sa.get("remote-id", "")),
                               _alg(sa, True), _opt_int(sa.get("established")), children))
    return tuple(sorted(out, key=lambda s: (s.conn, s.state)))


def parse_bgp_neighbors(data: Mapping[str, Any]) -> tuple[BgpNeighbor, ...]:
    """FRR `show bgp neighbors json`: address -> {bgpState, connectionsDropped, ...}."""
    out = []
    for address, n in data.items():
        if not isinstance(n, Mapping):
            continue
        try:
            addr = IPv4Address(address)
        except ValueError:
            continue
        af = (n.get("addressFamilyInfo") or {}).get("ipv4Unicast") or {}
        out.append(BgpNeighbor(addr, _int(n.get("remoteAs")), str(n.get("bgpState", "")),
                               _int(n.get("connectionsEstablished")),
                               _int(n.get("connectionsDropped")),
                               _opt_int(af.get("acceptedPrefixCounter")),
                               str(n.get("nbrDesc", "")), n.get("lastResetDueTo")))
    return tuple(sorted(out, key=lambda n: n.address))
