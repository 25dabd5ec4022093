"""Where a strongSwan+FRR gateway keeps its files and how it reloads them, per transport.

Plain data: the files dcvpn manages (host path, mode, required in a replace), the state
folder of the rollback timer, the reload steps (shell commands, run in this order on commit,
rollback and when the timer fires) and the commands that read the state.

local (the lab, tasks/lab_devices.py): options `netns` and `dir`; swanctl.conf,
    swanctl-secrets.conf, strongswan.conf and interfaces.sh in <dir>, frr.conf and FRR's vty
    sockets in <dir>/frr, charon's vici socket <dir>/charon.vici; state in <dir>/.dcvpn.
ssh (a Debian/Ubuntu host): /etc/swanctl/swanctl.conf (+ swanctl-secrets.conf 0600),
    /etc/frr/frr.conf, /etc/dcvpn/interfaces.sh; state in /var/lib/dcvpn. The rendered
    strongswan.conf is made for the lab's charon-systemd (relative socket and log paths), so
    it is not installed on a host unless `path:strongswan.conf` names where it goes.

Options (DeviceTarget.options, all strings) override the tables:
    path:<file>      host path of a rendered file; "" = not managed (left alone)
    state_dir        the timer's state folder
    reload:<step>    shell command of a reload step (interfaces, settings, swanctl, frr);
                     "" = skip the step
    state:<what>     command that prints `swanctl --list-sas --pretty` (list-sas) or FRR's
                     `show bgp summary json` (bgp-summary)
    frr_reload       path of FRR's frr-reload.py
    sudo             ssh: "1" runs every command through `sudo -n`
    heal:<what>      `dcvpn watch --devices` healing (Heal): initiate, probe, restart;
                     "" = not supported

FRR is applied with frr-reload.py, not `vtysh -f`: vtysh -f merges (a neighbor, prefix-list
entry or route-map that is no longer rendered stays configured), frr-reload.py diffs the
file against `show running-config` and sends the `no ...` lines too, without restarting
bgpd (sessions whose configuration did not change stay up).
"""

import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from drivers.errors import UnsupportedError

q = shlex.quote

SWANCTL_CONF = "swanctl.conf"
SECRETS_CONF = "swanctl-secrets.conf"
STRONGSWAN_CONF = "strongswan.conf"
INTERFACES_SH = "interfaces.sh"
FRR_CONF = "frr.conf"
FRR_RELOAD = "/usr/lib/frr/frr-reload.py"
VTYSH_DIR = "/usr/bin"
STEP_TIMEOUT = 120  # seconds each reload step may take on the host
# swanctl exits 0 on a syntax error: these words in its output fail the step (lab/up.py too)
SWANCTL_ERRORS = ("error", "failed", "syntax", "invalid")
# output lines that are noise, not failures (vtysh warns about a missing vtysh.conf)
NOISE = ("vtysh.conf",)


@dataclass(frozen=True, slots=True)
class ManagedFile:
    name: str  # as rendered
    path: str  # on the host
    mode: int
    required: bool  # a replace candidate must hold it (else: absent = removed)


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    command: str  # POSIX sh
    error_words: tuple[str, ...] = ()  # an output line with one of these fails the step


@dataclass(frozen=True, slots=True)
class Heal:
    """How `dcvpn watch --devices` heals the gateway (drivers/healing.py): sh commands, ""
    = not supported. initiate gets $1 IKE connection, $2 CHILD SA, $3 timeout (seconds);
    probe exits 0 when charon answers; restart starts charon again."""

    initiate: str
    probe: str
    restart: str


@dataclass(frozen=True, slots=True)
class Layout:
    files: tuple[ManagedFile, ...]
    state_dir: str
    steps: tuple[Step, ...]
    list_sas: str
    bgp_summary: str
    ignored: tuple[str, ...] = ()  # rendered files this host does not take
    heal: Heal = field(default_factory=lambda: Heal("", "", ""))

    def file(self, name: str) -> ManagedFile | None:
        return next((f for f in self.files if f.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files)


KNOWN_FILES = (SWANCTL_CONF, SECRETS_CONF, STRONGSWAN_CONF, INTERFACES_SH, FRR_CONF)
# name -> (mode, required)
FILE_RULES: dict[str, tuple[int, bool]] = {
    SWANCTL_CONF: (0o644, True),
    SECRETS_CONF: (0o600, False),
    STRONGSWAN_CONF: (0o644, True),
    INTERFACES_SH: (0o644, True),
    FRR_CONF: (0o644, True),
}
SSH_PATHS: dict[str, str] = {
    SWANCTL_CONF: "/etc/swanctl/swanctl.conf",
    SECRETS_CONF: "/etc/swanctl/swanctl-secrets.conf",
    INTERFACES_SH: "/etc/dcvpn/interfaces.sh",
    FRR_CONF: "/etc/frr/frr.conf",
}
SSH_MODES = {FRR_CONF: 0o640}  # Debian's frr.conf: frr:frr 0640 (owner kept on install)
SSH_STATE_DIR = "/var/lib/dcvpn"
# Healing (dcvpn watch --devices), per transport. A host runs charon as a systemd service:
# Debian 12's charon-systemd package ships /lib/systemd/system/strongswan.service (alias
# strongswan-swanctl.service; strongswan-starter.service is the legacy ipsec.conf starter),
# whose ExecStartPost loads the connections. The lab's charon is started and recorded by
# `dcvpn lab up`: restarting it behind the lab's back would leave a daemon `dcvpn lab down`
# does not know, so the local transport has no restart (watch's lab mode uses dcvpn lab heal).
SWANCTL_INITIATE = 'swanctl --initiate --ike "$1" --child "$2" --timeout "$3"'
SWANCTL_PROBE = "swanctl --stats >/dev/null"
RESTART_COMMANDS: dict[str, str] = {
    "ssh": "systemctl restart strongswan.service",
    "local": "",
}


def _heal(initiate: str, probe: str, transport: str, options: Mapping[str, str]) -> Heal:
    return Heal(options.get("heal:initiate", initiate), options.get("heal:probe", probe),
                options.get("heal:restart", RESTART_COMMANDS[transport]))


def _files(paths: Mapping[str, str], options: Mapping[str, str],
           modes: Mapping[str, int]) -> tuple[tuple[ManagedFile, ...], tuple[str, ...]]:
    files, ignored = [], []
    for name in KNOWN_FILES:
        path = options.get(f"path:{name}", paths.get(name, ""))
        if not path:
            ignored.append(name)
            continue
        if not posixpath.isabs(path):
            raise UnsupportedError(f"option path:{name} must be an absolute path, not {path!r}")
        mode, required = FILE_RULES[name]
        files.append(ManagedFile(name, path, modes.get(name, mode), required))
    return tuple(files), tuple(ignored)


def _steps(defaults: list[Step], options: Mapping[str, str]) -> tuple[Step, ...]:
    out = []
    for step in defaults:
        command = options.get(f"reload:{step.name}", step.command)
        if command:
            out.append(replace(step, command=command))
    return tuple(out)


# After a reload, bring up every loaded connection that has no installed CHILD SA, from this
# end, without waiting for it (swanctl detaches after 1 s). Only one end of a strongSwan pair
# starts a tunnel by itself (tasks/render_strongswan.py TunnelRole), and charon gives up for
# good when its attempt meets NO_PROPOSAL_CHOSEN from a peer not configured yet (a peer in a
# later deploy wave, or one whose proposals change after ours): the end reloaded last must then
# bring the tunnel up itself. A connection with an installed CHILD SA, or whose IKE SA is
# still being negotiated, is left alone, so this never duplicates a tunnel; an ESTABLISHED IKE
# SA without its CHILD SA gets the CHILD SA (named like the connection, as rendered).
INITIATE_SCRIPT = (
    'for c in $(swanctl --list-conns {uri} 2>/dev/null '
    '| sed -n "s/^\\([A-Za-z0-9_.-]*\\): IKEv.*/\\1/p"); do '
    'out=$(swanctl --list-sas --ike "$c" {uri} 2>/dev/null); '
    'case "$out" in *INSTALLED*) continue;; esac; '
    'if printf "%s\\n" "$out" | grep -q "^$c: " && '
    '! printf "%s\\n" "$out" | grep -q "^$c: #[0-9]*, ESTABLISHED"; then continue; fi; '
    'swanctl --initiate --ike "$c" --child "$c" --timeout 1 {uri} >/dev/null 2>&1 || true; '
    'done')


def _only_if_present(path: str, command: str) -> str:
    return f"if [ -f {q(path)} ]; then {command}; fi"


def local_layout(options: Mapping[str, str]) -> Layout:
    """The lab's gateway: options netns and dir (tasks/lab_devices.py)."""
    missing = [k for k in ("netns", "dir") if not options.get(k)]
    if missing:
        raise UnsupportedError(f"a local strongSwan gateway needs the option(s) "
                               f"{', '.join(missing)} (netns, dir: see tasks/lab_devices.py)")
    ns, folder = options["netns"], options["dir"].rstrip("/")
    if not posixpath.isabs(folder):
        raise UnsupportedError(f"option dir must be an absolute path, not {folder!r}")
    frr_dir = f"{folder}/frr"
    paths = {SWANCTL_CONF: f"{folder}/{SWANCTL_CONF}", SECRETS_CONF: f"{folder}/{SECRETS_CONF}",
             STRONGSWAN_CONF: f"{folder}/{STRONGSWAN_CONF}",
             INTERFACES_SH: f"{folder}/{INTERFACES_SH}", FRR_CONF: f"{frr_dir}/{FRR_CONF}"}
    files, ignored = _files(paths, options, {})
    managed = {f.name: f.path for f in files}
    uri = q(f"unix://{folder}/charon.vici")
    swan_env = (f"cd {q(folder)} && STRONGSWAN_CONF={q(managed.get(STRONGSWAN_CONF, ''))} "
                f"SWANCTL_DIR={q(folder)}")
    frr_reload = options.get("frr_reload", FRR_RELOAD)
    vtysh_dir = options.get("vtysh_dir", VTYSH_DIR)
    conf = managed.get(FRR_CONF, f"{frr_dir}/{FRR_CONF}")
    steps = [
        Step("interfaces", _only_if_present(
            managed.get(INTERFACES_SH, ""),
            f"cd {q(folder)} && ip netns exec {q(ns)} sh {q(managed.get(INTERFACES_SH, ''))}")),
        Step("settings", f"{swan_env} swanctl --reload-settings --uri {uri}", SWANCTL_ERRORS),
        Step("swanctl", f"{swan_env} swanctl --load-all --noprompt --file "
                        f"{q(managed.get(SWANCTL_CONF, ''))} --uri {uri}", SWANCTL_ERRORS),
        Step("frr", f"{q(frr_reload)} --reload --stdout --bindir {q(vtysh_dir)} --confdir "
                    f"{q(frr_dir)} --rundir {q(frr_dir)} --vty_socket {q(frr_dir)} {q(conf)}"),
        Step("initiate", f"cd {q(folder)} && export STRONGSWAN_CONF="
                         f"{q(managed.get(STRONGSWAN_CONF, ''))} SWANCTL_DIR={q(folder)} && "
                         + INITIATE_SCRIPT.format(uri=f"--uri {uri}")),
    ]
    if STRONGSWAN_CONF not in managed:
        steps = [s for s in steps if s.name != "settings"]
    return Layout(
        files=files, state_dir=options.get("state_dir", f"{folder}/.dcvpn"),
        steps=_steps(steps, options),
        list_sas=options.get("state:list-sas", f"swanctl --list-sas --pretty --uri {uri}"),
        bgp_summary=options.get("state:bgp-summary", f"vtysh --vty_socket {q(frr_dir)} -c "
                                                     f"{q('show bgp summary json')}"),
        ignored=ignored,
        heal=_heal(f"{swan_env} {SWANCTL_INITIATE} --uri {uri}",
                   f"{swan_env} swanctl --stats --uri {uri} >/dev/null", "local", options))


def ssh_layout(options: Mapping[str, str]) -> Layout:
    """A strongSwan+FRR host reached over SSH (Debian/Ubuntu paths)."""
    files, ignored = _files(SSH_PATHS, options, SSH_MODES)
    managed = {f.name: f.path for f in files}
    frr_reload = options.get("frr_reload", FRR_RELOAD)
    conf = managed.get(FRR_CONF, SSH_PATHS[FRR_CONF])
    steps = [
        Step("interfaces", _only_if_present(managed.get(INTERFACES_SH, ""),
                                            f"sh {q(managed.get(INTERFACES_SH, ''))}")),
        Step("settings", "swanctl --reload-settings", SWANCTL_ERRORS),
        Step("swanctl", f"swanctl --load-all --noprompt --file "
                        f"{q(managed.get(SWANCTL_CONF, SSH_PATHS[SWANCTL_CONF]))}",
             SWANCTL_ERRORS),
        Step("frr", f"{q(frr_reload)} --reload --stdout --confdir "
                    f"{q(posixpath.dirname(conf))} {q(conf)}"),
        Step("initiate", INITIATE_SCRIPT.format(uri="")),
    ]
    if STRONGSWAN_CONF not in managed:
        steps = [s for s in steps if s.name != "settings"]
    return Layout(
        files=files, state_dir=options.get("state_dir", SSH_STATE_DIR),
        steps=_steps(steps, options),
        list_sas=options.get("state:list-sas", "swanctl --list-sas --pretty"),
        bgp_summary=options.get("state:bgp-summary",
                                f"vtysh -c {q('show bgp summary json')}"),
        ignored=ignored,
        heal=_heal(SWANCTL_INITIATE, SWANCTL_PROBE, "ssh", options))
