"""IOS-XE renderer: payloads validate against the vendor YANG of each gateway's release,
broken payloads do not, one model change makes the expected rendered change, and the CLI and
the XML carry the same intent as the model."""

import copy
import os
import re
from collections.abc import Callable
from functools import cache
from ipaddress import IPv4Interface
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES
from rendered import RenderedTunnel, tunnels

from inventory.crypto import DH_GROUPS
from inventory.model import Fabric
from inventory.topology import CompiledFabric, compile_fabric
from lab.yang import yang_dir
from tasks import parse_iosxe
from tasks.errors import RenderError
from tasks.render import render_gateway
from tasks.render_context import SECRET_PREFIX, gateway_view, secret_ref

Mutation = Callable[[dict[str, Any]], None]
IOSXE_GATEWAYS = ("fra1-gw1", "fra1-gw2", "par1-gw1")  # 17.15 hub, 17.12 hub, 17.15 spoke


@cache
def _acme() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "acme-hybrid.yaml").read_text())
    return data


def compiled(*mutations: Mutation) -> CompiledFabric:
    data = copy.deepcopy(_acme())
    for mutate in mutations:
        mutate(data)
    return compile_fabric(Fabric.model_validate(data))


def render(gateway: str, *mutations: Mutation) -> dict[str, str]:
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
    """Every other code path at once: CBC + HMAC, RSA certificates, UDP encapsulation, /30."""
    data["fabric"].update(crypto="cbc", auth={"method": "certificate", "key_type": "rsa-3072"},
                          data_plane="libipsec", link_prefix=30)


VARIANTS: dict[str, tuple[Mutation, ...]] = {
    "example": (), "psk": (psk,), "ibgp": (ibgp,), "cbc-rsa-libipsec": (cbc_rsa_libipsec,),
}


# ---- YANG validation -------------------------------------------------------------------

@pytest.fixture(scope="module")
def validate() -> Callable[[str, str], tuple[str, ...]]:
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
    from lab.yang.iosxe import validate_iosxe

    return lambda xml, version: validate_iosxe(xml, version).errors


@pytest.mark.parametrize("gateway", IOSXE_GATEWAYS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_config_xml_validates_against_its_release(
        validate: Callable[[str, str], tuple[str, ...]], variant: str, gateway: str) -> None:
    fabric = compiled(*VARIANTS[variant])
    version = gateway_view(fabric, gateway).os_version
    assert version == {"fra1-gw2": "17.12"}.get(gateway, "17.15")
    errors = validate(render_gateway(fabric, gateway)["config.xml"], version)
    assert errors == ()


def test_release_choice_matters(validate: Callable[[str, str], tuple[str, ...]]) -> None:
    xml = render("fra1-gw1")["config.xml"]  # 17.15 spelling
    assert validate(xml, "17.15") == ()
    errors = validate(xml, "17.12")
    assert errors and ("seconds-case" in errors[0] or "ipv4-mode" in errors[0])


BREAKAGES = {
    # what is renamed -> (fabric variant, old text, new text, expected in the first error)
    "ipsec profile -> ikev2 profile": (
        (), "<ikev2-profile>DCVPN-IKE-", "<ikev2-profile>NOPE-", "ikev2 profile doesn't exist"),
    "ipsec profile -> transform-set": (
        (), "<transform-set>DCVPN-ESP</transform-set>", "<transform-set>NOPE</transform-set>",
        "transform set doesn't exist"),
    "ikev2 profile -> keyring": (
        (psk,), "<keyring><local><name>DCVPN-KEYRING", "<keyring><local><name>NOPE",
        'invalid leafref value "nope"'),
    "ikev2 policy -> proposal": (
        (), "<proposals>DCVPN-IKE-PROP", "<proposals>NOPE", "complete proposals"),
    "tunnel -> ipsec profile": (  # a `must` in 17.12 only; the project's check in 17.15
        (), "<profile-option><name>DCVPN-IPSEC-", "<profile-option><name>NOPE-",
        "ipsec profile"),
    "ikev2 profile -> trustpoint": (
        (), "<trust-points><name>DCVPN-acme", "<trust-points><name>NOPE", "trustpoint 'nope'"),
    "bgp neighbor -> route-map": (
        (), "<route-map-name>DCVPN-IN-", "<route-map-name>NOPE-", "route-map 'nope-"),
    "route-map -> prefix-list": (  # prefix-list (17.12) or prefix-list-ordered (17.15)
        (), ">DCVPN-FABRIC</prefix-list", ">NOPE</prefix-list", "prefix-list 'nope'"),
    "pfs group enum": (
        (), "<group>group20</group>", "<group>group99</group>", 'enumeration value "group99"'),
}


@pytest.mark.parametrize("gateway", ["fra1-gw1", "fra1-gw2"])
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_broken_payload_is_rejected(validate: Callable[[str, str], tuple[str, ...]],
                                    breakage: str, gateway: str) -> None:
    mutations, old, new, reason = BREAKAGES[breakage]
    fabric = compiled(*mutations)
    xml = render_gateway(fabric, gateway)["config.xml"]
    version = gateway_view(fabric, gateway).os_version
    assert version is not None
    assert validate(xml, version) == ()
    broken = xml.replace(old, new, 1)
    assert broken != xml, f"{old!r} not in the payload"
    errors = validate(broken, version)
    assert errors and reason in errors[0].lower()


# ---- one model field, one rendered change ----------------------------------------------

def test_esp_lifetime() -> None:
    change = _set("fabric.crypto.esp.lifetime", "2h")
    assert "set security-association lifetime seconds 3600" in render("fra1-gw1")["config.cli"]
    assert "set security-association lifetime seconds 7200" in render(
        "fra1-gw1", change)["config.cli"]
    assert "<seconds-case>7200</seconds-case>" in render("fra1-gw1", change)["config.xml"]
    assert "<seconds>7200</seconds>" in render("fra1-gw2", change)["config.xml"]  # 17.12


def test_ike_lifetime() -> None:
    files = render("fra1-gw1", _set("fabric.crypto.ike.lifetime", "4h"))
    assert " lifetime 14400\n" in files["config.cli"]
    assert "<lifetime><seconds>14400</seconds></lifetime>" in files["config.xml"]


def test_dh_group() -> None:
    before = render("fra1-gw1")
    after = render("fra1-gw1", _set("fabric.crypto.ike.dh_group", 19),
                   _set("fabric.crypto.esp.pfs_group", 19))
    assert " group 20\n" in before["config.cli"] and "<group><twenty/></group>" in before[
        "config.xml"]
    assert " group 19\n" in after["config.cli"] and "<group><nineteen/></group>" in after[
        "config.xml"]
    assert " set pfs group19\n" in after["config.cli"]
    assert "<pfs><group>group19</group></pfs>" in after["config.xml"]


def test_no_pfs() -> None:
    files = render("fra1-gw1", _set("fabric.crypto.esp.pfs_group", "none"))
    assert "set pfs" not in files["config.cli"] and "<pfs>" not in files["config.xml"]


def test_os_version_picks_the_tunnel_mode_element() -> None:
    assert "<ipsec><ipv4-mode/></ipsec>" in render("fra1-gw1")["config.xml"]
    as_1712 = render("fra1-gw1", _gateway("fra1-gw1", os_version="17.12"))
    assert "<ipsec><ipv4/></ipsec>" in as_1712["config.xml"]
    assert "ipv4-mode" not in as_1712["config.xml"]
    assert "<prefix-list>DCVPN-FABRIC</prefix-list>" in as_1712["config.xml"]
    # the CLI is the same on both releases
    assert as_1712["config.cli"] == render("fra1-gw1")["config.cli"]


def test_default_os_version_is_17_15() -> None:
    assert "<ipv4-mode/>" in render("fra1-gw2", _gateway("fra1-gw2", os_version=None))[
        "config.xml"]


def test_unknown_os_version_is_refused() -> None:
    with pytest.raises(RenderError, match=r"16\.9"):
        render("fra1-gw1", _gateway("fra1-gw1", os_version="16.9"))


def test_cbc_proposal_has_integrity() -> None:
    files = render("fra1-gw1", _set("fabric.crypto", "cbc"))
    cli = files["config.cli"]
    assert " encryption aes-cbc-256\n integrity sha384\n prf sha384\n" in cli
    assert "crypto ipsec transform-set DCVPN-ESP esp-aes 256 esp-sha384-hmac\n" in cli
    assert "<esp>esp-aes</esp>" in files["config.xml"]
    assert "<esp-hmac>esp-sha384-hmac</esp-hmac>" in files["config.xml"]


def test_esp_encryption() -> None:
    files = render("fra1-gw1", _set("fabric.crypto.esp.encryption", "aes128gcm16"))
    assert "crypto ipsec transform-set DCVPN-ESP esp-gcm 128\n" in files["config.cli"]
    assert "<key-bit>128</key-bit>" in files["config.xml"]


def test_certificate_key_type() -> None:
    ecdsa = render("fra1-gw1")["config.cli"]
    assert " authentication local ecdsa-sig\n" in ecdsa and " eckeypair DCVPN-acme\n" in ecdsa
    assert " pki trustpoint DCVPN-acme\n" in ecdsa
    rsa = render("fra1-gw1", _set("fabric.auth", {"method": "certificate",
                                                  "key_type": "rsa-4096"}))
    assert " authentication remote rsa-sig\n" in rsa["config.cli"]
    assert " rsakeypair DCVPN-acme\n" in rsa["config.cli"]
    assert "<rsakeypair><key-label>DCVPN-acme</key-label></rsakeypair>" in rsa["config.xml"]


def test_bfd_timers() -> None:
    files = render("fra1-gw1", _set("fabric.bgp.bfd", {"interval_ms": 500, "multiplier": 5}))
    assert " bfd interval 500 min_rx 500 multiplier 5\n" in files["config.cli"]
    assert "<msecs>500</msecs><min_rx>500</min_rx><multiplier>5</multiplier>" in files[
        "config.xml"]


def test_value_outside_the_yang_range_is_refused() -> None:
    with pytest.raises(RenderError, match="BFD multiplier 2"):
        render("fra1-gw1", _set("fabric.bgp.bfd", {"interval_ms": 300, "multiplier": 2}))


def test_esn_is_refused() -> None:
    with pytest.raises(RenderError, match="ESN"):
        render("fra1-gw1", _set("fabric.crypto.esp.esn", True))


def test_path_mtu_sets_ip_mtu_and_mss() -> None:
    fabric = compiled(_set("fabric.mtu", {"path_mtu": 1400}))
    tunnel = gateway_view(fabric, "fra1-gw1").tunnels[0].tunnel
    files = render_gateway(fabric, "fra1-gw1")
    assert tunnel.mtu == 1346
    assert f" ip mtu {tunnel.mtu}\n ip tcp adjust-mss {tunnel.mss}\n" in files["config.cli"]
    assert f"<mtu>{tunnel.mtu}</mtu>" in files["config.xml"]


def test_udp_encapsulation_forces_nat_t() -> None:
    assert "nat force-encap" not in render("fra1-gw1")["config.cli"]
    # only the tunnel to the strongSwan site, whose kernel-libipsec always UDP-encapsulates ESP
    files = render("fra1-gw1", _set("fabric.data_plane", "libipsec"))
    profile = files["config.cli"].split("crypto ikev2 profile DCVPN-IKE-fra1-ams1-p0\n")[1]
    assert " nat force-encap\n" in profile.split("!\n", 1)[0]
    assert files["config.cli"].count(" nat force-encap\n") == 1
    assert files["config.xml"].count("<nat><force-encap/></nat>") == 1


def test_link_prefix_30_sets_the_mask() -> None:
    cli = render("fra1-gw1", _set("fabric.link_prefix", 30))["config.cli"]
    assert " ip address 169.254.0.1 255.255.255.252\n" in cli


def test_interface_numbers_and_tunnel_endpoints() -> None:
    cli = render("fra1-gw1")["config.cli"]
    block = cli.split("interface Tunnel30\n", 1)[1].split("!\n", 1)[0]  # to ams1 (id 3), plane 0
    assert " tunnel source 203.0.113.1\n" in block
    assert " tunnel destination 203.0.113.10\n" in block
    assert " tunnel protection ipsec profile DCVPN-IPSEC-fra1-ams1-p0\n" in block


def test_prefix_policy_announces_own_and_accepts_fabric() -> None:
    spoke = render("par1-gw1")["config.cli"]
    assert "ip prefix-list DCVPN-OWN seq 10 permit 10.4.0.0/16\n" in spoke
    assert "ip prefix-list DCVPN-OWN seq 20 permit 172.16.4.0/22\n" in spoke
    fabric_list = re.findall(r"ip prefix-list DCVPN-FABRIC seq \d+ permit (\S+)", spoke)
    assert fabric_list == ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.5.0.0/16",
                           "10.6.0.0/16"]
    assert " network 10.4.0.0 mask 255.255.0.0\n  network 172.16.4.0 mask 255.255.252.0\n" in spoke
    # a spoke announces only its own prefixes, a hub (export: fabric) also passes the fabric's
    assert "route-map DCVPN-OUT-OWN-MED0 permit 10\n match ip address prefix-list DCVPN-OWN\n" \
        in spoke
    hub = render("fra1-gw1")["config.cli"]
    assert "match ip address prefix-list DCVPN-OWN DCVPN-FABRIC\n" in hub
    assert "route-map DCVPN-IN-LP200 permit 10\n match ip address prefix-list DCVPN-FABRIC\n" \
        in hub


def test_plane_sets_local_pref_and_med() -> None:
    plane1 = render("fra1-gw2")["config.cli"]  # every fra1-gw2 tunnel is plane 1
    assert " set local-preference 190\n" in plane1 and " set metric 10\n" in plane1
    assert " route-map DCVPN-IN-LP190 in\n" in plane1
    spoke = render("par1-gw1")["config.cli"]  # plane 0 to fra1-gw1 and ams1, plane 1 to fra1-gw2
    assert "neighbor 169.254.0.24 route-map DCVPN-IN-LP200 in" in spoke
    assert "neighbor 169.254.0.26 route-map DCVPN-IN-LP190 in" in spoke
    assert "neighbor 169.254.0.26 route-map DCVPN-OUT-OWN-MED10 out" in spoke


def test_bgp_timers_and_max_prefix() -> None:
    files = render("fra1-gw1", _set("fabric.bgp.timers", {"keepalive": 5, "hold": 15}),
                   _set("fabric.bgp.max_prefixes", 50))
    assert " neighbor 169.254.0.9 timers 5 15\n" in files["config.cli"]
    assert "  neighbor 169.254.0.9 maximum-prefix 50\n" in files["config.cli"]
    assert "<max-prefix-no>50</max-prefix-no>" in files["config.xml"]


def test_ebgp_has_no_ibgp_knobs() -> None:
    cli = render("fra1-gw1")["config.cli"]
    assert "next-hop-self" not in cli and "route-reflector-client" not in cli
    assert " neighbor 169.254.0.9 remote-as 65003\n" in cli


def test_ibgp_route_reflector_on_hubs() -> None:
    hub = render("fra1-gw1", ibgp)["config.cli"]
    assert hub.startswith("crypto pki") and "router bgp 65000\n" in hub
    # par1 and ams1 are rr clients of the hub; the other hub (iad1) is a plain peer
    for spoke in ("169.254.0.9", "169.254.0.25"):
        assert f"  neighbor {spoke} route-reflector-client\n" in hub
        assert f"  neighbor {spoke} next-hop-self all\n" in hub
    assert "neighbor 169.254.0.1 route-reflector-client" not in hub
    assert " neighbor 169.254.0.1 remote-as 65000\n" in hub
    spoke_cli = render("par1-gw1", ibgp)["config.cli"]
    assert "route-reflector-client" not in spoke_cli
    assert "  neighbor 169.254.0.24 next-hop-self\n" in spoke_cli
    assert "<route-reflector-client/>" in render("fra1-gw1", ibgp)["config.xml"]


# ---- secrets ---------------------------------------------------------------------------

def test_psk_is_only_a_reference() -> None:
    fabric = compiled(psk)
    files = render_gateway(fabric, "fra1-gw1")
    names = [t.name for t in gateway_view(fabric, "fra1-gw1").tunnels]
    keys = re.findall(r"pre-shared-key (\S+)", files["config.cli"])
    assert keys == [secret_ref("psk", n) for n in names]
    xml_keys = re.findall(r"<pre-shared-key><key>([^<]*)</key>", files["config.xml"])
    assert xml_keys == keys
    assert all(k.startswith(SECRET_PREFIX) for k in keys)
    assert " authentication local pre-share\n keyring local DCVPN-KEYRING\n" in files["config.cli"]
    assert "trustpoint" not in files["config.cli"]


def test_certificate_mode_has_no_keyring() -> None:
    files = render("fra1-gw1")
    assert "pre-shared-key" not in files["config.cli"] + files["config.xml"]
    assert "keyring" not in files["config.cli"] + files["config.xml"]


# ---- the files say what the model says -------------------------------------------------

def _expected(fabric: CompiledFabric, gateway: str) -> list[RenderedTunnel]:
    """What the model says, spelled as strongSwan tokens (independent of the renderer)."""
    view = gateway_view(fabric, gateway)
    ike, esp = view.spec.crypto.ike, view.spec.crypto.esp
    integ = f"-{ike.integrity}" if ike.integrity else ""
    ike_token = f"{ike.encryption}{integ}-prf{ike.prf}-{DH_GROUPS[ike.dh_group].token}"
    esp_token = esp.encryption + (f"-{esp.integrity}" if esp.integrity else "") + (
        f"-{DH_GROUPS[esp.pfs_group].token}" if esp.pfs_group else "")
    out = [RenderedTunnel(
        local_public_ip=str(t.local.public_ip), peer_public_ip=str(t.remote.public_ip),
        local_id=t.local.identity, remote_id=t.remote.identity,
        ike_proposals=frozenset({ike_token}), esp_proposals=frozenset({esp_token}),
        inner_interface=f"{t.local.inner_ip}/{t.tunnel.network.prefixlen}",
        bgp_local_as=t.bgp_local.asn, bgp_neighbor=str(t.bgp_remote.address),
        bgp_remote_as=t.bgp_remote.asn) for t in view.tunnels]
    return sorted(out, key=lambda t: IPv4Interface(t.inner_interface))


@pytest.mark.parametrize("gateway", IOSXE_GATEWAYS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cli_and_xml_carry_the_model(variant: str, gateway: str) -> None:
    fabric = compiled(*VARIANTS[variant])
    files = render_gateway(fabric, gateway)
    from_cli = tunnels(parse_iosxe.from_cli(files["config.cli"]))
    assert from_cli == _expected(fabric, gateway)
    assert tunnels(parse_iosxe.from_xml(files["config.xml"])) == from_cli
