"""``revoke`` stops launches: it disables every revoked image no Auto Scaling group,
launch-template version or instance uses, names the color (stack, group) running each image it
leaves enabled with the command that replaces it, keeps images shared with other accounts
enabled unless told, and a failure midway says what was written. Against the local AWS API with
DisableImage, DescribeImages and RunInstances modelled as the EC2 API reference documents a
disabled image (tests/layered_images.py)."""

from __future__ import annotations

import argparse
import datetime as dt

import boto3
import pytest
from botocore.exceptions import ClientError
from harness import copy_stack_file
from layered_images import REGION, Fleet, RefusedOnce

from components.image_contract import revocation
from release import revoke
from release.cli import main
from release.images import parse_aws_time

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
REASON = "CVE-2027-0001 in openssl"


@pytest.fixture
def root(tmp_path):
    copy_stack_file("staging", tmp_path)
    return tmp_path


def run(capsys, root, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["revoke", *argv, "--file", str(root / "Pulumi.staging.yaml")])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def launch(image_id: str) -> None:
    boto3.client("ec2", region_name=REGION).run_instances(
        ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )


def test_revoke_disables_what_nothing_launches_and_names_the_color_of_the_rest(
    capsys, images, root
):
    """Finding 5 of issue 24: deprecation alone let groups keep launching a revoked image."""
    foundation = images.foundation(NOW - 3 * DAY)
    unused = images.application("1.4.0", NOW - 2 * DAY, foundation)
    running = images.application("1.4.0", NOW - DAY, foundation)
    group = Fleet().color("blue", running)
    code, out, err = run(capsys, root, "1.4.0", "--reason", REASON)
    assert code == 0, err

    off = images.get(unused)
    assert off["State"] == "disabled", off
    assert parse_aws_time(off.get("DeprecationTime")) is not None, "disabling undid deprecation"
    assert revocation(off) == REASON
    with pytest.raises(ClientError, match=r"InvalidAMIID\.Unavailable"):
        launch(unused)

    on = images.get(running)
    assert on["State"] == "available", "disabled an image blue's group launches"
    assert revocation(on) == REASON
    lines = [line for line in out.splitlines() if line.startswith(f"still launchable: {running}")]
    assert any(f"blue of staging (group {group}) launches it" in line for line in lines), out
    # blue is staging's stable color: its traffic leaves through a rollout
    assert all(
        "python -m release rollout staging VERSION" in line for line in lines if "group " in line
    ), out
    assert "disabled 1" in out and "1 stay launchable" in out, out


def test_a_rerun_disables_the_image_once_its_color_moved_off_it(capsys, images, root):
    foundation = images.foundation(NOW - 3 * DAY)
    image_id = images.application("1.4.0", NOW - DAY, foundation)
    fleet = Fleet()
    group = fleet.color("green", image_id, desired=0)
    assert run(capsys, root, "1.4.0", "--reason", REASON)[0] == 0
    assert images.get(image_id)["State"] == "available"

    # green is replaced: its group and template gone (what `deploy` + `pulumi up` end with)
    template = fleet.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ][0]["LaunchTemplate"]["LaunchTemplateId"]
    fleet.autoscaling.delete_auto_scaling_group(AutoScalingGroupName=group, ForceDelete=True)
    fleet.ec2.delete_launch_template(LaunchTemplateId=template)
    code, out, err = run(capsys, root, "1.4.0", "--reason", REASON)
    assert code == 0, err
    assert images.get(image_id)["State"] == "disabled", out
    code, out, err = run(capsys, root, "1.4.0", "--reason", REASON)
    assert code == 0 and "already revoked; disabled" in out, out + err


def test_an_older_template_version_and_a_lone_instance_keep_it_enabled(capsys, images, root):
    foundation = images.foundation(NOW - 3 * DAY)
    revoked = images.application("1.4.0", NOW - 2 * DAY, foundation)
    lone = images.application("1.4.0", NOW - DAY, foundation)
    good = images.application("1.5.0", NOW - DAY, foundation)
    fleet = Fleet()
    group = fleet.color("blue", revoked)
    template = fleet.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ][0]["LaunchTemplate"]["LaunchTemplateId"]
    fleet.ec2.create_launch_template_version(
        LaunchTemplateId=template, LaunchTemplateData={"ImageId": good}
    )
    # the program's templates make each new version their default (update_default_version)
    fleet.ec2.modify_launch_template(LaunchTemplateId=template, DefaultVersion="2")
    fleet.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=group, LaunchTemplate={"LaunchTemplateId": template, "Version": "2"}
    )
    launch(lone)
    code, out, err = run(capsys, root, "1.4.0", "--reason", REASON)
    assert code == 0, err
    assert images.get(revoked)["State"] == "available"
    assert images.get(lone)["State"] == "available"
    assert f"--launch-template-id {template} --versions 1" in out, out
    assert f"start-instance-refresh --auto-scaling-group-name {group}" in out, out
    assert "outside any group run it" in out and "aws ec2 terminate-instances" in out, out


def test_an_image_shared_with_another_account_stays_enabled_unless_told(capsys, images, root):
    image_id = images.application("1.4.0", NOW - DAY, images.foundation(NOW - 2 * DAY))
    images.ec2.modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Add": [{"UserId": "222222222222"}]}
    )
    code, out, err = run(capsys, root, "1.4.0", "--reason", REASON)
    assert code == 0, err
    assert images.get(image_id)["State"] == "available"
    assert "shared with account 222222222222" in out and "--disable-shared" in out, out

    code, out, err = run(capsys, root, "1.4.0", "--reason", REASON, "--disable-shared")
    assert code == 0, err
    off = images.get(image_id)
    assert off["State"] == "disabled", out
    permissions = images.ec2.describe_image_attribute(
        ImageId=image_id, Attribute="launchPermission"
    )["LaunchPermissions"]
    assert permissions == [], "DisableImage removes every launch permission"


def test_a_refused_disable_says_what_was_written_and_a_rerun_completes_it(images, root, capsys):
    foundation = images.foundation(NOW - 3 * DAY)
    first = images.application("1.4.0", NOW - 2 * DAY, foundation)
    second = images.application("1.4.0", NOW - DAY, foundation)
    flaky = RefusedOnce(images.ec2, "DisableImage", second)
    args = revoke.add_parser(argparse.ArgumentParser().add_subparsers()).parse_args(
        ["1.4.0", "--reason", REASON, "--file", str(root / "Pulumi.staging.yaml")]
    )
    lines: list[str] = []
    with pytest.raises(revoke.RevokeError) as stopped:
        revoke.run(args, root, out=lines.append, clients=lambda region: flaky)
    message = str(stopped.value)
    assert "AWS refused a call (UnauthorizedOperation)" in message, message
    assert f"partly revoked: {second} ({REGION}: tags, description, deprecation written)" in (
        message
    ), message
    assert "run the same command again" in message
    table = "\n".join(lines)
    assert "disable refused (UnauthorizedOperation)" in table, table
    states = {first: images.get(first)["State"], second: images.get(second)["State"]}
    # DescribeImages lists in no promised order: the first image was disabled or not reached
    assert states[second] == "available", states
    assert revocation(images.get(second)) == REASON, "a refused disable undid the revocation"

    code, out, err = run(capsys, root, "1.4.0", "--reason", REASON)
    assert code == 0, err
    assert images.get(first)["State"] == images.get(second)["State"] == "disabled", out


def test_a_group_that_starts_using_the_image_midway_keeps_it_enabled(images, root):
    """What uses the images is read after the tags and deprecation are written, right before
    DisableImage: a color deployed in between is seen."""
    image_id = images.application("1.4.0", NOW - DAY, images.foundation(NOW - 2 * DAY))
    real = images.ec2
    fleet = Fleet()
    made: list[str] = []

    class Racing:
        def __getattr__(self, name):
            return getattr(real, name)

        def enable_image_deprecation(self, **kwargs):
            answer = real.enable_image_deprecation(**kwargs)
            made.append(fleet.color("green", image_id, desired=0))
            return answer

    args = revoke.add_parser(argparse.ArgumentParser().add_subparsers()).parse_args(
        ["1.4.0", "--reason", REASON, "--file", str(root / "Pulumi.staging.yaml")]
    )
    lines: list[str] = []
    assert revoke.run(args, root, out=lines.append, clients=lambda region: Racing()) == 0
    assert made and images.get(image_id)["State"] == "available", "\n".join(lines)
    assert any(f"green of staging (group {made[0]})" in line for line in lines), lines


def test_dry_run_says_what_it_would_disable_and_writes_nothing(capsys, images, root):
    image_id = images.application("1.4.0", NOW - DAY, images.foundation(NOW - 2 * DAY))
    code, out, err = run(capsys, root, "1.4.0", "--reason", REASON, "--dry-run")
    assert code == 0, err
    assert "would revoke (tags, description, deprecation, disable)" in out, out
    assert images.get(image_id)["State"] == "available"
    assert revocation(images.get(image_id)) is None


def test_the_stand_in_hides_a_disabled_image_as_the_api_reference_says(images):
    image_id = images.application("1.4.0", NOW - DAY)
    images.ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=NOW + DAY)
    images.ec2.disable_image(ImageId=image_id)
    assert images.ec2.describe_images(ImageIds=[image_id])["Images"] == []
    assert images.ec2.describe_images(Owners=["self"])["Images"] == []
    shown = images.ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]
    assert [i["ImageId"] for i in shown] == [image_id]
    assert shown[0]["State"] == "disabled" and shown[0]["DeprecationTime"]
    with pytest.raises(ClientError, match=r"InvalidAMIID\.Unavailable"):
        launch(image_id)
    images.ec2.enable_image(ImageId=image_id)
    assert images.ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"
