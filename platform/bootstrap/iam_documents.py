"""The roles' trust and permission documents: plain functions, no Pulumi runtime.

Every permission is written out (no ``*`` action). The deployment and rollout roles run
``pulumi up`` of the main program, so they get the create/read/update/delete actions of each
resource type the program registers (``ACTIONS_BY_TYPE``; tests/test_platform.py fails when the
program registers a type this table lacks), plus what the instance refresh command, the bake
(staging only) and the release command call directly.

No action that changes IAM, or a launch template, is granted on ``"*"``: those are granted only
on the service's own roles, instance profiles and launch templates, and a role may be created,
changed or given a policy only while it carries the service's permissions boundary
(``ServiceScope``; docs/explanation/least-privilege.md says why there is no path to admin).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from components import policies

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
        "autoscaling:DescribeLoadBalancerTargetGroups", "iam:CreateServiceLinkedRole", *_LT,
        *_LB),
    "aws:autoscaling/policy:Policy": (
        "autoscaling:PutScalingPolicy", "autoscaling:DeletePolicy",
        "autoscaling:DescribePolicies"),
    # The stack's dashboard (components/service_dashboard.py): the provider reads it back with
    # GetDashboard and deletes with DeleteDashboards (the CloudWatch API has no tags on them).
    "aws:cloudwatch/dashboard:Dashboard": (
        "cloudwatch:PutDashboard", "cloudwatch:GetDashboard", "cloudwatch:DeleteDashboards"),
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
        "iam:UpdateRoleDescription", "iam:PutRolePermissionsBoundary", *_IAM),
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
        "iam:CreateServiceLinkedRole", *_LB),
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

# --- What only the service's own resources may receive ---------------------------------------
# IAM changes are where a deploy role could make itself admin (a policy on a role it can assume
# or pass, a new trust, a new role): each is granted only on roles named ``<service>-*`` that
# carry the service's boundary (components/policies.py: instance_boundary_policy), which caps
# whatever policy the role is given and forbids changing any boundary. Sid -> actions.
SCOPED_STATEMENTS: Mapping[str, tuple[str, ...]] = {
    # iam:PermissionsBoundary is the boundary the role has (or, for CreateRole and
    # PutRolePermissionsBoundary, will have): Service Authorization Reference, IAM. The
    # provider updates a role with UpdateAssumeRolePolicy, UpdateRoleDescription, UpdateRole
    # and PutRolePermissionsBoundary, and deletes one by removing it from its instance
    # profiles, deleting its inline policies, then DeleteRole; it calls
    # DeleteRolePermissionsBoundary only when a boundary is removed, which no role may do
    # (terraform-provider-aws internal/service/iam/role.go: resourceRoleUpdate, DeleteRole).
    "ServiceRolesCarryTheBoundary": (
        "iam:CreateRole", "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateRoleDescription",
        "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
        "iam:PutRolePermissionsBoundary"),
    "AttachOnlyTheInstancePolicies": ("iam:AttachRolePolicy", "iam:DetachRolePolicy"),
    "ReadAndTagServiceRoles": (
        "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:TagRole",
        "iam:UntagRole"),
    "ServiceInstanceProfiles": (
        "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:GetInstanceProfile",
        "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
        "iam:TagInstanceProfile", "iam:UntagInstanceProfile"),
    # To EC2 only: a launch template's instance profile, passed when the group or a refresh
    # launches instances (EC2 Auto Scaling guide, "API permissions": iam:PassRole "to EC2
    # instances on launch") and when the role joins the profile (IAM API reference,
    # AddRoleToInstanceProfile: the caller needs PassRole on the role). The groups use Auto
    # Scaling's default service-linked role, which nobody passes.
    "PassServiceRolesToEc2": ("iam:PassRole",),
    # The first group and the first load balancer of an account create their service's
    # service-linked role (EC2 Auto Scaling guide, "API permissions"); only those two.
    "AutoScalingAndLoadBalancingServiceLinkedRoles": ("iam:CreateServiceLinkedRole",),
    # A new version of a launch template some group launches from with its own role is a path
    # to that role (cloudsplaining: ModifyExistingEC2LaunchTemplate): only the service's
    # templates, which carry its Service tag (the provider's default_tags, components/tags.py).
    "ServiceLaunchTemplates": (
        "ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate", "ec2:DeleteLaunchTemplate",
        "ec2:DeleteLaunchTemplateVersions"),
    # A bucket policy could open any bucket of the account: only the service's buckets
    # (the access-log bucket is named <service>-access-logs-bucket-<suffix>).
    "ServiceBuckets": tuple(_S3),
    # Keys' data only through EC2 (the bake's encrypted image copies: EBS calls KMS on the
    # caller's behalf, KMS guide "How Amazon EBS uses AWS KMS"), never directly.
    "KeysOnlyThroughEc2": (
        "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
        "kms:GenerateDataKeyWithoutPlaintext"),
    # A grant lets its grantee use a key: only grants EC2 makes for its volumes and snapshots
    # (kms:GrantIsForAWSResource), or the ones for the account's Auto Scaling service-linked
    # role, which launches the encrypted images (components/image_grant.py).
    "GrantsOnlyForEc2AndAutoScaling": ("kms:CreateGrant",),
}  # fmt: skip
_SCOPED_ACTIONS = frozenset(a for actions in SCOPED_STATEMENTS.values() for a in actions)
SERVICE_LINKED_ROLE_SERVICES = ("autoscaling.amazonaws.com", "elasticloadbalancing.amazonaws.com")


@dataclass(frozen=True)
class ServiceScope:
    """The main program's own IAM resources in one account: roles and instance profiles named
    ``<service>-*`` (``Fleet`` names them ``<service>-<color>-role-<suffix>`` and
    ``-profile-<suffix>``), its boundary and the managed policies it attaches."""

    service: str
    account_id: str
    partition: str = "aws"

    def _arn(self, kind: str) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:{kind}/{self.service}-*"

    def boundary_arn(self) -> str:
        return policies.boundary_policy_arn(self.partition, self.account_id, self.service)

    def statements(self, actions: Iterable[str]) -> list[dict]:
        """The statements of each ``SCOPED_STATEMENTS`` entry that ``actions`` use, in its
        order (an entry whose actions are allowed in two ways has two)."""
        from components.image_key import autoscaling_service_linked_role_arn

        roles, boundary = self._arn("role"), {"iam:PermissionsBoundary": self.boundary_arn()}
        iam = f"arn:{self.partition}:iam::{self.account_id}"
        shapes = {
            "ServiceRolesCarryTheBoundary": [(roles, {"StringEquals": boundary})],
            "AttachOnlyTheInstancePolicies": [(roles, {
                "StringEquals": boundary,
                "ArnEquals": {"iam:PolicyARN": [
                    policies.managed_policy_arn(self.partition, name)
                    for name in INSTANCE_MANAGED_POLICIES]}})],
            "ReadAndTagServiceRoles": [(roles, None)],
            "ServiceInstanceProfiles": [(self._arn("instance-profile"), None)],
            "PassServiceRolesToEc2": [
                (roles, {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}})],
            "AutoScalingAndLoadBalancingServiceLinkedRoles": [(
                f"{iam}:role/aws-service-role/*",
                {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLE_SERVICES)}})],
            "ServiceLaunchTemplates": [
                ("*", {"StringEquals": {"aws:ResourceTag/Service": self.service}})],
            "ServiceBuckets": [(f"arn:{self.partition}:s3:::{self.service}-*", None)],
            "KeysOnlyThroughEc2": [
                ("*", {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}})],
            "GrantsOnlyForEc2AndAutoScaling": [
                ("*", {"Bool": {"kms:GrantIsForAWSResource": "true"}}),
                ("*", {"StringEquals": {"kms:GranteePrincipal": (
                    autoscaling_service_linked_role_arn(self.partition, self.account_id))}}),
            ],
        }  # fmt: skip
        wanted = set(actions)
        statements = []
        for sid, granted in SCOPED_STATEMENTS.items():
            used = sorted(wanted & set(granted))
            for index, (resource, condition) in enumerate(shapes[sid] if used else []):
                statement = {"Sid": f"{sid}{index or ''}", "Effect": "Allow", "Action": used,
                             "Resource": resource}  # fmt: skip
                if condition:
                    statement["Condition"] = condition
                statements.append(statement)
        return statements


# The managed policies Fleet attaches; AttachRolePolicy is limited to these (iam:PolicyARN).
INSTANCE_MANAGED_POLICIES = (policies.SSM_MANAGED_INSTANCE_CORE,)


# The program's lookups (image by name, account, subnets) and the engine's refresh reads.
# The promote lookup of a revoked version (components/golden_image.py) reads the color's group
# and its launch template: aws_autoscaling_groups and aws_autoscaling_group call
# DescribeAutoScalingGroups, aws_launch_template DescribeLaunchTemplates and
# DescribeLaunchTemplateVersions (terraform-provider-aws internal/service/autoscaling,
# internal/service/ec2 data sources).
LOOKUPS = ("ec2:DescribeImages", "ec2:DescribeSubnets", "ec2:DescribeVpcs", "sts:GetCallerIdentity",
           "ec2:DescribeAvailabilityZones", "ec2:DescribeInstanceTypes",
           "autoscaling:DescribeAutoScalingGroups", "ec2:DescribeLaunchTemplates",
           "ec2:DescribeLaunchTemplateVersions")  # fmt: skip
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
# The release command on the rollout runner: its reads (GetMetricData: the canary analysis of
# release/metrics.py; what each group launches: release/image_usage.py, for status and the
# images views) and `rollback --now` (one ModifyListener).
RELEASE = ("cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData",
           "elasticloadbalancing:ModifyListener",
           "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeTargetGroups",
           "elasticloadbalancing:DescribeTargetHealth", "autoscaling:DescribeAutoScalingGroups",
           "autoscaling:DescribeLaunchConfigurations", "ec2:DescribeLaunchTemplates",
           "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeInstances",
           "ec2:DescribeImages")  # fmt: skip
# deploy/live_weights.py before a deployment: the weighted listener and the colors' groups.
LIVE_READ = ("elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeListeners",
             "autoscaling:DescribeAutoScalingGroups")  # fmt: skip
# Image retention (docs/guides/image-retention.md): the dry run reads; --apply also marks and
# deletes.
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


def role_actions(*, bakes: bool, prunes: bool, image_usage: bool) -> dict[str, tuple[str, ...]]:
    """Each role of a stack's account (AccountAccess) and the actions its policy allows: the
    one place that says which role gets what (the documentation's IAM reference reads it too).

    preview: pull-request previews and the deployment job's live-weights check (reads only);
    deploy: Pulumi Deployments' `pulumi up`; rollout: `pulumi up` plus the release command;
    prune-read / prune: image retention's dry run / --apply (the baking account);
    image-usage: what prune reads in an account the images are shared with."""
    update = update_actions(bakes)
    roles = {
        "preview": tuple(sorted(set(read_actions()) | set(LIVE_READ))),
        "deploy": update,
        "rollout": tuple(sorted(set(update) | set(RELEASE))),
    }
    if prunes:
        roles["prune-read"] = PRUNE_READ
        roles["prune"] = tuple(sorted(set(PRUNE_READ) | set(PRUNE_APPLY)))
    if image_usage:
        roles["image-usage"] = PRUNE_READ
    return roles


def permission_policy(actions: Iterable[str], scope: ServiceScope | None = None) -> str:
    """One statement of the actions that may act on ``"*"``, then ``scope``'s statements for
    the actions that may act only on the service's own resources."""
    actions = sorted(set(actions))
    wildcards = [a for a in actions if "*" in a]
    if wildcards:
        raise ValueError(f"actions must be written out, not {wildcards}")
    unscoped = [a for a in actions if a.startswith("iam:") and a not in _SCOPED_ACTIONS]
    if unscoped:
        raise ValueError(f"{unscoped} have no statement scoped to the service's resources")
    scoped = [a for a in actions if a in _SCOPED_ACTIONS]
    if scoped and scope is None:
        raise ValueError(f"{scoped} are granted only on a service's resources: give its scope")
    anywhere = [a for a in actions if a not in _SCOPED_ACTIONS]
    statements = [{"Effect": "Allow", "Action": anywhere, "Resource": "*"}] if anywhere else []
    if scope is not None:
        statements += scope.statements(scoped)
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


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
