"""The lab's network plan for a compiled fabric, as plain data (no I/O).

Every strongSwan gateway gets a namespace `dcvpn-<gateway>` with:
- `ul0`, one end of a veth pair whose other end is a port of the Linux bridge `br0` in the
  fabric's underlay namespace; it holds the gateway's public_ip as a /32, and host routes to
  the public IPs of its tunnel peers. No default route: a missing BGP route must show.
- one LAN per site prefix: a veth pair inside the namespace (this kernel has no dummy
  links), `lanN` holding the gateway's probe address in the prefix, so the prefix is a
  connected route that FRR announces and pings have a source and a destination.
The underlay MTU is the model's path_mtu, so the tunnel MTU arithmetic holds in the lab.
"""

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from inventory.model import Platform
from inventory.topology import CompiledFabric
from tasks.validate_expect import lan_addresses
from tasks.validate_strongswan import NAMESPACE_PREFIX, namespace

UPLINK = "ul0"
BRIDGE = "br0"


def underlay_namespace(fabric: str) -> str:
    """A '.' never appears in a gateway name, so this cannot clash with `dcvpn-<gateway>`."""
    return f"{NAMESPACE_PREFIX}{fabric}.underlay"


@dataclass(frozen=True, slots=True)
class Lan:
    device: str  # holds the address
    peer: str  # the other end of the veth pair, also inside the namespace
    address: IPv4Interface


@dataclass(frozen=True, slots=True)
class LabGateway:
    name: str
    site: str
    namespace: str
    public_ip: IPv4Address
    bridge_port: str  # the veth end in the underlay namespace
    peers: tuple[IPv4Address, ...]  # public IPs of tunnel peers that are in the lab
    lans: tuple[Lan, ...]


@dataclass(frozen=True, slots=True)
class LabPlan:
    fabric: str
    underlay: str
    mtu: int
    gateways: tuple[LabGateway, ...]

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.underlay, *(g.namespace for g in self.gateways))


def lab_gateways(compiled: CompiledFabric) -> tuple[str, ...]:
    """The gateways the lab runs: every strongSwan gateway, in site-id order."""
    return tuple(gw.name for _, gw in compiled.gateways() if gw.platform is Platform.STRONGSWAN)


def plan(compiled: CompiledFabric) -> LabPlan:
    names = lab_gateways(compiled)
    in_lab = set(names)
    public = {gw.name: gw.public_ip for _, gw in compiled.gateways()}
    site_of = {gw.name: site.name for site, gw in compiled.gateways()}
    gateways = []
    for index, name in enumerate(names):
        peers = sorted({public[t.side(name)[1].gateway] for t, _ in compiled.tunnels_of(name)
                        if t.side(name)[1].gateway in in_lab})
        lans = tuple(Lan(f"lan{i}", f"lan{i}p", IPv4Interface((addr, prefix.prefixlen)))
                     for i, (addr, prefix) in enumerate(lan_addresses(compiled, name)))
        gateways.append(LabGateway(name, site_of[name], namespace(name), public[name],
                                   f"p{index}", tuple(peers), lans))
    spec = compiled.fabric.fabric
    return LabPlan(spec.name, underlay_namespace(spec.name), spec.mtu.path_mtu, tuple(gateways))
