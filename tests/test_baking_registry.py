"""baking.registry: reuse, conflict or build, decided from the images EC2 holds; clean-up."""

from __future__ import annotations

import bake_fixtures  # noqa: F401  (puts packer/, the bake package's home, on sys.path)
import boto3
import pytest
from baking.registry import conflict_without_foundation, decide, find_images, remove_images
from moto import mock_aws

NAME = "checkout-1.0.0-20261126T080000Z"


def image(name: str, digest: str, state: str = "available", managed: bool = True) -> dict:
    tags = [{"Key": "TemplateDigest", "Value": digest}]
    if managed:
        tags.append({"Key": "ManagedBy", "Value": "golden-fleet"})
    return {
        "ImageId": f"ami-{abs(hash(name + digest)) % 10**12:012x}",
        "Name": name,
        "State": state,
        "Tags": tags,
        "CreationDate": "2026-11-26T08:00:00.000Z",
    }


def test_same_digest_is_reused_other_digest_refused_nothing_built():
    assert decide([], "checkout", "1.0.0", "d1").action == "build"
    reuse = decide([image(NAME, "d1")], "checkout", "1.0.0", "d1")
    assert reuse.action == "reuse" and reuse.image["Name"] == NAME
    assert decide([image(NAME, "d2")], "checkout", "1.0.0", "d1").action == "conflict"


@pytest.mark.parametrize(
    "other",
    [
        image(NAME, "d2", state="failed"),
        image("checkout-1.0.0-rc.1-20261126T080000Z", "d2"),
        image(NAME, "d2", managed=False),
        image(NAME + "\n", "d2"),
    ],
    ids=["failed", "other-version", "not-managed", "trailing-newline"],
)
def test_what_is_not_this_versions_available_managed_image_is_no_conflict(other):
    assert decide([other], "checkout", "1.0.0", "d1").action == "build"


@pytest.mark.parametrize("digest", ["d1", "d2"])
def test_a_version_baked_on_another_foundation_conflicts_before_a_foundation_is_baked(digest):
    """With no foundation to build on, any available image of the version is a conflict, whatever
    its digest: the new foundation's digest is part of the new image's, so content differs."""
    decision = conflict_without_foundation([image(NAME, digest)], "checkout", "1.0.0")
    assert decision.action == "conflict" and decision.image["Name"] == NAME
    assert conflict_without_foundation([], "checkout", "1.0.0").action == "build"


@pytest.mark.parametrize(
    "other",
    [
        image(NAME, "d2", state="failed"),
        image("checkout-1.0.0-rc.1-20261126T080000Z", "d2"),
        image(NAME, "d2", managed=False),
    ],
    ids=["failed", "other-version", "not-managed"],
)
def test_without_a_foundation_what_is_not_this_versions_image_is_no_conflict(other):
    assert conflict_without_foundation([other], "checkout", "1.0.0").action == "build"


@pytest.fixture()
def ec2(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("ec2", region_name="eu-west-1")


def register(ec2, name: str, managed: bool = True, run: str = "run-a") -> str:
    ami = ec2.register_image(
        Name=name,
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]
    tags = [{"Key": "BakeRun", "Value": run}]
    if managed:
        tags.append({"Key": "ManagedBy", "Value": "golden-fleet"})
    ec2.create_tags(Resources=[ami], Tags=tags)
    return ami


def test_find_images_asks_for_this_services_managed_images(ec2):
    ours = register(ec2, NAME)
    register(ec2, "checkout-1.0.0-20261126T090000Z", managed=False)
    register(ec2, "payments-1.0.0-20261126T080000Z")
    assert [i["ImageId"] for i in find_images(ec2, "checkout", "1.0.0")] == [ours]


def test_clean_up_removes_only_this_runs_image_of_that_name_in_the_home_region(ec2):
    """Another bake of the same version in the same second has the same name: its image stays."""
    doomed = register(ec2, NAME, run="run-a")
    other_run = register(ec2, NAME, run="run-b")
    other_name = register(ec2, "checkout-1.0.0-20261126T090000Z", run="run-a")
    elsewhere = boto3.client("ec2", region_name="eu-central-1")
    copy = register(elsewhere, NAME, run="run-a")
    assert remove_images(ec2, NAME, "run-a") == [doomed]
    left = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert left == {other_run, other_name}
    assert [i["ImageId"] for i in elsewhere.describe_images(Owners=["self"])["Images"]] == [copy]
    assert remove_images(ec2, NAME, "run-a") == [], "a second clean-up finds nothing"
