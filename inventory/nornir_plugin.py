"""Nornir inventory plugin: one host per gateway, with its compiled intent in host data.

    nr = InitNornir(inventory={"plugin": "DcvpnInventory",
                               "options": {"fabric": "inventory/examples/acme-hybrid.yaml"}})
    nr.filter(region="eu"), nr.filter(site="fra1"), nr.filter(platform="junos")

Hosts belong to groups `site:<name>`, `region:<name>`, `platform:<name>` and `hubs`.
`host["compiled"]` (from the defaults) is the whole CompiledFabric, shared by all hosts.
Credentials come from DCVPN_USERNAME / DCVPN_PASSWORD unless given as options.
"""

import os
from typing import Any

from nornir.core.inventory import Defaults, Group, Groups, Host, Hosts, Inventory, ParentGroups

from inventory.errors import TopologyError
from inventory.findings import Severity
from inventory.lint import lint
from inventory.loader import load_fabric
from inventory.topology import CompiledFabric, compile_fabric


def gateway_intent(compiled: CompiledFabric, gateway: str) -> dict[str, Any]:
    """JSON-friendly view of one gateway's tunnels and BGP neighbors."""
    tunnels = []
    neighbors = []
    for tunnel, session in compiled.tunnels_of(gateway):
        local, remote = tunnel.side(gateway)
        tunnels.append({
            "id": tunnel.id, "name": tunnel.name, "plane": tunnel.plane,
            "interface_index": local.if_index, "network": str(tunnel.network),
            "local_inner": str(local.inner_ip), "remote_inner": str(remote.inner_ip),
            "peer_site": remote.site, "peer_gateway": remote.gateway,
            "peer_platform": str(remote.platform), "peer_public_ip": str(remote.public_ip),
            "local_identity": local.identity, "peer_identity": remote.identity,
            "mtu": tunnel.mtu, "mss": tunnel.mss,
        })
        me, peer = session.side(gateway)
        neighbors.append({
            "address": str(peer.address), "remote_as": peer.asn, "local_as": me.asn,
            "role": me.role, "export": me.export, "tunnel": tunnel.name,
            "local_pref": session.local_pref, "med": session.med,
        })
    return {"tunnels": tunnels, "bgp_neighbors": neighbors}


class DcvpnInventory:
    def __init__(self, fabric: str, username: str | None = None, password: str | None = None,
                 allow_lint_errors: bool = False, compiled: CompiledFabric | None = None) -> None:
        """`compiled`: a fabric the caller already loaded and linted (not loaded again)."""
        self.fabric_file = fabric
        self.compiled = compiled
        self.username = username if username is not None else os.environ.get("DCVPN_USERNAME")
        self.password = password if password is not None else os.environ.get("DCVPN_PASSWORD")
        self.allow_lint_errors = allow_lint_errors

    def _compile(self) -> CompiledFabric:
        if self.compiled is not None:
            return self.compiled
        loaded = load_fabric(self.fabric_file)
        if not self.allow_lint_errors:
            errors = [f.format() for f in lint(loaded) if f.severity is Severity.ERROR]
            if errors:
                raise TopologyError("fabric has lint errors:\n" + "\n".join(errors))
        return compile_fabric(loaded.fabric)

    def load(self) -> Inventory:
        compiled = self._compile()
        spec = compiled.fabric.fabric
        groups = Groups()

        def group(name: str) -> Group:
            if name not in groups:
                groups[name] = Group(name=name)
            return groups[name]

        hosts = Hosts()
        for site, gw in compiled.gateways():
            member_of = [f"site:{site.name}", f"platform:{gw.platform}"]
            if site.region:
                member_of.append(f"region:{site.region}")
            if site.name in spec.hubs:
                member_of.append("hubs")
            hosts[gw.name] = Host(
                name=gw.name,
                hostname=gw.host,
                port=gw.effective_port,
                platform=str(gw.platform),
                groups=ParentGroups([group(g) for g in member_of]),
                data={
                    "fabric": spec.name,
                    "site": site.name,
                    "site_id": site.id,
                    "region": site.region,
                    "hub": site.name in spec.hubs,
                    "platform": str(gw.platform),
                    "transport": str(gw.transport),
                    "public_ip": str(gw.public_ip),
                    "os_version": gw.os_version,
                    "intent": gateway_intent(compiled, gw.name),
                },
            )
        defaults = Defaults(username=self.username, password=self.password,
                            data={"compiled": compiled, "fabric_file": self.fabric_file})
        for h in hosts.values():
            h.defaults = defaults
        for g in groups.values():
            g.defaults = defaults
        return Inventory(hosts=hosts, groups=groups, defaults=defaults)
