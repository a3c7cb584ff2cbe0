#!/usr/bin/env bash
# CIS 2.3: one time daemon, chrony, synchronised with the Amazon Time Sync Service (link-local on
# every instance; fd00:ec2::123 where the subnet has IPv6), running as _chrony.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get -y -q install --no-install-recommends chrony

# The whole file, not an edit of Debian's: no public pool (the instances have no route to it) and
# nothing from DHCP, so the sources are exactly these two. minpoll/maxpoll 4 and prefer are
# AWS's recommended lines (EC2 User Guide, "Set the time reference on your EC2 instance").
cat >/etc/chrony/chrony.conf <<'CONF'
# CIS Debian 12 level 1, section 2.3 (written by the golden image bake)
server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4
server fd00:ec2::123 iburst minpoll 4 maxpoll 4
user _chrony
keyfile /etc/chrony/chrony.keys
driftfile /var/lib/chrony/chrony.drift
ntsdumpdir /var/lib/chrony
logdir /var/log/chrony
maxupdateskew 100.0
rtcsync
makestep 1 3
leapsectz right/UTC
cmdport 0
CONF
chmod 0644 /etc/chrony/chrony.conf
# chronyd's own options keep the packaged default (-F 1: seccomp filter on).
if [ -f /etc/default/chrony ] && ! grep -q '^DAEMON_OPTS=.*-F' /etc/default/chrony; then
  sed -i -E 's/^DAEMON_OPTS=.*/DAEMON_OPTS="-F 1"/' /etc/default/chrony
fi
systemctl enable chrony >/dev/null 2>&1
# A second time daemon would fight chrony over the clock.
systemctl mask systemd-timesyncd.service >/dev/null 2>&1 || true
echo "time: chrony with the Amazon Time Sync Service, running as _chrony"
