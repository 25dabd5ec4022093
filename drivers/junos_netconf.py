"""JunOS (SRX) over NETCONF: ncclient's junos handler speaking the Junos XML API.

    load_candidate  take the candidate (lock-configuration = `configure exclusive`, or
                    open-configuration private: target option `candidate`), then
                    load-configuration: REPLACE loads the document of drivers.junos_replace
                    with action="replace" (dcvpn's entries replaced, its stale ones deleted,
                    the rest of the device untouched); MERGE loads xml, text or set as given.
    diff            native `show | compare` (get-configuration compare="rollback"
                    rollback="0" format="text"); unified: committed vs candidate XML.
    commit(t)       refused while a confirmed commit is pending (`show system commit`, so it
                    holds across sessions); with t: <confirmed/> + <confirm-timeout> in whole
                    minutes (drivers.timers, never 0), returns the seconds armed. The
                    candidate stays held until confirm / rollback / discard / close.
                    A candidate with a PKI section (drivers.junos_pki) then gets its
                    certificates loaded; a failed load rolls a confirmed commit back.
    confirm         a plain commit-configuration: on Junos any later commit confirms.
    rollback        pending: load rollback 1 + commit (restores, stops the timer); else the
                    newest earlier configuration that differs from the running one.
    discard         load rollback 0 (candidate = running), then release the candidate.

Diffs are masked (tasks.semantic_diff.mask_secrets) after diffing, so a change of a secret
still shows as a change. get_running returns the device's configuration as it is.
"""

import contextlib
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from lxml import etree
from ncclient.devices.junos import JunosDeviceHandler  # type: ignore[import-untyped]

from drivers.base import ConfigDiff, DeviceState, DeviceTarget, LoadMode
from drivers.errors import (
    CommitError,
    CommitPendingError,
    ConnectError,
    DriverError,
    LoadError,
    LockError,
    NoPendingCommitError,
    UnsupportedError,
)
from drivers.junos_oper import STATE_RPCS, device_state
from drivers.junos_pki import PkiBundle, diff_lines, install, plan, read_device, split_candidate
from drivers.junos_replace import replace_document
from drivers.ncclient_session import (
    DeviceError,
    as_received,
    children_named,
    connect,
    device_errors,
    execute,
    execute_many,
    leaf_text,
    strip_namespaces,
)
from drivers.timers import TimerKind, device_timer
from drivers.xml_parsing import untrusted_parser
from inventory.model import Platform, Transport
from tasks.semantic_diff import mask_secrets

Element = etree._Element


@dataclass(frozen=True, slots=True)
class CandidateMode:
    take: str
    release: str


# target option `candidate`: how this session gets a candidate of its own
CANDIDATE_MODES = {
    "exclusive": CandidateMode("<lock-configuration/>", "<unlock-configuration/>"),
    "private": CandidateMode("<open-configuration><private/></open-configuration>",
                             "<close-configuration/>"),
}

RPC = {
    "running": '<get-configuration database="committed" format="xml"/>',
    "candidate": '<get-configuration format="xml"/>',
    "compare": '<get-configuration compare="rollback" rollback="{index}" format="text"/>',
    "history": "<get-commit-information/>",
    "load_rollback": '<load-configuration rollback="{index}"/>',
}
COMMIT_LOG = "dcvpn {action}"  # <log>: the comment `show system commit` shows

# load-configuration attributes and payload element per format of the config given
LOAD_FORMATS = {
    "xml": ("xml", "configuration"),
    "text": ("text", "configuration-text"),
    "set": ("text", "configuration-set"),
}
SET_VERBS = ("set ", "delete ", "deactivate ", "activate ", "insert ", "rename ", "annotate ")

# device messages that mean another session holds or dirtied the candidate
LOCK_MESSAGES = (
    re.compile(r"configuration database locked by", re.IGNORECASE),
    re.compile(r"^(shared )?configuration database modified$", re.IGNORECASE),
)
LOCK_HOLDER = re.compile(r"locked by:\s*(?P<user>\S+)\s.*?\(pid (?P<pid>\d+)\)", re.DOTALL)
# `show system commit` comment of a confirmed commit that waits for its confirmation
PENDING_COMMENT = re.compile(r"commit confirmed, rollback in (?P<minutes>\d+) ?mins?")
# [U] the entry the device adds when the confirm timer ran out (log or comment)
AUTO_ROLLBACK = re.compile(r"automatic rollback|confirmed.*not confirmed", re.IGNORECASE)
HISTORY_DEPTH = 50  # rollback 0..49


@dataclass(frozen=True, slots=True)
class CommitEntry:
    comment: str
    log: str
    user: str
    when: str

    @property
    def pending(self) -> bool:
        return PENDING_COMMENT.search(self.comment) is not None

    @property
    def auto_rollback(self) -> bool:
        return AUTO_ROLLBACK.search(f"{self.comment}\n{self.log}") is not None


def config_format(config: str) -> str:
    text = config.lstrip()
    if text.startswith("<"):
        return "xml"
    lines = [line.strip() for line in text.splitlines() if line.strip()
             and not line.strip().startswith("#")]
    if lines and all(line.startswith(SET_VERBS) for line in lines):
        return "set"
    return "text"


def parse_configuration(config: str, name: str) -> Element:
    try:
        root = etree.fromstring(config.encode(), untrusted_parser())
    except etree.XMLSyntaxError as exc:
        raise LoadError(f"{name}: the candidate is not well-formed XML: {exc}") from None
    root = strip_namespaces(root)
    if root.tag != "configuration":
        raise LoadError(f"{name}: the candidate must be a <configuration> document, not "
                        f"<{etree.QName(root).localname}>")
    return root


def pretty(config: Element) -> str:
    copy = strip_namespaces(config)
    etree.indent(copy, space="  ")
    return etree.tostring(copy, encoding="unicode") + "\n"


def unified_diff(running: str, candidate: str) -> str:
    if running == candidate:  # difflib would still match every line (seconds for big ones)
        return ""
    lines = difflib.unified_diff(running.splitlines(), candidate.splitlines(),
                                 "running", "candidate", lineterm="")
    text = "\n".join(lines)
    return mask_secrets(text + "\n") if text else ""


def _first(reply: Element, name: str) -> Element | None:
    return next(reply.iter(f"{{*}}{name}"), None)  # any namespace or none, matched in C


class JunosReplyHandler(JunosDeviceHandler):  # type: ignore[misc]
    """ncclient's junos handler without its reply transform: that one compiles an XSLT and
    parses each reply three more times to drop namespaces, which this driver ignores anyway
    (it matches local names). A function as transform is applied to the parsed reply."""

    def transform_reply(self) -> Callable[[Element], Element]:
        return as_received


def _one_line(text: str) -> str:
    return " ".join(text.split())


class JunosNetconfDriver:
    platform: ClassVar[Platform] = Platform.JUNOS
    transport: ClassVar[Transport] = Transport.NETCONF

    def __init__(self, target: DeviceTarget) -> None:
        mode = target.options.get("candidate", "exclusive")
        if mode not in CANDIDATE_MODES:
            raise UnsupportedError(f"{target.name}: candidate mode {mode!r} is not one of "
                                   f"{', '.join(sorted(CANDIDATE_MODES))}")
        self.target = target
        self._mode = CANDIDATE_MODES[mode]
        self._session: Any = None
        self._held = False
        self._pki: PkiBundle | None = None  # certificates to load after the commit

    # --- session ----------------------------------------------------------------------

    def open(self) -> None:
        if self._session is None:
            self._session = connect(self.target, "junos", handler=JunosReplyHandler)

    def close(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        if self._held:
            self._held = False
            with contextlib.suppress(DriverError):  # ending the session releases it too
                execute(session, self.target.name, self._mode.release)
        with contextlib.suppress(Exception):  # the session is gone either way
            session.close_session()

    def __enter__(self) -> "JunosNetconfDriver":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_session(self, what: str) -> Any:
        if self._session is None:
            raise DriverError(f"{self.target.name}: {what}: the driver is not open")
        return self._session

    def _checked(self, reply: Element, what: str,
                 failure: type[DriverError] = DriverError) -> Element:
        errors = [e for e in device_errors(reply) if e.severity == "error"]
        if errors:
            raise self._error(errors, what, failure)
        return reply

    def _rpc(self, request: Element | str, what: str,
             failure: type[DriverError] = DriverError) -> Element:
        reply = execute(self._open_session(what), f"{self.target.name}: {what}", request)
        return self._checked(reply, what, failure)

    def _rpcs(self, requests: list[Element | str], what: str) -> list[Element]:
        """Independent requests in one round trip (execute_many); rpc-errors not checked."""
        return execute_many(self._open_session(what), f"{self.target.name}: {what}", requests)

    def _error(self, errors: list[DeviceError], what: str,
               failure: type[DriverError]) -> DriverError:
        name = self.target.name
        for error in errors:
            if any(p.search(_one_line(error.message)) for p in LOCK_MESSAGES):
                found = LOCK_HOLDER.search(error.message)
                holder = (f"{found['user']} (pid {found['pid']})" if found else
                          f"session {error.session_id}" if error.session_id else None)
                return LockError(
                    f"{name}: cannot {what}: the configuration is locked by "
                    f"{holder or 'another session'} (device: {_one_line(error.message)}); "
                    "nothing was changed", holder=holder)
        details = "; ".join(e.describe() for e in errors)
        return failure(f"{name}: cannot {what}: {details}")

    def _take(self) -> None:
        if not self._held:
            self._rpc(self._mode.take, "take the candidate configuration")
            self._held = True

    def _take_and_read(self, request: str, what: str) -> Element:
        """_take and a read in one round trip (execute_many): the read is answered whatever
        the take says, and counts only when the take succeeded."""
        if self._held:
            return self._rpc(request, what)
        take, read = self._rpcs([self._mode.take, request], what)
        self._checked(take, "take the candidate configuration")
        self._held = True
        return self._checked(read, what)

    def _release(self) -> None:
        if self._held:
            self._held = False
            self._rpc(self._mode.release, "release the candidate configuration")

    # --- configuration ------------------------------------------------------------------

    def _configuration(self, request: str, what: str, reply: Element | None = None) -> Element:
        found = _first(self._rpc(request, what) if reply is None else reply, "configuration")
        return strip_namespaces(found) if found is not None else etree.Element("configuration")

    def get_running(self) -> str:
        return pretty(self._configuration(RPC["running"], "read the running configuration"))

    def load_candidate(self, config: str, mode: LoadMode = LoadMode.REPLACE) -> None:
        config, self._pki = split_candidate(config, self.target.name)  # drivers.junos_pki
        fmt = config_format(config)
        if mode is LoadMode.REPLACE and fmt != "xml":
            raise LoadError(f"{self.target.name}: replace needs the rendered XML "
                            f"<configuration>, not {fmt} statements")
        loaded = parse_configuration(config, self.target.name) if fmt == "xml" else None
        attribute, payload = LOAD_FORMATS[fmt]
        replacing = loaded is not None and mode is LoadMode.REPLACE
        read = (self._take_and_read(RPC["candidate"], "read the candidate") if replacing
                else None)
        self._take()
        action = "set" if fmt == "set" else str(mode)
        request = etree.Element("load-configuration", action=action, format=attribute)
        if loaded is None:
            etree.SubElement(request, payload).text = config
        elif mode is LoadMode.REPLACE:
            current = self._configuration(RPC["candidate"], "read the candidate", read)
            request.append(replace_document(loaded, current))
        else:
            request.append(loaded)
        self._rpc(request, "load the candidate", LoadError)

    def _native_diff(self, index: int = 0) -> str:
        return self._compare_of(self._rpc(RPC["compare"].format(index=index),
                                          "compare the candidate"))

    def diff(self, unified: bool = True) -> ConfigDiff:
        native = self._native_diff()
        pki = self._pki_diff()
        shown = (mask_secrets(native + "\n") if native.strip() else "") + pki
        if not unified and shown:
            return ConfigDiff(native=shown, unified="")
        running = pretty(self._configuration(RPC["running"], "read the running configuration"))
        candidate = pretty(self._configuration(RPC["candidate"], "read the candidate"))
        return ConfigDiff(native=shown, unified=unified_diff(running, candidate) + pki)

    def _pki_diff(self) -> str:
        """The certificates the commit would load (drivers.junos_pki), as diff lines."""
        if self._pki is None:
            return ""
        device = read_device(self._rpc, self._pki)
        return diff_lines(self._pki, device, plan(self._pki, device))

    def discard(self) -> None:
        self._pki = None
        if self._held:
            self._rpc(RPC["load_rollback"].format(index=0), "discard the candidate")
            self._release()

    # --- commit, confirm, rollback ------------------------------------------------------

    def _history(self) -> list[CommitEntry]:
        return _history_of(self._rpc(RPC["history"], "read the commit history"))

    def _compare_of(self, reply: Element) -> str:
        output = _first(self._checked(reply, "compare the candidate"), "configuration-output")
        return (output.text or "").strip("\n") if output is not None else ""

    def has_pending_commit(self) -> bool:
        history = self._history()
        return bool(history) and history[0].pending

    def _commit(self, action: str, timeout_minutes: int | None = None) -> None:
        self._rpc(_commit_request(action, timeout_minutes), action, CommitError)

    def commit(self, confirm_timeout: int | None = None) -> int | None:
        history = self._history()
        if history and history[0].pending:
            raise CommitPendingError(
                f"{self.target.name}: a confirmed commit is already pending ({history[0].user}"
                f" at {history[0].when}: {history[0].comment}); confirm or roll it back first")
        timer = (device_timer(TimerKind.JUNOS_CONFIRMED, confirm_timeout)
                 if confirm_timeout is not None else None)
        self._take()
        self._commit("commit confirmed" if timer else "commit",
                     timer.value if timer else None)
        self._load_certificates(pending=timer is not None)
        if timer is None:
            self._release()
            return None
        return timer.seconds

    def _load_certificates(self, pending: bool) -> None:
        """After the commit (a CA certificate needs its ca-profile committed): load what
        differs. A failure rolls a pending confirmed commit back; a plain commit stays."""
        bundle, self._pki = self._pki, None
        if bundle is None:
            return
        try:
            install(self._rpc, bundle, plan(bundle, read_device(self._rpc, bundle)))
        except ConnectError:
            raise
        except DriverError as exc:
            undone = "the configuration stays committed"
            if pending:
                try:
                    self.rollback()
                    undone = "the confirmed commit was rolled back"
                except DriverError:
                    undone = "rolling the confirmed commit back failed too: its timer does"
            raise CommitError(f"{self.target.name}: the certificates could not be loaded "
                              f"({exc}); {undone}") from None

    def _nothing_pending(self, history: list[CommitEntry], what: str) -> NoPendingCommitError:
        name = self.target.name
        if history and history[0].auto_rollback:
            return NoPendingCommitError(
                f"{name}: cannot {what}: the confirm timer already expired ({history[0].when}) "
                "and the device rolled back to its previous configuration; the change is not "
                "active (deploy again)")
        return NoPendingCommitError(f"{name}: cannot {what}: no confirmed commit is pending "
                                    "(already confirmed, or none was made)")

    def confirm(self) -> None:
        if self._held:  # (the deploy's own session) the history and the compare: one trip
            history_reply, compare = self._rpcs(
                [RPC["history"], RPC["compare"].format(index=0)], "read the commit history")
            history = _history_of(self._checked(history_reply, "read the commit history"))
        else:
            history, compare = self._history(), None
        if not (history and history[0].pending):
            raise self._nothing_pending(history, "confirm")
        self._take()
        native = self._native_diff() if compare is None else self._compare_of(compare)
        if native.strip():
            raise CommitError(f"{self.target.name}: cannot confirm: the candidate holds "
                              "uncommitted changes; discard them first")
        # the confirming commit and the history after it: one round trip, in this order
        committed, history_reply = self._rpcs([_commit_request("confirm"), RPC["history"]],
                                              "confirm")
        self._checked(committed, "confirm", CommitError)
        after = _history_of(self._checked(history_reply, "read the commit history"))
        self._release()
        if len(after) < 2 or not after[1].pending:
            raise self._nothing_pending(after[1:], "confirm")

    def _previous_different(self, depth: int) -> int:
        for index in range(1, min(depth, HISTORY_DEPTH)):
            if self._native_diff(index).strip():
                return index
        raise NoPendingCommitError(f"{self.target.name}: cannot roll back: no earlier "
                                   "configuration differs from the running one")

    def rollback(self) -> None:
        history = self._history()
        if history and history[0].auto_rollback:
            raise self._nothing_pending(history, "roll back")
        self._take()
        self._rpc(RPC["load_rollback"].format(index=0), "reset the candidate")
        pending = bool(history) and history[0].pending
        index = 1 if pending else self._previous_different(len(history))
        self._rpc(RPC["load_rollback"].format(index=index), f"load rollback {index}",
                  LoadError)
        if pending and not self.has_pending_commit():  # the timer fired meanwhile
            self.discard()
            raise self._nothing_pending(self._history(), "roll back")
        self._commit("rollback")
        self._release()

    # --- state --------------------------------------------------------------------------

    def get_state(self) -> DeviceState:
        answers = self._rpcs(list(STATE_RPCS.values()), "read the state")  # one round trip
        replies = {part: self._checked(reply, f"read the {part} state")
                   for part, reply in zip(STATE_RPCS, answers, strict=True)}
        return device_state(replies["ike"], replies["ipsec"], replies["bgp"])


def _commit_request(action: str, timeout_minutes: int | None = None) -> Element:
    request = etree.Element("commit-configuration")
    if timeout_minutes is not None:
        etree.SubElement(request, "confirmed")
        etree.SubElement(request, "confirm-timeout").text = str(timeout_minutes)
    etree.SubElement(request, "log").text = COMMIT_LOG.format(action=action)
    return request


def _history_of(reply: Element) -> list[CommitEntry]:
    """The commit history of a get-commit-information reply, newest first."""
    return [CommitEntry(comment=leaf_text(next(children_named(h, "comment"), None)),
                        log=leaf_text(next(children_named(h, "log"), None)),
                        user=leaf_text(next(children_named(h, "user"), None)),
                        when=leaf_text(next(children_named(h, "date-time"), None)))
            for h in reply.iter("{*}commit-history")]
