"""Deploy waves: which gateways change together (pure; no device, no clock).

Rules, in this order:
- `--canary SITE`: the canary site's gateways go first, one wave per gateway (two gateways of
  a site are never in one wave), and nothing else shares a canary wave.
- Then region by region (regions sorted by name, gateways without a region last); a wave never
  mixes regions.
- A wave holds at most `max_per_wave` gateways (`--workers N`), never two gateways of one site
  (the planes of a site back each other up) and never more than one hub gateway (so never both
  hubs, and never both gateways of a hub).
- Within a region the plan uses as few waves as these rules allow: it tries k waves, from the
  lower bound max(gateways / cap, hub gateways, gateways of one site) upwards. The hub
  gateways take the last k waves' first places, one each (a hub changes after the spokes of
  its region have been gated, unless there are as many waves as hub gateways); then the
  spokes, by site id and plane, go into the first wave with room and no conflict (first fit).
  Every wave ends up with a hub gateway and 49 spokes rather than the hubs alone in waves
  of their own: fewer waves, each health gate as strict. The plan depends only on the set of
  gateways given, not on their order.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

NO_REGION = ""


class WaveError(ValueError):
    """A wave plan that cannot be made (unknown canary, bad cap, duplicate gateway)."""


class WaveKind(StrEnum):
    FIRST = "first"
    CANARY = "canary"
    REGION = "region"


@dataclass(frozen=True, slots=True)
class Member:
    """One gateway to deploy, with what the rules look at."""

    gateway: str
    site: str
    site_id: int
    region: str  # NO_REGION when the site has none
    hub: bool
    plane: int  # the gateway's index in its site (0 = the site's first gateway)


@dataclass(frozen=True, slots=True)
class Wave:
    number: int  # 1-based, the order of deployment
    kind: WaveKind
    region: str
    gateways: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"number": self.number, "kind": str(self.kind), "region": self.region or None,
                "gateways": list(self.gateways)}


def _order(member: Member) -> tuple[bool, int, int, str]:
    return (member.hub, member.site_id, member.plane, member.gateway)


def _fits(wave: list[Member], member: Member, cap: int) -> bool:
    return (len(wave) < cap
            and all(m.site != member.site for m in wave)
            and not (member.hub and any(m.hub for m in wave)))


def _pack_into(ordered: Sequence[Member], cap: int, count: int) -> list[list[Member]] | None:
    """First fit into `count` waves, hub gateways one each in the last waves; None when a
    gateway finds no room."""
    hubs = [m for m in ordered if m.hub]
    waves: list[list[Member]] = [[] for _ in range(count)]
    for index, hub in enumerate(hubs):
        waves[count - len(hubs) + index].append(hub)
    for member in ordered:
        if member.hub:
            continue
        wave = next((w for w in waves if _fits(w, member, cap)), None)
        if wave is None:
            return None
        wave.append(member)
    return [sorted(w, key=_order) for w in waves if w]


def fewest_waves(members: Sequence[Member], cap: int) -> int:
    """The lower bound on the waves of one group: the cap, the one-hub rule, the one-plane
    rule."""
    per_site: dict[str, int] = {}
    for m in members:
        per_site[m.site] = per_site.get(m.site, 0) + 1
    return max(-(-len(members) // cap), sum(1 for m in members if m.hub),
               max(per_site.values(), default=0))


def _pack(members: Sequence[Member], cap: int) -> list[list[Member]]:
    ordered = sorted(members, key=_order)
    # at most len(members) tries: with one wave per gateway every gateway has a wave alone
    for count in range(max(fewest_waves(ordered, cap), 1), len(ordered) + 1):
        waves = _pack_into(ordered, cap, count)
        if waves is not None:
            return waves
    return [[m] for m in ordered]


def _region_key(region: str) -> tuple[bool, str]:
    return (region == NO_REGION, region)


def plan_waves(members: Sequence[Member], max_per_wave: int,
               canary: str | None = None, first: Sequence[str] = ()) -> tuple[Wave, ...]:
    """The waves of a deploy; WaveError when the canary site has no gateway among members.

    `first` names gateways that go before everything else (packed by the same rules, across
    regions): onboarding deploys the new site, a hub and a regional peer first. A gateway of
    `first` without changes is not in `members` and so not deployed.
    """
    if max_per_wave < 1:
        raise WaveError(f"at most {max_per_wave} gateways per wave: need at least 1")
    names = [m.gateway for m in members]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise WaveError(f"gateway(s) listed twice: {', '.join(duplicates)}")
    groups: list[tuple[WaveKind, str, list[Member]]] = []
    chosen = set(first)
    early = [m for m in members if m.gateway in chosen]
    for wave in _pack(early, max_per_wave):
        regions = {m.region for m in wave}
        groups.append((WaveKind.FIRST, regions.pop() if len(regions) == 1 else NO_REGION, wave))
    members = [m for m in members if m.gateway not in chosen]
    rest = list(members)
    if canary is not None:
        leading = sorted((m for m in members if m.site == canary), key=_order)
        if not leading:
            sites = sorted({m.site for m in members})
            raise WaveError(f"canary site {canary!r} has no gateway to deploy (sites with "
                            f"changes: {', '.join(sites) or 'none'})")
        groups += [(WaveKind.CANARY, m.region, [m]) for m in leading]
        rest = [m for m in members if m.site != canary]
    for region in sorted({m.region for m in rest}, key=_region_key):
        mine = [m for m in rest if m.region == region]
        groups += [(WaveKind.REGION, region, wave) for wave in _pack(mine, max_per_wave)]
    return tuple(Wave(number, kind, region, tuple(m.gateway for m in wave))
                 for number, (kind, region, wave) in enumerate(groups, start=1))
