"""`dcvpn lab status`: each gateway's daemons (PID, alive) and tunnels (IKE/CHILD state), and
the emulated gateways: the supervisor (PID, alive) and each emulator's port, login and
whether it answers on its port."""

from dataclasses import dataclass
from pathlib import Path

from inventory.model import Transport
from lab import procs
from lab.daemons import CHARON_NAME
from lab.emulated import SUPERVISOR_GATEWAY
from lab.emulators.probe import ssh_banner
from lab.state import LabState
from tasks.lab_devices import LabDevicesError, load_lab_devices
from tasks.validate_observed import ReadError
from tasks.validate_strongswan import LocalGateway, StrongswanReader


@dataclass(frozen=True)
class DaemonStatus:
    daemon: str
    pid: int
    alive: bool


@dataclass(frozen=True)
class TunnelStatus:
    name: str
    ike: str  # IKE SA state(s), "-" when there is none
    child: str  # CHILD SA state(s), "-" when there is none
    remote: str


@dataclass(frozen=True)
class GatewayStatus:
    name: str
    namespace: str
    daemons: tuple[DaemonStatus, ...]
    tunnels: tuple[TunnelStatus, ...]
    error: str | None  # why the tunnels could not be read

    @property
    def healthy(self) -> bool:
        return all(d.alive for d in self.daemons) and self.error is None

    def as_dict(self) -> dict[str, object]:
        return {"namespace": self.namespace, "healthy": self.healthy, "error": self.error,
                "daemons": [{"daemon": d.daemon, "pid": d.pid, "alive": d.alive}
                            for d in self.daemons],
                "tunnels": [{"name": t.name, "ike": t.ike, "child": t.child,
                             "remote": t.remote} for t in self.tunnels]}


@dataclass(frozen=True)
class EmulatorStatus:
    """An emulated gateway: where it listens, its lab login, and whether it answers."""

    name: str
    platform: str
    transport: str
    host: str
    port: int
    username: str
    password: str
    known_hosts: str
    answering: bool

    def as_dict(self) -> dict[str, object]:
        return {"platform": self.platform, "transport": self.transport, "host": self.host,
                "port": self.port, "username": self.username, "password": self.password,
                "known_hosts": self.known_hosts, "answering": self.answering}


@dataclass(frozen=True)
class LabStatus:
    lab_dir: Path
    fabric: str
    phase: str
    notes: tuple[str, ...]
    gateways: tuple[GatewayStatus, ...]
    supervisor: DaemonStatus | None = None  # the emulators' process, if the lab has one
    emulators: tuple[EmulatorStatus, ...] = ()
    problems: tuple[str, ...] = ()  # e.g. an unreadable device list

    @property
    def healthy(self) -> bool:
        return (all(g.healthy for g in self.gateways) and not self.problems
                and (self.supervisor is None or self.supervisor.alive)
                and all(e.answering for e in self.emulators))


def _tunnels(reader: StrongswanReader) -> tuple[tuple[TunnelStatus, ...], str | None]:
    try:
        sas = reader.ike_sas()
    except ReadError as exc:
        return (), str(exc)
    names = sorted({sa.name for sa in sas})
    out = []
    for name in names:
        mine = [sa for sa in sas if sa.name == name]
        children = sorted({c.state for sa in mine for c in sa.children})
        out.append(TunnelStatus(name, ",".join(sorted({sa.state for sa in mine})),
                                ",".join(children) or "-",
                                ",".join(sorted({sa.remote_host for sa in mine}))))
    return tuple(out), None


def lab_status(lab_dir: Path) -> LabStatus | None:
    state = LabState.load(lab_dir)
    if state is None:
        return None
    records = state.processes
    gateways = []
    for name in state.gateways:
        gw = LocalGateway.in_lab(lab_dir, name)
        daemons = tuple(DaemonStatus(r.daemon, r.pid, procs.is_running(r))
                        for r in records if r.gateway == name)
        charon = next((d for d in daemons if d.daemon == CHARON_NAME), None)
        if charon is None or not charon.alive:
            tunnels: tuple[TunnelStatus, ...] = ()
            error: str | None = "charon is not running"
        else:
            tunnels, error = _tunnels(StrongswanReader(gw))
        gateways.append(GatewayStatus(name, gw.namespace, daemons, tunnels, error))
    supervisor = next((DaemonStatus(r.daemon, r.pid, procs.is_running(r)) for r in records
                       if r.gateway == SUPERVISOR_GATEWAY), None)
    emulators, problems = _emulators(lab_dir, supervisor)
    return LabStatus(lab_dir, state.fabric, state.phase, tuple(state.notes), tuple(gateways),
                     supervisor, emulators, problems)


def _emulators(lab_dir: Path, supervisor: DaemonStatus | None
               ) -> tuple[tuple[EmulatorStatus, ...], tuple[str, ...]]:
    if supervisor is None:
        return (), ()
    try:
        devices = load_lab_devices(lab_dir)
    except LabDevicesError as exc:
        return (), (str(exc),)
    out = []
    for name, device in devices.items():
        target = device.target
        if device.transport is Transport.LOCAL:  # a strongSwan gateway: see `gateways`
            continue
        answering = supervisor.alive and ssh_banner(target.host, target.port)
        out.append(EmulatorStatus(name, str(device.platform), str(device.transport),
                                  target.host, target.port, target.username or "",
                                  target.password or "", str(target.known_hosts or ""),
                                  answering))
    return tuple(out), ()
