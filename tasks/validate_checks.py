"""The post-change checks: pure functions of expected and observed state, one result each.

Each result is named `<kind> <where> <what>` (e.g. `child ams1-gw1 ams1-lon1-p0`,
`route lon1-gw1 10.1.0.0/24`, `ping ams1->lon1`), says what was expected and what was
observed, and lists the sites and gateways it depends on, so that a fault at one site can be
told apart from the rest.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Network

from tasks.validate_expect import (
    BgpExpect,
    PingExpect,
    Proposal,
    RouteExpect,
    TunnelExpect,
)
from tasks.validate_observed import BgpPeer, ChildSa, IkeSa, PingResult, ReadError, Route


class Kind(StrEnum):
    IKE = "ike"
    CHILD = "child"
    BGP = "bgp"
    ROUTE = "route"
    PING = "ping"
    MTU = "mtu"


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


ESTABLISHED = "ESTABLISHED"
INSTALLED = "INSTALLED"
BGP_ESTABLISHED = "Established"


@dataclass(frozen=True, slots=True)
class CheckResult:
    kind: Kind
    gateway: str  # where it was observed
    subject: str  # tunnel, neighbor address, prefix or site pair
    status: Status
    expected: str
    observed: str
    sites: tuple[str, ...]
    gateways: tuple[str, ...]

    @property
    def name(self) -> str:
        if self.kind in (Kind.PING, Kind.MTU):
            return f"{self.kind} {self.subject}"
        return f"{self.kind} {self.gateway} {self.subject}"

    @property
    def ok(self) -> bool:
        return self.status is not Status.FAIL

    @property
    def message(self) -> str:
        return f"expected {self.expected}; observed {self.observed}"

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": str(self.kind), "gateway": self.gateway,
                "subject": self.subject, "status": str(self.status),
                "expected": self.expected, "observed": self.observed,
                "sites": list(self.sites), "gateways": list(self.gateways)}


def _status(ok: bool) -> Status:
    return Status.PASS if ok else Status.FAIL


def _matches(expected: Proposal, observed: Proposal) -> bool:
    return (expected.encryption == observed.encryption
            and (expected.key_size is None or expected.key_size == observed.key_size)
            and expected.integrity == observed.integrity
            and expected.prf == observed.prf
            and (observed.dh_group is None or expected.dh_group == observed.dh_group))


def _ike_proposal(sa: IkeSa) -> Proposal:
    return Proposal(sa.encryption or "?", sa.key_size, sa.integrity, sa.prf, sa.dh_group)


def _child_proposal(child: ChildSa) -> Proposal:
    return Proposal(child.encryption, child.key_size, child.integrity, None, child.dh_group)


def _with_error(text: str, errors: dict[str, str], name: str) -> str:
    error = errors.get(name)
    return f"{text}; negotiation failed: {error}" if error else text


def _tunnel_result(kind: Kind, exp: TunnelExpect, ok: bool, expected: str,
                   observed: str) -> CheckResult:
    return CheckResult(kind, exp.gateway, exp.name, _status(ok), expected, observed,
                       tuple(sorted(set(exp.sites))),
                       tuple(sorted({exp.gateway, exp.peer_gateway})))


def check_ike(exp: TunnelExpect, sas: Sequence[IkeSa] | ReadError,
              errors: dict[str, str]) -> CheckResult:
    expected = f"IKE SA {ESTABLISHED} with {exp.remote_id} ({exp.ike.describe()})"
    if isinstance(sas, ReadError):
        return _tunnel_result(Kind.IKE, exp, False, expected, f"unreadable: {sas}")
    mine = [sa for sa in sas if sa.name == exp.name]
    if not mine:
        return _tunnel_result(Kind.IKE, exp, False, expected,
                              _with_error("no IKE SA", errors, exp.name))
    up = [sa for sa in mine if sa.state == ESTABLISHED]
    if not up:
        states = ", ".join(sorted({sa.state for sa in mine}))
        return _tunnel_result(Kind.IKE, exp, False, expected,
                              _with_error(f"IKE SA {states}", errors, exp.name))
    for sa in up:
        if _matches(exp.ike, _ike_proposal(sa)) and sa.remote_id == exp.remote_id:
            return _tunnel_result(Kind.IKE, exp, True, expected,
                                  f"IKE SA {ESTABLISHED} with {sa.remote_id} "
                                  f"({_ike_proposal(sa).describe()})")
    sa = up[0]
    return _tunnel_result(Kind.IKE, exp, False, expected,
                          f"IKE SA {ESTABLISHED} with {sa.remote_id} "
                          f"({_ike_proposal(sa).describe()})")


def check_child(exp: TunnelExpect, sas: Sequence[IkeSa] | ReadError,
                errors: dict[str, str]) -> CheckResult:
    expected = f"CHILD SA {INSTALLED} ({exp.esp.describe()})"
    if isinstance(sas, ReadError):
        return _tunnel_result(Kind.CHILD, exp, False, expected, f"unreadable: {sas}")
    children = [c for sa in sas if sa.name == exp.name and sa.state == ESTABLISHED
                for c in sa.children if c.name == exp.name]
    installed = [c for c in children if c.state == INSTALLED]
    if not installed:
        what = (f"CHILD SA {', '.join(sorted({c.state for c in children}))}" if children
                else "no CHILD SA")
        return _tunnel_result(Kind.CHILD, exp, False, expected,
                              _with_error(what, errors, exp.name))
    for child in installed:
        seen = _child_proposal(child)
        if _matches(exp.esp, seen):
            note = "" if seen.dh_group else " (PFS group shows after the first rekey)"
            return _tunnel_result(Kind.CHILD, exp, True, expected,
                                  f"CHILD SA {INSTALLED} ({seen.describe()}){note}")
    return _tunnel_result(Kind.CHILD, exp, False, expected,
                          f"CHILD SA {INSTALLED} ({_child_proposal(installed[0]).describe()})")


def check_bgp(exp: BgpExpect, peers: Sequence[BgpPeer] | ReadError) -> CheckResult:
    expected = f"BGP {BGP_ESTABLISHED} with {exp.address} AS {exp.remote_as}"

    def result(ok: bool, observed: str) -> CheckResult:
        return CheckResult(Kind.BGP, exp.gateway, str(exp.address), _status(ok), expected,
                           observed, tuple(sorted(set(exp.sites))),
                           tuple(sorted({exp.gateway, exp.peer_gateway})))

    if isinstance(peers, ReadError):
        return result(False, f"unreadable: {peers}")
    peer = next((p for p in peers if p.address == exp.address), None)
    if peer is None:
        return result(False, f"no neighbor {exp.address}")
    observed = f"BGP {peer.state} with {peer.address} AS {peer.remote_as}"
    return result(peer.state == BGP_ESTABLISHED and peer.remote_as == exp.remote_as, observed)


def _describe_route(route: Route) -> str:
    via = f" via {route.gateway}" if route.gateway else ""
    dev = f" dev {route.device}" if route.device else ""
    return f"{route.prefix}{via}{dev} ({route.protocol})"


def covering(prefix: IPv4Network, routes: Sequence[Route]) -> Route | None:
    """The most specific route that covers `prefix` without being exactly it."""
    wider = [r for r in routes if r.prefix != prefix and prefix.subnet_of(r.prefix)]
    return max(wider, key=lambda r: r.prefix.prefixlen, default=None)


def check_route(exp: RouteExpect, routes: Sequence[Route] | ReadError) -> CheckResult:
    via = " or ".join(f"{hop} ({t})" for hop, t in zip(exp.via, exp.tunnels, strict=True))
    expected = f"route {exp.prefix} via {via}"

    def result(ok: bool, observed: str) -> CheckResult:
        return CheckResult(Kind.ROUTE, exp.gateway, str(exp.prefix), _status(ok), expected,
                           observed, exp.sites, exp.gateways)

    if isinstance(routes, ReadError):
        return result(False, f"unreadable: {routes}")
    exact = [r for r in routes if r.prefix == exp.prefix]
    if not exact:
        wide = covering(exp.prefix, routes)
        hidden = (f" (only covered by {_describe_route(wide)}, which does not count)"
                  if wide else "")
        return result(False, f"no route for {exp.prefix}{hidden}")
    good = [r for r in exact if r.gateway in exp.via]
    return result(bool(good), "route " + "; ".join(_describe_route(r) for r in good or exact))


def _pair(exp: PingExpect) -> str:
    return f"{exp.pair[0]}->{exp.pair[1]}"


def check_ping(exp: PingExpect, result: PingResult) -> CheckResult:
    return CheckResult(Kind.PING, exp.gateway, _pair(exp), _status(result.ok),
                       f"echo reply from {exp.target} to {exp.source}",
                       ("reply" if result.ok else "no reply") + f" ({result.detail})",
                       exp.sites, exp.gateways)


def check_mtu(exp: PingExpect, at_mtu: PingResult, above: PingResult) -> CheckResult:
    """DF-set ping of exactly the tunnel MTU passes; one byte more must not get through."""
    mtu = exp.mtu
    expected = f"{mtu}-byte DF ping passes, {mtu}+1 bytes refused"
    ok = at_mtu.ok and not above.ok
    observed = (f"{mtu} bytes {'passed' if at_mtu.ok else 'failed'} ({at_mtu.detail}); "
                f"{mtu}+1 bytes {'passed' if above.ok else 'refused'} ({above.detail})")
    return CheckResult(Kind.MTU, exp.gateway, _pair(exp), _status(ok), expected, observed,
                       exp.sites, exp.gateways)


def skipped(result: CheckResult, reason: str) -> CheckResult:
    return CheckResult(result.kind, result.gateway, result.subject, Status.SKIP,
                       result.expected, f"not checked: {reason}", result.sites,
                       result.gateways)
