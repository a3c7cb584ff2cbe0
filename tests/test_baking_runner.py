"""baking.runner: the packer command line, and Packer's output kept off stdout."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from bake_fixtures import PACKER_DIR, REPO, require
from baking.layout import BUILD_SOURCE
from baking.runner import packer_build_command, run_packer


def test_var_file_comes_before_the_wrappers_own_variables():
    """Packer applies -var/-var-file in order: the wrapper's name, digest and build host win."""
    command = packer_build_command(
        "packer", {"service": "checkout", "version": "1.0.0"}, Path("/v.pkrvars.hcl")
    )
    assert command[:4] == ["packer", "build", "-color=false", f"-only={BUILD_SOURCE}"]
    assert command[4:6] == ["-var-file", "/v.pkrvars.hcl"]
    assert command[6:] == ["-var", "service=checkout", "-var", "version=1.0.0", "."]
    assert "-var-file" not in packer_build_command("packer", {}, None)


def test_packers_output_goes_to_stderr_and_its_exit_code_comes_back(tmp_path, capfd):
    script = tmp_path / "packer"
    script.write_text(f"#!{sys.executable}\nimport sys\nprint('progress')\nsys.exit(7)\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    assert run_packer([str(script)], {"PATH": "/usr/bin:/bin"}, tmp_path) == 7
    out, err = capfd.readouterr()
    assert out == "" and "progress" in err


NULL_TEMPLATE = """
source "null" "n" {
  communicator = "none"
}
build {
  sources = ["source.null.n"]
  provisioner "shell-local" {
    inline = ["echo step-one", "sleep 30", "echo step-two-reached"]
  }
}
"""

DRIVER = """
import signal, sys
sys.path[:0] = [{packer_dir!r}, {repo!r}]
from baking.errors import Interrupted
from baking.runner import run_packer

def on_term(signum, frame):
    raise Interrupted()

signal.signal(signal.SIGTERM, on_term)
try:
    code = run_packer(["packer", "build", "-color=false", "."],
                      {{"PATH": "/usr/bin:/bin", "TMPDIR": {packer_tmp!r}}}, {cwd!r}, grace_s=20)
    print("exit", code, flush=True)
except Interrupted:
    print("interrupted", flush=True)
"""


@pytest.fixture
def packer_tmp():
    """Packer's TMPDIR, as the bake gives it one (baking/pipeline.py): a cancelled build leaves
    its shell-local script there, not in /tmp. Short, for the Unix sockets of Packer's plugins
    (baking/scratch.py), and removed with what it holds."""
    path = Path(tempfile.mkdtemp(prefix="gf-packer-tmp-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start_driver(tmp_path: Path, packer_tmp: Path) -> tuple[subprocess.Popen, int]:
    """A bake-like process running a real `packer build` that provisions for 30 s; returns it
    and Packer's pid once Packer is provisioning."""
    require("packer")
    (tmp_path / "t.pkr.hcl").write_text(NULL_TEMPLATE)
    log = tmp_path / "packer.log"
    code = DRIVER.format(
        packer_dir=str(PACKER_DIR), repo=str(REPO), cwd=str(tmp_path), packer_tmp=str(packer_tmp)
    )
    driver = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=open(log, "w"),
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while "step-one" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    # The script being run is in Packer's TMPDIR: what a cancel leaves stays out of /tmp.
    assert list(packer_tmp.glob("packer-shell*")), list(packer_tmp.iterdir())
    packer = int(
        subprocess.run(
            ["pgrep", "-P", str(driver.pid)], capture_output=True, text=True
        ).stdout.split()[0]
    )
    return driver, packer


def _running_in_session(session: int, name: str | None = None) -> list[str]:
    """Processes of the session that still run (zombies waiting to be reaped do not count)."""
    argv = ["pgrep", "-s", str(session)] + (["-x", name] if name else [])
    running = []
    for pid in subprocess.run(argv, capture_output=True, text=True).stdout.split():
        with contextlib.suppress(FileNotFoundError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z":
                running.append(pid)
    return running


def _wait_until_gone(session: int, name: str | None = None, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while _running_in_session(session, name) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _running_in_session(session, name)


def _end_session(session: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(session, signal.SIGKILL)


def test_sigterm_to_the_bake_cancels_packer_and_leaves_nothing(tmp_path, packer_tmp):
    """Packer is cancelled at once (not after its build), and nothing of its session survives."""
    driver, packer = _start_driver(tmp_path, packer_tmp)
    try:
        started = time.monotonic()
        driver.send_signal(signal.SIGTERM)
        out, _ = driver.communicate(timeout=60)
        assert out.strip() == "interrupted"
        assert time.monotonic() - started < 15, "Packer ran on instead of cancelling"
        assert "Cancelling build" in (tmp_path / "packer.log").read_text()
        assert "step-two-reached" not in (tmp_path / "packer.log").read_text()
        assert _wait_until_gone(packer, timeout=5) == [], "processes of Packer's session survived"
    finally:
        _end_session(packer)
        _end_session(driver.pid)


def test_packer_is_cancelled_when_the_bake_is_killed(tmp_path, packer_tmp):
    """SIGKILL leaves the bake no clean-up code: Packer still gets SIGTERM from the kernel
    (PR_SET_PDEATHSIG) and cancels instead of finishing and registering an image."""
    driver, packer = _start_driver(tmp_path, packer_tmp)
    try:
        driver.kill()
        driver.wait(10)
        assert _wait_until_gone(packer, "packer") == [], "Packer outlived the killed bake"
        assert "step-two-reached" not in (tmp_path / "packer.log").read_text()
    finally:
        _end_session(packer)
        _end_session(driver.pid)
