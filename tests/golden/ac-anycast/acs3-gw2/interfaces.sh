#!/bin/sh
# Tunnel interfaces, MTU and TCP MSS clamp of acs3-gw2 (data plane xfrm),
# rendered by dcvpn. Idempotent; run as root.
set -eu
sysctl -qw net.ipv4.ip_forward=1
uplink="${DCVPN_UPLINK:-$(ip -o -4 addr show to 198.51.100.32/32 | awk '{print $2; exit}')}"
if [ -z "$uplink" ]; then
	echo "interfaces.sh: no interface holds 198.51.100.32; set DCVPN_UPLINK" >&2
	exit 1
fi
ip link show xfrm11 >/dev/null 2>&1 || ip link add xfrm11 type xfrm dev "$uplink" if_id 11
ip addr replace 169.254.0.11/31 dev xfrm11
ip link set xfrm11 mtu 1446 up
ip link show xfrm21 >/dev/null 2>&1 || ip link add xfrm21 type xfrm dev "$uplink" if_id 21
ip addr replace 169.254.0.19/31 dev xfrm21
ip link set xfrm21 mtu 1446 up
nft -f - <<'NFT'
table inet dcvpn
delete table inet dcvpn
table inet dcvpn {
	chain mss_clamp {
		type filter hook forward priority mangle; policy accept;
		oifname "xfrm11" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
		iifname "xfrm11" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
		oifname "xfrm21" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
		iifname "xfrm21" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
	}
}
NFT
