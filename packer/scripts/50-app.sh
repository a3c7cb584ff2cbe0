#!/usr/bin/env bash
# The application: the Debian package the wrapper verified (packer/baking/package.py), installed
# with apt, its unit enabled behind golden-fleet-environment.service, which writes its environment.
set -euo pipefail

: "${GF_SERVICE:?}" "${GF_VERSION:?}" "${GF_APP_UPLOAD:?}" "${GF_APP_SHA256:?}"
unit="${GF_APP_UNIT:-${GF_SERVICE}.service}"
package="$GF_APP_UPLOAD/package.deb"
reader=/usr/local/lib/golden-fleet/boot-environment
fail() { echo "app: $*" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

# The upload is the file whose digest the wrapper verified and tags the image with.
echo "$GF_APP_SHA256  $package" | sha256sum --check --quiet - || fail "upload is not sha256 $GF_APP_SHA256"
# Dependencies come from the archive now, never at boot; python3-boto3 is the boot reader's.
apt-get -q update
apt-get -y -q -o Dpkg::Options::=--force-confold install --no-install-recommends \
  "$package" python3-minimal python3-boto3
installed="$(dpkg-query -W -f='${Version}' "$GF_SERVICE")"

# The unit the package ships, and the user it runs as: never root.
unit_file="$(dpkg -L "$GF_SERVICE" | grep -E "^/(usr/)?lib/systemd/system/${unit//./\\.}\$" | head -n 1 || true)"
[ -n "$unit_file" ] || fail "package $GF_SERVICE ships no /lib/systemd/system/$unit"
user="$(sed -n 's/^[[:space:]]*User=[[:space:]]*//p' "$unit_file" | tail -n 1)"
[ -n "$user" ] && [ "$user" != root ] || fail "$unit must run as a non-root User= (it has '${user:-none}')"
id "$user" >/dev/null 2>&1 || fail "$unit's User=$user does not exist after installing the package"

# The boot-environment reader and its unit: the stack's settings and secrets, read at boot.
install -d -o root -g root -m 0755 /usr/local/lib/golden-fleet /etc/golden-fleet
install -o root -g root -m 0755 "$GF_APP_UPLOAD/boot-environment.py" "$reader"
# The image test of the app's answer (99-image-tests.sh); kept, as AIDE's database records it.
install -o root -g root -m 0755 "$GF_APP_UPLOAD/service-check.py" /usr/local/lib/golden-fleet/service-check
cat >/etc/systemd/system/golden-fleet-environment.service <<UNIT
# The stack's environment and secrets for $unit: /etc/golden-fleet/boot-config.json (user data,
# references only) -> /run/$GF_SERVICE/environment (0600, $user). A failure keeps $unit down.
[Unit]
Description=golden-fleet boot environment of $GF_SERVICE
After=cloud-init.service network-online.target
Wants=network-online.target
Before=$unit

[Service]
Type=oneshot
RemainAfterExit=yes
# The reader retries a transient refusal (IAM propagation, throttling) for 180 s itself, plus
# one last attempt (its client: 5 tries of at most 15 s).
TimeoutStartSec=300
ExecStart=/usr/bin/python3 $reader --service $GF_SERVICE --user $user

[Install]
WantedBy=multi-user.target
UNIT
install -d -o root -g root -m 0755 "/etc/systemd/system/$unit.d"
cat >"/etc/systemd/system/$unit.d/golden-fleet.conf" <<UNIT
# golden-fleet: $unit starts only after its environment was written, and reads it last.
[Unit]
Requires=golden-fleet-environment.service
After=golden-fleet-environment.service

[Service]
EnvironmentFile=/run/$GF_SERVICE/environment
# A unit with RuntimeDirectory=$GF_SERVICE would otherwise have systemd remove /run/$GF_SERVICE
# when it stops, and a restart would then find no environment (systemd.exec(5)).
RuntimeDirectoryPreserve=yes
UNIT
chmod 0644 /etc/systemd/system/golden-fleet-environment.service "/etc/systemd/system/$unit.d/golden-fleet.conf"

# What was baked, for the image tests and for anyone on the instance.
python3 - "$GF_SERVICE" "$installed" "$GF_APP_SHA256" "$unit" "$unit_file" "$user" <<'PY' >/etc/golden-fleet/application.json
import json, sys
keys = ("package", "version", "sha256", "unit", "unit_file", "user")
print(json.dumps(dict(zip(keys, sys.argv[1:])), indent=2, sort_keys=True))
PY
chmod 0644 /etc/golden-fleet/application.json
systemctl enable golden-fleet-environment.service "$unit" >/dev/null 2>&1
echo "app: ${GF_SERVICE} ${installed} (sha256 ${GF_APP_SHA256:0:12}) as $user, $unit enabled"
