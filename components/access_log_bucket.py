"""AccessLogBucket: the bucket the load balancer writes its access logs to, when the stack
names none.

What ALB log delivery requires and allows (Elastic Load Balancing user guide, Application Load
Balancers, "Enable access logs for your Application Load Balancer"):

- The only server-side encryption supported is Amazon S3 managed keys (SSE-S3); SSE-KMS is
  refused by log delivery, so the bucket uses AES256.
- The bucket policy grants ``s3:PutObject`` on ``<bucket>/<prefix>/AWSLogs/<account id>/*``:
  in Regions available before August 2022 to the Region's Elastic Load Balancing account
  (``arn:aws:iam::<elb-account-id>:root``), in Regions available since then to the service
  principal ``logdelivery.elasticloadbalancing.amazonaws.com``. :data:`ELB_ACCOUNTS` is that
  guide's table; a Region not in it is a newer one.
- The bucket must be in the load balancer's Region; Object Ownership "bucket owner enforced"
  works with log delivery (no ACLs are needed by either principal form).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"

# Elastic Load Balancing account per Region, for Regions available before August 2022 (ELB user
# guide, "Enable access logs for your Application Load Balancer", step "Attach a policy to your
# S3 bucket"). Newer Regions have no account here and use LOG_DELIVERY_SERVICE.
ELB_ACCOUNTS: dict[str, str] = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580",
    "ap-south-1": "718504428378",
    "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-south-1": "635631232127",
    "eu-west-3": "009996457667",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
    "us-gov-west-1": "048591011584",
    "us-gov-east-1": "190560391635",
}

# Noncurrent versions exist only because an expiry or a stray overwrite left them: keep them
# one week so a mistaken deletion can be undone, then let them go.
NONCURRENT_DAYS = 7


def log_delivery_principal(region: str, partition: str = "aws") -> dict[str, str]:
    """Who writes ALB access logs in ``region``: the Region's ELB account or the service."""
    account = ELB_ACCOUNTS.get(region)
    if account is not None:
        return {"AWS": f"arn:{partition}:iam::{account}:root"}
    return {"Service": LOG_DELIVERY_SERVICE}


def log_object_arn(partition: str, bucket: str, prefix: str, account: str) -> str:
    """The only keys log delivery may write: ``[<prefix>/]AWSLogs/<account>/*``."""
    head = f"{prefix}/" if prefix else ""
    return f"arn:{partition}:s3:::{bucket}/{head}AWSLogs/{account}/*"


def access_log_bucket_policy(
    partition: str, region: str, bucket: str, prefix: str, account: str
) -> dict[str, Any]:
    """TLS only for everyone; log delivery may put objects under its prefix and nowhere else."""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyWithoutTLS",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "LoadBalancerLogDelivery",
                "Effect": "Allow",
                "Principal": log_delivery_principal(region, partition),
                "Action": "s3:PutObject",
                "Resource": log_object_arn(partition, bucket, prefix, account),
            },
        ],
    }


@dataclass(frozen=True)
class AccessLogBucketArgs:
    region: str
    """The load balancer's Region (log delivery writes only to a bucket in its own Region)."""
    prefix: str
    """Key prefix of the logs (``loadBalancer.accessLogs.prefix``), may be empty."""
    expiration_days: int
    """Days a log object is kept."""


class AccessLogBucket(pulumi.ComponentResource):
    """Private, versioned, SSE-S3, TLS-only bucket that only ELB log delivery writes to."""

    bucket_name: pulumi.Output[str]
    policy: aws.s3.BucketPolicy

    def __init__(
        self, name: str, args: AccessLogBucketArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golden-fleet:index:AccessLogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))

        bucket = aws.s3.Bucket(f"{name}-bucket", opts=child)
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": args.expiration_days},
                    "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_DAYS},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            # Rules for noncurrent versions follow versioning, which must be enabled first
            # (pulumi_aws BucketLifecycleConfiguration docs, "Creating a Lifecycle
            # Configuration for a bucket with versioning", depends_on the versioning).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )

        def policy(values: list[str]) -> str:
            bucket_name, account, caller_arn = values
            partition = caller_arn.split(":")[1]
            return json.dumps(
                access_log_bucket_policy(partition, args.region, bucket_name, args.prefix, account)
            )

        # The public access block first: the bucket never has a policy without it.
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.bucket, identity.account_id, identity.arn).apply(
                policy
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block]),
        )
        self.bucket_name = bucket.bucket
        self.register_outputs({"bucketName": self.bucket_name})
