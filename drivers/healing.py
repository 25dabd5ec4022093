"""Healing through a driver: an optional capability next to the ConfigDriver contract.

`dcvpn watch --devices` heals a gateway only through a driver that also implements
HealingDriver: re-initiate one tunnel, restart the IKE daemon. `healing()` says, without
talking to the device, which of the two this device can do (a layout may lack a restart
command); the watcher never decides an action a device cannot carry out, so such an action
is reported as not supported and never counts against the hourly limit.

strongSwan (local and ssh) implements it (drivers/strongswan.py, commands in
drivers/strongswan_layout.py). JunOS and IOS-XE do not: their only tools are tear-downs
(`clear security ike security-associations <peer>`, `clear crypto session remote <peer>`)
that leave re-establishing to the device, which the lab's emulators cannot show (their tunnel
state follows the peers' committed configurations), so dcvpn does not run them unattended.
"""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from inventory.model import Platform

DEFAULT_INITIATE_TIMEOUT = 30.0
DEFAULT_RESTART_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Healing:
    """What a device can heal: None = supported, else why not (one line)."""

    daemon: str  # the IKE daemon's name in watch's checks and alerts (charon)
    initiate: str | None
    restart: str | None


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    name: str
    running: bool
    detail: str  # what the probe saw, one line


@runtime_checkable
class HealingDriver(Protocol):
    def healing(self) -> Healing:
        """The capabilities, from the driver's configuration only (no device I/O)."""
        ...

    def ike_daemon(self) -> DaemonStatus:
        """Does the IKE daemon answer? (the driver is open)"""
        ...

    def initiate(self, tunnel: str, timeout: float = DEFAULT_INITIATE_TIMEOUT) -> str:
        """Bring the tunnel's IKE and CHILD SA up from this end; what happened, one line.
        Nothing is done when the tunnel is up. Raises DriverError when it fails."""
        ...

    def restart_ike(self, timeout: float = DEFAULT_RESTART_TIMEOUT) -> str:
        """Restart the IKE daemon if it does not answer (never one that answers); what
        happened, one line. Raises DriverError when it fails."""
        ...


# why a platform without HealingDriver heals nothing (the syntax a person would use by hand)
NOT_HEALABLE: dict[Platform, str] = {
    Platform.JUNOS: "dcvpn has no safe re-initiate for JunOS (clear security ike "
                    "security-associations <peer> only tears the SA down); heal it by hand",
    Platform.IOSXE: "dcvpn has no safe re-initiate for IOS-XE (clear crypto session remote "
                    "<peer> only tears the session down); heal it by hand",
}


def healing_of(driver: object, platform: Platform) -> Healing:
    """The driver's Healing, or none at all for a driver without the capability."""
    if isinstance(driver, HealingDriver):
        return driver.healing()
    why = f"not supported on {platform}: " + NOT_HEALABLE.get(
        platform, "its driver cannot heal")
    return Healing("", why, why)
