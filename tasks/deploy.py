"""Nornir tasks that change devices: diff, commit (confirmed), confirm and rollback.

The candidate is the gateway's rendered file for its platform and transport (CANDIDATE_FILES;
strongSwan: all its rendered files packed into one text, CANDIDATE_BUNDLES),
with `${dcvpn-secret:...}` references resolved only on the way to the device. Nothing a task
returns or raises carries a secret: diffs come masked from the driver, and every text is also
scrubbed of the resolved values themselves.

With a PKI directory (`pki_dir`, tasks.pki.deploy_material) the candidate carries the
gateway's certificates: strongSwan's bundle gets cert, CA, CRL and the key (a
`${dcvpn-secret:pki-key/<gw>}` reference, resolved here like a PSK); IOS-XE's config.cli the
`crypto pki certificate chain` (tasks.render PkiRenderer); JunOS's and IOS-XE ssh's candidates
a PKI section with certificates and key (tasks.pki.deploy_material.with_device_certificates)
that their drivers load (drivers.junos_pki, drivers.iosxe_pki). Without one, certificates are
not part of the candidate and stay on the devices as they are.

Nornir's dry run is honoured: commit/confirm/rollback then change nothing and say what they
would do; `changed` is always the truth (a dry run: "would change").
"""

import contextlib
import hashlib
import inspect
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from nornir.core.task import Result, Task

from drivers.base import ConfigDiff, ConfigDriver, LoadMode
from drivers.errors import DriverError, UnsupportedError
from drivers.nornir_connection import driver_for
from drivers.redact import MASK, hide
from drivers.strongswan_bundle import pack as pack_files
from drivers.xml_parsing import own_dictionary
from inventory.model import Platform, Transport
from tasks.pki.deploy_material import (
    covers,
    resolve_keys,
    strongswan_credentials,
    uses_certificates,
    with_device_certificates,
)
from tasks.pki.files import default_secrets_dir
from tasks.pki.psk import resolved_secrets
from tasks.read_back import reader_for
from tasks.render import render_gateway
from tasks.render_context import SECRET_PREFIX
from tasks.running_intent import ParseError
from tasks.semantic_diff import mask_secrets

# the rendered file each driver loads as its candidate
CANDIDATE_FILES: dict[tuple[Platform, Transport], str] = {
    (Platform.JUNOS, Transport.NETCONF): "config.xml",
    (Platform.IOSXE, Transport.NETCONF): "config.xml",
    (Platform.IOSXE, Transport.SSH): "config.cli",
}
# drivers whose candidate is all the gateway's rendered files in one text
# (drivers/strongswan_bundle.py); the secret references are resolved in the packed text
CANDIDATE_BUNDLES: frozenset[tuple[Platform, Transport]] = frozenset({
    (Platform.STRONGSWAN, Transport.LOCAL),
    (Platform.STRONGSWAN, Transport.SSH),
})
# drivers whose loaded candidate stays loaded, and the configuration locked, until commit or
# discard: a deploy's commit can use the candidate its diff loaded (diff_device hold=True)
# instead of loading and diffing it again, and nobody can change the device in between
HOLDS_CANDIDATE: frozenset[tuple[Platform, Transport]] = frozenset({
    (Platform.JUNOS, Transport.NETCONF),
    (Platform.IOSXE, Transport.NETCONF),
})
HELD = "dcvpn_held_candidate"  # host data key: the HeldCandidate of the host's open driver


@dataclass(frozen=True, slots=True)
class HeldCandidate:
    """A candidate diff_device left loaded: the digest of what was loaded, its diff, and the
    driver (session) holding it; another session (a reconnect) does not hold it."""

    digest: str
    view: dict[str, str]
    owner: object
    text: str  # the rendered candidate, secret references unresolved


def _digest(resolved: str) -> str:
    return hashlib.sha256(resolved.encode()).hexdigest()


def _platform_key(task: Task) -> tuple[Platform, Transport]:
    return Platform(str(task.host.platform)), Transport(str(task.host.get("transport")))


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for value in secrets:
        text = text.replace(value, MASK)
    return mask_secrets(text)


@contextmanager
def _no_secrets(secrets: Sequence[str]) -> Iterator[None]:
    """Re-raise any error with the secrets cut from its message and its chain dropped."""
    try:
        yield
    except Exception as exc:
        exc.args = tuple(_scrub(str(a), secrets) if isinstance(a, str) else a
                         for a in exc.args)
        exc.__cause__ = None
        exc.__suppress_context__ = True
        raise exc.with_traceback(None) from None


def secrets_folder(task: Task, override: str | None = None) -> Path:
    if override:
        return Path(override)
    env = os.environ.get("DCVPN_SECRETS_DIR")
    return Path(env) if env else default_secrets_dir(str(task.host.get("fabric")))


def rendered_candidate(task: Task, pki_dir: str | None = None) -> str:
    own_dictionary()  # a worker thread's first lxml work may be here (drivers.nornir_connection)
    host = task.host
    key = _platform_key(task)
    compiled = host["compiled"]
    pki = Path(pki_dir) if pki_dir and uses_certificates(compiled) else None
    if pki is not None and not covers(pki, host.name):
        pki = None  # the lab's PKI: only its strongSwan gateways (a --pki-dir is checked first)
    if key in CANDIDATE_BUNDLES:
        files = render_gateway(compiled, host.name)
        if pki is not None:
            files.update(strongswan_credentials(pki, host.name))
        return pack_files(files)
    name = CANDIDATE_FILES.get(key)
    if name is None:
        raise UnsupportedError(f"{host.name}: no candidate file for {key[0]} over {key[1]}")
    config = render_gateway(compiled, host.name, pki, only=name)[name]
    return with_device_certificates(key, config, pki, host.name)  # JunOS: drivers.junos_pki


def resolve(task: Task, config: str, secrets_dir: str | None,
            pki_dir: str | None = None) -> tuple[str, list[str]]:
    """The config with its secret references resolved, and the secret values themselves
    (for a private key: its PEM and every base64 line of it)."""
    config, values = resolve_keys(config, Path(pki_dir) if pki_dir else None)
    if SECRET_PREFIX in config:  # resolved_secrets finds the references themselves
        config, found = resolved_secrets(config, secrets_folder(task, secrets_dir))
        values += found
    if not values:
        return config, []
    hide(values)  # client libraries log what they send
    return config, sorted(set(values), key=len, reverse=True)


def _diff_view(diff: ConfigDiff, secrets: Sequence[str]) -> dict[str, str]:
    return {"native": _scrub(diff.native or "", secrets),
            "unified": _scrub(diff.unified, secrets)}


def _shown(view: dict[str, str]) -> str:
    return view["native"] or view["unified"]


def _discard_quietly(driver: ConfigDriver) -> None:
    """Discard after a failure; the failure, not a second one, is what gets reported."""
    with contextlib.suppress(DriverError):
        driver.discard()


@cache
def _takes_unified(kind: type[ConfigDriver]) -> bool:
    """Whether a driver class's diff has the `unified` parameter (drivers registered by a
    site before it existed do not)."""
    return "unified" in inspect.signature(kind.diff).parameters


def _load_and_diff(driver: ConfigDriver, config: str, unified: bool = True) -> ConfigDiff:
    try:
        driver.load_candidate(config, LoadMode.REPLACE)
        if unified or not _takes_unified(type(driver)):
            return driver.diff()
        return driver.diff(unified=False)
    except Exception:
        _discard_quietly(driver)
        raise


def _read_running(driver: ConfigDriver, platform: Platform) -> dict[str, Any] | None:
    """The running configuration read back into intent (tasks.running_intent); None when no
    parser reads this platform. The text itself never leaves the task (it holds secrets)."""
    reader = reader_for(platform)
    if reader is None:
        return None
    return reader.parse(driver.get_running())


def diff_device(task: Task, config: str | None = None, secrets_dir: str | None = None,
                read_running: bool = False, pki_dir: str | None = None,
                hold: bool = False, unified: bool = True) -> Result:
    """Load the candidate, diff it against the running configuration, discard it.

    With read_running, result["running_intent"] is the running configuration read back into
    intent (read before the candidate is loaded), for the semantic diff of `dcvpn diff`; None
    with result["running_error"] when a dcvpn object on the device cannot be read.
    With hold, a changed candidate of a HOLDS_CANDIDATE driver stays loaded and locked for
    commit_device (the caller discards what it does not commit: discard_held).
    Without unified, result["diff"]["unified"] is empty when the device has a native diff.
    """
    text = config if config is not None else rendered_candidate(task, pki_dir)
    resolved, values = resolve(task, text, secrets_dir, pki_dir)
    outcome: dict[str, Any] = {}
    _drop_held(task)
    with _no_secrets(values):
        driver = driver_for(task)
        if read_running:
            try:
                outcome["running_intent"] = _read_running(driver,
                                                          Platform(str(task.host.platform)))
            except ParseError as exc:  # the diffs below still say what would change
                outcome["running_intent"] = None
                outcome["running_error"] = f"{task.host.name}: running configuration: {exc}"
        diff = _load_and_diff(driver, resolved, unified)
        view = _diff_view(diff, values)
        if hold and not diff.empty and _platform_key(task) in HOLDS_CANDIDATE:
            task.host.data[HELD] = HeldCandidate(_digest(resolved), view, driver, text)
        else:
            driver.discard()
    outcome.update(diff=view, changed=not diff.empty)
    return Result(host=task.host, result=outcome, diff=_shown(view), changed=not diff.empty)


def commit_device(task: Task, confirm_timeout: int | None, config: str | None = None,
                  secrets_dir: str | None = None, dry_run: bool | None = None,
                  pki_dir: str | None = None) -> Result:
    """Load, diff and commit with a confirm timeout (seconds); no diff, no commit.

    result: diff, committed, armed_seconds (what the device really armed), dry_run.
    """
    held = task.host.data.pop(HELD, None)
    if config is not None:
        text = config
    elif isinstance(held, HeldCandidate):  # rendered from this run's model by the diff
        text = held.text
    else:
        text = rendered_candidate(task, pki_dir)
    resolved, values = resolve(task, text, secrets_dir, pki_dir)
    dry_run = bool(task.is_dry_run(dry_run))
    with _no_secrets(values):
        driver = driver_for(task)
        if (isinstance(held, HeldCandidate) and held.owner is driver
                and held.digest == _digest(resolved)):
            view = held.view  # loaded and locked since the diff: the very same candidate
            diff = ConfigDiff(native=view["native"], unified=view["unified"])
        else:
            if isinstance(held, HeldCandidate) and held.owner is driver:  # another text
                _discard_quietly(driver)
            diff = _load_and_diff(driver, resolved, unified=False)  # the report: native
            view = _diff_view(diff, values)
        armed: int | None = None
        committed = False
        if dry_run or diff.empty:
            driver.discard()
        else:
            try:
                armed = driver.commit(confirm_timeout)
            except Exception:
                _discard_quietly(driver)
                raise
            committed = True
    outcome: dict[str, Any] = {"diff": view, "committed": committed, "armed_seconds": armed,
                               "dry_run": dry_run}
    return Result(host=task.host, result=outcome, diff=_shown(view), changed=not diff.empty)


def _drop_held(task: Task) -> None:
    held = task.host.data.pop(HELD, None)
    if isinstance(held, HeldCandidate):
        driver = driver_for(task)
        if held.owner is driver:
            _discard_quietly(driver)


def discard_held(task: Task) -> Result:
    """Discard a candidate diff_device(hold=True) left loaded that was never committed (a
    deploy that stopped early); nothing else on the device changes. One loaded by an earlier
    session (before a reconnect) is left: the next replace load replaces it whole."""
    held = task.host.data.pop(HELD, None)
    discarded = False
    if isinstance(held, HeldCandidate):
        driver = driver_for(task)
        if held.owner is driver:
            driver.discard()
            discarded = True
    return Result(host=task.host, result={"discarded": discarded}, changed=False)


def confirm_device(task: Task, dry_run: bool | None = None) -> Result:
    """Confirm the pending confirmed commit; a dry run only says whether one is pending."""
    driver = driver_for(task)
    if task.is_dry_run(dry_run):
        pending = driver.has_pending_commit()
        return Result(host=task.host, result={"pending": pending, "confirmed": False,
                                              "dry_run": True}, changed=pending)
    driver.confirm()
    return Result(host=task.host, result={"pending": False, "confirmed": True,
                                          "dry_run": False}, changed=True)


def rollback_device(task: Task, dry_run: bool | None = None) -> Result:
    """Roll back the pending (or, without one, the last) change; a dry run changes nothing."""
    driver = driver_for(task)
    if task.is_dry_run(dry_run):
        pending = driver.has_pending_commit()
        return Result(host=task.host, result={"pending": pending, "rolled_back": False,
                                              "dry_run": True}, changed=pending)
    driver.rollback()
    return Result(host=task.host, result={"pending": False, "rolled_back": True,
                                          "dry_run": False}, changed=True)
