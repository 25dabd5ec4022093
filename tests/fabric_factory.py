"""Small in-memory fabrics for tests."""

from typing import Any

from inventory.model import Fabric


def site(sid: int, gateways: int = 1, region: str | None = "eu", name: str | None = None,
         platform: str = "strongswan") -> dict[str, Any]:
    name = name or f"s{sid}"
    transport = "netconf" if platform in ("iosxe", "junos") else "ssh"
    return {
        "name": name,
        "id": sid,
        "region": region,
        "asn": 64512 + sid,
        "prefixes": [f"10.{sid // 256}.{sid % 256}.0/24"],
        "gateways": [
            {"name": f"{name}-gw{g + 1}", "platform": platform, "transport": transport,
             "host": f"{name}-gw{g + 1}.mgmt",
             "public_ip": f"198.{18 + g}.{sid // 256}.{sid % 256}"}
            for g in range(gateways)
        ],
    }


def fabric(sites: list[dict[str, Any]], topology: str = "full_mesh", hubs: tuple[str, ...] = (),
           **spec: Any) -> Fabric:
    data: dict[str, Any] = {"name": "t", "topology": topology, "hubs": list(hubs),
                            "tunnel_pool": "100.64.0.0/10", **spec}
    return Fabric.model_validate({"fabric": data, "sites": sites})
