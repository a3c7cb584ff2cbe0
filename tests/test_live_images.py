"""The live drift check resolves a version's image like every other lookup: deprecated included.

A promoting account stops seeing a deprecated AMI it does not own unless DescribeImages asks for
deprecated images (EC2 User Guide, "Deprecate an Amazon EC2 AMI"); a year after a bake, the drift
check would otherwise report every color as running an unknown image.
"""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from components.config import parse_stack_config
from release import live


def test_the_files_version_resolves_to_a_deprecated_image_when_it_is_the_only_one(prod_config):
    cfg = parse_stack_config(prod_config)
    ec2 = boto3.client(
        "ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    deprecated = {
        "ImageId": "ami-0aaaaaaaaaaaaaaaa",
        "Name": "checkout-1.4.0-20251101T120000Z",
        "DeprecationTime": "2026-11-01T12:00:00.000Z",
    }
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_images",
            {"Images": [deprecated]},
            {
                "Owners": ["111111111111"],
                "Filters": [{"Name": "name", "Values": ["checkout-1.4.0-*"]}],
                "IncludeDeprecated": True,
                "IncludeDisabled": True,
            },
        )
        clients = live.Clients(
            autoscaling=None, refreshes=None, ec2=ec2, elbv2=None, cloudwatch=None
        )
        assert live.image_for_version(clients, cfg, "1.4.0") == "ami-0aaaaaaaaaaaaaaaa"
        stub.assert_no_pending_responses()
