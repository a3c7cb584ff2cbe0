"""End to end: `--local` bakes share one local EC2 API per cache directory, so the second bake of
a version is a reuse (same AMI id, no Packer run, <= 2 s), and `--local-reset` stops it."""

from __future__ import annotations

import os
import re
import time

import pytest
from bake_fixtures import require, run_bake
from baking import local_api, rootfs
from baking.scratch import _start_time

pytestmark = pytest.mark.e2e
VERSION = "1.0.0"


@pytest.fixture
def cache_env(tmp_path):
    """A cache directory of its own (so the shared emulator is this test's), with the machine's
    cached Debian 12 rootfs linked in (no second debootstrap); its emulator is stopped after."""
    require("packer", "debootstrap", "moto_server", "unshare", "chroot", "ssh-keygen")
    pristine = rootfs.pristine_rootfs()  # the machine's cache: built once if it is missing
    xdg = tmp_path / "xdg"
    cache = xdg / "golden-fleet"
    cache.mkdir(parents=True)
    (cache / pristine.name).symlink_to(pristine)
    env = dict(os.environ, XDG_CACHE_HOME=str(xdg), TMPDIR=str(tmp_path))
    try:
        yield cache, env
    finally:
        local_api.stop(cache)
        assert local_api._unrecorded(cache) == [], "the shared emulator outlived its reset"


def test_second_local_bake_of_a_version_is_reused_within_2s_and_reset_stops_the_api(cache_env):
    cache, env = cache_env
    first = run_bake(["--version", VERSION, "--local"], env=env)
    assert first.returncode == 0, f"first bake failed:\n{first.stderr[-6000:]}"
    assert re.fullmatch(r"ami-[0-9a-f]+\n", first.stdout), first.stdout
    record = local_api.running(cache)
    assert record is not None, "the local EC2 API did not outlive the bake"
    assert f"local EC2 API on {record.url}" in first.stderr

    started = time.monotonic()
    second = run_bake(["--version", VERSION, "--local"], env=env)
    elapsed = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout, "the second bake registered another image"
    assert "reusing" in second.stderr and "baking " not in second.stderr, second.stderr
    assert local_api.running(cache).pid == record.pid, "the second bake started another API"
    print(f"reuse of a --local bake: {elapsed:.2f} s")
    assert elapsed <= 2.0, f"reuse took {elapsed:.2f} s"

    reset = run_bake(["--local-reset"], env=env)
    assert reset.returncode == 0 and reset.stdout == "", reset.stderr
    assert f"pid {record.pid}" in reset.stderr
    assert _start_time(record.pid) is None and local_api.running(cache) is None
    assert not (cache / local_api.RECORD).exists()
