"""One `dcvpn watch` cycle of observations (thin I/O over the existing readers).

The lab's strongSwan+FRR gateways are read like `dcvpn metrics` reads them
(tasks.gateway_read: daemons the lab recorded, SAs, BGP neighbors with their prefix counts)
plus the validator's kernel-route checks and LAN-to-LAN pings (tasks.validate_checks), and
TCP connects to the model's application probes (`sites[].probes`) from the first gateway of
every other site, sourced from that site's LAN address. Emulated gateways that the lab lists
in devices.json are read through their driver's get_state (tunnels and BGP only). Each
gateway is read in its own thread; every read has a timeout.
"""

import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path

from drivers.base import driver_class
from drivers.errors import DriverError
from inventory.model import AppProbe, Platform, Transport
from inventory.topology import CompiledFabric
from tasks.gateway_read import read_gateway
from tasks.gateway_state import BGP_ESTABLISHED, GatewayState
from tasks.health_reader import StateReader
from tasks.lab_devices import LabDevice
from tasks.lab_records import LabRecords, LabRecordsError, read_lab_records
from tasks.validate_checks import check_ping, check_route
from tasks.validate_expect import GatewayExpect, expect_fabric, lan_addresses
from tasks.validate_observed import BgpPeer, ChildSa, IkeSa, ReadError, Route
from tasks.validate_strongswan import IP, LocalGateway, StrongswanReader
from tasks.watch_rules import Check, Observation

MAX_WORKERS = 8
ESTABLISHED, INSTALLED = "ESTABLISHED", "INSTALLED"
# run inside the namespace by the project's own interpreter, isolated (-I -S): bind to the
# site's LAN address, connect, report
TCP_PROBE = """\
import socket, sys
s = socket.socket()
s.settimeout(float(sys.argv[4]))
try:
    s.bind((sys.argv[1], 0))
    s.connect((sys.argv[2], int(sys.argv[3])))
except OSError as e:
    print(e.strerror or type(e).__name__)
    sys.exit(1)
print("connected")
"""


@dataclass(frozen=True, slots=True)
class ProbeRun:
    """One application probe from one gateway: connect from `source` to address:port."""

    gateway: str  # where it runs (first gateway of the source site)
    source_site: str
    source: IPv4Address
    site: str  # where the service lives
    probe: AppProbe

    @property
    def subject(self) -> str:
        return f"{self.site}/{self.probe.name} from {self.source_site}"


@dataclass(frozen=True)
class Targets:
    compiled: CompiledFabric
    lab_dir: Path
    local: tuple[str, ...]  # the lab's strongSwan gateways
    emulated: Mapping[str, LabDevice]  # gateway -> device (junos / iosxe emulators)
    expected: Mapping[str, GatewayExpect]
    probes: tuple[ProbeRun, ...]
    timeout: float = 5.0

    @property
    def gateways(self) -> tuple[str, ...]:
        return (*self.local, *sorted(self.emulated))


@dataclass(frozen=True)
class Cycle:
    observations: tuple[Observation, ...]
    states: dict[str, GatewayState]  # the local gateways, for tasks.metrics_format
    problems: tuple[str, ...]


def probe_runs(compiled: CompiledFabric, local: Sequence[str]) -> tuple[ProbeRun, ...]:
    """Every site's probes, from the first gateway of every other site the lab runs."""
    first = {site.name: site.gateways[0].name for site in compiled.fabric.sites}
    out = []
    for site in compiled.fabric.sites:
        for probe in site.probes:
            for other in compiled.fabric.sites:
                gw = first[other.name]
                if other.name == site.name or gw not in local:
                    continue
                out.append(ProbeRun(gw, other.name, lan_addresses(compiled, gw)[0][0],
                                    site.name, probe))
    return tuple(out)


def targets(compiled: CompiledFabric, lab_dir: Path, local: Sequence[str],
            emulated: Mapping[str, LabDevice], timeout: float) -> Targets:
    return Targets(compiled, lab_dir, tuple(local), dict(emulated), expect_fabric(compiled),
                   probe_runs(compiled, local), timeout)


def local_gateways(compiled: CompiledFabric, records: LabRecords) -> tuple[str, ...]:
    """The fabric's strongSwan gateways that the lab runs, in site order."""
    ran = set(records.gateways)
    return tuple(gw.name for _, gw in compiled.gateways()
                 if gw.platform is Platform.STRONGSWAN and gw.name in ran)


def emulated_devices(compiled: CompiledFabric, devices: Mapping[str, LabDevice]
                     ) -> dict[str, LabDevice]:
    names = {gw.name for _, gw in compiled.gateways()}
    return {n: d for n, d in devices.items()
            if n in names and d.transport is not Transport.LOCAL}


# --- readings into observations (pure) ----------------------------------------------------------

def _peer_prefixes(compiled: CompiledFabric, site: str) -> int:
    return len(compiled.fabric.site(site).prefixes)


def tunnel_observations(exp: GatewayExpect, sas: Sequence[IkeSa] | ReadError,
                        errors: Mapping[str, str]) -> list[Observation]:
    out = []
    for t in exp.tunnels:
        if isinstance(sas, ReadError):
            up, reason = False, f"unreadable: {sas}"
        else:
            mine = [sa for sa in sas if sa.name == t.name]
            children = sorted({c.state for sa in mine if sa.state == ESTABLISHED
                               for c in sa.children if c.name == t.name})
            up = INSTALLED in children
            ike = ", ".join(sorted({sa.state for sa in mine})) or "none"
            reason = f"IKE SA {ike}, CHILD SA {', '.join(children) or 'none'}"
            if not up and errors.get(t.name):
                reason += f"; last error: {errors[t.name]}"
        out.append(Observation(Check.TUNNEL, exp.gateway, t.name, up, reason, t.name,
                               t.peer_gateway))
    return out


def bgp_observations(compiled: CompiledFabric, exp: GatewayExpect,
                     peers: Sequence[BgpPeer] | ReadError) -> list[Observation]:
    out = []
    for b in exp.bgp:
        subject = str(b.address)
        minimum = _peer_prefixes(compiled, b.sites[1])
        if isinstance(peers, ReadError):
            reason = f"unreadable: {peers}"
            out += [Observation(Check.BGP, exp.gateway, subject, False, reason, b.tunnel,
                                b.peer_gateway),
                    Observation(Check.PREFIXES, exp.gateway, subject, False, reason, b.tunnel,
                                b.peer_gateway)]
            continue
        peer = next((p for p in peers if p.address == b.address), None)
        up = peer is not None and peer.state == BGP_ESTABLISHED
        state = f"BGP {peer.state} with {b.address}" if peer else f"no neighbor {b.address}"
        out.append(Observation(Check.BGP, exp.gateway, subject, up, state, b.tunnel,
                               b.peer_gateway))
        received = peer.prefixes_received if peer is not None else None
        enough = up and received is not None and received >= minimum
        seen = f"{received} received" if received is not None else "no count"
        out.append(Observation(Check.PREFIXES, exp.gateway, subject, enough,
                               f"{seen}, at least {minimum} expected ({state})", b.tunnel,
                               b.peer_gateway))
    return out


def route_observations(exp: GatewayExpect, routes: Sequence[Route] | ReadError
                       ) -> list[Observation]:
    out = []
    for r in exp.routes:
        result = check_route(r, routes)
        out.append(Observation(Check.ROUTE, exp.gateway, str(r.prefix), result.ok,
                               result.observed, r.tunnels[0] if len(r.tunnels) == 1 else None))
    return out


def local_observations(compiled: CompiledFabric, exp: GatewayExpect,
                       state: GatewayState) -> list[Observation]:
    """Gateway, daemons, tunnels and BGP of a strongSwan gateway from its GatewayState."""
    gw = state.gateway
    out = [Observation(Check.GATEWAY, gw, gw, state.reachable,
                       "namespace and folder present" if state.reachable
                       else state.errors.get("gateway", "not running"))]
    out += [Observation(Check.DAEMON, gw, d.name, d.alive,
                        f"pid {d.pid} runs" if d.alive
                        else f"pid {d.pid} recorded by the lab is gone")
            for d in state.daemons]
    unread = (state.errors.get("gateway") if not state.reachable else None)
    sas: Sequence[IkeSa] | ReadError = ReadError(unread or state.errors.get("charon", ""))
    if unread is None and "charon" not in state.errors:
        sas = tuple(IkeSa(s.conn, s.state, s.remote_host, s.remote_id, None, None, None, None,
                          None, tuple(ChildSa(c.name, c.state, "", None, None, None)
                                      for c in s.children))
                    for s in state.sas)
    errors = {name: log.last_error for name, log in state.log.items() if log.last_error}
    out += tunnel_observations(exp, sas, errors)
    peers: Sequence[BgpPeer] | ReadError = ReadError(unread or state.errors.get("bgpd", ""))
    if unread is None and "bgpd" not in state.errors:
        peers = tuple(BgpPeer(n.address, n.remote_as, n.state, n.prefixes_received)
                      for n in state.bgp)
    out += bgp_observations(compiled, exp, peers)
    return out


# --- I/O ----------------------------------------------------------------------------------------

def tcp_probe(namespace: str, source: IPv4Address, address: IPv4Address, port: int,
              timeout: float) -> tuple[bool, str]:
    argv = [IP, "netns", "exec", namespace, sys.executable, "-I", "-S", "-c", TCP_PROBE,
            str(source), str(address), str(port), str(timeout)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=timeout + 5)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"probe did not run: {exc}"
    lines = [ln.strip() for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    detail = lines[-1] if lines else f"exit {done.returncode}"
    what = f"{address}:{port} from {source}"
    return done.returncode == 0, f"{what}: {detail}"


def _read_local(t: Targets, gw: str, records: LabRecords | None
                ) -> tuple[list[Observation], GatewayState]:
    state = read_gateway(t.compiled, t.lab_dir, gw, records, t.timeout)
    exp = t.expected[gw]
    out = local_observations(t.compiled, exp, state)
    local = LocalGateway.in_lab(t.lab_dir, gw)
    reader = StrongswanReader(local, t.timeout)
    routes: Sequence[Route] | ReadError
    try:
        routes = reader.routes()
    except ReadError as exc:
        routes = exc
    out += route_observations(exp, routes)
    scope = set(t.local)
    for ping in exp.pings:
        if all(g in scope for g in ping.gateways):
            result = check_ping(ping, reader.ping(ping.source, ping.target))
            out.append(Observation(Check.PING, gw, result.subject, result.ok, result.observed))
    for run in t.probes:
        if run.gateway == gw:
            ok, detail = tcp_probe(local.namespace, run.source, run.probe.address,
                                   run.probe.port, t.timeout)
            out.append(Observation(Check.PROBE, gw, run.subject, ok, detail))
    return out, state


def _read_emulated(t: Targets, gw: str, device: LabDevice) -> list[Observation]:
    exp = t.expected[gw]
    try:
        driver = driver_class(device.platform, device.transport)(
            replace(device.target, timeout=t.timeout))
        driver.open()
        try:
            state = driver.get_state()
        finally:
            driver.close()
    except (DriverError, OSError) as exc:
        error = ReadError(f"{device.platform} {device.transport} "
                          f"{device.target.host}:{device.target.port}: {exc}")
        return [Observation(Check.GATEWAY, gw, gw, False, str(error)),
                *tunnel_observations(exp, error, {}),
                *bgp_observations(t.compiled, exp, error)]
    reader = StateReader(gw, state, exp.tunnels)
    return [Observation(Check.GATEWAY, gw, gw, True, "get_state answered"),
            *tunnel_observations(exp, reader.ike_sas(), {}),
            *bgp_observations(t.compiled, exp, reader.bgp_peers())]


def read_cycle(t: Targets) -> Cycle:
    problems: list[str] = []
    try:
        records = read_lab_records(t.lab_dir)
    except LabRecordsError as exc:
        records = None
        problems.append(str(exc))
    if records is None and not problems:
        problems.append(f"no lab in {t.lab_dir} (its state file is gone)")

    def one(gw: str) -> tuple[str, list[Observation], GatewayState | None]:
        if gw in t.emulated:
            return gw, _read_emulated(t, gw, t.emulated[gw]), None
        found, state = _read_local(t, gw, records)
        return gw, found, state

    gateways = t.gateways
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(len(gateways), 1))) as pool:
        done = list(pool.map(one, gateways))
    observations = tuple(o for _, found, _ in done for o in found)
    states = {gw: s for gw, _, s in done if s is not None}
    for gw, state in states.items():
        problems += [f"{gw}: {what}: {why}" for what, why in state.errors.items()]
    return Cycle(observations, states, tuple(problems))
