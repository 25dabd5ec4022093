"""Deploy wave planning (pipelines.waves): the rules as properties over random fleets."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.waves import NO_REGION, Member, WaveError, WaveKind, fewest_waves, plan_waves

REGIONS = ("eu", "us", "apac", NO_REGION)


@st.composite
def fleets(draw: st.DrawFn) -> list[Member]:
    count = draw(st.integers(min_value=1, max_value=14))
    hubs = set(draw(st.lists(st.integers(1, count), max_size=3)))
    members = []
    for sid in range(1, count + 1):
        region = draw(st.sampled_from(REGIONS))
        for plane in range(draw(st.integers(1, 3))):
            members.append(Member(f"dp{sid}-gw{plane + 1}", f"dp{sid}", sid, region,
                                  sid in hubs, plane))
    # only some gateways changed
    keep = draw(st.lists(st.booleans(), min_size=len(members), max_size=len(members)))
    chosen = [m for m, k in zip(members, keep, strict=True) if k]
    return chosen or members[:1]


def _by_name(members: list[Member]) -> dict[str, Member]:
    return {m.gateway: m for m in members}


@settings(max_examples=300, deadline=None)
@given(fleets(), st.integers(1, 6), st.data())
def test_every_rule_holds_for_any_fleet(members: list[Member], cap: int,
                                        data: st.DataObject) -> None:
    canary = data.draw(st.sampled_from([None, *sorted({m.site for m in members})]))
    waves = plan_waves(members, cap, canary)
    info = _by_name(members)
    placed = [g for w in waves for g in w.gateways]
    assert sorted(placed) == sorted(info)  # every gateway exactly once
    assert [w.number for w in waves] == list(range(1, len(waves) + 1))
    for wave in waves:
        mine = [info[g] for g in wave.gateways]
        assert 1 <= len(mine) <= cap
        assert len({m.site for m in mine}) == len(mine)  # never two planes of one site
        assert sum(m.hub for m in mine) <= 1  # never both hubs (nor both hub gateways)
        assert {m.region for m in mine} == {wave.region}  # a wave stays in its region
    kinds = [w.kind for w in waves]
    if canary is None:
        assert WaveKind.CANARY not in kinds
    else:
        n = sum(1 for m in members if m.site == canary)
        assert kinds[:n] == [WaveKind.CANARY] * n and WaveKind.CANARY not in kinds[n:]
        assert all(info[g].site == canary for w in waves[:n] for g in w.gateways)
    regions = [w.region for w in waves if w.kind is WaveKind.REGION]
    runs = [r for i, r in enumerate(regions) if i == 0 or regions[i - 1] != r]
    assert len(runs) == len(set(runs))  # one region after the other, never interleaved
    assert runs == sorted(runs, key=lambda r: (r == NO_REGION, r))


@settings(max_examples=100, deadline=None)
@given(fleets(), st.integers(1, 6), st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_input_order(members: list[Member], cap: int,
                                                 rnd: random.Random) -> None:
    shuffled = list(members)
    rnd.shuffle(shuffled)
    assert plan_waves(shuffled, cap) == plan_waves(members, cap)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 120), st.integers(0, 4), st.integers(1, 50), st.data())
def test_single_gateway_spokes_take_the_fewest_waves_the_rules_allow(
        spokes: int, hub_gateways: int, cap: int, data: st.DataObject) -> None:
    members = [Member(f"hub-gw{i + 1}", "hub", 1, "eu", True, i) for i in range(hub_gateways)]
    members += [Member(f"s{i}-gw1", f"s{i}", 10 + i, "eu", False, 0) for i in range(spokes)]
    waves = plan_waves(members, cap)
    assert len(waves) == fewest_waves(members, cap)
    hub_waves = [i for i, w in enumerate(waves) if any(g.startswith("hub") for g in w.gateways)]
    assert hub_waves == list(range(len(waves) - hub_gateways, len(waves)))  # hubs go last


def test_the_bench_fleet_region_packs_into_two_waves() -> None:
    """98 spokes and a hub site of two gateways, 50 a wave: a hub gateway with 49 spokes,
    twice (not 50, 48 + a hub, and the second hub gateway alone)."""
    members = [Member("hub-gw1", "hub", 1, "eu", True, 0),
               Member("hub-gw2", "hub", 1, "eu", True, 1)]
    members += [Member(f"s{i}-gw1", f"s{i}", 10 + i, "eu", False, 0) for i in range(98)]
    waves = plan_waves(members, 50)
    assert [len(w.gateways) for w in waves] == [50, 50]
    assert [w.gateways[-1] for w in waves] == ["hub-gw1", "hub-gw2"]


def test_a_hub_site_with_two_gateways_and_spokes() -> None:
    members = [Member("hub-gw1", "hub", 1, "eu", True, 0),
               Member("hub-gw2", "hub", 1, "eu", True, 1),
               Member("hub2-gw1", "hub2", 4, "eu", True, 0),
               Member("a-gw1", "a", 2, "eu", False, 0),
               Member("a-gw2", "a", 2, "eu", False, 1),
               Member("b-gw1", "b", 3, "us", False, 0)]
    waves = plan_waves(members, 3, canary="a")
    assert [(w.kind, w.gateways) for w in waves] == [
        (WaveKind.CANARY, ("a-gw1",)), (WaveKind.CANARY, ("a-gw2",)),
        (WaveKind.REGION, ("hub-gw1",)), (WaveKind.REGION, ("hub-gw2",)),
        (WaveKind.REGION, ("hub2-gw1",)), (WaveKind.REGION, ("b-gw1",))]
    assert [w.gateways for w in plan_waves(members, 10)] == [
        ("a-gw1", "hub-gw1"), ("a-gw2", "hub-gw2"), ("hub2-gw1",), ("b-gw1",)]


def test_unusable_plans_are_refused_with_the_reason() -> None:
    one = [Member("a-gw1", "a", 1, "eu", False, 0)]
    with pytest.raises(WaveError, match=r"canary site 'zz' has no gateway to deploy .*: a\)"):
        plan_waves(one, 2, canary="zz")
    with pytest.raises(WaveError, match="need at least 1"):
        plan_waves(one, 0)
    with pytest.raises(WaveError, match="listed twice: a-gw1"):
        plan_waves(one * 2, 2)


@settings(max_examples=200, deadline=None)
@given(fleets(), st.integers(1, 6), st.data())
def test_first_gateways_go_before_everything_by_the_same_rules(
        members: list[Member], cap: int, data: st.DataObject) -> None:
    names = sorted(m.gateway for m in members)
    first = data.draw(st.lists(st.sampled_from([*names, "not-changed-gw1"]), unique=True))
    waves = plan_waves(members, cap, first=first)
    info = _by_name(members)
    assert sorted(g for w in waves for g in w.gateways) == names
    early = [w for w in waves if w.kind is WaveKind.FIRST]
    assert waves[:len(early)] == tuple(early)  # all first waves lead
    assert sorted(g for w in early for g in w.gateways) == sorted(set(first) & set(names))
    for wave in early:
        mine = [info[g] for g in wave.gateways]
        assert len(mine) <= cap
        assert len({m.site for m in mine}) == len(mine)
        assert sum(m.hub for m in mine) <= 1
