#!/usr/bin/env bash
# CIS 1.1.2: /tmp its own tmpfs, /dev/shm and /var/tmp mounted nodev,nosuid,noexec - as systemd
# units and one fstab line, so every boot mounts them so (nothing is mounted in the build itself).
set -euo pipefail

# /tmp: systemd's own tmp.mount (shipped, not enabled, on Debian 12) with noexec added.
sed -e 's/^Options=.*/Options=mode=1777,strictatime,nosuid,nodev,noexec,size=50%%,nr_inodes=1m/' \
  /usr/share/systemd/tmp.mount >/etc/systemd/system/tmp.mount
grep -qx 'Options=mode=1777,strictatime,nosuid,nodev,noexec,size=50%%,nr_inodes=1m' /etc/systemd/system/tmp.mount

# /var/tmp keeps its files across reboots (a tmpfs would not): bound onto itself with the options.
cat >/etc/systemd/system/var-tmp.mount <<'UNIT'
[Unit]
Description=/var/tmp without devices, setuid or execution (CIS 1.1.2.5)
DefaultDependencies=no
Conflicts=umount.target
Before=local-fs.target umount.target
RequiresMountsFor=/var

[Mount]
What=/var/tmp
Where=/var/tmp
Type=none
Options=bind,nodev,nosuid,noexec

[Install]
WantedBy=local-fs.target
UNIT
chmod 0644 /etc/systemd/system/tmp.mount /etc/systemd/system/var-tmp.mount
systemctl enable tmp.mount var-tmp.mount >/dev/null 2>&1

# /dev and /dev/shm are mounted by systemd before fstab is read; systemd-remount-fs applies an
# fstab line for an API file system as a remount with these options. Nothing runs from /dev.
sed -i -E '\|^\S+\s+/dev(/shm)?\s|d' /etc/fstab
echo 'devtmpfs /dev devtmpfs defaults,rw,nosuid,noexec,mode=0755 0 0' >>/etc/fstab
echo 'tmpfs /dev/shm tmpfs defaults,rw,nodev,nosuid,noexec 0 0' >>/etc/fstab
echo "mounts: /tmp (tmpfs), /var/tmp and /dev/shm nodev,nosuid,noexec, /dev nosuid,noexec at boot"
