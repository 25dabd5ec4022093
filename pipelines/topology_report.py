"""The compiled topology as text, JSON and Graphviz dot."""

import json
from typing import Any

from inventory.topology import CompiledFabric


def as_dict(compiled: CompiledFabric) -> dict[str, Any]:
    spec = compiled.fabric.fabric
    return {
        "fabric": spec.name,
        "topology": str(spec.topology),
        "hubs": list(spec.hubs),
        "tunnels": [
            {
                "id": t.id,
                "name": t.name,
                "plane": t.plane,
                "network": str(t.network),
                "mtu": t.mtu,
                "mss": t.mss,
                "udp_encap": t.udp_encap,
                "endpoints": [
                    {
                        "site": e.site,
                        "gateway": e.gateway,
                        "platform": str(e.platform),
                        "public_ip": str(e.public_ip),
                        "inner_ip": str(e.inner_ip),
                        "interface_index": e.if_index,
                        "identity": e.identity,
                        "hub": e.hub,
                    }
                    for e in t.endpoints
                ],
            }
            for t in compiled.tunnels
        ],
        "bgp_sessions": [
            {
                "tunnel_id": s.tunnel_id,
                "plane": s.plane,
                "local_pref": s.local_pref,
                "med": s.med,
                "endpoints": [
                    {
                        "site": e.site,
                        "gateway": e.gateway,
                        "address": str(e.address),
                        "asn": e.asn,
                        "role": e.role,
                        "export": e.export,
                    }
                    for e in s.endpoints
                ],
            }
            for s in compiled.sessions
        ],
    }


def as_json(compiled: CompiledFabric) -> str:
    return json.dumps(as_dict(compiled), indent=2) + "\n"


def as_text(compiled: CompiledFabric) -> str:
    spec = compiled.fabric.fabric
    lines = [
        f"fabric {spec.name}: {spec.topology}, {len(compiled.fabric.sites)} sites, "
        f"{len(compiled.tunnels)} tunnels, {len(compiled.sessions)} BGP sessions ({spec.bgp.mode})",
        "",
        f"{'tunnel':<28} {'id':>6}  {'link':<18} {'side A':<36} {'side B':<36} "
        f"{'mtu':>5} {'mss':>5}",
    ]
    for t in compiled.tunnels:
        a, b = t.endpoints
        side_a = f"{a.gateway} {a.inner_ip}"
        side_b = f"{b.gateway} {b.inner_ip}"
        lines.append(f"{t.name:<28} {t.id:>6}  {t.network!s:<18} {side_a:<36} {side_b:<36} "
                     f"{t.mtu:>5} {t.mss:>5}")
    lines += ["", f"{'bgp session':<28} {'side A':<40} {'side B':<40} {'lpref':>5} {'med':>4}"]
    for t, s in zip(compiled.tunnels, compiled.sessions, strict=True):
        ba, bb = s.endpoints
        side_a = f"{ba.address} AS{ba.asn} {ba.role}"
        side_b = f"{bb.address} AS{bb.asn} {bb.role}"
        lines.append(f"{t.name:<28} {side_a:<40} {side_b:<40} {s.local_pref:>5} {s.med:>4}")
    return "\n".join(lines) + "\n"


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def as_dot(compiled: CompiledFabric) -> str:
    spec = compiled.fabric.fabric
    hubs = set(spec.hubs)
    lines = [f"graph {_q(spec.name)} {{", "  graph [overlap=false, splines=true];",
             "  node [shape=box, style=rounded];"]
    regions: dict[str, list[str]] = {}
    for site in sorted(compiled.fabric.sites, key=lambda s: s.id):
        regions.setdefault(site.region or "", []).append(site.name)
    for region in sorted(regions):
        indent = "  "
        if region:
            lines.append(f"  subgraph {_q('cluster_' + region)} {{")
            lines.append(f"    label={_q('region ' + region)};")
            indent = "    "
        for name in regions[region]:
            site = compiled.fabric.site(name)
            gws = "\\n".join(g.name for g in site.gateways)
            attrs = f'label="{name}\\n{gws}"'
            if name in hubs:
                attrs += ", penwidth=3, style=\"rounded,bold,filled\", fillcolor=lightyellow"
            lines.append(f"{indent}{_q(name)} [{attrs}];")
        if region:
            lines.append("  }")
    for t in compiled.tunnels:
        a, b = t.endpoints
        style = "solid" if t.plane == 0 else "dashed"
        lines.append(f"  {_q(a.site)} -- {_q(b.site)} "
                     f"[label={_q(f'p{t.plane} {t.network}')}, style={style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
