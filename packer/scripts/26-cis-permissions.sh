#!/usr/bin/env bash
# CIS 5.1 and 6.1: cron restricted to root, the sensitive files' owners and modes,
# compilers for root only and sudo logging to its own file.
set -euo pipefail

for path in /etc/crontab /etc/cron.hourly /etc/cron.daily /etc/cron.weekly /etc/cron.monthly /etc/cron.d; do
  if [ -e "$path" ]; then
    chown root:root "$path"
    if [ -d "$path" ]; then chmod 0700 "$path"; else chmod 0600 "$path"; fi
  fi
done
rm -f /etc/cron.deny /etc/at.deny
for allow in /etc/cron.allow /etc/at.allow; do
  echo root >"$allow"
  chown root:root "$allow"
  chmod 0640 "$allow"
done

chown root:root /etc/passwd /etc/group /etc/passwd- /etc/group- 2>/dev/null || true
chmod 0644 /etc/passwd /etc/group
chmod 0600 /etc/passwd- /etc/group- 2>/dev/null || true
chown root:shadow /etc/shadow /etc/gshadow
chmod 0640 /etc/shadow /etc/gshadow
for backup in /etc/shadow- /etc/gshadow-; do
  if [ -e "$backup" ]; then chown root:shadow "$backup"; chmod 0640 "$backup"; fi
done
chmod 0440 /etc/sudoers
find /etc/sudoers.d -type f -exec chmod 0440 {} +
chmod 0600 /boot/grub/grub.cfg 2>/dev/null || true
chmod 0644 /etc/hosts.allow /etc/hosts.deny 2>/dev/null || true
# Compilers and assemblers, where a dependency brought one, are for root only.
for tool in as cc gcc g++ ld tcc; do
  path="$(command -v "$tool" || true)"
  if [ -n "$path" ]; then chmod 0750 "$(readlink -f "$path")"; fi
done
# sudo logs to its own file (audited by the auditd rules) and uses a pty.
printf 'Defaults use_pty\nDefaults logfile="/var/log/sudo.log"\n' >/etc/sudoers.d/60-cis
chmod 0440 /etc/sudoers.d/60-cis
visudo -cq
echo "permissions: cron and sensitive files restricted"
