"""End to end: a foundation bake, then two application versions on it, on the local build host
and the local EC2 API. Both application bakes start from a copy of the foundation's kept root
(no foundation is baked again), carry its lineage, and `--local-reset` removes the kept root.
Slow (minutes); runs in CI."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from bake_fixtures import describe_image, require, run_bake
from baking import layers, local_api, rootfs

from components import image_contract

pytestmark = pytest.mark.e2e
SERVICE = "checkout"


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    """A cache directory of its own (its shared local API and kept roots are this module's), the
    machine's cached Debian 12 tree linked in, and a TMPDIR of its own to check for leftovers."""
    require("packer", "debootstrap", "moto_server", "unshare", "chroot", "ssh-keygen")
    base = tmp_path_factory.mktemp("layers")
    cache = base / "xdg" / "golden-fleet"
    cache.mkdir(parents=True)
    # A copy of the machine's cached tree, taken under its lock: other bakes on this machine may
    # rebuild theirs meanwhile, and a half-built tree would fail this module's bakes.
    pristine = rootfs.pristine_rootfs()
    with open(pristine.with_name(pristine.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert (pristine / ".complete").exists(), f"{pristine} is being rebuilt; run again"
        subprocess.run(["cp", "-a", str(pristine), str(cache / pristine.name)], check=True)
    assert (cache / pristine.name / ".complete").exists()
    scratch = base / "tmp"
    scratch.mkdir()
    env = dict(os.environ, XDG_CACHE_HOME=str(base / "xdg"), TMPDIR=str(scratch))
    try:
        yield cache, scratch, env
    finally:
        local_api.stop(cache)
        layers.remove_roots(cache)


@pytest.fixture(scope="module")
def baked(cache_env):
    """foundation, then 1.0.0 and 1.1.0 on it: (foundation id, [(version, ami, stderr, s)])."""
    _, _, env = cache_env
    foundation = run_bake(["foundation", "--local"], env=env)
    assert foundation.returncode == 0, f"foundation bake failed:\n{foundation.stderr[-6000:]}"
    assert re.fullmatch(r"ami-[0-9a-f]+\n", foundation.stdout), foundation.stdout
    apps = []
    for version in ("1.0.0", "1.1.0"):
        started = time.monotonic()
        result = run_bake(["--version", version, "--service", SERVICE, "--local"], env=env)
        elapsed = time.monotonic() - started
        assert result.returncode == 0, f"{version} failed:\n{result.stderr[-6000:]}"
        apps.append((version, result.stdout.strip(), result.stderr, elapsed))
    print(f"application layer bakes on an existing foundation: {[round(a[3]) for a in apps]} s")
    return foundation.stdout.strip(), apps


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
    stderr = apps[1][2]
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


def test_reset_removes_the_kept_foundation_roots(baked, cache_env):
    cache, _, env = cache_env
    foundation_ami, _ = baked
    result = run_bake(["--local-reset"], env=env)
    assert result.returncode == 0, result.stderr
    assert "removed the kept foundation root" in result.stderr
    assert not layers.foundation_root(cache, foundation_ami).exists()
