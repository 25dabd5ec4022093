"""Golden files: every gateway of the example fabrics renders exactly the reviewed bytes.

Regenerate after an intended change with DCVPN_UPDATE_GOLDEN=1 and review the git diff.
"""

from pathlib import Path

import pytest
from conftest import EXAMPLES, GOLDEN, UPDATE_GOLDEN

from inventory.loader import load_fabric
from inventory.topology import compile_fabric
from tasks.render import render_gateway

FABRICS = ("lab3.yaml", "acme-hybrid.yaml")
# test fabrics with golden files too (fabric.bgp.accept: tests/fabrics/accept-hub.yaml)
TEST_FABRICS = ("accept-hub.yaml",)
FOLDERS = {**{n: EXAMPLES for n in FABRICS},
           **{n: Path(__file__).resolve().parent / "fabrics" for n in TEST_FABRICS}}


def _cases() -> list[pytest.param]:
    cases = []
    for name, folder in FOLDERS.items():
        compiled = compile_fabric(load_fabric(folder / name).fabric)
        for _, gw in compiled.gateways():
            cases.append(pytest.param(name, gw.name, id=f"{gw.platform}-{name[:-5]}-{gw.name}"))
    return cases


@pytest.mark.parametrize(("fabric", "gateway"), _cases())
def test_render_matches_golden(fabric: str, gateway: str) -> None:
    compiled = compile_fabric(load_fabric(FOLDERS[fabric] / fabric).fabric)
    files = render_gateway(compiled, gateway)
    folder: Path = GOLDEN / fabric.removesuffix(".yaml") / gateway
    if UPDATE_GOLDEN:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            stale.unlink()
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    expected = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*"))}
    assert sorted(files) == sorted(expected), f"file set of {gateway} changed"
    for name, text in files.items():
        assert text == expected[name], f"{gateway}/{name} differs from the golden file"


@pytest.mark.parametrize(("fabric", "gateway"), _cases())
def test_render_is_deterministic(fabric: str, gateway: str) -> None:
    first = render_gateway(compile_fabric(load_fabric(FOLDERS[fabric] / fabric).fabric), gateway)
    second = render_gateway(compile_fabric(load_fabric(FOLDERS[fabric] / fabric).fabric), gateway)
    assert first == second
