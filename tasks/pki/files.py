"""Where the PKI and secrets live, and how their files are written.

Files are written to a temporary file created with its final mode (os.open, never a chmod
afterwards) and moved into place, so a reader never sees half a key and a key is never
readable by others, not even for a moment.
"""

import fcntl
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tasks.pki.errors import PkiError

PRIVATE_FILE = 0o600
PUBLIC_FILE = 0o644
PRIVATE_DIR = 0o700
PUBLIC_DIR = 0o755
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def data_home() -> Path:
    """`$XDG_DATA_HOME`, or ~/.local/share when unset, empty or relative (XDG spec)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".local" / "share"


def default_pki_dir(fabric_name: str) -> Path:
    return data_home() / "dcvpn" / fabric_name / "pki"


def default_secrets_dir(fabric_name: str) -> Path:
    return data_home() / "dcvpn" / fabric_name / "secrets"


def safe_name(name: str, what: str) -> str:
    """A single path component without separators or a leading dot."""
    if not _SAFE_NAME.match(name) or ".." in name:
        raise PkiError(f"{name!r} is not a valid {what}")
    return name


def ensure_dir(path: Path, mode: int) -> None:
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
    except FileExistsError:
        raise PkiError(f"{path}: exists and is not a directory") from None


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Create or replace `path` in one step."""
    tmp = _write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` in one step; FileExistsError if it exists (never overwrites)."""
    tmp = _write_temp(path, data, mode)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_file(path: Path) -> None:
    """Remove `path` if it is there (a missing file is fine)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PkiError(f"{path}: cannot remove: {exc.strerror}") from None


def read_bytes(path: Path, what: str) -> bytes | None:
    """The file's bytes, None if it does not exist; other failures are PkiErrors."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise PkiError(f"{path}: is a directory, expected {what}") from None
    except OSError as exc:
        raise PkiError(f"{path}: cannot read {what}: {exc.strerror}") from None


@contextmanager
def exclusive(directory: Path, create: bool = False) -> Iterator[None]:
    """Hold `directory/.lock` so that two dcvpn commands never change the same files at once."""
    if create:
        ensure_dir(directory, PRIVATE_DIR)
    elif not directory.is_dir():
        raise PkiError(f"{directory}: no such directory (run dcvpn pki init first)")
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PkiError(f"{directory}: another dcvpn command is changing it; "
                           "try again when it has finished") from None
        yield
    finally:
        os.close(fd)
