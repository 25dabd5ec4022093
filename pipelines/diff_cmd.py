"""`dcvpn diff`: the dry run before a change window.

`--offline OUT_OLD` compares a previous `dcvpn render` output with what the model renders now,
with no device at all: per gateway the semantic IPsec/BGP changes (from intent.json) and a
unified diff of every file, secrets masked.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from inventory.topology import CompiledFabric
from pipelines import diff_report, sharding
from pipelines.diff_report import GatewayDiff
from pipelines.exit_codes import Exit
from tasks.intent import INTENT_FILE, gateway_intent
from tasks.render import render_gateway
from tasks.semantic_diff import gateway_changes, unified


class DiffUsageError(Exception):
    pass


def _read_folder(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())
            if p.is_file()}


def offline_diff(compiled: CompiledFabric, old_out: Path, sites: list[str] | None = None,
                 shard: sharding.Shard | None = None) -> list[GatewayDiff]:
    """Compare OUT_OLD/<gateway>/ with the current model's rendering, gateway by gateway."""
    current = {gw.name: (site.name, str(gw.platform)) for site, gw in compiled.gateways()}
    old_gateways = {p.name for p in old_out.iterdir() if p.is_dir()}
    names = sorted(set(current) | old_gateways)
    diffs: list[GatewayDiff] = []
    for name in names:
        if sites is not None and (name not in current or current[name][0] not in sites):
            continue
        if not sharding.holds(shard, name):
            continue
        old_files = _read_folder(old_out / name)
        new_files: dict[str, str] = {}
        new_intent: dict[str, Any] | None = None
        if name in current:
            new_files = render_gateway(compiled, name)
            new_intent = gateway_intent(compiled, name)
        old_intent_text = old_files.pop(INTENT_FILE, None)
        platform = current[name][1] if name in current else "?"
        diff = GatewayDiff(name, platform)
        if old_intent_text is not None:
            old_intent = json.loads(old_intent_text)
            diff.semantic = gateway_changes(name, old_intent, new_intent)
        elif old_files:
            diff.notes.append(f"{old_out / name} has no {INTENT_FILE}: no semantic diff")
        elif new_intent is not None:
            diff.semantic = gateway_changes(name, None, new_intent)
        for file in sorted(set(old_files) | set(new_files)):
            diff.files[file] = unified(old_files.get(file), new_files.get(file),
                                       f"{name}/{file}", labels=("old", "new"))
        diffs.append(diff)
    return diffs


def run(args: argparse.Namespace, compiled: CompiledFabric) -> int:
    if not args.offline:
        raise DiffUsageError(
            "comparing with devices needs the device drivers, which this release does not "
            "have yet; use --offline OUT_OLD to compare with a previous render")
    old_out = Path(args.offline)
    if not old_out.is_dir():
        raise DiffUsageError(f"--offline {old_out}: no such render output folder")
    diffs = offline_diff(compiled, old_out, args.site, getattr(args, "shard", None))
    if args.format == "json":
        text = diff_report.as_json(diffs)
    elif args.format == "markdown":
        text = diff_report.as_markdown(diffs, f"dcvpn diff: {compiled.fabric.fabric.name}")
    else:
        text = diff_report.as_text(diffs)
    sys.stdout.write(text)
    if args.report:
        Path(args.report).write_text(diff_report.as_markdown(
            diffs, f"dcvpn diff: {compiled.fabric.fabric.name}"), encoding="utf-8")
    changed = sum(1 for d in diffs if d.changed)
    print(f"{changed} of {len(diffs)} gateway(s) change", file=sys.stderr)
    return Exit.FAILED if (args.exit_code and changed) else Exit.OK
