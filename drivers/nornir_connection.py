"""Nornir connection plugin `dcvpn`: the host's ConfigDriver, opened and closed by Nornir.

Nornir hands a connection plugin the host's hostname, port, credentials, platform and the
connection options' extras, but not the host's data, where DcvpnInventory keeps the
transport. `driver_for(task)` opens the connection with the transport and the host name
added to the extras; use it instead of calling `host.get_connection("dcvpn", ...)` first.

Extras (connection_options["dcvpn"].extras; each falls back to DESIGN.md's DCVPN_* variables):
    transport          netconf | ssh | local (host data "transport")
    known_hosts        path (DCVPN_KNOWN_HOSTS, default ~/.ssh/known_hosts)
    no_host_key_check  true to skip host key verification (DCVPN_NO_HOST_KEY_CHECK=1)
    ssh_key            private key file (DCVPN_SSH_KEY)
    timeout            seconds for connecting and for each RPC (DCVPN_TIMEOUT, default 30)
    candidate          junos: exclusive | private; other keys go to DeviceTarget.options
"""

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nornir.core.configuration import Config
from nornir.core.task import Task

from drivers.base import ConfigDriver, DeviceTarget, driver_class
from drivers.errors import ConnectError, UnsupportedError
from drivers.xml_parsing import own_dictionary
from inventory.model import Platform, Transport

CONNECTION = "dcvpn"
TRUE = ("1", "true", "yes", "on")
TARGET_EXTRAS = frozenset({"transport", "name", "known_hosts", "no_host_key_check",
                           "ssh_key", "timeout"})


def _flag(value: object) -> bool:
    return value is True or str(value).strip().lower() in TRUE


def device_target(name: str, hostname: str, port: int, username: str | None,
                  password: str | None, extras: Mapping[str, Any],
                  env: Mapping[str, str] | None = None) -> DeviceTarget:
    """DeviceTarget from Nornir's connection parameters over the DCVPN_* defaults."""
    e = os.environ if env is None else env
    target = DeviceTarget.from_env(name, hostname, port, e)
    changes: dict[str, Any] = {}
    if username is not None:
        changes["username"] = username
    if password is not None:
        changes["password"] = password
    if extras.get("known_hosts"):
        changes["known_hosts"] = Path(str(extras["known_hosts"])).expanduser()
    if "no_host_key_check" in extras:
        changes["verify_host_key"] = not _flag(extras["no_host_key_check"])
    if extras.get("ssh_key"):
        changes["ssh_key"] = str(extras["ssh_key"])
    timeout = extras.get("timeout", e.get("DCVPN_TIMEOUT"))
    if timeout not in (None, ""):
        changes["timeout"] = float(timeout)
    options = {k: str(v) for k, v in extras.items() if k not in TARGET_EXTRAS}
    if options:
        changes["options"] = options
    return dataclasses.replace(target, **changes)


class DcvpnConnection:
    """Nornir ConnectionPlugin whose `connection` is an open ConfigDriver."""

    def __init__(self) -> None:
        self._driver: ConfigDriver | None = None

    @property
    def connection(self) -> ConfigDriver:
        if self._driver is None:
            raise ConnectError("the dcvpn connection is not open")
        return self._driver

    def open(self, hostname: str | None, username: str | None, password: str | None,
             port: int | None, platform: str | None, extras: dict[str, Any] | None = None,
             configuration: Config | None = None) -> None:
        extras = extras or {}
        name = str(extras.get("name") or hostname)
        transport = extras.get("transport")
        local = str(transport) == Transport.LOCAL  # on this machine: no port
        if not (hostname and (port or local) and platform and transport):
            raise UnsupportedError(
                f"{name}: a dcvpn connection needs hostname, port, platform and the "
                "transport extra (open it with drivers.nornir_connection.driver_for)")
        try:
            factory = driver_class(Platform(platform), Transport(str(transport)))
        except ValueError:
            raise UnsupportedError(f"{name}: unknown platform {platform!r} or transport "
                                   f"{transport!r}") from None
        driver: ConfigDriver = factory(device_target(name, hostname, port or 0, username,
                                                     password, extras))
        driver.open()
        self._driver = driver

    def close(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.close()


def driver_for(task: Task) -> ConfigDriver:
    """The open driver of task.host (opened on first use, kept for the following tasks).

    The worker thread first takes a string dictionary of its own (drivers.xml_parsing): a
    Nornir worker is a new thread, and its first lxml work through a driver is often ncclient
    building a request with its shared parser, which would tie the thread to the dictionary
    of whichever worker used that parser last (two deploy runs overlap: a wave's confirm
    beside the next wave's commit)."""
    own_dictionary()
    host = task.host
    if CONNECTION not in host.connections:
        params = host.get_connection_parameters(CONNECTION)
        extras = {"transport": host.get("transport"), "name": host.name,
                  **(params.extras or {})}
        host.open_connection(CONNECTION, task.nornir.config, extras=extras)
    driver: ConfigDriver = host.get_connection(CONNECTION, task.nornir.config)
    return driver
