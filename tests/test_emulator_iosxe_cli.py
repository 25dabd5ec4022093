"""The IOS-XE SSH CLI emulator, driven only through real client libraries.

netmiko (`cisco_xe`) and napalm's `ios` driver talk to the emulator over SSH on a loopback port
as they would to a Catalyst 8000V: prompts and modes, configuration lines with IOS error
markers, SCP to flash:, configure replace with a revert timer, confirm and revert. A time
scale makes a revert-timer minute last a second or two; every wait is bounded.
"""

import asyncio
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import scp  # type: ignore[import-untyped]
import yaml
from conftest import EXAMPLES
from napalm import get_network_driver  # type: ignore[import-untyped]
from napalm.base.exceptions import (  # type: ignore[import-untyped]
    CommandErrorException,
    ReplaceConfigException,
)
from netmiko import BaseConnection, ConnectHandler
from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException

from inventory.model import Fabric
from inventory.topology import compile_fabric
from lab.emulators.datastore import DeviceClock
from lab.emulators.iosxe_cli import CliServer, CliServerThread
from lab.emulators.iosxe_cli_config import ConfigEditor, LineError, empty_config, parse_text, render
from lab.emulators.iosxe_cli_device import IosXeCliDevice
from lab.emulators.iosxe_cli_diff import contextual_diff, incremental_diff
from lab.emulators.ssh_server import HOST_KEY_FILE
from pipelines import pki_cmd
from tasks.pki.keys import PASSPHRASE_ENV
from tasks.render import render_gateway

USER = "lab"
PASSWORD = "lab-secret"
HOSTNAME = "par1-gw1"
GOLDEN = Path(__file__).parent / "golden" / "acme-hybrid"
ACME = EXAMPLES / "acme-hybrid.yaml"
IOSXE_GATEWAYS = ("fra1-gw1", "fra1-gw2", "par1-gw1")
IN_TIME_SCALE = 0.04   # a revert-timer minute lasts 2.4 s: plenty for napalm to confirm
REVERT_SCALE = 0.025   # a minute lasts 1.5 s: the revert tests wait for it
WAIT = 10.0            # upper bound on any wait for the emulator
DELAY = 0.05           # netmiko's sleeps between reads (1.0 suits a slow device CPU)
INVALID = "% Invalid input detected at '^' marker."


def _server(tmp_path: Path, scale: float = IN_TIME_SCALE, **options: Any) -> CliServerThread:
    server = CliServer(USER, PASSWORD, tmp_path / "state", scale, hostname=HOSTNAME, **options)
    return CliServerThread(server)


def _start(tmp_path: Path, scale: float = IN_TIME_SCALE, **options: Any) -> CliServerThread:
    return _server(tmp_path, scale, **options).start()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[CliServerThread]:
    thread = _start(tmp_path)
    yield thread
    thread.stop()


@pytest.fixture
def fast_emulator(tmp_path: Path) -> Iterator[CliServerThread]:
    thread = _start(tmp_path, REVERT_SCALE)
    yield thread
    thread.stop()


def netmiko(emu: CliServerThread, **kwargs: Any) -> BaseConnection:
    """A netmiko cisco_xe session; host keys are not checked unless kwargs ask for it."""
    options: dict[str, Any] = {"ssh_strict": False, "system_host_keys": False,
                               "global_delay_factor": DELAY}
    options.update(kwargs)
    return ConnectHandler(device_type="cisco_xe", host="127.0.0.1", port=emu.port,
                          username=options.pop("username", USER),
                          password=options.pop("password", PASSWORD), timeout=WAIT,
                          conn_timeout=WAIT, auth_timeout=WAIT, banner_timeout=WAIT,
                          allow_agent=False, use_keys=False, **options)


def send(conn: BaseConnection, command: str, **kwargs: Any) -> str:
    output = conn.send_command(command, **kwargs)
    assert isinstance(output, str)
    return output


def napalm_ios(emu: CliServerThread, **optional: Any) -> Any:
    """napalm's ios driver (netmiko underneath, SCP for candidates), no host key check."""
    args: dict[str, Any] = {"port": emu.port, "ssh_strict": False, "system_host_keys": False,
                            "allow_agent": False, "use_keys": False,
                            "global_delay_factor": DELAY}
    args.update(optional)
    driver = get_network_driver("ios")("127.0.0.1", USER, PASSWORD, timeout=int(WAIT),
                                       optional_args=args)
    driver.open()
    return driver


def golden_cli(gateway: str = HOSTNAME) -> str:
    return (GOLDEN / gateway / "config.cli").read_text()


def running(driver: Any) -> str:
    return str(driver.get_config(retrieve="running")["running"])


def candidate(driver: Any, addition: str) -> str:
    """The running configuration with addition before its final `end`."""
    base = running(driver)
    assert base.rstrip().endswith("end")
    return base.rstrip()[:-3] + addition


def _settings(config: str) -> list[str]:
    """The configuration lines without comments (the change stamp), blank lines and the
    `file prompt quiet` that napalm configures before its file operations."""
    return [line for line in config.splitlines()
            if line.strip() and line[0] != "!" and line != "file prompt quiet"]


def wait_until(check: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# ---- the grammar: dcvpn's rendered CLI is accepted line by line ---------------------------

def _example(data: dict[str, Any]) -> None:
    """acme-hybrid as it is."""


def _psk(data: dict[str, Any]) -> None:
    data["fabric"]["auth"] = {"method": "psk"}


def _ibgp(data: dict[str, Any]) -> None:
    data["fabric"]["bgp"] = {"mode": "ibgp", "asn": 65000, "bfd": data["fabric"]["bgp"]["bfd"]}
    for site in data["sites"]:
        site.pop("asn")


def _cbc_rsa(data: dict[str, Any]) -> None:
    data["fabric"].update(crypto="cbc", link_prefix=30,
                          auth={"method": "certificate", "key_type": "rsa-3072"})


VARIANTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "example": _example, "psk": _psk, "ibgp": _ibgp, "cbc-rsa": _cbc_rsa,
    "certificate-chain": _example,  # rendered with a PKI directory
}


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fabric CA and gateway certificates: config.cli then carries the certificate chain."""
    root = tmp_path_factory.mktemp("pki") / "pki"
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("DCVPN_"):
                mp.delenv(name)
        mp.setenv(PASSPHRASE_ENV, "iosxe-cli-test-passphrase")
        for step in ("init", "issue"):
            assert pki_cmd.main(["pki", step, "-f", str(ACME), "--pki-dir", str(root)]) == 0
    return root


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_cli_is_accepted_line_by_line(variant: str, pki_dir: Path) -> None:
    data = yaml.safe_load(ACME.read_text())
    VARIANTS[variant](data)
    fabric = compile_fabric(Fabric.model_validate(data))
    chain = pki_dir if variant == "certificate-chain" else None
    for gateway in IOSXE_GATEWAYS:
        text = render_gateway(fabric, gateway, chain)["config.cli"]
        editor = ConfigEditor(empty_config())
        rejected = [(line, result) for line in text.splitlines()
                    if isinstance(result := editor.apply(line), LineError)]
        assert rejected == [], f"{variant} {gateway}"
        tree = editor.root
        again, errors = parse_text("\n".join(render(tree)))
        assert errors == [] and again.same(tree), "running config does not round-trip"
        if chain is not None:  # IOS shows the chain exactly as rendered
            start = text.index("crypto pki certificate chain")
            assert text[start:text.index("\n!\n", start)] in "\n".join(render(tree))


def test_abbreviations_and_canonical_lines() -> None:
    root, errors = parse_text("int gi2\n desc uplink\n ip addr 10.0.0.1 255.255.255.0\n"
                              "interface Tunnel 7\n tun dest 192.0.2.1\n")
    assert errors == []
    assert render(root) == ["interface GigabitEthernet2", " description uplink",
                            " ip address 10.0.0.1 255.255.255.0", "!", "interface Tunnel7",
                            " tunnel destination 192.0.2.1", "!"]


def test_errors_name_the_offending_word() -> None:
    editor = ConfigEditor(empty_config())
    assert editor.apply("interface Tunnel10") is None
    assert editor.apply(" ip mtu 99999") == LineError("invalid", 8)
    assert editor.apply(" tunnel") == LineError("incomplete", 7)
    assert editor.apply(" ro") == LineError("ambiguous", 1)  # route-map or router
    assert editor.mode == "config-if"


def test_no_removes_settings_sections_and_neighbors() -> None:
    root, _ = parse_text(golden_cli())
    editor = ConfigEditor(root)
    for line in ("no interface Tunnel30", "router bgp 65004", "no neighbor 169.254.0.40",
                 "exit", "no ip http server", "crypto ikev2 profile DCVPN-IKE-fra1-par1-p0",
                 "no description"):
        assert editor.apply(line) is None, line
    text = "\n".join(render(root))
    assert "interface Tunnel30" not in text
    assert "169.254.0.40" not in text  # remote-as, description, ... and the address-family
    assert "neighbor 169.254.0.24 activate" in text
    assert "no ip http server" in text  # IOS shows this negation in the running config
    assert "profile DCVPN-IKE-fra1-par1-p0\n match identity remote fqdn fra1-gw1" in text
    assert "profile DCVPN-IKE-fra1-par1-p1\n description dcvpn fra1-par1-p1" in text


def test_contextual_and_incremental_diffs() -> None:
    old, _ = parse_text("hostname a\ninterface Loopback1\n description old\n"
                        "interface Loopback2\n ip address 10.9.9.9 255.255.255.255\n")
    new, _ = parse_text("hostname a\ninterface Loopback1\n description new\n"
                        "ip scp server enable\n")
    assert contextual_diff(old, new) == [
        "!Contextual Config Diffs:", "interface Loopback1", " +description new",
        "+ip scp server enable", "interface Loopback1", " -description old",
        "-interface Loopback2", " -ip address 10.9.9.9 255.255.255.255"]
    assert contextual_diff(new, new.copy()) == ["!Contextual Config Diffs:",
                                                "!No changes were found"]
    assert incremental_diff(old, new) == [
        "!List of Commands:", "interface Loopback1", " description new",
        "ip scp server enable", "no interface Loopback2", "end"]


def test_revert_timer_restores_the_snapshot() -> None:
    """The device's timer, without SSH: a fake scheduler fires it on demand."""
    fired: list[Callable[[], None]] = []

    class Handle:
        def cancel(self) -> None:
            fired.clear()

    def scheduler(delay: float, callback: Callable[[], None]) -> Handle:
        fired.append(callback)
        return Handle()

    device = IosXeCliDevice(DeviceClock(1.0), scheduler, hostname="r1", version="17.12.1",
                            username=USER, password=PASSWORD)
    before = device.config_text()
    snapshot = device.running.copy()
    device.merge("hostname r2\n", USER)
    device.arm_revert(snapshot, 1, USER)
    assert device.hostname == "r2" and device.archive == ["flash:archive-1"]
    fired[0]()
    assert device.hostname == "r1" and device.pending is None
    assert "hostname r1" in before and PASSWORD not in before


# ---- netmiko ---------------------------------------------------------------------------

def test_netmiko_show_commands_and_filters(emulator: CliServerThread) -> None:
    conn = netmiko(emulator)
    try:
        assert conn.find_prompt() == f"{HOSTNAME}#"
        version = send(conn, "show version")
        assert "Cisco IOS XE Software, Version 17.15.1a" in version
        assert f"{HOSTNAME} uptime is" in version
        applied = conn.send_config_set(golden_cli().splitlines())  # line by line, echoed
        assert "(config-ikev2-profile)#" in applied and "%" not in applied
        crypto = send(conn, "show running-config | section crypto")
        assert "crypto ikev2 profile DCVPN-IKE-fra1-par1-p0\n description dcvpn" in crypto
        assert "interface Tunnel" not in crypto and "router bgp" not in crypto
        assert send(conn, "show run | inc ip scp") == "ip scp server enable"
        bgp = send(conn, "show ip bgp summary")
        assert "local AS number 65004" in bgp
        assert "169.254.0.24    4        65001" in bgp and "Idle" in bgp
        ipsec = send(conn, "show crypto ipsec sa")
        assert "interface: Tunnel10" in ipsec and "current_peer 203.0.113.1 port 500" in ipsec
        assert send(conn, "show crypto ikev2 sa") == ""
        bad = send(conn, "show runnig-config")
        assert bad.splitlines() == [" " * (len(HOSTNAME) + 6) + "^", INVALID]
    finally:
        conn.disconnect()


def test_netmiko_config_set_marks_invalid_lines_and_saves(emulator: CliServerThread) -> None:
    conn = netmiko(emulator)
    try:
        output = conn.send_config_set([
            "interface Tunnel99", "description test tunnel", "ip mtu 1446",
            "tunnel mode ipsec ipv5", "router bgp 65004", "neighbor 192.0.2.9 remote-as 65009"])
        prompt_width = len(f"{HOSTNAME}(config-if)#")
        marker = " " * (prompt_width + len("tunnel mode ipsec ")) + "^"
        assert f"{HOSTNAME}(config-if)#tunnel mode ipsec ipv5\n{marker}\n{INVALID}" in output
        assert f"{HOSTNAME}(config-router)#neighbor 192.0.2.9" in output
        section = send(conn, "show running-config | section Tunnel99")
        assert section.splitlines() == ["interface Tunnel99", " description test tunnel",
                                        " ip mtu 1446"]
        assert "Tunnel99" not in send(conn, "show startup-config")
        assert "[OK]" in conn.save_config()
        assert "interface Tunnel99" in send(conn, "show startup-config")
        removed = conn.send_config_set(["no interface Tunnel99"])
        assert INVALID not in removed
        assert send(conn, "show running-config | include Tunnel99") == ""
        question = send(conn, "copy running-config startup-config", expect_string=r"\]\? $")
        assert question.strip() == "Destination filename [startup-config]?"
        assert "[OK]" in send(conn, "", expect_string=f"{HOSTNAME}#")  # Return: the default
        assert "Tunnel99" not in send(conn, "show startup-config")
    finally:
        conn.disconnect()


def test_netmiko_modes_and_prompts(emulator: CliServerThread) -> None:
    conn = netmiko(emulator)
    try:
        steps = [("crypto ikev2 profile P1", "(config-ikev2-profile)#"),
                 ("router bgp 65010", "(config-router)#"),
                 ("address-family ipv4", "(config-router-af)#"),
                 ("exit-address-family", "(config-router)#"),
                 ("route-map RM permit 10", "(config-route-map)#"),
                 ("interface GigabitEthernet1", "(config-if)#"),
                 ("exit", "(config)#")]
        for line, prompt in steps:
            conn.send_config_set([line], exit_config_mode=False)
            assert conn.find_prompt() == f"{HOSTNAME}{prompt}", line
        assert "ip scp server enable" in send(conn, "do show run | include scp",
                                                           expect_string=r"\(config\)#")
        conn.exit_config_mode()
        assert conn.find_prompt() == f"{HOSTNAME}#"
    finally:
        conn.disconnect()


def test_pager_until_terminal_length_0(emulator: CliServerThread) -> None:
    conn = netmiko(emulator)
    try:
        send(conn, "terminal length 6")
        page = send(conn, "show running-config", expect_string="--More--")
        assert page.splitlines()[:2] == ["Building configuration...", ""]
        assert len(page.splitlines()) == 6  # five lines and the --More-- line
        conn.write_channel(" ")  # the next page
        more = conn.read_until_pattern(pattern="--More--", read_timeout=WAIT)
        assert len(more.splitlines()) == 6 and "\b" in more  # --More-- erased first
        conn.write_channel("q")  # stop: back to the prompt
        stop = conn.read_until_pattern(pattern=f"{HOSTNAME}#", read_timeout=WAIT)
        assert "hostname" not in stop
        send(conn, "terminal length 0")
        assert send(conn, "show running-config").rstrip().endswith("end")
    finally:
        conn.disconnect()


def test_enable_secret_and_user_exec(tmp_path: Path) -> None:
    with _server(tmp_path, privilege=1, enable_secret="en-secret") as emu:
        conn = netmiko(emu, secret="en-secret")
        try:
            assert conn.find_prompt() == f"{HOSTNAME}>"
            assert INVALID in send(conn, "show running-config")  # not at level 1
            conn.enable()
            assert conn.find_prompt() == f"{HOSTNAME}#"
            assert "hostname par1-gw1" in send(conn, "show running-config")
        finally:
            conn.disconnect()
        wrong = netmiko(emu)
        try:  # IOS asks three times, then gives up
            answers = [send(wrong, line, expect_string=pattern, cmd_verify=echo)
                       for line, pattern, echo in (
                           ("enable", "Password:", True), ("nope", "Password:", False),
                           ("nope", "Password:", False), ("nope", rf"{HOSTNAME}>", False))]
            assert answers[-1].strip() == "% Bad secrets"
            assert wrong.find_prompt() == f"{HOSTNAME}>"
        finally:
            wrong.disconnect()


def test_wrong_credentials_fail_and_the_server_keeps_serving(emulator: CliServerThread) -> None:
    with pytest.raises(NetmikoAuthenticationException):
        netmiko(emulator, password="wrong")
    with pytest.raises(NetmikoAuthenticationException):
        netmiko(emulator, username="nobody")
    conn = netmiko(emulator)
    try:
        assert conn.find_prompt() == f"{HOSTNAME}#"
    finally:
        conn.disconnect()


def test_host_key_is_kept_and_verified(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    with _server(tmp_path) as emu:
        known.write_text(emu.known_hosts_line())
        key_file = tmp_path / "state" / HOST_KEY_FILE
        assert key_file.stat().st_mode & 0o777 == 0o600
        first_key = key_file.read_bytes()
        driver = napalm_ios(emu, ssh_strict=True, alt_host_keys=True, alt_key_file=str(known))
        try:  # the CLI session and the SCP connection both check the pinned key
            driver.load_replace_candidate(config=candidate(driver, "\nhostname pinned\nend\n"))
            assert "+hostname pinned" in driver.compare_config()
        finally:
            driver.close()
    assert key_file.read_bytes() == first_key
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    with _server(tmp_path) as emu:
        known.write_text(f"[127.0.0.1]:{emu.port} {other}")
        with pytest.raises(NetmikoTimeoutException, match="does not match"):
            netmiko(emu, ssh_strict=True, alt_host_keys=True, alt_key_file=str(known))


def test_asyncssh_exec_request_and_no_sftp(emulator: CliServerThread, tmp_path: Path) -> None:
    """An exec request runs one command; SFTP (which IOS-XE lacks) reaches no file at all."""
    marker = tmp_path / "host-file"
    marker.write_text("host")

    async def run() -> str:
        known = asyncssh.import_known_hosts(emulator.known_hosts_line())
        async with asyncssh.connect("127.0.0.1", emulator.port, username=USER,
                                    password=PASSWORD, known_hosts=known) as conn:
            result = await conn.run("show running-config | include hostname", timeout=WAIT)
            async with conn.start_sftp_client() as sftp:
                attempts = (lambda: sftp.listdir(str(tmp_path)), lambda: sftp.stat(str(marker)),
                            lambda: sftp.remove(str(marker)),
                            lambda: sftp.mkdir(str(tmp_path / "new")))
                for attempt in attempts:
                    with pytest.raises(asyncssh.SFTPOpUnsupported):
                        await attempt()
            return str(result.stdout)

    assert asyncio.run(run()) == f"hostname {HOSTNAME}\r\n"
    assert marker.read_text() == "host" and not (tmp_path / "new").exists()


# ---- SCP and flash: -------------------------------------------------------------------------

def test_scp_upload_dir_and_md5(emulator: CliServerThread, tmp_path: Path) -> None:
    local = tmp_path / "blob.cfg"
    local.write_bytes(b"hostname from-scp\n" * 40)
    conn = netmiko(emulator)
    try:
        transfer = conn._build_ssh_client()
        transfer.connect("127.0.0.1", port=emulator.port, username=USER, password=PASSWORD,
                         allow_agent=False, look_for_keys=False, timeout=WAIT)
        try:
            scp.SCPClient(transfer.get_transport()).put(str(local), "flash:/blob.cfg")
        finally:
            transfer.close()
        listing = send(conn, "dir flash:/blob.cfg")
        assert "Directory of flash:/blob.cfg" in listing
        assert f"-rw-              {local.stat().st_size}  " in listing
        assert "bytes free)" in send(conn, "dir flash:")
        digest = hashlib.md5(local.read_bytes(), usedforsecurity=False).hexdigest()
        assert send(conn, "verify /md5 flash:/blob.cfg").endswith(f"= {digest}")
        assert "%Error opening flash:/missing" in send(conn, "dir flash:/missing")
        conn.send_config_set(["no ip scp server enable"])
        transfer = conn._build_ssh_client()
        transfer.connect("127.0.0.1", port=emulator.port, username=USER, password=PASSWORD,
                         allow_agent=False, look_for_keys=False, timeout=WAIT)
        try:
            with pytest.raises(scp.SCPException, match="not enabled"):
                scp.SCPClient(transfer.get_transport()).put(str(local), "flash:/second.cfg")
        finally:
            transfer.close()
    finally:
        conn.disconnect()


# ---- napalm ios ----------------------------------------------------------------------------

TUNNEL = "\ninterface Tunnel42\n description napalm test\n ip mtu 1400\nend\n"


def test_napalm_replace_confirmed_in_time_stays(emulator: CliServerThread) -> None:
    driver = napalm_ios(emulator)
    try:
        driver.load_replace_candidate(config=candidate(driver, "\n" + golden_cli()))
        diff = driver.compare_config()
        assert "+interface Tunnel10\n +description dcvpn fra1-par1-p0 to fra1-gw1" in diff
        assert "+router bgp 65004" in diff
        deadline = time.monotonic() + IN_TIME_SCALE * 60
        driver.commit_config(revert_in=60)
        assert driver.has_pending_commit()
        driver.confirm_commit()
        assert not driver.has_pending_commit()
        time.sleep(max(0.0, deadline - time.monotonic()) + 0.5)  # past the revert deadline
        config = running(driver)
        assert "interface Tunnel10" in config and "router bgp 65004" in config
        assert "interface Tunnel10" in driver.get_config(retrieve="startup")["startup"]
    finally:
        driver.close()


def test_napalm_replace_not_confirmed_reverts(fast_emulator: CliServerThread) -> None:
    driver = napalm_ios(fast_emulator, dest_file_system="flash:")
    try:
        before = running(driver)
        driver.load_replace_candidate(config=candidate(driver, TUNNEL))
        driver.commit_config(revert_in=60)
        assert driver.has_pending_commit()
        assert "interface Tunnel42" in running(driver)
        assert wait_until(lambda: not driver.has_pending_commit())
        after = running(driver)
        assert "Tunnel42" not in after
        assert _settings(after) == _settings(before)
        assert fast_emulator.call(lambda d: d.archive) == ["flash:archive-1"]
    finally:
        driver.close()


def test_napalm_merge_not_confirmed_reverts(fast_emulator: CliServerThread) -> None:
    """commit_config(revert_in) of a merge goes through `configure terminal revert timer`."""
    driver = napalm_ios(fast_emulator)
    try:
        driver.load_merge_candidate(config=TUNNEL)
        assert driver.compare_config().splitlines()[:2] == ["+interface Tunnel42",
                                                            "+ description napalm test"]
        driver.commit_config(revert_in=60)
        assert driver.has_pending_commit()
        assert "interface Tunnel42" in running(driver)
        assert wait_until(lambda: "Tunnel42" not in running(driver))
        assert not driver.has_pending_commit()
    finally:
        driver.close()


def test_napalm_merge_commit_rollback_and_discard(emulator: CliServerThread) -> None:
    driver = napalm_ios(emulator)
    try:
        driver.load_merge_candidate(config=TUNNEL)
        driver.commit_config()
        assert "interface Tunnel42" in running(driver)
        assert "interface Tunnel42" in driver.get_config(retrieve="startup")["startup"]
        driver.rollback()  # no pending commit: configure replace flash:rollback_config.txt
        assert "Tunnel42" not in running(driver)
        driver.load_replace_candidate(config=candidate(driver, TUNNEL))
        driver.commit_config(revert_in=120)
        assert driver._get_pending_commits()["user"] == USER
        driver.rollback()  # a pending commit: configure revert now
        assert not driver.has_pending_commit()
        assert "Tunnel42" not in running(driver)
        assert driver.compare_config() != ""
        driver.discard_config()
        assert driver.compare_config() == ""
    finally:
        driver.close()


def test_napalm_refuses_invalid_lines_and_disabled_scp(emulator: CliServerThread) -> None:
    driver = napalm_ios(emulator)
    try:
        before = running(driver)
        driver.load_replace_candidate(
            config=candidate(driver, "\ninterface Tunnel42\n bogus command\nend\n"))
        with pytest.raises(ReplaceConfigException, match="successfully restored"):
            driver.commit_config()
        assert _settings(running(driver)) == _settings(before)
        driver.device.send_config_set(["no ip scp server enable"])
        with pytest.raises(CommandErrorException, match="ip scp server enable"):
            driver.load_merge_candidate(config=TUNNEL)
    finally:
        driver.close()
