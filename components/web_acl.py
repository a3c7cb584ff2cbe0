"""WebAcl: a WAFv2 web ACL in front of the load balancer, and its logging.

- Scope ``REGIONAL``: the scope for Application Load Balancers (WAF developer guide, "Creating
  a web ACL"); associated with the ALB by ARN.
- Three AWS managed rule groups: the core rule set, known bad inputs and the Amazon IP
  reputation list (WAF developer guide, "AWS Managed Rules rule groups list"), each with its
  own actions (``override_action none``), then a rate-based rule blocking any client IP above
  the configured requests per window.
- Logging goes to a CloudWatch log group whose name starts with ``aws-waf-logs-``: WAF refuses
  any other destination name (WAF developer guide, "Sending web ACL traffic logs to an Amazon
  CloudWatch Logs log group"); it has the service log group's retention and KMS key.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# (rule name, managed rule group name, priority); lower priority runs first.
MANAGED_RULE_GROUPS: tuple[tuple[str, str, int], ...] = (
    ("aws-ip-reputation", "AWSManagedRulesAmazonIpReputationList", 10),
    ("aws-common", "AWSManagedRulesCommonRuleSet", 20),
    ("aws-known-bad-inputs", "AWSManagedRulesKnownBadInputsRuleSet", 30),
)
RATE_RULE_PRIORITY = 40


def waf_log_group_name(service: str, stack: str) -> str:
    """WAF logs only to log groups named ``aws-waf-logs-...``."""
    return f"aws-waf-logs-{service}-{stack}"


def _visibility(metric: str) -> dict[str, object]:
    return {
        "cloudwatch_metrics_enabled": True,
        "metric_name": metric,
        "sampled_requests_enabled": True,
    }


def web_acl_rules(service: str, rate_limit: int, rate_window_seconds: int) -> list[dict]:
    """The rules, in order: the managed groups, then the per-IP rate limit."""
    rules: list[dict] = [
        {
            "name": rule,
            "priority": priority,
            "override_action": {"none": {}},
            "statement": {"managed_rule_group_statement": {"vendor_name": "AWS", "name": group}},
            "visibility_config": _visibility(f"{service}-{rule}"),
        }
        for rule, group, priority in MANAGED_RULE_GROUPS
    ]
    rules.append(
        {
            "name": "rate-limit-per-ip",
            "priority": RATE_RULE_PRIORITY,
            "action": {"block": {}},
            "statement": {
                "rate_based_statement": {
                    "aggregate_key_type": "IP",
                    "limit": rate_limit,
                    "evaluation_window_sec": rate_window_seconds,
                }
            },
            "visibility_config": _visibility(f"{service}-rate-limit-per-ip"),
        }
    )
    return rules


@dataclass(frozen=True)
class WebAclArgs:
    service: str
    """Service name, in the ACL's and metrics' names."""
    stack: str
    """Short stack name, in the log group's name."""
    load_balancer_arn: pulumi.Input[str]
    """The ALB the ACL protects."""
    rate_limit: int
    """Requests one IP may send per window."""
    rate_window_seconds: int
    """The rate limit's window: 60, 120, 300 or 600."""
    log_retention_days: int
    """Retention of the WAF log group."""
    log_kms_key_arn: pulumi.Input[str]
    """The stack's log key, whose policy names the WAF log group."""


class WebAcl(pulumi.ComponentResource):
    """Web ACL, its association with the ALB, its log group and logging configuration."""

    web_acl_arn: pulumi.Output[str]

    def __init__(self, name: str, args: WebAclArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("golden-fleet:index:WebAcl", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        acl = aws.wafv2.WebAcl(
            f"{name}-acl",
            description=f"{args.service}: AWS managed rules and a per-IP rate limit",
            scope="REGIONAL",
            default_action={"allow": {}},
            rules=web_acl_rules(args.service, args.rate_limit, args.rate_window_seconds),
            visibility_config=_visibility(f"{args.service}-web-acl"),
            opts=child,
        )
        aws.wafv2.WebAclAssociation(
            f"{name}-association",
            resource_arn=args.load_balancer_arn,
            web_acl_arn=acl.arn,
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=waf_log_group_name(args.service, args.stack),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.log_kms_key_arn,
            opts=child,
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-logging",
            resource_arn=acl.arn,
            log_destination_configs=[log_group.arn],
            # Never log credentials or session cookies.
            redacted_fields=[
                {"single_header": {"name": "authorization"}},
                {"single_header": {"name": "cookie"}},
            ],
            opts=child,
        )
        self.web_acl_arn = acl.arn
        self.register_outputs({"webAclArn": self.web_acl_arn})
