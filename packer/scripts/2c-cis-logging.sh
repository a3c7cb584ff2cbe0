#!/usr/bin/env bash
# CIS 6.1: journald keeps its journal on disk, compressed, and hands every line to rsyslog (whose
# files the CloudWatch agent ships); logrotate creates no log file wider than 0640.
set -euo pipefail

install -d -m 0755 /etc/systemd/journald.conf.d
cat >/etc/systemd/journald.conf.d/60-cis.conf <<'CONF'
# CIS Debian 12 level 1, section 6.1.1 (written by the golden image bake)
[Journal]
Storage=persistent
Compress=yes
ForwardToSyslog=yes
CONF
chmod 0644 /etc/systemd/journald.conf.d/60-cis.conf
install -d -m 2755 -g systemd-journal /var/log/journal

# logrotate: the default for every file without its own rule, and the packages' own wider modes.
sed -i -E 's/^create\s*$/create 0640 root adm/' /etc/logrotate.conf
grep -qE '^create 0640 root adm$' /etc/logrotate.conf || echo 'create 0640 root adm' >>/etc/logrotate.conf
sed -i -E 's/^(\s*create\s+)0?6(44|64|60|66)(\s)/\10640\3/' /etc/logrotate.d/*
# rsyslog creates its files root:adm 0640 already (Debian's $FileCreateMode); kept so.
if ! grep -qx '\$FileCreateMode 0640' /etc/rsyslog.conf; then
  echo "logging: /etc/rsyslog.conf does not create its files 0640" >&2
  exit 1
fi
echo "logging: journald persistent and compressed, logrotate creates 0640"
