#!/usr/bin/env bash
# Foundation clean-up: the last step of the foundation layer, which is provisioned again (the
# application layer logs in over SSH, installs one package and then runs 90-cleanup.sh).
set -euo pipefail

# Kept on purpose, because the application layer needs them: sshd and its configuration, the
# login user, apt's configuration, keys and package lists. Removed: what would go stale or leak from this
# build host into every application image built on it.
export DEBIAN_FRONTEND=noninteractive
apt-get -y -q autoremove --purge
apt-get -q clean
# Package lists stay: the application layer installs its package's dependencies from them
# (90-cleanup.sh removes them from the application image).
rm -f /etc/ssh/ssh_host_*
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
rm -rf /tmp/* /tmp/.[!.]* /var/tmp/* /var/tmp/.[!.]* /var/cache/debconf/*-old /root/.cache
rm -f /root/.bash_history /root/.lesshst /root/.python_history /root/.wget-hsts
for home in /home/*; do
  [ -d "$home" ] || continue
  rm -f "$home/.bash_history" "$home/.lesshst" "$home/.python_history" "$home/.ssh/authorized_keys"
done
echo "foundation-cleanup: caches, logs, host keys and build keys removed; sshd and login user kept"
