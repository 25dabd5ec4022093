"""Onboarding a data center: the new site's model entry and the order its change goes out in.

Pure functions: the command (pipelines/onboard_cmd.py) does the I/O.

The site is added to the fabric file as text, after the last item of `sites:`, in the
file's own indentation, so every comment and every other line of the file stays as it was
(a YAML dump of the whole model would lose them).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

import yaml

from inventory.model import MAX_SITE_ID, Fabric, Platform, Transport
from inventory.topology import CompiledFabric


class OnboardError(Exception):
    """The site cannot be added as asked (the message says which argument)."""


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    name: str
    platform: Platform
    public_ip: IPv4Address
    host: str
    transport: Transport


@dataclass(frozen=True, slots=True)
class SiteRequest:
    name: str
    region: str | None
    prefixes: tuple[IPv4Network, ...]
    gateways: tuple[GatewaySpec, ...]
    site_id: int | None = None
    asn: int | None = None
    extra: dict[str, object] = field(default_factory=dict)


DEFAULT_TRANSPORT = {Platform.STRONGSWAN: Transport.SSH, Platform.IOSXE: Transport.NETCONF,
                     Platform.JUNOS: Transport.NETCONF}


def parse_gateway(spec: str) -> GatewaySpec:
    """`NAME=PLATFORM@PUBLIC_IP[,host=H][,transport=T]`, e.g. `sin1-gw1=junos@198.51.100.7`."""
    head, _, options = spec.partition(",")
    name, eq, rest = head.partition("=")
    platform_text, at, ip_text = rest.partition("@")
    if not (eq and at and name and platform_text and ip_text):
        raise OnboardError(f"--gateway {spec!r}: expected NAME=PLATFORM@PUBLIC_IP"
                           "[,host=MGMT][,transport=netconf|ssh|local]")
    try:
        platform = Platform(platform_text)
    except ValueError:
        raise OnboardError(f"--gateway {spec!r}: unknown platform {platform_text!r} "
                           f"(one of {', '.join(p.value for p in Platform)})") from None
    try:
        public_ip = IPv4Address(ip_text)
    except ValueError:
        raise OnboardError(f"--gateway {spec!r}: {ip_text!r} is not an IPv4 address") from None
    values: dict[str, str] = {}
    for item in filter(None, options.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in ("host", "transport"):
            raise OnboardError(f"--gateway {spec!r}: unknown option {item!r} "
                               "(host=..., transport=...)")
        values[key] = value
    try:
        transport = Transport(values.get("transport") or DEFAULT_TRANSPORT[platform])
    except ValueError:
        raise OnboardError(f"--gateway {spec!r}: unknown transport "
                           f"{values['transport']!r}") from None
    host = values.get("host") or f"{name}.mgmt"
    return GatewaySpec(name, platform, public_ip, host, transport)


def next_site_id(fabric: Fabric) -> int:
    """One above the highest id: a removed site's id is never handed out again, so no device
    can still hold tunnel addresses or ids that a new site would reuse."""
    new = max(s.id for s in fabric.sites) + 1
    if new > MAX_SITE_ID:
        raise OnboardError(f"no site id left above {new - 1} (maximum {MAX_SITE_ID}); "
                           "give one with --id")
    return new


def next_asn(fabric: Fabric, site_id: int) -> int | None:
    """ebgp: keep the fabric's pattern `asn = base + id` when every site follows it, else the
    next ASN above the highest; ibgp: none (the fabric's one ASN)."""
    if fabric.fabric.bgp.mode != "ebgp":
        return None
    asns = [(s.id, s.asn) for s in fabric.sites if s.asn is not None]
    if not asns:
        raise OnboardError("no site has an ASN to continue from; give one with --asn")
    bases = {asn - sid for sid, asn in asns}
    if len(bases) == 1:
        return bases.pop() + site_id
    return max(asn for _, asn in asns) + 1


def site_entry(fabric: Fabric, request: SiteRequest) -> dict[str, object]:
    """The new site as the model's YAML mapping, id and ASN filled in."""
    if any(s.name == request.name for s in fabric.sites):
        raise OnboardError(f"site {request.name} already exists")
    taken = {gw.name for s in fabric.sites for gw in s.gateways}
    for gw in request.gateways:
        if gw.name in taken:
            raise OnboardError(f"gateway {gw.name} already exists in the fabric")
    if not request.gateways:
        raise OnboardError("a site needs at least one --gateway")
    if not request.prefixes:
        raise OnboardError("a site needs at least one --prefix")
    site_id = request.site_id if request.site_id is not None else next_site_id(fabric)
    if any(s.id == site_id for s in fabric.sites):
        raise OnboardError(f"--id {site_id} is taken by another site")
    entry: dict[str, object] = {"name": request.name, "id": site_id}
    if request.region:
        entry["region"] = request.region
    asn = request.asn if request.asn is not None else next_asn(fabric, site_id)
    if asn is not None:
        entry["asn"] = asn
    entry["prefixes"] = [str(p) for p in request.prefixes]
    entry["gateways"] = [{"name": gw.name, "platform": gw.platform.value,
                          "transport": gw.transport.value, "host": gw.host,
                          "public_ip": str(gw.public_ip)} for gw in request.gateways]
    entry.update(request.extra)
    return entry


def _sites_node(text: str, file: str) -> yaml.SequenceNode:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise OnboardError(f"{file}: cannot parse: {exc}") from None
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "sites" and isinstance(value, yaml.SequenceNode):
                if value.flow_style or not value.value:
                    break
                return value
    raise OnboardError(f"{file}: `sites:` is not a block list (one `- name: ...` per site); "
                       "add the site by hand")


def _scalar(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    text: str = yaml.safe_dump(value, default_flow_style=True, width=1000)
    return text.removesuffix("\n...\n").strip()


def _site_lines(entry: dict[str, object], dash_col: int, item_col: int) -> list[str]:
    """The site in block style like the file's items; lists of scalars in flow style."""
    step = max(item_col - dash_col, 2)
    key_pad = " " * item_col
    out: list[str] = []
    for i, (key, value) in enumerate(entry.items()):
        lead = " " * dash_col + "-" + " " * (step - 1) if i == 0 else key_pad
        if isinstance(value, list) and value and isinstance(value[0], dict):
            out.append(f"{lead}{key}:")
            for item in value:
                for j, (k, v) in enumerate(item.items()):
                    sub = (" " * (item_col + 2) + "-" + " " * (step - 1) if j == 0
                           else " " * (item_col + 2 + step))
                    out.append(f"{sub}{k}: {_scalar(v)}")
        else:
            out.append(f"{lead}{key}: {_scalar(value)}")
    return out


def insert_site(text: str, entry: dict[str, object], file: str = "fabric") -> str:
    """`text` with `entry` appended to the `sites:` list, indented like the existing items."""
    node = _sites_node(text, file)
    lines = text.splitlines(keepends=True)
    first = node.value[0]
    item_col = first.start_mark.column  # column of the mapping inside "- "
    dash_line = lines[first.start_mark.line]
    dash_col = dash_line.index("-")
    last = node.value[-1]
    end_line = last.end_mark.line if last.end_mark.column == 0 else last.end_mark.line + 1
    # trailing comment or blank lines after the last item belong to what follows
    while end_line > last.start_mark.line + 1 and (
            not lines[end_line - 1].strip() or lines[end_line - 1].lstrip().startswith("#")):
        end_line -= 1
    block = [f"{line}\n" for line in _site_lines(entry, dash_col, item_col)]
    if end_line > 0 and not lines[end_line - 1].endswith("\n"):
        lines[end_line - 1] += "\n"
    return "".join(lines[:end_line] + block + lines[end_line:])


@dataclass(frozen=True, slots=True)
class OnboardPlan:
    """Gateways in the order the change goes out: first wave, then the rest."""

    first: tuple[str, ...]
    rest: tuple[str, ...]


def deploy_plan(compiled: CompiledFabric, site: str, changed: Sequence[str]) -> OnboardPlan:
    """First the new site, one hub it connects to and one peer of its region, then the rest of
    the gateways whose configuration changed."""
    new = [gw.name for s, gw in compiled.gateways() if s.name == site]
    peers: dict[str, str] = {}  # peer gateway -> its site
    for tunnel in compiled.tunnels:
        ends = tunnel.endpoints
        for mine, other in (ends, ends[::-1]):
            if mine.site == site:
                peers.setdefault(other.gateway, other.site)
    fabric = compiled.fabric
    region = fabric.site(site).region
    hubs = [g for g, s in sorted(peers.items()) if s in fabric.fabric.hubs]
    regional = [g for g, s in sorted(peers.items())
                if s not in fabric.fabric.hubs and region is not None
                and fabric.site(s).region == region]
    first = [*new, *hubs[:1], *regional[:1]]
    if not hubs and not regional:
        first += sorted(peers)[:1]
    rest = [g for g in sorted(set(changed) | set(peers)) if g not in first]
    return OnboardPlan(tuple(first), tuple(rest))
