"""What `dcvpn diagnose` gathered about one tunnel, from both ends, as plain data.

tasks.diagnose fills it in (I/O); tasks.diagnose_rules turns it into ranked findings (pure);
pipelines.diagnose_report prints it. Secrets never enter it: a PSK is a digest or a
reference, and only whether the two ends' digests are equal is ever shown.
"""

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from tasks.charon_log import ConnLog
from tasks.gateway_state import BgpNeighbor, DaemonState, GatewayState, SaState
from tasks.swanctl_conf import ConnConfig


@dataclass(frozen=True, slots=True)
class CertEvidence:
    gateway: str
    status: str  # valid | expiring | expired | revoked | missing (tasks.pki.status.Status)
    serial: str | None
    not_after: str | None  # ISO date-time, UTC
    days_left: int | None
    source: str  # the PKI directory the status was read from


@dataclass(frozen=True, slots=True)
class MtuEvidence:
    ok: bool
    mtu: int
    detail: str


@dataclass(frozen=True)
class EndEvidence:
    tunnel: str
    gateway: str
    site: str
    platform: str
    public_ip: IPv4Address
    bgp_neighbor: IPv4Address  # the address this end peers with over the tunnel
    state: GatewayState | None  # None: no reader for this platform
    intended: ConnConfig | None  # the connection as the model renders it
    cert: CertEvidence | None = None

    @property
    def loaded(self) -> ConnConfig | None:
        """The connection as the gateway's loaded configuration has it."""
        return None if self.state is None else self.state.config.get(self.tunnel)

    def sas(self) -> tuple[SaState, ...]:
        return () if self.state is None else self.state.sas_of(self.tunnel)

    def log(self) -> ConnLog | None:
        return None if self.state is None else self.state.log.get(self.tunnel)

    def neighbor(self) -> BgpNeighbor | None:
        return None if self.state is None else self.state.neighbor(self.bgp_neighbor)

    def daemons(self) -> tuple[DaemonState, ...]:
        return () if self.state is None else self.state.daemons


@dataclass(frozen=True)
class TunnelEvidence:
    tunnel: str
    plane: int
    auth: str  # psk | certificate
    ends: tuple[EndEvidence, EndEvidence]
    mtu: MtuEvidence | None = None


def _conn_dict(c: ConnConfig | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"ike_proposals": list(c.ike_proposals), "esp_proposals": list(c.esp_proposals),
            "local_id": c.local_id, "remote_id": c.remote_id, "auth": c.auth,
            "local_addrs": list(c.local_addrs), "remote_addrs": list(c.remote_addrs),
            "psk": "reference" if c.secret_ref else ("set" if c.secret_digest else None)}


def end_dict(end: EndEvidence) -> dict[str, Any]:
    state = end.state
    log = end.log()
    neighbor = end.neighbor()
    return {
        "gateway": end.gateway, "site": end.site, "platform": end.platform,
        "public_ip": str(end.public_ip),
        "readable": state is not None and state.reachable,
        "errors": dict(state.errors) if state else {},
        "daemons": [{"name": d.name, "pid": d.pid, "alive": d.alive,
                     "cpu_seconds": d.cpu_seconds, "rss_bytes": d.rss_bytes}
                    for d in end.daemons()],
        "ike_sas": [{"state": sa.state, "remote_host": sa.remote_host,
                     "remote_id": sa.remote_id, "proposal": sa.proposal,
                     "established_seconds": sa.established_seconds,
                     "children": [{"state": c.state, "proposal": c.proposal,
                                   "bytes_in": c.bytes_in, "bytes_out": c.bytes_out,
                                   "packets_in": c.packets_in, "packets_out": c.packets_out}
                                  for c in sa.children]} for sa in end.sas()],
        "log": None if log is None else {
            "errors": {str(k): v for k, v in log.errors.items()},
            "ike_rekeys": log.ike_rekeys, "child_rekeys": log.child_rekeys,
            "received_proposals": log.received_proposals,
            "configured_proposals": log.configured_proposals},
        "loaded": _conn_dict(end.loaded),
        "intended": _conn_dict(end.intended),
        "bgp": None if neighbor is None else {
            "address": str(neighbor.address), "state": neighbor.state,
            "remote_as": neighbor.remote_as, "established": neighbor.established,
            "dropped": neighbor.dropped, "prefixes_received": neighbor.prefixes_received,
            "last_reset": neighbor.last_reset},
        "bgp_neighbor": str(end.bgp_neighbor),
        "certificate": None if end.cert is None else {
            "status": end.cert.status, "serial": end.cert.serial,
            "not_after": end.cert.not_after, "days_left": end.cert.days_left,
            "source": end.cert.source},
    }
