"""Which platform x transport pairs have an emulator, the lab's login, and where `dcvpn lab
serve` keeps its host key by default. Plain data: importing it loads no emulator."""

import os
from pathlib import Path

NETCONF, SSH = "netconf", "ssh"
# platform -> transports an emulator exists for
EMULATED: dict[str, tuple[str, ...]] = {"junos": (NETCONF,), "iosxe": (NETCONF, SSH)}
DEFAULT_USERNAME = "admin"  # the lab's credentials
DEFAULT_PASSWORD = "admin"
LOOPBACK = "127.0.0.1"
STATE_SUBDIR = Path("dcvpn") / "lab"


def emulated(platform: str, transport: str) -> bool:
    return transport in EMULATED.get(platform, ())


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/dcvpn/lab`, or ~/.local/state/dcvpn/lab (XDG: only absolute values)."""
    value = os.environ.get("XDG_STATE_HOME", "")
    base = Path(value) if value and Path(value).is_absolute() else (
        Path.home() / ".local" / "state")
    return base / STATE_SUBDIR
