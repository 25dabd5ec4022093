"""The Junos (SRX) flavour: the RPCs PyEZ, napalm junos and ncclient's junos handler use.

Semantics follow the device: one shared candidate (lock-configuration = `configure
exclusive`; unlocking or ending the session discards uncommitted changes), private
candidates (open-configuration private), load-configuration in xml/text/set, `show |
compare`, commit check/confirmed (timeout in minutes, restored when not confirmed; a later
commit confirms), rollback 0..49. Operational answers are built in junos_oper and
junos_oper_state (SAs and BGP from the committed configs of this device and its peers).
"""

import math
from dataclasses import dataclass

from lxml import etree

from lab.emulators import junos_oper as oper
from lab.emulators import junos_oper_state as oper_state
from lab.emulators.config_tree import Op, edit, fresh_copy, subtree_filter
from lab.emulators.datastore import (
    Datastore,
    DeviceClock,
    LockHeldError,
    NotLockedError,
    PendingConfirm,
    Scheduler,
)
from lab.emulators.device import BASE_10, FlavourSpec, NetconfDevice, SessionInfo
from lab.emulators.errors import ConfigSyntaxError
from lab.emulators.junos_checks import commit_check
from lab.emulators.junos_config import JunosRules, edit_path, native_choices, normalize_loaded
from lab.emulators.junos_diff import compare
from lab.emulators.junos_oper import JUNOS_NS, VERSION, duration, sub, utc
from lab.emulators.junos_pki import JunosPki
from lab.emulators.junos_print import to_set, to_text
from lab.emulators.junos_text import apply_set_commands, parse_text
from lab.emulators.oper_junos_extract import junos_intent
from lab.emulators.oper_model import DeviceIntent
from lab.emulators.peers import DevicePeers, IntentCache, PeerRegistry
from lab.emulators.rpc_errors import RpcErrorInfo, RpcReplyError, fail
from lab.emulators.xmlutil import (
    Element,
    canonical,
    child,
    children,
    copy_tree,
    local_name,
    strip_namespaces,
    text_of,
)

XNM_NS = "http://xml.juniper.net/xnm/1.1/xnm"
DEFAULT_HOSTNAME = "vsrx1"
DEFAULT_CONFIRM_MINUTES = 10
MAX_CONFIRM_MINUTES = 65535

CAPABILITIES = (
    BASE_10,
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.0",
    "urn:ietf:params:netconf:capability:validate:1.0",
    "urn:ietf:params:netconf:capability:url:1.0?scheme=http,ftp,file",
    "urn:ietf:params:xml:ns:netconf:base:1.0",
    "urn:ietf:params:xml:ns:netconf:capability:candidate:1.0",
    "urn:ietf:params:xml:ns:netconf:capability:confirmed-commit:1.0",
    "urn:ietf:params:xml:ns:netconf:capability:validate:1.0",
    "urn:ietf:params:xml:ns:netconf:capability:url:1.0?protocol=http,ftp,file",
    "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring",
    "http://xml.juniper.net/netconf/junos/1.0",
    "http://xml.juniper.net/dmi/system/1.0",
)

SPEC = FlavourSpec(
    name="junos",
    capabilities=CAPABILITIES,
    first_session_id=40001,
    hello_comments=("No zombies were killed during the creation of this user interface",
                    "user {user}, class j-super-user"),
    reply_namespaces=(("junos", JUNOS_NS),),
    require_message_id=False,
    unknown_rpc=lambda name: RpcErrorInfo("syntax error", info=(("bad-element", name),)),
)

FACTORY_CONFIG = f"""
version {VERSION};
system {{
    host-name {{hostname}};
    services {{
        ssh;
        netconf {{
            ssh;
        }}
    }}
}}
interfaces {{
    ge-0/0/0 {{
        unit 0 {{
            family inet;
        }}
    }}
    ge-0/0/1 {{
        unit 0 {{
            family inet;
        }}
    }}
}}
"""


@dataclass
class _Private:
    config: Element
    base: bytes


def _attrs(operation: Element) -> dict[str, str]:
    return {key.rsplit("}", 1)[-1]: value for key, value in operation.attrib.items()}


def _syntax_failure(exc: ConfigSyntaxError, wrapper: str) -> RpcReplyError:
    info = (("bad-element", exc.bad_element),) if exc.bad_element else ()
    error = RpcErrorInfo(exc.message, path=edit_path(list(exc.path)) if exc.path else None,
                         info=info)
    body = etree.Element(wrapper)
    body.append(error.to_element())
    sub(body, "load-error-count", "1")
    return RpcReplyError([error], body=[body])


class JunosDevice(NetconfDevice):
    spec = SPEC

    def __init__(self, clock: DeviceClock, scheduler: Scheduler, *,
                 hostname: str | None = None, peers: PeerRegistry | None = None,
                 gateway: str | None = None) -> None:
        """peers/gateway: join a lab's PeerRegistry, so that SA and BGP answers follow the
        committed configs of this device and its peers (oper_model); without, every tunnel
        is down."""
        super().__init__(clock, scheduler)
        config = FACTORY_CONFIG.replace("{hostname}", hostname or DEFAULT_HOSTNAME)
        factory = strip_namespaces(parse_text(config))
        self.store = Datastore(fresh_copy(factory, (), JunosRules()), clock)
        self.private: dict[int, _Private] = {}
        self._intent = IntentCache()
        self._last_check: tuple[bytes, tuple[RpcErrorInfo, ...]] | None = None
        self.peers = DevicePeers(peers, gateway or hostname or DEFAULT_HOSTNAME, "junos",
                                 self.committed_intent, notifies=True)  # store.record calls
        self.handlers = {
            "lock-configuration": self._lock_configuration,
            "unlock-configuration": self._unlock_configuration,
            "lock": self._lock,
            "unlock": self._unlock,
            "open-configuration": self._open_configuration,
            "close-configuration": self._close_configuration,
            "load-configuration": self._load_configuration,
            "get-configuration": self._get_configuration,
            "commit-configuration": self._commit_configuration,
            "commit": self._commit,
            "validate": self._validate,
            "discard-changes": self._discard_changes,
            "edit-config": self._edit_config,
            "get-config": self._get_config,
            "get": self._get,
            "get-commit-revision-information": self._commit_revision,
            "get-commit-information": self._commit_information,
            "get-system-uptime-information": self._uptime,
            "get-software-information": self._software,
            "get-ike-security-associations-information": self._ike_sas,
            "get-security-associations-information": self._ipsec_sas,
            "get-bgp-summary-information": self._bgp_summary,
        }
        self.pki = JunosPki(self._ca_profiles)  # file-put, <command> pki load, show pki
        self.handlers.update(self.pki.handlers())

    # --- sessions, locks, views ----------------------------------------------------------

    def session_ended(self, session_id: int, *, killed: bool) -> None:
        self.private.pop(session_id, None)
        if self.store.lock_holder == session_id:
            self.store.unlock(session_id)
            self.store.discard()
        pending = self.store.pending
        if killed and pending is not None and pending.session_id == session_id:
            self._restore_unconfirmed()

    def _prepare_intent(self, candidate: Element) -> None:
        """Once the load is answered, derive the candidate's intent (for peers, should it be
        committed): the commit of a deploy wave then needs no derivation."""
        if self.peers.registry is not None:
            self.soon(lambda: self._intent.prepare(
                etree.tostring(candidate), lambda: junos_intent(candidate, self.peers.gateway)))

    def committed_intent(self) -> DeviceIntent:
        """The committed configuration as peers see it (any thread: commits replace it)."""
        last = self.store.history[0]
        return self._intent.get(last, lambda: junos_intent(last.config, self.peers.gateway),
                                float(last.seconds), lambda: etree.tostring(last.config))

    def _ca_profiles(self) -> set[str]:
        """ca-profile names of the committed configuration (a CA certificate needs one)."""
        return {text_of(child(p, "name")) for p in self.store.running.iterfind(
            "security/pki/ca-profile")}

    def shutdown(self) -> None:
        self.peers.close()
        if self.store.pending is not None:
            self.store.pending.handle.cancel()
            self.store.pending = None

    def _locked(self, holder: int) -> RpcReplyError:
        owner = self.sessions.get(holder)
        user = owner.username if owner else "root"
        since = owner.started if owner else self.store.lock_since
        idle = duration(max(0.0, self.clock.now() - self.store.lock_since))
        message = (f"configuration database locked by:\n  {user} terminal  (pid {holder}) "
                   f"on since {utc(since)}, idle {idle}\n      exclusive")
        return fail(message, tag="lock-denied", info=(("session-id", str(holder)),))

    def _view(self, session: SessionInfo) -> Element:
        """The candidate this session reads: its private copy or the shared one."""
        private = self.private.get(session.session_id)
        return private.config if private else self.store.candidate

    def _writable(self, session: SessionInfo) -> Element:
        private = self.private.get(session.session_id)
        if private:
            return private.config
        try:
            self.store.may_edit(session.session_id)
        except LockHeldError as held:
            raise self._locked(held.holder) from None
        return self.store.candidate

    def _replace_view(self, session: SessionInfo, config: Element) -> None:
        private = self.private.get(session.session_id)
        if private:
            private.config = config
        else:
            self.store.candidate = config

    def _take_lock(self, session: SessionInfo) -> None:
        holder = self.store.lock_holder
        if holder is not None:
            raise self._locked(holder)
        if self.store.candidate_modified():
            raise fail("configuration database modified", tag="lock-denied",
                       info=(("session-id", "0"),))
        self.store.lock(session.session_id)

    def _release_lock(self, session: SessionInfo) -> None:
        try:
            self.store.unlock(session.session_id)
        except NotLockedError:
            raise fail("Configuration database is not open") from None
        self.store.discard()

    def _lock_configuration(self, session: SessionInfo, op: Element) -> None:
        self._take_lock(session)

    def _unlock_configuration(self, session: SessionInfo, op: Element) -> None:
        self._release_lock(session)

    def _datastore_target(self, op: Element) -> str:
        target = child(op, "target")
        if target is None:
            target = child(op, "source")
        names = [local_name(c) for c in children(target)] if target is not None else []
        if names not in (["candidate"], ["running"]):
            raise fail("unsupported target datastore", tag="invalid-value",
                       info=(("bad-element", names[0] if names else "target"),))
        return names[0]

    def _lock(self, session: SessionInfo, op: Element) -> None:
        self._datastore_target(op)
        self._take_lock(session)

    def _unlock(self, session: SessionInfo, op: Element) -> None:
        self._datastore_target(op)
        self._release_lock(session)

    def _open_configuration(self, session: SessionInfo, op: Element) -> list[Element]:
        modes = [local_name(c) for c in children(op)]
        if modes != ["private"]:
            raise fail("syntax error", info=(("bad-element", modes[0] if modes else
                                              "open-configuration"),))
        if self.store.candidate_modified() and session.session_id not in self.private:
            raise fail("shared configuration database modified",
                       info=(("bad-element", "private"),))
        if session.session_id not in self.private:
            running = copy_tree(self.store.running)
            self.private[session.session_id] = _Private(running, canonical(running))
        warning = RpcErrorInfo("uncommitted changes will be discarded on exit",
                               severity="warning")
        return [warning.to_element()]

    def _close_configuration(self, session: SessionInfo, op: Element) -> None:
        self.private.pop(session.session_id, None)

    # --- load -----------------------------------------------------------------------------

    def _load_configuration(self, session: SessionInfo, op: Element) -> Element:
        attrs = _attrs(op)
        results = etree.Element("load-configuration-results")
        target = self._writable(session)
        if "url" in attrs or "rescue" in attrs:
            raise fail("loading from a url or the rescue configuration is not emulated",
                       info=(("bad-element", "url" if "url" in attrs else "rescue"),))
        if "rollback" in attrs:
            self._replace_view(session, self._rollback_config(attrs["rollback"]))
            sub(results, "ok")
            return results
        try:
            warnings = self._apply_load(session, target, op, attrs)
        except ConfigSyntaxError as exc:
            raise _syntax_failure(exc, "load-configuration-results") from None
        self._prepare_intent(self._view(session))
        for message in warnings:
            results.append(RpcErrorInfo(message, severity="warning").to_element())
        sub(results, "ok")
        return results

    def _rollback_config(self, text: str) -> Element:
        try:
            return self.store.rollback(int(text))
        except (ValueError, IndexError):
            raise fail(f"Unable to find rollback {text}",
                       info=(("bad-element", text),)) from None

    def _apply_load(self, session: SessionInfo, target: Element, op: Element,
                    attrs: dict[str, str]) -> list[str]:
        action = attrs.get("action", "merge")
        fmt = attrs.get("format", "xml")
        payload = {local_name(c): c for c in children(op)}
        if action not in ("merge", "replace", "override", "update", "set"):
            raise ConfigSyntaxError(f"load action {action} is not supported",
                                    bad_element=action)
        if action == "set" or "configuration-set" in payload:
            text = payload.get("configuration-set")
            if text is None:
                raise ConfigSyntaxError("missing configuration-set", bad_element="action")
            work = copy_tree(target)
            warnings = apply_set_commands(work, text.text or "")
            self._replace_view(session, work)
            return warnings
        if "configuration-text" in payload:
            loaded = parse_text(payload["configuration-text"].text or "")
        elif "configuration" in payload and fmt == "xml":
            loaded = normalize_loaded(payload["configuration"])
        else:
            raise ConfigSyntaxError(f"unsupported load format {fmt}",
                                    bad_element=next(iter(payload), "configuration"))
        if action in ("override", "update"):
            self._replace_view(session, fresh_copy(loaded, (), JunosRules()))
            return []
        work = copy_tree(target)
        problems = edit(work, loaded, JunosRules(honor_replace=action == "replace"))
        self._replace_view(session, work)
        return ["statement not found" for p in problems if p.kind == "missing"]

    # --- read -----------------------------------------------------------------------------

    def _get_configuration(self, session: SessionInfo, op: Element) -> Element:
        attrs = _attrs(op)
        if attrs.get("compare") == "rollback":
            old = self._rollback_config(attrs.get("rollback", "0"))
            info = etree.Element("configuration-information")
            sub(info, "configuration-output", compare(old, self._view(session)))
            return info
        if "rollback" in attrs:
            config = self._rollback_config(attrs["rollback"])
        elif attrs.get("database", "candidate") == "committed":
            config = copy_tree(self.store.running)
        else:
            config = copy_tree(self._view(session))
        wanted = child(op, "configuration")
        if wanted is not None and len(wanted):
            filtered = subtree_filter(config, strip_namespaces(wanted))
            config = filtered if filtered is not None else etree.Element("configuration")
        return self._format_config(config, attrs.get("format", "xml"),
                                   committed=attrs.get("database") == "committed")

    def _format_config(self, config: Element, fmt: str, *, committed: bool) -> Element:
        last = self.store.history[0]
        if fmt == "text":
            element = etree.Element(f"{{{XNM_NS}}}configuration-text", nsmap={None: XNM_NS})
            header = f"## Last commit: {utc(last.seconds)} by {last.user}"
            element.text = to_text(config, header)
            return element
        if fmt == "set":
            element = etree.Element(f"{{{XNM_NS}}}configuration-set", nsmap={None: XNM_NS})
            element.text = to_set(config)
            return element
        if fmt != "xml":
            raise fail(f"format {fmt} is not emulated", info=(("bad-element", fmt),))
        config = native_choices(config)
        if committed:
            config.set(oper.junos_attr("commit-seconds"), str(last.seconds))
            config.set(oper.junos_attr("commit-localtime"), utc(last.seconds))
            config.set(oper.junos_attr("commit-user"), last.user)
        else:
            config.set(oper.junos_attr("changed-seconds"), str(last.seconds))
            config.set(oper.junos_attr("changed-localtime"), utc(last.seconds))
        return config

    def _get_config(self, session: SessionInfo, op: Element) -> Element:
        source = self._datastore_target(op)
        config = copy_tree(self.store.running if source == "running" else self._view(session))
        return self._data(config, op, committed=source == "running")

    def _get(self, session: SessionInfo, op: Element) -> Element:
        return self._data(copy_tree(self.store.running), op, committed=True)

    def _data(self, config: Element, op: Element, *, committed: bool) -> Element:
        data = etree.Element("data")
        selection = child(op, "filter")
        if selection is not None:
            wanted = child(selection, "configuration")
            if wanted is None:
                return data
            filtered = subtree_filter(config, strip_namespaces(wanted))
            if filtered is None:
                return data
            config = filtered
        data.append(self._format_config(config, "xml", committed=committed))
        return data

    # --- edit-config / discard / validate ---------------------------------------------------

    def _edit_config(self, session: SessionInfo, op: Element) -> None:
        if self._datastore_target(op) != "candidate":
            raise fail("edit-config on running is not supported: use the candidate",
                       tag="operation-not-supported", info=(("bad-element", "running"),))
        target = self._writable(session)
        container = child(op, "config")
        config = child(container, "configuration") if container is not None else None
        if config is None:
            raise fail("missing <config><configuration>", tag="missing-element",
                       info=(("bad-element", "config"),))
        default = text_of(child(op, "default-operation")) or "merge"
        try:
            loaded = normalize_loaded(config)
        except ConfigSyntaxError as exc:
            raise _syntax_failure(exc, "load-configuration-results") from None
        if default == "replace":
            self._replace_view(session, fresh_copy(loaded, (), JunosRules()))
            return
        work = copy_tree(target)
        problems = edit(work, loaded, JunosRules(honor_replace=True), (), Op.MERGE)
        errors = [
            RpcErrorInfo("statement not found" if p.kind == "missing" else
                         "statement already exists", type="application",
                         tag="data-missing" if p.kind == "missing" else "data-exists",
                         info=(("bad-element", p.path[-1]),))
            for p in problems
        ]
        if errors:
            raise RpcReplyError(errors)
        self._replace_view(session, work)

    def _discard_changes(self, session: SessionInfo, op: Element) -> None:
        self._writable(session)
        self._replace_view(session, copy_tree(self.store.running))

    def _validate(self, session: SessionInfo, op: Element) -> None:
        errors = commit_check(self._view(session))
        if errors:
            raise RpcReplyError(errors)

    # --- commit -----------------------------------------------------------------------------

    def _commit_configuration(self, session: SessionInfo, op: Element) -> Element:
        flags = {local_name(c): text_of(c) for c in children(op)}
        unknown = set(flags) - {"check", "confirmed", "confirm-timeout", "log", "synchronize",
                                "force-synchronize", "full", "detail"}
        if unknown:
            raise fail("syntax error", info=(("bad-element", sorted(unknown)[0]),))
        minutes = None
        if "confirmed" in flags:
            minutes = _minutes(flags.get("confirm-timeout") or str(DEFAULT_CONFIRM_MINUTES))
        return self._do_commit(session, check="check" in flags, minutes=minutes,
                               log=flags.get("log") or None)

    def _commit(self, session: SessionInfo, op: Element) -> None:
        flags = {local_name(c): text_of(c) for c in children(op)}
        unknown = set(flags) - {"confirmed", "confirm-timeout"}
        if unknown:
            raise fail("element is not supported", tag="unknown-element",
                       info=(("bad-element", sorted(unknown)[0]),))
        minutes = None
        if "confirmed" in flags:
            seconds = flags.get("confirm-timeout") or "600"
            if not seconds.isdigit() or int(seconds) < 1:
                raise fail("invalid confirm-timeout", tag="invalid-value",
                           info=(("bad-element", "confirm-timeout"),))
            minutes = max(1, math.ceil(int(seconds) / 60))
        self._do_commit(session, check=False, minutes=minutes, log=None)

    def _do_commit(self, session: SessionInfo, *, check: bool, minutes: int | None,
                   log: str | None) -> Element:
        private = self.private.get(session.session_id)
        holder = self.store.lock_holder
        if holder is not None and holder != session.session_id:
            raise self._locked(holder)
        config = private.config if private else self.store.candidate
        if private and private.base != canonical(self.store.running):
            raise fail("configuration database modified since the private candidate was "
                       "opened; commit is refused (close and reopen it to update)")
        errors = self._checked(config)
        results = etree.Element("commit-results")
        engine = sub(results, "routing-engine")
        engine.set(oper.junos_attr("style"), "normal")
        sub(engine, "name", self.store.engine)
        if errors:
            errors.append(RpcErrorInfo("configuration check-out failed"))
            for error in errors:
                engine.append(error.to_element())
            raise RpcReplyError(errors, body=[results])
        if check:
            sub(engine, "commit-check-success")
            return results
        old = self.store.history[0].revision
        record = self._record_commit(session, config, minutes, log)
        if private:
            private.base = canonical(self.store.running)
        sub(engine, "commit-success")
        revision = sub(engine, "commit-revision-information")
        sub(revision, "new-db-revision", record)
        sub(revision, "old-db-revision", old)
        return results

    def _checked(self, config: Element) -> list[RpcErrorInfo]:
        """commit_check, not walked again for the same configuration (the confirming commit
        of a commit confirmed checks what the first one did)."""
        key = etree.tostring(config)
        if self._last_check is not None and self._last_check[0] == key:
            return list(self._last_check[1])
        errors = commit_check(config)
        self._last_check = (key, tuple(errors))
        return errors

    def _record_commit(self, session: SessionInfo, config: Element, minutes: int | None,
                       log: str | None) -> str:
        store = self.store
        shared_clean = not store.candidate_modified()
        restore = copy_tree(store.running)
        if store.pending is not None:
            store.pending.handle.cancel()
            restore = store.pending.restore
            store.pending = None
        comment = f"commit confirmed, rollback in {minutes}mins" if minutes else None
        record = store.record(config, user=session.username, client="netconf", log=log,
                              comment=comment)
        self.peers.changed(self.soon)
        if shared_clean or session.session_id not in self.private:
            store.candidate = copy_tree(store.running)
        if minutes:
            deadline = self.clock.now() + minutes * 60
            handle = self.scheduler(self.clock.real_seconds(minutes * 60),
                                    self._restore_unconfirmed)
            store.pending = PendingConfirm(restore, session.session_id, deadline, minutes,
                                           handle)
        return record.revision

    def _restore_unconfirmed(self) -> None:
        """The confirm timer ran out (or its session was killed): go back and commit that."""
        pending = self.store.pending
        if pending is None:
            return
        pending.handle.cancel()
        self.store.pending = None
        self.store.record(pending.restore, user="root", client="other",
                          log="automatic rollback: commit confirmed was not confirmed")
        self.peers.changed(self.soon)
        self.store.candidate = copy_tree(self.store.running)

    # --- operational ------------------------------------------------------------------------

    def _commit_revision(self, session: SessionInfo, op: Element) -> Element:
        return oper.commit_revision(self.store.history[0])

    def _commit_information(self, session: SessionInfo, op: Element) -> Element:
        return oper.commit_information(self.store.history)

    def _uptime(self, session: SessionInfo, op: Element) -> Element:
        return oper.uptime(self.clock, self.store.history[0], len(self.sessions))

    def _software(self, session: SessionInfo, op: Element) -> Element:
        return oper.software(self.store.running)

    def _ike_sas(self, session: SessionInfo, op: Element) -> Element:
        return oper_state.ike_sas(self.peers.state(), self.clock.now(),
                                  detail=child(op, "detail") is not None)

    def _ipsec_sas(self, session: SessionInfo, op: Element) -> Element:
        return oper_state.ipsec_sas(self.peers.state(), self.clock.now(),
                                    detail=child(op, "detail") is not None)

    def _bgp_summary(self, session: SessionInfo, op: Element) -> Element:
        return oper_state.bgp_summary(self.committed_intent(), self.peers.state(),
                                      self.clock.now(), self.clock.boot_epoch)


def _minutes(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_CONFIRM_MINUTES:
        raise fail(f"Value {text} is not within range (1..{MAX_CONFIRM_MINUTES})",
                   info=(("bad-element", "confirm-timeout"),))
    return int(text)
