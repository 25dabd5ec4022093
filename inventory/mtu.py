"""Tunnel MTU and TCP MSS from the path MTU and the ESP overhead of the chosen cipher.

An IPv4 packet of M bytes sent through an ESP tunnel-mode SA becomes:

    outer IPv4 header                  20
    UDP header (NAT-T / libipsec)       8   only when ESP is UDP-encapsulated
    ESP header (SPI 4 + sequence 4)     8
    IV                                  iv      (GCM/ChaCha: 8, CBC: 16)
    payload M + pad + trailer (2)       align(M + 2, a)   (a = 4 for AEAD, block size for CBC)
    ICV                                 icv     (GCM16: 16; CBC: the HMAC's truncated length)

The largest M with 20 [+ 8] + 8 + iv + align(M + 2, a) + icv <= path_mtu is

    avail = path_mtu - 20 [- 8] - 8 - iv - icv
    M     = floor(avail / a) * a - 2

Example, strict profile (aes256gcm16) on a 1500-byte path without UDP encapsulation:
avail = 1500 - 20 - 8 - 8 - 16 = 1448, M = 362 * 4 - 2 = 1446. With UDP encapsulation
avail = 1440 and M = 1438. aes256 + sha384 (CBC): avail = 1500 - 20 - 8 - 16 - 24 = 1432,
M = 89 * 16 - 2 = 1422. TCP MSS = M - 20 (IPv4) - 20 (TCP).
"""

from dataclasses import dataclass

from inventory.crypto import CIPHERS, INTEGRITY

IPV4_HEADER = 20
UDP_HEADER = 8
ESP_HEADER = 8
ESP_TRAILER = 2
TCP_HEADER = 20


@dataclass(frozen=True, slots=True)
class TunnelMtu:
    mtu: int
    mss: int
    overhead: int  # path_mtu - mtu


def tunnel_mtu(path_mtu: int, encryption: str, integrity: str | None, udp_encap: bool) -> TunnelMtu:
    cipher = CIPHERS[encryption]
    icv = cipher.icv_bytes
    if not cipher.aead:
        if integrity is None:
            raise ValueError(f"{encryption} needs an integrity algorithm")
        icv = INTEGRITY[integrity].icv_bytes
    avail = path_mtu - IPV4_HEADER - (UDP_HEADER if udp_encap else 0) - ESP_HEADER
    avail -= cipher.iv_bytes + icv
    mtu = (avail // cipher.pad_align) * cipher.pad_align - ESP_TRAILER
    return TunnelMtu(mtu=mtu, mss=mtu - IPV4_HEADER - TCP_HEADER, overhead=path_mtu - mtu)
