"""strongSwan + FRR gateways: files on the host, swanctl (vici) and frr-reload.py.

    candidate       several files in one text (drivers/strongswan_bundle.py; tasks/deploy.py
                    packs the rendered files). REPLACE: exactly the bundle's managed files
                    (swanctl.conf, frr.conf, ... must be there; a managed file it lacks, such
                    as swanctl-secrets.conf after a move to certificates, is removed);
                    MERGE: only the files given. Rendered files the host does not take
                    (Layout.ignored) are skipped. Secrets must be resolved by the caller.
                    Certificate, key, CA and CRL (drivers/strongswan_creds.py) install into
                    the swanctl folders; absent from a candidate they are left alone.
    get_running     the managed files as they are on the host, as a bundle
    diff            unified, per file, secrets masked after diffing (a changed PSK still
                    shows as a change). There is no native diff: `swanctl --list-conns`
                    shows what charon loaded, not what would change.
    commit(t)       on the host, under the state folder's lock (drivers/strongswan_scripts.py):
                    back up the managed files, arm the rollback timer (t seconds,
                    drivers/strongswan_timer.py), install (temporary file + rename; secrets
                    0600), reload (swanctl --load-all through the gateway's vici socket,
                    frr-reload.py). A reload that fails restores the backup at once.
    confirm         cancel the timer (the PID is checked to be that timer first)
    rollback        pending: cancel the timer, restore the backup, reload; else the files of
                    before the last commit, once
    get_state       swanctl --list-sas --pretty and `show bgp summary json`
    healing         drivers/healing.py HealingDriver: initiate a tunnel (swanctl --initiate),
                    probe and restart charon (commands: Layout.heal)

Transports: `local` (the lab: options netns and dir) and `ssh` (a host; paths in
drivers/strongswan_layout.py). The lifecycle is the same code for both: only the Runner
differs (drivers/strongswan_host.py).
"""

import difflib
import re
import secrets
import time
from datetime import UTC, datetime
from typing import ClassVar

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
from drivers.healing import (
    DEFAULT_INITIATE_TIMEOUT,
    DEFAULT_RESTART_TIMEOUT,
    DaemonStatus,
    Healing,
)
from drivers.strongswan_bundle import pack, unpack
from drivers.strongswan_creds import (
    CREDENTIAL_FILES,
    DIGEST_FILE,
    SECRET_FILES,
    digest,
    digest_from,
    secret_diff,
    shown,
    with_credentials,
)
from drivers.strongswan_host import Completed, LocalRunner, Runner, SshRunner, sh
from drivers.strongswan_layout import (
    KNOWN_FILES,
    STEP_TIMEOUT,
    Layout,
    local_layout,
    ssh_layout,
)
from drivers.strongswan_scripts import (
    ABSENT,
    EXIT_ARM,
    EXIT_BACKUP,
    EXIT_INSTALL,
    NO_BACKUP,
    PREPARE,
    READ_FILE,
    REMOVE_SUFFIX,
    STAGE,
    WRITE_FILE,
    markers,
    parse_steps,
    scripts,
    step_problems,
)
from drivers.strongswan_state import device_state, sas_from_pretty
from drivers.strongswan_timer import (
    LOCK_BUSY,
    TIMER_SCRIPT,
    HostStatus,
    locked_argv,
    parse_status,
    status_command,
    timer_script,
)
from drivers.timers import TimerKind, device_timer
from inventory.model import Platform, Transport
from tasks.semantic_diff import mask_secrets

LOCK_WAIT = 60  # seconds dcvpn waits for the state folder's lock
READ_TIMEOUT = 30.0
CHARON = "charon"
RESTART_POLL = 0.5  # seconds between probes while a restarted charon comes up
TRUE = ("1", "true", "yes", "on")
_UNRESOLVED = re.compile(r"\$\{dcvpn-secret:[^}]*\}")


def when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def unresolved(text: str) -> bool:
    """A secret reference outside comments (a rendered header may mention the syntax)."""
    return any(_UNRESOLVED.search(line) for line in text.splitlines()
               if not line.lstrip().startswith(("#", "!")))


def unified_diff(name: str, old: str | None, new: str | None) -> str:
    a = old.splitlines(keepends=True) if old is not None else []
    b = new.splitlines(keepends=True) if new is not None else []
    lines = difflib.unified_diff(a, b, f"running/{name}" if old is not None else "/dev/null",
                                 f"candidate/{name}" if new is not None else "/dev/null")
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return mask_secrets(text)


class StrongswanDriver:
    """The lifecycle; subclasses choose the layout and the runner."""

    platform: ClassVar[Platform] = Platform.STRONGSWAN
    transport: ClassVar[Transport]

    def __init__(self, target: DeviceTarget) -> None:
        self.target = target
        self.layout = with_credentials(self.make_layout(target), target.name, target.options)
        self._runner: Runner | None = None
        self._candidate: dict[str, str | None] | None = None  # None value: remove the file
        self.skipped: tuple[str, ...] = ()  # candidate files this host does not take

    # --- transport ----------------------------------------------------------------------

    def make_layout(self, target: DeviceTarget) -> Layout:
        raise NotImplementedError

    def make_runner(self) -> Runner:
        raise NotImplementedError

    def open(self) -> None:
        if self._runner is None:
            self._runner = self.make_runner()

    def close(self) -> None:
        runner, self._runner = self._runner, None
        self._candidate = None
        if runner is not None:
            runner.close()

    def __enter__(self) -> "StrongswanDriver":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def name(self) -> str:
        return self.target.name

    def _run(self, argv: list[str], what: str, stdin: bytes | None = None,
             timeout: float = READ_TIMEOUT) -> Completed:
        if self._runner is None:
            raise DriverError(f"{self.name}: {what}: the driver is not open")
        return self._runner.run(argv, stdin=stdin, timeout=timeout)

    def _locked(self, script: str, what: str, *args: str, timeout: float) -> Completed:
        state = self.layout.state_dir
        done = self._run(locked_argv(state, f"{state}/{script}", args, LOCK_WAIT), what,
                         timeout=timeout + LOCK_WAIT)
        if done.rc == LOCK_BUSY:
            raise LockError(f"{self.name}: cannot {what}: another dcvpn (or the rollback "
                            f"timer) holds {state}/lock for more than {LOCK_WAIT}s; nothing "
                            "was changed", holder=f"{state}/lock")
        return done

    # --- files --------------------------------------------------------------------------

    def _read(self, path: str) -> str | None:
        done = self._run(sh(READ_FILE, path), f"read {path}")
        if done.rc == ABSENT:
            return None
        if done.rc != 0:
            raise DriverError(f"{self.name}: cannot read {path}: "
                              f"{done.stderr.strip() or f'exit {done.rc}'}")
        return done.stdout

    def _write(self, path: str, text: str, mode: int) -> None:
        done = self._run(sh(WRITE_FILE, path, f"{mode:o}"), f"write {path}",
                         stdin=text.encode())
        if done.rc != 0:
            raise CommitError(f"{self.name}: cannot write {path}: "
                              f"{done.stderr.strip() or f'exit {done.rc}'}")

    def _digest(self, path: str) -> str | None:
        done = self._run(sh(DIGEST_FILE, path), f"digest {path}")
        if done.rc == ABSENT:
            return None
        if done.rc != 0 or not done.stdout.strip():
            raise DriverError(f"{self.name}: cannot digest {path}: "
                              f"{done.stderr.strip() or f'exit {done.rc}'}")
        return digest_from(done.stdout)

    def _files(self, secrets: bool = False) -> dict[str, str]:
        """The managed files' texts; a secret file (the key) only as its digest, and only
        when `secrets`: it is never read back."""
        out = {}
        for f in self.layout.files:
            if f.name in SECRET_FILES:
                found = self._digest(f.path) if secrets else None
                if found is not None:
                    out[f.name] = found
                continue
            text = self._read(f.path)
            if text is not None:
                out[f.name] = text
        return out

    def get_running(self) -> str:
        return pack(self._files())

    # --- candidate ----------------------------------------------------------------------

    def load_candidate(self, config: str, mode: LoadMode = LoadMode.REPLACE) -> None:
        files = unpack(config, self.name)
        known = (*KNOWN_FILES, *CREDENTIAL_FILES)
        unknown = sorted(set(files) - set(known))
        if unknown:
            raise LoadError(f"{self.name}: unknown file(s) in the candidate: "
                            f"{', '.join(unknown)} (known: {', '.join(known)})")
        raw = sorted(n for n, text in files.items() if unresolved(text))
        if raw:
            raise LoadError(f"{self.name}: {', '.join(raw)} still hold(s) ${{dcvpn-secret:...}} "
                            "references; resolve the secrets before loading")
        managed = {f.name for f in self.layout.files}
        self.skipped = tuple(sorted(set(files) - managed))
        candidate: dict[str, str | None] = {n: t for n, t in files.items() if n in managed}
        if mode is LoadMode.REPLACE:
            missing = [f.name for f in self.layout.files if f.required and f.name not in files]
            if missing:
                raise LoadError(f"{self.name}: a replace candidate must hold "
                                f"{', '.join(missing)}; nothing was loaded")
            # credentials the candidate lacks are left alone (strongswan_creds)
            candidate.update({n: None for n in managed
                              if n not in files and n not in CREDENTIAL_FILES})
        self._candidate = candidate

    def diff(self, unified: bool = True) -> ConfigDiff:  # no native diff: always unified
        if self._candidate is None:
            return ConfigDiff(native=None, unified="")
        running = self._files(secrets=True)
        parts = []
        for f in self.layout.files:
            if f.name not in self._candidate:
                continue
            old, new = running.get(f.name), self._candidate[f.name]
            if f.name in SECRET_FILES:
                new = digest(new) if new is not None else None
                if old != new:
                    parts.append(secret_diff(f.name, old is not None, new is not None))
            elif old != new:
                if f.name in CREDENTIAL_FILES:
                    old, new = shown(f.name, old), shown(f.name, new)
                parts.append(unified_diff(f.name, old, new))
        return ConfigDiff(native=None, unified="".join(parts))

    def discard(self) -> None:
        self._candidate = None

    # --- commit, confirm, rollback ------------------------------------------------------

    def _status(self) -> HostStatus:
        done = self._run(sh(status_command(self.layout.state_dir)), "read the timer state")
        if done.rc != 0:
            raise DriverError(f"{self.name}: cannot read the timer state in "
                              f"{self.layout.state_dir}: {done.output.strip()}")
        return parse_status(done.stdout)

    def has_pending_commit(self) -> bool:
        return self._status().pending

    def _apply_timeout(self) -> float:
        return float(STEP_TIMEOUT * (len(self.layout.steps) + 1))

    def _stage(self) -> None:
        state = self.layout.state_dir
        done = self._run(sh(PREPARE, state), f"prepare {state}")
        if done.rc != 0:
            raise CommitError(f"{self.name}: cannot prepare {state}: {done.output.strip()}")
        for script, text in scripts(self.layout, self.name, STEP_TIMEOUT).items():
            self._write(f"{state}/{script}", text, 0o600)
        self._write(f"{state}/{TIMER_SCRIPT}", timer_script(self.name, state), 0o600)
        assert self._candidate is not None
        for name, content in sorted(self._candidate.items()):
            path = f"{state}/{STAGE}/{name}"
            self._write(path + REMOVE_SUFFIX if content is None else path, content or "", 0o600)

    def commit(self, confirm_timeout: int | None = None) -> int | None:
        status = self._status()
        if status.pending and status.timer is not None:
            raise CommitPendingError(
                f"{self.name}: a confirmed commit is already pending (rollback timer pid "
                f"{status.timer.pid} restores the previous files at "
                f"{when(status.timer.deadline)}); confirm or roll it back first")
        if self._candidate is None:
            raise CommitError(f"{self.name}: nothing to commit: load a candidate first")
        timer = (device_timer(TimerKind.HOST_TIMER, confirm_timeout)
                 if confirm_timeout is not None else None)
        self._stage()
        token = secrets.token_hex(8)
        done = self._locked("commit.sh", "commit", str(timer.seconds if timer else 0), token,
                            timeout=self._apply_timeout())
        found = markers(done.stdout)
        pid = found.get("timer")
        if done.rc in (EXIT_BACKUP, EXIT_ARM):
            what = "back up the current files" if done.rc == EXIT_BACKUP else "arm the timer"
            raise CommitError(f"{self.name}: cannot {what} in {self.layout.state_dir}: "
                              f"{mask_secrets(done.output.strip())}; nothing was changed")
        problems = (["install: " + mask_secrets(done.output.strip()[-300:])]
                    if done.rc == EXIT_INSTALL or "installed" not in found
                    else step_problems(self.layout, parse_steps(done.stdout)))
        if problems:
            restored = self._undo(pid, token)
            raise CommitError(f"{self.name}: the new configuration failed "
                              f"({mask_secrets('; '.join(problems))}); {restored}")
        self._candidate = None
        return timer.seconds if timer else None

    def _undo(self, pid: str | None, token: str) -> str:
        """Put the backup back after a failed commit; says how that went."""
        try:
            done = self._locked("rollback.sh", "restore the previous files",
                                *((pid, token) if pid else ()), timeout=self._apply_timeout())
        except DriverError as exc:
            return f"restoring the previous files failed too: {exc}"
        problems = step_problems(self.layout, parse_steps(done.stdout))
        if "restored" not in markers(done.stdout):
            return "restoring the previous files failed too: " + mask_secrets(
                done.output.strip()[-300:])
        if problems:
            return ("the previous files were restored but did not reload: "
                    + mask_secrets("; ".join(problems)))
        return "the previous files were restored and reloaded"

    def _nothing_pending(self, status: HostStatus, what: str) -> NoPendingCommitError:
        expired = status.expired
        if expired is not None:
            outcome = ("restored the previous configuration"
                       if expired.restore_rc == 0 and expired.apply_rc == 0 else
                       f"tried to restore the previous configuration (restore exit "
                       f"{expired.restore_rc}, reload exit {expired.apply_rc}; see "
                       f"{self.layout.state_dir}/timer.apply.log)")
            return NoPendingCommitError(
                f"{self.name}: cannot {what}: the confirm timer already expired at "
                f"{when(expired.fired)} and {outcome}; the change is not active (deploy again)")
        return NoPendingCommitError(f"{self.name}: cannot {what}: no confirmed commit is "
                                    "pending (already confirmed, or none was made)")

    def _dead_timer(self, status: HostStatus, what: str) -> NoPendingCommitError:
        timer = status.timer
        assert timer is not None
        return NoPendingCommitError(
            f"{self.name}: cannot {what}: the rollback timer (pid {timer.pid}, due "
            f"{when(timer.deadline)}) is no longer running and did not roll back (host "
            "restarted?); the new files are active but unconfirmed: roll back to restore the "
            "previous ones, or commit again")

    def confirm(self) -> None:
        status = self._status()
        if status.timer is None:
            raise self._nothing_pending(status, "confirm")
        if not status.alive:
            raise self._dead_timer(status, "confirm")
        done = self._locked("confirm.sh", "confirm", str(status.timer.pid),
                            status.timer.token, timeout=READ_TIMEOUT)
        outcome = markers(done.stdout).get("cancel")
        if outcome == "cancelled":
            return
        if outcome == "dead":
            raise self._dead_timer(status, "confirm")
        if outcome == "gone":
            raise self._nothing_pending(self._status(), "confirm")
        raise DriverError(f"{self.name}: confirm: unexpected answer from the host: "
                          f"{done.output.strip()[-300:]}")

    def rollback(self) -> None:
        status = self._status()
        args: tuple[str, ...] = ()
        if status.timer is not None:
            args = (str(status.timer.pid), status.timer.token)
        elif not status.backup:
            if status.expired is not None:
                raise self._nothing_pending(status, "roll back")
            raise NoPendingCommitError(f"{self.name}: cannot roll back: there is no backup "
                                       "of an earlier configuration (nothing was committed, or "
                                       "it was rolled back already)")
        done = self._locked("rollback.sh", "roll back", *args, timeout=self._apply_timeout())
        found = markers(done.stdout)
        if found.get("cancel") == "gone" or (done.rc == NO_BACKUP and "restored" not in found):
            raise self._nothing_pending(self._status(), "roll back")
        if "restored" not in found:
            raise CommitError(f"{self.name}: cannot roll back: restoring the files failed: "
                              f"{mask_secrets(done.output.strip()[-300:])}")
        problems = step_problems(self.layout, parse_steps(done.stdout))
        if problems:
            raise CommitError(f"{self.name}: the previous files are back but did not reload: "
                              f"{mask_secrets('; '.join(problems))}")

    # --- state --------------------------------------------------------------------------

    def _query(self, command: str, what: str) -> str:
        done = self._run(sh(command), what)
        if done.rc != 0:
            detail = [ln for ln in done.output.strip().splitlines() if ln.strip()]
            raise DriverError(f"{self.name}: {what} failed: "
                              f"{detail[-1] if detail else f'exit {done.rc}'}")
        return done.stdout

    def get_state(self) -> DeviceState:
        sas = self._query(self.layout.list_sas, "swanctl --list-sas")
        bgp = self._query(self.layout.bgp_summary, "show bgp summary")
        return device_state(sas, bgp)

    # --- healing (drivers/healing.py) ---------------------------------------------------

    def healing(self) -> Healing:
        heal, where = self.layout.heal, f"strongswan over {self.transport}"
        return Healing(CHARON,
                       None if heal.initiate else f"not supported on {where}: no initiate "
                       "command (option heal:initiate)",
                       None if heal.restart and heal.probe else
                       f"not supported on {where}: no restart command (option heal:restart)"
                       + ("; the lab's charon is restarted by dcvpn lab heal"
                          if self.transport is Transport.LOCAL else ""))

    def ike_daemon(self) -> DaemonStatus:
        if not self.layout.heal.probe:
            raise UnsupportedError(f"{self.name}: no charon probe (option heal:probe)")
        done = self._run(sh(self.layout.heal.probe), "probe charon")
        if done.rc == 0:
            return DaemonStatus(CHARON, True, "charon answers")
        lines = [ln.strip() for ln in done.output.splitlines() if ln.strip()]
        return DaemonStatus(CHARON, False, "charon does not answer: "
                            + (lines[-1] if lines else f"exit {done.rc}"))

    def _installed(self, tunnel: str) -> bool:
        _, children = sas_from_pretty(self._query(self.layout.list_sas, "swanctl --list-sas"))
        return any(c.name == tunnel and c.state == "INSTALLED" for c in children)

    def initiate(self, tunnel: str, timeout: float = DEFAULT_INITIATE_TIMEOUT) -> str:
        """`swanctl --initiate` of the tunnel's CHILD SA in its IKE SA (both named like the
        tunnel, as rendered), unless its CHILD SA is installed already."""
        if not self.layout.heal.initiate:
            raise UnsupportedError(self.healing().initiate or "no initiate command")
        if self._installed(tunnel):
            return f"{tunnel} is up: nothing to do"
        wait = max(int(timeout), 1)
        done = self._run(sh(self.layout.heal.initiate, tunnel, tunnel, str(wait)),
                         f"initiate {tunnel}", timeout=wait + 10)
        lines = [ln.strip() for ln in done.output.splitlines() if ln.strip()]
        if done.rc != 0:
            raise DriverError(f"{self.name}: swanctl --initiate {tunnel} failed (exit "
                              f"{done.rc}): {lines[-1] if lines else 'no output'}")
        return next((ln for ln in reversed(lines) if "successfully" in ln),
                    f"{tunnel} initiated")

    def restart_ike(self, timeout: float = DEFAULT_RESTART_TIMEOUT) -> str:
        """The layout's restart command, only when charon does not answer; then wait (bounded)
        until it answers and initiate every connection without a CHILD SA (the layout's
        initiate step: tunnels this end only responds on come up without waiting for DPD)."""
        heal = self.layout.heal
        if not (heal.restart and heal.probe):
            raise UnsupportedError(self.healing().restart or "no restart command")
        before = self.ike_daemon()
        if before.running:
            return "charon answers: nothing to do"
        deadline = time.monotonic() + timeout
        done = self._run(sh(heal.restart), "restart charon", timeout=timeout)
        if done.rc != 0:
            lines = [ln.strip() for ln in done.output.splitlines() if ln.strip()]
            raise DriverError(f"{self.name}: restarting charon failed (exit {done.rc}): "
                              f"{lines[-1] if lines else 'no output'}")
        for _ in range(int(timeout / RESTART_POLL) + 1):
            if self.ike_daemon().running:
                break
            if time.monotonic() > deadline:
                raise DriverError(f"{self.name}: charon was restarted ({heal.restart}) but "
                                  f"does not answer after {timeout:g}s")
            time.sleep(RESTART_POLL)
        else:
            raise DriverError(f"{self.name}: charon does not answer after the restart")
        initiate = next((s for s in self.layout.steps if s.name == "initiate"), None)
        if initiate is not None:
            self._run(sh(initiate.command), "initiate after the restart",
                      timeout=max(deadline - time.monotonic(), 5.0))
        return (f"charon restarted ({heal.restart}; it was: {before.detail})"
                + ("; connections without a CHILD SA initiated" if initiate else ""))


class StrongswanLocalDriver(StrongswanDriver):
    """A gateway of the lab on this machine (DeviceTarget.options: netns, dir)."""

    transport: ClassVar[Transport] = Transport.LOCAL

    def make_layout(self, target: DeviceTarget) -> Layout:
        return local_layout(target.options)

    def make_runner(self) -> Runner:
        runner = LocalRunner(self.name)
        folder, ns = self.target.options["dir"], self.target.options["netns"]
        done = runner.run(sh('[ -d "$1" ] || exit 4; [ -e "/run/netns/$2" ] || exit 5',
                             folder, ns), timeout=READ_TIMEOUT)
        if done.rc == 4:
            raise ConnectError(f"{self.name}: gateway folder {folder} does not exist "
                               "(is the lab up?)")
        if done.rc == 5:
            raise ConnectError(f"{self.name}: network namespace {ns} does not exist "
                               "(is the lab up?)")
        if done.rc != 0:
            raise ConnectError(f"{self.name}: cannot check {folder}: {done.output.strip()}")
        return runner


class StrongswanSshDriver(StrongswanDriver):
    """A strongSwan+FRR host over SSH (option sudo=1 for a non-root login)."""

    transport: ClassVar[Transport] = Transport.SSH

    def make_layout(self, target: DeviceTarget) -> Layout:
        return ssh_layout(target.options)

    def make_runner(self) -> Runner:
        runner = SshRunner(self.target, sudo=self.target.options.get("sudo", "") in TRUE)
        runner.connect()
        return runner
