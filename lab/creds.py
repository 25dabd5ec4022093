"""`dcvpn lab reload-creds`: the lab's gateways take up the PKI directory's current files.

What strongSwan does with a CRL (seen with 5.9.8 and the lab's load list, which has the
`revocation` plugin): the CRLs in `x509crl/` are loaded by swanctl into charon's credential
set, and a peer's certificate is checked against them only when an IKE SA authenticates
(IKE_AUTH; also at reauthentication, which the rendered configuration does not schedule).
`swanctl --load-creds` adds a newer CRL *beside* the loaded one, and the revocation check may
settle on the older, still valid one ("using cached crl", status good): so the credentials
are cleared and loaded again (`--load-creds --clear`, one step per gateway; running SAs keep
their keys). A revoked certificate then fails at the next authentication with "certificate
was revoked" and "no trusted ECDSA public key found", and its peer gets AUTHENTICATION_FAILED.

To make that next authentication happen now, the IKE SAs of every gateway whose current
certificate is on the CRL are terminated from the tunnel's responder end: the initiator's
close_action initiates again (one end initiates: tasks.render_strongswan.TunnelRole; a
local terminate has no close action); both ends authenticate in that IKE_AUTH, so the
revoked end is refused whichever of the two it is. SAs between gateways in good standing are
left alone; they pick up a renewed certificate at their next authentication.
"""

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inventory.topology import CompiledFabric, Tunnel
from lab import daemons
from lab.errors import LabError
from lab.files import credential_files, install_credentials
from lab.state import LabState, locked
from lab.up import load_swanctl, swanctl_env
from tasks.pki.keys import Passphrase
from tasks.pki.store import Layout, load_ca, read_cert, read_crl, revoked_serials, serial_hex
from tasks.render_strongswan import TunnelRole, role
from tasks.validate_strongswan import LocalGateway

LOAD_CREDS = ("--load-creds", "--clear", "--noprompt")
SWANCTL_TIMEOUT = 10.0
TERMINATE_TIMEOUT = 5  # seconds swanctl waits for the peer to answer the DELETE
_NO_SA = "no matching SAs"


class NoLabError(LabError):
    """There is no lab (state file) in the directory."""


class NoCertificatesError(LabError):
    """The lab authenticates with pre-shared keys."""


@dataclass(frozen=True)
class ReloadResult:
    lab_dir: Path
    pki_dir: Path
    gateways: tuple[str, ...]
    revoked: dict[str, str]  # gateway -> serial (hex) of its revoked current certificate
    restarted: tuple[str, ...]  # tunnels whose IKE SA was terminated (name)
    absent: tuple[str, ...]  # tunnels of a revoked gateway that had no IKE SA to terminate


def revoked_gateways(pki_dir: Path, gateways: Sequence[str]) -> dict[str, str]:
    """Gateways whose current certificate is on the PKI's CRL."""
    layout = Layout(pki_dir)
    ca = load_ca(layout)
    serials = revoked_serials(read_crl(layout, ca))
    out = {}
    for gw in gateways:
        cert = read_cert(layout.cert(gw))
        if cert is not None and cert.serial_number in serials:
            out[gw] = serial_hex(cert.serial_number)
    return out


def restart_plan(compiled: CompiledFabric, in_lab: Sequence[str],
                 revoked: Sequence[str]) -> list[tuple[Tunnel, str]]:
    """(tunnel, gateway that terminates it) for every lab tunnel with a revoked end: its
    responder, so that the initiator's close_action initiates again (TunnelRole)."""
    lab = set(in_lab)
    plan = []
    for tunnel in compiled.tunnels:
        ends = [e.gateway for e in tunnel.endpoints]
        if not set(ends) & set(revoked) or not set(ends) <= lab:
            continue
        a, b = tunnel.endpoints
        plan.append((tunnel, b.gateway if role(a, b) is TunnelRole.INITIATOR else a.gateway))
    return plan


def _terminate(gw: LocalGateway, ike: str) -> bool:
    """Terminate the IKE SA named `ike` on `gw`; False if it had none."""
    exe = daemons.program(daemons.SWANCTL) or daemons.SWANCTL
    argv = [exe, "--terminate", "--ike", ike, "--timeout", str(TERMINATE_TIMEOUT)]
    try:
        done = subprocess.run(argv, cwd=gw.folder, env=swanctl_env(gw), capture_output=True,
                              text=True, timeout=TERMINATE_TIMEOUT + SWANCTL_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{gw.name}: swanctl --terminate --ike {ike} timed out") from exc
    out = (done.stdout or "") + (done.stderr or "")
    if done.returncode == 0:
        return True
    if _NO_SA in out:
        return False
    raise LabError(f"{gw.name}: swanctl --terminate --ike {ike} ({done.returncode}): "
                   f"{out.strip().splitlines()[-1] if out.strip() else 'no output'}")


def reload_creds(compiled: CompiledFabric, lab_dir: Path,
                 passphrase: Passphrase | None = None) -> ReloadResult:
    """Deliver the PKI files again, reload them in every charon, restart revoked gateways'
    IKE SAs. Every file is read and checked before anything changes (PkiError)."""
    if LabState.load(lab_dir) is None:
        raise NoLabError(f"no lab in {lab_dir}")
    with locked(lab_dir):
        state = LabState.load(lab_dir)
        if state is None:
            raise NoLabError(f"no lab in {lab_dir}")
        throwaway = lab_dir / "pki"  # labs recorded before pki_dir was: their own CA
        pki_dir = state.pki_dir or (throwaway if throwaway in state.dirs else None)
        if pki_dir is None:
            raise NoCertificatesError(f"lab {state.fabric} authenticates with pre-shared keys: "
                                      "it has no certificates to reload")
        names = state.gateways
        files = credential_files(pki_dir, names, passphrase or Passphrase())
        revoked = revoked_gateways(pki_dir, names)
        gateways = [LocalGateway.in_lab(lab_dir, n) for n in names]
        for gw in gateways:
            install_credentials(state, gw, files[gw.name], replace=True)
        load_swanctl(gateways, SWANCTL_TIMEOUT, LOAD_CREDS)
        restarted: list[str] = []
        absent: list[str] = []
        by_name = {gw.name: gw for gw in gateways}
        for tunnel, end in restart_plan(compiled, names, list(revoked)):
            (restarted if _terminate(by_name[end], tunnel.name) else absent).append(tunnel.name)
    return ReloadResult(lab_dir, pki_dir, tuple(names), revoked, tuple(restarted),
                        tuple(absent))
