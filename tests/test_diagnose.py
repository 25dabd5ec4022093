"""`dcvpn diagnose`: the ranking rules, the log and config readers, target names, and a real
3-site lab (tests/fabrics/dg-diagnose.yaml) in which three faults are injected one after the
other and diagnose must name each: (a) one end re-rendered with another IKE proposal and
loaded with swanctl, (b) a gateway certificate that has expired, delivered with `dcvpn lab
reload-creds`, (c) a peer charon killed by the PID the lab recorded. One lab for the module.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ROOT
from lab_support import Lab, cli, lab, lab_machine

from inventory.loader import load_fabric
from inventory.topology import CompiledFabric, compile_fabric
from pipelines import diagnose_cmd
from tasks.charon_log import LogErrorKind, read_log
from tasks.diagnose import TargetError, intended_connections, resolve_target
from tasks.diagnose_evidence import CertEvidence, EndEvidence, MtuEvidence, TunnelEvidence
from tasks.diagnose_rules import RULES, Severity, Symptom, detect, healthy, likely_cause
from tasks.gateway_state import (
    BgpNeighbor,
    ChildState,
    DaemonState,
    GatewayState,
    SaState,
    parse_bgp_neighbors,
    parse_sa_states,
)
from tasks.lab_records import DaemonRecord, is_alive, read_lab_records
from tasks.swanctl_conf import ConnConfig, connections, proposals_agree, secrets, with_secrets

FABRIC = str(ROOT / "tests" / "fabrics" / "dg-diagnose.yaml")
PSK_FABRIC = str(ROOT / "tests" / "fabrics" / "lab-hybrid.yaml")
TUNNEL = "dg1-dg2-p0"
STRICT_IKE = "aes256gcm16-prfsha384-ecp384"
OTHER_IKE = "aes128gcm16-prfsha256-ecp256"


@pytest.fixture(scope="module")
def compiled() -> CompiledFabric:
    return compile_fabric(load_fabric(FABRIC).fabric)


# --- evidence builders (unit) -------------------------------------------------------------------

def sa(conn: str, state: str = "ESTABLISHED", child: str = "INSTALLED") -> SaState:
    return SaState(conn, state, "192.0.2.202", "peer", "AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384",
                   10, (ChildState(conn, child, "AES_GCM_16_256", 100, 100, 2, 2),))


def state(compiled: CompiledFabric, gw: str, *, tunnel_state: str | None = "ESTABLISHED",
          charon: bool = True, bgp: str = "Established", dropped: int = 0,
          config: dict[str, ConnConfig] | None = None, log: str = "",
          errors: dict[str, str] | None = None) -> GatewayState:
    tunnel = next(t for t in compiled.tunnels if t.name == TUNNEL)
    session = next(s for s in compiled.sessions if s.tunnel_id == tunnel.id)
    peer = session.side(gw)[1].address
    sas = (sa(TUNNEL, tunnel_state),) if tunnel_state else ()
    peers = {str(tunnel.side(gw)[1].public_ip): TUNNEL}
    return GatewayState(
        gw, True, sas,
        (BgpNeighbor(peer, session.side(gw)[1].asn, bgp, 1 + dropped, dropped, 1, TUNNEL,
                     None),),
        (DaemonState("charon", 100, charon, 1.0, 10_000_000),
         DaemonState("bgpd", 101, True, 0.1, 15_000_000)),
        read_log(log, peers),
        config if config is not None else intended_connections(compiled, gw),
        errors or {})


def evidence(compiled: CompiledFabric, a: GatewayState, b: GatewayState,
             certs: dict[str, str] | None = None, auth: str = "certificate",
             mtu: MtuEvidence | None = None) -> TunnelEvidence:
    tunnel = next(t for t in compiled.tunnels if t.name == TUNNEL)
    session = next(s for s in compiled.sessions if s.tunnel_id == tunnel.id)
    ends = []
    for e, st in zip(tunnel.endpoints, (a, b), strict=True):
        status = (certs or {}).get(e.gateway, "valid")
        cert = CertEvidence(e.gateway, status, "0A", "2026-01-02T03:04:05Z",
                            -3 if status == "expired" else 300, "pki")
        ends.append(EndEvidence(TUNNEL, e.gateway, e.site, "strongswan", e.public_ip,
                                session.side(e.gateway)[1].address, st,
                                intended_connections(compiled, e.gateway).get(TUNNEL), cert))
    return TunnelEvidence(TUNNEL, 0, auth, (ends[0], ends[1]), mtu)


def with_ike(compiled: CompiledFabric, gw: str, proposal: str) -> dict[str, ConnConfig]:
    return {n: replace(c, ike_proposals=(proposal,))
            for n, c in intended_connections(compiled, gw).items()}


def symptoms(ev: TunnelEvidence) -> list[Symptom]:
    return [f.symptom for f in detect(ev)]


# --- rules --------------------------------------------------------------------------------------

def test_every_symptom_has_a_rule_and_formats() -> None:
    assert set(RULES) == set(Symptom)
    for symptom, rule in RULES.items():
        assert rule.cause and rule.advice, symptom
        assert 0 < rule.rank < 100


def test_healthy_tunnel_has_no_error_finding(compiled: CompiledFabric) -> None:
    ev = evidence(compiled, state(compiled, "dg1-gw1"), state(compiled, "dg2-gw1"),
                  mtu=MtuEvidence(True, 1400, "passed"))
    findings = detect(ev)
    assert healthy(findings) and likely_cause(findings) is None
    assert findings == []


def test_dead_charon_outranks_its_consequences(compiled: CompiledFabric) -> None:
    a = state(compiled, "dg1-gw1", tunnel_state="CONNECTING", bgp="Active",
              log="09[IKE] <dg1-dg2-p0|3> retransmit 2 of request with message ID 0\n")
    b = replace(state(compiled, "dg2-gw1", charon=False, tunnel_state=None, bgp="Connect"),
                sas=(), errors={"charon": "vici charon.vici: Connection refused"})
    findings = detect(evidence(compiled, a, b))
    cause = likely_cause(findings)
    assert cause is not None and cause.symptom is Symptom.CHARON_DOWN
    assert cause.cause == ("charon on dg2-gw1 is not running (PID 100 recorded by the lab "
                           "is gone)")
    got = [f.symptom for f in findings]
    assert {Symptom.PEER_NOT_RESPONDING, Symptom.IKE_DOWN, Symptom.BGP_DOWN} <= set(got)
    assert Symptom.CHARON_UNREADABLE not in got  # explained by the dead daemon
    assert got.index(Symptom.CHARON_DOWN) < got.index(Symptom.PEER_NOT_RESPONDING)
    assert [f.rank for f in findings] == sorted(f.rank for f in findings)


def test_ike_proposal_mismatch_names_both_ends_and_the_one_off_the_model(
        compiled: CompiledFabric) -> None:
    a = state(compiled, "dg1-gw1", tunnel_state=None, bgp="Active")
    b = state(compiled, "dg2-gw1", tunnel_state=None, bgp="Active",
              config=with_ike(compiled, "dg2-gw1", OTHER_IKE))
    findings = detect(evidence(compiled, a, b))
    cause = likely_cause(findings)
    assert cause is not None and cause.symptom is Symptom.IKE_PROPOSAL_MISMATCH
    assert cause.cause == (f"IKE proposal mismatch: dg1-gw1 offers {STRICT_IKE}, dg2-gw1 "
                           f"expects {OTHER_IKE} (dg2-gw1 differs from the model)")
    drift = [f for f in findings if f.symptom is Symptom.CONFIG_DRIFT]
    assert [f.gateway for f in drift] == ["dg2-gw1"]
    assert Symptom.ESP_PROPOSAL_MISMATCH not in {f.symptom for f in findings}


def test_proposal_order_does_not_make_a_mismatch() -> None:
    assert proposals_agree(("aes256gcm16-prfsha384-ecp384",), ("aes256gcm16-ecp384-prfsha384",))
    assert proposals_agree(("a-b", "c-d"), ("x-y", "d-c"))
    assert not proposals_agree(("aes256gcm16-prfsha384-ecp384",),
                               ("aes256gcm16-prfsha384-ecp256",))


def test_expired_certificate_outranks_the_authentication_failure(
        compiled: CompiledFabric) -> None:
    log = ("12[IKE] <dg1-dg2-p0|7> received AUTHENTICATION_FAILED notify error\n")
    a = state(compiled, "dg1-gw1", tunnel_state=None, bgp="Active", log=log)
    b = state(compiled, "dg2-gw1", tunnel_state=None, bgp="Active")
    findings = detect(evidence(compiled, a, b, certs={"dg2-gw1": "expired"}))
    assert [f.symptom for f in findings][:2] == [Symptom.CERT_EXPIRED, Symptom.LOG_AUTH_FAILED]
    assert findings[0].cause == "certificate of dg2-gw1 expired 2026-01-02T03:04:05Z"
    revoked = detect(evidence(compiled, a, b, certs={"dg2-gw1": "revoked"}))
    assert revoked[0].cause == "certificate of dg2-gw1 is revoked (serial 0A)"
    expiring = detect(evidence(compiled, state(compiled, "dg1-gw1"),
                               state(compiled, "dg2-gw1"), certs={"dg1-gw1": "expiring"}))
    assert healthy(expiring) and expiring[0].severity is Severity.WARNING


def test_psk_mismatch_is_found_without_showing_a_key(compiled: CompiledFabric) -> None:
    def keyed(gw: str, key: str) -> dict[str, ConnConfig]:
        return {n: c.with_secret(key) for n, c in intended_connections(compiled, gw).items()}

    a = state(compiled, "dg1-gw1", tunnel_state=None, config=keyed("dg1-gw1", "s3cret-one"))
    b = state(compiled, "dg2-gw1", tunnel_state=None, config=keyed("dg2-gw1", "s3cret-two"))
    ev = evidence(compiled, a, b, auth="psk")
    findings = detect(ev)
    assert Symptom.PSK_MISMATCH in [f.symptom for f in findings]
    from pipelines.diagnose_report import Diagnosis, as_json, as_text
    report = as_text([Diagnosis(ev, tuple(findings))], ()) + as_json(
        [Diagnosis(ev, tuple(findings))], "dgdiag", ())
    assert "s3cret" not in report
    same_a = state(compiled, "dg1-gw1", config=keyed("dg1-gw1", "same"))
    same_b = state(compiled, "dg2-gw1", config=keyed("dg2-gw1", "same"))
    assert Symptom.PSK_MISMATCH not in symptoms(evidence(compiled, same_a, same_b, auth="psk"))


def test_identity_mismatch_names_expected_and_presented(compiled: CompiledFabric) -> None:
    conf = {n: replace(c, local_id="impostor.example")
            for n, c in intended_connections(compiled, "dg2-gw1").items()}
    b = state(compiled, "dg2-gw1", tunnel_state=None, config=conf)
    findings = detect(evidence(compiled, state(compiled, "dg1-gw1", tunnel_state=None), b))
    mismatch = [f for f in findings if f.symptom is Symptom.IDENTITY_MISMATCH]
    assert [f.cause for f in mismatch] == [
        "identity mismatch: dg1-gw1 expects its peer to be dg2-gw1.dgdiag.dcvpn, dg2-gw1 "
        "presents impostor.example"]


def test_bgp_flaps_and_mtu_failure(compiled: CompiledFabric) -> None:
    a = state(compiled, "dg1-gw1", dropped=3)
    ev = evidence(compiled, a, state(compiled, "dg2-gw1"),
                  mtu=MtuEvidence(False, 1400, "1400 bytes failed"))
    findings = detect(ev)
    assert [f.symptom for f in findings] == [Symptom.MTU_PROBE_FAILED, Symptom.BGP_FLAPS]
    assert "dropped 3 time(s)" in findings[1].cause and not healthy(findings)


def test_other_platforms_are_reported_as_unread(compiled: CompiledFabric) -> None:
    ev = evidence(compiled, state(compiled, "dg1-gw1"), state(compiled, "dg2-gw1"))
    b = replace(ev.ends[1], state=None, platform="iosxe")
    findings = detect(replace(ev, ends=(ev.ends[0], b)))
    assert [f.symptom for f in findings] == [Symptom.NO_READER] and healthy(findings)


# --- readers ------------------------------------------------------------------------------------

RESPONDER_LOG = """\
13[ENC] <8> parsed IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) ]
13[IKE] <8> 192.0.2.202 is initiating an IKE_SA
13[CFG] <8> received proposals: IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256
13[CFG] <8> configured proposals: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384
13[IKE] <8> received proposals unacceptable
01[IKE] <dg1-dg2-p0|7> received NO_PROPOSAL_CHOSEN notify error
16[IKE] <dg1-dg3-p0|4> IKE_SA dg1-dg3-p0[5] rekeyed between 192.0.2.201[a]...192.0.2.203[b]
15[ENC] <dg1-dg3-p0|5> generating CREATE_CHILD_SA request 0 [ N(REKEY_SA) SA No KE TSi TSr ]
16[ENC] <dg1-dg3-p0|5> generating CREATE_CHILD_SA request 1 [ SA No KE ]
12[IKE] <dg1-dg3-p0|9> received AUTHENTICATION_FAILED notify error
12[IKE] <dg1-dg3-p0|9> IKE_SA dg1-dg3-p0[9] established between 192.0.2.201[a]...192.0.2.203[b]
"""


def test_log_reader_attributes_unnamed_lines_and_counts_rekeys() -> None:
    logs = read_log(RESPONDER_LOG, {"192.0.2.202": "dg1-dg2-p0", "192.0.2.203": "dg1-dg3-p0"})
    mismatch = logs["dg1-dg2-p0"]
    assert list(mismatch.errors) == [LogErrorKind.NO_PROPOSAL]
    assert mismatch.errors[LogErrorKind.NO_PROPOSAL] == "received NO_PROPOSAL_CHOSEN notify error"
    assert mismatch.received_proposals == "IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256"
    assert mismatch.configured_proposals == "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384"
    rekeyed = logs["dg1-dg3-p0"]
    assert (rekeyed.ike_rekeys, rekeyed.child_rekeys) == (1, 1)
    assert rekeyed.errors == {}  # the AUTHENTICATION_FAILED came before it was established


def test_swanctl_reader_matches_the_model(compiled: CompiledFabric) -> None:
    from tasks.render import render_gateway
    conns = connections(render_gateway(compiled, "dg1-gw1")["swanctl.conf"])
    assert sorted(conns) == ["dg1-dg2-p0", "dg1-dg3-p0"]
    c = conns[TUNNEL]
    assert c.ike_proposals == (STRICT_IKE,) and c.esp_proposals == ("aes256gcm16-ecp384",)
    assert (c.local_id, c.remote_id) == ("dg1-gw1.dgdiag.dcvpn", "dg2-gw1.dgdiag.dcvpn")
    assert c.remote_addrs == ("192.0.2.202",) and c.auth == "pubkey"


def test_psk_references_and_digests() -> None:
    from tasks.render import render_gateway
    hy = compile_fabric(load_fabric(PSK_FABRIC).fabric)
    files = render_gateway(hy, "ams1-gw1")
    conns = with_secrets(connections(files["swanctl.conf"]),
                         secrets(files["swanctl-secrets.conf"]))
    assert all(c.secret_ref and c.secret_ref.startswith("${dcvpn-secret:psk/")
               and c.secret_digest is None for c in conns.values())
    resolved = 'ike-x {\n  id-1 = a\n  id-2 = b\n  secret = "k3y"\n}\n'
    found = secrets(resolved)
    assert list(found.values()) == ["k3y"]
    c = ConnConfig("x", (), (), ("p",), ("q",), "a", "b", "psk").with_secret(found[
        frozenset({"a", "b"})])
    assert c.secret_digest is not None and "k3y" not in repr(c)


def test_state_parsers_keep_counters_and_flaps() -> None:
    sas = parse_sa_states([{"t": {"state": "ESTABLISHED", "remote-host": "h",
                                  "remote-id": "r", "encr-alg": "AES_GCM_16",
                                  "encr-keysize": "256", "prf-alg": "PRF_HMAC_SHA2_384",
                                  "dh-group": "ECP_384", "established": "7",
                                  "child-sas": {"t-1": {
                                      "name": "t", "state": "INSTALLED",
                                      "encr-alg": "AES_GCM_16", "encr-keysize": "256",
                                      "bytes-in": "10", "bytes-out": "20",
                                      "packets-in": "1", "packets-out": "2"}}}}])
    assert sas[0].proposal == "AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384"
    assert sas[0].children[0].bytes_out == 20 and sas[0].established_seconds == 7
    peers = parse_bgp_neighbors({"169.254.0.1": {
        "remoteAs": 65202, "bgpState": "Established", "connectionsEstablished": 3,
        "connectionsDropped": 2, "addressFamilyInfo": {"ipv4Unicast": {
            "acceptedPrefixCounter": 4}}}, "not-an-address": {}})
    assert [(str(p.address), p.dropped, p.prefixes_received) for p in peers] == [
        ("169.254.0.1", 2, 4)]


def test_lab_records_reader(tmp_path: Path) -> None:
    me = int(Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19])
    (tmp_path / "state.json").write_text(json.dumps({
        "version": 1, "fabric": "dgdiag", "gateways": ["dg1-gw1"], "dirs": [],
        "processes": [{"gateway": "dg1-gw1", "daemon": "charon", "pid": os.getpid(),
                       "start_time": me}], "pki_dir": "/somewhere/pki"}))
    records = read_lab_records(tmp_path)
    assert records is not None and records.pki_dir == Path("/somewhere/pki")
    assert is_alive(records.daemons[0])
    assert not is_alive(DaemonRecord("dg1-gw1", "charon", os.getpid(), me + 1))  # recycled
    assert read_lab_records(tmp_path / "none") is None


# --- targets and the command --------------------------------------------------------------------

def test_targets(compiled: CompiledFabric) -> None:
    def names(target: str) -> list[str]:
        return [t.name for t in resolve_target(compiled, target)]

    assert names("dg1-dg2-p0") == names("dg2<->dg1") == names("dg1<->dg2/p0") == [TUNNEL]
    assert names("4") == ["dg1-dg3-p0"]
    assert names("dg3") == ["dg1-dg3-p0", "dg2-dg3-p0"] == names("dg3-gw1")
    for bad, message in (("dg1<->zz9", "unknown site(s) zz9"),
                         ("dg1<->dg2/p3", "no tunnel between dg1 and dg2 on plane 3"),
                         ("nowhere", "neither a tunnel")):
        with pytest.raises(TargetError, match=re.escape(message)):
            resolve_target(compiled, bad)


def test_command_exit_codes_without_a_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    for name in list(os.environ):
        if name.startswith("DCVPN_"):
            monkeypatch.delenv(name)
    run = diagnose_cmd.main
    code, out, err = cli(capsys, run, "diagnose", "-f", FABRIC, "dg1<->dg9")
    assert code == 2 and "unknown site(s) dg9" in err and out == ""
    code, _, err = cli(capsys, run, "diagnose", "-f", FABRIC)
    assert code == 2 and "name a tunnel or site" in err
    from pipelines import cli as dcvpn  # wired into `dcvpn`
    code, _, err = cli(capsys, dcvpn.main, "diagnose", "-f", FABRIC, "dg1<->dg9")
    assert code == 2 and "unknown site(s) dg9" in err
    monkeypatch.setattr(diagnose_cmd, "is_root", lambda: False)
    code, _, err = cli(capsys, run, "diagnose", "-f", FABRIC, TUNNEL)
    assert code == 2 and "needs root" in err
    monkeypatch.setattr(diagnose_cmd, "is_root", lambda: True)
    code, out, err = cli(capsys, run, "diagnose", "-f", FABRIC, TUNNEL, "--lab-dir",
                         str(tmp_path), "--format", "json")
    assert code == 3 and "no end of dg1-dg2-p0 is running" in err
    assert json.loads(out)["ok"] is False


# --- the lab ------------------------------------------------------------------------------------

@dataclass
class DiagLab:
    lab: Lab
    pki_dir: Path
    past: datetime
    other_proposals: bool = False  # load_other_proposals ran


@pytest.fixture(scope="module")
def dglab() -> Iterator[DiagLab]:
    from tasks.pki.ca import init_ca
    from tasks.pki.issue import issue_certs
    from tasks.pki.keys import Passphrase
    from tasks.pki.store import Layout

    with lab_machine() as root:
        # a CA and certificates from a month ago, so that one can be re-issued already expired
        past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
        pki_dir = root / "pki"
        fabric = load_fabric(FABRIC).fabric
        init_ca(Layout(pki_dir), fabric.fabric.name, fabric.fabric.auth.key_type, Passphrase(),
                past, days=365, crl_days=90)
        issue_certs(Layout(pki_dir), fabric, [g for s in fabric.sites for g in s.gateways],
                    Passphrase(), past, days=365)
        lab_dir = root / "dgdiag"
        try:
            code, out, err = lab(None, "up", "-f", FABRIC, "--lab-dir", str(lab_dir),
                                 "--pki-dir", str(pki_dir), "--format", "json",
                                 "--timeout", "60")
            assert code == 0, err
            yield DiagLab(Lab(FABRIC, lab_dir, json.loads(out)), pki_dir, past)
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


def diagnose(dl: DiagLab, target: str, *extra: str) -> tuple[int, dict[str, object], str]:
    code, out, err = cli(None, diagnose_cmd.main, "diagnose", "-f", FABRIC, target,
                         "--lab-dir", str(dl.lab.lab_dir), "--format", "json", *extra)
    return code, json.loads(out), err


def swanctl(dl: DiagLab, gateway: str, *argv: str) -> str:
    folder = dl.lab.lab_dir / gateway
    env = {**os.environ, "STRONGSWAN_CONF": str(folder / "strongswan.conf"),
           "SWANCTL_DIR": str(folder)}
    done = subprocess.run(["swanctl", *argv], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=20, check=False)
    return done.stdout + done.stderr


def wait_for(dl: DiagLab, target: str, symptom: str, timeout: float = 30.0
             ) -> tuple[int, dict[str, object], str]:
    """Diagnose until `symptom` shows up (the fault takes a moment to bite)."""
    deadline = time.monotonic() + timeout
    while True:
        code, data, err = diagnose(dl, target, "--no-probe")
        tunnels = data["tunnels"]
        assert isinstance(tunnels, list)
        if any(f["symptom"] == symptom for t in tunnels for f in t["findings"]):
            return code, data, err
        assert time.monotonic() < deadline, f"no {symptom} within {timeout}s: {err}"
        time.sleep(0.5)


def cause_of(data: dict[str, object]) -> str:
    tunnels = data["tunnels"]
    assert isinstance(tunnels, list) and len(tunnels) == 1
    cause = tunnels[0]["likely_cause"]
    assert cause is not None, tunnels[0]["findings"]
    return str(cause["cause"])


@pytest.mark.lab
def test_lab_healthy_site_exits_0(dglab: DiagLab, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, diagnose_cmd.main, "diagnose", "-f", FABRIC, "dg1",
                         "--lab-dir", str(dglab.lab.lab_dir))
    assert code == 0, out + err
    assert out.count(": healthy") == 2 and "LIKELY CAUSE" not in out
    assert "MTU probe   passed" in out and "0 with a problem" in err
    code, data, _ = diagnose(dglab, "dg1<->dg2")
    assert code == 0 and data["ok"] is True
    ends = data["tunnels"][0]["ends"]  # type: ignore[index]
    assert [e["certificate"]["status"] for e in ends] == ["valid", "valid"]
    assert all(d["alive"] for e in ends for d in e["daemons"])


def load_other_proposals(dl: DiagLab) -> None:
    """dg2-gw1 takes IKE/ESP proposals other than the model's, as an out-of-band change on
    the gateway would. Once per lab: the tests that need it call it, in any order."""
    if dl.other_proposals:
        return
    text = Path(FABRIC).read_text().replace(
        "    profile: strict\n",
        "    ike: {encryption: aes128gcm16, prf: sha256, dh_group: 19, lifetime: 8h}\n"
        "    esp: {encryption: aes256gcm16, pfs_group: 20, lifetime: 1h}\n")
    changed = dl.lab.lab_dir.parent / "dg-other-ike.yaml"
    changed.write_text(text)
    from tasks.render import render_gateway
    other = compile_fabric(load_fabric(str(changed)).fabric)
    swanctl_conf = render_gateway(other, "dg2-gw1")["swanctl.conf"]
    assert OTHER_IKE in swanctl_conf
    (dl.lab.lab_dir / "dg2-gw1" / "swanctl.conf").write_text(swanctl_conf)
    assert "successfully loaded 2 connections" in swanctl(
        dl, "dg2-gw1", "--load-all", "--file", "swanctl.conf")
    dl.other_proposals = True


@pytest.mark.lab
def test_lab_proposal_mismatch_is_the_likely_cause(dglab: DiagLab) -> None:
    load_other_proposals(dglab)
    # dg1 (the lower site id) is the end that initiates: negotiate again from there now
    swanctl(dglab, "dg1-gw1", "--terminate", "--ike", "dg1-dg2-p0", "--timeout", "5")
    swanctl(dglab, "dg1-gw1", "--initiate", "--ike", "dg1-dg2-p0", "--child", "dg1-dg2-p0",
            "--timeout", "5")
    code, data, err = wait_for(dglab, "dg1<->dg2", "log-no-proposal-chosen")
    assert code == 1, err
    assert cause_of(data) == (f"IKE proposal mismatch: dg1-gw1 offers {STRICT_IKE}, dg2-gw1 "
                              f"expects {OTHER_IKE} (dg2-gw1 differs from the model)")
    assert "likely cause: IKE proposal mismatch" in err


@pytest.mark.lab
def test_lab_expired_certificate_is_the_likely_cause(dglab: DiagLab) -> None:
    from tasks.pki.issue import issue_certs
    from tasks.pki.keys import Passphrase
    from tasks.pki.store import Layout

    layout = Layout(dglab.pki_dir)
    layout.cert("dg3-gw1").unlink()
    layout.key("dg3-gw1").unlink()
    fabric = load_fabric(FABRIC).fabric
    made = issue_certs(layout, fabric, [fabric.site("dg3").gateways[0]], Passphrase(),
                       dglab.past, days=1)
    assert made[0].not_after is not None and made[0].not_after < datetime.now(UTC)
    code, _, err = lab(None, "reload-creds", "-f", FABRIC, "--lab-dir", str(dglab.lab.lab_dir))
    assert code == 0, err
    # the running SA keeps its keys: make dg3 authenticate again now
    swanctl(dglab, "dg1-gw1", "--terminate", "--ike", "dg1-dg3-p0", "--timeout", "5")
    # dg3 only responds by configuration (dg1 initiates): let dg3 initiate, so that dg1
    # refuses its expired certificate and dg3 is told AUTHENTICATION_FAILED
    swanctl(dglab, "dg3-gw1", "--initiate", "--ike", "dg1-dg3-p0", "--child", "dg1-dg3-p0",
            "--timeout", "5")
    code, data, err = wait_for(dglab, "dg1<->dg3", "log-authentication-failed")
    assert code == 1, err
    assert cause_of(data) == (f"certificate of dg3-gw1 expired "
                              f"{made[0].not_after:%Y-%m-%dT%H:%M:%SZ}")


@pytest.mark.lab
def test_lab_killed_peer_charon_is_the_likely_cause(dglab: DiagLab) -> None:
    load_other_proposals(dglab)  # a lesser fault beside the dead daemon, ranked below it
    record = dglab.lab.record("dg2-gw1", "charon")
    os.kill(record.pid, signal.SIGKILL)
    code, data, err = wait_for(dglab, "dg1-dg2-p0", "charon-down", timeout=10)
    with contextlib.suppress(ChildProcessError):  # it was started by this process (lab up)
        os.waitpid(record.pid, os.WNOHANG)
    assert code == 1, err
    assert cause_of(data) == (f"charon on dg2-gw1 is not running (PID {record.pid} recorded "
                              "by the lab is gone)")
    tunnel = data["tunnels"][0]  # type: ignore[index]
    dg2 = tunnel["ends"][1]
    assert dg2["gateway"] == "dg2-gw1" and "charon" in dg2["errors"]
    assert [d["alive"] for d in dg2["daemons"] if d["name"] == "charon"] == [False]
    # the proposal mismatch is still reported, ranked below the dead daemon
    symptoms_seen = [f["symptom"] for f in tunnel["findings"]]
    assert symptoms_seen.index("charon-down") < symptoms_seen.index("ike-proposal-mismatch")
