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


def app_secrets_policy(
    secret_arns: list[str], parameter_arns: list[str], region: str, partition: str
) -> dict[str, Any] | None:
    """Read exactly the configured secrets and parameters, and decrypt only for them.

    ``kms:Decrypt`` is allowed only when Secrets Manager or Parameter Store calls KMS on the
    instance's behalf (``kms:ViaService``) and only for these resources, by the encryption
    context each service sends: Secrets Manager's ``SecretARN`` (Secrets Manager User Guide,
    "Secret encryption and decryption", section "Secrets Manager encryption context": it
    sends SecretARN and SecretVersionId) and Parameter Store's ``PARAMETER_ARN`` (Systems
    Manager User Guide / KMS Developer Guide, "AWS KMS encryption for Parameter Store
    SecureString parameters", section "Parameter Store encryption context"). The key itself
    may be any key of the region (the AWS managed aws/secretsmanager and aws/ssm keys included),
    so the resource is the region's keys, never "*". None when nothing is configured: the role
    then holds no statement about secrets at all.
    """
    if not secret_arns and not parameter_arns:
        return None
    keys = f"arn:{partition}:kms:{region}:*:key/*"
    statements: list[dict[str, Any]] = []
    if secret_arns:
        statements += [
            {
                "Sid": "ReadConfiguredSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(secret_arns),
            },
            {
                "Sid": "DecryptConfiguredSecrets",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": keys,
                # A single-valued context key: StringEquals with a list matches any of them.
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
                        "kms:EncryptionContext:SecretARN": sorted(secret_arns),
                    }
                },
            },
        ]
    if parameter_arns:
        statements += [
            {
                "Sid": "ReadConfiguredParameters",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": sorted(parameter_arns),
            },
            {
                "Sid": "DecryptConfiguredParameters",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": keys,
                # A single-valued context key: StringEquals with a list matches any of them.
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"ssm.{region}.amazonaws.com",
                        "kms:EncryptionContext:PARAMETER_ARN": sorted(parameter_arns),
                    }
                },
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


# Every action that returns a parameter's value.
PARAMETER_READS = (
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
)


def parameter_fence_policy(parameter_arns: list[str]) -> dict[str, Any]:
    """Deny reading any parameter but the configured ones.

    AmazonSSMManagedInstanceCore (attached for Session Manager) allows ``ssm:GetParameter``
    and ``ssm:GetParameters`` on ``"*"``, and the AWS managed ``aws/ssm`` key lets any principal
    of the account decrypt through Parameter Store: without this fence every instance could
    read every SecureString of the account. An explicit deny wins over any allow (IAM User
    Guide, "Policy evaluation logic").
    """
    scope: dict[str, Any] = (
        {"NotResource": sorted(parameter_arns)} if parameter_arns else {"Resource": "*"}
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "NoOtherParameters",
                "Effect": "Deny",
                "Action": list(PARAMETER_READS),
                **scope,
            }
        ],
    }
