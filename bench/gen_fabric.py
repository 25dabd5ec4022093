"""Generate large fabric models for the benchmark (and for trying dcvpn at scale).

    python bench/gen_fabric.py hub_spoke 1000 -o big.yaml     # 2 hubs with 2 gateways each
    python bench/gen_fabric.py full_mesh 150 --mixed          # YAML on stdout
    python bench/gen_fabric.py hub_spoke 500 --accept 10.0.0.0/8   # aggregate import filters

Addressing passes `dcvpn lint`: site N announces 10.<N/256>.<N%256>.0/24, gateways take
consecutive addresses of 198.18.0.0/15, eBGP ASNs are 4200000000 + N, and the tunnel pool is
the smallest block at the start of 100.64.0.0/10 that holds every link block the site ids can
need (tunnel blocks derive from site ids, so the pool grows with the square of the highest id).
With `accept`, fabric.bgp.accept lists those ranges (10.0.0.0/8 holds every site prefix).
"""

import argparse
import sys
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import yaml

from inventory.addressing import MAX_PLANES, link_size, tunnel_id

TOPOLOGIES = ("hub_spoke", "full_mesh")
# (platform, transport) pairs that exist; --mixed assigns them round-robin per gateway
PLATFORMS = (("strongswan", "ssh"), ("iosxe", "netconf"), ("junos", "netconf"))
POOL = IPv4Network("100.64.0.0/10")
PUBLIC = IPv4Network("198.18.0.0/15")
ASN_BASE = 4_200_000_000
MAX_SITES = 1024  # the largest site id whose link blocks fit in 100.64.0.0/10


def tunnel_pool(sites: int, link_prefix: int = 31) -> IPv4Network:
    """Smallest prefix of 100.64.0.0/10 that holds every tunnel of site ids 1..sites."""
    worst = tunnel_id(sites - 1, sites, MAX_PLANES - 1) if sites > 1 else 0
    needed = (worst + 1) * link_size(link_prefix)
    prefix = 32
    while prefix > POOL.prefixlen and (1 << (32 - prefix)) < needed:
        prefix -= 1
    if (1 << (32 - prefix)) < needed:
        raise ValueError(f"{sites} sites need {needed} link addresses, more than {POOL} holds")
    return IPv4Network((POOL.network_address, prefix))


def site_name(site_id: int) -> str:
    return f"s{site_id:04d}"


def generate(sites: int, topology: str = "hub_spoke", *, hubs: int = 2, hub_gateways: int = 2,
             mixed_platforms: bool = False, name: str = "bench",
             accept: tuple[str, ...] = ()) -> dict[str, Any]:
    """A fabric model as plain data (what `yaml.safe_load` of a fabric file returns).

    hub_spoke: sites 1..hubs are hubs with `hub_gateways` gateways each, the rest have one.
    full_mesh: every site has one gateway.
    """
    if topology not in TOPOLOGIES:
        raise ValueError(f"topology must be one of {', '.join(TOPOLOGIES)}")
    if not 2 <= sites <= MAX_SITES:
        raise ValueError(f"sites must be within 2..{MAX_SITES}")
    hub_count = hubs if topology == "hub_spoke" else 0
    if not 0 <= hub_count < sites:
        raise ValueError("a hub_spoke fabric needs fewer hubs than sites")
    gateway_number = 0
    site_list: list[dict[str, Any]] = []
    for site_id in range(1, sites + 1):
        sname = site_name(site_id)
        gateways = []
        for g in range(1, (hub_gateways if site_id <= hub_count else 1) + 1):
            platform, transport = PLATFORMS[gateway_number % len(PLATFORMS)
                                            if mixed_platforms else 0]
            gateway_number += 1
            gateways.append({
                "name": f"{sname}-gw{g}",
                "platform": platform,
                "transport": transport,
                "host": f"{sname}-gw{g}.mgmt.example.net",
                "public_ip": str(IPv4Address(int(PUBLIC.network_address) + gateway_number)),
            })
        site_list.append({
            "name": sname,
            "id": site_id,
            "region": ("eu", "us")[site_id % 2],
            "asn": ASN_BASE + site_id,
            "prefixes": [f"10.{site_id // 256}.{site_id % 256}.0/24"],
            "gateways": gateways,
        })
    return {
        "fabric": {
            "name": name,
            "topology": topology,
            "hubs": [site_name(i) for i in range(1, hub_count + 1)],
            "tunnel_pool": str(tunnel_pool(sites)),
            "crypto": "strict",
            "auth": {"method": "certificate", "key_type": "ecdsa-p384"},
            "bgp": {"mode": "ebgp", **({"accept": list(accept)} if accept else {})},
        },
        "sites": site_list,
    }


def fabric_yaml(data: dict[str, Any]) -> str:
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a large dcvpn fabric model.")
    parser.add_argument("topology", choices=TOPOLOGIES)
    parser.add_argument("sites", type=int)
    parser.add_argument("--hubs", type=int, default=2, help="hub_spoke: number of hubs")
    parser.add_argument("--hub-gateways", type=int, default=2, help="gateways per hub")
    parser.add_argument("--mixed", action="store_true",
                        help="assign strongswan/iosxe/junos round-robin per gateway")
    parser.add_argument("--accept", action="append", default=[], metavar="RANGE",
                        help="fabric.bgp.accept range (repeatable), e.g. 10.0.0.0/8")
    parser.add_argument("-o", "--out", help="write here instead of stdout")
    args = parser.parse_args(argv)
    try:
        data = generate(args.sites, args.topology, hubs=args.hubs,
                        hub_gateways=args.hub_gateways, mixed_platforms=args.mixed,
                        accept=tuple(args.accept))
    except ValueError as exc:
        print(f"gen_fabric: {exc}", file=sys.stderr)
        return 2
    text = fabric_yaml(data)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
