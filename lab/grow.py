"""`dcvpn lab up --add`: grow a running lab by the gateways of the (changed) model that it does
not run yet, e.g. for `dcvpn onboard --lab`. Nothing the lab runs already is restarted,
reconfigured or renumbered.

- strongSwan gateway: its namespace, cabled to the lab's underlay bridge (a free bridge port),
  with its LANs; a host route to it in each namespace of its tunnel peers; charon, zebra, bgpd
  and bfdd started *unconfigured* (lab.files.bootstrap_files: no connection, no BGP), so that
  `dcvpn deploy --lab` is what configures it, as on a real new site. Its credentials are
  installed like `up` does (certificates from the lab's PKI: the throwaway lab CA issues one
  for the new gateway if it has none; a --pki-dir must already hold it).
- emulated junos/iosxe gateway: the supervisor gains it without a restart (spec.json rewritten,
  then SIGHUP: lab.emulators.supervisor), so it joins the PeerRegistry of the others; a lab
  without emulators gets its first supervisor.
Then devices.json and known_hosts list every device. Every namespace, process and path is
recorded in the state file before it is made, so `dcvpn lab down` removes all of it; when a
strongSwan gateway cannot start, what was made for the new gateways is removed again.
"""

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from inventory.topology import CompiledFabric
from lab import daemons, netns, procs
from lab.down import remove_gateways
from lab.emulated import (
    SUPERVISOR_GATEWAY,
    add_emulators,
    emulated_gateways,
    start_supervisor,
    wait_emulators,
    write_device_files,
)
from lab.emulators.supervisor_files import LabEmulator, Listening, read_ready, read_spec_data
from lab.errors import LabError
from lab.files import bootstrap_files, check_reachable, credential_files
from lab.state import LabState, locked
from lab.topology import BRIDGE, UPLINK, LabGateway, LabPlan, plan
from lab.up import START_GRACE, LabExistsError, attach
from tasks.pki.delivery import DeliveryFile
from tasks.pki.errors import PkiError
from tasks.pki.issue import issue_certs
from tasks.pki.keys import Passphrase
from tasks.pki.store import Layout
from tasks.validate_strongswan import LocalGateway

Progress = Callable[[str], None]
PORT_PREFIX = "p"
MAX_PORTS = 4096
THROWAWAY_PKI = "pki"
LAB_CERT_DAYS = 30  # like the throwaway CA's certificates of `up`


class NoRunningLabError(LabError):
    """`up --add` needs a lab that is up."""


@dataclass(frozen=True)
class GrowResult:
    lab_dir: Path
    fabric: str
    added: tuple[str, ...]  # strongSwan gateways started (unconfigured)
    emulated: tuple[str, ...]  # emulators added
    kept: tuple[str, ...]  # gateways the lab ran already
    seconds: float


def _bridge_ports(underlay: str) -> set[str]:
    done = netns.run([netns.IP, "-n", underlay, "-j", "link", "show"])
    try:
        return {str(link["ifname"]) for link in json.loads(done.stdout or "[]")}
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"cannot list the links of {underlay}: {exc}") from None


def _with_free_ports(new: Sequence[LabGateway], taken: set[str]) -> list[LabGateway]:
    """The new gateways with bridge ports that no running gateway uses (plan() numbers
    them by position, which moves when a site joins in the middle)."""
    out, used = [], set(taken)
    free = (f"{PORT_PREFIX}{i}" for i in range(MAX_PORTS))
    for gw in new:
        port = next((p for p in free if p not in used), None)
        if port is None:
            raise LabError(f"no free bridge port left in the underlay for {gw.name}")
        used.add(port)
        out.append(replace(gw, bridge_port=port))
    return out


def _refuse_taken(lab_dir: Path, new: Sequence[LabGateway]) -> None:
    taken = sorted({g.namespace for g in new} & netns.namespaces())
    if taken:
        raise LabExistsError(f"network namespace(s) {', '.join(taken)} exist already and are "
                             f"not recorded in {lab_dir}; remove them or rename the gateways")
    folders = [str(lab_dir / g.name) for g in new if (lab_dir / g.name).exists()]
    if folders:
        raise LabExistsError(f"{', '.join(folders)} exist(s) already; not made by this lab")


def _credentials(state: LabState, compiled: CompiledFabric, names: list[str],
                 passphrase: Passphrase | None) -> dict[str, tuple[DeliveryFile, ...]]:
    if compiled.fabric.fabric.auth.method != "certificate":
        return {}
    pki = state.pki_dir
    throwaway = state.lab_dir / THROWAWAY_PKI
    if pki is None and throwaway in state.dirs:
        pki = throwaway
    if pki is None:
        raise LabError(f"the lab in {state.lab_dir} has no PKI to take certificates from")
    key = passphrase or Passphrase()
    if pki == throwaway:  # the lab's own CA: it issues for its new gateways too
        key = Passphrase()
        chosen = [gw for _, gw in compiled.gateways() if gw.name in names]
        try:
            issue_certs(Layout(pki), compiled.fabric, chosen, key, datetime.now(UTC),
                        days=LAB_CERT_DAYS)
        except PkiError as exc:
            raise LabError(f"lab CA {pki}: {exc}") from exc
    try:
        return credential_files(pki, names, key)
    except PkiError as exc:
        raise LabError(f"PKI {pki}: {exc} (issue it with dcvpn pki issue, or onboard the site "
                       "with --pki-dir)") from exc


def _routes_to(state: LabState, lab: LabPlan, new: Sequence[LabGateway]) -> None:
    """Host routes to the new gateways' public IPs in their running peers' namespaces."""
    fresh = {a for gw in new for a in (gw.public_ip, *gw.uplinks)}
    names = {gw.name for gw in new}
    for gw in lab.gateways:
        if gw.name in names or gw.name not in state.gateways:
            continue
        netns.batch(gw.namespace, [f"route replace {peer}/32 dev {UPLINK}"
                                   for peer in gw.peers if peer in fresh])


def _start_strongswan(state: LabState, compiled: CompiledFabric, lab: LabPlan,
                      new: list[LabGateway], deadline: float, progress: Progress,
                      passphrase: Passphrase | None) -> None:
    names = [g.name for g in new]
    credentials = _credentials(state, compiled, names, passphrase)
    gateways = [LocalGateway.in_lab(state.lab_dir, n) for n in names]
    progress("writing the new gateways' files")
    for name in names:
        state.add_gateway(name)
    for gw in gateways:
        bootstrap_files(state, compiled, gw, credentials.get(gw.name))
    progress("cabling the new gateways to the underlay")
    if lab.underlay not in state.namespaces:  # a lab of emulators only, until now
        state.add_namespace(lab.underlay)
        netns.create(lab.underlay)
        netns.batch(lab.underlay, [f"link add {BRIDGE} type bridge",
                                   f"link set {BRIDGE} mtu {lab.mtu} up"])
    new = _with_free_ports(new, _bridge_ports(lab.underlay))
    attach(state, lab, new)
    _routes_to(state, lab, new)
    progress("starting charon and FRR (unconfigured)")
    charons = {gw.name: daemons.start_charon(state, gw) for gw in gateways}
    for gw in gateways:
        daemons.wait_charon(gw, charons[gw.name], deadline)
    if not daemons.FRR_TMP.exists():
        state.add_parent(daemons.FRR_TMP)
    zebras = daemons.start_frr(state, gateways, daemons.ZEBRA, deadline)
    for gw, record in zip(gateways, zebras, strict=True):
        daemons.wait_zserv(gw, record, deadline)
    daemons.start_frr(state, gateways, daemons.BGPD, deadline)
    daemons.start_frr(state, gateways, daemons.BFDD, deadline)


def _supervisor(state: LabState) -> procs.ProcessRecord | None:
    return next((r for r in state.processes if r.gateway == SUPERVISOR_GATEWAY), None)


def _running_emulators(state: LabState) -> list[LabEmulator]:
    if _supervisor(state) is None:
        return []
    data = read_spec_data(state.lab_dir)
    return [LabEmulator(str(e["gateway"]), str(e["platform"]), str(e["transport"]),
                        e.get("os_version")) for e in data.get("emulators", [])]


def grow(compiled: CompiledFabric, lab_dir: Path, timeout: float, progress: Progress,
         passphrase: Passphrase | None = None, time_scale: float = 1.0,
         keep: bool = False) -> GrowResult:
    """Start the gateways of `compiled` that the lab in `lab_dir` does not run yet.
    NoRunningLabError without a lab; LabError when something cannot start (what was made for
    the new strongSwan gateways is removed again, unless `keep`)."""
    began = time.monotonic()
    deadline = began + max(timeout, START_GRACE)
    fabric = compiled.fabric.fabric.name
    if LabState.load(lab_dir) is None:
        raise NoRunningLabError(f"no lab in {lab_dir}: start it with dcvpn lab up first")
    with locked(lab_dir):
        state = LabState.load(lab_dir)
        if state is None:
            raise NoRunningLabError(f"no lab in {lab_dir}: start it with dcvpn lab up first")
        if state.fabric != fabric:
            raise LabError(f"the lab in {lab_dir} runs fabric {state.fabric}, not {fabric}")
        lab = plan(compiled)
        running = set(state.gateways)
        new = [g for g in lab.gateways if g.name not in running]
        hosted = _running_emulators(state)
        hosted_names = {e.gateway for e in hosted}
        extra = [e for e in emulated_gateways(compiled) if e.gateway not in hosted_names]
        kept = tuple(sorted(running | hosted_names))
        if not new and not extra:
            return GrowResult(lab_dir, fabric, (), (), kept, time.monotonic() - began)
        if new:
            check_reachable(lab_dir)
            _refuse_taken(lab_dir, new)
        phase = state.phase
        state.set_phase("growing")
        supervisor = _supervisor(state)
        if extra:  # first: a YANG load overlaps the daemons' start
            progress(f"adding {len(extra)} emulator(s)")
            if supervisor is None:
                supervisor = start_supervisor(state, extra, time_scale)
            else:
                add_emulators(state, supervisor, [*hosted, *extra])
        if new:
            try:
                _start_strongswan(state, compiled, lab, new, deadline, progress, passphrase)
            except (LabError, PkiError, OSError) as exc:
                if keep:
                    raise LabError(f"{exc} (kept for debugging; dcvpn lab down removes the "
                                   "whole lab)") from exc
                left = remove_gateways(state, [g.name for g in new])
                if not left and not extra:
                    state.set_phase(phase)  # the lab is as it was
                tail = ("left behind (dcvpn lab down removes it): " + "; ".join(left) if left
                        else "what was made for them is removed again")
                raise LabError(f"{exc} ({tail})") from exc
        listening: dict[str, Listening] = {}
        if supervisor is not None:
            if extra:
                listening = wait_emulators(lab_dir, supervisor, [*hosted, *extra], deadline,
                                           progress)
            else:
                listening = read_ready(lab_dir, supervisor.pid) or {}
        write_device_files(state, compiled, state.gateways, listening)
        state.set_phase(phase)
    return GrowResult(lab_dir, fabric, tuple(g.name for g in new),
                      tuple(e.gateway for e in extra), kept, time.monotonic() - began)
