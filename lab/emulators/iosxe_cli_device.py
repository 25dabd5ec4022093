"""State of one emulated IOS-XE device behind the SSH CLI: configurations, flash:, archive and
the revert timer of a confirmed change (`configure replace ... timer N`,
`configure terminal revert timer N`).

Everything runs on the server's event loop; the revert timer is scheduled with the scheduler
the server passes (loop.call_later), its minutes scaled by the device clock's time scale.
"""

import base64
import hashlib
import logging
import time
from dataclasses import dataclass, field

from lab.emulators.datastore import Cancellable, DeviceClock, Scheduler
from lab.emulators.errors import EmulatorError
from lab.emulators.iosxe_cli_commands import ARCHIVE_MAXIMUM, FLASH_TOTAL
from lab.emulators.iosxe_cli_config import (
    FileError,
    Node,
    apply_text,
    empty_config,
    parse_text,
    render,
)
from lab.emulators.oper_iosxe_cli_extract import cli_intent
from lab.emulators.oper_model import DeviceIntent
from lab.emulators.peers import DevicePeers, IntentCache, PeerRegistry

log = logging.getLogger(__name__)

DEFAULT_HOSTNAME = "Router"
_CISCO_B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_STD_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def type9_secret(password: str, salt: str) -> str:
    """Cisco `secret 9` (scrypt, Cisco's base64 alphabet), so no clear password is shown."""
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=16384, r=1, p=1, dklen=32)
    encoded = base64.b64encode(digest).decode().rstrip("=")
    return f"$9${salt}${encoded.translate(str.maketrans(_STD_B64, _CISCO_B64))}"


def base_config(hostname: str, version: str, username: str, password: str, privilege: int,
                enable_secret: str | None) -> str:
    """What a freshly installed C8000V with SSH, SCP and archive enabled runs."""
    salt = hashlib.sha256(hostname.encode()).hexdigest()[:14]
    major = ".".join(version.split(".")[:2])
    enable = "" if enable_secret is None else (
        f"enable secret 9 {type9_secret(enable_secret, salt)}\n")
    return f"""version {major}
service timestamps debug datetime msec
service timestamps log datetime msec
platform qfp utilization monitor load 80
hostname {hostname}
boot-start-marker
boot-end-marker
{enable}no aaa new-model
no ip domain lookup
login on-success log
archive
 path flash:archive
 maximum 10
username {username} privilege {privilege} secret 9 {type9_secret(password, salt)}
interface GigabitEthernet1
 description management
 ip address dhcp
 negotiation auto
ip forward-protocol nd
no ip http server
no ip http secure-server
ip ssh version 2
ip scp server enable
control-plane
line con 0
 stopbits 1
line vty 0 4
 login local
 transport input ssh
end
"""


def ios_time(epoch: float) -> str:
    """`10:11:12 UTC Mon Mar 2 2026`, as `show clock` and the archive print it."""
    t = time.gmtime(epoch)
    return time.strftime(f"%H:%M:%S UTC %a %b {t.tm_mday} %Y", t)


def dir_time(epoch: float) -> str:
    t = time.gmtime(epoch)
    return time.strftime(f"%b {t.tm_mday} %Y %H:%M:%S +00:00", t)


@dataclass(frozen=True)
class Url:
    """A file argument: a flash: file (name without leading '/'), a configuration, or null:."""

    kind: str  # "flash" | "running" | "startup" | "null" | "other"
    text: str
    name: str = ""


def parse_url(text: str) -> Url:
    low = text.lower()
    if low in ("running-config", "system:running-config", "system:/running-config"):
        return Url("running", text)
    if low in ("startup-config", "nvram:startup-config", "nvram:/startup-config"):
        return Url("startup", text)
    if low == "null:":
        return Url("null", text)
    filesystem, colon, rest = text.partition(":")
    if not colon:
        return Url("flash", text, text.lstrip("/"))
    if filesystem.lower() in ("flash", "bootflash"):
        return Url("flash", text, rest.lstrip("/"))
    return Url("other", text)


@dataclass
class FlashFile:
    data: bytes
    mtime: float
    inode: int


@dataclass
class PendingRevert:
    """A confirmed change: the configuration to restore unless `configure confirm` comes."""

    snapshot: Node
    user: str
    minutes: int
    idle: bool
    reset_at: float
    handle: Cancellable


@dataclass
class Flash:
    files: dict[str, FlashFile] = field(default_factory=dict)
    next_inode: int = 12

    def write(self, name: str, data: bytes, now: float) -> None:
        old = self.files.get(name)
        inode = old.inode if old else self.next_inode
        if old is None:
            self.next_inode += 1
        self.files[name] = FlashFile(data, now, inode)

    @property
    def free(self) -> int:
        return FLASH_TOTAL - sum(len(f.data) for f in self.files.values())


class IosXeCliDevice:
    """The configuration state that every CLI and SCP session of one device shares."""

    def __init__(self, clock: DeviceClock, scheduler: Scheduler, *, hostname: str | None,
                 version: str, username: str, password: str, privilege: int = 15,
                 enable_secret: str | None = None, peers: PeerRegistry | None = None,
                 gateway: str | None = None) -> None:
        """peers/gateway: join a lab's PeerRegistry, so that `show crypto ...` and `show ip
        bgp summary` follow the running configs of this device and its peers (oper_model);
        without, every tunnel is down."""
        self.clock = clock
        self.scheduler = scheduler
        self.version = version
        self.running = empty_config()
        errors = apply_text(self.running, base_config(
            hostname or DEFAULT_HOSTNAME, version, username, password, privilege, enable_secret))
        if errors:
            raise EmulatorError(f"base configuration rejected: {errors[0].line!r}")
        self.last_change: tuple[float, str] | None = None
        self.startup: str | None = self.config_text()
        self.flash = Flash()
        self.archive: list[str] = []
        self.archive_counter = 0
        self.pending: PendingRevert | None = None
        self.sessions: dict[int, str] = {}
        self._intent = IntentCache()
        self.peers = DevicePeers(peers, gateway or self.hostname, "iosxe",
                                 self.committed_intent)

    # ---- configuration -----------------------------------------------------------------

    def setting(self, words: str) -> str | None:
        """What follows words in the first top-level line starting with them."""
        prefix = words + " "
        line = next((c.line for c in self.running.children if c.line.startswith(prefix)), None)
        return None if line is None else line[len(prefix):]

    def has_line(self, line: str) -> bool:
        return any(c.line == line for c in self.running.children)

    def user_privilege(self, user: str) -> int:
        """The privilege level of user's `username` line (1 when it names none)."""
        for child in self.running.children:
            words = child.words
            if words[:2] == ("username", user) and "privilege" in words:
                return int(words[words.index("privilege") + 1])
        return 1

    @property
    def hostname(self) -> str:
        return self.setting("hostname") or DEFAULT_HOSTNAME

    def config_text(self) -> str:
        lines = ["!"]
        if self.last_change is not None:
            when, user = self.last_change
            lines += [f"! Last configuration change at {ios_time(when)} by {user}", "!"]
        lines += [*render(self.running), "!", "end"]
        return "\n".join(lines) + "\n"

    def committed_intent(self) -> DeviceIntent:
        """IOS has no candidate: the running configuration is the committed one."""
        text = tuple(render(self.running))
        root = self.running
        when = self.last_change[0] if self.last_change else self.clock.boot_epoch
        return self._intent.get(text, lambda: cli_intent(root, self.peers.gateway), when)

    def changed(self, user: str) -> None:
        self.last_change = (self.clock.now(), user)

    def set_running(self, tree: Node, user: str) -> None:
        """Replace the running configuration in place (sessions keep their root node)."""
        if not tree.same(self.running):
            self.running.children = tree.children
            self.changed(user)

    def merge(self, text: str, user: str) -> list[FileError]:
        before = self.running.copy()
        errors = apply_text(self.running, text)
        if not before.same(self.running):
            self.changed(user)
        return errors

    def tree_of(self, url: Url) -> Node | None:
        if url.kind == "running":
            return self.running
        text = self.read(url)
        return None if text is None else parse_text(text)[0]

    # ---- files -------------------------------------------------------------------------

    def read(self, url: Url) -> str | None:
        if url.kind == "running":
            return self.config_text()
        if url.kind == "startup":
            return self.startup
        if url.kind == "null":
            return ""
        found = self.flash.files.get(url.name) if url.kind == "flash" and url.name else None
        return None if found is None else found.data.decode(errors="replace")

    def write_file(self, name: str, data: bytes) -> None:
        self.flash.write(name, data, self.clock.now())

    def save_startup(self) -> None:
        self.startup = self.config_text()
        if self._archive_setting("write-memory") is not None:
            self.archive_config()

    # ---- archive -----------------------------------------------------------------------

    def _archive_setting(self, word: str) -> str | None:
        archive = self.running.find("archive")
        if archive is None:
            return None
        for child in archive.children:
            if child.line == word or child.line.startswith(word + " "):
                return child.line[len(word):].strip()
        return None

    @property
    def archive_path(self) -> str | None:
        return self._archive_setting("path")

    @property
    def archive_maximum(self) -> int:
        value = self._archive_setting("maximum")
        return int(value) if value else ARCHIVE_MAXIMUM

    def next_archive_name(self) -> str | None:
        path = self.archive_path
        return None if path is None else f"{path}-{self.archive_counter + 1}"

    def archive_config(self) -> str | None:
        """Save the running configuration as the next archive file; its name, or None."""
        name = self.next_archive_name()
        if name is None:
            return None
        self.archive_counter += 1
        url = parse_url(name)
        if url.kind == "flash":
            self.write_file(url.name, self.config_text().encode())
        self.archive.append(name)
        for dropped in self.archive[:-self.archive_maximum]:
            self.flash.files.pop(parse_url(dropped).name, None)
        del self.archive[:-self.archive_maximum]
        return name

    # ---- confirmed change (revert timer) -------------------------------------------------

    def arm_revert(self, snapshot: Node, minutes: int, user: str, *, idle: bool = False) -> None:
        self.archive_config()
        handle = self.scheduler(self.clock.real_seconds(minutes * 60), self._expired)
        self.pending = PendingRevert(snapshot, user, minutes, idle, self.clock.now(), handle)

    def reset_revert(self, minutes: int, *, idle: bool) -> bool:
        pending = self.pending
        if pending is None:
            return False
        pending.handle.cancel()
        self.pending = None
        self.arm_revert(pending.snapshot, minutes, pending.user, idle=idle)
        return True

    def confirm(self) -> bool:
        if self.pending is None:
            return False
        self.pending.handle.cancel()
        self.pending = None
        return True

    def revert_now(self) -> bool:
        pending = self.pending
        if pending is None:
            return False
        pending.handle.cancel()
        self.pending = None
        self.set_running(pending.snapshot, pending.user)
        return True

    def _expired(self) -> None:
        pending = self.pending
        if pending is not None:
            log.info("%s: revert timer expired, restoring the configuration", self.hostname)
            self.pending = None
            self.set_running(pending.snapshot, pending.user)

    def shutdown(self) -> None:
        self.peers.close()
        if self.pending is not None:
            self.pending.handle.cancel()
            self.pending = None
