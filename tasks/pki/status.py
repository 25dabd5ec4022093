"""`pki status`: every gateway certificate, the CA and the CRL, as rows, JSON and Prometheus.

Reads certificates only (no private key, no passphrase), so monitoring needs no secret. A
certificate, CRL or CA key from another CA is an error (the directory is inconsistent),
not a status.

An ACME directory (tasks.pki.acme_issue) shows the same rows: certificates are checked along
their stored chain to the ACME root in ca.pem, the CA row is that root, revocations are the
ones dcvpn made at the CA (acme-revoked.json), and the CRL row is `external`: the ACME CA
publishes its own revocation information, dcvpn signs no CRL.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from tasks.pki import acme_revoked
from tasks.pki.files import PUBLIC_FILE, write_atomic
from tasks.pki.store import (
    Layout,
    check_issued,
    crl_number,
    load_ca,
    read_cert,
    read_chain,
    read_crl,
    revoked_serials,
    serial_hex,
)

DAY = 86400


class Status(StrEnum):
    VALID = "valid"
    EXPIRING = "expiring"  # within the warning window
    EXPIRED = "expired"
    REVOKED = "revoked"
    MISSING = "missing"
    EXTERNAL = "external"  # CRL row of an ACME directory: the CA publishes revocation


@dataclass(frozen=True)
class Row:
    name: str  # gateway name, "ca" or "crl"
    status: Status
    serial: str | None = None  # CRL: its CRL number
    not_after: datetime | None = None  # CRL: its next-update
    seconds_left: int | None = None
    issuer: str | None = None  # CN of the certificate's issuer (the CRL row: none)

    @property
    def days_left(self) -> int | None:
        """Whole days, rounded toward zero: -35 is "expired 35 days ago"."""
        return None if self.seconds_left is None else int(self.seconds_left / DAY)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": str(self.status), "serial": self.serial,
                "not_after": _iso(self.not_after), "days_left": self.days_left,
                "seconds_left": self.seconds_left, "issuer": self.issuer}


@dataclass(frozen=True)
class PkiStatus:
    now: datetime
    warn_days: int
    ca: Row
    crl: Row
    certs: tuple[Row, ...]
    missing_fails: bool  # a missing certificate counts (certificate-authenticated fabric)

    def problems(self) -> list[Row]:
        """Rows that make `status` exit 1 (DESIGN: checks failed)."""
        bad = {Status.EXPIRING, Status.EXPIRED, Status.REVOKED}
        if self.missing_fails:
            bad.add(Status.MISSING)
        return [r for r in (self.ca, self.crl, *self.certs) if r.status in bad]

    @property
    def ok(self) -> bool:
        return not self.problems()

    def as_dict(self) -> dict[str, Any]:
        certs = []
        for row in self.certs:
            item = row.as_dict()
            item["gateway"] = item.pop("name")
            certs.append(item)
        crl = self.crl.as_dict()
        crl["crl_number"] = crl.pop("serial")
        crl["next_update"] = crl.pop("not_after")
        return {"ok": self.ok, "now": _iso(self.now), "warn_days": self.warn_days,
                "ca": self.ca.as_dict(), "crl": crl, "certificates": certs}


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_status(seconds: int, warn: int) -> Status:
    if seconds <= 0:
        return Status.EXPIRED
    return Status.EXPIRING if seconds <= warn else Status.VALID


def issuer_name(cert: x509.Certificate) -> str:
    cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else cert.issuer.rfc4514_string()


def pki_status(layout: Layout, gateways: Sequence[str], now: datetime, warn_days: int = 30,
               missing_fails: bool = True) -> PkiStatus:
    warn = int(timedelta(days=warn_days).total_seconds())
    ca = load_ca(layout)
    ca_left = math.floor((ca.cert.not_valid_after_utc - now).total_seconds())
    ca_row = Row("ca", _time_status(ca_left, warn), serial_hex(ca.cert.serial_number),
                 ca.cert.not_valid_after_utc, ca_left, issuer_name(ca.cert))
    acme = layout.is_acme
    crl = None if acme else read_crl(layout, ca)
    if acme:
        crl_row = Row("crl", Status.EXTERNAL)
    elif crl is None or crl.next_update_utc is None:
        crl_row = Row("crl", Status.MISSING)
    else:
        left = math.floor((crl.next_update_utc - now).total_seconds())
        crl_row = Row("crl", _time_status(left, warn), str(crl_number(crl)),
                      crl.next_update_utc, left)
    revoked = acme_revoked.revoked_serials(layout) if acme else revoked_serials(crl)
    rows = []
    for gw in sorted(gateways):
        path = layout.cert(gw)
        cert = read_cert(path)
        if cert is None:
            rows.append(Row(gw, Status.MISSING))
            continue
        check_issued(cert, ca, path, read_chain(layout, path))
        left = math.floor((cert.not_valid_after_utc - now).total_seconds())
        status = Status.REVOKED if cert.serial_number in revoked else _time_status(left, warn)
        rows.append(Row(gw, status, serial_hex(cert.serial_number), cert.not_valid_after_utc,
                        left, issuer_name(cert)))
    return PkiStatus(now, warn_days, ca_row, crl_row, tuple(rows), missing_fails)


def _label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _metric(lines: list[str], name: str, help_text: str,
            samples: Sequence[tuple[dict[str, str], int]]) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{text}}} {value}" if text else f"{name} {value}")


def prometheus_text(status: PkiStatus) -> str:
    """Prometheus text exposition (format 0.0.4) for node_exporter's textfile collector."""
    with_cert = [r for r in status.certs if r.serial is not None and r.seconds_left is not None]
    lines: list[str] = []
    _metric(lines, "dcvpn_cert_expiry_seconds",
            "Seconds until the gateway certificate expires (negative once expired).",
            [({"gateway": r.name, "serial": r.serial or ""}, r.seconds_left or 0)
             for r in with_cert])
    _metric(lines, "dcvpn_cert_revoked", "1 if the gateway certificate is in the CRL.",
            [({"gateway": r.name, "serial": r.serial or ""}, int(r.status is Status.REVOKED))
             for r in with_cert])
    _metric(lines, "dcvpn_cert_info",
            "1 per gateway certificate, labelled with its issuer (fabric CA or ACME CA).",
            [({"gateway": r.name, "serial": r.serial or "", "issuer": r.issuer or ""}, 1)
             for r in with_cert])
    _metric(lines, "dcvpn_cert_missing", "1 if the gateway has no certificate.",
            [({"gateway": r.name}, int(r.status is Status.MISSING)) for r in status.certs])
    if status.ca.seconds_left is not None:
        _metric(lines, "dcvpn_ca_expiry_seconds", "Seconds until the fabric CA expires.",
                [({"serial": status.ca.serial or ""}, status.ca.seconds_left)])
    if status.crl.seconds_left is not None:
        _metric(lines, "dcvpn_crl_next_update_seconds",
                "Seconds until the CRL's next-update (re-sign with dcvpn pki renew before).",
                [({}, status.crl.seconds_left)])
    return "\n".join(lines) + "\n"


def write_prometheus(path: Path, text: str) -> None:
    """Replace the file in one step: the textfile collector never reads half a file."""
    write_atomic(path, text.encode(), PUBLIC_FILE)

