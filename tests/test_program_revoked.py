"""The program's promote lookup never picks a revoked image: it reads the ``REVOKED: <reason> | ``
description prefix (the only revocation mark an account the image is shared with can see), and a
version with nothing but revoked images fails the preview with the reason. Mock engine."""

from __future__ import annotations

import dataclasses

import pytest
from harness import ColorGroup, baked_image, run_program

from components.golden_image import (
    RevokedImage,
    kept_revoked_image,
    pick_promoted_image,
    revoked_refusal,
)

OWNER = "111111111111"
REASON = "CVE-2027-0001 in openssl"


def revoked(image, deprecated: bool = True):
    return dataclasses.replace(
        image,
        description=f"REVOKED: {REASON} | {image.name}: CIS-hardened Debian 12",
        deprecated=deprecated,
    )


def test_the_lookup_asks_for_revoked_images_by_description(prod_config):
    run = run_program(prod_config, stack="prod")
    lookups = [args for token, args in run.mocks.calls if token == "aws:ec2/getAmiIds:getAmiIds"]
    by_description = [a for a in lookups if any(f["name"] == "description" for f in a["filters"])]
    assert len(by_description) == 2, lookups  # one per color
    for args in by_description:
        assert {"name": "description", "values": ["REVOKED: *"]} in args["filters"], args
        assert args["includeDeprecated"] and args["owners"] == [OWNER], args


@pytest.mark.parametrize("deprecated_yet", [False, True])
def test_promote_skips_a_revoked_image_for_an_older_good_one(prod_config, deprecated_yet):
    """Deprecation comes within a minute of the revocation: before it, the revoked image is
    still among the current ones, and is skipped all the same."""
    good = baked_image(OWNER, "checkout", "1.4.0", stamp="20261101T120000Z")
    bad = revoked(
        baked_image(OWNER, "checkout", "1.4.0", stamp="20261201T120000Z"), deprecated=deprecated_yet
    )
    run = run_program(prod_config, stack="prod", images=[bad, good])
    assert run.outputs["blue"]["amiId"] == good.image_id


def test_promote_of_a_version_with_only_revoked_images_fails_with_the_reason(prod_config):
    bad = revoked(baked_image(OWNER, "checkout", "1.4.0"))
    with pytest.raises(Exception, match=rf"checkout 1\.4\.0 is revoked: .*{REASON}"):
        run_program(prod_config, stack="prod", images=[bad])


def test_pick_promoted_image_never_returns_a_revoked_id():
    assert (
        pick_promoted_image(
            ["ami-r", "ami-a"], "checkout", "1.4.0", OWNER, ["ami-r", "ami-a"], revoked=["ami-r"]
        )
        == "ami-a"
    )
    assert (
        pick_promoted_image([], "checkout", "1.4.0", OWNER, ["ami-r", "ami-d"], revoked=["ami-r"])
        == "ami-d"
    )
    with pytest.raises(RevokedImage) as only:
        pick_promoted_image(["ami-r"], "checkout", "1.4.0", OWNER, ["ami-r"], revoked=["ami-r"])
    assert only.value.image_id == "ami-r"
    assert REASON in revoked_refusal("checkout", "1.4.0", "ami-r", f"REVOKED: {REASON} | x")


def serving_revoked(prod_config, groups_of: tuple[str, ...] = ("blue",), **group):
    """prod serves 1.4.0 on blue, revoked after its bake (its only image); the fix 1.5.0 goes
    on green. ``groups_of``: the colors whose group's launch template launches the revoked
    image (what the last `pulumi up` gave them)."""
    bad = revoked(baked_image(OWNER, "checkout", "1.4.0"))
    fix = baked_image(OWNER, "checkout", "1.5.0")
    prod_config["golden-fleet:fleets"]["green"]["version"] = "1.5.0"
    groups = [ColorGroup("prod", "checkout", color, bad.image_id, **group) for color in groups_of]
    return bad, fix, groups


@pytest.mark.parametrize("mixed", [False, True])
def test_a_color_running_a_revoked_version_keeps_it_so_the_fix_can_ship(prod_config, mixed):
    """Finding 5 of issue 24: revoking the version prod serves made its promote lookup fail,
    so prod could not `pulumi up` at all, not even the fix on the other color."""
    bad, fix, groups = serving_revoked(prod_config, mixed=mixed)
    run = run_program(prod_config, stack="prod", images=[bad, fix], groups=groups, preview=True)
    assert run.outputs["blue"]["amiId"] == bad.image_id, "blue's template would change"
    assert run.outputs["green"]["amiId"] == fix.image_id
    [warning] = [w for w in run.warnings if "is revoked" in w]
    assert f"blue keeps {bad.image_id}" in warning and REASON in warning, run.warnings


def test_a_cold_color_left_on_the_revoked_version_stays_deployable(prod_config):
    """After a finish with cold standby blue has no instances, but its template still names
    the image: the next `pulumi up` of prod is not refused."""
    bad, fix, groups = serving_revoked(prod_config)
    prod_config["golden-fleet:fleets"]["blue"]["capacity"] = {"min": 0, "desired": 0, "max": 12}
    prod_config["golden-fleet:traffic"] = {"blue": 0, "green": 100}
    prod_config["golden-fleet:release"]["stable"] = "green"
    run = run_program(prod_config, stack="prod", images=[bad, fix], groups=groups)
    assert run.outputs["blue"]["amiId"] == bad.image_id


def test_a_color_whose_template_does_not_launch_it_is_refused(prod_config):
    """Only the color whose launch template already launches it keeps it: the same version
    put on another color, or a group of another stack, is a new use."""
    bad, fix, groups = serving_revoked(prod_config)
    prod_config["golden-fleet:fleets"]["green"]["version"] = "1.4.0"
    with pytest.raises(Exception, match=r"checkout 1\.4\.0 is revoked: .*only a color whose"):
        run_program(prod_config, stack="prod", images=[bad, fix], groups=groups)
    elsewhere = [ColorGroup("staging", "checkout", "blue", bad.image_id)]
    with pytest.raises(Exception, match=r"checkout 1\.4\.0 is revoked"):
        run_program(prod_config, stack="prod", images=[bad, fix], groups=elsewhere)
    on_another = [ColorGroup("prod", "checkout", "blue", fix.image_id)]
    with pytest.raises(Exception, match=r"checkout 1\.4\.0 is revoked"):
        run_program(prod_config, stack="prod", images=[bad, fix], groups=on_another)


def test_the_color_finds_its_own_group_by_its_tags(prod_config):
    bad, fix, groups = serving_revoked(prod_config)
    run = run_program(prod_config, stack="prod", images=[bad, fix], groups=groups)
    asked = [
        args for token, args in run.mocks.calls if token == "aws:autoscaling/getAmiIds:getAmiIds"
    ]
    assert len(asked) == 1, asked  # only blue's version has nothing but revoked images
    filters = {f["name"]: f["values"] for f in asked[0]["filters"]}
    assert filters == {"tag:Stack": ["prod"], "tag:Service": ["checkout"], "tag:Color": ["blue"]}, (
        asked
    )


def test_kept_revoked_image_is_the_one_the_template_launches():
    assert kept_revoked_image(["ami-new", "ami-old"], "ami-old") == "ami-old"
    assert kept_revoked_image(["ami-new"], "ami-good") is None
    assert kept_revoked_image(["ami-new"], None) is None
