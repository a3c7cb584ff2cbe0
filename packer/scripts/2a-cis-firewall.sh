#!/usr/bin/env bash
# CIS 4.3: nftables as the host firewall (depth behind the security groups): inbound dropped but
# loopback, replies and the service port from the VPC; outbound new/established only.
set -euo pipefail

: "${GF_APP_PORT:?}"
export DEBIAN_FRONTEND=noninteractive
apt-get -y -q install --no-install-recommends nftables python3

# The base ruleset, loaded by nftables.service before the network is up. The service port's
# sources are empty sets here: the VPC's CIDR reaches the instance only at boot (user data), and
# golden-fleet-firewall.service fills the sets then. Until it has, the port is closed.
cat >/etc/nftables.conf <<'NFT'
#!/usr/sbin/nft -f
# CIS Debian 12 level 1, section 4.3 (written by the golden image bake)
flush ruleset

table inet filter {
	set service_ports {
		type inet_service
	}
	set service_sources_v4 {
		type ipv4_addr
		flags interval
	}
	set service_sources_v6 {
		type ipv6_addr
		flags interval
	}

	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		iif != "lo" ip saddr 127.0.0.0/8 drop
		iif != "lo" ip6 saddr ::1 drop
		ct state invalid drop
		ct state established,related accept
		# DHCP and DHCPv6 replies to the instance's own client.
		udp sport 67 udp dport 68 accept
		udp sport 547 udp dport 546 accept
		# Neighbour discovery is not connection-tracked; path MTU errors are (related).
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } ip6 hoplimit 255 accept
		icmp type echo-request limit rate 5/second accept
		tcp dport @service_ports ip saddr @service_sources_v4 ct state new accept
		tcp dport @service_ports ip6 saddr @service_sources_v6 ct state new accept
	}

	chain forward {
		type filter hook forward priority filter; policy drop;
	}

	chain output {
		type filter hook output priority filter; policy drop;
		oif "lo" accept
		meta l4proto { tcp, udp, icmp, icmpv6 } ct state new,established,related accept
	}
}
NFT
chmod 0600 /etc/nftables.conf

# The boot-time half: reads /etc/golden-fleet/boot-config.json ("network": {"vpcCidr": ...}, else
# the VPC's CIDR blocks from the instance metadata; the port from "environment"'s GF_APP_PORT,
# else the image's) and adds them to the sets.
install -d -m 0755 /usr/local/lib/golden-fleet
cat >/usr/local/lib/golden-fleet/firewall.py <<'PY'
"""Write the service port's nftables elements (CONFIG PORT OUTPUT), or fail.

The sources are the boot config's network.vpcCidr; without it, the VPC's IPv4 CIDR blocks from
the instance metadata (IMDSv2: the instance's primary interface). Neither: the unit fails."""
import ipaddress
import json
import os
import sys
import urllib.request

CONFIG, DEFAULT_PORT, OUTPUT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
IMDS = os.environ.get("GF_IMDS_URL", "http://169.254.169.254")


def metadata_vpc_cidrs():
    token = urllib.request.Request(
        f"{IMDS}/latest/api/token", method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
    )
    headers = {"X-aws-ec2-metadata-token": urllib.request.urlopen(token, timeout=2).read().decode()}

    def get(path):
        request = urllib.request.Request(f"{IMDS}/latest/meta-data/{path}", headers=headers)
        return urllib.request.urlopen(request, timeout=2).read().decode()

    mac = get("mac").strip()
    return get(f"network/interfaces/macs/{mac}/vpc-ipv4-cidr-blocks").split()


def render(config):
    network = config.get("network") or {}
    cidrs = [network["vpcCidr"]] if network.get("vpcCidr") else None
    if cidrs is None:
        try:
            cidrs = metadata_vpc_cidrs()
        except OSError as error:
            raise ValueError(
                f"network.vpcCidr is missing and the instance metadata gave no VPC CIDR ({error}):"
                " the service port stays closed"
            )
    nets = []
    for cidr in cidrs:
        try:
            nets.append(ipaddress.ip_network(str(cidr), strict=True))
        except ValueError as error:
            raise ValueError(f"VPC CIDR {cidr!r} is not a network in CIDR notation: {error}")
    if not nets:
        raise ValueError("no VPC CIDR: the service port stays closed")
    port = (config.get("environment") or {}).get("GF_APP_PORT", DEFAULT_PORT)
    if not str(port).isascii() or not str(port).isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"environment.GF_APP_PORT {port!r} must be a port number 1-65535")
    lines = [f"add element inet filter service_ports {{ {int(port)} }}"]
    for version in (4, 6):
        family = [str(n) for n in nets if n.version == version]
        if family:
            lines.append(f"add element inet filter service_sources_v{version} {{ {', '.join(family)} }}")
    return "\n".join(lines) + "\n"


try:
    with open(CONFIG, encoding="utf-8") as handle:
        elements = render(json.load(handle))
except (OSError, ValueError) as error:
    sys.exit(f"golden-fleet-firewall: {CONFIG}: {error}")
with open(OUTPUT, "w", encoding="utf-8") as handle:
    handle.write(elements)
PY
chmod 0644 /usr/local/lib/golden-fleet/firewall.py

cat >/etc/systemd/system/golden-fleet-firewall.service <<UNIT
[Unit]
Description=Open the service port to the VPC (golden-fleet boot config)
Requires=nftables.service
After=nftables.service cloud-init.service

[Service]
Type=oneshot
RemainAfterExit=yes
# No boot config, or no CIDR from it or the metadata, fails the unit visibly; the port stays closed.
ExecStart=/usr/bin/python3 /usr/local/lib/golden-fleet/firewall.py /etc/golden-fleet/boot-config.json ${GF_APP_PORT} /run/golden-fleet-firewall.nft
ExecStart=/usr/sbin/nft -f /run/golden-fleet-firewall.nft

[Install]
WantedBy=multi-user.target
UNIT
chmod 0644 /etc/systemd/system/golden-fleet-firewall.service
systemctl enable nftables.service golden-fleet-firewall.service >/dev/null 2>&1
echo "firewall: nftables default-drop, service port ${GF_APP_PORT} opened to the VPC at boot"
