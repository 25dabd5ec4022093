"""`dcvpn metrics`: read every lab gateway and the PKI, and expose them (thin I/O).

The tunnel, BGP and daemon metrics come from tasks.metrics_format; certificate metrics are
the PKI's own exposition (tasks.pki.status.prometheus_text: dcvpn_cert_expiry_seconds,
dcvpn_cert_revoked, ...), appended when a PKI directory is known.
"""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from inventory.topology import CompiledFabric
from tasks.gateway_read import read_gateway
from tasks.gateway_state import GatewayState
from tasks.lab_records import LabRecordsError, read_lab_records
from tasks.metrics_format import exposition, fabric_families
from tasks.pki.errors import PkiError
from tasks.pki.status import pki_status, prometheus_text
from tasks.pki.store import Layout

MAX_WORKERS = 8


@dataclass(frozen=True)
class Scrape:
    text: str
    problems: tuple[str, ...]  # what could not be read (the metrics say so too)


def collect(compiled: CompiledFabric, lab_dir: Path, gateways: Sequence[str],
            pki_dir: Path | None, now: datetime) -> Scrape:
    problems: list[str] = []
    try:
        records = read_lab_records(lab_dir)
    except LabRecordsError as exc:
        records = None
        problems.append(str(exc))

    def one(gw: str) -> tuple[str, GatewayState]:
        return gw, read_gateway(compiled, lab_dir, gw, records)

    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(len(gateways), 1))) as pool:
        states = dict(pool.map(one, gateways))
    for gw, state in states.items():
        problems += [f"{gw}: {what}: {why}" for what, why in state.errors.items()]
    text = exposition(fabric_families(compiled, states, gateways))
    pki = pki_dir or (records.pki_dir if records else None)
    if pki is not None and compiled.fabric.fabric.auth.method == "certificate":
        try:
            text += prometheus_text(pki_status(Layout(pki), list(gateways), now))
        except PkiError as exc:
            problems.append(f"PKI {pki}: {exc}")
    return Scrape(text, tuple(problems))
