"""`dcvpn capacity` output: a text table, JSON (schema SCHEMA) and Markdown for merge requests.

A View is what one run shows: every gateway and site of the plan, or those of the --site
selection; the fabric total always counts every tunnel. Text and Markdown list the hub
gateways (every gateway in a full mesh, or the selected sites'), the busiest other gateway and
every gateway over a limit; JSON lists every gateway of the view.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inventory.capacity import REKEY_JITTER, CapacityPlan, Excess, GatewayLoad, Load, SiteLoad
from inventory.durations import format_duration

SCHEMA = "dcvpn.capacity/v1"
HEADER = ("IKE SAs", "CHILD SAs", "BGP", "IKE rekeys/h", "CHILD rekeys/h", "burst/min")


@dataclass(frozen=True)
class View:
    plan: CapacityPlan
    sites: tuple[str, ...] | None  # the --site selection; None = all

    def gateways(self) -> list[GatewayLoad]:
        return [g for g in self.plan.gateways if self.sites is None or g.site in self.sites]

    def site_loads(self) -> list[SiteLoad]:
        return [s for s in self.plan.sites if self.sites is None or s.site in self.sites]

    def excesses(self) -> list[Excess]:
        return self.plan.excesses(self.sites)

    def listed(self) -> tuple[list[GatewayLoad], list[GatewayLoad]]:
        """(gateways shown in the table, the others)."""
        gateways = self.gateways()
        over = {e.gateway for e in self.excesses()}
        if self.sites is not None or not any(g.hub for g in gateways):
            return gateways, []
        shown = [g for g in gateways if g.hub or g.gateway in over]
        return shown, [g for g in gateways if not g.hub and g.gateway not in over]


def _busiest(gateways: list[GatewayLoad]) -> GatewayLoad | None:
    return max(gateways, key=lambda g: (g.load.rekeys_per_hour, g.load.ike_sas), default=None)


def _num(value: float) -> str:
    return f"{value:.2f}"


def _cells(load: Load) -> list[str]:
    return [str(load.ike_sas), str(load.child_sas), str(load.bgp_sessions),
            _num(load.ike_rekeys_per_hour), _num(load.child_rekeys_per_hour),
            f"{load.rekeys_per_minute:.1f}"]


def _load_dict(load: Load) -> dict[str, Any]:
    return {
        "ike_sas": load.ike_sas, "child_sas": load.child_sas, "bgp_sessions": load.bgp_sessions,
        "ike_rekeys_per_hour": round(load.ike_rekeys_per_hour, 3),
        "child_rekeys_per_hour": round(load.child_rekeys_per_hour, 3),
        "rekeys_per_hour": round(load.rekeys_per_hour, 3),
        "ike_burst_per_minute": round(load.ike_burst_per_minute, 3),
        "child_burst_per_minute": round(load.child_burst_per_minute, 3),
        "rekeys_per_minute": round(load.rekeys_per_minute, 3),
    }


def _timers_line(plan: CapacityPlan) -> str:
    jittering = ", ".join(sorted(str(p) for p, on in REKEY_JITTER.items() if on))
    fixed = ", ".join(sorted(str(p) for p, on in REKEY_JITTER.items() if not on))
    return (f"rekeys: IKE every {format_duration(plan.ike.lifetime)}, CHILD every "
            f"{format_duration(plan.child.lifetime)}; {jittering} ends rekey up to "
            f"{format_duration(plan.ike.jitter)} / {format_duration(plan.child.jitter)} early "
            f"at random (rand_time), {fixed} ends at the lifetime (no jitter setting)")


def _excess_line(e: Excess) -> str:
    figure = f"{e.figure:.1f}" if e.figure != int(e.figure) else str(int(e.figure))
    return (f"{e.gateway} ({e.site}): {figure} {e.what} > fabric.limits.{e.limit_field} "
            f"{e.limit}")


def _limits_lines(view: View) -> list[str]:
    limits = view.plan.limits
    if limits is None:
        return ["limits: none set (fabric.limits)"]
    given = ", ".join(f"{k} {v}" for k, v in limits.model_dump().items() if v is not None)
    over = view.excesses()
    if not over:
        return [f"limits: {given or 'none set'}: every gateway within them"]
    return [f"limits: {given}: {len(over)} exceeded"] + [f"  {_excess_line(e)}" for e in over]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [c.ljust(w) if i < 4 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
    return out


def _gateway_row(g: GatewayLoad) -> list[str]:
    return [g.gateway, g.site, "hub" if g.hub else "-", str(g.platform), *_cells(g.load)]


def _site_rows(view: View) -> list[list[str]]:
    sites = [s for s in view.site_loads() if view.sites is not None or s.hub]
    return [[s.site, "hub" if s.hub else "-", str(len(s.gateways)), "", *_cells(s.load)]
            for s in sites]


def as_text(view: View) -> str:
    plan = view.plan
    shown, others = view.listed()
    busiest = _busiest(others)
    lines = [f"capacity of fabric {plan.fabric}: {len(plan.sites)} sites, "
             f"{len(plan.gateways)} gateways, {plan.tunnels} tunnels", _timers_line(plan), ""]
    rows = [_gateway_row(g) for g in shown]
    lines += _table(["gateway", "site", "role", "platform", *HEADER], rows)
    if busiest is not None:
        lines += ["", f"{len(others)} other gateways; the busiest:"]
        lines += _table(["gateway", "site", "role", "platform", *HEADER], [_gateway_row(busiest)])
    site_rows = _site_rows(view)
    if site_rows:
        lines += ["", "per site (each tunnel once):"]
        lines += _table(["site", "role", "gateways", "", *HEADER], site_rows)
    lines += ["", "fabric (each tunnel once):"]
    lines += _table(["", "", "", "", *HEADER], [["all", "", "", "", *_cells(plan.total)]])
    lines += ["", *_limits_lines(view)]
    return "\n".join(lines) + "\n"


def as_dict(view: View) -> dict[str, Any]:
    plan = view.plan
    over = view.excesses()
    return {
        "schema": SCHEMA,
        "fabric": plan.fabric,
        "sites_selected": list(view.sites) if view.sites is not None else None,
        "timers": {
            name: {"lifetime_s": t.lifetime, "jitter_s": t.jitter}
            for name, t in (("ike", plan.ike), ("child", plan.child))
        },
        "jitter_platforms": sorted(str(p) for p, on in REKEY_JITTER.items() if on),
        "gateways": [{"gateway": g.gateway, "site": g.site, "hub": g.hub,
                      "platform": str(g.platform), **_load_dict(g.load)}
                     for g in view.gateways()],
        "sites": [{"site": s.site, "hub": s.hub, "gateways": list(s.gateways),
                   **_load_dict(s.load)} for s in view.site_loads()],
        "total": {"tunnels": plan.tunnels, **_load_dict(plan.total)},
        "limits": (None if plan.limits is None
                   else {k: v for k, v in plan.limits.model_dump().items() if v is not None}),
        "exceeded": [{"gateway": e.gateway, "site": e.site, "limit": e.limit_field,
                      "figure": round(e.figure, 3), "value": e.limit} for e in over],
        "ok": not over,
    }


def as_json(view: View) -> str:
    return json.dumps(as_dict(view), indent=2) + "\n"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows)]


def as_markdown(view: View) -> str:
    plan = view.plan
    shown, others = view.listed()
    busiest = _busiest(others)
    over = view.excesses()
    status = "within limits" if not over else f"{len(over)} limit(s) exceeded"
    if plan.limits is None:
        status = "no limits set"
    lines = [f"### dcvpn capacity: {plan.fabric} ({status})", "",
             f"{len(plan.sites)} sites, {len(plan.gateways)} gateways, {plan.tunnels} tunnels. "
             f"{_timers_line(plan)}.", ""]
    rows = [_gateway_row(g) for g in shown]
    if busiest is not None:
        rows.append([f"{busiest.gateway} (busiest other)", *_gateway_row(busiest)[1:]])
    lines += _md_table(["gateway", "site", "role", "platform", *HEADER], rows)
    total = ["**fabric**", "", "", "", *_cells(plan.total)]
    lines += ["", *_md_table(["", "", "", "", *HEADER], [total])]
    if over:
        lines += ["", *(f"- :warning: {_excess_line(e)}" for e in over)]
    return "\n".join(lines) + "\n"


WRITERS: dict[str, Callable[[View], str]] = {
    "text": as_text, "json": as_json, "markdown": as_markdown,
}
