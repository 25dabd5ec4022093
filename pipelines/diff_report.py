"""Diff reports: per gateway, the semantic IPsec/BGP changes, the device's native diff (when
compared with a device) and masked unified diffs; a device that could not be compared is
reported with its error."""

import json
from dataclasses import dataclass, field
from typing import Any

from tasks.semantic_diff import Change


@dataclass
class GatewayDiff:
    gateway: str
    platform: str
    semantic: list[Change] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # file -> unified diff (masked)
    notes: list[str] = field(default_factory=list)
    native: str = ""  # the device's own diff (show | compare, ...), masked
    error: str | None = None  # the device could not be compared (unreachable, refused, ...)

    @property
    def changed(self) -> bool:
        return bool(self.semantic or self.native.strip() or any(self.files.values()))

    @property
    def failed(self) -> bool:
        return self.error is not None


def as_json(diffs: list[GatewayDiff]) -> str:
    doc: dict[str, Any] = {
        "changed": sorted(d.gateway for d in diffs if d.changed),
        "unchanged": sorted(d.gateway for d in diffs if not d.changed and not d.failed),
        "failed": sorted(d.gateway for d in diffs if d.failed),
        "gateways": {
            d.gateway: {
                "platform": d.platform,
                "changed": d.changed,
                "semantic": [c.as_dict() for c in d.semantic],
                "native": d.native,
                "files": {name: text for name, text in sorted(d.files.items()) if text},
                "notes": d.notes,
                "error": d.error,
            }
            for d in diffs
        },
    }
    return json.dumps(doc, indent=2) + "\n"


def as_text(diffs: list[GatewayDiff]) -> str:
    out: list[str] = []
    for d in diffs:
        if d.failed:
            out += [f"== {d.gateway} ({d.platform}): not compared", f"   error: {d.error}", ""]
            continue
        if not d.changed and not d.notes:
            continue
        out.append(f"== {d.gateway} ({d.platform}): {len(d.semantic)} change(s)")
        out += [f"   {c.scope}: {c.text}" for c in d.semantic]
        out += [f"   note: {n}" for n in d.notes]
        if d.native.strip():
            out += ["-- native diff", d.native.rstrip("\n")]
        for name in sorted(d.files):
            if d.files[name]:
                out.append(d.files[name].rstrip("\n"))
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


def as_markdown(diffs: list[GatewayDiff], title: str) -> str:
    changed = [d for d in diffs if d.changed]
    failed = [d for d in diffs if d.failed]
    out = [f"## {title}", "",
           f"{len(changed)} of {len(diffs)} gateway(s) change."]
    if failed:
        out[-1] += f" {len(failed)} could not be compared."
    if changed or failed:
        out += ["", "| gateway | platform | changes |", "| --- | --- | ---: |"]
        out += [f"| `{d.gateway}` | {d.platform} | {len(d.semantic)} |" for d in changed]
        out += [f"| `{d.gateway}` | {d.platform} | not compared |" for d in failed]
    for d in failed:
        out += ["", f"### `{d.gateway}`", "", f"- **error**: {d.error}"]
    for d in changed:
        out += ["", f"### `{d.gateway}`", ""]
        out += [f"- **{c.scope}**: {c.text}" for c in d.semantic]
        out += [f"- _note_: {n}" for n in d.notes]
        if d.native.strip():
            out += ["", "<details><summary>native diff</summary>", "", "```",
                    d.native.rstrip("\n"), "```", "", "</details>"]
        for name in sorted(d.files):
            if d.files[name]:
                out += ["", f"<details><summary>{name}</summary>", "", "```diff",
                        d.files[name].rstrip("\n"), "```", "", "</details>"]
    return "\n".join(out) + "\n"
