"""Offline validation of NETCONF payloads against vendor YANG models with libyang.

The models live outside the project (DCVPN_YANG_DIR, default ../shared/yang from the project
root). A context is built once per (vendor, release) and kept: loading takes seconds,
validating a document takes milliseconds.
"""

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError

YANG_DIR_ENV = "DCVPN_YANG_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_YANG_DIR = PROJECT_ROOT.parent / "shared" / "yang"


class YangUnavailable(LabError):  # noqa: N818 - reads as a state, like FileNotFound
    """libyang or the YANG folder is missing."""


def yang_dir() -> Path | None:
    """The vendor YANG folder, or None when it is absent."""
    path = Path(os.environ.get(YANG_DIR_ENV) or DEFAULT_YANG_DIR)
    return path if path.is_dir() else None


@dataclass(frozen=True)
class ValidationResult:
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


class SchemaContext:
    """One libyang context with a set of modules loaded and all their features enabled."""

    def __init__(self, search_dir: Path, modules: Sequence[str]) -> None:
        try:
            import libyang  # noqa: PLC0415 - optional dependency, only the validator needs it
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise YangUnavailable(
                "the libyang Python binding is missing: apt-get install libyang2-dev, then "
                "pip install libyang==2.8.0") from exc
        if not search_dir.is_dir():
            raise YangUnavailable(f"YANG folder {search_dir} does not exist")
        self._libyang: Any = libyang
        self._ctx: Any = libyang.Context(str(search_dir))
        self._lock = threading.Lock()
        for name in modules:
            module = self._ctx.load_module(name)
            module.feature_enable_all()

    def validate(self, xml: str, *, parse_only: bool = False) -> ValidationResult:
        """Parse and validate a config document (complete intended config unless parse_only)."""
        with self._lock:
            try:
                node = self._ctx.parse_data_mem(
                    xml, "xml", no_state=True, strict=True, parse_only=parse_only,
                )
            except self._libyang.LibyangError as exc:
                return ValidationResult(self._errors(exc))
            if node is not None:
                node.free()
            return ValidationResult(())

    def _errors(self, exc: Exception) -> tuple[str, ...]:
        details = []
        err = self._ctx.error  # may be a method or attribute depending on binding version
        try:
            text = err() if callable(err) else err
        except Exception:  # best effort detail
            text = None
        if text:
            details.append(str(text))
        msg = str(exc)
        if msg and msg not in details:
            details.insert(0, msg)
        return tuple(details) or ("invalid document",)


_cache: dict[tuple[str, str], SchemaContext] = {}
_cache_lock = threading.Lock()


def cached_context(key: tuple[str, str], search_dir: Path, modules: Sequence[str]) -> SchemaContext:
    with _cache_lock:
        ctx = _cache.get(key)
        if ctx is None:
            ctx = SchemaContext(search_dir, modules)
            _cache[key] = ctx
        return ctx
