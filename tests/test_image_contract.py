"""The image contract: one rule for service names, versions and image names, shared by the
program, the release command and the bake, and cheap to import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from components import image_contract as contract

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "version", ["1.4.0", "0.0.1", "2.0.0-rc.1", "10.20.30-alpha.beta", "1.0.0-0a.1", "1.0.0--"]
)
def test_semantic_versions_without_build_metadata_are_accepted(version):
    assert contract.is_valid_version(version) and contract.version_problem(version) is None


@pytest.mark.parametrize(
    "version",
    [
        "latest",
        "1.0",
        "v1.0.0",
        "01.0.0",
        "1.0.0-01",
        "1.0.0+build.7",  # "+" is not allowed in AMI names
        "1.0.0-rc.1+sha.5114f85",
        "1.0.0\n",  # `$` would have let this through
        "1.0.0 ",
        "1\u0660.0.0",  # an Arabic-Indic digit: `\d` would have let this through
        "1.0.0;rm -rf /",
        "$(id)",
        "`x`",
        "",
        "1.0.0|x",
        "1.0.0-" + "a" * 100,  # the image name would pass EC2's 128 characters
        None,
        100,
    ],
)
def test_other_versions_are_refused_with_a_reason(version):
    assert not contract.is_valid_version(version)
    assert "immutable semantic version" in contract.version_problem(version)


@pytest.mark.parametrize("name", ["ab", "checkout", "a1", "pay-ments", "a" * 14])
def test_service_names_of_two_to_fourteen_characters_are_accepted(name):
    assert contract.is_valid_service_name(name) and contract.service_name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "a" * 15,
        "a" * 40,
        "Checkout",
        "1checkout",
        "checkout-",
        "check_out",
        "checkout\n",
        "ch\u0661eckout",
        "",
        None,
    ],
)
def test_other_service_names_are_refused_naming_the_limit(name):
    assert not contract.is_valid_service_name(name)
    assert "2-14 characters" in contract.service_name_problem(name)


def test_the_program_and_the_contract_refuse_the_same_values():
    """components.config delegates to the contract: no second copy of either rule."""
    from components import config

    assert config.is_valid_version is contract.is_valid_version
    for bad in ("1.0.0+build.7", "1.0.0\n", "latest"):
        with pytest.raises(ValueError, match="immutable semantic version"):
            config.check_version(bad)
    with pytest.raises(ValueError, match="2-14 characters"):
        config.ServiceConfig(name="a" * 15, port=8080, instanceTypes=["t3.small"])


@pytest.mark.parametrize(
    "name, matches",
    [
        ("checkout-1.4.0-20261126T080000Z", True),
        ("checkout-1.4.0-rc.1-20261126T080000Z", False),
        ("checkout-1.4.0-20261126", False),
        ("checkout-1x4x0-20261126T080000Z", False),
        ("checkout-api-1.4.0-20261126T080000Z", False),
        ("checkout-1.4.0-20261126T080000Z\n", False),
        ("checkout-1.4.0-2026112\u0666T080000Z", False),
    ],
)
def test_image_names_match_exactly_one_service_and_version(name, matches):
    assert contract.is_image_name(name, "checkout", "1.4.0") is matches
    import re

    # The provider's name_regex string, read with fullmatch, agrees with is_image_name.
    assert (re.fullmatch(contract.image_name_regex("checkout", "1.4.0"), name) is not None) is (
        matches
    )


def test_image_name_filter_and_name_are_the_documented_shape():
    assert contract.image_name_filter("checkout", "1.0.0") == "checkout-1.0.0-*"
    assert contract.build_timestamp(0) == "19700101T000000Z"
    name = contract.image_name("checkout", "1.0.0", contract.build_timestamp(0))
    assert name == "checkout-1.0.0-19700101T000000Z"
    assert contract.is_image_name(name, "checkout", "1.0.0")
    with pytest.raises(ValueError, match="build time"):
        contract.image_name("checkout", "1.0.0", "1970-01-01")


def test_longest_service_and_version_still_fit_an_ami_name():
    version = "1.0.0-" + "a" * (contract.VERSION_MAX - 6)
    assert contract.is_valid_version(version)
    name = contract.image_name("a" * contract.SERVICE_NAME_MAX, version, "20261126T080000Z")
    assert len(name) == contract.IMAGE_NAME_MAX


def test_image_tags_carry_every_contract_key():
    tags = contract.image_tags(
        "checkout", "1.4.0", "d" * 64, "ami-0abc", "20261126T080000Z", "0f" * 16
    )
    assert tuple(tags) == contract.IMAGE_TAG_KEYS and tags["ManagedBy"] == "golden-fleet"
    assert contract.tag_map({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}) == tags
    assert contract.tag_map({}) == {}


def test_importing_the_contract_loads_neither_pulumi_nor_pydantic():
    """The bake and the release command import it on their own; it must stay light."""
    code = (
        "import sys, components.image_contract; "
        "print(sorted(m for m in ('pulumi', 'pydantic', 'pulumi_aws', 'boto3')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_package_still_exports_its_components_on_first_use():
    import components

    assert components.GoldenImage.__name__ == "GoldenImage"
    assert "parse_stack_config" in dir(components)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        components.Nope  # noqa: B018
