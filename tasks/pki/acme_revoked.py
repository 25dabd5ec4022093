"""Certificates revoked at the ACME CA: `<pki>/acme-revoked.json`.

An ACME CA publishes revocation itself (its CRL or OCSP); dcvpn keeps the serials it had
revoked so that `status`, `issue` and `renew` treat them like the built-in CA's CRL entries.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tasks.pki.errors import CorruptFileError
from tasks.pki.files import PUBLIC_FILE, read_bytes, write_atomic
from tasks.pki.store import Layout


@dataclass(frozen=True)
class AcmeRevocation:
    serial: str  # serial_hex spelling
    gateway: str
    reason: str
    date: str  # ISO 8601, UTC


def read_revocations(layout: Layout) -> tuple[AcmeRevocation, ...]:
    path = layout.acme_revoked
    data = read_bytes(path, "the ACME revocation list")
    if data is None:
        return ()
    try:
        raw = json.loads(data)
        return tuple(AcmeRevocation(str(r["serial"]), str(r["gateway"]), str(r["reason"]),
                                    str(r["date"])) for r in raw["revoked"])
    except (ValueError, KeyError, TypeError):
        raise CorruptFileError(f"{path}: not a dcvpn ACME revocation list") from None


def revoked_serials(layout: Layout) -> frozenset[int]:
    return frozenset(int(r.serial, 16) for r in read_revocations(layout))


def record(layout: Layout, serials: Sequence[str], gateway: str, reason: str,
           now: datetime) -> None:
    """Add entries for `serials` (serial_hex spellings)."""
    known = list(read_revocations(layout))
    date = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    known += [AcmeRevocation(serial, gateway, reason, date) for serial in serials]
    body = {"revoked": [r.__dict__ for r in known]}
    write_atomic(layout.acme_revoked, (json.dumps(body, indent=2) + "\n").encode(), PUBLIC_FILE)
