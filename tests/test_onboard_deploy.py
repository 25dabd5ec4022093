"""`dcvpn onboard` end to end: a fourth site joins a running three-site fabric of emulated JunOS
gateways (one PeerRegistry: a tunnel is up when both committed configurations agree), reached
through a devices.json as `--lab --lab-dir` finds a lab's devices. No root needed.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ncclient.transport import session as nc_session  # type: ignore[import-untyped]
from test_deploy import check_schema

from drivers.base import DeviceTarget, driver_class
from inventory.loader import load_fabric
from inventory.model import Platform, Transport
from inventory.topology import compile_fabric
from lab.emulators.peers import PeerRegistry
from lab.emulators.ssh_server import NetconfServer, ServerThread
from pipelines import cli, deploy_cmd
from pipelines.exit_codes import Exit
from tasks.lab_devices import write_lab_devices
from tasks.pki.psk import ensure_psks

USER, PASSWORD = "lab", "lab-secret"
GATEWAYS = ("ob1-gw1", "ob2-gw1", "ob3-gw1", "ob4-gw1")


def _site(i: int) -> dict[str, Any]:
    return {"name": f"ob{i}", "id": i, "region": "eu" if i != 3 else "us", "asn": 65200 + i,
            "prefixes": [f"10.{i}.0.0/24"],
            "gateways": [{"name": f"ob{i}-gw1", "platform": "junos", "transport": "netconf",
                          "host": f"ob{i}-gw1.mgmt.example.net",
                          "public_ip": f"198.51.100.{i}"}]}


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nc_session, "TICK", 0.005)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[dict[str, Any]]:
    registry = PeerRegistry()
    threads: dict[str, ServerThread] = {}
    try:
        for name in GATEWAYS:
            server = NetconfServer("junos", USER, PASSWORD, tmp_path / "emu" / name, 1.0,
                                   hostname=name,
                                   device_options={"peers": registry, "gateway": name})
            threads[name] = ServerThread(server).start(timeout=30)
        lab_dir = tmp_path / "lab"
        lab_dir.mkdir()
        known = lab_dir / "known_hosts"
        known.write_text("".join(t.known_hosts_line() for t in threads.values()))
        write_lab_devices(lab_dir, "obfab", {
            name: {"platform": "junos", "transport": "netconf", "host": "127.0.0.1",
                   "port": t.port, "username": USER, "password": PASSWORD,
                   "known_hosts": str(known)} for name, t in threads.items()})
        fabric = tmp_path / "fabric.yaml"
        fabric.write_text("# the obfab fabric: three sites, a fourth one joins\n" + yaml.safe_dump(
            {"fabric": {"name": "obfab", "topology": "full_mesh",
                        "tunnel_pool": "169.254.0.0/16", "auth": {"method": "psk"},
                        "bgp": {"mode": "ebgp"}},
             "sites": [_site(i) for i in (1, 2, 3)]}, sort_keys=False))
        yield {"threads": threads, "lab_dir": lab_dir, "known": known, "fabric": fabric,
               "secrets": tmp_path / "secrets", "root": tmp_path}
    finally:
        for thread in threads.values():
            thread.stop()


def _common(fleet: dict[str, Any], report: str) -> list[str]:
    root = fleet["root"]
    return ["--lab", "--lab-dir", str(fleet["lab_dir"]), "--secrets-dir", str(fleet["secrets"]),
            "--report", str(root / report), "--state", str(root / "state.json"),
            "--settle", "20", "--interval", "0.3", "--confirm-timeout", "120"]


def _state(fleet: dict[str, Any], name: str) -> Any:
    target = DeviceTarget(name=name, host="127.0.0.1", port=fleet["threads"][name].port,
                          username=USER, password=PASSWORD, known_hosts=fleet["known"])
    driver = driver_class(Platform.JUNOS, Transport.NETCONF)(target)
    driver.open()
    try:
        return driver.get_state()
    finally:
        driver.close()


def test_a_fourth_site_joins_with_every_tunnel_validated_and_none_renumbered(
        fleet: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    fabric: Path = fleet["fabric"]
    before = compile_fabric(load_fabric(fabric).fabric)
    ensure_psks(fleet["secrets"], [t.name for t in before.tunnels])
    code = deploy_cmd.main(["deploy", "-f", str(fabric), *_common(fleet, "first.json")])
    assert code == Exit.OK
    capsys.readouterr()

    code = cli.main(["onboard", "-f", str(fabric), "ob4", "--region", "eu",
                     "--prefix", "10.4.0.0/24", "--gateway", "ob4-gw1=junos@198.51.100.4",
                     "-o", str(fleet["root"] / "out"), "--format", "json",
                     *_common(fleet, "onboard.json")])
    out = json.loads(capsys.readouterr().out)
    assert code == Exit.OK, out
    steps = {s["step"]: s for s in out["steps"]}
    assert [s["status"] for s in out["steps"]].count("failed") == 0
    assert {"model", "numbering", "pre-shared keys", "render", "diff", "deploy",
            "validate"} <= set(steps)

    # the model gained the site with the next id and the ASN pattern; the comment stayed
    text = fabric.read_text()
    assert text.startswith("# the obfab fabric")
    after = compile_fabric(load_fabric(fabric).fabric)
    site = after.fabric.site("ob4")
    assert (site.id, site.asn) == (4, 65204)
    # no existing tunnel was renumbered
    old = {t.name: (t.id, t.network) for t in before.tunnels}
    assert {t.name: (t.id, t.network) for t in after.tunnels if t.name in old} == old
    assert (fleet["root"] / "out" / "ob4-gw1" / "config.xml").is_file()

    report = json.loads((fleet["root"] / "onboard.json").read_text())
    check_schema(report)
    first = report["waves"][0]
    assert first["kind"] == "first" and "ob4-gw1" in first["gateways"]
    # the new site went out with one regional (eu) peer, before the rest
    peer = set(first["gateways"]) - {"ob4-gw1"}
    assert len(peer) == 1 and peer <= {"ob1-gw1", "ob2-gw1"}
    assert all(w["outcome"] == "confirmed" for w in report["waves"])
    assert all(w["health"]["healthy"] for w in report["waves"])
    changed = {g for w in report["waves"] for g in w["gateways"]}
    assert changed == set(GATEWAYS)  # ob4 and its three peers (full mesh)

    # every tunnel of the new site is up on the device, with BGP Established
    state = _state(fleet, "ob4-gw1")
    assert sum(1 for sa in state.ike_sas if sa.state == "ESTABLISHED") == 3
    assert sorted(s.state for s in state.bgp_sessions) == ["Established"] * 3
    # with the negotiated algorithms of the strict profile (what the health gate compared)
    assert {(sa.encryption, sa.prf, sa.dh_group) for sa in state.ike_sas} == {
        ("aes256gcm16", "sha384", 20)}
    assert all(sa.remote_id.endswith(".obfab.dcvpn") for sa in state.ike_sas)


def test_dry_run_changes_nothing(fleet: dict[str, Any],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    fabric: Path = fleet["fabric"]
    text = fabric.read_text()
    code = cli.main(["onboard", "-f", str(fabric), "ob4", "--region", "eu",
                     "--prefix", "10.4.0.0/24", "--gateway", "ob4-gw1=junos@198.51.100.4",
                     "--dry-run", "-o", str(fleet["root"] / "out"), "--format", "json",
                     *_common(fleet, "dry.json")])
    out = json.loads(capsys.readouterr().out)
    assert code == Exit.OK
    assert fabric.read_text() == text
    assert not (fleet["root"] / "out").exists()
    assert not (fleet["secrets"]).exists()
    assert {s["step"]: s["status"] for s in out["steps"]}["deploy"] == "planned"


def test_bad_arguments_are_named(fleet: dict[str, Any],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    fabric: Path = fleet["fabric"]
    code = cli.main(["onboard", "-f", str(fabric), "ob4", "--prefix", "10.4.0.0/24",
                     "--gateway", "ob4-gw1=junos@198.51.100.400", "--dry-run"])
    err = capsys.readouterr().err
    assert code == Exit.BAD_INPUT
    assert "is not an IPv4 address" in err and "Traceback" not in err
    # a prefix overlapping an existing site is a lint error: file untouched, exit 1
    text = fabric.read_text()
    code = cli.main(["onboard", "-f", str(fabric), "ob4", "--prefix", "10.1.0.0/25",
                     "--gateway", "ob4-gw1=junos@198.51.100.4"])
    err = capsys.readouterr().err
    assert code == Exit.FAILED
    assert "lint errors" in err and fabric.read_text() == text
