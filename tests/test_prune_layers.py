"""``prune`` with foundation layers and revoked images: a revoked image stays only while something
runs it (and never counts among the newest --keep); a foundation stays while it is the newest of
its runtime, pinned by a stack file, or the base of an image that stays (any service's); the rest
go, after the application images built on them. Pure decisions, then one --apply on moto in
tests/test_prune.py's style."""

from __future__ import annotations

import argparse
from pathlib import Path

import boto3
import pytest
from harness import copy_stack_file
from local_aws import use_test_credentials
from moto import mock_aws

from release import prune
from release.prune import Image, decide

HOME = "eu-west-1"
REASON = "CVE-2027-0001 in openssl"


def app(
    image_id: str,
    version: str,
    stamp: str = "20270101T000000Z",
    revoked: str | None = None,
    state: str = "available",
) -> Image:
    return Image(image_id, HOME, f"checkout-{version}-{stamp}", version, state, (), None, revoked)


def foundation(
    image_id: str, stamp: str, runtime: str = "python", revoked: str | None = None
) -> Image:
    return Image(
        image_id,
        HOME,
        f"golden-foundation-{runtime}-{stamp}",
        "",
        "available",
        (),
        None,
        revoked,
        runtime,
    )


def outcome(decisions) -> dict[str, list[str]]:
    return {d.image.image_id: d.reasons for d in decisions}


# ---------------------------------------------------------------------------------------------
# Pure decisions
# ---------------------------------------------------------------------------------------------
def test_a_revoked_version_is_not_among_the_newest_and_goes_when_nothing_runs_it():
    images = [app("ami-1", "1.1.0"), app("ami-2", "1.2.0"), app("ami-3", "1.3.0", revoked=REASON)]
    reasons = outcome(decide(images, 2, {}, {}))
    assert reasons == {"ami-1": ["newest 2"], "ami-2": ["newest 2"], "ami-3": []}


def test_a_revoked_image_stays_while_anything_runs_it():
    images = [app("ami-3", "1.3.0", revoked=REASON), app("ami-4", "1.4.0", revoked=REASON)]
    reasons = outcome(
        decide(
            images, 3, {"1.3.0": ["Pulumi.prod.yaml blue"]}, {(HOME, "ami-4"): ["instance i-0abc"]}
        )
    )
    assert reasons == {"ami-3": ["Pulumi.prod.yaml blue"], "ami-4": ["instance i-0abc"]}


def test_foundations_stay_while_newest_pinned_or_under_a_kept_image():
    images = [
        app("ami-old", "1.1.0"),  # goes (not among the newest 1)
        app("ami-new", "1.2.0"),  # stays: newest 1
        foundation("ami-f1", "20261001T000000Z"),  # base of ami-old only: goes
        foundation("ami-f2", "20261101T000000Z"),  # base of ami-new: stays
        foundation("ami-f3", "20261201T000000Z", revoked=REASON),  # revoked, no child: goes
        foundation("ami-f4", "20261115T000000Z"),  # newest python foundation not revoked
        foundation("ami-f5", "20260901T000000Z"),  # pinned by a stack file
        foundation("ami-f6", "20260801T000000Z"),  # another service's image stands on it
        foundation("ami-n1", "20260801T000000Z", runtime="nodejs"),  # newest nodejs
    ]
    children = {
        (HOME, "ami-f1"): ["checkout-1.1.0-20270101T000000Z"],
        (HOME, "ami-f2"): ["checkout-1.2.0-20270101T000000Z"],
        (HOME, "ami-f6"): ["payments-2.0.0-20260802T000000Z"],
    }
    pinned = {"golden-foundation-python-20260901T000000Z": ["Pulumi.staging.yaml image.foundation"]}
    decisions = decide(images, 1, {}, {}, children, pinned)
    reasons = outcome(decisions)
    assert reasons["ami-old"] == [] and reasons["ami-new"] == ["newest 1"]
    assert reasons["ami-f1"] == []
    assert reasons["ami-f2"] == ["base of checkout-1.2.0-20270101T000000Z"]
    assert reasons["ami-f3"] == []
    assert reasons["ami-f4"] == ["newest python foundation"]
    assert reasons["ami-f5"] == ["Pulumi.staging.yaml image.foundation"]
    assert reasons["ami-f6"] == ["base of payments-2.0.0-20260802T000000Z"]
    assert reasons["ami-n1"] == ["newest nodejs foundation"]
    order = [d.image.is_foundation for d in decisions]
    assert order == sorted(order), "a foundation would go before the images built on it"


# ---------------------------------------------------------------------------------------------
# --apply against moto
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def account(monkeypatch):
    use_test_credentials(monkeypatch)
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        yield boto3.client("ec2", region_name=HOME)


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: golden-fleet\nruntime: python\n")
    copy_stack_file("prod", tmp_path)
    copy_stack_file("staging", tmp_path)
    return tmp_path


def register(ec2, name: str, tags: dict[str, str] | None = None) -> str:
    image_id = ec2.register_image(Name=name, RootDeviceName="/dev/xvda", VirtualizationType="hvm")[
        "ImageId"
    ]
    if tags:
        ec2.create_tags(
            Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
    return image_id


def names(ec2) -> set[str]:
    return {i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]}


def test_apply_deletes_the_unused_revoked_image_and_the_foundation_under_nothing(account, project):
    ec2 = account
    register(ec2, "golden-foundation-python-20260901T000000Z", {"Layer": "foundation"})  # bare
    old = register(ec2, "golden-foundation-python-20261001T000000Z", {"Layer": "foundation"})
    new = register(ec2, "golden-foundation-python-20261101T000000Z", {"Layer": "foundation"})
    on_old = {"Layer": "application", "Foundation": old}
    on_new = {"Layer": "application", "Foundation": new}
    # staging runs 1.4.0 (blue) and 1.5.0 (green); prod 1.4.0.
    register(ec2, "checkout-1.4.0-20261002T000000Z", on_old)  # named by the stack files
    register(ec2, "checkout-1.5.0-20261102T000000Z", on_new)
    register(ec2, "checkout-1.6.0-20261103T000000Z", on_new | {"Revoked": REASON})
    register(ec2, "checkout-1.3.0-20261003T000000Z", on_old)  # newest 3: 1.5.0, 1.4.0, 1.3.0
    args = argparse.Namespace(
        stack="staging", region=None, all_regions=False, keep=3, apply=True, usage_role=None
    )
    lines: list[str] = []
    assert prune.run(args, project / "Pulumi.staging.yaml", project, lines.append) == 0
    table = "\n".join(lines)
    assert names(ec2) == {
        "golden-foundation-python-20261001T000000Z",  # base of 1.4.0 and 1.3.0
        "golden-foundation-python-20261101T000000Z",  # newest, and base of 1.5.0
        "checkout-1.4.0-20261002T000000Z",
        "checkout-1.5.0-20261102T000000Z",
        "checkout-1.3.0-20261003T000000Z",
    }, table
    assert f"revoked: {REASON}" in table
    assert "python foundation" in table and "base of checkout-1.3.0-20261003T000000Z" in table
    assert "deleted 2 images" in table

    # 1.3.0 leaves the newest 3 once 1.7.0 and 1.8.0 exist: it goes, and then the old
    # foundation still stands under 1.4.0, which the stack files name.
    register(ec2, "checkout-1.7.0-20261104T000000Z", on_new)
    register(ec2, "checkout-1.8.0-20261105T000000Z", on_new)
    lines.clear()
    assert prune.run(args, project / "Pulumi.staging.yaml", project, lines.append) == 0
    assert "checkout-1.3.0-20261003T000000Z" not in names(ec2)
    assert "golden-foundation-python-20261001T000000Z" in names(ec2), "\n".join(lines)
