"""``python -m release rollout`` under pressure: signals inside AWS calls, an emergency rollback
during an update, a second rollout, alarms that go missing or never report, hand edits and
resumes after a kill.

Against moto in-process; a call that must be slow is sent, through botocore's real HTTP path, to
a loopback socket that accepts and never answers (:class:`Stall`). Time is a fake clock except
inside the stalled call, which a signal ends within milliseconds.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import botocore.handlers
import pytest
from harness import copy_stack_file
from live_stack import build
from moto import mock_aws

from release import edits, emergency, rollout
from release.aws_clients import client
from release.rollout import Clock, Rollout, cloudwatch_alarms

STACK, SERVICE, REGION = "staging", "checkout", "eu-west-1"
BAKE_S = 300


@pytest.fixture
def aws(no_aws_credentials, monkeypatch):
    """moto in process, with test credentials so that clients made by release.aws_clients sign."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


@pytest.fixture
def path(tmp_path) -> Path:
    return copy_stack_file(STACK, tmp_path)


class FakeClock(Clock):
    """Time moves only when the rollout sleeps; ``on_sleep(n)`` runs before the n-th sleep."""

    def __init__(self, on_sleep: Callable[[int], None] = lambda n: None):
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep = on_sleep
        start = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
        super().__init__(
            monotonic=lambda: self.now,
            sleep=self._sleep,
            wall=lambda: start + timedelta(seconds=self.now),
        )

    def _sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.on_sleep(self.sleeps)
        self.now += seconds


class ClientApplier:
    """``pulumi up`` for a weight edit, through release.aws_clients (so a Stall can hold it)."""

    def __init__(self, path: Path):
        self.path = path
        self.applied: list[dict[str, int]] = []

    def preview_and_up(self, stack: str, out) -> None:
        cfg = edits.read_config(self.path)
        weights = {color: cfg.traffic[color] for color in ("blue", "green")}
        self.applied.append(weights)
        elbv2 = client("elbv2", REGION)
        emergency.set_weights(elbv2, emergency.find_listener(elbv2, STACK, SERVICE), weights)


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A loopback socket that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        sock.close()


class Stall:
    """The first call of ``operation`` once ``ready()`` holds goes to the blackhole, and a timer
    sends ``signum`` to this process 50 ms later, while botocore waits for the answer."""

    def __init__(self, url: str, operation: str, ready: Callable[[], bool], signum: int):
        self.url, self.operation, self.ready, self.signum = url, operation, ready, signum
        self.active = True
        self.fired = False
        self.timer: threading.Timer | None = None

    def __call__(self, request, event_name: str = "", **_) -> None:
        if not self.active or self.fired or not event_name.endswith(f".{self.operation}"):
            return None
        if not self.ready():
            return None
        self.fired = True
        request.url = self.url  # moto does not answer for this address: the real send goes out
        self.timer = threading.Timer(0.05, os.kill, (os.getpid(), self.signum))
        self.timer.start()
        return None


@pytest.fixture
def stall(blackhole) -> Iterator[Callable[..., Stall]]:
    """Installs a :class:`Stall` ahead of moto's handler for every session made from now on."""
    boto3._get_default_session()  # made before, so that it never carries the stall
    made: list[Stall] = []

    def install(operation: str, ready: Callable[[], bool], signum=signal.SIGTERM) -> Stall:
        hook = Stall(blackhole, operation, ready, signum)
        made.append(hook)
        botocore.handlers.BUILTIN_HANDLERS.insert(0, ("before-send", hook))
        return hook

    yield install
    for hook in made:
        hook.active = False
        if hook.timer is not None:
            hook.timer.cancel()
            hook.timer.join()
        botocore.handlers.BUILTIN_HANDLERS.remove(("before-send", hook))


def _rollout(path: Path, clock: Clock, applier, lines: list[str], **extra) -> Rollout:
    return Rollout(
        direct=lambda: emergency.roll_back_listener(REGION, STACK, SERVICE, "blue"),
        stack=STACK,
        path=path,
        steps=(10, 50, 100),
        bake_s=BAKE_S,
        applier=applier,
        alarms=cloudwatch_alarms(REGION),
        clock=clock,
        out=lines.append,
        stream=io.StringIO(),
        **extra,
    )


def _file_traffic(path: Path) -> dict[str, int]:
    cfg = edits.read_config(path)
    return {"blue": cfg.traffic.blue, "green": cfg.traffic.green}


def _gate(cfg) -> list[str]:
    """A gate that reads AWS (as release.live.gate does) and finds nothing wrong."""
    client("elbv2", REGION).describe_load_balancers()
    return []


# Where a rollout waits on AWS, and the line of its timeline after which that call is made.
PHASES = {
    "gate read before step 2": ("DescribeLoadBalancers", "step 1/3: bake of 5m00s passed"),
    "update of step 2": ("ModifyListener", "step 2/3: pulumi preview + up"),
    "bake of step 2": ("DescribeAlarms", "step 2/3: applied"),
    "alarm check before the final write": ("DescribeAlarms", "step 2/3: bake of 5m00s passed"),
}


@pytest.mark.parametrize("phase", list(PHASES))
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_inside_any_aws_call_rolls_back(aws, path, stall, phase, signum):
    """SIGINT/SIGTERM while botocore waits for an answer is never taken for a network error
    (retried, then carried on to 100 %): the rollout rolls back and exits 1, and no later
    step is ever sent."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    operation, after = PHASES[phase]
    lines: list[str] = []
    hook = stall(operation, lambda: any(after in line for line in lines), signum)
    applier = ClientApplier(path)
    code = _rollout(path, FakeClock(), applier, lines, gate=_gate).run()
    assert hook.fired, f"the {operation} call of the {phase} was never made"
    report = "\n".join(lines)
    assert code == rollout.ROLLED_BACK, report
    assert f"interrupted ({signal.Signals(signum).name})" in report
    assert max(a["green"] for a in applier.applied) <= 50, "a step after the signal was sent"
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)


# ---------------------------------------------------------------------------------------------
# Gates that cannot be skipped
# ---------------------------------------------------------------------------------------------
def _set(name: str, state: str) -> None:
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName=name, StateValue=state, StateReason="test"
    )


def test_an_alarm_that_fires_while_the_gate_reads_stops_the_step_before_its_write(aws, path):
    """The alarm goes to ALARM between the bake's end and the next write: the check right before
    the write sees it; green never gets the next step."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})

    def gate(cfg) -> list[str]:
        if cfg.traffic.green == 10:
            _set(live.alarms["green"][0], "ALARM")
        return []

    applier, lines = ClientApplier(path), []
    assert _rollout(path, FakeClock(), applier, lines, gate=gate).run() == rollout.ROLLED_BACK
    assert [a["green"] for a in applier.applied] == [10, 0]
    assert any("rolling back: before step 2/3: ALARM 1" in line for line in lines), lines
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)


def test_one_alarm_deleted_during_a_bake_rolls_back(aws, path):
    """Two of green's three alarms are left: one gone is a failure, not "still watched"."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})

    def delete(n: int) -> None:
        if n == 3:
            boto3.client("cloudwatch", region_name=REGION).delete_alarms(
                AlarmNames=[live.alarms["green"][2]]
            )

    applier, lines = ClientApplier(path), []
    assert _rollout(path, FakeClock(delete), applier, lines).run() == rollout.ROLLED_BACK
    assert any(f"the alarms {live.alarms['green'][2]} are gone" in line for line in lines), lines
    assert max(a["green"] for a in applier.applied) == 10
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)


def test_one_missing_alarm_is_refused_before_anything_is_written(aws, path):
    """Every alarm the program creates (components/alarm_names.py) must be there at the start."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    boto3.client("cloudwatch", region_name=REGION).delete_alarms(
        AlarmNames=[live.alarms["green"][1]]
    )
    before = path.read_bytes()
    named = f"no CloudWatch alarm named {live.alarms['green'][1]} in"
    with pytest.raises(rollout.ReleaseError, match=named):
        _rollout(path, FakeClock(), ClientApplier(path), []).run()
    assert path.read_bytes() == before


def test_a_bake_in_which_no_alarm_ever_had_data_fails(aws, path):
    """INSUFFICIENT_DATA on every alarm for the whole bake judged nothing: rolled back."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    for name in live.alarms["green"] + live.load_balancer_alarms:
        _set(name, "INSUFFICIENT_DATA")
    applier, lines = ClientApplier(path), []
    assert _rollout(path, FakeClock(), applier, lines).run() == rollout.ROLLED_BACK
    assert any("the bake of step 1/3 judged nothing of green" in line for line in lines), lines
    assert [a["green"] for a in applier.applied] == [10, 0]


def test_the_load_balancers_ok_does_not_judge_a_color_without_data(aws, path):
    """The color's own three alarms stay INSUFFICIENT_DATA through the bake while the load
    balancer's (which sees both colors) is OK: the color was not measured, its bake fails,
    naming each of its alarms, and green never gets more than the first step."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    for name in live.alarms["green"]:
        _set(name, "INSUFFICIENT_DATA")
    for name in live.load_balancer_alarms:
        _set(name, "OK")
    applier, lines = ClientApplier(path), []
    assert _rollout(path, FakeClock(), applier, lines).run() == rollout.ROLLED_BACK
    failed = next(line for line in lines if "judged nothing of green" in line)
    for name in live.alarms["green"]:
        assert f"alarm {name} is INSUFFICIENT_DATA" in failed, failed
    assert [a["green"] for a in applier.applied] == [10, 0]
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)


def test_one_alarm_of_the_color_without_data_at_the_bakes_end_fails_it(aws, path):
    """Two of the color's alarms evaluate, the third never does: still not judged."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    silent = live.alarms["green"][2]
    _set(silent, "INSUFFICIENT_DATA")
    applier, lines = ClientApplier(path), []
    assert _rollout(path, FakeClock(), applier, lines).run() == rollout.ROLLED_BACK
    failed = next(line for line in lines if "judged nothing of green" in line)
    assert f"alarm {silent} is INSUFFICIENT_DATA" in failed, failed
    assert live.alarms["green"][0] not in failed, failed
    assert max(a["green"] for a in applier.applied) == 10


def test_a_bake_with_data_by_its_end_passes(aws, path):
    """INSUFFICIENT_DATA at first (a color that has just received traffic) is not a failure
    once every alarm of the color evaluates during the bake."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    names = live.alarms["green"] + live.load_balancer_alarms
    for name in names:
        _set(name, "INSUFFICIENT_DATA")

    def evaluate(n: int) -> None:
        if n == 5:
            for name in names:
                _set(name, "OK")

    assert _rollout(path, FakeClock(evaluate), ClientApplier(path), []).run() == 0


# ---------------------------------------------------------------------------------------------
# Hand edits
# ---------------------------------------------------------------------------------------------
def test_a_hand_edit_detected_mid_bake_is_never_deployed(aws, path):
    """Finding 6. The stable color's version is edited in the file during a bake: the next
    `pulumi up` from that file would refresh the color about to take all traffic onto an
    unreviewed version. The rollout moves the listener back directly, runs no update, leaves the
    file as the person left it, prints the difference, and exits HAND_EDIT."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})

    def edit(n: int) -> None:
        if n == 2:
            path.write_text(path.read_text().replace("version: 1.4.0", "version: 1.4.1"))

    applier, lines = ClientApplier(path), []
    assert _rollout(path, FakeClock(edit), applier, lines).run() == rollout.HAND_EDIT
    report = "\n".join(lines)
    assert "changed under the rollout: it is not what this rollout last wrote" in report
    assert "-      version: 1.4.0" in report and "+      version: 1.4.1" in report, report
    assert [a["green"] for a in applier.applied] == [10], "an update ran after the hand edit"
    assert "version: 1.4.1" in path.read_text(), "the person's edit was overwritten"
    assert _file_traffic(path) == {"blue": 90, "green": 10}, "the file was rewritten"
    assert live.weights() == {"blue": 100, "green": 0}


# ---------------------------------------------------------------------------------------------
# The release lock: a DynamoDB item per stack (release/lock.py)
# ---------------------------------------------------------------------------------------------
from release import lock as locks  # noqa: E402

KEY = locks.lock_key(SERVICE, STACK)
SKEWED = timedelta(days=1)


def _lock(clock: Clock, holder: str = "ops@runner-2 pid 42", **extra) -> locks.DynamoLock:
    extra.setdefault("wall", clock.wall)
    return locks.DynamoLock(
        client("dynamodb", REGION),
        KEY,
        STACK,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        holder=holder,
        out=lambda line: None,
        **extra,
    )


class SteppingClock(FakeClock):
    """A waiter's clock that moves ``step_s`` per sleep, whatever it asked for (a process
    descheduled or a machine suspended); ``between()`` runs in each sleep (the holder's
    heartbeat landing meanwhile)."""

    def __init__(self, step_s: float, between: Callable[[], None]):
        super().__init__()
        self.step_s, self.between = step_s, between

    def _sleep(self, seconds: float) -> None:
        self.between()
        self.now += self.step_s


def _item() -> locks.Record:
    return locks.read(boto3.client("dynamodb", region_name=REGION), locks.TABLE_NAME, KEY)


def _die(lock: locks.DynamoLock) -> None:
    """The holder's process is gone: its heartbeat stops, nothing is released."""
    lock._stop_heartbeat()
    lock.held = False


def test_a_second_rollout_refuses_naming_the_holder(aws, path):
    """One rollout holds the lock (another machine): a second refuses, names it, writes nothing."""
    build(STACK, SERVICE, {"blue": 100, "green": 0})
    clock = FakeClock()
    holder = _lock(clock, holder="alice@ci-1 pid 7")
    holder.acquire()
    before = path.read_bytes()
    applier = ClientApplier(path)
    with pytest.raises(locks.LockHeld, match="holds the release lock: alice@ci-1 pid 7"):
        _rollout(path, clock, applier, [], lock=_lock(clock)).run()
    assert path.read_bytes() == before and applier.applied == []
    assert _item().owner == holder.token, "the holder's lock was touched"
    holder.release()


@pytest.mark.parametrize(
    ("skew", "waiter_step_s"),
    [(SKEWED, 1.0), (-SKEWED, 10.0), (timedelta(seconds=700), 100_000.0)],
)
def test_a_live_holder_is_never_taken_over_whatever_the_clocks_say(aws, path, skew, waiter_step_s):
    """Finding 2. The holder's wall clock a day ahead, a day behind or 700 s ahead; the
    waiter's monotonic clock moving 1 s, 10 s or 28 hours per poll: a holder that heartbeats
    between the waiter's reads is alive, and --take-over-stale-lock refuses."""
    build(STACK, SERVICE, {"blue": 100, "green": 0})
    holder = _lock(
        FakeClock(),
        holder="alice@ci-1 pid 7",
        wall=lambda: datetime(2026, 11, 27, 6, 0, tzinfo=UTC) + skew,
    )
    holder.acquire()
    waiter_clock = SteppingClock(waiter_step_s, holder.beat)
    applier = ClientApplier(path)
    waiter = _lock(waiter_clock, take_over=True)
    with pytest.raises(locks.LockHeld, match="is alive: alice@ci-1 pid 7"):
        _rollout(path, waiter_clock, applier, [], lock=waiter).run()
    assert _item().owner == holder.token and applier.applied == []
    holder.release()


def test_a_dead_holders_lock_is_taken_after_one_lease(aws, path):
    """Finding 3. The holder died with its wall clock a day ahead (its heartbeat stamp is in
    the waiter's future): the waiter sees the same record version for one lease (60 s on its
    own monotonic clock, read every 5 s) and takes the lock over with a write conditioned on
    that version; the rollout then runs to 100 %."""
    build(STACK, SERVICE, {"blue": 100, "green": 0})
    dead = _lock(
        FakeClock(),
        holder="alice@ci-1 pid 7",
        wall=lambda: datetime(2026, 11, 28, 6, 0, tzinfo=UTC),
    )
    dead.acquire()
    _die(dead)
    clock, lines = FakeClock(), []
    waiter = _lock(clock, take_over=True)
    code = _rollout(path, clock, ClientApplier(path), lines, lock=waiter).run()
    assert code == 0, lines
    taken = next(line for line in lines if "took over the release lock of alice@ci-1" in line)
    assert "stood still for 60s (one lease, 60s)" in taken
    assert taken.startswith(f"[06:0{int(locks.LEASE_S) // 60}:00Z]"), taken
    assert not _item().held


def test_without_take_over_a_dead_lock_is_refused_at_once(aws, path):
    """No flag: a held lock, dead or alive, is refused without waiting, naming the flag."""
    build(STACK, SERVICE, {"blue": 100, "green": 0})
    dead = _lock(FakeClock(), holder="alice@ci-1 pid 7")
    dead.acquire()
    _die(dead)
    clock = FakeClock()
    with pytest.raises(locks.LockHeld, match="--take-over-stale-lock watches it for one lease"):
        _rollout(path, clock, ClientApplier(path), [], lock=_lock(clock)).run()
    assert clock.now == 0


def test_no_lock_table_is_refused_in_one_line_naming_the_platform(aws, path):
    """An account whose platform has not declared the table yet: refused before anything is
    written, saying where the table comes from."""
    build(STACK, SERVICE, {"blue": 100, "green": 0})
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.update_table(TableName=locks.TABLE_NAME, DeletionProtectionEnabled=False)
    dynamodb.delete_table(TableName=locks.TABLE_NAME)
    before, clock, applier = path.read_bytes(), FakeClock(), ClientApplier(path)
    with pytest.raises(rollout.ReleaseError, match=r"no release lock table .* platform/"):
        _rollout(path, clock, applier, [], lock=_lock(clock)).run()
    assert path.read_bytes() == before and applier.applied == []


@pytest.mark.parametrize("end", ["completed", "rolled back", "refused by the gate"])
def test_the_lock_is_released_on_every_way_out(aws, path, end):
    build(STACK, SERVICE, {"blue": 100, "green": 0})
    live = build  # noqa: F841  (the stack is what build made)

    def fire(n: int) -> None:
        if end == "rolled back" and n == 2:
            boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
                AlarmName=f"{SERVICE}-{STACK}-green-error-rate",
                StateValue="ALARM",
                StateReason="test",
            )

    gate = (lambda cfg: ["refresh InProgress"]) if end == "refused by the gate" else None
    clock = FakeClock(fire)
    lock = _lock(clock)
    run = _rollout(path, clock, ClientApplier(path), [], lock=lock, gate=gate)
    if end == "refused by the gate":
        with pytest.raises(rollout.ReleaseError, match="not fit"):
            run.run()
    else:
        assert run.run() == (0 if end == "completed" else rollout.ROLLED_BACK)
    assert not _item().held
    assert lock._thread is None, "the heartbeat thread outlived the lock"


def test_the_heartbeat_goes_on_from_its_thread_during_a_long_update(aws, path):
    """`pulumi up` may last 30 minutes: the background thread bumps the record version while the
    update blocks (here: until three heartbeats landed), and the rollout goes on."""
    build(STACK, SERVICE, {"blue": 100, "green": 0})
    clock = FakeClock()
    lock = _lock(clock, heartbeat_s=0.01)
    versions: list[str] = []

    class LongUpdate(ClientApplier):
        def preview_and_up(self, stack, out):
            start = lock.beats
            deadline = time.monotonic() + 10  # a bound on a hung thread, not a lease
            while lock.beats < start + 3 and time.monotonic() < deadline:
                versions.append(_item().rvn)
                time.sleep(0.005)
            assert lock.beats >= start + 3, "no heartbeat during the update"
            super().preview_and_up(stack, out)

    assert _rollout(path, clock, LongUpdate(path), [], lock=lock).run() == 0
    assert len(set(versions)) >= 3, "the record version never moved during the update"


def test_a_holder_whose_heartbeats_do_not_land_for_a_lease_gives_the_lock_up(aws, path):
    """No heartbeat landed for one lease by the holder's clock: a waiter may have taken it, so
    the holder stops at its next check and rolls back."""
    build(STACK, SERVICE, {"blue": 100, "green": 0})
    beat_now = [0.0]
    clock, lines = FakeClock(), []

    def silence(n: int) -> None:
        if n == 2:
            beat_now[0] += locks.LEASE_S

    clock.on_sleep = silence
    lock = _lock(clock, beat_clock=lambda: beat_now[0])
    assert _rollout(path, clock, ClientApplier(path), lines, lock=lock).run() == rollout.ROLLED_BACK
    assert any("no heartbeat of the release lock landed for 60s" in line for line in lines)


@pytest.fixture
def signal_in() -> Iterator[Callable[..., list[str]]]:
    """``signal_in(event, ready, signum)``: the first botocore ``event`` (e.g.
    ``after-call.dynamodb.UpdateItem``) once ``ready()`` holds sends ``signum`` to this process,
    whose handler then runs inside that call (for clients made from now on). Returns the events
    that fired."""
    boto3._get_default_session()  # made before, so that it never carries the hook
    installed: list[tuple[str, Callable[..., None]]] = []

    def install(event: str, ready: Callable[[], bool], signum: int) -> list[str]:
        fired: list[str] = []

        def hook(event_name: str = "", **_) -> None:
            if not fired and ready():
                fired.append(event_name)
                os.kill(os.getpid(), signum)

        botocore.handlers.BUILTIN_HANDLERS.insert(0, (event, hook))
        installed.append((event, hook))
        return fired

    yield install
    for entry in installed:
        botocore.handlers.BUILTIN_HANDLERS.remove(entry)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_lock_is_released_finishes_the_release_first(
    aws, path, signal_in, signum
):
    """Finding 4. The rollout completed (green 100 %) and releases its lock when the signal
    arrives: the release is finished, nothing is left of the lock, and the exit status says
    what the listener holds (0: green 100 %), not "rolled back"."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    lines: list[str] = []
    done = lambda: any("done: green takes 100%" in line for line in lines)  # noqa: E731
    fired = [
        signal_in(f"before-call.{service}.{operation}", done, signum)
        for service, operation in (("dynamodb", "UpdateItem"), ("dynamodb", "DeleteItem"),
                                   ("elastic-load-balancing-v2", "RemoveTags"))
    ]  # fmt: skip
    clock = FakeClock()
    code = _rollout(path, clock, ClientApplier(path), lines, lock=_lock(clock)).run()
    assert any(fired), "the release made no call"
    assert code == 0, lines
    assert any("received while releasing the release lock" in line for line in lines), lines
    assert not _item().held, "the lock was left behind"
    assert live.weights() == {"blue": 0, "green": 100}


def test_an_interrupt_after_the_acquire_landed_releases_the_lock(aws, path, signal_in):
    """Finding 4. SIGINT arrives once the acquire's write has landed in AWS but before the
    rollout heard the answer: the rollout says nothing was written to the stack, and settles
    the lock (a conditional release on its token): none is left behind to refuse the next."""
    build(STACK, SERVICE, {"blue": 100, "green": 0})
    lines: list[str] = []
    fired = [
        signal_in(f"after-call.{service}.{operation}", lambda: True, signal.SIGINT)
        for service, operation in (("dynamodb", "UpdateItem"),
                                   ("elastic-load-balancing-v2", "AddTags"))
    ]  # fmt: skip
    clock = FakeClock()
    before = path.read_bytes()
    with pytest.raises(rollout.ReleaseError, match=r"interrupted \(SIGINT\); nothing written"):
        _rollout(path, clock, ClientApplier(path), lines, lock=_lock(clock)).run()
    assert any(fired)
    assert path.read_bytes() == before
    assert any("the interrupted acquire had landed: released" in line for line in lines), lines
    assert not _item().held, "the lock was left behind"


# ---------------------------------------------------------------------------------------------
# rollback --now always wins, and never waits
# ---------------------------------------------------------------------------------------------
def _now_args():
    from release.cli import build_parser

    return build_parser().parse_args(["rollback", STACK, "--now"])


def _boto(service: str, region: str):
    return client(service, region)


def test_rollback_now_during_an_update_halts_the_rollout_which_reasserts_the_weights(aws, path):
    """`--now` runs while step 2's update is in flight and returns at once (exit 0); the
    update then lands 50/50. The rollout reads the halt after its update, sets blue 100 on the
    listener itself, and rolls back: blue 100 in the listener and the file."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    now_out: list[str] = []

    class InFlight(ClientApplier):
        def preview_and_up(self, stack, out):
            cfg = edits.read_config(self.path)
            weights = {color: cfg.traffic[color] for color in ("blue", "green")}
            if weights["green"] == 50:
                code = emergency.run_now(
                    _now_args(), self.path, out=now_out.append, err=now_out.append, client=_boto
                )
                assert code == 0, now_out
                assert live.weights() == {"blue": 100, "green": 0}
            self.applied.append(weights)
            elbv2 = client("elbv2", REGION)
            emergency.set_weights(elbv2, emergency.find_listener(elbv2, STACK, SERVICE), weights)

    clock = FakeClock()
    applier, lines = InFlight(path), []
    code = _rollout(path, clock, applier, lines, lock=_lock(clock)).run()
    assert code == rollout.ROLLED_BACK
    assert [a["green"] for a in applier.applied] == [10, 50, 0]
    assert any("halted the rollout of ops@runner-2 pid 42" in line for line in now_out), now_out
    assert any("rolling back: halted by `rollback --now`" in line for line in lines), lines
    assert any("blue 100% reasserted after the halt" in line for line in lines), lines
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)


def test_rollback_now_does_not_wait_for_a_dead_holder_in_its_update(aws, path):
    """Finding 5. The holder died inside its update (phase `update`, no heartbeat): --now moves
    the listener, writes the halt and exits 0 within 10 s, on every rerun."""
    live = build(STACK, SERVICE, {"blue": 60, "green": 40})
    _shift(path, 40)
    holder = _lock(FakeClock(), holder="ci@runner-1 pid 5")
    holder.acquire()
    holder.check(phase="update")
    _die(holder)
    for _ in range(2):
        out: list[str] = []
        started = time.monotonic()
        code = emergency.run_now(_now_args(), path, out=out.append, err=out.append, client=_boto)
        took = time.monotonic() - started
        assert code == 0, out
        assert took < 10, f"rollback --now took {took:.1f} s"
        assert any("halted the rollout of ci@runner-1 pid 5" in line for line in out), out
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)
    assert _item().halted == holder.token


def test_rollback_now_clears_the_bake_record_so_a_resumed_step_is_baked_again(aws, path):
    """Finding 7. A rollout baked 50 % (recorded) and died; `rollback --now` writes the halt and
    drops the record in one write; after `shift 50` and `pulumi up`, the resumed rollout (taking
    the dead lock over) bakes 50 % whole again before 100 %."""
    live = build(STACK, SERVICE, {"blue": 50, "green": 50})
    _shift(path, 50)
    dead = _lock(FakeClock(), holder="ci@runner-1 pid 5")
    dead.acquire()
    dead.record_baked(locks.baked_record("green", "1.5.0", 50))
    _die(dead)
    assert emergency.run_now(_now_args(), path, out=lambda line: None, err=print, client=_boto) == 0
    assert _item().baked == "" and _item().halted == dead.token
    _shift(path, 50)
    ClientApplier(path).preview_and_up(STACK, print)
    assert live.weights() == {"blue": 50, "green": 50}
    clock = FakeClock()
    applier = ClientApplier(path)
    code = _rollout(path, clock, applier, [], lock=_lock(clock, take_over=True)).run()
    assert code == 0
    assert [a["green"] for a in applier.applied] == [50, 100]
    assert clock.now == locks.LEASE_S + 2 * BAKE_S, "50 % was not baked again"


@pytest.mark.parametrize("readable", [True, False])
def test_a_timed_out_modify_listener_is_read_back_never_called_unchanged(aws, path, readable):
    """ModifyListener lands but its answer never comes: --now reads the listener back and says
    what is true; when it cannot read either, "unknown: check with status"."""
    from botocore.exceptions import ReadTimeoutError

    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    _shift(path, 10)

    def timing_out(service: str, region: str):
        real = client(service, region)
        if service != "elbv2":
            return real
        modify, describe = real.modify_listener, real.describe_listeners
        calls = []

        def lands_then_times_out(**kwargs):
            modify(**kwargs)
            calls.append("modify")
            raise ReadTimeoutError(
                endpoint_url="https://elasticloadbalancing.eu-west-1.amazonaws.com"
            )

        def describe_after(**kwargs):
            if calls and not readable:
                raise ReadTimeoutError(
                    endpoint_url="https://elasticloadbalancing.eu-west-1.amazonaws.com"
                )
            return describe(**kwargs)

        real.modify_listener, real.describe_listeners = lands_then_times_out, describe_after
        return real

    out: list[str] = []
    code = emergency.run_now(_now_args(), path, out=out.append, err=out.append, client=timing_out)
    text = "\n".join(out)
    assert "nothing was changed" not in text
    assert live.weights() == {"blue": 100, "green": 0}
    if readable:
        assert code == 0 and "the listener now says blue 100%, green 0%" in text
        assert _file_traffic(path) == {"blue": 100, "green": 0}
    else:
        assert code == 1 and "unknown: " in text and "status staging" in text
        assert _file_traffic(path) == {"blue": 90, "green": 10}


# ---------------------------------------------------------------------------------------------
# Resume after a kill
# ---------------------------------------------------------------------------------------------
def _shift(path: Path, percent: int) -> None:
    from release import transitions

    edits.write(edits.prepare(path, lambda cfg: transitions.shift(cfg, STACK, percent)))


def _recorded(record: str) -> None:
    """A rollout before this one recorded a passed bake and ended: the record outlives its lock."""
    before = _lock(FakeClock(), holder="ci@runner-1 pid 5")
    before.acquire()
    before.record_baked(record)
    before.release()


def test_a_step_killed_in_its_bake_is_baked_again_from_its_start(aws, path):
    """Killed 1 s into step 1's bake (file and listener at 10, no bake recorded): the rerun
    applies 10 again and bakes it whole before 50 and 100."""
    build(STACK, SERVICE, {"blue": 90, "green": 10})
    _shift(path, 10)
    clock = FakeClock()
    applier, lines = ClientApplier(path), []
    assert _rollout(path, clock, applier, lines, lock=_lock(clock)).run() == 0
    assert [a["green"] for a in applier.applied] == [10, 50, 100]
    assert clock.now == 3 * BAKE_S, "the killed step was baked from its start"


def test_a_rerun_after_a_killed_update_bakes_that_step_before_the_next(aws, path):
    """Killed in step 2's update (file 50, listener still 10, bake of 10 recorded): the rerun
    applies 50 and watches it for a whole bake before sending 100."""
    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    _shift(path, 50)
    _recorded(locks.baked_record("green", "1.5.0", 10))
    clock = FakeClock()
    seen: list[int] = []
    clock.on_sleep = lambda n: seen.append(live.weights()["green"])
    applier = ClientApplier(path)
    assert _rollout(path, clock, applier, [], lock=_lock(clock)).run() == 0
    assert [a["green"] for a in applier.applied] == [50, 100]
    assert seen[: BAKE_S // 10] == [50] * (BAKE_S // 10), "50 % was watched for a whole bake"


def test_a_rerun_after_a_passed_bake_takes_only_the_next_steps(aws, path):
    """The bake of 50 passed (recorded in the lock's item), then the process ended: 100 only;
    after 100 the record says so, and a rerun has nothing to do."""
    build(STACK, SERVICE, {"blue": 50, "green": 50})
    _shift(path, 50)
    _recorded(locks.baked_record("green", "1.5.0", 50))
    clock = FakeClock()
    applier = ClientApplier(path)
    assert _rollout(path, clock, applier, [], lock=_lock(clock)).run() == 0
    assert [a["green"] for a in applier.applied] == [100]
    assert _item().baked == "green 1.5.0 100" and not _item().held
    lines: list[str] = []
    assert _rollout(path, clock, applier, lines, lock=_lock(clock)).run() == 0
    assert any("already takes 100% (its bake passed)" in line for line in lines), lines


def test_the_command_takes_the_lock_in_the_stacks_table(aws, path, tmp_path):
    """`rollout --apply` (applier and alarms given, the real gate): a held lock is refused
    naming its holder; with --take-over-stale-lock a dead one is taken after one lease, and
    released when the real gate then refuses the color (no Auto Scaling group in this AWS)."""
    from release.cli import build_parser

    build(STACK, SERVICE, {"blue": 100, "green": 0})
    dead = _lock(FakeClock(), holder="alice@ci-1 pid 7")
    dead.acquire()
    _die(dead)
    clock = FakeClock()

    def command(*extra: str) -> int:
        args = build_parser().parse_args(["rollout", STACK, "--apply", "--file", str(path), *extra])
        return rollout.run(
            args,
            path,
            tmp_path,
            out=lambda line: None,
            applier=ClientApplier(path),
            alarms=cloudwatch_alarms(REGION),
            clock=clock,
        )

    with pytest.raises(locks.LockHeld, match="holds the release lock: alice@ci-1 pid 7"):
        command()
    with pytest.raises(rollout.ReleaseError, match="not fit for more traffic before the first"):
        command("--take-over-stale-lock")
    assert clock.now == locks.LEASE_S
    assert not _item().held, "the lock was not released"


def test_a_refused_rollout_exits_5_never_the_rolled_back_status(aws, path, capsys):
    """The command (release.cli) refusing before any write (here: --apply without the pulumi
    CLI on this machine): one error line and exit 5, not 1, which says "rolled back"."""
    from release.cli import main

    build(STACK, SERVICE, {"blue": 100, "green": 0})
    before = path.read_bytes()
    code = main(["rollout", STACK, "--apply", "--file", str(path)])
    err = capsys.readouterr().err
    assert code == rollout.REFUSED == 5, err
    assert len(err.strip().splitlines()) == 1 and "error:" in err
    assert path.read_bytes() == before
