"""Junos answers for `show security ike security-associations`, `show security ipsec
security-associations` and `show bgp summary`, built from the derived DeviceState.

Element names follow the SRX replies (brief by default, `<detail/>` for the detail style).
Only tunnels that are up have SAs (an IKEv2 SA that cannot be negotiated is simply absent);
neighbors of a down tunnel are Active, shut down ones Idle. Counters, SPIs and lifetimes come
from oper_counters (they grow with device time since the tunnel came up).
"""

from ipaddress import ip_address

from lxml import etree

from lab.emulators.junos_oper import JUNOS_NS, junos_attr, sub
from lab.emulators.oper_counters import sa_figures
from lab.emulators.oper_model import (
    AuthMethod,
    BgpPhase,
    BgpState,
    DeviceIntent,
    DeviceState,
    EspProposal,
    IkeProposal,
    TunnelState,
)
from lab.emulators.xmlutil import Element

TUNNEL_INDEX_BASE = 131072
KEEPALIVE_SECONDS = 10
# model spelling -> Junos spelling in SA replies
IKE_CIPHER = {"aes128gcm16": "aes-128-gcm", "aes256gcm16": "aes-256-gcm",
              "aes128": "aes-128-cbc", "aes192": "aes-192-cbc", "aes256": "aes-256-cbc",
              "3des": "3des-cbc", "des": "des-cbc"}
IKE_HMAC = {"md5": "hmac-md5-96", "sha1": "hmac-sha1-96", "sha256": "hmac-sha256-128",
            "sha384": "hmac-sha384-192", "sha512": "hmac-sha512-256"}
ESP_CIPHER = {"aes128gcm16": "aes-gcm-128", "aes192gcm16": "aes-gcm-192",
              "aes256gcm16": "aes-gcm-256", "aes128": "aes-cbc-128", "aes192": "aes-cbc-192",
              "aes256": "aes-cbc-256", "3des": "3des-cbc", "des": "des-cbc",
              "chacha20poly1305": "chacha20-poly1305"}
AUTH_METHOD = {AuthMethod.PSK: "Pre-shared-keys"}
CERT_METHOD = {"ecdsa-signatures-256": "ECDSA-signatures-256",
               "ecdsa-signatures-384": "ECDSA-signatures-384", "rsa-signatures": "RSA-signatures"}


def _up(state: DeviceState) -> list[tuple[int, TunnelState]]:
    return [(i, t) for i, t in enumerate(state.tunnels) if t.up and t.since is not None]


def _root(name: str, detail: bool) -> Element:
    root = etree.Element(name, nsmap={"junos": JUNOS_NS})
    if detail:
        root.set(junos_attr("style"), "detail")
    return root


def _cookies(tunnel: TunnelState, now: float) -> tuple[str, str]:
    ep = tunnel.endpoint
    assert tunnel.since is not None
    ike = sa_figures(ep.local_address + "/ike", ep.remote_address + "/ike", tunnel.since, now,
                     ep.ike_lifetime)
    pair = sorted((ike.spi_in, ike.spi_out))
    return f"{pair[0]:08x}{ike.generation:08x}", f"{pair[1]:08x}{ike.generation:08x}"


def _initiator(tunnel: TunnelState) -> bool:
    ep = tunnel.endpoint
    return ip_address(ep.local_address).packed <= ip_address(ep.remote_address).packed


def ike_sas(state: DeviceState, now: float, *, detail: bool = False) -> Element:
    info = _root("ike-security-associations-information", detail)
    for index, tunnel in _up(state):
        ep, ike = tunnel.endpoint, tunnel.match.ike
        assert ike is not None and tunnel.since is not None
        initiator, responder = _cookies(tunnel, now)
        figures = sa_figures(ep.local_address, ep.remote_address, tunnel.since, now,
                             ep.ike_lifetime)
        if not detail:
            sa = sub(info, "ike-security-associations")
            sub(sa, "ike-sa-index", str(TUNNEL_INDEX_BASE * 2 + index + 1))
            sub(sa, "ike-sa-remote-address", ep.remote_address)
            sub(sa, "ike-sa-state", "UP")
            sub(sa, "ike-sa-initiator-cookie", initiator)
            sub(sa, "ike-sa-responder-cookie", responder)
            sub(sa, "ike-sa-exchange-type", "IKEv2")
            continue
        block = sub(info, "ike-security-associations-block")
        sub(block, "ike-sa-remote-address", ep.remote_address)
        sub(block, "ike-sa-index", str(TUNNEL_INDEX_BASE * 2 + index + 1))
        sub(block, "ike-sa-role", "Initiator" if _initiator(tunnel) else "Responder")
        sub(block, "ike-sa-state", "UP")
        sub(block, "ike-sa-initiator-cookie", initiator)
        sub(block, "ike-sa-responder-cookie", responder)
        sub(block, "ike-sa-exchange-type", "IKEv2")
        sub(block, "ike-sa-authentication-method",
            AUTH_METHOD.get(ep.auth) or CERT_METHOD.get(ep.cert_method, ep.cert_method))
        sub(block, "ike-sa-local-address", ep.local_address)
        sub(block, "ike-sa-local-port", "500")
        sub(block, "ike-sa-remote-port", "500")
        sub(block, "ike-sa-lifetime", f"Expires in {figures.remaining} seconds")
        sub(block, "ike-sa-local-id", ep.local_id.value)
        if ep.remote_id is not None:
            sub(block, "ike-sa-remote-id", ep.remote_id.value)
        _ike_algorithms(sub(block, "ike-sa-algorithms"), ike)
        stats = sub(block, "ike-sa-traffic-statistics")
        keepalives = figures.age // KEEPALIVE_SECONDS
        for name, value in (("ike-sa-input-bytes", keepalives * 80),
                            ("ike-sa-output-bytes", keepalives * 80),
                            ("ike-sa-input-packets", keepalives),
                            ("ike-sa-output-packets", keepalives)):
            sub(stats, name, str(value))
    return info


def _ike_algorithms(parent: Element, ike: IkeProposal) -> None:
    if ike.integrity:
        sub(parent, "ike-sa-authentication-algorithm", IKE_HMAC.get(ike.integrity, ike.integrity))
    sub(parent, "ike-sa-encryption-algorithm", IKE_CIPHER.get(ike.encryption, ike.encryption))
    sub(parent, "ike-sa-prf-algorithm", f"hmac-{ike.prf}")
    sub(parent, "ike-sa-dhgroup", f"DH-group-{ike.dh_group}")


def _protocol(esp: EspProposal) -> str:
    integrity = esp.integrity or "None"
    return f"ESP:{ESP_CIPHER.get(esp.encryption, esp.encryption)}/{integrity}"


def ipsec_sas(state: DeviceState, now: float, *, detail: bool = False) -> Element:
    info = _root("ipsec-security-associations-information", detail)
    up = _up(state)
    sub(info, "total-active-tunnels", str(len(up)))
    sub(info, "total-ipsec-sas", str(len(up)))
    for index, tunnel in up:
        ep, esp = tunnel.endpoint, tunnel.match.esp
        assert esp is not None and tunnel.since is not None
        figures = sa_figures(ep.local_address, ep.remote_address, tunnel.since, now,
                             ep.esp_lifetime)
        block = sub(info, "ipsec-security-associations-block")
        sub(block, "sa-block-state", "up")
        if detail:
            sub(block, "sa-vpn-name", ep.name)
            sub(block, "sa-local-gateway", ep.local_address)
            sub(block, "sa-remote-gateway", ep.remote_address)
            sub(block, "sa-bind-interface", ep.interface)
        for arrow, spi in (("<", figures.spi_in), (">", figures.spi_out)):
            sa = sub(block, "ipsec-security-associations")
            sub(sa, "sa-direction", arrow if not detail else
                ("inbound" if arrow == "<" else "outbound"))
            sub(sa, "sa-tunnel-index", str(TUNNEL_INDEX_BASE + index + 1))
            sub(sa, "sa-spi", f"{spi:08x}")
            sub(sa, "sa-aux-spi", "0")
            sub(sa, "sa-remote-gateway", ep.remote_address)
            sub(sa, "sa-port", "500")
            sub(sa, "sa-vpn-monitoring-state", "-")
            sub(sa, "sa-protocol", _protocol(esp))
            if detail:
                sub(sa, "sa-vpn-name", ep.name)
                sub(sa, "sa-pfs-group",
                    f"DH-group-{esp.pfs_group}" if esp.pfs_group else "Disabled")
                sub(sa, "sa-packets", str(figures.packets))
                sub(sa, "sa-bytes", str(figures.octets))
            sub(sa, "sa-hard-lifetime", f"{figures.remaining}/ unlim")
            sub(sa, "sa-lifesize-remaining", "unlim")
            sub(sa, "sa-virtual-system", "root")
    return info


def elapsed(seconds: float) -> str:
    """Junos Last Up/Dwn: m:ss, h:mm:ss, then Nd h:mm:ss."""
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def _rib(parent: Element, active: int, received: int, accepted: int) -> None:
    rib = sub(parent, "bgp-rib")
    sub(rib, "name", "inet.0")
    sub(rib, "active-prefix-count", str(active))
    sub(rib, "received-prefix-count", str(received))
    sub(rib, "accepted-prefix-count", str(accepted))
    sub(rib, "suppressed-prefix-count", "0")


def bgp_summary(intent: DeviceIntent, state: DeviceState, now: float,
                boot: float) -> Element:
    info = etree.Element("bgp-information", nsmap={"junos": JUNOS_NS})
    groups = 1 if state.sessions else 0
    down = [s for s in state.sessions if s.phase is not BgpPhase.ESTABLISHED]
    sub(info, "group-count", str(groups))
    sub(info, "peer-count", str(len(state.sessions)))
    sub(info, "down-peer-count", str(len(down)))
    if state.sessions:
        received = sum(len(s.offered) for s in state.sessions)
        accepted = sum(len(s.received) for s in state.sessions)
        total = sub(info, "bgp-rib")
        sub(total, "name", "inet.0")
        for name, value in (("total-prefix-count", received), ("received-prefix-count", received),
                            ("accepted-prefix-count", accepted),
                            ("active-prefix-count", accepted),
                            ("suppressed-prefix-count", 0), ("history-prefix-count", 0),
                            ("damped-prefix-count", 0), ("pending-prefix-count", 0)):
            sub(total, name, str(value))
        sub(total, "bgp-rib-state", "BGP restart is complete")
    for session in state.sessions:
        _peer(info, session, now, boot)
    return info


def _peer(info: Element, session: BgpState, now: float, boot: float) -> None:
    peer = sub(info, "bgp-peer")
    peer.set(junos_attr("style"), "terse")
    sub(peer, "peer-address", session.neighbor.address)
    sub(peer, "peer-as", str(session.neighbor.remote_as))
    established = session.phase is BgpPhase.ESTABLISHED and session.since is not None
    since = session.since if established and session.since is not None else boot
    messages = int(now - since) // KEEPALIVE_SECONDS + 2 if established else 0
    sub(peer, "input-messages", str(messages + (len(session.offered) if established else 0)))
    sub(peer, "output-messages", str(messages))
    sub(peer, "route-queue-count", "0")
    sub(peer, "flap-count", "0")
    sub(peer, "elapsed-time", elapsed(now - since)).set(junos_attr("seconds"),
                                                         str(int(now - since)))
    state = sub(peer, "peer-state", session.phase.value)
    state.set(junos_attr("format"), "Establ" if established else session.phase.value)
    if session.neighbor.description:
        sub(peer, "description", session.neighbor.description)
    if established:
        _rib(peer, len(session.received), len(session.offered), len(session.received))
