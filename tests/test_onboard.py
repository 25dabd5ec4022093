"""Onboarding: the new site's model entry, inserted as text, and the order of the change."""

from ipaddress import IPv4Network
from pathlib import Path

import pytest

from inventory.loader import load_fabric, parse_fabric
from inventory.topology import compile_fabric
from tasks.onboard import (
    OnboardError,
    SiteRequest,
    deploy_plan,
    insert_site,
    next_asn,
    next_site_id,
    parse_gateway,
    site_entry,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "inventory" / "examples"


def _request(name: str = "sin1", region: str | None = "apac", *gateways: str) -> SiteRequest:
    specs = gateways or (f"{name}-gw1=junos@192.0.2.99",)
    return SiteRequest(name, region, (IPv4Network("10.99.0.0/24"),),
                       tuple(parse_gateway(g) for g in specs))


def test_gateway_spec_defaults_and_options() -> None:
    gw = parse_gateway("sin1-gw1=iosxe@192.0.2.7,host=10.0.0.7,transport=ssh")
    assert (gw.name, gw.platform, str(gw.public_ip), gw.host, gw.transport) == (
        "sin1-gw1", "iosxe", "192.0.2.7", "10.0.0.7", "ssh")
    assert parse_gateway("a=junos@192.0.2.1").transport == "netconf"
    assert parse_gateway("a=strongswan@192.0.2.1").transport == "ssh"


@pytest.mark.parametrize(("spec", "message"), [
    ("sin1-gw1@192.0.2.7", "expected NAME=PLATFORM@PUBLIC_IP"),
    ("a=vyos@192.0.2.7", "unknown platform 'vyos'"),
    ("a=junos@192.0.2.300", "is not an IPv4 address"),
    ("a=junos@192.0.2.3,port=22", "unknown option 'port=22'"),
    ("a=junos@192.0.2.3,transport=telnet", "unknown transport 'telnet'"),
])
def test_gateway_spec_errors_name_the_argument(spec: str, message: str) -> None:
    with pytest.raises(OnboardError, match=message):
        parse_gateway(spec)


def test_next_id_is_above_the_highest_and_asn_follows_the_pattern() -> None:
    fabric = load_fabric(EXAMPLES / "acme-hybrid.yaml").fabric
    top = max(s.id for s in fabric.sites)
    assert next_site_id(fabric) == top + 1
    # every example site has asn = 65000 + id
    assert next_asn(fabric, top + 1) == 65000 + top + 1


def test_asn_without_pattern_takes_the_next_above_the_highest() -> None:
    text = (EXAMPLES / "lab3.yaml").read_text().replace("asn: 65003", "asn: 65100")
    fabric = parse_fabric(text, "lab3.yaml").fabric
    assert next_asn(fabric, 4) == 65101


def test_insert_keeps_every_line_and_comment_and_loads() -> None:
    path = EXAMPLES / "acme-hybrid.yaml"
    text = path.read_text()
    fabric = load_fabric(path).fabric
    new = insert_site(text, site_entry(fabric, _request(
        "sin1", "apac", "sin1-gw1=junos@192.0.2.99", "sin1-gw2=iosxe@192.0.2.98")), str(path))
    assert new.startswith(text.rstrip("\n"))  # the old file is a prefix: nothing moved
    loaded = parse_fabric(new, str(path)).fabric
    site = loaded.site("sin1")
    assert site.id == next_site_id(fabric)
    assert [g.name for g in site.gateways] == ["sin1-gw1", "sin1-gw2"]
    assert [s.name for s in loaded.sites[:-1]] == [s.name for s in fabric.sites]


def test_insert_before_a_following_top_level_key() -> None:
    text = ("sites:\n"
            "- name: a\n  id: 1\n  asn: 65001\n  prefixes: [10.1.0.0/24]\n"
            "  gateways:\n  - {name: a-gw1, platform: junos, transport: netconf,"
            " host: a, public_ip: 192.0.2.1}\n"
            "\n# the fabric's settings\n"
            "fabric: {name: t, topology: full_mesh, tunnel_pool: 169.254.0.0/16}\n")
    fabric = parse_fabric(text, "t.yaml").fabric
    new = insert_site(text, site_entry(fabric, _request("b", None, "b-gw1=junos@192.0.2.2")),
                      "t.yaml")
    assert new.endswith("\n# the fabric's settings\n"
                        "fabric: {name: t, topology: full_mesh, tunnel_pool: 169.254.0.0/16}\n")
    assert [s.name for s in parse_fabric(new, "t.yaml").fabric.sites] == ["a", "b"]


def test_flow_style_sites_are_refused() -> None:
    text = ("fabric: {name: t, topology: full_mesh, tunnel_pool: 169.254.0.0/16}\n"
            "sites: [{name: a, id: 1, asn: 65001, prefixes: [10.1.0.0/24], gateways: "
            "[{name: a-gw1, platform: junos, transport: netconf, host: a, "
            "public_ip: 192.0.2.1}]}]\n")
    fabric = parse_fabric(text, "t.yaml").fabric
    with pytest.raises(OnboardError, match="not a block list"):
        insert_site(text, site_entry(fabric, _request("b", None, "b-gw1=junos@192.0.2.2")),
                    "t.yaml")


def test_duplicates_are_refused() -> None:
    fabric = load_fabric(EXAMPLES / "lab3.yaml").fabric
    with pytest.raises(OnboardError, match="site ams1 already exists"):
        site_entry(fabric, _request("ams1", "eu", "x-gw1=junos@192.0.2.50"))
    with pytest.raises(OnboardError, match="gateway lon1-gw1 already exists"):
        site_entry(fabric, _request("x1", "eu", "lon1-gw1=junos@192.0.2.50"))
    with pytest.raises(OnboardError, match="--id 2 is taken"):
        site_entry(fabric, SiteRequest("x1", "eu", (IPv4Network("10.9.0.0/24"),),
                                       (parse_gateway("x1-gw1=junos@192.0.2.50"),), site_id=2))


def test_existing_tunnels_keep_ids_and_addresses() -> None:
    path = EXAMPLES / "acme-hybrid.yaml"
    fabric = load_fabric(path).fabric
    before = compile_fabric(fabric)
    new = insert_site(path.read_text(), site_entry(fabric, _request()), str(path))
    after = compile_fabric(parse_fabric(new, str(path)).fabric)
    old = {t.name: (t.id, t.network) for t in before.tunnels}
    kept = {t.name: (t.id, t.network) for t in after.tunnels if t.name in old}
    assert kept == old
    assert any("sin1" in t.name for t in after.tunnels)


def test_plan_puts_the_site_a_hub_and_a_regional_peer_first() -> None:
    path = EXAMPLES / "acme-hybrid.yaml"
    fabric = load_fabric(path).fabric
    region = fabric.sites[-1].region
    new = insert_site(path.read_text(), site_entry(fabric, _request("new1", region)), str(path))
    compiled = compile_fabric(parse_fabric(new, str(path)).fabric)
    plan = deploy_plan(compiled, "new1", changed=[])
    hubs = {g.name for s, g in compiled.gateways() if s.name in compiled.fabric.fabric.hubs}
    regional = {g.name for s, g in compiled.gateways()
                if s.region == region and s.name not in compiled.fabric.fabric.hubs
                and s.name != "new1"}
    assert plan.first[0] == "new1-gw1"
    assert len(hubs & set(plan.first)) == 1
    assert len(regional & set(plan.first)) == (1 if regional else 0)
    peers = {other.gateway for t in compiled.tunnels for mine, other
             in (t.endpoints, t.endpoints[::-1]) if mine.site == "new1"}
    assert set(plan.first) | set(plan.rest) == {"new1-gw1"} | peers
    assert not set(plan.first) & set(plan.rest)
