"""The lab's network plan for a compiled fabric, as plain data (no I/O).

Every strongSwan gateway gets a namespace `dcvpn-<gateway>` with:
- `ul0`, one end of a veth pair whose other end is a port of the Linux bridge `br0` in the
  fabric's underlay namespace; it holds the gateway's public_ip as a /32, and host routes to
  the public IPs of its tunnel peers. No default route: a missing BGP route must show.
- one LAN per site prefix: a veth pair inside the namespace (this kernel has no dummy
  links), `lanN` holding the gateway's probe address in the prefix, so the prefix is a
  connected route that FRR announces and pings have a source and a destination.
- a multihomed gateway (Gateway.uplinks) gets one more veth per uplink, `ul1`, `ul2`...,
  each a port of the same bridge holding its address as a /32, and host routes to its peers
  through every uplink: through ul0 at metric 0, through ulN at metric N * BACKUP_METRIC.
  Routes leave without `src`, so the kernel picks the address of the device they leave by:
  while ul0 is up that is public_ip; once ul0 goes down the kernel drops its routes and the
  next uplink's route wins. That alone does not move an IKE SA: an address on a downed link
  stays a local address, and `ip route get PEER from PUBLIC_IP` still succeeds through ul1
  (weak host model), so charon keeps its path (seen: "interface ul0 deactivated", then only
  an address list update that is never answered). So, as on any multihomed host whose
  providers filter source addresses, each address has its own routing table (source
  routing): `from ADDR lookup UPLINK_TABLE + N` holding the peers through ulN and an
  `unreachable` default. When ul0 goes down its table keeps only the unreachable route,
  charon finds the path from public_ip invalid, asks the kernel for a new source, gets the
  uplink's address and moves the IKE SA there with MOBIKE (it initiates all its tunnels,
  tasks.render_strongswan.initiator_rank). Its ARP answers only for the address of the device
  asked on (arp_ignore = 1, arp_announce = 2), so a downed ul0 makes public_ip unreachable
  instead of answering it through ul1. Peers get host routes to every address of their
  multihomed peers.
The underlay MTU is the model's path_mtu, so the tunnel MTU arithmetic holds in the lab.
"""

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from inventory.model import Platform
from inventory.topology import CompiledFabric, anycast_hubs
from tasks.validate_expect import lan_addresses
from tasks.validate_strongswan import NAMESPACE_PREFIX, namespace

UPLINK = "ul0"
BRIDGE = "br0"
BACKUP_METRIC = 100
UPLINK_TABLE = 101  # ulN's source routing table is UPLINK_TABLE + N (charon's is 220)
UPLINK_RULE_PREF = 1000  # ahead of main (32766)
# sysctls of a multihomed gateway's namespace (see the module docstring)
MULTIHOMED_SYSCTLS = ("net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")


def uplink_device(index: int) -> str:
    return f"ul{index}"


def underlay_namespace(fabric: str) -> str:
    """A '.' never appears in a gateway name, so this cannot clash with `dcvpn-<gateway>`."""
    return f"{NAMESPACE_PREFIX}{fabric}.underlay"


@dataclass(frozen=True, slots=True)
class Lan:
    device: str  # holds the address
    peer: str  # the other end of the veth pair, also inside the namespace
    address: IPv4Interface


@dataclass(frozen=True, slots=True)
class UplinkPort:
    device: str  # in the gateway's namespace
    port: str  # the other veth end, a port of the underlay bridge
    address: IPv4Address
    metric: int  # of the host routes to the peers through this device


@dataclass(frozen=True, slots=True)
class LabGateway:
    name: str
    site: str
    namespace: str
    public_ip: IPv4Address
    bridge_port: str  # the veth end in the underlay namespace
    peers: tuple[IPv4Address, ...]  # every address of the tunnel peers that are in the lab
    lans: tuple[Lan, ...]
    uplinks: tuple[IPv4Address, ...] = ()  # Gateway.uplinks
    # The site's anycast_ip on the gateway that holds it when the lab starts (the first of an
    # anycast hub). The underlay is one bridge, so holding the address is the routing
    # preference; lab.anycast moves it (failover).
    anycast: IPv4Address | None = None

    @property
    def ports(self) -> tuple[UplinkPort, ...]:
        """ul0 (public_ip, on bridge_port), then one per uplink."""
        addresses = (self.public_ip, *self.uplinks)
        return tuple(UplinkPort(uplink_device(i), self.bridge_port if i == 0
                                else f"{self.bridge_port}u{i}", address, i * BACKUP_METRIC)
                     for i, address in enumerate(addresses))

    def cabling(self, mtu: int) -> list[str]:
        """`ip` commands (batch syntax) for the uplinks' MTU, addresses and host routes."""
        commands = []
        for port in self.ports:
            commands += [f"link set {port.device} mtu {mtu} up",
                         f"addr add {port.address}/32 dev {port.device}"]
        if self.anycast is not None:
            commands.append(f"addr add {self.anycast}/32 dev {UPLINK}")
        for port in self.ports:
            metric = f" metric {port.metric}" if port.metric else ""
            commands += [f"route add {peer}/32 dev {port.device}{metric}" for peer in self.peers]
        if self.uplinks:
            for i, port in enumerate(self.ports):
                table = UPLINK_TABLE + i
                commands += [f"route add {peer}/32 dev {port.device} table {table}"
                             for peer in self.peers]
                commands += [f"route add unreachable default table {table}",
                             f"rule add from {port.address}/32 lookup {table} "
                             f"pref {UPLINK_RULE_PREF + i}"]
        return commands


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
    uplinks = {gw.name: gw.uplinks for _, gw in compiled.gateways()}
    site_of = {gw.name: site.name for site, gw in compiled.gateways()}
    holder = {s.gateways[0].name: s.anycast_ip for s in anycast_hubs(compiled.fabric).values()}
    gateways = []
    for index, name in enumerate(names):
        peers = sorted({a for t, _ in compiled.tunnels_of(name)
                        if t.side(name)[1].gateway in in_lab
                        for a in t.side(name)[1].addresses})  # an anycast end: its anycast_ip
        lans = tuple(Lan(f"lan{i}", f"lan{i}p", IPv4Interface((addr, prefix.prefixlen)))
                     for i, (addr, prefix) in enumerate(lan_addresses(compiled, name)))
        gateways.append(LabGateway(name, site_of[name], namespace(name), public[name],
                                   f"p{index}", tuple(peers), lans, uplinks[name],
                                   holder.get(name)))
    spec = compiled.fabric.fabric
    return LabPlan(spec.name, underlay_namespace(spec.name), spec.mtu.path_mtu, tuple(gateways))
