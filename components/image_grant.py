"""ImageGrant: lets this account's Auto Scaling launch instances from another account's images.

The images a promoting stack runs are encrypted with the baking account's key. Auto Scaling
launches instances through its service-linked role, whose permissions AWS fixes and which
include no customer-managed key; for a key of another account, the Auto Scaling User Guide
("Required AWS KMS key policy for use with encrypted volumes", example 2) has the account that
owns the group create a grant for that role on the key. The key policy (components/image_key.py)
admits this account to create it. AWS's knowledge-center article "kms-launch-ec2-instance"
says it plainly: create the grants "from the account that owns the Amazon EC2 Auto Scaling
group, not the AWS KMS account". Without the grant every launch fails and the group never
reaches its capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.image_key import autoscaling_service_linked_role_arn

# The operations the guide's `aws kms create-grant` example gives the service-linked role:
# enough to create and attach the encrypted volumes of an instance, and to let EC2 create the
# grants it needs for them (CreateGrant).
AUTOSCALING_GRANT_OPERATIONS = [
    "Encrypt",
    "Decrypt",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "DescribeKey",
    "CreateGrant",
]


@dataclass(frozen=True)
class ImageGrantArgs:
    kms_key_arn: str
    """The baking account's image key in this stack's region (image.kmsKeyArn), by full ARN:
    KMS needs the ARN for a key of another account."""


class ImageGrant(pulumi.ComponentResource):
    """The grant for this account's Auto Scaling service-linked role on the image key."""

    grant_id: pulumi.Output[str]
    grantee: pulumi.Output[str]

    def __init__(self, name: str, args: ImageGrantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("golden-fleet:index:ImageGrant", name, None, opts)
        caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        # The account that runs `pulumi up` is the one that owns the groups; its partition is
        # the one of its own ARN.
        self.grantee = pulumi.Output.all(caller.arn, caller.account_id).apply(
            lambda identity: autoscaling_service_linked_role_arn(
                identity[0].split(":")[1], identity[1]
            )
        )
        grant = aws.kms.Grant(
            f"{name}-autoscaling",
            name=f"{name}-autoscaling",
            key_id=args.kms_key_arn,
            grantee_principal=self.grantee,
            operations=AUTOSCALING_GRANT_OPERATIONS,
            # The key's region, which config validation has made the stack's own.
            region=args.kms_key_arn.split(":")[3],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.grant_id = grant.grant_id
        self.register_outputs({"grantId": self.grant_id, "grantee": self.grantee})
