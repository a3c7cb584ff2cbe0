#!/usr/bin/env bash
# CloudWatch agent configuration of the service (application layer): the agents themselves are in
# the foundation (30-agents.sh), the service's log group and namespace only known per release.
set -euo pipefail

# The CloudWatch agent's configuration is baked too: logs into the service's own log group and
# metrics into the service's own namespace, the only ones the instance role may write to
# (components/policies.py). It is written whether or not the agent can be installed, so the
# image tests check that the agent's user can read every file it ships (99-image-tests.sh).
: "${GF_SERVICE:?}"
cw_config=/etc/golden-fleet/cloudwatch-agent.json
install -d -m 0755 /etc/golden-fleet
cat >"$cw_config" <<JSON
{
  "agent": {"metrics_collection_interval": 60, "run_as_user": "cwagent"},
  "metrics": {
    "namespace": "golden-fleet/${GF_SERVICE}",
    "append_dimensions": {"AutoScalingGroupName": "\${aws:AutoScalingGroupName}",
                          "InstanceId": "\${aws:InstanceId}"},
    "metrics_collected": {
      "mem": {"measurement": ["mem_used_percent"]},
      "disk": {"measurement": ["used_percent"], "resources": ["/"]}
    }
  },
  "logs": {
    "logs_collected": {
      "files": {
        "collect_list": [
          {"file_path": "/var/log/syslog", "log_group_name": "/golden-fleet/${GF_SERVICE}",
           "log_stream_name": "{instance_id}/syslog"},
          {"file_path": "/var/log/auth.log", "log_group_name": "/golden-fleet/${GF_SERVICE}",
           "log_stream_name": "{instance_id}/auth"}
        ]
      }
    }
  }
}
JSON

ctl=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
if [ -x "$ctl" ]; then
  # fetch-config without -s translates the configuration without starting the agent.
  "$ctl" -a fetch-config -m ec2 -c "file:$cw_config" >/dev/null
  echo "agent-config: CloudWatch agent configured for ${GF_SERVICE}"
else
  echo "agent-config: configuration written for ${GF_SERVICE}; the agent is not installed (foundation baked without a route to its download)"
fi
