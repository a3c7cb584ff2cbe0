"""End to end: a local bake interrupted mid-build (SIGTERM) or killed (SIGKILL) leaves no process
running and registers no image. Slow (a partial bake each); runs with the e2e tier."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bake_fixtures import BAKE, describe_images_named, require
from baking.emulator import local_emulator

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_api(tmp_path_factory):
    require("moto_server")
    with local_emulator(tmp_path_factory.mktemp("moto")) as url:
        yield url


def _processes_mentioning(text: str) -> list[int]:
    """Running processes whose command line or environment names ``text`` (the work directory:
    Packer's manifest path, the build host's root)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError, IndexError):
            if (proc / "stat").read_text().rsplit(") ", 1)[1][0] == "Z":
                continue
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
            if text.encode() in blob:
                found.append(int(proc.name))
    return found


def _start_bake(local_api: str, workdir: Path, service: str) -> subprocess.Popen:
    require("packer", "debootstrap", "unshare", "chroot", "ssh-keygen")
    log = open(workdir.parent / f"{service}.log", "w")
    # The foundation layer: the longest build, and the one a first --version bake starts with;
    # --workdir applies to it when it is baked alone.
    argv = [
        sys.executable,
        str(BAKE),
        "foundation",
        "--local",
        "--endpoint",
        local_api,
        "--workdir",
        str(workdir),
    ]
    bake = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=log, text=True, stdin=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    # Provisioning has begun: Packer is connected to the build host and running scripts.
    while "baseline:" not in (workdir.parent / f"{service}.log").read_text() and (
        "10-baseline.sh" not in (workdir.parent / f"{service}.log").read_text()
    ):
        assert bake.poll() is None, (workdir.parent / f"{service}.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the bake never reached provisioning"
        time.sleep(0.2)
    return bake


def _sessions(pids: list[int]) -> set[int]:
    sessions = set()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            sessions.add(os.getsid(pid))
    return sessions


def _left(workdir: Path, sessions: set[int]) -> list[int]:
    """What still runs of the bake: processes naming its work directory, and anything in the
    sessions its children had (Packer's plugins name no path)."""
    left = set(_processes_mentioning(str(workdir)))
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            if proc.name.isdigit() and os.getsid(int(proc.name)) in sessions:
                if (proc / "stat").read_text().rsplit(") ", 1)[1][0] != "Z":
                    left.add(int(proc.name))
    return sorted(left)


def _wait_gone(workdir: Path, sessions: set[int], timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while _left(workdir, sessions) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _left(workdir, sessions)


def _end(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_mid_build_exits_130_leaving_no_process_and_no_image(local_api, tmp_path):
    workdir = tmp_path / "work"
    bake = _start_bake(local_api, workdir, "sigterm")
    sessions = _sessions(_processes_mentioning(str(workdir))) - {os.getsid(0)}
    try:
        assert sessions, "the bake's children were not found"
        bake.send_signal(signal.SIGTERM)
        out, _ = bake.communicate(timeout=180)
        log = (tmp_path / "sigterm.log").read_text()
        assert bake.returncode == 130 and out == "", log[-2000:]
        assert "interrupted; everything started was stopped" in log
        assert _wait_gone(workdir, sessions, timeout=10) == []
        time.sleep(2)  # a Packer that ran on would register its image now
        assert describe_images_named(local_api, "golden-foundation-*") == []
    finally:
        _end(_left(workdir, sessions))


def test_sigkill_mid_build_leaves_no_process_and_no_image(local_api, tmp_path):
    """No clean-up code runs on SIGKILL: the kernel's parent-death signal stops Packer, the build
    host and the spare rootfs copy, and Packer cancels instead of registering its image."""
    workdir = tmp_path / "work"
    bake = _start_bake(local_api, workdir, "sigkill")
    sessions = _sessions(_processes_mentioning(str(workdir))) - {os.getsid(0)}
    try:
        assert sessions, "the bake's children were not found"
        bake.kill()
        bake.wait(10)
        assert _wait_gone(workdir, sessions) == [], "processes outlived the killed bake"
        time.sleep(2)
        assert describe_images_named(local_api, "golden-foundation-*") == []
    finally:
        _end(_left(workdir, sessions))
        if bake.stdout:
            bake.stdout.close()
