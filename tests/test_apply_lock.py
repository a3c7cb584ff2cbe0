"""The release lock around an edit's ``--apply`` (release/apply_lock.py) and in ``status``.

``python -m release shift STACK N --apply`` runs as an operator runs it (release.cli.main), with
the stack's listener, alarms and lock table in moto in process (tests/live_stack.py) and the
Automation API's stack replaced by a stand-in whose ``up`` applies the file's weights to the
listener, as ``pulumi up`` does for a weight edit, and observes the lock's item while it runs.
No clock is waited on: the lock's heartbeat thread waits 10 s on an event and never beats in
these tests, which end well before.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import boto3
import pytest
from harness import apply_project, copy_stack_file
from live_stack import REGION, StandInStack, build, shift_file
from moto import mock_aws
from pulumi.automation import errors
from pulumi.automation._cmd import CommandResult

from release import automation, edits, lock
from release.aws_clients import client
from release.cli import main

STACK, SERVICE = "staging", "checkout"
KEY = lock.lock_key(SERVICE, STACK)


def item() -> dict | None:
    return (
        boto3.client("dynamodb", region_name=REGION)
        .get_item(TableName=lock.TABLE_NAME, Key={"lock_key": {"S": KEY}}, ConsistentRead=True)
        .get("Item")
    )


@pytest.fixture
def aws(no_aws_credentials, monkeypatch):
    """moto in process with the stack's listener, alarms and lock table; test credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield build(STACK, SERVICE, {"blue": 100, "green": 0})


@pytest.fixture
def project(tmp_path, monkeypatch) -> tuple[Path, StandInStack]:
    """A project directory (Pulumi.yaml, policy configs, the stack file), a `pulumi` on PATH, and
    the Automation API's stack replaced by the stand-in."""
    apply_project(tmp_path, monkeypatch, (STACK,))
    path = copy_stack_file(STACK, tmp_path)
    stand_in = StandInStack(path, STACK, SERVICE)
    monkeypatch.setattr(automation, "_select", lambda name, work_dir: stand_in)
    return path, stand_in


def shift(capsys, percent: int = 10) -> tuple[int, str, str]:
    # --force: moto builds no Auto Scaling groups, which the live gate would find missing
    code = main(["shift", STACK, str(percent), "--apply", "--yes", "--force"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rollout_lock() -> lock.DynamoLock:
    return lock.DynamoLock(
        client("dynamodb", REGION), KEY, STACK, holder="alice@ci-1 pid 7", out=lambda _: None
    )


def test_a_shift_apply_is_refused_while_a_rollout_holds_the_lock(aws, project, capsys):
    """Finding 1: the rollout's lock held, `shift --apply` refuses in one line naming the
    holder, exit 5, and writes nothing: the file byte for byte, no update, the listener as it
    was, the rollout's lock untouched."""
    path, stand_in = project
    before = path.read_bytes()
    holder = rollout_lock()
    holder.acquire()
    try:
        code, out, err = shift(capsys)
        assert code == 5, (out, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "holds the release lock: alice@ci-1 pid 7" in err and "nothing written" in err
        assert path.read_bytes() == before
        assert stand_in.ran == []
        assert aws.weights() == {"blue": 100, "green": 0}
        assert lock.record_of(item()).owner == holder.token
    finally:
        holder.release()


def test_a_shift_apply_holds_the_lock_through_its_update_and_releases_it(aws, project, capsys):
    """The item names the shift (phase update) while `pulumi up` runs; free after; a rollout
    trying meanwhile is refused naming the shift."""
    _path, stand_in = project
    refused: list[str] = []

    def a_rollout_tries() -> None:
        try:
            rollout_lock().acquire()
        except lock.LockHeld as error:
            refused.append(str(error))

    stand_in.during_up = a_rollout_tries
    code, out, err = shift(capsys, 10)
    assert code == 0, (out, err)
    during = stand_in.seen[-1]
    assert during.held and during.phase == "update", during
    assert "(shift 10 --apply)" in during.holder and f"pid {os.getpid()}" in during.holder
    assert len(refused) == 1 and "(shift 10 --apply)" in refused[0]
    assert stand_in.ran == ["preview", "up"] and stand_in.beating == [True]
    assert aws.weights() == {"blue": 90, "green": 10}
    assert item() is None, "the lock was left behind"
    assert "release lock taken" in out


def test_finish_apply_holds_one_lock_across_its_two_updates(aws, project, capsys):
    """From a split below 100 %: the shift to 100 and the finish, each previewed and applied,
    under the one lock taken before the first (the same token in both updates)."""
    path, stand_in = project
    shift_file(path, STACK, 50)
    code = main(["finish", STACK, "--apply", "--yes", "--force"])
    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    assert stand_in.ran == ["preview", "up", "preview", "up"]
    owners = {record.owner for record in stand_in.seen}
    assert len(owners) == 1 and "" not in owners, stand_in.seen
    assert "(finish --apply)" in stand_in.seen[0].holder
    assert edits.read_config(path).stable_color.value == "green"
    assert item() is None


def test_a_failed_update_still_releases_the_lock(aws, project, capsys):
    _path, stand_in = project

    def fail() -> None:
        raise errors.CommandError(CommandResult(stdout="", stderr="error: boom", code=255))

    stand_in.during_up = fail
    code, out, err = shift(capsys)
    assert code == 1 and "pulumi failed for stack" in err, (out, err)
    assert stand_in.seen[-1].held
    assert item() is None, "the lock was left behind"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_update_releases_the_lock(aws, project, capsys, signum):
    """SIGTERM (or Ctrl-C) inside `pulumi up`: the lock is released, exit 130, one line saying
    the file is written and the lock released; the handlers are restored after."""
    path, stand_in = project
    before = signal.getsignal(signal.SIGTERM)
    stand_in.during_up = lambda: os.kill(os.getpid(), signum)
    code, out, err = shift(capsys)
    assert code == 130, (out, err)
    assert "interrupted (" in err and "the release lock is released" in err
    assert stand_in.seen[-1].held
    assert item() is None, "the lock was left behind"
    assert edits.read_config(path).traffic["green"] == 10, "the file was written before up"
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_signal_while_releasing_is_noted_and_the_release_finishes(
    aws, project, capsys, monkeypatch
):
    _path, _ = project
    real = lock.DynamoLock.release

    def release_signalled(self):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(self)

    monkeypatch.setattr(lock.DynamoLock, "release", release_signalled)
    code, out, err = shift(capsys)
    assert code == 0, (out, err)
    assert "SIGTERM received while releasing the release lock: finishing that first" in out
    assert item() is None


def test_rollback_now_during_a_shift_update_is_reasserted_after_it(aws, project, capsys):
    """`rollback --now` while the shift's `pulumi up` runs: the update then moves the listener
    to the shift's weights, so the shift sets stable 100 % again and exits 1 saying so."""
    _path, stand_in = project
    now_code: list[int] = []

    def emergency_rollback() -> None:
        now_code.append(main(["rollback", STACK, "--now"]))

    stand_in.during_up = emergency_rollback
    code, out, err = shift(capsys)
    assert now_code == [0], (out, err)
    assert code == 1 and "halted by `rollback --now`" in err and "set on the listener again" in err
    assert aws.weights() == {"blue": 100, "green": 0}
    assert item() is None or not lock.record_of(item()).held


def test_an_apply_without_credentials_is_refused_before_any_write(
    no_aws_credentials, project, capsys
):
    """A lock that cannot be taken is refused as a held one is: exit 5, one line, nothing
    written, no update, and no second line about a release that had nothing to release."""
    path, stand_in = project
    before = path.read_bytes()
    code, out, err = shift(capsys)
    assert code == 5, (out, err)
    assert err.count("\n") == 1 and "could not take the release lock" in err, err
    assert "could not release" not in out + err
    assert path.read_bytes() == before and stand_in.ran == []


def test_a_file_edit_alone_takes_no_lock(aws, project, capsys):
    """Without --apply the edit is the file alone, for a person to review and `pulumi up`."""
    path, _ = project
    holder = rollout_lock()
    holder.acquire()
    try:
        code = main(["shift", STACK, "10", "--force"])
        assert code == 0, capsys.readouterr()
        assert edits.read_config(path).traffic["green"] == 10
    finally:
        holder.release()


# ---------------------------------------------------------------------------------------------
# status
# ---------------------------------------------------------------------------------------------
def status(capsys) -> str:
    code = main(["status", STACK, "--no-outputs", "--no-images"])
    captured = capsys.readouterr()
    assert code == 0, captured
    return captured.out


def test_status_shows_the_holder_its_stamps_as_written_and_its_phase(aws, project, capsys):
    holder = rollout_lock()
    holder.acquire()
    try:
        holder.check("bake")
        record = lock.record_of(item())
        out = status(capsys)
    finally:
        holder.release()
    [line] = [line for line in out.splitlines() if line.startswith("release lock:")]
    assert f"held by alice@ci-1 pid 7, started {record.started}" in line
    assert "as the holder wrote them" in line and "phase bake" in line
    assert "release lock: free" in status(capsys)


def test_status_shows_a_halt(aws, project, capsys):
    main(["rollback", STACK, "--now"])
    capsys.readouterr()
    out = status(capsys)
    assert "release lock: free" in out
    assert "release lock: halt set by `rollback --now`" in out and "for no holder" in out


def test_status_without_the_table_says_the_lock_could_not_be_read_and_goes_on(aws, project, capsys):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.update_table(TableName=lock.TABLE_NAME, DeletionProtectionEnabled=False)
    dynamodb.delete_table(TableName=lock.TABLE_NAME)
    out = status(capsys)
    assert "release lock: could not be read (no table golden-fleet-release-locks" in out
    assert "next:" in out.splitlines()[-1]


def test_status_without_credentials_says_the_lock_could_not_be_read(
    no_aws_credentials, project, capsys
):
    out = status(capsys)
    [line] = [line for line in out.splitlines() if line.startswith("release lock:")]
    assert line.startswith("release lock: could not be read (")
    assert "next:" in out.splitlines()[-1]
