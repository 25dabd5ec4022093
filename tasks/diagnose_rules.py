"""From a tunnel's evidence to ranked findings: symptoms -> likely cause -> advice (pure).

Each detector looks at the evidence of both ends and names symptoms; RULES says, per
symptom, how likely it is the root cause (a lower rank is printed first), how bad it is,
and what to say and do. A cause outranks its consequences: a dead charon explains a
missing IKE SA, an unanswered peer and a BGP session that is down, so it comes first.
Only ERROR findings make a tunnel unhealthy; WARNINGs are reported beside them.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tasks.charon_log import LogErrorKind
from tasks.diagnose_evidence import EndEvidence, TunnelEvidence
from tasks.gateway_state import BGP_ESTABLISHED, ESTABLISHED, INSTALLED
from tasks.swanctl_conf import proposals_agree


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Symptom(StrEnum):
    GATEWAY_NOT_RUNNING = "gateway-not-running"
    CHARON_DOWN = "charon-down"
    FRR_DAEMON_DOWN = "frr-daemon-down"
    CHARON_UNREADABLE = "charon-unreadable"
    BGPD_UNREADABLE = "bgpd-unreadable"
    CERT_REVOKED = "cert-revoked"
    CERT_EXPIRED = "cert-expired"
    CERT_MISSING = "cert-missing"
    IKE_PROPOSAL_MISMATCH = "ike-proposal-mismatch"
    ESP_PROPOSAL_MISMATCH = "esp-proposal-mismatch"
    IDENTITY_MISMATCH = "identity-mismatch"
    PSK_MISMATCH = "psk-mismatch"
    CONN_NOT_LOADED = "connection-not-loaded"
    CONFIG_DRIFT = "config-drift"
    LOG_CERT_REFUSED = "log-certificate-refused"
    LOG_AUTH_FAILED = "log-authentication-failed"
    LOG_NO_PROPOSAL = "log-no-proposal-chosen"
    LOG_TS_UNACCEPTABLE = "log-ts-unacceptable"
    PEER_NOT_RESPONDING = "peer-not-responding"
    IKE_DOWN = "ike-down"
    CHILD_DOWN = "child-down"
    BGP_DOWN = "bgp-down"
    MTU_PROBE_FAILED = "mtu-probe-failed"
    BGP_FLAPS = "bgp-flaps"
    CERT_EXPIRING = "cert-expiring"
    NO_READER = "no-reader"


@dataclass(frozen=True, slots=True)
class Rule:
    rank: int
    severity: Severity
    cause: str  # str.format template over the detector's parameters
    advice: str


E, W = Severity.ERROR, Severity.WARNING
RULES: dict[Symptom, Rule] = {
    Symptom.GATEWAY_NOT_RUNNING: Rule(
        5, E, "{gateway} is not running: {reason}",
        "start the lab (dcvpn lab up) or give the --lab-dir it runs in"),
    Symptom.CHARON_DOWN: Rule(
        10, E, "charon on {gateway} is not running (PID {pid} recorded by the lab is gone)",
        "see {gateway}'s charon.out and charon.log for why it stopped; restart the lab "
        "(dcvpn lab down, dcvpn lab up)"),
    Symptom.FRR_DAEMON_DOWN: Rule(
        12, E, "{daemon} on {gateway} is not running (PID {pid} recorded by the lab is gone)",
        "see {gateway}'s frr/{daemon}.out; restart the lab (dcvpn lab down, dcvpn lab up)"),
    Symptom.CHARON_UNREADABLE: Rule(
        15, E, "charon on {gateway} does not answer: {error}",
        "check that charon runs in namespace dcvpn-{gateway} and owns its vici socket"),
    Symptom.BGPD_UNREADABLE: Rule(
        16, E, "bgpd on {gateway} does not answer: {error}",
        "check that bgpd runs in namespace dcvpn-{gateway} (vtysh --vty_socket)"),
    Symptom.CERT_REVOKED: Rule(
        20, E, "certificate of {gateway} is revoked (serial {serial})",
        "issue a new one (dcvpn pki issue --reissue-revoked) and deliver it "
        "(dcvpn lab reload-creds, or a deploy)"),
    Symptom.CERT_EXPIRED: Rule(
        21, E, "certificate of {gateway} expired {not_after}",
        "renew it (dcvpn pki renew) and deliver it (dcvpn lab reload-creds, or a deploy)"),
    Symptom.CERT_MISSING: Rule(
        22, E, "{gateway} has no certificate in {source}",
        "issue one: dcvpn pki issue"),
    Symptom.IKE_PROPOSAL_MISMATCH: Rule(
        30, E, "IKE proposal mismatch: {a} offers {a_props}, {b} expects {b_props}{drift}",
        "make both ends use the model's IKE proposal: dcvpn diff, then dcvpn deploy"),
    Symptom.ESP_PROPOSAL_MISMATCH: Rule(
        31, E, "ESP proposal mismatch: {a} offers {a_props}, {b} expects {b_props}{drift}",
        "make both ends use the model's ESP proposal: dcvpn diff, then dcvpn deploy"),
    Symptom.IDENTITY_MISMATCH: Rule(
        32, E, "identity mismatch: {a} expects its peer to be {expected}, {b} presents "
               "{presented}",
        "render and deploy both ends from the same model (identities come from it)"),
    Symptom.PSK_MISMATCH: Rule(
        33, E, "the pre-shared keys of {a} and {b} for this tunnel differ",
        "deliver the same secret to both ends (secrets directory psk/{tunnel}), then "
        "swanctl --load-creds"),
    Symptom.CONN_NOT_LOADED: Rule(
        34, E, "{gateway} has no connection {tunnel} in its loaded configuration",
        "deploy the rendered configuration to {gateway} (dcvpn deploy)"),
    Symptom.CONFIG_DRIFT: Rule(
        36, E, "{gateway}'s loaded configuration differs from the model: {what}",
        "dcvpn diff shows the change; dcvpn deploy puts the model back"),
    Symptom.LOG_CERT_REFUSED: Rule(
        40, E, "{gateway} refuses a certificate: {message}",
        "check the certificates and the CRL: dcvpn pki status"),
    Symptom.LOG_AUTH_FAILED: Rule(
        41, E, "authentication fails at {gateway}: {message}",
        "compare identities, certificates or pre-shared keys of both ends"),
    Symptom.LOG_NO_PROPOSAL: Rule(
        42, E, "{gateway} logs NO_PROPOSAL_CHOSEN: {message}",
        "compare the IKE/ESP proposals of both ends (dcvpn diff)"),
    Symptom.LOG_TS_UNACCEPTABLE: Rule(
        43, E, "traffic selectors refused at {gateway}: {message}",
        "both ends must be rendered from the same model (selectors come from its prefixes)"),
    Symptom.PEER_NOT_RESPONDING: Rule(
        50, E, "{gateway} gets no answer from {peer} ({peer_ip}): {message}",
        "check {peer}'s charon and the underlay path (UDP 500/4500) between them"),
    Symptom.IKE_DOWN: Rule(
        60, E, "no established IKE SA for {tunnel} on {gateway} ({observed})",
        "see the other findings; swanctl --initiate --child {tunnel} retries at once"),
    Symptom.CHILD_DOWN: Rule(
        61, E, "IKE SA up but no installed CHILD SA for {tunnel} on {gateway} ({observed})",
        "see charon.log of {gateway} for the CHILD_SA negotiation"),
    Symptom.BGP_DOWN: Rule(
        70, E, "BGP from {gateway} to {neighbor} is {state}{reset}",
        "BGP needs the tunnel: fix the tunnel first, then check frr.conf of both ends"),
    Symptom.MTU_PROBE_FAILED: Rule(
        80, E, "MTU probe failed: {detail}",
        "check the tunnel MTU and MSS clamp (interfaces.sh) against the model's path_mtu"),
    Symptom.BGP_FLAPS: Rule(
        88, W, "BGP from {gateway} to {neighbor} has dropped {dropped} time(s) "
               "({established} established)",
        "look for tunnel rekeys or DPD restarts at the same times (charon.log)"),
    Symptom.CERT_EXPIRING: Rule(
        90, W, "certificate of {gateway} expires {not_after} ({days} day(s) left)",
        "renew it: dcvpn pki renew"),
    Symptom.NO_READER: Rule(
        95, W, "{gateway} ({platform}) cannot be read by diagnose yet: evidence from the "
               "other end only", "inspect it on the device"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    symptom: Symptom
    severity: Severity
    rank: int
    gateway: str | None
    cause: str
    advice: str

    def as_dict(self) -> dict[str, Any]:
        return {"symptom": str(self.symptom), "severity": str(self.severity),
                "rank": self.rank, "gateway": self.gateway, "cause": self.cause,
                "advice": self.advice}


def finding(symptom: Symptom, gateway: str | None, **params: Any) -> Finding:
    rule = RULES[symptom]
    values = {"gateway": gateway, **params}
    return Finding(symptom, rule.severity, rule.rank, gateway, rule.cause.format(**values),
                   rule.advice.format(**values))


def rank(findings: list[Finding]) -> list[Finding]:
    """Most likely cause first; ties in gateway order; duplicates dropped."""
    seen: set[tuple[Symptom, str]] = set()
    out = []
    for f in sorted(findings, key=lambda f: (f.rank, f.gateway or "", f.cause)):
        if (f.symptom, f.cause) not in seen:
            seen.add((f.symptom, f.cause))
            out.append(f)
    return out


def likely_cause(findings: list[Finding]) -> Finding | None:
    return next((f for f in rank(findings) if f.severity is Severity.ERROR), None)


# --- detectors ------------------------------------------------------------------------------

def _daemons(end: EndEvidence) -> Iterator[Finding]:
    state = end.state
    if state is None:
        yield finding(Symptom.NO_READER, end.gateway, platform=end.platform)
        return
    if not state.reachable:
        yield finding(Symptom.GATEWAY_NOT_RUNNING, end.gateway,
                      reason=state.errors.get("gateway", "unknown"))
        return
    dead = {d.name for d in state.daemons if not d.alive}
    for d in state.daemons:
        if not d.alive:
            symptom = Symptom.CHARON_DOWN if d.name == "charon" else Symptom.FRR_DAEMON_DOWN
            yield finding(symptom, end.gateway, daemon=d.name, pid=d.pid)
    if "charon" in state.errors and "charon" not in dead:
        yield finding(Symptom.CHARON_UNREADABLE, end.gateway, error=state.errors["charon"])
    if "bgpd" in state.errors and not dead & {"bgpd", "zebra"}:
        yield finding(Symptom.BGPD_UNREADABLE, end.gateway, error=state.errors["bgpd"])


def _certs(ev: TunnelEvidence, end: EndEvidence) -> Iterator[Finding]:
    cert = end.cert
    if cert is None or ev.auth != "certificate":
        return
    if cert.status == "revoked":
        yield finding(Symptom.CERT_REVOKED, end.gateway, serial=cert.serial)
    elif cert.status == "expired":
        yield finding(Symptom.CERT_EXPIRED, end.gateway, not_after=cert.not_after)
    elif cert.status == "missing":
        yield finding(Symptom.CERT_MISSING, end.gateway, source=cert.source)
    elif cert.status == "expiring":
        yield finding(Symptom.CERT_EXPIRING, end.gateway, not_after=cert.not_after,
                      days=cert.days_left)


def _props(props: tuple[str, ...]) -> str:
    return ",".join(props)


def _drift_note(ends: tuple[EndEvidence, EndEvidence], field: str) -> str:
    off = [e.gateway for e in ends if e.loaded is not None and e.intended is not None
           and not proposals_agree(getattr(e.loaded, field), getattr(e.intended, field))]
    if not off:
        return ""
    return f" ({', '.join(off)} differ{'s' if len(off) == 1 else ''} from the model)"


def _pair(ev: TunnelEvidence) -> Iterator[Finding]:
    """The two ends' loaded configurations against each other."""
    a, b = ev.ends
    ca, cb = a.loaded, b.loaded
    if ca is None or cb is None:
        return
    for symptom, field in ((Symptom.IKE_PROPOSAL_MISMATCH, "ike_proposals"),
                           (Symptom.ESP_PROPOSAL_MISMATCH, "esp_proposals")):
        pa, pb = getattr(ca, field), getattr(cb, field)
        if not proposals_agree(pa, pb):
            yield finding(symptom, None, a=a.gateway, b=b.gateway, a_props=_props(pa),
                          b_props=_props(pb), drift=_drift_note(ev.ends, field))
    for x, y, cx, cy in ((a, b, ca, cb), (b, a, cb, ca)):
        if cx.remote_id != cy.local_id:
            yield finding(Symptom.IDENTITY_MISMATCH, None, a=x.gateway, b=y.gateway,
                          expected=cx.remote_id, presented=cy.local_id)
    if ev.auth == "psk":
        sa, sb = (ca.secret_digest or ca.secret_ref), (cb.secret_digest or cb.secret_ref)
        if sa is not None and sb is not None and sa != sb:
            yield finding(Symptom.PSK_MISMATCH, None, a=a.gateway, b=b.gateway,
                          tunnel=ev.tunnel)


def _drift(ev: TunnelEvidence, end: EndEvidence) -> Iterator[Finding]:
    state, want = end.state, end.intended
    if state is None or not state.reachable or want is None or "config" in state.errors:
        return
    have = end.loaded
    if have is None:
        yield finding(Symptom.CONN_NOT_LOADED, end.gateway, tunnel=ev.tunnel)
        return
    what = []
    if not proposals_agree(have.ike_proposals, want.ike_proposals):
        what.append(f"IKE {_props(have.ike_proposals)} instead of {_props(want.ike_proposals)}")
    if not proposals_agree(have.esp_proposals, want.esp_proposals):
        what.append(f"ESP {_props(have.esp_proposals)} instead of {_props(want.esp_proposals)}")
    for label, got, exp in (("local id", have.local_id, want.local_id),
                            ("remote id", have.remote_id, want.remote_id),
                            ("auth", have.auth, want.auth)):
        if got != exp:
            what.append(f"{label} {got} instead of {exp}")
    if what:
        yield finding(Symptom.CONFIG_DRIFT, end.gateway, what="; ".join(what))


_LOG_SYMPTOMS = {
    LogErrorKind.CERT_REVOKED: Symptom.LOG_CERT_REFUSED,
    LogErrorKind.CERT_EXPIRED: Symptom.LOG_CERT_REFUSED,
    LogErrorKind.CERT_UNTRUSTED: Symptom.LOG_CERT_REFUSED,
    LogErrorKind.AUTH_FAILED: Symptom.LOG_AUTH_FAILED,
    LogErrorKind.NO_PROPOSAL: Symptom.LOG_NO_PROPOSAL,
    LogErrorKind.TS_UNACCEPTABLE: Symptom.LOG_TS_UNACCEPTABLE,
    LogErrorKind.PEER_NOT_RESPONDING: Symptom.PEER_NOT_RESPONDING,
}


def _log(end: EndEvidence, peer: EndEvidence) -> Iterator[Finding]:
    log = end.log()
    if log is None or (end.state is not None and end.state.tunnel_up(end.tunnel)):
        return  # errors before the tunnel came up again are history
    for kind, logged in log.errors.items():
        message = logged
        if kind is LogErrorKind.NO_PROPOSAL and log.received_proposals:
            message += (f" (received {log.received_proposals}; "
                        f"configured {log.configured_proposals})")
        yield finding(_LOG_SYMPTOMS[kind], end.gateway, message=message, peer=peer.gateway,
                      peer_ip=peer.public_ip)


def _sas(end: EndEvidence) -> Iterator[Finding]:
    state = end.state
    if state is None or not state.reachable or "charon" in state.errors:
        return
    sas = end.sas()
    up = [sa for sa in sas if sa.state == ESTABLISHED]
    if not up:
        observed = ", ".join(sorted({sa.state for sa in sas})) or "none"
        yield finding(Symptom.IKE_DOWN, end.gateway, tunnel=end.tunnel, observed=observed)
        return
    children = [c for sa in up for c in sa.children if c.name == end.tunnel]
    if not any(c.state == INSTALLED for c in children):
        observed = ", ".join(sorted({c.state for c in children})) or "none"
        yield finding(Symptom.CHILD_DOWN, end.gateway, tunnel=end.tunnel, observed=observed)


def _bgp(end: EndEvidence) -> Iterator[Finding]:
    state = end.state
    if state is None or not state.reachable or "bgpd" in state.errors:
        return
    n = end.neighbor()
    if n is None:
        yield finding(Symptom.BGP_DOWN, end.gateway, neighbor=end.bgp_neighbor,
                      state="not configured", reset="")
        return
    if n.state != BGP_ESTABLISHED:
        reset = f" (last reset: {n.last_reset})" if n.last_reset else ""
        yield finding(Symptom.BGP_DOWN, end.gateway, neighbor=n.address, state=n.state,
                      reset=reset)
    elif n.dropped > 0:
        yield finding(Symptom.BGP_FLAPS, end.gateway, neighbor=n.address, dropped=n.dropped,
                      established=n.established)


def detect(ev: TunnelEvidence) -> list[Finding]:
    """Every finding of one tunnel, ranked (most likely cause first)."""
    a, b = ev.ends
    out: list[Finding] = []
    for end, peer in ((a, b), (b, a)):
        out += _daemons(end)
        out += _certs(ev, end)
        out += _drift(ev, end)
        out += _log(end, peer)
        out += _sas(end)
        out += _bgp(end)
    out += _pair(ev)
    if ev.mtu is not None and not ev.mtu.ok:
        out.append(finding(Symptom.MTU_PROBE_FAILED, None, detail=ev.mtu.detail))
    return rank(out)


def healthy(findings: list[Finding]) -> bool:
    return not any(f.severity is Severity.ERROR for f in findings)

