"""Which parser reads a platform's running configuration back into intent.

Drivers' get_running() returns the device's own form: Junos `<configuration>` XML, IOS-XE
native XML (NETCONF) or CLI (SSH), strongSwan its files packed into one text
(drivers.strongswan_bundle); the platform's parser takes either form it may get.
"""

from collections.abc import Callable
from dataclasses import dataclass

from drivers.strongswan_bundle import FILE_MARKER, unpack
from inventory.model import Platform
from tasks import parse_iosxe, parse_junos, parse_strongswan
from tasks.running_intent import Intent, ReadBack


@dataclass(frozen=True, slots=True)
class Reader:
    parse: Callable[[str], Intent]
    readback: ReadBack


def _strongswan(bundle: str) -> Intent:
    if FILE_MARKER not in bundle:  # a gateway that holds none of dcvpn's files yet
        return parse_strongswan.from_files({})
    return parse_strongswan.from_files(unpack(bundle, "running configuration"))


READERS: dict[Platform, Reader] = {
    Platform.JUNOS: Reader(parse_junos.from_running, parse_junos.READBACK),
    Platform.IOSXE: Reader(parse_iosxe.from_running, parse_iosxe.READBACK),
    Platform.STRONGSWAN: Reader(_strongswan, parse_strongswan.READBACK),
}


def reader_for(platform: Platform) -> Reader | None:
    return READERS.get(platform)
