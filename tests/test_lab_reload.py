"""Reloading a changed connection leaves one IKE SA and one CHILD SA per tunnel.

A three-site strongSwan+FRR full mesh of real daemons (regions eu, eu, us: two deploy waves,
so tunnels change with both ends in one wave and with their ends in different waves) gets
its ESP lifetime changed back and forth five times (1h -> 30m -> 1h ...) with
`dcvpn deploy --lab`. Each deploy must pass its health gate and be confirmed; afterwards
every gateway's charon (vici socket) holds exactly one IKE SA and one CHILD SA per tunnel,
its log shows exactly one IKE SA and one CHILD SA established per tunnel during the deploy
(a duplicate that came and went is caught too), the initiating end's CHILD SA rekeys within
the new lifetime, and `dcvpn validate` passes. Before one end alone initiated
(tasks.render_strongswan.TunnelRole) both ends re-initiated on reload and answered each
other's DELETE with close_action = start: up to three IKE SAs per tunnel.
"""

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES
from lab_support import cli, failed, lab_machine
from vici import Session  # type: ignore[import-untyped]

from lab.state import LabState
from pipelines.cli import main
from tasks.validate_strongswan import LocalGateway

pytestmark = pytest.mark.lab

SITES = (("lsa1", 1, "eu"), ("lsb1", 2, "eu"), ("lsc1", 3, "us"))
GATEWAYS = tuple(f"{name}-gw1" for name, _, _ in SITES)
TUNNELS = {  # tunnel -> (initiator, responder): the lower site id initiates
    "lsa1-lsb1-p0": ("lsa1-gw1", "lsb1-gw1"),
    "lsa1-lsc1-p0": ("lsa1-gw1", "lsc1-gw1"),
    "lsb1-lsc1-p0": ("lsb1-gw1", "lsc1-gw1"),
}
LIFETIMES = ("30m", "1h", "30m", "1h", "30m")  # the model starts at 1h
HALF_HOUR = 1800
IKE_UP = re.compile(r"IKE_SA (\S+)\[\d+\] established")
CHILD_UP = re.compile(r"CHILD_SA (\S+)\{\d+\} established")


def _fabric(esp_lifetime: str) -> str:
    data = yaml.safe_load((EXAMPLES / "lab3.yaml").read_text())
    data["fabric"]["name"] = "lsreload"
    data["fabric"]["crypto"]["esp"] = {"lifetime": esp_lifetime}
    for entry, (name, sid, region) in zip(data["sites"], SITES, strict=True):
        entry.update(name=name, id=sid, region=region)
        entry["gateways"][0]["name"] = f"{name}-gw1"
    return yaml.safe_dump(data, sort_keys=False)


@dataclass
class ReloadLab:
    root: Path
    fabric: Path
    lab_dir: Path

    def dcvpn(self, *argv: str) -> tuple[int, str, str]:
        return cli(None, main, *argv)

    def gateway(self, name: str) -> LocalGateway:
        return LocalGateway.in_lab(self.lab_dir, name)


@pytest.fixture(scope="module")
def rl() -> Iterator[ReloadLab]:
    with lab_machine() as root:
        fabric = root / "lsreload.yaml"
        fabric.write_text(_fabric("1h"))
        state = ReloadLab(root, fabric, root / "lab")
        try:
            code, _, err = state.dcvpn("lab", "up", "-f", str(fabric), "--lab-dir",
                                       str(state.lab_dir), "--timeout", "60")
            assert code == 0, err
            yield state
        finally:
            if LabState.load(state.lab_dir) is not None:
                cli(None, main, "lab", "down", "--lab-dir", str(state.lab_dir))


def _raw_sas(gw: LocalGateway) -> list[tuple[str, dict[str, Any]]]:
    """(connection, IKE SA) pairs from charon's vici socket, strings decoded."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    try:
        sock.connect(str(gw.vici_socket))
        entries = list(Session(sock).list_sas())
    finally:
        sock.close()

    def text(value: Any) -> Any:
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, dict):
            return {text(k): text(v) for k, v in value.items()}
        if isinstance(value, list):
            return [text(v) for v in value]
        return value

    return [(name, text(sa)) for entry in entries for name, sa in entry.items()]


def _log_size(gw: LocalGateway) -> int:
    return gw.charon_log.stat().st_size


def _established_since(gw: LocalGateway, offset: int) -> tuple[dict[str, int], dict[str, int]]:
    with gw.charon_log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    ike: dict[str, int] = {}
    child: dict[str, int] = {}
    for name in IKE_UP.findall(text):
        ike[name] = ike.get(name, 0) + 1
    for name in CHILD_UP.findall(text):
        child[name] = child.get(name, 0) + 1
    return ike, child


def test_lab_starts_with_one_sa_pair_per_tunnel(rl: ReloadLab) -> None:
    for name in GATEWAYS:
        sas = _raw_sas(rl.gateway(name))
        mine = sorted(t for t, (a, b) in TUNNELS.items() if name in (a, b))
        assert sorted(conn for conn, _ in sas) == mine, name
        for conn, sa in sas:
            assert sa["state"] == "ESTABLISHED" and len(sa.get("child-sas") or {}) == 1, conn
            # the lower site id initiated it
            assert (sa.get("initiator") == "yes") == (TUNNELS[conn][0] == name), (name, conn)


@pytest.mark.parametrize("round_", range(len(LIFETIMES)))
def test_esp_lifetime_change_reloads_to_exactly_one_sa_pair(rl: ReloadLab, round_: int) -> None:
    lifetime = LIFETIMES[round_]
    rl.fabric.write_text(_fabric(lifetime))
    offsets = {name: _log_size(rl.gateway(name)) for name in GATEWAYS}
    report = rl.root / f"deploy-{round_}.json"
    code, _, err = rl.dcvpn("deploy", "-f", str(rl.fabric), "--lab", "--lab-dir",
                            str(rl.lab_dir), "--report", str(report),
                            "--state", str(rl.root / "deploy-state.json"), "--settle", "30",
                            "--interval", "0.5", "--confirm-timeout", "120")
    data = json.loads(report.read_text())
    assert code == 0, err
    assert data["outcome"] == "ok", data["outcome"]
    assert {d["outcome"] for d in data["devices"].values()} == {"confirmed"}
    assert len(data["waves"]) == 2  # eu, then us: ends of a tunnel in one wave and in two
    for wave in data["waves"]:
        assert wave["outcome"] == "confirmed"
        assert wave["health"]["healthy"] and wave["health"]["failed"] == [], wave["health"]

    for name in GATEWAYS:
        gw = rl.gateway(name)
        sas = _raw_sas(gw)
        mine = sorted(t for t, (a, b) in TUNNELS.items() if name in (a, b))
        # exactly one IKE SA per tunnel, established, with exactly one installed CHILD SA
        assert sorted(conn for conn, _ in sas) == mine, (name, [(c, s["state"]) for c, s in sas])
        for conn, sa in sas:
            children = list((sa.get("child-sas") or {}).values())
            assert sa["state"] == "ESTABLISHED", (name, conn, sa["state"])
            assert [c["state"] for c in children] == ["INSTALLED"], (name, conn)
            if TUNNELS[conn][0] == name:  # the initiator's SA was made with the new config
                rekey = int(children[0]["rekey-time"])
                assert (rekey <= HALF_HOUR) == (lifetime == "30m"), (name, conn, rekey)
        # and during the deploy no second one was ever negotiated
        ike, child = _established_since(gw, offsets[name])
        assert ike == {t: 1 for t in mine}, (name, ike)
        assert child == {t: 1 for t in mine}, (name, child)


def test_validate_passes_after_the_reloads(rl: ReloadLab) -> None:
    code, out, _ = rl.dcvpn("validate", "-f", str(rl.fabric), "--lab-dir", str(rl.lab_dir),
                            "--format", "json")
    result = json.loads(out)
    assert code == 0 and result["ok"], failed(result["checks"])


def test_a_proposal_change_deployed_one_gateway_a_wave_comes_up(rl: ReloadLab) -> None:
    """The initiating end changes first and gives up on its peer (NO_PROPOSAL_CHOSEN from the
    old config); the peer, changed in a later wave, must bring the tunnel up itself after its
    reload (drivers.strongswan_layout INITIATE_SCRIPT), or that wave's health gate fails."""
    data = yaml.safe_load(_fabric("1h"))
    data["fabric"]["crypto"] = {"profile": "cbc", "dpd": data["fabric"]["crypto"]["dpd"]}
    rl.fabric.write_text(yaml.safe_dump(data, sort_keys=False))
    report = rl.root / "deploy-proposal.json"
    code, _, err = rl.dcvpn("deploy", "-f", str(rl.fabric), "--lab", "--lab-dir",
                            str(rl.lab_dir), "--report", str(report), "--workers", "1",
                            "--state", str(rl.root / "deploy-state.json"), "--settle", "40",
                            "--interval", "0.5", "--confirm-timeout", "180")
    result = json.loads(report.read_text())
    waves = [(w["gateways"], w["outcome"], w["health"] and w["health"]["failed"])
             for w in result["waves"]]
    assert code == 0, (err[-3000:], waves)
    assert [len(w["gateways"]) for w in result["waves"]] == [1, 1, 1]
    assert [w["outcome"] for w in result["waves"]] == ["confirmed"] * 3
    for name in GATEWAYS:
        sas = _raw_sas(rl.gateway(name))
        assert sorted(conn for conn, sa in sas if sa["state"] == "ESTABLISHED") == sorted(
            t for t, ends in TUNNELS.items() if name in ends), name
    code, out, _ = rl.dcvpn("validate", "-f", str(rl.fabric), "--lab-dir", str(rl.lab_dir),
                            "--format", "json")
    checks = json.loads(out)
    assert code == 0 and checks["ok"], failed(checks["checks"])
