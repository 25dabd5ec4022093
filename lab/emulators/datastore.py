"""Configuration datastores of one emulated device: committed history, shared candidate, lock.

Nothing here knows a platform: trees are lxml elements, the history keeps full copies (the
newest first, like Junos `rollback 0..49`), and the lock records the holder's session id.
Time comes from a DeviceClock whose scale lets tests run minutes of device time in seconds.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from lab.emulators.errors import EmulatorError
from lab.emulators.xmlutil import Element, copy_tree, same_tree


@dataclass
class DeviceClock:
    """Device time in epoch seconds; one device second lasts time_scale real seconds."""

    time_scale: float = 1.0
    boot_epoch: float = field(default_factory=time.time)
    _start: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise EmulatorError(f"time scale must be positive, not {self.time_scale}")

    def now(self) -> float:
        return self.boot_epoch + (time.monotonic() - self._start) / self.time_scale

    def real_seconds(self, device_seconds: float) -> float:
        return device_seconds * self.time_scale

    def uptime(self) -> float:
        return self.now() - self.boot_epoch


class Cancellable(Protocol):
    def cancel(self) -> None: ...


Scheduler = Callable[[float, Callable[[], None]], Cancellable]
"""call_later(real_seconds, callback) -> handle; the server passes its event loop's."""


@dataclass(frozen=True)
class CommitRecord:
    config: Element
    seconds: int
    user: str
    client: str
    revision: str
    log: str | None = None
    comment: str | None = None


class LockHeldError(EmulatorError):
    def __init__(self, holder: int) -> None:
        super().__init__(f"locked by session {holder}")
        self.holder = holder


class NotLockedError(EmulatorError):
    pass


@dataclass
class PendingConfirm:
    """A confirmed commit waiting for its confirmation (or for its timer to restore)."""

    restore: Element
    session_id: int
    deadline: float
    minutes: int
    handle: Cancellable
    persist: str | None = None


class Datastore:
    """Committed history (index 0 is running), the shared candidate and its lock."""

    def __init__(self, initial: Element, clock: DeviceClock, *, user: str = "root",
                 history_size: int = 50, engine: str = "re0", first_revision: int = 1) -> None:
        self.clock = clock
        self.history_size = history_size
        self.engine = engine
        self._revision = first_revision
        self.history: list[CommitRecord] = []
        self.record(initial, user=user, client="other")
        self.candidate = copy_tree(initial)
        self.lock_holder: int | None = None
        self.lock_since = 0.0
        self.pending: PendingConfirm | None = None

    @property
    def running(self) -> Element:
        """The committed configuration; never modify it (copy it first)."""
        return self.history[0].config

    def record(self, config: Element, *, user: str, client: str, log: str | None = None,
               comment: str | None = None) -> CommitRecord:
        seconds = int(self.clock.now())
        record = CommitRecord(copy_tree(config), seconds, user, client,
                              f"{self.engine}-{seconds}-{self._revision}", log, comment)
        self._revision += 1
        self.history.insert(0, record)
        del self.history[self.history_size:]
        return record

    def rollback(self, index: int) -> Element:
        """A copy of rollback `index` (0 = running); IndexError when there is none."""
        if index < 0:
            raise IndexError(index)
        return copy_tree(self.history[index].config)

    def candidate_modified(self) -> bool:
        return not same_tree(self.candidate, self.running)

    def discard(self) -> None:
        self.candidate = copy_tree(self.running)

    def lock(self, session_id: int) -> None:
        if self.lock_holder is not None:
            raise LockHeldError(self.lock_holder)
        self.lock_holder = session_id
        self.lock_since = self.clock.now()

    def unlock(self, session_id: int) -> None:
        if self.lock_holder != session_id:
            raise NotLockedError(f"session {session_id} holds no lock")
        self.lock_holder = None

    def may_edit(self, session_id: int) -> None:
        if self.lock_holder is not None and self.lock_holder != session_id:
            raise LockHeldError(self.lock_holder)
