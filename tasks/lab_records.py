"""Read-only view of the lab's state file (`<lab dir>/state.json`, written by lab/state.py).

Commands in tasks/ must not import lab, so the two fields they need are read here: the
daemons the lab started (gateway, daemon, PID, start time; a PID whose start time differs
was recycled and counts as gone) and the PKI directory of a certificate lab. Also the CPU
time and resident memory of a live PID, from /proc.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "state.json"
PROC = Path("/proc")
THROWAWAY_PKI = "pki"  # a lab without --pki-dir makes its own CA here


class LabRecordsError(Exception):
    """The state file exists but cannot be read."""


@dataclass(frozen=True, slots=True)
class DaemonRecord:
    gateway: str
    daemon: str
    pid: int
    start_time: int


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    cpu_seconds: float
    rss_bytes: int


@dataclass(frozen=True)
class LabRecords:
    fabric: str
    gateways: tuple[str, ...]
    daemons: tuple[DaemonRecord, ...]
    pki_dir: Path | None


def read_lab_records(lab_dir: Path) -> LabRecords | None:
    """The lab's records; None when there is no lab (no state file)."""
    path = lab_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
        daemons = tuple(DaemonRecord(str(p["gateway"]), str(p["daemon"]), int(p["pid"]),
                                     int(p["start_time"])) for p in data.get("processes", []))
        gateways = tuple(str(g) for g in data.get("gateways", []))
        fabric = str(data.get("fabric", ""))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LabRecordsError(f"{path}: unreadable lab state ({exc})") from None
    pki = data.get("pki_dir")
    pki_dir = Path(pki) if pki else None
    if pki_dir is None and str(lab_dir / THROWAWAY_PKI) in data.get("dirs", []):
        pki_dir = lab_dir / THROWAWAY_PKI
    return LabRecords(fabric, gateways, daemons, pki_dir)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; fields after the last ')' start at field 3
    return text[text.rindex(")") + 2:].split()


def is_alive(record: DaemonRecord) -> bool:
    """The recorded process still runs (same start time, not a zombie)."""
    fields = _stat_fields(record.pid)
    return (fields is not None and len(fields) > 19 and fields[0] != "Z"
            and int(fields[19]) == record.start_time)


def usage(pid: int) -> ProcessUsage | None:
    """CPU seconds (user + system) and resident memory of a process, None if unreadable."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 22:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    rss_pages = int(fields[21])
    return ProcessUsage((int(fields[11]) + int(fields[12])) / ticks,
                        rss_pages * os.sysconf("SC_PAGE_SIZE"))
