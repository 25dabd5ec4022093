"""`dcvpn diff` against devices: in-process JunOS and IOS-XE emulators (real SSH + NETCONF on
loopback ports) listed in a lab's devices.json, reached through the CLI with `--lab --lab-dir`.

Every test also proves the diff changed nothing: each device's running configuration and
commit history are the same after the diff as before it, and its candidate is free.
"""

import copy
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES
from ncclient import manager  # type: ignore[import-untyped]
from ncclient.transport import session as nc_session  # type: ignore[import-untyped]
from netconf_support import connect, require_yang

from drivers.base import DeviceTarget, LoadMode
from drivers.iosxe_netconf import IosxeNetconfDriver
from drivers.junos_netconf import JunosNetconfDriver
from inventory.model import Fabric
from inventory.topology import CompiledFabric, compile_fabric
from lab.emulators.iosxe_schema import load_yang
from lab.emulators.ssh_server import NetconfServer, ServerThread
from pipelines.cli import main
from tasks.intent import gateway_intent
from tasks.lab_devices import write_lab_devices
from tasks.pki.psk import ensure_psks, resolve_secrets
from tasks.render import render_gateway
from tasks.render_context import gateway_view
from tasks.validate_strongswan import local_fabric

USER = "lab"
PASSWORD = "lab-secret"
WAIT = 10.0
SCALE = 0.025  # emulated minutes are short; diffs never arm timers anyway
GATEWAYS = ("iad1-gw1", "iad1-gw2", "sjc1-gw1")  # the JunOS gateways of acme-hybrid
SITES = ("--site", "iad1", "--site", "sjc1")


@pytest.fixture(autouse=True)
def quick_client_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """ncclient sends a queued request only when its 0.1 s select tick ends; shorten it."""
    monkeypatch.setattr(nc_session, "TICK", 0.005)


@cache
def _acme() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "acme-hybrid.yaml").read_text())
    return data


def acme(*mutations: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(_acme())
    for mutate in mutations:
        mutate(data)
    return data


def psk(data: dict[str, Any]) -> None:
    data["fabric"]["auth"] = {"method": "psk"}


def esp_30m(data: dict[str, Any]) -> None:
    data["fabric"]["crypto"]["esp"]["lifetime"] = "30m"


def compiled(data: dict[str, Any]) -> CompiledFabric:
    """As `--lab` compiles it: the strongSwan sites on kernel-libipsec, like `dcvpn lab up`."""
    return compile_fabric(local_fabric(Fabric.model_validate(data))[0])


@dataclass
class Lab:
    root: Path
    emulators: dict[str, ServerThread]
    secrets: Path

    @property
    def lab_dir(self) -> Path:
        return self.root / "lab"

    def fabric(self, data: dict[str, Any], name: str = "fabric.yaml") -> Path:
        path = self.root / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def target(self, gateway: str) -> DeviceTarget:
        emu = self.emulators[gateway]
        return DeviceTarget(name=gateway, host="127.0.0.1", port=emu.port, username=USER,
                            password=PASSWORD, known_hosts=self.lab_dir / "known_hosts",
                            timeout=WAIT)

    def deploy(self, data: dict[str, Any], gateways: tuple[str, ...] = GATEWAYS) -> None:
        """Commit the rendered configuration (secrets resolved) with the driver itself."""
        fabric = compiled(data)
        for gw in gateways:
            xml = resolve_secrets(render_gateway(fabric, gw)["config.xml"], self.secrets)
            with JunosNetconfDriver(self.target(gw)) as drv:
                drv.load_candidate(xml, LoadMode.REPLACE)
                drv.commit()

    def state(self) -> dict[str, tuple[str, list[tuple[str, str, str]]]]:
        """Per device: running configuration and commit history, read by a session of its
        own, which also takes and frees the candidate lock (refused if a diff left it held)."""
        out = {}
        for gw, emu in self.emulators.items():
            with manager.connect(host="127.0.0.1", port=emu.port, username=USER,
                                 password=PASSWORD, device_params={"name": "junos"},
                                 hostkey_verify=False, allow_agent=False, look_for_keys=False,
                                 timeout=WAIT) as m:
                m.rpc("<lock-configuration/>")
                m.rpc("<unlock-configuration/>")
                running = m.rpc('<get-configuration database="committed" format="text"/>')
                history = m.rpc("<get-commit-information/>").xpath("//commit-history")
                out[gw] = (running.xpath("string(//configuration-text)"),
                           [(h.findtext("sequence-number") or "", h.findtext("date-time") or "",
                             h.findtext("log") or "") for h in history])
        return out


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def write_devices(lab: Lab, unreachable: tuple[str, ...] = (), platform: str = "junos") -> None:
    """devices.json and known_hosts; an unreachable gateway's port has nothing listening
    (its host key is known, so the failure is the connection's)."""
    lab.lab_dir.mkdir(exist_ok=True)
    ports = {gw: _closed_port() if gw in unreachable else emu.port
             for gw, emu in lab.emulators.items()}
    lines = [emu.known_hosts_line().replace(f"]:{emu.port} ", f"]:{ports[gw]} ")
             for gw, emu in lab.emulators.items()]
    known = lab.lab_dir / "known_hosts"
    known.write_text("".join(line + "\n" for line in lines))
    devices = {
        gw: {"platform": platform, "transport": "netconf", "host": "127.0.0.1",
             "port": ports[gw], "username": USER, "password": PASSWORD,
             "known_hosts": str(known)}
        for gw in lab.emulators
    }
    write_lab_devices(lab.lab_dir, "acme", devices)


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    started: dict[str, ServerThread] = {}
    try:
        for gw in GATEWAYS:
            server = NetconfServer("junos", USER, PASSWORD, tmp_path / f"df-{gw}", SCALE)
            started[gw] = ServerThread(server).start(timeout=30)
        secrets = tmp_path / "secrets"
        monkeypatch.setenv("DCVPN_SECRETS_DIR", str(secrets))
        monkeypatch.setenv("DCVPN_TIMEOUT", str(WAIT))
        for var in ("DCVPN_USERNAME", "DCVPN_PASSWORD", "DCVPN_NO_HOST_KEY_CHECK"):
            monkeypatch.delenv(var, raising=False)
        result = Lab(tmp_path, started, secrets)
        write_devices(result)
        yield result
    finally:
        for thread in started.values():
            thread.stop()


def run_diff(lab: Lab, fabric: Path, capsys: pytest.CaptureFixture[str], *extra: str,
             sites: tuple[str, ...] = SITES) -> tuple[int, str, str]:
    code = main(["diff", "-f", str(fabric), "--lab", "--lab-dir", str(lab.lab_dir), *sites,
                 *extra])
    out, err = capsys.readouterr()
    return code, out, err


def psk_keys(data: dict[str, Any], secrets: Path) -> list[str]:
    fabric = compiled(data)
    names = sorted({t.name for gw in GATEWAYS for t in gateway_view(fabric, gw).tunnels})
    ensure_psks(secrets, names)
    return [(secrets / "psk" / n).read_text().strip() for n in names]


# --- tests -------------------------------------------------------------------------------

def test_fresh_devices_show_everything_as_new_and_keep_their_configuration(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    data = acme()
    before = lab.state()
    code, out, err = run_diff(lab, lab.fabric(data), capsys, "--format", "json")
    assert code == 0, err
    assert lab.state() == before  # running config, commit history, free candidate
    doc = json.loads(out)
    assert doc["changed"] == list(GATEWAYS) and doc["failed"] == []
    fabric = compiled(data)
    for gw in GATEWAYS:
        entry = doc["gateways"][gw]
        intent = gateway_intent(fabric, gw)
        semantic = {(c["scope"], c["change"]) for c in entry["semantic"]}
        assert {(f"tunnel {t}", "new tunnel") for t in intent["tunnels"]} <= semantic
        assert {(f"neighbor {a}", "new BGP neighbor") for a in intent["bgp_neighbors"]} \
            <= semantic
        assert ("gateway", f"asn none -> {intent['asn']}") in semantic
        assert "+          proposal DCVPN-IKE-PROP {" in entry["native"]
        assert "+        <name>DCVPN-IKE-PROP</name>" in entry["files"]["config.xml"]
        assert entry["error"] is None
    assert "3 of 3 gateway(s) change" in err


def test_a_deployed_fabric_diffs_empty_even_beside_the_devices_own_config(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    data = acme()
    lab.deploy(data)
    with JunosNetconfDriver(lab.target("iad1-gw1")) as drv:  # config dcvpn does not manage
        drv.load_candidate(
            "set security ike proposal SITE-PROP dh-group group14\n"
            "set interfaces ge-0/0/2 unit 0 family inet address 192.0.2.1/31\n"
            "set interfaces ge-0/0/1 unit 0 description site-lan\n"
            "set protocols bgp group SITE-IBGP type internal\n"
            "set protocols bgp group SITE-IBGP neighbor 192.0.2.0", LoadMode.MERGE)
        drv.commit()
    before = lab.state()
    code, out, err = run_diff(lab, lab.fabric(data), capsys, "--exit-code")
    assert code == 0, err
    assert out == ""
    assert "0 of 3 gateway(s) change" in err
    assert lab.state() == before


def test_one_model_change_is_named_per_tunnel_and_secrets_stay_masked(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    data = acme(psk)
    old_keys = psk_keys(data, lab.secrets)
    lab.deploy(data)
    for path in (lab.secrets / "psk").iterdir():  # rotate every key: the PSK lines change
        path.unlink()
    new_keys = psk_keys(data, lab.secrets)
    assert set(old_keys).isdisjoint(new_keys)
    fabric = lab.fabric(acme(psk, esp_30m), "esp-30m.yaml")
    report = lab.root / "diff.md"
    before = lab.state()
    code, out, err = run_diff(lab, fabric, capsys, "--format", "json", "--exit-code",
                              "--report", str(report))
    assert code == 1, err
    assert lab.state() == before
    doc = json.loads(out)
    entry = doc["gateways"]["iad1-gw1"]
    assert {"gateway": "iad1-gw1", "scope": "tunnel fra1-iad1-p0",
            "change": "ESP lifetime 1h -> 30m"} in entry["semantic"]
    assert {c["change"] for c in entry["semantic"]} == {"ESP lifetime 1h -> 30m"}
    native = entry["native"]
    assert "[edit security ipsec proposal DCVPN-ESP-PROP]\n-   lifetime-seconds 3600;\n" \
           "+   lifetime-seconds 1800;" in native
    assert "-   ascii-text <masked>" in native  # the rotated keys show as changed, masked
    assert "<ascii-text><masked></ascii-text>" in entry["files"]["config.xml"]
    markdown = report.read_text()
    assert "- **tunnel fra1-iad1-p0**: ESP lifetime 1h -> 30m" in markdown
    assert "<summary>native diff</summary>" in markdown
    code, text, _ = run_diff(lab, fabric, capsys)
    assert code == 0
    assert "   tunnel iad1-sjc1-p0: ESP lifetime 1h -> 30m" in text
    for shown in (out, err, markdown, text):
        assert not any(key in shown for key in old_keys + new_keys)


def test_an_unreachable_device_exits_3_and_the_others_are_still_reported(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    write_devices(lab, unreachable=("iad1-gw2",))
    fabric = lab.fabric(acme())
    code, out, err = run_diff(lab, fabric, capsys, "--format", "json")
    assert code == 3
    doc = json.loads(out)
    assert doc["failed"] == ["iad1-gw2"]
    assert doc["changed"] == ["iad1-gw1", "sjc1-gw1"]
    error = doc["gateways"]["iad1-gw2"]["error"]
    assert "iad1-gw2" in error and "cannot open a NETCONF session" in error
    assert "could not be compared: iad1-gw2" in err and "Traceback" not in err
    code, markdown, _ = run_diff(lab, fabric, capsys, "--format", "markdown")
    assert code == 3
    assert "| `iad1-gw2` | junos | not compared |" in markdown
    assert "### `iad1-gw1`" in markdown


def test_a_gateway_missing_from_the_lab_is_reported_and_a_missing_lab_is_bad_input(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    fabric = lab.fabric(acme())
    code, out, err = run_diff(lab, fabric, capsys, "--site", "fra1")
    assert code == 3
    assert "fra1-gw1 (iosxe): not compared" in out and "devices.json" in out
    code, out, err = main(["diff", "-f", str(fabric), "--lab", "--lab-dir",
                           str(lab.root / "nowhere")]), *capsys.readouterr()
    assert code == 2 and out == ""
    assert "devices.json does not exist" in err and "Traceback" not in err


# --- IOS-XE over NETCONF ------------------------------------------------------------------

IOSXE_GATEWAYS = ("fra1-gw1", "fra1-gw2")  # IOS-XE 17.15 over NETCONF in acme-hybrid


@pytest.fixture
def iosxe_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    require_yang()
    load_yang("17.15")
    started: dict[str, ServerThread] = {}
    try:
        for gw in IOSXE_GATEWAYS:
            server = NetconfServer("iosxe", USER, PASSWORD, tmp_path / f"df-{gw}", SCALE)
            started[gw] = ServerThread(server).start(timeout=30)
        monkeypatch.setenv("DCVPN_TIMEOUT", str(WAIT))
        result = Lab(tmp_path, started, tmp_path / "secrets")
        write_devices(result, platform="iosxe")
        yield result
    finally:
        for thread in started.values():
            thread.stop()


def _iosxe_running(lab: Lab, gateway: str) -> str:
    """The running configuration, read by a session that also takes and frees the lock."""
    with IosxeNetconfDriver(lab.target(gateway)) as drv:
        running = drv.get_running()
    with connect(lab.emulators[gateway].port) as m:
        for datastore in ("running", "candidate"):
            m.lock(target=datastore)
            m.unlock(target=datastore)
    return running


def test_iosxe_netconf_devices_new_then_deployed_then_one_change(
        iosxe_lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    lab = iosxe_lab
    data = acme()
    site = ("--site", "fra1")
    code, out, err = run_diff(lab, lab.fabric(data), capsys, "--format", "json", sites=site)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["changed"] == list(IOSXE_GATEWAYS)
    semantic = {(c["scope"], c["change"]) for c in doc["gateways"]["fra1-gw1"]["semantic"]}
    assert ("tunnel fra1-iad1-p0", "new tunnel") in semantic
    assert ("neighbor 169.254.0.1", "new BGP neighbor") in semantic
    fabric = compiled(data)
    for gw in IOSXE_GATEWAYS:
        with IosxeNetconfDriver(lab.target(gw)) as drv:
            drv.load_candidate(render_gateway(fabric, gw)["config.xml"], LoadMode.REPLACE)
            drv.commit()
    code, out, err = run_diff(lab, lab.fabric(data), capsys, "--exit-code", sites=site)
    assert (code, out) == (0, ""), err
    before = [_iosxe_running(lab, gw) for gw in IOSXE_GATEWAYS]
    code, out, err = run_diff(lab, lab.fabric(acme(esp_30m)), capsys, "--format", "json",
                              "--exit-code", sites=site)
    assert code == 1, err
    assert [_iosxe_running(lab, gw) for gw in IOSXE_GATEWAYS] == before
    entry = json.loads(out)["gateways"]["fra1-gw1"]
    assert {(c["scope"], c["change"]) for c in entry["semantic"]} == {
        (f"tunnel {t}", "ESP lifetime 1h -> 30m")
        for t in ("fra1-ams1-p0", "fra1-iad1-p0", "fra1-par1-p0")}
    assert "3600" in entry["native"] and "1800" in entry["native"]
