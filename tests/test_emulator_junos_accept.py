"""The JunOS emulator and `prefix-list-filter LIST orlonger` (what fabric.bgp.accept renders).

Through ncclient's junos handler: the accept-hub golden configurations (XML in the junos-es
YANG form, `set` commands) load, commit and read back in text, set and XML (Junos' own
<orlonger/> spelling) as the same configuration; `show | compare` shows the match condition
changing. The operational state follows it: a JunOS pair rendered with bgp.accept is
Established with the prefixes inside the ranges and outside its own; and `dcvpn deploy --lab`
on an accept fabric of emulators succeeds, then changes nothing.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree
from ncclient.operations.rpc import RPCError
from ncclient.transport import session as nc_session
from netconf_support import PASSWORD, USER, connect

from drivers.junos_oper import device_state
from inventory.model import Fabric
from inventory.topology import compile_fabric
from lab.emulators.junos_text import apply_set_commands
from lab.emulators.oper_junos_extract import junos_intent
from lab.emulators.peers import PeerRegistry
from lab.emulators.ssh_server import NetconfServer, ServerThread
from pipelines import deploy_cmd
from pipelines.exit_codes import Exit
from tasks.lab_devices import write_lab_devices
from tasks.parse_junos import from_set, from_xml, objects_from_xml
from tasks.pki.psk import ensure_psks, resolve_secrets
from tasks.render import render_gateway
from tasks.render_context import gateway_view

GOLDEN = Path(__file__).resolve().parent / "golden" / "accept-hub"
JUNOS_GOLDEN = ("br4-gw1", "hq1-gw2")  # the accept-hub gateways with config.xml + config.set
SCALE = 0.05
PARSER = etree.XMLParser(remove_blank_text=True)
ACCEPT = ["10.0.0.0/8", "172.16.0.0/12"]


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """ncclient sends a queued request only when its 0.1 s select tick ends; shorten it."""
    monkeypatch.setattr(nc_session, "TICK", 0.005)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[ServerThread]:
    thread = ServerThread(NetconfServer("junos", USER, PASSWORD, tmp_path / "jg-emu",
                                        SCALE)).start(timeout=30)
    try:
        yield thread
    finally:
        thread.stop()


# --- helpers --------------------------------------------------------------------------------

def _read(m: Any, fmt: str) -> Any:
    reply = m.get_configuration(format=fmt)
    if fmt == "xml":
        found = reply.xpath("//*[local-name()='configuration']")
        return etree.fromstring(etree.tostring(found[0]))
    return reply.xpath(f"//*[local-name()='configuration-{fmt}']")[0].text


def _compare(m: Any) -> str:
    return str(m.compare_configuration(rollback=0).xpath("//configuration-output")[0].text)


def _load_document(m: Any, config: etree._Element, action: str) -> None:
    """load-configuration of a whole <configuration> (the handler's helper takes one child)."""
    request = etree.Element("load-configuration", action=action, format="xml")
    request.append(etree.fromstring(etree.tostring(config)))
    m.rpc(request)


def _golden_xml(gateway: str) -> etree._Element:
    return etree.fromstring((GOLDEN / gateway / "config.xml").read_bytes(), PARSER)


def _golden_set(gateway: str) -> list[str]:
    return (GOLDEN / gateway / "config.set").read_text().splitlines()


def _terms(lines: list[str]) -> list[tuple[str, str]]:
    """(policy, term) in order of appearance: the order that decides a policy's result."""
    seen: list[tuple[str, str]] = []
    for line in lines:
        found = re.match(r"set policy-options policy-statement (\S+) term (\S+)", line)
        if found and found.groups() not in seen:
            seen.append((found.group(1), found.group(2)))
    return seen


def _no_change(m: Any) -> bool:
    return _compare(m).strip() == ""


# --- the golden configurations ----------------------------------------------------------------

@pytest.mark.parametrize("form", ["xml", "set"])
@pytest.mark.parametrize("gateway", JUNOS_GOLDEN)
def test_golden_accept_config_loads_and_reads_back_alike(
        emulator: ServerThread, gateway: str, form: str) -> None:
    golden = _golden_set(gateway)
    assert any("prefix-list-filter DCVPN-FABRIC orlonger" in line for line in golden)
    with connect(emulator.port, "junos") as m:
        m.lock()
        factory = set(_read(m, "set").splitlines())
        if form == "xml":
            for statement in _golden_xml(gateway):
                m.load_configuration(action="merge", format="xml", config=statement)
        else:
            m.load_configuration(action="set", config=golden)
        assert re.search(r"^\+\s+from prefix-list-filter DCVPN-FABRIC orlonger;$",
                         _compare(m), re.M)
        m.commit()

        # set: the same statements; terms (ordered by user) in the same order
        added = [line for line in _read(m, "set").splitlines() if line not in factory]
        assert sorted(added) == sorted(golden)
        assert _terms(added) == _terms(golden)

        # text: Junos' one-line form, and it loads back as exactly the committed tree
        text = _read(m, "text")
        assert re.search(r"^ +from prefix-list-filter DCVPN-OWN orlonger;$", text, re.M)
        m.load_configuration(action="override", format="text", config=text)
        assert _no_change(m)

        # XML: Junos' own spelling, the same objects as the rendered YANG form, loads back
        xml = _read(m, "xml")
        filters = xml.findall(".//prefix-list-filter")
        assert filters and all(f.find("orlonger") is not None for f in filters)
        assert xml.find(".//choice-ident") is None and xml.find(".//choice-value") is None
        text_of = etree.tostring(xml, encoding="unicode")
        assert objects_from_xml(text_of) == objects_from_xml(
            etree.tostring(_golden_xml(gateway), encoding="unicode"))
        assert from_xml(text_of) == from_set("\n".join(golden))
        _load_document(m, xml, "override")
        assert _no_change(m)
        m.unlock()


def test_compare_shows_match_condition_changes_in_every_load_form(
        emulator: ServerThread) -> None:
    policy = "policy-options policy-statement DCVPN-IN-LP190"
    with connect(emulator.port, "junos") as m:
        m.lock()
        m.load_configuration(action="set", config=_golden_set("br4-gw1"))
        m.commit()
        m.load_configuration(action="set", config=[
            f"set {policy} term fabric from prefix-list-filter DCVPN-FABRIC exact",
            f"delete {policy} term own from prefix-list-filter DCVPN-OWN orlonger"])
        assert _compare(m) == (
            "\n"
            f"[edit {policy} term own from]\n"
            "-   prefix-list-filter DCVPN-OWN orlonger;\n"
            f"[edit {policy} term fabric from]\n"
            "+   prefix-list-filter DCVPN-FABRIC exact;\n")
        m.discard_changes()

        # the YANG form deletes, Junos' own form adds, in one XML load
        change = etree.fromstring(
            "<policy-options><policy-statement><name>DCVPN-IN-LP190</name>"
            "<term><name>own</name><from><prefix-list-filter delete='delete'>"
            "<list_name>DCVPN-OWN</list_name><choice-ident>orlonger</choice-ident>"
            "<choice-value/></prefix-list-filter>"
            "<prefix-list-filter><list_name>DCVPN-OWN</list_name><longer/>"
            "</prefix-list-filter></from></term></policy-statement></policy-options>")
        m.load_configuration(action="merge", format="xml", config=change)
        assert _compare(m) == (
            "\n"
            f"[edit {policy} term own from]\n"
            "-   prefix-list-filter DCVPN-OWN orlonger;\n"
            "+   prefix-list-filter DCVPN-OWN longer;\n")
        m.commit()
        assert f"set {policy} term own from prefix-list-filter DCVPN-OWN longer" in \
            _read(m, "set").splitlines()

        # the text form, inside braces
        m.load_configuration(action="merge", format="text", config=(
            "policy-options { policy-statement DCVPN-IN-LP190 { term own { from {\n"
            "    prefix-list-filter DCVPN-FABRIC exact;\n} } } }"))
        assert _compare(m) == (
            "\n"
            f"[edit {policy} term own from]\n"
            "+   prefix-list-filter DCVPN-FABRIC exact;\n")
        m.unlock()


@pytest.mark.parametrize(("how", "config", "message"), [
    ("set", "set policy-options policy-statement P term T from prefix-list-filter L upto",
     "syntax error"),
    ("set", "set policy-options policy-statement P term T from prefix-list-filter L",
     "missing argument"),
    ("xml", "<prefix-list-filter><list_name>L</list_name><orlonger/><exact/>"
            "</prefix-list-filter>", "syntax error"),
    ("xml", "<prefix-list-filter><list_name>L</list_name><choice-ident>orlonger</choice-ident>"
            "<choice-value>/24</choice-value></prefix-list-filter>", "syntax error"),
    ("xml", "<prefix-list-filter><list_name>L</list_name></prefix-list-filter>",
     "missing mandatory statement"),
])
def test_malformed_prefix_list_filters_are_refused(
        emulator: ServerThread, how: str, config: str, message: str) -> None:
    with connect(emulator.port, "junos") as m:
        m.lock()
        with pytest.raises(RPCError, match=message):
            if how == "set":
                m.load_configuration(action="set", config=[config])
            else:
                m.load_configuration(action="merge", format="xml", config=etree.fromstring(
                    "<policy-options><policy-statement><name>P</name><term><name>T</name>"
                    f"<from>{config}</from></term></policy-statement></policy-options>"))
        assert _no_change(m)


def test_an_xml_load_error_names_where_it_is(emulator: ServerThread) -> None:
    """The rpc-error's error-path is the [edit ...] of the statement holding the bad one."""
    with connect(emulator.port, "junos") as m:
        m.lock()
        with pytest.raises(RPCError) as failure:
            m.load_configuration(action="merge", format="xml", config=etree.fromstring(
                "<policy-options><policy-statement><name>P</name><term><name>T</name>"
                "<from><prefix-list-filter><list_name>L</list_name></prefix-list-filter>"
                "</from></term></policy-statement></policy-options>"))
        assert failure.value.path == "[edit policy-options policy-statement P term T from]"
        with pytest.raises(RPCError) as bad_value:
            m.load_configuration(action="merge", format="xml", config=etree.fromstring(
                "<security><ike><proposal><name>X</name><dh-group>group99</dh-group>"
                "</proposal></ike></security>"))
        assert bad_value.value.path == "[edit security ike proposal X dh-group]"
        m.unlock()


def test_commit_refuses_a_filter_of_an_undefined_prefix_list(emulator: ServerThread) -> None:
    with connect(emulator.port, "junos") as m:
        m.lock()
        m.load_configuration(action="set", config=[
            "set policy-options policy-statement P term T from prefix-list-filter NOPE orlonger",
            "set policy-options policy-statement P term T then accept"])
        with pytest.raises(RPCError, match="prefix-list NOPE referenced but not defined"):
            m.commit()


# --- operational state ---------------------------------------------------------------------

def test_accept_terms_decide_what_a_neighbor_accepts_and_what_is_originated() -> None:
    config = etree.Element("configuration")
    apply_set_commands(config, "\n".join(_golden_set("hq1-gw2")))
    neighbors = junos_intent(config, "hq1-gw2").neighbors
    assert len(neighbors) == 3
    for neighbor in neighbors:
        accepts = neighbor.accepts.accepts
        assert all(accepts(p) for p in ("10.0.0.0/8", "10.2.0.0/16", "10.200.3.0/24",
                                        "172.16.0.0/12", "172.31.255.0/24"))
        assert not any(accepts(p) for p in ("10.1.0.0/16", "10.1.9.0/24",  # own, orlonger
                                            "192.168.1.0/24", "0.0.0.0/0", "172.32.0.0/16"))
        assert neighbor.announces == ("10.1.0.0/16",)


def _pair_data(**bgp: Any) -> dict[str, Any]:
    sites = [("jg1", 1, ["10.1.0.0/16"]),
             # inside the ranges (2), outside them, and inside jg1's own prefix
             ("jg2", 2, ["10.2.0.0/24", "172.16.2.0/24", "192.168.50.0/24", "10.1.7.0/24"])]
    return {
        "fabric": {"name": "jgacc", "topology": "full_mesh", "tunnel_pool": "169.254.0.0/16",
                   "auth": {"method": "psk"}, "bgp": {"mode": "ebgp", **bgp}},
        "sites": [{"name": name, "id": sid, "asn": 65200 + sid, "prefixes": prefixes,
                   "gateways": [{"name": f"{name}-gw1", "platform": "junos",
                                 "transport": "netconf", "host": f"{name}-gw1.mgmt",
                                 "public_ip": f"198.18.0.{sid}"}]}
                  for name, sid, prefixes in sites]}


def test_rendered_accept_pair_is_established_with_the_accepted_prefixes(
        tmp_path: Path) -> None:
    compiled = compile_fabric(Fabric.model_validate(_pair_data(accept=ACCEPT)))
    secrets = tmp_path / "secrets"
    registry = PeerRegistry()
    threads: dict[str, ServerThread] = {}
    try:
        for gateway in ("jg1-gw1", "jg2-gw1"):
            server = NetconfServer("junos", USER, PASSWORD, tmp_path / gateway, SCALE,
                                   hostname=gateway,
                                   device_options={"peers": registry, "gateway": gateway})
            threads[gateway] = ServerThread(server).start(timeout=30)
        for gateway, form in (("jg1-gw1", "config.xml"), ("jg2-gw1", "config.set")):
            ensure_psks(secrets, [t.name for t in gateway_view(compiled, gateway).tunnels])
            config = resolve_secrets(render_gateway(compiled, gateway)[form], secrets)
            assert "prefix-list-filter" in config
            with connect(threads[gateway].port, "junos") as m:
                m.lock()
                if form == "config.set":
                    m.load_configuration(action="set", config=config.splitlines())
                else:
                    _load_document(m, etree.fromstring(config.encode(), PARSER), "merge")
                m.commit()
                m.unlock()
        sessions = {}
        for gateway, thread in threads.items():
            with connect(thread.port, "junos") as m:
                replies = [etree.fromstring(m.rpc(etree.Element(name)).tostring) for name in (
                    "get-ike-security-associations-information",
                    "get-security-associations-information", "get-bgp-summary-information")]
            accepted = [int(p.findtext("bgp-rib/accepted-prefix-count") or -1)
                        for p in replies[2].iter("bgp-peer")]
            sessions[gateway] = [(b.state, b.prefixes_received, n) for b, n in zip(
                device_state(*replies).bgp_sessions, accepted, strict=True)]
    finally:
        for thread in threads.values():
            thread.stop()
    # Junos counts received before the import policy, accepted after it. jg1 accepts
    # 10.2.0.0/24 and 172.16.2.0/24: not 192.168.50.0/24 (outside), nor 10.1.7.0/24 (own)
    assert sessions == {"jg1-gw1": [("Established", 4, 2)], "jg2-gw1": [("Established", 1, 1)]}


# --- deploy ----------------------------------------------------------------------------------

def _deploy_data() -> dict[str, Any]:
    data = _pair_data(accept=ACCEPT)
    data["sites"][1]["prefixes"] = ["10.2.0.0/24", "172.16.2.0/24"]
    data["sites"][0]["region"] = data["sites"][1]["region"] = "eu"
    return data


def test_deploy_of_an_accept_fabric_to_emulators_succeeds_then_changes_nothing(
        tmp_path: Path) -> None:
    data = _deploy_data()
    compiled = compile_fabric(Fabric.model_validate(data))
    gateways = ("jg1-gw1", "jg2-gw1")
    lab_dir, secrets = tmp_path / "lab", tmp_path / "secrets"
    lab_dir.mkdir()
    fabric_file, report_file = tmp_path / "fabric.yaml", tmp_path / "report.json"
    fabric_file.write_text(yaml.safe_dump(data))
    ensure_psks(secrets, [t.name for t in compiled.tunnels])
    registry = PeerRegistry()
    threads: dict[str, ServerThread] = {}
    try:
        for gateway in gateways:
            server = NetconfServer("junos", USER, PASSWORD, tmp_path / "emu" / gateway, 1.0,
                                   hostname=gateway,
                                   device_options={"peers": registry, "gateway": gateway})
            threads[gateway] = ServerThread(server).start(timeout=30)
        known_hosts = lab_dir / "known_hosts"
        known_hosts.write_text("".join(t.known_hosts_line() for t in threads.values()))
        write_lab_devices(lab_dir, "jgacc", {
            name: {"platform": "junos", "transport": "netconf", "host": "127.0.0.1",
                   "port": t.port, "username": USER, "password": PASSWORD,
                   "known_hosts": str(known_hosts)}
            for name, t in threads.items()})
        args = ["deploy", "-f", str(fabric_file), "--report", str(report_file),
                "--state", str(tmp_path / "state" / "deploy-jgacc.json"), "--format", "json",
                "--lab", "--lab-dir", str(lab_dir), "--secrets-dir", str(secrets),
                "--interval", "0.3"]

        code = deploy_cmd.main(args)
        report = json.loads(report_file.read_text())
        assert code == Exit.OK, report["errors"]
        assert {n: d["outcome"] for n, d in report["devices"].items()} == dict.fromkeys(
            gateways, "confirmed")
        checks = [c for w in report["waves"] for c in (w["health"] or {}).get("checks", [])]
        bgp = {c["gateway"]: c["observed"] for c in checks
               if c["kind"] == "bgp" and "received" in c["observed"]}
        assert bgp == {"jg1-gw1": "2 prefix(es) received", "jg2-gw1": "1 prefix(es) received"}
        assert {c["status"] for c in checks if c["kind"] in ("ike", "child", "bgp")} == {"pass"}
        accepted = {}
        for gateway, thread in threads.items():
            with connect(thread.port, "junos") as m:
                assert "from prefix-list-filter DCVPN-FABRIC orlonger;" in _read(m, "text")
                summary = m.rpc(etree.Element("get-bgp-summary-information"))
                accepted[gateway] = summary.xpath("//bgp-peer/bgp-rib/accepted-prefix-count")[
                    0].text
        assert accepted == {"jg1-gw1": "2", "jg2-gw1": "1"}

        code = deploy_cmd.main(args)
        again = json.loads(report_file.read_text())
        assert code == Exit.OK, again["errors"]
        assert again["outcome"] == "no-changes" and again["waves"] == []
        assert {n: d["outcome"] for n, d in again["devices"].items()} == dict.fromkeys(
            gateways, "unchanged")
    finally:
        for thread in threads.values():
            thread.stop()
