"""The route and ping checks of a deploy, sorted once by the wave that checks them.

A wave's gate checks a route or ping that touches the wave once none of its gateways changes
in a later wave; otherwise it counts it as deferred to the last wave among its gateways
(tasks.health.gate_plan). A fabric-wide deploy has some 6*10^4 of these checks and every
wave's plan walked all of them; this index walks them once for the whole deploy and hands
each wave its share per gateway.
"""

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from tasks.validate_checks import Kind
from tasks.validate_expect import GatewayExpect, PingExpect, RouteExpect


@dataclass(slots=True)
class Share:
    """One gateway's route and ping checks in one wave: those it checks, and the gateways of
    those it defers by kind and the later wave that checks them (one tuple a check)."""

    routes: list[RouteExpect] = field(default_factory=list)
    pings: list[PingExpect] = field(default_factory=list)
    deferred: dict[tuple[Kind, int], list[tuple[str, ...]]] = field(default_factory=dict)


NOTHING = Share()
_Check = TypeVar("_Check", RouteExpect, PingExpect)


def _routes(share: Share) -> list[RouteExpect]:
    return share.routes


def _pings(share: Share) -> list[PingExpect]:
    return share.pings


class WaveIndex:
    """numbers: gateway -> the number of its wave, for every gateway the deploy changes (the
    waves gate_plan is then asked about, with `later` drawn from the same numbers)."""

    def __init__(self, expected: Mapping[str, GatewayExpect], numbers: Mapping[str, int]
                 ) -> None:
        self.numbers = dict(numbers)
        self._shares: dict[str, defaultdict[int, Share]] = {}
        for name, exp in expected.items():
            self._place(name, Kind.ROUTE, exp.routes, _routes)
            self._place(name, Kind.PING, exp.pings, _pings)

    def _place(self, name: str, kind: Kind, checks: Sequence[_Check],
               kept: Callable[[Share], list[_Check]]) -> None:
        number = self.numbers.get
        shares = self._shares.setdefault(name, defaultdict(Share))
        for check in checks:
            gateways = check.gateways
            waves = [number(g, 0) for g in gateways]
            last = max(waves, default=0)
            if not last:
                continue  # no gateway of it changes: no wave checks it
            kept(shares[last]).append(check)
            for wave in set(waves):
                if 0 < wave < last:
                    shares[wave].deferred.setdefault((kind, last), []).append(gateways)

    def share(self, gateway: str, wave: int) -> Share:
        """gateway's route and ping checks as wave `wave` sees them (read-only)."""
        shares = self._shares.get(gateway)
        return NOTHING if shares is None else shares.get(wave, NOTHING)  # get: adds nothing
