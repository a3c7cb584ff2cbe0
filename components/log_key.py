"""LogKey: the KMS key the stack's CloudWatch log groups are encrypted with.

CloudWatch Logs encrypts a log group with a customer managed key only when the key policy lets
the regional service principal ``logs.<region>.amazonaws.com`` use the key, and the condition
``kms:EncryptionContext:aws:logs:arn`` names the log group: CloudWatch Logs sends that
encryption context with every request (CloudWatch Logs user guide, "Encrypt log data in
CloudWatch Logs using AWS Key Management Service", step 2). The account's root keeps
administration, so IAM policies of the account can still manage the key (KMS developer guide,
"Default key policy").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

# KMS keeps a deleted key this many days before it is gone (7-30): the logs it encrypts become
# unreadable then, so the longest window.
DELETION_WINDOW_DAYS = 30


def log_group_arn(partition: str, region: str, account: str, name: str) -> str:
    """A log group's ARN as CloudWatch Logs writes it in the encryption context (no ``:*``)."""
    return f"arn:{partition}:logs:{region}:{account}:log-group:{name}"


def log_key_policy(
    partition: str, region: str, account: str, log_group_arns: list[str]
) -> dict[str, Any]:
    """The key policy: the account administers the key; CloudWatch Logs of this region may use
    it only for the named log groups."""
    if not log_group_arns:
        raise ValueError("a log key must name at least one log group")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersTheKey",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsForTheseLogGroupsOnly",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": sorted(log_group_arns)}
                },
            },
        ],
    }


@dataclass(frozen=True)
class LogKeyArgs:
    service: str
    """Service name, in the key's description and alias."""
    stack: str
    """Short stack name, in the alias."""
    region: str
    """The region of the key and its log groups."""
    log_group_names: list[str]
    """Every log group the key may encrypt."""


class LogKey(pulumi.ComponentResource):
    """A rotating symmetric KMS key and its alias."""

    key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: LogKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("golden-fleet:index:LogKey", name, None, opts)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))

        def policy(values: list[str]) -> str:
            account, caller_arn = values
            partition = caller_arn.split(":")[1]
            arns = [log_group_arn(partition, args.region, account, n) for n in args.log_group_names]
            return json.dumps(log_key_policy(partition, args.region, account, arns))

        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.service} ({args.stack}): CloudWatch log groups",
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=pulumi.Output.all(identity.account_id, identity.arn).apply(policy),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.service}-{args.stack}-logs",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_arn = key.arn
        self.register_outputs({"keyArn": self.key_arn})
