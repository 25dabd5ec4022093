"""Benchmark: `dcvpn diff --offline` after adding one site to a 500-site hub_spoke fabric.

    python bench/bench_diff.py                     # the README figures, both scenarios
    python bench/bench_diff.py --scenario accept   # one scenario
    python bench/bench_diff.py --json              # results as JSON on stdout
    python bench/bench_diff.py --profile           # cProfile of one diff run (stderr)

The fabric comes from bench/gen_fabric.py (mixed platforms: strongswan, iosxe, junos
round-robin; 2 hubs with 2 gateways each). The 500-site model is rendered once with
`dcvpn render` (untimed); then one site (id 501, one gateway) is added, both models using the
same tunnel pool, and `dcvpn diff -f NEW --offline OLD --format json` runs in a fresh
interpreter, timed from start to exit, fastest of --repeat runs.

Scenarios: `accept` sets fabric.bgp.accept [10.0.0.0/8] (aggregate import filters), `list`
leaves it unset (every gateway's import filter lists every site prefix, so every gateway
changes by design). Issue 6 targets, checked on `accept`: under 3 s wall on the 2-core
reference machine, and changes shown only on the new site's gateway and the hubs' gateways;
`list` is measured and reported only. The figures printed say which gateways changed and why
(the semantic change lines, counted), so a miss is explained, not only flagged. Exit 1 when a
target is missed.
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
from collections import Counter
from pathlib import Path
from typing import Any

from gen_fabric import fabric_yaml, generate, site_name

SITES = 500
TOPOLOGY = "hub_spoke"
HUBS = 2
TARGET_SECONDS = 3.0
CHILD_TIMEOUT = 600
# scenario -> fabric.bgp.accept; targets are checked on the scenarios listed in TARGETED
SCENARIOS: dict[str, tuple[str, ...]] = {"accept": ("10.0.0.0/8",), "list": ()}
TARGETED = ("accept",)


def fabrics(root: Path, accept: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """(old, new): SITES sites, and the same plus one; one tunnel pool for both."""
    new = generate(SITES + 1, TOPOLOGY, hubs=HUBS, mixed_platforms=True, accept=accept)
    old = generate(SITES, TOPOLOGY, hubs=HUBS, mixed_platforms=True, accept=accept)
    old["fabric"]["tunnel_pool"] = new["fabric"]["tunnel_pool"]
    assert new["sites"][:SITES] == old["sites"], "adding a site changed the others"
    paths = root / "old.yaml", root / "new.yaml"
    for path, data in zip(paths, (old, new), strict=True):
        path.write_text(fabric_yaml(data), encoding="utf-8")
    return paths


def _dcvpn(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from pipelines.cli import main; "
            "sys.exit(main(sys.argv[1:]))", *args]


def render_old(fabric: Path, out: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(_dcvpn("render", "-f", str(fabric), "-o", str(out)),
                          capture_output=True, text=True, check=False, timeout=CHILD_TIMEOUT)
    if proc.returncode != 0:
        raise SystemExit(f"dcvpn render failed:\n{proc.stderr}")
    return time.perf_counter() - start


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def diff_once(fabric: Path, old_out: Path) -> tuple[float, float, dict[str, Any]]:
    """(wall, CPU user + sys, the JSON report) of one `dcvpn diff --offline` process."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(_dcvpn("diff", "-f", str(fabric), "--offline", str(old_out),
                                 "--format", "json"),
                          capture_output=True, text=True, check=False, env=env,
                          timeout=CHILD_TIMEOUT)
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"dcvpn diff failed ({proc.returncode}):\n{proc.stderr}")
    doc: dict[str, Any] = json.loads(proc.stdout)
    return wall, cpu, doc


def profile_once(fabric: Path, old_out: Path) -> str:
    """cProfile of the diff in this process (imports excluded)."""
    from pipelines.cli import main  # noqa: PLC0415 - only this mode needs it in-process

    profiler = cProfile.Profile()
    sink = io.StringIO()
    stdout, sys.stdout = sys.stdout, sink
    try:
        profiler.enable()
        main(["diff", "-f", str(fabric), "--offline", str(old_out), "--format", "json"])
        profiler.disable()
    finally:
        sys.stdout = stdout
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(25)
    return text.getvalue()


def summary(doc: dict[str, Any], hubs: set[str], new_site: str) -> dict[str, Any]:
    changed = doc["changed"]
    expected = {g for g in doc["gateways"] if g in hubs or g.startswith(f"{new_site}-")}
    reasons: Counter[str] = Counter()
    for gw in changed:
        if gw in expected:
            continue
        for c in doc["gateways"][gw]["semantic"]:
            reasons[c["change"].split(" ")[0] + " " + c["change"].split(" ")[-2]
                    if c["change"].startswith("accepts") else c["change"]] += 1
    return {
        "gateways": len(doc["gateways"]),
        "changed": len(changed),
        "expected_changed": sorted(expected & set(changed)),
        "unexpected_changed": len(set(changed) - expected),
        "unexpected_reasons": dict(reasons.most_common(5)),
        "files_changed_outside_expected": dict(Counter(
            name for gw in changed if gw not in expected
            for name in doc["gateways"][gw]["files"]).most_common()),
    }


def run_scenario(name: str, root: Path, repeat: int, profile: bool) -> dict[str, Any]:
    hubs = {f"{site_name(i)}-gw{g}" for i in range(1, HUBS + 1) for g in (1, 2)}
    new_site = site_name(SITES + 1)
    folder = root / name
    folder.mkdir()
    old, new = fabrics(folder, SCENARIOS[name])
    render_s = render_old(old, folder / "old-out")
    runs = [diff_once(new, folder / "old-out") for _ in range(max(repeat, 1))]
    if profile:
        print(f"--- profile, scenario {name}", file=sys.stderr)
        print(profile_once(new, folder / "old-out"), file=sys.stderr)
    walls = [w for w, _, _ in runs]
    return {"scenario": name, "accept": list(SCENARIOS[name]), "sites_before": SITES,
            "sites_after": SITES + 1, "topology": TOPOLOGY, "render_old_s": render_s,
            "diff_s": min(walls), "diff_s_all": walls,
            "diff_cpu_s": min(c for _, c, _ in runs), "loadavg": os.getloadavg()[0],
            **summary(runs[0][2], hubs, new_site)}


def print_report(report: dict[str, Any]) -> None:
    accept = ", ".join(report["accept"]) or "unset: every site prefix listed"
    print(f"\n| {SITES}-site {TOPOLOGY} + 1 site, mixed platforms, bgp.accept {accept} | |\n"
          "| --- | ---: |")
    print(f"| `dcvpn diff --offline`, whole process (s), fastest of "
          f"{len(report['diff_s_all'])} | {report['diff_s']:.2f} |")
    print(f"| CPU time of that process, user + sys (s) | {report['diff_cpu_s']:.2f} |")
    print(f"| gateways compared | {report['gateways']} |")
    print(f"| gateways with changes | {report['changed']} |")
    print(f"| of them the new site's and the hubs' | {len(report['expected_changed'])} |")
    print(f"| of them other gateways | {report['unexpected_changed']} |")
    print(f"\nexpected changes on: {', '.join(report['expected_changed'])}")
    if report["unexpected_changed"]:
        print(f"other gateways change because of: {report['unexpected_reasons']}; "
              f"files: {report['files_changed_outside_expected']}")
    print(f"(render of the old fabric, untimed: {report['render_old_s']:.1f} s; load average "
          f"{report['loadavg']:.1f})")


def missed_targets(report: dict[str, Any]) -> list[str]:
    missed = []
    if report["diff_s"] > TARGET_SECONDS:
        missed.append(f"{report['scenario']}: diff took {report['diff_s']:.2f} s "
                      f"(target < {TARGET_SECONDS:.0f} s)")
    if report["unexpected_changed"]:
        missed.append(f"{report['scenario']}: {report['unexpected_changed']} gateways besides "
                      "the new site's and the hubs' change")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="diff runs; the fastest is reported (default 3)")
    parser.add_argument("--scenario", choices=[*SCENARIOS, "both"], default="both",
                        help="accept (fabric.bgp.accept set), list (unset) or both (default)")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of one diff run (stderr)")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if args.scenario == "both" else [args.scenario]
    with tempfile.TemporaryDirectory(prefix="dcvpn-bench-diff-") as tmp:
        reports = [run_scenario(n, Path(tmp), args.repeat, args.profile) for n in names]
    if args.json:
        print(json.dumps(reports, indent=2, sort_keys=True))
    else:
        for report in reports:
            print_report(report)
    missed = [m for r in reports if r["scenario"] in TARGETED for m in missed_targets(r)]
    if missed:
        print(f"target missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
