import random
from ipaddress import IPv4Address, IPv4Network
from itertools import combinations

import pytest
from conftest import EXAMPLES
from fabric_factory import fabric, site
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.addressing import MAX_PLANES, link_hosts, pair_index, tunnel_id
from inventory.errors import TopologyError
from inventory.loader import load_fabric
from inventory.mtu import tunnel_mtu
from inventory.topology import CompiledFabric, compile_fabric, site_pairs


def _key(compiled: CompiledFabric) -> dict[tuple[str, str, int], tuple[int, str, str, str]]:
    """(site a, site b, plane) -> (tunnel id, network, inner a, inner b)."""
    out = {}
    for t in compiled.tunnels:
        a, b = t.endpoints
        out[(a.site, b.site, t.plane)] = (t.id, str(t.network), str(a.inner_ip), str(b.inner_ip))
    return out


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13])
def test_full_mesh_has_n_choose_2_tunnels_per_plane(n: int) -> None:
    compiled = compile_fabric(fabric([site(i) for i in range(1, n + 1)]))
    assert len(compiled.tunnels) == n * (n - 1) // 2
    pairs = {(t.endpoints[0].site, t.endpoints[1].site) for t in compiled.tunnels}
    assert pairs == {(f"s{a}", f"s{b}") for a, b in combinations(range(1, n + 1), 2)}


@pytest.mark.parametrize(("n", "hubs"), [(5, 1), (10, 2), (20, 3)])
def test_hub_spoke_counts(n: int, hubs: int) -> None:
    sites = [site(i) for i in range(1, n + 1)]
    hub_names = tuple(f"s{i}" for i in range(1, hubs + 1))
    compiled = compile_fabric(fabric(sites, "hub_spoke", hub_names))
    assert len(compiled.tunnels) == hubs * (hubs - 1) // 2 + (n - hubs) * hubs
    for t in compiled.tunnels:  # every tunnel touches a hub
        assert {t.endpoints[0].site, t.endpoints[1].site} & set(hub_names)


def test_hybrid_counts_and_shape() -> None:
    # eu: 4 sites with hub s1; us: 3 sites with hub s5; ap: 2 sites without a hub
    regions = {1: "eu", 2: "eu", 3: "eu", 4: "eu", 5: "us", 6: "us", 7: "us", 8: "ap", 9: "ap"}
    sites = [site(i, region=r) for i, r in regions.items()]
    compiled = compile_fabric(fabric(sites, "hybrid", ("s1", "s5")))
    pairs = {(a, b) for a, b in compiled.site_pairs}
    eu_mesh = set(combinations([1, 2, 3, 4], 2))
    us_mesh = set(combinations([5, 6, 7], 2))
    ap_mesh = {(8, 9)}
    hub_mesh = {(1, 5)}
    ap_to_all_hubs = {(1, 8), (1, 9), (5, 8), (5, 9)}
    assert pairs == eu_mesh | us_mesh | ap_mesh | hub_mesh | ap_to_all_hubs
    assert len(compiled.tunnels) == 6 + 3 + 1 + 1 + 4
    # a non-hub eu site does not reach the us hub directly
    assert (2, 5) not in pairs


def test_ha_planes_join_gateway_i_mod_m() -> None:
    sites = [site(1, gateways=2), site(2, gateways=1), site(3, gateways=3)]
    compiled = compile_fabric(fabric(sites))
    by_pair: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
    for t in compiled.tunnels:
        a, b = t.endpoints
        by_pair.setdefault((a.site, b.site), []).append((t.plane, a.gateway, b.gateway))
    assert sorted(by_pair[("s1", "s2")]) == [(0, "s1-gw1", "s2-gw1"), (1, "s1-gw2", "s2-gw1")]
    assert sorted(by_pair[("s1", "s3")]) == [
        (0, "s1-gw1", "s3-gw1"), (1, "s1-gw2", "s3-gw2"), (2, "s1-gw1", "s3-gw3")]
    assert len(by_pair[("s2", "s3")]) == 3
    gateways_used = {e.gateway for t in compiled.tunnels for e in t.endpoints}
    assert gateways_used == {g["name"] for s in sites for g in s["gateways"]}


def test_plane_zero_is_preferred_in_bgp() -> None:
    compiled = compile_fabric(fabric([site(1, gateways=2), site(2, gateways=2)]))
    prefs = {s.plane: (s.local_pref, s.med) for s in compiled.sessions}
    assert prefs[0][0] > prefs[1][0]
    assert prefs[0][1] < prefs[1][1]


def test_tunnel_ids_and_links_derive_from_site_ids() -> None:
    compiled = compile_fabric(fabric([site(3), site(7)]))
    (t,) = compiled.tunnels
    assert t.id == tunnel_id(3, 7, 0) == pair_index(3, 7) * MAX_PLANES
    pool = IPv4Network("100.64.0.0/10")
    assert t.network == IPv4Network((int(pool.network_address) + 2 * t.id, 31))
    assert (t.endpoints[0].inner_ip, t.endpoints[1].inner_ip) == link_hosts(t.network)
    assert t.endpoints[0].site_id == 3  # lower id first


def test_pair_index_is_a_bijection_onto_the_triangle() -> None:
    seen = {pair_index(a, b) for a, b in combinations(range(1, 60), 2)}
    assert seen == set(range(59 * 58 // 2))


def test_slash30_links_use_host_addresses() -> None:
    compiled = compile_fabric(fabric([site(1), site(2)], link_prefix=30))
    (t,) = compiled.tunnels
    assert t.network.prefixlen == 30
    assert [e.inner_ip for e in t.endpoints] == [t.network.network_address + 1,
                                                  t.network.network_address + 2]


def test_list_order_does_not_matter() -> None:
    sites = [site(i, gateways=1 + i % 2) for i in range(1, 12)]
    base = _key(compile_fabric(fabric(sites, "hub_spoke", ("s1", "s2"))))
    shuffled = sites[:]
    random.Random(7).shuffle(shuffled)
    assert _key(compile_fabric(fabric(shuffled, "hub_spoke", ("s1", "s2")))) == base


@settings(max_examples=60, deadline=None)
@given(
    ids=st.sets(st.integers(min_value=1, max_value=300), min_size=3, max_size=14),
    extra=st.integers(min_value=1, max_value=300),
    topology=st.sampled_from(["full_mesh", "hub_spoke", "hybrid"]),
    data=st.data(),
)
def test_adding_or_removing_a_site_keeps_every_other_tunnel(
        ids: set[int], extra: int, topology: str, data: st.DataObject) -> None:
    ordered = sorted(ids)
    gws = {i: data.draw(st.integers(min_value=1, max_value=2), label=f"gw{i}") for i in ordered}
    regions = {i: ("eu", "us")[i % 2] for i in ordered}
    hubs = (f"s{ordered[0]}", f"s{ordered[1]}")

    def build(members: list[int]) -> CompiledFabric:
        return compile_fabric(fabric([site(i, gws[i], regions[i]) for i in members], topology,
                                     hubs if topology != "full_mesh" else ()))

    base = _key(build(ordered))
    if extra not in ids:  # add a site
        gws[extra] = 1
        regions[extra] = "eu"
        grown = _key(build([*ordered, extra]))
        assert {k: v for k, v in grown.items() if f"s{extra}" not in k[:2]} == base
    victim = data.draw(st.sampled_from(ordered[2:]), label="victim")  # never a hub
    shrunk = _key(build([i for i in ordered if i != victim]))
    assert shrunk == {k: v for k, v in base.items() if f"s{victim}" not in k[:2]}


def test_links_never_collide() -> None:
    sites = [site(i, gateways=1 + (i % 3 == 0)) for i in range(1, 40)]
    compiled = compile_fabric(fabric(sites))
    nets = [t.network for t in compiled.tunnels]
    assert len(set(nets)) == len(nets)
    ifaces = [(e.gateway, e.if_index) for t in compiled.tunnels for e in t.endpoints]
    assert len(set(ifaces)) == len(ifaces)


def test_pool_too_small_is_a_topology_error() -> None:
    tiny = fabric([site(1), site(30)], tunnel_pool="169.254.0.0/28")
    with pytest.raises(TopologyError, match="too small"):
        compile_fabric(tiny)


def test_ebgp_and_ibgp_sessions() -> None:
    sites = [site(1, gateways=2), site(2), site(3)]
    ebgp = compile_fabric(fabric(sites, "hub_spoke", ("s1",)))
    for s in ebgp.sessions:
        a, b = s.endpoints
        assert (a.asn, b.asn) == (64512 + int(a.site[1:]), 64512 + int(b.site[1:]))
        assert {a.role, b.role} == {"peer"}
    assert {e.export for s in ebgp.sessions for e in s.endpoints if e.site == "s1"} == {"fabric"}
    assert {e.export for s in ebgp.sessions for e in s.endpoints if e.site != "s1"} == {"own"}
    no_asn = [{k: v for k, v in s.items() if k != "asn"} for s in sites]
    ibgp = compile_fabric(fabric(no_asn, "hub_spoke", ("s1",), bgp={"mode": "ibgp", "asn": 65000}))
    for s in ibgp.sessions:
        hub, spoke = s.endpoints
        assert hub.site == "s1"
        assert (hub.asn, spoke.asn) == (65000, 65000)
        assert (hub.role, spoke.role) == ("route-reflector", "rr-client")


def test_ibgp_full_mesh_has_no_reflectors() -> None:
    sites = [{k: v for k, v in site(i).items() if k != "asn"} for i in (1, 2, 3)]
    compiled = compile_fabric(fabric(sites, bgp={"mode": "ibgp", "asn": 65000}))
    assert {e.role for s in compiled.sessions for e in s.endpoints} == {"peer"}


def test_missing_hub_is_a_topology_error() -> None:
    with pytest.raises(TopologyError, match="hubs are not sites"):
        site_pairs(fabric([site(1), site(2)], "hub_spoke", ("nope",)))


@pytest.mark.parametrize(
    ("path_mtu", "enc", "integ", "udp", "mtu", "mss"),
    [
        (1500, "aes256gcm16", None, False, 1446, 1406),
        (1500, "aes256gcm16", None, True, 1438, 1398),
        (1500, "aes256", "sha384", False, 1422, 1382),
        (1500, "aes128", "sha256", False, 1438, 1398),  # 1500-20-8-16-16 = 1440 -> 1438
        (9000, "aes256gcm16", None, False, 8946, 8906),
        (1400, "chacha20poly1305", None, True, 1338, 1298),
    ],
)
def test_mtu_arithmetic(path_mtu: int, enc: str, integ: str | None, udp: bool, mtu: int,
                        mss: int) -> None:
    result = tunnel_mtu(path_mtu, enc, integ, udp)
    assert (result.mtu, result.mss) == (mtu, mss)
    assert result.overhead == path_mtu - mtu


@given(path_mtu=st.integers(min_value=576, max_value=9216),
       enc=st.sampled_from(["aes256gcm16", "aes128gcm8", "aes256", "3des"]),
       udp=st.booleans())
def test_mtu_is_the_largest_that_fits(path_mtu: int, enc: str, udp: bool) -> None:
    from inventory.crypto import CIPHERS, INTEGRITY
    integ = None if CIPHERS[enc].aead else "sha256"
    c = CIPHERS[enc]
    icv = c.icv_bytes if c.aead else INTEGRITY["sha256"].icv_bytes

    def wire(m: int) -> int:
        padded = -(-(m + 2) // c.pad_align) * c.pad_align
        return 20 + (8 if udp else 0) + 8 + c.iv_bytes + padded + icv

    m = tunnel_mtu(path_mtu, enc, integ, udp).mtu
    assert wire(m) <= path_mtu < wire(m + 1)


def test_example_fabrics_compile() -> None:
    lab = compile_fabric(load_fabric(EXAMPLES / "lab3.yaml").fabric)
    assert len(lab.tunnels) == 3
    assert all(t.udp_encap for t in lab.tunnels)  # kernel-libipsec always UDP-encapsulates
    acme = compile_fabric(load_fabric(EXAMPLES / "acme-hybrid.yaml").fabric)
    assert len(acme.tunnels) == 12
    hub_pair = [t for t in acme.tunnels if {e.site for e in t.endpoints} == {"fra1", "iad1"}]
    assert sorted(t.plane for t in hub_pair) == [0, 1]
    assert all(e.public_ip != IPv4Address("0.0.0.0") for t in acme.tunnels for e in t.endpoints)
