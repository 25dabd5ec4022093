#!/bin/sh
# Tunnel interfaces, MTU and TCP MSS clamp of cub2-gw1 (data plane xfrm),
# rendered by dcvpn. Idempotent; run as root.
set -eu
sysctl -qw net.ipv4.ip_forward=1
uplink="${DCVPN_UPLINK:-$(ip -o -4 addr show to 203.0.113.143/32 | awk '{print $2; exit}')}"
if [ -z "$uplink" ]; then
	echo "interfaces.sh: no interface holds 203.0.113.143; set DCVPN_UPLINK" >&2
	exit 1
fi
ip link show xfrm10 >/dev/null 2>&1 || ip link add xfrm10 type xfrm dev "$uplink" if_id 10
ip addr replace 169.254.0.1/31 dev xfrm10
ip link set xfrm10 mtu 1446 up
ip link show xfrm11 >/dev/null 2>&1 || ip link add xfrm11 type xfrm dev "$uplink" if_id 11
ip addr replace 169.254.0.3/31 dev xfrm11
ip link set xfrm11 mtu 1446 up
nft -f - <<'NFT'
table inet dcvpn
delete table inet dcvpn
table inet dcvpn {
	chain mss_clamp {
		type filter hook forward priority mangle; policy accept;
		oifname "xfrm10" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
		iifname "xfrm10" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
		oifname "xfrm11" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
		iifname "xfrm11" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
	}
}
NFT
