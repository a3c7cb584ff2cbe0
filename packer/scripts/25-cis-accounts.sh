#!/usr/bin/env bash
# CIS 5.3-5.5: password ageing (also of existing accounts), hashing, quality and history, lockout
# after failed logins (faillock), su for an empty group only, umask 027 wherever a shell reads it.
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
difok = 2
maxrepeat = 3
maxsequence = 3
dictcheck = 1
enforcing = 1
enforce_for_root
CONF

# CIS 5.3.3.3: the last 24 passwords cannot be used again, root's included.
cat >/etc/security/pwhistory.conf <<'CONF'
# CIS 5.3.3.3 (written by the golden image bake)
remember = 24
enforce_for_root
CONF
cat >/usr/share/pam-configs/pwhistory <<'PAM'
Name: Remember the last 24 passwords (CIS)
Default: yes
Priority: 1000
Password-Type: Primary
Password:
	requisite pam_pwhistory.so remember=24 enforce_for_root try_first_pass use_authtok
PAM

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
pam-auth-update --enable faillock faillock_notify pwquality pwhistory tmpdir --package

# CIS 5.2.7: su only for members of an empty group (root is not asked).
groupadd -f -r sugroup
gpasswd -M '' sugroup >/dev/null
if ! grep -qE '^auth\s+required\s+pam_wheel\.so\s+use_uid\s+group=sugroup' /etc/pam.d/su; then
  sed -i '/^auth\s\+sufficient\s\+pam_rootok\.so/a auth       required   pam_wheel.so use_uid group=sugroup' /etc/pam.d/su
fi

# CIS 5.4.1.x: the ages apply to the accounts that exist already, not only to new ones: root and
# every login account (uid >= 1000).
awk -F: '($3 == 0 || ($3 >= 1000 && $3 < 65534)) {print $1}' /etc/passwd | while read -r user; do
  chage --maxdays 365 --mindays 1 --warndays 7 --inactive 30 "$user"
done

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
# CIS 5.4.3.3: umask 027 in every file a shell reads (login.defs and profile.d above).
grep -qx 'umask 027' /etc/bash.bashrc || printf '\n# CIS 5.4.3.3 (written by the golden image bake)\numask 027\n' >>/etc/bash.bashrc
for home in /home/*/; do [ -d "$home" ] && chmod 0750 "$home"; done
chmod 0700 /root
echo "accounts: login.defs, pwquality, faillock set"
