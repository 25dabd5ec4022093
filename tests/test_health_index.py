"""WaveIndex: a deploy's route and ping checks sorted by wave once give every wave's gate the
same plan as walking them per wave."""

import importlib.util
from collections.abc import Sequence
from typing import Any

import pytest
from conftest import EXAMPLES, ROOT

from inventory.loader import load_fabric
from inventory.model import Fabric
from inventory.topology import CompiledFabric, compile_fabric
from pipelines.deploy_flow import members
from pipelines.waves import Wave, plan_waves
from tasks.health import gate_plan
from tasks.health_index import WaveIndex
from tasks.validate_checks import Kind
from tasks.validate_expect import expect_fabric


def generated(sites: int) -> CompiledFabric:
    spec = importlib.util.spec_from_file_location("gen_fabric", ROOT / "bench" / "gen_fabric.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data: dict[str, Any] = module.generate(sites)
    return compile_fabric(Fabric.model_validate(data))


def example(name: str) -> CompiledFabric:
    return compile_fabric(load_fabric(str(EXAMPLES / name)).fabric)


def numbers(waves: Sequence[Wave]) -> dict[str, int]:
    return {g: w.number for w in waves for g in w.gateways}


def both_ways(compiled: CompiledFabric, waves: Sequence[Wave]) -> int:
    """Plan every wave with and without the index; they must be equal. The number of route
    and ping checks the gates checked or deferred (so that a test sees it is not empty)."""
    expected = expect_fabric(compiled)
    index = WaveIndex(expected, numbers(waves))
    seen = 0
    for position, wave in enumerate(waves):
        later = {g: w.number for w in waves[position + 1:] for g in w.gateways}
        walked = gate_plan(expected, wave.gateways, later, ())
        indexed = gate_plan(expected, wave.gateways, later, (), index)
        assert indexed == walked, f"wave {wave.number}"
        seen += sum(len(e.routes) + len(e.pings) for e in walked.expected.values())
        seen += sum(b.count for b in walked.bulk)
    return seen


@pytest.mark.parametrize(("cap", "canary"), [(3, None), (8, None), (5, "s0005")])
def test_hub_spoke_waves_plan_the_same_with_the_index(cap: int, canary: str | None) -> None:
    compiled = generated(24)
    gateways = [gw.name for _, gw in compiled.gateways()]
    waves = plan_waves(members(compiled, gateways), cap, canary)
    assert len(waves) > 3
    assert both_ways(compiled, waves) > 0


def test_hybrid_fabric_with_some_gateways_unchanged_plans_the_same() -> None:
    """Checks that touch a gateway the deploy leaves alone: only the changed ones count."""
    compiled = example("acme-hybrid.yaml")
    gateways = [gw.name for _, gw in compiled.gateways()]
    changed = gateways[::2]
    waves = plan_waves(members(compiled, changed), 2)
    assert len(waves) > 1
    assert both_ways(compiled, waves) > 0


def test_a_check_waits_for_the_last_wave_among_its_gateways() -> None:
    compiled = generated(6)
    expected = expect_fabric(compiled)
    route = next(r for e in expected.values() for r in e.routes)
    first, second = route.gateways[0], route.gateways[1]
    index = WaveIndex(expected, {first: 1, second: 2})
    assert route in index.share(route.gateway, 2).routes
    assert route not in index.share(route.gateway, 1).routes
    deferred = index.share(route.gateway, 1)
    assert route.gateways in deferred.deferred[(Kind.ROUTE, 2)]
    # a gateway no wave changes: nothing of it is indexed
    assert index.share(route.gateway, 3).routes == []
