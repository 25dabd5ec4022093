"""The IOS-XE SSH driver (netmiko + SCP) and the deploy tasks against the in-process IOS-XE CLI
emulator: real SSH on a loopback port, SCP to flash:, configure replace with a revert timer.

A time scale makes a revert-timer minute last a second or three; every wait is bounded.
"""

import copy
import logging
import re
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
from nornir import InitNornir
from nornir.core import Nornir

from drivers.base import DeviceTarget, LoadMode, driver_class
from drivers.errors import (
    CommitPendingError,
    ConnectError,
    LoadError,
    NoPendingCommitError,
    TimerError,
)
from drivers.iosxe_ssh import IosxeSshDriver, refused_lines
from drivers.iosxe_ssh_oper import bgp_sessions, child_sas, device_state, ike_sas
from drivers.iosxe_ssh_replace import Block, intended_config, owned, parse
from drivers.iosxe_ssh_table import CANDIDATE_FILE, CHECKPOINT_FILE, OWNER_PREFIX
from inventory.model import Fabric, Platform, Transport
from inventory.topology import compile_fabric
from lab.emulators.iosxe_cli import CliServer, CliServerThread
from lab.emulators.peers import PeerRegistry
from tasks.deploy import commit_device, confirm_device, diff_device, rollback_device
from tasks.pki.psk import ensure_psks, resolve_secrets
from tasks.render import render_gateway
from tasks.render_context import gateway_view
from tasks.render_iosxe import PREFIX

USER = "lab"
PASSWORD = "lab-secret"
GATEWAY = "par1-gw1"
IN_TIME_SCALE = 0.05  # a minute lasts 3 s: plenty to confirm, short enough to wait for a revert
WAIT = 15.0  # upper bound on any wait
GOLDEN_CLI = (GOLDEN / "acme-hybrid" / GATEWAY / "config.cli").read_text()
INVALID = "% Invalid input detected at '^' marker."


def _start(tmp_path: Path, scale: float) -> CliServerThread:
    server = CliServer(USER, PASSWORD, tmp_path / "state", scale, hostname=GATEWAY)
    return CliServerThread(server).start()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[CliServerThread]:
    thread = _start(tmp_path, IN_TIME_SCALE)
    try:
        yield thread
    finally:
        thread.stop()


def known_hosts(emu: CliServerThread, folder: Path) -> Path:
    path = folder / "known_hosts"
    path.write_text(emu.known_hosts_line() + "\n")
    return path


def target(emu: CliServerThread, **changes: Any) -> DeviceTarget:
    base = DeviceTarget(name=GATEWAY, host="127.0.0.1", port=emu.port, username=USER,
                        password=PASSWORD, timeout=WAIT,
                        known_hosts=known_hosts(emu, emu.server.state_dir))
    return replace(base, **changes)


@contextmanager
def driver(emu: CliServerThread, **changes: Any) -> Iterator[IosxeSshDriver]:
    with IosxeSshDriver(target(emu, **changes)) as drv:
        yield drv


def running(emu: CliServerThread) -> str:
    """The device's running configuration, read on the emulator's loop (no SSH session)."""
    return emu.call(lambda d: d.config_text())


def settings(config: str) -> list[str]:
    """Configuration lines without comments (the change stamp) and blank lines."""
    return [line for line in config.splitlines() if line.strip() and not line.startswith("!")]


def flash_files(emu: CliServerThread) -> set[str]:
    return emu.call(lambda d: set(d.flash.files))


def pending(emu: CliServerThread) -> bool:
    return emu.call(lambda d: d.pending is not None)


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def with_line(config: str, after: str, line: str) -> str:
    assert after in config
    return config.replace(after, f"{after}\n{line}", 1)


# --- fabrics ------------------------------------------------------------------------------

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


def rendered(data: dict[str, Any], gateway: str = GATEWAY) -> str:
    return render_gateway(compile_fabric(Fabric.model_validate(data)), gateway)["config.cli"]


def psk_candidate(tmp_path: Path) -> tuple[str, list[str]]:
    """par1-gw1's config.cli with PSKs, its secret references resolved, and the keys."""
    data = acme(psk)
    tunnels = [t.name for t in gateway_view(compile_fabric(Fabric.model_validate(data)),
                                            GATEWAY).tunnels]
    secrets = tmp_path / "secrets"
    ensure_psks(secrets, tunnels)
    keys = [(secrets / "psk" / name).read_text().strip() for name in tunnels]
    return resolve_secrets(rendered(data), secrets), keys


# --- registration, replace document ------------------------------------------------------

def test_registered_for_iosxe_over_ssh() -> None:
    assert driver_class(Platform.IOSXE, Transport.SSH) is IosxeSshDriver


def test_every_rendered_section_is_one_dcvpn_owns() -> None:
    """The ownership table follows the renderer: prefix and tunnel descriptions."""
    assert f"{PREFIX}-" == OWNER_PREFIX
    for variant in (acme(), acme(psk)):
        for gateway in ("fra1-gw1", "fra1-gw2", GATEWAY):
            blocks = [i for i in parse(rendered(variant, gateway)) if isinstance(i, Block)]
            assert blocks and all(owned(b) for b in blocks), gateway
    assert not owned(Block("interface Tunnel99", (" description backup isp",)))
    assert not owned(Block("crypto ikev2 profile OTHER"))


DEVICE = """!
hostname par1-gw1
!
aaa new-model
!
username ops privilege 15 secret 9 $9$abc$def
!
interface GigabitEthernet1
 description management
 ip address dhcp
!
interface Tunnel77
 description dcvpn old-par1-p0 to old-gw1
 tunnel protection ipsec profile DCVPN-IPSEC-old-par1-p0
!
interface Tunnel99
 description backup isp
 ip address 192.0.2.1 255.255.255.252
!
crypto ipsec profile DCVPN-IPSEC-old-par1-p0
 set transform-set DCVPN-ESP
!
router bgp 65004
 bgp router-id 192.0.2.99
 bgp log-neighbor-changes
 bgp graceful-restart
 neighbor 192.0.2.2 remote-as 64999
 neighbor 192.0.2.2 description isp
 neighbor 169.254.9.9 remote-as 65009
 neighbor 169.254.9.9 description dcvpn old-par1-p0 to old-gw1
 !
 address-family ipv4
  network 10.99.0.0 mask 255.255.0.0
  neighbor 192.0.2.2 activate
  neighbor 169.254.9.9 activate
 exit-address-family
!
line vty 0 4
 login local
 transport input ssh
!
end
"""


def test_replace_document_keeps_the_device_and_swaps_dcvpn_sections() -> None:
    intended = intended_config(DEVICE, GOLDEN_CLI, GATEWAY)
    for kept in ("aaa new-model", "username ops privilege 15", "interface GigabitEthernet1\n"
                 " description management", "interface Tunnel99\n description backup isp",
                 "line vty 0 4\n login local", " bgp graceful-restart",
                 " neighbor 192.0.2.2 remote-as 64999\n neighbor 192.0.2.2 description isp",
                 "  neighbor 192.0.2.2 activate"):
        assert kept in intended, kept
    for dropped in ("Tunnel77", "DCVPN-IPSEC-old-par1-p0", "169.254.9.9", "192.0.2.99",
                    "network 10.99.0.0"):
        assert dropped not in intended, dropped
    assert " bgp router-id 203.0.113.20" in intended
    assert "interface Tunnel10\n description dcvpn fra1-par1-p0" in intended
    # rendered order, crypto before the interfaces that use it, one BGP process
    order = [intended.index(s) for s in ("crypto pki trustpoint DCVPN-acme",
                                         "crypto ipsec profile DCVPN-IPSEC-fra1-par1-p0",
                                         "interface Tunnel10", "router bgp 65004")]
    assert order == sorted(order) and intended.count("router bgp") == 1
    assert intended.rstrip().endswith("end")
    # the result is stable: replacing again with the same candidate changes nothing
    assert intended_config(intended, GOLDEN_CLI, GATEWAY) == intended


def test_replace_document_refuses_what_dcvpn_does_not_own() -> None:
    foreign_tunnel = DEVICE.replace("interface Tunnel99", "interface Tunnel10")
    with pytest.raises(LoadError, match=r"`interface Tunnel10` on the device is not dcvpn's"):
        intended_config(foreign_tunnel, GOLDEN_CLI, GATEWAY)
    with pytest.raises(LoadError, match=r"`hostname other` is not one dcvpn owns"):
        intended_config(DEVICE, "hostname other\n" + GOLDEN_CLI, GATEWAY)
    other_as = DEVICE.replace("router bgp 65004", "router bgp 65100")
    with pytest.raises(LoadError, match=r"router bgp 65100.*bgp graceful-restart"):
        intended_config(other_as, GOLDEN_CLI, GATEWAY)


def test_refused_lines_name_the_line_before_the_marker() -> None:
    echoed = (f"{GATEWAY}(config)#interface Tunnel5\n{GATEWAY}(config-if)#ip mtu 99999\n"
              f"{' ' * 30}^\n{INVALID}\n\n{GATEWAY}(config-if)#tunnel\n% Incomplete command.\n")
    found = [(r.line, r.message) for r in refused_lines(echoed)]
    assert found == [("ip mtu 99999", INVALID), ("tunnel", "% Incomplete command.")]
    assert refused_lines("Total number of passes: 1\nRollback Done\n") == []


# --- parsers against IOS' own layout ---------------------------------------------------------
# Samples: CiscoTestAutomation/genieparser (Apache-2.0), captures from IOS-XE devices:
#   src/genie/libs/parser/iosxe/tests/ShowCryptoIkev2Sa/cli/equal/golden_output_output.txt
#   src/genie/libs/parser/iosxe/tests/ShowCryptoIkev2Sa/cli/equal/golden_output2_output.txt
#   src/genie/libs/parser/iosxe/tests/ShowCryptoIkev2SaDetail/cli/equal/golden_output_output.txt
#   src/genie/libs/parser/iosxe/tests/ShowCryptoIpsecSa/cli/equal/golden_output_output.txt
#   src/genie/libs/parser/iosxe/tests/ShowBgpSummary/cli/equal/golden_output1_output.txt
#   src/genie/libs/parser/iosxe/tests/ShowIpBgpSummary/cli/equal/golden_output2_output.txt
# (excerpts; the IPsec one lost its indentation in that capture, as some terminals do)

IKEV2_SA = """IPv4 Crypto IKEv2 SA

Tunnel-id Local                 Remote                fvrf/ivrf            Status
1         66.66.66.1/500        66.66.66.2/500        none/none            READY
      Encr: AES-CBC, keysize: 128, PRF: SHA1, Hash: SHA96, DH Grp:16, Auth sign: PSK, Auth verify: PSK
      Life/Active Time: 86400/735 sec

 IPv6 Crypto IKEv2 SA

"""  # noqa: E501
IKEV2_SA_V6 = """ IPv4 Crypto IKEv2  SA

 IPv6 Crypto IKEv2  SA

Tunnel-id    fvrf/ivrf              Status
1          none/none             READY
Local  2001:DB8:1101::131/500
Remote  2001:DB8:1201::122/500
      Encr: AES-CBC, keysize: 256, PRF: SHA512, Hash: SHA512, DH Grp:21, Auth sign: PSK, Auth verify: PSK
      PQC Key Exchange: ML-KEM-1024
      Life/Active Time: 86400/218 sec
"""  # noqa: E501
IKEV2_SA_DETAILED = """Tunnel-id Local                 Remote                fvrf/ivrf            Status
973       92.1.121.1/500        22.1.1.2/500          none/121             READY
      Encr: AES-CBC, keysize: 256, PRF: SHA256, Hash: SHA256, DH Grp:19, Auth sign: PSK, Auth verify: PSK
      Life/Active Time: 86400/12689 sec
      CE id: 76468, Session-id: 17155
      Status Description: Negotiation done
      Local spi: 000D3669857A0F82       Remote spi: E0419B1DB02DE6AE
      Local id: user2621@cisco.com
      Remote id: 22.1.1.2
      Local req msg id:  214            Remote req msg id:  6
      DPD configured for 60 seconds, retry 3
"""  # noqa: E501
IPSEC_SA = """interface: GigabitEthernet3
Crypto map tag: vpn-crypto-map, local addr 1.1.1.2

protected vrf: (none)
local ident (addr/mask/prot/port): (20.20.20.0/255.255.255.0/0/0)
remote ident (addr/mask/prot/port): (10.10.10.0/255.255.255.0/0/0)
current_peer 1.1.1.1 port 500
PERMIT, flags={origin_is_acl,}

#pkts encaps: 4, #pkts encrypt: 4, #pkts digest: 4
#pkts decaps: 4, #pkts decrypt: 4, #pkts verify: 4

local crypto endpt.: 1.1.1.2, remote crypto endpt.: 1.1.1.1
current outbound spi: 0x397C36EE(964441838)
PFS (Y/N): N, DH group: none

inbound esp sas:
spi: 0x658F7C11(1703902225)
transform: esp-256-aes esp-sha256-hmac ,
in use settings ={Tunnel, }
Status: ACTIVE(ACTIVE)

inbound ah sas:

outbound esp sas:
spi: 0x397C36EE(964441838)
transform: esp-256-aes esp-sha256-hmac ,
Status: ACTIVE(ACTIVE)

protected vrf: (none)

local ident (addr/mask/prot/port): (40.40.40.0/255.255.255.0/0/0)
remote ident (addr/mask/prot/port): (30.30.30.0/255.255.255.0/0/0)
current_peer 1.1.1.1 port 500
current outbound spi: 0x0(0)
PFS (Y/N): N, DH group: none

inbound esp sas:

outbound esp sas:

interface: Tunnel0
Crypto map tag: Tunnel0-head-0, local addr 2.2.2.2

protected vrf: (none)
local ident (addr/mask/prot/port): (0.0.0.0/0.0.0.0/0/0)
remote ident (addr/mask/prot/port): (0.0.0.0/0.0.0.0/0/0)
current_peer 2.2.2.1 port 500
PFS (Y/N): N, DH group: none

inbound esp sas:
spi: 0xA54D38A4(2773301412)
transform: esp-256-aes esp-sha256-hmac ,
Status: ACTIVE(ACTIVE)
"""
BGP_SUMMARY = """
Router#show bgp vpnv4 unicast rd 5918:51 summary
BGP router identifier 192.168.10.254, local AS number 5918
BGP table version is 33086714, main routing table version 33086714
BGP activity 11724891/9708585 prefixes, 23637710/17596802 paths, scan interval 60 secs

Neighbor        V           AS MsgRcvd MsgSent   TblVer  InQ OutQ Up/Down  State/PfxRcd
192.168.10.253  4        65555     619     695 33086714    0    0 05:07:45      100
Router#
"""
BGP_SUMMARY_WRAPPED = """For address family: IPv6 Unicast
BGP router identifier 2.2.2.2, local AS number 200
Neighbor        V           AS MsgRcvd MsgSent   TblVer  InQ OutQ Up/Down  State/PfxRcd
1000:192:168:0:1::1
                4          100       0       0        1    0    0 00:00:07 Idle
"""


def test_ikev2_sa_parser_reads_ios_layout() -> None:
    (sa,) = ike_sas(IKEV2_SA)
    assert sa.local_address == "66.66.66.1" and sa.remote_address == "66.66.66.2"
    assert sa.state == "ESTABLISHED" and sa.encryption == "aes128"
    assert (sa.integrity, sa.prf, sa.dh_group) == ("sha1", "sha1", 16)
    (v6,) = ike_sas(IKEV2_SA_V6)
    assert (v6.local_address, v6.remote_address) == ("2001:DB8:1101::131", "2001:DB8:1201::122")
    assert (v6.encryption, v6.integrity, v6.dh_group) == ("aes256", "sha512", 21)
    gcm = IKEV2_SA.replace("AES-CBC, keysize: 128, PRF: SHA1, Hash: SHA96, DH Grp:16",
                           "AES-GCM, keysize: 256, PRF: SHA384, Hash: None, DH Grp:20")
    (ours,) = ike_sas(gcm.replace("READY", "IN-NEG"))
    assert (ours.encryption, ours.integrity, ours.prf, ours.dh_group, ours.state) == (
        "aes256gcm16", None, "sha384", 20, "CONNECTING")
    (detailed,) = ike_sas(IKEV2_SA_DETAILED)
    assert (detailed.local_id, detailed.remote_id) == ("user2621@cisco.com", "22.1.1.2")
    assert (detailed.encryption, detailed.prf, detailed.dh_group) == ("aes256", "sha256", 19)
    assert ike_sas("") == ()


def test_ipsec_sa_parser_reads_ios_layout() -> None:
    sas = child_sas(IPSEC_SA)
    assert [(c.name, c.remote_address, c.state, c.encryption, c.integrity) for c in sas] == [
        ("GigabitEthernet3", "1.1.1.1", "INSTALLED", "aes256", "sha256"),
        ("Tunnel0", "2.2.2.1", "INSTALLED", "aes256", "sha256")]  # the flow without SAs: none
    gcm = IPSEC_SA.replace("esp-256-aes esp-sha256-hmac", "esp-gcm 256").replace(
        "DH group: none", "DH group: group20")
    assert {(c.encryption, c.integrity, c.dh_group) for c in child_sas(gcm)} == {
        ("aes256gcm16", None, 20)}


def test_bgp_summary_parser_reads_ios_layout() -> None:
    (up,) = bgp_sessions(BGP_SUMMARY)
    assert (up.neighbor, up.remote_as, up.state, up.prefixes_received) == (
        "192.168.10.253", 65555, "Established", 100)
    (wrapped,) = bgp_sessions(BGP_SUMMARY_WRAPPED)
    assert (wrapped.neighbor, wrapped.remote_as, wrapped.state) == ("1000:192:168:0:1::1", 100,
                                                                   "Idle")
    assert bgp_sessions("% BGP not active\n") == ()
    state = device_state(IKEV2_SA, IPSEC_SA, BGP_SUMMARY)
    assert len(state.ike_sas) == 1 and len(state.child_sas) == 2 and len(state.bgp_sessions) == 1


# --- load, diff, commit -------------------------------------------------------------------

def test_replace_confirmed_in_time_stays(emulator: CliServerThread) -> None:
    before = running(emulator)
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_CLI, LoadMode.REPLACE)
        assert CANDIDATE_FILE in flash_files(emulator)
        diff = drv.diff()
        native = diff.native or ""
        assert "+interface Tunnel10\n +description dcvpn fra1-par1-p0 to fra1-gw1" in native
        assert "+router bgp 65004" in native
        assert "-interface GigabitEthernet1" not in native  # management stays
        assert "+interface Tunnel10" in diff.unified and "-username" not in diff.unified
        assert settings(running(emulator)) == settings(before)  # a diff changes nothing
        armed = drv.commit(confirm_timeout=60)
        deadline = time.monotonic() + IN_TIME_SCALE * 60
        assert armed == 60 and drv.has_pending_commit()
        assert CANDIDATE_FILE not in flash_files(emulator)  # it held the candidate's secrets
        drv.confirm()
        assert not drv.has_pending_commit()
    time.sleep(max(0.0, deadline - time.monotonic()) + 0.5)  # past the revert deadline
    after = running(emulator)
    assert "interface Tunnel10" in after and "router bgp 65004" in after
    for line in ("interface GigabitEthernet1", " description management", "username lab ",
                 "line vty 0 4", " transport input ssh", "archive", "ip scp server enable"):
        assert any(kept.startswith(line) for kept in after.splitlines()), line
    assert "interface Tunnel10" in (emulator.call(lambda d: d.startup) or "")  # saved
    with driver(emulator) as drv:  # a second run with the same candidate changes nothing
        drv.load_candidate(GOLDEN_CLI)
        assert drv.diff().empty
        drv.discard()
    assert CANDIDATE_FILE not in flash_files(emulator)


def test_unconfirmed_replace_reverts_and_a_late_confirm_says_so(
        emulator: CliServerThread) -> None:
    before = running(emulator)
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_CLI)
        assert drv.commit(confirm_timeout=30) == 60  # whole minutes, rounded up
        assert "interface Tunnel10" in running(emulator)
        wait_until(lambda: not pending(emulator), "the revert timer")
        assert settings(running(emulator)) == settings(before)
        with pytest.raises(NoPendingCommitError, match="already expired"):
            drv.confirm()
        assert "Tunnel10" not in running(emulator)


def test_merge_with_and_without_a_timer(emulator: CliServerThread) -> None:
    merge = "interface Loopback7\n description merged by dcvpn\n!\nend\n"
    with driver(emulator) as drv:
        drv.load_candidate(merge, LoadMode.MERGE)
        diff = drv.diff()
        assert (diff.native or "").splitlines()[:2] == ["interface Loopback7",
                                                " description merged by dcvpn"]
        assert "+interface Loopback7" in diff.unified
        assert drv.commit(confirm_timeout=60) == 60
        assert drv.has_pending_commit()
        assert "interface Loopback7" in running(emulator)
        wait_until(lambda: "Loopback7" not in running(emulator), "the merge to revert")
        assert not drv.has_pending_commit()

        drv.load_candidate(merge, LoadMode.MERGE)
        assert drv.commit() is None  # no timer: applied, confirmed, saved
        assert not pending(emulator)
        assert "interface Loopback7" in running(emulator)
        assert "interface Loopback7" in (emulator.call(lambda d: d.startup) or "")


def test_invalid_line_is_a_load_error_naming_it_and_nothing_changes(
        emulator: CliServerThread) -> None:
    before = running(emulator)
    bad = with_line(GOLDEN_CLI, " tunnel mode ipsec ipv4", " tunnel mode ipsec ipv5")
    with driver(emulator) as drv:
        with pytest.raises(LoadError) as caught:
            drv.load_candidate(bad)
        assert "`tunnel mode ipsec ipv5`" in str(caught.value)
        assert INVALID in str(caught.value)
        with pytest.raises(LoadError, match=r"`bogus`: % Invalid input"):
            drv.load_candidate("interface Loopback8\n bogus\n", LoadMode.MERGE)
    assert settings(running(emulator)) == settings(before)
    assert not ({CANDIDATE_FILE, "dcvpn-merge.cfg"} & flash_files(emulator))


def test_a_line_refused_during_replace_restores_the_device(emulator: CliServerThread) -> None:
    """configure replace ... revert trigger error: the device undoes the replace itself."""
    before = running(emulator)
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_CLI)
        text = emulator.call(lambda d: d.flash.files[CANDIDATE_FILE].data.decode())
        spoiled = with_line(text, " ip mtu 1446", " ip mtu 99999").encode()
        emulator.call(lambda d: d.write_file(CANDIDATE_FILE, spoiled))
        with pytest.raises(LoadError, match=r"`ip mtu 99999`.*restored its previous"):
            drv.commit(confirm_timeout=60)
        assert not drv.has_pending_commit()
    assert settings(running(emulator)) == settings(before)


def test_a_second_commit_while_one_is_pending_is_refused(emulator: CliServerThread) -> None:
    with driver(emulator) as drv, driver(emulator) as other:
        drv.load_candidate(GOLDEN_CLI)
        drv.commit(confirm_timeout=3600)
        first = running(emulator)
        other.load_candidate(with_line(GOLDEN_CLI, "interface Tunnel10",
                                       " description changed"), LoadMode.REPLACE)
        with pytest.raises(CommitPendingError, match="already pending"):
            other.commit(confirm_timeout=60)
        with pytest.raises(CommitPendingError):
            drv.load_candidate(GOLDEN_CLI)
            drv.commit()
        assert running(emulator) == first and pending(emulator)
        other.rollback()  # configure revert now: any session may end it
        assert "Tunnel10" not in running(emulator) and not pending(emulator)


def test_timer_limits_and_rollback_without_a_pending_change(emulator: CliServerThread) -> None:
    before = running(emulator)
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_CLI)
        with pytest.raises(TimerError, match="7200s"):
            drv.commit(confirm_timeout=7201)
        assert settings(running(emulator)) == settings(before) and not pending(emulator)
        assert drv.commit(confirm_timeout=61) == 120
        drv.confirm()
        with pytest.raises(NoPendingCommitError, match="no confirmed change is pending"):
            drv.confirm()
        drv.rollback()  # nothing pending: back to the configuration before the commit
    assert CHECKPOINT_FILE in flash_files(emulator)
    assert settings(running(emulator)) == settings(before)


def test_get_state_maps_the_emulator_answers(emulator: CliServerThread) -> None:
    with driver(emulator) as drv:
        drv.load_candidate(GOLDEN_CLI)
        drv.commit()
        state = drv.get_state()
    neighbors = set(re.findall(r"^ neighbor (\S+) remote-as", GOLDEN_CLI, re.MULTILINE))
    assert {s.neighbor for s in state.bgp_sessions} == neighbors
    assert {s.remote_as for s in state.bgp_sessions} == {65001, 65003}
    # until the emulator runs IKE there are no SAs; its (empty) output parses to none
    assert all(sa.state == "ESTABLISHED" for sa in state.ike_sas)


def test_get_state_of_a_tunnel_up_between_two_emulated_gateways(tmp_path: Path) -> None:
    """Two CLI emulators in one PeerRegistry bring up fra1-par1-p0 once both run dcvpn's
    configuration; the driver reads IOS's show output back into the model's spellings."""
    registry = PeerRegistry()
    emulators: dict[str, CliServerThread] = {}
    try:
        for gateway in ("fra1-gw1", GATEWAY):
            server = CliServer(USER, PASSWORD, tmp_path / gateway, IN_TIME_SCALE,
                               hostname=gateway, peers=registry, gateway=gateway)
            emulators[gateway] = CliServerThread(server).start()
            with driver(emulators[gateway], name=gateway) as drv:
                drv.load_candidate((GOLDEN / "acme-hybrid" / gateway / "config.cli").read_text())
                drv.commit()
        with driver(emulators[GATEWAY]) as drv:
            state = drv.get_state()
    finally:
        for emu in emulators.values():
            emu.stop()
    (ike,) = state.ike_sas
    assert (ike.local_address, ike.remote_address, ike.state) == ("203.0.113.20",
                                                                  "203.0.113.1", "ESTABLISHED")
    assert (ike.encryption, ike.integrity, ike.prf, ike.dh_group) == ("aes256gcm16", None,
                                                                      "sha384", 20)
    assert (ike.local_id, ike.remote_id) == ("par1-gw1.acme.dcvpn", "fra1-gw1.acme.dcvpn")
    (child,) = state.child_sas
    assert (child.name, child.remote_address, child.state) == ("Tunnel10", "203.0.113.1",
                                                               "INSTALLED")
    assert (child.encryption, child.integrity, child.dh_group) == ("aes256gcm16", None, 20)
    sessions = {s.neighbor: s for s in state.bgp_sessions}
    assert sessions["169.254.0.24"].state == "Established"
    assert sessions["169.254.0.24"].prefixes_received >= 1
    assert sessions["169.254.0.40"].state == "Idle"  # ams1 is not emulated here


# --- sessions and host keys -----------------------------------------------------------------

def test_host_keys_are_verified_by_default_with_an_explicit_opt_out(
        emulator: CliServerThread, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(ConnectError, match=r"no host key for \[127.0.0.1\]:\d+"):
        IosxeSshDriver(target(emulator, known_hosts=empty)).open()
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{emulator.port} {other}")
    with pytest.raises(ConnectError, match="not the one in"):
        IosxeSshDriver(target(emulator, known_hosts=wrong)).open()
    with pytest.raises(ConnectError, match="does not exist"):
        IosxeSshDriver(target(emulator, known_hosts=tmp_path / "missing")).open()
    with driver(emulator, known_hosts=wrong, verify_host_key=False) as drv:
        assert "hostname par1-gw1" in drv.get_running()


def test_wrong_credentials_are_a_connect_error(emulator: CliServerThread) -> None:
    with pytest.raises(ConnectError, match="authentication failed for user 'lab'"):
        IosxeSshDriver(target(emulator, password="wrong")).open()


def test_secrets_never_reach_a_diff_an_error_or_a_log(
        emulator: CliServerThread, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    candidate, keys = psk_candidate(tmp_path)
    caplog.set_level(logging.DEBUG)
    with driver(emulator) as drv:
        drv.load_candidate(candidate)
        diff = drv.diff()
        drv.commit(confirm_timeout=60)
        drv.confirm()
        bad = with_line(candidate, " ip mtu 1446", f" ip mtu {keys[0]}")
        with pytest.raises(LoadError) as caught:
            drv.load_candidate(bad)
    native = diff.native or ""
    assert "pre-shared-key <masked>" in native and "pre-shared-key <masked>" in diff.unified
    assert "write_channel" in caplog.text  # netmiko did log what it sent ...
    shown = [native, diff.unified, str(caught.value), caplog.text]
    for text in shown:  # ... and nothing holds a key
        assert not any(key in text for key in keys)
    assert "ip mtu <masked>" in str(caught.value)
    config = running(emulator)  # while the device did get the real keys
    assert all(f"pre-shared-key {key}" in config for key in keys)


# --- Nornir tasks ---------------------------------------------------------------------------

def _nornir(tmp_path: Path, emu: CliServerThread, data: dict[str, Any],
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
    assert host.platform == "iosxe" and host.get("transport") == "ssh"
    host.hostname, host.port = "127.0.0.1", emu.port
    return nr


def test_deploy_tasks_diff_commit_confirm_and_a_second_run_is_a_no_op(
        emulator: CliServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    data = acme(psk)
    tunnels = [t.name for t in gateway_view(compile_fabric(Fabric.model_validate(data)),
                                            GATEWAY).tunnels]
    secrets = tmp_path / "secrets"
    ensure_psks(secrets, tunnels)
    keys = [(secrets / "psk" / name).read_text().strip() for name in tunnels]
    monkeypatch.setenv("DCVPN_SECRETS_DIR", str(secrets))
    caplog.set_level(logging.DEBUG)
    nr = _nornir(tmp_path, emulator, data, monkeypatch)
    try:
        dry = nr.run(task=diff_device)[GATEWAY]
        assert not dry.failed, dry.result
        assert dry.changed is True and "+interface Tunnel10" in dry.diff
        assert "pre-shared-key <masked>" in dry.diff
        assert "DCVPN" not in running(emulator)
        committed = nr.run(task=commit_device, confirm_timeout=300)[GATEWAY]
        assert not committed.failed, committed.result
        assert committed.result["armed_seconds"] == 300 and pending(emulator)
        confirmed = nr.run(task=confirm_device)[GATEWAY]
        assert confirmed.result["confirmed"] is True and not pending(emulator)
        again = nr.run(task=commit_device, confirm_timeout=300)[GATEWAY]
        assert again.changed is False and again.result["committed"] is False
        assert not pending(emulator)

        changed = acme(psk)
        changed["fabric"]["bgp"]["bfd"]["interval_ms"] = 500
        nr.inventory.hosts[GATEWAY]["compiled"] = compile_fabric(
            Fabric.model_validate(changed))
        second = nr.run(task=commit_device, confirm_timeout=300)[GATEWAY]
        assert not second.failed, second.result
        assert "bfd interval 500" in running(emulator)
        undone = nr.run(task=rollback_device)[GATEWAY]
        assert undone.result["rolled_back"] is True
        assert "bfd interval 300" in running(emulator) and not pending(emulator)
    finally:
        nr.close_connections()
    shown = [str(r) for r in (dry.result, committed.result, second.result)] + [caplog.text]
    for text in shown:
        assert not any(key in text for key in keys)
