#!/usr/bin/env bash
# CIS 5.1 / issue 19: no SSH daemon in the image (operators use SSM Session Manager): openssh-server
# purged with its host keys, config and units, unless the stack keeps it (GF_KEEP_SSHD=true).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
if [ "${GF_KEEP_SSHD:-false}" = "true" ]; then
  echo "remove-sshd: SKIPPED - image.keepSshd is true; sshd stays with its CIS drop-in"
  exit 0
fi

# Packer is connected over SSH while this runs. Purging stops ssh.service, whose KillMode=process
# (Debian's unit) ends only the listener: this session and Packer's connection stay up, and the
# next scripts arrive over that same connection (Packer's scp runs the client's scp, which stays).
# On the local build host the bake started sshd itself and package scripts start and stop nothing.
if dpkg -s openssh-server >/dev/null 2>&1; then
  apt-get -y -q purge openssh-server openssh-sftp-server
fi
# fail2ban's one jail (Debian's default) watches sshd's logins: with no sshd it would guard nothing.
if dpkg -s fail2ban >/dev/null 2>&1; then
  apt-get -y -q purge fail2ban
fi
# apt recreates its lists' auxfiles directory after 90-cleanup emptied the lists.
rm -rf /var/lib/apt/lists/auxfiles
# What the purge leaves because the bake wrote it, not the package.
rm -rf /etc/ssh/sshd_config /etc/ssh/sshd_config.d /etc/ssh/ssh_host_* /etc/systemd/system/ssh.service.d
rm -f /etc/systemd/system/sshd.service /etc/systemd/system/multi-user.target.wants/ssh.service \
  /etc/systemd/system/sockets.target.wants/ssh.socket
# The purge wrote to dpkg's and apt's logs after the clean-up emptied them (and apt created its
# anew, 0644): emptied again, and 0640 as 90-cleanup leaves every log file.
find /var/log -type f \( -name 'dpkg.log' -o -path '/var/log/apt/*' \) -exec truncate -s 0 {} + \
  -exec chmod g-wx,o-rwx {} +
echo "remove-sshd: openssh-server purged; no SSH daemon, host keys or sshd config in the image"
