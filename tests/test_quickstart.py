"""The README's quick start, end to end on one machine, through the `dcvpn` entry point:

    lab up -> render -> diff --lab -> deploy --lab -> deploy --lab again ("no changes")
    -> validate -> change the model (a prefix more at qssjc) -> diff --lab (exactly that
    change) -> deploy --lab (health-gated, confirmed) -> validate -> lab down

on inventory/examples/quickstart.yaml: three strongSwan+FRR sites (real charon and FRR in
namespaces) and an emulated JunOS and IOS-XE (NETCONF) gateway. The lab starts the strongSwan
gateways with the rendered configuration and the emulated devices blank, so the first deploy
configures exactly the two emulated devices. The one tunnel between an emulated device and a
real daemon (qsfra-qsiad-p0) cannot come up by design: the health gate says so ("emulated
peer: not checked") instead of failing or passing it. Needs root and the lab's packages.
"""

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES
from lab_support import Footprint, cli, footprint, lab_machine, leftovers

from lab import netns
from lab.state import LabState
from pipelines.cli import main

pytestmark = pytest.mark.lab

EXAMPLE = EXAMPLES / "quickstart.yaml"
STRONGSWAN = ("qsams-gw1", "qsfra-gw1", "qspar-gw1")
EMULATED = ("qsiad-gw1", "qssjc-gw1")
ACROSS = "qsfra-qsiad-p0"  # emulated qsiad-gw1 <-> real qsfra-gw1
NEW_PREFIX = "10.105.1.0/24"
EMULATED_TUNNEL = "qsiad-qssjc-p0"  # both ends emulated: checked for real


@dataclass
class QuickStart:
    root: Path
    fabric: Path
    lab_dir: Path
    seen: Footprint = field(default_factory=lambda: Footprint((), (), ()))
    down: bool = False

    def dcvpn(self, *argv: str) -> tuple[int, str, str]:
        return cli(None, main, *argv)

    def lab_args(self) -> tuple[str, ...]:
        return ("-f", str(self.fabric), "--lab", "--lab-dir", str(self.lab_dir))

    def deploy(self, *extra: str) -> tuple[int, str, str, dict[str, Any]]:
        report = self.root / "deploy-report.json"
        code, out, err = self.dcvpn("deploy", *self.lab_args(), "--report", str(report),
                                    "--state", str(self.root / "deploy-state.json"), *extra)
        return code, out, err, json.loads(report.read_text())

    def validate(self) -> tuple[int, dict[str, Any], str]:
        code, out, err = self.dcvpn("validate", "-f", str(self.fabric), "--lab-dir",
                                    str(self.lab_dir), "--format", "json")
        return code, json.loads(out), err


@pytest.fixture(scope="module")
def qs() -> Iterator[QuickStart]:
    with lab_machine() as root:
        fabric = root / "quickstart.yaml"
        shutil.copyfile(EXAMPLE, fabric)  # the change step edits this copy
        state = QuickStart(root, fabric, root / "lab")
        cwd = Path.cwd()
        os.chdir(root)  # render output and anything relative stay in the temp folder
        try:
            yield state
        finally:
            os.chdir(cwd)
            if not state.down and LabState.load(state.lab_dir) is not None:
                cli(None, main, "lab", "down", "--lab-dir", str(state.lab_dir))


def test_lab_up_runs_strongswan_for_real_and_emulates_the_vendor_gateways(
        qs: QuickStart) -> None:
    code, out, err = qs.dcvpn("lab", "up", "-f", str(qs.fabric), "--lab-dir", str(qs.lab_dir),
                              "--timeout", "60")
    qs.seen = footprint(qs.lab_dir)
    assert code == 0, err
    assert "lab qstart ready in" in err and "3 strongSwan and 2 emulated gateway(s)" in err
    assert "the lab renders them with data_plane libipsec" in err  # the model says xfrm
    for gw in STRONGSWAN:
        assert f"{gw}  dcvpn-{gw}  charon" in out
    assert "qsams-qspar-p0  IKE ESTABLISHED   CHILD INSTALLED" in out
    assert "qsiad-gw1  junos netconf  127.0.0.1:" in out
    assert "qssjc-gw1  iosxe netconf  127.0.0.1:" in out


def test_render_writes_every_gateway(qs: QuickStart) -> None:
    code, _, err = qs.dcvpn("render", "-f", str(qs.fabric), "-o", "out")
    assert code == 0, err
    assert "rendered 5 gateway(s) into out: 5 changed" in err
    for gw in STRONGSWAN:
        assert (qs.root / "out" / gw / "swanctl.conf").is_file()
    assert (qs.root / "out" / "qsiad-gw1" / "config.set").is_file()
    assert (qs.root / "out" / "qssjc-gw1" / "config.cli").is_file()


def test_diff_lab_shows_the_blank_emulated_devices_and_no_strongswan_change(
        qs: QuickStart) -> None:
    code, out, err = qs.dcvpn("diff", *qs.lab_args())
    assert code == 0, err
    assert "2 of 5 gateway(s) change" in err
    for gw in STRONGSWAN:  # the lab loaded them with what the deploy renders (libipsec, PSKs)
        assert f"== {gw} " not in out
    assert "== qsiad-gw1 (junos): " in out and "== qssjc-gw1 (iosxe): " in out
    assert "   tunnel qsiad-qssjc-p0: new tunnel" in out
    assert f"   tunnel {ACROSS}: new tunnel" in out
    assert "ascii-text <masked>" in out  # the lab's PSKs, resolved and never shown


def test_first_deploy_configures_the_emulated_devices_health_gated(qs: QuickStart) -> None:
    code, out, err, report = qs.deploy()
    assert code == 0, err
    assert "dcvpn deploy: deployed: 2 gateway(s) changed and confirmed in 1 wave(s)" in err
    for gw in STRONGSWAN:
        assert f"{gw}  -        unchanged" in out
    for gw in EMULATED:
        assert report["devices"][gw]["outcome"] == "confirmed"
    health = report["waves"][0]["health"]
    assert health["healthy"] and health["failed"] == []
    checks = {c["name"]: c for c in health["checks"]}
    # between the two emulated devices the tunnel and its BGP session are really checked
    assert checks["ike qsiad-gw1 qsiad-qssjc-p0"]["status"] == "pass"
    assert checks["bgp qssjc-gw1 169.254.0.72"]["status"] == "pass"
    # the tunnel to a real daemon is named as not checked, on both ends, never passed
    for name in (f"ike qsfra-gw1 {ACROSS}", f"ike qsiad-gw1 {ACROSS}",
                 f"child qsfra-gw1 {ACROSS}", "bgp qsfra-gw1 169.254.0.25"):
        assert name not in checks, name
        assert name in err, name
    assert "emulated peer, not checked (" in err
    emulated = [g for g in health["not_evaluated"] if g["reason"] == "emulated peer: not checked"]
    assert {g["kind"] for g in emulated} >= {"ike", "child", "bgp"}
    assert {g["status"] for g in emulated} == {"not-applicable"}
    assert all({"qsfra-gw1", "qsiad-gw1"} <= set(g["gateways"]) for g in emulated
               if g["kind"] in ("ike", "child"))


def test_a_second_deploy_changes_nothing(qs: QuickStart) -> None:
    code, _, err, report = qs.deploy()
    assert code == 0, err
    assert "no changes: all 5 gateway(s) already match the model" in err
    assert report["outcome"] == "no-changes"
    assert all(d["outcome"] == "unchanged" for d in report["devices"].values())


def _validated(qs: QuickStart) -> dict[str, str]:
    code, data, err = qs.validate()
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert code == 0, [c for c in data["checks"] if c["status"] == "fail"]
    assert "no reader" not in err
    assert statuses["ping qsams->qspar"] == "pass" and statuses["mtu qsfra->qsams"] == "pass"
    assert statuses[f"ike qsfra-gw1 {ACROSS}"] == "skip"
    assert statuses[f"ike qsiad-gw1 {ACROSS}"] == "skip"
    # the emulated devices are read through their drivers: their own tunnel is checked
    for gw in EMULATED:
        for kind in ("ike", "child"):
            assert statuses[f"{kind} {gw} {EMULATED_TUNNEL}"] == "pass", (kind, gw)
    return statuses


def test_validate_passes_on_the_strongswan_sites(qs: QuickStart) -> None:
    statuses = _validated(qs)
    assert statuses["route qsams-gw1 10.101.0.0/24"] == "pass"


def test_drift_on_an_emulated_device_fails_validate_and_deploy_repairs_it(
        qs: QuickStart) -> None:
    from ncclient import manager  # type: ignore[import-untyped]

    from tasks.lab_devices import load_lab_devices

    target = load_lab_devices(qs.lab_dir)["qsiad-gw1"].target
    with manager.connect(host=target.host, port=target.port, username=target.username,
                         password=target.password, device_params={"name": "junos"},
                         hostkey_verify=False, allow_agent=False, look_for_keys=False,
                         timeout=30) as m:
        m.lock()
        m.load_configuration(action="set", config=[
            "set security ike proposal DCVPN-IKE-PROP dh-group group19"])
        m.commit()
        m.unlock()
    code, data, _ = qs.validate()
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert code == 1
    assert statuses[f"ike qsiad-gw1 {EMULATED_TUNNEL}"] == "fail"
    assert statuses[f"ike qssjc-gw1 {EMULATED_TUNNEL}"] == "fail"
    assert statuses["ike qsams-gw1 qsams-qspar-p0"] == "pass"  # nothing else is touched
    code, _, err, report = qs.deploy()
    assert code == 0, err
    assert [g for g, d in report["devices"].items() if d["outcome"] == "confirmed"] == [
        "qsiad-gw1"]
    _validated(qs)


def _change_the_model(qs: QuickStart) -> None:
    text = qs.fabric.read_text()
    old = "prefixes: [10.105.0.0/24]"
    assert text.count(old) == 1
    qs.fabric.write_text(text.replace(old, f"prefixes: [10.105.0.0/24, {NEW_PREFIX}]"))


def test_diff_lab_shows_exactly_the_model_change(qs: QuickStart) -> None:
    _change_the_model(qs)
    code, out, err = qs.dcvpn("diff", *qs.lab_args(), "--format", "json", "--exit-code")
    assert code == 1, err  # --exit-code: something would change
    data = json.loads(out)
    assert data["failed"] == [] and sorted(data["changed"]) == sorted(STRONGSWAN + EMULATED)
    semantic = {gw: {c["change"] for c in g["semantic"]} for gw, g in data["gateways"].items()}
    assert semantic["qssjc-gw1"] == {f"announces {NEW_PREFIX} (new)"}
    for gw in ("qsams-gw1", "qsfra-gw1", "qspar-gw1", "qsiad-gw1"):
        assert semantic[gw] == {f"accepts {NEW_PREFIX} (new)"}, gw
    code, text, _ = qs.dcvpn("diff", *qs.lab_args())
    assert code == 0
    assert f"== qssjc-gw1 (iosxe): 1 change(s)\n   gateway: announces {NEW_PREFIX} (new)" in text


def test_deploy_of_the_change_is_health_gated_and_confirmed(qs: QuickStart) -> None:
    code, _, err, report = qs.deploy()
    assert code == 0, err
    assert "deployed: 5 gateway(s) changed and confirmed in 2 wave(s)" in err
    assert [w["outcome"] for w in report["waves"]] == ["confirmed", "confirmed"]
    assert all(w["health"]["healthy"] for w in report["waves"])
    assert all(d["outcome"] == "confirmed" for d in report["devices"].values())
    code, _, err, _ = qs.deploy()
    assert code == 0 and "no changes" in err


def test_validate_after_the_change(qs: QuickStart) -> None:
    _validated(qs)


def test_lab_down_leaves_nothing(qs: QuickStart) -> None:
    code, _, err = qs.dcvpn("lab", "down", "--lab-dir", str(qs.lab_dir))
    qs.down = code == 0
    assert code == 0, err
    assert leftovers(qs.seen) == []
    assert not any(ns.startswith(("dcvpn-qs", "dcvpn-qstart")) for ns in netns.namespaces())
