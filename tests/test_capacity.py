"""Capacity and rekey planning (inventory.capacity) and `dcvpn capacity`.

Expected figures are derived here from the lifetimes each test sets, with the formulas of
README "Capacity and rekey planning": one SA is rekeyed every L - 2J/3 s on average when both
ends jitter by J, L - J/2 when one does, L when neither; rekeys/h = 3600 / that.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ROOT
from fabric_factory import fabric, site

from inventory.capacity import REKEY_JITTER, GatewayLoad, Load, plan, rekey_jitter
from inventory.durations import parse_duration
from inventory.model import Fabric, Limits, Platform
from inventory.topology import compile_fabric
from pipelines.cli import main
from tasks.render import render_gateway

ACME = EXAMPLES / "acme-hybrid.yaml"


def generate(sites: int) -> dict[str, Any]:
    """bench/gen_fabric.py's generate (bench is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_fabric", ROOT / "bench" / "gen_fabric.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data: dict[str, Any] = module.generate(sites)
    return data


def _crypto(ike: int, esp: int) -> dict[str, Any]:
    return {"ike": {"lifetime": ike}, "esp": {"lifetime": esp}}


def _by_gateway(f: Fabric) -> dict[str, GatewayLoad]:
    return {g.gateway: g for g in plan(compile_fabric(f)).gateways}


def _close(load: Load, ike_h: float, child_h: float, ike_burst: float,
           child_burst: float) -> None:
    assert load.ike_rekeys_per_hour == pytest.approx(ike_h)
    assert load.child_rekeys_per_hour == pytest.approx(child_h)
    assert load.ike_burst_per_minute == pytest.approx(ike_burst)
    assert load.child_burst_per_minute == pytest.approx(child_burst)


@pytest.mark.parametrize(("ike", "esp"), [(3600, 3600), (28800, 1800), (86400, 3601)])
def test_planned_jitter_is_the_rendered_rand_time(ike: int, esp: int) -> None:
    """The rand_time values swanctl.conf really carries are the ones the plan assumes."""
    compiled = compile_fabric(fabric([site(1), site(2)], crypto={
        "ike": {"lifetime": f"{ike}s"}, "esp": {"lifetime": f"{esp}s"}}))
    swanctl = render_gateway(compiled, "s1-gw1")["swanctl.conf"]
    rendered = [parse_duration(v) for v in re.findall(r"rand_time = (\S+)", swanctl)]
    assert rendered == [rekey_jitter(ike), rekey_jitter(esp)]
    assert max(ike // 10, 1) == rekey_jitter(ike)  # 10 %, at least a second


def test_only_strongswan_jitters_its_rekeys() -> None:
    assert {p for p, on in REKEY_JITTER.items() if on} == {Platform.STRONGSWAN}
    assert set(REKEY_JITTER) == set(Platform)


def test_strongswan_full_mesh_both_ends_jitter() -> None:
    ike, esp = 7200, 1800  # jitter 720 s and 180 s
    f = fabric([site(i) for i in (1, 2, 3)], crypto=_crypto(ike, esp))
    loads = _by_gateway(f)
    ike_interval, esp_interval = ike - 720 * 2 / 3, esp - 180 * 2 / 3  # 6720 s, 1680 s
    for name in ("s1-gw1", "s2-gw1", "s3-gw1"):
        load = loads[name].load
        assert (load.ike_sas, load.child_sas, load.bgp_sessions) == (2, 2, 2)
        # densest minute of max(U_a, U_b): 1 - ((J - 60) / J)^2 of the SAs
        _close(load, 2 * 3600 / ike_interval, 2 * 3600 / esp_interval,
               2 * (1 - (660 / 720) ** 2), 2 * (1 - (120 / 180) ** 2))
        assert load.rekeys_per_hour == pytest.approx(2 * 3600 / 6720 + 2 * 3600 / 1680)
        assert load.rekeys_per_minute == pytest.approx(2 * 5 / 9)  # the CHILD wave
    total = plan(compile_fabric(f)).total
    assert total.ike_sas == 3  # each tunnel once, not once per end
    assert total.child_rekeys_per_hour == pytest.approx(3 * 3600 / 1680)


def test_vendor_hub_with_strongswan_spokes_one_end_jitters() -> None:
    ike, esp = 14400, 3600  # jitter 1440 s and 360 s
    sites = [site(1, platform="iosxe"), *(site(i) for i in (2, 3, 4, 5))]
    loads = _by_gateway(fabric(sites, "hub_spoke", ("s1",), crypto=_crypto(ike, esp)))
    hub = loads["s1-gw1"]
    assert hub.hub and hub.load.ike_sas == 4
    _close(hub.load, 4 * 3600 / (ike - 1440 / 2), 4 * 3600 / (esp - 360 / 2),
           4 * 60 / 1440, 4 * 60 / 360)
    spoke = loads["s2-gw1"]
    assert not spoke.hub and spoke.load.ike_sas == 1
    _close(spoke.load, 3600 / (ike - 720), 3600 / (esp - 180), 60 / 1440, 60 / 360)


def test_without_jitter_rekeys_come_every_lifetime_and_all_at_once() -> None:
    ike, esp = 28800, 3600
    sites = [site(1, platform="junos"), *(site(i, platform="iosxe") for i in (2, 3, 4))]
    load = _by_gateway(fabric(sites, "hub_spoke", ("s1",), crypto=_crypto(ike, esp)))["s1-gw1"]
    _close(load.load, 3 * 3600 / ike, 3 * 3600 / esp, 3, 3)


def test_a_jitter_window_within_a_minute_is_no_spread() -> None:
    # 600 s lifetimes jitter by 60 s: every first rekey still falls in the same minute
    f = fabric([site(i) for i in (1, 2, 3)], crypto=_crypto(1200, 600))
    load = _by_gateway(f)["s1-gw1"].load
    assert load.child_burst_per_minute == 2
    assert load.ike_burst_per_minute == pytest.approx(2 * (1 - (60 / 120) ** 2))


def test_dual_gateway_hub_spreads_planes_and_site_counts_each_tunnel_once() -> None:
    sites = [site(1, gateways=2), site(2), site(3), site(4)]
    p = plan(compile_fabric(fabric(sites, "hub_spoke", ("s1",))))
    loads = {g.gateway: g.load for g in p.gateways}
    # a pair of 2- and 1-gateway sites has 2 planes: hub plane i on s1-gw<i+1>, the spoke's
    # one gateway on both
    assert loads["s1-gw1"].ike_sas == loads["s1-gw2"].ike_sas == 3
    assert loads["s2-gw1"].ike_sas == 2
    hub_site = next(s for s in p.sites if s.site == "s1")
    assert hub_site.hub and hub_site.load.ike_sas == 6
    assert p.total.ike_sas == p.tunnels == 6


def test_anycast_tunnels_count_on_every_hub_gateway_and_once_for_the_site() -> None:
    hub = {**site(1, gateways=2), "anycast_ip": "198.51.100.100"}
    p = plan(compile_fabric(fabric([hub, site(2), site(3)], "hub_spoke", ("s1",))))
    loads = {g.gateway: g.load for g in p.gateways}
    assert loads["s1-gw1"].ike_sas == loads["s1-gw2"].ike_sas == 2  # either may carry both
    assert next(s for s in p.sites if s.site == "s1").load.ike_sas == 2
    assert p.total.ike_sas == 2


def test_limits_name_gateway_figure_and_limit() -> None:
    sites = [site(i) for i in range(1, 6)]
    f = fabric(sites, "hub_spoke", ("s1",), limits={"max_ike_sas": 3, "max_rekeys_per_hour": 5})
    p = plan(compile_fabric(f))
    over = [(e.gateway, e.limit_field, e.figure, e.limit) for e in p.excesses()]
    # hub: 4 SAs; 4 x (3600/(28800 - 1920) + 3600/(3600 - 240)) rekeys/h = 4.82 (within 5)
    assert over == [("s1-gw1", "max_ike_sas", 4, 3)]
    assert p.excesses(["s2"]) == []
    assert plan(compile_fabric(fabric(sites, "hub_spoke", ("s1",)))).excesses() == []


def test_limits_are_optional_and_positive() -> None:
    assert Limits().model_dump() == dict.fromkeys(Limits.model_fields)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Limits(max_ike_sas=0)
    with pytest.raises(ValueError, match="Extra inputs"):
        Limits.model_validate({"max_sas": 3})


def test_500_site_fabric_plans_quickly() -> None:
    f = Fabric.model_validate(generate(500))  # 2 hubs of 2 gateways, 498 one-gateway spokes
    start = time.perf_counter()
    p = plan(compile_fabric(f))
    elapsed = time.perf_counter() - start
    loads = {g.gateway: g.load for g in p.gateways}
    # each hub gateway: one plane to each of 498 spokes, one to the other hub
    assert loads["s0001-gw1"].ike_sas == loads["s0002-gw2"].ike_sas == 498 + 1
    assert loads["s0003-gw1"].ike_sas == 4  # 2 hubs x 2 planes
    assert p.tunnels == 498 * 2 * 2 + 2
    assert elapsed < 5, f"planning 500 sites took {elapsed:.1f}s"


# --- the command ---------------------------------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["capacity", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _with_limits(tmp_path: Path, limits: dict[str, int], source: Path = ACME) -> Path:
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["fabric"]["limits"] = limits
    path = tmp_path / "cp-fabric.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_cli_json_without_limits_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "-f", str(ACME), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == "dcvpn.capacity/v1"
    assert data["ok"] is True and data["limits"] is None and data["exceeded"] == []
    assert data["timers"] == {"ike": {"lifetime_s": 28800, "jitter_s": 2880},
                              "child": {"lifetime_s": 3600, "jitter_s": 360}}
    gateways = {g["gateway"]: g for g in data["gateways"]}
    assert len(gateways) == 8 and gateways["fra1-gw1"]["hub"] is True
    assert data["total"]["tunnels"] == data["total"]["ike_sas"]
    assert {s["site"] for s in data["sites"] if s["hub"]} == {"fra1", "iad1"}


def test_cli_exits_1_over_a_limit_and_names_it(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # ams1-gw1 (strongSwan, 3 tunnels to 3 vendor peers) spreads its CHILD wave over its 6 min
    # jitter: 3 x 60/360 = 0.5 a minute; the vendor gateways have at least 2 jitter-free SAs
    path = _with_limits(tmp_path, {"max_rekeys_per_minute": 1, "max_ike_sas": 3})
    code, out, err = _run(capsys, "-f", str(path), "--format", "json")
    assert code == 1
    data = json.loads(out)
    over = {(e["gateway"], e["limit"]) for e in data["exceeded"]}
    assert over == {(g, "max_rekeys_per_minute") for g in
                    ("fra1-gw1", "fra1-gw2", "iad1-gw1", "iad1-gw2", "par1-gw1", "sjc1-gw1")}
    assert data["limits"] == {"max_ike_sas": 3, "max_rekeys_per_minute": 1}
    assert "6 limit(s) exceeded" in err
    code, out, _ = _run(capsys, "-f", str(path))
    assert code == 1
    assert ("par1-gw1 (par1): 2.2 rekeys in the busiest minute after a mass restart > "
            "fabric.limits.max_rekeys_per_minute 1") in out
    assert _run(capsys, "-f", str(path), "--site", "ams1")[0] == 0


def test_cli_text_lists_hubs_busiest_other_and_total(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "-f", str(ACME))
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    for hub_gw in ("fra1-gw1", "fra1-gw2", "iad1-gw1", "iad1-gw2"):
        assert rows[hub_gw][1:4] == [hub_gw[:4], "hub", rows[hub_gw][3]]
    assert "4 other gateways; the busiest:" in out
    assert rows["all"][1:4] == ["12", "12", "12"]
    assert "limits: none set" in out


def test_cli_site_selection_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "-f", str(ACME), "--site", "ams1", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert [g["gateway"] for g in data["gateways"]] == ["ams1-gw1"]
    assert data["sites_selected"] == ["ams1"]
    code, out, _ = _run(capsys, "-f", str(ACME), "--format", "markdown")
    assert code == 0
    assert out.startswith("### dcvpn capacity: acme (no limits set)")
    assert "| fra1-gw1 | fra1 | hub | iosxe | 3 | 3 | 3 |" in out


@pytest.mark.parametrize("argv", [
    [],  # no fabric
    ["-f", str(ACME), "--site", "nowhere"],
    ["-f", str(ACME), "--format", "dot"],
    ["-f", "cp-missing.yaml"],
])
def test_cli_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCVPN_FABRIC", raising=False)
    monkeypatch.delenv("DCVPN_SITE", raising=False)
    assert _run(capsys, *argv)[0] == 2


def test_cli_refuses_a_model_with_lint_errors(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    text = ACME.read_text(encoding="utf-8").replace("dh_group: 20", "dh_group: 2", 1)
    path = tmp_path / "cp-weak.yaml"
    path.write_text(text, encoding="utf-8")
    code, _, err = _run(capsys, "-f", str(path))
    assert code == 2 and "DCV101" in err


def test_cli_500_sites_runs_quickly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = generate(500)
    data["fabric"]["limits"] = {"max_ike_sas": 400}
    path = tmp_path / "cp-500.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    start = time.perf_counter()
    code, out, _ = _run(capsys, "-f", str(path), "--format", "json")
    elapsed = time.perf_counter() - start
    assert code == 1
    over = {e["gateway"] for e in json.loads(out)["exceeded"]}
    assert over == {"s0001-gw1", "s0001-gw2", "s0002-gw1", "s0002-gw2"}  # 499 SAs each
    assert elapsed < 20, f"dcvpn capacity on 500 sites took {elapsed:.1f}s"


def test_capacity_loads_no_device_stack() -> None:
    """Like `dcvpn lint`, planning needs the model only (tests/test_cli_startup.py)."""
    probe = ("import sys\nfrom pipelines.cli import main\n"
             f"code = main(['capacity', '-f', {str(ACME)!r}, '--format', 'json'])\n"
             "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\nsys.exit(code)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCVPN_")}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    roots = {m.split(".")[0] for m in done.stderr.splitlines()}
    assert roots & {"ncclient", "asyncssh", "paramiko", "libyang", "nornir", "jinja2",
                    "cryptography", "lxml", "tasks"} == set()
