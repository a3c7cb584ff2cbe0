#!/usr/bin/env bash
# The sample service at the image's version: its own unprivileged user, its files read-only under
# /opt/golden-app, its settings in /etc/default/golden-app, and a systemd unit enabled at boot.
set -euo pipefail

: "${GF_VERSION:?}" "${GF_APP_PORT:?}" "${GF_APP_SRC:?}"
export DEBIAN_FRONTEND=noninteractive
apt-get -y -q install --no-install-recommends python3-minimal

if ! id golden-app >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin golden-app
fi
install -d -o root -g root -m 0755 /opt/golden-app
install -o root -g root -m 0644 "$GF_APP_SRC/server.py" /opt/golden-app/server.py
install -o root -g root -m 0644 "$GF_APP_SRC/golden-app.service" /etc/systemd/system/golden-app.service
printf 'GF_APP_VERSION=%s\nGF_APP_PORT=%s\nGF_APP_BIND=0.0.0.0\n' "$GF_VERSION" "$GF_APP_PORT" >/etc/default/golden-app
chmod 0644 /etc/default/golden-app
systemctl enable golden-app.service >/dev/null 2>&1
echo "app: golden-app ${GF_VERSION} on port ${GF_APP_PORT}, enabled"
