"""`dcvpn diagnose`: gather the evidence of one tunnel (or a site's tunnels) from both ends.

Thin I/O around tasks.diagnose_rules: which tunnels a target names, each end's runtime state
(tasks.gateway_read), the connection as the model renders it (tasks.render, parsed back
with tasks.swanctl_conf), certificate status from the PKI directory (tasks.pki.status), and
an MTU probe (the validator's: a DF ping at the tunnel MTU passes, one byte more does not)
when the tunnel is up at both ends. Only strongSwan gateways running in the lab have a
reader so far; other platforms are reported as such.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from inventory.model import Platform
from inventory.topology import CompiledFabric, Endpoint, Tunnel
from tasks.diagnose_evidence import CertEvidence, EndEvidence, MtuEvidence, TunnelEvidence
from tasks.gateway_read import read_gateway
from tasks.gateway_state import GatewayState
from tasks.lab_records import LabRecords
from tasks.pki.errors import PkiError
from tasks.pki.status import pki_status
from tasks.pki.store import Layout
from tasks.render import render_gateway
from tasks.render_strongswan import SECRETS_FILE
from tasks.swanctl_conf import ConnConfig, connections, secrets, with_secrets
from tasks.validate import probe_checks
from tasks.validate_checks import Kind, Status
from tasks.validate_expect import GatewayExpect, expect_fabric
from tasks.validate_strongswan import LocalGateway, StrongswanReader

_PAIR = re.compile(r"^(?P<a>[^<>\s]+?)\s*(?:<->|<>|--)\s*(?P<b>[^<>\s]+?)(?:[/ ]p(?P<plane>\d+))?$")


class TargetError(ValueError):
    """The tunnel or site named on the command line is not in the fabric."""


def resolve_target(compiled: CompiledFabric, target: str) -> list[Tunnel]:
    """Tunnels named by `target`: a tunnel name (`fra1-iad1-p0`) or id, a site pair
    (`fra1<->iad1`, either order, every plane; `fra1<->iad1/p1` one plane), a site (all its
    tunnels) or a gateway (all of its tunnels)."""
    text = target.strip()
    by_name = [t for t in compiled.tunnels if t.name == text]
    if by_name:
        return by_name
    if text.isdigit():
        by_id = [t for t in compiled.tunnels if t.id == int(text)]
        if by_id:
            return by_id
    sites = {s.name for s in compiled.fabric.sites}
    pair = _PAIR.match(text)
    if pair is not None:
        want = {pair.group("a"), pair.group("b")}
        unknown = sorted(want - sites)
        if unknown:
            raise TargetError(f"unknown site(s) {', '.join(unknown)} in {target!r}")
        plane = pair.group("plane")
        found = [t for t in compiled.tunnels if {e.site for e in t.endpoints} == want
                 and (plane is None or t.plane == int(plane))]
        if not found:
            raise TargetError(f"no tunnel between {' and '.join(sorted(want))}"
                              + (f" on plane {plane}" if plane is not None else "")
                              + " (see dcvpn topology)")
        return found
    if text in sites:
        return [t for t in compiled.tunnels if any(e.site == text for e in t.endpoints)]
    gateways = {gw.name for _, gw in compiled.gateways()}
    if text in gateways:
        return [t for t in compiled.tunnels if any(e.gateway == text for e in t.endpoints)]
    raise TargetError(f"{target!r} is neither a tunnel, a site pair (a<->b), a site nor a "
                      "gateway of this fabric (see dcvpn topology)")


@dataclass(frozen=True)
class Gathered:
    tunnels: tuple[TunnelEvidence, ...]
    notes: tuple[str, ...]  # what could not be looked at, and why


def intended_connections(compiled: CompiledFabric, gateway: str) -> dict[str, ConnConfig]:
    """A strongSwan gateway's connections as the model renders them (PSKs as references)."""
    files = render_gateway(compiled, gateway)
    conns = connections(files["swanctl.conf"])
    return with_secrets(conns, secrets(files[SECRETS_FILE]) if SECRETS_FILE in files else {})


def _certs(pki_dir: Path | None, gateways: Sequence[str], now: datetime,
           notes: list[str]) -> dict[str, CertEvidence]:
    if pki_dir is None:
        notes.append("certificates not checked: no PKI directory (--pki-dir, DCVPN_PKI_DIR, "
                     "or a lab with certificates)")
        return {}
    try:
        status = pki_status(Layout(pki_dir), gateways, now)
    except PkiError as exc:
        notes.append(f"certificates not checked: {exc}")
        return {}
    return {r.name: CertEvidence(r.name, str(r.status), r.serial,
                                 r.as_dict()["not_after"], r.days_left, str(pki_dir))
            for r in status.certs}


def _mtu(expected: GatewayExpect, a: Endpoint, b: Endpoint, lab_dir: Path,
         scope: set[str]) -> MtuEvidence | None:
    """The validator's MTU probe for this pair of sites, if it has one (first gateways)."""
    pings = tuple(p for p in expected.pings if p.target_gateway == b.gateway
                  and p.mtu is not None)
    if not pings:
        return None
    reader = StrongswanReader(LocalGateway.in_lab(lab_dir, a.gateway))
    results = probe_checks(replace(expected, pings=pings), reader, {Kind.MTU}, scope)
    if not results:
        return None
    r = results[0]
    return MtuEvidence(r.status is Status.PASS, pings[0].mtu or 0, r.observed)


def gather(compiled: CompiledFabric, lab_dir: Path, tunnels: Sequence[Tunnel],
           records: LabRecords | None, pki_dir: Path | None, now: datetime,
           probe: bool = True) -> Gathered:
    notes: list[str] = []
    ends = sorted({e.gateway for t in tunnels for e in t.endpoints})
    platform = {gw.name: gw.platform for _, gw in compiled.gateways()}
    local = [g for g in ends if platform[g] is Platform.STRONGSWAN]
    states: dict[str, GatewayState] = {g: read_gateway(compiled, lab_dir, g, records)
                                       for g in local}
    intended = {g: intended_connections(compiled, g) for g in local}
    auth = compiled.fabric.fabric.auth.method
    certs = _certs(pki_dir, ends, now, notes) if auth == "certificate" else {}
    expected = expect_fabric(compiled) if probe else {}
    scope = {g for g, s in states.items() if s.reachable}
    sessions = {s.tunnel_id: s for s in compiled.sessions}
    out = []
    for t in tunnels:
        session = sessions[t.id]
        pair = []
        for e in t.endpoints:
            _, peer_bgp = session.side(e.gateway)
            pair.append(EndEvidence(
                t.name, e.gateway, e.site, str(platform[e.gateway]), e.public_ip,
                peer_bgp.address, states.get(e.gateway),
                intended.get(e.gateway, {}).get(t.name), certs.get(e.gateway)))
        a, b = pair
        mtu = None
        both_up = all(x.state is not None and x.state.tunnel_up(t.name) for x in pair)
        if probe and both_up:
            mtu = _mtu(expected[a.gateway], t.endpoints[0], t.endpoints[1], lab_dir, scope)
        elif probe:
            notes.append(f"{t.name}: MTU probe not run (the tunnel is not up at both ends)")
        out.append(TunnelEvidence(t.name, t.plane, auth, (a, b), mtu))
    return Gathered(tuple(out), tuple(notes))
