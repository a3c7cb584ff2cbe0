#!/usr/bin/env bash
# Baseline: every package upgraded now, the tools the later steps need installed, and nothing
# left to install or upgrade itself at boot (the image is replaced, never patched in place).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

apt-get -q update
apt-get "${apt_opts[@]}" full-upgrade
apt-get "${apt_opts[@]}" install --no-install-recommends \
  systemd systemd-sysv ca-certificates curl gnupg procps kmod iproute2 python3-minimal \
  cron rsyslog logrotate debsums apt-show-versions apt-listchanges \
  acct sysstat chkrootkit aide fail2ban

# Immutable infrastructure: updates arrive as a new image, so no timer upgrades at boot (and no
# needrestart: nothing is upgraded in place, and it would bring binutils, an assembler and linker).
for unit in apt-daily.timer apt-daily-upgrade.timer; do
  systemctl mask "$unit" >/dev/null 2>&1 || true
done
printf 'APT::Periodic::Update-Package-Lists "0";\nAPT::Periodic::Unattended-Upgrade "0";\n' \
  >/etc/apt/apt.conf.d/20auto-upgrades

# Accounting, logging and fail2ban (bans hosts after repeated failed SSH logins) start at boot.
sed -i 's/^ENABLED=.*/ENABLED="true"/' /etc/default/sysstat
systemctl enable rsyslog acct sysstat fail2ban >/dev/null 2>&1
echo "baseline: packages upgraded, tooling installed"
