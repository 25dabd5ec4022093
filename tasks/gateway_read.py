"""Read one local strongSwan+FRR gateway (the lab's) into a GatewayState (thin I/O).

Sources, each read on its own so that one missing daemon does not hide the rest: charon over
its vici socket (SAs with counters), bgpd over vtysh (`show bgp neighbors json`), charon's
log (errors and rekeys per connection), the loaded configuration files of the gateway's
folder (swanctl.conf and its secrets file: digests only), and the lab's process records.
"""

import contextlib
import json
import os
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vici import Session  # type: ignore[import-untyped]
from vici.exception import (  # type: ignore[import-untyped]
    CommandException,
    DeserializationException,
    SessionException,
)

from inventory.topology import CompiledFabric
from tasks.charon_log import read_log
from tasks.gateway_state import (
    DaemonState,
    GatewayState,
    parse_bgp_neighbors,
    parse_sa_states,
)
from tasks.lab_records import LabRecords, is_alive, usage
from tasks.render_strongswan import SECRETS_FILE
from tasks.swanctl_conf import SwanctlParseError, connections, secrets, with_secrets
from tasks.validate_strongswan import VTYSH, LocalGateway

NETNS_DIR = Path("/run/netns")
SWANCTL_CONF = "swanctl.conf"
LOG_TAIL = 4 << 20  # rekeys are counted over at most this much of the log's end
TIMEOUT = 5.0


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, Mapping):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_text(v) for v in value]
    return value


def _vici_sas(gw: LocalGateway, timeout: float) -> list[dict[str, Any]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(gw.vici_socket))
        return [_text(e) for e in Session(sock).list_sas()]
    finally:
        sock.close()


def _vtysh_json(gw: LocalGateway, command: str, timeout: float) -> dict[str, Any]:
    proc = subprocess.run([VTYSH, "--vty_socket", str(gw.vty_dir), "-c", command],
                          capture_output=True, text=True, check=False, timeout=timeout)
    try:
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise OSError(lines[-1] if lines else f"vtysh exited {proc.returncode}")
    return data


def _log_tail(path: Path) -> str:
    with path.open("rb") as fh:
        with contextlib.suppress(OSError):
            fh.seek(-LOG_TAIL, os.SEEK_END)
        return fh.read().decode(errors="replace")


def _daemons(records: LabRecords | None, gateway: str) -> tuple[DaemonState, ...]:
    if records is None:
        return ()
    out = []
    for r in records.daemons:
        if r.gateway != gateway:
            continue
        alive = is_alive(r)
        use = usage(r.pid) if alive else None
        out.append(DaemonState(r.daemon, r.pid, alive, use.cpu_seconds if use else None,
                               use.rss_bytes if use else None))
    return tuple(out)


def read_gateway(compiled: CompiledFabric, lab_dir: Path, gateway: str,
                 records: LabRecords | None, timeout: float = TIMEOUT) -> GatewayState:
    gw = LocalGateway.in_lab(lab_dir, gateway)
    reachable = (NETNS_DIR / gw.namespace).exists() and gw.folder.is_dir()
    if not reachable:
        return GatewayState(gateway, False, errors={
            "gateway": f"not running here: no namespace {gw.namespace} or no folder "
                       f"{gw.folder}"})
    errors: dict[str, str] = {}
    sas: Any = ()
    try:
        sas = parse_sa_states(_vici_sas(gw, timeout))
    except OSError as exc:
        errors["charon"] = f"vici {gw.vici_socket}: {exc.strerror or exc}"
    except (SessionException, CommandException, DeserializationException) as exc:
        errors["charon"] = f"vici {gw.vici_socket}: {exc}"
    bgp: Any = ()
    try:
        bgp = parse_bgp_neighbors(_vtysh_json(gw, "show bgp neighbors json", timeout))
    except (OSError, subprocess.TimeoutExpired) as exc:
        errors["bgpd"] = f"vtysh {gw.vty_dir}: {exc}"
    peers = {str(a): t.name for t, _ in compiled.tunnels_of(gateway)
             for a in t.side(gateway)[1].addresses}
    log = {}
    try:
        log = read_log(_log_tail(gw.charon_log), peers)
    except OSError as exc:
        errors["log"] = f"{gw.charon_log}: {exc.strerror or exc}"
    config = {}
    try:
        conns = connections((gw.folder / SWANCTL_CONF).read_text())
        secrets_file = gw.folder / SECRETS_FILE
        found = secrets(secrets_file.read_text()) if secrets_file.exists() else {}
        config = with_secrets(conns, found)
    except (OSError, SwanctlParseError) as exc:
        errors["config"] = f"{gw.folder / SWANCTL_CONF}: {exc}"
    return GatewayState(gateway, True, sas, bgp, _daemons(records, gateway), log, config,
                        errors)
