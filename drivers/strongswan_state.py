"""strongSwan and FRR state as DeviceState (pure): `swanctl --list-sas --pretty` and FRR's
`show bgp summary json`.

swanctl is charon's vici client; its `--pretty` dump of the list-sas events is read here
instead of opening the vici socket from Python, so that one reader serves the lab (socket
file on this machine) and a host behind SSH (socket on the host) alike. The dump has one
`key = value` per line, `name {` ... `}` sections and `key = [` ... `]` lists.
tasks/validate_strongswan.py reads the same data through the vici package for the
validator's own types.

Algorithms come back in the model's spelling (aes256gcm16, sha384, DH group 20); a name
not in these tables is passed on lower-cased.
"""

import json
from collections.abc import Mapping
from typing import Any

from drivers.base import BgpSession, ChildSa, DeviceState, IkeSa
from drivers.errors import DriverError

Section = dict[str, Any]

# (vici encr-alg, encr-keysize) -> model spelling; keysize None: any / not reported
ENCRYPTION: dict[tuple[str, int | None], str] = {
    ("AES_GCM_16", 128): "aes128gcm16", ("AES_GCM_16", 256): "aes256gcm16",
    ("AES_GCM_12", 128): "aes128gcm12", ("AES_GCM_12", 256): "aes256gcm12",
    ("AES_GCM_8", 128): "aes128gcm8", ("AES_GCM_8", 256): "aes256gcm8",
    ("CHACHA20_POLY1305", None): "chacha20poly1305",
    ("NULL_AES_GMAC", 128): "aes128gmac", ("NULL_AES_GMAC", 256): "aes256gmac",
    ("AES_CBC", 128): "aes128", ("AES_CBC", 192): "aes192", ("AES_CBC", 256): "aes256",
    ("3DES_CBC", None): "3des", ("DES_CBC", None): "des",
}
INTEGRITY = {"HMAC_SHA2_256_128": "sha256", "HMAC_SHA2_384_192": "sha384",
             "HMAC_SHA2_512_256": "sha512", "HMAC_SHA1_96": "sha1", "HMAC_MD5_96": "md5"}
PRF = {"PRF_HMAC_SHA2_256": "sha256", "PRF_HMAC_SHA2_384": "sha384",
       "PRF_HMAC_SHA2_512": "sha512", "PRF_HMAC_SHA1": "sha1", "PRF_HMAC_MD5": "md5"}
DH = {"MODP_768": 1, "MODP_1024": 2, "MODP_1536": 5, "MODP_2048": 14, "MODP_3072": 15,
      "MODP_4096": 16, "MODP_6144": 17, "MODP_8192": 18, "ECP_256": 19, "ECP_384": 20,
      "ECP_521": 21, "MODP_1024_160": 22, "MODP_2048_224": 23, "MODP_2048_256": 24,
      "CURVE_25519": 31, "CURVE_448": 32}


def parse_pretty(text: str) -> list[tuple[str, Section]]:
    """Top-level sections of a swanctl --pretty dump: [(label, body)], e.g.
    ("list-sa event", {"conn": {...}})."""
    out: list[tuple[str, Section]] = []
    stack: list[Section] = []
    items: list[str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if items is not None:
            if line == "]":
                items = None
            else:
                items.append(line)
        elif line.endswith("{"):
            body: Section = {}
            label = line[:-1].strip()
            if stack:
                stack[-1][label] = body
            else:
                out.append((label, body))
            stack.append(body)
        elif line == "}":
            if not stack:
                raise DriverError(f"swanctl output line {number}: unbalanced '}}'")
            stack.pop()
        elif " = " in line and stack:
            key, _, value = line.partition(" = ")
            if value == "[":
                items = stack[-1][key] = []
            else:
                stack[-1][key] = value
        else:
            raise DriverError(f"swanctl output line {number}: unexpected {line[:60]!r}")
    if stack or items is not None:
        raise DriverError("swanctl output ends inside a section")
    return out


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _encryption(sa: Mapping[str, Any]) -> str:
    alg = str(sa.get("encr-alg", ""))
    size = _int(sa.get("encr-keysize"))
    return ENCRYPTION.get((alg, size)) or ENCRYPTION.get((alg, None)) or alg.lower()


def _mapped(table: Mapping[str, str], value: Any) -> str | None:
    return table.get(str(value), str(value).lower()) if value else None


def sas_from_pretty(text: str) -> tuple[tuple[IkeSa, ...], tuple[ChildSa, ...]]:
    ike, child = [], []
    for label, body in parse_pretty(text):
        if label != "list-sa event":
            continue
        for _, sa in sorted(body.items()):
            if not isinstance(sa, dict):
                continue
            remote = str(sa.get("remote-host", ""))
            ike.append(IkeSa(
                local_address=str(sa.get("local-host", "")), remote_address=remote,
                state=str(sa.get("state", "")), local_id=str(sa.get("local-id", "")),
                remote_id=str(sa.get("remote-id", "")), encryption=_encryption(sa),
                integrity=_mapped(INTEGRITY, sa.get("integ-alg")),
                prf=_mapped(PRF, sa.get("prf-alg")), dh_group=DH.get(str(sa.get("dh-group")))))
            children = sa.get("child-sas") or {}
            for _, c in sorted(children.items()):
                if not isinstance(c, dict):
                    continue
                child.append(ChildSa(
                    name=str(c.get("name", "")), remote_address=remote,
                    state=str(c.get("state", "")), encryption=_encryption(c),
                    integrity=_mapped(INTEGRITY, c.get("integ-alg")),
                    dh_group=DH.get(str(c.get("dh-group"))),
                    bytes_in=_int(c.get("bytes-in")) or 0,
                    bytes_out=_int(c.get("bytes-out")) or 0))
    return tuple(ike), tuple(child)


def bgp_from_json(text: str) -> tuple[BgpSession, ...]:
    """FRR `show bgp summary json`: the IPv4 unicast peers."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DriverError(f"FRR's bgp summary is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DriverError("FRR's bgp summary is not a JSON object")
    peers = (data.get("ipv4Unicast") or {}).get("peers") or {}
    return tuple(BgpSession(neighbor=str(addr), remote_as=_int(p.get("remoteAs")) or 0,
                            state=str(p.get("state", "")),
                            prefixes_received=_int(p.get("pfxRcd")) or 0)
                 for addr, p in sorted(peers.items()))


def device_state(list_sas: str, bgp_summary: str) -> DeviceState:
    ike, child = sas_from_pretty(list_sas)
    return DeviceState(ike_sas=ike, child_sas=child, bgp_sessions=bgp_from_json(bgp_summary))
