#!/usr/bin/env bash
# CIS 6.3: AIDE configured (Debian's rules plus what changes by design excluded) and checked daily
# by its systemd timer; the database is initialized last, in 97-cis-aide-init.sh.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
# aide-common holds Debian's configuration, aideinit and the daily check (aide is in 10-baseline).
apt-get -y -q install --no-install-recommends aide aide-common

# Changes by design: logs, runtime state, temporary files, agents' and daemons' state (the
# service's own data directory is added by the application layer, 97-cis-aide-init.sh).
cat >/etc/aide/aide.conf.d/99_golden-fleet_exclusions <<'CONF'
# Written by the golden image bake: what changes on a running instance by design.
!/var/log/
!/run/
!/tmp/
!/var/tmp/
!/var/lib/amazon/
!/var/lib/chrony/
!/var/lib/sysstat/
!/var/spool/
!/var/cache/
CONF
chmod 0644 /etc/aide/aide.conf.d/99_golden-fleet_exclusions
# CIS 6.3 and FIPS-grade digests: sha512 rather than every algorithm AIDE knows (Debian's `H`).
sed -i -E 's/^Checksums\s*=.*/Checksums = sha512/' /etc/aide/aide.conf
grep -qx 'Checksums = sha512' /etc/aide/aide.conf
# The check itself: CIS 6.3.2 asks for a regular check; Debian's timer runs it daily.
systemctl enable dailyaidecheck.timer >/dev/null 2>&1
aide --config /etc/aide/aide.conf --config-check
echo "aide: configured, daily check enabled (database initialized at the end of the bake)"
