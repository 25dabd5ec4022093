"""Operational `show` output of the IOS-XE CLI emulator, derived from the running config.

SAs and BGP sessions follow oper_model: a tunnel is up when this device's running config and
its peer's committed config (a device of the same PeerRegistry) agree; a standalone device or
a peer that is not emulated has no SAs (`show crypto ikev2 sa` prints nothing, `show crypto
ipsec sa` lists each protected interface with zero counters) and its neighbors are Idle.
"""

from lab.emulators.iosxe_cli_config import Node
from lab.emulators.iosxe_cli_device import IosXeCliDevice, ios_time
from lab.emulators.iosxe_oper_state import messages, up_time
from lab.emulators.oper_counters import sa_figures
from lab.emulators.oper_model import AuthMethod, BgpPhase, TunnelState


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    parts = [(minutes // 1440, "day"), (minutes // 60 % 24, "hour"), (minutes % 60, "minute")]
    shown = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n]
    return ", ".join(shown) or "0 minutes"


def show_version(device: IosXeCliDevice) -> str:
    uptime = _duration(device.clock.uptime())
    version = device.version
    return f"""Cisco IOS XE Software, Version {version}
Cisco IOS Software [IOSXE], Virtual XE Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), \
Version {version}, RELEASE SOFTWARE (fc1)
Technical Support: http://www.cisco.com/techsupport
Copyright (c) 1986-2024 by Cisco Systems, Inc.
Compiled by mcpre


Cisco IOS-XE software, Copyright (c) 2005-2024 by cisco Systems, Inc.
All rights reserved.  Certain components of Cisco IOS-XE software are
licensed under the GNU General Public License ("GPL") Version 2.0.


ROM: IOS-XE ROMMON

{device.hostname} uptime is {uptime}
Uptime for this control processor is {uptime}
System returned to ROM by reload
System image file is "bootflash:packages.conf"
Last reload reason: reload



This product contains cryptographic features and is subject to United
States and local country laws governing import, export, transfer and
use.

License Level: network-advantage
License Type: Perpetual
Next reload license Level: network-advantage

Smart Licensing Status: Registration Not Applicable/Not Applicable

cisco C8000V (VXE) processor (revision VXE) with 1987134K/3075K bytes of memory.
Processor board ID 9DCVPNLAB01
Router operating mode: Autonomous
1 Gigabit Ethernet interface
32768K bytes of non-volatile configuration memory.
3965124K bytes of physical memory.
11526144K bytes of virtual hard disk at bootflash:.

Configuration register is 0x2102
"""


def show_clock(device: IosXeCliDevice) -> str:
    now = device.clock.now()
    return f"*{ios_time(now).replace(' UTC', f'.{int(now * 1000) % 1000:03d} UTC', 1)}"


def show_users(device: IosXeCliDevice, session_id: int) -> str:
    lines = ["    Line       User       Host(s)              Idle       Location"]
    for number, (sid, user) in enumerate(sorted(device.sessions.items())):
        mark = "*" if sid == session_id else " "
        lines.append(f"{mark}{number + 1:>3} vty {number:<5} {user:<10} idle"
                     f"                 00:00:00 127.0.0.1")
    lines += ["", "  Interface    User               Mode         Idle     Peer Address", ""]
    return "\n".join(lines)


def show_hosts(device: IosXeCliDevice) -> str:
    domain = device.setting("ip domain name")
    return (f"Default domain is {domain or 'not set'}\n"
            "Name/address lookup uses static mappings\n\n"
            "Codes: UN - unknown, EX - expired, OK - OK, ?? - revalidate\n"
            "       temp - temporary, perm - permanent\n"
            "       NA - Not Applicable None - Not defined\n\n"
            "Host                      Port  Flags      Age Type   Address(es)\n")


def _interfaces(device: IosXeCliDevice) -> list[Node]:
    return [c for c in device.running.children if c.mode == "config-if"]


def _sub(node: Node, prefix: str) -> str | None:
    return next((c.line[len(prefix):] for c in node.children if c.line.startswith(prefix)), None)


def show_ip_interface_brief(device: IosXeCliDevice) -> str:
    lines = ["Interface              IP-Address      OK? Method Status                Protocol"]
    for node in _interfaces(device):
        name = node.line.split()[1]
        address = _sub(node, "ip address ")
        method, shown = ("unset", "unassigned")
        if address == "dhcp":
            method = "DHCP"
        elif address:
            method, shown = "manual", address.split()[0]
        down = any(c.line == "shutdown" for c in node.children)
        status = "administratively down" if down else "up"
        protocol = "down" if down or name.startswith("Tunnel") else "up"
        lines.append(f"{name:<23}{shown:<16}YES {method:<7}{status:<22}{protocol}")
    return "\n".join(lines) + "\n"


IKE_ENCR = {"aes128gcm16": ("AES-GCM", 128), "aes256gcm16": ("AES-GCM", 256),
            "aes128": ("AES-CBC", 128), "aes192": ("AES-CBC", 192), "aes256": ("AES-CBC", 256),
            "3des": ("3DES", 0), "des": ("DES", 0)}
AUTH_WORD = {"pre-share": "PSK", "ecdsa-sig": "ECDSA", "rsa-sig": "RSA"}
ESP_TRANSFORM = {"aes128gcm16": "esp-gcm 128", "aes256gcm16": "esp-gcm 256",
                 "aes128": "esp-aes 128", "aes192": "esp-aes 192", "aes256": "esp-aes 256",
                 "3des": "esp-3des", "des": "esp-des", "aes128gmac": "esp-gmac 128",
                 "aes256gmac": "esp-gmac 256"}
ESP_HMAC = {"md5": "esp-md5-hmac", "sha1": "esp-sha-hmac", "sha256": "esp-sha256-hmac",
            "sha384": "esp-sha384-hmac", "sha512": "esp-sha512-hmac"}
KILOBYTE_LIFETIME = 4608000


def _auth_word(tunnel: TunnelState) -> str:
    ep = tunnel.endpoint
    return "PSK" if ep.auth is AuthMethod.PSK else AUTH_WORD.get(ep.cert_method, "RSA")


def show_ikev2_sa(device: IosXeCliDevice, detailed: bool = False) -> str:
    """Nothing at all when no IKE SA is up, as IOS prints."""
    now = device.clock.now()
    up = [t for t in device.peers.state().tunnels if t.up and t.since is not None]
    if not up:
        return ""
    lines = [" IPv4 Crypto IKEv2  SA ", "",
             "Tunnel-id Local                 Remote                fvrf/ivrf            Status "]
    for number, tunnel in enumerate(up, start=1):
        ep, ike = tunnel.endpoint, tunnel.match.ike
        assert ike is not None and tunnel.since is not None
        figures = sa_figures(ep.local_address + "/ike", ep.remote_address + "/ike",
                             tunnel.since, now, ep.ike_lifetime)
        cipher, bits = IKE_ENCR.get(ike.encryption, (ike.encryption.upper(), 0))
        integrity = (ike.integrity or "none").upper()
        auth = _auth_word(tunnel)
        lines += [
            f"{number:<10}{ep.local_address + '/500':<22}{ep.remote_address + '/500':<22}"
            f"{'none/none':<21}READY  ",
            f"      Encr: {cipher}, keysize: {bits}, PRF: {ike.prf.upper()}, Hash: "
            f"{integrity.capitalize() if integrity == 'NONE' else integrity}, "
            f"DH Grp:{ike.dh_group}, Auth sign: {auth}, Auth verify: {auth}",
            f"      Life/Active Time: {ep.ike_lifetime}/{figures.age % ep.ike_lifetime} sec",
            f"      CE id: {1000 + number}, Session-id: {number}",
            f"      Local spi: {figures.spi_out:08X}{figures.generation:08X}       "
            f"Remote spi: {figures.spi_in:08X}{figures.generation:08X}"]
        if detailed:
            remote_id = ep.remote_id.value if ep.remote_id else ep.remote_address
            lines += [f"      Local id: {ep.local_id.value}",
                      f"      Remote id: {remote_id}",
                      f"      Local req msg id:  {figures.age // 10}         "
                      f"Remote req msg id:  {figures.age // 10}"]
        lines.append("")
    lines += [" IPv6 Crypto IKEv2  SA ", ""]
    return "\n".join(lines) + "\n"


def _esp_block(direction: str, spi: int, transform: str, remaining: int, number: int,
               interface: str) -> str:
    return f"""     {direction} esp sas:
      spi: 0x{spi:X}({spi})
        transform: {transform} ,
        in use settings ={{Tunnel, }}
        conn id: {2000 + number}, flow_id: CSR:{number}, sibling_flags FFFFFFFF80000048, \
crypto map: {interface}-head-0
        sa timing: remaining key lifetime (k/sec): ({KILOBYTE_LIFETIME - 1}/{remaining})
        Kilobyte Volume Rekey has been disabled
        IV size: 8 bytes
        replay detection support: Y
        Status: ACTIVE(ACTIVE)
"""


def _ipsec_block(tunnel: TunnelState, now: float, number: int) -> str:
    ep, esp = tunnel.endpoint, tunnel.match.esp
    up = tunnel.up and esp is not None and tunnel.since is not None
    figures = sa_figures(ep.local_address, ep.remote_address, tunnel.since or now, now,
                         ep.esp_lifetime) if up else None
    packets = figures.packets if figures else 0
    pfs = f"Y, DH group: group{esp.pfs_group}" if up and esp and esp.pfs_group else \
        "N, DH group: none"
    outbound = f"0x{figures.spi_out:X}({figures.spi_out})" if figures else "0x0(0)"
    inbound_esp = outbound_esp = ""
    if figures is not None and esp is not None:
        transform = " ".join(filter(None, (ESP_TRANSFORM.get(esp.encryption, esp.encryption),
                                           ESP_HMAC.get(esp.integrity or ""))))
        inbound_esp = _esp_block("inbound", figures.spi_in, transform, figures.remaining,
                                 number, ep.interface)
        outbound_esp = _esp_block("outbound", figures.spi_out, transform, figures.remaining,
                                  number, ep.interface)
    inner_mtu = 1500
    return f"""
interface: {ep.interface}
    Crypto map tag: {ep.interface}-head-0, local addr {ep.local_address}

   protected vrf: (none)
   local  ident (addr/mask/prot/port): (0.0.0.0/0.0.0.0/0/0)
   remote ident (addr/mask/prot/port): (0.0.0.0/0.0.0.0/0/0)
   current_peer {ep.remote_address} port 500
     PERMIT, flags={{origin_is_acl,}}
    #pkts encaps: {packets}, #pkts encrypt: {packets}, #pkts digest: {packets}
    #pkts decaps: {packets}, #pkts decrypt: {packets}, #pkts verify: {packets}
    #pkts compressed: 0, #pkts decompressed: 0
    #pkts not compressed: 0, #pkts compr. failed: 0
    #pkts not decompressed: 0, #pkts decompress failed: 0
    #send errors 0, #recv errors 0

     local crypto endpt.: {ep.local_address}, remote crypto endpt.: {ep.remote_address}
     plaintext mtu {inner_mtu}, path mtu 1500, ip mtu 1500, ip mtu idb GigabitEthernet1
     current outbound spi: {outbound}
     PFS (Y/N): {pfs}

{inbound_esp if inbound_esp else "     inbound esp sas:" + chr(10)}
     inbound ah sas:

     inbound pcp sas:

{outbound_esp if outbound_esp else "     outbound esp sas:" + chr(10)}
     outbound ah sas:

     outbound pcp sas:
"""


def show_ipsec_sa(device: IosXeCliDevice) -> str:
    """One block per protected tunnel interface; ESP SAs (counters growing with the time
    since the tunnel came up) only while the tunnel is up."""
    now = device.clock.now()
    tunnels = device.peers.state().tunnels
    blocks = [_ipsec_block(t, now, n) for n, t in enumerate(tunnels, start=1)]
    return "".join(blocks) if blocks else "No SAs found\n"


def show_bgp_summary(device: IosXeCliDevice) -> str:
    router = next((c for c in device.running.children if c.mode == "config-router"), None)
    if router is None:
        return "% BGP not active\n"
    now = device.clock.now()
    intent = device.committed_intent()
    sessions = device.peers.state().sessions
    asn = router.line.split()[-1]
    router_id = _sub(router, "bgp router-id ") or "0.0.0.0"
    originated = {p for n in intent.neighbors for p in n.announces}
    learnt = [p for s in sessions for p in s.received]
    entries = len(originated | set(learnt))
    version = entries + 1
    lines = [f"BGP router identifier {router_id}, local AS number {asn}",
             f"BGP table version is {version}, main routing table version {version}"]
    if entries:
        lines += [f"{entries} network entries using {entries * 248} bytes of memory",
                  f"{len(originated) + len(learnt)} path entries using "
                  f"{(len(originated) + len(learnt)) * 136} bytes of memory"]
    lines.append("")
    if sessions:
        lines.append("Neighbor        V           AS MsgRcvd MsgSent   TblVer  InQ OutQ "
                     "Up/Down  State/PfxRcd")
    for session in sessions:
        received, sent = messages(session, now)
        established = session.phase is BgpPhase.ESTABLISHED and session.since is not None
        updown = up_time(now - session.since) if established and session.since else "never"
        if established:
            state = f"{len(session.received):>8}"
        else:
            state = "Idle (Admin)" if session.phase is BgpPhase.IDLE else "Idle"
        lines.append(f"{session.neighbor.address:<15} 4 {session.neighbor.remote_as:>12} "
                     f"{received:>7} {sent:>7} {version if established else 1:>8}    0    0 "
                     f"{updown:<8} {state}")
    return "\n".join(lines) + "\n"
