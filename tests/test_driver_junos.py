"""The JunOS NETCONF driver, its Nornir connection plugin and the deploy tasks, against the
in-process JunOS emulator (real SSH + NETCONF on a loopback port, no mocks of the device).

A time scale makes an emulated minute last a fraction of a second; every wait is bounded.
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
from nornir import InitNornir
from nornir.core import Nornir

from drivers.base import DeviceTarget, LoadMode
from drivers.errors import (
    CommitPendingError,
    ConnectError,
    LoadError,
    LockError,
    NoPendingCommitError,
    TimerError,
)
from drivers.junos_netconf import JunosNetconfDriver
from drivers.junos_oper import device_state
from drivers.junos_replace import OWNED, owned_entries
from drivers.nornir_connection import device_target
from inventory.model import Fabric
from inventory.topology import compile_fabric
from lab.emulators.ssh_server import NetconfServer, ServerThread
from tasks.deploy import commit_device, confirm_device, diff_device, rollback_device
from tasks.pki.psk import ensure_psks
from tasks.render import render_gateway
from tasks.render_context import gateway_view

USER = "lab"
PASSWORD = "lab-secret"
GATEWAY = "iad1-gw1"
IN_TIME_SCALE = 0.025  # a minute lasts 1.5 s: plenty for the driver to confirm
REVERT_SCALE = 0.005  # a minute lasts 0.3 s: the revert tests wait for it
WAIT = 10.0  # upper bound on any wait
GOLDEN_XML = (GOLDEN / "acme-hybrid" / GATEWAY / "config.xml").read_text()


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """ncclient sends a queued request only when its 0.1 s select tick ends; shorten it."""
    monkeypatch.setattr(nc_session, "TICK", 0.005)


def _start(tmp_path: Path, scale: float) -> ServerThread:
    server = NetconfServer("junos", USER, PASSWORD, tmp_path / "state", scale)
    return ServerThread(server).start()


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


def known_hosts(emu: ServerThread, folder: Path) -> Path:
    path = folder / "known_hosts"
    path.write_text(emu.known_hosts_line())
    return path


def target(emu: ServerThread, **changes: Any) -> DeviceTarget:
    folder = emu.server.state_dir
    base = DeviceTarget(name=GATEWAY, host="127.0.0.1", port=emu.port, username=USER,
                        password=PASSWORD, known_hosts=known_hosts(emu, folder), timeout=WAIT)
    return replace(base, **changes)


@contextmanager
def driver(emu: ServerThread, **changes: Any) -> Iterator[JunosNetconfDriver]:
    with JunosNetconfDriver(target(emu, **changes)) as drv:
        yield drv


def other_session(emu: ServerThread) -> Any:
    return manager.connect(host="127.0.0.1", port=emu.port, username=USER, password=PASSWORD,
                           device_params={"name": "junos"}, hostkey_verify=False,
                           allow_agent=False, look_for_keys=False, timeout=WAIT)


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def history(emu: ServerThread) -> list[tuple[str, str]]:
    """(comment, log) of every commit, newest first, read by a session of its own."""
    with other_session(emu) as m:
        entries = m.rpc("<get-commit-information/>").xpath("//commit-history")
        return [(e.findtext("comment") or "", e.findtext("log") or "") for e in entries]


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


def without_sjc1(data: dict[str, Any]) -> None:
    data["sites"] = [s for s in data["sites"] if s["name"] != "sjc1"]


def rendered(data: dict[str, Any], gateway: str = GATEWAY) -> str:
    return render_gateway(compile_fabric(Fabric.model_validate(data)), gateway)["config.xml"]


def owned(config: str) -> set[Any]:
    root = etree.fromstring(config.encode(), etree.XMLParser(remove_blank_text=True))
    return {(rule.path, identity) for rule in OWNED for identity, _ in owned_entries(root, rule)}


# --- load, diff, commit -----------------------------------------------------------------

def test_replace_load_names_the_change_and_commits(emulator: ServerThread) -> None:
    with driver(emulator) as drv:
        before = drv.get_running()
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        diff = drv.diff()
        assert drv.commit() is None
        after = drv.get_running()
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        again = drv.diff()
        drv.discard()
    assert "DCVPN-GW-10" not in before
    assert diff.native is not None
    assert "+          proposal DCVPN-IKE-PROP {" in diff.native
    assert "+              encryption-algorithm aes-256-gcm;" in diff.native
    assert "+        <name>DCVPN-GW-10</name>" in diff.unified
    assert diff.unified.startswith("--- running\n+++ candidate\n")
    assert "<name>DCVPN-GW-10</name>" in after
    assert "<host-name>vsrx1</host-name>" in after  # the device's own config is kept
    assert again.empty and again.native == "" and again.unified == ""
    assert history(emulator)[0][1] == "dcvpn commit"


def test_a_native_diff_only_when_asked_skips_reading_both_configurations(
        emulator: ServerThread) -> None:
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        native_only = drv.diff(unified=False)
        both = drv.diff()
        drv.discard()
    assert native_only.native == both.native and "DCVPN-GW-10" in (native_only.native or "")
    assert native_only.unified == "" and "<name>DCVPN-GW-10</name>" in both.unified


def test_replace_deletes_what_the_model_dropped_and_keeps_foreign_config(
        emulator: ServerThread) -> None:
    full, reduced = rendered(acme()), rendered(acme(without_sjc1))
    dropped = owned(full) - owned(reduced)
    assert dropped  # the sjc1 tunnel's gateway, VPN, st0 unit, zone binding ...
    with driver(emulator) as drv:
        drv.load_candidate("set security ike proposal SITE-PROP dh-group group14\n"
                           "set interfaces ge-0/0/1 unit 0 description site-lan",
                           LoadMode.MERGE)
        drv.load_candidate(full, LoadMode.REPLACE)
        drv.commit()
        drv.load_candidate(reduced, LoadMode.REPLACE)
        diff = drv.diff()
        drv.commit()
        running = drv.get_running()
    assert owned(running) == owned(reduced)
    assert "- 169.254.0.89/31" not in running and "<name>169.254.0.89</name>" not in running
    assert "<name>SITE-PROP</name>" in running
    assert "<description>site-lan</description>" in running
    assert diff.native is not None and "-   gateway DCVPN-GW-60 {" in diff.native


def test_load_errors_carry_the_device_message_and_change_nothing(
        emulator: ServerThread) -> None:
    bad = GOLDEN_XML.replace("<dh-group>group20</dh-group>", "<dh-group>group99</dh-group>")
    with driver(emulator) as drv:
        before = drv.get_running()
        with pytest.raises(LoadError, match="not well-formed XML"):
            drv.load_candidate("<configuration><system>", LoadMode.REPLACE)
        with pytest.raises(LoadError, match="replace needs the rendered XML"):
            drv.load_candidate("set system host-name x", LoadMode.REPLACE)
        with other_session(emulator) as other:  # refused input took no lock
            other.rpc("<lock-configuration/>")
            other.rpc("<unlock-configuration/>")
        with pytest.raises(LoadError, match=r"syntax error .*'group99'"):
            drv.load_candidate(bad, LoadMode.REPLACE)
        assert drv.diff().empty
        drv.discard()
        assert drv.get_running() == before


# --- confirmed commits ------------------------------------------------------------------

def test_confirm_timeout_rounds_up_to_minutes_and_a_confirmed_commit_stays(
        emulator: ServerThread) -> None:
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        with pytest.raises(TimerError, match="must be positive"):
            drv.commit(confirm_timeout=0)  # never sent as 0 minutes (= no timer)
        assert drv.commit(confirm_timeout=61) == 120  # 2 minutes armed, reported in seconds
        assert history(emulator)[0][0] == "commit confirmed, rollback in 2mins"
        with driver(emulator) as second:  # another session sees it too
            assert second.has_pending_commit() is True
        drv.confirm()
        assert drv.has_pending_commit() is False
    time.sleep(2 * 60 * IN_TIME_SCALE * 1.3)  # past the 2 minutes the timer had
    with driver(emulator) as drv:
        assert "<name>DCVPN-GW-10</name>" in drv.get_running()
        assert drv.has_pending_commit() is False


def test_an_unconfirmed_commit_reverts_and_a_late_confirm_says_so(
        fast_emulator: ServerThread) -> None:
    with driver(fast_emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        assert drv.commit(confirm_timeout=60) == 60
        wait_until(lambda: "DCVPN-GW-10" not in drv.get_running(), "the automatic rollback")
        assert drv.has_pending_commit() is False
        with pytest.raises(NoPendingCommitError, match="confirm timer already expired"):
            drv.confirm()
        with pytest.raises(NoPendingCommitError, match="confirm timer already expired"):
            drv.rollback()
        assert "DCVPN-GW-10" not in drv.get_running()


def test_a_second_commit_while_one_is_pending_is_refused(emulator: ServerThread) -> None:
    esp_30m = rendered(acme(shorter_esp_lifetime))
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        drv.commit(confirm_timeout=300)
        with driver(emulator) as second, pytest.raises(CommitPendingError,
                                                       match="already pending"):
            second.commit(confirm_timeout=300)
        drv.load_candidate(esp_30m, LoadMode.REPLACE)
        with pytest.raises(CommitPendingError, match="commit confirmed, rollback in 5mins"):
            drv.commit(confirm_timeout=300)
        drv.discard()
        assert "<lifetime-seconds>3600</lifetime-seconds>" in drv.get_running()
        drv.confirm()


def test_lock_held_by_another_session_names_the_holder_and_changes_nothing(
        emulator: ServerThread) -> None:
    with other_session(emulator) as holder, driver(emulator) as drv:
        before = drv.get_running()
        holder.rpc("<lock-configuration/>")
        with pytest.raises(LockError) as denied:
            drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        assert denied.value.holder == f"{USER} (pid {holder.session_id})"
        assert f"locked by {USER} (pid {holder.session_id})" in str(denied.value)
        assert "nothing was changed" in str(denied.value)
        assert drv.get_running() == before
        holder.rpc("<unlock-configuration/>")
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        assert not drv.diff().empty
        drv.discard()


def test_rollback_restores_the_previous_configuration(emulator: ServerThread) -> None:
    esp_30m = rendered(acme(shorter_esp_lifetime))
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        drv.commit()
        first = drv.get_running()
        drv.load_candidate(esp_30m, LoadMode.REPLACE)
        drv.commit(confirm_timeout=300)  # pending: rollback stops the timer and restores
        assert "<lifetime-seconds>1800</lifetime-seconds>" in drv.get_running()
        drv.rollback()
        assert drv.get_running() == first
        assert drv.has_pending_commit() is False
        assert emulator.server.device.store.pending is None  # type: ignore[attr-defined]
        drv.load_candidate(esp_30m, LoadMode.REPLACE)
        drv.commit()  # confirmed change (plain commit): rollback undoes the last change
        drv.rollback()
        assert drv.get_running() == first


def test_discard_drops_the_candidate_and_releases_the_lock(emulator: ServerThread) -> None:
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        assert not drv.diff().empty
        drv.discard()
        with other_session(emulator) as other:
            other.rpc("<lock-configuration/>")  # refused if the candidate were still dirty
            compare = other.rpc('<get-configuration compare="rollback" rollback="0" '
                                'format="text"/>').xpath("//configuration-output")[0].text
            other.rpc("<unlock-configuration/>")
        assert compare.strip() == ""


def test_private_candidate_leaves_the_shared_one_alone(emulator: ServerThread) -> None:
    with driver(emulator, options={"candidate": "private"}) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        with other_session(emulator) as other:
            other.rpc("<lock-configuration/>")  # the shared candidate is clean and free
            other.rpc("<unlock-configuration/>")
        assert "+          proposal DCVPN-IKE-PROP {" in (drv.diff().native or "")
        drv.commit()
        assert "<name>DCVPN-GW-10</name>" in drv.get_running()


# --- reaching the device ----------------------------------------------------------------

def test_wrong_credentials_and_no_listener_are_connect_errors(emulator: ServerThread) -> None:
    with pytest.raises(ConnectError, match="authentication failed for user 'lab'"):
        JunosNetconfDriver(target(emulator, password="wrong")).open()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(ConnectError, match="cannot open a NETCONF session"):
        JunosNetconfDriver(target(emulator, port=closed, verify_host_key=False)).open()


def test_a_broken_session_is_a_connect_error_and_the_device_timer_rolls_back(
        fast_emulator: ServerThread) -> None:
    with driver(fast_emulator) as drv:
        (own,) = fast_emulator.server.device.sessions
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        drv.commit(confirm_timeout=60)
        with other_session(fast_emulator) as admin:
            admin.kill_session(str(own))
        wait_until(lambda: not drv._session.connected, "the killed session to close")
        with pytest.raises(ConnectError, match="session to the device broke"):
            drv.confirm()
    with driver(fast_emulator) as drv:
        wait_until(lambda: "DCVPN-GW-10" not in drv.get_running(), "the automatic rollback")
        assert drv.has_pending_commit() is False


def test_host_keys_are_verified_by_default_with_an_explicit_opt_out(
        emulator: ServerThread, tmp_path: Path) -> None:
    assert DeviceTarget(name="x", host="h", port=830).verify_host_key is True
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(ConnectError, match="no host key for"):
        JunosNetconfDriver(target(emulator, known_hosts=empty)).open()
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{emulator.port} {other}")
    with pytest.raises(ConnectError, match="host key does not match"):
        JunosNetconfDriver(target(emulator, known_hosts=wrong)).open()
    with driver(emulator, known_hosts=wrong, verify_host_key=False) as drv:
        assert "<configuration>" in drv.get_running()
    with driver(emulator) as drv:  # the pinned key is accepted
        assert drv.has_pending_commit() is False


def test_connection_options_and_environment_build_the_target(tmp_path: Path) -> None:
    env = {"DCVPN_USERNAME": "env-user", "DCVPN_PASSWORD": "env-pw",
           "DCVPN_KNOWN_HOSTS": str(tmp_path / "kh"), "DCVPN_TIMEOUT": "7"}
    from_env = device_target("gw", "192.0.2.1", 830, None, None, {"transport": "netconf"}, env)
    assert (from_env.username, from_env.password) == ("env-user", "env-pw")
    assert from_env.known_hosts == tmp_path / "kh" and from_env.verify_host_key is True
    assert from_env.timeout == 7.0 and dict(from_env.options) == {}
    given = device_target("gw", "192.0.2.1", 830, "nornir-user", "pw",
                          {"transport": "netconf", "no_host_key_check": True,
                           "candidate": "private", "timeout": 3}, env)
    assert given.username == "nornir-user" and given.verify_host_key is False
    assert given.timeout == 3.0 and dict(given.options) == {"candidate": "private"}
    opted_out = device_target("gw", "h", 830, None, None, {},
                              {**env, "DCVPN_NO_HOST_KEY_CHECK": "1"})
    assert opted_out.verify_host_key is False


# --- state --------------------------------------------------------------------------------

def test_get_state_maps_the_emulator_answers(emulator: ServerThread) -> None:
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_XML, LoadMode.REPLACE)
        drv.commit()
        state = drv.get_state()
    assert state.ike_sas == () and state.child_sas == ()
    assert sorted((s.neighbor, s.remote_as, s.state) for s in state.bgp_sessions) == [
        ("169.254.0.0", 65001, "Active"), ("169.254.0.57", 65005, "Active"),
        ("169.254.0.89", 65006, "Active")]


def test_state_mapping_of_up_tunnels() -> None:
    """The shapes an SRX answers with once tunnels are up (summary RPCs, no namespaces)."""
    ike = etree.XML(
        "<ike-security-associations-information><ike-security-associations>"
        "<ike-sa-remote-address>203.0.113.1</ike-sa-remote-address>"
        "<ike-sa-state>UP</ike-sa-state><ike-sa-exchange-type>IKEv2</ike-sa-exchange-type>"
        "</ike-security-associations></ike-security-associations-information>")
    ipsec = etree.XML(
        "<ipsec-security-associations-information><total-active-tunnels>1"
        "</total-active-tunnels><ipsec-security-associations-block>"
        "<sa-block-state>up</sa-block-state><ipsec-security-associations>"
        "<sa-direction>&lt;</sa-direction><sa-tunnel-index>131073</sa-tunnel-index>"
        "<sa-remote-gateway>203.0.113.1</sa-remote-gateway>"
        "<sa-protocol>ESP:aes-gcm-256/None</sa-protocol><sa-vpn-name>DCVPN-VPN-10"
        "</sa-vpn-name></ipsec-security-associations></ipsec-security-associations-block>"
        "</ipsec-security-associations-information>")
    bgp = etree.XML(
        "<bgp-information><bgp-peer><peer-address>169.254.0.0+179</peer-address>"
        "<peer-as>65001</peer-as><peer-state>Established</peer-state>"
        "<bgp-rib><name>inet.0</name><received-prefix-count>4</received-prefix-count>"
        "</bgp-rib></bgp-peer></bgp-information>")
    state = device_state(ike, ipsec, bgp)
    assert [(s.remote_address, s.state) for s in state.ike_sas] == [
        ("203.0.113.1", "ESTABLISHED")]
    assert [(c.name, c.remote_address, c.state, c.encryption, c.integrity)
            for c in state.child_sas] == [
        ("DCVPN-VPN-10", "203.0.113.1", "INSTALLED", "aes256gcm16", None)]
    assert [(b.neighbor, b.remote_as, b.state, b.prefixes_received)
            for b in state.bgp_sessions] == [("169.254.0.0", 65001, "Established", 4)]


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


def test_dry_run_changes_nothing_and_a_second_deploy_is_a_no_op(
        emulator: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nr = _nornir(tmp_path, emulator, acme(), monkeypatch)
    try:
        commits = len(history(emulator))
        nr.data.dry_run = True  # Nornir's global dry run ...
        dry = nr.run(task=commit_device, confirm_timeout=300)[GATEWAY]
        nr.data.dry_run = False
        assert not dry.failed, dry.result
        assert dry.changed is True
        assert dry.result["committed"] is False and dry.result["dry_run"] is True
        assert "+          proposal DCVPN-IKE-PROP {" in dry.diff
        assert len(history(emulator)) == commits  # nothing committed ...
        with driver(emulator) as drv:  # ... and nothing left in the candidate
            assert "DCVPN" not in drv.get_running() and drv.diff().empty

        real = nr.run(task=commit_device, confirm_timeout=300)[GATEWAY]
        assert not real.failed, real.result
        assert real.changed is True and real.result["armed_seconds"] == 300
        confirmed = nr.run(task=confirm_device)[GATEWAY]
        assert confirmed.changed is True and confirmed.result["confirmed"] is True
        commits = len(history(emulator))

        again_dry = nr.run(task=diff_device)[GATEWAY]
        assert again_dry.changed is False and again_dry.diff == ""
        again = nr.run(task=commit_device, confirm_timeout=300)[GATEWAY]
        assert again.changed is False and again.result["committed"] is False
        assert len(history(emulator)) == commits
        dry_confirm = nr.run(task=confirm_device, dry_run=True)[GATEWAY]
        assert dry_confirm.changed is False and dry_confirm.result["pending"] is False
    finally:
        nr.close_connections()


def test_rollback_task_undoes_a_pending_deploy(emulator: ServerThread, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    nr = _nornir(tmp_path, emulator, acme(), monkeypatch)
    try:
        assert nr.run(task=commit_device, confirm_timeout=300)[GATEWAY].changed
        dry = nr.run(task=rollback_device, dry_run=True)[GATEWAY]
        assert dry.changed is True and dry.result["rolled_back"] is False
        assert nr.run(task=rollback_device)[GATEWAY].result["rolled_back"] is True
        with driver(emulator) as drv:
            assert "DCVPN" not in drv.get_running() and not drv.has_pending_commit()
    finally:
        nr.close_connections()


def test_no_secret_in_any_result_diff_error_or_log(
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
        results = [nr.run(task=diff_device), nr.run(task=commit_device, confirm_timeout=300),
                   nr.run(task=confirm_device)]
        bad = rendered(data).replace("<dh-group>group20</dh-group>",
                                     f"<dh-group>${{dcvpn-secret:psk/{tunnels[0]}}}</dh-group>")
        failed = nr.run(task=diff_device, config=bad)
    finally:
        nr.close_connections()
    assert [r[GATEWAY].failed for r in results] == [False, False, False]
    assert "ascii-text <masked>" in results[0][GATEWAY].diff
    assert failed[GATEWAY].failed and isinstance(failed[GATEWAY].exception, LoadError)
    shown = [str(r[GATEWAY].result) + str(r[GATEWAY].diff) for r in [*results, failed]]
    shown += [str(failed[GATEWAY].exception), caplog.text]
    assert "<masked>" in str(failed[GATEWAY].exception)
    assert "Sending" in caplog.text  # ncclient did log the messages it sent ...
    for text in shown:  # ... and nothing anywhere holds a key
        assert not any(key in text for key in keys)
    with driver(emulator) as drv:  # while the device did get the real keys
        running = drv.get_running()
    assert all(f"<ascii-text>{key}</ascii-text>" in running for key in keys)
