"""cisco-ia checkpoint / rollback / revert: the IOS archive and its timed rollback over NETCONF.

From cisco-ia.yang: `checkpoint` is `archive config` (the running configuration saved under
the configured `archive path`), `rollback target-url=X [revert-timer N]` is `configure replace
X [time N]` (N minutes: the configuration from before the rollback comes back unless the
change is confirmed), `revert` is `configure revert {now | timer N | timer idle N}`.

cisco-ia has no "confirm"; on the device that is the exec command `configure confirm`. The
emulator accepts it (and the `configure revert` forms) as `do ...` lines of
Cisco-IOS-XE-cli-rpc config-ios-cli-rpc [unverified on a device]. Archive names follow what
IOS-XE prints: <path><Mon>-<d>-<hh>-<mm>-<ss>.<ms>-UTC-<n>, `$h` in the path is the hostname.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from lab.emulators.datastore import Cancellable, DeviceClock, Scheduler
from lab.emulators.rpc_errors import RpcReplyError, fail
from lab.emulators.xmlutil import Element, copy_tree

DEFAULT_ARCHIVE_MAXIMUM = 10
MAX_REVERT_MINUTES = 120


@dataclass(frozen=True)
class Archive:
    number: int
    name: str
    config: Element


@dataclass
class TimedRollback:
    restore: Element
    minutes: int
    idle: bool
    handle: Cancellable


def ia_error(message: str) -> RpcReplyError:
    return fail(message, error_type="application")


def minutes(text: str, leaf: str) -> int:
    """A cisco-ia timer value: int16, range 1..120 (minutes)."""
    if not re.fullmatch(r"[0-9]+", text) or not 1 <= int(text) <= MAX_REVERT_MINUTES:
        raise fail(f'"{text}" is an invalid value.', tag="invalid-value",
                   error_type="application", info=(("bad-element", leaf),))
    return int(text)


class Archives:
    """The archive files of one device and its pending timed rollback."""

    def __init__(self, clock: DeviceClock, scheduler: Scheduler,
                 restore: Callable[[Element], None]) -> None:
        self._clock = clock
        self._scheduler = scheduler
        self._restore = restore
        self.files: list[Archive] = []
        self._counter = 0
        self.maximum = DEFAULT_ARCHIVE_MAXIMUM
        self.timed: TimedRollback | None = None

    def checkpoint(self, running: Element, path: str | None, maximum: int | None,
                   hostname: str) -> Archive:
        if not path:
            raise ia_error("%Archive path not specified. Please configure path using the "
                           "'path' command in 'archive' configuration mode")
        self.maximum = maximum or DEFAULT_ARCHIVE_MAXIMUM
        self._counter += 1
        stamp = self._clock.now()
        when = time.strftime("%b-%e-%H-%M-%S", time.gmtime(stamp)).replace(" ", "-")
        millis = int((stamp % 1) * 1000)
        name = f"{path.replace('$h', hostname)}{when}.{millis:03d}-UTC-{self._counter}"
        archive = Archive(self._counter, name, copy_tree(running))
        self.files.append(archive)
        del self.files[:-self.maximum]
        return archive

    def find(self, url: str) -> Archive:
        for archive in self.files:
            if archive.name == url:
                return archive
        raise ia_error(f"%Error opening {url} (No such file or directory)")

    def arm(self, previous: Element, revert_minutes: int) -> None:
        """A rollback with revert-timer: the configuration before it comes back unless
        confirmed; a second one while pending restarts the timer (the restore point stays)."""
        restore = self.timed.restore if self.timed is not None else copy_tree(previous)
        self._schedule(restore, revert_minutes, idle=False)

    def revert(self, *, now: bool, timer: int | None, idle: int | None) -> None:
        timed = self.timed
        if timed is None:
            raise ia_error("%No Rollback Confirmed Change pending")
        if now or (timer is None and idle is None):
            self._fire()
        elif idle is not None:
            self._schedule(timed.restore, idle, idle=True)
        elif timer is not None:
            self._schedule(timed.restore, timer, idle=False)

    def confirm(self) -> None:
        if self.timed is None:
            raise ia_error("%No Rollback Confirmed Change pending")
        self.timed.handle.cancel()
        self.timed = None

    def activity(self) -> None:
        """Any request restarts an idle revert timer."""
        timed = self.timed
        if timed is not None and timed.idle:
            self._schedule(timed.restore, timed.minutes, idle=True)

    def shutdown(self) -> None:
        if self.timed is not None:
            self.timed.handle.cancel()
            self.timed = None

    def _schedule(self, restore: Element, revert_minutes: int, *, idle: bool) -> None:
        if self.timed is not None:
            self.timed.handle.cancel()
        handle = self._scheduler(self._clock.real_seconds(revert_minutes * 60), self._fire)
        self.timed = TimedRollback(restore, revert_minutes, idle, handle)

    def _fire(self) -> None:
        timed = self.timed
        if timed is None:
            return
        timed.handle.cancel()
        self.timed = None
        self._restore(timed.restore)
