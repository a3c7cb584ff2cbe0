"""The roles' trust and permission documents: plain functions, no Pulumi runtime.

Every permission is written out (no ``*`` action). The deployment and rollout roles run
``pulumi up`` of the main program, so they get the create/read/update/delete actions of each
resource type the program registers (``ACTIONS_BY_TYPE``; tests/test_platform.py fails when the
program registers a type this table lacks), plus what the instance refresh command, the bake
(staging only) and the release command call directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

GITHUB_ISSUER = "token.actions.githubusercontent.com"
PULUMI_ISSUER = "api.pulumi.com/oidc"
GITHUB_AUDIENCE = "sts.amazonaws.com"
MAIN_PROJECT = "golden-fleet"
DEFAULT_SESSION_S = 3600

_LT = ["ec2:CreateLaunchTemplate", "ec2:CreateLaunchTemplateVersion", "ec2:DeleteLaunchTemplate",
       "ec2:DeleteLaunchTemplateVersions", "ec2:DescribeLaunchTemplates",
       "ec2:DescribeLaunchTemplateVersions", "ec2:ModifyLaunchTemplate",
       "ec2:GetLaunchTemplateData", "ec2:CreateTags", "ec2:DeleteTags", "ec2:RunInstances",
       "iam:PassRole"]  # fmt: skip
_SG = ["ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:DescribeSecurityGroups",
       "ec2:DescribeSecurityGroupRules", "ec2:AuthorizeSecurityGroupIngress",
       "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
       "ec2:RevokeSecurityGroupEgress", "ec2:ModifySecurityGroupRules", "ec2:CreateTags",
       "ec2:DeleteTags", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs"]  # fmt: skip
_S3 = ["s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:GetBucketLocation",
       "s3:GetBucketTagging", "s3:PutBucketTagging", "s3:GetBucketPolicy", "s3:PutBucketPolicy",
       "s3:DeleteBucketPolicy", "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration",
       "s3:GetBucketOwnershipControls", "s3:PutBucketOwnershipControls",
       "s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock",
       "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration",
       "s3:GetBucketVersioning", "s3:PutBucketVersioning", "s3:GetBucketAcl",
       "s3:GetBucketCORS", "s3:GetBucketWebsite", "s3:GetBucketLogging",
       "s3:GetAccelerateConfiguration", "s3:GetBucketRequestPayment",
       "s3:GetReplicationConfiguration", "s3:GetBucketObjectLockConfiguration"]  # fmt: skip
_LB = ["elasticloadbalancing:DescribeLoadBalancers",
       "elasticloadbalancing:DescribeLoadBalancerAttributes",
       "elasticloadbalancing:DescribeTargetGroups",
       "elasticloadbalancing:DescribeTargetGroupAttributes",
       "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerAttributes",
       "elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeTargetHealth",
       "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"]  # fmt: skip
_IAM = ["iam:GetRole", "iam:TagRole", "iam:UntagRole", "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole"]  # fmt: skip

ACTIONS_BY_TYPE: Mapping[str, tuple[str, ...]] = {
    "aws:autoscaling/group:Group": (
        "autoscaling:CreateAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:DeleteAutoScalingGroup", "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeScalingActivities", "autoscaling:CreateOrUpdateTags",
        "autoscaling:DeleteTags", "autoscaling:AttachLoadBalancerTargetGroups",
        "autoscaling:DetachLoadBalancerTargetGroups", "autoscaling:SetInstanceProtection",
        "autoscaling:EnableMetricsCollection", "autoscaling:DisableMetricsCollection",
        "autoscaling:DescribeLoadBalancerTargetGroups", *_LT, *_LB),
    "aws:autoscaling/policy:Policy": (
        "autoscaling:PutScalingPolicy", "autoscaling:DeletePolicy",
        "autoscaling:DescribePolicies"),
    "aws:cloudwatch/logGroup:LogGroup": (
        "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:DescribeLogGroups",
        "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy", "logs:AssociateKmsKey",
        "logs:DisassociateKmsKey", "logs:TagResource", "logs:UntagResource",
        "logs:ListTagsForResource", "logs:ListTagsLogGroup"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (
        "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
        "cloudwatch:TagResource", "cloudwatch:UntagResource", "cloudwatch:ListTagsForResource"),
    "aws:ec2/amiLaunchPermission:AmiLaunchPermission": (
        "ec2:ModifyImageAttribute", "ec2:DescribeImageAttribute", "ec2:DescribeImages"),
    "aws:ec2/launchTemplate:LaunchTemplate": tuple(_LT),
    "aws:ec2/securityGroup:SecurityGroup": tuple(_SG),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": tuple(_SG),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": tuple(_SG),
    "aws:iam/instanceProfile:InstanceProfile": (
        "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:GetInstanceProfile",
        "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
        "iam:TagInstanceProfile", "iam:UntagInstanceProfile", *_IAM),
    "aws:iam/role:Role": (
        "iam:CreateRole", "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy",
        *_IAM),
    "aws:iam/rolePolicy:RolePolicy": (
        "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", *_IAM),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (
        "iam:AttachRolePolicy", "iam:DetachRolePolicy", *_IAM),
    "aws:kms/alias:Alias": (
        "kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias", "kms:ListAliases"),
    "aws:kms/grant:Grant": ("kms:CreateGrant", "kms:RevokeGrant", "kms:ListGrants"),
    "aws:kms/key:Key": (
        "kms:CreateKey", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy",
        "kms:GetKeyRotationStatus", "kms:EnableKeyRotation", "kms:DisableKeyRotation",
        "kms:ScheduleKeyDeletion", "kms:EnableKey", "kms:DisableKey", "kms:UpdateKeyDescription",
        "kms:TagResource", "kms:UntagResource", "kms:ListResourceTags"),
    "aws:lb/listener:Listener": (
        "elasticloadbalancing:CreateListener", "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:DeleteListener", "elasticloadbalancing:ModifyListenerAttributes",
        *_LB),
    "aws:lb/loadBalancer:LoadBalancer": (
        "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:ModifyLoadBalancerAttributes",
        "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
        "ec2:DescribeSubnets", "ec2:DescribeAccountAttributes", "ec2:DescribeInternetGateways",
        *_LB),
    "aws:lb/targetGroup:TargetGroup": (
        "elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:ModifyTargetGroupAttributes", *_LB),
    "aws:s3/bucket:Bucket": tuple(_S3),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": tuple(_S3),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": tuple(_S3),
    "aws:s3/bucketPolicy:BucketPolicy": tuple(_S3),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": tuple(_S3),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        tuple(_S3),
    "aws:s3/bucketVersioning:BucketVersioning": tuple(_S3),
    "aws:wafv2/webAcl:WebAcl": (
        "wafv2:CreateWebACL", "wafv2:UpdateWebACL", "wafv2:DeleteWebACL", "wafv2:GetWebACL",
        "wafv2:ListTagsForResource", "wafv2:TagResource", "wafv2:UntagResource"),
    "aws:wafv2/webAclAssociation:WebAclAssociation": (
        "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL", "wafv2:GetWebACLForResource",
        "elasticloadbalancing:SetWebACL"),
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": (
        "wafv2:PutLoggingConfiguration", "wafv2:GetLoggingConfiguration",
        "wafv2:DeleteLoggingConfiguration", "logs:CreateLogDelivery", "logs:DeleteLogDelivery",
        "logs:PutResourcePolicy", "logs:DescribeResourcePolicies"),
}  # fmt: skip

# The program's lookups (image by name, account, subnets) and the engine's refresh reads.
LOOKUPS = ("ec2:DescribeImages", "ec2:DescribeSubnets", "ec2:DescribeVpcs", "sts:GetCallerIdentity",
           "ec2:DescribeAvailabilityZones", "ec2:DescribeInstanceTypes")  # fmt: skip
# python -m release.refresh inside `pulumi up` (command:local:Command): the color's refresh.
REFRESH = ("autoscaling:StartInstanceRefresh", "autoscaling:DescribeInstanceRefreshes",
           "autoscaling:CancelInstanceRefresh", "autoscaling:RollbackInstanceRefresh",
           "autoscaling:DescribeAutoScalingGroups", "elasticloadbalancing:DescribeTargetHealth",
           "cloudwatch:DescribeAlarms", "ec2:DescribeInstances")  # fmt: skip
# Packer's amazon-ebs builder in staging's deployment (the bake): one build instance, one image.
BAKE = ("ec2:RunInstances", "ec2:TerminateInstances", "ec2:StopInstances", "ec2:DescribeInstances",
        "ec2:DescribeInstanceStatus", "ec2:CreateImage", "ec2:RegisterImage",
        "ec2:DeregisterImage", "ec2:DescribeImages", "ec2:CopyImage", "ec2:CreateSnapshot",
        "ec2:DeleteSnapshot", "ec2:DescribeSnapshots", "ec2:CreateKeyPair", "ec2:DeleteKeyPair",
        "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:AuthorizeSecurityGroupIngress",
        "ec2:DescribeSecurityGroups", "ec2:CreateTags", "ec2:DescribeVolumes",
        "ec2:ModifyImageAttribute", "ec2:DescribeRegions", "ec2:EnableImageDeprecation",
        "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo",
        "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant")  # fmt: skip
# The release command on the rollout runner: its reads and `rollback --now` (one ModifyListener).
RELEASE = ("cloudwatch:DescribeAlarms", "elasticloadbalancing:ModifyListener",
           "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeTargetGroups",
           "elasticloadbalancing:DescribeTargetHealth", "autoscaling:DescribeAutoScalingGroups",
           "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeImages")  # fmt: skip
# deploy/live_weights.py before a deployment: the weighted listener and the colors' groups.
LIVE_READ = ("elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeListeners",
             "autoscaling:DescribeAutoScalingGroups")  # fmt: skip
# Image retention (README "Image retention"): the dry run reads; --apply also marks and deletes.
PRUNE_READ = ("ec2:DescribeImages", "ec2:DescribeSnapshots", "ec2:DescribeRegions",
              "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
              "ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups",
              "autoscaling:DescribeLaunchConfigurations",
              "elasticloadbalancing:DescribeLoadBalancers")  # fmt: skip
PRUNE_APPLY = ("ec2:CreateTags", "ec2:DeleteTags", "ec2:DeregisterImage", "ec2:DeleteSnapshot")
# What `pulumi preview` reads: the program's lookups and every type's Describe/Get/List.
_READ_VERBS = ("Describe", "Get", "List")


def actions_for_types(types: Iterable[str]) -> tuple[str, ...]:
    unknown = sorted(set(types) - set(ACTIONS_BY_TYPE))
    if unknown:
        raise KeyError(f"no actions written out for {unknown}")
    return tuple(sorted({a for t in types for a in ACTIONS_BY_TYPE[t]}))


def update_actions(bakes: bool) -> tuple[str, ...]:
    """What `pulumi up` of the main program needs (with the bake when the stack bakes)."""
    actions = set(actions_for_types(ACTIONS_BY_TYPE)) | set(LOOKUPS) | set(REFRESH)
    return tuple(sorted(actions | (set(BAKE) if bakes else set())))


def read_actions() -> tuple[str, ...]:
    everything = set(actions_for_types(ACTIONS_BY_TYPE)) | set(LOOKUPS)
    return tuple(sorted(a for a in everything if a.split(":", 1)[1].startswith(_READ_VERBS)))


def permission_policy(actions: Iterable[str]) -> str:
    actions = sorted(set(actions))
    wildcards = [a for a in actions if "*" in a]
    if wildcards:
        raise ValueError(f"actions must be written out, not {wildcards}")
    return json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]},
        sort_keys=True,
    )  # fmt: skip


def web_identity_trust(
    provider_arn: str, issuer: str, audience: str, subjects: Iterable[str]
) -> str:
    """Trust for AssumeRoleWithWebIdentity from one OIDC provider, one audience, given subjects."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{issuer}:aud": audience},
                    "StringLike": {f"{issuer}:sub": sorted(subjects)},
                },
            }],
        },
        sort_keys=True,
    )  # fmt: skip


def github_subjects(repository: str, *, environment: str | None = None,
                    pull_requests: bool = False) -> list[str]:  # fmt: skip
    """GitHub's `sub` claims: a job in an environment, or a pull request's job."""
    if pull_requests:
        return [f"repo:{repository}:pull_request"]
    return [f"repo:{repository}:environment:{environment}"]


def pulumi_deploy_subject(organization: str, stack: str) -> str:
    """Pulumi Deployments' `sub` for any operation on the main project's stack."""
    return f"pulumi:deploy:org:{organization}:project:{MAIN_PROJECT}:stack:{stack}:*"


def duration_seconds(text: str) -> int:
    """``2h0m0s`` (Deployments' duration format) in seconds."""
    import re

    match = re.fullmatch(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?", text)
    if not text or not match:
        raise ValueError(f"duration {text!r} is not in the XhYmZs format")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def role_trust(role_arns: Iterable[str]) -> str:
    """Trust for sts:AssumeRole by the given roles only."""
    return json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Principal": {"AWS": sorted(role_arns)},
                        "Action": "sts:AssumeRole"}]},
        sort_keys=True,
    )  # fmt: skip


# The release lock (release/lock.py): the item operations the rollout runner's release commands
# make on the lock's table, and nothing else. No PutItem: every write, the acquire included, is
# an UpdateItem (a PutItem would replace the item and its bake record whole); no Scan or Query.
RELEASE_LOCK = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


def release_lock_policy(table_arn: str) -> str:
    """The release lock's item operations on exactly one table (no index, no stream)."""
    return json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Sid": "ReleaseLock", "Effect": "Allow", "Action": list(RELEASE_LOCK),
                        "Resource": table_arn}]},
        sort_keys=True,
    )  # fmt: skip
