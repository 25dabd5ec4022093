"""The IOS-XE flavour: RFC 6241 on running and candidate, as a 17.x device with the candidate
datastore enabled (`netconf-yang feature candidate-datastore`) answers ncclient and dcvpn.

Datastores hold the Cisco-IOS-XE-native tree (lxml, namespaced, under a `datastore` root).
Semantics follow RFC 6241: locks per datastore (lock-denied naming the holder; edits,
commits and discards by others get in-use), unlocking or losing the candidate lock discards
its uncommitted changes, confirmed commits per iosxe_commit, edit-config with the nc:operation
attributes and default-operation, validate, and the cisco-ia archive RPCs (iosxe_ia). With the
vendor YANG, a candidate edit must parse against the schema (unknown elements, bad values are
refused) and validate / commit / running edits must pass full validation, as a device checks
references only when it validates.
"""

from collections.abc import Callable

from lxml import etree

from lab.emulators.config_tree import Op, edit, fresh_copy
from lab.emulators.datastore import DeviceClock, Scheduler
from lab.emulators.device import (
    Body,
    Deferred,
    FlavourSpec,
    Handler,
    NetconfDevice,
    SessionInfo,
)
from lab.emulators.errors import EmulatorError
from lab.emulators.iosxe_caps import CISCO_IA_NS, RELEASE_MODULES, Advertised, advertised
from lab.emulators.iosxe_commit import ConfirmedCommits, confirm_timeout
from lab.emulators.iosxe_data import BGP_OPER_NS, CRYPTO_OPER_NS, filtered, operational
from lab.emulators.iosxe_ia import Archives, minutes
from lab.emulators.iosxe_oper_state import bgp_oper, crypto_oper
from lab.emulators.iosxe_schema import (
    NATIVE_NS,
    FallbackRules,
    IosxeRules,
    IosxeYang,
    Printed,
    SchemaRules,
    YangProblem,
    load_yang,
    serialized,
)
from lab.emulators.oper_iosxe_extract import native_intent
from lab.emulators.oper_model import DeviceIntent
from lab.emulators.peers import DevicePeers, IntentCache, PeerRegistry
from lab.emulators.rpc_errors import RpcErrorInfo, RpcReplyError, fail
from lab.emulators.xmlutil import (
    NC_NS,
    Element,
    canonical,
    child,
    children,
    copy_tree,
    local_name,
    text_of,
)

DEFAULT_HOSTNAME = "Router"
DEFAULT_VERSION = "17.15"
MONITORING_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
CLI_RPC_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-cli-rpc"
DATASTORES = ("running", "candidate")
CANONICALS_KEPT = 4  # running, candidate, an edit's tree and what its check made of it
EDIT_OPERATIONS = frozenset(op.value for op in Op if op is not Op.NONE)
CONFIRM_PARAMETERS = ("confirmed", "confirm-timeout", "persist", "persist-id")
NOT_EMULATED = ("create-subscription", "partial-lock", "partial-unlock", "sync-from",
                "is-syncing", "get-modelled-config-clis", "config-ios-cli-trans")
IA_RESULT_SAVE = "Save running-config successful"  # [unverified wording]

FACTORY_CONFIG = f"""<native xmlns="{NATIVE_NS}"><version/><hostname/><interface>
<GigabitEthernet><name>1</name><ip><address><dhcp/></address></ip></GigabitEthernet>
</interface></native>"""


def _factory(hostname: str, version: str) -> Element:
    native = etree.fromstring(FACTORY_CONFIG, etree.XMLParser(remove_blank_text=True))
    for name, value in (("version", version), ("hostname", hostname)):
        leaf = native.find(f"{{{NATIVE_NS}}}{name}")
        if leaf is not None:
            leaf.text = value
    root = etree.Element("datastore")
    root.append(native)
    return root


def _in_use(name: str, holder: int) -> RpcReplyError:
    return fail(f"the {name} configuration database is locked by session {holder}",
                tag="in-use", error_type="protocol")


def _subtree_namespaces(op: Element) -> set[str | None] | None:
    """The namespaces of a subtree filter's top-level nodes (only those parts of the data tree
    can match); None when there is no filter or another kind of filter."""
    selection = child(op, "filter")
    if selection is None or (selection.get("type") or "subtree") != "subtree":
        return None
    return {etree.QName(c).namespace for c in children(selection)}


def _yang_errors(problems: list[YangProblem]) -> RpcReplyError:
    return RpcReplyError([
        RpcErrorInfo(p.message, tag=p.tag, type="application",
                     info=(("bad-element", p.bad_element),) if p.bad_element else ())
        for p in problems])


def _result(namespace: str, text: str) -> list[Element]:
    """The <result> output leaf of the cisco-ia and cli-rpc RPCs."""
    return [_leaf(namespace, "result", text)]


def _leaf(namespace: str, name: str, value: str) -> Element:
    element = etree.Element(f"{{{namespace}}}{name}", nsmap={None: namespace})
    element.text = value
    return element


class IosxeDevice(NetconfDevice):
    def __init__(self, clock: DeviceClock, scheduler: Scheduler, *,
                 hostname: str | None = None, os_version: str = DEFAULT_VERSION,
                 confirmed_commit: bool = True, peers: PeerRegistry | None = None,
                 gateway: str | None = None) -> None:
        """peers/gateway: join a lab's PeerRegistry, so that crypto-oper and bgp-oper follow
        the committed configs of this device and its peers (oper_model); without, every
        tunnel is down."""
        if os_version not in RELEASE_MODULES:
            raise EmulatorError(f"no IOS-XE emulator for os_version {os_version!r} "
                                f"(have: {', '.join(sorted(RELEASE_MODULES))})")
        self.yang: IosxeYang | None = load_yang(os_version)
        self.advertised: Advertised = advertised(
            os_version, self.yang.folder if self.yang else None,
            confirmed_commit=confirmed_commit)
        self.spec = FlavourSpec(name="iosxe", capabilities=self.advertised.capabilities)
        super().__init__(clock, scheduler, hostname=hostname)
        self.hostname = hostname or DEFAULT_HOSTNAME
        self.os_version = os_version
        self.confirmed_commit = confirmed_commit
        self._last_valid: tuple[bytes, Element] | None = None
        self._canonicals: list[tuple[Element, bytes]] = []  # _canonical's memory
        # canonical form of the last tree _check returned, with what validation said of it
        self._last_checked: tuple[bytes, list[YangProblem] | None] | None = None
        self.running = self._checked(_factory(self.hostname, os_version))
        self.candidate = self.running
        self.startup = self.running
        self.locks: dict[str, int] = {}
        self.committed_at = clock.now()
        self._intent = IntentCache()
        self.peers = DevicePeers(peers, gateway or self.hostname, "iosxe", self.committed_intent,
                                 notifies=True)  # running changes in _set_running only
        self.commits = ConfirmedCommits(clock, self.scheduler, self._restore)
        self.archives = Archives(clock, self.scheduler, self._restore)
        self.routes: dict[tuple[str, str], Handler] = {
            (NC_NS, "get-config"): self._get_config,
            (NC_NS, "get"): self._get,
            (NC_NS, "edit-config"): self._edit_config,
            (NC_NS, "copy-config"): self._copy_config,
            (NC_NS, "delete-config"): self._delete_config,
            (NC_NS, "lock"): self._lock,
            (NC_NS, "unlock"): self._unlock,
            (NC_NS, "validate"): self._validate,
            (NC_NS, "commit"): self._commit,
            (NC_NS, "discard-changes"): self._discard_changes,
            (MONITORING_NS, "get-schema"): self._get_schema,
            (CISCO_IA_NS, "checkpoint"): self._checkpoint,
            (CISCO_IA_NS, "rollback"): self._rollback,
            (CISCO_IA_NS, "revert"): self._revert,
            (CISCO_IA_NS, "save-config"): self._save_config,
            (CISCO_IA_NS, "netconf-session-id"): self._netconf_session_id,
            (CLI_RPC_NS, "config-ios-cli-rpc"): self._config_cli,
        }
        if confirmed_commit:
            self.routes[(NC_NS, "cancel-commit")] = self._cancel_commit

    # --- dispatch, sessions ---------------------------------------------------------------

    def dispatch(self, session: SessionInfo, operation: Element, name: str) -> Body | Deferred:
        space = etree.QName(operation).namespace or ""
        handler = self.routes.get((space, name))
        self.archives.activity()
        if handler is not None:
            return handler(session, operation)
        if name in NOT_EMULATED:
            raise fail(f"{name} is not emulated", tag="operation-not-supported",
                       error_type="protocol", info=(("bad-element", name),))
        known = {s for s, _ in self.routes} | {NC_NS}
        if space not in known:
            raise fail(f"unknown namespace {space!r}", tag="unknown-namespace",
                       error_type="protocol",
                       info=(("bad-element", name), ("bad-namespace", space)))
        raise fail(f"unknown operation {name}", tag="operation-not-supported",
                   error_type="protocol", info=(("bad-element", name),))

    def session_ended(self, session_id: int, *, killed: bool) -> None:
        self.commits.session_ended(session_id)
        for name, holder in list(self.locks.items()):
            if holder == session_id:
                del self.locks[name]
                if name == "candidate":
                    self.candidate = self.running

    def _prepare_intent(self) -> None:
        """Once the edit is answered, derive the candidate's intent (for peers, should it be
        committed): the commit of a deploy wave then needs no derivation."""
        candidate = self.candidate
        if self.peers.registry is not None:
            self.soon(lambda: self._intent.prepare(
                etree.tostring(candidate), lambda: native_intent(candidate, self.peers.gateway)))

    def committed_intent(self) -> DeviceIntent:
        """The running configuration as peers see it (any thread: commits replace it)."""
        running = self.running
        return self._intent.get(running, lambda: native_intent(running, self.peers.gateway),
                                self.committed_at, lambda: etree.tostring(running))

    def shutdown(self) -> None:
        self.peers.close()
        self.commits.shutdown()
        self.archives.shutdown()

    # --- datastores -----------------------------------------------------------------------

    def _canonical(self, tree: Element) -> bytes:
        """canonical(tree), kept for the last trees asked about. The datastores (running,
        candidate, startup, the last valid tree) are replaced, never changed in place (edits
        and replies work on copies): they share trees instead of copying half a megabyte a
        hub, and locks, edits and commits compare the same ones again."""
        for known, value in self._canonicals:
            if known is tree:
                return value
        value = canonical(tree)
        self._canonicals = [(tree, value), *self._canonicals[:CANONICALS_KEPT - 1]]
        return value

    def _rules(self, *trees: Element) -> IosxeRules:
        return SchemaRules(self.yang) if self.yang is not None else FallbackRules(trees)

    def _checked(self, tree: Element) -> Element:
        """tree after the schema check (in schema order); refuses what does not parse."""
        return self._check(tree)[0]

    def _check(self, tree: Element, key: bytes | None = None
               ) -> tuple[Element, list[YangProblem] | None]:
        """_checked's tree and validate's problems when the same libyang pass found them out
        (None: not known yet; a candidate may stay invalid until validate or commit)."""
        if self.yang is None:
            return tree, None
        key = self._canonical(tree) if key is None else key
        if self._last_valid is not None and self._last_valid[0] == key:
            return self._last_valid[1], []
        return self._record(self.yang.checked(tree))

    def _record(self, checked: tuple[Element | YangProblem, list[YangProblem] | None]
                ) -> tuple[Element, list[YangProblem] | None]:
        """What IosxeYang.checked said of a tree: refused, or remembered for validate."""
        parsed, problems = checked
        if isinstance(parsed, YangProblem):
            raise _yang_errors([parsed])
        self._last_checked = (self._canonical(parsed), problems)
        if problems == []:
            self._last_valid = (self._last_checked[0], parsed)
        return parsed, problems

    def _validated(self, tree: Element) -> Element:
        """tree checked and validated against the YANG; a tree equal to the last one that
        passed is not parsed again (edit-config, validate and commit of one change each
        validate the same candidate: a device does it fast, libyang in Python does not)."""
        key = self._canonical(tree)
        if self._last_valid is not None and self._last_valid[0] == key:
            return self._last_valid[1]
        if self._last_checked is not None and self._last_checked[0] == key:
            problems = self._last_checked[1]  # the candidate edit-config just checked
        else:
            tree, problems = self._check(tree, key)
        if problems is None and self.yang is not None:
            problems = self.yang.validate(tree)
        if problems:
            raise _yang_errors(problems)
        self._last_valid = (key, tree)
        return tree

    def _set_running(self, config: Element) -> Element:
        """Replace running, keeping an unmodified candidate in step; returns the old one."""
        previous = self.running
        clean = self._canonical(self.candidate) == self._canonical(previous)
        self.running = config
        self.committed_at = self.clock.now()
        self.peers.changed(self.soon)
        if clean:
            self.candidate = self.running
        return previous

    def _restore(self, config: Element) -> None:
        self._set_running(config)

    def _store(self, name: str) -> Element:
        return self.running if name == "running" else self.candidate

    def _writable(self, session: SessionInfo, *names: str) -> None:
        for name in names:
            holder = self.locks.get(name)
            if holder is not None and holder != session.session_id:
                raise _in_use(name, holder)

    def _datastore(self, operation: Element, parameter: str, *,
                   inline: bool = False) -> str | Element:
        """The datastore an operation names ("running", "candidate") or an inline <config>."""
        holder = child(operation, parameter)
        choice = children(holder) if holder is not None else []
        if len(choice) != 1:
            raise fail(f"missing <{parameter}>", tag="missing-element", error_type="protocol",
                       info=(("bad-element", parameter),))
        name = local_name(choice[0])
        if name in DATASTORES:
            return name
        if inline and name == "config":
            return choice[0]
        raise fail(f"the {name} datastore is not supported", tag="invalid-value",
                   error_type="protocol", info=(("bad-element", name),))

    def _named(self, operation: Element, parameter: str) -> str:
        name = self._datastore(operation, parameter)
        if not isinstance(name, str):
            raise fail(f"<{parameter}> must name a datastore", tag="invalid-value",
                       error_type="protocol", info=(("bad-element", "config"),))
        return name

    # --- read -------------------------------------------------------------------------------

    def _get_config(self, session: SessionInfo, op: Element) -> Element:
        store = self._store(self._named(op, "source"))
        return filtered(store, op, self._rules(store))

    def _get(self, session: SessionInfo, op: Element) -> Element:
        wanted = _subtree_namespaces(op)
        if wanted is None or any(etree.QName(c).namespace in wanted
                                 for c in children(self.running)):
            combined = copy_tree(self.running)
        else:  # nothing of the configuration can match: not copied (a fleet polls often)
            combined = etree.Element(self.running.tag)
        crypto: Element | None = None
        bgp: Element | None = None
        if wanted is None or wanted & {CRYPTO_OPER_NS, BGP_OPER_NS}:
            state = self.peers.state()
            if wanted is None or CRYPTO_OPER_NS in wanted:
                crypto = crypto_oper(state, self.clock.now())
            if wanted is None or BGP_OPER_NS in wanted:
                bgp = bgp_oper(self.committed_intent(), state, self.clock.now())
        combined.extend(operational(self.advertised, self.archives, crypto, bgp, wanted))
        return filtered(combined, op, self._rules(combined), take=True)  # combined: ours

    def _get_schema(self, session: SessionInfo, op: Element) -> Element:
        identifier = text_of(child(op, "identifier"))
        version = text_of(child(op, "version"))
        if self.yang is None:
            raise fail("no schemas available", tag="invalid-value", error_type="application",
                       info=(("bad-element", "identifier"),))
        source = self.yang.folder / f"{identifier}.yang"
        known = {m.name: m.revision for m in self.advertised.modules}
        if not source.is_file() or (version and version != known.get(identifier)):
            raise fail(f"schema {identifier} {version} not found", tag="invalid-value",
                       error_type="application", info=(("bad-element", "identifier"),))
        return _leaf(MONITORING_NS, "data", source.read_text(encoding="utf-8"))

    # --- edit -------------------------------------------------------------------------------

    def _edit_config(self, session: SessionInfo, op: Element) -> Deferred | None:
        target = self._named(op, "target")
        if child(op, "url") is not None:
            raise fail("url is not supported", tag="operation-not-supported",
                       error_type="protocol", info=(("bad-element", "url"),))
        config = child(op, "config")
        if config is None:
            raise fail("missing <config>", tag="missing-element", error_type="protocol",
                       info=(("bad-element", "config"),))
        default = text_of(child(op, "default-operation")) or "merge"
        if default not in ("merge", "replace", "none"):
            raise fail(f"invalid default-operation {default!r}", tag="invalid-value",
                       error_type="protocol", info=(("bad-element", "default-operation"),))
        test = text_of(child(op, "test-option")) or "test-then-set"
        self._writable(session, target)
        _check_operations(config)
        work = self._edited(self._store(target), config, Op(default))
        if test == "test-only" or target == "running":
            work = self._validated(work)
            if test != "test-only":
                self._set_running(work)
            return None
        key = self._canonical(work)
        yang = self.yang
        if yang is None or (self._last_valid is not None and self._last_valid[0] == key):
            self.candidate = self._checked(work)
            self._prepare_intent()
            return None

        def loaded(outcome: Callable[[], Printed]) -> None:
            self.candidate = self._record(yang.tree_of(str(work.tag), outcome()))[0]
            self._prepare_intent()

        # the libyang pass (most of an edit's time) off the event loop, on text: no lxml
        # tree is made or read on the worker thread
        document = serialized(work)
        return Deferred(work=lambda: yang.check_text(document), then=loaded)

    def _edited(self, store: Element, config: Element, default: Op) -> Element:
        rules = self._rules(store, config)
        if default is Op.REPLACE:
            work = etree.Element(store.tag)
            for item in children(config):
                if rules.operation(item, Op.MERGE) not in (Op.DELETE, Op.REMOVE):
                    work.append(fresh_copy(item, (str(item.tag),), rules))
            return work
        work = copy_tree(store)
        problems = edit(work, config, rules, (), default)
        if problems:
            raise RpcReplyError([
                RpcErrorInfo("data missing" if p.kind == "missing" else "data exists",
                             tag="data-missing" if p.kind == "missing" else "data-exists",
                             type="application", info=(("bad-element", p.path[-1]),))
                for p in problems])
        return work

    def _copy_config(self, session: SessionInfo, op: Element) -> None:
        target = self._named(op, "target")
        source = self._datastore(op, "source", inline=True)
        self._writable(session, target)
        if isinstance(source, str):
            config = copy_tree(self._store(source))
        else:
            _check_operations(source)
            config = self._edited(etree.Element("datastore"), source, Op.REPLACE)
        if target == "running":
            self._set_running(self._validated(config))
        else:
            self.candidate = self._checked(config)

    def _delete_config(self, session: SessionInfo, op: Element) -> None:
        target = self._named(op, "target")
        raise fail(f"the {target} datastore cannot be deleted", tag="invalid-value",
                   error_type="protocol", info=(("bad-element", target),))

    def _discard_changes(self, session: SessionInfo, op: Element) -> None:
        self._writable(session, "candidate")
        self.candidate = self.running

    def _validate(self, session: SessionInfo, op: Element) -> None:
        source = self._datastore(op, "source", inline=True)
        if isinstance(source, str):
            self._validated(self._store(source))
        else:
            _check_operations(source)
            self._validated(self._edited(etree.Element("datastore"), source, Op.REPLACE))

    # --- locks ------------------------------------------------------------------------------

    def _lock(self, session: SessionInfo, op: Element) -> None:
        target = self._named(op, "target")
        holder = self.locks.get(target)
        if holder is None and target == "candidate" and (
                self._canonical(self.candidate) != self._canonical(self.running)):
            holder = 0  # RFC 6241 7.5: a modified candidate cannot be locked
        pending = self.commits.pending
        if holder is None and target == "running" and pending is not None and \
                pending.session_id != session.session_id:
            holder = pending.session_id
        if holder is not None:
            message = ("the candidate configuration has uncommitted changes" if holder == 0
                       else f"the {target} configuration database is locked by session "
                            f"{holder}")
            raise fail(message, tag="lock-denied", error_type="protocol",
                       info=(("session-id", str(holder)),))
        self.locks[target] = session.session_id

    def _unlock(self, session: SessionInfo, op: Element) -> None:
        target = self._named(op, "target")
        if self.locks.get(target) != session.session_id:
            raise fail(f"the {target} configuration database is not locked by this session",
                       error_type="protocol")
        del self.locks[target]
        if target == "candidate":
            self.candidate = self.running

    # --- commit -----------------------------------------------------------------------------

    def _commit(self, session: SessionInfo, op: Element) -> None:
        given = {local_name(c): c for c in children(op)}
        unknown = [n for n in given if n not in CONFIRM_PARAMETERS or not self.confirmed_commit]
        if unknown:
            raise fail(f"unknown element {unknown[0]}", tag="unknown-element",
                       error_type="protocol", info=(("bad-element", unknown[0]),))
        persist_id = text_of(given["persist-id"]) if "persist-id" in given else None
        timeout = None
        if "confirmed" in given:
            timeout = confirm_timeout(text_of(given["confirm-timeout"])
                                      if "confirm-timeout" in given else None)
        persist = text_of(given["persist"]) if "persist" in given else None
        self._writable(session, "candidate", "running")
        self.commits.authorize(session.session_id, persist_id)
        config = self._validated(self.candidate)
        self.candidate = config
        previous = self._set_running(config)
        self.commits.committed(session.session_id, previous, timeout=timeout,
                               persist=persist if timeout is not None else None)

    def _cancel_commit(self, session: SessionInfo, op: Element) -> None:
        persist_id = child(op, "persist-id")
        self.commits.cancel(session.session_id,
                            text_of(persist_id) if persist_id is not None else None)

    # --- cisco-ia -----------------------------------------------------------------------------

    def _checkpoint(self, session: SessionInfo, op: Element) -> list[Element]:
        archive = self.running.find(f"{{{NATIVE_NS}}}native/{{{NATIVE_NS}}}archive")
        path = text_of(archive.find(f"{{{NATIVE_NS}}}path")) if archive is not None else ""
        maximum = text_of(archive.find(f"{{{NATIVE_NS}}}maximum")) if archive is not None \
            else ""
        made = self.archives.checkpoint(self.running, path or None,
                                        int(maximum) if maximum.isdigit() else None,
                                        self.hostname)
        return _result(CISCO_IA_NS, f"Checkpoint {made.name} created")

    def _rollback(self, session: SessionInfo, op: Element) -> list[Element]:
        url = text_of(child(op, "target-url"))
        if not url:
            raise fail("missing target-url", tag="missing-element", error_type="application",
                       info=(("bad-element", "target-url"),))
        timer = child(op, "revert-timer")
        revert_minutes = minutes(text_of(timer), "revert-timer") if timer is not None else None
        if text_of(child(op, "nolock")) != "true":
            self._writable(session, "running")
        config = self._validated(copy_tree(self.archives.find(url).config))
        previous = self._set_running(config)
        if revert_minutes is not None:
            self.archives.arm(previous, revert_minutes)
        return _result(CISCO_IA_NS, "Rollback Done")

    def _revert(self, session: SessionInfo, op: Element) -> list[Element]:
        timer, idle = child(op, "timer"), child(op, "idle")
        self.archives.revert(
            now=child(op, "now") is not None,
            timer=minutes(text_of(timer), "timer") if timer is not None else None,
            idle=minutes(text_of(idle), "idle") if idle is not None else None)
        return _result(CISCO_IA_NS, "Revert done")

    def _save_config(self, session: SessionInfo, op: Element) -> list[Element]:
        self.startup = self.running
        return _result(CISCO_IA_NS, IA_RESULT_SAVE)

    def _netconf_session_id(self, session: SessionInfo, op: Element) -> list[Element]:
        return _result(CISCO_IA_NS, str(session.session_id))

    def _config_cli(self, session: SessionInfo, op: Element) -> list[Element]:
        lines = [line.strip() for line in text_of(child(op, "config-clis")).splitlines()]
        for line in filter(None, lines):
            words = line.split()
            if words[:3] == ["do", "configure", "confirm"] and len(words) == 3:
                self.archives.confirm()
            elif words[:4] == ["do", "configure", "revert", "now"] and len(words) == 4:
                self.archives.revert(now=True, timer=None, idle=None)
            elif words[:4] == ["do", "configure", "revert", "timer"] and len(words) in (5, 6):
                idle = words[4] == "idle"
                value = minutes(words[-1], "config-clis")
                self.archives.revert(now=False, timer=None if idle else value,
                                     idle=value if idle else None)
            else:
                raise fail(f"configuration CLI is not emulated over NETCONF: {line!r} "
                           "(use edit-config)", tag="operation-not-supported",
                           error_type="application", info=(("bad-element", "config-clis"),))
        return _result(CLI_RPC_NS, "")


# the first element below <config> with an nc:operation RFC 6241 does not define or a bare
# `operation` attribute (one XPath pass in C: a whole configuration is thousands of elements)
_BAD_OPERATION = etree.XPath(
    "(descendant-or-self::*[@operation or (@nc:operation and not("
    + " or ".join(f"@nc:operation = '{name}'" for name in sorted(EDIT_OPERATIONS))
    + "))])[1]", namespaces={"nc": NC_NS})


def _check_operations(config: Element) -> None:
    """nc:operation values must be RFC 6241's; a bare `operation` attribute is refused."""
    for element in _BAD_OPERATION(config):
        raise fail(f"invalid operation attribute on {local_name(element)}",
                   tag="bad-attribute", error_type="protocol",
                   info=(("bad-attribute", "operation"),
                         ("bad-element", local_name(element))))

