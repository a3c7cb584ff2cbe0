#!/usr/bin/env bash
# CIS 1.5.1: no core dumps, neither through the limits PAM applies
# nor through systemd-coredump.
set -euo pipefail

install -d -m 0755 /etc/security/limits.d /etc/systemd/coredump.conf.d
printf '# CIS: no core dumps\n* hard core 0\n* soft core 0\n' >/etc/security/limits.d/60-cis-coredump.conf
grep -q '^\* hard core 0' /etc/security/limits.conf || printf '* hard core 0\n* soft core 0\n' >>/etc/security/limits.conf
printf '[Coredump]\nStorage=none\nProcessSizeMax=0\n' >/etc/systemd/coredump.conf.d/60-cis.conf
echo "coredumps: disabled"
