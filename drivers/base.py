"""The driver contract: one napalm-style configuration lifecycle for every platform.

    driver.open()
    driver.load_candidate(text, LoadMode.REPLACE)
    print(driver.diff().native or driver.diff().unified)
    driver.commit(confirm_timeout=300)      # raises CommitPendingError if one is pending
    ... validate across devices ...
    driver.confirm()                         # or driver.rollback()
    driver.close()

Implementations register under the `dcvpn.drivers` entry-point group as
`<platform>-<transport>` (e.g. `junos-netconf`) and are found with `driver_class`.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

from drivers.errors import UnsupportedError
from inventory.model import Platform, Transport


class LoadMode(StrEnum):
    MERGE = "merge"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class DeviceTarget:
    """How to reach one device; credentials never come from the model."""

    name: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    ssh_key: str | None = None
    known_hosts: Path | None = None
    verify_host_key: bool = True
    timeout: float = 30.0
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, name: str, host: str, port: int,
                 env: Mapping[str, str] | None = None) -> "DeviceTarget":
        """Credentials and host-key policy from DCVPN_* variables (DESIGN.md)."""
        e = os.environ if env is None else env
        known = e.get("DCVPN_KNOWN_HOSTS") or str(Path.home() / ".ssh" / "known_hosts")
        return cls(
            name=name, host=host, port=port,
            username=e.get("DCVPN_USERNAME"), password=e.get("DCVPN_PASSWORD"),
            ssh_key=e.get("DCVPN_SSH_KEY"), known_hosts=Path(known),
            verify_host_key=e.get("DCVPN_NO_HOST_KEY_CHECK", "") not in ("1", "true", "yes"),
        )


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    native: str | None  # the platform's own diff (show | compare, archive differences)
    unified: str  # running vs intended, always available

    @property
    def empty(self) -> bool:
        return not (self.native or self.unified).strip()


@dataclass(frozen=True, slots=True)
class IkeSa:
    local_address: str
    remote_address: str
    state: str  # ESTABLISHED, CONNECTING, ...
    local_id: str = ""
    remote_id: str = ""
    encryption: str = ""  # model spelling, e.g. aes256gcm16
    integrity: str | None = None
    prf: str | None = None
    dh_group: int | None = None


@dataclass(frozen=True, slots=True)
class ChildSa:
    name: str
    remote_address: str
    state: str  # INSTALLED, ...
    encryption: str = ""
    integrity: str | None = None
    dh_group: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass(frozen=True, slots=True)
class BgpSession:
    neighbor: str
    remote_as: int
    state: str  # Established, Idle, ...
    prefixes_received: int = 0


@dataclass(frozen=True, slots=True)
class DeviceState:
    ike_sas: tuple[IkeSa, ...] = ()
    child_sas: tuple[ChildSa, ...] = ()
    bgp_sessions: tuple[BgpSession, ...] = ()


@runtime_checkable
class ConfigDriver(Protocol):
    platform: ClassVar[Platform]
    transport: ClassVar[Transport]

    def open(self) -> None: ...
    def close(self) -> None: ...
    def get_running(self) -> str: ...
    def load_candidate(self, config: str, mode: LoadMode = LoadMode.REPLACE) -> None: ...
    def diff(self, unified: bool = True) -> ConfigDiff:
        """The candidate against the running configuration. unified=False: a driver with a
        native diff may leave unified empty (reading both configurations for it costs)."""
        ...
    def commit(self, confirm_timeout: int | None = None) -> int | None:
        """Commit; with a timeout, a confirmed commit. Returns the seconds really armed."""
        ...
    def has_pending_commit(self) -> bool: ...
    def confirm(self) -> None: ...
    def rollback(self) -> None: ...
    def discard(self) -> None: ...
    def get_state(self) -> DeviceState: ...


DriverFactory = type[ConfigDriver]


@cache
def driver_class(platform: Platform, transport: Transport) -> type:
    name = f"{platform}-{transport}"
    for ep in entry_points(group="dcvpn.drivers", name=name):
        cls: type = ep.load()
        return cls
    raise UnsupportedError(f"no driver for {platform} over {transport}")
