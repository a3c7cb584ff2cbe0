"""``ReleaseLockTable``: in one stack's account and region, the DynamoDB table that holds the
release lock of every stack deployed there (release/lock.py: one item per stack), and the
rollout role's permission on exactly that table.

Declared here, not by the program: the lock must exist before the first rollout and outlive
any stack (a `pulumi destroy` of the stack it guards, or an update that replaced it, would drop a
lock someone holds), and one table per account serves every stack and service in it, as
Terraform's state-lock table lives outside the configurations it locks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from bootstrap import iam_documents as docs
from release.lock_table import PARTITION_KEY, TABLE_NAME


@dataclass(frozen=True)
class ReleaseLockTableArgs:
    role_names: dict[str, pulumi.Input[str]]  # kind -> name of a role that runs release commands


class ReleaseLockTable(pulumi.ComponentResource):
    def __init__(self, name: str, args: ReleaseLockTableArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:  # fmt: skip
        super().__init__("golden-fleet-platform:index:ReleaseLockTable", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.table = aws.dynamodb.Table(
            f"{name}-table",
            name=TABLE_NAME,
            billing_mode="PAY_PER_REQUEST",  # a few writes a minute during a rollout, none else
            hash_key=PARTITION_KEY,
            attributes=[aws.dynamodb.TableAttributeArgs(name=PARTITION_KEY, type="S")],
            # Encrypted with the account's AWS managed key (aws/dynamodb), so CloudTrail shows
            # its use; the default, an AWS owned key, is not visible in the account.
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            deletion_protection_enabled=True,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        for kind, role_name in args.role_names.items():
            aws.iam.RolePolicy(
                f"{name}-{kind}-policy",
                role=role_name,
                policy=self.table.arn.apply(docs.release_lock_policy),
                opts=child,
            )
        self.register_outputs({"tableArn": self.table.arn})
