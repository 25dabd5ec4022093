"""Read a fabric file into the model, keeping the line of every YAML node for error messages."""

import difflib
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from inventory import model as model_module
from inventory.errors import FabricLoadError
from inventory.findings import Finding, Path, Severity
from inventory.model import Fabric

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

SCHEMA_CODE = "DCV001"


@dataclass(frozen=True)
class SourceMap:
    """Where each YAML path sits in the file (1-based lines)."""

    file: str
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """Line of the deepest existing prefix of `path` (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def finding(self, code: str, severity: Severity, path: Path, message: str) -> Finding:
        return Finding(code, severity, path, message, self.file, self.line_of(path))


@dataclass(frozen=True)
class LoadedFabric:
    fabric: Fabric
    source: SourceMap


def _index(node: yaml.Node, path: Path, lines: dict[Path, int], dups: list[Finding],
           file: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                dups.append(Finding(SCHEMA_CODE, Severity.ERROR, (*path, key),
                                    "key appears twice in the same mapping", file,
                                    key_node.start_mark.line + 1))
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _index(value_node, (*path, key), lines, dups, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), lines, dups, file)


def _data_path(loc: tuple[int | str, ...], data: object) -> Path:
    """Keep the part of a pydantic error location that indexes into the user's data."""
    out: list[str | int] = []
    cur: Any = data
    for elem in loc:
        if isinstance(cur, dict) and elem in cur:
            out.append(elem)
            cur = cur[elem]
        elif isinstance(cur, list) and isinstance(elem, int) and 0 <= elem < len(cur):
            out.append(elem)
            cur = cur[elem]
        elif isinstance(cur, dict) and isinstance(elem, str) and not elem[:1].isupper():
            out.append(elem)  # a missing or unknown key: name it
            break
        else:
            break
    return tuple(out)


def _field_names() -> set[str]:
    names: set[str] = set()
    for obj in vars(model_module).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
            names.update(obj.model_fields)
    return names


def _message(err: Any, path: Path) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else ""
        close = difflib.get_close_matches(key, sorted(_field_names()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key {key!r}{hint}"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    value = err.get("input")
    if kind not in ("missing",) and isinstance(value, str | int | float) and len(str(value)) < 60:
        return f"{msg} (got {value!r})"
    return msg


def parse_fabric(text: str, file: str) -> LoadedFabric:
    """Parse fabric YAML text; raises FabricLoadError with one line per problem."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise FabricLoadError([f"{file}{line}: YAML syntax error: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise FabricLoadError([f"{file}: YAML error: {exc}"]) from None
    if not isinstance(data, dict):
        raise FabricLoadError(
            [f"{file}:1: expected a mapping with 'fabric:' and 'sites:' at the top level"]
        )
    lines: dict[Path, int] = {}
    dups: list[Finding] = []
    assert node is not None
    _index(node, (), lines, dups, file)
    source = SourceMap(file, lines)
    if dups:
        raise FabricLoadError([d.format() for d in dups])
    try:
        fabric = Fabric.model_validate(data)
    except ValidationError as exc:
        located = [(_data_path(tuple(err["loc"]), data), err) for err in exc.errors()]
        paths = [path for path, _ in located]
        findings = [
            source.finding(SCHEMA_CODE, Severity.ERROR, path, _message(err, path))
            for path, err in located
            # a list that is "too short" only because its one item was invalid: say it once
            if not (err["type"] == "too_short"
                    and any(len(o) > len(path) and o[:len(path)] == path for o in paths))
        ]
        findings.sort(key=lambda f: f.line or 0)
        raise FabricLoadError([f.format() for f in findings]) from None
    return LoadedFabric(fabric, source)


def load_fabric(path: str | FsPath) -> LoadedFabric:
    file = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FabricLoadError([f"{file}: no such fabric file"]) from None
    except IsADirectoryError:
        raise FabricLoadError([f"{file}: is a directory, expected a fabric YAML file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FabricLoadError([f"{file}: cannot read: {exc}"]) from None
    return parse_fabric(text, file)
