"""Cisco IOS-XE (17.x, `netconf-yang feature candidate-datastore`) over NETCONF: ncclient with
the iosxe handler, Cisco-IOS-XE-native in the candidate datastore.

    load_candidate  lock running, then candidate (lock-denied -> LockError naming the holder
                    session); REPLACE edits the candidate with drivers.iosxe_replace's
                    document (dcvpn's list entries replaced, its stale ones removed, the
                    device's own configuration untouched); MERGE edits with the document as
                    given. Then <validate> the candidate, so errors show before any commit.
    diff            no native diff over NETCONF: running vs candidate, as CLI-like lines per
                    leaf (drivers.iosxe_cli_diff, in ConfigDiff.native) and a unified diff of
                    the pretty XML; both masked after diffing.
    commit(t)       refused while a confirmed commit is pending. With t, by the hello:
                    :confirmed-commit:1.1 -> <commit><confirmed/><confirm-timeout>t (seconds)
                    <persist>ID: a dropped session does not roll it back, and confirm /
                    rollback work from any later session given ID (`persist_id`, also
                    DeviceTarget.options["persist_id"]). Otherwise cisco-ia: checkpoint,
                    rollback to it with revert-timer (whole minutes, never 0), commit; the
                    device restores the checkpoint unless confirmed (`checkpoint`, also
                    options["checkpoint"]). Returns the seconds armed. Locks are released.
    confirm         <commit><persist-id>ID | `configure confirm` (cli-rpc).
    rollback        pending: <cancel-commit><persist-id>ID | cisco-ia revert now; without a
                    pending one (revert path) the cisco-ia rollback to the checkpoint.
    discard         discard-changes, unlock candidate and running.

has_pending_commit asks the device, so it holds across sessions: a <cancel-commit> with a
persist-id that is no token is refused one way when nothing is pending and another when a
confirmed commit is (RFC 6241 8.4: the device must refuse both; it changes nothing). The
cisco-ia timed rollback has no readable state over NETCONF (no oper leaf; the CLI has `show
archive config rollback timer`): on the revert path only the session that armed it can tell
(the running configuration differs from the checkpoint it read), others get UnsupportedError,
while confirm / rollback still work from anywhere (the device answers whether one is pending).
"""

import contextlib
import difflib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from lxml import etree
from ncclient.devices.iosxe import IosxeDeviceHandler  # type: ignore[import-untyped]

from drivers.base import ConfigDiff, DeviceState, DeviceTarget, LoadMode
from drivers.errors import (
    CommitError,
    CommitPendingError,
    DriverError,
    LoadError,
    LockError,
    NoPendingCommitError,
    UnsupportedError,
)
from drivers.iosxe_cli_diff import cli_diff
from drivers.iosxe_oper import STATE_FILTER, device_state
from drivers.iosxe_quirks import (
    CHECKPOINT_RESULT,
    CISCO_IA_NS,
    CLI_RPC_NS,
    CONFIRM_CLI,
    DIRTY_CANDIDATE_HOLDER,
    LOCK_DENIED_TAGS,
    LOCK_ORDER,
    NC_NS,
    NO_ARCHIVE_PATH,
    NO_TIMED_ROLLBACK,
    NOTHING_PENDING,
    PENDING_ANSWERS,
    PERSIST_PREFIX,
    PROBE_PERSIST_ID,
    STRATEGIES,
    STRATEGY_PREFERENCE,
    WRONG_PERSIST_ID,
    Strategy,
)
from drivers.iosxe_replace import ReplaceConflictError, replace_document
from drivers.iosxe_tree import NATIVE_NS, native_of
from drivers.ncclient_session import (
    DeviceError,
    as_received,
    connect,
    device_errors,
    execute,
    execute_many,
)
from drivers.timers import device_timer
from drivers.xml_parsing import untrusted_parser
from inventory.model import Platform, Transport
from tasks.semantic_diff import mask_secrets

Element = etree._Element


class PinnedIosxeHandler(IosxeDeviceHandler):  # type: ignore[misc]
    """ncclient's iosxe handler minus its connect hook, which accepts any host key; replies
    are handed over as ncclient parsed them (drivers.ncclient_session.as_received)."""

    def add_additional_ssh_connect_params(self, kwargs: dict[str, Any]) -> None:
        return None

    def transform_reply(self) -> Callable[[Element], Element]:
        return as_received


def _nc(name: str, *children: Element, text: str | None = None) -> Element:
    element = etree.Element(f"{{{NC_NS}}}{name}", nsmap={None: NC_NS})
    element.text = text
    element.extend(children)
    return element


def _datastore(parameter: str, name: str) -> Element:
    return _nc(parameter, _nc(name))


def _get_config(source: str) -> Element:
    return _nc("get-config", _datastore("source", source))


def _rpc(namespace: str, name: str, **leaves: str | None) -> Element:
    """<name xmlns=namespace> with one child per leaf (None: an empty leaf)."""
    element = etree.Element(f"{{{namespace}}}{name}", nsmap={None: namespace})
    for leaf, value in leaves.items():
        etree.SubElement(element, f"{{{namespace}}}{leaf.replace('_', '-')}").text = value
    return element


def _matches(patterns: tuple[re.Pattern[str], ...], errors: list[DeviceError]) -> bool:
    return any(p.search(e.message) for p in patterns for e in errors)


def parse_config(config: str, name: str) -> Element:
    try:
        root = etree.fromstring(config.encode(), untrusted_parser())
    except etree.XMLSyntaxError as exc:
        raise LoadError(f"{name}: the candidate is not well-formed XML: {exc}") from None
    if root.tag != f"{{{NC_NS}}}config" or native_of(root) is None:
        raise LoadError(f"{name}: the candidate must be a NETCONF <config> holding a "
                        f"Cisco-IOS-XE-native <native>, not <{etree.QName(root).localname}>")
    return root


def pretty(native: Element | None) -> str:
    if native is None:
        return ""
    copy = etree.fromstring(etree.tostring(native), untrusted_parser())
    etree.indent(copy, space="  ")
    return etree.tostring(copy, encoding="unicode") + "\n"


def _same(running: Element | None, candidate: Element | None) -> bool:
    """The two trees serialize to the same bytes (so both diffs would be empty)."""
    if running is None or candidate is None:
        return running is candidate
    return bool(etree.tostring(running) == etree.tostring(candidate))


def unified_diff(running: str, candidate: str) -> str:
    if running == candidate:  # difflib would still match every line (seconds for big ones)
        return ""
    lines = difflib.unified_diff(running.splitlines(), candidate.splitlines(),
                                 "running", "candidate", lineterm="")
    text = "\n".join(lines)
    return mask_secrets(text + "\n") if text else ""


@dataclass(frozen=True, slots=True)
class Armed:
    """The confirmed commit this driver armed."""

    seconds: int
    restore_point: str  # the running configuration the device goes back to (revert path)


class IosxeNetconfDriver:
    platform: ClassVar[Platform] = Platform.IOSXE
    transport: ClassVar[Transport] = Transport.NETCONF

    def __init__(self, target: DeviceTarget) -> None:
        choice = target.options.get("commit", "auto")
        if choice != "auto" and choice not in Strategy.__members__.values():
            raise UnsupportedError(f"{target.name}: commit mode {choice!r} is not one of "
                                   f"auto, {', '.join(s.value for s in Strategy)}")
        self.target = target
        self._choice = choice
        self.strategy: Strategy | None = None
        self.persist_id: str | None = target.options.get("persist_id") or None
        self.checkpoint: str | None = target.options.get("checkpoint") or None
        self._session: Any = None
        self._locked: list[str] = []
        # the running configuration as read when the locks were taken (the clean candidate a
        # replace load reads first): running cannot change while both locks are held
        self._running_at_lock: Element | None = None
        self._armed: Armed | None = None
        self._settled = False  # revert path: this session confirmed / rolled back / saw none

    # --- session ----------------------------------------------------------------------

    def open(self) -> None:
        if self._session is not None:
            return
        self._session = connect(self.target, "iosxe", handler=PinnedIosxeHandler)
        try:
            self.strategy = self._pick_strategy(
                [str(c) for c in self._session.server_capabilities])
        except UnsupportedError:
            self.close()
            raise

    def _pick_strategy(self, capabilities: list[str]) -> Strategy:
        def offers(strategy: Strategy) -> bool:
            return all(any(c.startswith(need) for c in capabilities)
                       for need in STRATEGIES[strategy].needs)

        wanted = STRATEGY_PREFERENCE if self._choice == "auto" else (Strategy(self._choice),)
        for strategy in wanted:
            if offers(strategy):
                return strategy
        missing = sorted({need for s in wanted for need in STRATEGIES[s].needs
                          if not any(c.startswith(need) for c in capabilities)})
        raise UnsupportedError(f"{self.target.name}: the device does not advertise "
                               f"{', '.join(missing)} (enable `netconf-yang feature "
                               "candidate-datastore`); cannot deploy with a confirm timer")

    def close(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        for name in reversed(self._locked):  # ending the session releases them too
            with contextlib.suppress(DriverError):
                execute(session, self.target.name, _nc("unlock", _datastore("target", name)))
        self._locked = []
        with contextlib.suppress(Exception):  # the session is gone either way
            session.close_session()

    def __enter__(self) -> "IosxeNetconfDriver":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, request: Element, what: str) -> tuple[Element, list[DeviceError]]:
        if self._session is None:
            raise DriverError(f"{self.target.name}: {what}: the driver is not open")
        reply = execute(self._session, f"{self.target.name}: {what}", request)
        return reply, [e for e in device_errors(reply) if e.severity == "error"]

    def _send_many(self, requests: list[Element], what: str
                   ) -> list[tuple[Element, list[DeviceError]]]:
        """Requests that do not depend on each other, in one round trip (execute_many)."""
        if self._session is None:
            raise DriverError(f"{self.target.name}: {what}: the driver is not open")
        replies = execute_many(self._session, f"{self.target.name}: {what}", list(requests))
        return [(reply, [e for e in device_errors(reply) if e.severity == "error"])
                for reply in replies]

    def _call(self, request: Element, what: str,
              failure: type[DriverError] = DriverError) -> Element:
        reply, errors = self._send(request, what)
        if errors:
            raise self._error(errors, what, failure)
        return reply

    def _error(self, errors: list[DeviceError], what: str,
               failure: type[DriverError]) -> DriverError:
        name = self.target.name
        for error in errors:
            if error.tag in LOCK_DENIED_TAGS:
                return self._lock_error(error, what)
        details = "; ".join(e.describe() for e in errors)
        return failure(f"{name}: cannot {what}: {details}")

    def _lock_error(self, error: DeviceError, what: str) -> LockError:
        holder = error.session_id or _session_in(error.message)
        if holder == DIRTY_CANDIDATE_HOLDER:
            return LockError(f"{self.target.name}: cannot {what}: the candidate holds "
                             "uncommitted changes of another session (device: "
                             f"{error.describe()}); nothing was changed", holder=None)
        who = f"session {holder}" if holder else "another session"
        return LockError(f"{self.target.name}: cannot {what}: the configuration is locked by "
                         f"{who} (device: {error.describe()}); nothing was changed",
                         holder=f"session {holder}" if holder else None)

    # --- locks ------------------------------------------------------------------------

    def _lock(self, then: Element | None = None) -> Element | None:
        """Lock what is not locked yet (LOCK_ORDER); `then`, a read of the candidate sent in
        the same round trip, is answered whatever the locks say (its reply; None without)."""
        names = [name for name in LOCK_ORDER if name not in self._locked]
        requests = [_nc("lock", _datastore("target", name)) for name in names]
        if not requests and then is None:
            return None
        answers = self._send_many([*requests, *([then] if then is not None else [])],
                                  "lock " + " and ".join(names or ["nothing"]))
        failed: tuple[str, list[DeviceError]] | None = None
        for name, (_, errors) in zip(names, answers, strict=False):
            if not errors:
                self._locked.append(name)
            elif failed is None:
                failed = (name, errors)
        if failed is not None:
            name, errors = failed
            self._unlock()
            if self.strategy is Strategy.CONFIRMED and self._pending_by_probe():
                raise CommitPendingError(
                    f"{self.target.name}: a confirmed commit is pending on the device, which "
                    f"refuses to lock {name} meanwhile; confirm or roll it back first")
            raise self._error(errors, f"lock the {name} configuration", LockError)
        if then is None:
            return None
        reply, errors = answers[-1]
        if errors:
            raise self._error(errors, "read the candidate configuration", DriverError)
        return reply

    def _unlock(self) -> None:
        self._send_and_unlock(None, "unlock")

    def _send_and_unlock(self, request: Element | None, what: str) -> list[DeviceError]:
        """request (if any), then an unlock of every lock held (the last taken first), in one
        round trip; request's errors are returned, a failed unlock raises when it has none."""
        self._running_at_lock = None
        names = list(reversed(self._locked))
        self._locked.clear()
        sent = [request] if request is not None else []
        unlocks = [_nc("unlock", _datastore("target", name)) for name in names]
        if not sent and not unlocks:
            return []
        answers = self._send_many([*sent, *unlocks], what)
        errors = answers[0][1] if sent else []
        for name, (_, failed) in zip(names, answers[len(sent):], strict=True):
            if failed and not errors:
                raise self._error(failed, f"unlock {name}", DriverError)
        return errors

    # --- configuration ------------------------------------------------------------------

    def _config(self, source: str, reply: Element | None = None) -> Element | None:
        """The <native> of a datastore (reply: its get-config reply, when already read)."""
        if reply is None:
            reply = self._call(_get_config(source), f"read the {source} configuration")
        data = next((d for d in reply.iter(f"{{{NC_NS}}}data")), None)
        return native_of(data) if data is not None else None

    def get_running(self) -> str:
        return pretty(self._config("running"))

    def load_candidate(self, config: str, mode: LoadMode = LoadMode.REPLACE) -> None:
        if not config.lstrip().startswith("<"):
            raise LoadError(f"{self.target.name}: over NETCONF the candidate must be the "
                            "rendered XML <config>, not CLI text")
        loaded = parse_config(config, self.target.name)
        fresh = not self._locked
        self._running_at_lock = None
        read = self._lock(_get_config("candidate") if mode is LoadMode.REPLACE else None)
        if mode is LoadMode.REPLACE:
            current = self._config("candidate", read)
            if fresh:  # a candidate that could be locked is unmodified: it is running
                self._running_at_lock = current
            holder = _nc("data")
            if current is not None:
                holder.append(current)
            try:
                loaded = replace_document(loaded, holder)
            except ReplaceConflictError as exc:
                self.discard()
                raise LoadError(f"{self.target.name}: cannot replace: {exc}") from None
        edit = _nc("edit-config", _datastore("target", "candidate"),
                   _nc("default-operation", text="merge"), loaded)
        # the validate answers for the candidate as the edit left it: both in one round trip
        for what, (_, errors) in zip(("load the candidate", "validate the candidate"),
                                     self._send_many([edit, _nc("validate", _datastore(
                                         "source", "candidate"))], "load and validate"),
                                     strict=True):
            if errors:
                raise self._error(errors, what, LoadError)

    def diff(self, unified: bool = True) -> ConfigDiff:
        running = (self._running_at_lock if self._running_at_lock is not None
                   else self._config("running"))
        candidate = self._config("candidate")
        if _same(running, candidate):  # an unchanged gateway: nothing to walk or match
            return ConfigDiff(native="", unified="")
        empty = etree.Element(f"{{{NATIVE_NS}}}native")
        lines = cli_diff(running if running is not None else empty,
                         candidate if candidate is not None else empty)
        return ConfigDiff(native=lines, unified=unified_diff(pretty(running), pretty(candidate))
                          if unified or not lines else "")

    def discard(self) -> None:
        if "candidate" in self._locked:
            self._call(_nc("discard-changes"), "discard the candidate")
        self._unlock()

    # --- commit, confirm, rollback ------------------------------------------------------

    def _commit(self, what: str, *parameters: Element) -> None:
        self._call(_nc("commit", *parameters), what, CommitError)

    def _persist_id(self) -> str:
        if self.persist_id is None:
            self.persist_id = f"{PERSIST_PREFIX}{uuid.uuid4().hex}"
        return self.persist_id

    def commit(self, confirm_timeout: int | None = None) -> int | None:
        strategy = self._strategy()
        timer = (device_timer(STRATEGIES[strategy].timer, confirm_timeout)
                 if confirm_timeout is not None else None)
        if strategy is Strategy.CONFIRMED and self._pending_by_probe():
            raise CommitPendingError(f"{self.target.name}: a confirmed commit is already "
                                     "pending; confirm or roll it back first")
        self._lock()
        if timer is None:
            self._commit("commit")
        elif strategy is Strategy.CONFIRMED:
            self._commit("commit confirmed", _nc("confirmed"),
                         _nc("confirm-timeout", text=str(timer.value)),
                         _nc("persist", text=self._persist_id()))
            self._armed = Armed(timer.seconds, "")
        else:
            self._armed = self._commit_with_revert_timer(timer.value, timer.seconds)
            self._settled = False
        self._unlock()
        return timer.seconds if timer else None

    def _commit_with_revert_timer(self, minutes: int, seconds: int) -> Armed:
        """checkpoint, rollback to it with a revert timer (a no-op that arms the timer with the
        checkpoint as restore point), commit; the commit failing disarms it again."""
        if self._timed_rollback_pending(minutes):
            raise CommitPendingError(
                f"{self.target.name}: a timed rollback (cisco-ia revert timer) is already "
                f"pending, now restarted at {minutes} min; confirm or roll it back first")
        restore_point = self.get_running()
        reply, errors = self._send(_rpc(CISCO_IA_NS, "checkpoint"), "take a checkpoint")
        if errors and _matches(NO_ARCHIVE_PATH, errors):
            raise UnsupportedError(
                f"{self.target.name}: the device has no :confirmed-commit and no `archive` "
                "`path` for the cisco-ia checkpoint the revert timer needs; configure "
                "`archive` / `path bootflash:dcvpn-` (or enable confirmed commits)")
        if errors:
            raise self._error(errors, "take a checkpoint", CommitError)
        found = CHECKPOINT_RESULT.search(_result(reply))
        if found is None:
            raise CommitError(f"{self.target.name}: the checkpoint reply names no archive "
                              f"file: {_result(reply)!r}")
        self.checkpoint = found["name"]
        self._call(_rpc(CISCO_IA_NS, "rollback", target_url=self.checkpoint,
                        revert_timer=str(minutes)), "arm the revert timer", CommitError)
        try:
            self._commit("commit")
        except DriverError:
            with contextlib.suppress(DriverError):
                self._call(_rpc(CISCO_IA_NS, "revert", now=None), "disarm the revert timer")
            raise
        return Armed(seconds, restore_point)

    def _timed_rollback_pending(self, minutes: int) -> bool:
        """cisco-ia revert timer N: refused when none is pending, else restarts it."""
        _, errors = self._send(_rpc(CISCO_IA_NS, "revert", timer=str(minutes)),
                               "look for a pending timed rollback")
        if errors and _matches(NO_TIMED_ROLLBACK, errors):
            return False
        if errors:
            raise self._error(errors, "look for a pending timed rollback", CommitError)
        return True

    def _strategy(self) -> Strategy:
        if self.strategy is None:
            raise DriverError(f"{self.target.name}: the driver is not open")
        return self.strategy

    def _pending_by_probe(self) -> bool:
        _, errors = self._send(_probe(), "look for a pending confirmed commit")
        return self._probe_says(errors)

    def _probe_says(self, errors: list[DeviceError]) -> bool:
        """Whether the probe's answer (its errors) says a confirmed commit is pending."""
        if errors and _matches(NOTHING_PENDING, errors):
            return False
        if errors and (_matches(PENDING_ANSWERS, errors) or
                       any(e.tag in LOCK_DENIED_TAGS for e in errors)):
            return True
        details = "; ".join(e.describe() for e in errors) or "it was accepted"
        raise DriverError(f"{self.target.name}: cannot tell whether a confirmed commit is "
                          f"pending: cancel-commit with a probe persist-id: {details}")

    def has_pending_commit(self) -> bool:
        if self._strategy() is Strategy.CONFIRMED:
            return self._pending_by_probe()
        if self._armed is None:
            if self._settled:
                return False
            raise UnsupportedError(
                f"{self.target.name}: the device arms its revert timer with cisco-ia, whose "
                "state NETCONF cannot read; only the session that armed it can tell (confirm "
                "and rollback work from any session)")
        return self.get_running() != self._armed.restore_point

    def _expired(self, what: str) -> NoPendingCommitError:
        name = self.target.name
        if self._armed is not None:
            self._armed = None
            return NoPendingCommitError(
                f"{name}: cannot {what}: no confirmed commit is pending any more: its confirm "
                "timer expired and the device restored the previous configuration; the "
                "change is not active (deploy again)")
        return NoPendingCommitError(
            f"{name}: cannot {what}: no confirmed commit is pending on the device (its "
            "confirm timer expired and the device rolled back, or it was already confirmed "
            "or rolled back)")

    def _known_persist_id(self, what: str) -> str:
        if self.persist_id is None:
            raise CommitError(f"{self.target.name}: cannot {what}: a persistent confirmed "
                              "commit is pending and its persist id is unknown; pass the id "
                              "the deploy reported as the target option persist_id")
        return self.persist_id

    def confirm(self) -> None:
        if self._strategy() is Strategy.REVERT:
            self._call_pending(_rpc(CLI_RPC_NS, "config-ios-cli-rpc", config_clis=CONFIRM_CLI),
                               "confirm")
            self._armed, self._settled = None, True
            self._unlock()
            return
        if "candidate" in self._locked:
            if not self._pending_by_probe():
                raise self._expired("confirm")
            persist_id = self._known_persist_id("confirm")
            if self.diff().native:
                raise CommitError(f"{self.target.name}: cannot confirm: the candidate holds "
                                  "uncommitted changes; discard them first")
        else:  # a dirty candidate (someone's edit) would be committed with the confirm:
            # locked in the round trip of the probe (and let go when nothing is pending)
            (_, probed), (_, refused) = self._send_many(
                [_probe(), _nc("lock", _datastore("target", "candidate"))],
                "look for a pending confirmed commit and lock the candidate")
            if not refused:
                self._locked.append("candidate")
            if not self._probe_says(probed):
                self._unlock()
                raise self._expired("confirm")
            if refused:
                raise self._error(refused, "lock the candidate to confirm", LockError)
            try:
                persist_id = self._known_persist_id("confirm")
            except CommitError:
                self._unlock()
                raise
        # the confirming commit and the unlocks in one round trip (unlocked whatever happens)
        self._commit_persisted("confirm", _nc("commit", _nc("persist-id", text=persist_id)),
                               unlock=True)
        self._armed = None

    def rollback(self) -> None:
        if self._strategy() is Strategy.REVERT:
            self._rollback_revert()
            return
        if not self._pending_by_probe():
            raise self._expired("roll back")
        persist_id = self._known_persist_id("roll back")
        self._commit_persisted("roll back",
                               _nc("cancel-commit", _nc("persist-id", text=persist_id)))
        self._armed = None
        self._unlock()

    def _commit_persisted(self, what: str, request: Element, unlock: bool = False) -> None:
        errors = self._send_and_unlock(request, what) if unlock else self._send(request, what)[1]
        if not errors:
            return
        if _matches(WRONG_PERSIST_ID, errors):
            if not self._pending_by_probe():
                raise self._expired(what)
            raise CommitError(f"{self.target.name}: cannot {what}: the pending confirmed "
                              f"commit has another persist id than {self.persist_id!r}")
        raise self._error(errors, what, CommitError)

    def _call_pending(self, request: Element, what: str) -> None:
        _, errors = self._send(request, what)
        if errors and _matches(NO_TIMED_ROLLBACK, errors):
            self._settled = True
            raise self._expired(what)
        if errors:
            raise self._error(errors, what, CommitError)

    def _rollback_revert(self) -> None:
        _, errors = self._send(_rpc(CISCO_IA_NS, "revert", now=None), "roll back")
        if errors and _matches(NO_TIMED_ROLLBACK, errors):
            if self.checkpoint is None:
                raise self._expired("roll back")
            self._call(_rpc(CISCO_IA_NS, "rollback", target_url=self.checkpoint),
                       f"roll back to {self.checkpoint}", CommitError)
        elif errors:
            raise self._error(errors, "roll back", CommitError)
        self._armed, self._settled = None, True
        self._unlock()

    # --- state --------------------------------------------------------------------------

    def get_state(self) -> DeviceState:
        selection = _nc("filter", *etree.fromstring(f"<filter>{STATE_FILTER}</filter>"))
        selection.set("type", "subtree")
        return device_state(self._call(_nc("get", selection), "read the crypto and BGP state"))


def _probe() -> Element:
    """cancel-commit of a persist id no commit has: its error says whether one is pending."""
    return _nc("cancel-commit", _nc("persist-id", text=PROBE_PERSIST_ID))


_SESSION = re.compile(r"session (\d+)")


def _session_in(message: str) -> str | None:
    found = _SESSION.search(message)
    return found.group(1) if found else None


def _result(reply: Element) -> str:
    return " ".join(t.strip() for e in reply.iter() if isinstance(e.tag, str)
                    and etree.QName(e).localname == "result" for t in [e.text or ""])
