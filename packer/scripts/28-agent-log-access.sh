#!/usr/bin/env bash
# The CloudWatch agent's user, cwagent, created as the agent's package would and put in group adm,
# so the agent (run_as_user cwagent) can read the root:adm 0640 logs rsyslog writes.
set -euo pipefail

# The agent's Debian preinst creates group and user cwagent only when they are missing, and the
# agent switches to run_as_user with the user's supplementary groups from /etc/group (setgroups
# before setuid: aws/amazon-cloudwatch-agent translator/cmdutil/userutil_linux.go, switchUser).
# Creating the user here, before the package, makes the membership part of every image, including
# those built without a route to the agent download.
if ! getent group cwagent >/dev/null; then
  groupadd -r cwagent
fi
if ! id cwagent >/dev/null 2>&1; then
  useradd -r -M -d /home/cwagent -g cwagent -c "Cloudwatch Agent" -s /usr/sbin/nologin cwagent
fi
# Debian's rsyslog creates its files root:adm 0640 ($FileGroup adm, $FileCreateMode 0640 in
# /etc/rsyslog.conf); adm is Debian's group for reading system logs, and nothing else.
usermod -a -G adm cwagent
echo "agent-log-access: cwagent in group adm ($(id -nG cwagent))"
