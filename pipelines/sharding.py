"""Split a fleet's gateways across parallel CI jobs: `--shard I/N` (I is 1-based, like GitLab's
CI_NODE_INDEX).

A gateway's shard depends only on its own name and N: SHA-256 of the name, as a number, modulo
N. So it does not depend on list order or on which other gateways exist: the render of the
target branch and the diff of a merge request (different gateway sets) put a gateway in the
same shard, and adding a site moves no other gateway between jobs. The price is that shards
are balanced only statistically: fine for the large fleets parallel jobs are for, while a shard
of a small fleet may be empty.

`--shard auto` takes CI_NODE_INDEX/CI_NODE_TOTAL and means "all gateways" outside a parallel
job. Sharding is never implied by those variables alone: `parallel: matrix:` jobs set them too,
and a job that silently handled a fraction of the fleet would be worse than a slow one.
"""

import argparse
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

AUTO = "auto"


@dataclass(frozen=True, slots=True)
class Shard:
    index: int  # 1..total
    total: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.total:
            raise ValueError(f"shard {self.index}/{self.total}: need 1 <= I <= N")

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"

    def holds(self, gateway: str) -> bool:
        return shard_number(gateway, self.total) == self.index


def shard_number(gateway: str, total: int) -> int:
    """The shard (1..total) that holds this gateway."""
    digest = hashlib.sha256(gateway.encode()).digest()
    return int.from_bytes(digest[:8], "big") % total + 1


def shard(gateways: Iterable[str], index: int, total: int) -> list[str]:
    """The gateways of shard index/total, sorted."""
    s = Shard(index, total)
    return sorted(g for g in set(gateways) if s.holds(g))


def holds(selected: Shard | None, gateway: str) -> bool:
    """No shard selected means every gateway."""
    return selected is None or selected.holds(gateway)


def parse_shard(text: str, env: Mapping[str, str] | None = None) -> Shard | None:
    """`I/N`, or `auto` for CI_NODE_INDEX/CI_NODE_TOTAL (None outside a parallel job)."""
    env = os.environ if env is None else env
    text = text.strip()
    if text == AUTO:
        index, total = env.get("CI_NODE_INDEX", ""), env.get("CI_NODE_TOTAL", "")
        if not index and not total:
            return None
        if not (index and total):
            raise ValueError("--shard auto: CI_NODE_INDEX and CI_NODE_TOTAL must both be set")
        text = f"{index}/{total}"
    left, sep, right = text.partition("/")
    if not sep or not left.strip().isdigit() or not right.strip().isdigit():
        raise ValueError(f"{text!r} is not a shard such as 2/8 (or auto)")
    return Shard(int(left), int(right))


def _argument(text: str) -> Shard | None:
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_option(parser: argparse.ArgumentParser) -> None:
    """`--shard I/N|auto` [env DCVPN_SHARD]; args.shard is a Shard or None (all gateways)."""
    parser.add_argument(
        "--shard", type=_argument, default=os.environ.get("DCVPN_SHARD"), metavar="I/N",
        help="only the gateways of shard I of N (1-based, by a hash of the gateway name); "
             "auto: CI_NODE_INDEX/CI_NODE_TOTAL of a parallel CI job [env DCVPN_SHARD]")
