"""IAM policy documents, as plain functions so tests can read them without the Pulumi runtime."""

from __future__ import annotations

from typing import Any


def metric_namespace(service: str) -> str:
    """The agent's metrics go to one namespace per service; the policy refuses any other."""
    return f"golden-fleet/{service}"


def log_group_name(service: str) -> str:
    return f"/golden-fleet/{service}"


def ec2_assume_role_policy() -> dict[str, Any]:
    """Only EC2 may assume the instance role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def cloudwatch_agent_policy(log_group_arn: str, service: str) -> dict[str, Any]:
    """What the CloudWatch agent needs, and nothing more.

    Narrower than AWS's ``CloudWatchAgentServerPolicy``: logs only into the service's own log
    group (created by the stack, so no ``logs:CreateLogGroup``), metrics only into the service's
    namespace, no ``ssm:GetParameter`` (the agent's config is baked into the image).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnLogGroup",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                "Resource": [log_group_arn, f"{log_group_arn}:*"],
            },
            {
                "Sid": "PutOwnMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": metric_namespace(service)}},
            },
            {
                # The agent reads its own instance's tags and volumes to label metrics;
                # these Describe calls support no resource-level restriction.
                "Sid": "DescribeForDimensions",
                "Effect": "Allow",
                "Action": ["ec2:DescribeTags", "ec2:DescribeVolumes"],
                "Resource": "*",
            },
        ],
    }
