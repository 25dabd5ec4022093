"""Cisco IOS-XE over SSH: netmiko (`cisco_xe`) for the CLI, SCP to flash: for candidates.

netmiko rather than napalm's ios driver: napalm writes `file prompt quiet` into the running
configuration on its own, folds every device answer into one exception type, and takes a
REPLACE candidate as a whole device configuration. Here each command's answer is read, so
a refused line becomes a LoadError that names it, and the full configuration is built from
the running one (drivers.iosxe_ssh_replace) so nothing dcvpn does not own is dropped.

    load_candidate  REPLACE: running config with dcvpn's sections swapped for the candidate's,
                    copied by SCP to flash:dcvpn-candidate.cfg, checked with `verify /md5`
                    and `show archive config incremental-diffs` (refused lines: LoadError,
                    file deleted, nothing changed). MERGE: the lines, to flash: the same way.
    diff            native `show archive config differences system:running-config <file>`
                    (REPLACE; `+` is what the change adds) or the incremental diff (MERGE);
                    unified: running vs the candidate text. Both masked.
    commit(t)       refused while a revert timer runs (`show archive config rollback timer`,
                    whoever armed it). Saves the running config to flash:dcvpn-rollback.cfg,
                    then REPLACE: `configure replace <file> force revert trigger error
                    [timer N]`; MERGE: `configure terminal revert timer N` + the lines, a
                    refused line reverts at once (`configure revert now`); without t a short
                    safety timer is confirmed right after. t in seconds -> whole minutes,
                    1..120 (drivers.timers), the seconds armed are returned. Without t:
                    `write memory`. The candidate file is deleted (it may hold secrets).
    confirm         `configure confirm` + `write memory`.
    rollback        pending: `configure revert now`; else replace with dcvpn-rollback.cfg.
    certificates    a candidate with a PKI section (drivers.iosxe_pki): its diff lists the
                    key and certificates to import; commit imports them (`crypto pki import
                    ... pem terminal`) before the checkpoint, when the device lacks them.

Host keys: DeviceTarget.known_hosts must list the device (checked before connecting), and
paramiko refuses any other key (netmiko ssh_strict, the file as its only key store). The
CLI user needs privilege 15. netmiko and paramiko log what they send: their loggers get
drivers.redact's filter, and the candidate's secrets are registered with it. Target option
`delay_factor` (netmiko's global_delay_factor, default 1) suits slow device CPUs.
"""

import contextlib
import difflib
import hashlib
import io
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import paramiko  # type: ignore[import-untyped]
import scp  # type: ignore[import-untyped]
from netmiko import ConnectHandler
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoBaseException,
    NetmikoTimeoutException,
)
from netmiko.scp_handler import SCPConn

from drivers import iosxe_pki as pki
from drivers import iosxe_ssh_table as cli
from drivers.base import ConfigDiff, DeviceState, DeviceTarget, LoadMode
from drivers.errors import (
    CommitError,
    CommitPendingError,
    ConnectError,
    DriverError,
    LoadError,
    NoPendingCommitError,
    UnsupportedError,
)
from drivers.iosxe_ssh_oper import device_state
from drivers.iosxe_ssh_replace import intended_config, running_text
from drivers.known_hosts import known_hosts
from drivers.pem_legacy import encrypt_traditional, one_time_password
from drivers.pki_section import hide_key
from drivers.redact import guard_loggers, hide, redact
from drivers.timers import DeviceTimer, TimerKind, device_timer
from inventory.model import Platform, Transport
from tasks.semantic_diff import SECRET_PATTERNS

SLOW_SECONDS = 120.0  # configure replace, verify /md5, revert: the device may take a while
LOGGERS = ("netmiko", "paramiko", "scp")


@dataclass(frozen=True, slots=True)
class Refused:
    """A line the device refused, and what it said."""

    line: str
    message: str

    def describe(self) -> str:
        return redact(f"`{self.line}`: {self.message}" if self.line else self.message)


def refused_lines(output: str) -> list[Refused]:
    """Every failure message of a device answer with the line it refers to (the line
    before the caret marker, echoed with or without its prompt)."""
    lines = output.replace("\r\n", "\n").split("\n")
    found: list[Refused] = []
    for index, line in enumerate(lines):
        text = line.strip()
        if not any(p.match(text) for p in cli.FAILURES):
            continue
        offending = ""
        for before in reversed(lines[:index]):
            candidate = before.strip()
            if (not candidate or cli.CARET.match(before)
                    or any(p.match(candidate) for p in cli.FAILURES)):
                continue
            offending = cli.PROMPT_ECHO.sub("", candidate).strip()
            break
        found.append(Refused(offending, text))
    return found


def secret_values(config: str) -> list[str]:
    """Values in secret positions of a configuration (what the log filter must hide)."""
    values: list[str] = []
    for line in config.splitlines():
        for pattern in SECRET_PATTERNS:
            for match in pattern.finditer(line):
                value = match.group("value").strip("\"'")
                if value and not value.startswith("${"):
                    values.append(value)
    return values


def unified_diff(running: str, candidate: str) -> str:
    lines = difflib.unified_diff(running.splitlines(), candidate.splitlines(),
                                 "running", "candidate", lineterm="")
    text = "\n".join(lines)
    return redact(text + "\n") if text else ""


def native_diff(output: str) -> str:
    """The device's diff without its headers; empty when it found no change."""
    kept = [line.rstrip() for line in output.replace("\r\n", "\n").split("\n")
            if line.strip() and line.strip() not in cli.DIFF_NOISE]
    return redact("\n".join(kept) + "\n") if kept else ""


def known_host_names(host: str, port: int) -> tuple[str, ...]:
    """The names paramiko's SSHClient (under netmiko) looks the device up by: `[host]:port`
    alone unless port 22 (no fallback to the bare host, unlike the NETCONF drivers' check)."""
    return (host,) if port == 22 else (f"[{host}]:{port}",)


def require_known_host(target: DeviceTarget) -> str:
    """The known_hosts file that lists the device; ConnectError when none does."""
    path = target.known_hosts
    opt_out = "or opt out with DCVPN_NO_HOST_KEY_CHECK=1"
    if path is None or not path.is_file():
        raise ConnectError(f"{target.name}: known_hosts file {path} does not exist; add the "
                           f"device's host key {opt_out}")
    try:
        keys = known_hosts(path)
    except (OSError, paramiko.SSHException) as exc:
        raise ConnectError(f"{target.name}: cannot read known_hosts {path}: {exc}") from None
    names = known_host_names(target.host, target.port)
    if not any(keys.lookup(name) for name in names):
        raise ConnectError(
            f"{target.name}: no host key for {names[0]} in {path}; add it (ssh-keyscan -p "
            f"{target.port} {target.host}) {opt_out}")
    return str(path)


@dataclass(frozen=True, slots=True)
class Loaded:
    mode: LoadMode
    url: str  # the candidate file on flash:
    text: str  # what the file holds
    lines: tuple[str, ...]  # MERGE: the configuration lines to send


class IosxeSshDriver:
    platform: ClassVar[Platform] = Platform.IOSXE
    transport: ClassVar[Transport] = Transport.SSH

    def __init__(self, target: DeviceTarget) -> None:
        self.target = target
        self._conn: Any = None
        self._loaded: Loaded | None = None
        self._armed = False  # this driver armed the revert timer that may be pending
        self._pki: pki.IosxePki | None = None  # key and certificates to import (iosxe_pki)
        self._slow = max(SLOW_SECONDS, target.timeout)

    # --- session ----------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.target.name} ({self.target.host}:{self.target.port})"

    def open(self) -> None:
        if self._conn is not None:
            return
        for logger in LOGGERS:
            guard_loggers(logger)
        target = self.target
        if target.password:
            hide([target.password])
        options: dict[str, Any] = {
            "device_type": cli.NETMIKO_DEVICE_TYPE, "host": target.host, "port": target.port,
            "username": target.username or "", "password": target.password or "",
            "timeout": target.timeout, "conn_timeout": target.timeout,
            "auth_timeout": target.timeout, "banner_timeout": target.timeout,
            "allow_agent": False, "use_keys": bool(target.ssh_key),
            "key_file": target.ssh_key, "system_host_keys": False,
            "ssh_strict": target.verify_host_key, "alt_host_keys": target.verify_host_key,
            "global_delay_factor": float(target.options.get("delay_factor", "1")),
        }
        if target.verify_host_key:
            options["alt_key_file"] = require_known_host(target)
        try:
            conn = ConnectHandler(**options)
        except NetmikoAuthenticationException:
            raise ConnectError(f"{self._where}: authentication failed for user "
                               f"{target.username!r}") from None
        except NetmikoTimeoutException as exc:
            text = str(exc)
            if "known_hosts" in text or "does not match" in text:
                raise ConnectError(f"{self._where}: the host key is not the one in "
                                   f"{target.known_hosts}; refusing to connect") from None
            reason = " ".join(text.split())[:200]
            raise ConnectError(f"{self._where}: cannot open an SSH session: {reason}") from None
        except (NetmikoBaseException, paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectError(f"{self._where}: cannot open an SSH session: {exc}") from None
        prompt = str(conn.find_prompt())
        if not prompt.endswith("#"):
            conn.disconnect()
            raise ConnectError(f"{self._where}: user {target.username!r} lands in user exec "
                               f"({prompt!r}); dcvpn needs a privilege 15 account")
        self._conn = conn

    def close(self) -> None:
        conn = self._conn
        if conn is None:
            return
        if self._loaded is not None:
            with contextlib.suppress(DriverError):
                self.discard()
        self._conn = None
        with contextlib.suppress(Exception):  # the session is gone either way
            conn.disconnect()

    def __enter__(self) -> "IosxeSshDriver":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _session(self) -> Any:
        if self._conn is None:
            raise DriverError(f"{self.target.name}: the driver is not open")
        return self._conn

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> str:
        try:
            return str(function(*args, **kwargs))
        except (NetmikoBaseException, paramiko.SSHException, OSError, EOFError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ConnectError(f"{self._where}: {what}: the session to the device broke or "
                               f"did not answer in time ({type(exc).__name__}: "
                               f"{redact(reason)})") from None

    def _send(self, command: str, read_timeout: float | None = None) -> str:
        conn = self._session()
        return self._call(command, conn.send_command, command,
                          read_timeout=read_timeout or self.target.timeout)

    def _ask(self, command: str, read_timeout: float | None = None) -> str:
        """A command that may ask questions first; each gets Return (its default)."""
        conn = self._session()
        prompt = re.escape(str(conn.base_prompt)) + r"[^\n]*#\s*$"
        expect = f"(?:{prompt}|{cli.QUESTION.pattern})"
        timeout = read_timeout or self.target.timeout
        output = self._call(command, conn.send_command, command, expect_string=expect,
                            read_timeout=timeout)
        answers = [output]
        for _ in range(3):
            if not cli.QUESTION.search(answers[-1].rstrip("\n")):
                break
            answers.append(self._call(command, conn.send_command, "", expect_string=expect,
                                      read_timeout=timeout, cmd_verify=False))
        return "\n".join(answers)

    def _check(self, output: str, what: str, failure: type[DriverError]) -> str:
        refused = refused_lines(output)
        if refused:
            details = "; ".join(r.describe() for r in refused)
            raise failure(f"{self.target.name}: cannot {what}: {details}")
        return output

    # --- files on flash: -----------------------------------------------------------------

    def _upload(self, name: str, text: str) -> str:
        url = f"{cli.FLASH}{name}"
        data = text.encode()
        try:
            transfer = SCPConn(self._session(), socket_timeout=self.target.timeout)
            try:
                transfer.scp_client.putfo(io.BytesIO(data), f"{cli.FLASH}/{name}")
            finally:
                transfer.close()
        except scp.SCPException as exc:
            if "not enabled" in str(exc) or cli.SCP_DISABLED in str(exc):
                raise UnsupportedError(f"{self.target.name}: cannot copy {url}: the device's "
                                       "SCP server is off (`ip scp server enable`)") from None
            raise LoadError(f"{self.target.name}: cannot copy {url}: {exc}") from None
        except (NetmikoBaseException, paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectError(f"{self._where}: cannot copy {url} by SCP: {exc}") from None
        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
        answer = self._send(cli.VERIFY_MD5.format(url=url, digest=digest), self._slow)
        if cli.MD5_VERIFIED not in answer:
            self._delete(url)
            raise LoadError(f"{self.target.name}: {url} does not match what was sent (md5 "
                            f"{digest}); the copy was deleted")
        return url

    def _delete(self, url: str) -> None:
        self._send(cli.DELETE.format(url=url))

    def _exists(self, url: str) -> bool:
        answer = self._send(cli.DIR.format(url=url))
        return cli.NO_FILE not in answer and not refused_lines(answer)

    # --- configuration ------------------------------------------------------------------

    def get_running(self) -> str:
        return running_text(self._send(cli.SHOW_RUNNING, self._slow))

    def load_candidate(self, config: str, mode: LoadMode = LoadMode.REPLACE) -> None:
        name = self.target.name
        self.discard()
        config, bundle = pki.split_candidate(config, name)  # drivers.iosxe_pki
        hide(secret_values(config))
        lines: tuple[str, ...] = ()
        if mode is LoadMode.REPLACE:
            text = intended_config(self.get_running(), config, name)
            file = cli.CANDIDATE_FILE
        else:
            lines = tuple(line.rstrip() for line in config.splitlines()
                          if line.strip() and line.strip() not in ("!", "end"))
            if not lines:
                raise LoadError(f"{name}: the merge candidate holds no configuration line")
            text, file = "\n".join([*lines, "end"]) + "\n", cli.MERGE_FILE
        url = self._upload(file, text)
        check = self._send(cli.INCREMENTAL.format(url=url), self._slow)
        refused = refused_lines(check)
        if refused:
            self._delete(url)
            details = "; ".join(r.describe() for r in refused)
            raise LoadError(f"{name}: the device refuses the candidate: {details}; nothing "
                            "was changed")
        self._loaded = Loaded(mode, url, text, lines)
        self._pki = bundle

    def diff(self, unified: bool = True) -> ConfigDiff:
        loaded = self._loaded
        if loaded is None:
            return ConfigDiff(native="", unified="")
        certificates = self._pki_diff()
        if loaded.mode is LoadMode.REPLACE:
            native = self._send(cli.DIFF_FILES.format(first="system:running-config",
                                                      second=loaded.url), self._slow)
        else:
            native = self._send(cli.INCREMENTAL.format(url=loaded.url), self._slow)
        self._check(native, "diff the candidate", DriverError)
        shown = native_diff(native) + certificates
        if not unified and shown:
            return ConfigDiff(native=shown, unified="")
        running = self.get_running()
        if loaded.mode is LoadMode.REPLACE:
            candidate = loaded.text
        else:
            body = running.rstrip("\n").removesuffix("end").rstrip("\n")
            candidate = "\n".join([body, *loaded.lines, "end"]) + "\n"
        return ConfigDiff(native=shown, unified=unified_diff(running, candidate) + certificates)

    def discard(self) -> None:
        loaded, self._loaded = self._loaded, None
        self._pki = None
        if loaded is not None:
            self._delete(loaded.url)

    # --- certificates and key (drivers.iosxe_pki) ---------------------------------------

    def _device_pki(self, bundle: pki.IosxePki) -> pki.DevicePki:
        tp = bundle.trustpoint
        certs = self._send(pki.SHOW_CERTS.format(tp=tp))
        keys = self._send(pki.SHOW_KEY.format(kind=pki.key_type(bundle), tp=tp))
        ca, own = pki.parse_certificates(certs)
        return pki.DevicePki(ca, own, pki.parse_key(keys, tp))

    def _pki_diff(self) -> str:
        bundle = self._pki
        return "" if bundle is None else pki.diff_lines(bundle, self._device_pki(bundle))

    def _import_pki(self) -> None:
        """Import key and certificates when the device lacks them or holds others."""
        bundle = self._pki
        if bundle is None or not pki.needs_import(bundle, self._device_pki(bundle)):
            return
        name, tp = self.target.name, bundle.trustpoint
        password = one_time_password()
        encrypted = encrypt_traditional(bundle.key_pem, password)
        hide([password])
        hide_key(encrypted)
        conn = self._session()
        prompt = re.escape(str(conn.base_prompt)) + r"\([^)\n]*\)#\s*$"
        what = f"import the key and certificates of trustpoint {tp}"
        timeout = self.target.timeout
        self._call(what, conn.config_mode)
        try:
            output = self._call(what, conn.send_command,
                                pki.IMPORT.format(tp=tp, password=password),
                                expect_string=f"(?:{pki.ASK['ca']}|{prompt})",
                                read_timeout=timeout, strip_prompt=False, strip_command=False)
            steps = (("key", bundle.ca_pem), ("cert", encrypted), ("", bundle.cert_pem))
            for ask, (next_ask, text) in zip(("ca", "key", "cert"), steps, strict=True):
                if not re.search(pki.ASK[ask], output):
                    raise LoadError(f"{name}: cannot {what}: {redact(pki.failure_lines(output))}"
                                    "; nothing was changed")
                pattern = f"(?:{pki.ASK[next_ask]}|{prompt})" if next_ask else prompt
                conn.write_channel(self._paste(text, conn.RETURN))
                output = self._call(what, conn.read_until_pattern, pattern=pattern,
                                    read_timeout=timeout)
        finally:
            with contextlib.suppress(DriverError):
                self._call("leave configuration mode", conn.exit_config_mode)
        if pki.IMPORTED not in output:
            raise LoadError(f"{name}: cannot {what}: {redact(pki.failure_lines(output))}; "
                            "nothing was changed")

    @staticmethod
    def _paste(pem: str, newline: str) -> str:
        lines = [ln.rstrip() for ln in pem.strip().splitlines()]
        return newline.join([*lines, pki.END_OF_PASTE]) + newline

    # --- commit, confirm, rollback ------------------------------------------------------

    def has_pending_commit(self) -> bool:
        answer = self._send(cli.SHOW_TIMER)
        if cli.NO_PENDING in answer:
            return False
        if cli.TIMER_ARMED.search(answer):
            return True
        raise DriverError(f"{self.target.name}: cannot tell whether a revert timer runs: "
                          f"{redact(answer.strip())[:200]!r}")

    def _require_archive(self) -> None:
        if cli.ARCHIVE_OFF in self._send(cli.SHOW_ARCHIVE):
            raise UnsupportedError(
                f"{self.target.name}: a confirmed change needs the configuration archive "
                "(`archive` / ` path flash:archive`); the device has none")

    def _checkpoint(self) -> None:
        url = f"{cli.FLASH}{cli.CHECKPOINT_FILE}"
        self._check(self._ask(cli.COPY_RUNNING.format(url=url), self._slow),
                    f"save the running configuration to {url}", CommitError)

    def _write_memory(self) -> None:
        self._check(self._ask(cli.WRITE, self._slow), "save the configuration", CommitError)

    def _replace(self, url: str, timer: DeviceTimer | None) -> None:
        command = cli.REPLACE.format(url=url)
        if timer is not None:
            command += cli.REPLACE_TIMER.format(minutes=timer.value)
        answer = self._ask(command, self._slow)
        name = self.target.name
        if cli.PENDING_EXISTS in answer:
            raise CommitPendingError(f"{name}: a confirmed change is already pending; "
                                     "confirm or roll it back first")
        if cli.ARCHIVE_NEEDED in answer:
            raise UnsupportedError(f"{name}: the device needs the configuration archive for a "
                                   "revert timer")
        refused = refused_lines(answer)
        if refused or cli.RESTORED in answer:
            details = "; ".join(r.describe() for r in refused) or "an error"
            raise LoadError(f"{name}: configure replace stopped at {details}; the device "
                            "restored its previous configuration, nothing was changed")
        if cli.REPLACE_DONE not in answer:
            raise CommitError(f"{name}: configure replace did not report success: "
                              f"{redact(answer.strip())[-300:]!r}")

    def _merge(self, loaded: Loaded, timer: DeviceTimer | None) -> None:
        conn = self._session()
        minutes = timer.value if timer is not None else cli.SAFETY_MINUTES
        command = cli.CONFIGURE_REVERT.format(minutes=minutes)
        try:
            output = self._call(command, conn.send_config_set, list(loaded.lines),
                                config_mode_command=command, read_timeout=self._slow)
        except ValueError as exc:  # netmiko: the device did not enter configuration mode
            raise CommitError(f"{self.target.name}: `{command}` was refused: {exc}") from None
        refused = refused_lines(output)
        if refused:
            with contextlib.suppress(DriverError):
                self._call("leave configuration mode", conn.exit_config_mode)
            self._check(self._send(cli.REVERT_NOW, self._slow), "revert the merge",
                        CommitError)
            details = "; ".join(r.describe() for r in refused)
            raise LoadError(f"{self.target.name}: the device refused {details}; the merge "
                            "was reverted, nothing was changed")
        if timer is None:
            self._check(self._send(cli.CONFIRM), "confirm the merge", CommitError)

    def commit(self, confirm_timeout: int | None = None) -> int | None:
        name = self.target.name
        loaded = self._loaded
        if loaded is None:
            raise CommitError(f"{name}: nothing to commit: no candidate is loaded")
        timer = (device_timer(TimerKind.IOSXE_REVERT, confirm_timeout)
                 if confirm_timeout is not None else None)
        if self.has_pending_commit():
            raise CommitPendingError(
                f"{name}: a confirmed change is already pending (`show archive config "
                "rollback timer`); confirm or roll it back first")
        if timer is not None or loaded.mode is LoadMode.MERGE:
            self._require_archive()
        try:
            self._import_pki()  # before the checkpoint and the replace: see drivers.iosxe_pki
        except DriverError:
            self.discard()
            raise
        self._checkpoint()
        try:
            if loaded.mode is LoadMode.REPLACE:
                self._replace(loaded.url, timer)
            else:
                self._merge(loaded, timer)
        finally:
            self.discard()
        if timer is None:
            self._write_memory()
            return None
        self._armed = True
        return timer.seconds

    def _nothing_pending(self, what: str) -> NoPendingCommitError:
        name = self.target.name
        if self._armed:
            self._armed = False
            return NoPendingCommitError(
                f"{name}: cannot {what}: the revert timer already expired and the device "
                "restored the configuration it had before the commit; the change is not "
                "active (deploy again)")
        return NoPendingCommitError(f"{name}: cannot {what}: no confirmed change is pending "
                                    "(already confirmed, or none was made)")

    def confirm(self) -> None:
        if not self.has_pending_commit():
            raise self._nothing_pending("confirm")
        answer = self._send(cli.CONFIRM)
        if cli.NO_PENDING in answer:
            raise self._nothing_pending("confirm")
        self._check(answer, "confirm", CommitError)
        self._armed = False
        self._write_memory()

    def rollback(self) -> None:
        if self.has_pending_commit():
            answer = self._send(cli.REVERT_NOW, self._slow)
            if cli.NO_PENDING in answer:
                raise self._nothing_pending("roll back")
            self._check(answer, "roll back", CommitError)
            self._armed = False
            return
        if self._armed:
            raise self._nothing_pending("roll back")
        url = f"{cli.FLASH}{cli.CHECKPOINT_FILE}"
        if not self._exists(url):
            raise NoPendingCommitError(f"{self.target.name}: nothing to roll back: no "
                                       f"confirmed change is pending and {url} is missing")
        self._replace(url, None)
        self._write_memory()

    # --- state --------------------------------------------------------------------------

    def get_state(self) -> DeviceState:
        answers = {part: self._check(self._send(command, self._slow), f"run `{command}`",
                                     UnsupportedError)
                   for part, command in cli.STATE_COMMANDS.items()}
        return device_state(answers["ike"], answers["ipsec"], answers["bgp"])
