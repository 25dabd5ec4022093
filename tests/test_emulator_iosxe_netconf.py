"""The IOS-XE NETCONF emulator's own behaviour, driven only through real clients.

Capabilities of a 17.15 / 17.12 device, the Cisco-IOS-XE-native datastore checked against the
vendor YANG (the rendered payload loads, validates and commits; unknown elements, bad values
and dangling references are refused like a device), the cisco-ia archive RPCs with
:confirmed-commit switched off, and bad input. The RFC 6241 behaviour it shares with any
server is in test_netconf_conformance.py.
"""

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GOLDEN
from lxml import etree
from ncclient import manager
from ncclient.operations.errors import MissingCapabilityError
from ncclient.operations.rpc import RPCError
from ncclient.transport import session as nc_session
from ncclient.transport.errors import AuthenticationError
from netconf_support import (
    EMULATOR_SCALE,
    NATIVE,
    NC,
    NC_OP,
    USER,
    WAIT,
    connect,
    raw_exchange,
    require_yang,
    start_emulator,
    wait_until,
)

from lab.emulators import iosxe_schema
from lab.emulators.iosxe_schema import (
    FALLBACK_LEAF_LISTS,
    FALLBACK_LISTS,
    FallbackRules,
    Kind,
    SchemaRules,
    load_yang,
)
from lab.emulators.ssh_server import ServerThread
from lab.yang import yang_dir

CISCO_IA = "http://cisco.com/yang/cisco-ia"
CLI_RPC = "http://cisco.com/ns/yang/Cisco-IOS-XE-cli-rpc"


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """ncclient sends a queued request only when its 0.1 s select tick ends; shorten it."""
    monkeypatch.setattr(nc_session, "TICK", 0.005)


@pytest.fixture(scope="module", autouse=True)
def loaded_yang() -> None:
    """Load the IOS-XE YANG once (seconds) so that emulators start in milliseconds."""
    if yang_dir() is not None:
        load_yang("17.15")


# --- IOS-XE: capabilities -------------------------------------------------------------------

@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[ServerThread]:
    thread = start_emulator(tmp_path)
    yield thread
    thread.stop()


@pytest.fixture
def fallback_emulator(tmp_path: Path) -> Iterator[ServerThread]:
    """An emulator with :confirmed-commit switched off, as the published 17.15.1 hello."""
    thread = start_emulator(tmp_path, confirmed_commit=False)
    yield thread
    thread.stop()


def test_hello_lists_yang_10_modules_with_revisions_and_ietf_netconf_features(
        emulator: ServerThread) -> None:
    require_yang()
    with connect(emulator.port, "iosxe") as m:
        capabilities = list(m.server_capabilities)
        library = m.get(filter=("subtree", '<modules-state xmlns="urn:ietf:params:xml:ns:'
                                           'yang:ietf-yang-library"/>')).data_xml
    assert "http://cisco.com/yang/cisco-ia?module=cisco-ia&revision=2024-07-01" in capabilities
    assert "urn:ietf:params:netconf:capability:writable-running:1.0" in capabilities
    assert any(c.startswith("urn:ietf:params:xml:ns:netconf:base:1.0?module=ietf-netconf&")
               and "features=writable-running,candidate,confirmed-commit," in c
               for c in capabilities)
    # YANG 1.1 modules are not in a 17.x hello, only in the yang library
    assert not any("Cisco-IOS-XE-native" in c for c in capabilities)
    assert ("<name>Cisco-IOS-XE-native</name><revision>2024-07-01</revision>" in library)


def test_1712_device_advertises_its_own_revisions(tmp_path: Path) -> None:
    thread = start_emulator(tmp_path, os_version="17.12")
    try:
        with connect(thread.port, "iosxe") as m:
            capabilities = list(m.server_capabilities)
            version = m.get_config("running", filter=(
                "subtree", f'<native xmlns="{NATIVE}"><version/></native>')).data_xml
    finally:
        thread.stop()
    assert "http://cisco.com/yang/cisco-ia?module=cisco-ia&revision=2021-11-01" in capabilities
    assert "<version>17.12</version>" in version


def test_confirmed_commit_switched_off_reproduces_the_published_hello(
        fallback_emulator: ServerThread) -> None:
    with connect(fallback_emulator.port, "iosxe") as m:
        assert not any("confirmed-commit" in c for c in m.server_capabilities)
        for capability in (":candidate", ":validate:1.1", ":rollback-on-error",
                           ":writable-running", ":xpath"):
            assert capability in m.server_capabilities, capability
        with pytest.raises(MissingCapabilityError):
            m.commit(confirmed=True)  # ncclient checks the hello itself
        with pytest.raises(RPCError) as refused:
            m.dispatch(etree.fromstring(f'<commit xmlns="{NC}"><confirmed/></commit>'))
        with pytest.raises(RPCError) as no_cancel:
            m.dispatch(etree.fromstring(f'<cancel-commit xmlns="{NC}"/>'))
    assert refused.value.tag == "unknown-element"
    assert "<bad-element>confirmed</bad-element>" in refused.value.info
    assert no_cancel.value.tag == "operation-not-supported"


# --- IOS-XE: the native datastore and its YANG ---------------------------------------------

def golden(gateway: str) -> str:
    return (GOLDEN / "acme-hybrid" / gateway / "config.xml").read_text()


@pytest.mark.parametrize(("gateway", "version", "tunnel", "peer_name"), [
    ("fra1-gw1", "17.15", "20", "fra1-iad1-p0 to iad1-gw1"),
    ("fra1-gw2", "17.12", "21", "fra1-iad1-p1 to iad1-gw2"),
])
def test_rendered_payload_loads_validates_and_commits(
        tmp_path: Path, gateway: str, version: str, tunnel: str, peer_name: str) -> None:
    require_yang()
    thread = start_emulator(tmp_path, os_version=version)
    try:
        with connect(thread.port, "iosxe") as m:
            m.lock("candidate")
            m.edit_config(golden(gateway), target="candidate")
            m.validate("candidate")
            m.commit(confirmed=True, timeout="120")
            m.commit()
            m.unlock("candidate")
            tunnel = m.get_config("running", filter=(
                "subtree", f'<native xmlns="{NATIVE}"><interface><Tunnel><name>{tunnel}'
                           "</name></Tunnel></interface></native>")).data_xml
            m.edit_config(golden(gateway), target="candidate")  # idempotent
            assert m.get_config("candidate").data_xml == m.get_config("running").data_xml
    finally:
        thread.stop()
    assert f"<description>dcvpn {peer_name}</description>" in tunnel
    assert '<tunnel xmlns="http://cisco.com/ns/yang/Cisco-IOS-XE-tunnel">' in tunnel
    assert tunnel.count("<Tunnel>") == 1


def test_unknown_element_and_bad_value_are_refused_by_edit_config(
        emulator: ServerThread) -> None:
    require_yang()
    with connect(emulator.port, "iosxe") as m:
        with pytest.raises(RPCError) as unknown:
            m.edit_config(f'<config><native xmlns="{NATIVE}"><crypto><ikev2 xmlns="http://'
                          'cisco.com/ns/yang/Cisco-IOS-XE-crypto"><proposal><name>P</name>'
                          "<encryption><aes-gcm-512/></encryption></proposal></ikev2></crypto>"
                          "</native></config>", target="candidate")
        with pytest.raises(RPCError) as bad_value:
            m.edit_config(f'<config><native xmlns="{NATIVE}"><interface><Loopback><name>x'
                          "</name></Loopback></interface></native></config>",
                          target="candidate")
        assert "aes-gcm-512" not in m.get_config("candidate").data_xml
    assert unknown.value.tag == "unknown-element"
    assert unknown.value.type == "application"
    assert unknown.value.message == 'Node "aes-gcm-512" not found as a child of "encryption" node.'
    assert "<bad-element>aes-gcm-512</bad-element>" in unknown.value.info
    assert bad_value.value.tag == "invalid-value"
    assert 'Invalid type uint32 value "x"' in bad_value.value.message


def test_dangling_profile_reference_fails_validate_and_commit(emulator: ServerThread) -> None:
    require_yang()
    dangling = golden("fra1-gw1").replace(
        "<profile-option><name>DCVPN-IPSEC-fra1-iad1-p0</name>",
        "<profile-option><name>DCVPN-IPSEC-MISSING</name>")
    with connect(emulator.port, "iosxe") as m:
        m.edit_config(dangling, target="candidate")  # references are checked on validate
        with pytest.raises(RPCError) as invalid:
            m.validate("candidate")
        with pytest.raises(RPCError) as refused:
            m.commit()
        assert "DCVPN" not in m.get_config("running").data_xml
        m.discard_changes()
    assert invalid.value.tag == "operation-failed"
    assert invalid.value.type == "application"
    assert "ipsec profile 'DCVPN-IPSEC-MISSING' is referred to but not defined" in \
        invalid.value.message
    assert refused.value.message == invalid.value.message


def test_candidate_failing_a_yang_must_loads_but_fails_validate_and_commit(
        emulator: ServerThread) -> None:
    """edit-config checks schema and types only; libyang's `must` refuses on validate."""
    require_yang()
    incomplete = golden("fra1-gw1").replace("<proposals>DCVPN-IKE-PROP<", "<proposals>NOPE<", 1)
    with connect(emulator.port, "iosxe") as m:
        m.edit_config(incomplete, target="candidate")
        with pytest.raises(RPCError) as invalid:
            m.validate("candidate")
        with pytest.raises(RPCError) as refused:
            m.commit()
        m.discard_changes()
        m.edit_config(golden("fra1-gw1"), target="candidate")
        m.validate("candidate")
        m.commit()
        assert "DCVPN-IKE-POL" in m.get_config("running").data_xml
    assert invalid.value.tag == "operation-failed"
    assert "IKEv2 policy MUST have only complete proposals attached" in invalid.value.message
    assert refused.value.message == invalid.value.message


def test_writable_running_edit_is_fully_validated(emulator: ServerThread) -> None:
    require_yang()
    with connect(emulator.port) as m:
        m.edit_config(f'<config><native xmlns="{NATIVE}"><hostname>direct</hostname></native>'
                      "</config>", target="running")
        with pytest.raises(RPCError):
            m.edit_config(golden("fra1-gw1").replace("DCVPN-IPSEC-fra1-iad1-p0</name></pr",
                                                     "NOPE</name></pr"), target="running")
        m.copy_config(source="running", target="candidate")
        assert "<hostname>direct</hostname>" in m.get_config("candidate").data_xml


def test_filters_subtree_and_xpath(emulator: ServerThread) -> None:
    with connect(emulator.port) as m:
        m.edit_config(golden("fra1-gw1"), target="candidate")
        subtree = m.get_config("candidate", filter=(
            "subtree", f'<native xmlns="{NATIVE}"><router/></native>')).data_xml
        xpath = m.get_config("candidate", filter=(
            "xpath", ({"ios": NATIVE}, "/ios:native/ios:interface/ios:Tunnel/ios:description")
        )).data_xml
        empty = m.get_config("candidate", filter='<filter type="subtree"/>').data_xml
    assert "<neighbor>" in subtree and "<interface>" not in subtree
    assert xpath.count("<description>") == 3
    assert "<name>20</name>" in xpath and "<ip>" not in xpath  # keys come with the entries
    assert "<native" not in empty


def test_operational_trees_are_served_empty_for_now(emulator: ServerThread) -> None:
    with connect(emulator.port) as m:
        crypto = m.get(filter=("subtree", '<crypto-oper-data xmlns="http://cisco.com/ns/yang/'
                                          'Cisco-IOS-XE-crypto-oper"/>')).data_xml
        bgp = m.get(filter=("subtree", '<bgp-state-data xmlns="http://cisco.com/ns/yang/'
                                       'Cisco-IOS-XE-bgp-oper"/>')).data_xml
    assert "crypto-oper-data" in crypto and "crypto-ikev2-sa" not in crypto
    assert "bgp-state-data" in bgp and "<neighbor>" not in bgp


def test_get_schema_returns_the_module_text(emulator: ServerThread) -> None:
    require_yang()
    with connect(emulator.port) as m:
        reply = m.get_schema("cisco-ia", "2024-07-01")
        with pytest.raises(RPCError):
            m.get_schema("no-such-module")
    assert "rpc checkpoint {" in reply.data


def test_fallback_rules_match_the_yang_for_rendered_payloads() -> None:
    """Without the YANG folder the emulator merges lists by the keys in its table: every
    list and leaf-list of the rendered payloads is there, and every entry is right."""
    require_yang()
    schema = load_yang("17.15")
    assert schema is not None
    rules = SchemaRules(schema)
    fallback = FallbackRules([])
    for gateway in ("fra1-gw1", "fra1-gw2"):
        native = etree.fromstring(golden(gateway).encode())[0]
        for element in native.iter():
            ancestors = [a for a in element.iterancestors() if a.getparent() is not None]
            path = (*(str(a.tag) for a in reversed(ancestors)), str(element.tag))
            expected = rules.node(path)
            if expected.kind in (Kind.LIST, Kind.LEAF_LIST):
                assert fallback.node(path) == expected, path
    for names, keys in FALLBACK_LISTS.items():
        found = rules.node(_native_path(names))
        assert (found.kind, [k.rsplit("}", 1)[1] for k in found.keys]) == \
            (Kind.LIST, list(keys)), names
    for names in FALLBACK_LEAF_LISTS:
        assert rules.node(_native_path(names)).kind is Kind.LEAF_LIST, names


AUGMENTING = {"ikev2": "Cisco-IOS-XE-crypto", "ipsec": "Cisco-IOS-XE-crypto",
              "pki": "Cisco-IOS-XE-crypto", "bgp": "Cisco-IOS-XE-bgp",
              "route-map-without-order-seq": "Cisco-IOS-XE-route-map"}


def _native_path(names: tuple[str, ...]) -> tuple[str, ...]:
    """Clark names for a path of local names: the augmenting modules' nodes and below."""
    path: list[str] = []
    space = NATIVE
    for name in names:
        if name in AUGMENTING and space == NATIVE:
            space = f"http://cisco.com/ns/yang/{AUGMENTING[name]}"
        path.append(f"{{{space}}}{name}")
    return tuple(path)


def test_without_yang_the_emulator_accepts_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("DCVPN_YANG_DIR", str(tmp_path / "no-yang-here"))
    monkeypatch.setattr(iosxe_schema, "_schemas", {})
    with caplog.at_level("WARNING", logger="lab.emulators.iosxe_schema"):
        thread = start_emulator(tmp_path)
    try:
        with connect(thread.port) as m:
            m.edit_config(f'<config><native xmlns="{NATIVE}"><anything-goes>1</anything-goes>'
                          "</native></config>", target="candidate")
            m.edit_config(golden("fra1-gw1"), target="candidate")
            m.edit_config(golden("fra1-gw1"), target="candidate")
            m.commit()
            running = m.get_config("running").data_xml
    finally:
        thread.stop()
    assert "YANG folder not found" in caplog.text
    assert "<anything-goes>1</anything-goes>" in running
    assert running.count("<name>DCVPN-IKE-PROP</name>") == 1  # lists merge by their keys
    assert running.count("<revocation-check>") == 2  # leaf-list entries are kept apart


# --- IOS-XE: cisco-ia archive with :confirmed-commit off -----------------------------------

ARCHIVE_PATH = f'<config><native xmlns="{NATIVE}"><archive><path>bootflash:$h-cfg</path>' \
    "</archive></native></config>"


def ia(m: Any, body: str) -> str:
    """Send a cisco-ia (or cli-rpc) RPC; its <result> text."""
    reply = etree.fromstring(m.dispatch(etree.fromstring(body)).xml.encode())
    return "".join(reply.xpath("//*[local-name()='result']/text()"))


def set_hostname(m: Any, value: str) -> None:
    m.edit_config(f'<config><native xmlns="{NATIVE}"><hostname>{value}</hostname></native>'
                  "</config>", target="candidate")
    m.commit()


def hostname(m: Any) -> str:
    found = re.search(r"<hostname>([^<]*)</hostname>", m.get_config("running").data_xml)
    return found.group(1) if found else ""


def arm_dead_man_switch(m: Any, minutes: int = 1) -> str:
    """checkpoint, then rollback to it with a revert timer: what changes next is undone
    unless confirmed."""
    m.edit_config(ARCHIVE_PATH, target="candidate")
    m.commit()
    set_hostname(m, "before")
    name = ia(m, f'<checkpoint xmlns="{CISCO_IA}"/>').removeprefix("Checkpoint ") \
        .removesuffix(" created")
    ia(m, f'<rollback xmlns="{CISCO_IA}"><target-url>{name}</target-url>'
          f"<revert-timer>{minutes}</revert-timer></rollback>")
    return name


def test_checkpoint_needs_an_archive_path_and_is_listed(fallback_emulator: ServerThread) -> None:
    with connect(fallback_emulator.port, "iosxe") as m:
        with pytest.raises(RPCError) as no_path:
            m.dispatch(etree.fromstring(f'<checkpoint xmlns="{CISCO_IA}"/>'))
        m.edit_config(ARCHIVE_PATH, target="candidate")
        m.commit()
        first = ia(m, f'<checkpoint xmlns="{CISCO_IA}"/>')
        listed = m.get(filter=("subtree", '<checkpoint-archives xmlns="http://cisco.com/ns/'
                                          'yang/Cisco-IOS-XE-checkpoint-archive-oper"/>'))
    assert "Archive path not specified" in no_path.value.message
    assert re.fullmatch(r"Checkpoint bootflash:Router-cfg[A-Z][a-z]{2}-[-0-9]+-\d\d-\d\d-\d\d"
                        r"\.\d{3}-UTC-1 created", first), first
    assert "<number>1</number>" in listed.data_xml
    assert "<current>1</current>" in listed.data_xml


def test_rollback_revert_timer_not_confirmed_reverts(fallback_emulator: ServerThread) -> None:
    with connect(fallback_emulator.port, "iosxe") as m:
        arm_dead_man_switch(m)
        set_hostname(m, "risky-change")
        assert hostname(m) == "risky-change"
        wait_until(lambda: hostname(m) == "before", "the timed rollback")
        with pytest.raises(RPCError):  # nothing pending any more
            m.dispatch(etree.fromstring(f'<revert xmlns="{CISCO_IA}"><now/></revert>'))


def test_rollback_revert_timer_confirmed_in_time_stays(fallback_emulator: ServerThread) -> None:
    with connect(fallback_emulator.port, "iosxe") as m:
        arm_dead_man_switch(m)
        set_hostname(m, "good-change")
        ia(m, f'<config-ios-cli-rpc xmlns="{CLI_RPC}"><config-clis>do configure confirm'
              "</config-clis></config-ios-cli-rpc>")
        time.sleep(60 * EMULATOR_SCALE * 1.5)
        assert hostname(m) == "good-change"


def test_revert_now_and_timer_reset(fallback_emulator: ServerThread) -> None:
    with connect(fallback_emulator.port, "iosxe") as m:
        arm_dead_man_switch(m)
        set_hostname(m, "change")
        ia(m, f'<revert xmlns="{CISCO_IA}"><timer>3</timer></revert>')
        time.sleep(60 * EMULATOR_SCALE * 1.5)
        assert hostname(m) == "change"  # the one-minute timer was replaced by three
        ia(m, f'<revert xmlns="{CISCO_IA}"><now/></revert>')
        assert hostname(m) == "before"
        with pytest.raises(RPCError) as bad_timer:
            m.dispatch(etree.fromstring(f'<rollback xmlns="{CISCO_IA}"><target-url>x'
                                        "</target-url><revert-timer>121</revert-timer>"
                                        "</rollback>"))
    assert bad_timer.value.tag == "invalid-value"


def test_rollback_to_an_unknown_file_is_refused(fallback_emulator: ServerThread) -> None:
    with connect(fallback_emulator.port, "iosxe") as m, pytest.raises(RPCError) as missing:
        m.dispatch(etree.fromstring(f'<rollback xmlns="{CISCO_IA}"><target-url>'
                                    "bootflash:nothing</target-url></rollback>"))
    assert missing.value.message == \
        "%Error opening bootflash:nothing (No such file or directory)"


def test_kill_session_reverts_its_confirmed_commit_and_frees_its_lock(
        emulator: ServerThread) -> None:
    victim = connect(emulator.port)
    try:
        victim.lock("candidate")
        victim.edit_config(f'<config><native xmlns="{NATIVE}"><hostname>killed</hostname>'
                           "</native></config>", target="candidate")
        victim.commit(confirmed=True, timeout="600")
        with connect(emulator.port) as admin:
            assert hostname(admin) == "killed"
            admin.kill_session(str(victim.session_id))
            assert hostname(admin) == "Router"
            admin.lock("candidate")
        wait_until(lambda: not victim.connected, "the killed session to close")
    finally:
        if victim.connected:
            victim.close_session()


def test_save_config_through_the_iosxe_handler(emulator: ServerThread) -> None:
    with connect(emulator.port, "iosxe") as m:
        reply = m.save_config()
    assert "<result" in reply.xml


# --- IOS-XE: bad input ------------------------------------------------------------------------

def test_malformed_xml_gets_a_device_error_and_the_session_goes_on(
        emulator: ServerThread) -> None:
    replies = asyncio.run(raw_exchange(emulator.port, [
        b'<rpc message-id="1"><get-config></rpc>',
        f'<rpc message-id="2" xmlns="{NC}"><get-config><source><running/></source>'
        "</get-config></rpc>".encode(),
    ]))
    first, second = (etree.fromstring(r or b"<none/>") for r in replies)
    ns = {"nc": NC}
    assert first.xpath("//nc:error-tag/text()", namespaces=ns) == ["operation-failed"]
    assert second.get("message-id") == "2"
    assert second.xpath("//nc:data", namespaces=ns)


def test_unknown_rpc_names_the_element_and_namespace(emulator: ServerThread) -> None:
    with connect(emulator.port) as m:
        with pytest.raises(RPCError) as foreign:
            m.dispatch(etree.fromstring('<frobnicate xmlns="urn:example:nothing"/>'))
        with pytest.raises(RPCError) as base:
            m.dispatch(etree.fromstring(f'<frobnicate xmlns="{NC}"/>'))
        with pytest.raises(RPCError) as bad_operation:
            m.edit_config(f'<config {NC_OP}><native xmlns="{NATIVE}"><hostname '
                          'nc:operation="obliterate">x</hostname></native></config>',
                          target="candidate")
        with pytest.raises(RPCError) as bare_operation:
            m.edit_config(f'<config {NC_OP}><native xmlns="{NATIVE}"><hostname nc:operation='
                          '"merge">x</hostname><banner operation="delete"/></native></config>',
                          target="candidate")
        m.edit_config(f'<config {NC_OP}><native xmlns="{NATIVE}" nc:operation="merge"><hostname '
                      'nc:operation="replace">fine</hostname></native></config>',
                      target="candidate")
        assert "<hostname>fine</hostname>" in m.get_config("candidate").data_xml
    assert foreign.value.tag == "unknown-namespace"
    assert "<bad-namespace>urn:example:nothing</bad-namespace>" in foreign.value.info
    assert base.value.tag == "operation-not-supported"
    assert bad_operation.value.tag == "bad-attribute"
    assert "<bad-element>hostname</bad-element>" in bad_operation.value.info
    assert bare_operation.value.tag == "bad-attribute"
    assert "<bad-element>banner</bad-element>" in bare_operation.value.info


def test_wrong_credentials_are_refused_and_others_still_served(emulator: ServerThread) -> None:
    with connect(emulator.port) as kept:
        with pytest.raises(AuthenticationError):
            manager.connect(host="127.0.0.1", port=emulator.port, username=USER,
                            password="wrong", hostkey_verify=False, allow_agent=False,
                            look_for_keys=False, timeout=WAIT)
        kept.lock("candidate")
        kept.unlock("candidate")
