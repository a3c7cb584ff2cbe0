#!/usr/bin/env bash
# CIS 4.1: auditd installed, enabled (also for processes before it starts) and watching identity,
# sudoers, time, mounts, logins and module loading.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get -y -q install --no-install-recommends auditd audispd-plugins

# Full disk: keep_logs rotates instead of deleting, and the instance keeps serving. CIS suggests
# `halt` on admin_space_left; in an Auto Scaling Group a halted instance is an outage (and the
# ASG replaces it with one that fills up the same way), so the alarm goes to syslog instead and
# the logs ship off the box.
conf=/etc/audit/auditd.conf
set_conf() { # key value
  if grep -qE "^\s*$1\s*=" "$conf"; then sed -i -E "s|^\s*$1\s*=.*|$1 = $2|" "$conf"; else echo "$1 = $2" >>"$conf"; fi
}
set_conf max_log_file 32
set_conf max_log_file_action keep_logs
set_conf space_left_action syslog
set_conf admin_space_left_action syslog
set_conf disk_full_action rotate
set_conf disk_error_action syslog

cat >/etc/audit/rules.d/60-cis.rules <<'RULES'
## CIS Debian 12 level 1 (written by the golden image bake)
-w /etc/group -p wa -k identity
-w /etc/passwd -p wa -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/security/opasswd -p wa -k identity
-w /etc/sudoers -p wa -k scope
-w /etc/sudoers.d -p wa -k scope
-w /var/log/sudo.log -p wa -k actions
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change
-a always,exit -F arch=b32 -S adjtimex,settimeofday,clock_settime -k time-change
-w /etc/localtime -p wa -k time-change
-a always,exit -F arch=b64 -S sethostname,setdomainname -k system-locale
-w /etc/hosts -p wa -k system-locale
-w /etc/issue -p wa -k system-locale
-w /etc/issue.net -p wa -k system-locale
-a always,exit -F arch=b64 -S mount -F auid>=1000 -F auid!=unset -k mounts
-a always,exit -F arch=b32 -S mount -F auid>=1000 -F auid!=unset -k mounts
-w /var/log/lastlog -p wa -k logins
-w /var/run/faillock -p wa -k logins
-w /var/log/wtmp -p wa -k session
-w /var/log/btmp -p wa -k session
-w /sbin/insmod -p x -k modules
-w /sbin/rmmod -p x -k modules
-w /sbin/modprobe -p x -k modules
-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k modules
-w /etc/apparmor/ -p wa -k MAC-policy
-w /etc/apparmor.d/ -p wa -k MAC-policy
RULES
chmod 0640 /etc/audit/rules.d/60-cis.rules
# The rules are final once loaded (-e 2) and processes before auditd are audited too.
echo '-e 2' >/etc/audit/rules.d/99-finalize.rules
install -d -m 0755 /etc/default/grub.d
echo 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX audit=1 audit_backlog_limit=8192 apparmor=1 security=apparmor"' \
  >/etc/default/grub.d/60-cis.cfg
systemctl enable auditd >/dev/null 2>&1
echo "auditd: enabled, $(grep -c '^-' /etc/audit/rules.d/60-cis.rules) rules"
