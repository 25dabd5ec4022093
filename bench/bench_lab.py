"""Benchmark: `dcvpn lab up` + `dcvpn validate` + `dcvpn lab down` with real daemons (root).

    python bench/bench_lab.py                  # 3, 6 and 12 sites, full mesh and hybrid
    python bench/bench_lab.py --sites 6 --topology hybrid --format json

Each scenario runs the commands as a user would (fresh interpreters, wall time of each),
on a fabric made with gen_fabric: full_mesh, or hybrid with one hub site of two gateways
(sites alternate between regions eu and us; the hub is in us, so every eu site reaches it
and the other region through it). RSS is the sum of VmRSS of every process the lab started
(charon, zebra, bgpd, bfdd), read after validation, per site and per gateway (the hybrid hub
site runs two gateways); PSS (shared libraries shared out) is shown beside it. Targets
(issue 4): 6 sites up + validated under 15 s, 12 sites under 40 s, under 50 MB RSS per site,
checked per gateway (one full strongSwan + FRR stack). Exit 1 when a target is missed or a
step fails.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gen_fabric import fabric_yaml, generate

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = {6: 15.0, 12: 40.0}
TARGET_RSS_MB = 50.0
SIZES = (3, 6, 12)
TOPOLOGIES = ("full_mesh", "hybrid")


@dataclass(frozen=True)
class Row:
    topology: str
    sites: int
    gateways: int
    tunnels: int
    checks: int
    up_s: float
    validate_s: float
    down_s: float
    rss_mb_per_site: float
    rss_mb_per_gateway: float
    pss_mb_per_site: float
    ok: bool
    note: str

    @property
    def up_validate_s(self) -> float:
        return self.up_s + self.validate_s


def fabric_data(topology: str, sites: int) -> dict[str, Any]:
    if topology == "full_mesh":
        data = generate(sites, "full_mesh", name=f"bfm{sites}")
    else:
        data = generate(sites, "hub_spoke", hubs=1, hub_gateways=2, name=f"bhy{sites}")
        data["fabric"]["topology"] = "hybrid"
    data["fabric"]["bgp"] = {"mode": "ebgp", "timers": {"keepalive": 3, "hold": 9}}
    return data


def _dcvpn(module: str, *argv: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, text=True,
                          capture_output=True, timeout=300, check=False)
    return time.monotonic() - began, done


def _kb(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_kb(pids: list[int]) -> tuple[int, int]:
    """(sum of RSS, sum of PSS): RSS counts shared libraries once per process, PSS shares
    them out among the processes that map them."""
    return (sum(_kb(f"/proc/{p}/status", "VmRSS:") for p in pids),
            sum(_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids))


def run(topology: str, sites: int, work: Path) -> Row:
    data = fabric_data(topology, sites)
    fabric = work / f"{topology}-{sites}.yaml"
    fabric.write_text(fabric_yaml(data))
    lab_dir = work / f"lab-{topology}-{sites}"
    gateways = sum(len(s["gateways"]) for s in data["sites"])
    common = ["-f", str(fabric), "--lab-dir", str(lab_dir), "--format", "json"]
    up_s, up = _dcvpn("pipelines.lab_cmd", "lab", "up", *common, "--timeout", "90")
    try:
        up_data = json.loads(up.stdout or "{}")
        tunnels = sum(len(g["tunnels"]) for g in up_data.get("gateways", {}).values()) // 2
        pids = [p["pid"] for p in json.loads((lab_dir / "state.json").read_text())["processes"]]
        validate_s, val = _dcvpn("pipelines.validate_cmd", "validate", *common)
        rss, pss = memory_kb(pids)
        checks = json.loads(val.stdout or "{}").get("checks", [])
        bad = [c["name"] for c in checks if c["status"] == "fail"]
        ok = up.returncode == 0 and val.returncode == 0
        note = ""
        if up.returncode != 0:
            note = (up.stderr.strip().splitlines() or ["up failed"])[-1]
        elif val.returncode != 0:
            note = f"failed: {', '.join(bad[:5]) or val.stderr.strip()}"
    finally:
        down_s, down = _dcvpn("pipelines.lab_cmd", "lab", "down", "--lab-dir", str(lab_dir))
    ok = ok and down.returncode == 0
    return Row(topology, sites, gateways, tunnels, len(checks), round(up_s, 2),
               round(validate_s, 2), round(down_s, 2), round(rss / 1024 / sites, 1),
               round(rss / 1024 / gateways, 1), round(pss / 1024 / sites, 1), ok, note)


def missed(row: Row) -> list[str]:
    out = []
    target = TARGET_SECONDS.get(row.sites)
    if target is not None and row.up_validate_s > target:
        out.append(f"up+validate {row.up_validate_s:.1f}s > {target:.0f}s")
    if row.rss_mb_per_gateway > TARGET_RSS_MB:
        out.append(f"{row.rss_mb_per_gateway} MB/gateway > {TARGET_RSS_MB:.0f} MB")
    if not row.ok:
        out.append(row.note or "failed")
    return out


def table(rows: list[Row]) -> str:
    lines = ["| topology | sites | gateways | tunnels | checks | up s | validate s | "
             "up+validate s | down s | RSS MB/site | RSS MB/gateway | PSS MB/site | result |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        result = "; ".join(missed(r)) or "ok"
        lines.append(f"| {r.topology} | {r.sites} | {r.gateways} | {r.tunnels} | {r.checks} | "
                     f"{r.up_s:.1f} | {r.validate_s:.1f} | {r.up_validate_s:.1f} | "
                     f"{r.down_s:.1f} | {r.rss_mb_per_site:.1f} | {r.rss_mb_per_gateway:.1f} | "
                     f"{r.pss_mb_per_site:.1f} | {result} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sites", type=int, action="append", help="default: 3, 6 and 12")
    parser.add_argument("--topology", choices=TOPOLOGIES, action="append")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_lab: the lab needs root", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="dcvpn-bench-lab-"))
    work.chmod(0o755)  # FRR runs as user frr and must reach the lab dirs
    rows = []
    try:
        for topology in args.topology or TOPOLOGIES:
            for sites in args.sites or SIZES:
                row = run(topology, sites, work)
                print(f"bench_lab: {topology} {sites} sites: up {row.up_s:.1f}s, validate "
                      f"{row.validate_s:.1f}s, down {row.down_s:.1f}s, "
                      f"{row.rss_mb_per_gateway} MB RSS/gateway", file=sys.stderr)
                rows.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.format == "json":
        print(json.dumps([{**asdict(r), "missed": missed(r)} for r in rows], indent=2))
    else:
        print(table(rows))
    return 1 if any(missed(r) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
