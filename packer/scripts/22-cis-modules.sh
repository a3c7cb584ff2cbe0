#!/usr/bin/env bash
# CIS 1.1.1 and 3.5: unused filesystems, USB/firewire storage and rare network protocols cannot
# be loaded (`install ... /bin/false` stops explicit loads too, not only autoloading).
set -euo pipefail

modules=(cramfs freevxfs hfs hfsplus jffs2 udf usb-storage firewire-core firewire-ohci firewire-sbp2 dccp sctp rds tipc)
{
  echo "# CIS: modules this image never needs (written by the golden image bake)"
  for module in "${modules[@]}"; do
    echo "install ${module} /bin/false"
    echo "blacklist ${module}"
  done
} >/etc/modprobe.d/60-cis.conf
chmod 0644 /etc/modprobe.d/60-cis.conf
echo "modules: ${#modules[@]} blacklisted"
