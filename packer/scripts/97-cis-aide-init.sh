#!/usr/bin/env bash
# CIS 6.3.1: the AIDE database initialized as the bake's last content step, so it describes exactly
# the image every instance starts from (only the image tests run after it, and touch no content).
set -euo pipefail

: "${GF_SERVICE:?}"
# The service's data directory changes by design (the foundation's exclusions are in 2d-cis-aide.sh).
printf '# Written by the golden image bake: the service data directory\n!/var/lib/%s/\n' "$GF_SERVICE" \
  >/etc/aide/aide.conf.d/99_golden-fleet_service
chmod 0644 /etc/aide/aide.conf.d/99_golden-fleet_service

aide --config /etc/aide/aide.conf --init >/dev/null
mv -f /var/lib/aide/aide.db.new /var/lib/aide/aide.db
chmod 0600 /var/lib/aide/aide.db
echo "aide-init: database of $(aide --config /etc/aide/aide.conf --version 2>&1 | head -1 | tr -d '\n') written"
