"""Shared helpers of the PKI tests: a frozen clock, directory snapshots, openssl calls."""

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from conftest import require_binary

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)

Snapshot = dict[str, tuple[bytes, int, int]]


def snapshot(root: Path) -> Snapshot:
    """Every file under `root` (except the lock): bytes, mtime and mode."""
    out: Snapshot = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != ".lock":
            st = path.stat()
            out[str(path.relative_to(root))] = (path.read_bytes(), st.st_mtime_ns, st.st_mode)
    return out


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("openssl"), *args], capture_output=True, text=True,
                          check=False, timeout=30)


def openssl_verify(ca: Path, cert: Path, when: datetime, crl: Path | None = None
                   ) -> subprocess.CompletedProcess[str]:
    extra = ["-crl_check", "-CRLfile", str(crl)] if crl else []
    return openssl("verify", "-attime", str(int(when.timestamp())), "-CAfile", str(ca),
                   *extra, str(cert))


_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? '
                     r'(?P<value>-?[0-9]+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
Metrics = dict[str, list[tuple[dict[str, str], int]]]


def parse_prometheus(text: str) -> Metrics:
    """A strict reader of the text exposition format (enough for what dcvpn writes)."""
    assert text.endswith("\n")
    metrics: Metrics = {}
    typed: set[str] = set()
    helped: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind == "gauge"
            typed.add(name)
        else:
            m = _SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            assert m["name"] in typed and m["name"] in helped, "HELP/TYPE come first"
            labels = dict(_LABEL.findall(m["labels"] or ""))
            metrics.setdefault(m["name"], []).append((labels, int(m["value"])))
    return metrics
