#!/usr/bin/env bash
# CIS 5.3-5.5: password ageing and hashing in login.defs, password quality, lockout after failed
# logins (faillock), a strict umask and private home directories.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get -y -q install --no-install-recommends libpam-pwquality libpam-tmpdir

defs=/etc/login.defs
set_def() { # key value
  if grep -qE "^$1\s" "$defs"; then sed -i -E "s|^$1\s.*|$1\t$2|" "$defs"; else printf '%s\t%s\n' "$1" "$2" >>"$defs"; fi
}
set_def PASS_MAX_DAYS 365
set_def PASS_MIN_DAYS 1
set_def PASS_WARN_AGE 7
set_def UMASK 027
set_def ENCRYPT_METHOD YESCRYPT
set_def SHA_CRYPT_MIN_ROUNDS 5000
set_def SHA_CRYPT_MAX_ROUNDS 10000
set_def YESCRYPT_COST_FACTOR 7
useradd -D -f 30

install -d -m 0755 /etc/security/pwquality.conf.d
cat >/etc/security/pwquality.conf.d/60-cis.conf <<'CONF'
# CIS 5.4.1 (written by the golden image bake)
minlen = 14
minclass = 4
maxrepeat = 3
enforcing = 1
CONF

cat >/etc/security/faillock.conf <<'CONF'
# CIS 5.4.2 (written by the golden image bake)
deny = 5
unlock_time = 900
fail_interval = 900
CONF

# pam_faillock through pam-auth-update profiles (as the CIS benchmark gives them), so package
# upgrades keep them: preauth and account check first, authfail after pam_unix.
cat >/usr/share/pam-configs/faillock <<'PAM'
Name: Lock accounts after failed logins (CIS)
Default: yes
Priority: 0
Auth-Type: Additional
Auth:
	[default=die] pam_faillock.so authfail
PAM
cat >/usr/share/pam-configs/faillock_notify <<'PAM'
Name: Count failed logins and reset the count on success (CIS)
Default: yes
Priority: 1024
Auth-Type: Primary
Auth:
	requisite pam_faillock.so preauth
Account-Type: Primary
Account:
	required pam_faillock.so
PAM
pam-auth-update --enable faillock faillock_notify pwquality tmpdir --package

# Home directories private; new ones too.
sed -i -E 's/^#?\s*DIR_MODE=.*/DIR_MODE=0750/' /etc/adduser.conf
set_def HOME_MODE 0750
# Interactive shells: idle sessions end after 15 minutes, new files are private, no core files.
cat >/etc/profile.d/60-cis.sh <<'SH'
# CIS 5.4.5 (written by the golden image bake)
TMOUT=900
readonly TMOUT
export TMOUT
umask 027
ulimit -c 0
SH
chmod 0644 /etc/profile.d/60-cis.sh
for home in /home/*/; do [ -d "$home" ] && chmod 0750 "$home"; done
chmod 0700 /root
echo "accounts: login.defs, pwquality, faillock set"
