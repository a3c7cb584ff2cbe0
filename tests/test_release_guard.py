"""The last guard of ``python -m release``: an unexpected error is one line naming it and a log
file holding its traceback, exit status 70; stop signals (BaseException) pass through.

(AccessDenied from the local AWS API at the release lock's acquire, through the whole process:
tests/test_faults.py.)
"""

from __future__ import annotations

import signal
import stat
import tempfile
from pathlib import Path

import pytest

from release import cli, error_log, rollout


@pytest.fixture
def state_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


def fail_with(monkeypatch, error: BaseException) -> None:
    def command(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(cli, "run_status", command)


def logged_path(line: str) -> Path:
    assert "the traceback is in " in line, line
    return Path(line.split("the traceback is in ", 1)[1].strip())


def test_an_unexpected_error_is_one_line_and_a_logged_traceback(capsys, monkeypatch, state_home):
    fail_with(monkeypatch, KeyError("a key no handler expected\nwith a second line"))
    code = cli.main(["status", "staging", "--no-live"])
    err = capsys.readouterr().err
    assert code == error_log.UNEXPECTED == 70
    [line] = err.strip().splitlines()
    assert line.startswith("python -m release: unexpected error: KeyError: "), line
    assert "Traceback" not in err
    log = logged_path(line)
    assert log.parent == state_home / "golden-fleet" / "errors"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    text = log.read_text()
    assert "python -m release status staging --no-live" in text.splitlines()[0]
    assert "Traceback (most recent call last)" in text and "in command" in text
    assert "KeyError: 'a key no handler expected\\nwith a second line'" in text


def test_a_long_message_is_cut_on_the_line_and_whole_in_the_log(capsys, monkeypatch, state_home):
    fail_with(monkeypatch, RuntimeError("x" * 5000 + " the end"))
    assert cli.main(["status", "staging", "--no-live"]) == 70
    [line] = capsys.readouterr().err.strip().splitlines()
    assert len(line) < 600, len(line)
    assert " the end" in logged_path(line).read_text()


def test_a_log_directory_that_cannot_be_made_falls_back_to_the_temporary_one(
    capsys, monkeypatch, tmp_path
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    fail_with(monkeypatch, RuntimeError("boom"))
    assert cli.main(["status", "staging", "--no-live"]) == 70
    [line] = capsys.readouterr().err.strip().splitlines()
    assert logged_path(line).parent == tmp_path / "tmp" / "golden-fleet-errors"


def test_without_any_writable_directory_the_line_still_says_where_it_failed(
    capsys, monkeypatch, tmp_path
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    monkeypatch.setattr(tempfile, "tempdir", str(blocker))
    fail_with(monkeypatch, RuntimeError("boom"))
    assert cli.main(["status", "staging", "--no-live"]) == 70
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "RuntimeError: boom" in line and "could not be logged" in line, line
    assert "test_release_guard.py" in line, line


@pytest.mark.parametrize(
    "stop", [rollout.Interrupted(signal.SIGTERM), SystemExit(5), GeneratorExit()]
)
def test_stop_signals_pass_through_the_guard(monkeypatch, state_home, stop):
    """BaseException is never the guard's: a rollout's Interrupted must reach its rollback."""
    fail_with(monkeypatch, stop)
    with pytest.raises(type(stop)):
        cli.main(["status", "staging", "--no-live"])
    assert not state_home.exists()


def test_ctrl_c_keeps_its_own_status(capsys, monkeypatch, state_home):
    fail_with(monkeypatch, KeyboardInterrupt())
    assert cli.main(["status", "staging", "--no-live"]) == 130
    assert not state_home.exists()


def test_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "70 an unexpected error: one line names it and the log file" in text, text
