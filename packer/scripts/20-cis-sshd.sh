#!/usr/bin/env bash
# CIS 5.2: sshd hardening in one drop-in (root and passwords off, short grace, strong crypto),
# plus a legal banner. The drop-in wins because sshd_config includes sshd_config.d/ first.
set -euo pipefail

install -d -m 0755 /etc/ssh/sshd_config.d
cat >/etc/ssh/sshd_config.d/10-cis.conf <<'CONF'
# CIS Debian 12 level 1, section 5.2 (written by the golden image bake)
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
HostbasedAuthentication no
IgnoreRhosts yes
PermitUserEnvironment no
MaxAuthTries 4
MaxSessions 10
MaxStartups 10:30:60
LoginGraceTime 60
ClientAliveInterval 300
ClientAliveCountMax 3
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
GatewayPorts no
UsePAM yes
LogLevel VERBOSE
Banner /etc/issue.net
Ciphers aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr,chacha20-poly1305@openssh.com
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512,hmac-sha2-256
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,ecdh-sha2-nistp521,ecdh-sha2-nistp384,ecdh-sha2-nistp256,diffie-hellman-group-exchange-sha256
CONF
chmod 0600 /etc/ssh/sshd_config.d/10-cis.conf
chmod 0600 /etc/ssh/sshd_config

banner='Authorized access only. This system is monitored and all activity is logged; unauthorized use is prohibited and may lead to legal action and criminal prosecution.'
echo "$banner" >/etc/issue
echo "$banner" >/etc/issue.net
chmod 0644 /etc/issue /etc/issue.net

# Host keys are removed at the end of the bake; each instance makes its own before sshd starts.
install -d -m 0755 /etc/systemd/system/ssh.service.d
cat >/etc/systemd/system/ssh.service.d/10-host-keys.conf <<'CONF'
[Service]
ExecStartPre=/usr/bin/ssh-keygen -A
CONF
echo "sshd: CIS drop-in written"
