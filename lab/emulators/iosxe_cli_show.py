"""Operational `show` output of the IOS-XE CLI emulator, derived from the running config.

Until the lab backs emulated devices with real IKE daemons there are no SAs: `show crypto
ikev2 sa` is empty, `show crypto ipsec sa` lists each protected tunnel interface with zero
counters and no SPI, and `show ip bgp summary` lists the configured neighbors as Idle.
"""

from lab.emulators.iosxe_cli_config import Node
from lab.emulators.iosxe_cli_device import IosXeCliDevice, ios_time


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


def show_ipsec_sa(device: IosXeCliDevice) -> str:
    blocks: list[str] = []
    for node in _interfaces(device):
        if _sub(node, "tunnel protection ipsec profile ") is None:
            continue
        name = node.line.split()[1]
        local = _sub(node, "tunnel source ") or "0.0.0.0"
        peer = _sub(node, "tunnel destination ") or "0.0.0.0"
        blocks.append(f"""
interface: {name}
    Crypto map tag: {name}-head-0, local addr {local}

   protected vrf: (none)
   local  ident (addr/mask/prot/port): (0.0.0.0/0.0.0.0/0/0)
   remote ident (addr/mask/prot/port): (0.0.0.0/0.0.0.0/0/0)
   current_peer {peer} port 500
     PERMIT, flags={{origin_is_acl,}}
    #pkts encaps: 0, #pkts encrypt: 0, #pkts digest: 0
    #pkts decaps: 0, #pkts decrypt: 0, #pkts verify: 0
    #pkts compressed: 0, #pkts decompressed: 0
    #pkts not compressed: 0, #pkts compr. failed: 0
    #pkts not decompressed: 0, #pkts decompress failed: 0
    #send errors 0, #recv errors 0

     local crypto endpt.: {local}, remote crypto endpt.: {peer}
     plaintext mtu 1500, path mtu 1500, ip mtu 1500, ip mtu idb GigabitEthernet1
     current outbound spi: 0x0(0)
     PFS (Y/N): N, DH group: none

     inbound esp sas:

     inbound ah sas:

     inbound pcp sas:

     outbound esp sas:

     outbound ah sas:

     outbound pcp sas:
""")
    return "".join(blocks) if blocks else "No SAs found\n"


def show_bgp_summary(device: IosXeCliDevice) -> str:
    router = next((c for c in device.running.children if c.mode == "config-router"), None)
    if router is None:
        return "% BGP not active\n"
    asn = router.line.split()[-1]
    router_id = _sub(router, "bgp router-id ") or "0.0.0.0"
    lines = [f"BGP router identifier {router_id}, local AS number {asn}",
             "BGP table version is 1, main routing table version 1", ""]
    neighbors = [c.words for c in router.children
                 if c.words[:1] == ("neighbor",) and c.words[2:3] == ("remote-as",)]
    if neighbors:
        lines.append("Neighbor        V           AS MsgRcvd MsgSent   TblVer  InQ OutQ "
                     "Up/Down  State/PfxRcd")
    for words in neighbors:
        down = ("neighbor", words[1], "shutdown") in {c.words for c in router.children}
        state = "Idle (Admin)" if down else "Idle"
        lines.append(f"{words[1]:<15} 4 {words[3]:>12}       0       0        1    0    0 "
                     f"never    {state}")
    return "\n".join(lines) + "\n"
