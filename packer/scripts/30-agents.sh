#!/usr/bin/env bash
# SSM agent and CloudWatch agent from their official AWS download locations, each package
# checked against the checksum AWS publishes next to it before it is installed. Foundation layer:
# the per-service configuration is the application layer's (55-agent-config.sh).
set -euo pipefail

region="${GF_AGENT_REGION:-us-east-1}"
ssm_url="https://s3.${region}.amazonaws.com/amazon-ssm-${region}/latest/debian_amd64/amazon-ssm-agent.deb"
cw_url="https://amazoncloudwatch-agent-${region}.s3.${region}.amazonaws.com/debian/amd64/latest/amazon-cloudwatch-agent.deb"

# Without a route to the download locations (the local bake has none) the step says so and is
# skipped; an image built that way is fine to test but not what ships.
if ! curl -fsS --head --connect-timeout 5 --max-time 10 -o /dev/null "$ssm_url" 2>/dev/null; then
  echo "agents: SKIPPED - no network route to the AWS agent downloads; SSM and CloudWatch agents not installed"
  exit 0
fi

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

fetch_verified() { # url file
  curl -fsSL --retry 3 -o "$workdir/$2" "$1"
  curl -fsSL --retry 3 -o "$workdir/$2.sha256" "$1.sha256"
  expected="$(awk '{print $1}' "$workdir/$2.sha256" | tr -d '[:space:]')"
  actual="$(sha256sum "$workdir/$2" | awk '{print $1}')"
  if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
    echo "agents: checksum mismatch for $1 (expected '$expected', got '$actual')" >&2
    exit 1
  fi
}

if ! dpkg -s amazon-ssm-agent >/dev/null 2>&1; then
  fetch_verified "$ssm_url" amazon-ssm-agent.deb
  dpkg -i "$workdir/amazon-ssm-agent.deb"
fi
if ! dpkg -s amazon-cloudwatch-agent >/dev/null 2>&1; then
  fetch_verified "$cw_url" amazon-cloudwatch-agent.deb
  dpkg -i "$workdir/amazon-cloudwatch-agent.deb"
fi

systemctl enable amazon-ssm-agent amazon-cloudwatch-agent >/dev/null 2>&1
echo "agents: SSM and CloudWatch agents installed and verified (configured by the application layer)"
