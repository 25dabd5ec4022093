"""IOS-XE operational data (Cisco-IOS-XE-crypto-oper, Cisco-IOS-XE-bgp-oper, 17.15.1) mapped
onto the normalized DeviceState.

    /crypto-oper-data/crypto-ikev2-sa[sa-id]/sa-data         -> IkeSa
    /crypto-oper-data/crypto-ipsec-ident[interface]/ident-data -> ChildSa (one per interface)
    /bgp-state-data/neighbors/neighbor[afi-safi vrf-name neighbor-id] -> BgpSession

The IKEv2 SA data carries the cipher family but no key size (`encr-alg` aes-gcm, no
`keysize` leaf in sa-data), so IkeSa.encryption names the family in the model's spelling
without a size (IKE_ENCRYPTION); the ESP transform bits carry the size, so ChildSa.encryption
is exact. Enum values the tables do not know are passed on as the device spells them.
"""

from lxml import etree

from drivers.base import BgpSession, ChildSa, DeviceState, IkeSa
from drivers.ncclient_session import children_named, leaf_text

Element = etree._Element

CRYPTO_OPER_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-crypto-oper"
BGP_OPER_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-bgp-oper"
# the top-level nodes of the one <get> subtree filter that reads the state (RFC 6241 6.2.1:
# a filter may hold several; one RPC instead of one per part)
STATE_FILTER = (f'<crypto-oper-data xmlns="{CRYPTO_OPER_NS}"><crypto-ikev2-sa/>'
                "<crypto-ipsec-ident/></crypto-oper-data>"
                f'<bgp-state-data xmlns="{BGP_OPER_NS}"><neighbors/></bgp-state-data>')

# crypto-sa-status -> normalized IKE SA / CHILD SA state
IKE_STATES = {"crypto-sa-status-active": "ESTABLISHED", "crypto-sa-status-pending": "CONNECTING",
              "crypto-sa-status-standby": "STANDBY", "crypto-ipsec-sa-status-down": "DOWN"}
CHILD_STATES = {"crypto-sa-status-active": "INSTALLED", "crypto-sa-status-pending": "INSTALLING",
                "crypto-sa-status-standby": "STANDBY", "crypto-ipsec-sa-status-down": "DOWN"}
# crypto-encryption-alg -> model spelling (family only: the IKE SA has no key size)
IKE_ENCRYPTION = {"crypto-encr-alg-aes-gcm": "aesgcm16", "crypto-encr-alg-aes-cbc": "aes",
                  "crypto-encr-alg-aes-gmac": "aesgmac", "crypto-encr-alg-3des": "3des",
                  "crypto-encr-alg-des": "des", "crypto-encr-alg-null": "null"}
AEAD_FAMILIES = frozenset({"aesgcm16", "aesgmac"})
# crypto-hash-alg -> model spelling (PRF and integrity)
HASHES = {"crypto-hash-alg-auth-hmac-sha1-96": "sha1", "crypto-hash-alg-auth-hmac-md5-96": "md5",
          "crypto-hash-alg-auth-hmac-sha256": "sha256",
          "crypto-hash-alg-auth-hmac-sha384": "sha384",
          "crypto-hash-alg-auth-hmac-sha512": "sha512", "crypto-hash-alg-auth-none": ""}
# crypto-transform-options bits of an ESP SA -> model cipher / integrity
ESP_CIPHERS = {
    "crypto-transform-esp-aes-gcm": "aes128gcm16", "crypto-transform-esp-aes-gcm-192":
    "aes192gcm16", "crypto-transform-esp-aes-gcm-256": "aes256gcm16",
    "crypto-transform-esp-aes-gmac": "aes128gmac", "crypto-transform-esp-aes-gmac-256":
    "aes256gmac", "crypto-transform-esp-aes-cbc": "aes128",
    "crypto-transform-esp-aes-cbc-192": "aes192", "crypto-transform-esp-aes-cbc-256": "aes256",
    "crypto-transform-esp-3-des": "3des", "crypto-transform-esp-des": "des",
    "crypto-transform-esp-null": "null",
}
ESP_INTEGRITY = {"crypto-transform-esp-hmac-sha": "sha1",
                 "crypto-transform-esp-hmac-sha256": "sha256",
                 "crypto-transform-esp-hmac-sha384": "sha384",
                 "crypto-transform-esp-hmac-sha512": "sha512",
                 "crypto-transform-esp-hmac-md5": "md5"}
DH_PREFIX = "crypto-dh-grouptype-group"
# bgp-fsm-state -> the state names strongSwan/FRR and Junos use
BGP_STATES = {"fsm-idle": "Idle", "fsm-connect": "Connect", "fsm-active": "Active",
              "fsm-opensent": "OpenSent", "fsm-openconfirm": "OpenConfirm",
              "fsm-established": "Established", "fsm-nonnegotiated": "NonNegotiated"}
PREFERRED_AFI = "ipv4-unicast"
ACTIVE = "crypto-sa-status-active"


def _text(parent: Element | None, *names: str) -> str:
    node = parent
    for name in names:
        if node is None:
            return ""
        node = next(children_named(node, name), None)
    return leaf_text(node)


def _dh_group(text: str) -> int | None:
    number = text.removeprefix(DH_PREFIX)
    return int(number) if number != text and number.isdigit() else None


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def ike_sas(crypto: Element) -> tuple[IkeSa, ...]:
    out = []
    for sa in crypto.iter("{*}crypto-ikev2-sa"):
        data = next(children_named(sa, "sa-data"), None)
        if data is None:
            continue
        status = _text(data, "sa-status")
        encryption = _text(data, "encr-alg")
        family = IKE_ENCRYPTION.get(encryption, encryption)
        hashed = _text(data, "hash-algo")
        prf = HASHES.get(hashed, hashed) or None
        out.append(IkeSa(
            local_address=_text(data, "local-ip-addr"),
            remote_address=_text(data, "remote-ip-addr"),
            state=IKE_STATES.get(status, status.upper()),
            encryption=family,
            integrity=None if family in AEAD_FAMILIES else prf,
            prf=prf,
            dh_group=_dh_group(_text(data, "dh-group")),
        ))
    return tuple(out)


def _esp(transform: str) -> tuple[str, str | None]:
    bits = transform.split()
    cipher = next((ESP_CIPHERS[b] for b in bits if b in ESP_CIPHERS), "")
    integrity = next((ESP_INTEGRITY[b] for b in bits if b in ESP_INTEGRITY), None)
    return cipher, integrity


def child_sas(crypto: Element) -> tuple[ChildSa, ...]:
    out = []
    for ident in crypto.iter("{*}crypto-ipsec-ident"):
        data = next(children_named(ident, "ident-data"), None)
        if data is None:
            continue
        inbound, outbound = (_text(data, d, "sa-status") for d in ("inbound-esp-sa",
                                                                  "outbound-esp-sa"))
        if inbound == outbound == ACTIVE:
            state = "INSTALLED"
        else:  # the worse direction; no ESP SA at all is DOWN
            worst = next((s for s in (inbound, outbound) if s and s != ACTIVE), "")
            state = CHILD_STATES.get(worst, worst.upper()) if worst else "DOWN"
        encryption, integrity = _esp(_text(data, "outbound-esp-sa", "transform-set") or
                                     _text(data, "inbound-esp-sa", "transform-set"))
        out.append(ChildSa(
            name=_text(ident, "interface"),
            remote_address=_text(data, "remote-endpt-addr"),
            state=state,
            encryption=encryption,
            integrity=integrity,
            dh_group=_dh_group(_text(data, "dh-group")),
        ))
    return tuple(out)


def bgp_sessions(bgp: Element) -> tuple[BgpSession, ...]:
    chosen: dict[str, Element] = {}
    for neighbor in (n for group in bgp.iter("{*}neighbors")
                     for n in children_named(group, "neighbor")):
        address = _text(neighbor, "neighbor-id")
        if not address or _text(neighbor, "vrf-name") not in ("default", ""):
            continue
        if address not in chosen or _text(neighbor, "afi-safi") == PREFERRED_AFI:
            chosen[address] = neighbor
    out = []
    for address, neighbor in chosen.items():
        state = _text(neighbor, "session-state")
        out.append(BgpSession(
            neighbor=address,
            remote_as=_int(_text(neighbor, "as")),
            state=BGP_STATES.get(state, state),
            prefixes_received=_int(_text(neighbor, "prefix-activity", "received",
                                         "current-prefixes")),
        ))
    return tuple(out)


def device_state(reply: Element) -> DeviceState:
    """reply: the <get> reply with both parts (any wrapping, namespaces or not: every lookup
    matches local names, so a hub's reply of 10^5 elements is not copied)."""
    return DeviceState(ike_sas=ike_sas(reply), child_sas=child_sas(reply),
                       bgp_sessions=bgp_sessions(reply))
