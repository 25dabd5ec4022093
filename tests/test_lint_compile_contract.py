"""Lint and compiler agree: lint never crashes, and a model without lint errors compiles."""

from typing import Any

from fabric_factory import site
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.findings import Severity
from inventory.lint import lint
from inventory.loader import LoadedFabric, SourceMap
from inventory.model import Fabric
from inventory.topology import compile_fabric


@st.composite
def fabrics(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(min_value=1, max_value=10))
    ids = draw(st.lists(st.integers(min_value=1, max_value=200), min_size=n, max_size=n))
    sites = []
    for i, sid in enumerate(ids):
        s = site(sid, draw(st.integers(min_value=1, max_value=5)),
                 draw(st.sampled_from(["eu", "us", None])), name=f"x{i}",
                 platform=draw(st.sampled_from(["strongswan", "iosxe", "junos"])))
        if draw(st.booleans()):
            s.pop("asn")
        sites.append(s)
    names = [s["name"] for s in sites]
    hubs = draw(st.lists(st.sampled_from([*names, "ghost"]), max_size=3))
    return {
        "fabric": {
            "name": "p",
            "topology": draw(st.sampled_from(["full_mesh", "hub_spoke", "hybrid"])),
            "hubs": hubs,
            "tunnel_pool": draw(st.sampled_from(["100.64.0.0/10", "169.254.0.0/16",
                                                 "169.254.0.0/24"])),
            "bgp": draw(st.sampled_from([{"mode": "ebgp"}, {"mode": "ibgp", "asn": 65000},
                                         {"mode": "ibgp"}])),
            "crypto": draw(st.sampled_from(["strict", "cbc", "compat",
                                            {"esp": {"encryption": "aes256gmac"}}])),
        },
        "sites": sites,
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fabrics())
def test_lint_never_crashes_and_clean_models_compile(data: dict[str, Any]) -> None:
    fabric = Fabric.model_validate(data)
    findings = lint(LoadedFabric(fabric, SourceMap("mem.yaml")))
    if not any(f.severity is Severity.ERROR for f in findings):
        compiled = compile_fabric(fabric)
        assert len(compiled.tunnels) == len(compiled.sessions)
