"""`dcvpn diagnose` results as text (likely cause first, then the evidence per end) and JSON."""

import json
from dataclasses import dataclass
from typing import Any

from tasks.diagnose_evidence import EndEvidence, TunnelEvidence, end_dict
from tasks.diagnose_rules import Finding, healthy, likely_cause


@dataclass(frozen=True)
class Diagnosis:
    evidence: TunnelEvidence
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return healthy(list(self.findings))

    @property
    def cause(self) -> Finding | None:
        return likely_cause(list(self.findings))


def _size(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def _end_lines(end: EndEvidence) -> list[str]:
    head = f"  {end.gateway} (site {end.site}, {end.platform}, {end.public_ip}):"
    state = end.state
    if state is None:
        return [head, "    no reader for this platform yet"]
    if not state.reachable:
        return [head, f"    {state.errors.get('gateway', 'not reachable')}"]
    lines = [head]
    daemons = "; ".join(
        f"{d.name} {d.pid} {'up' if d.alive else 'NOT RUNNING'}"
        + (f" ({d.cpu_seconds:.1f}s cpu, {_size(d.rss_bytes)})" if d.alive else "")
        for d in end.daemons())
    lines.append(f"    daemons   {daemons or 'no lab records'}")
    log = end.log()
    rekeys = (f"; {log.ike_rekeys} IKE / {log.child_rekeys} CHILD rekey(s) logged"
              if log else "")
    sas = end.sas()
    if "charon" in state.errors:
        lines.append(f"    IKE SA    unreadable: {state.errors['charon']}")
    elif not sas:
        lines.append(f"    IKE SA    none{rekeys}")
    for sa in sas:
        up = f", up {sa.established_seconds}s" if sa.established_seconds is not None else ""
        lines.append(f"    IKE SA    {sa.state} {sa.proposal} with {sa.remote_id}{up}{rekeys}")
        for c in sa.children:
            lines.append(f"    CHILD SA  {c.state} {c.proposal}, in {c.bytes_in} B/"
                         f"{c.packets_in} pkts, out {c.bytes_out} B/{c.packets_out} pkts")
    if log is not None:
        for kind, message in log.errors.items():
            lines.append(f"    log       {kind}: {message}")
        if log.received_proposals:
            lines.append(f"    log       received {log.received_proposals}; configured "
                         f"{log.configured_proposals}")
    have, want = end.loaded, end.intended
    if have is not None:
        same = "as the model" if want is not None and (
            have.ike_proposals, have.esp_proposals, have.local_id, have.remote_id) == (
            want.ike_proposals, want.esp_proposals, want.local_id, want.remote_id) \
            else "NOT as the model"
        lines.append(f"    config    IKE {','.join(have.ike_proposals)}  ESP "
                     f"{','.join(have.esp_proposals)}  {have.local_id} -> {have.remote_id} "
                     f"({same})")
    elif "config" in state.errors:
        lines.append(f"    config    unreadable: {state.errors['config']}")
    n = end.neighbor()
    if "bgpd" in state.errors:
        lines.append(f"    BGP       unreadable: {state.errors['bgpd']}")
    elif n is None:
        lines.append(f"    BGP       no neighbor {end.bgp_neighbor}")
    else:
        lines.append(f"    BGP       {n.address} {n.state}, {n.established} established / "
                     f"{n.dropped} dropped, {n.prefixes_received} prefix(es) received")
    cert = end.cert
    if cert is not None:
        lines.append(f"    cert      {cert.status}, not after {cert.not_after}, "
                     f"serial {cert.serial}")
    return lines


def as_text(diagnoses: list[Diagnosis], notes: tuple[str, ...]) -> str:
    lines: list[str] = []
    for d in diagnoses:
        ev = d.evidence
        a, b = ev.ends
        verdict = "healthy" if d.ok else "PROBLEM"
        lines.append(f"{ev.tunnel} (plane {ev.plane}): {a.gateway} <-> {b.gateway}: {verdict}")
        cause = d.cause
        if cause is not None:
            lines.append(f"  LIKELY CAUSE: {cause.cause}")
            lines.append(f"    advice: {cause.advice}")
        rest = [f for f in d.findings if f is not cause]
        if rest:
            lines.append("  also:")
            lines += [f"    {f.severity!s:<8} {f.cause}" for f in rest]
        lines += _end_lines(a) + _end_lines(b)
        if ev.mtu is not None:
            lines.append(f"  MTU probe   {'passed' if ev.mtu.ok else 'FAILED'}: {ev.mtu.detail}")
        lines.append("")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines).rstrip("\n") + "\n"


def as_dict(diagnoses: list[Diagnosis], fabric: str, notes: tuple[str, ...]) -> dict[str, Any]:
    return {
        "fabric": fabric,
        "ok": all(d.ok for d in diagnoses),
        "tunnels": [{
            "tunnel": d.evidence.tunnel, "plane": d.evidence.plane, "ok": d.ok,
            "likely_cause": d.cause.as_dict() if d.cause else None,
            "findings": [f.as_dict() for f in d.findings],
            "ends": [end_dict(e) for e in d.evidence.ends],
            "mtu_probe": None if d.evidence.mtu is None else {
                "ok": d.evidence.mtu.ok, "mtu": d.evidence.mtu.mtu,
                "detail": d.evidence.mtu.detail},
        } for d in diagnoses],
        "notes": list(notes),
    }


def as_json(diagnoses: list[Diagnosis], fabric: str, notes: tuple[str, ...]) -> str:
    return json.dumps(as_dict(diagnoses, fabric, notes), indent=2) + "\n"
