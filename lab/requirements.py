"""What `dcvpn lab up` needs from the machine: root, and programs from Debian packages."""

import os
from dataclasses import dataclass
from pathlib import Path

from lab.daemons import program

STRONGSWAN_PLUGINS = Path("/usr/lib/ipsec/plugins")


@dataclass(frozen=True)
class Requirement:
    what: str  # a program name, or a file path
    package: str

    def present(self) -> bool:
        if self.what.startswith("/"):
            return Path(self.what).is_file()
        return program(self.what) is not None


REQUIREMENTS = (
    Requirement("ip", "iproute2"),
    Requirement("charon-systemd", "charon-systemd"),
    Requirement("swanctl", "strongswan-swanctl"),
    Requirement(str(STRONGSWAN_PLUGINS / "libstrongswan-kernel-libipsec.so"),
                "libcharon-extra-plugins"),
    Requirement(str(STRONGSWAN_PLUGINS / "libstrongswan-openssl.so"),
                "libstrongswan-standard-plugins"),
    Requirement("zebra", "frr"),
    Requirement("bgpd", "frr"),
    Requirement("bfdd", "frr"),
    Requirement("vtysh", "frr"),
    Requirement("nft", "nftables"),
    Requirement("ping", "iputils-ping"),
)


def is_root() -> bool:
    return os.geteuid() == 0


def missing(requirements: tuple[Requirement, ...] = REQUIREMENTS) -> list[Requirement]:
    return [r for r in requirements if not r.present()]


def missing_message(absent: list[Requirement]) -> str:
    """One line naming each missing package (with what is missing) and the install command."""
    by_package: dict[str, list[str]] = {}
    for r in absent:
        by_package.setdefault(r.package, []).append(Path(r.what).name)
    names = sorted(by_package)
    listed = ", ".join(f"{p} ({', '.join(by_package[p])})" for p in names)
    return (f"missing Debian package(s): {listed}; install with: "
            f"apt-get install -y {' '.join(names)}")
