"""The full configuration a REPLACE installs on IOS-XE: the device's running configuration
with dcvpn's sections swapped for the rendered ones.

`configure replace` makes the running configuration equal to a file, so the file must hold
everything the device keeps: management interface, AAA, users, lines, archive, ... This
module starts from the running configuration and touches only what dcvpn owns:

- top-level sections whose header names a `DCVPN-` object (PKI trustpoint and certificate
  chain, IKEv2 proposal / policy / keyring / profile, IPsec transform-set / profile,
  `ip prefix-list DCVPN-*` lines, `route-map DCVPN-*`) - iosxe_ssh_table.OWNED_HEADERS;
- `interface TunnelN` sections with `description dcvpn ...` or protected by a `DCVPN-`
  IPsec profile;
- inside `router bgp`: `bgp router-id`, `bgp log-neighbor-changes`, every line of a dcvpn
  neighbor (one the candidate renders, or one described `dcvpn ...` on the device) and the
  `network` statements of `address-family ipv4`. Other BGP lines (foreign neighbors, other
  address families, knobs dcvpn does not render) are kept under the rendered process.

Owned sections the candidate no longer has are dropped (a removed site's tunnels go away),
except a trustpoint's certificate chain while the candidate still has that trustpoint: a
candidate rendered without a PKI directory carries no chain, and leaves the device's as it is;
owned sections the candidate has replace the device's in place (the device's text is kept
when both hold the same lines, so an unchanged device diffs empty); new ones follow the
rendered section before them (or, for the first ones, come before the first `interface`).
A candidate section dcvpn would not own, a rendered tunnel whose interface the device uses
for something else, and a BGP AS change under foreign BGP settings are LoadErrors.
"""

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from drivers.errors import LoadError
from drivers.iosxe_ssh_table import (
    BGP_HEADER,
    BGP_OWNED_AF,
    BGP_OWNED_SETTINGS,
    DCVPN_NEIGHBOR,
    OWNED_HEADERS,
    OWNED_TUNNEL_LINES,
    OWNER_PREFIX,
    RUNNING_PREAMBLE,
    TUNNEL_HEADER,
)

CHAIN_HEADER = re.compile(rf"^crypto pki certificate chain (?P<trustpoint>{OWNER_PREFIX}\S+)$")
TRUSTPOINT_HEADER = "crypto pki trustpoint "


@dataclass(frozen=True, slots=True)
class Block:
    """One top-level section (or single line) of a configuration and the `!` after it."""

    header: str
    body: tuple[str, ...] = ()
    trailer: tuple[str, ...] = ()

    @property
    def lines(self) -> tuple[str, ...]:
        return (self.header, *self.body, *self.trailer)

    def settings(self) -> Counter[str]:
        return Counter(line for line in (self.header, *self.body) if line.strip() != "!")


Item = Block | str  # a section, or a loose line (comment, `end`, blank)


def _is_bang(line: str) -> bool:
    return line.strip() == "!"


def parse(text: str) -> list[Item]:
    """Top-level items in order; indented lines belong to the section above them."""
    items: list[Item] = []
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    for line in lines:
        last = items[-1] if items else None
        if line[:1] in (" ", "\t"):
            if isinstance(last, Block) and not last.trailer:
                items[-1] = Block(last.header, (*last.body, line))
            else:
                items.append(line)
        elif line == "!" and isinstance(last, Block):
            items[-1] = Block(last.header, last.body, (*last.trailer, line))
        elif not line or line.startswith("!") or line == "end":
            items.append(line)
        else:
            items.append(Block(line))
    while items and items[-1] == "":
        items.pop()
    return items


def running_text(show_output: str) -> str:
    """`show running-config` without the `Building configuration...` preamble."""
    lines = show_output.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines[:5]):
        if line.startswith("Current configuration"):
            lines = lines[index + 1:]
            break
    kept = [line.rstrip() for line in lines if not RUNNING_PREAMBLE.match(line)]
    while kept and not kept[0]:
        kept.pop(0)
    return "\n".join(kept).rstrip() + "\n"


def render_items(items: Iterable[Item]) -> str:
    lines: list[str] = []
    for item in items:
        lines.extend(item.lines if isinstance(item, Block) else (item,))
    if "end" not in lines:
        lines.append("end")
    return "\n".join(lines) + "\n"


# --- ownership ------------------------------------------------------------------------------

def _named(block: Block) -> bool:
    return any(p.match(block.header) for p in OWNED_HEADERS)


def _tunnel(block: Block) -> bool:
    return bool(TUNNEL_HEADER.match(block.header)) and any(
        p.match(line) for p in OWNED_TUNNEL_LINES for line in block.body)


def owned(block: Block) -> bool:
    """A section of the device's configuration that dcvpn manages (router bgp: partly)."""
    return _named(block) or _tunnel(block) or bool(BGP_HEADER.match(block.header))


# --- router bgp -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Bgp:
    top: tuple[str, ...]
    families: tuple[tuple[str, tuple[str, ...]], ...]  # (header, body) without the closing


def _bgp(block: Block) -> Bgp:
    top: list[str] = []
    families: list[tuple[str, list[str]]] = []
    for line in block.body:
        if line.startswith(" address-family "):
            families.append((line, []))
        elif line == " exit-address-family":
            continue
        elif line.startswith("  ") and families:
            families[-1][1].append(line)
        elif not families or not _is_bang(line):
            top.append(line)
    return Bgp(tuple(top), tuple((h, tuple(b)) for h, b in families))


def _neighbor_ip(line: str) -> str | None:
    words = line.split()
    return words[1] if len(words) > 2 and words[0] == "neighbor" else None


def _dcvpn_neighbors(rendered: Bgp, running: Bgp | None) -> set[str]:
    ips = {ip for line in rendered.top if (ip := _neighbor_ip(line)) and " remote-as " in line}
    if running is not None:
        ips |= {m["ip"] for line in running.top if (m := DCVPN_NEIGHBOR.match(line))}
    return ips


def _owned_bgp_line(line: str, family: str | None, dcvpn: set[str]) -> bool:
    if _is_bang(line) or _neighbor_ip(line) in dcvpn:
        return True
    if family is None:
        return any(p.match(line) for p in BGP_OWNED_SETTINGS)
    return bool(BGP_OWNED_AF.match(family)) and line.split()[:1] == ["network"]


def merge_bgp(rendered: Block, running: Block | None, name: str) -> Block:
    """The rendered BGP process with the device's own BGP settings kept under it."""
    if running is None:
        return rendered
    ours, theirs = _bgp(rendered), _bgp(running)
    dcvpn = _dcvpn_neighbors(ours, theirs)
    kept_top: list[str] = [line for line in theirs.top if not _owned_bgp_line(line, None, dcvpn)]
    kept_af = {header: [line for line in body if not _owned_bgp_line(line, header, dcvpn)]
               for header, body in theirs.families}
    if rendered.header != running.header and (kept_top or any(kept_af.values())):
        foreign = [*kept_top, *(line for kept in kept_af.values() for line in kept)][0].strip()
        raise LoadError(
            f"{name}: the device runs `{running.header}` with settings dcvpn does not own "
            f"(e.g. `{foreign}`) and the candidate renders `{rendered.header}`; change the "
            "device's AS or the model's, dcvpn will not move foreign BGP settings")
    top = list(ours.top)
    while top and _is_bang(top[-1]):
        top.pop()
    body = [*top, *kept_top]
    if ours.families or any(kept_af.values()):
        body.append(" !")
    rendered_headers = [h for h, _ in ours.families]
    for header, rendered_lines in ours.families:
        body += [header, *rendered_lines, *kept_af.get(header, []), " exit-address-family"]
    for header, kept in kept_af.items():
        if header not in rendered_headers and kept:
            body += [header, *kept, " exit-address-family"]
    return Block(rendered.header, tuple(body), rendered.trailer)


# --- the intended configuration -----------------------------------------------------------

def _candidate_blocks(candidate: str, name: str) -> list[Block]:
    blocks: list[Block] = []
    seen: set[str] = set()
    for item in parse(candidate):
        if isinstance(item, str):
            if item.strip() and not item.startswith("!") and item != "end":
                raise LoadError(f"{name}: candidate line {item.strip()!r} is outside a section")
            continue
        if not (_named(item) or _tunnel(item) or BGP_HEADER.match(item.header)):
            raise LoadError(
                f"{name}: candidate section `{item.header}` is not one dcvpn owns (DCVPN- "
                "objects, dcvpn tunnel interfaces, router bgp); a replace keeps the rest of "
                "the device as it is, load other lines with MERGE")
        if item.header in seen:
            raise LoadError(f"{name}: candidate section `{item.header}` appears twice")
        seen.add(item.header)
        blocks.append(item)
    return blocks


def _kept_chain(block: Block, candidate: dict[str, Block]) -> bool:
    """A certificate chain whose trustpoint the candidate keeps (it has no chain itself)."""
    found = CHAIN_HEADER.match(block.header)
    return found is not None and f"{TRUSTPOINT_HEADER}{found['trustpoint']}" in candidate


def _anchor(items: Sequence[Item]) -> int:
    """Where new sections go when none of dcvpn's is on the device yet."""
    for index, item in enumerate(items):
        if isinstance(item, Block) and item.header.startswith("interface "):
            return index
    return next((i for i, item in enumerate(items) if item == "end"), len(items))


def intended_config(running: str, candidate: str, name: str) -> str:
    """The running configuration with dcvpn's sections replaced by the candidate's."""
    items = parse(running)
    blocks = _candidate_blocks(candidate, name)
    by_header = {b.header: b for b in blocks}
    rendered_bgp = next((b for b in blocks if BGP_HEADER.match(b.header)), None)
    placed: dict[int, Block] = {}  # running index -> candidate section replacing it
    dropped: set[int] = set()
    for index, item in enumerate(items):
        if not isinstance(item, Block):
            continue
        if BGP_HEADER.match(item.header):
            if rendered_bgp is not None:
                placed[index] = rendered_bgp
            continue
        twin = by_header.get(item.header)
        if twin is not None and TUNNEL_HEADER.match(item.header) and not _tunnel(item):
            raise LoadError(f"{name}: `{item.header}` on the device is not dcvpn's (no "
                            "`description dcvpn ...`); refusing to replace it")
        if twin is not None:
            placed[index] = twin
        elif owned(item) and not _kept_chain(item, by_header):
            dropped.add(index)
    before: dict[int, list[Block]] = {}
    after: dict[int, list[Block]] = {}
    position_of = {id(block): index for index, block in placed.items()}
    first_placed = next((position_of[id(b)] for b in blocks if id(b) in position_of), None)
    last: int | None = None
    for block in blocks:
        if id(block) in position_of:
            last = position_of[id(block)]
        elif last is not None:
            after.setdefault(last, []).append(block)
        else:
            spot = first_placed if first_placed is not None else _anchor(items)
            before.setdefault(spot, []).append(block)
    out: list[Item] = []
    for index, item in enumerate(items):
        out.extend(before.get(index, []))
        if index in dropped:
            continue
        if index in placed and isinstance(item, Block):
            out.append(_replacement(item, placed[index], name))
        else:
            out.append(item)
        out.extend(after.get(index, []))
    out.extend(before.get(len(items), []))
    return render_items(out)


def _replacement(current: Block, rendered: Block, name: str) -> Block:
    if BGP_HEADER.match(current.header):
        rendered = merge_bgp(rendered, current, name)
    if rendered.settings() == current.settings():
        return current
    return Block(rendered.header, rendered.body, current.trailer or rendered.trailer)
