"""Policy lint: every rule has a stable code, a default severity and a one-line summary.

Rules are plain generator functions registered in RULES; each yields Findings whose path points
at the YAML field to change.
"""

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network

from inventory.addressing import MAX_PLANES, link_size, tunnel_id
from inventory.crypto import CIPHERS, DH_GROUPS, INTEGRITY
from inventory.errors import TopologyError
from inventory.findings import Finding, Path, Severity, format_path
from inventory.lint_anycast import ANYCAST_RULES
from inventory.lint_capacity import CAPACITY_RULES
from inventory.lint_multihomed import MULTIHOMED_RULES
from inventory.loader import LoadedFabric, SourceMap
from inventory.model import Fabric, Gateway, Platform, Site, Topology
from inventory.platforms import CAPABILITIES, DATA_PLANE_LIMITS
from inventory.topology import site_pairs

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
MIN_LIFETIME, MAX_LIFETIME = 3600, 86400
PSK_MAX_PEERS = 8
FULL_MESH_MAX_SITES = 8
TUNNEL_POOL_RANGES = tuple(
    IPv4Network(n)
    for n in ("169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
PRIVATE_RANGES = tuple(
    IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    summary: str
    check: Callable[["Context"], Iterator[tuple[Path, str]]]


@dataclass(frozen=True)
class Context:
    fabric: Fabric

    def gateways(self) -> Iterator[tuple[Path, Site, Gateway]]:
        for i, site in enumerate(self.fabric.sites):
            for j, gw in enumerate(site.gateways):
                yield ("sites", i, "gateways", j), site, gw


RULES: list[Rule] = []


def rule(code: str, severity: Severity, summary: str) -> Callable[
        [Callable[[Context], Iterator[tuple[Path, str]]]],
        Callable[[Context], Iterator[tuple[Path, str]]]]:
    def register(fn: Callable[[Context], Iterator[tuple[Path, str]]]
                 ) -> Callable[[Context], Iterator[tuple[Path, str]]]:
        RULES.append(Rule(code, severity, summary, fn))
        return fn
    return register


CRYPTO = ("fabric", "crypto")


def _groups(ctx: Context) -> Iterator[tuple[Path, int]]:
    c = ctx.fabric.fabric.crypto
    yield (*CRYPTO, "ike", "dh_group"), c.ike.dh_group
    if c.esp.pfs_group is not None:
        yield (*CRYPTO, "esp", "pfs_group"), c.esp.pfs_group


@rule("DCV101", E, "weak Diffie-Hellman group (1, 2, 5, 14, 22-24 or any MODP below 3072 bits)")
def weak_dh(ctx: Context) -> Iterator[tuple[Path, str]]:
    for path, number in _groups(ctx):
        group = DH_GROUPS[number]
        if group.weak:
            yield path, (f"DH group {number} ({group.token}) is too weak; use 19, 20, 21, 31 "
                         "or MODP of 3072 bits and more (15, 16)")


@rule("DCV102", E, "weak hash (SHA-1, MD5) for PRF or integrity")
def weak_hash(ctx: Context) -> Iterator[tuple[Path, str]]:
    c = ctx.fabric.fabric.crypto
    for path, name in (((*CRYPTO, "ike", "prf"), c.ike.prf),
                       ((*CRYPTO, "ike", "integrity"), c.ike.integrity),
                       ((*CRYPTO, "esp", "integrity"), c.esp.integrity)):
        if name is not None and INTEGRITY[name].weak:
            yield path, f"{name} is broken for this use; use sha256, sha384 or sha512"


@rule("DCV103", E, "weak encryption (DES, 3DES)")
def weak_encryption(ctx: Context) -> Iterator[tuple[Path, str]]:
    c = ctx.fabric.fabric.crypto
    for path, name in (((*CRYPTO, "ike", "encryption"), c.ike.encryption),
                       ((*CRYPTO, "esp", "encryption"), c.esp.encryption)):
        if CIPHERS[name].weak:
            yield path, f"{name} is a 64-bit block cipher; use aes256gcm16 or aes256"


@rule("DCV104", E, "no perfect forward secrecy on the CHILD SA")
def no_pfs(ctx: Context) -> Iterator[tuple[Path, str]]:
    if ctx.fabric.fabric.crypto.esp.pfs_group is None:
        yield (*CRYPTO, "esp", "pfs_group"), "ESP rekeys without PFS; set pfs_group (e.g. 20)"


@rule("DCV105", E, "ESP lifetime not shorter than the IKE lifetime")
def lifetime_order(ctx: Context) -> Iterator[tuple[Path, str]]:
    c = ctx.fabric.fabric.crypto
    if c.esp.lifetime >= c.ike.lifetime:
        yield (*CRYPTO, "esp", "lifetime"), (
            f"ESP lifetime {c.esp.lifetime}s must be shorter than the IKE lifetime "
            f"{c.ike.lifetime}s")


@rule("DCV106", W, "SA lifetime outside 1h..24h")
def lifetime_range(ctx: Context) -> Iterator[tuple[Path, str]]:
    c = ctx.fabric.fabric.crypto
    for section, seconds in (("ike", c.ike.lifetime), ("esp", c.esp.lifetime)):
        if not MIN_LIFETIME <= seconds <= MAX_LIFETIME:
            yield (*CRYPTO, section, "lifetime"), (
                f"{seconds}s is outside 1h..24h: rekey storms below, long key exposure above")


@rule("DCV107", E, "integrity algorithm missing for a non-AEAD cipher")
def integrity_needed(ctx: Context) -> Iterator[tuple[Path, str]]:
    c = ctx.fabric.fabric.crypto
    for section, enc, integ in (("ike", c.ike.encryption, c.ike.integrity),
                                ("esp", c.esp.encryption, c.esp.integrity)):
        if not CIPHERS[enc].aead and integ is None:
            yield (*CRYPTO, section, "integrity"), f"{enc} is not AEAD and needs integrity"


@rule("DCV108", W, "integrity given for an AEAD cipher (ignored)")
def integrity_ignored(ctx: Context) -> Iterator[tuple[Path, str]]:
    c = ctx.fabric.fabric.crypto
    for section, enc, integ in (("ike", c.ike.encryption, c.ike.integrity),
                                ("esp", c.esp.encryption, c.esp.integrity)):
        if CIPHERS[enc].aead and integ is not None:
            yield (*CRYPTO, section, "integrity"), f"{enc} is AEAD; integrity {integ} is ignored"


@rule("DCV109", E, "ESP without confidentiality (GMAC)")
def gmac(ctx: Context) -> Iterator[tuple[Path, str]]:
    enc = ctx.fabric.fabric.crypto.esp.encryption
    if CIPHERS[enc].gmac:
        yield (*CRYPTO, "esp", "encryption"), f"{enc} authenticates but does not encrypt"


def _duplicates(items: Iterator[tuple[Path, object]], what: str) -> Iterator[tuple[Path, str]]:
    first: dict[object, Path] = {}
    for path, value in items:
        if value in first:
            yield path, f"{what} {value} is also used at {format_path(first[value])}"
        else:
            first[value] = path


@rule("DCV201", E, "duplicate site id")
def dup_site_id(ctx: Context) -> Iterator[tuple[Path, str]]:
    yield from _duplicates(((("sites", i, "id"), s.id) for i, s in enumerate(ctx.fabric.sites)),
                           "site id")


@rule("DCV202", E, "duplicate site name")
def dup_site_name(ctx: Context) -> Iterator[tuple[Path, str]]:
    yield from _duplicates(
        ((("sites", i, "name"), s.name) for i, s in enumerate(ctx.fabric.sites)), "site name")


@rule("DCV203", E, "duplicate ASN (ebgp)")
def dup_asn(ctx: Context) -> Iterator[tuple[Path, str]]:
    if ctx.fabric.fabric.bgp.mode == "ebgp":
        yield from _duplicates(((("sites", i, "asn"), s.asn)
                                for i, s in enumerate(ctx.fabric.sites) if s.asn is not None),
                               "ASN")


@rule("DCV204", E, "duplicate gateway public IP")
def dup_public_ip(ctx: Context) -> Iterator[tuple[Path, str]]:
    yield from _duplicates((((*p, "public_ip"), g.public_ip) for p, _, g in ctx.gateways()),
                           "public IP")


@rule("DCV205", E, "duplicate gateway name")
def dup_gateway(ctx: Context) -> Iterator[tuple[Path, str]]:
    yield from _duplicates((((*p, "name"), g.name) for p, _, g in ctx.gateways()),
                           "gateway name")


@rule("DCV206", E, "gateway name equal to a site name of another site")
def gateway_site_clash(ctx: Context) -> Iterator[tuple[Path, str]]:
    names = {s.name for s in ctx.fabric.sites}
    for path, site, gw in ctx.gateways():
        if gw.name in names and gw.name != site.name:
            yield (*path, "name"), f"gateway {gw.name} has the name of another site"


def _prefixes(ctx: Context) -> list[tuple[IPv4Network, Path, str]]:
    return [(p, ("sites", i, "prefixes", k), s.name)
            for i, s in enumerate(ctx.fabric.sites) for k, p in enumerate(s.prefixes)]


@rule("DCV211", E, "overlapping site prefixes")
def prefix_overlap(ctx: Context) -> Iterator[tuple[Path, str]]:
    items = sorted(_prefixes(ctx), key=lambda t: (int(t[0].network_address), t[0].prefixlen))
    widest: tuple[IPv4Network, Path, str] | None = None
    for net, path, site in items:
        if widest is not None and int(net.network_address) <= int(widest[0].broadcast_address):
            yield path, (f"{net} ({site}) overlaps {widest[0]} ({widest[2]}) at "
                         f"{format_path(widest[1])}")
            if int(net.broadcast_address) > int(widest[0].broadcast_address):
                widest = (net, path, site)
        else:
            widest = (net, path, site)


@rule("DCV212", W, "site prefix outside private address space")
def prefix_public(ctx: Context) -> Iterator[tuple[Path, str]]:
    for net, path, _ in _prefixes(ctx):
        if not any(net.subnet_of(r) for r in PRIVATE_RANGES):
            yield path, f"{net} is not RFC 1918 / RFC 6598 space; is announcing it intended?"


@rule("DCV213", E, "site prefix overlaps the tunnel pool")
def prefix_in_pool(ctx: Context) -> Iterator[tuple[Path, str]]:
    pool = ctx.fabric.fabric.tunnel_pool
    for net, path, _ in _prefixes(ctx):
        if net.overlaps(pool):
            yield path, f"{net} overlaps tunnel_pool {pool}"


@rule("DCV214", E, "tunnel pool outside link-local, RFC 1918 or RFC 6598 space")
def pool_private(ctx: Context) -> Iterator[tuple[Path, str]]:
    pool = ctx.fabric.fabric.tunnel_pool
    if not any(pool.subnet_of(r) for r in TUNNEL_POOL_RANGES):
        yield ("fabric", "tunnel_pool"), f"{pool} is routable address space"


@rule("DCV221", E, "tunnel pool too small for the topology")
def pool_size(ctx: Context) -> Iterator[tuple[Path, str]]:
    spec = ctx.fabric.fabric
    try:
        pairs = site_pairs(ctx.fabric)
    except TopologyError:
        return  # reported by the hub rules
    by_id = {s.id: s for s in ctx.fabric.sites}
    worst = -1
    for lo, hi in pairs:
        planes = min(MAX_PLANES, max(len(by_id[lo].gateways), len(by_id[hi].gateways)))
        worst = max(worst, tunnel_id(lo, hi, planes - 1))
    if worst < 0:
        return
    size = link_size(spec.link_prefix)
    needed = (worst + 1) * size
    if needed > spec.tunnel_pool.num_addresses:
        prefix = 32
        while (1 << (32 - prefix)) < needed:
            prefix -= 1
        yield ("fabric", "tunnel_pool"), (
            f"{spec.tunnel_pool} holds {spec.tunnel_pool.num_addresses} addresses but the "
            f"highest site ids need {needed} (a /{prefix}); tunnel blocks derive from site ids, "
            "so use a larger pool or smaller ids")


@rule("DCV231", E, "hub that is not a site")
def hub_not_site(ctx: Context) -> Iterator[tuple[Path, str]]:
    names = {s.name for s in ctx.fabric.sites}
    for i, hub in enumerate(ctx.fabric.fabric.hubs):
        if hub not in names:
            yield ("fabric", "hubs", i), f"hub {hub!r} is not a site name"


@rule("DCV232", E, "hybrid topology with a site of unknown region")
def unknown_region(ctx: Context) -> Iterator[tuple[Path, str]]:
    spec = ctx.fabric.fabric
    if spec.topology is not Topology.HYBRID:
        return
    for i, s in enumerate(ctx.fabric.sites):
        if s.region is None:
            kind = "hub" if s.name in spec.hubs else "site"
            yield ("sites", i, "region"), (
                f"{kind} {s.name} has no region: hybrid meshes sites by region")


@rule("DCV233", INFO, "region without a hub: its sites connect to every hub")
def region_without_hub(ctx: Context) -> Iterator[tuple[Path, str]]:
    spec = ctx.fabric.fabric
    if spec.topology is not Topology.HYBRID:
        return
    hub_regions = {s.region for s in ctx.fabric.sites if s.name in spec.hubs}
    reported: set[str] = set()
    for i, s in enumerate(ctx.fabric.sites):
        if s.region is not None and s.region not in hub_regions and s.region not in reported:
            reported.add(s.region)
            yield ("sites", i, "region"), (
                f"region {s.region} has no hub; its sites connect to all hubs")


@rule("DCV234", E, "hub_spoke or hybrid topology without hubs")
def needs_hubs(ctx: Context) -> Iterator[tuple[Path, str]]:
    spec = ctx.fabric.fabric
    if spec.topology is not Topology.FULL_MESH and not spec.hubs:
        yield ("fabric", "hubs"), f"topology {spec.topology} needs at least one hub"


@rule("DCV235", W, "hubs listed for a full mesh (ignored)")
def hubs_ignored(ctx: Context) -> Iterator[tuple[Path, str]]:
    spec = ctx.fabric.fabric
    if spec.topology is Topology.FULL_MESH and spec.hubs:
        yield ("fabric", "hubs"), "full_mesh has no hubs; the list is ignored"


@rule("DCV236", E, "hub listed twice")
def hub_twice(ctx: Context) -> Iterator[tuple[Path, str]]:
    yield from _duplicates(((("fabric", "hubs", i), h)
                            for i, h in enumerate(ctx.fabric.fabric.hubs)), "hub")


@rule("DCV241", E, "platform/transport pair that does not exist")
def platform_transport(ctx: Context) -> Iterator[tuple[Path, str]]:
    for path, _, gw in ctx.gateways():
        allowed = CAPABILITIES[gw.platform].transports
        if gw.transport not in allowed:
            names = ", ".join(sorted(t.value for t in allowed))
            yield (*path, "transport"), (
                f"{gw.platform} is managed over {names}, not {gw.transport}")


def _unsupported(ctx: Context, site: Site, gw: Gateway) -> list[str]:
    c = ctx.fabric.fabric.crypto
    caps = CAPABILITIES[gw.platform]
    problems = []
    if caps.ike_encryption is not None and c.ike.encryption not in caps.ike_encryption:
        problems.append(f"IKE encryption {c.ike.encryption}")
    if caps.esp_encryption is not None and c.esp.encryption not in caps.esp_encryption:
        problems.append(f"ESP encryption {c.esp.encryption}")
    if caps.hashes is not None:
        for label, name in (("IKE PRF", c.ike.prf), ("IKE integrity", c.ike.integrity),
                            ("ESP integrity", c.esp.integrity)):
            if name is not None and name not in caps.hashes:
                problems.append(f"{label} {name}")
    if caps.dh_groups is not None:
        for label, group in (("IKE DH group", c.ike.dh_group), ("PFS group", c.esp.pfs_group)):
            if group is not None and group not in caps.dh_groups:
                problems.append(f"{label} {group}")
    if c.esp.esn and not caps.esn:
        problems.append("ESN")
    if gw.platform is Platform.STRONGSWAN:
        plane = ctx.fabric.data_plane(site)
        limits = DATA_PLANE_LIMITS[plane]
        if c.esp.encryption in limits.esp_encryption_denied:
            problems.append(f"ESP encryption {c.esp.encryption} on the {plane} data plane")
        if c.esp.esn and not limits.esn:
            problems.append(f"ESN on the {plane} data plane")
    return problems


@rule("DCV242", E, "proposal that a tunnel endpoint's platform cannot do")
def proposal_unsupported(ctx: Context) -> Iterator[tuple[Path, str]]:
    try:
        pairs = site_pairs(ctx.fabric)
    except TopologyError:
        return
    connected = {i for pair in pairs for i in pair}
    for path, site, gw in ctx.gateways():
        if site.id not in connected:
            continue
        problems = _unsupported(ctx, site, gw)
        if problems:
            yield (*path, "platform"), (
                f"{gw.name} ({gw.platform}) cannot do {', '.join(problems)} "
                "required by fabric.crypto on its tunnels")


@rule("DCV243", E, "unknown OS release for the platform")
def os_version(ctx: Context) -> Iterator[tuple[Path, str]]:
    for path, _, gw in ctx.gateways():
        known = CAPABILITIES[gw.platform].os_versions
        if gw.os_version is None:
            continue
        if not known:
            yield (*path, "os_version"), f"{gw.platform} renders one syntax; os_version is unused"
        elif gw.os_version not in known:
            yield (*path, "os_version"), (
                f"{gw.platform} {gw.os_version} is not supported; known: {', '.join(known)}")


@rule("DCV251", W, "pre-shared keys with more than 8 peers on a gateway")
def psk_scale(ctx: Context) -> Iterator[tuple[Path, str]]:
    if ctx.fabric.fabric.auth.method != "psk":
        return
    try:
        pairs = site_pairs(ctx.fabric)
    except TopologyError:
        return
    peers: dict[int, int] = defaultdict(int)
    for lo, hi in pairs:
        peers[lo] += 1
        peers[hi] += 1
    worst = max(peers.values(), default=0)
    if worst > PSK_MAX_PEERS:
        yield ("fabric", "auth", "method"), (
            f"a gateway has {worst} peers; per-tunnel PSKs do not scale, use certificates")


@rule("DCV252", W, "full mesh above 8 sites")
def mesh_scale(ctx: Context) -> Iterator[tuple[Path, str]]:
    n = len(ctx.fabric.sites)
    if ctx.fabric.fabric.topology is Topology.FULL_MESH and n > FULL_MESH_MAX_SITES:
        yield ("fabric", "topology"), (
            f"{n} sites in a full mesh make {n * (n - 1) // 2} tunnels per plane (O(N^2)); "
            "consider hybrid")


@rule("DCV253", W, "certificates without auth.crl_url: IOS-XE gateways do not check revocation")
def iosxe_without_crl(ctx: Context) -> Iterator[tuple[Path, str]]:
    auth = ctx.fabric.fabric.auth
    if auth.method != "certificate" or auth.crl_url is not None:
        return
    names = [gw.name for _, _, gw in ctx.gateways() if gw.platform is Platform.IOSXE]
    if names:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        yield ("fabric", "auth", "crl_url"), (
            f"IOS-XE gateway(s) {shown} accept a revoked peer certificate: they receive no CRL "
            "and the certificates name no distribution point; set fabric.auth.crl_url to where "
            "crl.pem is published")


@rule("DCV261", E, "site with more gateways than HA planes")
def too_many_gateways(ctx: Context) -> Iterator[tuple[Path, str]]:
    for i, s in enumerate(ctx.fabric.sites):
        if len(s.gateways) > MAX_PLANES:
            yield ("sites", i, "gateways"), (
                f"{len(s.gateways)} gateways; at most {MAX_PLANES} planes are supported")


@rule("DCV262", E, "eBGP site without an ASN")
def asn_missing(ctx: Context) -> Iterator[tuple[Path, str]]:
    if ctx.fabric.fabric.bgp.mode == "ebgp":
        for i, s in enumerate(ctx.fabric.sites):
            if s.asn is None:
                yield ("sites", i, "asn"), f"site {s.name} needs an asn in ebgp mode"


@rule("DCV263", E, "iBGP fabric without an ASN")
def ibgp_asn(ctx: Context) -> Iterator[tuple[Path, str]]:
    bgp = ctx.fabric.fabric.bgp
    if bgp.mode == "ibgp" and bgp.asn is None:
        yield ("fabric", "bgp", "asn"), "ibgp mode needs fabric.bgp.asn"


@rule("DCV264", W, "site ASN ignored in iBGP mode")
def ibgp_site_asn(ctx: Context) -> Iterator[tuple[Path, str]]:
    if ctx.fabric.fabric.bgp.mode == "ibgp":
        for i, s in enumerate(ctx.fabric.sites):
            if s.asn is not None:
                yield ("sites", i, "asn"), "ignored: ibgp uses fabric.bgp.asn"


@rule("DCV265", E, "BGP hold time below three keepalives")
def bgp_timers(ctx: Context) -> Iterator[tuple[Path, str]]:
    t = ctx.fabric.fabric.bgp.timers
    if t.hold < 3 * t.keepalive:
        yield ("fabric", "bgp", "timers", "hold"), (
            f"hold {t.hold}s must be at least 3 x keepalive ({3 * t.keepalive}s)")


ACCEPT = ("fabric", "bgp", "accept")
# A range shorter than this is wider than any private block: it takes public and default routes.
ACCEPT_MIN_PREFIXLEN = 8


@rule("DCV266", E, "site prefix outside every bgp.accept range")
def prefix_not_accepted(ctx: Context) -> Iterator[tuple[Path, str]]:
    ranges = ctx.fabric.fabric.bgp.accept
    if not ranges:
        return
    shown = ", ".join(str(r) for r in ranges)
    for net, path, site in _prefixes(ctx):
        if not any(net.subnet_of(r) for r in ranges):
            yield path, (f"{net} ({site}) is in no bgp.accept range ({shown}): no other "
                         "gateway would accept it; widen bgp.accept or renumber the site")


@rule("DCV267", W, "bgp.accept range overlaps the tunnel pool")
def accept_pool(ctx: Context) -> Iterator[tuple[Path, str]]:
    pool = ctx.fabric.fabric.tunnel_pool
    for i, net in enumerate(ctx.fabric.fabric.bgp.accept):
        if net.overlaps(pool):
            yield (*ACCEPT, i), (f"{net} overlaps tunnel_pool {pool}: peers could announce "
                                 "routes to tunnel link addresses; exclude the pool")


@rule("DCV268", W, "bgp.accept range broader than needed")
def accept_broad(ctx: Context) -> Iterator[tuple[Path, str]]:
    ranges = ctx.fabric.fabric.bgp.accept
    prefixes = [net for net, _, _ in _prefixes(ctx)]
    for i, net in enumerate(ranges):
        path = (*ACCEPT, i)
        if net.prefixlen < ACCEPT_MIN_PREFIXLEN or not any(
                net.subnet_of(r) for r in PRIVATE_RANGES):
            yield path, (f"{net} reaches beyond private address space (a default or public "
                         "routes would be accepted); use the fabric's private block, "
                         "e.g. 10.0.0.0/8")
        elif not any(p.subnet_of(net) for p in prefixes):
            yield path, f"{net} holds no site prefix; remove it"
        else:
            # inside another range (an equal one only counts when it comes first)
            outer = next((j for j, other in enumerate(ranges) if j != i and net.subnet_of(other)
                          and (net != other or j < i)), None)
            if outer is not None:
                yield path, (f"{net} is already inside {ranges[outer]} at "
                             f"{format_path((*ACCEPT, outer))}; remove it")


@rule("DCV291", E, "watch probe address outside its site's prefixes")
def probe_outside_site(ctx: Context) -> Iterator[tuple[Path, str]]:
    for i, site in enumerate(ctx.fabric.sites):
        for k, probe in enumerate(site.probes):
            if not any(probe.address in net for net in site.prefixes):
                shown = ", ".join(str(n) for n in site.prefixes)
                yield ("sites", i, "probes", k, "address"), (
                    f"probe {probe.name} ({probe.address}) is in none of {site.name}'s "
                    f"prefixes ({shown}): the fabric does not route it")


@rule("DCV292", E, "duplicate watch probe name in a site")
def dup_probe(ctx: Context) -> Iterator[tuple[Path, str]]:
    for i, site in enumerate(ctx.fabric.sites):
        yield from _duplicates(((("sites", i, "probes", k, "name"), p.name)
                                for k, p in enumerate(site.probes)), "probe name")


def _on_fabric(check: Callable[[Fabric], Iterator[tuple[Path, str]]]
               ) -> Callable[[Context], Iterator[tuple[Path, str]]]:
    return lambda ctx: check(ctx.fabric)


RULES += [Rule(r.code, r.severity, r.summary, _on_fabric(r.check))
          for r in ANYCAST_RULES]  # DCV320-DCV329 (inventory.lint_anycast)
RULES += [Rule(r.code, r.severity, r.summary, _on_fabric(r.check))
          for r in MULTIHOMED_RULES]  # DCV300-DCV309 (inventory.lint_multihomed)
RULES += [Rule(r.code, r.severity, r.summary, _on_fabric(r.check))
          for r in CAPACITY_RULES]  # DCV340-DCV344 (inventory.lint_capacity)


def lint(loaded: LoadedFabric, select: set[str] | None = None) -> list[Finding]:
    """All findings, ordered by file line, then code."""
    ctx = Context(loaded.fabric)
    source: SourceMap = loaded.source
    findings = [
        source.finding(r.code, r.severity, path, message)
        for r in RULES
        if select is None or r.code in select
        for path, message in r.check(ctx)
    ]
    findings.sort(key=lambda f: (f.line or 0, f.code, format_path(f.path)))
    return findings


def worst(findings: list[Finding]) -> Severity | None:
    return max((f.severity for f in findings), default=None)
