"""Stable tunnel ids and inner link addresses, derived from site ids only.

A site pair (lo, hi) with lo < hi gets the triangular index (hi-1)(hi-2)/2 + (lo-1): it depends
on the two ids alone, so adding or removing any other site never moves it. Each pair has room
for MAX_PLANES HA planes; tunnel id = pair_index * MAX_PLANES + plane. The tunnel's /31 (or
/30) is block number `tunnel id` of tunnel_pool.
"""

from ipaddress import IPv4Address, IPv4Network

from inventory.model import MAX_GATEWAYS_PER_SITE

MAX_PLANES = MAX_GATEWAYS_PER_SITE


def pair_index(a: int, b: int) -> int:
    lo, hi = (a, b) if a < b else (b, a)
    if lo < 1 or lo == hi:
        raise ValueError(f"site ids must be distinct positive integers, got {a} and {b}")
    return (hi - 1) * (hi - 2) // 2 + (lo - 1)


def tunnel_id(a: int, b: int, plane: int) -> int:
    if not 0 <= plane < MAX_PLANES:
        raise ValueError(f"plane {plane} outside 0..{MAX_PLANES - 1}")
    return pair_index(a, b) * MAX_PLANES + plane


def link_size(link_prefix: int) -> int:
    return 2 if link_prefix == 31 else 4


def link_network(pool: IPv4Network, link_prefix: int, tid: int) -> IPv4Network | None:
    """The link block of tunnel `tid`, or None when the pool is too small for it."""
    size = link_size(link_prefix)
    offset = tid * size
    if offset + size > pool.num_addresses:
        return None
    return IPv4Network((int(pool.network_address) + offset, link_prefix))


def link_hosts(net: IPv4Network) -> tuple[IPv4Address, IPv4Address]:
    """Addresses of the lower-id and the higher-id site on a link (/31: both; /30: .1, .2)."""
    base = int(net.network_address)
    if net.prefixlen == 31:
        return IPv4Address(base), IPv4Address(base + 1)
    return IPv4Address(base + 1), IPv4Address(base + 2)


def pool_blocks_needed(max_tid: int) -> int:
    return max_tid + 1


def if_index(peer_site_id: int, plane: int) -> int:
    """Per-gateway tunnel interface number (IOS-XE TunnelN, JunOS st0.N, XFRM if_id).

    peer id * 10 + plane: readable (Tunnel41 = to site 4, plane 1) and unique on a gateway,
    because a gateway has at most one tunnel per peer site and plane.
    """
    return peer_site_id * 10 + plane
