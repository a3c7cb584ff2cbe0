"""The program's promote lookup never picks a revoked image: it reads the ``REVOKED: <reason> | ``
description prefix (the only revocation mark an account the image is shared with can see), and a
version with nothing but revoked images fails the preview with the reason. Mock engine."""

from __future__ import annotations

import dataclasses

import pytest
from harness import baked_image, run_program

from components.golden_image import RevokedImage, pick_promoted_image, revoked_refusal

OWNER = "111111111111"
REASON = "CVE-2027-0001 in openssl"


def revoked(image, deprecated: bool = True):
    return dataclasses.replace(
        image, description=f"REVOKED: {REASON} | {image.name}: CIS-hardened Debian 12",
        deprecated=deprecated)


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
    bad = revoked(baked_image(OWNER, "checkout", "1.4.0", stamp="20261201T120000Z"),
                  deprecated=deprecated_yet)
    run = run_program(prod_config, stack="prod", images=[bad, good])
    assert run.outputs["blue"]["amiId"] == good.image_id


def test_promote_of_a_version_with_only_revoked_images_fails_with_the_reason(prod_config):
    bad = revoked(baked_image(OWNER, "checkout", "1.4.0"))
    with pytest.raises(Exception, match=rf"checkout 1\.4\.0 is revoked: .*{REASON}"):
        run_program(prod_config, stack="prod", images=[bad])


def test_pick_promoted_image_never_returns_a_revoked_id():
    assert pick_promoted_image(["ami-r", "ami-a"], "checkout", "1.4.0", OWNER,
                               ["ami-r", "ami-a"], revoked=["ami-r"]) == "ami-a"
    assert pick_promoted_image([], "checkout", "1.4.0", OWNER, ["ami-r", "ami-d"],
                               revoked=["ami-r"]) == "ami-d"
    with pytest.raises(RevokedImage) as only:
        pick_promoted_image(["ami-r"], "checkout", "1.4.0", OWNER, ["ami-r"], revoked=["ami-r"])
    assert only.value.image_id == "ami-r"
    assert REASON in revoked_refusal("checkout", "1.4.0", "ami-r", f"REVOKED: {REASON} | x")
