"""End to end: `--local` bakes share one local EC2 API per cache directory, so the second bake of
a version is a reuse (same AMI id, no Packer run, <= 2 s), and `--local-reset` stops that API and
removes the cache's kept foundation roots."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from bake_fixtures import run_bake, run_bake_timed
from baking import layers, local_api
from baking.scratch import _start_time

# One xdist group: these tests share the session's bake cache (one foundation, one local API),
# and a session fixture is one per worker.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-bake")]
VERSION = "1.0.0"


def test_second_local_bake_of_a_version_is_reused_within_2s(bake_cache):
    """The session's bake of 1.0.0 started (or found) the cache's shared API; baking it again is a
    reuse by that same API process."""
    first = bake_cache.application(VERSION)
    record = local_api.running(bake_cache.cache)
    assert record is not None, "the local EC2 API did not outlive the bake"
    assert f"local EC2 API on {record.url}" in first.stderr

    second, elapsed, cpu = run_bake_timed(
        ["--version", VERSION, "--service", "checkout", "--local"], env=bake_cache.env
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"{first.ami}\n", "the second bake registered another image"
    assert "reusing" in second.stderr and "baking " not in second.stderr, second.stderr
    assert local_api.running(bake_cache.cache).pid == record.pid, "another API was started"
    print(f"reuse of a --local bake: {elapsed:.2f} s ({cpu:.2f} s of CPU)")
    assert cpu <= 2.0 and elapsed < 10, f"reuse took {cpu:.2f} s of CPU, {elapsed:.2f} s in all"


@pytest.fixture
def cache_of_its_own(bake_cache, tmp_path):
    """A second cache directory, as an operator's would be after a foundation bake: its own
    shared local API running, and a copy of the session's kept foundation root recorded against
    that API. Whatever `--local-reset` leaves is stopped and removed afterwards."""
    foundation = bake_cache.foundation()
    xdg = tmp_path / "xdg"
    cache = xdg / "golden-fleet"
    cache.mkdir(parents=True)
    url = local_api.ensure(cache)
    copy = tmp_path / "foundation-rootfs"
    layers.copy_root(layers.foundation_root(bake_cache.cache, foundation.ami), copy)
    layers.keep_foundation_root(copy, cache, foundation.ami, url)
    env = dict(bake_cache.env, XDG_CACHE_HOME=str(xdg), TMPDIR=str(tmp_path))
    try:
        yield cache, env, foundation.ami
    finally:
        local_api.stop(cache)
        layers.remove_roots(cache)
        shutil.rmtree(xdg, ignore_errors=True)


def test_reset_stops_the_api_and_removes_the_kept_foundation_roots(cache_of_its_own):
    cache, env, ami = cache_of_its_own
    record = local_api.running(cache)
    assert record is not None and layers.foundation_root(cache, ami).is_dir()
    assert json.loads((cache / layers.FOUNDATIONS_DIR / ami / layers.ROOT_RECORD).read_text()) == {
        "ami": ami,
        "endpoint": record.url,
    }

    reset = run_bake(["--local-reset"], env=env)
    assert reset.returncode == 0 and reset.stdout == "", reset.stderr
    assert f"pid {record.pid}" in reset.stderr
    assert "removed the kept foundation root" in reset.stderr
    assert re.search(rf"\b{ami}\b", reset.stderr), reset.stderr
    assert _start_time(record.pid) is None and local_api.running(cache) is None
    assert not (cache / local_api.RECORD).exists()
    assert local_api._unrecorded(cache) == [], "the shared emulator outlived its reset"
    assert not layers.foundation_root(cache, ami).exists()
