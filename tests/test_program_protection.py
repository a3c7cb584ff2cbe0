"""Access logs, WAF and the log group on the real stack files, under the mock engine; and the
pure policy functions they are built from."""

from __future__ import annotations

import copy
import json

import pytest
from harness import ACCOUNT, STACK_ACCOUNTS, changed_resources, run_program

from components.access_log_bucket import (
    ELB_ACCOUNTS,
    LOG_DELIVERY_SERVICE,
    access_log_bucket_policy,
    log_delivery_principal,
)
from components.config import ConfigError, parse_stack_config
from components.log_key import log_key_policy

ALB = "aws:lb/loadBalancer:LoadBalancer"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
PUBLIC_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KMS_KEY = "aws:kms/key:Key"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"


@pytest.fixture(params=["staging", "prod"])
def stack_run(request, staging_config, prod_config):
    config = {"staging": staging_config, "prod": prod_config}[request.param]
    return request.param, config, run_program(config, stack=request.param)


# --- pure policies -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("region", "principal"),
    [
        ("eu-west-1", {"AWS": "arn:aws:iam::156460612806:root"}),
        ("us-east-1", {"AWS": "arn:aws:iam::127311923021:root"}),
        ("eu-central-2", {"Service": LOG_DELIVERY_SERVICE}),
        ("ap-southeast-4", {"Service": LOG_DELIVERY_SERVICE}),
    ],
)
def test_log_delivery_principal_per_region(region, principal):
    """Regions older than August 2022 grant the Region's ELB account; newer ones the log
    delivery service principal."""
    assert log_delivery_principal(region) == principal


def test_elb_accounts_are_twelve_digit_ids():
    assert all(len(a) == 12 and a.isascii() and a.isdigit() for a in ELB_ACCOUNTS.values())


@pytest.mark.parametrize("prefix", ["", "alb", "a/b"])
def test_log_delivery_may_write_only_under_its_prefix(prefix):
    """The one Allow is PutObject on [prefix/]AWSLogs/<account>/*; everything without TLS is
    denied to everyone."""
    policy = access_log_bucket_policy("aws", "eu-west-1", "logs-bkt", prefix, ACCOUNT)
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    head = f"{prefix}/" if prefix else ""
    assert allows == [
        {
            "Sid": "LoadBalancerLogDelivery",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::156460612806:root"},
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::logs-bkt/{head}AWSLogs/{ACCOUNT}/*",
        }
    ]
    [deny] = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Resource"] == ["arn:aws:s3:::logs-bkt", "arn:aws:s3:::logs-bkt/*"]


def test_log_key_lets_cloudwatch_logs_use_it_only_for_named_log_groups():
    arns = ["arn:aws:logs:eu-west-1:111111111111:log-group:/golden-fleet/checkout"]
    policy = log_key_policy("aws", "eu-west-1", "111111111111", arns)
    [logs] = [s for s in policy["Statement"] if "Service" in s["Principal"]]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"] == {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": arns}}
    assert "kms:*" not in logs["Action"]
    with pytest.raises(ValueError, match="at least one log group"):
        log_key_policy("aws", "eu-west-1", "111111111111", [])


# --- config --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("golden-fleet:logs", {"retentionDays": 30}, r"golden-fleet:logs.retentionDays: 30"),
        ("golden-fleet:logs", {"retentionDays": "365"}, r"golden-fleet:logs.retentionDays"),
        ("golden-fleet:waf", {"rateLimit": 5}, r"golden-fleet:waf.rateLimit"),
        ("golden-fleet:waf", {"rateLimit": 100.0}, r"golden-fleet:waf.rateLimit"),
        ("golden-fleet:waf", {"rateWindowSeconds": 30}, r"golden-fleet:waf.rateWindowSeconds"),
        ("golden-fleet:waf", {"enabled": "yes"}, r"golden-fleet:waf.enabled"),
        ("golden-fleet:waf", {"rateLimits": 100}, r"golden-fleet:waf.rateLimits: unknown key"),
    ],
)
def test_bad_logs_and_waf_settings_are_refused_by_key(staging_config, key, value, match):
    staging_config[key] = value
    with pytest.raises(ConfigError, match=match):
        parse_stack_config(staging_config)


def test_expiry_belongs_to_the_created_bucket_only(prod_config, staging_config):
    """expirationDays with a configured bucket is refused; bounds and strictness hold."""
    prod_config["golden-fleet:loadBalancer"]["accessLogs"]["expirationDays"] = 30
    with pytest.raises(
        ConfigError,
        match=r"golden-fleet:loadBalancer.accessLogs.expirationDays: "
        r"applies only to the bucket the program creates",
    ):
        parse_stack_config(prod_config)
    for bad in (0, 3654, 90.0, True):
        config = copy.deepcopy(staging_config)
        config["golden-fleet:loadBalancer"]["accessLogs"]["expirationDays"] = bad
        with pytest.raises(
            ConfigError,
            match=r"golden-fleet:loadBalancer.accessLogs."
            r"expirationDays",
        ):
            parse_stack_config(config)


@pytest.mark.parametrize("prefix", ["*", "alb/*", "a?b", "a//b", "alb\n", "x" * 201, "ä"])
def test_access_log_prefix_cannot_widen_the_bucket_policy(staging_config, prefix):
    """Wildcards, empty segments and non-ASCII never reach the policy's resource."""
    staging_config["golden-fleet:loadBalancer"]["accessLogs"]["prefix"] = prefix
    with pytest.raises(ConfigError, match=r"golden-fleet:loadBalancer.accessLogs.prefix: "):
        parse_stack_config(staging_config)


def test_defaults_are_a_year_of_logs_90_days_of_access_logs_and_waf_on(staging_config):
    for key in ("golden-fleet:logs", "golden-fleet:waf"):
        staging_config.pop(key, None)
    staging_config["golden-fleet:loadBalancer"].pop("accessLogs")
    config = parse_stack_config(staging_config)
    assert config.logs.retention_days == 365
    assert config.waf.enabled and config.waf.rate_limit == 2000
    assert config.load_balancer.access_logs.bucket is None
    assert config.load_balancer.access_logs.expiry == 90


# --- the program ---------------------------------------------------------------------------
def test_every_stack_logs_its_load_balancer(stack_run):
    """Access logs are on in both stacks: prod into its configured bucket, staging into the
    bucket the stack creates; the ALB waits for that bucket's policy."""
    _, config, run = stack_run
    alb = run.one(ALB, "checkout-alb")
    logs = alb.inputs["accessLogs"]
    assert logs["enabled"] is True and logs["prefix"] == "alb"
    configured = config["golden-fleet:loadBalancer"]["accessLogs"].get("bucket")
    if configured:
        assert logs["bucket"] == configured
        assert not run.of_type(BUCKET), "a configured bucket must not get a second one"
    else:
        bucket = run.one(BUCKET, "checkout-access-logs-bucket")
        assert logs["bucket"] == bucket.state["bucket"]
        assert "checkout-access-logs-policy" in alb.options["depends_on"]


def test_created_bucket_is_private_encrypted_versioned_and_expires(staging_config):
    run = run_program(staging_config)
    prefix = "checkout-access-logs"
    block = run.one(PUBLIC_BLOCK, f"{prefix}-public-access-block").inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    ownership = run.one(
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls", f"{prefix}-ownership"
    ).inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    sse = run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        f"{prefix}-encryption",
    ).inputs
    [rule] = sse["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}, (
        "ALB log delivery supports SSE-S3 only"
    )
    versioning = run.one("aws:s3/bucketVersioning:BucketVersioning", f"{prefix}-versioning")
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    lifecycle = run.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{prefix}-lifecycle"
    ).inputs
    [rule] = lifecycle["rules"]
    expiry = staging_config["golden-fleet:loadBalancer"]["accessLogs"]["expirationDays"]
    assert rule["status"] == "Enabled" and rule["expiration"] == {"days": expiry}


@pytest.mark.parametrize(
    ("region", "principal"),
    [
        ("eu-west-1", {"AWS": "arn:aws:iam::156460612806:root"}),
        ("eu-central-2", {"Service": LOG_DELIVERY_SERVICE}),
    ],
)
def test_bucket_policy_principal_follows_the_stack_region(staging_config, region, principal):
    """The program's bucket policy names the stack region's delivery principal, only for the
    configured prefix of this account, and denies requests without TLS."""
    staging_config["aws:region"] = region
    # The stack file's secrets live in its own region: a stack moved elsewhere names others.
    staging_config.pop("golden-fleet:app", None)
    run = run_program(staging_config)
    bucket = run.one(BUCKET, "checkout-access-logs-bucket").state["bucket"]
    policy = json.loads(run.one(BUCKET_POLICY, "checkout-access-logs-policy").inputs["policy"])
    [allow] = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == principal
    assert allow["Resource"] == (f"arn:aws:s3:::{bucket}/alb/AWSLogs/{STACK_ACCOUNTS['staging']}/*")
    assert [s["Condition"] for s in policy["Statement"] if s["Effect"] == "Deny"] == [
        {"Bool": {"aws:SecureTransport": "false"}}
    ]


def test_log_groups_keep_a_year_and_use_the_stack_log_key(stack_run):
    """Every log group: the configured retention (>= 365) and the stack's own rotating key,
    whose policy names exactly these log groups for this region's CloudWatch Logs."""
    stack, config, run = stack_run
    retention = config["golden-fleet:logs"]["retentionDays"]
    key = run.one(KMS_KEY, "checkout-log-key-key")
    assert key.inputs["enableKeyRotation"] is True
    groups = run.of_type(LOG_GROUP)
    expected = {"/golden-fleet/checkout"} | (
        {f"aws-waf-logs-checkout-{stack}"} if stack == "prod" else set()
    )
    assert {g.inputs["name"] for g in groups} == expected
    account = STACK_ACCOUNTS[stack]
    policy = json.loads(key.inputs["policy"])
    [logs] = [s for s in policy["Statement"] if "Service" in s["Principal"]]
    assert logs["Principal"]["Service"] == "logs.eu-west-1.amazonaws.com"
    assert sorted(logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]) == sorted(
        f"arn:aws:logs:eu-west-1:{account}:log-group:{name}" for name in expected
    )
    for group in groups:
        assert group.inputs["retentionInDays"] >= 365, group.name
        assert group.inputs["retentionInDays"] == retention, group.name
        assert group.inputs["kmsKeyId"] == key.state["arn"], group.name


def test_waf_protects_prod_load_balancer(prod_config):
    """Prod: a REGIONAL web ACL with the three managed groups and the configured rate limit,
    associated with the ALB, logging to its aws-waf-logs- group."""
    run = run_program(prod_config, stack="prod")
    acl = run.one(WEB_ACL, "checkout-waf-acl")
    assert acl.inputs["scope"] == "REGIONAL"
    rules = {r["name"]: r for r in acl.inputs["rules"]}
    groups = {
        r["statement"]["managedRuleGroupStatement"]["name"]
        for r in rules.values()
        if "managedRuleGroupStatement" in r["statement"]
    }
    assert groups == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }
    rate = rules["rate-limit-per-ip"]
    waf = prod_config["golden-fleet:waf"]
    assert rate["action"] == {"block": {}}
    assert rate["statement"]["rateBasedStatement"]["limit"] == waf["rateLimit"]
    assert (
        rate["statement"]["rateBasedStatement"]["evaluationWindowSec"] == (waf["rateWindowSeconds"])
    )
    assert len({r["priority"] for r in rules.values()}) == len(rules), "priorities are unique"
    association = run.one(WEB_ACL_ASSOCIATION, "checkout-waf-association").inputs
    assert association["resourceArn"] == run.one(ALB, "checkout-alb").state["arn"]
    assert association["webAclArn"] == acl.state["arn"]
    logging_config = run.one(WAF_LOGGING, "checkout-waf-logging").inputs
    group = run.one(LOG_GROUP, "checkout-waf-logs")
    assert group.inputs["name"].startswith("aws-waf-logs-")
    assert logging_config["logDestinationConfigs"] == [group.state["arn"]]
    assert logging_config["resourceArn"] == acl.state["arn"]


def test_waf_switch_adds_or_removes_only_waf_resources(staging_config):
    """Staging keeps WAF off; switching it on adds the ACL, its association, logging and log
    group, and changes only the log key's policy besides: no fleet, listener or ALB change."""
    off = run_program(staging_config)
    assert not off.of_type(WEB_ACL) and not off.of_type(WEB_ACL_ASSOCIATION)
    on_config = copy.deepcopy(staging_config)
    on_config["golden-fleet:waf"] = {"enabled": True}
    on = run_program(on_config)
    changed = changed_resources(off, on)
    assert changed == {
        "checkout-waf",
        "checkout-waf-acl",
        "checkout-waf-association",
        "checkout-waf-logs",
        "checkout-waf-logging",
        "checkout-log-key-key",
    }, changed
