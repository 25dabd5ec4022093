"""Algorithm catalogue and named crypto profiles.

Names are the model's spelling, which is strongSwan's proposal token; each renderer translates
them through its own table. Sizes feed the MTU arithmetic in `inventory.mtu`.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cipher:
    name: str
    aead: bool
    iv_bytes: int
    pad_align: int  # ESP payload + trailer is padded to this many bytes
    icv_bytes: int  # AEAD tag; 0 for non-AEAD ciphers (integrity adds its own)
    weak: bool = False
    gmac: bool = False  # authentication only, no confidentiality


@dataclass(frozen=True, slots=True)
class Integrity:
    name: str
    icv_bytes: int  # truncated HMAC length in ESP
    weak: bool = False


@dataclass(frozen=True, slots=True)
class DhGroup:
    number: int
    token: str  # strongSwan keyword
    modp_bits: int  # 0 for elliptic curves
    weak: bool


CIPHERS: dict[str, Cipher] = {
    c.name: c
    for c in (
        Cipher("aes128gcm16", True, 8, 4, 16),
        Cipher("aes256gcm16", True, 8, 4, 16),
        Cipher("aes128gcm12", True, 8, 4, 12),
        Cipher("aes256gcm12", True, 8, 4, 12),
        Cipher("aes128gcm8", True, 8, 4, 8),
        Cipher("aes256gcm8", True, 8, 4, 8),
        Cipher("chacha20poly1305", True, 8, 4, 16),
        Cipher("aes128gmac", True, 8, 4, 16, gmac=True),
        Cipher("aes256gmac", True, 8, 4, 16, gmac=True),
        Cipher("aes128", False, 16, 16, 0),
        Cipher("aes192", False, 16, 16, 0),
        Cipher("aes256", False, 16, 16, 0),
        Cipher("3des", False, 8, 8, 0, weak=True),
        Cipher("des", False, 8, 8, 0, weak=True),
    )
}

INTEGRITY: dict[str, Integrity] = {
    i.name: i
    for i in (
        Integrity("sha256", 16),
        Integrity("sha384", 24),
        Integrity("sha512", 32),
        Integrity("sha1", 12, weak=True),
        Integrity("md5", 12, weak=True),
    )
}

DH_GROUPS: dict[int, DhGroup] = {
    g.number: g
    for g in (
        DhGroup(1, "modp768", 768, True),
        DhGroup(2, "modp1024", 1024, True),
        DhGroup(5, "modp1536", 1536, True),
        DhGroup(14, "modp2048", 2048, True),
        DhGroup(15, "modp3072", 3072, False),
        DhGroup(16, "modp4096", 4096, False),
        DhGroup(17, "modp6144", 6144, False),
        DhGroup(18, "modp8192", 8192, False),
        DhGroup(19, "ecp256", 0, False),
        DhGroup(20, "ecp384", 0, False),
        DhGroup(21, "ecp521", 0, False),
        DhGroup(22, "modp1024s160", 1024, True),
        DhGroup(23, "modp2048s224", 2048, True),
        DhGroup(24, "modp2048s256", 2048, True),
        DhGroup(31, "curve25519", 0, False),
        DhGroup(32, "curve448", 0, False),
    )
}

# Every profile is complete; explicit fields in the model override it field by field.
PROFILES: dict[str, dict[str, dict[str, object]]] = {
    "strict": {
        "ike": {"encryption": "aes256gcm16", "prf": "sha384", "integrity": None,
                "dh_group": 20, "lifetime": "8h"},
        "esp": {"encryption": "aes256gcm16", "integrity": None, "pfs_group": 20,
                "lifetime": "1h", "esn": False},
        "dpd": {"interval": "10s", "action": "restart"},
    },
    "cbc": {
        "ike": {"encryption": "aes256", "prf": "sha384", "integrity": "sha384",
                "dh_group": 20, "lifetime": "8h"},
        "esp": {"encryption": "aes256", "integrity": "sha384", "pfs_group": 20,
                "lifetime": "1h", "esn": False},
        "dpd": {"interval": "10s", "action": "restart"},
    },
    "compat": {
        "ike": {"encryption": "aes256", "prf": "sha256", "integrity": "sha256",
                "dh_group": 15, "lifetime": "8h"},
        "esp": {"encryption": "aes256", "integrity": "sha256", "pfs_group": 15,
                "lifetime": "1h", "esn": False},
        "dpd": {"interval": "10s", "action": "restart"},
    },
}
DEFAULT_PROFILE = "strict"
