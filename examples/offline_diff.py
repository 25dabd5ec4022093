"""What would change on some gateways, compared with an earlier `dcvpn render` output: a
Nornir task of your own around dcvpn's render task and its semantic diff.

    dcvpn render -f fabric.yaml -o out/before          # e.g. on the main branch
    # ... edit fabric.yaml ...
    python examples/offline_diff.py fabric.yaml out/before --region us --platform junos

Per gateway: the IPsec/BGP changes (from intent.json) and a unified diff of every file,
secrets masked. Exit 0 when nothing changes, 1 when something does.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from nornir import InitNornir
from nornir.core.filter import F
from nornir.core.task import AggregatedResult, Result, Task

from tasks.intent import INTENT_FILE
from tasks.render import render
from tasks.semantic_diff import gateway_changes, unified

try:
    from nornir_utils.plugins.functions import (  # type: ignore[import-untyped,unused-ignore]
        print_result,
    )
except ImportError:  # nornir_utils is optional (pip install nornir-utils)
    print_result = None


def _read(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())
            if p.is_file()}


def diff_gateway(task: Task, old_dir: str) -> Result:
    name = task.host.name
    new_files: dict[str, str] = dict(
        task.run(task=render, severity_level=logging.DEBUG)[0].result)  # nothing written
    old_files = _read(Path(old_dir) / name)
    old_intent = old_files.pop(INTENT_FILE, None)
    new_intent = json.loads(new_files.pop(INTENT_FILE))
    changes = gateway_changes(name, json.loads(old_intent) if old_intent else None, new_intent)
    lines = [f"{c.scope}: {c.text}" for c in changes]
    for file in sorted(set(old_files) | set(new_files)):
        text = unified(old_files.get(file), new_files.get(file), f"{name}/{file}",
                       labels=("old", "new"))
        if text:
            lines.append(text.rstrip("\n"))
    return Result(host=task.host, changed=bool(lines), result="\n".join(lines) or "no change")


def show(result: AggregatedResult) -> None:
    if print_result is not None:
        print_result(result)
        return
    for name in sorted(result):
        first = result[name][0]
        print(f"== {name}: {'FAILED ' if first.failed else ''}{first.exception or first.result}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("fabric", help="fabric model YAML file")
    parser.add_argument("old", help="an earlier `dcvpn render` output folder")
    parser.add_argument("--region")
    parser.add_argument("--site")
    parser.add_argument("--platform", choices=("strongswan", "iosxe", "junos"))
    parser.add_argument("--hubs", action="store_true", help="only the hubs' gateways")
    args = parser.parse_args(argv)
    if not Path(args.old).is_dir():
        print(f"{args.old}: no such render output folder", file=sys.stderr)
        return 2

    nr = InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": 8}},
        inventory={"plugin": "DcvpnInventory", "options": {"fabric": args.fabric}},
        logging={"enabled": False},
    )
    wanted = {k: v for k, v in (("region", args.region), ("site", args.site),
                                ("platform", args.platform)) if v}
    selected = nr.filter(**wanted)
    if args.hubs:
        selected = selected.filter(F(groups__contains="hubs"))
    if not selected.inventory.hosts:
        print(f"no gateway matches {wanted or ''}{' (hubs)' if args.hubs else ''}",
              file=sys.stderr)
        return 2
    result = selected.run(task=diff_gateway, old_dir=args.old)
    show(result)
    if result.failed:
        return 2
    changed = sorted(name for name, r in result.items() if r.changed)
    print(f"{len(changed)} of {len(result)} gateway(s) change: {', '.join(changed) or '-'}",
          file=sys.stderr)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
