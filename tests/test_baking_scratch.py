"""baking.scratch: a killed bake's work directory is removed by the next bake, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys

from bake_fixtures import PACKER_DIR  # noqa: F401  (puts packer/, the bake package's home, on sys.path)
from baking import scratch


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def make(base, name: str, record: str | None):
    path = base / f"{scratch.PREFIX}{name}"
    (path / "rootfs").mkdir(parents=True)
    if record is not None:
        (path / scratch.OWNER_FILE).write_text(record)
    return path


def test_only_directories_of_bakes_that_no_longer_run_are_removed(tmp_path):
    killed = make(tmp_path, "work-killed", f"{dead_pid()} 12345")
    reused_pid = make(tmp_path, "work-reused", f"{os.getpid()} 1")  # our pid, another start time
    running = make(tmp_path, "work-running", scratch.owner_record())
    foreign = make(tmp_path, "work-foreign", None)
    unreadable = make(tmp_path, "work-garbled", "garbled")
    other = tmp_path / "gf-tpl-other"
    other.mkdir()
    assert sorted(scratch.remove_orphans(tmp_path)) == sorted([killed, reused_pid])
    assert not killed.exists() and not reused_pid.exists()
    assert running.exists() and foreign.exists() and unreadable.exists() and other.exists()
    assert scratch.remove_orphans(tmp_path) == [], "a second pass finds nothing"


def test_scratch_dir_records_its_owner_and_is_removed_on_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(scratch.tempfile, "tempdir", None)
    with scratch.scratch_dir("work") as path:
        assert path.parent == tmp_path and path.name.startswith("golden-fleet-work-")
        assert scratch.owner_alive((path / scratch.OWNER_FILE).read_text())
        assert scratch.remove_orphans(tmp_path) == [], "a running bake's directory stays"
    assert not path.exists()
