#!/usr/bin/env bash
# Clean-up: nothing of the build host goes into the image - no SSH host keys, no machine-id, no
# logs, caches, histories, temporary files or build keys - so every instance starts clean.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get -y -q autoremove --purge
apt-get -q clean
rm -rf /var/lib/apt/lists/*

if command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs --seed
fi
rm -f /etc/ssh/ssh_host_*
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
# CIS 6.1.4.1: log files 0640 or stricter (bootstrap.log, dpkg.log, lastlog, wtmp ... were wider);
# tmpfiles.d recreates wtmp/btmp only when missing, so the modes hold at boot.
find /var/log -type f -perm /0137 -exec chmod g-wx,o-rwx {} +
rm -rf /tmp/* /tmp/.[!.]* /var/tmp/* /var/tmp/.[!.]* /var/cache/debconf/*-old /root/.cache
rm -f /root/.bash_history /root/.lesshst /root/.python_history /root/.wget-hsts
for home in /home/*; do
  [ -d "$home" ] || continue
  rm -f "$home/.bash_history" "$home/.lesshst" "$home/.python_history" "$home/.ssh/authorized_keys"
done
echo "cleanup: host keys, machine-id, logs, caches and histories removed"
