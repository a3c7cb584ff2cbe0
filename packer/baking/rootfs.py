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
from baking.scratch import owner_alive, owner_record


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
    # debootstrap's few hundred lines are printed only when it fails (its last 40).
    result = subprocess.run(
        [
            debootstrap,
            "--variant=minbase",
            "--include=openssh-server,sudo,ca-certificates",
            "bookworm",
            str(partial),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        print("\n".join(result.stdout.splitlines()[-40:]), file=sys.stderr, flush=True)
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

    # A partial copy records its bake (pid and start time, baking.scratch) beside it: one whose
    # bake is gone (killed by SIGKILL before it could clean up) is removed at once, so the cache
    # does not grow. One without a record (an older bake's) is removed after this long.
    STALE_AFTER_S = 3600
    OWNER_SUFFIX = ".owner"

    def __init__(self, pristine: Path) -> None:
        self.spare = spare_rootfs(pristine)
        remove_abandoned_copies(pristine, self.STALE_AFTER_S)
        self.partial = Path(tempfile.mkdtemp(prefix=f"{self.spare.name}-", dir=pristine.parent))
        self.owner = Path(f"{self.partial}{self.OWNER_SUFFIX}")
        self.owner.write_text(owner_record())
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
        self.owner.unlink(missing_ok=True)

    def abort(self) -> None:
        stop_process(self.process)
        self.process = None
        shutil.rmtree(self.partial, ignore_errors=True)
        self.owner.unlink(missing_ok=True)


def remove_abandoned_copies(pristine: Path, stale_after_s: float) -> list[Path]:
    """Remove partial spare copies whose bake no longer runs (or, without a record, that are
    older than ``stale_after_s``); returns them."""
    spare = spare_rootfs(pristine)
    removed = []
    for leftover in pristine.parent.glob(f"{spare.name}-*"):
        if leftover.name.endswith(SpareCopy.OWNER_SUFFIX):
            continue
        owner = Path(f"{leftover}{SpareCopy.OWNER_SUFFIX}")
        try:
            if owner.exists():
                abandoned = not owner_alive(owner.read_text())
            else:
                abandoned = time.time() - leftover.stat().st_mtime > stale_after_s
        except OSError:
            continue
        if abandoned:
            shutil.rmtree(leftover, ignore_errors=True)
            owner.unlink(missing_ok=True)
            removed.append(leftover)
    return removed
