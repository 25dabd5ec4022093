"""The Junos NETCONF emulator, driven only through real client libraries.

ncclient (default and junos handlers), PyEZ and napalm's junos driver talk to the emulator
over SSH on a loopback port, as they would to an SRX. A time scale makes a confirm-timeout
minute last a fraction of a second; every wait is bounded.
"""

import asyncio
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from jnpr.junos import Device
from jnpr.junos.exception import CommitError, ConfigLoadError, ConnectError, LockError
from jnpr.junos.utils.config import Config
from lxml import etree
from napalm import get_network_driver
from ncclient import manager
from ncclient.operations.rpc import RPCError
from ncclient.transport import session as nc_session
from ncclient.transport.errors import AuthenticationError, SSHError
from ncclient.transport.session import NetconfBase

from lab.emulators import ssh_server
from lab.emulators.device import BASE_11, FlavourSpec
from lab.emulators.junos import SPEC, JunosDevice
from lab.emulators.ssh_server import HOST_KEY_FILE, NetconfServer, ServerThread

USER = "lab"
PASSWORD = "lab-secret"
IN_TIME_SCALE = 0.025    # a minute lasts 1.5 s: plenty for a client to confirm
REVERT_SCALE = 0.005     # a minute lasts 0.3 s: the revert tests wait for it
PAST_DEADLINE = IN_TIME_SCALE * 60 * 1.3
WAIT = 10.0              # upper bound on any wait for the emulator

IKE_XML = """<configuration><security><ike><proposal><name>P1</name>
<authentication-method>pre-shared-keys</authentication-method><dh-group>group20</dh-group>
<encryption-algorithm>aes-256-gcm</encryption-algorithm></proposal></ike></security>
</configuration>"""
IKE_TEXT = """security {
    ike {
        policy POL1 {
            proposals P1;
            pre-shared-key {
                ascii-text "$9$example";
            }
        }
    }
}"""
IKE_SET = "set security ike proposal P2 dh-group group21\nset system host-name fw-set"


def _start(tmp_path: Path, scale: float, platform: str = "junos") -> ServerThread:
    server = NetconfServer(platform, USER, PASSWORD, tmp_path / "state", scale)
    return ServerThread(server).start()


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """ncclient sends a queued request only when its 0.1 s select tick ends; shorten it."""
    monkeypatch.setattr(nc_session, "TICK", 0.005)


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


@pytest.fixture
def ssh_config(tmp_path: Path, emulator: ServerThread) -> Path:
    """An OpenSSH client config that pins the emulator's host key."""
    known = tmp_path / "known_hosts"
    known.write_text(emulator.known_hosts_line())
    config = tmp_path / "ssh_config"
    config.write_text(f"Host 127.0.0.1\n    UserKnownHostsFile {known}\n")
    return config


def nc(emu: ServerThread, handler: str = "default", **kwargs: Any) -> Any:
    """An ncclient session; host key checking is off unless the test passes ssh_config."""
    options: dict[str, Any] = {"hostkey_verify": False}
    options.update(kwargs)
    return manager.connect(host="127.0.0.1", port=emu.port, username=USER, password=PASSWORD,
                           device_params={"name": handler}, allow_agent=False,
                           look_for_keys=False, timeout=WAIT, **options)


def pyez(emu: ServerThread, **kwargs: Any) -> Device:
    """A PyEZ device; no host key check (PyEZ's default) unless kwargs ask for one."""
    dev = Device(host="127.0.0.1", port=emu.port, user=USER, passwd=PASSWORD,
                 gather_facts=False, **kwargs)
    dev.open()
    dev.timeout = int(WAIT)
    return dev


def napalm_junos(emu: ServerThread) -> Any:
    """napalm's junos driver; it does not verify host keys (PyEZ's default)."""
    driver = get_network_driver("junos")("127.0.0.1", USER, PASSWORD, timeout=int(WAIT),
                                         optional_args={"port": emu.port})
    driver.open()
    return driver


def host_name(dev: Device) -> str:
    config = dev.rpc.get_config(filter_xml="<system><host-name/></system>",
                                options={"database": "committed"})
    return str(config.findtext("system/host-name"))


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def commit_history(dev: Device) -> list[etree._Element]:
    return list(dev.rpc.get_commit_information().iter("commit-history"))


# --- ncclient --------------------------------------------------------------------------

def test_ncclient_default_handler_verifies_host_key_and_edits_candidate(
        emulator: ServerThread, ssh_config: Path) -> None:
    with nc(emulator, hostkey_verify=True, ssh_config=str(ssh_config)) as m:
        assert ":candidate" in m.server_capabilities
        assert ":confirmed-commit" in m.server_capabilities
        m.lock(target="candidate")
        m.edit_config(target="candidate", config="<config><configuration><system>"
                      "<host-name>discarded</host-name></system></configuration></config>")
        m.discard_changes()
        m.edit_config(target="candidate", config=f"<config>{IKE_XML}</config>")
        m.validate(source="candidate")
        m.commit()
        m.unlock(target="candidate")
        running = m.get_config(source="running").data_xml
    assert "<name>P1</name>" in running
    assert "<dh-group>group20</dh-group>" in running
    assert "discarded" not in running


def test_ncclient_default_confirmed_commit_is_kept_when_confirmed(
        emulator: ServerThread) -> None:
    with nc(emulator) as m:
        m.lock(target="candidate")
        m.edit_config(target="candidate", config=f"<config>{IKE_XML}</config>")
        m.commit(confirmed=True, timeout="60")
        m.commit()
        m.unlock(target="candidate")
        time.sleep(PAST_DEADLINE)
        assert "<name>P1</name>" in m.get_config(source="running").data_xml


def test_ncclient_default_unconfirmed_commit_reverts(fast_emulator: ServerThread) -> None:
    with nc(fast_emulator) as m:
        m.lock(target="candidate")
        m.edit_config(target="candidate", config=f"<config>{IKE_XML}</config>")
        m.commit(confirmed=True, timeout="60")
        m.unlock(target="candidate")
        wait_until(lambda: "<name>P1</name>" not in m.get_config(source="running").data_xml,
                   "the automatic rollback")


def test_ncclient_refuses_an_emulator_whose_key_is_not_pinned(
        emulator: ServerThread, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    known = tmp_path / "wrong_known_hosts"
    known.write_text(f"[127.0.0.1]:{emulator.port} {other}")
    config = tmp_path / "wrong_ssh_config"
    config.write_text(f"Host 127.0.0.1\n    UserKnownHostsFile {known}\n")
    with pytest.raises(SSHError, match="Unknown host key"):
        nc(emulator, hostkey_verify=True, ssh_config=str(config))


def test_ncclient_junos_handler_load_compare_commit(emulator: ServerThread) -> None:
    with nc(emulator, "junos") as m:
        m.lock()
        security = etree.XML(IKE_XML)[0]  # the handler wraps it in <configuration>
        m.load_configuration(action="merge", format="xml", config=security)
        m.load_configuration(action="merge", format="text", config=IKE_TEXT)
        m.load_configuration(action="set", config=IKE_SET.splitlines())
        diff = m.compare_configuration(rollback=0).xpath("//configuration-output")[0].text
        m.commit()
        m.unlock()
        committed = m.get_configuration(format="text").xpath("//configuration-text")[0].text
    assert "[edit system]\n-   host-name vsrx1;\n+   host-name fw-set;" in diff
    assert "+          proposal P1 {" in diff
    assert "proposal P2 {\n            dh-group group21;" in committed
    assert "policy POL1 {\n            proposals P1;" in committed


def test_ncclient_junos_confirmed_commit_is_kept_when_confirmed(emulator: ServerThread) -> None:
    with nc(emulator, "junos") as m:
        m.lock()
        m.load_configuration(action="set", config=["set system host-name confirmed-nc"])
        m.commit(confirmed=True, timeout="60")
        comment = m.rpc("<get-commit-revision-information/>").xpath("//comment")[0].text
        m.commit()
        m.unlock()
    assert comment == "commit confirmed, rollback in 1mins"
    time.sleep(PAST_DEADLINE)
    with nc(emulator, "junos") as m:
        text = m.get_configuration(format="text").xpath("//configuration-text")[0].text
    assert "host-name confirmed-nc;" in text


def test_ncclient_junos_unconfirmed_commit_reverts(fast_emulator: ServerThread) -> None:
    with nc(fast_emulator, "junos") as m:
        m.lock()
        m.load_configuration(action="set", config=["set system host-name never-confirmed"])
        m.commit(confirmed=True, timeout="60")
        m.unlock()

        def reverted() -> bool:
            reply = m.rpc('<get-configuration database="committed"/>')
            return reply.xpath("//host-name")[0].text == "vsrx1"

        wait_until(reverted, "the automatic rollback")
        history = m.rpc("<get-commit-information/>").xpath("//commit-history")
    assert [h.findtext("log") for h in history[:1]] == [
        "automatic rollback: commit confirmed was not confirmed"]
    assert history[1].findtext("comment") == "commit confirmed, rollback in 1mins"


def test_ncclient_chunked_framing_when_both_sides_speak_base_11(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Junos11(JunosDevice):
        spec = FlavourSpec(**{**SPEC.__dict__, "capabilities": (*SPEC.capabilities, BASE_11)})

    monkeypatch.setitem(ssh_server.PLATFORMS, "junos11", Junos11)
    thread = _start(tmp_path, IN_TIME_SCALE, "junos11")
    try:
        with nc(thread) as m:
            assert m._session._base == NetconfBase.BASE_11  # the client switched to chunks
            m.lock(target="candidate")
            m.edit_config(target="candidate", config=f"<config>{IKE_XML}</config>")
            m.commit()
            data = m.get_config(source="running", filter=(
                "subtree", "<configuration><security><ike/></security></configuration>"))
        assert "<name>P1</name>" in data.data_xml
        assert "<system>" not in data.data_xml
    finally:
        thread.stop()


# --- PyEZ -------------------------------------------------------------------------------

def test_pyez_verifies_host_key_and_loads_all_formats(
        emulator: ServerThread, ssh_config: Path) -> None:
    dev = pyez(emulator, hostkey_verify=True, ssh_config=str(ssh_config))
    try:
        cu = Config(dev)
        cu.lock()
        cu.load(IKE_XML, format="xml")
        cu.load(IKE_TEXT, format="text")
        cu.load(IKE_SET, format="set")
        diff = cu.diff()
        assert cu.commit_check() is True
        assert cu.commit(comment="pyez formats") is True
        cu.unlock()
        assert cu.diff() is None
        assert host_name(dev) == "fw-set"
        assert commit_history(dev)[0].findtext("log") == "pyez formats"
    finally:
        dev.close()
    assert "[edit security ike]" not in diff  # security is new: shown whole under [edit]
    assert "+  security {" in diff
    assert '+                  ascii-text "$9$example"; ## SECRET-DATA' in diff


def test_pyez_confirmed_commit_is_kept_when_confirmed(emulator: ServerThread) -> None:
    dev = pyez(emulator)
    try:
        cu = Config(dev)
        cu.lock()
        cu.load("set system host-name pyez-confirmed", format="set")
        assert cu.commit(confirm=1) is True
        assert cu.commit() is True
        cu.unlock()
        time.sleep(PAST_DEADLINE)
        assert host_name(dev) == "pyez-confirmed"
        comments = [h.findtext("comment") for h in commit_history(dev)[:2]]
        assert comments == [None, "commit confirmed, rollback in 1mins"]
    finally:
        dev.close()


def test_pyez_unconfirmed_commit_reverts_and_history_shows_it(
        fast_emulator: ServerThread) -> None:
    dev = pyez(fast_emulator)
    try:
        cu = Config(dev)
        cu.lock()
        cu.load("set system host-name pyez-unconfirmed", format="set")
        cu.commit(confirm=1)
        cu.unlock()
        wait_until(lambda: host_name(dev) == "vsrx1", "the automatic rollback")
        history = commit_history(dev)
        assert history[0].findtext("user") == "root"
        assert history[1].findtext("comment") == "commit confirmed, rollback in 1mins"
        assert "host-name pyez-unconfirmed" in (cu.diff(rb_id=1) or "")
    finally:
        dev.close()


def test_pyez_rollback_restores_an_earlier_commit(emulator: ServerThread) -> None:
    dev = pyez(emulator)
    try:
        cu = Config(dev)
        cu.lock()
        for name in ("first", "second"):
            cu.load(f"set system host-name {name}", format="set")
            cu.commit()
        cu.rollback(1)
        assert "+   host-name first;" in (cu.diff() or "")
        cu.commit()
        cu.unlock()
        assert host_name(dev) == "first"
    finally:
        dev.close()


def test_pyez_commit_check_reports_undefined_references(emulator: ServerThread) -> None:
    dev = pyez(emulator)
    try:
        cu = Config(dev)
        cu.lock()
        cu.load("set security ike gateway GW1 ike-policy NOPE\n"
                "set security ike gateway GW1 address 192.0.2.1\n"
                "set security ike gateway GW1 external-interface ge-0/0/0.0", format="set")
        with pytest.raises(CommitError) as failure:
            cu.commit_check()
        with pytest.raises(CommitError):
            cu.commit()
        cu.rollback(0)
        cu.unlock()
    finally:
        dev.close()
    assert "Referenced IKE policy NOPE not defined" in str(failure.value)
    assert failure.value.rpc_error["bad_element"] == "ike-policy"


def test_pyez_load_syntax_errors_are_refused_and_change_nothing(emulator: ServerThread) -> None:
    dev = pyez(emulator)
    try:
        cu = Config(dev)
        cu.lock()
        with pytest.raises(ConfigLoadError) as bad_text:
            cu.load("system { host-name x; bogus-statement 1; }", format="text")
        with pytest.raises(ConfigLoadError) as bad_value:
            cu.load("set security ike proposal P dh-group group99", format="set")
        with pytest.raises(ConfigLoadError) as bad_xml:
            cu.load("<configuration><system><hostname>x</hostname></system></configuration>",
                    format="xml")
        assert cu.diff() is None
        cu.unlock()
    finally:
        dev.close()
    assert bad_text.value.rpc_error["bad_element"] == "bogus-statement"
    assert bad_text.value.rpc_error["message"] == "syntax error"
    assert bad_value.value.rpc_error["bad_element"] == "group99"
    assert bad_xml.value.rpc_error["bad_element"] == "hostname"


def test_pyez_private_configuration(emulator: ServerThread) -> None:
    dev = pyez(emulator)
    other = pyez(emulator)
    try:
        with Config(dev, mode="private") as cu:
            cu.load("set system host-name private-edit", format="set")
            assert "+   host-name private-edit;" in (cu.diff() or "")
            assert Config(other).diff() is None  # the shared candidate is untouched
            cu.commit()
        assert host_name(other) == "private-edit"
    finally:
        other.close()
        dev.close()


# --- napalm -----------------------------------------------------------------------------

def test_napalm_merge_confirm_replace_discard_rollback(emulator: ServerThread) -> None:
    driver = napalm_junos(emulator)
    try:
        driver.load_merge_candidate(config="set system host-name napalm-merge")
        assert driver.compare_config() == (
            "[edit system]\n-   host-name vsrx1;\n+   host-name napalm-merge;")
        driver.commit_config(revert_in=60)
        assert driver.has_pending_commit() is True
        driver.confirm_commit()
        assert driver.has_pending_commit() is False
        time.sleep(PAST_DEADLINE)
        running = driver.get_config(retrieve="running")["running"]
        assert "host-name napalm-merge;" in running

        driver.load_replace_candidate(config="system {\n    host-name napalm-replace;\n}\n")
        replace_diff = driver.compare_config()
        assert "-   services {" in replace_diff
        driver.discard_config()
        assert driver.compare_config() == ""

        driver.load_merge_candidate(config="system { host-name napalm-second; }")
        driver.commit_config()
        driver.rollback()
        running = driver.get_config(retrieve="running")["running"]
        assert "host-name napalm-merge;" in running
    finally:
        driver.close()


def test_napalm_unconfirmed_commit_reverts(fast_emulator: ServerThread) -> None:
    driver = napalm_junos(fast_emulator)
    try:
        driver.load_merge_candidate(
            config="<configuration><system><host-name>napalm-x</host-name></system>"
                   "</configuration>")
        driver.commit_config(revert_in=60)
        wait_until(lambda: "host-name vsrx1;" in driver.get_config(
            retrieve="running")["running"], "the automatic rollback")
        assert driver.has_pending_commit() is False
    finally:
        driver.close()


# --- sessions, locks, bad input ---------------------------------------------------------

def test_lock_contention_names_the_holder(emulator: ServerThread) -> None:
    with nc(emulator, "junos") as holder, nc(emulator, "junos") as other:
        holder.lock()
        with pytest.raises(RPCError) as denied:
            other.lock()
        with pytest.raises(RPCError) as load_denied:
            other.load_configuration(action="set", config=["set system host-name no"])
        assert denied.value.tag == "lock-denied"
        assert "configuration database locked by" in denied.value.message
        assert f"(pid {holder.session_id})" in denied.value.message
        assert f"<session-id>{holder.session_id}</session-id>" in denied.value.info
        assert load_denied.value.tag == "lock-denied"
        holder.unlock()
        other.lock()
        other.unlock()


def test_pyez_lock_error_when_another_session_holds_it(emulator: ServerThread) -> None:
    dev, second = pyez(emulator), pyez(emulator)
    try:
        Config(dev).lock()
        with pytest.raises(LockError, match="configuration database locked by"):
            Config(second).lock()
    finally:
        second.close()
        dev.close()


def test_session_end_and_unlock_discard_uncommitted_changes(emulator: ServerThread) -> None:
    with nc(emulator, "junos") as m:
        m.lock()
        m.load_configuration(action="set", config=["set system host-name dropped"])
    with nc(emulator, "junos") as m:
        m.lock()  # would be refused ("configuration database modified") if changes stayed
        diff = m.compare_configuration(rollback=0).xpath("//configuration-output")[0].text
        m.unlock()
    assert diff == "\n"


def test_kill_session_releases_the_lock(emulator: ServerThread) -> None:
    victim = nc(emulator, "junos")
    victim.lock()
    victim.load_configuration(action="set", config=["set system host-name killed"])
    with nc(emulator, "junos") as admin:
        admin.kill_session(str(victim.session_id))
        admin.lock()
        text = admin.get_configuration(format="text").xpath("//configuration-text")[0].text
        admin.unlock()
    wait_until(lambda: not victim.connected, "the killed session to close")
    assert "host-name vsrx1;" in text


def test_unknown_rpc_gets_a_device_error(emulator: ServerThread) -> None:
    with nc(emulator, "junos") as m:
        with pytest.raises(RPCError) as failure:
            m.rpc("<get-flux-capacitor-information/>")
        assert failure.value.message == "syntax error"
        assert "<bad-element>get-flux-capacitor-information</bad-element>" in failure.value.info
        assert m.rpc("<get-software-information/>").xpath("//junos-version")[0].text == "24.4R1"


def test_wrong_credentials_are_refused_and_others_still_served(emulator: ServerThread) -> None:
    with pytest.raises(AuthenticationError):
        manager.connect(host="127.0.0.1", port=emulator.port, username=USER, password="wrong",
                        hostkey_verify=False, allow_agent=False, look_for_keys=False,
                        timeout=WAIT)
    with pytest.raises(ConnectError):
        Device(host="127.0.0.1", port=emulator.port, user="nobody", passwd=PASSWORD,
               gather_facts=False).open()
    with nc(emulator, "junos") as m:
        assert m.rpc("<get-system-uptime-information/>").xpath("//up-time")


async def _raw_exchange(port: int, messages: list[bytes]) -> list[bytes]:
    """Send the client hello and messages (base:1.0 framing); return the replies."""
    async with asyncssh.connect("127.0.0.1", port, username=USER, password=PASSWORD,
                                known_hosts=None, client_keys=None,
                                connect_timeout=WAIT) as conn:
        writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
        replies: list[bytes] = []
        buffer = b""

        async def read_message() -> bytes:
            nonlocal buffer
            while b"]]>]]>" not in buffer:
                chunk = await asyncio.wait_for(reader.read(65536), WAIT)
                if not chunk:
                    raise EOFError("session closed")
                buffer += chunk
            message, buffer = buffer.split(b"]]>]]>", 1)
            return message

        await read_message()  # server hello
        writer.write(b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
                     b"<capability>urn:ietf:params:netconf:base:1.0</capability>"
                     b"</capabilities></hello>]]>]]>")
        for message in messages:
            writer.write(message + b"]]>]]>")
            replies.append(await read_message())
        writer.close()
        return replies


def test_malformed_xml_gets_an_error_and_the_session_goes_on(emulator: ServerThread) -> None:
    replies = asyncio.run(_raw_exchange(emulator.port, [
        b'<rpc message-id="1"><get-configuration></rpc>',
        b'<rpc message-id="2" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        b"<get-software-information/></rpc>",
    ]))
    error = etree.fromstring(replies[0])
    ns = {"nc": "urn:ietf:params:xml:ns:netconf:base:1.0"}
    assert error.xpath("//nc:error-tag/text()", namespaces=ns) == ["operation-failed"]
    assert error.xpath("//nc:error-message/text()", namespaces=ns)[0].startswith(
        "xml parse error")
    answer = etree.fromstring(replies[1])
    assert answer.get("message-id") == "2"
    assert answer.xpath("//nc:junos-version/text()", namespaces=ns) == ["24.4R1"]
    with nc(emulator, "junos") as m:  # and other sessions are served
        assert m.rpc("<get-software-information/>") is not None


def test_rollback_history_keeps_49_previous_commits(emulator: ServerThread) -> None:
    with nc(emulator, "junos") as m:
        m.lock()
        for number in range(52):
            m.load_configuration(action="set", config=[f"set system host-name c{number}"])
            m.commit()
        oldest = m.rpc('<get-configuration rollback="49" format="text"/>')
        with pytest.raises(RPCError, match="Unable to find rollback 50"):
            m.rpc('<get-configuration rollback="50"/>')
        m.unlock()
    assert "host-name c2;" in oldest.xpath("//configuration-text")[0].text


def test_host_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = _start(tmp_path, 1.0)
    first_line = first.known_hosts_line().split(" ", 1)[1]
    first.stop()
    key_file = tmp_path / "state" / HOST_KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    second = _start(tmp_path, 1.0)
    try:
        assert second.known_hosts_line().split(" ", 1)[1] == first_line
    finally:
        second.stop()


def test_emulator_refuses_non_loopback_addresses(tmp_path: Path) -> None:
    server = NetconfServer("junos", USER, PASSWORD, tmp_path, 1.0, host="0.0.0.0")
    with pytest.raises(Exception, match="loopback"):
        ServerThread(server).start()
