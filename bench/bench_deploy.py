"""Benchmark: `dcvpn deploy` to a fleet of emulated gateways vs a deploy to one (issue 6).

    python bench/bench_deploy.py                       # 200 gateways, --workers 50
    python bench/bench_deploy.py --gateways 20 --workers 10 --json

Fabric: gen_fabric's hub_spoke, 2 hub sites of 2 gateways each (1 below 8 gateways) and
single-gateway spokes, sites alternating between regions eu and us; gateways alternate junos
and iosxe NETCONF; PSK authentication (keys made here, in <lab dir>/secrets).

Emulators: the lab's emulator supervisor (python -m lab.emulators.supervisor), a process of
its own that hosts every gateway on its own 127.0.0.1 port in one event loop, one PeerRegistry
(a tunnel is up when both committed configurations agree) and one IOS-XE YANG load (libyang)
shared by its IOS-XE devices. The bench writes devices.json and known_hosts as `dcvpn lab up`
does, so `dcvpn deploy --lab --lab-dir DIR` reaches them with host keys verified.

Runs, each `dcvpn deploy` a fresh process as a user runs it (wall time, peak RSS and CPU of
that process from wait4 in a small runner process; the emulator host's CPU meanwhile), in
--rounds rounds, each on a new emulator host (every device at its factory configuration):
  fleet      every gateway: diff, then per wave commit-confirm, health gate, confirm
  again      the same deploy once more: no changes (first round only)
  single-*   one junos spoke and one iosxe spoke put back to their factory configuration
             (through the driver, not timed), then `dcvpn deploy --site S`: the same flow for
             one device, whose gate reads the hub gateways it peers with
With --accept RANGE the fabric sets bgp.accept: each gateway's import filter holds the ranges
instead of every site prefix (without it a gateway's configuration grows with the fabric:
each of 200 gateways carries a 198-entry prefix list, so the fleet's work grows with the
square of its size). Per-phase times come from the deploy's JSON report (`timings`). The
target (issue 6): the fleet deploy under 6x the single-device deploy, checked with the
fastest fleet deploy against the fastest single-device deploy of all rounds (on a shared
machine each run is slowed by whatever else runs; the fastest of several is the least
disturbed; medians are shown too).
Every wait is bounded; only processes started here are stopped, by PID. Exit 0 when every run
ended as expected and the target is met, 1 otherwise, 2 for bad options or a host that does
not start.
"""

import argparse
import ipaddress
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gen_fabric import fabric_yaml, generate

ROOT = Path(__file__).resolve().parent.parent
FABRIC = "dbdeploy"
USERNAME = "bench"
TARGET_RATIO = 6.0
PLATFORMS = ("junos", "iosxe")
STARTUP_BOUND = 300.0  # seconds for the emulator host to listen on every port
STOP_BOUND = 30.0
POLL = 0.05
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The bench cannot go on (a host that does not start, a run past its bound)."""


# --- the fabric -----------------------------------------------------------------------------

def fabric_data(gateways: int, accept: tuple[str, ...] = ()) -> dict[str, Any]:
    """hub_spoke with `gateways` gateways: 2 hubs x 2 gateways (1 hub below 8 gateways);
    accept: fabric.bgp.accept (none: every import filter lists every site prefix)."""
    hubs = 2 if gateways >= 8 else 1
    data = generate(gateways - hubs, "hub_spoke", hubs=hubs, hub_gateways=2, name=FABRIC,
                    accept=accept)
    number = 0
    for site in data["sites"]:
        for gw in site["gateways"]:
            gw["platform"], gw["transport"] = PLATFORMS[number % len(PLATFORMS)], "netconf"
            number += 1
    data["fabric"]["auth"] = {"method": "psk"}
    return data


def single_sites(data: dict[str, Any]) -> dict[str, str]:
    """platform -> the last spoke site whose gateway has it (the single-device deploys)."""
    hubs = set(data["fabric"]["hubs"])
    found: dict[str, str] = {}
    for site in data["sites"]:
        if site["name"] not in hubs:
            found[site["gateways"][0]["platform"]] = site["name"]
    return found


# --- the emulator host ----------------------------------------------------------------------

def _proc_field(pid: int, name: str) -> int:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a running process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass(frozen=True)
class Host:
    proc: "subprocess.Popen[bytes]"
    lab_dir: Path
    devices: dict[str, dict[str, Any]]
    startup_s: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return _cpu_seconds(self.pid)

    def peak_rss_kb(self) -> int:
        return _proc_field(self.pid, "VmHWM:")

    def rss_kb(self) -> int:
        return _proc_field(self.pid, "VmRSS:")


def _stop(proc: "subprocess.Popen[Any]") -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_BOUND)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_BOUND)


@contextmanager
def emulator_host(lab_dir: Path, data: dict[str, Any], password: str) -> Iterator[Host]:
    """The lab's emulator supervisor hosting every gateway of `data`; devices.json and
    known_hosts written in lab_dir. Stopped (SIGTERM, then SIGKILL, by PID) on exit."""
    from lab.emulators.supervisor_files import (  # noqa: PLC0415
        LOG_FILE,
        LabEmulator,
        folder_of,
        read_ready,
        write_spec,
    )
    from tasks.lab_devices import write_lab_devices  # noqa: PLC0415

    emulators = [LabEmulator(gw["name"], gw["platform"], gw["transport"])
                 for site in data["sites"] for gw in site["gateways"]]
    folder = folder_of(lab_dir)
    shutil.rmtree(folder, ignore_errors=True)  # a former round's host (its devices' state)
    folder.mkdir(mode=0o700, parents=True)
    write_spec(lab_dir, FABRIC, emulators, USERNAME, password, 1.0)
    began = time.monotonic()
    log = (folder / LOG_FILE).open("wb")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    try:
        proc = subprocess.Popen([sys.executable, "-m", "lab.emulators.supervisor",
                                 "--lab-dir", str(lab_dir)], cwd=folder, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    finally:
        log.close()
    try:
        ready = None
        while ready is None and time.monotonic() - began < STARTUP_BOUND:
            if proc.poll() is not None:
                tail = (folder / LOG_FILE).read_text(errors="replace").strip().splitlines()
                raise BenchError(f"the emulator host exited ({proc.returncode}): "
                                 f"{tail[-1] if tail else 'no output'}")
            time.sleep(POLL)
            ready = read_ready(lab_dir, proc.pid)
        if ready is None:
            raise BenchError(f"the emulator host did not listen within {STARTUP_BOUND:.0f}s")
        startup = time.monotonic() - began
        known = lab_dir / "known_hosts"
        known.write_text("".join(ready[e.gateway].known_hosts + "\n" for e in emulators))
        devices = {e.gateway: {"platform": e.platform, "transport": e.transport,
                               "host": ready[e.gateway].host, "port": ready[e.gateway].port,
                               "username": USERNAME, "password": password,
                               "known_hosts": str(known)} for e in emulators}
        write_lab_devices(lab_dir, FABRIC, devices)
        yield Host(proc, lab_dir, devices, startup)
    finally:
        _stop(proc)


# --- factory reset of one device (the single-device deploys) -------------------------------

def _driver(host: Host, gateway: str) -> Any:
    from drivers.base import DeviceTarget, driver_class  # noqa: PLC0415
    from inventory.model import Platform, Transport  # noqa: PLC0415

    device = host.devices[gateway]
    target = DeviceTarget(name=gateway, host=device["host"], port=device["port"],
                          username=device["username"], password=device["password"],
                          known_hosts=Path(device["known_hosts"]), timeout=60.0)
    return driver_class(Platform(device["platform"]), Transport(device["transport"]))(target)


NETCONF_BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"


def running_config(host: Host, gateway: str) -> str:
    """The running configuration as the driver loads it back (IOS-XE: inside <config>)."""
    driver = _driver(host, gateway)
    driver.open()
    try:
        text = str(driver.get_running())
    finally:
        driver.close()
    if host.devices[gateway]["platform"] == "iosxe":
        text = f'<config xmlns="{NETCONF_BASE}">{text}</config>'
    return text


def put_back(host: Host, gateway: str, config: str) -> None:
    """Replace the device's configuration with `config` (a plain commit, no timer)."""
    from drivers.base import LoadMode  # noqa: PLC0415

    driver = _driver(host, gateway)
    driver.open()
    try:
        driver.load_candidate(config, LoadMode.REPLACE)
        driver.commit(None)
    finally:
        driver.close()


# --- one `dcvpn deploy` ---------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    name: str
    gateways: int  # targeted
    wall_s: float
    peak_rss_mb: float
    cpu_s: float  # the dcvpn process
    host_cpu_s: float  # the emulator host meanwhile
    exit_code: int
    outcome: str
    changed: int
    confirmed: int
    waves: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""
    round: int = 1


# Runs one command and reports its wall time, peak RSS and CPU: wait4's ru_maxrss of a child also
# counts the RSS its parent had when it forked (exec keeps it), so the command is started from
# this small process, not from the bench (which holds big parsed reports).
RUNNER = """
import os, subprocess, sys, time
out, bound, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
began = time.monotonic()
proc = subprocess.Popen(argv)
while True:
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid == proc.pid:
        break
    if time.monotonic() - began > bound:
        proc.kill()
    time.sleep(0.02)
wall = time.monotonic() - began
with open(out, "w") as fh:
    fh.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime} {wall}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_deploy(name: str, host: Host, fabric: Path, work: Path, bound: float,
               extra: Sequence[str], profile: bool = False, number: int = 1) -> Run:
    report = work / f"report-{name}-{number}.json"
    out = work / f"deploy-{name}-{number}.out"
    usage_file = work / f"usage-{name}-{number}.txt"
    argv = [sys.executable, "-m", "pipelines.cli", "deploy", "-f", str(fabric), "--lab",
            "--lab-dir", str(host.lab_dir), "--secrets-dir", str(host.lab_dir / "secrets"),
            "--report", str(report), "--state", str(work / "state.json"), "--format",
            "text", *extra]
    if profile:  # py-spy samples the GIL holder; collapsed stacks (flamegraph.pl, speedscope)
        argv = [_py_spy(), "record", "--gil", "--nonblocking", "--format", "raw", "--rate", "100",
                "--output",
                str(work / f"profile-{name}.txt"), "--", *argv]
    cpu_before = host.cpu()
    sampler = None
    if profile:  # the emulator host too, until the deploy ends (SIGINT makes py-spy write)
        sampler = subprocess.Popen(
            [_py_spy(), "record", "--nonblocking", "--format", "raw", "--rate", "100",
             "--output", str(work / f"profile-{name}-emulators.txt"), "--pid", str(host.pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    began = time.monotonic()
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-I", "-c", RUNNER, str(usage_file),
                                 str(bound), *argv], cwd=work, stdin=subprocess.DEVNULL,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        proc.wait(bound + STOP_BOUND)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_BOUND)
        raise BenchError(f"{name}: dcvpn deploy ran past {bound:.0f}s") from None
    if sampler is not None:
        sampler.send_signal(signal.SIGINT)
        try:
            sampler.wait(STOP_BOUND)
        except subprocess.TimeoutExpired:
            sampler.kill()
            sampler.wait(STOP_BOUND)
    if time.monotonic() - began > bound:
        raise BenchError(f"{name}: dcvpn deploy ran past {bound:.0f}s (killed)")
    host_cpu = host.cpu() - cpu_before
    try:
        maxrss_kb, cpu, wall_s = usage_file.read_text().split()
    except (OSError, ValueError):
        raise BenchError(f"{name}: the runner reported no usage") from None
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        tail = out.read_text(errors="replace").strip().splitlines()
        raise BenchError(f"{name}: no deploy report ({exc}); "
                         f"{tail[-1] if tail else 'no output'}") from None
    devices = data["devices"].values()
    return Run(name, len(data["devices"]), round(float(wall_s), 2),
               round(int(maxrss_kb) / 1024, 1),
               round(float(cpu), 2), round(host_cpu, 2),
               proc.returncode, data["outcome"],
               sum(1 for d in devices if d["diff"] and d["diff"]["changed"]),
               sum(1 for d in devices if d["outcome"] == "confirmed"),
               [{"number": w["number"], "region": w["region"], "gateways": len(w["gateways"]),
                 "outcome": w["outcome"], "timings": w.get("timings", {}),
                 "health_rounds": (w["health"] or {}).get("attempts")}
                for w in data["waves"]],
               data.get("timings", {}), data["message"] if proc.returncode else "", number)


# --- the figures ----------------------------------------------------------------------------

EXPECTED = {"fleet": "ok", "again": "no-changes"}


def problems(runs: Sequence[Run]) -> list[str]:
    out = []
    for r in runs:
        want = EXPECTED.get(r.name, "ok")
        if r.exit_code != 0 or r.outcome != want:
            out.append(f"{r.name}: exit {r.exit_code}, {r.outcome} (want {want}) {r.error}")
        elif want == "ok" and r.confirmed != r.gateways:
            out.append(f"{r.name}: {r.confirmed} of {r.gateways} gateway(s) confirmed")
    return out


def ratio(runs: Sequence[Run], pick: Any = min) -> float | None:
    """The fleet deploy's wall time over the single-device deploy's: the fastest of each
    (pick=min; each run is as fast as the shared machine let it be) or their medians."""
    fleets = [r.wall_s for r in runs if r.name == "fleet"]
    singles = [r.wall_s for r in runs if r.name.startswith("single-")]
    if not fleets or not singles:
        return None
    return round(float(pick(fleets)) / float(pick(singles)), 2)


def summary(runs: Sequence[Run], host: dict[str, Any], settings: dict[str, Any]
            ) -> dict[str, Any]:
    r = ratio(runs)
    missed = problems(runs)
    if r is not None and r >= TARGET_RATIO:
        missed.append(f"fleet deploy {r}x the single-device deploy (target < "
                      f"{TARGET_RATIO:g}x)")
    return {"settings": settings, "runs": [asdict(x) for x in runs], "emulator_host": host,
            "fleet_vs_single": r, "fleet_vs_single_median": ratio(runs, statistics.median),
            "target_ratio": TARGET_RATIO, "missed": missed}


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(result: dict[str, Any]) -> str:
    runs = result["runs"]
    fleet = min((r for r in runs if r["name"] == "fleet"), key=lambda r: r["wall_s"],
                default=None)
    singles = [r["wall_s"] for r in runs if r["name"].startswith("single-")]
    lines = ["| run | round | gateways | changed | waves | wall s | vs fastest single | "
             "dcvpn peak RSS MB | dcvpn CPU s | emulator host CPU s | outcome |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        vs = f"{r['wall_s'] / min(singles):.2f}x" if singles else "-"
        lines.append(f"| {r['name']} | {r['round']} | {r['gateways']} | {r['changed']} | "
                     f"{len(r['waves'])} | {r['wall_s']:.2f} | {vs} | {r['peak_rss_mb']:.0f} | "
                     f"{r['cpu_s']:.1f} | {r['host_cpu_s']:.1f} | {r['outcome']} |")
    host = result["emulator_host"]
    settings = result["settings"]
    accept = ", ".join(settings.get("accept") or [])
    lines += ["", f"Fabric: {settings['sites']} sites, {settings['gateways']} gateways, "
              + (f"bgp.accept [{accept}] (each import filter: the ranges)." if accept else
                 f"no bgp.accept (each import filter lists all {settings['sites']} site "
                 "prefixes).")]
    lines += ["", f"Emulator host: {host['emulators']} emulators in one process, listening after "
              f"{host['startup_s']:.1f}s, peak RSS {host['peak_rss_mb']:.0f} MB."]
    if fleet is not None:
        sizes = ", ".join(str(w["gateways"]) for w in fleet["waves"])
        lines += ["", f"Fleet waves: {len(fleet['waves'])} ({sizes} gateways; at most "
                  f"{result['settings']['workers']} a wave, one hub gateway a wave, regions "
                  "apart)."]
        t = fleet["timings"]
        lines += ["", f"Phases of the fastest fleet deploy (round {fleet['round']}):", "",
                  "| fleet phase | gateways | seconds | health rounds |",
                  "|---|---:|---:|---:|",
                  f"| prepare (load, lint, compile, inventory) | - | {_f(t.get('prepare'))} | - |",
                  f"| diff | {fleet['gateways']} | {_f(t.get('diff'))} | - |"]
        for w in fleet["waves"]:
            wt = w["timings"]
            where = f"wave {w['number']} ({w['region'] or 'no region'})"
            lines += [f"| {where} commit | {w['gateways']} | {_f(wt.get('commit'))} | - |",
                      f"| {where} health gate | | {_f(wt.get('health'))} | "
                      f"{w['health_rounds'] or '-'} |",
                      f"| {where} confirm | | {_f(wt.get('confirm'))} | - |"]
    r = result["fleet_vs_single"]
    verdict = ("missed: " + "; ".join(result["missed"])) if result["missed"] else "ok"
    rounds = result["settings"]["rounds"]
    lines += ["", f"Medians over {rounds} round(s): fleet / single-device deploy "
              f"{_f(result['fleet_vs_single_median'])}x.",
              f"Fastest fleet deploy / fastest single-device deploy over {rounds} round(s): "
              f"{_f(r)}x (target < {result['target_ratio']:g}x). Result: {verdict}"]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------

def _py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise BenchError("--profile needs py-spy (pip install py-spy)")
    return found


def bench(gateways: int, workers: int, bound: float, work: Path,
          progress: Any, profile: bool = False, rounds: int = 1,
          accept: tuple[str, ...] = ()) -> dict[str, Any]:
    from inventory.model import Fabric  # noqa: PLC0415
    from inventory.topology import compile_fabric  # noqa: PLC0415
    from tasks.pki.psk import ensure_psks  # noqa: PLC0415

    data = fabric_data(gateways, accept)
    fabric = work / "fabric.yaml"
    fabric.write_text(fabric_yaml(data))
    lab_dir = work / "fleet-lab"  # not "lab": the cwd of `python -m` shadows packages
    compiled = compile_fabric(Fabric.model_validate(data))
    ensure_psks(lab_dir / "secrets", [t.name for t in compiled.tunnels])
    password = os.urandom(12).hex()
    settings = {"gateways": gateways, "workers": workers, "sites": len(data["sites"]),
                "hubs": data["fabric"]["hubs"], "tunnels": len(compiled.tunnels),
                "rounds": rounds, "accept": list(accept), "cpus": os.cpu_count(),
                "loadavg_before": os.getloadavg()[0]}
    runs: list[Run] = []
    hosts: list[dict[str, Any]] = []
    common = ("--workers", str(workers))
    for number in range(1, rounds + 1):  # each round from factory configurations: a new host
        with emulator_host(lab_dir, data, password) as host:
            progress(f"round {number}/{rounds}: {gateways} emulators listening after "
                     f"{host.startup_s:.1f}s")
            singles = single_sites(data)
            factory = {site: running_config(host, f"{site}-gw1") for site in singles.values()}
            for name in ("fleet", "again") if number == 1 else ("fleet",):
                runs.append(run_deploy(name, host, fabric, work, bound, common,
                                       profile and number == 1 and name == "fleet", number))
                progress(f"{name}: {runs[-1].wall_s:.1f}s, {runs[-1].outcome}")
            for platform, site in sorted(singles.items()):
                put_back(host, f"{site}-gw1", factory[site])
                runs.append(run_deploy(f"single-{platform}", host, fabric, work, bound,
                                       (*common, "--site", site), number=number))
                progress(f"single-{platform} ({site}): {runs[-1].wall_s:.1f}s, "
                         f"{runs[-1].outcome}")
            hosts.append({"emulators": len(host.devices), "pid": host.pid,
                          "startup_s": round(host.startup_s, 2),
                          "peak_rss_mb": round(host.peak_rss_kb() / 1024, 1),
                          "rss_mb_end": round(host.rss_kb() / 1024, 1),
                          "cpu_s_total": round(host.cpu(), 2)})
    settings["loadavg_after"] = os.getloadavg()[0]
    return summary(runs, max(hosts, key=lambda h: h["peak_rss_mb"]), settings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--gateways", type=int, default=200,
                        help="emulated gateways in the fabric (default 200, at least 4)")
    parser.add_argument("--workers", type=int, default=50,
                        help="dcvpn deploy --workers (default 50)")
    parser.add_argument("--bound", type=float, default=900.0,
                        help="seconds one dcvpn deploy may take before it is killed")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds, each on a new emulator host: a fleet deploy and the "
                             "single-device deploys (default 3); the target compares the "
                             "fastest of each, medians are shown too")
    parser.add_argument("--accept", action="append", default=[], metavar="RANGE",
                        help="fabric.bgp.accept range (repeatable; e.g. 10.0.0.0/8): each "
                             "import filter holds the ranges instead of every site prefix, so "
                             "a gateway's configuration no longer grows with the fabric")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (fabric, reports, emulator log)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the fleet deploy (GIL holder) and the emulator host "
                             "with py-spy into profile-fleet*.txt (collapsed stacks; implies "
                             "--keep; the figures then include py-spy's overhead)")
    args = parser.parse_args(argv)
    args.keep = args.keep or args.profile
    if args.gateways < 4 or args.workers < 1 or args.bound <= 0 or args.rounds < 1:
        parser.error("--gateways needs at least 4, --workers at least 1, --rounds at least 1, "
                     "--bound > 0")
    for text in args.accept:
        try:
            ipaddress.IPv4Network(text)
        except ValueError as exc:
            parser.error(f"--accept {text}: {exc}")
    work = Path(tempfile.mkdtemp(prefix="dcvpn-bench-deploy-"))
    try:
        result = bench(args.gateways, args.workers, args.bound, work,
                       lambda line: print(f"bench_deploy: {line}", file=sys.stderr),
                       args.profile, args.rounds, tuple(args.accept))
    except BenchError as exc:
        print(f"bench_deploy: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"bench_deploy: work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 1 if result["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
