"""baking.processes: waiting has a limit; stopping a process group leaves nothing running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from bake_fixtures import PACKER_DIR
from baking.errors import EXIT_PREREQUISITE, BakeError
from baking.processes import free_port, port_open, stop_process, wait_for


def test_wait_for_gives_up_with_a_prerequisite_error():
    started = time.monotonic()
    with pytest.raises(BakeError, match="thing did not come up within 0s") as error:
        wait_for(lambda: False, 0.2, "thing")
    assert error.value.code == EXIT_PREREQUISITE and time.monotonic() - started < 2


def test_a_free_port_is_closed_until_someone_listens():
    assert not port_open(free_port())


def test_stop_process_kills_a_group_that_ignores_sigterm():
    """The whole session goes: the parent that ignores SIGTERM and the child it started."""
    code = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(child.pid, flush=True); time.sleep(60)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    child = int(process.stdout.readline())
    started = time.monotonic()
    stop_process(process, timeout=0.5)
    assert process.returncode is not None and time.monotonic() - started < 10
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the child of the stopped group still runs"
    process.stdout.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_stop_process_accepts_nothing_and_the_already_stopped():
    """Nothing and an already reaped process are no-ops: no signal reaches this test's own
    process group (a killpg of group 0 or of our group would end the sibling below). The test
    holds whatever group id pytest has: 0 when it runs as a PID namespace's child, whose group
    lies outside the namespace."""
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stop_process(None)
        done = subprocess.Popen([sys.executable, "-c", "pass"])
        done.wait()
        stop_process(done)
        assert done.returncode == 0
        time.sleep(0.2)
        assert sibling.poll() is None, "a process of the test's own group was signalled"
    finally:
        sibling.kill()
        sibling.wait()


def test_a_child_dies_with_its_parent_even_when_the_parent_is_killed():
    """PR_SET_PDEATHSIG: SIGKILL of the bake still ends what it started."""
    code = (
        "import signal, subprocess, sys, time; "
        "from baking.processes import die_with_parent; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
        "preexec_fn=die_with_parent(signal.SIGTERM)); "
        "print(child.pid, flush=True); time.sleep(60)"
    )
    env = dict(os.environ, PYTHONPATH=str(PACKER_DIR))
    parent = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    child = int(parent.stdout.readline())
    try:
        assert _alive(child)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child), "the child outlived its killed parent"
    finally:
        parent.stdout.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
