"""The candidate of a strongSwan+FRR gateway: several files in one text (pure).

A ConfigDriver takes its candidate as one string; a strongSwan gateway is configured by
several files (swanctl.conf, swanctl-secrets.conf, strongswan.conf, interfaces.sh,
frr.conf). The bundle is those files one after another, each behind a header line:

    # dcvpn strongswan bundle: one section per file
    ### dcvpn-file: swanctl.conf
    connections {
    ...
    ### dcvpn-file: frr.conf
    ...

The text of each file is kept as it is (a missing final newline is added on packing), so
`${dcvpn-secret:...}` references can be resolved in the packed text. A header is a line that
starts with FILE_MARKER; no file may hold such a line (pack refuses it).
"""

import re
from collections.abc import Mapping

from drivers.errors import LoadError

BUNDLE_HEADER = "# dcvpn strongswan bundle: one section per file\n"
FILE_MARKER = "### dcvpn-file: "
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def pack(files: Mapping[str, str]) -> str:
    """The bundle of `files` (name -> text), sorted by name."""
    parts = [BUNDLE_HEADER]
    for name in sorted(files):
        if not _NAME.match(name):
            raise LoadError(f"cannot bundle {name!r}: a file name is one path component")
        text = files[name]
        if any(line.startswith(FILE_MARKER) for line in text.splitlines()):
            raise LoadError(f"cannot bundle {name}: it holds a line starting with "
                            f"{FILE_MARKER.strip()!r}")
        if text and not text.endswith("\n"):
            text += "\n"
        parts.append(f"{FILE_MARKER}{name}\n{text}")
    return "".join(parts)


def unpack(bundle: str, device: str = "candidate") -> dict[str, str]:
    """name -> text of a bundle; LoadError naming the problem when it is not one."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for number, line in enumerate(bundle.splitlines(keepends=True), 1):
        if line.startswith(FILE_MARKER):
            name = line[len(FILE_MARKER):].strip()
            if not _NAME.match(name):
                raise LoadError(f"{device}: line {number}: bad file name {name!r}")
            if name in files:
                raise LoadError(f"{device}: line {number}: {name} appears twice")
            current = files[name] = []
        elif current is not None:
            current.append(line)
        elif line.strip() and not line.startswith("#"):
            raise LoadError(f"{device}: not a strongSwan bundle (line {number} comes before "
                            f"any {FILE_MARKER.strip()!r} header); pack the rendered files "
                            "with drivers.strongswan_bundle.pack")
    if not files:
        raise LoadError(f"{device}: the strongSwan bundle holds no file")
    return {name: "".join(lines) for name, lines in files.items()}
