"""Render the gateways of one region with Nornir, as you would in your own script.

    python examples/render_region.py inventory/examples/acme-hybrid.yaml eu -o out/eu

The DcvpnInventory plugin makes one Nornir host per gateway, with groups `site:<name>`,
`region:<name>`, `platform:<name>` and `hubs`, and data such as `region`, `site`, `hub`.
Without -o nothing is written: you see what would be rendered.
"""

import argparse
import logging
import sys

from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.task import AggregatedResult, Result, Task

from tasks.render import render

try:
    from nornir_utils.plugins.functions import (  # type: ignore[import-untyped,unused-ignore]
        print_result,
    )
except ImportError:  # nornir_utils is optional (pip install nornir-utils)
    print_result = None


def render_summary(task: Task, out_dir: str | None) -> Result:
    """dcvpn's render task, reported as the list of files rather than their contents."""
    sub = task.run(task=render, out_dir=out_dir, severity_level=logging.DEBUG)
    files: dict[str, str] = sub[0].result
    return Result(host=task.host, changed=sub.changed,
                  result=f"{task.host['platform']}: {', '.join(sorted(files))}")


def show(result: AggregatedResult) -> None:
    if print_result is not None:
        print_result(result)
        return
    for name in sorted(result):
        first = result[name][0]
        print(f"{name}: {'FAILED ' if first.failed else ''}{first.exception or first.result}")


def fleet(fabric: str) -> Nornir:
    return InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": 8}},
        inventory={"plugin": "DcvpnInventory", "options": {"fabric": fabric}},
        logging={"enabled": False},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("fabric", help="fabric model YAML file")
    parser.add_argument("region", help="e.g. eu")
    parser.add_argument("-o", "--out", help="write OUT/<gateway>/<files> here")
    args = parser.parse_args(argv)

    nr = fleet(args.fabric)
    region = nr.filter(region=args.region)
    if not region.inventory.hosts:
        known = sorted({str(h["region"]) for h in nr.inventory.hosts.values() if h["region"]})
        print(f"no gateway in region {args.region!r}; regions: {', '.join(known)}",
              file=sys.stderr)
        return 2
    result = region.run(task=render_summary, name=f"render region {args.region}",
                        out_dir=args.out)
    show(result)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
