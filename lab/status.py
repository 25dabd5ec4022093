"""`dcvpn lab status`: each gateway's daemons (PID, alive) and tunnels (IKE/CHILD state)."""

from dataclasses import dataclass
from pathlib import Path

from lab import procs
from lab.daemons import CHARON_NAME
from lab.state import LabState
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
class LabStatus:
    lab_dir: Path
    fabric: str
    phase: str
    notes: tuple[str, ...]
    gateways: tuple[GatewayStatus, ...]

    @property
    def healthy(self) -> bool:
        return all(g.healthy for g in self.gateways)


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
    return LabStatus(lab_dir, state.fabric, state.phase, tuple(state.notes), tuple(gateways))
