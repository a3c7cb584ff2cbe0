"""IAM policy documents, as plain functions so tests can read them without the Pulumi runtime."""

from __future__ import annotations

from typing import Any


def metric_namespace(service: str) -> str:
    """The agent's metrics go to one namespace per service; the policy refuses any other."""
    return f"golden-fleet/{service}"


def log_group_name(service: str) -> str:
    return f"/golden-fleet/{service}"


# The CloudWatch agent's writes into the service's log group: streams and events only (the stack
# creates the group, so no logs:CreateLogGroup).
AGENT_LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")


def own_log_group_statement(sid: str, log_group_arn: str, actions: list[str]) -> dict[str, Any]:
    """Allow ``actions`` on the service's own log group and its streams, nothing else; the
    instance policy and the boundary that caps it both say it through this one statement."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": [log_group_arn, f"{log_group_arn}:*"],
    }


def own_metrics_statement(sid: str, service: str) -> dict[str, Any]:
    """Allow metrics into the service's own namespace only (PutMetricData has no resource)."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": metric_namespace(service)}},
    }


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
            own_log_group_statement("WriteOwnLogGroup", log_group_arn, list(AGENT_LOG_ACTIONS)),
            own_metrics_statement("PutOwnMetrics", service),
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


# --- The permissions boundary every role of the program carries ------------------------------
# platform/ creates it in each stack's account (bootstrap/account_access.py); the deploy and
# rollout roles may create, change and pass a role only when it carries it
# (platform/bootstrap/iam_documents.py). docs/explanation/least-privilege.md explains the whole.

# The AWS managed policies the program attaches to its roles: the deploy roles may attach these
# and no other (iam:PolicyARN).
SSM_MANAGED_INSTANCE_CORE = "AmazonSSMManagedInstanceCore"
BOUNDARY_PATH = "/golden-fleet/"

# AmazonSSMManagedInstanceCore's actions (its version v2), which the boundary must let through
# for Session Manager to work; tests/test_iam_analysis.py compares them with the policy itself.
SSM_AGENT_ACTIONS = (
    "ssm:DescribeAssociation", "ssm:GetDeployablePatchSnapshotForInstance", "ssm:GetDocument",
    "ssm:DescribeDocument", "ssm:GetManifest", "ssm:GetParameter", "ssm:GetParameters",
    "ssm:ListAssociations", "ssm:ListInstanceAssociations", "ssm:PutInventory",
    "ssm:PutComplianceItems", "ssm:PutConfigurePackageResult", "ssm:UpdateAssociationStatus",
    "ssm:UpdateInstanceAssociationStatus", "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
    "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
)  # fmt: skip

# Changing a role's boundary, or the boundary policy itself: never, by any role under it.
BOUNDARY_CHANGES = (
    "iam:DeleteRolePermissionsBoundary",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "iam:PutUserPermissionsBoundary",
)
BOUNDARY_POLICY_CHANGES = (
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
)
# At least one action of every privilege-escalation method cloudsplaining knows (Rhino Security
# Labs' and pathfinding.cloud's): tests/test_iam_analysis.py fails when a method gets through.
ESCALATION_ACTIONS = (
    "iam:AddUserToGroup", "iam:AttachGroupPolicy", "iam:AttachRolePolicy",
    "iam:AttachUserPolicy", "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:CreatePolicy",
    "iam:CreatePolicyVersion", "iam:CreateRole", "iam:CreateUser", "iam:PassRole",
    "iam:PutGroupPolicy", "iam:PutRolePolicy", "iam:PutUserPolicy", "iam:SetDefaultPolicyVersion",
    "iam:UpdateAssumeRolePolicy", "iam:UpdateLoginProfile", "sts:AssumeRole",
    "ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate", "ec2:ModifyInstanceAttribute",
    "ec2-instance-connect:SendSSHPublicKey", "ecs:ExecuteCommand", "lambda:UpdateFunctionCode",
    "glue:UpdateDevEndpoint", "sagemaker:CreatePresignedNotebookInstanceUrl",
    "sagemaker:UpdateNotebookInstance", "bedrock-agentcore:InvokeCodeInterpreter",
    "cloudformation:ExecuteChangeSet",
)  # fmt: skip


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


def boundary_policy_name(service: str) -> str:
    return f"{service}-boundary"


def boundary_policy_arn(partition: str, account: str, service: str) -> str:
    """Where platform/ creates the service's boundary, which the program's roles name."""
    return f"arn:{partition}:iam::{account}:policy{BOUNDARY_PATH}{boundary_policy_name(service)}"


def instance_boundary_policy(partition: str, account: str, service: str) -> dict[str, Any]:
    """The most any role of the service may ever do: what its instances do, nothing more.

    A boundary caps a role's identity policies (the effective permissions are their
    intersection: IAM User Guide, "Permissions boundaries for IAM entities"), so a role the
    deploy role creates, or an inline policy it writes, can reach no further than this whatever
    it says. The allows are the instance role's work (Session Manager, the CloudWatch agent into
    the service's own log group and namespace, reading secrets and parameters and decrypting
    through those two services only); the denies hold even if an allow grows: no change to
    any boundary or to this policy, and no action of any known privilege-escalation path.
    """
    log_group = f"arn:{partition}:logs:*:{account}:log-group:{log_group_name(service)}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SessionManagerAndSecrets",
                "Effect": "Allow",
                "Action": sorted({*SSM_AGENT_ACTIONS, "secretsmanager:GetSecretValue",
                                  "ec2:DescribeTags", "ec2:DescribeVolumes"}),
                "Resource": "*",
            },
            own_log_group_statement("OwnLogGroup", log_group, sorted(AGENT_LOG_ACTIONS)),
            own_metrics_statement("OwnMetrics", service),
            {
                "Sid": "DecryptThroughSecretStores",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringLike": {"kms:ViaService": [
                    "secretsmanager.*.amazonaws.com", "ssm.*.amazonaws.com"]}},
            },
            {
                "Sid": "KeepEveryBoundary",
                "Effect": "Deny",
                "Action": list(BOUNDARY_CHANGES),
                "Resource": "*",
            },
            {
                "Sid": "KeepThisPolicy",
                "Effect": "Deny",
                "Action": list(BOUNDARY_POLICY_CHANGES),
                "Resource": boundary_policy_arn(partition, account, service),
            },
            {
                "Sid": "NoPathToMorePrivilege",
                "Effect": "Deny",
                "Action": list(ESCALATION_ACTIONS),
                "Resource": "*",
            },
        ],
    }  # fmt: skip
