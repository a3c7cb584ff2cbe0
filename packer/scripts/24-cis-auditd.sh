#!/usr/bin/env bash
# CIS 6.2: auditd installed, enabled (also for processes before it starts) with the benchmark's
# whole rule set (6.2.3); privileged commands are added last, from the image's files (96-...).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get -y -q install --no-install-recommends auditd audispd-plugins

# Full disk: keep_logs rotates instead of deleting, and the instance keeps serving. CIS 6.2.2
# asks space_left_action email/exec/single/halt and admin_space_left_action single/halt; in an
# Auto Scaling Group a halted or single-user instance is an outage (and the ASG replaces it with
# one that fills up the same way), and the image has no mail transfer agent. So both run `exec`:
# an alert in syslog, which the agent ships off the box.
conf=/etc/audit/auditd.conf
set_conf() { # key value
  if grep -qE "^\s*$1\s*=" "$conf"; then sed -i -E "s|^\s*$1\s*=.*|$1 = $2|" "$conf"; else echo "$1 = $2" >>"$conf"; fi
}
install -d -m 0755 /usr/local/sbin
cat >/usr/local/sbin/golden-fleet-audit-space <<'SH'
#!/bin/sh
# auditd's space_left/admin_space_left action: an alert in syslog (shipped off the instance).
logger -p authpriv.alert -t auditd "audit log volume low on space: $(df -h /var/log/audit | tail -1)"
SH
chmod 0750 /usr/local/sbin/golden-fleet-audit-space
set_conf max_log_file 32
set_conf max_log_file_action keep_logs
set_conf space_left_action "exec /usr/local/sbin/golden-fleet-audit-space"
set_conf admin_space_left_action "exec /usr/local/sbin/golden-fleet-audit-space"
set_conf disk_full_action rotate
set_conf disk_error_action syslog

cat >/etc/audit/rules.d/60-cis.rules <<'RULES'
## CIS Debian 12 level 1, section 6.2.3 (written by the golden image bake)
## 6.2.3.1 sudoers scope, 6.2.3.2 actions as another user, 6.2.3.3 the sudo log
-w /etc/sudoers -p wa -k scope
-w /etc/sudoers.d -p wa -k scope
-a always,exit -F arch=b64 -C euid!=uid -F auid!=unset -S execve -k user_emulation
-a always,exit -F arch=b32 -C euid!=uid -F auid!=unset -S execve -k user_emulation
-w /var/log/sudo.log -p wa -k sudo_log_file
## 6.2.3.4 date and time
-a always,exit -F arch=b64 -S adjtimex,settimeofday -k time-change
-a always,exit -F arch=b32 -S adjtimex,settimeofday -k time-change
-a always,exit -F arch=b64 -S clock_settime -F a0=0x0 -k time-change
-a always,exit -F arch=b32 -S clock_settime -F a0=0x0 -k time-change
-w /etc/localtime -p wa -k time-change
## 6.2.3.5 network environment
-a always,exit -F arch=b64 -S sethostname,setdomainname -k system-locale
-a always,exit -F arch=b32 -S sethostname,setdomainname -k system-locale
-w /etc/issue -p wa -k system-locale
-w /etc/issue.net -p wa -k system-locale
-w /etc/hosts -p wa -k system-locale
-w /etc/hostname -p wa -k system-locale
-w /etc/networks -p wa -k system-locale
-w /etc/network/ -p wa -k system-locale
-w /etc/nftables.conf -p wa -k system-locale
## 6.2.3.7 unsuccessful file access
-a always,exit -F arch=b64 -S creat,open,openat,truncate,ftruncate -F exit=-EACCES -F auid>=1000 -F auid!=unset -k access
-a always,exit -F arch=b64 -S creat,open,openat,truncate,ftruncate -F exit=-EPERM -F auid>=1000 -F auid!=unset -k access
-a always,exit -F arch=b32 -S creat,open,openat,truncate,ftruncate -F exit=-EACCES -F auid>=1000 -F auid!=unset -k access
-a always,exit -F arch=b32 -S creat,open,openat,truncate,ftruncate -F exit=-EPERM -F auid>=1000 -F auid!=unset -k access
## 6.2.3.8 user and group information
-w /etc/group -p wa -k identity
-w /etc/passwd -p wa -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/security/opasswd -p wa -k identity
-w /etc/nsswitch.conf -p wa -k identity
-w /etc/pam.conf -p wa -k identity
-w /etc/pam.d -p wa -k identity
## 6.2.3.9 discretionary access control changes
-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod
-a always,exit -F arch=b64 -S chown,fchown,lchown,fchownat -F auid>=1000 -F auid!=unset -k perm_mod
-a always,exit -F arch=b64 -S setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr -F auid>=1000 -F auid!=unset -k perm_mod
-a always,exit -F arch=b32 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod
-a always,exit -F arch=b32 -S lchown,fchown,chown,fchownat -F auid>=1000 -F auid!=unset -k perm_mod
-a always,exit -F arch=b32 -S setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr -F auid>=1000 -F auid!=unset -k perm_mod
## 6.2.3.10 mounts
-a always,exit -F arch=b64 -S mount -F auid>=1000 -F auid!=unset -k mounts
-a always,exit -F arch=b32 -S mount -F auid>=1000 -F auid!=unset -k mounts
## 6.2.3.11 session initiation, 6.2.3.12 logins and logouts
-w /var/run/utmp -p wa -k session
-w /var/log/wtmp -p wa -k session
-w /var/log/btmp -p wa -k session
-w /var/log/lastlog -p wa -k logins
-w /var/run/faillock -p wa -k logins
## 6.2.3.13 deletions
-a always,exit -F arch=b64 -S rename,unlink,unlinkat,renameat -F auid>=1000 -F auid!=unset -k delete
-a always,exit -F arch=b32 -S rename,unlink,unlinkat,renameat -F auid>=1000 -F auid!=unset -k delete
## 6.2.3.14 mandatory access control (AppArmor)
-w /etc/apparmor/ -p wa -k MAC-policy
-w /etc/apparmor.d/ -p wa -k MAC-policy
## 6.2.3.15-18 chcon, setfacl, chacl, usermod
-a always,exit -F path=/usr/bin/chcon -F perm=x -F auid>=1000 -F auid!=unset -k perm_chng
-a always,exit -F path=/usr/sbin/usermod -F perm=x -F auid>=1000 -F auid!=unset -k usermod
## 6.2.3.19 kernel modules
-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -F auid>=1000 -F auid!=unset -k modules
-a always,exit -F path=/usr/bin/kmod -F perm=x -F auid>=1000 -F auid!=unset -k modules
-w /sbin/insmod -p x -k modules
-w /sbin/rmmod -p x -k modules
-w /sbin/modprobe -p x -k modules
RULES
chmod 0640 /etc/audit/rules.d/60-cis.rules
# The rules are final once loaded (-e 2) and processes before auditd are audited too.
echo '-e 2' >/etc/audit/rules.d/99-finalize.rules
chmod 0640 /etc/audit/rules.d/99-finalize.rules
# Compiled into /etc/audit/audit.rules now (augenrules without --load loads nothing into the
# build host's kernel); a rule auditctl could not read fails here.
augenrules >/dev/null
install -d -m 0755 /etc/default/grub.d
echo 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX audit=1 audit_backlog_limit=8192 apparmor=1 security=apparmor"' \
  >/etc/default/grub.d/60-cis.cfg
systemctl enable auditd >/dev/null 2>&1
echo "auditd: enabled, $(grep -c '^-' /etc/audit/rules.d/60-cis.rules) rules"
