"""What each platform can do, as data: transports, algorithms, DH groups, releases.

Lint checks every tunnel's proposal against both endpoints' rows; renderers translate the
model's algorithm names through their own tables, which cover exactly these sets.
"""

from dataclasses import dataclass

from inventory.model import DataPlane, Platform, Transport

_ALL_CBC = frozenset({"aes128", "aes192", "aes256", "3des", "des"})
_GCM16 = frozenset({"aes128gcm16", "aes256gcm16"})
_VENDOR_DH = frozenset({1, 2, 5, 14, 15, 16, 19, 20, 21, 24})
_HASHES = frozenset({"sha1", "md5", "sha256", "sha384", "sha512"})


@dataclass(frozen=True, slots=True)
class PlatformCaps:
    transports: frozenset[Transport]
    ike_encryption: frozenset[str] | None  # None = every algorithm of the catalogue
    esp_encryption: frozenset[str] | None
    hashes: frozenset[str] | None
    dh_groups: frozenset[int] | None
    esn: bool
    os_versions: tuple[str, ...] = ()  # first is the default


CAPABILITIES: dict[Platform, PlatformCaps] = {
    Platform.STRONGSWAN: PlatformCaps(
        transports=frozenset({Transport.SSH, Transport.LOCAL}),
        ike_encryption=None, esp_encryption=None, hashes=None, dh_groups=None, esn=True,
    ),
    Platform.IOSXE: PlatformCaps(
        transports=frozenset({Transport.NETCONF, Transport.SSH}),
        ike_encryption=_ALL_CBC | _GCM16,
        esp_encryption=_ALL_CBC | _GCM16 | {"aes128gmac", "aes256gmac"},
        hashes=_HASHES, dh_groups=_VENDOR_DH, esn=False,
        os_versions=("17.15", "17.12"),
    ),
    # junos-es 24.4R1 YANG: ipsec proposal has chacha20-poly1305 and extended-sequence-number
    Platform.JUNOS: PlatformCaps(
        transports=frozenset({Transport.NETCONF}),
        ike_encryption=_ALL_CBC | _GCM16,
        esp_encryption=_ALL_CBC | _GCM16 | {"chacha20poly1305"},
        hashes=_HASHES, dh_groups=_VENDOR_DH, esn=True,
    ),
}


@dataclass(frozen=True, slots=True)
class DataPlaneLimits:
    esp_encryption_denied: frozenset[str]
    esn: bool


# kernel-libipsec fails at SA install for GMAC and any ESN proposal (LAB-FACTS).
DATA_PLANE_LIMITS: dict[DataPlane, DataPlaneLimits] = {
    DataPlane.XFRM: DataPlaneLimits(frozenset(), esn=True),
    DataPlane.LIBIPSEC: DataPlaneLimits(frozenset({"aes128gmac", "aes256gmac"}), esn=False),
}


def default_os_version(platform: Platform) -> str | None:
    versions = CAPABILITIES[platform].os_versions
    return versions[0] if versions else None
