from pathlib import Path

import pytest
from conftest import EXAMPLES
from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.filter import F

from inventory.errors import TopologyError


def _nornir(fabric: Path) -> Nornir:
    return InitNornir(
        runner={"plugin": "serial"},
        inventory={"plugin": "DcvpnInventory", "options": {"fabric": str(fabric)}},
        logging={"enabled": False},
    )


def test_one_host_per_gateway_with_platform_and_port() -> None:
    nr = _nornir(EXAMPLES / "acme-hybrid.yaml")
    hosts = nr.inventory.hosts
    assert sorted(hosts) == ["ams1-gw1", "fra1-gw1", "fra1-gw2", "iad1-gw1", "iad1-gw2",
                             "nyc1-gw1", "par1-gw1", "sjc1-gw1"]
    assert hosts["fra1-gw1"].platform == "iosxe"
    assert hosts["fra1-gw1"].hostname == "fra1-gw1.mgmt.example.net"
    assert hosts["fra1-gw1"].port == 830
    assert hosts["par1-gw1"].port == 22  # iosxe over ssh
    assert hosts["iad1-gw1"].platform == "junos"


def test_filter_by_site_region_platform_and_group() -> None:
    nr = _nornir(EXAMPLES / "acme-hybrid.yaml")
    assert sorted(nr.filter(site="fra1").inventory.hosts) == ["fra1-gw1", "fra1-gw2"]
    assert sorted(nr.filter(region="us").inventory.hosts) == [
        "iad1-gw1", "iad1-gw2", "nyc1-gw1", "sjc1-gw1"]
    assert sorted(nr.filter(platform="strongswan").inventory.hosts) == ["ams1-gw1", "nyc1-gw1"]
    hubs = nr.filter(F(groups__contains="hubs")).inventory.hosts
    assert sorted(hubs) == ["fra1-gw1", "fra1-gw2", "iad1-gw1", "iad1-gw2"]


def test_host_data_carries_compiled_intent() -> None:
    nr = _nornir(EXAMPLES / "acme-hybrid.yaml")
    host = nr.inventory.hosts["par1-gw1"]
    tunnels = host["intent"]["tunnels"]
    # par1 (eu, no hub) meshes with ams1 and reaches both fra1 gateways
    assert sorted((t["peer_gateway"], t["plane"]) for t in tunnels) == [
        ("ams1-gw1", 0), ("fra1-gw1", 0), ("fra1-gw2", 1)]
    neighbors = {n["address"]: n["remote_as"] for n in host["intent"]["bgp_neighbors"]}
    assert set(neighbors.values()) == {65001, 65003}
    assert host["compiled"].fabric.fabric.name == "acme"


def test_credentials_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCVPN_USERNAME", "netops")
    monkeypatch.setenv("DCVPN_PASSWORD", "pw-from-env")
    nr = _nornir(EXAMPLES / "lab3.yaml")
    host = nr.inventory.hosts["ams1-gw1"]
    assert (host.username, host.password) == ("netops", "pw-from-env")


def test_fabric_with_lint_errors_is_refused(tmp_path: Path) -> None:
    text = (EXAMPLES / "lab3.yaml").read_text().replace("id: 2", "id: 1")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(TopologyError, match="DCV201"):
        _nornir(bad)
