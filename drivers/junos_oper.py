"""Junos operational replies (show security ike/ipsec security-associations, show bgp summary)
mapped onto the normalized DeviceState.

Element names follow the junos-es RPC models; fields a reply lacks stay at their defaults.
Lookups match local names in any namespace, so replies are read as received (not copied).
The [U] tables are the CLI spellings as printed by SRX releases, not checked on a device.
"""

from lxml import etree

from drivers.base import BgpSession, ChildSa, DeviceState, IkeSa
from drivers.ncclient_session import children_named, leaf_text

Element = etree._Element

# RPC of each part of the state; the detail style carries the negotiated algorithms,
# identities and VPN names that the brief style leaves out
STATE_RPCS = {
    "ike": "<get-ike-security-associations-information><detail/>"
           "</get-ike-security-associations-information>",
    "ipsec": "<get-security-associations-information><detail/>"
             "</get-security-associations-information>",
    "bgp": "<get-bgp-summary-information/>",
}

# ike-sa-state -> normalized IKE SA state
IKE_STATES = {"UP": "ESTABLISHED", "DOWN": "CONNECTING"}
# sa-block-state -> normalized CHILD SA state
CHILD_STATES = {"up": "INSTALLED", "down": "DOWN"}
# [U] `sa-protocol` ESP:<cipher>/<integrity> -> model spellings
ESP_CIPHERS = {
    "aes-gcm-128": "aes128gcm16", "aes-gcm-192": "aes192gcm16", "aes-gcm-256": "aes256gcm16",
    "aes-cbc-128": "aes128", "aes-cbc-192": "aes192", "aes-cbc-256": "aes256",
    "3des-cbc": "3des", "des-cbc": "des", "chacha20-poly1305": "chacha20poly1305",
}
ESP_INTEGRITY = {"none": None, "sha1": "sha1", "md5": "md5", "sha256": "sha256",
                 "sha384": "sha384", "sha512": "sha512"}
# [U] IKE SA detail fields -> model spellings
IKE_CIPHERS = {"aes-256-gcm": "aes256gcm16", "aes-128-gcm": "aes128gcm16",
               "aes-256-cbc": "aes256", "aes-192-cbc": "aes192", "aes-128-cbc": "aes128",
               "3des-cbc": "3des", "des-cbc": "des"}
IKE_HASHES = {"hmac-sha1-96": "sha1", "hmac-sha256-128": "sha256", "hmac-sha384-192": "sha384",
              "hmac-sha512-256": "sha512", "sha-256": "sha256", "sha-384": "sha384",
              "sha-512": "sha512", "sha1": "sha1", "md5": "md5"}
# [U] `Pseudo random function:` of the IKE SA detail
IKE_PRFS = {"hmac-sha1": "sha1", "hmac-sha256": "sha256", "hmac-sha384": "sha384",
            "hmac-sha512": "sha512", "hmac-md5": "md5"}


def _text(parent: Element, name: str) -> str:
    return leaf_text(next(children_named(parent, name), None))


def _deep(parent: Element, name: str) -> str:
    """A leaf anywhere below parent (detail replies nest algorithms in ike-sa-algorithms)."""
    for element in parent.iter(f"{{*}}{name}"):
        return leaf_text(element)
    return ""


def _int(text: str) -> int | None:
    digits = "".join(ch for ch in text if ch.isdigit())
    return int(digits) if digits else None


def ike_sas(reply: Element) -> tuple[IkeSa, ...]:
    out = []
    for tag in ("ike-security-associations", "ike-security-associations-block"):
        for sa in reply.iter(f"{{*}}{tag}"):
            state = _text(sa, "ike-sa-state")
            encryption = _deep(sa, "ike-sa-encryption-algorithm")
            integrity = _deep(sa, "ike-sa-authentication-algorithm")
            prf = _deep(sa, "ike-sa-prf-algorithm")
            dh = _deep(sa, "ike-sa-dhgroup") or _deep(sa, "ike-sa-dh-group")
            out.append(IkeSa(
                local_address=_text(sa, "ike-sa-local-address"),
                remote_address=_text(sa, "ike-sa-remote-address"),
                state=IKE_STATES.get(state.upper(), state.upper()),
                local_id=_text(sa, "ike-sa-local-id"),
                remote_id=_text(sa, "ike-sa-remote-id"),
                encryption=IKE_CIPHERS.get(encryption, encryption),
                integrity=IKE_HASHES.get(integrity, integrity) or None,
                prf=IKE_PRFS.get(prf) or IKE_HASHES.get(prf, prf) or None,
                dh_group=_int(dh),
            ))
    return tuple(out)


def _esp(protocol: str) -> tuple[str, str | None]:
    """`ESP:aes-gcm-256/None` -> ("aes256gcm16", None)."""
    _, _, algorithms = protocol.partition(":")
    cipher, _, integrity = algorithms.partition("/")
    return (ESP_CIPHERS.get(cipher.lower(), cipher),
            ESP_INTEGRITY.get(integrity.lower(), integrity or None))


def child_sas(reply: Element) -> tuple[ChildSa, ...]:
    out = []
    for block in reply.iter("{*}ipsec-security-associations-block"):
        sas = list(children_named(block, "ipsec-security-associations"))
        if not sas:
            continue
        first = sas[0]
        state = _text(block, "sa-block-state").lower() or "up"
        encryption, integrity = _esp(_text(first, "sa-protocol"))
        name = _text(first, "sa-vpn-name") or f"tunnel-{_text(first, 'sa-tunnel-index')}"
        out.append(ChildSa(
            name=name,
            remote_address=_text(first, "sa-remote-gateway"),
            state=CHILD_STATES.get(state, state.upper()),
            encryption=encryption,
            integrity=integrity,
        ))
    return tuple(out)


def bgp_sessions(reply: Element) -> tuple[BgpSession, ...]:
    out = []
    for peer in reply.iter("{*}bgp-peer"):
        received = sum(_int(_text(rib, "received-prefix-count")) or 0
                       for rib in children_named(peer, "bgp-rib"))
        out.append(BgpSession(
            neighbor=_text(peer, "peer-address").split("+", 1)[0],
            remote_as=_int(_text(peer, "peer-as")) or 0,
            state=_text(peer, "peer-state"),
            prefixes_received=received,
        ))
    return tuple(out)


def device_state(ike: Element, ipsec: Element, bgp: Element) -> DeviceState:
    return DeviceState(ike_sas=ike_sas(ike), child_sas=child_sas(ipsec),
                       bgp_sessions=bgp_sessions(bgp))
