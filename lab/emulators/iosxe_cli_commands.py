"""The IOS-XE CLI as data: configuration modes and their commands, exec commands, messages.

Each configuration mode lists its commands in rank groups: the running configuration shows a
section's lines in group order (IOS's NVGEN order), lines of one group in the order they were
entered. A command's key names the words that identify its setting (entering the command again
with another value replaces the line); no key means every distinct line is its own setting.
The command set covers what dcvpn renders (templates/iosxe/config.cli.j2) and the basics of a
device's configuration; anything else is `% Invalid input`, as on a device that lacks a feature.
"""

from dataclasses import dataclass

from lab.emulators.iosxe_cli_syntax import Template

INVALID = "% Invalid input detected at '^' marker."
INCOMPLETE = "% Incomplete command."
AMBIGUOUS = '% Ambiguous command:  "{line}"'
UNKNOWN_EXEC = "% Unknown command or computer name, or unable to find computer address"
CONFIG_BANNER = "Enter configuration commands, one per line.  End with CNTL/Z."
ARCHIVE_OFF = " Archive feature not enabled"
ARCHIVE_NEEDED = "%Please turn config archive on"
NO_PENDING = "%No Rollback Confirmed Change pending"
PENDING_EXISTS = ("%Rollback Confirmed Change pending. "
                  "Use 'configure confirm' or 'configure revert now' first.")
REPLACE_DONE = "Total number of passes: 1\nRollback Done"
RESTORED = "The original configuration has been successfully restored."
BAD_SECRETS = "% Bad secrets"
NO_PASSWORD = "% No password set"
SCP_DISABLED = "SCP server not enabled: configure 'ip scp server enable'"
OPEN_ERROR = "%Error opening {url} (No such file or directory)"
REPLACE_QUESTION = ("This will apply all necessary additions and deletions\n"
                    "to replace the current running configuration with the\n"
                    "contents of the specified configuration file, which is\n"
                    "assumed to be a complete configuration, not a partial\n"
                    "configuration. Enter Y if you are sure you want to proceed. ? [no]: ")

FLASH_TOTAL = 7897796608  # bytes of a C8000V's bootflash:
NVRAM_TOTAL = 33554432
ARCHIVE_MAXIMUM = 10


@dataclass(frozen=True)
class ConfigCmd:
    template: Template
    key: tuple[int, ...] = ()  # positions of the words that identify the setting
    enters: str | None = None  # the sub-mode a section header opens
    no_min: int = 0  # words a `no` form needs (0: the leading keywords, +1 for a section)
    stored_no: bool = False  # `no X` is kept in the configuration as a line
    no_scope: int = 0  # `no` removes every line of the section starting with these words
    append: bool = False  # every line is new data (certificate hex), never a setting to replace

    @property
    def syntax(self) -> str:
        return self.template.syntax

    def no_words(self) -> int:
        if self.no_min:
            return self.no_min
        return self.template.leading_keywords + (1 if self.enters else 0)


def c(syntax: str, key: int | tuple[int, ...] = (), *, enters: str | None = None,
      no_min: int = 0, stored_no: bool = False, no_scope: int = 0,
      append: bool = False) -> ConfigCmd:
    positions = tuple(range(key)) if isinstance(key, int) else key
    return ConfigCmd(Template(syntax), positions, enters, no_min, stored_no, no_scope, append)


@dataclass(frozen=True)
class ModeSpec:
    prompt: str  # what the prompt shows between the hostname and '#'
    groups: tuple[tuple[ConfigCmd, ...], ...]
    bang: str = "after"  # where a nested section of this mode gets its " !": after, before, none
    closing: str | None = None  # what ends the section in the running config (header indent)
    exits: tuple[str, ...] = ()  # words (besides `exit`) that leave the mode

    def commands(self) -> tuple[tuple[int, ConfigCmd], ...]:
        return tuple((rank, cmd) for rank, group in enumerate(self.groups) for cmd in group)


_IKE_ENCRYPTION = "{aes-cbc-128|aes-cbc-192|aes-cbc-256|aes-gcm-128|aes-gcm-256|3des|des}"
_IKE_HASH = "{md5|sha1|sha256|sha384|sha512}"
_IKE_GROUP = "{1|2|5|14|15|16|19|20|21|24|31}"
_PFS = "{group1|group2|group5|group14|group15|group16|group19|group20|group21|group24}"
_TRANSFORMS = ("{esp-gcm|esp-gmac|esp-aes|esp-3des|esp-des|esp-null|esp-md5-hmac|esp-sha-hmac"
               "|esp-sha256-hmac|esp-sha384-hmac|esp-sha512-hmac|128|192|256}")
_ID_KIND = "{fqdn|address|email|key-id}"

GLOBAL = ModeSpec("(config)", (
    (c("version <word>", 1),),
    (c("service timestamps {debug|log} <line>", 3),
     c("service {password-encryption|pad|call-home|config|dhcp|tcp-keepalives-in"
       "|tcp-keepalives-out}", stored_no=True)),
    (c("platform <line>"),),
    (c("hostname <word>", 1),),
    (c("boot-start-marker"), c("boot system <line>"), c("boot-end-marker")),
    (c("logging buffered [<line>]", 2), c("logging console [<line>]", 2, stored_no=True),
     c("logging trap <word>", 2), c("logging host <ip> [<line>]", 3)),
    (c("enable {secret|password} [<0-9>] <word>", 1),),
    (c("aaa new-model", stored_no=True),),
    (c("clock timezone <line>", 2),),
    (c("ip domain name <word>", 3), c("ip domain lookup", stored_no=True),
     c("ip name-server <ip>+")),
    (c("login on-success log"), c("login on-failure log")),
    (c("file prompt [{quiet|noisy}]", 2),),
    (c("crypto pki trustpoint <word>", enters="ca-trustpoint"),),
    (c("crypto pki certificate chain <word>", enters="config-cert-chain"),),
    (c("license <line>"), c("memory <line>"), c("diagnostic <line>")),
    (c("archive", enters="config-archive"),),
    (c("username <word> [privilege <0-15>] {password|secret} [<0-9>] <line>", 2, no_min=2),),
    (c("redundancy", enters="config-red"),),
    (c("crypto ikev2 proposal <word>", enters="config-ikev2-proposal"),
     c("crypto ikev2 policy <word>", enters="config-ikev2-policy"),
     c("crypto ikev2 keyring <word>", enters="config-ikev2-keyring"),
     c("crypto ikev2 profile <word>", enters="config-ikev2-profile")),
    (c("crypto ipsec transform-set <word> " + _TRANSFORMS + "+", 4, enters="cfg-crypto-trans",
       no_min=4),
     c("crypto ipsec profile <word>", enters="ipsec-profile")),
    (c("interface <if>", enters="config-if"),),
    (c("router bgp <1-4294967295>", enters="config-router"),),
    (c("ip forward-protocol nd"), c("ip http server", stored_no=True),
     c("ip http secure-server", stored_no=True), c("ip http authentication local")),
    (c("ip ssh version {1|2}", 3), c("ip ssh time-out <1-120>", 3),
     c("ip scp server enable")),
    (c("ip route <ip> <mask> <line>", no_min=4),),
    (c("ip prefix-list <word> seq <1-4294967294> {permit|deny} <prefix> [ge <1-32>] "
       "[le <1-32>]", 5, no_min=3),
     c("ip prefix-list <word> description <line>", 4, no_min=3)),
    (c("route-map <word> [{permit|deny}] [<0-65535>]", enters="config-route-map"),),
    (c("control-plane", enters="config-cp"),),
    (c("line {con|vty|aux} <0-1500> [<1-1500>]", enters="config-line"),),
    (c("ntp server <ip> [<line>]", 3),),
))

MODES: dict[str, ModeSpec] = {
    "config": GLOBAL,
    "ca-trustpoint": ModeSpec("(ca-trustpoint)", (
        (c("enrollment {terminal|selfsigned|url|mode} [<line>]", 1),),
        (c("serial-number [none]", 1), c("fqdn <word>", 1), c("ip-address <word>", 1),
         c("subject-name <line>", 1), c("subject-alt-name <line>", 1)),
        (c("revocation-check {crl|none|ocsp}+", 1),),
        # [U] where IOS-XE's NVGEN puts `crl cache`; dcvpn renders it after revocation-check
        (c("crl cache delete-after <1-43200>", 2), c("crl cache extend <1-1440>", 2),
         c("crl cache none", 2)),
        (c("eckeypair <word>", 1), c("rsakeypair <word> [<line>]", 1)),
    )),
    "config-cert-chain": ModeSpec("(config-cert-chain)", (
        (c("certificate [{ca|self-signed}] <hex>", enters="config-pubkey"),),
    )),
    # the certificate as DER in hex, ended by `quit` (shown as "  <TAB>quit")
    "config-pubkey": ModeSpec("(config-pubkey)", (
        (c("<hex>+", append=True),),
    ), bang="none", closing=" \tquit", exits=("quit",)),
    "config-archive": ModeSpec("(config-archive)", (
        (c("log config", enters="config-archive-log-cfg"),),
        (c("path <url>", 1), c("maximum <1-14>", 1), c("write-memory"),
         c("time-period <1-525600>", 1)),
    )),
    "config-archive-log-cfg": ModeSpec("(config-archive-log-cfg)", (
        (c("logging enable"), c("logging size <1-1000>", 2), c("hidekeys", stored_no=True),
         c("notify syslog [<line>]", 2)),
    )),
    "config-red": ModeSpec("(config-red)", ((c("mode <word>", 1),),)),
    "config-ikev2-proposal": ModeSpec("(config-ikev2-proposal)", (
        (c(f"encryption {_IKE_ENCRYPTION}+", 1),),
        (c(f"integrity {_IKE_HASH}+", 1),),
        (c(f"prf {_IKE_HASH}+", 1),),
        (c(f"group {_IKE_GROUP}+", 1),),
    )),
    "config-ikev2-policy": ModeSpec("(config-ikev2-policy)", (
        (c("match fvrf <word>", 2), c("match address local <ip>", no_min=4)),
        (c("proposal <word>", no_min=2),),
    )),
    "config-ikev2-keyring": ModeSpec("(config-ikev2-keyring)", (
        (c("peer <word>", enters="config-ikev2-keyring-peer"),),
    )),
    "config-ikev2-keyring-peer": ModeSpec("(config-ikev2-keyring-peer)", (
        (c("description <line>", 1),),
        (c("address <ip> [<mask>]", 1), c("hostname <word>", 1),
         c(f"identity {_ID_KIND} <word>", 1)),
        (c("pre-shared-key {local|remote} [{0|6}] <line>", 2),
         c("pre-shared-key [{0|6}] <line>", 1)),
    )),
    "config-ikev2-profile": ModeSpec("(config-ikev2-profile)", (
        (c("description <line>", 1),),
        (c("match fvrf <word>", 2), c("match address local <ip>", no_min=4),
         c(f"match identity remote {_ID_KIND} <word> [<mask>]", no_min=5)),
        (c(f"identity local {_ID_KIND} <word>", 2),),
        (c("authentication {remote|local} {pre-share|ecdsa-sig|rsa-sig|eap}", 2),),
        (c("keyring local <word>", 2),),
        (c("pki trustpoint <word> [{sign|verify}]", 2),),
        (c("dpd <10-3600> <2-60> {on-demand|periodic}", 1),),
        (c("lifetime <120-86400>", 1),),
        (c("nat force-encap"), c("nat keepalive <5-3600>", 2)),
        (c("virtual-template <1-65535>", 1),),
    )),
    "cfg-crypto-trans": ModeSpec("(cfg-crypto-trans)", (
        (c("mode {tunnel|transport}", 1),),
    )),
    "ipsec-profile": ModeSpec("(ipsec-profile)", (
        (c("description <line>", 1),),
        (c("set security-association lifetime {seconds|kilobytes|days} <1-4294967295>", 4),),
        (c("set transform-set <word>+", 2),),
        (c(f"set pfs [{_PFS}]", 2),),
        (c("set ikev2-profile <word>", 2),),
    )),
    "config-if": ModeSpec("(config-if)", (
        (c("description <line>", 1),),
        (c("vrf forwarding <word>", 2),),
        (c("ip address <ip> <mask> secondary", no_min=5),
         c("ip address <ip> <mask>", 2, stored_no=True), c("ip address dhcp", 2),
         c("ip unnumbered <if>", 2)),
        (c("ip mtu <68-18000>", 2),),
        (c("ip nat {inside|outside}", 2),),
        (c("ip tcp adjust-mss <500-1460>", 3),),
        (c("load-interval <30-600>", 1),),
        (c("shutdown"),),
        (c("tunnel source <ip>", 2), c("tunnel source <if>", 2)),
        (c("tunnel mode ipsec {ipv4|ipv6}", 2), c("tunnel mode gre {ip|ipv6|multipoint}", 2)),
        (c("tunnel destination <ip>", 2),),
        (c("tunnel vrf <word>", 2),),
        (c("tunnel protection ipsec profile <word> [shared]", 3),),
        (c("negotiation auto", 1), c("mtu <64-9216>", 1)),
        (c("bfd interval <50-9999> min_rx <50-9999> multiplier <3-50>", 2),),
    )),
    "config-router": ModeSpec("(config-router)", (
        (c("bgp router-id <ip>", 2), c("bgp log-neighbor-changes", stored_no=True),
         c("bgp graceful-restart"), c("bgp bestpath <line>", no_min=3),
         c("bgp default ipv4-unicast", stored_no=True)),
        (c("neighbor <ip> remote-as <1-4294967295>", 3, no_min=2, no_scope=2),
         c("neighbor <ip> description <line>", 3, no_min=3),
         c("neighbor <ip> password [<0-7>] <line>", 3, no_min=3),
         c("neighbor <ip> ebgp-multihop [<1-255>]", 3, no_min=3),
         c("neighbor <ip> update-source <if>", 3, no_min=3),
         c("neighbor <ip> fall-over bfd [{single-hop|multi-hop|check-control-plane-failure}]",
           3, no_min=3),
         c("neighbor <ip> timers <0-65535> <0-65535> [<0-65535>]", 3, no_min=3),
         c("neighbor <ip> shutdown", 3, no_min=3)),
        (c("address-family {ipv4|ipv6|vpnv4} [{unicast|multicast}] [vrf <word>]",
           enters="config-router-af"),),
    )),
    "config-router-af": ModeSpec("(config-router-af)", (
        (c("network <ip> [mask <mask>] [route-map <word>]", no_min=2),),
        (c("redistribute {connected|static} [<line>]", 2),),
        (c("maximum-paths <1-32>", 1),),
        (c("neighbor <ip> activate", 3, no_min=3),
         c("neighbor <ip> send-community [{both|standard|extended}]", 3, no_min=3),
         c("neighbor <ip> next-hop-self [all]", 3, no_min=3),
         c("neighbor <ip> route-reflector-client", 3, no_min=3),
         c("neighbor <ip> soft-reconfiguration inbound", 3, no_min=3),
         c("neighbor <ip> prefix-list <word> {in|out}", (0, 1, 2, 4), no_min=3),
         c("neighbor <ip> route-map <word> {in|out}", (0, 1, 2, 4), no_min=3),
         c("neighbor <ip> maximum-prefix <1-2147483647> [<1-100>] "
           "[warning-only] [restart <1-65535>]", 3, no_min=3)),
    ), bang="before", closing="exit-address-family", exits=("exit-address-family",)),
    "config-route-map": ModeSpec("(config-route-map)", (
        (c("description <line>", 1),),
        (c("match ip address prefix-list <word>+", 4), c("match ip address <word>+", 3),
         c("match as-path <1-500>+", 2), c("match community <word>+", 2)),
        (c("continue [<1-65535>]", 1),),
        (c("set as-path prepend <1-4294967295>+", 3), c("set community <line>", 2),
         c("set ip next-hop <ip>", 3), c("set local-preference <0-4294967295>", 2),
         c("set metric <0-4294967295>", 2), c("set weight <0-65535>", 2)),
    )),
    "config-cp": ModeSpec("(config-cp)", ((c("service-policy {input|output} <word>", 2),),)),
    "config-line": ModeSpec("(config-line)", (
        (c("session-timeout <0-35791>", 1), c("exec-timeout <0-35791> [<0-2147483>]", 1),
         c("privilege level <0-15>", 2), c("password [<0-7>] <line>", 1),
         c("logging synchronous"), c("login authentication <word>", 2),
         c("login [local]", 1), c("length <0-512>", 1), c("stopbits {1|1.5|2}", 1),
         c("transport input {ssh|telnet|none|all}+", 2),
         c("transport output {ssh|telnet|none|all}+", 2)),
    )),
}


@dataclass(frozen=True)
class ExecCmd:
    template: Template
    handler: str
    privileged: bool = True


def x(syntax: str, handler: str, *, privileged: bool = True) -> ExecCmd:
    return ExecCmd(Template(syntax), handler, privileged)


_REPLACE_OPTIONS = ("[nolock] [list] [force] [ignorecase] "
                    "[revert [trigger] [error] [timer <1-120>]] [time <1-120>]")

EXEC: tuple[ExecCmd, ...] = (
    x("enable [<0-15>]", "enable", privileged=False),
    x("disable", "disable"),
    x("exit", "exit", privileged=False),
    x("logout", "exit", privileged=False),
    x("quit", "exit", privileged=False),
    x("terminal length <0-512>", "terminal", privileged=False),
    x("terminal width <0-512>", "terminal", privileged=False),
    x("terminal [no] monitor", "terminal", privileged=False),
    x("configure terminal [revert timer [idle] <1-120>]", "configure_terminal"),
    x(f"configure replace <url> {_REPLACE_OPTIONS}", "configure_replace"),
    x("configure confirm", "configure_confirm"),
    x("configure revert now", "configure_revert"),
    x("configure revert timer [idle] <1-120>", "configure_revert"),
    x("show version", "show_version", privileged=False),
    x("show clock", "show_clock", privileged=False),
    x("show users", "show_users", privileged=False),
    x("show hosts", "show_hosts", privileged=False),
    x("show ip interface brief", "show_ip_interface_brief", privileged=False),
    x("show running-config [all]", "show_running"),
    x("show startup-config", "show_startup"),
    x("show archive", "show_archive"),
    x("show archive config rollback timer", "show_rollback_timer"),
    x("show archive config differences [<url>] [<url>]", "show_differences"),
    x("show archive config incremental-diffs <url> [ignorecase]", "show_incremental"),
    x("show crypto ikev2 sa [detailed]", "show_ikev2_sa"),
    x("show crypto ipsec sa [detail]", "show_ipsec_sa"),
    x("show crypto pki certificates [<word>]", "show_pki_certificates"),  # iosxe_cli_pki
    x("show crypto key mypubkey {rsa|ec|all} [<word>]", "show_key_mypubkey"),
    x("show ip bgp summary", "show_bgp_summary", privileged=False),
    x("show bgp ipv4 unicast summary", "show_bgp_summary", privileged=False),
    x("dir [<url>]", "dir"),
    x("verify /md5 <url> [<hex>]", "verify_md5"),
    x("more <url>", "more"),
    x("copy <url> <url>", "copy"),
    x("delete [/force] <url>", "delete"),
    x("write [memory]", "write_memory"),
    x("archive config", "archive_config"),
)

PIPE_FILTERS = ("include", "exclude", "begin", "section", "count")
