"""Operational state of emulated gateways derived from committed configs (theirs and peers').

Pure matching first (oper_model), then a four-device fabric sharing one PeerRegistry: two
Junos and one IOS-XE NETCONF emulator loaded through ncclient, one IOS-XE CLI emulator loaded
through netmiko, all with configs rendered by tasks.render (PSK, full mesh: junos<->junos,
junos<->iosxe and iosxe<->iosxe tunnels). The answers are read the way the drivers read them.
"""

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import fabric_factory
import pytest
from lxml import etree
from netconf_support import PASSWORD, USER, connect, require_yang
from netmiko import BaseConnection, ConnectHandler

from drivers.junos_oper import device_state as junos_state
from inventory.topology import compile_fabric
from lab.emulators import iosxe_oper_state
from lab.emulators.iosxe_cli import CliServer, CliServerThread
from lab.emulators.oper_model import (
    AuthMethod,
    BgpNeighbor,
    BgpPhase,
    DeviceIntent,
    EspProposal,
    FilterTerm,
    Identity,
    IkeProposal,
    PrefixRule,
    RouteFilter,
    StateMemo,
    TunnelEndpoint,
    device_state,
    tunnel_match,
)
from lab.emulators.peers import DevicePeers, IntentCache, PeerError, PeerRegistry, PeerView
from lab.emulators.ssh_server import NetconfServer, ServerThread
from tasks.pki.psk import ensure_psks, resolve_secrets
from tasks.render import render_gateway
from tasks.render_context import gateway_view

SCALE = 0.05  # real seconds per device second: a confirm minute lasts 3 s
WAIT = 10.0
CRYPTO_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-crypto-oper"
BGP_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-bgp-oper"
GCM = IkeProposal("aes256gcm16", None, "sha384", 20)
CBC = IkeProposal("aes256", "sha256", "sha256", 14)
ESP = EspProposal("aes256gcm16", None, 20)


# ---- pure matching --------------------------------------------------------------------------

def _end(local: str, remote: str, inner: str, **fields: Any) -> TunnelEndpoint:
    base = TunnelEndpoint(
        name=f"to-{remote}", interface="st0.1", local_address=local, remote_address=remote,
        ike=(GCM,), esp=(ESP,), local_id=Identity("fqdn", f"{local}.x"),
        remote_id=Identity("fqdn", f"{remote}.x"), auth=AuthMethod.PSK, inner=inner,
        psk_digest="k1")
    return replace(base, **fields)


A = _end("192.0.2.1", "192.0.2.2", "100.64.0.0/31")
B = _end("192.0.2.2", "192.0.2.1", "100.64.0.1/31")


def test_matching_ends_agree_on_the_first_proposal_of_the_initiator() -> None:
    a = replace(A, ike=(CBC, GCM))
    b = replace(B, ike=(GCM, CBC))
    assert tunnel_match(a, b) == tunnel_match(b, a)
    assert tunnel_match(a, b).up and tunnel_match(a, b).ike == CBC  # 192.0.2.1 initiates
    assert tunnel_match(a, b).esp == ESP


@pytest.mark.parametrize(("change", "reason"), [
    ({"ike": (CBC,)}, "no IKE proposal chosen"),
    ({"esp": (replace(ESP, pfs_group=19),)}, "no ESP proposal chosen"),
    ({"psk_digest": "k2"}, "pre-shared keys differ"),
    ({"auth": AuthMethod.CERTIFICATE, "psk_digest": None}, "authentication methods differ"),
    ({"local_id": Identity("fqdn", "other.x")}, "identity mismatch"),
    ({"remote_id": Identity("address", "192.0.2.1")}, "identity mismatch"),
    ({"inner": "100.64.0.3/31"}, "inner addresses are not one /31 or /30"),
    ({"remote_address": "192.0.2.9"}, "endpoints do not point at each other"),
    ({"enabled": False}, "tunnel interface shut down"),
])
def test_one_disagreement_keeps_the_tunnel_down(change: dict[str, Any], reason: str) -> None:
    match = tunnel_match(A, replace(B, **change))
    assert (match.up, match.reason) == (False, reason)
    assert tunnel_match(A, B).up


def test_certificates_match_on_identities_and_remote_id_none_accepts_any() -> None:
    a = replace(A, auth=AuthMethod.CERTIFICATE, psk_digest=None)
    b = replace(B, auth=AuthMethod.CERTIFICATE, psk_digest=None, remote_id=None)
    assert tunnel_match(a, b).up
    assert tunnel_match(replace(a, inner="100.64.0.1/30"), replace(b, inner="100.64.0.2/30")).up
    assert not tunnel_match(replace(a, inner="100.64.0.0/30"),
                            replace(b, inner="100.64.0.1/30")).up  # network address


def test_prefix_rules_and_route_filters() -> None:
    assert PrefixRule("10.0.0.0/8", le=24).matches("10.1.0.0/16")
    assert not PrefixRule("10.0.0.0/8").matches("10.1.0.0/16")  # exact by default
    assert not PrefixRule("10.0.0.0/8", ge=25).matches("10.1.0.0/16")
    only_ten = RouteFilter((FilterTerm(((PrefixRule("10.0.0.0/8", le=32),),), True),), False)
    assert only_ten.accepts("10.2.0.0/24") and not only_ten.accepts("192.168.0.0/24")
    deny_first = RouteFilter((FilterTerm(((PrefixRule("10.2.0.0/24", permit=False),
                                           PrefixRule("10.0.0.0/8", le=32)),), True),), False)
    assert not deny_first.accepts("10.2.0.0/24") and deny_first.accepts("10.3.0.0/24")


def _device(name: str, end: TunnelEndpoint, asn: int, peer_as: int, neighbor: str,
            announces: tuple[str, ...], **neighbor_fields: Any) -> DeviceIntent:
    return DeviceIntent(gateway=name, platform="junos",
                        local_addresses=frozenset({end.local_address}), tunnels=(end,),
                        local_as=asn, neighbors=(BgpNeighbor(neighbor, peer_as,
                                                             announces=announces,
                                                             **neighbor_fields),))


def test_bgp_needs_the_tunnel_both_neighbors_and_matching_as_numbers() -> None:
    left = _device("l", A, 65001, 65002, "100.64.0.1", ("10.1.0.0/24", "10.9.0.0/24"))
    right = _device("r", B, 65002, 65001, "100.64.0.0", ("10.2.0.0/24",))
    peers = {"192.0.2.1": left, "192.0.2.2": right}
    state = device_state(left, peers.get)
    assert [(t.up, t.peer_gateway) for t in state.tunnels] == [(True, "r")]
    assert [(s.phase, s.received) for s in state.sessions] == [
        (BgpPhase.ESTABLISHED, ("10.2.0.0/24",))]
    only_nine = RouteFilter((FilterTerm(((PrefixRule("10.9.0.0/24"),),), True),), False)
    filtered = replace(right, neighbors=(replace(right.neighbors[0], accepts=only_nine),))
    assert device_state(filtered, {"192.0.2.1": left}.get).sessions[0].received == (
        "10.9.0.0/24",)
    wrong_as = replace(right, local_as=65009)
    assert device_state(left, {"192.0.2.2": wrong_as}.get).sessions[0].phase is BgpPhase.ACTIVE
    shut = replace(left, neighbors=(replace(left.neighbors[0], enabled=False),))
    assert device_state(shut, peers.get).sessions[0].phase is BgpPhase.IDLE
    assert device_state(right, {"192.0.2.1": shut}.get).sessions[0].phase is BgpPhase.ACTIVE
    alone = device_state(left, lambda address: None)  # e.g. a real strongSwan peer
    assert alone.tunnels[0].match.reason == "no emulated peer at that address"
    assert alone.sessions[0].phase is BgpPhase.ACTIVE


def test_oper_trees_are_written_in_document_order_with_text_escaped() -> None:
    root = iosxe_oper_state._root("bgp-state-data", BGP_NS)
    neighbors = iosxe_oper_state._sub(root, "neighbors")
    first = iosxe_oper_state._sub(neighbors, "neighbor")
    iosxe_oper_state._sub(first, "description", "dcvpn a<->b & c")
    iosxe_oper_state._sub(first, "up", True)
    second = iosxe_oper_state._sub(neighbors, "neighbor")  # closes the first
    iosxe_oper_state._sub(second, "as", 65001)
    with pytest.raises(RuntimeError, match="closed"):
        iosxe_oper_state._sub(first, "as", 65002)  # the first is closed: a builder bug
    tree = iosxe_oper_state._element(root)
    entries = tree.findall(f"{{{BGP_NS}}}neighbors/{{{BGP_NS}}}neighbor")
    assert [e.findtext(f"{{{BGP_NS}}}description") for e in entries] == ["dcvpn a<->b & c", None]
    assert entries[0].findtext(f"{{{BGP_NS}}}up") == "true"
    assert entries[1].findtext(f"{{{BGP_NS}}}as") == "65001"
    assert tree.nsmap == {None: BGP_NS}


def test_registry_finds_devices_by_committed_address() -> None:
    registry = PeerRegistry()
    left = _device("l", A, 65001, 65002, "100.64.0.1", ())
    registry.register(PeerView("l", "junos", lambda: left))
    with pytest.raises(PeerError):
        registry.register(PeerView("l", "junos", lambda: left))
    assert registry.by_address("192.0.2.1") == left
    assert registry.by_address("192.0.2.1", exclude="l") is None
    registry.unregister("l")
    assert registry.by_address("192.0.2.1") is None and registry.gateways() == ()


def test_owners_and_state_are_reused_until_an_intent_changes() -> None:
    """A fleet reads every device's state many times between commits: the address table
    and each device's state are built again only when a committed intent is a new one."""
    registry = PeerRegistry()
    intents = {"l": _device("l", A, 65001, 65002, "100.64.0.1", ()),
               "r": _device("r", B, 65002, 65001, "100.64.0.0", ())}
    registry.register(PeerView("r", "junos", lambda: intents["r"]))
    left = DevicePeers(registry, "l", "junos", lambda: intents["l"])
    owners, state = registry.owners(), left.state()
    assert registry.owners() is owners and left.state() is state
    assert owners["192.0.2.2"] == (("r", intents["r"]),)
    assert state.sessions[0].phase is BgpPhase.ESTABLISHED
    intents["r"] = replace(intents["r"], local_as=65009)  # a commit on the peer
    assert registry.owners() is not owners
    assert left.state().sessions[0].phase is BgpPhase.ACTIVE
    left.close()


def _star(spokes: int) -> tuple[DeviceIntent, dict[str, DeviceIntent]]:
    """A hub at 192.0.2.10 with a tunnel and a BGP session to each spoke (by public address)."""
    hub_ends, hub_neighbors, peers = [], [], {}
    for n in range(1, spokes + 1):
        hub_address, spoke_address = "192.0.2.10", f"192.0.2.{10 + n}"
        hub_ip, spoke_ip = f"100.64.0.{2 * n}", f"100.64.0.{2 * n + 1}"
        hub_ends.append(_end(hub_address, spoke_address, f"{hub_ip}/31", name=f"to-s{n}"))
        hub_neighbors.append(BgpNeighbor(spoke_ip, 65100 + n))
        peers[spoke_address] = _device(f"s{n}", _end(spoke_address, hub_address,
                                                     f"{spoke_ip}/31"),
                                       65100 + n, 65000, hub_ip, (f"10.{n}.0.0/24",))
    hub = DeviceIntent(gateway="h", platform="junos", local_addresses=frozenset({"192.0.2.10"}),
                       tunnels=tuple(hub_ends), local_as=65000, neighbors=tuple(hub_neighbors))
    return hub, peers


def test_a_memo_matches_again_only_the_tunnels_whose_peer_changed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub's state after one spoke's commit: that spoke's tunnel and session are worked out
    again, the others are taken from the memo, and the state equals a fresh computation."""
    hub, peers = _star(3)
    calls: list[str] = []
    matched = tunnel_match

    def counting(a: TunnelEndpoint, b: TunnelEndpoint) -> Any:
        calls.append(b.local_address)
        return matched(a, b)

    monkeypatch.setattr("lab.emulators.oper_model.tunnel_match", counting)
    memo = StateMemo(hub)
    first = device_state(hub, peers.get, memo)
    assert len(calls) == 3 and all(t.up for t in first.tunnels)
    assert [s.phase for s in first.sessions] == [BgpPhase.ESTABLISHED] * 3
    calls.clear()
    assert device_state(hub, peers.get, memo) == first and calls == []  # nothing changed
    peers["192.0.2.12"] = replace(peers["192.0.2.12"], local_as=65999)  # s2 commits
    second = device_state(hub, peers.get, memo)
    assert calls == ["192.0.2.12"]
    assert second == device_state(hub, peers.get)  # the memo changes no answer
    assert [s.phase for s in second.sessions] == [BgpPhase.ESTABLISHED, BgpPhase.ACTIVE,
                                                  BgpPhase.ESTABLISHED]
    assert second.tunnels[0] is first.tunnels[0] and second.sessions[2] is first.sessions[2]
    with pytest.raises(ValueError, match="DeviceIntent it was made for"):
        device_state(replace(hub, local_as=65001), peers.get, memo)


def test_devices_that_report_their_commits_are_not_asked_in_between() -> None:
    registry = PeerRegistry()
    intents = {"r": _device("r", B, 65002, 65001, "100.64.0.0", ())}
    asked: list[str] = []

    def committed() -> Any:
        asked.append("r")
        return intents["r"]

    peer = DevicePeers(registry, "r", "junos", committed, notifies=True)
    owners = registry.owners()
    asked.clear()
    assert registry.owners() is owners and asked == []  # no commit reported since
    intents["r"] = replace(intents["r"], local_as=65009)
    peer.changed()  # what a commit does
    assert registry.owners()["192.0.2.2"] == (("r", intents["r"]),) and asked == ["r"]
    peer.close()


def test_intent_cache_keeps_the_intent_for_new_keys_with_the_same_content() -> None:
    cache, derived = IntentCache(), []
    one = _device("l", A, 65001, 65002, "100.64.0.1", ())

    def derive() -> Any:
        derived.append(1)
        return one

    first = cache.get(object(), derive, 1.0, lambda: b"<config/>")
    assert cache.get(object(), derive, 2.0, lambda: b"<config/>") is first  # a confirm
    assert len(derived) == 1
    cache.get(object(), derive, 3.0, lambda: b"<config>changed</config>")
    assert len(derived) == 2



def test_an_intent_prepared_for_a_candidate_is_the_one_its_commit_takes() -> None:
    """prepare (after a load) derives ahead; the commit of those very bytes derives nothing,
    and its tunnels are stamped at the commit, not at the load."""
    cache, derived = IntentCache(), []
    before = _device("l", A, 65001, 65002, "100.64.0.1", ())
    after = _device("l", A, 65001, 65003, "100.64.0.1", ())

    def derive(intent: Any) -> Any:
        derived.append(intent)
        return intent

    cache.get(object(), lambda: derive(before), 1.0, lambda: b"<config>1</config>")
    cache.prepare(b"<config>1</config>", lambda: derive(after))  # the running one: nothing
    cache.prepare(b"<config>2</config>", lambda: derive(after))
    cache.prepare(b"<config>2</config>", lambda: derive(after))  # once per content
    assert derived == [before, after]
    committed = cache.get(object(), lambda: derive(before), 5.0, lambda: b"<config>2</config>")
    assert derived == [before, after]  # taken, not derived at the commit
    assert committed.neighbors[0].remote_as == 65003
    assert committed.tunnels and all(t.since == 1.0 for t in committed.tunnels)  # unchanged
    assert committed.neighbors[0].since == 5.0  # a new neighbor: stamped at the commit
    other = cache.get(object(), lambda: derive(before), 6.0, lambda: b"<config>3</config>")
    assert derived == [before, after, before] and other.neighbors[0].remote_as == 65002


# ---- four emulated devices --------------------------------------------------------------

GATEWAYS = ("s1-gw1", "s2-gw1", "s3-gw1", "s4-gw1")  # junos, junos, iosxe NETCONF, iosxe CLI
PUBLIC = {g: f"198.18.0.{i}" for i, g in enumerate(GATEWAYS, start=1)}


@dataclass
class Fabric:
    configs: dict[str, dict[str, str]]
    netconf: dict[str, ServerThread]
    cli: CliServerThread


def _rendered(secrets: Path) -> dict[str, dict[str, str]]:
    sites = [fabric_factory.site(1, platform="junos"), fabric_factory.site(2, platform="junos"),
             fabric_factory.site(3, platform="iosxe"), fabric_factory.site(4, platform="iosxe")]
    compiled = compile_fabric(fabric_factory.fabric(sites, auth={"method": "psk"}))
    out = {}
    for gateway in GATEWAYS:
        ensure_psks(secrets, [t.name for t in gateway_view(compiled, gateway).tunnels])
        files = render_gateway(compiled, gateway)
        out[gateway] = {name: resolve_secrets(text, secrets) for name, text in files.items()}
    return out


@pytest.fixture
def fabric(tmp_path: Path) -> Iterator[Fabric]:
    require_yang()
    registry = PeerRegistry()
    threads: list[ServerThread] = []
    cli: CliServerThread | None = None
    try:
        netconf = {}
        for gateway, platform in zip(GATEWAYS[:3], ("junos", "junos", "iosxe"), strict=True):
            server = NetconfServer(platform, USER, PASSWORD, tmp_path / gateway, SCALE,
                                   hostname=gateway,
                                   device_options={"peers": registry, "gateway": gateway})
            netconf[gateway] = ServerThread(server).start(timeout=30)
            threads.append(netconf[gateway])
        cli = CliServerThread(CliServer(USER, PASSWORD, tmp_path / "s4-gw1", SCALE,
                                        hostname="s4-gw1", peers=registry,
                                        gateway="s4-gw1")).start()
        configs = _rendered(tmp_path / "secrets")
        loaded = Fabric(configs, netconf, cli)
        for gateway in ("s1-gw1", "s2-gw1"):
            _junos_set(loaded, gateway, configs[gateway]["config.set"].splitlines())
        with connect(netconf["s3-gw1"].port) as m:
            m.edit_config(target="candidate", config=configs["s3-gw1"]["config.xml"])
            m.commit()
        conn = _netmiko(cli)
        try:
            output = conn.send_config_set(configs["s4-gw1"]["config.cli"].splitlines())
            assert "% Invalid" not in output
        finally:
            conn.disconnect()
        assert registry.gateways() == GATEWAYS
        yield loaded
    finally:
        if cli is not None:
            cli.stop()
        for thread in threads:
            thread.stop()


def _junos_set(fabric: Fabric, gateway: str, commands: list[str], *,
               confirm_minutes: int | None = None) -> None:
    with connect(fabric.netconf[gateway].port, "junos") as m:
        m.lock()
        m.load_configuration(action="set", config=commands)
        if confirm_minutes is None:
            m.commit()
        else:
            m.commit(confirmed=True, timeout=str(confirm_minutes))
        m.unlock()


def _netmiko(emu: CliServerThread) -> BaseConnection:
    return ConnectHandler(device_type="cisco_xe", host="127.0.0.1", port=emu.port,
                          username=USER, password=PASSWORD, timeout=WAIT, conn_timeout=WAIT,
                          auth_timeout=WAIT, banner_timeout=WAIT, allow_agent=False,
                          use_keys=False, ssh_strict=False, system_host_keys=False,
                          global_delay_factor=0.05)


def _junos(fabric: Fabric, gateway: str) -> Any:
    with connect(fabric.netconf[gateway].port, "junos") as m:
        replies = [etree.fromstring(m.rpc(etree.fromstring(f"<{name}/>")).tostring) for name in (
            "get-ike-security-associations-information",
            "get-security-associations-information", "get-bgp-summary-information")]
    return junos_state(*replies)


def _iosxe(fabric: Fabric) -> tuple[Any, Any]:
    selections = (f'<crypto-oper-data xmlns="{CRYPTO_NS}"><crypto-ikev2-sa/>'
                  f'<crypto-ipsec-ident/></crypto-oper-data>',
                  f'<bgp-state-data xmlns="{BGP_NS}"><neighbors/></bgp-state-data>')
    with connect(fabric.netconf["s3-gw1"].port) as m:
        crypto, bgp = (etree.fromstring(m.get(filter=("subtree", s)).data_xml.encode())
                       for s in selections)
    return (crypto.find(f"{{{CRYPTO_NS}}}crypto-oper-data"),
            bgp.find(f"{{{BGP_NS}}}bgp-state-data"))


def _cli(fabric: Fabric, *commands: str) -> list[str]:
    conn = _netmiko(fabric.cli)
    try:
        return [str(conn.send_command(c)) for c in commands]
    finally:
        conn.disconnect()


def _up_peers(fabric: Fabric, gateway: str) -> set[str]:
    """The public addresses of the gateways this one has an IKE SA with."""
    if gateway in ("s1-gw1", "s2-gw1"):
        return {sa.remote_address for sa in _junos(fabric, gateway).ike_sas
                if sa.state == "ESTABLISHED"}
    if gateway == "s3-gw1":
        crypto, _ = _iosxe(fabric)
        return {sa.findtext(f"{{{CRYPTO_NS}}}sa-data/{{{CRYPTO_NS}}}remote-ip-addr") or ""
                for sa in crypto.iter(f"{{{CRYPTO_NS}}}crypto-ikev2-sa")}
    (ike,) = _cli(fabric, "show crypto ikev2 sa")
    return set(re.findall(r"^\d+\s+\S+/500\s+(\S+)/500\s+\S+\s+READY", ike, re.M))


def _all_up_except(fabric: Fabric, *down: tuple[str, str]) -> dict[str, set[str]]:
    broken = {frozenset(pair) for pair in down}
    return {g: {PUBLIC[o] for o in GATEWAYS if o != g and frozenset((g, o)) not in broken}
            for g in GATEWAYS}


def _observed(fabric: Fabric) -> dict[str, set[str]]:
    return {g: _up_peers(fabric, g) for g in GATEWAYS}


def test_committed_fabric_is_up_with_the_intended_algorithms(fabric: Fabric) -> None:
    assert _observed(fabric) == _all_up_except(fabric)

    junos = _junos(fabric, "s1-gw1")
    assert {(c.remote_address, c.state, c.encryption, c.integrity) for c in junos.child_sas} \
        == {(PUBLIC[g], "INSTALLED", "aes256gcm16", None) for g in GATEWAYS[1:]}
    assert {(b.neighbor, b.remote_as, b.state, b.prefixes_received)
            for b in junos.bgp_sessions} == {
        ("100.64.0.1", 64514, "Established", 1), ("100.64.0.9", 64515, "Established", 1),
        ("100.64.0.25", 64516, "Established", 1)}

    crypto, bgp = _iosxe(fabric)
    sa_data = [sa.find(f"{{{CRYPTO_NS}}}sa-data") for sa in
               crypto.iter(f"{{{CRYPTO_NS}}}crypto-ikev2-sa")]
    assert {(d.findtext(f"{{{CRYPTO_NS}}}encr-alg"), d.findtext(f"{{{CRYPTO_NS}}}hash-algo"),
             d.findtext(f"{{{CRYPTO_NS}}}dh-group"), d.findtext(f"{{{CRYPTO_NS}}}my-auth-method"))
            for d in sa_data if d is not None} == {
        ("crypto-encr-alg-aes-gcm", "crypto-hash-alg-auth-hmac-sha384",
         "crypto-dh-grouptype-group20", "crypto-ikev2-auth-psk")}
    transforms = {e.text for e in crypto.iter(f"{{{CRYPTO_NS}}}transform-set")}
    assert transforms == {"crypto-transform-esp-aes-gcm-256"}
    neighbors = {n.findtext(f"{{{BGP_NS}}}neighbor-id"): (
        n.findtext(f"{{{BGP_NS}}}session-state"),
        n.findtext(f"{{{BGP_NS}}}prefix-activity/{{{BGP_NS}}}received/"
                   f"{{{BGP_NS}}}current-prefixes"))
        for n in bgp.iter(f"{{{BGP_NS}}}neighbor")}
    assert neighbors == {a: ("fsm-established", "1")
                         for a in ("100.64.0.8", "100.64.0.16", "100.64.0.41")}

    ike, ipsec, summary = _cli(fabric, "show crypto ikev2 sa", "show crypto ipsec sa",
                               "show ip bgp summary")
    assert ike.count("Encr: AES-GCM, keysize: 256, PRF: SHA384, Hash: None, DH Grp:20, "
                     "Auth sign: PSK, Auth verify: PSK") == 3
    assert ipsec.count("transform: esp-gcm 256 ,") == 6  # in and out of three tunnels
    assert ipsec.count("PFS (Y/N): Y, DH group: group20") == 3
    rows = re.findall(r"^(100\.64\.\S+)\s+4\s+(\d+)\s.*\s(\S+)$", summary, re.M)
    assert sorted(rows) == [("100.64.0.24", "64513", "1"), ("100.64.0.32", "64514", "1"),
                            ("100.64.0.40", "64515", "1")]


def test_counters_grow_with_device_time(fabric: Fabric) -> None:
    def encaps() -> list[int]:
        (text,) = _cli(fabric, "show crypto ipsec sa")
        return [int(n) for n in re.findall(r"#pkts encaps: (\d+)", text)]

    first = encaps()
    time.sleep(0.3)  # 6 device seconds
    later = encaps()
    assert len(first) == 3 and all(b > a for a, b in zip(first, later, strict=True))


def test_changed_psk_or_proposal_takes_down_only_those_tunnels(fabric: Fabric) -> None:
    _junos_set(fabric, "s1-gw1", ['set security ike policy DCVPN-IKE-POL-20 pre-shared-key '
                                  'ascii-text "not-the-shared-key"'])
    assert _observed(fabric) == _all_up_except(fabric, ("s1-gw1", "s2-gw1"))
    s2 = _junos(fabric, "s2-gw1")
    assert {b.neighbor: b.state for b in s2.bgp_sessions}["100.64.0.0"] == "Active"

    conn = _netmiko(fabric.cli)
    try:
        conn.send_config_set(["crypto ikev2 proposal DCVPN-IKE-PROP", "group 19"])
    finally:
        conn.disconnect()
    assert _observed(fabric) == _all_up_except(
        fabric, ("s1-gw1", "s2-gw1"), ("s4-gw1", "s1-gw1"), ("s4-gw1", "s2-gw1"),
        ("s4-gw1", "s3-gw1"))
    (summary,) = _cli(fabric, "show ip bgp summary")
    assert summary.count(" Idle") == 3


def test_unconfirmed_commit_rolls_back_and_the_tunnels_follow(fabric: Fabric) -> None:
    _junos_set(fabric, "s2-gw1", ["set security ike proposal DCVPN-IKE-PROP dh-group group19"],
               confirm_minutes=1)
    # a confirm minute lasts 3 s: read the two quick Junos ends before it expires
    assert _up_peers(fabric, "s2-gw1") == set()
    assert _up_peers(fabric, "s1-gw1") == {PUBLIC["s3-gw1"], PUBLIC["s4-gw1"]}
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and _up_peers(fabric, "s2-gw1") != _all_up_except(
            fabric)["s2-gw1"]:
        time.sleep(0.1)
    assert _observed(fabric) == _all_up_except(fabric)
