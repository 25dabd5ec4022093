"""Load test: many NETCONF device emulators in one process under concurrent ncclient clients.

    python bench/bench_emulators.py                    # 200 emulators, 50 clients (issue 5)
    python bench/bench_emulators.py --emulators 40 --clients 10 --cycles 5
    python bench/bench_emulators.py --json             # results as JSON on stdout

Servers: the lab's emulator supervisor (python -m lab.emulators.supervisor) hosts every
emulator in one asyncio loop, each on its own 127.0.0.1 port, Junos and IOS-XE NETCONF
flavours alternating; the IOS-XE YANG (libyang) is loaded once per process and shared by all
IOS-XE devices (lab.emulators.iosxe_schema.load_yang).

Clients: real ncclient sessions (host keys pinned from the supervisor's ready.json), in
--client-procs worker processes of their own (this script with --worker), one thread per
client. Each client owns a disjoint set of devices (no two clients share one), keeps one
session per device, and runs cycles round-robin over its devices: lock candidate -> load a
host-name carrying the cycle number (Junos load-configuration, IOS-XE edit-config on the
candidate) -> commit confirmed (Junos confirm-timeout in minutes, IOS-XE in seconds) ->
confirm (a plain commit) -> unlock. Every client stops after --cycles cycles or when the
--duration bound has passed, whichever is first.

Figures: ops/s and cycles/s over the load phase (all clients released at once after their
sessions are up), p50/p95/p99 latency per operation kind and per cycle, the server process's
CPU over the load phase and its peak RSS (VmHWM), the clients' CPU, what the whole machine
spent meanwhile (other processes included: say so when comparing runs), and client errors.

Verification, after the confirm window has run out (so an unconfirmed commit would have been
rolled back by then): with a fresh session per device, the committed host-name is the last
one its client confirmed, the candidate (IOS-XE: and running) can be locked, and no confirmed
commit is pending (Junos: `show system commit`, no automatic rollback in the history; IOS-XE:
cancel-commit probe answers that none is pending). Exit 0 when all clients ran without error
and every device verified, 1 otherwise, 2 for bad options.
"""

import argparse
import json
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from lab.errors import LabError

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ("junos", "iosxe")
OPS = ("lock", "load", "commit_confirmed", "confirm", "unlock")
KINDS = ("connect", *OPS, "cycle")  # what a latency is measured of
NATIVE_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-native"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
USERNAME = "bench"
STARTUP_BOUND = 600.0  # seconds for the supervisor to listen on every port
CONNECT_BOUND = 600.0  # seconds for every worker to open its sessions
STOP_BOUND = 30.0  # seconds for a process to exit after SIGTERM / "stop"
ERROR_SAMPLES = 10


# --- plumbing shared by the main process and the workers -------------------------------------

class BenchError(Exception):
    """The bench could not run (a process did not start, answer or report)."""


@dataclass(frozen=True)
class Device:
    name: str
    platform: str
    port: int
    host_key: str  # base64 of the ed25519 host key (pinned)


@dataclass(frozen=True)
class Job:
    """What one worker process runs: its clients (each a list of devices) and the settings."""

    clients: list[list[Device]]
    password: str
    cycles: int
    duration: float
    confirm_minutes: int
    rpc_timeout: float
    ncclient_tick: float | None


def connect(device: Device, password: str, timeout: float) -> Any:
    from ncclient import manager  # type: ignore[import-untyped]  # noqa: PLC0415

    params: dict[str, Any] = {"name": device.platform}
    if device.platform == "iosxe":
        # ncclient's own iosxe handler accepts any host key; dcvpn's driver pins it
        from drivers.iosxe_netconf import PinnedIosxeHandler  # noqa: PLC0415

        params["handler"] = PinnedIosxeHandler
    return manager.connect(
        host="127.0.0.1", port=device.port, username=USERNAME, password=password,
        timeout=timeout, hostkey_verify=True, hostkey_b64=device.host_key,
        allow_agent=False, look_for_keys=False, device_params=params,
        manager_params={"timeout": timeout})


def hostname(device: Device, cycle: int | None) -> str:
    """The host-name a cycle loads; None: the one the emulator starts with."""
    return device.name if cycle is None else f"{device.name}-c{cycle}"


def load(session: Any, device: Device, value: str) -> None:
    if device.platform == "junos":
        system = etree.Element("system")
        etree.SubElement(system, "host-name").text = value
        session.load_configuration(action="merge", format="xml", config=system)
    else:
        config = (f'<config xmlns="{NC_NS}"><native xmlns="{NATIVE_NS}">'
                  f"<hostname>{value}</hostname></native></config>")
        session.edit_config(target="candidate", config=config)


def short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}"


# --- the worker process (clients) -----------------------------------------------------------

@dataclass
class ClientLog:
    # "<platform> <kind>" -> seconds; kinds: connect, the OPS, cycle
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    confirmed: dict[str, int] = field(default_factory=dict)  # device -> last confirmed cycle
    reconnects: int = 0

    def took(self, device: Device, kind: str, seconds: float) -> None:
        self.latencies.setdefault(f"{device.platform} {kind}", []).append(seconds)

    def count(self, kind: str) -> int:
        return sum(len(self.latencies.get(f"{p} {kind}", ())) for p in PLATFORMS)


def run_client(devices: list[Device], job: Job, go: threading.Event,
               deadline: list[float], log: ClientLog) -> None:
    sessions: dict[str, Any] = {}
    try:
        for device in devices:
            began = time.monotonic()
            try:
                sessions[device.name] = connect(device, job.password, job.rpc_timeout)
            except Exception as exc:  # counted, and the client skips the device
                log.errors.append({"device": device.name, "op": "connect", "error": short(exc)})
                continue
            log.took(device, "connect", time.monotonic() - began)
        if not go.wait(CONNECT_BOUND + STARTUP_BOUND):
            return
        usable = [d for d in devices if d.name in sessions]
        for cycle in range(1, job.cycles + 1):
            if not usable or time.monotonic() >= deadline[0]:
                break
            device = usable[(cycle - 1) % len(usable)]
            if not one_cycle(sessions, device, cycle, job, log):
                reconnect(sessions, device, job, log)
    finally:
        for session in sessions.values():
            with suppress(Exception):  # the session may be gone already
                session.close_session()


def one_cycle(sessions: dict[str, Any], device: Device, cycle: int, job: Job,
              log: ClientLog) -> bool:
    session = sessions[device.name]
    value = hostname(device, cycle)
    steps: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("lock", lambda: session.lock("candidate")),
        ("load", lambda: load(session, device, value)),
        ("commit_confirmed",
         lambda: session.commit(confirmed=True, timeout=str(job.confirm_minutes * 60))),
        ("confirm", session.commit),
        ("unlock", lambda: session.unlock("candidate")),
    )
    began = time.monotonic()
    for op, call in steps:
        start = time.monotonic()
        try:
            call()
        except Exception as exc:  # any failure counts; the cycle is abandoned
            log.errors.append({"device": device.name, "op": op, "error": short(exc)})
            return False
        log.took(device, op, time.monotonic() - start)
        if op == "confirm":
            log.confirmed[device.name] = cycle
    log.took(device, "cycle", time.monotonic() - began)
    return True


def reconnect(sessions: dict[str, Any], device: Device, job: Job, log: ClientLog) -> None:
    """A fresh session after a failed cycle: ending the old one releases its lock and
    candidate (IOS-XE: and rolls back its unconfirmed commit)."""
    with suppress(Exception):
        sessions[device.name].close_session()
    log.reconnects += 1
    try:
        sessions[device.name] = connect(device, job.password, job.rpc_timeout)
    except Exception as exc:
        log.errors.append({"device": device.name, "op": "connect", "error": short(exc)})
        del sessions[device.name]


def _read_line(bound: float) -> str:
    ready, _, _ = select.select([sys.stdin], [], [], bound)
    return sys.stdin.readline().strip() if ready else ""


def worker() -> int:
    """--worker: job JSON on stdin; 'connected' on stdout once every session is up; then
    'go' on stdin starts the cycles; the results JSON is the last stdout line."""
    raw = json.loads(sys.stdin.readline())
    job = Job(clients=[[Device(**d) for d in c] for c in raw.pop("clients")], **raw)
    if job.ncclient_tick is not None:
        import ncclient.transport.session  # type: ignore[import-untyped]  # noqa: PLC0415

        ncclient.transport.session.TICK = job.ncclient_tick  # read on every loop turn
    go = threading.Event()
    deadline = [math.inf]
    logs = [ClientLog() for _ in job.clients]
    threads = [threading.Thread(target=run_client, args=(devices, job, go, deadline, log),
                                daemon=True, name=f"client-{n}")
               for n, (devices, log) in enumerate(zip(job.clients, logs, strict=True))]
    for thread in threads:
        thread.start()
    connect_deadline = time.monotonic() + CONNECT_BOUND
    while time.monotonic() < connect_deadline and any(
            log.count("connect") + sum(e["op"] == "connect" for e in log.errors)
            < len(devices) for devices, log in zip(job.clients, logs, strict=True)):
        time.sleep(0.05)
    print("connected", flush=True)
    if _read_line(CONNECT_BOUND + STARTUP_BOUND) != "go":
        return 1
    cpu = time.process_time()
    deadline[0] = time.monotonic() + job.duration
    go.set()
    end = deadline[0] + 6 * job.rpc_timeout + STOP_BOUND  # a cycle begun at the deadline
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    hung = sum(t.is_alive() for t in threads)
    print(json.dumps({"cpu_s": time.process_time() - cpu, "hung": hung,
                      "clients": [asdict(log) for log in logs]}), flush=True)
    return 0


# --- the main process -----------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    emulators: int
    clients: int
    cycles: int
    duration: float
    time_scale: float
    confirm_minutes: int
    client_procs: int
    rpc_timeout: float
    ncclient_tick: float | None = None

    @property
    def confirm_window_s(self) -> float:
        """Real seconds a confirmed commit waits for its confirmation."""
        return self.confirm_minutes * 60 * self.time_scale


def plan(count: int, clients: int) -> list[tuple[str, str]]:
    """(name, platform) of each emulator; client c gets devices c, c+clients, ... and the
    platforms alternate along each client's list as well as overall."""
    return [(f"bench-{i:03d}", PLATFORMS[(i + i // clients) % 2]) for i in range(count)]


def assign(devices: Sequence[Device], clients: int) -> list[list[Device]]:
    return [list(devices[c::clients]) for c in range(clients)]


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_kb(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0


def _machine_busy_s() -> float:
    """CPU seconds all cores spent outside idle/iowait since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _last_line(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return lines[-1] if lines else "no output"


def _stop(proc: "subprocess.Popen[Any]") -> None:
    """SIGTERM to this PID (one we started), SIGKILL after STOP_BOUND."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_BOUND)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_BOUND)


@contextmanager
def supervisor(work: Path, names: Sequence[tuple[str, str]], password: str,
               time_scale: float) -> Iterator[tuple["subprocess.Popen[bytes]", list[Device],
                                                     float]]:
    """The lab's emulator supervisor hosting every emulator; yields (process, devices,
    startup seconds) once all listen, and stops it (by its PID) on exit."""
    from lab.emulators.supervisor_files import (  # noqa: PLC0415
        LOG_FILE,
        LabEmulator,
        folder_of,
        read_ready,
        write_spec,
    )

    folder = folder_of(work)
    folder.mkdir(mode=0o700)
    write_spec(work, "bench", [LabEmulator(n, p, "netconf") for n, p in names], USERNAME,
               password, time_scale)
    began = time.monotonic()
    with (folder / LOG_FILE).open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "lab.emulators.supervisor",
                                 "--lab-dir", str(work)], cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = None
        while ready is None and time.monotonic() - began < STARTUP_BOUND:
            if proc.poll() is not None:
                raise BenchError(f"the emulator supervisor exited ({proc.returncode}): "
                                 f"{_last_line(folder / LOG_FILE)}")
            time.sleep(0.2)
            ready = read_ready(work, proc.pid)
        if ready is None:
            raise BenchError(f"the emulator supervisor did not listen within "
                               f"{STARTUP_BOUND:.0f} s")
        startup = time.monotonic() - began
        devices = [Device(n, p, ready[n].port, ready[n].known_hosts.split()[2])
                   for n, p in names]
        yield proc, devices, startup
    finally:
        _stop(proc)


def _start_workers(jobs: Sequence[Job], work: Path) -> list["subprocess.Popen[str]"]:
    procs = []
    for n, job in enumerate(jobs):
        with (work / f"worker-{n}.log").open("w") as log:
            proc = subprocess.Popen([sys.executable, __file__, "--worker"], cwd=ROOT,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                    text=True)
        procs.append(proc)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(asdict(job)) + "\n")
        proc.stdin.flush()
    return procs


def _expect_line(proc: "subprocess.Popen[str]", deadline: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
    return proc.stdout.readline().strip() if ready else ""


def run_load(settings: Settings, devices: list[Device], password: str, work: Path,
             server_pid: int) -> dict[str, Any]:
    per_client = assign(devices, settings.clients)
    procs_n = min(settings.client_procs, settings.clients)
    jobs = [Job(per_client[p::procs_n], password, settings.cycles, settings.duration,
                settings.confirm_minutes, settings.rpc_timeout, settings.ncclient_tick)
            for p in range(procs_n)]
    procs = _start_workers(jobs, work)
    try:
        began = time.monotonic()
        for proc in procs:
            if _expect_line(proc, began + CONNECT_BOUND) != "connected":
                raise BenchError(f"client worker {proc.pid} did not connect: "
                                 f"{_last_line(work / f'worker-{procs.index(proc)}.log')}")
        connect_s = time.monotonic() - began
        server_cpu, machine_cpu = _proc_cpu_s(server_pid), _machine_busy_s()
        load_began = time.monotonic()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        bound = load_began + settings.duration + 6 * settings.rpc_timeout + 2 * STOP_BOUND
        for proc in procs:
            line = _expect_line(proc, bound)
            if not line.startswith("{"):
                raise BenchError(f"client worker {proc.pid} returned no results: "
                                 f"{_last_line(work / f'worker-{procs.index(proc)}.log')}")
            results.append(json.loads(line))
        wall = time.monotonic() - load_began
        server_cpu = _proc_cpu_s(server_pid) - server_cpu
        machine_cpu = _machine_busy_s() - machine_cpu
    finally:
        for proc in procs:
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()
            try:
                proc.wait(STOP_BOUND)
            except subprocess.TimeoutExpired:
                _stop(proc)
    clients = [c for r in results for c in r["clients"]]
    return {"connect_phase_s": connect_s, "wall_s": wall, "server_cpu_s": server_cpu,
            "machine_cpu_s": machine_cpu, "client_cpu_s": sum(r["cpu_s"] for r in results),
            "hung_clients": sum(r["hung"] for r in results), "clients": clients}


# --- verification ---------------------------------------------------------------------------

def verify_device(device: Device, expected: str, password: str,
                  timeout: float) -> list[str]:
    """What is wrong with one device after the run (empty: nothing)."""
    problems = []
    try:
        session = connect(device, password, timeout)
    except Exception as exc:
        return [f"{device.name}: cannot connect: {short(exc)}"]
    try:
        found = committed_hostname(session, device)
        if found != expected:
            problems.append(f"{device.name}: committed host-name {found!r}, expected "
                            f"{expected!r}")
        for store in ("running", "candidate") if device.platform == "iosxe" else ("candidate",):
            try:
                session.lock(store)
                session.unlock(store)
            except Exception as exc:
                problems.append(f"{device.name}: cannot lock {store}: {short(exc)}")
        problems.extend(f"{device.name}: {p}" for p in pending_problems(session, device))
    except Exception as exc:
        problems.append(f"{device.name}: {short(exc)}")
    finally:
        with suppress(Exception):
            session.close_session()
    return problems


def committed_hostname(session: Any, device: Device) -> str | None:
    if device.platform == "junos":
        reply = session.rpc(etree.fromstring(
            '<get-configuration database="committed" format="xml"><configuration><system>'
            "<host-name/></system></configuration></get-configuration>"))
    else:
        reply = session.get_config(source="running", filter=(
            "subtree", f'<native xmlns="{NATIVE_NS}"><hostname/></native>'))
    tree = reply.data_ele if hasattr(reply, "data_ele") else reply  # GetReply | NCElement
    for item in tree.xpath("//*[local-name()='host-name' or local-name()='hostname']"):
        return str(item.text or "").strip()
    return None


def pending_problems(session: Any, device: Device) -> list[str]:
    from ncclient.operations import RPCError  # type: ignore[import-untyped]  # noqa: PLC0415

    if device.platform == "junos":
        from drivers.junos_netconf import AUTO_ROLLBACK, PENDING_COMMENT  # noqa: PLC0415

        reply = session.rpc(etree.fromstring("<get-commit-information/>"))
        entries = [(" ".join(e.xpath("string(*[local-name()='comment'])").split()),
                    " ".join(e.xpath("string(*[local-name()='log'])").split()))
                   for e in reply.xpath("//*[local-name()='commit-history']")]
        problems = []
        if entries and PENDING_COMMENT.search(entries[0][0]):
            problems.append(f"a confirmed commit is pending ({entries[0][0]})")
        rolled = sum(1 for c, lg in entries if AUTO_ROLLBACK.search(f"{c}\n{lg}"))
        if rolled:
            problems.append(f"{rolled} automatic rollback(s) in the commit history")
        return problems
    from drivers.iosxe_quirks import NOTHING_PENDING, PROBE_PERSIST_ID  # noqa: PLC0415

    probe = etree.Element(f"{{{NC_NS}}}cancel-commit", nsmap={None: NC_NS})
    etree.SubElement(probe, f"{{{NC_NS}}}persist-id").text = PROBE_PERSIST_ID
    try:
        session.dispatch(probe)
    except RPCError as exc:
        if any(p.search(str(exc)) for p in NOTHING_PENDING):
            return []
        return [f"cancel-commit probe: {short(exc)}"]
    return ["cancel-commit probe was accepted: a confirmed commit was pending"]


def verify(devices: Sequence[Device], clients: Sequence[dict[str, Any]], password: str,
           timeout: float) -> dict[str, Any]:
    confirmed: dict[str, int] = {}
    for client in clients:
        confirmed.update(client["confirmed"])
    expected = {d.name: hostname(d, confirmed.get(d.name)) for d in devices}
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda d: verify_device(d, expected[d.name], password, timeout),
                              devices))
    problems = [p for device_problems in found for p in device_problems]
    return {"ok": not problems, "devices": len(devices),
            "devices_ok": sum(1 for f in found if not f),
            "devices_changed": sum(1 for d in devices if d.name in confirmed),
            "problems": problems[:50]}


# --- figures --------------------------------------------------------------------------------

def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _times(clients: Sequence[dict[str, Any]], kind: str,
           platforms: Sequence[str] = PLATFORMS) -> list[float]:
    return [v for c in clients for p in platforms for v in c["latencies"].get(f"{p} {kind}", ())]


def latency_rows(clients: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per kind: count and percentiles over all devices, and the p50 of each flavour."""
    rows = {}
    for kind in KINDS:
        values = _times(clients, kind)
        rows[kind] = {"count": len(values),
                      **{f"p{p}_ms": round(percentile(values, p) * 1000, 1)
                         for p in (50, 95, 99)},
                      "max_ms": round(max(values, default=0.0) * 1000, 1),
                      **{f"p50_{platform}_ms":
                         round(percentile(_times(clients, kind, (platform,)), 50) * 1000, 1)
                         for platform in PLATFORMS}}
    return rows


def report(settings: Settings, names: Sequence[tuple[str, str]], server: dict[str, Any],
           load: dict[str, Any], verification: dict[str, Any]) -> dict[str, Any]:
    clients = load["clients"]
    errors = [e for c in clients for e in c["errors"]]
    cycles = len(_times(clients, "cycle"))
    ops = sum(len(_times(clients, k)) for k in OPS)
    wall = load["wall_s"]
    cores = os.cpu_count() or 1
    ours = server["cpu_s_load"] + load["client_cpu_s"]
    return {
        "ok": not errors and verification["ok"] and not load["hung_clients"],
        "settings": {**asdict(settings), "confirm_window_s": settings.confirm_window_s},
        "emulators": dict(Counter(p for _, p in names)),
        "machine": {"cores": cores, "loadavg_before": server["loadavg_before"],
                    "busy_pct_of_machine": round(100 * load["machine_cpu_s"] / wall / cores, 1),
                    "other_processes_cpu_s": round(max(0.0, load["machine_cpu_s"] - ours), 1)},
        "server": {"startup_s": round(server["startup_s"], 2),
                   "iosxe_yang": server["iosxe_yang"],
                   "rss_mb_ready": round(server["rss_kb_ready"] / 1024, 1),
                   "peak_rss_mb": round(server["peak_rss_kb"] / 1024, 1),
                   "cpu_s": round(server["cpu_s_load"], 2),
                   "cpu_pct_of_core": round(100 * server["cpu_s_load"] / wall, 1),
                   "cpu_ms_per_op": round(1000 * server["cpu_s_load"] / max(ops, 1), 2)},
        "load": {"connect_phase_s": round(load["connect_phase_s"], 2), "wall_s": round(wall, 2),
                 "cycles": cycles, "ops": ops, "ops_per_s": round(ops / wall, 1),
                 "cycles_per_s": round(cycles / wall, 2),
                 "client_cpu_s": round(load["client_cpu_s"], 2),
                 "reconnects": sum(c["reconnects"] for c in clients),
                 "hung_clients": load["hung_clients"]},
        "latency": latency_rows(clients),
        "errors": {"count": len(errors),
                   "by_op": dict(Counter(e["op"] for e in errors)),
                   "samples": errors[:ERROR_SAMPLES]},
        "verification": verification,
    }


def markdown(data: dict[str, Any]) -> str:
    s, srv, ld, m = data["settings"], data["server"], data["load"], data["machine"]
    v = data["verification"]
    mix = ", ".join(f"{n} {p}" for p, n in sorted(data["emulators"].items()))
    lines = [
        "| emulators | clients (procs) | cycles | load s | ops/s | cycles/s | server CPU "
        "% core | server peak RSS MB | client errors | verified |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {s['emulators']} ({mix}) | {s['clients']} ({min(s['client_procs'], s['clients'])})"
        f" | {ld['cycles']} | {ld['wall_s']:.1f} | {ld['ops_per_s']:.1f} | "
        f"{ld['cycles_per_s']:.2f} | {srv['cpu_pct_of_core']:.0f} | {srv['peak_rss_mb']:.0f} | "
        f"{data['errors']['count']} | {v['devices_ok']}/{v['devices']} "
        f"{'ok' if v['ok'] else 'FAILED'} |",
        "",
        "| operation | count | p50 ms | p95 ms | p99 ms | max ms | "
        + " | ".join(f"p50 {p} ms" for p in PLATFORMS) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(PLATFORMS),
    ]
    for kind, row in data["latency"].items():
        lines.append(f"| {kind} | {row['count']} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | "
                     f"{row['p99_ms']:.1f} | {row['max_ms']:.1f} | "
                     + " | ".join(f"{row[f'p50_{p}_ms']:.1f}" for p in PLATFORMS) + " |")
    lines += [
        "",
        f"server: one process, startup {srv['startup_s']:.1f} s (IOS-XE YANG "
        f"{'loaded once, shared' if srv['iosxe_yang'] else 'absent: no schema checks'}), "
        f"RSS {srv['rss_mb_ready']:.0f} MB when ready, peak {srv['peak_rss_mb']:.0f} MB; CPU "
        f"{srv['cpu_s']:.1f} s over the load phase ({srv['cpu_ms_per_op']:.1f} ms per "
        f"operation). Clients: CPU {ld['client_cpu_s']:.1f} s, "
        f"sessions opened in {ld['connect_phase_s']:.1f} s, {ld['reconnects']} reconnects.",
        f"machine: {m['cores']} cores, load average {m['loadavg_before']} before the run, "
        f"{m['busy_pct_of_machine']:.0f}% busy during the load phase, of which other "
        f"processes {m['other_processes_cpu_s']:.1f} CPU s.",
        f"time scale {s['time_scale']} (confirm window {s['confirm_minutes']} device minutes = "
        f"{s['confirm_window_s']:.1f} s real, waited out before verifying); ncclient "
        f"transport tick {s['ncclient_tick'] or '0.1 (its default)'} s: each RPC waits up to "
        "one tick before it is sent.",
    ]
    if data["errors"]["samples"]:
        lines.append("errors: " + "; ".join(f"{e['device']} {e['op']}: {e['error']}"
                                            for e in data["errors"]["samples"]))
    lines += [f"verification: {p}" for p in v["problems"]]
    return "\n".join(lines)


# --- entry point ------------------------------------------------------------------------------

def _iosxe_yang_present() -> bool:
    from lab.emulators.iosxe import DEFAULT_VERSION  # noqa: PLC0415
    from lab.emulators.iosxe_schema import release_folder  # noqa: PLC0415

    try:
        import libyang  # noqa: F401, PLC0415
    except ImportError:
        return False
    return release_folder(DEFAULT_VERSION) is not None


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--emulators", type=int, default=200, help="default 200")
    parser.add_argument("--clients", type=int, default=50, help="default 50")
    parser.add_argument("--cycles", type=int, default=20, help="cycles per client (default 20)")
    parser.add_argument("--duration", type=float, default=300.0,
                        help="bound on the load phase in seconds (default 300)")
    parser.add_argument("--time-scale", type=float, default=0.1,
                        help="real seconds per device second (default 0.1)")
    parser.add_argument("--confirm-minutes", type=int, default=2,
                        help="confirm timeout in device minutes (default 2)")
    parser.add_argument("--client-procs", type=int, default=4,
                        help="client worker processes (default 4)")
    parser.add_argument("--rpc-timeout", type=float, default=120.0,
                        help="seconds to wait for any one reply (default 120)")
    parser.add_argument("--ncclient-tick", type=float, metavar="SECONDS",
                        help="poll interval of ncclient's transport thread in the clients "
                        "(default: ncclient's own 0.1 s, a floor under every RPC's latency)")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    args = parser.parse_args(argv)
    settings = Settings(args.emulators, args.clients, args.cycles, args.duration,
                        args.time_scale, args.confirm_minutes, args.client_procs,
                        args.rpc_timeout, args.ncclient_tick)
    problems = [f"--{name.replace('_', '-')} must be positive"
                for name in ("emulators", "clients", "cycles", "duration", "time_scale",
                             "confirm_minutes", "client_procs", "rpc_timeout")
                if not getattr(settings, name) > 0]
    if settings.ncclient_tick is not None and not 0 < settings.ncclient_tick <= 1:
        problems.append("--ncclient-tick must be in (0, 1] seconds")
    if settings.emulators < settings.clients:
        problems.append("--emulators must be at least --clients (each client needs devices "
                        "of its own)")
    if problems and not args.worker:
        parser.error("; ".join(problems))
    return args, settings


def main(argv: Sequence[str] | None = None) -> int:
    args, settings = parse_args(argv)
    if args.worker:
        return worker()
    names = plan(settings.emulators, settings.clients)
    password = secrets.token_urlsafe(18)
    work = Path(tempfile.mkdtemp(prefix="dcvpn-bench-emulators-"))
    loadavg = [round(x, 2) for x in os.getloadavg()]
    try:
        with supervisor(work, names, password, settings.time_scale) as (proc, devices, up_s):
            server = {"startup_s": up_s, "iosxe_yang": _iosxe_yang_present(),
                      "loadavg_before": loadavg, "rss_kb_ready": _proc_kb(proc.pid, "VmRSS:")}
            print(f"bench_emulators: {len(devices)} emulators up in {up_s:.1f} s; "
                  f"{settings.clients} clients start", file=sys.stderr)
            load = run_load(settings, devices, password, work, proc.pid)
            server["cpu_s_load"] = load["server_cpu_s"]
            time.sleep(settings.confirm_window_s + 1.0)  # an unconfirmed commit rolls back
            verification = verify(devices, load["clients"], password, settings.rpc_timeout)
            server["peak_rss_kb"] = _proc_kb(proc.pid, "VmHWM:")
    except (BenchError, LabError, OSError) as exc:
        print(f"bench_emulators: {exc}", file=sys.stderr)
        return 3
    finally:
        shutil.rmtree(work, ignore_errors=True)
    data = report(settings, names, server, load, verification)
    print(json.dumps(data, indent=2) if args.json else markdown(data))
    return 0 if data["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
