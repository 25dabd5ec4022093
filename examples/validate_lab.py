"""Validate the staging lab's gateways with Nornir: dcvpn's validate task, read through the
lab's strongSwan/FRR readers, for one region or all of them.

    sudo dcvpn lab up -f inventory/examples/lab3.yaml
    sudo python examples/validate_lab.py inventory/examples/lab3.yaml --region eu

Exit 0 all checks passed, 1 some failed, 2 bad input or not root, 3 no lab of this fabric
is running (said in one line, as `dcvpn validate` does).
"""

import argparse
import logging
import os
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from nornir import InitNornir
from nornir.core.task import AggregatedResult, Result, Task

from inventory.errors import FabricLoadError
from inventory.loader import load_fabric
from inventory.model import Platform
from inventory.topology import CompiledFabric, compile_fabric
from tasks.validate import validate
from tasks.validate_checks import CheckResult
from tasks.validate_expect import GatewayExpect, expect_fabric
from tasks.validate_observed import DeviceReader
from tasks.validate_strongswan import LocalGateway, StrongswanReader, default_lab_dir, local_fabric

try:
    from nornir_utils.plugins.functions import (  # type: ignore[import-untyped,unused-ignore]
        print_result,
    )
except ImportError:  # nornir_utils is optional (pip install nornir-utils)
    print_result = None

NETNS = Path("/run/netns")
NO_LAB = 3


def validate_summary(task: Task, expected: Mapping[str, GatewayExpect],
                     readers: Callable[[str], DeviceReader], scope: Collection[str]) -> Result:
    """dcvpn's validate task, reported one line per check."""
    sub = task.run(task=validate, expected=expected, readers=readers, scope=scope,
                   severity_level=logging.DEBUG)
    checks: list[CheckResult] = sub[0].result
    lines = [f"{str(c.status).upper():<4}  {c.name}  {c.observed if c.ok else c.message}"
             for c in checks]
    return Result(host=task.host, failed=sub.failed, result="\n".join(lines))


def show(result: AggregatedResult) -> None:
    if print_result is not None:
        print_result(result)
        return
    for name in sorted(result):
        print(f"== {name}\n{result[name][0].result}")


def lab_compiled(fabric: str) -> CompiledFabric:
    """The model as the lab runs it (strongSwan sites on kernel-libipsec)."""
    return compile_fabric(local_fabric(load_fabric(fabric).fabric)[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("fabric", help="fabric model YAML file")
    parser.add_argument("--region", help="only this region's gateways")
    parser.add_argument("--lab-dir", help="the lab's directory (default as dcvpn lab up)")
    args = parser.parse_args(argv)
    try:
        compiled = lab_compiled(args.fabric)
    except FabricLoadError as exc:
        print("\n".join(exc.lines), file=sys.stderr)
        return 2
    name = compiled.fabric.fabric.name
    lab_dir = Path(args.lab_dir) if args.lab_dir else default_lab_dir(name)
    gateways = {gw.name: LocalGateway.in_lab(lab_dir, gw.name)
                for _, gw in compiled.gateways() if gw.platform is Platform.STRONGSWAN}
    running = sorted(g for g, local in gateways.items() if (NETNS / local.namespace).exists())
    if not running:
        print(f"no lab of fabric {name} is running (none of its namespaces exists): start one "
              f"with `sudo dcvpn lab up -f {args.fabric}`; nothing validated", file=sys.stderr)
        return NO_LAB
    if not any(gateways[g].folder.is_dir() for g in running):
        print(f"the lab's namespaces exist, but {lab_dir} holds none of its gateways: give "
              "the --lab-dir that `dcvpn lab up` used; nothing validated", file=sys.stderr)
        return NO_LAB
    if os.geteuid() != 0:
        print("reading the lab needs root (namespaces, vici and vtysh sockets)", file=sys.stderr)
        return 2

    nr = InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": 8}},
        inventory={"plugin": "DcvpnInventory",
                   "options": {"fabric": args.fabric, "compiled": compiled}},
        logging={"enabled": False},
    )
    selected = nr.filter(filter_func=lambda h: h.name in running)
    if args.region:
        selected = selected.filter(region=args.region)
    result = selected.run(task=validate_summary, expected=expect_fabric(compiled),
                          readers=lambda gw: StrongswanReader(gateways[gw]), scope=set(running))
    show(result)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
