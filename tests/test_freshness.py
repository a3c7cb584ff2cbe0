"""Revoked images are refused and flagged; stale foundations warn in ``status``, refuse in
``deploy`` (unless --allow-stale-foundation) and fail ``images STACK --stale``. On the local
AWS API with images tagged as the layered bake tags them (tests/layered_images.py)."""

from __future__ import annotations

import datetime as dt
import itertools

import boto3
import pytest
from harness import copy_stack_file, load_stack_config
from layered_images import Fleet

from components.config import ConfigError, parse_stack_config
from release.cli import main
from release.images import lineage, newest_image, revoked_images

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
REASON = "CVE-2027-0001 in openssl"


@pytest.fixture
def prod_file(tmp_path):
    return copy_stack_file("prod", tmp_path)


@pytest.fixture
def staging_file(tmp_path):
    return copy_stack_file("staging", tmp_path)


def release(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def revoke(capsys, staging_file, what: str) -> None:
    code, _, err = release(capsys, "revoke", what, "--reason", REASON, "--file", str(staging_file))
    assert code == 0, err


# ---------------------------------------------------------------------------------------------
# Revocation refused
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_deploy_refuses_a_revoked_version_naming_the_reason(
    capsys, images, tmp_path, staging_file, stack
):
    foundation = images.foundation(NOW - 2 * DAY)
    images.application("1.6.0", NOW - DAY, foundation)
    revoke(capsys, staging_file, foundation[1])
    path = tmp_path / f"Pulumi.{stack}.yaml"
    if stack == "prod":
        copy_stack_file("prod", tmp_path)
    before = path.read_bytes()
    code, _, err = release(capsys, "deploy", stack, "1.6.0", "--file", str(path))
    assert code == 1, "deployed a revoked image"
    assert "1.6.0 is revoked" in err and REASON in err, err
    assert path.read_bytes() == before


def test_a_revoked_image_is_skipped_when_the_version_has_another(capsys, images, prod_file):
    """A revoked bake and a later good bake of one version: deploy takes the good one."""
    bad = images.application("1.5.0", NOW - 2 * DAY, images.foundation(NOW - 3 * DAY))
    images.ec2.create_tags(Resources=[bad], Tags=[{"Key": "Revoked", "Value": REASON}])
    good = images.application("1.5.0", NOW - 3 * DAY, images.foundation(NOW - 4 * DAY))
    code, out, err = release(capsys, "deploy", "prod", "1.5.0", "--file", str(prod_file))
    assert code == 0, err
    assert f"({good})" in out and bad not in out


def test_status_flags_a_color_running_a_revoked_image(capsys, images, prod_file, staging_file):
    images.application("1.4.0", NOW - DAY, images.foundation(NOW - 2 * DAY))
    revoke(capsys, staging_file, "1.4.0")
    code, out, err = release(
        capsys, "status", "prod", "--file", str(prod_file), "--no-outputs", "--no-live"
    )
    assert code == 0, err
    assert f"REVOKED: {REASON}" in out
    warnings = [line for line in out.splitlines() if line.startswith("warning: blue runs 1.4.0")]
    assert warnings and REASON in warnings[0], out


# ---------------------------------------------------------------------------------------------
# Freshness
# ---------------------------------------------------------------------------------------------
def test_deploy_refuses_a_stale_foundation_unless_allowed(capsys, images, prod_file):
    old = images.foundation(NOW - 31 * DAY)
    images.application("1.5.0", NOW - DAY, old)
    before = prod_file.read_bytes()
    code, _, err = release(capsys, "deploy", "prod", "1.5.0", "--file", str(prod_file))
    assert code == 1, "deployed an image on a stale foundation"
    assert f"foundation {old[1]}, built 31 days ago" in err, err
    assert "release.maxFoundationAgeDays (30)" in err and "--allow-stale-foundation" in err
    assert prod_file.read_bytes() == before

    code, out, err = release(
        capsys, "deploy", "prod", "1.5.0", "--file", str(prod_file), "--allow-stale-foundation"
    )
    assert code == 0, err
    assert "warning: --allow-stale-foundation: deploying although" in out
    assert parse_stack_config(load_stack_config(prod_file)).fleets.green.version == "1.5.0"


def test_the_limit_is_the_stack_files_and_exactly_the_limit_is_fresh(capsys, images, prod_file):
    images.application("1.5.0", NOW - DAY, images.foundation(NOW - 30 * DAY))
    code, _, err = release(capsys, "deploy", "prod", "1.5.0", "--file", str(prod_file), "--dry-run")
    assert code == 0, err
    text = prod_file.read_text().replace(
        "    stable: blue", "    stable: blue\n    maxFoundationAgeDays: 20", 1
    )
    prod_file.write_text(text)
    code, _, err = release(capsys, "deploy", "prod", "1.5.0", "--file", str(prod_file))
    assert code == 1 and "release.maxFoundationAgeDays (20)" in err, err


def test_the_foundation_is_read_from_the_description_across_accounts(capsys, images, prod_file):
    """Tags are invisible to prod's account: the description names the foundation."""
    old = images.foundation(NOW - 40 * DAY)
    image_id = images.application("1.5.0", NOW - DAY, old)
    images.ec2.delete_tags(Resources=[image_id], Tags=[{"Key": "FoundationName"}])
    code, _, err = release(capsys, "deploy", "prod", "1.5.0", "--file", str(prod_file))
    assert code == 1 and f"foundation {old[1]}, built 40 days ago" in err, err


def test_an_image_from_before_the_layers_is_reported_not_judged(capsys, images, prod_file):
    images.application("1.5.0", NOW - 80 * DAY)  # a full bake: no lineage
    code, _, err = release(capsys, "deploy", "prod", "1.5.0", "--file", str(prod_file))
    assert code == 0, err
    images.application("1.4.0", NOW - 80 * DAY)
    code, out, err = release(capsys, "images", "prod", "--file", str(prod_file), "--stale")
    assert code == 0, out + err
    assert "foundation unknown (baked before layers)" in out


def test_status_shows_each_foundation_and_warns_past_the_limit(capsys, images, prod_file):
    stale = images.foundation(NOW - 45 * DAY)
    images.application("1.4.0", NOW - 44 * DAY, stale)
    code, out, err = release(
        capsys, "status", "prod", "--file", str(prod_file), "--no-outputs", "--no-live"
    )
    assert code == 0, err
    assert f"blue's foundation {stale[1]} (45 days old)" in out, out
    warnings = [line for line in out.splitlines() if "maxFoundationAgeDays" in line]
    assert [w.split(" on ")[0] for w in warnings] == [
        "warning: blue runs 1.4.0",
        "warning: green runs 1.4.0",
    ], out


@pytest.mark.parametrize(
    ("foundation_days", "revoked", "expected"),
    [(3, False, 0), (31, False, 1), (3, True, 1)],
)
def test_images_stale_exits_1_for_a_stale_or_revoked_running_image(
    capsys, images, prod_file, staging_file, foundation_days, revoked, expected
):
    images.application("1.4.0", NOW - DAY, images.foundation(NOW - foundation_days * DAY))
    if revoked:
        revoke(capsys, staging_file, "1.4.0")
    code, out, err = release(capsys, "images", "prod", "--file", str(prod_file), "--stale")
    assert code == expected, out + err
    assert out.count("blue (running): checkout-1.4.0-") == 1, out
    if expected:
        assert "rebake needed: blue 1.4.0: " in out
    code, _, _ = release(capsys, "images", "prod", "--file", str(prod_file))
    assert code == 0, "without --stale the listing never fails"


def test_images_stale_is_an_error_when_aws_cannot_be_read(capsys, prod_file, no_aws_credentials):
    code, _, err = release(capsys, "images", "prod", "--file", str(prod_file), "--stale")
    assert code == 1 and "could not read" in err, err


# ---------------------------------------------------------------------------------------------
# Pure rules
# ---------------------------------------------------------------------------------------------
def test_the_lookup_is_the_same_in_every_listing_order():
    """DescribeImages documents no order: revoked, deprecated, current images in any order."""
    current = {"ImageId": "ami-c", "Name": "checkout-1.5.0-20270102T000000Z"}
    deprecated = {
        "ImageId": "ami-d",
        "Name": "checkout-1.5.0-20270103T000000Z",
        "DeprecationTime": "2027-01-04T00:00:00.000Z",
    }
    revoked = {
        "ImageId": "ami-r",
        "Name": "checkout-1.5.0-20270105T000000Z",
        "Description": f"REVOKED: {REASON} | checkout 1.5.0",
    }
    now = dt.datetime(2027, 2, 1, tzinfo=dt.UTC)
    for order in itertools.permutations([current, deprecated, revoked]):
        assert newest_image(order, "checkout", "1.5.0", now)["ImageId"] == "ami-c"
        assert [i["ImageId"] for i in revoked_images(order, "checkout", "1.5.0")] == ["ami-r"]
    assert newest_image([revoked], "checkout", "1.5.0", now) is None


def test_lineage_prefers_the_owners_tag_then_the_description():
    tagged = {
        "Name": "checkout-1.5.0-20270105T000000Z",
        "Tags": [{"Key": "FoundationName", "Value": "golden-foundation-python-20270101T000000Z"}],
        "Description": "on golden-foundation-python-20261201T000000Z",
    }
    assert lineage(tagged).foundation == "golden-foundation-python-20270101T000000Z"
    assert lineage(tagged).built == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    described = {"Name": "x", "Description": "on golden-foundation-nodejs-20261201T000000Z."}
    assert lineage(described).foundation == "golden-foundation-nodejs-20261201T000000Z"
    assert lineage({"Name": "x", "Description": "golden-foundation-python-2027"}).foundation is None


@pytest.mark.parametrize(
    ("image", "rule"),
    [
        ({"foundation": "golden-foundation-nodejs-20270101T000000Z"}, "of runtime python"),
        ({"foundation": "golden-foundation-python-latest"}, "of runtime python"),
    ],
)
def test_a_foundation_pin_must_name_a_foundation_of_the_runtime(staging_config, image, rule):
    staging_config["golden-fleet:image"].update(image)
    with pytest.raises(ConfigError, match=rf"golden-fleet:image\.foundation: .*{rule}"):
        parse_stack_config(staging_config)


@pytest.mark.parametrize("days", [0, 366, "30"])
def test_max_foundation_age_days_is_a_whole_number_of_days(staging_config, days):
    staging_config.setdefault("golden-fleet:release", {})["maxFoundationAgeDays"] = days
    with pytest.raises(ConfigError, match=r"golden-fleet:release\.maxFoundationAgeDays"):
        parse_stack_config(staging_config)


def test_max_foundation_age_days_defaults_to_30(staging_config):
    assert parse_stack_config(staging_config).release.max_foundation_age_days == 30


# ---------------------------------------------------------------------------------------------
# What the groups launch (finding 9 of issue 25)
# ---------------------------------------------------------------------------------------------
def rebaked_after_revocation(capsys, images, staging_file) -> tuple[str, str, str]:
    """prod's blue group launches 1.4.0's first image; 1.4.0 is revoked (that image stays
    enabled: a group uses it), then baked again. Returns (revoked image, rebake, blue group)."""
    foundation = images.foundation(NOW - 3 * DAY)
    first = images.application("1.4.0", NOW - 2 * DAY, foundation)
    group = Fleet().color("blue", first, stack="prod")
    revoke(capsys, staging_file, "1.4.0")
    rebake = images.application("1.4.0", NOW - DAY, foundation)
    return first, rebake, group


def test_images_stale_judges_the_image_the_group_launches_not_the_versions_newest(
    capsys, images, prod_file, staging_file
):
    """Before: the version resolved to the rebake, and --stale exited 0 while blue's launch
    template still launched the revoked image."""
    first, rebake, group = rebaked_after_revocation(capsys, images, staging_file)
    code, out, err = release(capsys, "images", "prod", "--file", str(prod_file), "--stale")
    assert code == 1, out + err
    [blue] = [line for line in out.splitlines() if line.startswith("blue (running)")]
    assert f"({first}) launched by group {group}, launch-template version 1" in blue, blue
    assert f"REVOKED: {REASON}" in blue, blue
    [green] = [line for line in out.splitlines() if line.startswith("green (running)")]
    assert f"({rebake})" in green and "fresh" in green, green  # no group: the version's image


def test_status_shows_the_image_the_group_launches(capsys, images, prod_file, staging_file):
    first, _, group = rebaked_after_revocation(capsys, images, staging_file)
    code, out, err = release(capsys, "status", "prod", "--file", str(prod_file), "--no-outputs")
    assert code == 0, err
    [line] = [x for x in out.splitlines() if x.startswith("image blue: ")]
    assert first in line and f"launched by group {group}" in line, out
    warnings = [x for x in out.splitlines() if x.startswith("warning: blue runs 1.4.0")]
    assert warnings and REASON in warnings[0], out


def test_images_revoked_lists_each_revoked_image_with_its_state(
    capsys, images, prod_file, staging_file
):
    first, rebake, group = rebaked_after_revocation(capsys, images, staging_file)
    unused = images.application("1.3.0", NOW - 5 * DAY, images.foundation(NOW - 6 * DAY))
    revoke(capsys, staging_file, "1.3.0")  # nothing uses it: disabled
    code, out, err = release(capsys, "images", "prod", "--file", str(prod_file), "--revoked")
    assert code == 1, "a revoked image still in use is a failure of --revoked: " + err
    lines = {
        x.split(" (")[1].split(")")[0]: x for x in out.splitlines() if x.startswith("revoked: ")
    }
    assert set(lines) == {first, unused}, out  # the rebake is not revoked
    assert "enabled (launchable by id)" in lines[first], lines[first]
    assert f"in use by: blue of prod (group {group}) launches it" in lines[first], lines[first]
    assert "disabled" in lines[unused] and "in use by nothing" in lines[unused], lines[unused]
    assert "deprecat" in lines[unused] and REASON in lines[unused], lines[unused]
    assert rebake not in lines

    # blue moved off it (its group and template gone): nothing uses a revoked image any more
    autoscaling = boto3.client("autoscaling", region_name="eu-west-1")
    [described] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ]
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName=group, ForceDelete=True)
    images.ec2.delete_launch_template(
        LaunchTemplateId=described["LaunchTemplate"]["LaunchTemplateId"]
    )
    for instance in images.ec2.describe_instances()["Reservations"]:
        images.ec2.terminate_instances(InstanceIds=[i["InstanceId"] for i in instance["Instances"]])
    code, out, err = release(capsys, "images", "prod", "--file", str(prod_file), "--revoked")
    assert code == 0, out + err
    assert "in use by nothing" in out and "in use by:" not in out, out
