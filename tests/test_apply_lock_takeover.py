"""``--take-over-stale-lock`` on the edit commands' ``--apply`` (release/apply_lock.py, the
take-over of release/lock.py).

``python -m release shift STACK 50 --apply --take-over-stale-lock`` runs as an operator runs it
(release.cli.main) against a local AWS API on loopback (moto_server, its item operations atomic
as DynamoDB's are), with the Automation API's stack replaced by the stand-in that applies the
file's weights to the listener (tests/live_stack.py StandInStack). The waiter's clock is a fake
one handed to the command (release.cli.run_edit's ``clock``): the lease passes when the watch
sleeps, and no test waits on a real clock. A dead holder is a lock whose heartbeat stopped and
which was never released (its process killed); a live one heartbeats between the waiter's reads.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from harness import apply_project, copy_stack_file
from live_stack import REGION, LiveStack, StandInStack, build
from local_aws import atomic_dynamodb_items, use_test_credentials

from release import apply_lock, automation, cli, edits, lock, rollout
from release.aws_clients import client

STACK, SERVICE = "staging", "checkout"
KEY = lock.lock_key(SERVICE, STACK)
DEAD = "alice@ci-1 pid 7 (shift 10 --apply)"
SHIFT = ["shift", STACK, "50", "--apply", "--yes", "--force"]  # --force: moto has no groups


class Clock(rollout.Clock):
    """The waiter's clock: time moves only when the watch sleeps. ``on_sleep(n)`` runs before
    the n-th sleep; ``on_read(now)`` each time the watch reads the time (after each read of the
    item, right before it decides)."""

    def __init__(
        self,
        on_sleep: Callable[[int], None] = lambda n: None,
        on_read: Callable[[float], None] = lambda now: None,
    ):
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep, self.on_read = on_sleep, on_read
        start = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
        super().__init__(
            monotonic=self._monotonic,
            sleep=self._sleep,
            wall=lambda: start + timedelta(seconds=self.now),
        )

    def _monotonic(self) -> float:
        self.on_read(self.now)
        return self.now

    def _sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.on_sleep(self.sleeps)
        self.now += seconds


def _item() -> lock.Record:
    return lock.read(boto3.client("dynamodb", region_name=REGION), lock.TABLE_NAME, KEY)


def _holder(holder: str = DEAD, **extra) -> lock.DynamoLock:
    return lock.DynamoLock(
        client("dynamodb", REGION), KEY, STACK, holder=holder, out=lambda _: None, **extra
    )


def _dead() -> lock.DynamoLock:
    """A lock taken and then left as a killed process leaves it: no heartbeat, no release."""
    holder = _holder()
    holder.acquire()
    holder._stop_heartbeat()
    holder.held = False
    return holder


@pytest.fixture(scope="module")
def _atomic_items() -> Iterator[None]:
    with atomic_dynamodb_items():
        yield


@pytest.fixture
def aws(aws_endpoint, _atomic_items, monkeypatch) -> LiveStack:
    """The module's moto_server, reset, with the stack's listener, alarms and lock table; test
    credentials only."""
    use_test_credentials(monkeypatch, aws_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return build(STACK, SERVICE, {"blue": 100, "green": 0})


@pytest.fixture
def project(tmp_path, monkeypatch) -> tuple[Path, StandInStack]:
    apply_project(tmp_path, monkeypatch, (STACK,))
    path = copy_stack_file(STACK, tmp_path)
    stand_in = StandInStack(path, STACK, SERVICE)
    monkeypatch.setattr(automation, "_select", lambda name, work_dir: stand_in)
    return path, stand_in


def run(capsys, monkeypatch, argv: list[str], clock: Clock) -> tuple[int, str, str]:
    """``python -m release ARGV`` with the waiter's clock given to the edit."""
    monkeypatch.setattr(cli, "run_edit", functools.partial(cli.run_edit, clock=clock))
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_dead_holder_is_taken_after_one_observed_lease_and_the_update_runs(
    aws, project, capsys, monkeypatch
):
    """The holder's item stays, its version never moves: the shift watches it for exactly one
    lease on its own clock, saying what it watches (holder, version, how long), takes it with
    the write conditioned on that version, applies 50 % under it, and releases it."""
    path, stand_in = project
    dead = _dead()
    seen = _item().rvn
    clock = Clock()
    code, out, err = run(capsys, monkeypatch, [*SHIFT, "--take-over-stale-lock"], clock)
    assert code == 0, (out, err)
    assert clock.now == lock.LEASE_S, "taken before or after one whole lease"
    [watching] = [line for line in out.splitlines() if "watching it for" in line]
    assert f"held by {DEAD}" in watching and f"record version {seen}" in watching, watching
    assert "watching it for 60s" in watching and "nothing written" in watching, watching
    assert f"version {seen} unchanged for 55s of 60s" in out
    assert f"took over the release lock of {DEAD}" in out and "stood still for 60s" in out
    during = stand_in.seen[-1]
    assert during.held and during.owner != dead.token and "(shift 50 --apply)" in during.holder
    assert stand_in.ran == ["preview", "up"]
    assert edits.read_config(path).traffic["green"] == 50, "the file was not written"
    assert aws.weights() == {"blue": 50, "green": 50}
    assert not _item().held, "the taken lock was left behind"
    assert cli.main(["status", STACK, "--no-outputs", "--no-images"]) == 0
    assert f"release lock: free ({KEY})" in capsys.readouterr().out


def test_a_live_holder_is_refused_naming_it_and_nothing_is_written(
    aws, project, capsys, monkeypatch
):
    """The holder heartbeats between two of the waiter's reads: refused in one line naming it,
    exit 5 as any refused --apply, at that read (not a lease later); the file, the listener
    and the holder's item untouched."""
    path, stand_in = project
    before = path.read_bytes()
    holder = _holder("alice@ci-1 pid 7 (rollout)")
    holder.acquire()
    try:
        clock = Clock(on_sleep=lambda n: holder.beat() if n == 3 else None)
        code, out, err = run(capsys, monkeypatch, [*SHIFT, "--take-over-stale-lock"], clock)
        assert code == rollout.REFUSED == 5, (out, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "is alive: alice@ci-1 pid 7 (rollout)" in err and "nothing written" in err, err
        assert clock.sleeps == 3 and clock.now < lock.LEASE_S
        assert path.read_bytes() == before and stand_in.ran == []
        assert aws.weights() == {"blue": 100, "green": 0}
        assert _item().owner == holder.token
    finally:
        holder.release()


def test_without_the_flag_a_dead_holder_is_refused_at_once(aws, project, capsys, monkeypatch):
    """As before the flag existed: no watch, no sleep, exit 5; the line names the flag that
    would take it over with this very command."""
    path, stand_in = project
    before = path.read_bytes()
    dead = _dead()
    clock = Clock()
    code, out, err = run(capsys, monkeypatch, SHIFT, clock)
    assert code == 5, (out, err)
    assert len(err.strip().splitlines()) == 1 and f"holds the release lock: {DEAD}" in err, err
    assert "the same command with --take-over-stale-lock watches it for one lease" in err, err
    assert clock.sleeps == 0 and "watching" not in out
    assert path.read_bytes() == before and stand_in.ran == []
    assert _item().owner == dead.token


def test_another_taker_winning_between_observation_and_take_over_is_refused(
    aws, project, capsys, monkeypatch
):
    """A second waiter (a rollout with the flag, on its own clock) takes the dead holder's lock
    after the shift's last read and before its conditional write: that write fails, and the
    shift refuses naming the new holder, writing nothing."""
    path, stand_in = project
    before = path.read_bytes()
    _dead()
    rival_clock = Clock()
    rival = _holder(
        "bob@ci-2 pid 8 (rollout)", take_over=True,
        monotonic=rival_clock.monotonic, sleep=rival_clock.sleep,
    )  # fmt: skip

    def rival_takes_it(now: float) -> None:
        if now >= lock.LEASE_S and not rival.held:
            rival.acquire()

    try:
        clock = Clock(on_read=rival_takes_it)
        code, out, err = run(capsys, monkeypatch, [*SHIFT, "--take-over-stale-lock"], clock)
        assert rival.held, "the rival never took it: the race was not staged"
        assert code == 5, (out, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "changed at the last moment" in err and "now held by bob@ci-2 pid 8" in err, err
        assert path.read_bytes() == before and stand_in.ran == []
        assert aws.weights() == {"blue": 100, "green": 0}
        assert _item().owner == rival.token
    finally:
        rival.release()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_watch_ends_it_at_once_with_nothing_written(
    aws, project, capsys, monkeypatch, signum
):
    """Ctrl-C (or SIGTERM) while the dead holder is watched: exit 130 at that sleep, no read or
    write after it, one line saying the lock was not taken; the item exactly as the dead holder
    left it, the file and listener untouched, the signal handlers as they were."""
    path, stand_in = project
    before, handler = path.read_bytes(), signal.getsignal(signum)
    _dead()
    item = _item()
    clock = Clock(on_sleep=lambda n: os.kill(os.getpid(), signum) if n == 3 else None)
    code, out, err = run(capsys, monkeypatch, [*SHIFT, "--take-over-stale-lock"], clock)
    assert code == 130, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert "before the release lock was taken — nothing written" in err, err
    assert clock.sleeps == 3 and clock.now == 10, "the watch went on after the signal"
    assert _item() == item, "the lock's item was written"
    assert path.read_bytes() == before and stand_in.ran == []
    assert signal.getsignal(signum) == handler


# ---------------------------------------------------------------------------------------------
# The flag itself
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "other"),
    [
        (["shift", STACK, "50"], "--apply"),
        (["deploy", STACK, "1.5.0"], "--apply"),
        (["rollback", STACK], "--apply"),
        (["finish", STACK, "--dry-run"], "--apply"),
        (["rollback", STACK, "--now"], "--now"),
        (["rollout", STACK], "--apply"),
    ],
)
def test_the_flag_where_no_lock_is_taken_is_a_usage_error_in_one_line(project, capsys, argv, other):
    """Without --apply no lock is taken (an edit writes the file alone, a rollout prints its
    plan), and `rollback --now` takes none: exit 2, one line
    naming both flags, before anything is read or written."""
    path, stand_in = project
    before = path.read_bytes()
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--take-over-stale-lock"])
    err = capsys.readouterr().err
    assert exit_.value.code == cli.USAGE_ERROR == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"python -m release {argv[0]}: error: --take-over-stale-lock"), err
    assert other in err and "usage:" not in err
    assert path.read_bytes() == before and stand_in.ran == []


@pytest.mark.parametrize(
    "argv",
    [["shift", STACK, "50"], ["deploy", STACK, "1.5.0"], ["rollback", STACK], ["finish", STACK]],
)
def test_each_edit_command_hands_the_flag_to_its_lock(no_aws_credentials, argv):
    args = cli.parse_arguments([*argv, "--apply", "--take-over-stale-lock"])
    assert apply_lock.for_edit(args, REGION, SERVICE, print).take_over
    args = cli.parse_arguments([*argv, "--apply"])
    assert not apply_lock.for_edit(args, REGION, SERVICE, print).take_over


def _args(command: str, **flags: bool):
    import argparse

    return argparse.Namespace(
        command=command, **{"take_over_stale_lock": False, "apply": False, **flags}
    )


def test_flag_conflicts_name_both_flags():
    conflict = cli.flag_conflict
    assert conflict(_args("shift", take_over_stale_lock=True, apply=True)) is None
    assert conflict(_args("shift")) is None
    assert "needs --apply" in conflict(_args("finish", take_over_stale_lock=True))
    assert "does not go with --now" in conflict(
        _args("rollback", take_over_stale_lock=True, apply=True, now=True)
    )
    assert conflict(_args("rollback", apply=True, now=True)) is None, "--now's own refusal"
    assert "prints its plan" in conflict(_args("rollout", take_over_stale_lock=True))
    assert conflict(_args("rollout", take_over_stale_lock=True, apply=True)) is None
