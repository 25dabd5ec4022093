"""Every lint rule: a bad model that triggers it, with code, severity, YAML path and file line.

Bad models are text edits of a real fabric file. Each edit marks the line where a finding is
expected with a trailing `# <-` comment (one `<-` per finding on that line), so the expected
line numbers come from the file itself, not from the loader under test.
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ROOT
from fabric_factory import site

from inventory.findings import Finding, Severity, format_path
from inventory.lint import RULES, lint
from inventory.loader import load_fabric
from inventory.topology import compile_fabric

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
MARK = "  # <-"
Edit = tuple[str, str]


def _generated(n: int, topology: str = "full_mesh", hubs: tuple[str, ...] = (),
               gateways: int = 1, **spec: Any) -> str:
    data = {
        "fabric": {"name": "gen", "topology": topology, "hubs": list(hubs),
                   "tunnel_pool": "100.64.0.0/10", **spec},
        "sites": [site(i, gateways=gateways if i == 1 else 1) for i in range(1, n + 1)],
    }
    return yaml.safe_dump(data, sort_keys=False)


BASES: dict[str, str] = {
    "lab3": (EXAMPLES / "lab3.yaml").read_text(encoding="utf-8"),
    "acme": (EXAMPLES / "acme-hybrid.yaml").read_text(encoding="utf-8"),
    # a hub and N-1 spokes: the hub has N-1 peers
    "hub8": _generated(8, "hub_spoke", ("s1",)),
    "hub9": _generated(9, "hub_spoke", ("s1",)),
    "hub10": _generated(10, "hub_spoke", ("s1",)),
    "gw4": _generated(2, gateways=4),
}


@dataclass(frozen=True)
class Case:
    id: str
    code: str
    severity: Severity
    base: str
    edits: tuple[Edit, ...]
    paths: tuple[str, ...]  # expected findings of `code`, in file order of the markers
    message: str = ""  # a fragment every finding's message contains


def _apply(base: str, edits: tuple[Edit, ...]) -> str:
    text = BASES[base]
    for old, new in edits:
        assert old in text, f"edit target {old!r} not in {base}: update the test case"
        text = text.replace(old, new, 1)
    return text


def _marked_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), 1) for _ in range(line.count("<-"))]


def _findings(tmp_path: Path, text: str) -> tuple[Path, list[Finding]]:
    path = tmp_path / "fabric.yaml"
    path.write_text(text, encoding="utf-8")
    return path, lint(load_fabric(path))


IKE = "    ike: {encryption: aes256gcm16, prf: sha384, dh_group: 20, lifetime: 8h}\n"
ESP = "    esp: {encryption: aes256gcm16, pfs_group: 20, lifetime: 1h}\n"


def _ike(body: str) -> Edit:
    return IKE, f"    ike: {{{body}}}{MARK}\n"


def _esp(body: str, mark: bool = True) -> Edit:
    return ESP, f"    esp: {{{body}}}{MARK if mark else ''}\n"


def _mark(line: str) -> Edit:
    """Mark the first not yet marked occurrence of an existing line, leaving it unchanged."""
    return f"{line}\n", f"{line}{MARK}\n"


def _accept(*ranges: str) -> Edit:
    """acme's bgp section with `accept:` as a block list (one line per range)."""
    items = "".join(f"      - {r}\n" for r in ranges)
    return "    mode: ebgp\n    bfd:", f"    mode: ebgp\n    accept:\n{items}    bfd:"


PSK = ("  tunnel_pool: 100.64.0.0/10\n",
       f"  tunnel_pool: 100.64.0.0/10\n  auth: {{method: psk}}{MARK}\n")
FULL_MESH = ("  topology: hub_spoke\n", f"  topology: full_mesh{MARK}\n")
FIFTH_GATEWAY = ("    public_ip: 198.21.0.1\n",
                 "    public_ip: 198.21.0.1\n  - name: s1-gw5\n    platform: strongswan\n"
                 "    transport: ssh\n    host: s1-gw5.mgmt\n    public_ip: 198.22.0.1\n")
CRYPTO = "fabric.crypto"
WEB_PROBE = ("    prefixes: [10.2.0.0/24]\n    probes:\n"
             "      - {name: web, address: 10.2.0.80, port: 80}\n")
CASES: list[Case] = [
    Case("weak-dh", "DCV101", E, "acme",
         (_ike("encryption: aes256gcm16, prf: sha384, dh_group: 14, lifetime: 8h"),
          _esp("encryption: aes256gcm16, pfs_group: 2, lifetime: 1h")),
         (f"{CRYPTO}.ike.dh_group", f"{CRYPTO}.esp.pfs_group"), "too weak"),
    Case("weak-hash", "DCV102", E, "acme",
         (_ike("encryption: aes256gcm16, prf: sha1, dh_group: 20, lifetime: 8h"),
          _esp("encryption: aes256, integrity: md5, pfs_group: 20, lifetime: 1h")),
         (f"{CRYPTO}.ike.prf", f"{CRYPTO}.esp.integrity"), "broken"),
    Case("weak-cipher", "DCV103", E, "acme",
         (_ike("encryption: 3des, integrity: sha256, prf: sha384, dh_group: 20, lifetime: 8h"),
          _esp("encryption: des, integrity: sha256, pfs_group: 20, lifetime: 1h")),
         (f"{CRYPTO}.ike.encryption", f"{CRYPTO}.esp.encryption"), "64-bit block"),
    # an omitted pfs_group comes from the profile (strict: 20), so no PFS is said explicitly
    Case("no-pfs", "DCV104", E, "acme",
         (_esp("encryption: aes256gcm16, pfs_group: none, lifetime: 1h"),),
         (f"{CRYPTO}.esp.pfs_group",), "PFS"),
    Case("esp-not-shorter", "DCV105", E, "acme",
         (_esp("encryption: aes256gcm16, pfs_group: 20, lifetime: 8h"),),
         (f"{CRYPTO}.esp.lifetime",), "must be shorter"),
    Case("lifetime-range", "DCV106", W, "acme",
         (_ike("encryption: aes256gcm16, prf: sha384, dh_group: 20, lifetime: 25h"),
          _esp("encryption: aes256gcm16, pfs_group: 20, lifetime: 30m")),
         (f"{CRYPTO}.ike.lifetime", f"{CRYPTO}.esp.lifetime"), "outside 1h..24h"),
    Case("integrity-missing", "DCV107", E, "acme",
         (_esp("encryption: aes256, pfs_group: 20, lifetime: 1h"),),
         (f"{CRYPTO}.esp.integrity",), "needs integrity"),
    Case("integrity-ignored", "DCV108", W, "acme",
         (_esp("encryption: aes256gcm16, integrity: sha256, pfs_group: 20, lifetime: 1h"),),
         (f"{CRYPTO}.esp.integrity",), "ignored"),
    Case("gmac", "DCV109", E, "acme",
         (_esp("encryption: aes256gmac, pfs_group: 20, lifetime: 1h"),),
         (f"{CRYPTO}.esp.encryption",), "does not encrypt"),
    Case("dup-site-id", "DCV201", E, "acme", (("    id: 3\n", f"    id: 1{MARK}\n"),),
         ("sites[2].id",), "also used at sites[0].id"),
    Case("dup-site-name", "DCV202", E, "acme",
         (("  - name: ams1\n", f"  - name: fra1{MARK}\n"),),
         ("sites[2].name",), "also used at sites[0].name"),
    Case("dup-asn", "DCV203", E, "acme", (("    asn: 65004\n", f"    asn: 65001{MARK}\n"),),
         ("sites[3].asn",), "also used at sites[0].asn"),
    Case("dup-public-ip", "DCV204", E, "acme",
         (("public_ip: 198.51.100.20\n", f"public_ip: 203.0.113.1{MARK}\n"),),
         ("sites[5].gateways[0].public_ip",), "also used at sites[0].gateways[0].public_ip"),
    Case("dup-gateway", "DCV205", E, "acme",
         (("- name: sjc1-gw1\n", f"- name: nyc1-gw1{MARK}\n"),),
         ("sites[5].gateways[0].name",), "also used at sites[4].gateways[0].name"),
    Case("gateway-named-like-site", "DCV206", E, "acme",
         (("- name: nyc1-gw1\n", f"- name: sjc1{MARK}\n"),),
         ("sites[4].gateways[0].name",), "another site"),
    Case("prefix-overlap", "DCV211", E, "acme",
         (("[10.4.0.0/16, 172.16.4.0/22]", f"[10.4.0.0/16, 10.1.128.0/17]{MARK}"),),
         ("sites[3].prefixes[1]",), "overlaps 10.1.0.0/16 (fra1) at sites[0].prefixes[0]"),
    Case("prefix-public", "DCV212", W, "acme",
         (("[10.5.0.0/16]", f"[10.5.0.0/16, 192.0.2.0/24]{MARK}"),),
         ("sites[4].prefixes[1]",), "192.0.2.0/24"),
    Case("prefix-in-pool", "DCV213", E, "acme",
         (("[10.5.0.0/16]", f"[169.254.10.0/24]{MARK}"),),
         ("sites[4].prefixes[0]",), "overlaps tunnel_pool"),
    Case("pool-public", "DCV214", E, "acme",
         (("tunnel_pool: 169.254.0.0/16\n", f"tunnel_pool: 8.0.0.0/16{MARK}\n"),),
         ("fabric.tunnel_pool",), "routable"),
    Case("pool-too-small", "DCV221", E, "acme",
         (("tunnel_pool: 169.254.0.0/16\n", f"tunnel_pool: 169.254.0.0/28{MARK}\n"),),
         ("fabric.tunnel_pool",), "holds 16 addresses"),
    Case("hub-not-site", "DCV231", E, "acme",
         (("hubs: [fra1, iad1]\n", f"hubs: [fra1, iad9]{MARK}\n"),),
         ("fabric.hubs[1]",), "'iad9' is not a site"),
    # iad1 (a hub) loses its region; the path falls back to the line of its list item
    Case("hub-without-region", "DCV232", E, "acme",
         (_mark("  - name: iad1"), ("    region: us\n", "")),
         ("sites[1].region",), "hub iad1 has no region"),
    Case("region-without-hub", "DCV233", INFO, "acme",
         (("    region: us\n    asn: 65006\n", f"    region: ap{MARK}\n    asn: 65006\n"),),
         ("sites[5].region",), "region ap has no hub"),
    Case("no-hubs", "DCV234", E, "lab3",
         (_mark("fabric:"), ("topology: full_mesh\n", "topology: hub_spoke\n")),
         ("fabric.hubs",), "needs at least one hub"),
    Case("hubs-ignored", "DCV235", W, "lab3",
         (("  topology: full_mesh\n", f"  topology: full_mesh\n  hubs: [ams1]{MARK}\n"),),
         ("fabric.hubs",), "ignored"),
    Case("hub-twice", "DCV236", E, "acme",
         (("hubs: [fra1, iad1]\n", f"hubs: [fra1, iad1, fra1]{MARK}\n"),),
         ("fabric.hubs[2]",), "also used at fabric.hubs[0]"),
    Case("platform-transport", "DCV241", E, "acme",
         (("transport: netconf\n        host: sjc1-gw1",
           f"transport: ssh{MARK}\n        host: sjc1-gw1"),),
         ("sites[5].gateways[0].transport",), "junos is managed over netconf, not ssh"),
    # IKE chacha20poly1305: neither IOS-XE nor JunOS does it; strongSwan does
    Case("ike-chacha-on-iosxe", "DCV242", E, "acme",
         ((IKE, IKE.replace("aes256gcm16", "chacha20poly1305")),
          *[_mark("        platform: iosxe")] * 2, *[_mark("        platform: junos")] * 2,
          _mark("        platform: iosxe"), _mark("        platform: junos")),
         ("sites[0].gateways[0].platform", "sites[0].gateways[1].platform",
          "sites[1].gateways[0].platform", "sites[1].gateways[1].platform",
          "sites[3].gateways[0].platform", "sites[5].gateways[0].platform"),
         "IKE encryption chacha20poly1305"),
    Case("os-version", "DCV243", E, "acme",
         (('os_version: "17.12"\n', f'os_version: "16.9"{MARK}\n'),),
         ("sites[0].gateways[1].os_version",), "17.15, 17.12"),
    Case("psk-peers", "DCV251", W, "hub10", (PSK,), ("fabric.auth.method",), "9 peers"),
    Case("full-mesh-large", "DCV252", W, "hub9", (FULL_MESH,),
         ("fabric.topology",), "36 tunnels per plane"),
    Case("too-many-gateways", "DCV261", E, "gw4", (_mark("  gateways:"), FIFTH_GATEWAY),
         ("sites[0].gateways",), "5 gateways"),
    # sjc1 loses its asn: the line is that of its list item
    Case("ebgp-asn-missing", "DCV262", E, "acme",
         (_mark("  - name: sjc1"), ("    asn: 65006\n", "")),
         ("sites[5].asn",), "needs an asn"),
    Case("ibgp-asn-missing", "DCV263", E, "lab3",
         (_mark("  bgp:"), ("mode: ebgp\n", "mode: ibgp\n")),
         ("fabric.bgp.asn",), "fabric.bgp.asn"),
    Case("ibgp-site-asn", "DCV264", W, "lab3",
         (("    mode: ebgp\n", "    mode: ibgp\n    asn: 65000\n"),
          _mark("    asn: 65001"), _mark("    asn: 65002"), _mark("    asn: 65003")),
         ("sites[0].asn", "sites[1].asn", "sites[2].asn"), "ignored"),
    Case("bgp-hold", "DCV265", E, "lab3",
         (("timers: {keepalive: 3, hold: 9}\n", f"timers: {{keepalive: 4, hold: 9}}{MARK}\n"),),
         ("fabric.bgp.timers.hold",), "at least 3 x keepalive (12s)"),
    # the same rules, for the remaining items the issue names
    Case("libipsec-esn", "DCV242", E, "lab3",
         (("    profile: strict\n", "    profile: strict\n    esp: {esn: true}\n"),
          *[_mark("        platform: strongswan")] * 3),
         tuple(f"sites[{i}].gateways[0].platform" for i in range(3)),
         "ESN on the libipsec data plane"),
    Case("libipsec-gmac", "DCV242", E, "lab3",
         (("    profile: strict\n", "    profile: strict\n    esp: {encryption: aes128gmac}\n"),
          *[_mark("        platform: strongswan")] * 3),
         tuple(f"sites[{i}].gateways[0].platform" for i in range(3)),
         "ESP encryption aes128gmac on the libipsec data plane"),
    Case("strongswan-netconf", "DCV241", E, "lab3",
         (("transport: local\n", f"transport: netconf{MARK}\n"),),
         ("sites[0].gateways[0].transport",), "not netconf"),
    Case("strongswan-os-version", "DCV243", E, "lab3",
         (("        public_ip: 192.0.2.2\n",
           f"        public_ip: 192.0.2.2\n        os_version: '6.0'{MARK}\n"),),
         ("sites[1].gateways[0].os_version",), "os_version is unused"),
    Case("hybrid-site-without-region", "DCV232", E, "acme",
         (_mark("  - name: par1"), ("    region: eu\n    asn: 65004\n", "    asn: 65004\n")),
         ("sites[3].region",), "site par1 has no region"),
    Case("esp-longer-than-ike", "DCV105", E, "acme",
         (_esp("encryption: aes256gcm16, pfs_group: 20, lifetime: 9h"),),
         (f"{CRYPTO}.esp.lifetime",), "32400s must be shorter than the IKE lifetime 28800s"),
    Case("pfs-off", "DCV104", E, "lab3",
         (("    profile: strict\n", f"    profile: strict\n    esp: {{pfs_group: off}}{MARK}\n"),),
         (f"{CRYPTO}.esp.pfs_group",), "PFS"),
    Case("watch-probe-outside-site", "DCV291", E, "lab3",
         (("    prefixes: [10.2.0.0/24]\n",
           WEB_PROBE +
           f"      - {{name: db, address: 10.1.0.5, port: 5432}}{MARK}\n"),),
         ("sites[1].probes[1].address",), "is in none of lon1's prefixes (10.2.0.0/24)"),
    Case("watch-probe-name-twice", "DCV292", E, "lab3",
         (("    prefixes: [10.2.0.0/24]\n",
           WEB_PROBE +
           f"      - {{name: web, address: 10.2.0.81, port: 443}}{MARK}\n"),),
         ("sites[1].probes[1].name",),
         "probe name web is also used at sites[1].probes[0].name"),
    # fabric.bgp.accept: aggregate import ranges
    Case("accept-misses-prefix", "DCV266", E, "acme",
         (_accept("10.0.0.0/8"), _mark("    prefixes: [10.4.0.0/16, 172.16.4.0/22]")),
         ("sites[3].prefixes[1]",), "172.16.4.0/22 (par1) is in no bgp.accept range"),
    Case("accept-tunnel-pool", "DCV267", W, "acme",
         (_accept("10.0.0.0/8", f"169.254.0.0/16{MARK}", "172.16.0.0/12"),),
         ("fabric.bgp.accept[1]",), "overlaps tunnel_pool 169.254.0.0/16"),
    Case("accept-broad", "DCV268", W, "acme",
         (_accept("10.0.0.0/8", f"10.1.0.0/16{MARK}", f"192.168.0.0/16{MARK}",
                  "172.16.0.0/12", f"10.0.0.0/8{MARK}"),),
         ("fabric.bgp.accept[1]", "fabric.bgp.accept[2]", "fabric.bgp.accept[4]"), "remove it"),
]

# anycast hub endpoints (DCV320-DCV329), edits of tests/fabrics/ac-anycast.yaml
BASES["anycast"] = (ROOT / "tests" / "fabrics" / "ac-anycast.yaml").read_text(encoding="utf-8")
AC_IP = "    anycast_ip: 198.51.100.100"
AC_GW2 = ("      - {name: ach1-gw2, platform: strongswan, transport: ssh, host: ach1-gw2.mgmt,\n"
          "         public_ip: 198.51.100.12}\n")


def _ac_gw2(platform: str, mark: str = MARK) -> Edit:
    return AC_GW2, (f"      - name: ach1-gw2\n        platform: {platform}{mark}\n"
                    "        transport: netconf\n        host: ach1-gw2.mgmt\n"
                    "        public_ip: 198.51.100.12\n")


CASES += [
    Case("anycast-not-hub", "DCV320", E, "anycast",
         (("    asn: 65203\n", f"    asn: 65203\n    anycast_ip: 198.51.100.200{MARK}\n"),),
         ("sites[2].anycast_ip",), "acs3 is not in fabric.hubs"),
    Case("anycast-full-mesh", "DCV320", E, "anycast",
         (("  topology: hub_spoke\n", "  topology: full_mesh\n"), _mark(AC_IP)),
         ("sites[0].anycast_ip",), "full mesh"),
    Case("anycast-is-public-ip", "DCV321", E, "anycast",
         ((f"{AC_IP}\n", f"    anycast_ip: 198.51.100.31{MARK}\n"),),
         ("sites[0].anycast_ip",), "is the public_ip at sites[2].gateways[0].public_ip"),
    Case("anycast-twice", "DCV321", E, "anycast",
         (("    asn: 65202\n", f"    asn: 65202\n    anycast_ip: 198.51.100.100{MARK}\n"),),
         ("sites[1].anycast_ip",), "also the anycast_ip at sites[0].anycast_ip"),
    Case("anycast-platform-mix", "DCV322", E, "anycast", (_ac_gw2("junos"),),
         ("sites[0].gateways[1].platform",), "ach1-gw2 is junos but ach1-gw1 is strongswan"),
    Case("anycast-identity-clash", "DCV323", E, "anycast",
         ((f"{AC_IP}\n", f"{AC_IP}\n    anycast_id: acs3-gw1.acany.dcvpn{MARK}\n"),),
         ("sites[0].anycast_id",), "also the IKE identity of gateway acs3-gw1"),
    Case("anycast-one-gateway", "DCV324", W, "anycast", ((AC_GW2, ""), _mark(AC_IP)),
         ("sites[0].anycast_ip",), "gives no failover"),
    Case("anycast-vendor-hub", "DCV325", E, "anycast",
         ((AC_GW2, ""),
          ("      - {name: ach1-gw1, platform: strongswan, transport: ssh, host: ach1-gw1.mgmt,\n"
           "         public_ip: 198.51.100.11}\n",
           "".join(f"      - name: ach1-gw{n}\n        platform: iosxe{MARK}\n"
                   f"        os_version: '17.15'\n        transport: netconf\n"
                   f"        host: ach1-gw{n}.mgmt\n        public_ip: 198.51.100.1{n}\n"
                   for n in (1, 2)))),
         ("sites[0].gateways[0].platform", "sites[0].gateways[1].platform"),
         "sVTI always initiates"),
    Case("anycast-routed", "DCV326", E, "anycast",
         ((f"{AC_IP}\n", f"    anycast_ip: 10.23.0.5{MARK}\n"),),
         ("sites[0].anycast_ip",), "inside prefix 10.23.0.0/16 of site acs3"),
    Case("anycast-peer-identity-twice", "DCV327", E, "anycast",
         (_mark(AC_IP),
          ("public_ip: 198.51.100.31}", "public_ip: 198.51.100.31, ike_id: acs3.example.net}"),
          ("public_ip: 198.51.100.32}", "public_ip: 198.51.100.32, ike_id: acs3.example.net}")),
         ("sites[0].anycast_ip",), "both come from identity acs3.example.net"),
    Case("anycast-dpd-clear", "DCV328", W, "anycast",
         (("  crypto: strict\n",
           f"  crypto:\n    profile: strict\n    dpd: {{interval: 10s, action: clear}}{MARK}\n"),),
         ("fabric.crypto.dpd.action",), "use restart"),
    Case("anycast-id-alone", "DCV329", W, "anycast",
         (("    asn: 65203\n", f"    asn: 65203\n    anycast_id: vpn.example.net{MARK}\n"),),
         ("sites[2].anycast_id",), "it is ignored"),
]

# multihomed gateways (DCV300-DCV309), edits of tests/fabrics/mh-lab.yaml (mhc1-gw1 has an uplink)
BASES["mh"] = (ROOT / "tests" / "fabrics" / "mh-lab.yaml").read_text(encoding="utf-8")
MH_UPLINKS = "uplinks: [192.0.2.133]}\n"
MH_A = "{name: mha1-gw1, platform: strongswan, transport: local"


def _mh_uplinks(*addresses: str, marks: int = 1) -> Edit:
    return MH_UPLINKS, f"uplinks: [{', '.join(addresses)}]}}{MARK * marks}\n"


def _mh_a(platform: str) -> Edit:
    return MH_A, f"{{name: mha1-gw1, platform: {platform}, transport: netconf"


CASES += [
    Case("uplink-is-public-ip", "DCV300", E, "mh", (_mh_uplinks("192.0.2.133", "192.0.2.33"),),
         ("sites[2].gateways[0].uplinks[1]",), "192.0.2.33 is already its public_ip"),
    Case("uplink-twice", "DCV300", E, "mh", (_mh_uplinks("192.0.2.133", "192.0.2.133"),),
         ("sites[2].gateways[0].uplinks[1]",), "is already uplinks[0]"),
    Case("uplink-of-another-gateway", "DCV301", E, "mh", (_mh_uplinks("192.0.2.32"),),
         ("sites[2].gateways[0].uplinks[0]",),
         "also sites[1].gateways[0].public_ip (mhb1-gw1)"),
    Case("uplink-in-a-prefix", "DCV302", E, "mh", (_mh_uplinks("10.31.0.9"),),
         ("sites[2].gateways[0].uplinks[0]",), "inside prefix 10.31.0.0/24 of site mha1"),
    Case("uplinks-on-junos", "DCV303", E, "mh",
         (_mh_a("junos"), ("public_ip: 192.0.2.31}\n",
                           f"public_ip: 192.0.2.31, uplinks: [192.0.2.131]}}{MARK}\n")),
         ("sites[0].gateways[0].uplinks",), "junos) cannot use uplinks"),
    Case("iosxe-peer-has-no-mobike", "DCV304", W, "mh", (_mh_a("iosxe"), _mark(MH_UPLINKS[:-1])),
         ("sites[2].gateways[0].uplinks",), "peer mha1-gw1 is iosxe, which cannot do MOBIKE"),
    Case("junos-peers-have-no-mobike", "DCV304", W, "mh",
         (_mh_a("junos"), ("{name: mhb1-gw1, platform: strongswan, transport: local",
                           "{name: mhb1-gw1, platform: junos, transport: netconf"),
          _mh_uplinks("192.0.2.133", marks=2)),
         ("sites[2].gateways[0].uplinks",) * 2, "backup peers"),
    Case("too-many-for-junos", "DCV305", E, "mh",
         (_mh_a("junos"), _mh_uplinks(*(f"192.0.2.{n}" for n in range(133, 138)))),
         ("sites[2].gateways[0].uplinks",), "can list at most 5"),
    Case("uplinks-on-an-anycast-hub", "DCV306", W, "mh",
         (("  topology: full_mesh\n", "  topology: hub_spoke\n  hubs: [mhc1]\n"),
          ("    asn: 65303\n", "    asn: 65303\n    anycast_ip: 192.0.2.200\n"),
          _mark(MH_UPLINKS[:-1])),
         ("sites[2].gateways[0].uplinks",), "the uplinks apply to its unicast tunnels"),
]


# capacity limits (DCV340-DCV344). hub10: hub s1-gw1 has 9 tunnels, every end strongSwan
# (8h / 1h lifetimes jittered by 48m / 6m); a spoke has 1.
def _cp_limits(base_line: str, limits: str) -> Edit:
    return base_line, f"{base_line}  limits: {{{limits}}}\n"


CP_POOL = "  tunnel_pool: 100.64.0.0/10\n"
CP_HUB = _mark("  - name: s1-gw1")
CASES += [
    Case("cp-ike-sas", "DCV340", W, "hub10", (_cp_limits(CP_POOL, "max_ike_sas: 8"), CP_HUB),
         ("sites[0].gateways[0]",), "gateway s1-gw1: 9 IKE SAs exceed fabric.limits.max_ike_sas 8"),
    Case("cp-child-sas", "DCV341", W, "hub10", (_cp_limits(CP_POOL, "max_child_sas: 8"), CP_HUB),
         ("sites[0].gateways[0]",), "9 CHILD SAs exceed fabric.limits.max_child_sas 8"),
    Case("cp-bgp-sessions", "DCV342", W, "hub10",
         (_cp_limits(CP_POOL, "max_bgp_sessions: 8"), CP_HUB),
         ("sites[0].gateways[0]",), "9 BGP sessions exceed fabric.limits.max_bgp_sessions 8"),
    # 9 x (3600 / (28800 - 2/3 x 2880) + 3600 / (3600 - 2/3 x 360)) = 10.85
    Case("cp-rekeys-per-hour", "DCV343", W, "hub10",
         (_cp_limits(CP_POOL, "max_rekeys_per_hour: 10"), CP_HUB),
         ("sites[0].gateways[0]",), "10.8 rekeys per hour (IKE + CHILD, mean) exceed"),
    # acme: the IOS-XE / JunOS gateways have >= 2 tunnels with no jittering end (2.2 a minute),
    # the strongSwan ones spread theirs (0.5)
    Case("cp-rekey-burst", "DCV344", W, "acme",
         (_cp_limits("  mtu: {path_mtu: 1500}\n", "max_rekeys_per_minute: 2"),
          *(_mark(f"      - name: {gw}") for gw in ("fra1-gw1", "fra1-gw2", "iad1-gw1",
                                                     "iad1-gw2", "par1-gw1", "sjc1-gw1"))),
         ("sites[0].gateways[0]", "sites[0].gateways[1]", "sites[1].gateways[0]",
          "sites[1].gateways[1]", "sites[3].gateways[0]", "sites[5].gateways[0]"),
         "2.2 rekeys in the busiest minute after a mass restart exceed "
         "fabric.limits.max_rekeys_per_minute 2"),
]


# CRL distribution point (DCV253), edits of tests/fabrics/cu-crl.yaml (it sets auth.crl_url)
BASES["cu"] = (ROOT / "tests" / "fabrics" / "cu-crl.yaml").read_text(encoding="utf-8")
CU_AUTH = ('  auth: {method: certificate, key_type: ecdsa-p384, '
           'crl_url: "http://pki.cucrl.example.net/dcvpn/crl.pem"}\n')
CASES += [
    # no crl_url: the path falls back to the line of fabric.auth
    Case("cu-iosxe-without-crl-url", "DCV253", W, "cu",
         ((CU_AUTH, f"  auth: {{method: certificate, key_type: ecdsa-p384}}{MARK}\n"),),
         ("fabric.auth.crl_url",), "IOS-XE gateway(s) cuh1-gw1, cub3-gw1 accept a revoked peer"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(tmp_path: Path, case: Case) -> None:
    text = _apply(case.base, case.edits)
    path, findings = _findings(tmp_path, text)
    assert not [f for f in lint(load_fabric(_write(tmp_path, BASES[case.base])))
                if f.code == case.code], "the unedited base must not trigger the rule"
    got = [(f.code, f.severity, format_path(f.path), f.file, f.line)
           for f in findings if f.code == case.code]
    lines = _marked_lines(text)
    assert len(lines) == len(case.paths), "one marker per expected finding"
    want = [(case.code, case.severity, p, str(path), n)
            for p, n in zip(case.paths, lines, strict=True)]
    assert got == want
    for f in findings:
        if f.code == case.code:
            assert case.message in f.message
            assert f.format().startswith(f"{path}:{f.line}: {format_path(f.path)}: "
                                         f"{case.severity} {case.code}: ")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "base.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_rule_has_a_case_with_its_registered_severity() -> None:
    registered = {r.code: r.severity for r in RULES}
    assert len(registered) == len(RULES), "rule codes must be unique"
    assert {c.code for c in CASES} == set(registered)
    for c in CASES:
        assert c.severity is registered[c.code], c.id


@pytest.mark.parametrize("name", ["lab3.yaml", "acme-hybrid.yaml"])
def test_example_fabrics_are_clean(name: str) -> None:
    findings = lint(load_fabric(EXAMPLES / name))
    assert [f.format() for f in findings if f.severity is E] == []


@pytest.mark.parametrize("group", [1, 2, 5, 14, 22, 23, 24])
def test_every_weak_dh_group_is_banned(tmp_path: Path, group: int) -> None:
    text = _apply("acme", (
        _ike(f"encryption: aes256gcm16, prf: sha384, dh_group: {group}, lifetime: 8h"),
        _esp(f"encryption: aes256gcm16, pfs_group: {group}, lifetime: 1h")))
    _, findings = _findings(tmp_path, text)
    assert [(format_path(f.path), f.line) for f in findings if f.code == "DCV101"] == list(
        zip((f"{CRYPTO}.ike.dh_group", f"{CRYPTO}.esp.pfs_group"), _marked_lines(text),
            strict=True))


@pytest.mark.parametrize("group", [15, 16, 17, 18, 19, 20, 21, 31, 32])
def test_strong_dh_groups_pass(tmp_path: Path, group: int) -> None:
    text = _apply("lab3", (("    profile: strict\n",
                            f"    ike: {{dh_group: {group}}}\n    esp: {{pfs_group: {group}}}\n"),))
    _, findings = _findings(tmp_path, text)
    assert [f.format() for f in findings if f.code == "DCV101"] == []


@pytest.mark.parametrize("name", ["sha1", "md5"])
def test_weak_hashes_everywhere(tmp_path: Path, name: str) -> None:
    text = _apply("acme", (
        _ike(f"encryption: aes256, integrity: {name}, prf: {name}, dh_group: 20, lifetime: 8h"),
        _esp(f"encryption: aes256, integrity: {name}, pfs_group: 20, lifetime: 1h")))
    _, findings = _findings(tmp_path, text)
    got = sorted(format_path(f.path) for f in findings if f.code == "DCV102")
    assert got == [f"{CRYPTO}.esp.integrity", f"{CRYPTO}.ike.integrity", f"{CRYPTO}.ike.prf"]


@pytest.mark.parametrize("ike", ["24h", "86400", "3601"])
def test_lifetime_bounds_are_inclusive(tmp_path: Path, ike: str) -> None:
    # ESP stays at 1h, the lower bound; IKE goes up to the upper bound
    text = _apply("acme", (
        _ike(f"encryption: aes256gcm16, prf: sha384, dh_group: 20, lifetime: {ike}"),))
    _, findings = _findings(tmp_path, text)
    assert [f.format() for f in findings if f.code in ("DCV105", "DCV106")] == []


def test_esn_is_fine_on_the_xfrm_data_plane(tmp_path: Path) -> None:
    text = _apply("lab3", (
        ("  data_plane: libipsec", "  data_plane: xfrm"),
        ("    profile: strict\n", "    profile: strict\n    esp: {esn: true}\n")))
    _, findings = _findings(tmp_path, text)
    assert [f.format() for f in findings if f.code == "DCV242"] == []


def test_site_data_plane_overrides_the_fabric_default(tmp_path: Path) -> None:
    text = _apply("lab3", (
        ("    profile: strict\n", "    profile: strict\n    esp: {esn: true}\n"),
        ("    region: us\n", "    region: us\n    data_plane: xfrm\n")))
    _, findings = _findings(tmp_path, text)
    assert sorted(format_path(f.path) for f in findings if f.code == "DCV242") == [
        "sites[0].gateways[0].platform", "sites[1].gateways[0].platform"]


def test_esn_on_iosxe_is_refused(tmp_path: Path) -> None:
    text = _apply("acme", (_esp("encryption: aes256gcm16, pfs_group: 20, lifetime: 1h, esn: true",
                                mark=False),))
    _, findings = _findings(tmp_path, text)
    msgs = {format_path(f.path): f.message for f in findings if f.code == "DCV242"}
    assert "sites[0].gateways[0].platform" in msgs  # fra1-gw1, iosxe
    assert "ESN" in msgs["sites[0].gateways[0].platform"]
    assert "sites[2].gateways[0].platform" not in msgs  # ams1-gw1, strongswan on xfrm


@pytest.mark.parametrize(("base", "edit", "code"), [("hub9", PSK, "DCV251"),
                                                   ("hub8", FULL_MESH, "DCV252")])
def test_scale_warnings_start_above_eight(tmp_path: Path, base: str, edit: Edit,
                                          code: str) -> None:
    _, findings = _findings(tmp_path, _apply(base, (edit,)))
    assert [f.format() for f in findings if f.code == code] == []


def test_select_limits_the_rules(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.code == "DCV106")
    path, findings = _findings(tmp_path, _apply(case.base, case.edits))
    assert {f.code for f in findings} >= {"DCV106"}
    assert {f.code for f in lint(load_fabric(path), {"DCV101"})} == set()
    assert {f.code for f in lint(load_fabric(path), {"DCV106"})} == {"DCV106"}


def test_findings_are_ordered_by_line(tmp_path: Path) -> None:
    text = _apply("acme", (("    id: 3\n", "    id: 1\n"), ("    asn: 65004\n", "    asn: 65001\n"),
                           ("hubs: [fra1, iad1]\n", "hubs: [fra1, iad9]\n")))
    _, findings = _findings(tmp_path, text)
    keys = [(f.line or 0, f.code) for f in findings]
    assert keys == sorted(keys)
    # hubs (line 5), no crl_url (auth, line 12), iad1's region us lost its hub (info), ams1's
    # id, par1's asn
    assert [f.code for f in findings] == ["DCV231", "DCV253", "DCV233", "DCV201", "DCV203"]


def _gen_module() -> Any:
    spec = importlib.util.spec_from_file_location("gen_fabric", ROOT / "bench" / "gen_fabric.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("topology", "n", "mixed", "expected"), [
    # mixed platforms: IOS-XE gateways without fabric.auth.crl_url check no CRL (DCV253)
    ("hub_spoke", 60, True, {"DCV253"}),
    ("hub_spoke", 30, False, set()),
    ("full_mesh", 12, True, {"DCV252", "DCV253"}),
])
def test_benchmark_fabrics_lint_clean(tmp_path: Path, topology: str, n: int, mixed: bool,
                                      expected: set[str]) -> None:
    gen = _gen_module()
    path = tmp_path / "gen.yaml"
    path.write_text(gen.fabric_yaml(gen.generate(n, topology, mixed_platforms=mixed)),
                    encoding="utf-8")
    loaded = load_fabric(path)
    assert {f.code for f in lint(loaded)} == expected
    compiled = compile_fabric(loaded.fabric)
    hubs = 2 if topology == "hub_spoke" else 0
    if hubs:  # 2 hubs x 2 gateways: hub pair has 2 planes, every spoke 2 planes to each hub
        assert len(compiled.tunnels) == 2 + (n - hubs) * hubs * 2
    else:
        assert len(compiled.tunnels) == n * (n - 1) // 2
    platforms = {str(g.platform) for s in loaded.fabric.sites for g in s.gateways}
    assert platforms == ({"strongswan", "iosxe", "junos"} if mixed else {"strongswan"})
