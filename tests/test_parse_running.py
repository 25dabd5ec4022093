"""The parsers of tasks/parse_<platform>.py on configurations a device really holds: dcvpn's
part read back equals the model (nothing else counts), and a hand edit on one tunnel is
reported on that tunnel only."""

import pytest
from conftest import EXAMPLES

from inventory.loader import load_fabric
from inventory.topology import CompiledFabric, compile_fabric
from tasks import parse_iosxe, parse_junos, parse_strongswan
from tasks.intent import gateway_intent
from tasks.render import render_gateway
from tasks.running_intent import ParseError, ReadBack, device_view
from tasks.semantic_diff import Change, gateway_changes

IOSXE_FOREIGN = """\
hostname fra1-gw1
interface GigabitEthernet1
 description mgmt
 ip address 192.0.2.10 255.255.255.0
!
interface Tunnel900
 description site-owned GRE
 ip address 192.0.2.129 255.255.255.252
 tunnel source 203.0.113.1
 tunnel destination 192.0.2.200
!
ip prefix-list SITE-LAN seq 5 permit 10.99.0.0/16
route-map SITE-IN permit 10
 match ip address prefix-list SITE-LAN
!
"""
IOSXE_FOREIGN_BGP = (" neighbor 192.0.2.130 remote-as 65099\n"
                     " neighbor 192.0.2.130 description site\n")


def acme() -> CompiledFabric:
    return compile_fabric(load_fabric(EXAMPLES / "acme-hybrid.yaml").fabric)


def changes(compiled: CompiledFabric, gateway: str, running: dict[str, object],
            readback: ReadBack) -> list[Change]:
    return gateway_changes(gateway, device_view(running, readback),
                           device_view(gateway_intent(compiled, gateway), readback))


def test_iosxe_reads_only_dcvpns_part_of_a_running_config() -> None:
    compiled = acme()
    cli = render_gateway(compiled, "fra1-gw1")["config.cli"]
    running = IOSXE_FOREIGN + cli.replace(" bgp log-neighbor-changes\n",
                                          " bgp log-neighbor-changes\n" + IOSXE_FOREIGN_BGP)
    intent = parse_iosxe.from_running(running)
    assert intent == parse_iosxe.from_cli(cli)
    assert "192.0.2.130" not in intent["bgp_neighbors"]
    assert changes(compiled, "fra1-gw1", intent, parse_iosxe.READBACK) == []


def test_iosxe_hand_edit_on_one_tunnel_is_named_on_that_tunnel() -> None:
    compiled = acme()
    cli = render_gateway(compiled, "fra1-gw1")["config.cli"]
    head, sep, tail = cli.partition("crypto ipsec profile DCVPN-IPSEC-fra1-ams1-p0\n")
    edited = head + sep + tail.replace("lifetime seconds 3600", "lifetime seconds 1800", 1)
    found = changes(compiled, "fra1-gw1", parse_iosxe.from_cli(edited), parse_iosxe.READBACK)
    assert found == [Change("fra1-gw1", "tunnel fra1-ams1-p0", "ESP lifetime 30m -> 1h")]


def test_iosxe_xml_and_cli_read_the_same() -> None:
    compiled = acme()
    for gw in ("fra1-gw1", "fra1-gw2", "par1-gw1"):
        files = render_gateway(compiled, gw)
        assert parse_iosxe.from_running(files["config.xml"]) == parse_iosxe.from_cli(
            files["config.cli"])


def test_a_deleted_tunnel_and_neighbor_show_as_new() -> None:
    compiled = acme()
    xml = render_gateway(compiled, "sjc1-gw1")["config.xml"]
    intent = parse_junos.from_xml(xml)
    (name, tunnel), *_ = intent["tunnels"].items()
    del intent["tunnels"][name]
    del intent["bgp_neighbors"][tunnel["remote_inner"]]
    found = {(c.scope, c.text) for c in changes(compiled, "sjc1-gw1", intent,
                                               parse_junos.READBACK)}
    assert found == {(f"tunnel {name}", "new tunnel"),
                     (f"neighbor {tunnel['remote_inner']}", "new BGP neighbor")}


def test_strongswan_hand_edit_is_found() -> None:
    compiled = acme()
    files = render_gateway(compiled, "ams1-gw1")
    assert changes(compiled, "ams1-gw1", parse_strongswan.from_files(files),
                   parse_strongswan.READBACK) == []
    files["frr.conf"] = files["frr.conf"].replace("neighbor 169.254.0.41 remote-as 65004",
                                                  "neighbor 169.254.0.41 remote-as 65099")
    found = changes(compiled, "ams1-gw1", parse_strongswan.from_files(files),
                    parse_strongswan.READBACK)
    assert found == [Change("ams1-gw1", "neighbor 169.254.0.41", "remote as 65099 -> 65004")]


def test_a_broken_reference_names_the_object() -> None:
    xml = render_gateway(acme(), "sjc1-gw1")["config.xml"]
    broken = xml.replace("<ike-policy>DCVPN-IKE-POL-", "<ike-policy>GONE-", 1)
    with pytest.raises(ParseError, match=r"refers to ike policy 'GONE-"):
        parse_junos.from_xml(broken)
    with pytest.raises(ParseError, match="not well-formed XML"):
        parse_junos.from_running("<configuration><security>")



def test_strongswan_running_bundle_reads_like_its_files() -> None:
    from drivers.strongswan_bundle import pack
    from inventory.model import Platform
    from tasks.read_back import reader_for

    compiled = acme()
    files = render_gateway(compiled, "nyc1-gw1")
    reader = reader_for(Platform.STRONGSWAN)
    assert reader is not None
    running = reader.parse(pack(files))
    assert running == parse_strongswan.from_files(files)
    assert changes(compiled, "nyc1-gw1", running, reader.readback) == []
    empty = reader.parse(pack({}))  # a gateway dcvpn never configured
    assert empty["tunnels"] == {} and empty["asn"] is None
