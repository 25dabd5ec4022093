"""A private key as a traditional ("legacy") encrypted PEM: `-----BEGIN EC PRIVATE KEY-----`
or `RSA PRIVATE KEY` with `Proc-Type: 4,ENCRYPTED` and `DEK-Info: DES-EDE3-CBC,<iv>`.

This is the form IOS-XE's `crypto pki import ... pem terminal password` takes (device
transcripts show DES-EDE3-CBC RSA keys; a PKCS#8 "ENCRYPTED PRIVATE KEY" is reported not to
work), and the form IOS-XE itself exports keys in. `cryptography` writes traditional PEM only
with AES-256-CBC, so the 3DES form is built here: OpenSSL's EVP_BytesToKey (MD5, one round,
salt = the first 8 bytes of the IV) derives the key from the password. The encryption only
satisfies the command's syntax for a one-time password over an SSH channel that already
protects the key; it is not a storage format.
"""

import base64
import hashlib
import os
import secrets
import string

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes

CIPHER = "DES-EDE3-CBC"
KEY_BYTES = 24
IV_BYTES = 8
BLOCK_BITS = 64
LINE = 64  # base64 characters a PEM line
# letters and digits only: IOS would take `?` as a help request and a space as the argument's
# end; 32 of them carry ~190 bits
PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32
LABELS = {"RSA": "RSA PRIVATE KEY", "EC": "EC PRIVATE KEY"}


class PemKeyError(ValueError):
    """The key is not an unencrypted PEM RSA or EC private key."""


def one_time_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def _derive(password: bytes, salt: bytes) -> bytes:
    derived, block = b"", b""
    while len(derived) < KEY_BYTES:
        block = hashlib.md5(block + password + salt, usedforsecurity=False).digest()
        derived += block
    return derived[:KEY_BYTES]


def key_kind(pem: str) -> str:
    """"RSA" or "EC" for an unencrypted PEM private key; PemKeyError otherwise."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise PemKeyError("not an unencrypted PEM private key") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "EC"
    raise PemKeyError(f"a {type(key).__name__} key; only RSA and EC keys can be imported")


def encrypt_traditional(pem: str, password: str) -> str:
    """The key as traditional PEM (PKCS#1 for RSA, SEC1 for EC), 3DES-encrypted."""
    kind = key_kind(pem)
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    der = key.private_bytes(serialization.Encoding.DER,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    iv = os.urandom(IV_BYTES)
    padder = padding.PKCS7(BLOCK_BITS).padder()
    data = padder.update(der) + padder.finalize()
    encryptor = Cipher(TripleDES(_derive(password.encode(), iv)), modes.CBC(iv)).encryptor()
    body = base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()
    label = LABELS[kind]
    lines = [f"-----BEGIN {label}-----", "Proc-Type: 4,ENCRYPTED",
             f"DEK-Info: {CIPHER},{iv.hex().upper()}", "",
             *(body[i:i + LINE] for i in range(0, len(body), LINE)),
             f"-----END {label}-----"]
    return "\n".join(lines) + "\n"
