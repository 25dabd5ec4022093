"""`dcvpn diff --offline`: a previous `dcvpn render` output against what the model renders now.

Per gateway: the semantic IPsec/BGP changes (its old intent.json against the model's intent)
and a unified diff of every file, secrets masked. Every gateway is rendered again: a template
or renderer change must show even where the model did not change.

A large fabric is compared in worker processes, one per core. They are forked after the
model is compiled, so they inherit it and receive only gateway names; the diffs come back in
the order of the names, the same as one process makes them. A fork is made only where it is
safe (a platform that forks, no other thread running) and worth it (POOL_MIN_GATEWAYS).
"""

import json
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

from inventory.topology import CompiledFabric
from pipelines import sharding
from pipelines.diff_report import GatewayDiff
from tasks.intent import INTENT_FILE, gateway_intent
from tasks.render import environment, render_gateway
from tasks.semantic_diff import gateway_changes, unified

POOL_MIN_GATEWAYS = 64  # below this, starting workers costs more than they save
MAX_WORKERS = 8
CHUNKS_PER_WORKER = 4  # smaller chunks even out gateways of very different sizes (hubs)

# What the workers compare: set before they are forked, read by _compare.
_Job = tuple[CompiledFabric, Path, dict[str, tuple[str, str]]]
_job: _Job | None = None


def _read_folder(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())
            if p.is_file()}


def _compare(name: str) -> GatewayDiff:
    """One gateway: OUT_OLD/<name>/ against its rendering now (absent from either side: all
    files new or removed)."""
    assert _job is not None, "offline_diff sets the job first"
    compiled, old_out, current = _job
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
    return diff


def _compile_templates() -> None:
    env = environment()
    for name in env.list_templates(extensions=["j2"]):
        env.get_template(name)


def workers_for(gateways: int) -> int:
    """Worker processes for comparing this many gateways (1: compare in this process)."""
    if gateways < POOL_MIN_GATEWAYS or threading.active_count() > 1 \
            or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, MAX_WORKERS))


def offline_diff(compiled: CompiledFabric, old_out: Path, sites: list[str] | None = None,
                 shard: sharding.Shard | None = None) -> list[GatewayDiff]:
    """Compare OUT_OLD/<gateway>/ with the current model's rendering, gateway by gateway
    (sorted by name; `sites` and `shard` select gateways of the model)."""
    global _job  # noqa: PLW0603 - handed to forked workers by inheritance, reset below
    current = {gw.name: (site.name, str(gw.platform)) for site, gw in compiled.gateways()}
    old_gateways = {p.name for p in old_out.iterdir() if p.is_dir()}
    names = [name for name in sorted(set(current) | old_gateways)
             if (sites is None or (name in current and current[name][0] in sites))
             and sharding.holds(shard, name)]
    workers = workers_for(len(names))
    _job = (compiled, old_out, current)
    try:
        if workers == 1:
            return [_compare(name) for name in names]
        _compile_templates()  # once here, not once in every worker
        chunk = max(1, len(names) // (workers * CHUNKS_PER_WORKER))
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_compare, names, chunksize=chunk)
    finally:
        _job = None
