"""`dcvpn lab up`: namespaces, underlay, files, daemons, then wait until the fabric is ready.

Order per gateway (tasks/render_strongswan.py): charon first (it creates ipsec0), then
interfaces.sh (inner addresses, MTU, MSS clamp, charon's table-220 rule removed), then
`swanctl --load-all` (one gateway after the other, every tunnel's responder before its
initiator: responders_first), then FRR: zebra, and bgpd and bfdd once zserv.api exists and the
tunnels are up (so that bgpd's first connection attempts succeed instead of waiting for its
connect-retry timer). Each phase runs for all gateways before the next, so the daemons of
different gateways start in parallel.

Emulated gateways (junos/iosxe, lab.emulated) run in one supervisor process that starts
first, so that its YANG load overlaps the daemons' start; once everything runs, up waits until
every emulator answers, then writes known_hosts and devices.json. A fabric without strongSwan
gateways makes no namespace.

A second `up` of a lab whose state file exists is refused (run `down` first): reconciling a
running lab with a changed model is a deploy, not a lab start. So is an `up` that would
reuse a namespace name that already exists. Growing a running lab by the gateways a changed
model adds (`up --add`, for onboarding) is lab.grow: it reuses `attach` for the cabling.
"""

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from inventory.topology import CompiledFabric
from lab import daemons, netns
from lab.emulated import emulated_gateways, start_supervisor, wait_emulators, write_device_files
from lab.errors import LabError
from lab.files import check_reachable, credential_files, gateway_files, make_pki, make_psks
from lab.ready import wait_ready
from lab.state import LabState, locked
from lab.topology import BRIDGE, MULTIHOMED_SYSCTLS, LabGateway, LabPlan, plan
from tasks.pki.errors import PkiError
from tasks.pki.keys import Passphrase
from tasks.render_strongswan import initiator_rank
from tasks.validate_checks import CheckResult, Kind
from tasks.validate_strongswan import LocalGateway

Progress = Callable[[str], None]
INTERFACES_SCRIPT = "interfaces.sh"
START_GRACE = 30.0  # daemons get this long to start even when --timeout is shorter
TUNNEL_WAIT = 15.0  # at most this long for the tunnels before bgpd starts anyway
TUNNEL_KINDS = frozenset({Kind.IKE, Kind.CHILD})
SWANCTL_CONF = "swanctl.conf"


class LabExistsError(LabError):
    """The lab (or a namespace it needs) exists already."""


@dataclass(frozen=True)
class UpResult:
    lab_dir: Path
    fabric: str
    gateways: tuple[str, ...]
    emulated: tuple[str, ...]
    seconds: float
    not_ready: tuple[CheckResult, ...]

    @property
    def ready(self) -> bool:
        return not self.not_ready


def _missing_ancestors(path: Path) -> list[Path]:
    out = []
    for p in [path, *path.parents]:
        if p.exists():
            break
        out.append(p)
    return out


def _refuse_existing(lab_dir: Path, lab: LabPlan) -> None:
    state = LabState.load(lab_dir)
    if state is not None:
        raise LabExistsError(
            f"lab {state.fabric} already exists in {lab_dir} (phase {state.phase}); "
            "run `dcvpn lab down` first (a second up is refused, not reconciled)")
    taken = sorted(set(lab.namespaces) & netns.namespaces()) if lab.gateways else []
    if taken:
        raise LabExistsError(f"network namespace(s) {', '.join(taken)} exist already and are "
                             f"not recorded in {lab_dir}; remove them or rename the gateways")


def _underlay(state: LabState, lab: LabPlan) -> None:
    state.add_namespace(lab.underlay)
    netns.create(lab.underlay)
    netns.batch(lab.underlay, [f"link add {BRIDGE} type bridge",
                               f"link set {BRIDGE} mtu {lab.mtu} up"])
    attach(state, lab, lab.gateways)


def attach(state: LabState, lab: LabPlan, gateways: Sequence[LabGateway]) -> None:
    """Each gateway's namespace, cabled to the underlay bridge, with its LANs."""
    for gw in gateways:
        state.add_namespace(gw.namespace)
        netns.create(gw.namespace)
        for port in gw.ports:
            netns.veth(gw.namespace, port.device, lab.underlay, port.port)
        if gw.uplinks:
            netns.sysctl(gw.namespace, MULTIHOMED_SYSCTLS)
        commands = gw.cabling(lab.mtu)
        for lan in gw.lans:
            commands += [f"link add {lan.device} type veth peer name {lan.peer}",
                         f"link set {lan.peer} up", f"link set {lan.device} up",
                         f"addr add {lan.address} dev {lan.device}"]
        netns.batch(gw.namespace, commands)
    netns.batch(lab.underlay, [f"link set {port.port} master {BRIDGE} mtu {lab.mtu} up"
                               for gw in gateways for port in gw.ports])


def _interfaces(gw: LocalGateway, deadline: float) -> None:
    """interfaces.sh once charon's ipsec0 exists (retried while it does not yet)."""
    while True:
        done = daemons.run_in(gw.namespace, ["sh", INTERFACES_SCRIPT], cwd=gw.folder)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{gw.name}: {INTERFACES_SCRIPT} failed: "
                           f"{(done.stderr or done.stdout).strip()}")
        time.sleep(daemons.POLL)


def swanctl_env(gw: LocalGateway) -> dict[str, str]:
    return {**os.environ, "STRONGSWAN_CONF": str(gw.folder / "strongswan.conf"),
            "SWANCTL_DIR": str(gw.folder)}


LOAD_ALL = ("--load-all", "--file", SWANCTL_CONF)


def load_swanctl(gateways: list[LocalGateway], timeout: float,
                 command: tuple[str, ...] = LOAD_ALL) -> None:
    """`swanctl --load-all` (or `command`) on every gateway at once (the vici socket is a
    file: no netns)."""
    exe = daemons.program(daemons.SWANCTL) or daemons.SWANCTL
    what = f"swanctl {command[0]}"
    procs = [(gw, subprocess.Popen([exe, *command],
                                   cwd=gw.folder, env=swanctl_env(gw), text=True,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT))
             for gw in gateways]
    problems = []
    for gw, proc in procs:
        try:
            out, _ = proc.communicate(timeout=max(timeout, 1.0))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            problems.append(f"{gw.name}: {what} timed out")
            continue
        bad = [ln for ln in out.splitlines()
               if any(w in ln.lower() for w in ("error", "failed", "syntax", "invalid"))]
        if proc.returncode != 0 or bad:
            problems.append(f"{gw.name}: {what} ({proc.returncode}): "
                            + ("; ".join(bad) or out.strip()))
    if problems:
        raise LabError("; ".join(problems))


def responders_first(compiled: CompiledFabric, gateways: Sequence[LocalGateway]
                     ) -> list[LocalGateway]:
    """The load order of `up`: every tunnel's responder before its initiator.

    One end of a tunnel initiates (tasks.render_strongswan.TunnelRole), and a libipsec
    initiator whose IKE_SA_INIT meets a charon without the connection gets NO_PROPOSAL_CHOSEN
    and never retries (no trap policies), so loading all gateways at once could leave a
    tunnel down for good. Between two strongSwan gateways the lower initiator_rank initiates,
    so loading in descending rank is enough.
    """
    rank: dict[str, tuple[int, int]] = {}
    for t in compiled.tunnels:
        for e in t.endpoints:
            for name in e.gateways:  # every gateway of an anycast end, which only responds
                rank[name] = max(rank.get(name, (0, 0)), initiator_rank(e))
    return sorted(gateways, key=lambda gw: rank.get(gw.name, (0, 0)), reverse=True)


def _start(state: LabState, compiled: CompiledFabric, gateways: list[LocalGateway],
           deadline: float, ready_by: float, progress: Progress) -> None:
    progress("starting charon")
    charons = {gw.name: daemons.start_charon(state, gw) for gw in gateways}
    for gw in gateways:
        daemons.wait_charon(gw, charons[gw.name], deadline)
    progress("configuring tunnel interfaces")
    for gw in gateways:
        _interfaces(gw, deadline)
    progress("loading swanctl.conf")
    for gw in responders_first(compiled, gateways):
        load_swanctl([gw], deadline - time.monotonic())
    progress("starting FRR")
    if not daemons.FRR_TMP.exists():
        state.add_parent(daemons.FRR_TMP)
    zebras = daemons.start_frr(state, gateways, daemons.ZEBRA, deadline)
    for gw, record in zip(gateways, zebras, strict=True):
        daemons.wait_zserv(gw, record, deadline)
    # bgpd's first connection attempts then find their tunnels: no connect-retry wait
    wait_ready(compiled, state.lab_dir, [gw.name for gw in gateways],
               min(ready_by, time.monotonic() + TUNNEL_WAIT), progress, TUNNEL_KINDS)
    daemons.start_frr(state, gateways, daemons.BGPD, deadline)
    daemons.start_frr(state, gateways, daemons.BFDD, deadline)


def _strongswan(state: LabState, compiled: CompiledFabric, lab: LabPlan,
                start_deadline: float, deadline: float, progress: Progress,
                pki_dir: Path | None, passphrase: Passphrase | None) -> None:
    """Files, namespaces, underlay and daemons of the strongSwan gateways."""
    lab_dir = state.lab_dir
    names = [g.name for g in lab.gateways]
    progress("writing configuration and credentials")
    auth = compiled.fabric.fabric.auth.method
    credentials = None
    if auth == "certificate":
        pki = pki_dir or make_pki(state, lab_dir, compiled, names)
        state.set_pki_dir(pki)
        try:
            credentials = credential_files(pki, names, passphrase or Passphrase())
        except PkiError as exc:
            raise LabError(f"PKI {pki}: {exc}") from exc
    secrets = make_psks(state, lab_dir, compiled) if auth == "psk" else None
    gateways = [LocalGateway.in_lab(lab_dir, n) for n in names]
    for gw in gateways:
        gateway_files(state, compiled, gw, credentials[gw.name] if credentials else None,
                      secrets)
    progress("creating namespaces and the underlay")
    _underlay(state, lab)
    _start(state, compiled, gateways, start_deadline, deadline, progress)


def bring_up(compiled: CompiledFabric, fabric_file: str, lab_dir: Path, timeout: float,
             progress: Progress, notes: list[str], pki_dir: Path | None = None,
             passphrase: Passphrase | None = None, time_scale: float = 1.0) -> UpResult:
    """Start the lab; LabError when something cannot start (the state file records what
    was made, for `down`). `timeout` bounds the wait for readiness (daemons and emulators
    get at least START_GRACE to start); not being ready in time is no error: see
    UpResult.not_ready.

    A certificate-authenticated lab takes its certificates from `pki_dir` (keys decrypted
    with `passphrase`) when given, else from a throwaway CA in `<lab dir>/pki`. Emulated
    devices run at `time_scale` (real seconds per device second)."""
    began = time.monotonic()
    deadline = began + timeout
    start_deadline = began + max(timeout, START_GRACE)
    lab = plan(compiled)
    emulators = emulated_gateways(compiled)
    if not lab.gateways and not emulators:
        raise LabError(f"fabric {lab.fabric} has no gateway the lab can run (strongSwan, or "
                       "junos netconf, iosxe netconf or iosxe ssh)")
    _refuse_existing(lab_dir, lab)
    if lab.gateways:
        check_reachable(lab_dir)
    created = _missing_ancestors(lab_dir)
    lab_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    names = [g.name for g in lab.gateways]
    with locked(lab_dir):
        _refuse_existing(lab_dir, lab)  # again, now that we hold the lock
        state = LabState.create(lab_dir, lab.fabric, fabric_file, bool(created), names, notes)
        for parent in created[1:]:
            state.add_parent(parent)
        supervisor = None
        if emulators:  # first: its YANG load overlaps the daemons' start
            progress("starting the emulators")
            supervisor = start_supervisor(state, emulators, time_scale)
        if lab.gateways:
            _strongswan(state, compiled, lab, start_deadline, deadline, progress, pki_dir,
                        passphrase)
        listening = {}
        if supervisor is not None:
            listening = wait_emulators(lab_dir, supervisor, emulators, start_deadline,
                                       progress)
        write_device_files(state, compiled, names, listening)
        not_ready: list[CheckResult] = []
        if names:
            state.set_phase("waiting")
            not_ready = wait_ready(compiled, lab_dir, names, deadline, progress)
        state.set_phase("up" if not not_ready else "not-ready")
    return UpResult(lab_dir, lab.fabric, tuple(names), tuple(e.gateway for e in emulators),
                    time.monotonic() - began, tuple(not_ready))
