"""``python -m release revoke``: tags, description prefix and deprecation, for a version's images or
a foundation and everything built on it; idempotent, first reason kept, a stop midway reported
exactly and completed by a rerun. Against the local AWS API (tests/layered_images.py)."""

from __future__ import annotations

import argparse
import datetime as dt

import pytest
from harness import copy_stack_file
from layered_images import Images, RefusedOnce

from components.image_contract import (
    revocation,
    revocation_in_description,
    revocation_reason_problem,
    revoked_description,
    tag_map,
)
from release import revoke
from release.cli import main
from release.images import parse_aws_time

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
REASON = "CVE-2027-0001 in openssl"


@pytest.fixture
def staging_file(tmp_path):
    return copy_stack_file("staging", tmp_path)


def run(capsys, staging_file, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["revoke", *argv, "--file", str(staging_file)])
    except SystemExit as exit_:  # argparse refuses an argument
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_revoked(image: dict, reason: str) -> None:
    tags = tag_map(image)
    assert tags["Revoked"] == reason, tags
    assert parse_aws_time(tags["RevokedAt"]) is not None, tags
    assert image["Description"].startswith(f"REVOKED: {reason} | "), image["Description"]
    deprecation = parse_aws_time(image.get("DeprecationTime"))
    assert deprecation is not None and deprecation <= dt.datetime.now(dt.UTC) + 2 * 60 * (
        dt.timedelta(seconds=1)
    ), image.get("DeprecationTime")
    assert revocation(image) == reason
    assert revocation_in_description(image["Description"]) == reason


def test_revoking_a_version_marks_its_images_and_nothing_else(capsys, images, staging_file):
    foundation = images.foundation(NOW - 3 * DAY)
    first = images.application("1.5.0", NOW - 2 * DAY, foundation)
    second = images.application("1.5.0", NOW - DAY, foundation)
    other = images.application("1.5.0-rc.1", NOW - DAY, foundation)
    code, out, err = run(capsys, staging_file, "1.5.0", "--reason", REASON)
    assert code == 0, err
    for image_id in (first, second):
        assert_revoked(images.get(image_id), REASON)
        assert image_id in out
    for untouched in (other, foundation[0]):
        assert revocation(images.get(untouched)) is None
        assert images.get(untouched).get("DeprecationTime") is None


def test_a_foundation_revocation_covers_every_image_built_on_it(capsys, images, staging_file):
    bad = images.foundation(NOW - 10 * DAY)
    good = images.foundation(NOW - 3 * DAY)
    children = [
        images.application("1.5.0", NOW - 9 * DAY, bad),
        images.application("1.6.0", NOW - 8 * DAY, bad),
        images.application("2.0.0", NOW - 8 * DAY, bad, service="payments"),
    ]
    spared = images.application("1.7.0", NOW - 2 * DAY, good)
    code, out, err = run(capsys, staging_file, bad[1], "--reason", REASON)
    assert code == 0, err
    for image_id in (bad[0], *children):
        assert_revoked(images.get(image_id), REASON)
    for image_id in (good[0], spared):
        assert revocation(images.get(image_id)) is None
    assert f"built on {bad[1]}" in out


def test_an_ami_id_names_what_it_is(capsys, images, staging_file):
    foundation = images.foundation(NOW - 3 * DAY)
    child = images.application("1.5.0", NOW - DAY, foundation)
    code, _, err = run(capsys, staging_file, foundation[0], "--reason", REASON)
    assert code == 0, err
    assert_revoked(images.get(child), REASON)


def test_a_second_revocation_keeps_the_first_reason_and_says_so(capsys, images, staging_file):
    image_id = images.application("1.5.0", NOW - DAY, images.foundation(NOW - 2 * DAY))
    assert run(capsys, staging_file, "1.5.0", "--reason", REASON)[0] == 0
    first = images.get(image_id)
    code, out, err = run(capsys, staging_file, "1.5.0", "--reason", "another reason")
    assert code == 0, err
    again = images.get(image_id)
    assert again == first, "a second revocation rewrote the record"
    assert "already revoked" in out and f"its earlier reason kept: {REASON!r}" in out


def test_a_stop_midway_says_what_was_revoked_and_a_rerun_completes_it(
    capsys, images, staging_file, tmp_path
):
    foundation = images.foundation(NOW - 5 * DAY)
    children = [images.application(v, NOW - 4 * DAY, foundation) for v in ("1.5.0", "1.6.0")]
    # the second image's description change is refused (a missing permission)
    flaky = RefusedOnce(images.ec2, "ModifyImageAttribute", children[0])
    args = revoke.add_parser(argparse.ArgumentParser().add_subparsers()).parse_args(
        [foundation[1], "--reason", REASON, "--file", str(staging_file)]
    )
    lines: list[str] = []
    with pytest.raises(revoke.RevokeError) as stopped:
        revoke.run(args, tmp_path, out=lines.append, clients=lambda region: flaky)
    message = str(stopped.value)
    assert f"revoked: {foundation[0]} (eu-west-1)" in message, message
    assert f"partly revoked: {children[0]} (eu-west-1: tags written)" in message, message
    assert f"not reached: {children[1]} (eu-west-1)" in message, message
    assert "run the same command again" in message
    half = images.get(children[0])
    assert tag_map(half)["Revoked"] == REASON and not half["Description"].startswith("REVOKED")
    assert revocation(images.get(children[1])) is None

    code, _, err = run(capsys, staging_file, foundation[1], "--reason", REASON)
    assert code == 0, err
    for image_id in (foundation[0], *children):
        assert_revoked(images.get(image_id), REASON)


@pytest.mark.parametrize("reason", ["", " leading space", "pipe | inside", "x" * 257, "naïve"])
def test_a_reason_outside_the_tag_rules_is_refused_before_anything(
    capsys, images, staging_file, reason
):
    image_id = images.application("1.5.0", NOW - DAY)
    code, _, err = run(capsys, staging_file, "1.5.0", "--reason", reason)
    assert code == 2 and "--reason" in err, err
    assert revocation(images.get(image_id)) is None


def test_a_description_past_255_characters_is_refused_for_every_image(capsys, images, staging_file):
    short = images.application("1.5.0", NOW - 2 * DAY, description="short")
    long_ = images.application("1.5.0", NOW - DAY, description="d" * 200)
    code, _, err = run(capsys, staging_file, "1.5.0", "--reason", "r" * 60)
    assert code == 1 and "nothing revoked" in err and "shorten --reason" in err, err
    assert "a reason of at most 43 characters fits this image" in err, err
    for image_id in (short, long_):
        assert revocation(images.get(image_id)) is None


def test_a_promote_stack_is_sent_to_the_baking_account(capsys, images, tmp_path):
    prod = copy_stack_file("prod", tmp_path)
    code, _, err = run(capsys, prod, "1.5.0", "--reason", REASON)
    assert code == 1 and "revoke where they are baked" in err, err


def test_without_stack_or_file_the_projects_only_bake_stack_is_taken(images, tmp_path):
    """staging bakes, prod promotes: staging's service and region are searched."""
    for stack in ("staging", "prod"):
        copy_stack_file(stack, tmp_path)
    (tmp_path / "Pulumi.yaml").write_text("name: golden-fleet\nruntime: python\n")
    image_id = images.application("1.5.0", NOW - DAY)
    args = revoke.add_parser(argparse.ArgumentParser().add_subparsers()).parse_args(
        ["1.5.0", "--reason", REASON]
    )
    lines: list[str] = []
    assert revoke.run(args, tmp_path, out=lines.append) == 0
    assert lines[0].startswith("revoke 1.5.0 (Pulumi.staging.yaml: checkout, eu-west-1)"), lines
    assert_revoked(images.get(image_id), REASON)
    (tmp_path / "Pulumi.other.yaml").write_text(
        (tmp_path / "Pulumi.staging.yaml")
        .read_text()
        .replace("name: checkout", "name: payments", 1)
    )
    with pytest.raises(revoke.RevokeError, match="name the one that baked the image with --stack"):
        revoke.run(args, tmp_path, out=lines.append)


def test_copies_in_the_copy_regions_are_revoked_by_name(capsys, images, staging_file):
    text = staging_file.read_text().replace("copyToRegions: []", "copyToRegions: [eu-central-1]")
    staging_file.write_text(text)
    home = images.application("1.5.0", NOW - DAY, images.foundation(NOW - 2 * DAY))
    copies = Images("eu-central-1")
    copy = copies.ec2.register_image(
        Name=images.get(home)["Name"], Description="copy", RootDeviceName="/dev/xvda"
    )["ImageId"]
    other = copies.application("1.6.0", NOW - DAY)
    code, out, err = run(capsys, staging_file, "1.5.0", "--reason", REASON)
    assert code == 0, err
    assert_revoked(copies.get(copy), REASON)
    assert revocation(copies.get(other)) is None
    assert "version 1.5.0 (copy)" in out


def test_an_interrupt_says_what_was_written_and_stays_an_interrupt(images, staging_file, tmp_path):
    first = images.application("1.5.0", NOW - 2 * DAY)
    second = images.application("1.5.0", NOW - DAY)
    real = images.ec2

    class Interrupting:
        def __getattr__(self, name):
            return getattr(real, name)

        def enable_image_deprecation(self, **kwargs):
            if kwargs["ImageId"] == second:
                raise KeyboardInterrupt
            return real.enable_image_deprecation(**kwargs)

    args = revoke.add_parser(argparse.ArgumentParser().add_subparsers()).parse_args(
        ["1.5.0", "--reason", REASON, "--file", str(staging_file)]
    )
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        revoke.run(args, tmp_path, out=lines.append, clients=lambda region: Interrupting())
    said = "\n".join(lines)
    assert "interrupted (KeyboardInterrupt)" in said
    assert f"partly revoked: {second} (eu-west-1: tags, description written)" in said, said
    assert_revoked(images.get(first), REASON)


def test_nothing_to_revoke_is_an_error(capsys, images, staging_file):
    code, _, err = run(capsys, staging_file, "9.9.9", "--reason", REASON)
    assert code == 1 and "no image of 9.9.9" in err, err


# ---------------------------------------------------------------------------------------------
# The plan (pure)
# ---------------------------------------------------------------------------------------------
def test_deprecation_is_the_next_whole_minute_and_never_moves_later():
    now = dt.datetime(2027, 3, 1, 9, 0, 31, tzinfo=dt.UTC)
    assert revoke.next_minute(now) == dt.datetime(2027, 3, 1, 9, 1, tzinfo=dt.UTC)
    fresh = revoke.Target("eu-west-1", {"ImageId": "ami-1", "Name": "n", "Description": "d"}, "")
    past = revoke.Target(
        "eu-west-1",
        {
            "ImageId": "ami-2",
            "Name": "n",
            "Description": "d",
            "DeprecationTime": "2027-02-01T00:00:00.000Z",
        },
        "",
    )
    later = revoke.Target(
        "eu-west-1",
        {
            "ImageId": "ami-3",
            "Name": "n",
            "Description": "d",
            "DeprecationTime": "2028-02-01T00:00:00.000Z",
        },
        "",
    )
    planned = revoke.plan([fresh, past, later], REASON, now)
    assert [t.deprecate_at for t in planned] == [
        revoke.next_minute(now),
        None,
        revoke.next_minute(now),
    ]


def test_the_reason_rules():
    assert revocation_reason_problem(REASON) is None
    assert revocation_reason_problem("a" * 256) is None
    assert revocation_reason_problem("a|b") and revocation_reason_problem("a\nb")
    assert revoked_description("r", None) == "REVOKED: r | "
    with pytest.raises(ValueError, match="at most 0 characters"):
        revoked_description("r", "d" * 255)
