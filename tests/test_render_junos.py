"""JunOS (SRX) renderer: payloads validate against the junos-es 24.4R1 YANG plus the project's
cross-reference check, broken payloads do not, one model change makes the expected rendered
change, config.set says exactly what config.xml says, and both carry the model's intent."""

import copy
import os
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from functools import cache
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

import fabric_factory
import pytest
import yaml
from conftest import EXAMPLES
from rendered import RenderedTunnel, tunnels

from inventory.crypto import DH_GROUPS
from inventory.model import Fabric
from inventory.topology import CompiledFabric, compile_fabric
from lab.yang import yang_dir
from tasks import parse_junos
from tasks.errors import RenderError
from tasks.pki.psk import ensure_psks, resolve_secrets
from tasks.render import render_gateway
from tasks.render_context import SECRET_PREFIX, gateway_view, secret_ref

Mutation = Callable[[dict[str, Any]], None]
Files = dict[str, str]
JUNOS_GATEWAYS = ("iad1-gw1", "iad1-gw2", "sjc1-gw1")  # hub plane 0, hub plane 1, spoke
HUB, SPOKE = "iad1-gw1", "sjc1-gw1"


@cache
def _acme() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "acme-hybrid.yaml").read_text())
    return data


def compiled(*mutations: Mutation) -> CompiledFabric:
    data = copy.deepcopy(_acme())
    for mutate in mutations:
        mutate(data)
    return compile_fabric(Fabric.model_validate(data))


def render(gateway: str, *mutations: Mutation) -> Files:
    return render_gateway(compiled(*mutations), gateway)


def _set(path: str, value: Any) -> Mutation:
    """fabric.crypto.esp.lifetime=... style change of one model field."""
    def mutate(data: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return mutate


def _gateway(name: str, **fields: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        for site in data["sites"]:
            for gw in site["gateways"]:
                if gw["name"] == name:
                    gw.update(fields)
    return mutate


def psk(data: dict[str, Any]) -> None:
    data["fabric"]["auth"] = {"method": "psk"}


def ibgp(data: dict[str, Any]) -> None:
    data["fabric"]["bgp"] = {"mode": "ibgp", "asn": 65000, "bfd": data["fabric"]["bgp"]["bfd"]}
    for site in data["sites"]:
        site.pop("asn")


def cbc_rsa_libipsec(data: dict[str, Any]) -> None:
    """Other code paths at once: CBC + HMAC, RSA certificates, UDP encapsulation, /30."""
    data["fabric"].update(crypto="cbc", auth={"method": "certificate", "key_type": "rsa-3072"},
                          data_plane="libipsec", link_prefix=30)


def chacha_esn(data: dict[str, Any]) -> None:
    data["fabric"]["crypto"]["esp"].update(encryption="chacha20poly1305", esn=True)


VARIANTS: dict[str, tuple[Mutation, ...]] = {
    "example": (), "psk": (psk,), "ibgp": (ibgp,), "cbc-rsa-libipsec": (cbc_rsa_libipsec,),
    "chacha-esn": (chacha_esn,),
}
CASES = [pytest.param(v, gw, id=f"{v}-{gw}") for v in sorted(VARIANTS) for gw in JUNOS_GATEWAYS]


def lines(files: Files) -> set[str]:
    return set(files["config.set"].splitlines())


def xml(files: Files) -> ET.Element:
    return ET.fromstring(files["config.xml"])


# ---- YANG validation -------------------------------------------------------------------

Validate = Callable[[str], tuple[str, ...]]


@pytest.fixture(scope="module")
def validate() -> Validate:
    reason = None
    if yang_dir() is None:
        reason = "vendor YANG folder absent (set DCVPN_YANG_DIR; default ../shared/yang)"
    else:
        try:
            import libyang  # noqa: F401
        except ImportError:
            reason = ("libyang binding missing: apt-get install libyang2-dev; "
                      "pip install libyang==2.8.0")
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from lab.yang.junos import validate_junos

    return lambda document: validate_junos(document).errors


@pytest.mark.parametrize(("variant", "gateway"), CASES)
def test_config_xml_validates(validate: Validate, variant: str, gateway: str) -> None:
    assert validate(render(gateway, *VARIANTS[variant])["config.xml"]) == ()


def test_shared_samples(validate: Validate) -> None:
    """The reference documents (with namespaces) go through the same checks."""
    base = yang_dir()
    assert base is not None
    samples = base / "samples"
    assert validate((samples / "junos_es_vpn_bgp.xml").read_text()) == ()
    # a dangling gateway name passes libyang; the project's reference check catches it
    assert validate((samples / "jneg_gw_ref.xml").read_text()) == (
        "ike gateway 'GW-NOPE' is referred to but not defined",)


BREAKAGES = {
    # what is broken -> (fabric variant, old text, new text, expected in the first error)
    "unknown element": (
        (), "<establish-tunnels>", "<bogus/><establish-tunnels>", 'node "bogus" not found'),
    "unknown top-level statement": (
        (), "<routing-options>", "<system/><routing-options>", "<system> is not in"),
    "dh-group enum": ((), "<dh-group>group20", "<dh-group>group99", '"group99"'),
    "lifetime range": (
        (), "<lifetime-seconds>3600", "<lifetime-seconds>60", 'invalid union value "60"'),
    "vpn -> ike gateway": (
        (), "<gateway>DCVPN-GW-", "<gateway>NOPE-", "ike gateway 'nope-"),
    "ike gateway -> ike policy": (
        (), "<ike-policy>DCVPN-IKE-POL-", "<ike-policy>NOPE-", "ike policy 'nope-"),
    "ike policy -> ike proposal": (
        (), "<proposals>DCVPN-IKE-PROP", "<proposals>NOPE", "ike proposal 'nope'"),
    "ike policy -> ca-profile": (
        (), "<ca-profile>DCVPN-CA</ca-profile>", "<ca-profile>NOPE</ca-profile>",
        "pki ca-profile 'nope'"),
    "vpn -> ipsec policy": (
        (), "<ipsec-policy>DCVPN-IPSEC-POL", "<ipsec-policy>NOPE", "ipsec policy 'nope'"),
    "ipsec policy -> proposal": (
        (), "<proposals>DCVPN-ESP-PROP", "<proposals>NOPE", "ipsec proposal 'nope'"),
    "vpn -> st0 unit": (
        (), "<bind-interface>st0.", "<bind-interface>st0.9", "bind-interface unit 'st0.9"),
    "zone -> st0 unit": (
        (), "<name>st0.", "<name>st0.9", "zone interface 'st0.9"),
    "neighbor -> policy-statement": (
        (), "<import>DCVPN-IN-", "<import>NOPE-", "policy-statement 'nope-"),
    "policy -> prefix-list": (
        (), "<prefix-list><name>DCVPN-FABRIC", "<prefix-list><name>NOPE", "prefix-list 'nope'"),
    "psk variant: vpn -> ike gateway": (
        (psk,), "<gateway>DCVPN-GW-", "<gateway>NOPE-", "ike gateway 'nope-"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_broken_payload_is_rejected(validate: Validate, breakage: str) -> None:
    mutations, old, new, reason = BREAKAGES[breakage]
    document = render(HUB, *mutations)["config.xml"]
    assert validate(document) == ()
    broken = document.replace(old, new, 1)
    assert broken != document, f"{old!r} not in the payload"
    errors = validate(broken)
    assert errors and reason in errors[0].lower()


def _junos_fabric(*sites: dict[str, Any]) -> CompiledFabric:
    return compile_fabric(fabric_factory.fabric(list(sites)))


def test_edge_fabrics_validate(validate: Validate) -> None:
    """No fabric prefix besides the own ones (empty list and term left out), and no tunnel."""
    a, b = (fabric_factory.site(i, platform="junos") for i in (1, 2))
    b["prefixes"] = a["prefixes"]
    files = render_gateway(_junos_fabric(a, b), "s1-gw1")
    assert "DCVPN-FABRIC" not in files["config.set"]
    assert _statement(files, "DCVPN-IN-LP200") == ["term reject then reject"]
    assert validate(files["config.xml"]) == ()
    alone = render_gateway(_junos_fabric(fabric_factory.site(1, platform="junos")), "s1-gw1")
    assert "st0" not in alone["config.set"] and "protocols bgp" not in alone["config.set"]
    assert validate(alone["config.xml"]) == ()
    assert sorted(xml_as_set(xml(alone))) == sorted(
        tuple(w) for w in parse_junos.set_commands(alone["config.set"]))


def test_resolved_psks_still_validate(validate: Validate, tmp_path: Path) -> None:
    fabric = compiled(psk)
    ensure_psks(tmp_path, [t.name for t in gateway_view(fabric, HUB).tunnels])
    resolved = resolve_secrets(render_gateway(fabric, HUB)["config.xml"], tmp_path)
    assert SECRET_PREFIX not in resolved
    assert validate(resolved) == ()


# ---- one model field, one rendered change ----------------------------------------------

def test_esp_lifetime() -> None:
    before, after = render(HUB), render(HUB, _set("fabric.crypto.esp.lifetime", "2h"))
    line = "set security ipsec proposal DCVPN-ESP-PROP lifetime-seconds {}"
    assert line.format(3600) in lines(before) and line.format(7200) in lines(after)
    assert xml(after).findtext("security/ipsec/proposal/lifetime-seconds") == "7200"


def test_ike_lifetime() -> None:
    files = render(HUB, _set("fabric.crypto.ike.lifetime", "4h"))
    assert "set security ike proposal DCVPN-IKE-PROP lifetime-seconds 14400" in lines(files)
    assert xml(files).findtext("security/ike/proposal/lifetime-seconds") == "14400"


def test_dh_and_pfs_groups() -> None:
    before = render(HUB)
    after = render(HUB, _set("fabric.crypto.ike.dh_group", 19),
                   _set("fabric.crypto.esp.pfs_group", 19))
    assert "set security ike proposal DCVPN-IKE-PROP dh-group group20" in lines(before)
    assert "set security ike proposal DCVPN-IKE-PROP dh-group group19" in lines(after)
    assert ("set security ipsec policy DCVPN-IPSEC-POL perfect-forward-secrecy keys group19"
            in lines(after))
    assert xml(after).findtext("security/ipsec/policy/perfect-forward-secrecy/keys") == "group19"


def test_no_pfs() -> None:
    files = render(HUB, _set("fabric.crypto.esp.pfs_group", "none"))
    assert "perfect-forward-secrecy" not in files["config.set"] + files["config.xml"]


def test_gcm_proposal_has_no_authentication_algorithm() -> None:
    files = render(HUB)
    assert "authentication-algorithm" not in files["config.set"] + files["config.xml"]
    assert "set security ike proposal DCVPN-IKE-PROP encryption-algorithm aes-256-gcm" in lines(
        files)


def test_cbc_profile_adds_authentication() -> None:
    files = render(HUB, _set("fabric.crypto", "cbc"))
    assert {
        "set security ike proposal DCVPN-IKE-PROP encryption-algorithm aes-256-cbc",
        "set security ike proposal DCVPN-IKE-PROP authentication-algorithm sha-384",
        "set security ipsec proposal DCVPN-ESP-PROP encryption-algorithm aes-256-cbc",
        "set security ipsec proposal DCVPN-ESP-PROP authentication-algorithm hmac-sha-384",
    } <= lines(files)
    compat = render(HUB, _set("fabric.crypto", "compat"))
    assert {
        "set security ike proposal DCVPN-IKE-PROP authentication-algorithm sha-256",
        "set security ike proposal DCVPN-IKE-PROP dh-group group15",
        "set security ipsec proposal DCVPN-ESP-PROP authentication-algorithm hmac-sha-256-128",
    } <= lines(compat)


def test_aes128_gcm_implies_prf_sha256() -> None:
    files = render(HUB, _set("fabric.crypto.ike", {"encryption": "aes128gcm16", "prf": "sha256",
                                                   "dh_group": 19, "lifetime": "8h"}))
    assert "set security ike proposal DCVPN-IKE-PROP encryption-algorithm aes-128-gcm" in lines(
        files)
    with pytest.raises(RenderError, match="derives the IKE PRF of aes128gcm16"):
        render(HUB, _set("fabric.crypto.ike.encryption", "aes128gcm16"))  # prf stays sha384


def test_cbc_prf_must_be_the_integrity_algorithm() -> None:
    with pytest.raises(RenderError, match="prf sha512 must equal integrity sha384"):
        render(HUB, _set("fabric.crypto", {"profile": "cbc", "ike": {"prf": "sha512"}}))


def test_esp_encryption_and_esn() -> None:
    files = render(HUB, _set("fabric.crypto.esp.encryption", "aes128gcm16"))
    assert "set security ipsec proposal DCVPN-ESP-PROP encryption-algorithm aes-128-gcm" in lines(
        files)
    chacha = render(HUB, chacha_esn)
    assert {
        "set security ipsec proposal DCVPN-ESP-PROP encryption-algorithm chacha20-poly1305",
        "set security ipsec proposal DCVPN-ESP-PROP extended-sequence-number",
    } <= lines(chacha)
    assert xml(chacha).find("security/ipsec/proposal/extended-sequence-number") is not None
    assert "extended-sequence-number" not in files["config.set"]


def test_gmac_is_refused() -> None:
    with pytest.raises(RenderError, match="JunOS has no ESP encryption 'aes256gmac'"):
        render(HUB, _set("fabric.crypto.esp.encryption", "aes256gmac"))


@pytest.mark.parametrize(("key_type", "method"), [
    ("ecdsa-p384", "ecdsa-signatures-384"), ("ecdsa-p256", "ecdsa-signatures-256"),
    ("rsa-3072", "rsa-signatures"), ("rsa-4096", "rsa-signatures")])
def test_certificate_key_type(key_type: str, method: str) -> None:
    files = render(HUB, _set("fabric.auth", {"method": "certificate", "key_type": key_type}))
    assert f"set security ike proposal DCVPN-IKE-PROP authentication-method {method}" in lines(
        files)
    assert {
        "set security ike policy DCVPN-IKE-POL-10 certificate local-certificate iad1-gw1",
        "set security ike policy DCVPN-IKE-POL-10 certificate trusted-ca ca-profile DCVPN-CA",
        "set security pki ca-profile DCVPN-CA ca-identity DCVPN-CA",
    } <= lines(files)
    assert "pre-shared-key" not in files["config.set"] + files["config.xml"]


def test_bfd_timers() -> None:
    files = render(HUB, _set("fabric.bgp.bfd", {"interval_ms": 500, "multiplier": 5}))
    group = "set protocols bgp group DCVPN-EBGP bfd-liveness-detection"
    assert {f"{group} minimum-interval 500", f"{group} multiplier 5"} <= lines(files)
    bfd = xml(files).find("protocols/bgp/group/bfd-liveness-detection")
    assert bfd is not None and bfd.findtext("minimum-interval") == "500"


def test_bgp_hold_time_and_prefix_limit() -> None:
    files = render(HUB, _set("fabric.bgp.timers", {"keepalive": 5, "hold": 15}),
                   _set("fabric.bgp.max_prefixes", 50))
    assert {
        "set protocols bgp group DCVPN-EBGP hold-time 15",
        "set protocols bgp group DCVPN-EBGP family inet unicast prefix-limit maximum 50",
        "set protocols bgp group DCVPN-EBGP family inet unicast prefix-limit teardown",
    } <= lines(files)


def test_path_mtu_sets_st0_mtu_and_tcp_mss() -> None:
    fabric = compiled(_set("fabric.mtu", {"path_mtu": 1400}))
    tunnel = gateway_view(fabric, HUB).tunnels[0].tunnel
    files = render_gateway(fabric, HUB)
    assert (tunnel.mtu, tunnel.mss) == (1346, 1306)
    assert {"set interfaces st0 unit 10 family inet mtu 1346",
            "set security flow tcp-mss ipsec-vpn mss 1306"} <= lines(files)
    assert xml(files).findtext("security/flow/tcp-mss/ipsec-vpn/mss") == "1306"


def test_tcp_mss_is_the_smallest_of_the_device() -> None:
    """One tcp-mss per SRX: the UDP-encapsulated tunnel to a libipsec site sets it."""
    fabric = compiled(_set("fabric.data_plane", "libipsec"))
    mss = {t.remote.site: t.tunnel.mss for t in gateway_view(fabric, HUB).tunnels}
    assert mss["nyc1"] < mss["sjc1"]
    assert f"set security flow tcp-mss ipsec-vpn mss {mss['nyc1']}" in lines(
        render_gateway(fabric, HUB))


def test_link_prefix_30() -> None:
    files = render(HUB, _set("fabric.link_prefix", 30))
    assert "set interfaces st0 unit 10 family inet address 169.254.0.2/30" in lines(files)


def test_dpd_interval_and_action() -> None:
    files = render(HUB, _set("fabric.crypto.dpd", {"interval": "20s", "action": "trap"}))
    assert "set security ike gateway DCVPN-GW-10 dead-peer-detection interval 20" in lines(files)
    assert "set security ipsec vpn DCVPN-VPN-10 establish-tunnels on-traffic" in lines(files)
    assert "set security ipsec vpn DCVPN-VPN-10 establish-tunnels immediately" in lines(
        render(HUB))


@pytest.mark.parametrize(("mutation", "message"), [
    (_set("fabric.crypto.dpd.interval", "90s"), "DPD interval 90 is outside 2..60"),
    (_set("fabric.crypto.ike.lifetime", "2d"), "IKE lifetime 172800 is outside 180..86400"),
    (_set("fabric.crypto.esp.lifetime", "2m"), "ESP lifetime 120 is outside 180..86400"),
])
def test_value_outside_the_yang_range_is_refused(mutation: Mutation, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render(HUB, mutation)


def test_identities_and_endpoints() -> None:
    files = render(HUB, _gateway("iad1-gw1", ike_id="vpn.iad1.example.net"),
                   _gateway("sjc1-gw1", public_ip="192.0.2.66"))
    gw = "set security ike gateway DCVPN-GW-60"  # to sjc1 (id 6), plane 0
    assert {
        f"{gw} local-identity hostname vpn.iad1.example.net",
        f"{gw} remote-identity hostname sjc1-gw1.acme.dcvpn",
        f"{gw} address 192.0.2.66",
        f"{gw} local-address 198.51.100.1",
        f"{gw} external-interface ge-0/0/0.0",
        f"{gw} version v2-only",
        "set security ipsec vpn DCVPN-VPN-60 bind-interface st0.60",
        "set security ipsec vpn DCVPN-VPN-60 ike gateway DCVPN-GW-60",
    } <= lines(files)


def test_zones() -> None:
    files = render(SPOKE)
    zone = "set security zones security-zone"
    assert {
        f"{zone} untrust interfaces ge-0/0/0.0 host-inbound-traffic system-services ike",
        f"{zone} vpn interfaces st0.20 host-inbound-traffic protocols bgp",
        f"{zone} vpn interfaces st0.20 host-inbound-traffic protocols bfd",
    } <= lines(files)
    units = {u.findtext("name") for u in xml(files).iterfind("interfaces/interface/unit")}
    zoned = {i.findtext("name") for i in xml(files).iterfind(
        "security/zones/security-zone[name='vpn']/interfaces")}
    assert zoned == {f"st0.{u}" for u in units} == {"st0.20", "st0.21", "st0.50"}


def test_transit_policy_only_where_fabric_prefixes_pass() -> None:
    policy = "set security policies from-zone vpn to-zone vpn policy DCVPN-TRANSIT then permit"
    assert policy in lines(render(HUB))
    assert "DCVPN-TRANSIT" not in render(SPOKE)["config.set"]


# ---- routing policy --------------------------------------------------------------------

def _statement(files: Files, name: str) -> list[str]:
    prefix = f"set policy-options policy-statement {name} "
    return [line.removeprefix(prefix) for line in files["config.set"].splitlines()
            if line.startswith(prefix)]


def test_prefix_lists() -> None:
    files = render(SPOKE)
    assert "set policy-options prefix-list DCVPN-OWN 10.6.0.0/16" in lines(files)
    fabric = [line.split()[-1] for line in files["config.set"].splitlines()
              if line.startswith("set policy-options prefix-list DCVPN-FABRIC ")]
    assert fabric == ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16",
                      "10.5.0.0/16", "172.16.4.0/22"]


def test_spoke_exports_own_prefixes_and_accepts_fabric() -> None:
    files = render(SPOKE)
    assert _statement(files, "DCVPN-OUT-OWN-MED0") == [
        "term export from prefix-list DCVPN-OWN", "term export then metric 0",
        "term export then accept", "term reject then reject"]
    assert _statement(files, "DCVPN-IN-LP200") == [
        "term fabric from prefix-list DCVPN-FABRIC", "term fabric then local-preference 200",
        "term fabric then accept", "term reject then reject"]
    assert "DCVPN-OUT-FABRIC" not in files["config.set"]


def test_hub_also_passes_fabric_prefixes() -> None:
    files = render(HUB)
    assert _statement(files, "DCVPN-OUT-FABRIC-MED0")[:2] == [
        "term export from prefix-list DCVPN-OWN", "term export from prefix-list DCVPN-FABRIC"]
    terms = xml(files).findall(
        "policy-options/policy-statement[name='DCVPN-OUT-FABRIC-MED0']/term")
    assert [t.findtext("name") for t in terms] == ["export", "reject"]  # reject comes last


def test_plane_sets_local_pref_and_med() -> None:
    plane1 = render("iad1-gw2")  # every iad1-gw2 tunnel is plane 1
    assert "term fabric then local-preference 190" in _statement(plane1, "DCVPN-IN-LP190")
    assert "term export then metric 10" in _statement(plane1, "DCVPN-OUT-FABRIC-MED10")
    spoke = lines(render(SPOKE))  # plane 0 to iad1-gw1 and nyc1, plane 1 to iad1-gw2
    neighbor = "set protocols bgp group DCVPN-EBGP neighbor"
    assert {
        f"{neighbor} 169.254.0.88 import DCVPN-IN-LP200",
        f"{neighbor} 169.254.0.90 import DCVPN-IN-LP190",
        f"{neighbor} 169.254.0.90 export DCVPN-OUT-OWN-MED10",
        f"{neighbor} 169.254.0.112 export DCVPN-OUT-OWN-MED0",
    } <= spoke


def test_ebgp_groups() -> None:
    files = render(HUB)
    assert {
        "set routing-options autonomous-system 65002",
        "set routing-options router-id 198.51.100.1",
        "set protocols bgp group DCVPN-EBGP type external",
        "set protocols bgp group DCVPN-EBGP neighbor 169.254.0.89 peer-as 65006",
    } <= lines(files)
    assert "cluster" not in files["config.set"] and "next-hop self" not in files["config.set"]


def test_ibgp_route_reflector_on_hubs() -> None:
    hub = render(HUB, ibgp)
    groups = {g.findtext("name", ""): g for g in xml(hub).iterfind("protocols/bgp/group")}
    assert sorted(groups) == ["DCVPN-IBGP", "DCVPN-RR-CLIENTS"]
    clients = groups["DCVPN-RR-CLIENTS"]
    assert clients.findtext("type") == "internal"
    assert clients.findtext("cluster") == "198.51.100.1"
    assert {n.findtext("name") for n in clients.iterfind("neighbor")} == {
        "169.254.0.57", "169.254.0.89"}  # nyc1 and sjc1; fra1 (a hub) is a plain peer
    assert [n.findtext("name") for n in groups["DCVPN-IBGP"].iterfind("neighbor")] == [
        "169.254.0.0"]
    assert groups["DCVPN-IBGP"].find("cluster") is None
    assert "peer-as" not in hub["config.set"]
    assert "set routing-options autonomous-system 65000" in lines(hub)
    assert "term export then next-hop self" in _statement(hub, "DCVPN-OUT-FABRIC-MED0")
    spoke = render(SPOKE, ibgp)
    assert "cluster" not in spoke["config.set"]
    assert "set protocols bgp group DCVPN-IBGP type internal" in lines(spoke)
    assert "term export then next-hop self" in _statement(spoke, "DCVPN-OUT-OWN-MED0")


# ---- secrets ---------------------------------------------------------------------------

def test_psk_is_only_a_reference(tmp_path: Path) -> None:
    fabric = compiled(psk)
    names = [t.name for t in gateway_view(fabric, HUB).tunnels]
    ensure_psks(tmp_path, names)
    keys = [(tmp_path / "psk" / n).read_text().strip() for n in names]
    files = render_gateway(fabric, HUB)
    for text in files.values():
        assert not any(key in text for key in keys)
    refs = [secret_ref("psk", n) for n in names]
    assert [e.text for e in xml(files).iterfind(
        "security/ike/policy/pre-shared-key/ascii-text")] == refs
    set_refs = [shlex.split(line)[-1] for line in files["config.set"].splitlines()
                if " pre-shared-key ascii-text " in line]
    assert set_refs == refs
    assert "set security ike proposal DCVPN-IKE-PROP authentication-method pre-shared-keys" in (
        lines(files))
    assert "certificate" not in files["config.set"] and "pki" not in files["config.set"]
    # what the deploy step does: the references resolve to the keys, quoted in config.set
    resolved = resolve_secrets(files["config.set"], tmp_path)
    assert [shlex.split(line)[-1] for line in resolved.splitlines()
            if " pre-shared-key ascii-text " in line] == keys


# ---- config.set and config.xml say the same, and what the model says -------------------

# Junos CLI spellings of XML shapes (a reading of the Junos XML/CLI mapping, kept apart from
# the renderer): list entries whose keyword the CLI omits, leaves whose keyword it omits, and
# list keys that read as keywords.
KEYWORDLESS_ENTRIES = {("interfaces", "interface"), ("prefix-list", "prefix-list-item")}
KEYWORDLESS_LEAVES = {"as-number", "identity-hostname"}
KEY_KEYWORDS = {"from-zone-name": "from-zone", "to-zone-name": "to-zone"}


def xml_as_set(node: ET.Element, parent: str = "", words: tuple[str, ...] = ()
               ) -> Iterator[tuple[str, ...]]:
    """Every leaf of a Junos XML document as the words of its `set` command."""
    children = list(node)
    if parent and (parent, node.tag) not in KEYWORDLESS_ENTRIES and not (
            (not children and node.tag in (*KEYWORDLESS_LEAVES, parent))
            or (children and children[0].tag in KEY_KEYWORDS)):
        words = (*words, node.tag)
    if not children:
        yield (*words, node.text.strip()) if node.text and node.text.strip() else words
        return
    while children and children[0].tag in ("name", *KEY_KEYWORDS):
        key = children.pop(0)
        words = (*words, *([KEY_KEYWORDS[key.tag]] if key.tag in KEY_KEYWORDS else []),
                 key.text or "")
    if not children:
        yield words
    for child in children:
        yield from xml_as_set(child, node.tag, words)


def test_xml_as_set_reads_junos_shapes() -> None:
    doc = ET.fromstring(
        "<configuration><routing-options><autonomous-system><as-number>65001</as-number>"
        "</autonomous-system></routing-options><policy-options><prefix-list><name>L</name>"
        "<prefix-list-item><name>10.0.0.0/8</name></prefix-list-item></prefix-list>"
        "<policy-statement><name>P</name><term><name>t</name><then><metric><metric>5</metric>"
        "</metric><accept/></then></term></policy-statement></policy-options></configuration>")
    assert sorted(xml_as_set(doc)) == [
        ("policy-options", "policy-statement", "P", "term", "t", "then", "accept"),
        ("policy-options", "policy-statement", "P", "term", "t", "then", "metric", "5"),
        ("policy-options", "prefix-list", "L", "10.0.0.0/8"),
        ("routing-options", "autonomous-system", "65001"),
    ]


@pytest.mark.parametrize(("variant", "gateway"), CASES)
def test_set_and_xml_are_the_same_configuration(variant: str, gateway: str) -> None:
    files = render(gateway, *VARIANTS[variant])
    from_xml = sorted(xml_as_set(xml(files)))
    from_set = sorted(tuple(words) for words in parse_junos.set_commands(files["config.set"]))
    assert len(from_set) == len(set(from_set)), "a set command is repeated"
    assert from_xml == from_set


def _expected(fabric: CompiledFabric, gateway: str) -> list[RenderedTunnel]:
    """What the model says, spelled as strongSwan tokens (independent of the renderer)."""
    view = gateway_view(fabric, gateway)
    ike, esp = view.spec.crypto.ike, view.spec.crypto.esp
    integ = f"-{ike.integrity}" if ike.integrity else ""
    ike_token = f"{ike.encryption}{integ}-prf{ike.prf}-{DH_GROUPS[ike.dh_group].token}"
    esp_token = "-".join([esp.encryption, *([esp.integrity] if esp.integrity else []),
                          *([DH_GROUPS[esp.pfs_group].token] if esp.pfs_group else []),
                          *(["esn"] if esp.esn else [])])
    out = [RenderedTunnel(
        local_public_ip=str(t.local.public_ip), peer_public_ip=str(t.remote.public_ip),
        local_id=t.local.identity, remote_id=t.remote.identity,
        ike_proposals=frozenset({ike_token}), esp_proposals=frozenset({esp_token}),
        inner_interface=f"{t.local.inner_ip}/{t.tunnel.network.prefixlen}",
        bgp_local_as=t.bgp_local.asn, bgp_neighbor=str(t.bgp_remote.address),
        bgp_remote_as=t.bgp_remote.asn) for t in view.tunnels]
    return sorted(out, key=lambda t: IPv4Interface(t.inner_interface))


@pytest.mark.parametrize(("variant", "gateway"), CASES)
def test_xml_and_set_carry_the_model(variant: str, gateway: str) -> None:
    fabric = compiled(*VARIANTS[variant])
    files = render_gateway(fabric, gateway)
    from_xml = tunnels(parse_junos.from_xml(files["config.xml"]))
    assert from_xml == _expected(fabric, gateway)
    assert tunnels(parse_junos.from_set(files["config.set"])) == from_xml
