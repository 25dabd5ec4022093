"""Onboarding a fourth site into a running three-site lab of real strongSwan+FRR gateways
(issue 8): `dcvpn onboard --lab` grows the lab by the new site (`dcvpn lab up --add`: its
gateway starts unconfigured) and deploys, new site and a peer first. Afterwards all six tunnels
of the full mesh validate, no existing tunnel was renumbered (model and kernel), the running
daemons were not restarted, and `dcvpn lab down` leaves nothing behind.

Also `lab up --add` on its own: a no-op when the lab runs every gateway, a refusal without a
lab, and a failure that removes what it made for the new gateway.
The tests share one lab (module fixture) and run in file order.
"""

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES
from lab_support import Footprint, Lab, cli, failed, footprint, lab, lab_machine, leftovers, start

from drivers.base import driver_class
from inventory.loader import load_fabric
from inventory.topology import compile_fabric
from lab import daemons, netns, procs, requirements
from lab.emulated import SUPERVISOR_GATEWAY
from lab.errors import LabError
from lab.state import LabState
from pipelines import cli as dcvpn
from pipelines.exit_codes import Exit
from tasks.lab_devices import load_lab_devices
from tasks.onboard import insert_site
from tasks.pki.psk import ensure_psks

FABRIC = "lgfab"
OLD = ("lga1-gw1", "lgl1-gw1", "lgn1-gw1")
NEW_SITE, NEW = "lgx1", "lgx1-gw1"
NEW_GATEWAY = f"{NEW}=strongswan@192.0.2.4,host=localhost,transport=local"
NEW_ENTRY: dict[str, object] = {
    "name": NEW_SITE, "id": 4, "region": "eu", "asn": 65004, "prefixes": ["10.4.0.0/24"],
    "gateways": [{"name": NEW, "platform": "strongswan", "transport": "local",
                  "host": "localhost", "public_ip": "192.0.2.4"}]}


def _lab3_renamed() -> str:
    """The lab3 example (full mesh, certificates) under this test's own names."""
    text = (EXAMPLES / "lab3.yaml").read_text()
    for old, new in (("name: lab3", f"name: {FABRIC}"), ("ams1", "lga1"), ("lon1", "lgl1"),
                     ("nyc1", "lgn1")):
        text = text.replace(old, new)
    return text


def _topology(fabric: Path) -> dict[str, Any]:
    code, out, err = cli(None, dcvpn.main, "topology", "-f", str(fabric), "--format", "json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def _numbering(topology: dict[str, Any]) -> dict[str, tuple[object, ...]]:
    """tunnel name -> (id, network, inner address of each end)."""
    return {t["name"]: (t["id"], t["network"],
                        *sorted((e["gateway"], e["inner_ip"]) for e in t["endpoints"]))
            for t in topology["tunnels"]}


def _kernel_addresses(gateway: str) -> set[str]:
    """The IPv4 addresses on ipsec0 in the gateway's namespace, as the kernel has them."""
    done = subprocess.run(["ip", "-n", f"dcvpn-{gateway}", "-j", "-4", "addr", "show", "ipsec0"],
                          capture_output=True, text=True, timeout=10, check=True)
    return {f"{a['local']}/{a['prefixlen']}" for link in json.loads(done.stdout)
            for a in link.get("addr_info", [])}


@pytest.fixture(scope="module")
def grown() -> Iterator[dict[str, Any]]:
    with lab_machine() as root:
        fabric = root / f"{FABRIC}.yaml"
        fabric.write_text(_lab3_renamed())
        lab_dir = root / FABRIC
        seen: list[Footprint] = []
        try:
            running = start(None, str(fabric), lab_dir)
            yield {"root": root, "fabric": fabric, "lab": running, "seen": seen,
                   "before": _topology(fabric),
                   "kernel": {gw: _kernel_addresses(gw) for gw in OLD},
                   "processes": running.state().processes}
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


def _add(fabric: Path, lab_dir: Path, capsys: pytest.CaptureFixture[str]
         ) -> tuple[int, dict[str, Any], str]:
    code, out, err = lab(capsys, "up", "--add", "-f", str(fabric), "--lab-dir", str(lab_dir),
                         "--format", "json")
    return code, json.loads(out) if out else {}, err


# --- lab up --add on its own --------------------------------------------------------------------

def test_add_without_a_lab_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(requirements, "is_root", lambda: True)
    monkeypatch.setattr(requirements, "missing", lambda: [])
    fabric = tmp_path / "fabric.yaml"
    fabric.write_text(_lab3_renamed())
    code, data, err = _add(fabric, tmp_path / "nolab", capsys)
    assert code == Exit.FAILED and data["ok"] is False
    assert f"no lab in {tmp_path / 'nolab'}" in err and "dcvpn lab up first" in err
    assert not (tmp_path / "nolab").exists()


@pytest.mark.lab
def test_add_with_nothing_new_changes_nothing(grown: dict[str, Any],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    running: Lab = grown["lab"]
    code, data, err = _add(grown["fabric"], running.lab_dir, capsys)
    assert code == Exit.OK, err
    assert data["added"] == [] and sorted(data["kept"]) == sorted(OLD)
    assert "nothing added" in err
    assert running.state().processes == grown["processes"]
    assert running.state().phase == "up"


@pytest.mark.lab
def test_failed_add_removes_what_it_made(grown: dict[str, Any],
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    running: Lab = grown["lab"]
    changed = grown["root"] / "changed.yaml"
    changed.write_text(insert_site(grown["fabric"].read_text(), NEW_ENTRY))
    real = daemons.start_frr

    def no_bgpd(state: LabState, gateways: Any, daemon: str, deadline: float) -> Any:
        if daemon == daemons.BGPD:
            raise LabError(f"{gateways[0].name}: bgpd failed to start (test)")
        return real(state, gateways, daemon, deadline)

    monkeypatch.setattr(daemons, "start_frr", no_bgpd)
    state = running.state()
    code, data, err = _add(changed, running.lab_dir, capsys)
    assert code == Exit.DEVICE and data["ok"] is False
    assert f"{NEW}: bgpd failed to start (test)" in err
    assert "what was made for them is removed again" in err
    after = running.state()
    assert f"dcvpn-{NEW}" not in netns.namespaces() and f"dcvpn-{NEW}" not in after.namespaces
    assert NEW not in after.gateways
    assert not (running.lab_dir / NEW).exists()
    assert not any(p.gateway == NEW for p in after.processes + after.pending)
    # the charon and zebra it had started are gone; the running lab is untouched
    assert after.processes == state.processes == grown["processes"]
    assert all(procs.is_running(r) for r in after.processes)
    assert after.phase == "up"


# --- dcvpn onboard --lab ------------------------------------------------------------------------

@pytest.mark.lab
def test_onboard_a_fourth_site_into_the_running_lab(grown: dict[str, Any],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    running: Lab = grown["lab"]
    root: Path = grown["root"]
    report = root / "onboard-report.json"
    code, out, err = cli(capsys, dcvpn.main, "onboard", "-f", str(grown["fabric"]), NEW_SITE,
                         "--region", "eu", "--prefix", "10.4.0.0/24", "--gateway", NEW_GATEWAY,
                         "--lab", "--lab-dir", str(running.lab_dir), "-o", str(root / "out"),
                         "--report", str(report), "--state", str(root / "deploy-state.json"),
                         "--settle", "30", "--interval", "0.5", "--confirm-timeout", "120",
                         "--format", "json")
    result = json.loads(out)
    steps = {s["step"]: s for s in result["steps"]}
    assert code == Exit.OK, (err, result)
    assert [s["status"] for s in result["steps"]].count("failed") == 0
    order = [s["step"] for s in result["steps"]]
    assert order.index("lab") < order.index("deploy")
    assert NEW in steps["lab"]["detail"]
    # the certificate came from the lab's own CA
    assert str(running.lab_dir / "pki") in steps["certificates"]["detail"]

    # the deploy: the new site with one peer in the first wave, all confirmed
    deploy = json.loads(report.read_text())
    first = deploy["waves"][0]
    assert first["kind"] == "first" and NEW in first["gateways"]
    assert len(set(first["gateways"]) - {NEW}) == 1 and set(first["gateways"]) <= {NEW, *OLD}
    assert all(w["outcome"] == "confirmed" for w in deploy["waves"])
    assert {g for w in deploy["waves"] for g in w["gateways"]} == {NEW, *OLD}

    # every tunnel of the full mesh validates
    code, data = running.validate(capsys)
    assert code == 0 and data["ok"], failed(data["checks"])
    kinds = [c["kind"] for c in data["checks"]]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "ike": 12, "child": 12, "bgp": 12, "route": 12, "ping": 6, "mtu": 6}
    assert {c["name"] for c in data["checks"] if c["kind"] == "ike"} >= {
        f"ike {NEW} {peer[:4]}-{NEW_SITE}-p0" for peer in OLD}

    # no existing tunnel renumbered: the model ...
    before, after = _numbering(grown["before"]), _numbering(_topology(grown["fabric"]))
    assert len(before) == 3 and len(after) == 6
    assert {name: after[name] for name in before} == before
    # ... and the kernels: each old gateway kept its inner addresses and gained the new one
    for gw in OLD:
        new_inner = {f"{e['inner_ip']}/31" for t in _topology(grown["fabric"])["tunnels"]
                     if NEW in {x["gateway"] for x in t["endpoints"]}
                     for e in t["endpoints"] if e["gateway"] == gw}
        assert len(new_inner) == 1
        assert _kernel_addresses(gw) == grown["kernel"][gw] | new_inner
    # the running daemons were neither restarted nor replaced
    state = running.state()
    assert [r for r in state.processes if r.gateway in OLD] == grown["processes"]
    assert all(procs.is_running(r) for r in state.processes)
    assert sorted(r.daemon for r in state.processes if r.gateway == NEW) == [
        "bfdd", "bgpd", "charon", "zebra"]
    devices = json.loads((running.lab_dir / "devices.json").read_text())["devices"]
    assert devices[NEW] == {"platform": "strongswan", "transport": "local",
                            "netns": f"dcvpn-{NEW}", "dir": str(running.lab_dir / NEW)}
    grown["seen"].append(footprint(running.lab_dir))


@pytest.mark.lab
def test_status_shows_the_new_gateway(grown: dict[str, Any],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    running: Lab = grown["lab"]
    code, out, _ = lab(capsys, "status", "--lab-dir", str(running.lab_dir), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["healthy"] and data["phase"] == "up"
    tunnels = {t["name"]: (t["ike"], t["child"]) for t in data["gateways"][NEW]["tunnels"]}
    assert tunnels == {f"{peer[:4]}-{NEW_SITE}-p0": ("ESTABLISHED", "INSTALLED")
                       for peer in OLD}


@pytest.mark.lab
def test_down_removes_the_grown_lab(grown: dict[str, Any],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    running: Lab = grown["lab"]
    assert grown["seen"], "the onboarding test did not get far enough"
    seen: Footprint = grown["seen"][0]
    assert f"dcvpn-{NEW}" in seen.namespaces
    assert any(r.gateway == NEW and r.daemon == "charon" for r in seen.processes)
    code, _, err = lab(capsys, "down", "--lab-dir", str(running.lab_dir))
    assert code == 0, err
    assert leftovers(seen) == []
    assert not running.lab_dir.exists()


# --- emulated gateways: the supervisor grows without a restart ----------------------------------

EM_FABRIC = "lgemu"
EM_OLD = ("lgj1-gw1", "lgj2-gw1", "lgj3-gw1")
EM_NEW_SITE, EM_NEW = "lgj4", "lgj4-gw1"


def _em_site(i: int) -> dict[str, object]:
    return {"name": f"lgj{i}", "id": i, "region": "eu" if i != 3 else "us", "asn": 65300 + i,
            "prefixes": [f"10.3{i}.0.0/24"],
            "gateways": [{"name": f"lgj{i}-gw1", "platform": "junos", "transport": "netconf",
                          "host": f"lgj{i}-gw1.mgmt", "public_ip": f"198.51.100.4{i}"}]}


@pytest.fixture
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    from ncclient.transport import session as nc_session  # type: ignore[import-untyped]

    monkeypatch.setattr(nc_session, "TICK", 0.005)


@pytest.fixture(scope="module")
def emulated() -> Iterator[dict[str, Any]]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("DCVPN_") and name != "DCVPN_YANG_DIR":
                mp.delenv(name)
        root = Path(tempfile.mkdtemp(prefix="dcvpn-lg-"))
        lab_dir = root / EM_FABRIC
        fabric = root / f"{EM_FABRIC}.yaml"
        fabric.write_text(yaml.safe_dump(
            {"fabric": {"name": EM_FABRIC, "topology": "full_mesh",
                        "tunnel_pool": "169.254.0.0/16", "auth": {"method": "psk"},
                        "bgp": {"mode": "ebgp"}},
             "sites": [_em_site(i) for i in (1, 2, 3)]}, sort_keys=False))
        try:
            code, _, err = lab(None, "up", "-f", str(fabric), "--lab-dir", str(lab_dir),
                               "--format", "json", "--timeout", "60")
            assert code == 0, err
            yield {"root": root, "fabric": fabric, "lab_dir": lab_dir,
                   "secrets": root / "secrets"}
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))
            shutil.rmtree(root, ignore_errors=True)


def _em_common(em: dict[str, Any], report: str) -> list[str]:
    root = em["root"]
    return ["--lab", "--lab-dir", str(em["lab_dir"]), "--secrets-dir", str(em["secrets"]),
            "--report", str(root / report), "--state", str(root / "deploy-state.json"),
            "--settle", "20", "--interval", "0.3", "--confirm-timeout", "120"]


def _device_state(lab_dir: Path, name: str) -> Any:
    device = load_lab_devices(lab_dir)[name]
    driver = driver_class(device.platform, device.transport)(device.target)
    driver.open()
    try:
        return driver.get_state()
    finally:
        driver.close()


def _supervisor(lab_dir: Path) -> procs.ProcessRecord:
    state = LabState.load(lab_dir)
    assert state is not None
    found = [r for r in state.processes if r.gateway == SUPERVISOR_GATEWAY]
    assert len(found) == 1, state.processes
    return found[0]


@pytest.mark.lab
@pytest.mark.usefixtures("quick_client_polling")
def test_onboard_an_emulated_site_into_the_running_supervisor(
        emulated: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    lab_dir: Path = emulated["lab_dir"]
    fabric: Path = emulated["fabric"]
    supervisor = _supervisor(lab_dir)
    compiled = compile_fabric(load_fabric(fabric).fabric)
    ensure_psks(emulated["secrets"], [t.name for t in compiled.tunnels])
    code, _, err = cli(capsys, dcvpn.main, "deploy", "-f", str(fabric),
                       *_em_common(emulated, "first.json"))
    assert code == Exit.OK, err

    code, out, err = cli(capsys, dcvpn.main, "onboard", "-f", str(fabric), EM_NEW_SITE,
                         "--region", "eu", "--prefix", "10.34.0.0/24", "--gateway",
                         f"{EM_NEW}=junos@198.51.100.44", "-o", str(emulated["root"] / "out"),
                         "--format", "json", *_em_common(emulated, "onboard.json"))
    result = json.loads(out)
    assert code == Exit.OK, (err, result)
    steps = {s["step"]: s for s in result["steps"]}
    assert f"{EM_NEW} (emulated)" in steps["lab"]["detail"]
    report = json.loads((emulated["root"] / "onboard.json").read_text())
    assert report["waves"][0]["kind"] == "first" and EM_NEW in report["waves"][0]["gateways"]
    assert all(w["outcome"] == "confirmed" and w["health"]["healthy"] for w in report["waves"])

    # the same supervisor process hosts the new device: nothing was restarted
    assert _supervisor(lab_dir) == supervisor and procs.is_running(supervisor)
    devices = load_lab_devices(lab_dir)
    assert sorted(devices) == sorted((*EM_OLD, EM_NEW))
    known = (lab_dir / "known_hosts").read_text().splitlines()
    assert len(known) == 4 and any(f"]:{devices[EM_NEW].target.port} " in k for k in known)
    # one PeerRegistry: the new device's tunnels are up towards the old devices, and theirs
    # towards it (each derives its SAs from the other's committed configuration)
    state = _device_state(lab_dir, EM_NEW)
    assert sum(1 for sa in state.ike_sas if sa.state == "ESTABLISHED") == 3
    assert sorted(s.state for s in state.bgp_sessions) == ["Established"] * 3
    old = _device_state(lab_dir, EM_OLD[0])
    assert sum(1 for sa in old.ike_sas if sa.state == "ESTABLISHED") == 3

    code, out, _ = lab(capsys, "status", "--lab-dir", str(lab_dir), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["healthy"] and data["emulators"][EM_NEW]["answering"]
    seen = footprint(lab_dir)
    code, _, err = lab(capsys, "down", "--lab-dir", str(lab_dir))
    assert code == 0, err
    assert leftovers(seen) == [] and not procs.is_running(supervisor)
