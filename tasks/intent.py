"""A gateway's compiled intent as plain data: written beside the rendered files as
`intent.json`, read back by `dcvpn diff --offline` for the semantic IPsec/BGP diff."""

from typing import Any

from inventory.durations import format_duration
from inventory.topology import CompiledFabric
from tasks.render_context import gateway_view
from tasks.running_intent import orlonger

INTENT_FILE = "intent.json"


def gateway_intent(compiled: CompiledFabric, gateway: str) -> dict[str, Any]:
    view = gateway_view(compiled, gateway)
    c = view.spec.crypto
    tunnels: dict[str, dict[str, Any]] = {}
    neighbors: dict[str, dict[str, Any]] = {}
    for t in view.tunnels:
        tunnels[t.name] = {
            "peer_site": t.remote.site, "peer_gateway": t.remote.gateway,
            "peer_public_ip": str(t.remote.public_ip), "plane": t.tunnel.plane,
            "interface_index": t.local.if_index, "network": str(t.tunnel.network),
            "local_inner": str(t.local.inner_ip), "remote_inner": str(t.remote.inner_ip),
            "local_identity": t.local.identity, "peer_identity": t.remote.identity,
            "mtu": t.tunnel.mtu, "mss": t.tunnel.mss,
        }
        neighbors[str(t.bgp_remote.address)] = {
            "remote_as": t.bgp_remote.asn, "local_as": t.bgp_local.asn,
            "role": t.bgp_local.role, "export": t.bgp_local.export,
            "local_pref": t.session.local_pref, "med": t.session.med, "tunnel": t.name,
        }
    return {
        "gateway": gateway,
        "site": view.site.name,
        "platform": str(view.gateway.platform),
        "public_ip": str(view.gateway.public_ip),
        "asn": view.asn,
        "crypto": {
            "ike": {"encryption": c.ike.encryption, "prf": c.ike.prf,
                    "integrity": c.ike.integrity, "dh_group": c.ike.dh_group,
                    "lifetime": format_duration(c.ike.lifetime)},
            "esp": {"encryption": c.esp.encryption, "integrity": c.esp.integrity,
                    "pfs_group": c.esp.pfs_group, "lifetime": format_duration(c.esp.lifetime),
                    "esn": c.esp.esn},
            "dpd": {"interval": format_duration(c.dpd.interval), "action": c.dpd.action},
        },
        "auth": {"method": view.spec.auth.method, "key_type": view.spec.auth.key_type},
        "bgp": {"mode": view.spec.bgp.mode,
                "bfd": view.spec.bgp.bfd.model_dump(),
                "timers": view.spec.bgp.timers.model_dump(),
                "max_prefixes": view.spec.bgp.max_prefixes},
        "prefixes": {"announce": [str(p) for p in view.own_prefixes],
                     "accept": ([orlonger(str(r)) for r in view.accept_ranges]
                                if view.accept_ranges else list(view.fabric_prefix_texts))},
        "tunnels": tunnels,
        "bgp_neighbors": neighbors,
    }
