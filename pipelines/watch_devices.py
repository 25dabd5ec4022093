"""`dcvpn watch --devices`: what the watcher reads and heals when it goes through the drivers
(tasks/watch_devices.py) instead of the lab.

Every gateway of the model is watched at its `host` as deploy and validate reach it without a
lab; every heal action goes through the gateway's driver (drivers/healing.py) under the same
hourly limit; an action the driver cannot do is never decided (a `not-supported` alert, not
counted against the limit).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from inventory.topology import CompiledFabric
from tasks.validate_expect import expect_fabric
from tasks.watch_devices import (
    NOT_APPLICABLE,
    Device,
    device_targets,
    heal_device,
    read_devices,
    unsupported,
)
from tasks.watch_observe import Cycle, Targets
from tasks.watch_rules import Action, HealPolicy


@dataclass(frozen=True)
class DeviceWatch:
    targets: Targets  # local and emulated empty: the devices are below
    devices: Mapping[str, Device]
    notes: tuple[str, ...]

    def read(self, _: Targets) -> Cycle:
        return read_devices(self.targets.compiled, self.targets.expected, self.devices)

    def heal(self, _: Path, action: Action, timeout: float) -> tuple[bool, str]:
        return heal_device(self.devices[action.gateway], action, timeout)

    def policy(self, enabled: bool, limit: int, heal_after: int, settle: float) -> HealPolicy:
        return HealPolicy(enabled, limit, heal_after, settle, frozenset(self.devices),
                          unsupported=unsupported(self.devices))

    @property
    def gateways(self) -> tuple[str, ...]:
        return tuple(sorted(self.devices))


def device_watch(compiled: CompiledFabric, timeout: float,
                 options: Mapping[str, Mapping[str, str]] | None = None,
                 env: Mapping[str, str] | None = None) -> DeviceWatch:
    devices, notes = device_targets(compiled, timeout, options, env)
    targets = Targets(compiled, Path("."), (), {}, expect_fabric(compiled), (), timeout)
    notes.append("not applicable through the drivers' get_state, not checked (never counted "
                 "as passed): " + "; ".join(f"{k}: {v}" for k, v in NOT_APPLICABLE.items()))
    for name, device in sorted(devices.items()):
        h = device.healing
        if h.initiate is not None and h.restart is not None and h.initiate == h.restart:
            notes.append(f"{name}: no healing: {h.initiate}")
        else:
            notes += [f"{name}: {why}" for why in (h.initiate, h.restart) if why is not None]
    return DeviceWatch(targets, devices, tuple(notes))
