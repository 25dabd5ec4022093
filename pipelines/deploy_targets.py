"""Which devices a deploy / confirm / rollback talks to, and how.

Without --lab, every gateway is reached at its model `host` and port with the credentials and
host-key policy of DESIGN.md (DCVPN_USERNAME / DCVPN_PASSWORD / DCVPN_SSH_KEY,
DCVPN_KNOWN_HOSTS, Nornir connection options). With --lab, every gateway the lab lists in
`<lab dir>/devices.json` (tasks.lab_devices) is reached there instead: emulators on loopback
with the lab's credentials and known_hosts, strongSwan gateways locally in their namespace.

Health readers: the lab's strongSwan gateways are read like `dcvpn validate` reads them
(tasks.validate_strongswan); every other gateway through its driver's get_state.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nornir.core import Nornir
from nornir.core.inventory import ConnectionOptions

from drivers.base import driver_class
from drivers.errors import UnsupportedError
from drivers.nornir_connection import CONNECTION
from inventory.model import Platform, Transport
from inventory.topology import CompiledFabric
from pipelines.fleet import make_nornir
from tasks.deploy import CANDIDATE_BUNDLES, CANDIDATE_FILES
from tasks.lab_devices import LabDevice, LabDevicesError, load_lab_devices
from tasks.validate_observed import DeviceReader
from tasks.validate_strongswan import LocalGateway, StrongswanReader


class TargetError(Exception):
    """The devices cannot be targeted as asked (bad input, exit 2)."""


@dataclass
class Fleet:
    nr: Nornir
    compiled: CompiledFabric
    lab_dir: Path | None = None
    lab: Mapping[str, LabDevice] = field(default_factory=dict)

    def platform(self, gateway: str) -> tuple[Platform, Transport]:
        device = self.lab.get(gateway)
        if device is not None:
            return device.platform, device.transport
        host = self.nr.inventory.hosts[gateway]
        return Platform(str(host.platform)), Transport(str(host.get("transport")))

    @property
    def emulated(self) -> frozenset[str]:
        """The lab's emulated devices (tasks.lab_devices.LabDevice.emulated)."""
        return frozenset(name for name, device in self.lab.items() if device.emulated)

    def local_reader(self, gateway: str) -> DeviceReader | None:
        """The lab's own reader of a local strongSwan gateway; None: read via the driver."""
        device = self.lab.get(gateway)
        if (self.lab_dir is None or device is None or device.platform is not Platform.STRONGSWAN
                or device.transport is not Transport.LOCAL):
            return None
        return StrongswanReader(LocalGateway.in_lab(self.lab_dir, gateway))

    def set_extra(self, gateway: str, key: str, value: str) -> None:
        """One more connection extra for a host (a driver's confirm token)."""
        host = self.nr.inventory.hosts[gateway]
        options = host.connection_options.get(CONNECTION)
        extras: dict[str, Any] = dict(options.extras or {}) if options else {}
        extras[key] = value
        host.connection_options[CONNECTION] = ConnectionOptions(extras=extras)


def _apply_lab(nr: Nornir, devices: Mapping[str, LabDevice], lab_file: Path) -> None:
    for name, host in nr.inventory.hosts.items():
        device = devices.get(name)
        if device is None:
            continue
        if str(device.platform) != str(host.platform):
            raise TargetError(f"{lab_file}: {name} is a {device.platform} device in the lab "
                              f"but {host.platform} in the model; restart the lab")
        target = device.target
        host.hostname, host.port = target.host, target.port
        if target.username is not None:
            host.username = target.username
        if target.password is not None:
            host.password = target.password
        extras: dict[str, Any] = {"transport": str(device.transport),
                                  "no_host_key_check": not target.verify_host_key,
                                  **dict(target.options)}
        if target.known_hosts is not None:
            extras["known_hosts"] = str(target.known_hosts)
        host.connection_options[CONNECTION] = ConnectionOptions(extras=extras)


def make_fleet(fabric_file: str, compiled: CompiledFabric, workers: int,
               lab_dir: Path | None = None, needed: Collection[str] = ()) -> Fleet:
    """Nornir over the fabric; with lab_dir, the lab's devices instead of the model's hosts.
    Every gateway in `needed` must be in the lab (TargetError naming those that are not)."""
    nr = make_nornir(fabric_file, compiled, workers=workers)
    if lab_dir is None:
        return Fleet(nr, compiled)
    try:
        devices = load_lab_devices(lab_dir)
    except LabDevicesError as exc:
        raise TargetError(str(exc)) from None
    missing = sorted(g for g in needed if g not in devices)
    if missing:
        raise TargetError(f"{lab_dir / 'devices.json'} has no device for "
                          f"{', '.join(missing)}: is this the lab of this fabric?")
    _apply_lab(nr, devices, lab_dir / "devices.json")
    return Fleet(nr, compiled, lab_dir, devices)


def undeployable(fleet: Fleet, gateways: Collection[str]) -> list[str]:
    """Why some gateways cannot be deployed (no candidate file or no driver), one line each."""
    problems = []
    for name in sorted(gateways):
        platform, transport = fleet.platform(name)
        key = (platform, transport)
        if key not in CANDIDATE_FILES and key not in CANDIDATE_BUNDLES:
            problems.append(f"{name}: dcvpn cannot deploy {platform} over {transport} yet "
                            "(no candidate file)")
            continue
        try:
            driver_class(platform, transport)
        except UnsupportedError as exc:
            problems.append(f"{name}: {exc}")
    return problems


def readable(fleet: Fleet, gateway: str) -> bool:
    """Can the health gate read this gateway at all (a lab reader or a driver)?"""
    if fleet.local_reader(gateway) is not None:
        return True
    platform, transport = fleet.platform(gateway)
    try:
        driver_class(platform, transport)
    except UnsupportedError:
        return False
    return True
