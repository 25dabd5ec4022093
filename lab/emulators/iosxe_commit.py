"""RFC 6241 :confirmed-commit:1.1 as a small state machine over the running datastore.

A confirmed commit keeps the configuration it replaced and a timer. Without <persist> it
belongs to its session: only that session may confirm, extend or cancel it, and it is
restored when the session ends. With <persist> any session may do so by giving the token as
<persist-id>, and ending the session changes nothing. A follow-up confirmed commit extends
(the timer restarts with its own timeout; the configuration to restore stays the first one).
"""

from collections.abc import Callable
from dataclasses import dataclass

from lab.emulators.datastore import Cancellable, DeviceClock, Scheduler
from lab.emulators.rpc_errors import RpcReplyError, fail
from lab.emulators.xmlutil import Element, copy_tree

DEFAULT_CONFIRM_TIMEOUT = 600  # seconds, RFC 6241 section 8.4.5.1
MAX_CONFIRM_TIMEOUT = 4294967295  # uint32


@dataclass
class PendingCommit:
    restore: Element
    session_id: int
    persist: str | None
    deadline: float
    handle: Cancellable


def confirm_timeout(text: str | None) -> int:
    """The <confirm-timeout> value in seconds (RFC: uint32, 1.., default 600)."""
    if text is None:
        return DEFAULT_CONFIRM_TIMEOUT
    if not text.isdigit() or not 1 <= int(text) <= MAX_CONFIRM_TIMEOUT:
        raise fail(f"invalid value for confirm-timeout: {text!r}", tag="invalid-value",
                   error_type="protocol", info=(("bad-element", "confirm-timeout"),))
    return int(text)


def _missing_persist_id(pending: PendingCommit) -> RpcReplyError:
    return fail("a persistent confirmed commit is pending: give its persist-id",
                tag="missing-element", error_type="protocol",
                info=(("bad-element", "persist-id"),))


def _wrong_persist_id() -> RpcReplyError:
    return fail("persist-id does not match a pending persistent confirmed commit",
                tag="invalid-value", error_type="protocol",
                info=(("bad-element", "persist-id"),))


class ConfirmedCommits:
    """The pending confirmed commit of one device, if any.

    restore(config) is the device's way to put a configuration back into running (and to
    keep the candidate in step); it is called when the timer fires, the owning session ends,
    or cancel-commit is given.
    """

    def __init__(self, clock: DeviceClock, scheduler: Scheduler,
                 restore: Callable[[Element], None]) -> None:
        self._clock = clock
        self._scheduler = scheduler
        self._restore = restore
        self.pending: PendingCommit | None = None

    def authorize(self, session_id: int, persist_id: str | None) -> None:
        """Refuse a commit that may not confirm or extend the pending one (before any change)."""
        pending = self.pending
        if pending is None:
            if persist_id is not None:
                raise _wrong_persist_id()
            return
        if pending.persist is not None:
            if persist_id is None:
                raise _missing_persist_id(pending)
            if persist_id != pending.persist:
                raise _wrong_persist_id()
            return
        if persist_id is not None:
            raise _wrong_persist_id()
        if session_id != pending.session_id:
            raise fail(f"a confirmed commit of session {pending.session_id} is pending",
                       tag="in-use", error_type="protocol")

    def committed(self, session_id: int, previous: Element, *, timeout: int | None,
                  persist: str | None) -> None:
        """Running was just replaced (previous is what it held); timeout None confirms."""
        pending = self.pending
        restore = pending.restore if pending is not None else copy_tree(previous)
        if pending is not None:
            pending.handle.cancel()
            self.pending = None
        if timeout is None:
            return
        handle = self._scheduler(self._clock.real_seconds(timeout), self._expired)
        self.pending = PendingCommit(restore, session_id, persist,
                                     self._clock.now() + timeout, handle)

    def cancel(self, session_id: int, persist_id: str | None) -> None:
        pending = self.pending
        if pending is None:
            raise fail("no confirmed commit is pending", error_type="protocol")
        if pending.persist is not None:
            if persist_id is None:
                raise _missing_persist_id(pending)
            if persist_id != pending.persist:
                raise _wrong_persist_id()
        elif persist_id is not None:
            raise _wrong_persist_id()
        elif session_id != pending.session_id:
            raise fail(f"the confirmed commit belongs to session {pending.session_id}",
                       tag="in-use", error_type="protocol")
        self._revert()

    def session_ended(self, session_id: int) -> None:
        pending = self.pending
        if pending is not None and pending.persist is None and pending.session_id == session_id:
            self._revert()

    def shutdown(self) -> None:
        if self.pending is not None:
            self.pending.handle.cancel()
            self.pending = None

    def _expired(self) -> None:
        if self.pending is not None:
            self._revert()

    def _revert(self) -> None:
        pending = self.pending
        if pending is None:
            return
        pending.handle.cancel()
        self.pending = None
        self._restore(pending.restore)
