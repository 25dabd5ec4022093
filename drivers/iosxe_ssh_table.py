"""IOS-XE CLI facts the SSH driver relies on: file names, device messages, what dcvpn owns.

Device messages are IOS-XE's wording as netmiko/napalm expect it on a Catalyst 8000V
(17.x). `OWNED_HEADERS` must follow tasks.render_iosxe: every object it renders is named
with the `DCVPN-` prefix, every tunnel interface carries `description dcvpn <tunnel> ...`.
"""

import re

NETMIKO_DEVICE_TYPE = "cisco_xe"  # the library's spelling of platform iosxe
FLASH = "flash:"
CANDIDATE_FILE = "dcvpn-candidate.cfg"  # the full intended configuration (REPLACE)
MERGE_FILE = "dcvpn-merge.cfg"  # the lines of a MERGE, for the device's diff only
CHECKPOINT_FILE = "dcvpn-rollback.cfg"  # running config before dcvpn's last commit
SAFETY_MINUTES = 5  # revert timer under an unconfirmed MERGE, confirmed right after

# exec commands
SHOW_RUNNING = "show running-config"
SHOW_ARCHIVE = "show archive"
SHOW_TIMER = "show archive config rollback timer"
DIFF_FILES = "show archive config differences {first} {second}"
INCREMENTAL = "show archive config incremental-diffs {url}"
VERIFY_MD5 = "verify /md5 {url} {digest}"
DELETE = "delete /force {url}"
DIR = "dir {url}"
COPY_RUNNING = "copy running-config {url}"
REPLACE = "configure replace {url} force revert trigger error"
REPLACE_TIMER = " timer {minutes}"
CONFIGURE_REVERT = "configure terminal revert timer {minutes}"
CONFIRM = "configure confirm"
REVERT_NOW = "configure revert now"
WRITE = "write memory"
STATE_COMMANDS = {
    "ike": "show crypto ikev2 sa detailed",  # the detailed form adds Local/Remote id
    "ipsec": "show crypto ipsec sa",
    "bgp": "show ip bgp summary",
}

# what the device answers
NO_PENDING = "No Rollback Confirmed Change pending"
PENDING_EXISTS = "Rollback Confirmed Change pending"
ARCHIVE_OFF = "Archive feature not enabled"
ARCHIVE_NEEDED = "turn config archive on"
TIMER_ARMED = re.compile(r"^\s*Timer value\s*:", re.MULTILINE)
REPLACE_DONE = "Rollback Done"
RESTORED = "original configuration has been successfully restored"
MD5_VERIFIED = "Verified ("
NO_FILE = "No such file or directory"
SCP_DISABLED = "ip scp server enable"
DIFF_NOISE = ("!Contextual Config Diffs:", "!List of Commands:", "!No changes were found",
              "end")
# a question the device asks before it acts (answered with Return: the default)
QUESTION = re.compile(r"(\]\?|\[confirm\]|\[no\]:|\[yes/no\]:?)\s*$")
# lines of device output that mean the command or the configuration line before was refused
FAILURES = tuple(re.compile(p) for p in (
    r"^% ?Invalid input detected",
    r"^% ?Incomplete command",
    r"^% ?Ambiguous command",
    r"^% ?Unknown command",
    r"^% ?Invalid ",
    r"^% ?Bad ",
    r"^% ?Error",
    r"^%Error",
    r"^% ?[Nn]ot allowed",
))
CARET = re.compile(r"^\s*\^\s*$")
# an echoed configuration line: `host(config-if)#line` or `host#line`
PROMPT_ECHO = re.compile(r"^[\w.:/-]+(\([\w-]+\))?[#>]")
RUNNING_PREAMBLE = re.compile(r"^(Building configuration\.\.\.|Current configuration\s*:.*)$")

# --- what dcvpn owns in a running configuration ------------------------------------------
OWNER_PREFIX = "DCVPN-"
OWNED_HEADERS = tuple(re.compile(p) for p in (
    rf"^crypto pki (trustpoint|certificate chain) {OWNER_PREFIX}\S+$",
    rf"^crypto ikev2 (proposal|policy|keyring|profile) {OWNER_PREFIX}\S+$",
    rf"^crypto ipsec (transform-set|profile) {OWNER_PREFIX}\S+( .*)?$",
    rf"^ip prefix-list {OWNER_PREFIX}\S+ .*$",
    rf"^route-map {OWNER_PREFIX}\S+( .*)?$",
))
TUNNEL_HEADER = re.compile(r"^interface Tunnel\d+$")
OWNED_TUNNEL_LINES = (re.compile(r"^ description dcvpn "),
                      re.compile(rf"^ tunnel protection ipsec profile {OWNER_PREFIX}"))
BGP_HEADER = re.compile(r"^router bgp (?P<asn>\S+)$")
DCVPN_NEIGHBOR = re.compile(r"^ neighbor (?P<ip>\S+) description dcvpn ")
# router bgp settings dcvpn renders (besides its neighbors' lines and its networks)
BGP_OWNED_SETTINGS = (re.compile(r"^ (no )?bgp router-id "),
                      re.compile(r"^ (no )?bgp log-neighbor-changes$"))
BGP_OWNED_AF = re.compile(r"^ address-family ipv4( unicast)?$")
