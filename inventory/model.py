"""The fabric model: frozen pydantic models whose keys are the user-facing contract (DESIGN.md).

The model checks structure and value types. Semantic rules across fields (duplicates, weak
crypto, addressing) are lint findings (`inventory.lint`), so a user sees all of them at once.
"""

import re
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from inventory.crypto import CIPHERS, DEFAULT_PROFILE, DH_GROUPS, INTEGRITY, PROFILES
from inventory.durations import parse_duration


class Platform(StrEnum):
    STRONGSWAN = "strongswan"
    IOSXE = "iosxe"
    JUNOS = "junos"


class Transport(StrEnum):
    NETCONF = "netconf"
    SSH = "ssh"
    LOCAL = "local"


class Topology(StrEnum):
    FULL_MESH = "full_mesh"
    HUB_SPOKE = "hub_spoke"
    HYBRID = "hybrid"


class DataPlane(StrEnum):
    """strongSwan data plane: XFRM interfaces (production) or kernel-libipsec (the lab)."""

    XFRM = "xfrm"
    LIBIPSEC = "libipsec"


Seconds = Annotated[int, BeforeValidator(parse_duration)]
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
MAX_GATEWAYS_PER_SITE = 4
MAX_SITE_ID = 4095


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _known(value: str | None, table: dict[str, Any], what: str) -> str | None:
    if value is not None and value not in table:
        raise ValueError(f"unknown {what} {value!r}; known: {', '.join(sorted(table))}")
    return value


def _known_group(value: int | None) -> int | None:
    if value is not None and value not in DH_GROUPS:
        known = ", ".join(str(g) for g in sorted(DH_GROUPS))
        raise ValueError(f"unknown DH group {value}; known: {known}")
    return value


class IkePolicy(_Frozen):
    encryption: str
    prf: str
    integrity: str | None = None
    dh_group: int
    lifetime: Seconds

    @field_validator("encryption")
    @classmethod
    def _enc(cls, v: str) -> str:
        return _known(v, CIPHERS, "encryption algorithm") or v

    @field_validator("prf", "integrity")
    @classmethod
    def _integ(cls, v: str | None) -> str | None:
        return _known(v, INTEGRITY, "hash algorithm")

    @field_validator("dh_group")
    @classmethod
    def _dh(cls, v: int) -> int:
        _known_group(v)
        return v


class EspPolicy(_Frozen):
    encryption: str
    integrity: str | None = None
    pfs_group: int | None = None
    lifetime: Seconds
    esn: bool = False

    @field_validator("encryption")
    @classmethod
    def _enc(cls, v: str) -> str:
        return _known(v, CIPHERS, "encryption algorithm") or v

    @field_validator("integrity")
    @classmethod
    def _integ(cls, v: str | None) -> str | None:
        return _known(v, INTEGRITY, "integrity algorithm")

    @field_validator("pfs_group", mode="before")
    @classmethod
    def _pfs(cls, v: object) -> object:
        if v is False or v in ("none", "off"):
            return None
        return v

    @field_validator("pfs_group")
    @classmethod
    def _pfs_known(cls, v: int | None) -> int | None:
        return _known_group(v)


class DpdPolicy(_Frozen):
    interval: Seconds
    action: Literal["restart", "clear", "trap"]


class Crypto(_Frozen):
    """A named profile, optionally with explicit fields that override it one by one."""

    profile: str = DEFAULT_PROFILE
    ike: IkePolicy
    esp: EspPolicy
    dpd: DpdPolicy

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: object) -> object:
        if isinstance(data, str):
            data = {"profile": data}
        if not isinstance(data, dict):
            return data
        name = data.get("profile", DEFAULT_PROFILE)
        if not isinstance(name, str) or name not in PROFILES:
            raise ValueError(f"unknown crypto profile {name!r}; known: {', '.join(PROFILES)}")
        merged: dict[str, object] = {"profile": name}
        for section, defaults in PROFILES[name].items():
            given = data.get(section, {})
            merged[section] = {**defaults, **given} if isinstance(given, dict) else given
        extra = set(data) - {"profile", *PROFILES[name]}
        for key in extra:  # let pydantic report unknown keys with its usual message
            merged[key] = data[key]
        return merged


def _default_crypto() -> Crypto:
    return Crypto.model_validate({})


CRL_URL_SCHEMES = ("http", "https")
CRL_URL_MAX = 500  # JunOS `revocation-check crl url` takes at most 500 characters
# The URL goes into certificates and device configuration (XML, IOS and JunOS CLI): no
# characters those quote or treat specially (`?` is IOS help, `;` ends a JunOS statement),
# no query, fragment or user info (credentials never live in the model).
_CRL_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/\[\]%+]+")


def _check_crl_url(v: str) -> str:
    if re.search(r"\s", v):
        raise ValueError("a CRL URL must not contain whitespace")
    if len(v) > CRL_URL_MAX:
        raise ValueError(f"a CRL URL is at most {CRL_URL_MAX} characters")
    scheme, sep, rest = v.partition("://")
    if not sep or scheme.lower() not in CRL_URL_SCHEMES:
        raise ValueError(f"{v!r}: a CRL URL must start with http:// or https://")
    host = rest.split("/", 1)[0]
    if not host:
        raise ValueError(f"{v!r}: the CRL URL names no host")
    if not _CRL_URL_CHARS.fullmatch(rest):
        raise ValueError(f"{v!r}: a CRL URL may hold letters, digits and -._~:/[]%+ only")
    return v


class Auth(_Frozen):
    method: Literal["certificate", "psk"] = "certificate"
    key_type: Literal["ecdsa-p384", "ecdsa-p256", "rsa-3072", "rsa-4096"] = "ecdsa-p384"
    cert_days: int = Field(default=365, ge=1, le=3650)  # gateway certificate validity
    # Where the operator publishes the fabric CA's crl.pem (README "Certificates on devices"):
    # issued certificates name it as CRL distribution point, IOS-XE and JunOS fetch it.
    crl_url: str | None = None

    @field_validator("crl_url")
    @classmethod
    def _crl_url(cls, v: str | None) -> str | None:
        return None if v is None else _check_crl_url(v)


class Bfd(_Frozen):
    interval_ms: int = Field(default=300, ge=50, le=60000)
    multiplier: int = Field(default=3, ge=2, le=255)


class BgpTimers(_Frozen):
    keepalive: int = Field(default=10, ge=1, le=3600)
    hold: int = Field(default=30, ge=3, le=65535)


Asn = Annotated[int, Field(ge=1, le=4294967294)]


class Bgp(_Frozen):
    mode: Literal["ebgp", "ibgp"] = "ebgp"
    asn: Asn | None = None
    bfd: Bfd = Bfd()
    timers: BgpTimers = BgpTimers()
    max_prefixes: int = Field(default=1000, ge=1)
    # Aggregate ranges every gateway accepts from the fabric (any prefix inside them, own
    # prefixes and their more-specifics excepted) instead of a list of every site prefix:
    # adding a site then changes only its own and its peers' configurations. Empty: the list.
    accept: tuple[IPv4Network, ...] = ()


class Mtu(_Frozen):
    path_mtu: int = Field(default=1500, ge=576, le=9216)
    # UDP encapsulation of ESP (NAT-T) adds 8 bytes; None = automatic (on for kernel-libipsec).
    udp_encap: bool | None = None


class Limits(_Frozen):
    """What one gateway may carry (README "Capacity and rekey planning"); an unset limit is
    not checked. Rekey figures count IKE and CHILD rekeys together."""

    max_ike_sas: int | None = Field(default=None, ge=1)
    max_child_sas: int | None = Field(default=None, ge=1)
    max_bgp_sessions: int | None = Field(default=None, ge=1)
    max_rekeys_per_hour: int | None = Field(default=None, ge=1)  # mean, jitter spread
    max_rekeys_per_minute: int | None = Field(default=None, ge=1)  # burst after a mass restart


class FabricSpec(_Frozen):
    name: Name
    topology: Topology
    hubs: tuple[str, ...] = ()
    tunnel_pool: IPv4Network = IPv4Network("169.254.0.0/16")
    link_prefix: Literal[30, 31] = 31
    crypto: Crypto = Field(default_factory=_default_crypto)
    auth: Auth = Auth()
    bgp: Bgp = Bgp()
    mtu: Mtu = Mtu()
    data_plane: DataPlane = DataPlane.XFRM
    limits: Limits | None = None  # capacity limits per gateway: `dcvpn capacity`, lint DCV34x


class Gateway(_Frozen):
    name: Name
    platform: Platform
    transport: Transport
    host: str = Field(min_length=1)
    public_ip: IPv4Address
    port: int | None = Field(default=None, ge=1, le=65535)
    # IOS-XE release whose YANG the NETCONF payload follows (17.15 or 17.12).
    os_version: str | None = None
    # IKE identity (FQDN); defaults to <gateway>.<fabric>.dcvpn
    ike_id: str | None = None
    # More public (underlay) addresses besides public_ip, which stays the primary IKE
    # endpoint; strongSwan moves its SAs between them with MOBIKE (README "Multihomed
    # gateways (MOBIKE)").
    uplinks: tuple[IPv4Address, ...] = ()

    @property
    def addresses(self) -> tuple[IPv4Address, ...]:
        """public_ip, then the uplinks: every underlay address of the gateway."""
        return (self.public_ip, *self.uplinks)

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if re.search(r"\s", v):
            raise ValueError("a management host must not contain whitespace")
        return v

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 830 if self.transport is Transport.NETCONF else 22


class AppProbe(_Frozen):
    """A TCP service inside the site that `dcvpn watch` connects to from the other sites
    (used by watch only)."""

    name: Name
    address: IPv4Address
    port: int = Field(ge=1, le=65535)


class Site(_Frozen):
    name: Name
    id: int = Field(ge=1, le=MAX_SITE_ID)
    region: Name | None = None
    asn: Asn | None = None
    prefixes: tuple[IPv4Network, ...] = Field(min_length=1)
    gateways: tuple[Gateway, ...] = Field(min_length=1)
    data_plane: DataPlane | None = None
    probes: tuple[AppProbe, ...] = ()
    # Hub sites only: one public IP that every gateway of the site serves; spokes build one
    # tunnel per spoke gateway to it (README "Anycast hub endpoints").
    anycast_ip: IPv4Address | None = None
    # The IKE identity all gateways of the site use on anycast tunnels; defaults to
    # <site>.anycast.<fabric>.dcvpn.
    anycast_id: str | None = None


class Fabric(_Frozen):
    """A whole fabric file: `fabric:` settings and `sites:`."""

    fabric: FabricSpec
    sites: tuple[Site, ...] = Field(min_length=1)

    def site(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(name)

    def data_plane(self, site: Site) -> DataPlane:
        return site.data_plane or self.fabric.data_plane
