"""``python -m release rollout``: whole rollouts against a local AWS API (moto, in-process).

The applier is :class:`live_stack.ListenerApplier`: each ``pulumi up`` becomes exactly the
listener change it would make for the file's weights. Time is a fake clock: bakes take no real
time, and the clock's ``sleep`` is where a test makes things happen during a bake (an alarm
fires, Ctrl-C arrives).
"""

from __future__ import annotations

import argparse
import io
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from harness import copy_stack_file
from live_stack import ListenerApplier, build, set_alarm, shift_file

from release import edits, emergency, rollout
from release.cli import main
from release.rollout import Clock, Rollout, cloudwatch_alarms, parse_bake, parse_steps
from release.transitions import ReleaseError

STACK, SERVICE, REGION = "staging", "checkout", "eu-west-1"
BAKE_S = 300


@pytest.fixture
def path(tmp_path) -> Path:
    """Staging's stack file: blue 1.4.0 stable at 100 %, green 1.5.0 deployed at 0 %."""
    return copy_stack_file(STACK, tmp_path)


class FakeClock(Clock):
    """Time moves only when the rollout sleeps; ``on_sleep(n)`` runs before the n-th sleep."""

    def __init__(
        self,
        on_sleep: Callable[[int], None] = lambda n: None,
        start: datetime = datetime(2026, 11, 27, 6, 0, tzinfo=UTC),
    ):
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep = on_sleep
        super().__init__(
            monotonic=lambda: self.now,
            sleep=self._sleep,
            wall=lambda: start + timedelta(seconds=self.now),
        )

    def _sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.on_sleep(self.sleeps)
        self.now += seconds


def _direct() -> str:
    return emergency.roll_back_listener(REGION, STACK, SERVICE, "blue")


def _rollout(
    path: Path,
    clock: Clock,
    applier=None,
    lines=None,
    steps=(10, 50, 100),
    direct=_direct,
    gate=None,
) -> Rollout:
    return Rollout(
        direct=direct,
        gate=gate,
        stack=STACK,
        path=path,
        steps=steps,
        bake_s=BAKE_S,
        applier=applier or ListenerApplier(path),
        alarms=cloudwatch_alarms(REGION),
        clock=clock,
        out=(lines if lines is not None else []).append,
        stream=io.StringIO(),
    )


def _file_traffic(path: Path) -> dict[str, int]:
    cfg = edits.read_config(path)
    return {"blue": cfg.traffic.blue, "green": cfg.traffic.green}


def test_a_good_version_reaches_100_percent_step_by_step(aws, path):
    """Each step is written, applied and baked in order; the listener ends at green 100."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    applier = ListenerApplier(path)
    lines: list[str] = []
    clock = FakeClock()
    assert _rollout(path, clock, applier, lines).run() == 0
    assert [a["green"] for a in applier.applied] == [10, 50, 100]
    assert live.weights() == {"blue": 0, "green": 100} == _file_traffic(path)
    assert clock.now == 3 * BAKE_S, "each step baked for exactly the bake time"
    assert any("completed" in line for line in lines)
    assert any("next: python -m release finish staging" in line for line in lines)


def test_a_bad_version_never_gets_more_than_the_first_step_and_is_rolled_back(aws, path):
    """Alarm during the first bake: exit 1, green never above 10 %, live == file == blue 100."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    applier = ListenerApplier(path)
    seen: list[dict[str, int]] = []

    def during_bake(n: int) -> None:
        seen.append(live.weights())
        if n == 2:
            set_alarm(live.alarms["green"][0])

    lines: list[str] = []
    code = _rollout(path, FakeClock(during_bake), applier, lines).run()
    assert code == rollout.ROLLED_BACK
    assert max(w["green"] for w in seen + applier.applied) == 10
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)
    report = "\n".join(lines)
    assert "rolling back: alarm during the bake of step 1/3" in report
    assert "checkout-staging-green-error-rate" in report
    assert "timeline (UTC)" in report and "2026-11-27T06:00:20Z" in report


def test_a_failed_update_rolls_back(aws, path):
    """The second step's `pulumi up` fails: the rollback is written and applied, exit 1."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    applier = ListenerApplier(path, fail_on={2})
    lines: list[str] = []
    assert _rollout(path, FakeClock(), applier, lines).run() == rollout.ROLLED_BACK
    assert [a["green"] for a in applier.applied] == [10, 50, 0]
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)
    assert any("pulumi failed" in line for line in lines)


def test_ctrl_c_during_a_bake_rolls_back(aws, path):
    """SIGINT while baking step 2: rolled back to blue 100, exit 1, handlers restored after."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    before = signal.getsignal(signal.SIGINT)

    def interrupt(n: int) -> None:
        if n == 35:  # 30 sleeps of 10 s bake step 1; this one is inside step 2's bake
            signal.raise_signal(signal.SIGINT)

    lines: list[str] = []
    applier = ListenerApplier(path)
    assert _rollout(path, FakeClock(interrupt), applier, lines).run() == rollout.ROLLED_BACK
    assert [a["green"] for a in applier.applied] == [10, 50, 0]
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)
    assert any("interrupted (SIGINT)" in line for line in lines)
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_during_a_bake_rolls_back(aws, path):
    """SIGTERM (a CI runner cancelling the job) is handled like Ctrl-C."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})

    def terminate(n: int) -> None:
        if n == 3:
            signal.raise_signal(signal.SIGTERM)

    lines: list[str] = []
    assert _rollout(path, FakeClock(terminate), lines=lines).run() == rollout.ROLLED_BACK
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)
    assert any("interrupted (SIGTERM)" in line for line in lines)


def test_a_rerun_resumes_after_the_steps_already_taken(aws, path, capsys):
    """File at green 50 and no record of its bake (no lock passed): a rerun applies and bakes
    50 again from its start, then takes 100; 10 is not taken again."""
    build(STACK, SERVICE, {"blue": 50, "green": 50})
    shift_file(path, STACK, 50)
    applier = ListenerApplier(path)
    lines: list[str] = []
    clock = FakeClock()
    assert _rollout(path, clock, applier, lines).run() == 0
    assert [a["green"] for a in applier.applied] == [50, 100]
    assert clock.now == 2 * BAKE_S
    assert any("steps 50, 100," in line for line in lines)


def test_a_failed_rollback_update_falls_back_to_the_listener_itself(aws, path):
    """Alarm, then the rollback's `pulumi up` fails: one ModifyListener puts blue at 100 %,
    file and listener agree, exit 1, and the timeline says Pulumi's state lags."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    applier = ListenerApplier(path, fail_on={2})  # 1: step 10; 2: the rollback's update

    def fire(n: int) -> None:
        if n == 1:
            set_alarm(live.alarms["green"][1])

    lines: list[str] = []
    assert _rollout(path, FakeClock(fire), applier, lines).run() == rollout.ROLLED_BACK
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)
    report = "\n".join(lines)
    assert "rollback through Pulumi not applied: pulumi up failed" in report
    assert "set directly (one ModifyListener)" in report and "--refresh" in report


def test_when_the_listener_cannot_be_set_either_it_exits_3_and_names_rollback_now(aws, path):
    """Both the rollback's update and the direct call fail: exit 3, the emergency command named."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    applier = ListenerApplier(path, fail_on={2})

    def fire(n: int) -> None:
        if n == 1:
            set_alarm(live.alarms["green"][1])

    def refused() -> str:
        raise ReleaseError("AccessDenied")

    lines: list[str] = []
    code = _rollout(path, FakeClock(fire), applier, lines, direct=refused).run()
    assert code == rollout.ROLLBACK_FAILED
    assert any("rollback staging --now" in line for line in lines)
    assert any("direct listener rollback failed too: AccessDenied" in line for line in lines)
    assert _file_traffic(path) == {"blue": 100, "green": 0}
    assert live.weights() == {"blue": 90, "green": 10}, "the stand-in applied nothing more"


def test_an_edit_by_someone_else_during_the_rollout_rolls_back(aws, path, capsys):
    """The file's weight is not what the rollout last wrote: it stops, sets the listener back
    directly and leaves the edit in the file, undeployed (exit 4)."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})

    def meddle(n: int) -> None:
        if n == 1:
            shift_file(path, STACK, 30)

    lines: list[str] = []
    assert _rollout(path, FakeClock(meddle), lines=lines).run() == rollout.HAND_EDIT
    assert any("changed under the rollout" in line for line in lines)
    assert _file_traffic(path) == {"blue": 70, "green": 30}, "the edit was left as made"
    assert live.weights() == {"blue": 100, "green": 0}


def test_a_color_unfit_before_the_first_step_is_refused_and_nothing_written(aws, path):
    """The live gate says no before step 1: refused (no rollback needed), file untouched."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    before = path.read_bytes()
    with pytest.raises(ReleaseError, match="not fit for more traffic before the first step: "
                       "refresh InProgress"):  # fmt: skip
        _rollout(path, FakeClock(), gate=lambda cfg: ["refresh InProgress"]).run()
    assert path.read_bytes() == before
    assert live.weights() == {"blue": 100, "green": 0}


def test_a_color_that_becomes_unfit_between_steps_is_rolled_back(aws, path):
    """The gate passes at 0 % and refuses at 10 % (1/2 targets healthy): never 50 %, rolled back."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    seen: list[int] = []

    def gate(cfg) -> list[str]:
        seen.append(cfg.traffic.green)
        return [] if cfg.traffic.green == 0 else ["1/2 targets healthy"]

    applier = ListenerApplier(path)
    lines: list[str] = []
    code = _rollout(path, FakeClock(), applier, lines, gate=gate).run()
    assert code == rollout.ROLLED_BACK
    assert seen == [0, 10], "the gate runs before each step, on the file's current weights"
    assert [a["green"] for a in applier.applied] == [10, 0]
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)
    assert any(
        "not fit for more traffic before step 2/3: 1/2 targets healthy" in line for line in lines
    )


def test_no_alarms_to_watch_is_refused_before_anything_is_written(aws, path):
    """Without the color's alarms there is nothing to gate on: refused, file untouched."""
    build(STACK, SERVICE, {"blue": 100, "green": 0}, alarms=False)
    before = path.read_bytes()
    with pytest.raises(ReleaseError, match="no CloudWatch alarm named checkout-staging-green-"):
        _rollout(path, FakeClock()).run()
    assert path.read_bytes() == before


def test_a_firing_load_balancer_alarm_rolls_back_the_step_it_fires_in(aws, path):
    """The load balancer's 5xx (a crashing color's 502/503/504) stop a rollout like the color's
    own alarms: exit 1 during the first bake, green never above 10 %, live == file == blue."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    applier = ListenerApplier(path)
    seen: list[dict[str, int]] = []

    def during_bake(n: int) -> None:
        seen.append(live.weights())
        if n == 2:
            set_alarm(live.load_balancer_alarms[0])

    lines: list[str] = []
    code = _rollout(path, FakeClock(during_bake), applier, lines).run()
    assert code == rollout.ROLLED_BACK
    assert max(w["green"] for w in seen + applier.applied) == 10
    assert live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)
    report = "\n".join(lines)
    fired = "alarm during the bake of step 1/3: ALARM 1 (checkout-staging-lb-elb-5xx)"
    assert f"rolling back: {fired}" in report


def test_a_load_balancer_alarm_already_firing_is_refused_before_any_shift(aws, path):
    """The balancer already answers 5xx: no traffic moves onto a new color; file untouched."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    set_alarm(live.load_balancer_alarms[0])
    before = path.read_bytes()
    fired = r"fire before any shift \(ALARM 1 \(checkout-staging-lb-elb-5xx\)"
    with pytest.raises(ReleaseError, match=fired):
        _rollout(path, FakeClock()).run()
    assert path.read_bytes() == before


def test_without_the_load_balancer_alarm_the_rollout_is_refused(aws, path):
    """The color's alarms alone cannot see the load balancer's 5xx: a stack whose program has
    not created the load-balancer alarm yet is refused, file untouched."""
    build(STACK, SERVICE, {"blue": 100, "green": 0}, load_balancer_alarms=False)
    before = path.read_bytes()
    with pytest.raises(ReleaseError, match=r"no CloudWatch alarm named checkout-staging-lb-\* "):
        _rollout(path, FakeClock()).run()
    assert path.read_bytes() == before


def test_an_alarm_already_firing_is_refused_before_any_shift(aws, path):
    """A new color already in ALARM gets no traffic at all."""
    live = build(STACK, SERVICE, {"blue": 100, "green": 0})
    set_alarm(live.alarms["green"][2])
    before = path.read_bytes()
    with pytest.raises(ReleaseError, match="fire before any shift"):
        _rollout(path, FakeClock()).run()
    assert path.read_bytes() == before


def test_without_apply_the_plan_is_printed_and_nothing_written(path, capsys):
    """No --apply: the steps, the bake and the alarms watched; file untouched; exit 0."""
    before = path.read_bytes()
    code = main(["rollout", STACK, "--steps", "10,50,100", "--bake", "5m", "--file", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "step 1/3: check green's live state, shift green 10% / blue 90%" in out
    assert "bake 5m00s watching checkout-staging-green-*, checkout-staging-lb-*" in out
    assert "nothing written" in out
    assert path.read_bytes() == before


def test_the_terminal_display_is_one_updating_line(aws, path):
    """On a terminal: carriage-return updates, each showing step, elapsed/bake and alarms."""
    build(STACK, SERVICE, {"blue": 100, "green": 0})
    stream = io.StringIO()
    run = _rollout(path, FakeClock(), steps=(100,))
    run.progress.stream, run.progress.tty = stream, True
    assert run.run() == 0
    text = stream.getvalue()
    assert text.count("\r\x1b[K") == BAKE_S // 10 + 1
    assert "step 1/1 green 100% | bake 5m00s/5m00s | OK 4" in text, "3 of green's, 1 of the lb"


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, steps",
    [("10,50,100", (10, 50, 100)), ("100", (100,)), ("1,2,3,100", (1, 2, 3, 100))],
)
def test_good_steps(text, steps):
    assert parse_steps(text) == steps


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10,50",
        "50,10,100",
        "10,10,100",
        "0,100",
        "10,50,101",
        "010,100",
        "10, 50,100",
        "10,50,100,",
        "\u0661\u0660,100",
        "10,50,100\n",
        "1e1,100",
        "-10,100",
    ],
)
def test_bad_steps_are_refused(text):
    """Ascending, ASCII digits only, 1-100, ending at 100, nothing else."""
    with pytest.raises(argparse.ArgumentTypeError, match="steps"):
        parse_steps(text)


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("5m", 300), ("1h", 3600), ("24h", 86400)])
def test_good_bake_times(text, seconds):
    assert parse_bake(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "5", "0s", "5 m", "5M", "1.5m", "25h", "\u0665m", "5m\n", "m"]
)
def test_bad_bake_times_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="bake time"):
        parse_bake(text)


def test_bad_arguments_are_one_line_and_exit_2(capsys, path):
    """The command line says which argument and the rule, in one line, before reading anything."""
    with pytest.raises(SystemExit) as exit_:
        main(["rollout", STACK, "--steps", "50,10", "--file", str(path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--steps" in err


def test_the_real_gate_reads_the_new_colors_group_from_aws(aws, path):
    """live_gate is release.live.gate on the new color: with no Auto Scaling group tagged
    Stack=staging/Service=checkout/Color=green in AWS, it reports exactly that."""
    build(STACK, SERVICE, {"blue": 100, "green": 0})
    problems = rollout.live_gate(STACK)(edits.read_config(path))
    assert problems and all(p.startswith("green: ") for p in problems), problems
    assert "no Auto Scaling group" in problems[0]
