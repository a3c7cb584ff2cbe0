"""``python -m release.waiter``: against the local AWS API (moto) with the instance-refresh calls
stubbed, as a module with an injected clock, and as a real subprocess (exit codes, output)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from live_fixtures import World
from local_aws import moto_server

from release import waiter

ROOT = Path(__file__).resolve().parent.parent
TG_ARN = (
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/checkout-green/"
    "0123456789abcdef"
)


class Clock:
    """A fake clock: ``sleep`` advances it, so a 600 s timeout takes no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run_wait(world: World, color: str, version: str, timeout: float = 600, poll: float = 15):
    """(exit code, stdout lines, stderr lines, clock) of one waiter run on the fake clock."""
    clock, out, err = Clock(), [], []
    made = world.colors[color]
    code = waiter.wait(
        world.clients,
        made.group,
        made.target_group_arn,
        version,
        timeout,
        poll,
        out=out.append,
        err=err.append,
        clock=clock,
        sleep=clock.sleep,
    )
    return code, out, err, clock


def test_refresh_in_progress_then_successful_returns_zero_with_progress_lines(world):
    """Waits through the checkpoint; prints a line only when something changed; exits 0."""
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.5.0")
    progress = dict(
        Preferences={"CheckpointPercentages": [50, 100], "CheckpointDelay": 600},
    )
    world.refresh("green", "InProgress", PercentageComplete=0, InstancesToUpdate=2, **progress)
    world.refresh("green", "InProgress", PercentageComplete=50, InstancesToUpdate=1, **progress)
    world.refresh("green", "InProgress", PercentageComplete=50, InstancesToUpdate=1, **progress)
    world.refresh("green", "Successful", PercentageComplete=100, InstancesToUpdate=0, **progress)
    code, out, err, clock = run_wait(world, "green", "2")
    assert code == 0, err
    assert len(out) == 3, out  # two distinct progress lines (the repeat is not printed), ready
    assert "refresh InProgress 0%, 2 to update" in out[0] and "next checkpoint 50%" in out[0]
    assert "checkpoint 50% reached, delay 600 s" in out[1]
    assert out[2].startswith("ready: ") and "2/2 healthy" in out[2]
    assert clock.sleeps == [15, 15, 15] and not err


def test_failed_refresh_exits_one_naming_group_reason_and_version(world):
    made = world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.4.0")
    world.refresh("green", "Failed", StatusReason="Instance i-0abc failed ELB health checks.")
    code, _, err, clock = run_wait(world, "green", "2")
    assert code == 1 and len(err) == 1, err
    assert made.group in err[0] and "instance refresh Failed" in err[0]
    assert "Instance i-0abc failed ELB health checks." in err[0]
    assert "AWS left the group on launch-template version 2" in err[0]
    assert "pulumi refresh" in err[0] and clock.sleeps == []


def test_rolled_back_refresh_names_the_version_aws_left(world):
    """Auto rollback put the group back on version 1: the message says so, and what to do."""
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.4.0", instances_on="1.4.0")
    world.refresh(
        "green",
        "RollbackSuccessful",
        StatusReason="The instance refresh was rolled back.",
        RollbackDetails={"RollbackReason": "CloudWatch alarm checkout-staging-green-error-rate"},
    )
    code, _, err, _ = run_wait(world, "green", "2")
    assert code == 1
    assert "RollbackSuccessful: CloudWatch alarm checkout-staging-green-error-rate" in err[0]
    assert "launch-template version 1 (not 2: AWS rolled the group back)" in err[0]
    assert "python -m release rollback" in err[0]


def test_cancelled_refresh_fails(world):
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.5.0")
    world.refresh("green", "Cancelled", StatusReason="Cancelled by user.")
    code, _, err, _ = run_wait(world, "green", "2")
    assert code == 1 and "instance refresh Cancelled: Cancelled by user." in err[0]


def test_timeout_exits_one_with_the_refresh_status_and_never_sleeps_past_it(world):
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.4.0")
    for _ in range(4):  # polls at 0, 15, 30 and 40 s
        world.refresh("green", "InProgress", PercentageComplete=0, InstancesToUpdate=2)
    code, out, err, clock = run_wait(world, "green", "2", timeout=40, poll=15)
    assert code == 1 and len(out) == 1, out
    assert "timed out after 40 s; instance refresh InProgress" in err[0]
    assert clock.sleeps == [15, 15, 10] and clock.now == 40


def test_unhealthy_targets_keep_it_waiting_then_time_out(world):
    """No refresh, right version, but a target is not healthy: never ready."""
    world.color("green", ["1.5.0"], group_on="1.5.0", instances_on="1.5.0")
    world.make_unhealthy("green")
    world.refresh("green", None)
    world.refresh("green", None)
    code, out, err, _ = run_wait(world, "green", "1", timeout=10, poll=10)
    assert code == 1
    assert "1/2 healthy" in out[0] and "no instance refresh" in out[0]
    assert "timed out after 10 s" in err[0]


def test_no_refresh_and_all_healthy_on_the_version_is_ready_at_once(world):
    world.color("green", ["1.5.0"], group_on="1.5.0", instances_on="1.5.0")
    world.refresh("green", None)
    code, out, _, clock = run_wait(world, "green", "1")
    assert code == 0 and out[0].startswith("ready: ") and clock.sleeps == []


def test_a_color_with_no_capacity_returns_at_once_without_reading_refreshes(world):
    world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=0)
    code, out, _, clock = run_wait(world, "blue", "1")
    assert code == 0 and "desired capacity 0" in out[0] and clock.sleeps == []


def test_a_missing_group_fails_at_once(world):
    clock, out, err = Clock(), [], []
    code = waiter.wait(
        world.clients, "nope", TG_ARN, "1", 600, 15, out.append, err.append, clock, clock.sleep
    )
    assert code == 1 and "no Auto Scaling group named 'nope'" in err[0] and clock.sleeps == []


def test_aws_errors_are_retried_until_the_timeout_and_reported_once(world):
    world.color("green", ["1.5.0"], group_on="1.5.0", instances_on="1.5.0")
    for _ in range(2):
        world.stubber.add_client_error("describe_instance_refreshes", "Throttling", "slow down")
    code, out, err, _ = run_wait(world, "green", "1", timeout=15, poll=15)
    assert code == 1 and len(out) == 1 and "Throttling" in out[0]
    assert "timed out after 15 s without reading the group" in err[0]


def test_ctrl_c_exits_130_without_a_traceback(world, capsys):
    world.color("green", ["1.5.0"], group_on="1.5.0", instances_on="1.5.0")
    world.stubber.add_client_error("describe_instance_refreshes", "Throttling", "slow down")

    def interrupt(_seconds):
        raise KeyboardInterrupt

    made = world.colors["green"]
    code = waiter.main(
        [
            "--region",
            "eu-west-1",
            "--group",
            made.group,
            "--target-group-arn",
            made.target_group_arn,
            "--launch-template-version",
            "1",
            "--timeout",
            "60",
        ],
        clients=world.clients,
        sleep=interrupt,
    )
    captured = capsys.readouterr()
    assert code == 130 and "interrupted" in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("flag", "value", "rule"),
    [
        ("--region", "eu-west-1\n", "an AWS region"),
        ("--launch-template-version", "$Latest", "a launch-template version number"),
        ("--launch-template-version", "٣", "a launch-template version number"),
        (
            "--target-group-arn",
            "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/x/y",
            "a target group ARN",
        ),
        ("--timeout", "0", "a number of seconds"),
        ("--timeout", "1e9", "a number of seconds"),
        ("--poll", "-1", "a number of seconds"),
        ("--group", "", "an Auto Scaling group name"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, flag, value, rule):
    args = {
        "--region": "eu-west-1",
        "--group": "checkout-green-asg",
        "--target-group-arn": TG_ARN,
        "--launch-template-version": "2",
        "--timeout": "60",
    }
    args[flag] = value
    with pytest.raises(SystemExit) as exited:
        waiter.main([part for pair in args.items() for part in pair])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert flag in err and rule in err


# ---------------------------------------------------------------------------------------------
# As a subprocess against a local AWS API server: real exit codes and output
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def served(endpoint, monkeypatch):
    """A World on the server; the environment a subprocess needs to reach it."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=30).close()  # slow when the machine is busy
    return World(), {**os.environ, **env}


def waiter_process(env, made, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "release.waiter",
            "--region",
            "eu-west-1",
            "--group",
            made.group,
            "--target-group-arn",
            made.target_group_arn,
            "--launch-template-version",
            "1",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, out, err


def test_subprocess_empty_color_exits_zero(served):
    world, env = served
    made = world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=0)
    code, out, err = finish(waiter_process(env, made, "--timeout", "30"))
    assert (code, err) == (0, "") and out.startswith("ready: ") and "desired capacity 0" in out


def test_subprocess_missing_group_exits_one_with_one_line(served):
    world, env = served
    made = world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=0)
    made.group = "checkout-nope"
    code, out, err = finish(waiter_process(env, made, "--timeout", "30"))
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "no Auto Scaling group named 'checkout-nope'" in err


def test_subprocess_bad_argument_exits_two(served):
    world, env = served
    made = world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=0)
    code, out, err = finish(waiter_process(env, made, "--timeout", "forever"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "--timeout" in err


def test_subprocess_ctrl_c_while_waiting_exits_130_without_traceback(served):
    """The group needs waiting (its refreshes cannot be read here): SIGINT ends it cleanly."""
    world, env = served
    made = world.color("green", ["1.5.0"], group_on="1.5.0", instances_on="1.5.0")
    process = waiter_process(env, made, "--timeout", "300", "--poll", "0.2")
    first = process.stdout.readline()  # flushed progress line: it is waiting now
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    code, _, err = finish(process, timeout=30)
    assert made.group in first, (first, err)
    assert code == 130 and "Traceback" not in err and "interrupted" in err, err
    assert time.monotonic() - started < 15
