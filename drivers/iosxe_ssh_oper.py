"""IOS-XE `show crypto ikev2 sa`, `show crypto ipsec sa` and `show ip bgp summary` text mapped
onto the normalized DeviceState.

The parsers read IOS's layout, not its exact spacing: leading blanks are ignored (some
captures lose them), a long neighbor address may wrap the BGP row, and fields a block lacks
stay at their defaults. Spellings are data tables; an unknown one is kept as printed.
"""

import re

from drivers.base import BgpSession, ChildSa, DeviceState, IkeSa

# `Status` column of show crypto ikev2 sa -> normalized IKE SA state
IKE_STATES = {"READY": "ESTABLISHED", "IN-NEG": "CONNECTING", "DELETE": "DELETING"}
# `Encr: <cipher>, keysize: <bits>` -> model spelling
IKE_CIPHERS = {("AES-CBC", "128"): "aes128", ("AES-CBC", "192"): "aes192",
               ("AES-CBC", "256"): "aes256", ("AES-GCM", "128"): "aes128gcm16",
               ("AES-GCM", "256"): "aes256gcm16", ("3DES", "0"): "3des", ("DES", "0"): "des"}
# `Hash:` (integrity) and `PRF:` -> model spelling; None: an AEAD cipher has no integrity
IKE_HASHES: dict[str, str | None] = {
    "NONE": None, "MD596": "md5", "SHA96": "sha1", "SHA1": "sha1", "SHA256": "sha256",
    "SHA384": "sha384", "SHA512": "sha512", "MD5": "md5"}
# `transform: <esp cipher> [<bits>] [<esp hmac>] ,` -> model spelling
ESP_CIPHERS = {("esp-gcm", "128"): "aes128gcm16", ("esp-gcm", "256"): "aes256gcm16",
               ("esp-aes", "128"): "aes128", ("esp-aes", "192"): "aes192",
               ("esp-aes", "256"): "aes256", ("esp-128-aes", ""): "aes128",
               ("esp-192-aes", ""): "aes192", ("esp-256-aes", ""): "aes256",
               ("esp-3des", ""): "3des", ("esp-des", ""): "des", ("esp-gcm", ""): "aes128gcm16",
               ("esp-aes", ""): "aes128"}
ESP_HMACS = {"esp-md5-hmac": "md5", "esp-sha-hmac": "sha1", "esp-sha256-hmac": "sha256",
             "esp-sha384-hmac": "sha384", "esp-sha512-hmac": "sha512"}
CHILD_STATES = {"ACTIVE": "INSTALLED", "STANDBY": "INSTALLED", "PENDING": "CONNECTING"}

_IKE_ROW = re.compile(r"^(?P<id>\d+)\s+(?P<local>\S+?)(/\d+)?\s+(?P<remote>\S+?)(/\d+)?\s+"
                      r"(?P<vrf>\S+/\S+)\s+(?P<status>\S+)\s*$")
_IKE_ROW6 = re.compile(r"^(?P<id>\d+)\s+(?P<vrf>\S+/\S+)\s+(?P<status>\S+)\s*$")
_ENDPOINT = re.compile(r"^(?P<side>Local|Remote)\s+(?P<addr>\S+?)(/\d+)?\s*$")
_ENCR = re.compile(r"Encr:\s*(?P<cipher>[\w-]+)(,\s*keysize:\s*(?P<bits>\d+))?")
_FIELD = r"{name}:\s*(?P<value>[^,\s]+)"
_DH = re.compile(r"DH Grp:\s*(?P<group>\d+)")
_IDENTITY = re.compile(r"^(?P<side>Local|Remote) id:\s*(?P<id>\S+)")


def _field(line: str, name: str) -> str | None:
    found = re.search(_FIELD.format(name=re.escape(name)), line)
    return found["value"] if found else None


def ike_sas(text: str) -> tuple[IkeSa, ...]:
    sas: list[dict[str, str | int | None]] = []
    for raw in text.splitlines():
        line = raw.strip()
        row = _IKE_ROW.match(line) or _IKE_ROW6.match(line)
        if row:
            groups = row.groupdict()
            sas.append({"local": groups.get("local") or "", "remote": groups.get("remote") or "",
                        "state": IKE_STATES.get(row["status"], row["status"])})
            continue
        if not sas:
            continue
        sa = sas[-1]
        if endpoint := _ENDPOINT.match(line):
            sa[endpoint["side"].lower()] = endpoint["addr"]
        elif encr := _ENCR.search(line):
            cipher, bits = encr["cipher"].upper(), encr["bits"] or "0"
            sa["encryption"] = IKE_CIPHERS.get((cipher, bits), f"{cipher}-{bits}".lower())
            hash_, prf = (_field(line, "Hash") or "").upper(), (_field(line, "PRF") or "").upper()
            sa["integrity"] = IKE_HASHES.get(hash_, hash_.lower() or None)
            sa["prf"] = IKE_HASHES.get(prf, prf.lower() or None)
            group = _DH.search(line)
            sa["dh_group"] = int(group["group"]) if group else None
        elif identity := _IDENTITY.match(line):
            sa[f"{identity['side'].lower()}_id"] = identity["id"]
    return tuple(IkeSa(
        local_address=str(sa["local"]), remote_address=str(sa["remote"]), state=str(sa["state"]),
        local_id=str(sa.get("local_id") or ""), remote_id=str(sa.get("remote_id") or ""),
        encryption=str(sa.get("encryption") or ""),
        integrity=_opt_str(sa.get("integrity")), prf=_opt_str(sa.get("prf")),
        dh_group=_opt_int(sa.get("dh_group"))) for sa in sas)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


_INTERFACE = re.compile(r"^interface:\s*(?P<name>\S+)")
_PEER = re.compile(r"^current_peer\s+(?P<peer>\S+)")
_PFS = re.compile(r"DH group:\s*group(?P<group>\d+)")
_TRANSFORM = re.compile(r"^transform:\s*(?P<words>[^,]*)")
_STATUS = re.compile(r"^Status:\s*(?P<status>[A-Z-]+)")
_COUNTER = re.compile(r"^#pkts (?P<kind>encaps|decaps):\s*(?P<count>\d+)")


def _esp(words: list[str]) -> tuple[str, str | None]:
    cipher = words[0] if words else ""
    bits = words[1] if len(words) > 1 and words[1].isdigit() else ""
    hmac = next((ESP_HMACS[w] for w in words if w in ESP_HMACS), None)
    return ESP_CIPHERS.get((cipher, bits), " ".join(words[:2]) if bits else cipher), hmac


def child_sas(text: str) -> tuple[ChildSa, ...]:
    """One ChildSa per protected flow (ident block) that has an inbound ESP SA."""
    out: list[ChildSa] = []
    interface = ""
    flow: dict[str, str | int | None] | None = None
    direction = ""

    def close() -> None:
        if flow is not None and flow.get("encryption") is not None:
            out.append(ChildSa(
                name=interface, remote_address=str(flow.get("peer") or ""),
                state=str(flow.get("state") or "INSTALLED"), encryption=str(flow["encryption"]),
                integrity=_opt_str(flow.get("integrity")), dh_group=_opt_int(flow.get("dh"))))

    for raw in text.splitlines():
        line = raw.strip()
        if match := _INTERFACE.match(line):
            close()
            interface, flow = match["name"], None
        elif line.startswith("protected vrf:"):
            close()
            flow = {}
        elif flow is None:
            continue
        elif match := _PEER.match(line):
            flow["peer"] = match["peer"]
        elif match := _PFS.search(line):
            flow["dh"] = int(match["group"])
        elif line.endswith(" sas:"):
            direction = line.removesuffix(" sas:")
        elif (match := _TRANSFORM.match(line)) and direction == "inbound esp":
            encryption, integrity = _esp(match["words"].split())
            flow.setdefault("encryption", encryption)
            flow.setdefault("integrity", integrity)
        elif (match := _STATUS.match(line)) and direction == "inbound esp":
            flow.setdefault("state", CHILD_STATES.get(match["status"], match["status"]))
    close()
    return tuple(out)


_BGP_HEADER = re.compile(r"^Neighbor\s+V\s+AS\s+MsgRcvd")
_BGP_ROW = re.compile(r"^(?P<neighbor>\S+)?\s+4\s+(?P<asn>[\d.]+)\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+"
                      r"\s+\S+\s+(?P<state>.+?)\s*$")


def _asn(text: str) -> int:
    if "." in text:  # asdot
        high, _, low = text.partition(".")
        return int(high) * 65536 + int(low)
    return int(text)


def bgp_sessions(text: str) -> tuple[BgpSession, ...]:
    out: list[BgpSession] = []
    in_table = False
    pending = ""  # a neighbor address printed on a line of its own (long IPv6)
    for raw in text.splitlines():
        if _BGP_HEADER.match(raw.strip()):
            in_table, pending = True, ""
            continue
        if not in_table or not raw.strip():
            continue
        row = _BGP_ROW.match(raw if raw[:1] == " " else raw.rstrip())
        if row is None:
            words = raw.split()
            pending = words[0] if len(words) == 1 else ""
            continue
        neighbor = row["neighbor"] or pending
        pending = ""
        state = row["state"]
        established = state.isdigit()
        out.append(BgpSession(neighbor=neighbor, remote_as=_asn(row["asn"]),
                              state="Established" if established else state,
                              prefixes_received=int(state) if established else 0))
    return tuple(out)


def device_state(ike: str, ipsec: str, bgp: str) -> DeviceState:
    return DeviceState(ike_sas=ike_sas(ike), child_sas=child_sas(ipsec),
                       bgp_sessions=bgp_sessions(bgp))
