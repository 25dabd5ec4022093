"""Both ends of every tunnel agree, read back from the two endpoints' rendered files.

Each platform's files are parsed by tasks/parse_<platform>.py (the parsers `dcvpn diff` reads
running configurations with), written independently of the renderers' tables: proposals
intersect, identities match the peer's expected remote identity, inner addresses are the two
ends of one link, BGP ASNs and neighbor addresses mirror.
"""

from ipaddress import IPv4Interface, IPv4Network
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES
from rendered import FROM_FILES, RenderedTunnel, parsed

from inventory.loader import parse_fabric
from inventory.topology import CompiledFabric, compile_fabric
from tasks.render import render_gateway


def _variant(name: str, **changes: Any) -> CompiledFabric:
    data = yaml.safe_load((EXAMPLES / name).read_text())
    for key, value in changes.items():
        data["fabric"][key] = value
    if data["fabric"].get("bgp", {}).get("mode") == "ibgp":
        for s in data["sites"]:
            s.pop("asn", None)
    return compile_fabric(parse_fabric(yaml.safe_dump(data), name).fabric)


VARIANTS = {
    "lab3": lambda: _variant("lab3.yaml"),
    "lab3-xfrm-psk": lambda: _variant("lab3.yaml", data_plane="xfrm", auth={"method": "psk"}),
    "acme": lambda: _variant("acme-hybrid.yaml"),
    "acme-psk-cbc": lambda: _variant("acme-hybrid.yaml", auth={"method": "psk"}, crypto="cbc"),
    "acme-ibgp": lambda: _variant("acme-hybrid.yaml",
                                  bgp={"mode": "ibgp", "asn": 65000}),
    # fabric.bgp.accept: aggregate import ranges instead of every site prefix
    "acme-accept": lambda: _variant("acme-hybrid.yaml", bgp={
        "mode": "ebgp", "accept": ["10.0.0.0/8", "172.16.0.0/12"]}),
    "lab3-accept-hub": lambda: _variant("lab3.yaml", topology="hub_spoke", hubs=["ams1"],
                                        bgp={"mode": "ebgp", "accept": ["10.0.0.0/8"]}),
}


def _parsed(compiled: CompiledFabric, gateway: str, platform: str) -> list[RenderedTunnel]:
    return parsed(platform, render_gateway(compiled, gateway))


def _find(tunnels: list[RenderedTunnel], local: str, peer: str) -> RenderedTunnel:
    found = [t for t in tunnels if t.local_public_ip == local and t.peer_public_ip == peer]
    assert len(found) == 1, f"expected one tunnel {local} -> {peer}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_both_ends_of_every_tunnel_agree(variant: str) -> None:
    compiled = VARIANTS[variant]()
    cache: dict[str, list[RenderedTunnel]] = {}
    for tunnel in compiled.tunnels:
        a, b = tunnel.endpoints
        for e in (a, b):
            if e.gateway not in cache:
                cache[e.gateway] = _parsed(compiled, e.gateway, str(e.platform))
        ra = _find(cache[a.gateway], str(a.public_ip), str(b.public_ip))
        rb = _find(cache[b.gateway], str(b.public_ip), str(a.public_ip))
        where = f"{variant} {tunnel.name} ({a.platform} <-> {b.platform})"
        assert ra.ike_proposals & rb.ike_proposals, f"{where}: no common IKE proposal"
        assert ra.esp_proposals & rb.esp_proposals, f"{where}: no common ESP proposal"
        assert ra.remote_id == rb.local_id, f"{where}: {a.gateway} expects another identity"
        assert rb.remote_id == ra.local_id, f"{where}: {b.gateway} expects another identity"
        ia, ib = IPv4Interface(ra.inner_interface), IPv4Interface(rb.inner_interface)
        assert ia.network == ib.network == tunnel.network, f"{where}: not one link"
        assert ia.ip != ib.ip
        assert ra.bgp_neighbor == str(ib.ip) and rb.bgp_neighbor == str(ia.ip), where
        assert ra.bgp_remote_as == rb.bgp_local_as, where
        assert rb.bgp_remote_as == ra.bgp_local_as, where
    assert cache, "no tunnel was checked"


def _accepts(intent: dict[str, Any], prefix: str) -> bool:
    """Whether a read-back intent's import filter lets `prefix` in: listed as is, or inside a
    `<range> le 32` entry (fabric.bgp.accept), and never one of its own or inside those."""
    net = IPv4Network(prefix)
    if any(net.subnet_of(IPv4Network(own)) for own in intent["prefixes"]["announce"]):
        return False
    for entry in intent["prefixes"]["accept"]:
        head, _, bounds = entry.partition(" ")
        if net == IPv4Network(head) or (bounds == "le 32" and net.subnet_of(IPv4Network(head))):
            return True
    return False


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_end_accepts_what_the_other_announces(variant: str) -> None:
    compiled = VARIANTS[variant]()
    intents = {gw.name: FROM_FILES[str(gw.platform)](render_gateway(compiled, gw.name))
               for _, gw in compiled.gateways()}
    for tunnel in compiled.tunnels:
        a, b = tunnel.endpoints
        for here, there in ((a, b), (b, a)):
            for prefix in intents[there.gateway]["prefixes"]["announce"]:
                assert _accepts(intents[here.gateway], prefix), (
                    f"{variant} {tunnel.name}: {here.gateway} refuses {prefix} of "
                    f"{there.gateway}")
            for prefix in intents[here.gateway]["prefixes"]["announce"]:
                more_specific = str(next(IPv4Network(prefix).subnets(new_prefix=28)))
                assert not _accepts(intents[here.gateway], more_specific), (
                    f"{variant}: {here.gateway} would take {more_specific} inside its own")


@pytest.mark.parametrize("variant", ["acme", "acme-accept"])
def test_one_file_rendered_alone_is_that_file_of_the_whole_rendering(variant: str) -> None:
    """render_gateway(only=...) (a deploy renders its candidate file alone) makes the very
    bytes the full rendering has, on every platform; one that cannot render a file alone
    (strongSwan) renders them all."""
    compiled = VARIANTS[variant]()
    seen = set()
    for _site, gw in compiled.gateways():
        files = render_gateway(compiled, gw.name)
        for name, content in files.items():
            alone = render_gateway(compiled, gw.name, only=name)
            assert alone[name] == content
            if str(gw.platform) != "strongswan":
                assert list(alone) == [name]
        seen.add(str(gw.platform))
    assert seen >= {"junos", "iosxe"}
