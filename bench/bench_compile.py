"""Benchmark: YAML load, lint and compile of large generated fabrics.

    python bench/bench_compile.py                 # the two scenarios of the README table
    python bench/bench_compile.py --profile lint  # cProfile of one phase, top functions

Each scenario runs in a fresh interpreter, so its peak RSS (getrusage ru_maxrss) is its own:
interpreter, imports, the loaded model, lint findings and the compiled fabric. The target
(issue 2) is lint + compile under 2 s wall and under 500 MB peak RSS per scenario; the YAML
load (parse + pydantic validation) is reported separately. Exit 1 when a target is missed.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen_fabric import fabric_yaml, generate

from inventory.lint import lint
from inventory.loader import load_fabric
from inventory.topology import compile_fabric

TARGET_SECONDS = 2.0
TARGET_RSS_MB = 500.0
PHASES = ("load", "lint", "compile")


@dataclass(frozen=True)
class Scenario:
    name: str
    topology: str
    sites: int
    mixed: bool = False


SCENARIOS = (
    Scenario("hub_spoke 1000 sites, 2 hubs x 2 gateways", "hub_spoke", 1000),
    Scenario("hub_spoke 1000 sites, mixed platforms", "hub_spoke", 1000, mixed=True),
    Scenario("full_mesh 150 sites", "full_mesh", 150),
)


def _measure(fabric: Path, profile: str | None) -> dict[str, Any]:
    """Child side: time each phase of one fabric file."""
    profiler = cProfile.Profile()
    times: dict[str, float] = {}
    results: dict[str, Any] = {}

    def run(phase: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        if phase == profile:
            profiler.enable()
        value = fn()
        if phase == profile:
            profiler.disable()
        times[phase] = time.perf_counter() - start
        return value

    loaded = run("load", lambda: load_fabric(fabric))
    findings = run("lint", lambda: lint(loaded))
    compiled = run("compile", lambda: compile_fabric(loaded.fabric))
    results["tunnels"] = len(compiled.tunnels)
    results["sessions"] = len(compiled.sessions)
    results["findings"] = sorted({f.code for f in findings})
    results["times"] = times
    results["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if profile:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        results["profile"] = out.getvalue()
    return results


def _run_child(fabric: Path, profile: str | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(fabric)]
    if profile:
        cmd += ["--profile", profile]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    result["process_s"] = wall
    return result


def _table(rows: list[tuple[Scenario, dict[str, Any]]]) -> str:
    lines = [
        "| scenario | tunnels | YAML load (s) | lint (s) | compile (s) | lint + compile (s) "
        "| whole process (s) | peak RSS (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for sc, r in rows:
        t = r["times"]
        lines.append(f"| {sc.name} | {r['tunnels']:,} | {t['load']:.2f} | {t['lint']:.2f} | "
                     f"{t['compile']:.2f} | {t['lint'] + t['compile']:.2f} | "
                     f"{r['process_s']:.2f} | {r['maxrss_mb']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", metavar="FABRIC", help=argparse.SUPPRESS)
    parser.add_argument("--profile", choices=PHASES,
                        help="print the cProfile of this phase for each scenario")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(Path(args.child), args.profile)))
        return 0

    rows: list[tuple[Scenario, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="dcvpn-bench-") as tmp:
        for sc in SCENARIOS:
            fabric = Path(tmp) / f"{sc.topology}-{sc.sites}{'-mixed' if sc.mixed else ''}.yaml"
            fabric.write_text(fabric_yaml(generate(sc.sites, sc.topology,
                                                   mixed_platforms=sc.mixed)), encoding="utf-8")
            result = _run_child(fabric, args.profile)
            rows.append((sc, result))
            if args.profile:
                print(f"== {sc.name}: {args.profile}\n{result['profile']}", file=sys.stderr)

    missed = [
        sc.name for sc, r in rows
        if r["times"]["lint"] + r["times"]["compile"] > TARGET_SECONDS
        or r["maxrss_mb"] > TARGET_RSS_MB
    ]
    if args.json:
        print(json.dumps([{"scenario": sc.name, **{k: v for k, v in r.items() if k != "profile"}}
                          for sc, r in rows], indent=2))
    else:
        print(_table(rows))
        if args.profile:
            print(f"(the {args.profile} times include the profiler's overhead)")
        print(f"\ntarget: lint + compile < {TARGET_SECONDS:.0f} s and peak RSS < "
              f"{TARGET_RSS_MB:.0f} MB per scenario; YAML load (parse + validation) is "
              "reported separately; whole process = interpreter start, imports, all phases")
        for sc, r in rows:
            if r["findings"]:
                print(f"{sc.name}: lint findings {', '.join(r['findings'])}")
    if missed:
        print(f"target missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
