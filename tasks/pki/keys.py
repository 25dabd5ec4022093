"""Key types (a table), key generation, and loading keys with clear passphrase errors."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tasks.pki.errors import CorruptFileError, PassphraseError, PkiError
from tasks.pki.files import read_bytes

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PASSPHRASE_ENV = "DCVPN_PKI_PASSPHRASE"


@dataclass(frozen=True)
class KeySpec:
    curve: type[ec.EllipticCurve] | None  # ECDSA curve, or None for RSA
    rsa_bits: int
    hash: type[hashes.SHA256 | hashes.SHA384]  # used when this key signs


KEY_TYPES: dict[str, KeySpec] = {
    "ecdsa-p384": KeySpec(ec.SECP384R1, 0, hashes.SHA384),
    "ecdsa-p256": KeySpec(ec.SECP256R1, 0, hashes.SHA256),
    "rsa-3072": KeySpec(None, 3072, hashes.SHA256),
    "rsa-4096": KeySpec(None, 4096, hashes.SHA384),
}
DEFAULT_KEY_TYPE = "ecdsa-p384"


@dataclass(frozen=True)
class Passphrase:
    """A key passphrase and where it came from (named in messages; the value never is)."""

    value: bytes | None = field(default=None, repr=False)
    source: str = PASSPHRASE_ENV

    @classmethod
    def from_env(cls, name: str = PASSPHRASE_ENV) -> "Passphrase":
        value = os.environ.get(name, "")
        return cls(value.encode() if value else None, name)


def generate_key(key_type: str) -> PrivateKey:
    spec = KEY_TYPES.get(key_type)
    if spec is None:
        raise PkiError(f"unknown key type {key_type!r}; known: {', '.join(KEY_TYPES)}")
    if spec.curve is not None:
        return ec.generate_private_key(spec.curve())
    return rsa.generate_private_key(public_exponent=65537, key_size=spec.rsa_bits)


def key_type_of(key: PrivateKey | PublicKey) -> str | None:
    for name, spec in KEY_TYPES.items():
        if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            if spec.curve is not None and isinstance(key.curve, spec.curve):
                return name
        elif spec.curve is None and key.key_size == spec.rsa_bits:
            return name
    return None


def signing_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384:
    name = key_type_of(key)
    return (KEY_TYPES[name].hash if name else hashes.SHA256)()


def public_der(key: object) -> bytes:
    """SubjectPublicKeyInfo DER of a public or private key (for comparing key pairs)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        key = key.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return b""
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def dump_key(key: PrivateKey, passphrase: Passphrase) -> bytes:
    """PKCS#8 PEM, encrypted when a passphrase is set."""
    algo: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.value) if passphrase.value
        else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algo)


def parse_key(data: bytes, path: Path, passphrase: Passphrase) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, passphrase.value)
    except TypeError:
        if passphrase.value is None:
            raise PassphraseError(f"{path} is encrypted: set {passphrase.source} to its "
                                  "passphrase") from None
        raise PassphraseError(f"{path} is not encrypted, but {passphrase.source} is set: "
                              f"unset {passphrase.source}") from None
    except ValueError as exc:
        if "password" in str(exc).lower():
            raise PassphraseError(f"cannot decrypt {path}: wrong passphrase in "
                                  f"{passphrase.source}") from None
        raise CorruptFileError(f"{path}: not a readable PEM private key (damaged file?)") from None
    except UnsupportedAlgorithm:
        raise CorruptFileError(f"{path}: unsupported private key algorithm") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CorruptFileError(f"{path}: holds a {type(key).__name__}, expected ECDSA or RSA")
    return key


def load_key(path: Path, passphrase: Passphrase) -> PrivateKey:
    data = read_bytes(path, "a private key")
    if data is None:
        raise CorruptFileError(f"{path}: private key is missing")
    return parse_key(data, path, passphrase)
