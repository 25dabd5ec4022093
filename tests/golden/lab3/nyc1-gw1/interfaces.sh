#!/bin/sh
# Tunnel interfaces, MTU and TCP MSS clamp of nyc1-gw1 (data plane libipsec),
# rendered by dcvpn. Idempotent; run as root after charon has created ipsec0 and
# before swanctl loads the connections (libipsec cannot install a policy whose local selector
# holds no local address); again after every charon start.
set -eu
sysctl -qw net.ipv4.ip_forward=1
ip addr replace 169.254.0.9/31 dev ipsec0
ip addr replace 169.254.0.17/31 dev ipsec0
ip link set ipsec0 mtu 1400 up
# charon's routes in table 220 must not hide a missing BGP route.
ip rule del priority 32800 table 220 2>/dev/null || true
nft -f - <<'NFT'
table inet dcvpn
delete table inet dcvpn
table inet dcvpn {
	chain mss_clamp {
		type filter hook forward priority mangle; policy accept;
		oifname "ipsec0" tcp flags syn / syn,rst tcp option maxseg size > 1360 tcp option maxseg size set 1360
		iifname "ipsec0" tcp flags syn / syn,rst tcp option maxseg size > 1360 tcp option maxseg size set 1360
	}
}
NFT
