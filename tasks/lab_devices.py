"""How the commands that reach devices find the lab's devices (`--lab`), shared with the lab.

`dcvpn lab up` writes `<lab dir>/devices.json` (mode 0600, it holds the lab's credentials):

    {"fabric": "acme",
     "devices": {
        "fra1-gw1": {"platform": "iosxe", "transport": "netconf", "host": "127.0.0.1",
                     "port": 40123, "username": "admin", "password": "admin",
                     "known_hosts": "<lab dir>/known_hosts"},
        "ams1-gw1": {"platform": "strongswan", "transport": "local",
                     "netns": "dcvpn-ams1-gw1", "dir": "<lab dir>/ams1-gw1"}}}

Emulated junos/iosxe gateways listen on loopback; the lab's strongSwan+FRR gateways are
reached locally in their namespace (DeviceTarget.options carries netns and dir). The lab's
emulator host keys are listed in its own known_hosts, so host keys stay verified.

A PSK lab keeps its pre-shared keys in `<lab dir>/secrets` (tasks.pki.psk layout): the lab's
strongSwan gateways were loaded with them, so a `--lab` diff or deploy resolves its
`${dcvpn-secret:...}` references there (lab_secrets_dir).
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.base import DeviceTarget
from inventory.model import Platform, Transport

DEVICES_FILE = "devices.json"
SECRETS_DIR = "secrets"
LOCAL_HOST = "localhost"


class LabDevicesError(Exception):
    """The lab's device list is missing or unreadable."""


@dataclass(frozen=True, slots=True)
class LabDevice:
    gateway: str
    platform: Platform
    transport: Transport
    target: DeviceTarget

    @property
    def emulated(self) -> bool:
        """The lab runs strongSwan gateways for real (local, in their namespace) and emulates
        every other device: an emulator runs no IKE, its tunnels exist only between emulators."""
        return not (self.platform is Platform.STRONGSWAN and self.transport is Transport.LOCAL)


def _device(name: str, raw: dict[str, Any], path: Path) -> LabDevice:
    try:
        platform = Platform(raw["platform"])
        transport = Transport(raw["transport"])
        if transport is Transport.LOCAL:
            target = DeviceTarget(name=name, host=LOCAL_HOST, port=0,
                                  options={"netns": str(raw["netns"]), "dir": str(raw["dir"])})
        else:
            known = raw.get("known_hosts")
            target = DeviceTarget(
                name=name, host=str(raw["host"]), port=int(raw["port"]),
                username=raw.get("username"), password=raw.get("password"),
                known_hosts=Path(known) if known else None, verify_host_key=bool(known))
    except (KeyError, ValueError, TypeError) as exc:
        raise LabDevicesError(f"{path}: device {name!r} is malformed ({exc})") from None
    return LabDevice(name, platform, transport, target)


def load_lab_devices(lab_dir: Path) -> dict[str, LabDevice]:
    """The lab's devices by gateway name; LabDevicesError when no lab wrote the file."""
    path = lab_dir / DEVICES_FILE
    try:
        data = json.loads(path.read_text())
        devices = data["devices"]
        if not isinstance(devices, dict):
            raise TypeError("devices is not a mapping")
    except FileNotFoundError:
        raise LabDevicesError(f"{path} does not exist: is the lab up (dcvpn lab up)?") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabDevicesError(f"{path}: unreadable lab device list ({exc})") from None
    return {name: _device(name, raw, path) for name, raw in sorted(devices.items())}


def lab_secrets_dir(lab_dir: Path) -> Path | None:
    """The lab's own PSK folder; None when the lab made none (a certificate lab)."""
    path = lab_dir / SECRETS_DIR
    return path if path.is_dir() else None


def write_lab_devices(lab_dir: Path, fabric: str, devices: dict[str, dict[str, Any]]) -> Path:
    """Write devices.json 0600 (created with that mode, replaced atomically)."""
    path = lab_dir / DEVICES_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"fabric": fabric, "devices": devices}, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)
    return path
