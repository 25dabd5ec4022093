"""Capacity and rekey planning: SAs, BGP sessions and expected rekeys per gateway, hub site and
fabric (README "Capacity and rekey planning"). A pure function of the compiled fabric.

Counting. A tunnel is one IKE SA, one CHILD SA (in the kernel an inbound and an outbound ESP
SA) and one BGP session, on every gateway that serves one of its ends. An anycast hub's tunnels
count on every gateway of the hub: the underlay may hand all of them to any one gateway, so
each must be sized for all. Per site and fabric-wide every tunnel counts once.

Rekey timing. Each end schedules the rekey of an SA at lifetime - U, U uniform in [0, jitter];
the end whose timer fires first rekeys, and the new SA starts fresh timers. strongSwan renders
rekey_time = lifetime and rand_time = jitter (`rekey_jitter`). IOS-XE and JunOS document no
rekey jitter setting: they rekey at a soft lifetime they derive from the configured
lifetime themselves, modelled here as the lifetime with no jitter (REKEY_JITTER). So one SA is
rekeyed every lifetime - max(U_a, U_b) seconds, on average
    L - 2J/3  when both ends jitter,  L - J/2  when one does,  L  when neither,
and rekeys per hour of one SA are 3600 / that mean interval (the rate of a renewal process).
Volume lifetimes (bytes, packets) are not modelled: dcvpn renders none.

Burst. When every SA of a gateway came up at the same moment (a reboot, a charon restart, a
failover onto the other gateway of an anycast hub), their first rekeys land in the jitter window
before the lifetime. In the densest minute of that window, n SAs give
    n                         with no jittering end (all at the same instant) or a window <= 60s,
    n * 60 / J                with one jittering end (U uniform),
    n * (1 - ((J - 60)/J)^2)  with two (max(U_a, U_b) is densest at its top, the earliest minute).
A gateway's burst adds these over its tunnels (an upper bound: the peaks need not coincide); the
IKE and CHILD waves are taken apart (the ESP lifetime is shorter than the IKE one, DCV105).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from inventory.model import Fabric, Limits, Platform, Topology
from inventory.topology import CompiledFabric, Tunnel

SECONDS_PER_HOUR: Final = 3600
MINUTE: Final = 60

# Platforms whose rendered configuration spreads rekeys with a random jitter (strongSwan
# rand_time). IOS-XE and JunOS offer no such setting.
REKEY_JITTER: dict[Platform, bool] = {
    Platform.STRONGSWAN: True,
    Platform.IOSXE: False,
    Platform.JUNOS: False,
}
# Mean of max(U_1..U_k) / J for k jittering ends (U uniform in [0, J]): k / (k + 1).
_MEAN_MAX_FRACTION: Final = (0.0, 1 / 2, 2 / 3)


def rekey_jitter(lifetime: int) -> int:
    """strongSwan rand_time for a lifetime (10 %, at least 1s): what tasks.render_strongswan
    renders and what the rekey figures here assume."""
    return max(lifetime // 10, 1)


@dataclass(frozen=True, slots=True)
class RekeyTimer:
    lifetime: int  # seconds; strongSwan rekey_time
    jitter: int  # seconds; strongSwan rand_time (on the ends that jitter)

    def mean_interval(self, jittering_ends: int) -> float:
        """Mean seconds between two rekeys of one SA."""
        return self.lifetime - self.jitter * _MEAN_MAX_FRACTION[jittering_ends]

    def per_hour(self, jittering_ends: int) -> float:
        return SECONDS_PER_HOUR / self.mean_interval(jittering_ends)

    def burst_per_minute(self, sas: int, jittering_ends: int) -> float:
        """Rekeys in the densest minute of the first wave after `sas` SAs came up at once."""
        window = self.jitter
        if sas == 0 or jittering_ends == 0 or window <= MINUTE:
            return float(sas)
        if jittering_ends == 1:
            return sas * MINUTE / window
        return sas * (1 - ((window - MINUTE) / window) ** 2)


def timers(fabric: Fabric) -> tuple[RekeyTimer, RekeyTimer]:
    """(IKE, CHILD) rekey timers of the fabric's crypto."""
    crypto = fabric.fabric.crypto
    return (RekeyTimer(crypto.ike.lifetime, rekey_jitter(crypto.ike.lifetime)),
            RekeyTimer(crypto.esp.lifetime, rekey_jitter(crypto.esp.lifetime)))


def jittering_ends(tunnel: Tunnel) -> int:
    return sum(1 for end in tunnel.endpoints if REKEY_JITTER[end.platform])


@dataclass(frozen=True, slots=True)
class Load:
    """What a set of tunnels puts on whoever carries them."""

    ike_sas: int
    child_sas: int
    bgp_sessions: int
    ike_rekeys_per_hour: float
    child_rekeys_per_hour: float
    ike_burst_per_minute: float
    child_burst_per_minute: float

    @property
    def rekeys_per_hour(self) -> float:
        return self.ike_rekeys_per_hour + self.child_rekeys_per_hour

    @property
    def rekeys_per_minute(self) -> float:
        """The worse of the IKE and the CHILD burst."""
        return max(self.ike_burst_per_minute, self.child_burst_per_minute)


def load_of(tunnels: Iterable[Tunnel], ike: RekeyTimer, child: RekeyTimer) -> Load:
    by_ends = [0, 0, 0]  # tunnels by number of jittering ends
    for tunnel in tunnels:
        by_ends[jittering_ends(tunnel)] += 1
    n = sum(by_ends)
    counted = list(enumerate(by_ends))
    return Load(
        ike_sas=n, child_sas=n, bgp_sessions=n,
        ike_rekeys_per_hour=sum(c * ike.per_hour(k) for k, c in counted),
        child_rekeys_per_hour=sum(c * child.per_hour(k) for k, c in counted),
        ike_burst_per_minute=sum(ike.burst_per_minute(c, k) for k, c in counted),
        child_burst_per_minute=sum(child.burst_per_minute(c, k) for k, c in counted),
    )


@dataclass(frozen=True, slots=True)
class GatewayLoad:
    site: str
    gateway: str
    platform: Platform
    hub: bool
    load: Load


@dataclass(frozen=True, slots=True)
class SiteLoad:
    site: str
    hub: bool
    gateways: tuple[str, ...]
    load: Load


# Limits field -> (what the figure is called, the figure of a Load).
LIMIT_FIGURES: dict[str, tuple[str, Callable[[Load], float]]] = {
    "max_ike_sas": ("IKE SAs", lambda load: load.ike_sas),
    "max_child_sas": ("CHILD SAs", lambda load: load.child_sas),
    "max_bgp_sessions": ("BGP sessions", lambda load: load.bgp_sessions),
    "max_rekeys_per_hour": ("rekeys per hour (IKE + CHILD, mean)",
                            lambda load: load.rekeys_per_hour),
    "max_rekeys_per_minute": ("rekeys in the busiest minute after a mass restart",
                              lambda load: load.rekeys_per_minute),
}


@dataclass(frozen=True, slots=True)
class Excess:
    """A gateway over one of fabric.limits."""

    site: str
    gateway: str
    limit_field: str  # a Limits field name
    figure: float
    limit: int

    @property
    def what(self) -> str:
        return LIMIT_FIGURES[self.limit_field][0]


def find_excesses(gateways: Iterable[GatewayLoad], limits: Limits | None) -> list[Excess]:
    if limits is None:
        return []
    out = []
    for gw in gateways:
        for name, (_, figure_of) in LIMIT_FIGURES.items():
            limit = getattr(limits, name)
            figure = figure_of(gw.load)
            if limit is not None and figure > limit:
                out.append(Excess(gw.site, gw.gateway, name, figure, limit))
    return out


@dataclass(frozen=True)
class CapacityPlan:
    fabric: str
    ike: RekeyTimer
    child: RekeyTimer
    gateways: tuple[GatewayLoad, ...]  # by site id, then gateway order
    sites: tuple[SiteLoad, ...]  # by site id
    total: Load  # every tunnel once
    tunnels: int
    limits: Limits | None

    def excesses(self, sites: Iterable[str] | None = None) -> list[Excess]:
        wanted = None if sites is None else set(sites)
        return find_excesses((g for g in self.gateways if wanted is None or g.site in wanted),
                        self.limits)


def plan(compiled: CompiledFabric) -> CapacityPlan:
    fabric = compiled.fabric
    ike, child = timers(fabric)
    spec = fabric.fabric
    hubs = set(spec.hubs) if spec.topology is not Topology.FULL_MESH else set()
    by_site: dict[str, list[Tunnel]] = {}
    for tunnel in compiled.tunnels:
        for site in {end.site for end in tunnel.endpoints}:
            by_site.setdefault(site, []).append(tunnel)
    gateways = tuple(
        GatewayLoad(site.name, gw.name, gw.platform, site.name in hubs,
                    load_of((t for t, _ in compiled.tunnels_of(gw.name)), ike, child))
        for site, gw in compiled.gateways()
    )
    sites = tuple(
        SiteLoad(site.name, site.name in hubs, tuple(gw.name for gw in site.gateways),
                 load_of(by_site.get(site.name, ()), ike, child))
        for site in sorted(fabric.sites, key=lambda s: s.id)
    )
    return CapacityPlan(fabric.fabric.name, ike, child, gateways, sites,
                        load_of(compiled.tunnels, ike, child), len(compiled.tunnels),
                        fabric.fabric.limits)
