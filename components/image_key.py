"""ImageKey: the customer-managed KMS key the baking stack encrypts its images with, one per region.

An AMI encrypted with the account's default EBS key can never be launched by another account
(that key's policy cannot be changed), so the baking stack owns one symmetric key per region
the images live in: the home region, where the bake builds, and every copy region. The key
policy is the one AWS documents for Auto Scaling with encrypted volumes, "Required AWS KMS key
policy for use with encrypted volumes" (Amazon EC2 Auto Scaling User Guide,
key-policy-requirements-EBS-encryption.html): example 1 for this account's own Auto Scaling
service-linked role, example 2 for each account the images are shared with. Those accounts
then create a grant for their own service-linked role (components/image_grant.py); the grant
has to come from the account that owns the Auto Scaling group.

docs/explanation/accounts-and-encryption.md quotes the statements this module writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

# What an EBS volume needs from its key, per the Auto Scaling guide's statements.
KEY_USE_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
]
# KMS's own bounds for the waiting period before a scheduled key deletion (7-30 days). The
# longest: a key deleted by mistake makes every image encrypted with it unlaunchable for good.
DELETION_WINDOW_DAYS = 30


def autoscaling_service_linked_role_arn(partition: str, account_id: str) -> str:
    """The default Auto Scaling service-linked role of an account (Auto Scaling User Guide,
    autoscaling-service-linked-role.html: AWSServiceRoleForAutoScaling)."""
    return (
        f"arn:{partition}:iam::{account_id}:role/aws-service-role/autoscaling.amazonaws.com/"
        "AWSServiceRoleForAutoScaling"
    )


def image_key_policy(
    partition: str, account_id: str, share_with_accounts: Sequence[str]
) -> dict[str, Any]:
    """The image key's policy: this account administers the key through IAM, its Auto Scaling
    service-linked role uses it, and every share account may use it and create grants on it
    for that account's own Auto Scaling service-linked role only.

    Statement order and Sids are stable, so adding an account appends two statements and
    changes no other.
    """
    root = f"arn:{partition}:iam::{account_id}:root"
    autoscaling = autoscaling_service_linked_role_arn(partition, account_id)
    statements: list[dict[str, Any]] = [
        {
            # KMS's default key policy statement: without it no IAM policy of this account
            # could manage the key, and a key nobody can manage cannot be repaired.
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "Allow service-linked role use of the customer managed key",
            "Effect": "Allow",
            "Principal": {"AWS": [autoscaling]},
            "Action": KEY_USE_ACTIONS,
            "Resource": "*",
        },
        {
            "Sid": "Allow attachment of persistent resources",
            "Effect": "Allow",
            "Principal": {"AWS": [autoscaling]},
            "Action": ["kms:CreateGrant"],
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}},
        },
    ]
    for account in share_with_accounts:
        if account == account_id:
            raise ValueError(
                f"image.shareWithAccounts lists {account}, the account that owns the images"
            )
        external = f"arn:{partition}:iam::{account}:root"
        statements += [
            {
                "Sid": f"Allow external account {account} use of the customer managed key",
                "Effect": "Allow",
                "Principal": {"AWS": [external]},
                "Action": KEY_USE_ACTIONS,
                "Resource": "*",
            },
            {
                # The account may create grants on the key for its own Auto Scaling
                # service-linked role and for no other principal (kms:GranteePrincipal, the
                # CreateGrant request's GranteePrincipal: KMS developer guide, "AWS KMS
                # condition keys"); components/image_grant.py asks for exactly this grantee.
                # No kms:GrantIsForAWSResource here: that key is true only when an AWS
                # service calls CreateGrant on the principal's behalf, and this grant is
                # created by the other account's deploying principal itself, so requiring it
                # would refuse the grant (AWS's example 2 leaves it out for the same reason).
                "Sid": f"Allow attachment of persistent resources in external account {account}",
                "Effect": "Allow",
                "Principal": {"AWS": [external]},
                "Action": ["kms:CreateGrant"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:GranteePrincipal": autoscaling_service_linked_role_arn(
                            partition, account
                        )
                    }
                },
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


@dataclass(frozen=True)
class ImageKeyArgs:
    service: str
    """Service name; names the key's alias (alias/<service>-image)."""
    region: str
    """Region the key lives in: the stack's region or one of image.copyToRegions."""
    share_with_accounts: list[str]
    """Accounts admitted to use the key and create grants on it (image.shareWithAccounts)."""


class ImageKey(pulumi.ComponentResource):
    """One region's image key. ``key_arn`` is what the bake or a copy encrypts with."""

    key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ImageKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("golden-fleet:index:ImageKey", name, None, opts)
        caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        policy = pulumi.Output.all(caller.arn, caller.account_id).apply(
            lambda identity: json.dumps(
                image_key_policy(identity[0].split(":")[1], identity[1], args.share_with_accounts)
            )
        )
        # Every resource takes its region as an argument (pulumi_aws 7: "Region where this
        # resource will be managed. Defaults to the Region set in the provider configuration"),
        # so one provider, with the stack's default tags, serves every region.
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.service} golden images in {args.region}",
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",  # EBS takes symmetric keys only
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=policy,
            region=args.region,
            # Removing a region from the config, or the stack, never schedules the key's
            # deletion: images of past versions (kept for rollback until the prune command
            # removes them) stay encrypted with it, and a deleted key makes them unlaunchable
            # for good. Deleting an image key is a deliberate act outside the program.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.service}-image",
            target_key_id=key.key_id,
            region=args.region,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_arn = key.arn
        self.register_outputs({"keyArn": self.key_arn})
