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
import shutil
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import botocore.handlers
import pytest
from harness import stack_file
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
    target = tmp_path / f"Pulumi.{STACK}.yaml"
    shutil.copyfile(stack_file(STACK), target)
    return target


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
def test_a_hand_edit_of_the_stable_version_mid_rollout_rolls_back(aws, path):
    """Not traffic: the stable color's version changed in the file during a bake. The next real
    `pulumi up` would refresh the serving color onto it: the rollout stops and rolls back."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})

    def edit(n: int) -> None:
        if n == 2:
            path.write_text(path.read_text().replace("version: 1.4.0", "version: 1.4.1"))

    applier, lines = ClientApplier(path), []
    assert _rollout(path, FakeClock(edit), applier, lines).run() == rollout.ROLLED_BACK
    report = "\n".join(lines)
    assert "changed under the rollout: it is not what this rollout last wrote" in report
    assert "version: 1.4.1" in report
    assert [a["green"] for a in applier.applied] == [10, 0]
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)


# ---------------------------------------------------------------------------------------------
# The release lock, on the listener
# ---------------------------------------------------------------------------------------------
from release import lock as locks  # noqa: E402


def _lock(live, clock: Clock, holder: str = "ops@runner-2 pid 42", **extra) -> locks.ListenerLock:
    return locks.ListenerLock(
        client("elbv2", REGION), live.listener_arn, STACK, wall=clock.wall, holder=holder, **extra
    )


def _lock_tags(live) -> dict[str, str]:
    tags = locks.read_tags(boto3.client("elbv2", region_name=REGION), live.listener_arn)
    return {key: value for key, value in tags.items() if key.startswith("golden-fleet:")}


def test_a_second_rollout_refuses_naming_the_holder(aws, path):
    """One rollout holds the lock (another machine): a second refuses, names it, writes nothing."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    clock = FakeClock()
    _lock(live, clock, holder="alice@ci-1 pid 7").acquire()
    before = path.read_bytes()
    with pytest.raises(locks.LockHeld, match="holds the release lock: alice@ci-1 pid 7"):
        _rollout(path, clock, ClientApplier(path), [], lock=_lock(live, clock)).run()
    assert path.read_bytes() == before
    assert _lock_tags(live)[locks.HOLDER] == "alice@ci-1 pid 7", "the holder's lock was touched"


def test_a_stale_lock_is_taken_over_only_when_asked(aws, path):
    """No heartbeat for 10 minutes: refused naming --take-over-stale-lock; with it, the rollout
    runs, and releases the lock at the end."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    clock = FakeClock()
    _lock(live, clock, holder="alice@ci-1 pid 7").acquire()
    clock.now += locks.STALE_AFTER_S
    with pytest.raises(locks.LockHeld, match=r"stale.*--take-over-stale-lock"):
        _rollout(path, clock, ClientApplier(path), [], lock=_lock(live, clock)).run()
    lines: list[str] = []
    lock = _lock(live, clock, take_over=True)
    assert _rollout(path, clock, ClientApplier(path), lines, lock=lock).run() == 0
    assert any("took over the stale release lock of alice@ci-1 pid 7" in line for line in lines)
    assert locks.TOKEN not in _lock_tags(live)


@pytest.mark.parametrize("end", ["completed", "rolled back", "refused by the gate"])
def test_the_lock_is_released_on_every_way_out(aws, path, end):
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})

    def fire(n: int) -> None:
        if end == "rolled back" and n == 2:
            _set(live.alarms["green"][0], "ALARM")

    gate = (lambda cfg: ["refresh InProgress"]) if end == "refused by the gate" else None
    clock = FakeClock(fire)
    run = _rollout(path, clock, ClientApplier(path), [], lock=_lock(live, clock), gate=gate)
    if end == "refused by the gate":
        with pytest.raises(rollout.ReleaseError, match="not fit"):
            run.run()
    else:
        assert run.run() == (0 if end == "completed" else rollout.ROLLED_BACK)
    assert not set(locks.LOCK_KEYS) & set(_lock_tags(live))


def test_the_heartbeat_moves_during_the_bake(aws, path):
    """Every poll of a bake refreshes the heartbeat: two minutes in, it says two minutes in
    (the test then ends the rollout with an alarm)."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    seen: list[str] = []

    def beat(n: int) -> None:
        seen.append(_lock_tags(live)[locks.HEARTBEAT])
        if n == 13:
            _set(live.alarms["green"][0], "ALARM")

    clock = FakeClock(beat)
    code = _rollout(path, clock, ClientApplier(path), [], lock=_lock(live, clock)).run()
    assert code == rollout.ROLLED_BACK
    assert seen[0] == "2026-11-27T06:00:00Z" and seen[12] == "2026-11-27T06:02:00Z"


def test_two_rollouts_taking_the_lock_at_once_only_one_proceeds(aws, path):
    """Decide-then-act: the other writes its token between this one's write and read-back;
    the read-back sees it and this one refuses."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    clock = FakeClock()
    other = _lock(live, clock, holder="bob@laptop pid 9")
    mine = _lock(live, clock)
    reads = []
    real = mine._tags

    def tags():
        reads.append(1)
        if len(reads) == 2:  # the other decided on the same empty read and writes now
            locks.put_tags(client("elbv2", REGION), live.listener_arn,
                           {locks.TOKEN: other.token, locks.HOLDER: other.holder,
                            locks.HEARTBEAT: "2026-11-27T06:00:00Z"})
        return real()

    mine._tags = tags
    with pytest.raises(locks.LockHeld, match="at the same time: bob@laptop pid 9"):
        mine.acquire()
    assert _lock_tags(live)[locks.TOKEN] == other.token


# ---------------------------------------------------------------------------------------------
# rollback --now always wins
# ---------------------------------------------------------------------------------------------
def _now_args():
    from release.cli import build_parser

    return build_parser().parse_args(["rollback", STACK, "--now"])


def _boto(service: str, region: str):
    return client(service, region)


def test_rollback_now_during_an_update_halts_the_rollout_for_good(aws, path):
    """`--now` runs while step 2's update is in flight; the update then lands 50/50. The
    rollout stops at its next check and never applies its weights again: blue 100 in the
    listener and the file; --now says it could not wait for the update."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    now_out: list[str] = []

    class InFlight(ClientApplier):
        def preview_and_up(self, stack, out):
            cfg = edits.read_config(self.path)
            weights = {color: cfg.traffic[color] for color in ("blue", "green")}
            if weights["green"] == 50:
                code = emergency.run_now(
                    _now_args(), self.path, out=now_out.append, err=now_out.append,
                    client=_boto, wait_s=0, sleep=lambda s: None,
                )
                assert code == 1, now_out
                assert live.weights() == {"blue": 100, "green": 0}
            self.applied.append(weights)
            elbv2 = client("elbv2", REGION)
            emergency.set_weights(elbv2, emergency.find_listener(elbv2, STACK, SERVICE), weights)

    clock = FakeClock()
    applier, lines = InFlight(path), []
    code = _rollout(path, clock, applier, lines, lock=_lock(live, clock)).run()
    assert code == rollout.ROLLED_BACK
    assert [a["green"] for a in applier.applied] == [10, 50, 0]
    assert any("rolling back: halted by `rollback --now`" in line for line in lines), lines
    assert any("still in its update after 0s" in line for line in now_out), now_out
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)


def test_rollback_now_reasserts_after_the_in_flight_update_lands(aws, path):
    """A rollout is in its update (lock phase `update`); --now sets 100/0, the update then lands
    60/40 and ends: --now sets 100/0 again and says so."""
    live = build(STACK, SERVICE, {"blue": 60, "green": 40})
    _shift(path, 40)
    clock = FakeClock()
    holder = _lock(live, clock, holder="ci@runner-1 pid 5")
    holder.acquire()
    holder.check(phase="update")
    out: list[str] = []

    def land(seconds: float) -> None:  # the in-flight update lands, then the rollout stops
        elbv2 = client("elbv2", REGION)
        emergency.set_weights(elbv2, emergency.find_listener(elbv2, STACK, SERVICE),
                              {"blue": 60, "green": 40})
        holder.release()

    code = emergency.run_now(_now_args(), path, out=out.append, err=out.append, client=_boto,
                             wait_s=30, sleep=land)
    assert code == 0, out
    assert any("halted the rollout of ci@runner-1 pid 5" in line for line in out)
    assert any("had set blue 60%, green 40%: set blue 100%, green 0% again" in line for line in out)
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)


@pytest.mark.parametrize("readable", [True, False])
def test_a_timed_out_modify_listener_is_read_back_never_called_unchanged(aws, path, readable):
    """ModifyListener lands but its answer never comes: --now reads the listener back and says
    what is true; when it cannot read either, "unknown: check with status"."""
    from botocore.exceptions import ReadTimeoutError

    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    _shift(path, 10)

    def timing_out(service: str, region: str):
        real = client(service, region)
        modify, describe = real.modify_listener, real.describe_listeners
        calls = []

        def lands_then_times_out(**kwargs):
            modify(**kwargs)
            calls.append("modify")
            raise ReadTimeoutError(endpoint_url="https://elasticloadbalancing.eu-west-1.amazonaws.com")

        def describe_after(**kwargs):
            if calls and not readable:
                raise ReadTimeoutError(endpoint_url="https://elasticloadbalancing.eu-west-1.amazonaws.com")
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


def test_a_step_killed_in_its_bake_is_baked_again_from_its_start(aws, path):
    """Killed 1 s into step 1's bake (file and listener at 10, no bake recorded): the rerun
    applies 10 again and bakes it whole before 50 and 100."""
    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    _shift(path, 10)
    clock = FakeClock()
    applier, lines = ClientApplier(path), []
    assert _rollout(path, clock, applier, lines, lock=_lock(live, clock)).run() == 0
    assert [a["green"] for a in applier.applied] == [10, 50, 100]
    assert clock.now == 3 * BAKE_S, "the killed step was baked from its start"


def test_a_rerun_after_a_killed_update_bakes_that_step_before_the_next(aws, path):
    """Killed in step 2's update (file 50, listener still 10, bake of 10 recorded): the rerun
    applies 50 and watches it for a whole bake before sending 100."""
    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    _shift(path, 50)
    clock = FakeClock()
    lock = _lock(live, clock)
    lock.record_baked(locks.baked_record("green", "1.5.0", 10))
    seen: list[int] = []
    clock.on_sleep = lambda n: seen.append(live.weights()["green"])
    applier = ClientApplier(path)
    assert _rollout(path, clock, applier, [], lock=lock).run() == 0
    assert [a["green"] for a in applier.applied] == [50, 100]
    assert seen[: BAKE_S // 10] == [50] * (BAKE_S // 10), "50 % was watched for a whole bake"


def test_a_rerun_after_a_passed_bake_takes_only_the_next_steps(aws, path):
    """The bake of 50 passed (recorded on the listener), then the process died: 100 only."""
    live = build(STACK, SERVICE, {"blue": 50, "green": 50})
    _shift(path, 50)
    clock = FakeClock()
    lock = _lock(live, clock)
    lock.record_baked(locks.baked_record("green", "1.5.0", 50))
    applier = ClientApplier(path)
    assert _rollout(path, clock, applier, [], lock=lock).run() == 0
    assert [a["green"] for a in applier.applied] == [100]


def test_the_command_takes_the_lock_on_the_stacks_listener(aws, path, tmp_path):
    """`rollout --apply` (applier and alarms given, the real gate): a held lock is refused
    naming its holder; a stale one is taken over with --take-over-stale-lock, and released
    when the real gate then refuses the color (no Auto Scaling group in this AWS)."""
    from release.cli import build_parser

    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    clock = FakeClock()
    _lock(live, clock, holder="alice@ci-1 pid 7").acquire()

    def command(*extra: str) -> int:
        args = build_parser().parse_args(
            ["rollout", STACK, "--apply", "--file", str(path), *extra]
        )
        return rollout.run(args, path, tmp_path, out=lambda line: None,
                           applier=ClientApplier(path), alarms=cloudwatch_alarms(REGION),
                           clock=clock)

    with pytest.raises(locks.LockHeld, match="holds the release lock: alice@ci-1 pid 7"):
        command()
    clock.now += locks.STALE_AFTER_S
    with pytest.raises(locks.LockHeld, match="stale"):
        command()
    with pytest.raises(rollout.ReleaseError, match="not fit for more traffic before the first"):
        command("--take-over-stale-lock")
    assert not set(locks.LOCK_KEYS) & set(_lock_tags(live)), "the lock was not released"
