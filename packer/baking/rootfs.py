"""The cached Debian 12 minbase tree every local build host starts from, and its spare copy."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baking.console import log
from baking.errors import EXIT_PREREQUISITE, BakeError
from baking.processes import die_with_parent, stop_process


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "golden-fleet"


def pristine_rootfs() -> Path:
    """Debian 12 minbase plus what a cloud image logs in with (sshd, sudo); cached."""
    rootfs = cache_dir() / "bookworm-minbase"
    if (rootfs / ".complete").exists():
        return rootfs
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    # Two first bakes at once would debootstrap into one partial tree and mix both runs' files:
    # one builds while the other waits on the lock, then finds the tree complete. The lock is
    # released when the file closes, also when a bake is killed.
    with open(rootfs.with_name(rootfs.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (rootfs / ".complete").exists():
            return rootfs
        return _debootstrap(rootfs)


def _debootstrap(rootfs: Path) -> Path:
    debootstrap = shutil.which("debootstrap")
    if not debootstrap:
        raise BakeError(EXIT_PREREQUISITE, "debootstrap not found: apt-get install debootstrap")
    partial = rootfs.with_name(rootfs.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    log(f"building the Debian 12 build host once into {rootfs}")
    result = subprocess.run(
        [
            debootstrap,
            "--variant=minbase",
            "--include=openssh-server,sudo,ca-certificates",
            "bookworm",
            str(partial),
        ],
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,
        stderr=sys.stderr,
    )
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise BakeError(EXIT_PREREQUISITE, f"debootstrap failed with exit code {result.returncode}")
    (partial / ".complete").touch()
    shutil.rmtree(rootfs, ignore_errors=True)
    shutil.rmtree(spare_rootfs(rootfs), ignore_errors=True)
    partial.rename(rootfs)
    return rootfs


def spare_rootfs(pristine: Path) -> Path:
    """A ready copy of the pristine rootfs, made while the previous bake's build ran."""
    return pristine.with_name(pristine.name + ".spare")


def take_spare(pristine: Path, target: Path) -> bool:
    """Move the spare copy to `target` (one rename, same filesystem); False if there is none,
    it was copied from an older pristine rootfs, or it lives on another filesystem."""
    spare = spare_rootfs(pristine)
    try:
        if (spare / ".complete").stat().st_mtime_ns != (pristine / ".complete").stat().st_mtime_ns:
            shutil.rmtree(spare, ignore_errors=True)
            return False
        os.rename(spare, target)
    except OSError:
        return False
    return True


class SpareCopy:
    """Copies the pristine rootfs to the spare in the background; finish() waits and keeps it,
    abort() stops the copy and removes it. Either way nothing of it runs on afterwards."""

    # A copy takes seconds; a partial copy this old was left by a bake that was killed (SIGKILL)
    # before it could clean up, and is removed so the cache does not grow.
    STALE_AFTER_S = 3600

    def __init__(self, pristine: Path) -> None:
        self.spare = spare_rootfs(pristine)
        for leftover in pristine.parent.glob(f"{self.spare.name}-*"):
            try:
                if time.time() - leftover.stat().st_mtime > self.STALE_AFTER_S:
                    shutil.rmtree(leftover, ignore_errors=True)
            except OSError:
                pass
        self.partial = Path(tempfile.mkdtemp(prefix=f"{self.spare.name}-", dir=pristine.parent))
        self.process: subprocess.Popen | None = subprocess.Popen(
            ["cp", "-a", f"{pristine}/.", str(self.partial)],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent(signal.SIGKILL),
        )

    def finish(self) -> None:
        if self.process is None:
            return
        try:
            code = self.process.wait()
        except BaseException:  # Ctrl-C while waiting: nothing half-copied stays
            self.abort()
            raise
        self.process = None
        try:
            if code == 0:
                os.rename(self.partial, self.spare)  # fails if another bake left one first
        except OSError:
            pass
        shutil.rmtree(self.partial, ignore_errors=True)

    def abort(self) -> None:
        stop_process(self.process)
        self.process = None
        shutil.rmtree(self.partial, ignore_errors=True)
