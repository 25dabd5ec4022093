"""Plausible SA figures for an emulated tunnel, from device time alone.

No packet crosses an emulated tunnel, so the numbers are synthetic but consistent: they grow
with the time since both ends agreed (TunnelState.since, device clock), CHILD SAs are
replaced every ESP lifetime (new SPIs, the remaining lifetime starts again) and IKE SAs every
IKE lifetime, so a rekey check or a metrics exporter sees something that moves.
"""

import hashlib
from dataclasses import dataclass

PACKETS_PER_SECOND = 10  # each direction: BGP keepalives, BFD and a trickle of traffic
BYTES_PER_PACKET = 120


@dataclass(frozen=True)
class SaFigures:
    age: int  # seconds since the tunnel came up
    generation: int  # how many times the SA was replaced (rekeys)
    remaining: int  # seconds until the next rekey
    installed: int  # device epoch seconds when the current SA was installed
    spi_in: int
    spi_out: int
    packets: int  # cumulative, each direction
    octets: int


def _spi(*parts: object) -> int:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return 0x100 + int.from_bytes(digest[:4], "big") % 0xFFFFFE00


def sa_figures(local: str, remote: str, since: float, now: float, lifetime: int) -> SaFigures:
    """Both ends compute the same SPIs: one end's inbound is the other's outbound."""
    age = max(0, int(now - since))
    period = max(1, lifetime)
    generation, into = divmod(age, period)
    low, high = sorted((local, remote))
    first, second = (_spi(low, high, since, generation, side) for side in ("a", "b"))
    spi_in, spi_out = (first, second) if local == low else (second, first)
    packets = age * PACKETS_PER_SECOND
    return SaFigures(age, generation, period - into, int(since) + generation * period,
                     spi_in, spi_out, packets, packets * BYTES_PER_PACKET)
