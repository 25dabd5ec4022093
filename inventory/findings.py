"""Findings: one problem in a fabric file, with a stable code, severity, YAML path and line."""

from dataclasses import dataclass
from enum import IntEnum

PathElem = str | int
Path = tuple[PathElem, ...]


class Severity(IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2

    def __str__(self) -> str:
        return self.name.lower()


def format_path(path: Path) -> str:
    """('sites', 2, 'gateways', 0, 'public_ip') -> 'sites[2].gateways[0].public_ip'."""
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        else:
            out += f".{elem}" if out else elem
    return out or "(top)"


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    path: Path
    message: str
    file: str = ""
    line: int | None = None

    def format(self) -> str:
        where = self.file or "<fabric>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {format_path(self.path)}: {self.severity} {self.code}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": str(self.severity),
            "path": format_path(self.path),
            "file": self.file,
            "line": self.line,
            "message": self.message,
        }
