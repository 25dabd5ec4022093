"""Commit-confirm timers as each platform spells them: units, ranges, rounding.

A timeout is always given to dcvpn in seconds. Platforms that count in minutes get the next
whole minute (never 0: a 0 would mean "no timer" or be refused), and the effective timeout is
reported back so the deploy can say what was armed.
"""

import math
from dataclasses import dataclass
from enum import StrEnum

from drivers.errors import TimerError


class TimerKind(StrEnum):
    JUNOS_CONFIRMED = "junos-commit-confirmed"  # <confirm-timeout> minutes
    NETCONF_CONFIRMED = "netconf-confirmed-commit"  # RFC 6241 <confirm-timeout> seconds
    IOSXE_REVERT = "iosxe-revert-timer"  # cisco-ia revert-timer / CLI revert timer, minutes
    HOST_TIMER = "host-timer"  # strongSwan hosts: dcvpn's own rollback timer, seconds


@dataclass(frozen=True, slots=True)
class TimerSpec:
    unit_seconds: int
    minimum: int  # in units
    maximum: int  # in units


TIMERS: dict[TimerKind, TimerSpec] = {
    TimerKind.JUNOS_CONFIRMED: TimerSpec(60, 1, 65535),
    TimerKind.NETCONF_CONFIRMED: TimerSpec(1, 1, 2**32 - 1),
    TimerKind.IOSXE_REVERT: TimerSpec(60, 1, 120),
    TimerKind.HOST_TIMER: TimerSpec(1, 1, 7 * 86400),
}


@dataclass(frozen=True, slots=True)
class DeviceTimer:
    value: int  # in the platform's unit
    seconds: int  # what is really armed (>= the requested timeout)


def device_timer(kind: TimerKind, seconds: int) -> DeviceTimer:
    """Translate a confirm timeout in seconds; raises TimerError when it cannot be armed."""
    spec = TIMERS[kind]
    if seconds <= 0:
        raise TimerError(f"a confirm timeout must be positive, got {seconds}s")
    value = math.ceil(seconds / spec.unit_seconds)
    value = max(value, spec.minimum)
    if value > spec.maximum:
        raise TimerError(
            f"{kind}: {seconds}s exceeds the platform maximum of "
            f"{spec.maximum * spec.unit_seconds}s")
    return DeviceTimer(value, value * spec.unit_seconds)
