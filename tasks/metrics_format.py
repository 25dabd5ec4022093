"""Prometheus text exposition (format 0.0.4) of the fabric's runtime state (pure).

`fabric_families` turns the gateways' states (tasks.gateway_state) into metric families;
`exposition` writes them with HELP and TYPE lines. Counter names end in `_total`. A gateway
that cannot be read still reports its tunnels and sessions as down (0), so an alert on
`dcvpn_tunnel_up == 0` fires for a dead gateway too; counters it cannot read are left out.
CHILD SA byte and packet counters are those of the SAs installed now: they restart at
each rekey, which Prometheus' rate() treats as a counter reset.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from inventory.topology import CompiledFabric
from tasks.gateway_state import BGP_ESTABLISHED, INSTALLED, GatewayState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"


Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Sample:
    labels: Labels
    value: float


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    help: str
    type: MetricType
    samples: tuple[Sample, ...]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return repr(float(value))


def exposition(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for f in families:
        lines += [f"# HELP {f.name} {_escape_help(f.help)}", f"# TYPE {f.name} {f.type}"]
        for s in f.samples:
            labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in s.labels)
            lines.append(f"{f.name}{{{labels}}} {_number(s.value)}" if labels
                         else f"{f.name} {_number(s.value)}")
    return "\n".join(lines) + "\n" if lines else ""


# name -> (type, help): the one place the metric names and their meaning are defined
METRICS: dict[str, tuple[MetricType, str]] = {
    "dcvpn_gateway_up": (MetricType.GAUGE,
                         "1 if the gateway runs and its charon answered, else 0."),
    "dcvpn_daemon_up": (MetricType.GAUGE, "1 if the daemon the lab started still runs."),
    "dcvpn_daemon_cpu_seconds_total": (MetricType.COUNTER,
                                       "CPU time (user + system) the daemon has used."),
    "dcvpn_daemon_resident_memory_bytes": (MetricType.GAUGE, "Resident memory of the daemon."),
    "dcvpn_tunnel_up": (MetricType.GAUGE,
                        "1 if the gateway has the tunnel's IKE SA established and its "
                        "CHILD SA installed."),
    "dcvpn_ike_rekeys_total": (MetricType.COUNTER,
                               "IKE SA rekeys of the tunnel in charon's log."),
    "dcvpn_child_sa_rekeys_total": (MetricType.COUNTER,
                                    "CHILD SA rekeys of the tunnel in charon's log."),
    "dcvpn_child_sa_bytes_in_total": (MetricType.COUNTER,
                                      "Bytes received on the tunnel's installed CHILD SAs."),
    "dcvpn_child_sa_bytes_out_total": (MetricType.COUNTER,
                                       "Bytes sent on the tunnel's installed CHILD SAs."),
    "dcvpn_child_sa_packets_in_total": (MetricType.COUNTER,
                                        "Packets received on the tunnel's installed "
                                        "CHILD SAs."),
    "dcvpn_child_sa_packets_out_total": (MetricType.COUNTER,
                                         "Packets sent on the tunnel's installed CHILD SAs."),
    "dcvpn_bgp_session_up": (MetricType.GAUGE, "1 if the BGP session is Established."),
    "dcvpn_bgp_prefixes_received": (MetricType.GAUGE,
                                    "Prefixes accepted from the BGP neighbor."),
    "dcvpn_bgp_connections_dropped_total": (MetricType.COUNTER,
                                            "Times the BGP session went down (flaps)."),
}


class _Collector:
    def __init__(self) -> None:
        self.samples: dict[str, list[Sample]] = {name: [] for name in METRICS}

    def add(self, name: str, value: float, **labels: str) -> None:
        self.samples[name].append(Sample(tuple(labels.items()), value))

    def families(self) -> list[Family]:
        return [Family(name, METRICS[name][1], METRICS[name][0], tuple(self.samples[name]))
                for name in METRICS if self.samples[name]]


def _gateway(c: _Collector, compiled: CompiledFabric, gw: str, state: GatewayState) -> None:
    charon_ok = state.reachable and "charon" not in state.errors
    bgp_ok = state.reachable and "bgpd" not in state.errors
    c.add("dcvpn_gateway_up", int(charon_ok), gateway=gw)
    for d in state.daemons:
        c.add("dcvpn_daemon_up", int(d.alive), gateway=gw, daemon=d.name)
        if d.cpu_seconds is not None:
            c.add("dcvpn_daemon_cpu_seconds_total", d.cpu_seconds, gateway=gw, daemon=d.name)
        if d.rss_bytes is not None:
            c.add("dcvpn_daemon_resident_memory_bytes", d.rss_bytes, gateway=gw,
                  daemon=d.name)
    for tunnel, session in compiled.tunnels_of(gw):
        peer = tunnel.side(gw)[1].gateway
        name = tunnel.name
        c.add("dcvpn_tunnel_up", int(charon_ok and state.tunnel_up(name)), tunnel=name,
              gateway=gw, peer=peer, plane=str(tunnel.plane))
        log = state.log.get(name)
        if state.reachable and "log" not in state.errors:
            c.add("dcvpn_ike_rekeys_total", log.ike_rekeys if log else 0, tunnel=name,
                  gateway=gw)
            c.add("dcvpn_child_sa_rekeys_total", log.child_rekeys if log else 0, tunnel=name,
                  gateway=gw)
        if charon_ok:
            children = [ch for sa in state.sas_of(name) for ch in sa.children
                        if ch.name == name and ch.state == INSTALLED]
            for metric, attr in (("bytes_in", "bytes_in"), ("bytes_out", "bytes_out"),
                                 ("packets_in", "packets_in"), ("packets_out", "packets_out")):
                c.add(f"dcvpn_child_sa_{metric}_total",
                      sum(getattr(ch, attr) for ch in children), tunnel=name, gateway=gw)
        address = session.side(gw)[1].address
        neighbor = state.neighbor(address) if bgp_ok else None
        up = neighbor is not None and neighbor.state == BGP_ESTABLISHED
        c.add("dcvpn_bgp_session_up", int(up), gateway=gw, neighbor=str(address))
        if neighbor is not None:
            if neighbor.prefixes_received is not None:
                c.add("dcvpn_bgp_prefixes_received", neighbor.prefixes_received, gateway=gw,
                      neighbor=str(address))
            c.add("dcvpn_bgp_connections_dropped_total", neighbor.dropped, gateway=gw,
                  neighbor=str(address))


def fabric_families(compiled: CompiledFabric, states: Mapping[str, GatewayState],
                    gateways: Sequence[str]) -> list[Family]:
    """Metric families of `gateways` (in this order) from their states."""
    c = _Collector()
    for gw in gateways:
        _gateway(c, compiled, gw, states[gw])
    return c.families()
