"""End to end: a foundation bake, then two application versions on it, on the local build host
and the local EC2 API. Both application bakes start from a copy of the foundation's kept root
(no foundation is baked again) and carry its lineage. The session's shared bakes
(tests/shared_bakes.py); `--local-reset` is tested in test_bake_local_reuse_e2e.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bake_fixtures import describe_image
from baking import layers, local_api

from components import image_contract

# One xdist group: these tests share the session's bake cache (one foundation, one local API),
# and a session fixture is one per worker.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-bake")]
SERVICE = "checkout"


@pytest.fixture
def cache_env(bake_cache):
    """The session's bake cache (tests/shared_bakes.py): its directory, its TMPDIR (checked for
    leftovers) and the environment of its bakes."""
    return bake_cache.cache, bake_cache.scratch, bake_cache.env


@pytest.fixture
def baked(bake_cache):
    """The session's foundation, then two versions on it, 1.0.0 (without --verbose) and 1.4.0
    (--verbose, its build host kept, as the image tests read it): (foundation id,
    [(version, ami, stderr, s)])."""
    foundation = bake_cache.foundation()
    apps = []
    for bake, version in (
        (bake_cache.application("1.0.0"), "1.0.0"),
        (bake_cache.application("1.4.0", "--verbose", keep_root=True), "1.4.0"),
    ):
        apps.append((version, bake.ami, bake.stderr, bake.seconds))
    print(f"application layer bakes on an existing foundation: {[round(a[3]) for a in apps]} s")
    return foundation.ami, apps


def endpoint(cache: Path) -> str:
    record = local_api.running(cache)
    assert record is not None, "the shared local API is not running"
    return record.url


def test_foundation_is_named_and_tagged_as_a_foundation(baked, cache_env):
    foundation_ami, _ = baked
    image = describe_image(endpoint(cache_env[0]), foundation_ami)
    tags = image_contract.tag_map(image)
    assert image_contract.is_foundation_name(image["Name"], "python"), image["Name"]
    assert tags["Layer"] == "foundation" and tags["Runtime"] == "python"
    assert tags["ManagedBy"] == "golden-fleet" and re.fullmatch(
        r"[0-9a-f]{64}", tags["TemplateDigest"]
    )
    assert image["Name"].endswith(tags["BuildTime"])
    assert "Service" not in tags and "Version" not in tags


def test_both_versions_are_built_on_the_foundation_with_lineage(baked, cache_env):
    """Tags name the foundation by id, name and build time; the description handed to Packer (the
    only part other accounts can read) names it too; the digests differ from the foundation's."""
    foundation_ami, apps = baked
    url = endpoint(cache_env[0])
    foundation = describe_image(url, foundation_ami)
    foundation_tags = image_contract.tag_map(foundation)
    digests = set()
    for version, ami, stderr, _ in apps:
        image = describe_image(url, ami)
        tags = image_contract.tag_map(image)
        assert image_contract.is_image_name(image["Name"], SERVICE, version), image["Name"]
        assert tags["Layer"] == "application" and tags["Version"] == version
        assert tags["Foundation"] == foundation_ami
        assert tags["FoundationName"] == foundation["Name"]
        assert tags["FoundationBuildTime"] == foundation_tags["BuildTime"]
        # moto's ModifyImageAttribute, which Packer sets the description with, ignores it: the
        # description the bake hands Packer is checked here, EC2 keeping it only on AWS.
        (described,) = [
            line for line in stderr.splitlines() if line.startswith("bake: description: ")
        ]
        assert f"{SERVICE} {version} on {foundation['Name']}" in described, described
        assert tags["TemplateDigest"] != foundation_tags["TemplateDigest"]
        digests.add(tags["TemplateDigest"])
        assert f"on foundation {foundation['Name']} ({foundation_ami})" in stderr
        assert "baking golden-foundation" not in stderr, "a foundation was baked again"
    assert len(digests) == 2


def test_application_bakes_start_from_the_kept_foundation_root(baked, cache_env):
    cache, _, _ = cache_env
    foundation_ami, apps = baked
    kept = layers.foundation_root(cache, foundation_ami)
    assert (kept / "etc" / "os-release").is_file(), "the foundation's root was not kept"
    assert layers.kept_roots(cache)[foundation_ami]["endpoint"] == endpoint(cache)
    for _, _, stderr, _ in apps:
        assert "no foundation of runtime" not in stderr


def test_output_is_one_line_per_step(baked):
    """No Packer or apt output without --verbose: the wrapper's own lines and one per script."""
    _, apps = baked
    (stderr,) = [stderr for version, _, stderr, _ in apps if version == "1.0.0"]  # not --verbose
    lines = stderr.splitlines()
    assert all(line.startswith("bake: ") for line in lines), [
        line for line in lines if not line.startswith("bake: ")
    ][:5]
    steps = [line for line in lines if line.startswith("bake: step ")]
    assert steps and steps[-1] == "bake: step 99-image-tests.sh"
    assert len(lines) <= len(steps) + 15, stderr


def test_nothing_is_left_in_the_bakes_temporary_folder(baked, cache_env):
    """Scratch directories (the build host copies, the package, Packer's own temporary files,
    which it writes under the TMPDIR the bake gives it) go with the bake."""
    _, scratch, _ = cache_env
    assert list(scratch.iterdir()) == []
