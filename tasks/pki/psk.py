"""`pki psk`: per-tunnel pre-shared keys in the secrets directory, and resolving references.

Rendered artifacts carry only `${dcvpn-secret:psk/<tunnel>}` (tasks.render_context.secret_ref);
the key lives in `<secrets>/psk/<tunnel>` (0600) and is put in at push time by
`resolve_secrets`. A key is 64 hex characters from 32 CSPRNG bytes: plain ASCII that every
platform takes verbatim (strongSwan would read a leading 0x/0s as an encoding; hex has neither).
"""

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tasks.pki.errors import MissingSecretError, PkiError
from tasks.pki.files import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    ensure_dir,
    exclusive,
    read_bytes,
    safe_name,
    write_atomic,
)
from tasks.render_context import SECRET_PREFIX, secret_ref

PSK_BYTES = 32
MIN_PSK_CHARS = 32
PSK_KIND = "psk"
_REF = re.compile(re.escape(SECRET_PREFIX) + r"(?P<ref>[^}]*)\}")


class PskOutcome(StrEnum):
    CREATED = "created"
    ROTATED = "rotated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class PskResult:
    tunnel: str
    outcome: PskOutcome
    length: int  # characters in the file
    fingerprint: str  # sha256 prefix: tells keys apart without revealing them
    weak: bool = False  # an existing key shorter than MIN_PSK_CHARS

    @property
    def ref(self) -> str:
        return secret_ref(PSK_KIND, self.tunnel)


def new_psk() -> str:
    return secrets.token_hex(PSK_BYTES)


def fingerprint(value: bytes) -> str:
    return "sha256:" + hashlib.sha256(value).hexdigest()[:16]


def secret_path(secrets_dir: Path, kind: str, name: str) -> Path:
    return secrets_dir / safe_name(kind, "secret kind") / safe_name(name, "secret name")


def _strip(data: bytes) -> bytes:
    return data.rstrip(b"\r\n")


def ensure_psks(secrets_dir: Path, tunnels: Iterable[str], rotate: bool = False,
                generate: Callable[[], str] = new_psk) -> list[PskResult]:
    """One key file per tunnel; existing keys are kept unless `rotate`."""
    names = sorted(set(tunnels))
    paths = {t: secret_path(secrets_dir, PSK_KIND, t) for t in names}
    results = []
    with exclusive(secrets_dir, create=True):
        existing = {t: read_bytes(p, "a pre-shared key") for t, p in paths.items()}
        ensure_dir(secrets_dir / PSK_KIND, PRIVATE_DIR)
        for tunnel in names:
            old = existing[tunnel]
            if old is not None and not rotate:
                value = _strip(old)
                results.append(PskResult(tunnel, PskOutcome.UNCHANGED, len(value),
                                         fingerprint(value), len(value) < MIN_PSK_CHARS))
                continue
            value = generate().encode()
            write_atomic(paths[tunnel], value, PRIVATE_FILE)
            outcome = PskOutcome.CREATED if old is None else PskOutcome.ROTATED
            results.append(PskResult(tunnel, outcome, len(value), fingerprint(value)))
    return results


def resolve_secrets(text: str, secrets_dir: Path) -> str:
    """Replace every `${dcvpn-secret:KIND/NAME}` with the file KIND/NAME (trailing newlines cut).

    The result holds secrets: push it, never log or store it. Every unresolved reference is
    named in one MissingSecretError.
    """
    return resolved_secrets(text, secrets_dir)[0]


def resolved_secrets(text: str, secrets_dir: Path) -> tuple[str, list[str]]:
    """resolve_secrets, and the values it put in (each file read once)."""
    values: dict[str, str] = {}
    missing: list[str] = []
    for match in _REF.finditer(text):
        ref = match.group("ref")
        if ref in values or ref in missing:
            continue
        kind, sep, name = ref.partition("/")
        if not sep:
            raise PkiError(f"invalid secret reference {match.group(0)!r}: expected KIND/NAME")
        data = read_bytes(secret_path(secrets_dir, kind, name), "a secret")
        if data is None:
            missing.append(ref)
            continue
        try:
            values[ref] = _strip(data).decode()
        except UnicodeDecodeError:
            raise PkiError(f"secret {match.group(0)} in {secrets_dir} is not UTF-8 text") from None
    if missing:
        refs = ", ".join(f"{SECRET_PREFIX}{r}}}" for r in missing)
        raise MissingSecretError(f"no secret for {refs} in {secrets_dir} "
                                 "(create PSKs with dcvpn pki psk)")
    return _REF.sub(lambda m: values[m.group("ref")], text), list(values.values())
