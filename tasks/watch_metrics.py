"""`dcvpn watch` metrics in Prometheus text (pure), in the style of tasks.metrics_format.

Per check the last observed state (`dcvpn_watch_check_up`), and over the whole run the
cycles, alerts and heal actions (counters restart with the watcher, which rate() treats as a
counter reset). The fabric's own runtime families (tunnels, SA counters, BGP, daemons) come
from tasks.metrics_format and are written into the same file.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tasks.metrics_format import Family, MetricType, Sample
from tasks.watch_rules import Action, Alert, AlertKind, Observation

WATCH_METRICS: dict[str, tuple[MetricType, str]] = {
    "dcvpn_watch_check_up": (MetricType.GAUGE,
                             "1 if the check passed in the last cycle (tunnel, bgp, prefixes, "
                             "route, ping, probe, daemon, gateway)."),
    "dcvpn_watch_cycles_total": (MetricType.COUNTER, "Watch cycles run."),
    "dcvpn_watch_cycle_duration_seconds": (MetricType.GAUGE,
                                           "How long the last cycle took."),
    "dcvpn_watch_last_cycle_timestamp_seconds": (MetricType.GAUGE,
                                                 "When the last cycle ended (Unix time)."),
    "dcvpn_watch_alerts_total": (MetricType.COUNTER, "Alerts raised, by kind."),
    "dcvpn_watch_actions_total": (MetricType.COUNTER,
                                  "Heal actions carried out, by gateway, action and result."),
    "dcvpn_watch_actions_refused_total": (MetricType.COUNTER,
                                          "Heal actions the hourly limit refused."),
}


@dataclass(frozen=True)
class Totals:
    """What the watcher has done since it started."""

    cycles: int = 0
    alerts: Counter[str] = field(default_factory=Counter)  # kind -> count
    actions: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # gw, action, result
    refused: Counter[str] = field(default_factory=Counter)  # gateway -> count

    def add(self, alerts: Iterable[Alert], results: Iterable[tuple[Action, bool]] = (),
            refused: Iterable[Action] = (), cycles: int = 0) -> "Totals":
        return Totals(
            self.cycles + cycles,
            self.alerts + Counter(str(a.kind) for a in alerts),
            self.actions + Counter((a.gateway, a.describe, "ok" if ok else "failed")
                                   for a, ok in results),
            self.refused + Counter(a.gateway for a in refused))


def _family(name: str, samples: Sequence[Sample]) -> Family:
    kind, text = WATCH_METRICS[name]
    return Family(name, text, kind, tuple(samples))


def watch_families(observations: Sequence[Observation], totals: Totals, duration: float,
                   ended: float) -> list[Family]:
    checks = [Sample((("check", str(o.check)), ("gateway", o.gateway), ("subject", o.subject)),
                     int(o.up))
              for o in sorted(observations, key=lambda o: (o.check, o.gateway, o.subject))]
    out = [_family("dcvpn_watch_check_up", checks),
           _family("dcvpn_watch_cycles_total", [Sample((), totals.cycles)]),
           _family("dcvpn_watch_cycle_duration_seconds", [Sample((), round(duration, 3))]),
           _family("dcvpn_watch_last_cycle_timestamp_seconds", [Sample((), round(ended, 3))]),
           _family("dcvpn_watch_alerts_total",
                   [Sample((("kind", str(k)),), totals.alerts.get(str(k), 0))
                    for k in AlertKind])]
    if totals.actions:
        out.append(_family("dcvpn_watch_actions_total", [
            Sample((("gateway", gw), ("action", action), ("result", result)), n)
            for (gw, action, result), n in sorted(totals.actions.items())]))
    if totals.refused:
        out.append(_family("dcvpn_watch_actions_refused_total", [
            Sample((("gateway", gw),), n) for gw, n in sorted(totals.refused.items())]))
    return [f for f in out if f.samples]
