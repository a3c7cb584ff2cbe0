"""Scratch directories of a bake, and the removal of those a killed bake left behind.

A SIGKILL runs no clean-up: the bake's temporary work directory (a provisioned rootfs, about
400 MB) would stay. Each directory records its owner (pid and the process's start time, so a
reused pid is not mistaken for the owner); the next bake removes directories whose owner is gone.
Directories without that record (another tool's, an older bake's) are never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = "golden-fleet-"
OWNER_FILE = ".golden-fleet-owner"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if fields[0] != "Z" else None


def owner_record(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid} {_start_time(pid)}"


def owner_alive(record: str) -> bool:
    try:
        pid_text, started = record.split()
        pid = int(pid_text)
    except ValueError:
        return True  # unreadable: not ours to judge
    return _start_time(pid) == started


# Packer's plugins listen on Unix sockets in its TMPDIR, and a socket path has at most 107
# characters (sockaddr_un.sun_path, unix(7)): Packer's own directory sits on a short base.
SOCKET_BASE_MAX = 40
SHORT_BASE = Path("/tmp")


def short_base() -> Path | None:
    """Where a directory that holds Unix sockets goes: $TMPDIR if its path is short, else /tmp."""
    return None if len(tempfile.gettempdir()) <= SOCKET_BASE_MAX else SHORT_BASE


@contextlib.contextmanager
def scratch_dir(kind: str = "work", base: Path | None = None) -> Iterator[Path]:
    """A fresh directory under ``base`` ($TMPDIR by default) owned by this process, removed on
    the way out."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-", dir=base))
    try:
        (path / OWNER_FILE).write_text(owner_record())
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_orphans(base: Path | None = None) -> list[Path]:
    """Remove the scratch directories whose owning bake no longer runs; returns them."""
    base = Path(tempfile.gettempdir()) if base is None else base
    removed: list[Path] = []
    for path in base.glob(f"{PREFIX}*"):
        try:
            record = (path / OWNER_FILE).read_text()
        except OSError:
            continue
        if not owner_alive(record):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
