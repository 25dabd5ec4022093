"""`--shard I/N`: every gateway in exactly one shard, the same one whatever the list, and the
render, diff and validate commands taking only their shard's gateways."""

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from test_validate import FakeReader

from inventory.loader import load_fabric
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import sharding
from pipelines.cli import main
from pipelines.sharding import Shard, parse_shard, shard, shard_number
from pipelines.validate_cmd import run_checks
from tasks.validate_expect import expect_fabric

ACME = EXAMPLES / "acme-hybrid.yaml"
Capture = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def _no_shard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DCVPN_SHARD", "DCVPN_OUT", "DCVPN_SITE", "DCVPN_FORMAT", "DCVPN_FABRIC",
                 "CI_NODE_INDEX", "CI_NODE_TOTAL"):
        monkeypatch.delenv(name, raising=False)


def _gen() -> Any:
    spec = importlib.util.spec_from_file_location("gen_fabric", ROOT / "bench" / "gen_fabric.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gateway_names(data: dict[str, Any]) -> list[str]:
    return [gw["name"] for s in data["sites"] for gw in s["gateways"]]


def _compiled(path: Path) -> CompiledFabric:
    return compile_fabric(load_fabric(path).fabric)


# --- the pure function ------------------------------------------------------------------------

@pytest.mark.parametrize(("topology", "sites", "mixed"), [
    ("hub_spoke", 3, False), ("hub_spoke", 41, True), ("full_mesh", 9, True),
    ("hub_spoke", 300, False),
])
def test_every_generated_gateway_is_in_exactly_one_shard(topology: str, sites: int,
                                                         mixed: bool) -> None:
    gen = _gen()
    names = _gateway_names(gen.generate(sites, topology, mixed_platforms=mixed))
    assert len(names) == len(set(names)) > sites - 1
    for total in range(1, 9):
        shards = [shard(names, i, total) for i in range(1, total + 1)]
        flat = [g for s in shards for g in s]
        assert sorted(flat) == sorted(names), f"N={total}: not a partition"
        for i, members in enumerate(shards, 1):
            assert all(shard_number(g, total) == i for g in members)


@settings(max_examples=200, deadline=None)
@given(names=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=60, unique=True),
       total=st.integers(1, 8), data=st.data())
def test_shards_partition_any_names_whatever_the_order(names: list[str], total: int,
                                                       data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(names))
    shards = [shard(names, i, total) for i in range(1, total + 1)]
    assert sorted(g for s in shards for g in s) == sorted(names)
    assert [shard(shuffled, i, total) for i in range(1, total + 1)] == shards


def test_a_gateway_keeps_its_shard_when_others_come_and_go() -> None:
    names = _gateway_names(_gen().generate(50, "hub_spoke"))
    for total in range(1, 9):
        before = {g: shard_number(g, total) for g in names}
        grown = names + [f"new{i}-gw1" for i in range(20)]
        for i in range(1, total + 1):
            assert set(shard(names, i, total)) == {g for g in shard(grown, i, total)
                                                   if g in before}


def test_large_fleets_are_balanced() -> None:
    names = _gateway_names(_gen().generate(1000, "hub_spoke"))
    for total in (2, 4, 8):
        sizes = [len(shard(names, i, total)) for i in range(1, total + 1)]
        assert max(sizes) < 1.25 * len(names) / total, sizes


def test_shard_numbers_are_fixed() -> None:
    # a change of the hash would move gateways between the jobs of a running fleet's pipeline
    assert [shard_number(g, 8) for g in ("fra1-gw1", "iad1-gw2", "sjc1-gw1")] == [8, 7, 6]


@pytest.mark.parametrize(("text", "env", "expected"), [
    ("2/8", {}, Shard(2, 8)),
    (" 1/1 ", {}, Shard(1, 1)),
    ("auto", {"CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "4"}, Shard(3, 4)),
    ("auto", {}, None),
])
def test_parse_shard(text: str, env: dict[str, str], expected: Shard | None) -> None:
    assert parse_shard(text, env) == expected


@pytest.mark.parametrize(("text", "env", "message"), [
    ("0/4", {}, "need 1 <= I <= N"),
    ("5/4", {}, "need 1 <= I <= N"),
    ("2", {}, "not a shard"),
    ("a/b", {}, "not a shard"),
    ("-1/4", {}, "not a shard"),
    ("auto", {"CI_NODE_INDEX": "1"}, "must both be set"),
])
def test_parse_shard_refuses(text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_shard(text, env)


# --- the commands -------------------------------------------------------------------------

def _render(capsys: Capture, out: Path, *extra: str) -> set[str]:
    assert main(["render", "-f", str(ACME), "-o", str(out), *extra]) == 0
    capsys.readouterr()
    return {p.name for p in out.iterdir()} if out.exists() else set()


def test_render_shards_add_up_to_the_whole_render(tmp_path: Path, capsys: Capture) -> None:
    whole = _render(capsys, tmp_path / "all")
    assert len(whole) == 8
    parts = [_render(capsys, tmp_path / f"s{i}", "--shard", f"{i}/3") for i in (1, 2, 3)]
    assert sorted(g for p in parts for g in p) == sorted(whole)
    for i, part in enumerate(parts, 1):
        assert part == set(shard(whole, i, 3))
        for gw in part:
            for f in (tmp_path / "all" / gw).iterdir():
                assert (tmp_path / f"s{i}" / gw / f.name).read_bytes() == f.read_bytes()


def test_render_reads_the_shard_from_the_environment(tmp_path: Path, capsys: Capture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCVPN_SHARD", "auto")
    monkeypatch.setenv("CI_NODE_INDEX", "2")
    monkeypatch.setenv("CI_NODE_TOTAL", "2")
    got = _render(capsys, tmp_path / "out")
    names = [gw.name for _, gw in _compiled(ACME).gateways()]
    assert sorted(got) == shard(names, 2, 2)
    assert 0 < len(got) < len(names)


def test_a_bad_shard_is_a_usage_error(tmp_path: Path, capsys: Capture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["render", "-f", str(ACME), "-o", str(tmp_path), "--shard", "3/2"])
    assert exc.value.code == 2
    assert "need 1 <= I <= N" in capsys.readouterr().err


def test_diff_shards_add_up_to_the_whole_diff(tmp_path: Path, capsys: Capture) -> None:
    old = tmp_path / "old"
    _render(capsys, old)
    text = ACME.read_text(encoding="utf-8").replace("lifetime: 1h", "lifetime: 30m")
    changed = tmp_path / "acme.yaml"
    changed.write_text(text, encoding="utf-8")
    # a gateway the new model drops is diffed by the shard its name hashes to
    (old / "gone1-gw1").mkdir()
    (old / "gone1-gw1" / "frr.conf").write_text("router bgp 1\n", encoding="utf-8")

    def diff(*extra: str) -> dict[str, Any]:
        assert main(["diff", "-f", str(changed), "--offline", str(old), "--format", "json",
                     *extra]) == 0
        doc: dict[str, Any] = json.loads(capsys.readouterr().out)
        return doc

    whole = diff()
    assert len(whole["changed"]) == 9
    parts = [diff("--shard", f"{i}/4") for i in range(1, 5)]
    assert sorted(g for p in parts for g in p["changed"]) == sorted(whole["changed"])
    for i, part in enumerate(parts, 1):
        assert set(part["gateways"]) == set(shard(whole["gateways"], i, 4))
        for gw, entry in part["gateways"].items():
            assert entry == whole["gateways"][gw]


def test_validate_shards_add_up_to_every_check() -> None:
    path = EXAMPLES / "lab3.yaml"
    compiled = _compiled(path)
    expected = expect_fabric(compiled)
    gateways = sorted(expected)

    def reader(name: str) -> FakeReader:
        return FakeReader(expected[name])

    whole = run_checks(str(path), compiled, gateways, reader)
    assert all(r.ok for r in whole)  # peers outside a shard are not reported as skipped
    for total in (2, 3):
        parts = [run_checks(str(path), compiled, gateways, reader, Shard(i, total))
                 for i in range(1, total + 1)]
        assert sorted(r.name for p in parts for r in p) == sorted(r.name for r in whole)
        assert all(r.ok for p in parts for r in p)


def test_validate_has_the_option(capsys: Capture) -> None:
    from pipelines import validate_cmd
    with pytest.raises(SystemExit):
        validate_cmd.main(["validate", "--help"])
    assert "--shard I/N" in capsys.readouterr().out


def test_holds_without_a_shard_is_everything() -> None:
    assert sharding.holds(None, "anything")
