"""Shared helpers of the JunOS PKI tests (test_jp_*): a certificate fabric with JunOS
gateways, its PKI, an emulated SRX and ncclient sessions to it."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from ncclient import manager  # type: ignore[import-untyped]

from inventory.loader import load_fabric
from inventory.topology import CompiledFabric, compile_fabric
from lab.emulators.ssh_server import NetconfServer, ServerThread
from tasks.pki.ca import init_ca
from tasks.pki.delivery import GatewayMaterial, load_material
from tasks.pki.issue import issue_certs, renew_certs
from tasks.pki.keys import Passphrase
from tasks.pki.store import Layout

USER = "lab"
PASSWORD = "lab-secret"
WAIT = 20.0
FABRIC = "jpfab"
GATEWAYS = ("jp1-gw1", "jp2-gw1")
CA_PROFILE = "DCVPN-CA"


def fabric_data(platform: str = "junos", transport: str = "netconf") -> dict[str, Any]:
    sites = [{"name": f"jp{i}", "id": i, "region": "eu", "asn": 65300 + i,
              "prefixes": [f"10.{i}.0.0/24"],
              "gateways": [{"name": f"jp{i}-gw1", "platform": platform,
                            "transport": transport, "host": f"jp{i}-gw1.mgmt.example.net",
                            "public_ip": f"198.51.100.{i}"}]}
             for i in (1, 2)]
    return {"fabric": {"name": FABRIC, "topology": "full_mesh",
                       "tunnel_pool": "169.254.0.0/16", "crypto": {"profile": "strict"},
                       "auth": {"method": "certificate", "key_type": "ecdsa-p256"},
                       "bgp": {"mode": "ebgp"}, "mtu": {"path_mtu": 1500}},
            "sites": sites}


def write_fabric(folder: Path, data: dict[str, Any] | None = None
                 ) -> tuple[Path, CompiledFabric]:
    path = folder / f"{FABRIC}.yaml"
    path.write_text(yaml.safe_dump(data or fabric_data()))
    return path, compile_fabric(load_fabric(path).fabric)


def make_pki(root: Path, compiled: CompiledFabric) -> Path:
    now = datetime.now(UTC)
    init_ca(Layout(root), compiled.fabric.fabric.name, compiled.fabric.fabric.auth.key_type,
            Passphrase(), now, days=60, crl_days=30)
    issue_certs(Layout(root), compiled.fabric, [gw for _, gw in compiled.gateways()],
                Passphrase(), now, days=20)
    return root


def renew(pki: Path, compiled: CompiledFabric) -> None:
    renew_certs(Layout(pki), compiled.fabric, [gw for _, gw in compiled.gateways()],
                Passphrase(), datetime.now(UTC) + timedelta(days=1),
                within=timedelta(days=30), days=40)


def material(pki: Path, gateway: str) -> GatewayMaterial:
    return load_material(pki, gateway, Passphrase())


def key_lines(pki: Path, gateway: str, previous: bool = False) -> list[str]:
    text = Layout(pki).key(gateway, previous).read_text()
    return [ln for ln in text.splitlines() if len(ln) >= 16 and not ln.startswith("-----")]


def start_junos(state: Path, name: str = GATEWAYS[0], scale: float = 1.0,
                **options: Any) -> ServerThread:
    server = NetconfServer("junos", USER, PASSWORD, state, scale, hostname=name,
                           device_options=options)
    return ServerThread(server).start(timeout=30)


@contextmanager
def session(emu: ServerThread) -> Iterator[Any]:
    """A plain ncclient junos session (what PyEZ and napalm use underneath)."""
    m = manager.connect(host="127.0.0.1", port=emu.port, username=USER, password=PASSWORD,
                        device_params={"name": "junos"}, hostkey_verify=False,
                        allow_agent=False, look_for_keys=False, timeout=WAIT)
    try:
        yield m
    finally:
        m.close_session()


def commit_ca_profile(m: Any, profile: str = CA_PROFILE) -> None:
    m.rpc('<load-configuration action="set" format="text"><configuration-set>'
          f"set security pki ca-profile {profile} ca-identity {profile}"
          "</configuration-set></load-configuration>")
    m.rpc("<commit-configuration/>")
