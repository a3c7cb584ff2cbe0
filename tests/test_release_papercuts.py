"""The release command as an operator meets it: pipes, hints that fit the phase, honest previews.

Each case below once misled: `| head -1` ended in a traceback and decided by timing whether the
file was written; a second rollback suggested sending traffic back onto the version just rolled
back from; after a warm-standby finish, status offered the retired old version as a new release;
re-warming a cold color with the version it already had promised a new image.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import copy_stack_file

from components.config import parse_stack_config
from release import stackfile
from release.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_aws(no_aws_credentials):
    """No AWS: the live checks warn and the commands edit files only."""


def copy_of(tmp_path: Path, stack: str) -> Path:
    return copy_stack_file(stack, tmp_path)


def run(capsys, path: Path, *args: str) -> tuple[int, str]:
    command, stack, *rest = args
    code = main([command, stack, "--file", str(path), *rest])
    out = capsys.readouterr().out
    return code, out


def next_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("next:"))


def test_a_closed_pipe_is_no_traceback_and_the_file_is_written(tmp_path):
    """The reader is gone before the first line: exit 0, no traceback, the edit is made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PYTHONPATH=str(ROOT),
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_CONFIG_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    for _ in range(3):
        path = copy_of(tmp_path, "staging")
        proc = subprocess.Popen(
            [sys.executable, "-m", "release", "shift", "staging", "10", "--file", str(path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        proc.stdout.close()  # `| head -0`: nobody will read
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=120) == 0, err
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        config = parse_stack_config(stackfile.load_config_text(path.read_text()))
        assert config.traffic.green == 10, "the edit depended on the reader"


def test_nothing_is_printed_before_a_refusal(capsys, tmp_path):
    """A refused step prints its one error line, not a summary that reads like success."""
    path = copy_of(tmp_path, "staging")
    code, out = run(capsys, path, "finish", "staging")
    assert code == 1 and out == ""


def test_after_a_rollback_no_hint_sends_traffic_back_to_the_rolled_back_version(capsys, tmp_path):
    path = copy_of(tmp_path, "staging")
    assert run(capsys, path, "deploy", "staging", "1.6.0")[0] == 0
    assert run(capsys, path, "shift", "staging", "10")[0] == 0
    assert run(capsys, path, "rollback", "staging")[0] == 0
    code, again = run(capsys, path, "rollback", "staging")
    assert code == 0 and "nothing to roll back" in again
    assert "shift staging" not in again, again
    assert "deploy a fixed version" in again
    _, status = run(capsys, path, "status", "staging", "--no-outputs", "--no-live", "--no-images")
    hint = next_line(status)
    assert "if traffic was rolled back from it: deploy a fixed version" in hint, hint


def test_after_a_warm_finish_status_calls_the_old_color_standby_not_a_release(capsys, tmp_path):
    path = copy_of(tmp_path, "prod")
    for step in (("deploy", "prod", "1.5.0"), ("shift", "prod", "100"), ("finish", "prod")):
        code, out = run(capsys, path, *step)
        assert code == 0, (step, out)
    _, status = run(capsys, path, "status", "prod", "--no-outputs", "--no-live", "--no-images")
    hint = next_line(status)
    assert "keeps the previous version 1.4.0 as warm standby" in hint, hint
    assert "first share" not in hint and "deploy prod VERSION" in hint
    code, again = run(capsys, path, "rollback", "prod")
    assert "go back to 1.4.0" in again and "shift prod 100" in again, again


def test_newer_is_semantic_not_lexical(capsys, tmp_path):
    """1.10.0 is newer than 1.9.0: after releasing 1.10.0 the standby holds the previous one."""
    path = copy_of(tmp_path, "prod")
    text = path.read_text().replace("version: 1.4.0", "version: 1.9.0")
    path.write_text(text)
    for step in (("deploy", "prod", "1.10.0"), ("shift", "prod", "100"), ("finish", "prod")):
        assert run(capsys, path, *step)[0] == 0, step
    _, status = run(capsys, path, "status", "prod", "--no-outputs", "--no-live", "--no-images")
    assert "keeps the previous version 1.9.0" in next_line(status)


def test_rewarming_a_cold_color_with_its_own_version_promises_no_new_image(capsys, tmp_path):
    path = copy_of(tmp_path, "staging")
    text = path.read_text().replace(
        "      version: 1.5.0\n      capacity: {min: 1, desired: 1, max: 2}",
        "      version: 1.5.0\n      capacity: {min: 0, desired: 0, max: 2}",
    )
    assert "min: 0" in text
    path.write_text(text)
    code, out = run(capsys, path, "deploy", "staging", "1.5.0")
    assert code == 0, out
    expect = next_line(out)
    assert "only green's Auto Scaling Group capacity" in expect, expect
    assert "new image" not in expect


def test_ctrl_c_before_any_step_is_one_line_and_exit_130(capsys, tmp_path, monkeypatch):
    """An interrupt while the command still reads and plans: no traceback, nothing written."""
    from release import stackfile as stackfile_module

    path = copy_of(tmp_path, "staging")
    before = path.read_bytes()

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stackfile_module, "load", interrupted)
    code = main(["shift", "staging", "10", "--file", str(path)])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted" in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before


def test_every_suggested_command_keeps_the_file_it_was_given(capsys, tmp_path):
    """Run on a copy with --file, the hints name that copy: following a `next:` or `undo:`
    suggestion never edits the project's own stack file instead."""
    folder = tmp_path / "a folder"
    folder.mkdir()
    path = copy_stack_file("staging", folder)
    code, out = run(capsys, path, "shift", "staging", "10")
    assert code == 0
    suggestions = [line for line in out.splitlines() if "python -m release " in line]
    assert suggestions, out
    quoted = f"--file '{path}'"
    for line in suggestions:
        assert line.count("python -m release ") == line.count(quoted), line
    code, out = run(capsys, path, "status", "staging", "--no-live", "--no-images", "--no-outputs")
    assert code == 0 and quoted in next_line(out)
    # Without --file, the hints stay as short as before.
    from release import transitions

    assert "--file" not in transitions._cmd("rollback", "staging")
