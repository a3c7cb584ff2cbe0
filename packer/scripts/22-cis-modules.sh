#!/usr/bin/env bash
# CIS 1.1.1 and 3.5: unused filesystems, USB/firewire storage and rare network protocols cannot
# be loaded (`install ... /bin/false` stops explicit loads too, not only autoloading); USBGuard.
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

# USB devices beyond storage: USBGuard authorizes none (an empty rule set, implicit block, also
# for controllers present at boot). EC2 instances have no USB bus; the policy costs one idle
# daemon and holds if the image ever runs where one exists.
export DEBIAN_FRONTEND=noninteractive
apt-get -y -q install --no-install-recommends usbguard
usbguard_conf=/etc/usbguard/usbguard-daemon.conf
sed -i -E 's/^ImplicitPolicyTarget=.*/ImplicitPolicyTarget=block/; s/^PresentDevicePolicy=.*/PresentDevicePolicy=apply-policy/;
  s/^PresentControllerPolicy=.*/PresentControllerPolicy=apply-policy/; s/^InsertedDevicePolicy=.*/InsertedDevicePolicy=apply-policy/;
  s/^RestoreControllerDeviceState=.*/RestoreControllerDeviceState=false/; s/^IPCAllowedGroups=.*/IPCAllowedGroups=root/' "$usbguard_conf"
: >/etc/usbguard/rules.conf
chmod 0600 /etc/usbguard/rules.conf "$usbguard_conf"
systemctl enable usbguard.service >/dev/null 2>&1
echo "modules: ${#modules[@]} blacklisted; USBGuard blocks every USB device"
