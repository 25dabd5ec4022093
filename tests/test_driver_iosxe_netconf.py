"""The IOS-XE NETCONF driver and the deploy tasks through it, against the in-process IOS-XE
emulator (real SSH + NETCONF on a loopback port, the vendor YANG checking every edit).

A time scale makes an emulated second/minute last a fraction of one; every wait is bounded.
"""

import copy
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import yaml
from conftest import EXAMPLES, GOLDEN
from lxml import etree
from ncclient import manager  # type: ignore[import-untyped]
from ncclient.transport import session as nc_session  # type: ignore[import-untyped]
from netconf_support import NATIVE, require_yang
from nornir import InitNornir
from nornir.core import Nornir

from drivers.base import DeviceTarget, LoadMode
from drivers.errors import (
    CommitError,
    CommitPendingError,
    ConnectError,
    LoadError,
    LockError,
    NoPendingCommitError,
    UnsupportedError,
)
from drivers.iosxe_netconf import IosxeNetconfDriver
from drivers.iosxe_oper import device_state
from drivers.ncclient_session import CIPHERS_FIRST, IDLE_TICK
from inventory.model import Fabric
from inventory.topology import compile_fabric
from lab.emulators.iosxe_schema import load_yang
from lab.emulators.ssh_server import NetconfServer, ServerThread
from lab.yang import yang_dir
from tasks.deploy import commit_device, confirm_device, diff_device
from tasks.pki.psk import ensure_psks
from tasks.render import render_gateway
from tasks.render_context import gateway_view

USER = "lab"
PASSWORD = "lab-secret"
GATEWAY = "fra1-gw1"  # IOS-XE 17.15 over NETCONF in acme-hybrid
IN_TIME_SCALE = 0.025  # a minute lasts 1.5 s: plenty for the driver to confirm
REVERT_SCALE = 0.005  # a minute lasts 0.3 s: the revert tests wait for it
WAIT = 10.0  # upper bound on any wait
GOLDEN_XML = (GOLDEN / "acme-hybrid" / GATEWAY / "config.xml").read_text()
ARCHIVE = f'<config><native xmlns="{NATIVE}"><archive><path>bootflash:nx-</path></archive>' \
    "</native></config>"


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """ncclient sends a queued request only when its 0.1 s select tick ends; shorten it."""
    monkeypatch.setattr(nc_session, "TICK", 0.005)


@pytest.fixture(scope="module", autouse=True)
def loaded_yang() -> None:
    """Load the IOS-XE YANG once (seconds) so that emulators start in milliseconds."""
    require_yang()
    load_yang("17.15")


def _start(tmp_path: Path, scale: float, **options: Any) -> ServerThread:
    server = NetconfServer("iosxe", USER, PASSWORD, tmp_path / "state", scale,
                           device_options=options)
    return ServerThread(server).start(timeout=30)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[ServerThread]:
    thread = _start(tmp_path, IN_TIME_SCALE)
    yield thread
    thread.stop()


@pytest.fixture
def fast_emulator(tmp_path: Path) -> Iterator[ServerThread]:
    thread = _start(tmp_path, REVERT_SCALE)
    yield thread
    thread.stop()


def _with_archive(thread: ServerThread) -> ServerThread:
    """The published 17.15.1 hello (no :confirmed-commit) and an archive path configured."""
    with other_session(thread) as m:
        m.edit_config(ARCHIVE, target="running")
    return thread


@pytest.fixture
def fallback_emulator(tmp_path: Path) -> Iterator[ServerThread]:
    thread = _start(tmp_path, IN_TIME_SCALE, confirmed_commit=False)
    try:
        yield _with_archive(thread)
    finally:
        thread.stop()


@pytest.fixture
def fast_fallback_emulator(tmp_path: Path) -> Iterator[ServerThread]:
    thread = _start(tmp_path, REVERT_SCALE, confirmed_commit=False)
    try:
        yield _with_archive(thread)
    finally:
        thread.stop()


def known_hosts(emu: ServerThread, folder: Path) -> Path:
    path = folder / "known_hosts"
    path.write_text(emu.known_hosts_line())
    return path


def target(emu: ServerThread, **changes: Any) -> DeviceTarget:
    base = DeviceTarget(name=GATEWAY, host="127.0.0.1", port=emu.port, username=USER,
                        password=PASSWORD, known_hosts=known_hosts(emu, emu.server.state_dir),
                        timeout=WAIT)
    return replace(base, **changes)


@contextmanager
def driver(emu: ServerThread, **changes: Any) -> Iterator[IosxeNetconfDriver]:
    with IosxeNetconfDriver(target(emu, **changes)) as drv:
        yield drv


def other_session(emu: ServerThread) -> Any:
    return manager.connect(host="127.0.0.1", port=emu.port, username=USER, password=PASSWORD,
                           device_params={"name": "default"}, hostkey_verify=False,
                           allow_agent=False, look_for_keys=False, timeout=WAIT)


def running(emu: ServerThread) -> str:
    """The running configuration, read by a session of its own."""
    with other_session(emu) as m:
        return str(m.get_config("running").data_xml)


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


# --- fabrics ----------------------------------------------------------------------------

@cache
def _acme() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "acme-hybrid.yaml").read_text())
    return data


def acme(*mutations: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(_acme())
    for mutate in mutations:
        mutate(data)
    return data


def psk(data: dict[str, Any]) -> None:
    data["fabric"]["auth"] = {"method": "psk"}


def shorter_esp_lifetime(data: dict[str, Any]) -> None:
    data["fabric"]["crypto"]["esp"]["lifetime"] = "30m"


def without_par1(data: dict[str, Any]) -> None:
    data["sites"] = [s for s in data["sites"] if s["name"] != "par1"]


def rendered(data: dict[str, Any], gateway: str = GATEWAY) -> str:
    return render_gateway(compile_fabric(Fabric.model_validate(data)), gateway)["config.xml"]


def merge(emu: ServerThread, native_body: str) -> None:
    """The site's own configuration, committed by another client."""
    with other_session(emu) as m:
        m.edit_config(f'<config><native xmlns="{NATIVE}">{native_body}</native></config>',
                      target="candidate")
        m.commit()


# --- load, diff, commit confirmed ---------------------------------------------------------

def test_load_diff_confirmed_commit_and_confirm_stays(emulator: ServerThread) -> None:
    with driver(emulator) as drv:
        before = drv.get_running()
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        diff = drv.diff()
        assert drv.has_pending_commit() is False
        assert drv.commit(confirm_timeout=120) == 120  # seconds: NETCONF counts in seconds
        assert drv.persist_id is not None and drv.persist_id.startswith("dcvpn-")
        with driver(emulator) as second:  # another session sees it too
            assert second.has_pending_commit() is True
        drv.confirm()
        assert drv.has_pending_commit() is False
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        again = drv.diff()
        drv.discard()
    assert "DCVPN" not in before
    assert diff.native is not None
    assert "+ interface Tunnel20 / ip mtu 1446" in diff.native.splitlines()
    assert "+ router bgp 65001 / neighbor 169.254.0.1 / remote-as 65002" in diff.native
    assert "+ crypto ikev2 proposal DCVPN-IKE-PROP / encryption aes-gcm-256" in diff.native
    assert not any(line.startswith("- ") for line in diff.native.splitlines())
    assert diff.unified.startswith("--- running\n+++ candidate\n")
    assert "+        <name>DCVPN-IKE-PROP</name>" in diff.unified
    assert again.empty and again.native == "" and again.unified == ""
    time.sleep(120 * IN_TIME_SCALE * 1.3)  # past the timer the commit had
    after = running(emulator)
    assert "<name>DCVPN-IPSEC-fra1-iad1-p0</name>" in after
    assert "<hostname>Router</hostname>" in after  # the device's own config is kept
    assert "<GigabitEthernet>" in after


def test_a_native_diff_only_when_asked_and_the_session_without_nagle(
        emulator: ServerThread) -> None:
    """diff(unified=False) (a deploy shows the native diff) leaves the unified one out, and
    the session's socket sends small packets at once (TCP_NODELAY) and idles quietly."""
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        native_only = drv.diff(unified=False)
        both = drv.diff()
        session = drv._session._session
        sock = session.transport.sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert sock.gettimeout() == IDLE_TICK
        # replies are read by the calling thread, in the channel's recv: no reader thread,
        # and paramiko keeps no pipe to signal one through
        assert not session.is_alive()
        assert session._channel._pipe is None
        # an AEAD cipher both ways (one call a packet), as offered first (CIPHERS_FIRST)
        transport = session.transport
        assert (transport.local_cipher, transport.remote_cipher) == (CIPHERS_FIRST[0],) * 2
        drv.discard()
    # closing the driver ends the session and its SSH transport (and paramiko's thread)
    transport.join(timeout=2 * IDLE_TICK)
    assert not session.connected and not transport.is_alive()
    assert native_only.native == both.native and native_only.native
    assert native_only.unified == "" and both.unified.startswith("--- running\n")


def test_a_commit_has_the_device_derive_its_state_before_anyone_reads_it(
        emulator: ServerThread) -> None:
    """After a commit is answered, the emulator derives the committed intent (its peers'
    next state read finds it ready) without being asked for state."""
    device = emulator.server.device
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        drv.commit()
        wait_until(lambda: device._intent._key is device.running, "the intent of the commit")
        intent = device._intent._intent
    assert intent is not None and intent.local_as == 65001


def test_replace_removes_what_the_model_dropped_and_keeps_the_site_config(
        emulator: ServerThread) -> None:
    full, reduced = rendered(acme()), rendered(acme(without_par1))
    merge(emulator, '<crypto><ikev2 xmlns="http://cisco.com/ns/yang/Cisco-IOS-XE-crypto">'
                    "<proposal><name>SITE-PROP</name><encryption><aes-cbc-256/></encryption>"
                    "<integrity><sha256/></integrity><prf><sha256/></prf><group><fourteen/>"
                    "</group></proposal></ikev2></crypto><interface><Loopback><name>5</name>"
                    "<description>site-lan</description></Loopback></interface>")
    with driver(emulator) as drv:
        drv.load_candidate(full, LoadMode.REPLACE)
        drv.commit()
        drv.load_candidate(reduced, LoadMode.REPLACE)
        diff = drv.diff()
        drv.commit()
        after = drv.get_running()
    assert diff.native is not None
    assert "- interface Tunnel40 / ip mtu 1446" in diff.native.splitlines()
    assert "- router bgp 65001 / neighbor 169.254.0.25 / remote-as 65004" in diff.native
    added = [line for line in diff.native.splitlines() if line.startswith("+ ")]
    assert added and all(line.startswith("+ ip prefix-lists prefixes DCVPN-FABRIC ")
                         for line in added)  # the remaining prefixes renumbered, nothing else
    assert "- ip prefix-lists prefixes DCVPN-FABRIC 60 / action permit" in diff.native
    for gone in ("<name>40</name>", "DCVPN-IKE-fra1-par1-p0", "DCVPN-IPSEC-fra1-par1-p0",
                 "<id>169.254.0.25</id>", "<no>60</no>"):
        assert gone not in after, gone
    for kept in ("<name>20</name>", "<id>169.254.0.1</id>", "<name>SITE-PROP</name>",
                 "<description>site-lan</description>", "<hostname>Router</hostname>"):
        assert kept in after, kept


def test_a_rendered_entry_colliding_with_a_site_entry_is_refused(
        emulator: ServerThread) -> None:
    merge(emulator, "<interface><Tunnel><name>20</name><description>site backup link"
                    "</description></Tunnel></interface>")
    before = running(emulator)
    with driver(emulator) as drv, pytest.raises(LoadError, match=r"interface Tunnel 20 .*"
                                                                 r"dcvpn does not own it"):
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
    with other_session(emulator) as other:  # nothing left locked or in the candidate
        other.lock("candidate")
        assert "DCVPN" not in other.get_config("candidate").data_xml
        other.unlock("candidate")
    assert running(emulator) == before


def test_load_errors_carry_the_device_message_and_change_nothing(
        emulator: ServerThread) -> None:
    dangling = GOLDEN_XML.replace("<profile-option><name>DCVPN-IPSEC-fra1-iad1-p0</name>",
                                  "<profile-option><name>DCVPN-IPSEC-MISSING</name>")
    with driver(emulator) as drv:
        before = drv.get_running()
        with pytest.raises(LoadError, match="not well-formed XML"):
            drv.load_candidate("<config><native>", LoadMode.REPLACE)
        with pytest.raises(LoadError, match="not CLI text"):
            drv.load_candidate("hostname x", LoadMode.MERGE)
        with pytest.raises(LoadError, match="ipsec profile 'DCVPN-IPSEC-MISSING' is referred"):
            drv.load_candidate(dangling, LoadMode.REPLACE)  # <validate> catches it
        drv.discard()
        assert drv.get_running() == before


# --- not confirmed, dropped sessions, second commits --------------------------------------

def test_an_unconfirmed_commit_reverts_and_a_late_confirm_says_so(
        fast_emulator: ServerThread) -> None:
    with driver(fast_emulator) as drv:
        before = drv.get_running()
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        assert drv.commit(confirm_timeout=60) == 60  # 0.3 s at this scale
        wait_until(lambda: "DCVPN" not in running(fast_emulator), "the automatic rollback")
        assert drv.has_pending_commit() is False
        with pytest.raises(NoPendingCommitError, match="confirm timer expired and the device "
                                                       "restored the previous configuration"):
            drv.confirm()
        assert drv.get_running() == before
    with driver(fast_emulator) as late, pytest.raises(NoPendingCommitError,
                                                      match="no confirmed commit is pending"):
        late.rollback()


def test_a_dropped_session_keeps_the_persistent_commit_for_a_new_session(
        emulator: ServerThread) -> None:
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        drv.commit(confirm_timeout=600)
        persist_id = drv.persist_id
        (own,) = emulator.server.device.sessions
        with other_session(emulator) as admin:
            admin.kill_session(str(own))  # the session drops, as when the deploy host dies
    assert persist_id is not None
    with driver(emulator) as anonymous:
        assert anonymous.has_pending_commit() is True
        with pytest.raises(CommitError, match="persist id is unknown"):
            anonymous.confirm()
        with other_session(emulator) as admin:  # the failed confirm let its lock go
            admin.lock(target="candidate")
            admin.unlock(target="candidate")
    with driver(emulator, options={"persist_id": "dcvpn-not-the-token"}) as wrong, \
            pytest.raises(CommitError, match="another persist id"):
        wrong.confirm()
    with driver(emulator, options={"persist_id": persist_id}) as later:
        later.confirm()
        assert later.has_pending_commit() is False
    time.sleep(60 * IN_TIME_SCALE)  # the emulator's clock runs on: nothing reverts
    assert "DCVPN-IKE-PROP" in running(emulator)


def test_rollback_from_a_new_session_restores_the_previous_configuration(
        emulator: ServerThread) -> None:
    before = running(emulator)
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        drv.commit(confirm_timeout=600)
        persist_id = drv.persist_id
    with driver(emulator, options={"persist_id": persist_id or ""}) as later:
        assert later.has_pending_commit() is True
        later.rollback()
        assert later.has_pending_commit() is False
    assert running(emulator) == before


def test_a_second_commit_while_one_is_pending_is_refused(emulator: ServerThread) -> None:
    esp_30m = rendered(acme(shorter_esp_lifetime))
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        drv.commit(confirm_timeout=600)
        with driver(emulator) as second:
            with pytest.raises(CommitPendingError, match="already pending"):
                second.commit(confirm_timeout=600)
            with pytest.raises(CommitPendingError, match="refuses to lock running"):
                second.load_candidate(esp_30m, LoadMode.REPLACE)
        drv.load_candidate(esp_30m, LoadMode.REPLACE)
        with pytest.raises(CommitPendingError, match="already pending"):
            drv.commit(confirm_timeout=600)
        drv.discard()
        assert "<seconds-case>3600</seconds-case>" in drv.get_running()
        drv.confirm()
        assert drv.has_pending_commit() is False


def test_lock_held_by_another_session_names_the_holder_and_changes_nothing(
        emulator: ServerThread) -> None:
    with other_session(emulator) as holder, driver(emulator) as drv:
        before = drv.get_running()
        holder.lock("candidate")
        with pytest.raises(LockError) as denied:
            drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        assert denied.value.holder == f"session {holder.session_id}"
        assert f"locked by session {holder.session_id}" in str(denied.value)
        assert "nothing was changed" in str(denied.value)
        assert "DCVPN" not in holder.get_config("candidate").data_xml
        holder.lock("running")  # the driver let go of running when candidate was refused
        holder.unlock("running")
        holder.unlock("candidate")
        assert drv.get_running() == before
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        assert not drv.diff().empty
        drv.discard()
        holder.lock("candidate")  # discard released both locks and cleaned the candidate
        holder.unlock("candidate")


# --- cisco-ia revert timer (no :confirmed-commit) -----------------------------------------

def test_fallback_checkpoint_and_revert_timer_a_confirmed_change_stays(
        fallback_emulator: ServerThread) -> None:
    with driver(fallback_emulator) as drv:
        assert drv.strategy == "revert"
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        assert drv.commit(confirm_timeout=90) == 120  # whole minutes, rounded up
        assert drv.checkpoint is not None and drv.checkpoint.startswith("bootflash:nx-")
        assert drv.has_pending_commit() is True
        with driver(fallback_emulator) as other:
            with pytest.raises(UnsupportedError, match="only the session that armed it"):
                other.has_pending_commit()
            other.load_candidate(rendered(acme(shorter_esp_lifetime)), LoadMode.REPLACE)
            with pytest.raises(CommitPendingError, match="timed rollback"):
                other.commit(confirm_timeout=120)
            other.discard()
        drv.confirm()
        assert drv.has_pending_commit() is False
    time.sleep(2 * 60 * IN_TIME_SCALE * 1.3)  # past the two minutes the timer had
    assert "DCVPN-IKE-PROP" in running(fallback_emulator)
    with driver(fallback_emulator) as late, pytest.raises(
            NoPendingCommitError, match="no confirmed commit is pending on the device"):
        late.confirm()


def test_fallback_an_unconfirmed_change_reverts(fast_fallback_emulator: ServerThread) -> None:
    before = running(fast_fallback_emulator)
    with driver(fast_fallback_emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        assert drv.commit(confirm_timeout=60) == 60
        wait_until(lambda: running(fast_fallback_emulator) == before, "the timed rollback")
        assert drv.has_pending_commit() is False
        with pytest.raises(NoPendingCommitError, match="confirm timer expired"):
            drv.confirm()


def test_fallback_rollback_restores_the_checkpoint(fallback_emulator: ServerThread) -> None:
    before = running(fallback_emulator)
    with driver(fallback_emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        drv.commit(confirm_timeout=600)
        checkpoint = drv.checkpoint
        drv.rollback()  # pending: revert now
        assert running(fallback_emulator) == before
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        drv.commit()  # a plain commit: rollback goes back to the checkpoint
    with driver(fallback_emulator, options={"checkpoint": checkpoint or ""}) as later:
        later.rollback()
    assert running(fallback_emulator) == before


# --- reaching the device ----------------------------------------------------------------

def test_host_keys_are_pinned_even_though_ncclients_iosxe_handler_accepts_any(
        emulator: ServerThread, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(ConnectError, match="no host key for"):
        IosxeNetconfDriver(target(emulator, known_hosts=empty)).open()
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{emulator.port} {other}")
    with pytest.raises(ConnectError, match="host key does not match"):
        IosxeNetconfDriver(target(emulator, known_hosts=wrong)).open()
    with driver(emulator, known_hosts=wrong, verify_host_key=False) as drv:
        assert "<hostname>Router</hostname>" in drv.get_running()
    with driver(emulator) as drv:  # the pinned key is accepted
        assert drv.has_pending_commit() is False


# --- state --------------------------------------------------------------------------------

def test_get_state_reads_the_oper_models(emulator: ServerThread) -> None:
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        drv.commit()
        state = drv.get_state()
    # the emulator answers from its lab state (empty without peers): whatever it reports
    # must be this gateway's tunnels and neighbors
    assert {s.remote_address for s in state.ike_sas} <= PEERS
    assert {c.remote_address for c in state.child_sas} <= PEERS
    assert {b.neighbor for b in state.bgp_sessions} <= NEIGHBORS


PEERS = {"198.51.100.1", "203.0.113.10", "203.0.113.20"}
NEIGHBORS = {"169.254.0.1", "169.254.0.9", "169.254.0.25"}


CRYPTO_OPER = """<crypto-oper-data xmlns="http://cisco.com/ns/yang/Cisco-IOS-XE-crypto-oper">
  <crypto-ipsec-ident>
    <interface>Tunnel20</interface>
    <ident-data>
      <local-endpt-addr>203.0.113.1</local-endpt-addr>
      <remote-endpt-addr>198.51.100.1</remote-endpt-addr>
      <dh-group>crypto-dh-grouptype-group20</dh-group>
      <inbound-esp-sa><spi>1234</spi><sa-status>crypto-sa-status-active</sa-status>
        <transform-set>crypto-transform-esp-aes-gcm-256</transform-set></inbound-esp-sa>
      <outbound-esp-sa><spi>5678</spi><sa-status>crypto-sa-status-active</sa-status>
        <transform-set>crypto-transform-esp-aes-gcm-256</transform-set></outbound-esp-sa>
    </ident-data>
  </crypto-ipsec-ident>
  <crypto-ipsec-ident>
    <interface>Tunnel30</interface>
    <ident-data>
      <remote-endpt-addr>203.0.113.10</remote-endpt-addr>
      <outbound-esp-sa><sa-status>crypto-ipsec-sa-status-down</sa-status>
        <transform-set>crypto-transform-esp-aes-cbc-256 crypto-transform-esp-hmac-sha256
        </transform-set></outbound-esp-sa>
    </ident-data>
  </crypto-ipsec-ident>
  <crypto-ikev2-sa>
    <sa-id>1</sa-id>
    <sa-data>
      <sa-id>1</sa-id>
      <sa-status>crypto-sa-status-active</sa-status>
      <local-ip-addr>203.0.113.1</local-ip-addr>
      <remote-ip-addr>198.51.100.1</remote-ip-addr>
      <dh-group>crypto-dh-grouptype-group20</dh-group>
      <hash-algo>crypto-hash-alg-auth-hmac-sha384</hash-algo>
      <encr-alg>crypto-encr-alg-aes-gcm</encr-alg>
    </sa-data>
  </crypto-ikev2-sa>
</crypto-oper-data>"""
BGP_OPER = """<bgp-state-data xmlns="http://cisco.com/ns/yang/Cisco-IOS-XE-bgp-oper">
  <neighbors>
    <neighbor>
      <afi-safi>ipv4-unicast</afi-safi><vrf-name>default</vrf-name>
      <neighbor-id>169.254.0.1</neighbor-id>
      <session-state>fsm-established</session-state>
      <prefix-activity><received><current-prefixes>4</current-prefixes></received>
      </prefix-activity>
      <as>65002</as>
    </neighbor>
    <neighbor>
      <afi-safi>ipv4-unicast</afi-safi><vrf-name>default</vrf-name>
      <neighbor-id>169.254.0.9</neighbor-id>
      <session-state>fsm-active</session-state>
      <as>65003</as>
    </neighbor>
  </neighbors>
</bgp-state-data>"""


def test_state_mapping_of_oper_data_valid_per_the_yang() -> None:
    """Replies as the 17.15.1 oper models define them (checked with libyang first)."""
    require_yang()
    import libyang

    folder = yang_dir()
    assert folder is not None
    ctx = libyang.Context(str(folder / "iosxe" / "17.15.1"))
    try:
        for module in ("Cisco-IOS-XE-crypto-oper", "Cisco-IOS-XE-bgp-oper"):
            ctx.load_module(module)
        for document in (CRYPTO_OPER, BGP_OPER):
            node = ctx.parse_data_mem(document, "xml", strict=True, validate_present=True)
            assert node is not None
            node.free()
    finally:
        ctx.destroy()
    reply = '<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><data>{}</data>' \
        "</rpc-reply>"
    state = device_state(etree.fromstring(reply.format(CRYPTO_OPER + BGP_OPER)))
    assert [(s.local_address, s.remote_address, s.state, s.encryption, s.integrity, s.prf,
             s.dh_group) for s in state.ike_sas] == [
        ("203.0.113.1", "198.51.100.1", "ESTABLISHED", "aesgcm16", None, "sha384", 20)]
    assert [(c.name, c.remote_address, c.state, c.encryption, c.integrity, c.dh_group)
            for c in state.child_sas] == [
        ("Tunnel20", "198.51.100.1", "INSTALLED", "aes256gcm16", None, 20),
        ("Tunnel30", "203.0.113.10", "DOWN", "aes256", "sha256", None)]
    assert [(b.neighbor, b.remote_as, b.state, b.prefixes_received)
            for b in state.bgp_sessions] == [("169.254.0.1", 65002, "Established", 4),
                                             ("169.254.0.9", 65003, "Active", 0)]


# --- Nornir tasks ------------------------------------------------------------------------

def _nornir(tmp_path: Path, emu: ServerThread, data: dict[str, Any],
            monkeypatch: pytest.MonkeyPatch) -> Nornir:
    fabric = tmp_path / "fabric.yaml"
    fabric.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("DCVPN_USERNAME", USER)
    monkeypatch.setenv("DCVPN_PASSWORD", PASSWORD)
    monkeypatch.setenv("DCVPN_KNOWN_HOSTS", str(known_hosts(emu, tmp_path)))
    monkeypatch.setenv("DCVPN_TIMEOUT", str(WAIT))
    nr = InitNornir(runner={"plugin": "serial"}, logging={"enabled": False},
                    inventory={"plugin": "DcvpnInventory", "options": {"fabric": str(fabric)}})
    nr = nr.filter(name=GATEWAY)
    host = nr.inventory.hosts[GATEWAY]
    host.hostname, host.port = "127.0.0.1", emu.port
    return nr


def test_deploy_tasks_commit_confirm_and_a_second_run_is_a_no_op_without_secrets(
        emulator: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    data = acme(psk)
    secrets = tmp_path / "secrets"
    tunnels = [t.name for t in gateway_view(compile_fabric(Fabric.model_validate(data)),
                                            GATEWAY).tunnels]
    ensure_psks(secrets, tunnels)
    keys = [(secrets / "psk" / name).read_text().strip() for name in tunnels]
    monkeypatch.setenv("DCVPN_SECRETS_DIR", str(secrets))
    caplog.set_level(logging.DEBUG, logger="ncclient")
    nr = _nornir(tmp_path, emulator, data, monkeypatch)
    try:
        first_diff = nr.run(task=diff_device)[GATEWAY]
        deployed = nr.run(task=commit_device, confirm_timeout=300)[GATEWAY]
        confirmed = nr.run(task=confirm_device)[GATEWAY]
        again = nr.run(task=commit_device, confirm_timeout=300)[GATEWAY]
        bad = rendered(data).replace("<ip-id>203.0.113.1</ip-id>",
                                     f"<ip-id>${{dcvpn-secret:psk/{tunnels[0]}}}</ip-id>")
        failed = nr.run(task=diff_device, config=bad)[GATEWAY]
    finally:
        nr.close_connections()
    for result in (first_diff, deployed, confirmed, again):
        assert not result.failed, result.result
    assert deployed.changed is True and deployed.result["armed_seconds"] == 300
    assert confirmed.result["confirmed"] is True
    assert again.changed is False and again.result["committed"] is False
    assert "/ peer fra1-iad1-p0 / pre-shared-key <masked>" in first_diff.diff
    assert "<key><masked></key>" in first_diff.result["diff"]["unified"]
    assert failed.failed and isinstance(failed.exception, LoadError)
    shown = [str(r.result) + str(r.diff) for r in (first_diff, deployed, confirmed, again,
                                                   failed)]
    shown += [str(failed.exception), caplog.text]
    assert "Sending" in caplog.text  # ncclient did log the messages it sent ...
    for text in shown:  # ... and nothing anywhere holds a key
        assert not any(key in text for key in keys)
    device = running(emulator)  # while the device did get the real keys
    assert all(f"<key>{key}</key>" in device for key in keys)
