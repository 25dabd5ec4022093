#!/bin/sh
# Tunnel interfaces, MTU and TCP MSS clamp of acs3-gw1 (data plane xfrm),
# rendered by dcvpn. Idempotent; run as root.
set -eu
sysctl -qw net.ipv4.ip_forward=1
uplink="${DCVPN_UPLINK:-$(ip -o -4 addr show to 198.51.100.31/32 | awk '{print $2; exit}')}"
if [ -z "$uplink" ]; then
	echo "interfaces.sh: no interface holds 198.51.100.31; set DCVPN_UPLINK" >&2
	exit 1
fi
ip link show xfrm10 >/dev/null 2>&1 || ip link add xfrm10 type xfrm dev "$uplink" if_id 10
ip addr replace 169.254.0.9/31 dev xfrm10
ip link set xfrm10 mtu 1446 up
ip link show xfrm20 >/dev/null 2>&1 || ip link add xfrm20 type xfrm dev "$uplink" if_id 20
ip addr replace 169.254.0.17/31 dev xfrm20
ip link set xfrm20 mtu 1446 up
nft -f - <<'NFT'
table inet dcvpn
delete table inet dcvpn
table inet dcvpn {
	chain mss_clamp {
		type filter hook forward priority mangle; policy accept;
		oifname "xfrm10" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
		iifname "xfrm10" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
		oifname "xfrm20" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
		iifname "xfrm20" tcp flags syn / syn,rst tcp option maxseg size > 1406 tcp option maxseg size set 1406
	}
}
NFT
