"""Anycast failover in the lab: which gateway holds a hub's anycast_ip, and moving it.

The lab's underlay is one bridge, so the "route" to an anycast address is whichever
namespace holds it on its ul0 (lab.topology). A failover is simulated as a withdraw (the
holder drops the address, as if its upstream stopped announcing it) and an announce (the
next gateway adds it). The other namespaces' ARP entries for the address are then flushed:
on this underlay the ARP cache is the forwarding table, and a flush stands for the routing
update a real underlay would propagate (its convergence time is not simulated).
"""

import json
from collections.abc import Iterable
from ipaddress import IPv4Address

from inventory.topology import CompiledFabric, anycast_hubs
from lab import netns
from lab.errors import LabError
from lab.topology import UPLINK
from tasks.validate_strongswan import namespace


def _site(compiled: CompiledFabric, site: str) -> tuple[IPv4Address, tuple[str, ...]]:
    for hub in anycast_hubs(compiled.fabric).values():
        if hub.name == site and hub.anycast_ip is not None:
            return hub.anycast_ip, tuple(gw.name for gw in hub.gateways)
    raise LabError(f"site {site} is not an anycast hub of fabric {compiled.fabric.fabric.name}")


def _holds(gateway: str, address: IPv4Address) -> bool:
    proc = netns.run([netns.IP, "-j", "-4", "addr", "show", "dev", UPLINK],
                     ns=namespace(gateway), check=False)
    if proc.returncode != 0:
        return False
    infos = json.loads(proc.stdout or "[]")
    return any(a.get("local") == str(address) for i in infos for a in i.get("addr_info", ()))


def holders(compiled: CompiledFabric, site: str) -> tuple[str, ...]:
    """The gateways of `site` whose namespace holds its anycast_ip now (normally one)."""
    address, gateways = _site(compiled, site)
    return tuple(g for g in gateways if _holds(g, address))


def withdraw(compiled: CompiledFabric, site: str) -> tuple[str, ...]:
    """Drop the anycast address from every gateway that holds it; those gateways."""
    address, _ = _site(compiled, site)
    held = holders(compiled, site)
    for gateway in held:
        netns.run([netns.IP, "addr", "del", f"{address}/32", "dev", UPLINK],
                  ns=namespace(gateway))
    return held


def announce(compiled: CompiledFabric, site: str, gateway: str,
             namespaces: Iterable[str]) -> None:
    """`gateway` takes the anycast address; the ARP entries for it in `namespaces` (the
    rest of the lab) go, so the next packet finds the new holder."""
    address, gateways = _site(compiled, site)
    if gateway not in gateways:
        raise LabError(f"{gateway} is not a gateway of anycast hub {site}")
    netns.run([netns.IP, "addr", "replace", f"{address}/32", "dev", UPLINK],
              ns=namespace(gateway))
    for ns in namespaces:
        if ns != namespace(gateway):
            netns.run([netns.IP, "neigh", "flush", "to", str(address)], ns=ns, check=False)


def move(compiled: CompiledFabric, site: str, gateway: str,
         namespaces: Iterable[str]) -> tuple[str, ...]:
    """Failover: withdraw from the holder, announce on `gateway`; the former holders."""
    held = withdraw(compiled, site)
    announce(compiled, site, gateway, namespaces)
    return held
