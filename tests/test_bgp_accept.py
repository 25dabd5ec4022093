"""fabric.bgp.accept: aggregate import ranges instead of a list of every site prefix.

One model field, and per platform the rendered change it makes (FRR, IOS-XE CLI and XML of
both releases, JunOS set and XML), validated by the real checkers (vtysh --dryrun, the vendor
YANG); read back by the production parsers into the same intent; lint; and the point of it
all: a new site changes only its own gateways and its peers.
"""

import copy
import importlib.util
import re
import subprocess
from collections.abc import Callable
from functools import cache
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, require_binary
from netconf_support import require_yang

from inventory.errors import FabricLoadError
from inventory.findings import Severity, format_path
from inventory.lint import lint
from inventory.loader import load_fabric, parse_fabric
from inventory.model import Fabric
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import offline_diff as module
from pipelines.cli import main
from pipelines.diff_cmd import offline_diff
from pipelines.diff_report import as_json
from tasks import parse_iosxe, parse_junos, parse_strongswan
from tasks.intent import gateway_intent
from tasks.onboard import SiteRequest, insert_site, parse_gateway, site_entry
from tasks.render import render_gateway
from tasks.running_intent import ReadBack, device_view
from tasks.semantic_diff import gateway_changes

ACCEPT_HUB = Path(__file__).resolve().parent / "fabrics" / "accept-hub.yaml"
RANGES = ["10.0.0.0/8", "172.16.0.0/12"]
Files = dict[str, str]


@cache
def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return data


def _compiled(name: str, accept: list[str] | None = None, **fabric: Any) -> CompiledFabric:
    data = copy.deepcopy(_example(name))
    data["fabric"].update(fabric)
    if accept is not None:
        data["fabric"].setdefault("bgp", {})["accept"] = accept
    return compile_fabric(Fabric.model_validate(data))


def _render(name: str, gateway: str, accept: list[str] | None = None, **fabric: Any) -> Files:
    return render_gateway(_compiled(name, accept, **fabric), gateway)


@pytest.fixture(scope="module")
def iosxe_validate() -> Callable[[str, str], tuple[str, ...]]:
    require_yang()
    from lab.yang.iosxe import validate_iosxe

    return lambda document, release: validate_iosxe(document, release).errors


@pytest.fixture(scope="module")
def junos_validate() -> Callable[[str], tuple[str, ...]]:
    require_yang()
    from lab.yang.junos import validate_junos

    return lambda document: validate_junos(document).errors


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines only in before, lines only in after)."""
    a, b = before.splitlines(), after.splitlines()
    return [x for x in a if x not in b], [x for x in b if x not in a]


# --- model -------------------------------------------------------------------------------

def test_accept_is_optional_and_parsed() -> None:
    assert _compiled("lab3.yaml").fabric.fabric.bgp.accept == ()
    got = _compiled("lab3.yaml", RANGES).fabric.fabric.bgp.accept
    assert got == (IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"))


def test_accept_range_with_host_bits_is_bad_input_with_its_line() -> None:
    text = (EXAMPLES / "lab3.yaml").read_text().replace(
        "    mode: ebgp\n", "    mode: ebgp\n    accept: [10.1.0.0/8]\n", 1)
    with pytest.raises(FabricLoadError) as err:
        parse_fabric(text, "f.yaml")
    line = text.splitlines().index("    accept: [10.1.0.0/8]") + 1
    assert f"f.yaml:{line}" in str(err.value)
    assert "fabric.bgp.accept" in str(err.value)


# --- lint ----------------------------------------------------------------------------------

@pytest.mark.parametrize("wide", ["0.0.0.0/0", "8.0.0.0/6", "11.0.0.0/8"])
def test_lint_warns_on_ranges_beyond_private_space(tmp_path: Path, wide: str) -> None:
    text = (EXAMPLES / "lab3.yaml").read_text().replace(
        "    mode: ebgp\n", f"    mode: ebgp\n    accept: [{wide}, 10.0.0.0/8]\n", 1)
    path = tmp_path / "f.yaml"
    path.write_text(text)
    found = [f for f in lint(load_fabric(path)) if f.code == "DCV268"]
    assert format_path(found[0].path) == "fabric.bgp.accept[0]"
    assert found[0].severity is Severity.WARNING
    assert "beyond private address space" in found[0].message
    assert found[0].line == text.splitlines().index(f"    accept: [{wide}, 10.0.0.0/8]") + 1


def test_the_accept_test_fabric_is_clean() -> None:
    # DCV253: its IOS-XE gateways check no CRL (no fabric.auth.crl_url), not this test's subject
    assert [f.format() for f in lint(load_fabric(ACCEPT_HUB)) if f.code != "DCV253"] == []


# --- FRR -------------------------------------------------------------------------------------

def test_frr_spoke_accepts_the_ranges_but_not_its_own_prefixes() -> None:
    before = _render("lab3.yaml", "lon1-gw1")["frr.conf"]
    after = _render("lab3.yaml", "lon1-gw1", RANGES)["frr.conf"]
    gone, new = _changed_lines(before, after)
    assert gone == [f"ip prefix-list DCVPN-FABRIC seq {n} permit 10.{n // 10}.0.0/24"
                    for n in (10, 20, 30)]
    assert new == ["ip prefix-list DCVPN-FABRIC seq 10 deny 10.2.0.0/24 le 32",
                   "ip prefix-list DCVPN-FABRIC seq 20 permit 10.0.0.0/8 le 32",
                   "ip prefix-list DCVPN-FABRIC seq 30 permit 172.16.0.0/12 le 32"]


def test_frr_hub_still_passes_the_fabric_on_and_its_own_prefixes() -> None:
    hub: dict[str, Any] = {"topology": "hub_spoke", "hubs": ["ams1"]}
    text = _render("lab3.yaml", "ams1-gw1", RANGES, **hub)["frr.conf"]
    assert ("route-map DCVPN-OUT-FABRIC-MED0 permit 10\n match ip address prefix-list DCVPN-OWN\n"
            " set metric 0\n!\nroute-map DCVPN-OUT-FABRIC-MED0 permit 20\n"
            " match ip address prefix-list DCVPN-FABRIC\n set metric 0\n") in text
    # without accept the hub's one entry matches the full list, which holds its own prefixes
    plain = _render("lab3.yaml", "ams1-gw1", **hub)["frr.conf"]
    assert ("route-map DCVPN-OUT-FABRIC-MED0 permit 10\n"
            " match ip address prefix-list DCVPN-FABRIC\n set metric 0\n!\n") in plain


def _frr_confs() -> list[Any]:
    hub: dict[str, Any] = {"topology": "hub_spoke", "hubs": ["ams1"]}
    return [pytest.param("lab3.yaml", gw, RANGES, hub, id=f"hub_spoke-{gw}")
            for gw in ("ams1-gw1", "lon1-gw1")] + [
        pytest.param("acme-hybrid.yaml", "ams1-gw1", RANGES, {}, id="acme-ams1-gw1")]


@pytest.mark.parametrize(("name", "gateway", "accept", "fabric"), _frr_confs())
def test_frr_conf_with_accept_passes_vtysh_dryrun(name: str, gateway: str, accept: list[str],
                                                  fabric: dict[str, Any], tmp_path: Path) -> None:
    vtysh = require_binary("vtysh")
    path = tmp_path / "frr.conf"
    path.write_text(_render(name, gateway, accept, **fabric)["frr.conf"])
    done = subprocess.run([vtysh, "--dryrun", "-f", str(path)], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (done.stdout + done.stderr).strip() == ""


def test_frr_states_ipv4_forwarding_on_and_ipv6_off() -> None:
    text = _render("lab3.yaml", "lon1-gw1")["frr.conf"].splitlines()
    assert "ip forwarding" in text
    assert "no ipv6 forwarding" in text
    assert text.index("no ipv6 forwarding") < text.index("router bgp 65002")


# --- IOS-XE ---------------------------------------------------------------------------------

IOSXE_ACCEPT_LINES = ["ip prefix-list DCVPN-FABRIC seq 10 deny 10.1.0.0/16 le 32",
                      "ip prefix-list DCVPN-FABRIC seq 20 permit 10.0.0.0/8 le 32",
                      "ip prefix-list DCVPN-FABRIC seq 30 permit 172.16.0.0/12 le 32"]


@pytest.mark.parametrize("gateway", ["fra1-gw1", "fra1-gw2"])
def test_iosxe_cli_accepts_the_ranges_and_only_that_changes(gateway: str) -> None:
    before = _render("acme-hybrid.yaml", gateway)["config.cli"]
    after = _render("acme-hybrid.yaml", gateway, RANGES)["config.cli"]
    gone, new = _changed_lines(before, after)
    assert new == IOSXE_ACCEPT_LINES
    assert len(gone) == 6 and all(g.startswith("ip prefix-list DCVPN-FABRIC ") for g in gone)
    # the route maps are the same: in permits DCVPN-FABRIC, hub out permits OWN or FABRIC
    assert re.search(r"route-map DCVPN-IN-LP\d+ permit 10\n match ip address prefix-list "
                     r"DCVPN-FABRIC\n", after)
    assert " match ip address prefix-list DCVPN-OWN DCVPN-FABRIC\n" in after


@pytest.mark.parametrize(("gateway", "release"), [("fra1-gw1", "17.15"), ("fra1-gw2", "17.12")])
def test_iosxe_xml_with_accept_validates_and_says_the_same(
        iosxe_validate: Callable[[str, str], tuple[str, ...]],
        gateway: str, release: str) -> None:
    files = _render("acme-hybrid.yaml", gateway, RANGES)
    assert iosxe_validate(files["config.xml"], release) == ()
    entries = re.findall(r"<prefixes>\s*<name>DCVPN-FABRIC</name>\s*<no>(\d+)</no>\s*"
                         r"<action>(\w+)</action>\s*<ip>(\S+)</ip>\s*<le>(\d+)</le>",
                         files["config.xml"])
    assert entries == [("10", "deny", "10.1.0.0/16", "32"), ("20", "permit", "10.0.0.0/8", "32"),
                       ("30", "permit", "172.16.0.0/12", "32")]
    assert parse_iosxe.from_xml(files["config.xml"]) == parse_iosxe.from_cli(files["config.cli"])


# --- JunOS ----------------------------------------------------------------------------------

def _policy(lines: list[str], name: str) -> list[str]:
    head = f"set policy-options policy-statement {name} "
    return [line[len(head):] for line in lines if line.startswith(head)]


def test_junos_import_rejects_own_and_accepts_the_ranges_orlonger() -> None:
    lines = _render("acme-hybrid.yaml", "sjc1-gw1", RANGES)["config.set"].splitlines()
    assert [line for line in lines if "prefix-list DCVPN-FABRIC" in line
            and "policy-statement" not in line] == [
        "set policy-options prefix-list DCVPN-FABRIC 10.0.0.0/8",
        "set policy-options prefix-list DCVPN-FABRIC 172.16.0.0/12"]
    assert _policy(lines, "DCVPN-IN-LP200") == [
        "term own from prefix-list-filter DCVPN-OWN orlonger",
        "term own then reject",
        "term fabric from prefix-list-filter DCVPN-FABRIC orlonger",
        "term fabric then local-preference 200",
        "term fabric then accept",
        "term reject then reject"]
    assert _policy(lines, "DCVPN-OUT-OWN-MED0") == [
        "term export from prefix-list DCVPN-OWN", "term export then metric 0",
        "term export then accept", "term reject then reject"]


def test_junos_hub_exports_own_and_the_ranges() -> None:
    lines = _render("acme-hybrid.yaml", "iad1-gw1", RANGES)["config.set"].splitlines()
    assert _policy(lines, "DCVPN-OUT-FABRIC-MED0") == [
        "term export from prefix-list DCVPN-OWN", "term export then metric 0",
        "term export then accept",
        "term fabric from prefix-list-filter DCVPN-FABRIC orlonger",
        "term fabric then metric 0", "term fabric then accept", "term reject then reject"]


@pytest.mark.parametrize("gateway", ["iad1-gw1", "sjc1-gw1"])
def test_junos_xml_with_accept_validates_and_says_the_same(
        junos_validate: Callable[[str], tuple[str, ...]],
        gateway: str) -> None:
    files = _render("acme-hybrid.yaml", gateway, RANGES)
    assert junos_validate(files["config.xml"]) == ()
    assert ("<prefix-list-filter><list_name>DCVPN-FABRIC</list_name>"
            "<choice-ident>orlonger</choice-ident><choice-value/></prefix-list-filter>"
            in files["config.xml"])
    assert parse_junos.from_xml(files["config.xml"]) == parse_junos.from_set(files["config.set"])


def test_junos_yang_check_names_an_undefined_filter_list(
        junos_validate: Callable[[str], tuple[str, ...]]) -> None:
    xml = _render("acme-hybrid.yaml", "sjc1-gw1", RANGES)["config.xml"]
    broken = xml.replace("<list_name>DCVPN-OWN</list_name>", "<list_name>DCVPN-GONE</list_name>")
    assert "prefix-list 'DCVPN-GONE' is referred to but not defined" in junos_validate(broken)


def test_junos_reads_the_native_empty_element_form_too() -> None:
    xml = _render("acme-hybrid.yaml", "sjc1-gw1", RANGES)["config.xml"]
    native = xml.replace("<choice-ident>orlonger</choice-ident><choice-value/>", "<orlonger/>")
    assert native != xml
    assert parse_junos.from_xml(native) == parse_junos.from_xml(xml)


# --- intent, read-back, semantic diff -------------------------------------------------------

READERS: dict[str, tuple[ReadBack, Callable[[Files], dict[str, Any]]]] = {
    "strongswan": (parse_strongswan.READBACK, parse_strongswan.from_files),
    "iosxe": (parse_iosxe.READBACK, parse_iosxe.from_files),
    "junos": (parse_junos.READBACK, parse_junos.from_files),
}


def test_intent_says_what_is_accepted() -> None:
    compiled = _compiled("acme-hybrid.yaml", RANGES)
    prefixes = gateway_intent(compiled, "ams1-gw1")["prefixes"]
    assert prefixes == {"announce": ["10.3.0.0/16"],
                        "accept": ["10.0.0.0/8 le 32", "172.16.0.0/12 le 32"]}


@pytest.mark.parametrize("fabric", ["accept-hub", "acme-accept"])
def test_every_platform_reads_its_files_back_as_the_intent(fabric: str) -> None:
    compiled = (compile_fabric(load_fabric(ACCEPT_HUB).fabric) if fabric == "accept-hub"
                else _compiled("acme-hybrid.yaml", RANGES))
    for _, gw in compiled.gateways():
        readback, read = READERS[str(gw.platform)]
        running = read(render_gateway(compiled, gw.name))
        intended = gateway_intent(compiled, gw.name)
        assert running["prefixes"] == intended["prefixes"], gw.name
        assert gateway_changes(gw.name, device_view(running, readback),
                               device_view(intended, readback)) == [], gw.name


@pytest.mark.parametrize(("gateway", "edit"), [
    ("hq1-gw1", ("ip prefix-list DCVPN-FABRIC seq 30 permit 172.16.0.0/12 le 32\n", "")),
    ("hq1-gw2", ("set policy-options prefix-list DCVPN-FABRIC 172.16.0.0/12\n", "")),
    ("br2-gw1", ("ip prefix-list DCVPN-FABRIC seq 40 permit 172.16.0.0/12 le 32\n", "")),
])
def test_a_range_removed_on_the_device_is_named(gateway: str, edit: tuple[str, str]) -> None:
    compiled = compile_fabric(load_fabric(ACCEPT_HUB).fabric)
    platform = str(next(gw.platform for _, gw in compiled.gateways() if gw.name == gateway))
    files = render_gateway(compiled, gateway)
    name = {"iosxe": "config.cli", "junos": "config.set", "strongswan": "frr.conf"}[platform]
    assert edit[0] in files[name]
    files[name] = files[name].replace(*edit)
    if platform == "junos":
        del files["config.xml"]  # from_files prefers the XML; read the edited set form
        running = parse_junos.from_set(files["config.set"])
    else:
        running = READERS[platform][1](files)
    readback = READERS[platform][0]
    found = gateway_changes(gateway, device_view(running, readback),
                            device_view(gateway_intent(compiled, gateway), readback))
    assert [c.text for c in found] == ["accepts 172.16.0.0/12 le 32 (new)"]


def test_switching_to_accept_shows_in_the_offline_diff(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old"
    assert main(["render", "-f", str(EXAMPLES / "lab3.yaml"), "-o", str(old)]) == 0
    data = copy.deepcopy(_example("lab3.yaml"))
    data["fabric"]["bgp"]["accept"] = ["10.0.0.0/8"]
    diffs = {d.gateway: d for d in offline_diff(
        compile_fabric(Fabric.model_validate(data)), old)}
    changes = [c.text for c in diffs["lon1-gw1"].semantic]
    assert changes == ["accepts 10.0.0.0/8 le 32 (new)", "no longer accepts 10.1.0.0/24",
                       "no longer accepts 10.3.0.0/24"]
    assert "+ip prefix-list DCVPN-FABRIC seq 20 permit 10.0.0.0/8 le 32" in \
        diffs["lon1-gw1"].files["frr.conf"]
    capsys.readouterr()


# --- onboarding: a new site changes only its gateways and its peers --------------------------

def _onboarded(base: str, gateways: tuple[str, ...]) -> tuple[str, CompiledFabric]:
    fabric = parse_fabric(base, "f.yaml").fabric
    request = SiteRequest("br5", None, (IPv4Network("10.5.0.0/16"),),
                          tuple(parse_gateway(g) for g in gateways))
    text = insert_site(base, site_entry(fabric, request))
    return text, compile_fabric(parse_fabric(text, "f.yaml").fabric)


def _changed_after_onboarding(tmp_path: Path, base: str,
                              capsys: pytest.CaptureFixture[str]) -> tuple[set[str], set[str]]:
    """(gateways whose diff is not empty, the new site's gateways and their peers)."""
    (tmp_path / "old.yaml").write_text(base)
    old = tmp_path / "old"
    assert main(["render", "-f", str(tmp_path / "old.yaml"), "-o", str(old)]) == 0
    capsys.readouterr()
    _, compiled = _onboarded(base, ("br5-gw1=junos@203.0.113.51",
                                    "br5-gw2=iosxe@203.0.113.52"))
    new = {gw.name for s, gw in compiled.gateways() if s.name == "br5"}
    peers = {e.gateway for t in compiled.tunnels if any(x.site == "br5" for x in t.endpoints)
             for e in t.endpoints}
    changed = {d.gateway for d in offline_diff(compiled, old) if d.changed}
    return changed, new | peers


def test_with_accept_a_new_site_changes_only_its_gateways_and_peers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    changed, expected = _changed_after_onboarding(tmp_path, ACCEPT_HUB.read_text(), capsys)
    assert expected == {"br5-gw1", "br5-gw2", "hq1-gw1", "hq1-gw2"}
    assert changed == expected


def test_without_accept_every_gateway_changes(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    base = ACCEPT_HUB.read_text().replace("    accept: [10.0.0.0/8, 172.16.0.0/12]\n", "")
    changed, expected = _changed_after_onboarding(tmp_path, base, capsys)
    assert changed > expected  # the spokes' enumerated import lists grow
    assert {"br2-gw1", "br3-gw1", "br4-gw1"} <= changed


# --- the offline diff of a large fabric in worker processes ---------------------------------

def _gen_fabric() -> Any:
    """bench/gen_fabric.py (not a package)."""
    spec = importlib.util.spec_from_file_location(
        "gen_fabric", Path(__file__).resolve().parent.parent / "bench" / "gen_fabric.py")
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_offline_diff_in_workers_equals_the_diff_in_one_process(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _gen_fabric()
    generate, fabric_yaml = gen.generate, gen.fabric_yaml
    sites = 12  # the workers are forced below: a small fabric does
    old_data = generate(sites, mixed_platforms=True, accept=("10.0.0.0/8",))
    new_data = generate(sites + 1, mixed_platforms=True, accept=("10.0.0.0/8",))
    old_data["fabric"]["tunnel_pool"] = new_data["fabric"]["tunnel_pool"]
    (tmp_path / "old.yaml").write_text(fabric_yaml(old_data))
    old = tmp_path / "old"
    assert main(["render", "-f", str(tmp_path / "old.yaml"), "-o", str(old)]) == 0
    capsys.readouterr()
    (old / "gone-gw1").mkdir()  # a gateway no longer in the model
    (old / "gone-gw1" / "frr.conf").write_text("hostname gone-gw1\n")
    compiled = compile_fabric(Fabric.model_validate(new_data))
    names = [gw.name for _, gw in compiled.gateways()] + ["gone-gw1"]
    monkeypatch.setattr(module, "workers_for", lambda count: 1)
    alone = module.offline_diff(compiled, old)
    monkeypatch.setattr(module, "workers_for", lambda count: 2)
    forked = offline_diff(compiled, old)  # as `dcvpn diff` calls it
    assert [d.gateway for d in forked] == sorted(names)
    assert as_json(forked) == as_json(alone)
    changed = {d.gateway for d in forked if d.changed}
    assert changed == {"s0001-gw1", "s0001-gw2", "s0002-gw1", "s0002-gw2",
                       f"s{sites + 1:04d}-gw1", "gone-gw1"}


def test_workers_only_for_large_fabrics() -> None:
    assert module.workers_for(module.POOL_MIN_GATEWAYS - 1) == 1
    assert 1 <= module.workers_for(module.POOL_MIN_GATEWAYS) <= module.MAX_WORKERS
