"""`dcvpn diff`: the dry run before a change window.

Against the devices (default): every gateway (or `--site`, `--shard`) gets its rendered
candidate loaded, diffed and discarded through its driver (tasks.deploy.diff_device, Nornir
threads, at most `--workers` at once); per gateway the report holds the semantic IPsec/BGP
changes (the running configuration read back into intent, tasks.read_back, against the
model's), the device's native diff and the driver's unified diff of running vs candidate,
secrets masked. Nothing on any device changes: the candidate is always discarded and the
configuration unlocked. `--lab` targets the staging lab's devices (<lab dir>/devices.json).
`--pki-dir` (default with --lab: the lab's own PKI) adds the certificates to the candidates:
a renewed certificate shows as a change (subject, serial, validity), a key only as
`<private key>`.
A device that cannot be reached or compared is reported as such; the others still are.

`--offline OUT_OLD` compares a previous `dcvpn render` output with what the model renders now,
with no device at all: per gateway the semantic IPsec/BGP changes (from intent.json) and a
unified diff of every file, secrets masked.

Exit: 0, or 1 with --exit-code when anything would change; 3 when any device failed.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nornir.core import Nornir
from nornir.core.inventory import ConnectionOptions, Host

from drivers.nornir_connection import CONNECTION
from inventory.model import Platform, Transport
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import diff_report, sharding
from pipelines.diff_report import GatewayDiff
from pipelines.exit_codes import Exit
from pipelines.fleet import make_nornir
from pipelines.offline_diff import offline_diff as offline_diff  # noqa: PLC0414 - re-export
from tasks.intent import gateway_intent
from tasks.lab_devices import LabDevice, LabDevicesError, lab_secrets_dir, load_lab_devices
from tasks.pki.errors import PkiError
from tasks.running_intent import device_view
from tasks.semantic_diff import gateway_changes

# The device path's own modules (drivers, PKI material, readers: ~0.2 s) are imported where
# it uses them, so `dcvpn diff --offline` does not load them.

DEFAULT_WORKERS = 16
SECRETS_ENV = "DCVPN_SECRETS_DIR"


class DiffUsageError(Exception):
    pass


def _use_lab_device(host: Host, device: LabDevice) -> None:
    """Point a Nornir host at its lab device (address, credentials, the lab's known_hosts)."""
    t = device.target
    host.hostname, host.port = t.host, t.port
    host.username, host.password = t.username, t.password
    extras: dict[str, Any] = {"transport": str(device.transport), "timeout": t.timeout,
                              "no_host_key_check": not t.verify_host_key, **t.options}
    if t.known_hosts is not None:
        extras["known_hosts"] = str(t.known_hosts)
    host.connection_options[CONNECTION] = ConnectionOptions(extras=extras)
    host.data["transport"] = str(device.transport)


def _lab_nornir(nr: Nornir, lab_dir: Path) -> tuple[Nornir, list[GatewayDiff]]:
    """The hosts the lab runs, pointed at their devices; the others reported as failed."""
    try:
        devices = load_lab_devices(lab_dir)
    except LabDevicesError as exc:
        raise DiffUsageError(str(exc)) from None
    missing = []
    for name, host in nr.inventory.hosts.items():
        if name in devices:
            _use_lab_device(host, devices[name])
        else:
            missing.append(GatewayDiff(name, str(host.platform),
                                       error=f"not in the lab's {lab_dir}/devices.json"))
    return nr.filter(filter_func=lambda h: h.name in devices), missing


def _gateway_diff(compiled: CompiledFabric, host: Host, outcome: dict[str, Any]
                  ) -> GatewayDiff:
    from tasks.deploy import CANDIDATE_FILES  # noqa: PLC0415 - device path only
    from tasks.read_back import reader_for  # noqa: PLC0415 - device path only

    platform = Platform(str(host.platform))
    diff = GatewayDiff(host.name, str(platform), native=outcome["diff"]["native"])
    file = CANDIDATE_FILES.get((platform, Transport(host.data["transport"])), "files")
    diff.files[file] = outcome["diff"]["unified"]
    reader = reader_for(platform)
    running = outcome.get("running_intent")
    if outcome.get("running_error"):
        diff.notes.append(f"{outcome['running_error']}: no semantic diff")
        return diff
    if reader is None or running is None:
        diff.notes.append(f"no parser reads {platform} configurations back: no semantic diff")
        return diff
    intended = gateway_intent(compiled, host.name)
    diff.semantic = gateway_changes(host.name, device_view(running, reader.readback),
                                    device_view(intended, reader.readback))
    return diff


def _failure(host: Host, exc: BaseException | None, result: object) -> GatewayDiff:
    lines = str(exc if exc is not None else result).strip().splitlines()
    reason = (lines[0] if exc is not None else lines[-1]) if lines else "failed"
    if host.name not in reason:
        reason = f"{host.name}: {reason}"
    return GatewayDiff(host.name, str(host.platform), error=reason)


def device_diff(fabric_file: str, compiled: CompiledFabric, sites: Sequence[str] | None = None,
                shard: sharding.Shard | None = None, lab_dir: Path | None = None,
                workers: int = DEFAULT_WORKERS, pki_dir: Path | None = None
                ) -> list[GatewayDiff]:
    """Diff every selected gateway against its device; nothing is changed on any device.
    With pki_dir the candidates carry the certificates (tasks.pki.deploy_material)."""
    from tasks.deploy import diff_device  # noqa: PLC0415 - device path only

    names = [gw.name for site, gw in compiled.gateways()
             if (sites is None or site.name in sites) and sharding.holds(shard, gw.name)]
    nr = make_nornir(fabric_file, compiled, workers=min(max(workers, 1), max(len(names), 1)))
    nr = nr.filter(filter_func=lambda h: h.name in names)
    diffs: list[GatewayDiff] = []
    secrets = None
    if lab_dir is not None:
        nr, diffs = _lab_nornir(nr, lab_dir)
        # the keys the lab's gateways were loaded with, unless DCVPN_SECRETS_DIR says otherwise
        found = None if os.environ.get(SECRETS_ENV) else lab_secrets_dir(lab_dir)
        secrets = str(found) if found is not None else None
    try:
        results = nr.run(task=diff_device, read_running=True, secrets_dir=secrets,
                         pki_dir=str(pki_dir) if pki_dir else None)
    finally:
        nr.close_connections()
    for name in sorted(results):
        host = nr.inventory.hosts[name]
        res = results[name][0]
        if res.failed or not isinstance(res.result, dict):
            diffs.append(_failure(host, res.exception, res.result))
        else:
            diffs.append(_gateway_diff(compiled, host, res.result))
    return sorted(diffs, key=lambda d: d.gateway)


def _lab_dir(args: argparse.Namespace, compiled: CompiledFabric) -> Path | None:
    from tasks.validate_strongswan import default_lab_dir  # noqa: PLC0415 - device path only

    if not getattr(args, "lab", False):
        return None
    if getattr(args, "lab_dir", None):
        return Path(args.lab_dir)
    return default_lab_dir(compiled.fabric.fabric.name)


def _pki_dir(args: argparse.Namespace, compiled: CompiledFabric, lab_dir: Path | None,
             shard: sharding.Shard | None) -> Path | None:
    """--pki-dir, or the lab's own PKI (certificate fabrics), checked before any device."""
    from tasks.pki.deploy_material import (  # noqa: PLC0415 - device path only
        check_pki_dir,
        choose_pki_dir,
        not_installed,
    )

    names = [gw.name for site, gw in compiled.gateways()
             if (args.site is None or site.name in args.site) and sharding.holds(shard, gw.name)]
    try:
        choice = choose_pki_dir(compiled, getattr(args, "pki_dir", None), lab_dir)
        if choice.path is not None:
            check_pki_dir(compiled, choice.path, names, strict=choice.strict)
    except PkiError as exc:
        raise DiffUsageError(f"--pki-dir: {exc}") from None
    if choice.path is not None:
        for line in not_installed(compiled, names, choice.path):
            print(f"note: {line}", file=sys.stderr)
    return choice.path


def run(args: argparse.Namespace, compiled: CompiledFabric) -> int:
    shard = getattr(args, "shard", None)
    if args.offline:
        if getattr(args, "lab", False):
            raise DiffUsageError("--offline compares with a render output, not with the lab: "
                                 "give one of --offline and --lab")
        old_out = Path(args.offline)
        if not old_out.is_dir():
            raise DiffUsageError(f"--offline {old_out}: no such render output folder")
        diffs = offline_diff(compiled, old_out, args.site, shard)
    else:
        workers = getattr(args, "workers", None) or DEFAULT_WORKERS
        if workers < 1:
            raise DiffUsageError(f"--workers must be at least 1, not {workers}")
        lab_dir = _lab_dir(args, compiled)
        if lab_dir is not None:  # as `dcvpn lab up` renders it: strongSwan on kernel-libipsec
            from tasks.validate_strongswan import local_fabric  # noqa: PLC0415 - device path

            compiled = compile_fabric(local_fabric(compiled.fabric)[0])
        diffs = device_diff(args.fabric, compiled, args.site, shard, lab_dir, workers,
                            _pki_dir(args, compiled, lab_dir, shard))
    title = f"dcvpn diff: {compiled.fabric.fabric.name}"
    if args.format == "json":
        text = diff_report.as_json(diffs)
    elif args.format == "markdown":
        text = diff_report.as_markdown(diffs, title)
    else:
        text = diff_report.as_text(diffs)
    sys.stdout.write(text)
    if args.report:
        Path(args.report).write_text(diff_report.as_markdown(diffs, title), encoding="utf-8")
    changed = sum(1 for d in diffs if d.changed)
    failed = [d.gateway for d in diffs if d.failed]
    print(f"{changed} of {len(diffs)} gateway(s) change", file=sys.stderr)
    if failed:
        print(f"{len(failed)} gateway(s) could not be compared: {', '.join(failed)}",
              file=sys.stderr)
        return Exit.DEVICE
    return Exit.FAILED if (args.exit_code and changed) else Exit.OK
