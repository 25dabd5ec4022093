"""`dcvpn lab heal GATEWAY`: bring one part of a running lab gateway back (what `dcvpn watch`
calls to heal the lab).

restart charon: only when the charon the lab recorded for the gateway is gone. It is started
the way `up` starts it (lab.daemons.start_charon: recorded as pending, then by PID and start
time, so `down` stops it), the dead record is dropped, then, as after every charon start on
the libipsec data plane, interfaces.sh gives the new ipsec0 its addresses and swanctl loads
the connections (start_action = start initiates those the gateway initiates), and the
tunnels it only responds on are initiated once (_initiate_responders). The lab lock is held
meanwhile: a concurrent up/down/reload-creds is refused rather than interleaved.

initiate TUNNEL: `swanctl --initiate` of the tunnel's CHILD SA (and IKE SA) through the
gateway's vici socket, waiting at most the timeout. It changes no lab record, so it takes no
lock.
"""

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab import daemons, netns, procs
from lab.errors import LabError
from lab.state import LabState, locked
from lab.up import INTERFACES_SCRIPT, SWANCTL_CONF, load_swanctl, swanctl_env
from tasks.parse_strongswan import parse_swanctl
from tasks.running_intent import ParseError
from tasks.validate_observed import ReadError
from tasks.validate_strongswan import LocalGateway, StrongswanReader

RESTARTABLE = (daemons.CHARON_NAME,)
DEFAULT_TIMEOUT = 20.0
INITIATE_WAIT = 5.0  # per tunnel after a restart; a peer that does not answer is reported


class NoLabError(LabError):
    """There is no lab (state file) in the directory."""


class HealInputError(LabError):
    """The gateway, daemon or tunnel is not one the lab can heal (bad input)."""


@dataclass(frozen=True)
class HealResult:
    gateway: str
    action: str  # "restart charon", "initiate <tunnel>"
    changed: bool  # False: nothing needed doing
    detail: str


def _gateway(lab_dir: Path, gateway: str) -> tuple[LabState, LocalGateway]:
    state = LabState.load(lab_dir)
    if state is None:
        raise NoLabError(f"no lab in {lab_dir}")
    if gateway not in state.gateways:
        known = ", ".join(state.gateways) or "none"
        raise HealInputError(f"{gateway} is not a strongSwan gateway of lab {state.fabric} "
                             f"(its gateways: {known})")
    gw = LocalGateway.in_lab(lab_dir, gateway)
    if gw.namespace not in netns.namespaces() or not gw.folder.is_dir():
        raise LabError(f"{gateway}: its namespace {gw.namespace} or folder {gw.folder} is gone; "
                       "the lab cannot heal it (run dcvpn lab down, then up)")
    return state, gw


def _interfaces(gw: LocalGateway, deadline: float) -> None:
    """interfaces.sh once the new charon's ipsec0 exists (retried until then)."""
    while True:
        done = daemons.run_in(gw.namespace, ["sh", INTERFACES_SCRIPT], cwd=gw.folder)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{gw.name}: {INTERFACES_SCRIPT} failed after the restart: "
                           f"{(done.stderr or done.stdout).strip()}")
        time.sleep(daemons.POLL)


def restart(lab_dir: Path, gateway: str, daemon: str,
            timeout: float = DEFAULT_TIMEOUT) -> HealResult:
    if daemon not in RESTARTABLE:
        raise HealInputError(f"the lab can restart {', '.join(RESTARTABLE)}, not {daemon!r}")
    action = f"restart {daemon}"
    if LabState.load(lab_dir) is None:
        raise NoLabError(f"no lab in {lab_dir}")
    with locked(lab_dir):
        state, gw = _gateway(lab_dir, gateway)
        old = [r for r in state.processes if r.gateway == gateway and r.daemon == daemon]
        alive = [r for r in old if procs.is_running(r)]
        if alive:
            return HealResult(gateway, action, False,
                              f"{daemon} runs (pid {alive[0].pid}): nothing to do")
        pending = [p for p in state.pending if p.gateway == gateway and p.daemon == daemon]
        found = next((r for r in map(daemons.find_pending, pending) if r), None)
        if found is not None:
            return HealResult(gateway, action, False,
                              f"{daemon} runs (pid {found.pid}, still pending in the lab "
                              "state): nothing to do")
        deadline = time.monotonic() + timeout
        # the dead charon's socket file stays behind: its absence tells when the new one is up
        gw.vici_socket.unlink(missing_ok=True)
        record = daemons.start_charon(state, gw)
        state.forget_processes(old)
        daemons.wait_charon(gw, record, deadline)
        _interfaces(gw, deadline)
        load_swanctl([gw], max(deadline - time.monotonic(), 1.0))
        started = _initiate_responders(lab_dir, gw, deadline)
    was = ", ".join(str(r.pid) for r in old) or "none recorded"
    return HealResult(gateway, action, True,
                      f"{daemon} started as pid {record.pid} (was pid {was}); interfaces "
                      f"and connections loaded{started}")


def responder_tunnels(gw: LocalGateway) -> list[str]:
    """The gateway's connections it only responds on (start_action none: TunnelRole)."""
    try:
        conf = parse_swanctl((gw.folder / SWANCTL_CONF).read_text())
    except (OSError, ParseError):
        return []
    return sorted(name for name, conn in conf.get("connections", {}).items()
                  if any(child.get("start_action") == "none"
                         for child in conn.get("children", {}).values()))


def _initiate_responders(lab_dir: Path, gw: LocalGateway, deadline: float) -> str:
    """After a restart, initiate the tunnels the gateway only responds on, once each.

    Their initiators still hold the SAs of the dead charon and notice only by DPD (after
    dpd_delay and a retransmission sequence). The restarted charon holds no SA, so one
    initiation is no duplicate: its INITIAL_CONTACT makes the peer drop the stale SA."""
    tunnels = responder_tunnels(gw)
    failed = []
    for tunnel in tunnels:
        try:
            initiate(lab_dir, gw.name, tunnel, min(INITIATE_WAIT,
                                                   max(deadline - time.monotonic(), 1.0)))
        except LabError:
            failed.append(tunnel)
    if not tunnels:
        return ""
    done = f"; initiated {len(tunnels) - len(failed)} of {len(tunnels)} tunnel(s) it responds on"
    return done + (f" (not: {', '.join(failed)})" if failed else "")


def _established(gw: LocalGateway, tunnel: str) -> bool:
    """The tunnel's IKE SA is established with its CHILD SA installed (False if unreadable)."""
    try:
        sas = StrongswanReader(gw).ike_sas()
    except ReadError:
        return False
    return any(sa.name == tunnel and sa.state == "ESTABLISHED"
               and any(c.name == tunnel and c.state == "INSTALLED" for c in sa.children)
               for sa in sas)


def initiate(lab_dir: Path, gateway: str, tunnel: str,
             timeout: float = DEFAULT_TIMEOUT) -> HealResult:
    _, gw = _gateway(lab_dir, gateway)
    action = f"initiate {tunnel}"
    if _established(gw, tunnel):
        return HealResult(gateway, action, False, f"{tunnel} is up: nothing to do")
    exe = daemons.program(daemons.SWANCTL) or daemons.SWANCTL
    wait = max(int(timeout), 1)
    argv = [exe, "--initiate", "--child", tunnel, "--ike", tunnel, "--timeout", str(wait)]
    try:
        done = subprocess.run(argv, cwd=gw.folder, env=swanctl_env(gw), capture_output=True,
                              text=True, timeout=wait + 5, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{gateway}: swanctl --initiate {tunnel} did not return") from exc
    out = [ln.strip() for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    if done.returncode != 0:
        if any("config" in ln and "not found" in ln for ln in out):
            raise HealInputError(f"{gateway} has no connection {tunnel}")
        raise LabError(f"{gateway}: swanctl --initiate {tunnel} ({done.returncode}): "
                       f"{out[-1] if out else 'no output'}")
    return HealResult(gateway, action, True,
                      next((ln for ln in reversed(out) if "successfully" in ln),
                           f"{tunnel} initiated"))
