"""Multihomed gateways (Gateway.uplinks, issue 9): model, rendering on all three platforms,
YANG validity, read-back, who initiates, and the lab's cabling plan.

Golden files of tests/fabrics/mh-mixed.yaml live in tests/golden/mh-mixed; regenerate with
DCVPN_UPDATE_GOLDEN=1 and review the diff.
"""

import xml.etree.ElementTree as ET
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, GOLDEN, UPDATE_GOLDEN
from netconf_support import require_yang
from pydantic import ValidationError
from rendered import FROM_FILES, parsed

from inventory.loader import load_fabric, parse_fabric
from inventory.model import Gateway
from inventory.topology import CompiledFabric, compile_fabric
from lab.topology import plan
from tasks.errors import RenderError
from tasks.render import render_gateway
from tasks.render_strongswan import TunnelRole, role
from tasks.validate_checks import Status, check_ike
from tasks.validate_expect import expect_fabric
from tasks.validate_strongswan import parse_sas

FABRICS = Path(__file__).resolve().parent / "fabrics"
MIXED = FABRICS / "mh-mixed.yaml"
LAB = FABRICS / "mh-lab.yaml"
MH = "mhs1-gw1"
MH_ADDRESSES = ("203.0.113.41", "198.51.100.41", "192.0.2.41")


def _compiled(path: Path = MIXED) -> CompiledFabric:
    return compile_fabric(load_fabric(path).fabric)


def _edited(path: Path, edit: Callable[[dict[str, object]], None]) -> CompiledFabric:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    return compile_fabric(parse_fabric(yaml.safe_dump(data), path.name).fabric)


def _conns(swanctl: str) -> dict[str, dict[str, str]]:
    """connection name -> its top-level settings (enough for addresses and mobike)."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    depth = 0
    for raw in swanctl.splitlines():
        line = raw.strip()
        if line.endswith("{"):
            depth += 1
            if depth == 2:
                current = out.setdefault(line[:-1].strip(), {})
        elif line == "}":
            depth -= 1
        elif depth == 2 and current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return out


# ---- model -------------------------------------------------------------------------------

def test_uplinks_default_to_none_and_addresses_put_public_ip_first() -> None:
    base = {"name": "g1", "platform": "strongswan", "transport": "ssh", "host": "h",
            "public_ip": "192.0.2.1"}
    assert Gateway.model_validate(base).uplinks == ()
    gw = Gateway.model_validate({**base, "uplinks": ["192.0.2.2", "192.0.2.3"]})
    assert gw.addresses == (IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2"),
                            IPv4Address("192.0.2.3"))
    with pytest.raises(ValidationError, match="uplinks"):
        Gateway.model_validate({**base, "uplinks": ["192.0.2.300"]})


def test_example_fabrics_have_no_multihomed_endpoint() -> None:
    """An absent key changes nothing: no endpoint carries uplinks, every tunnel keeps
    mobike = no (the golden files of these fabrics pin the bytes)."""
    for name in ("lab3.yaml", "acme-hybrid.yaml"):
        compiled = compile_fabric(load_fabric(EXAMPLES / name).fabric)
        assert all(not e.multihomed for t in compiled.tunnels for e in t.endpoints)
        for _, gw in compiled.gateways():
            if str(gw.platform) == "strongswan":
                conns = _conns(render_gateway(compiled, gw.name)["swanctl.conf"])
                assert {c["mobike"] for c in conns.values()} == {"no"}


# ---- strongSwan --------------------------------------------------------------------------

def test_multihomed_gateway_lists_its_addresses_and_enables_mobike_where_negotiable() -> None:
    """Every connection answers on every address; MOBIKE only towards strongSwan (IOS-XE and
    JunOS never announce it, so `yes` there would only float IKE to port 4500)."""
    conns = _conns(render_gateway(_compiled(), MH)["swanctl.conf"])
    assert {name: (c["local_addrs"], c["remote_addrs"], c["mobike"])
            for name, c in conns.items()} == {
        "mhs1-mhs2-p0": (",".join(MH_ADDRESSES), "203.0.113.42", "yes"),
        "mhs1-mhj1-p0": (",".join(MH_ADDRESSES), "203.0.113.43", "no"),
        "mhs1-mhi1-p0": (",".join(MH_ADDRESSES), "203.0.113.44", "no"),
    }


def test_peer_lists_every_address_of_a_multihomed_gateway_only() -> None:
    conns = _conns(render_gateway(_compiled(), "mhs2-gw1")["swanctl.conf"])
    to_mh = conns["mhs1-mhs2-p0"]
    assert to_mh["remote_addrs"] == ",".join(MH_ADDRESSES)
    assert to_mh["local_addrs"] == "203.0.113.42"
    assert to_mh["mobike"] == "yes"
    for name in ("mhs2-mhj1-p0", "mhs2-mhi1-p0"):
        assert conns[name]["mobike"] == "no"
        assert "," not in conns[name]["remote_addrs"]


def test_multihomed_end_initiates_even_from_the_higher_site_id() -> None:
    """Only a MOBIKE initiator moves an IKE SA (RFC 4555): mhc1 (site 3) initiates."""
    compiled = _compiled(LAB)
    for tunnel in compiled.tunnels:
        a, b = tunnel.endpoints
        mh = a if a.multihomed else b if b.multihomed else None
        if mh is None:
            assert role(a, b) is TunnelRole.INITIATOR  # the lower site id, as before
            continue
        other = b if mh is a else a
        assert mh.site == "mhc1"
        assert role(mh, other) is TunnelRole.INITIATOR
        assert role(other, mh) is TunnelRole.RESPONDER

    def single_homed(data: dict[str, object]) -> None:
        sites = data["sites"]
        assert isinstance(sites, list)
        sites[2]["gateways"][0].pop("uplinks")

    plain = _edited(LAB, single_homed)
    for tunnel in plain.tunnels:
        a, b = tunnel.endpoints
        assert role(a, b) is TunnelRole.INITIATOR  # mhc1 (site 3) responds again


# ---- JunOS and IOS-XE --------------------------------------------------------------------

def _junos_gateway_of(files: dict[str, str], peer_ip: str) -> ET.Element:
    root = ET.fromstring(files["config.xml"])
    found = [g for g in root.iterfind("security/ike/gateway")
             if g.findtext("address") == peer_ip]
    assert len(found) == 1
    return found[0]


def test_junos_lists_the_multihomed_peer_as_primary_and_backups() -> None:
    files = render_gateway(_compiled(), "mhj1-gw1")
    gateway = _junos_gateway_of(files, MH_ADDRESSES[0])
    assert tuple(a.text for a in gateway.iterfind("address")) == MH_ADDRESSES
    name = gateway.findtext("name")
    assert tuple(line.rsplit(" ", 1)[1] for line in files["config.set"].splitlines()
                 if line.startswith(f"set security ike gateway {name} address ")) == MH_ADDRESSES
    single = _junos_gateway_of(files, "203.0.113.42")
    assert [a.text for a in single.iterfind("address")] == ["203.0.113.42"]


def test_junos_refuses_more_addresses_than_its_leaf_list_takes() -> None:
    def six(data: dict[str, object]) -> None:
        sites = data["sites"]
        assert isinstance(sites, list)
        sites[0]["gateways"][0]["uplinks"] = [f"198.51.100.{n}" for n in range(41, 46)]

    with pytest.raises(RenderError, match="at most 5 addresses of peer mhs1-gw1"):
        render_gateway(_edited(MIXED, six), "mhj1-gw1")


def test_iosxe_keeps_the_primary_address_only() -> None:
    files = render_gateway(_compiled(), "mhi1-gw1")
    assert f" tunnel destination {MH_ADDRESSES[0]}" in files["config.cli"].splitlines()
    for text in files.values():
        assert MH_ADDRESSES[1] not in text and MH_ADDRESSES[2] not in text


@pytest.fixture(scope="module")
def yang() -> None:
    require_yang()


def test_vendor_payloads_validate_against_the_yang(yang: None) -> None:
    from lab.yang.iosxe import validate_iosxe
    from lab.yang.junos import validate_junos

    compiled = _compiled()
    junos = render_gateway(compiled, "mhj1-gw1")["config.xml"]
    assert junos.count(f"<address>{MH_ADDRESSES[1]}</address>") == 1
    assert validate_junos(junos).errors == ()
    assert validate_iosxe(render_gateway(compiled, "mhi1-gw1")["config.xml"], "17.15").errors == ()


# ---- read back, golden ---------------------------------------------------------------------

def test_both_ends_read_back_the_primary_addresses() -> None:
    """The running-config parsers take the primary of a list, so `dcvpn diff` compares
    public_ip with public_ip on both ends of every tunnel."""
    compiled = _compiled()
    read = {gw.name: parsed(str(gw.platform), render_gateway(compiled, gw.name))
            for _, gw in compiled.gateways()}
    for tunnel in compiled.tunnels:
        a, b = tunnel.endpoints
        for here, there in ((a, b), (b, a)):
            found = [t for t in read[here.gateway] if t.peer_public_ip == str(there.public_ip)]
            assert len(found) == 1, (tunnel.name, here.gateway)
            assert found[0].local_public_ip == str(here.public_ip)
    intent = FROM_FILES["strongswan"](render_gateway(compiled, MH))
    assert intent["public_ip"] == MH_ADDRESSES[0]


def _golden_cases() -> list[str]:
    return [gw.name for _, gw in _compiled().gateways()]


@pytest.mark.parametrize("gateway", _golden_cases())
def test_render_matches_golden(gateway: str) -> None:
    files = render_gateway(_compiled(), gateway)
    folder = GOLDEN / "mh-mixed" / gateway
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


# ---- validation and the lab plan -----------------------------------------------------------

def test_an_sa_on_the_uplink_address_passes_the_ike_check() -> None:
    """The strongSwan reader finds SAs by connection name: one that MOBIKE moved to an
    uplink address is as good as one on public_ip."""
    compiled = _compiled(LAB)
    expect = next(t for t in expect_fabric(compiled)["mha1-gw1"].tunnels
                  if t.peer_gateway == "mhc1-gw1")
    sa = {expect.name: {
        "state": "ESTABLISHED", "remote-host": "192.0.2.133", "remote-id": expect.remote_id,
        "encr-alg": "AES_GCM_16", "encr-keysize": "256", "prf-alg": "PRF_HMAC_SHA2_384",
        "dh-group": "ECP_384", "child-sas": {}}}
    result = check_ike(expect, parse_sas([sa]), {})
    assert result.status is Status.PASS, result.observed


def test_lab_cables_a_second_uplink_with_source_routing() -> None:
    lab = {g.name: g for g in plan(_compiled(LAB)).gateways}
    mh = lab["mhc1-gw1"]
    assert [(p.device, str(p.address), p.metric) for p in mh.ports] == [
        ("ul0", "192.0.2.33", 0), ("ul1", "192.0.2.133", 100)]
    assert mh.ports[1].port != mh.ports[0].port
    commands = mh.cabling(1500)
    for peer in ("192.0.2.31", "192.0.2.32"):
        assert f"route add {peer}/32 dev ul0" in commands
        assert f"route add {peer}/32 dev ul1 metric 100" in commands
        assert f"route add {peer}/32 dev ul0 table 101" in commands
        assert f"route add {peer}/32 dev ul1 table 102" in commands
    assert "rule add from 192.0.2.33/32 lookup 101 pref 1000" in commands
    assert "rule add from 192.0.2.133/32 lookup 102 pref 1001" in commands
    assert "route add unreachable default table 101" in commands
    # a single-homed gateway: one uplink, host routes to every address of its peers, no tables
    plain = lab["mha1-gw1"]
    assert [p.device for p in plain.ports] == ["ul0"]
    assert [str(a) for a in plain.peers] == ["192.0.2.32", "192.0.2.33", "192.0.2.133"]
    assert not [c for c in plain.cabling(1500) if "table" in c or c.startswith("rule")]
