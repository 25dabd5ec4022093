"""`dcvpn watch --devices`: every gateway read and healed through its driver (thin I/O).

Each gateway is reached at its model `host` and port with the credentials and host-key policy
deploy and validate use without a lab (DESIGN.md: DCVPN_USERNAME / DCVPN_PASSWORD /
DCVPN_SSH_KEY, DCVPN_KNOWN_HOSTS verified unless DCVPN_NO_HOST_KEY_CHECK=1), through
drivers.nornir_connection.device_target. Per cycle and gateway: the driver opens (the
`gateway` check), a driver that can heal (drivers/healing.py) probes its IKE daemon (the
`daemon` check, e.g. charon), and get_state gives the tunnel (IKE + CHILD SA), BGP and prefix
checks (tasks.health_reader.StateReader). get_state has no routing table and cannot ping:
route, LAN-to-LAN ping and application probe checks are not applicable in this mode (said at
the start and in the summary, never counted as passed).
"""

import contextlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from drivers.base import ConfigDriver, DeviceTarget, driver_class
from drivers.errors import DriverError, UnsupportedError
from drivers.healing import Healing, HealingDriver, healing_of
from drivers.nornir_connection import device_target
from inventory.model import Platform, Transport
from inventory.topology import CompiledFabric
from tasks.health_reader import NO_PING, NO_ROUTES, StateReader
from tasks.validate_expect import GatewayExpect
from tasks.validate_observed import ReadError
from tasks.watch_observe import Cycle, bgp_observations, tunnel_observations
from tasks.watch_rules import Action, ActionKind, Check, Observation

MAX_WORKERS = 8
NOT_APPLICABLE = {"route": NO_ROUTES, "ping": NO_PING,
                  "probe": "the driver's get_state cannot run application probes"}


@dataclass(frozen=True, slots=True)
class Device:
    gateway: str
    platform: Platform
    transport: Transport
    target: DeviceTarget
    healing: Healing

    def driver(self) -> ConfigDriver:
        made: ConfigDriver = driver_class(self.platform, self.transport)(self.target)
        return made


def device_targets(compiled: CompiledFabric, timeout: float,
                   options: Mapping[str, Mapping[str, str]] | None = None,
                   env: Mapping[str, str] | None = None) -> tuple[dict[str, Device], list[str]]:
    """Every gateway of the fabric as its driver reaches it, and one note per gateway that
    cannot be watched (no driver for its platform and transport, unusable options).
    `options`: per gateway, extra driver options (DeviceTarget.options)."""
    devices: dict[str, Device] = {}
    notes: list[str] = []
    for _, gw in compiled.gateways():
        extras = {"transport": str(gw.transport), **dict((options or {}).get(gw.name, {}))}
        target = replace(device_target(gw.name, gw.host, gw.effective_port, None, None, extras,
                                       env), timeout=timeout)
        try:
            driver = driver_class(gw.platform, gw.transport)(target)
        except DriverError as exc:
            notes.append(f"{gw.name}: not watched: {exc}")
            continue
        devices[gw.name] = Device(gw.name, gw.platform, gw.transport, target,
                                  healing_of(driver, gw.platform))
    return devices, notes


def unsupported(devices: Mapping[str, Device]) -> dict[tuple[str, ActionKind], str]:
    """(gateway, action) -> why its device cannot do it (tasks.watch_rules.HealPolicy)."""
    out: dict[tuple[str, ActionKind], str] = {}
    for name, device in devices.items():
        for kind, why in ((ActionKind.INITIATE, device.healing.initiate),
                          (ActionKind.RESTART, device.healing.restart)):
            if why is not None:
                out[(name, kind)] = why
    return out


def read_device(compiled: CompiledFabric, exp: GatewayExpect, device: Device
                ) -> list[Observation]:
    gw = device.gateway
    try:
        driver = device.driver()
        driver.open()
    except (DriverError, OSError) as exc:
        error = ReadError(f"{device.platform} {device.transport} {device.target.host}:"
                          f"{device.target.port}: {exc}")
        return [Observation(Check.GATEWAY, gw, gw, False, str(error)),
                *tunnel_observations(exp, error, {}), *bgp_observations(compiled, exp, error)]
    out = [Observation(Check.GATEWAY, gw, gw, True, f"{device.platform} {device.transport} "
                                                    "driver connected")]
    try:
        if isinstance(driver, HealingDriver) and device.healing.daemon:
            try:
                status = driver.ike_daemon()
                out.append(Observation(Check.DAEMON, gw, status.name, status.running,
                                       status.detail))
            except DriverError as exc:
                out.append(Observation(Check.DAEMON, gw, device.healing.daemon, False,
                                       f"probe failed: {exc}"))
        try:
            reader = StateReader(gw, driver.get_state(), exp.tunnels)
            out += [*tunnel_observations(exp, reader.ike_sas(), {}),
                    *bgp_observations(compiled, exp, reader.bgp_peers())]
        except (DriverError, OSError) as exc:
            error = ReadError(f"get_state: {exc}")
            out += [*tunnel_observations(exp, error, {}),
                    *bgp_observations(compiled, exp, error)]
    finally:
        with contextlib.suppress(DriverError, OSError):
            driver.close()
    return out


def read_devices(compiled: CompiledFabric, expected: Mapping[str, GatewayExpect],
                 devices: Mapping[str, Device]) -> Cycle:
    names: Sequence[str] = sorted(devices)

    def one(gw: str) -> list[Observation]:
        return read_device(compiled, expected[gw], devices[gw])

    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(len(names), 1))) as pool:
        done = list(pool.map(one, names))
    return Cycle(tuple(o for found in done for o in found), {}, ())


def heal_device(device: Device, action: Action, timeout: float) -> tuple[bool, str]:
    """(ok, what the driver reported) for one action through the device's driver."""
    try:
        driver = device.driver()
        if not isinstance(driver, HealingDriver):
            return False, healing_of(driver, device.platform).initiate or "not supported"
        driver.open()
        try:
            if action.kind is ActionKind.RESTART:
                return True, driver.restart_ike(timeout)
            return True, driver.initiate(action.target, timeout)
        finally:
            driver.close()
    except UnsupportedError as exc:
        return False, f"not supported: {exc}"
    except (DriverError, OSError) as exc:
        return False, str(exc)
