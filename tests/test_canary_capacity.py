"""Canary capacity: the first shift of a release raises the new color's min to what the stable
color runs, in the same write as the weights; finish puts the color's own values back.

Three layers: the steps as pure functions (:mod:`release.transitions`); the command on a copy
of the staging file against a local AWS API (moto, instance refreshes stubbed) and without
credentials; the rollout with a fake clock; and the program under the mock engine, which shows
that one ``pulumi up`` raises the group's min and waits for it before the listener moves.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path

import boto3
import pytest
from harness import changed_resources, load_stack_config, run_program, stack_file
from live_fixtures import World
from live_stack import ListenerApplier, build

from components.config import ConfigError, parse_stack_config
from release import canary, edits, live, stackfile, transitions
from release.cli import main
from release.rollout import Clock, Rollout, cloudwatch_alarms, plan_lines
from release.transitions import (
    REMOVE,
    ReleaseError,
    StableSize,
    apply_plan,
    finish,
    rollback,
    shift,
    sizes_canary,
    validate_plan,
)

FLEETS, RELEASE = "golden-fleet:fleets", "golden-fleet:release"
RECORD = (RELEASE, "canaryRestore")
SMALL = "capacity: {min: 1, desired: 1, max: 2}"


def canary_config(config: dict, max_: int = 12) -> dict:
    """Both colors 3/3/<max_>, green deployed (1.5.0) at 0 %, blue stable at 100 %."""
    config[FLEETS]["blue"]["capacity"] = {"min": 3, "desired": 3, "max": 12}
    config[FLEETS]["green"]["capacity"] = {"min": 3, "desired": 3, "max": max_}
    config[FLEETS]["green"]["version"] = "1.5.0"
    config[FLEETS]["blue"]["version"] = "1.4.0"
    config["golden-fleet:traffic"] = {"blue": 100, "green": 0}
    return config


def step(config: dict, plan) -> dict:
    validate_plan(config, plan)
    apply_plan(config, plan)
    return config


def green(config: dict) -> dict:
    return config[FLEETS]["green"]["capacity"]


def record(config: dict) -> dict | None:
    return config.get(RELEASE, {}).get("canaryRestore")


RUNS_9 = StableSize(9, "checkout-blue-asg desired capacity")


# ---------------------------------------------------------------------------------------------
# The steps, pure
# ---------------------------------------------------------------------------------------------
def test_first_shift_raises_the_canary_min_to_the_stable_colors_live_size(staging_config):
    """Stable runs 9, canary min 3: the shift's one plan holds the weights, min 9, desired 9
    and the record of the canary's own 3/3."""
    config = canary_config(staging_config)
    plan = shift(parse_stack_config(config), "staging", 10, RUNS_9)
    step(config, plan)
    assert config["golden-fleet:traffic"] == {"blue": 90, "green": 10}
    assert green(config) == {"min": 9, "desired": 9, "max": 12}
    assert record(config) == {"color": "green", "min": 3, "desired": 3}
    assert "green's min set to 9" in plan.notes[0] and "blue runs 9" in plan.notes[0]
    assert "waits for 9 healthy targets" in plan.preview


def test_only_the_first_shift_of_a_release_sizes_the_canary(staging_config):
    """From 0 % with scaling on: yes. Later shifts, shifts to 0, and scaling off: no."""
    config = canary_config(staging_config)
    cfg = parse_stack_config(config)
    assert sizes_canary(cfg, 10) and sizes_canary(cfg, 100)
    assert not sizes_canary(cfg, 0)
    step(config, shift(cfg, "staging", 10, RUNS_9))
    later = shift(parse_stack_config(config), "staging", 50, StableSize(12, "x"))
    assert {c.path[0] for c in later.changes} == {"golden-fleet:traffic"}, later.changes
    config["golden-fleet:scaling"]["enabled"] = False
    assert not sizes_canary(parse_stack_config(canary_config(config)), 10)


def test_fixed_capacity_shifts_only_the_weights(staging_config):
    """Scaling off: the file's desired is what runs and nothing shrinks the canary between
    steps, so no live read is needed and only the weights change."""
    config = canary_config(staging_config)
    config["golden-fleet:scaling"]["enabled"] = False
    plan = shift(parse_stack_config(config), "staging", 10)
    assert {c.path[0] for c in plan.changes} == {"golden-fleet:traffic"} and not plan.warnings


def test_a_stable_color_no_larger_than_the_canary_min_raises_nothing(staging_config):
    config = canary_config(staging_config)
    plan = shift(parse_stack_config(config), "staging", 10, StableSize(2, "g"))
    assert {c.path[0] for c in plan.changes} == {"golden-fleet:traffic"}
    assert "own min 3 covers it" in plan.notes[0]


def test_a_stable_color_above_the_canary_max_is_refused_naming_the_key(staging_config):
    config = canary_config(staging_config, max_=6)
    with pytest.raises(ReleaseError, match=r"golden-fleet:fleets\.green\.capacity\.max 6") as e:
        shift(parse_stack_config(config), "staging", 10, RUNS_9)
    assert "--force" in str(e.value) and "at least 9" in str(e.value)


def test_cap_at_max_raises_the_min_to_the_max_and_says_so(staging_config):
    config = canary_config(staging_config, max_=6)
    plan = shift(parse_stack_config(config), "staging", 10, RUNS_9, cap_at_max=True)
    step(config, plan)
    assert green(config) == {"min": 6, "desired": 6, "max": 6}
    assert record(config) == {"color": "green", "min": 3, "desired": 3}
    assert "capped at golden-fleet:fleets.green.capacity.max 6" in plan.warnings[0]


def test_an_unknown_stable_size_is_a_warning_and_changes_only_the_weights(staging_config):
    config = canary_config(staging_config)
    for size in (StableSize(None, "no AWS credentials found"), None):
        plan = shift(parse_stack_config(config), "staging", 10, size)
        assert {c.path[0] for c in plan.changes} == {"golden-fleet:traffic"}
        assert "green's min not raised, it stays 3" in plan.warnings[0]
    assert (
        "no AWS credentials found"
        in shift(
            parse_stack_config(config), "staging", 10, StableSize(None, "no AWS credentials found")
        ).warnings[0]
    )


def test_finish_puts_the_canary_min_back_and_drops_the_record(staging_config):
    config = canary_config(staging_config)
    step(config, shift(parse_stack_config(config), "staging", 10, RUNS_9))
    step(config, shift(parse_stack_config(config), "staging", 100))
    plan = finish(parse_stack_config(config), "staging")
    assert [c.value for c in plan.changes if c.path == RECORD] == [REMOVE]
    step(config, plan)
    assert green(config) == {"min": 3, "desired": 3, "max": 12}
    assert record(config) is None
    assert config[RELEASE]["stable"] == "green"
    assert "green's min back to its own 3" in plan.notes[0]
    assert "green's Auto Scaling Group min back to its own" in plan.preview


def test_finish_with_scaling_off_keeps_the_desired_that_serves(staging_config):
    """Scaling turned off mid-release: desired is what runs and the color serves all traffic,
    so only min goes back."""
    config = canary_config(staging_config)
    step(config, shift(parse_stack_config(config), "staging", 100, RUNS_9))
    config["golden-fleet:scaling"]["enabled"] = False
    step(config, finish(parse_stack_config(config), "staging"))
    assert green(config) == {"min": 3, "desired": 9, "max": 12}
    assert record(config) is None


def test_rollback_keeps_the_raised_min_and_the_next_first_shift_resizes_from_the_record(
    staging_config,
):
    """Rollback is one listener change: min and record stay. Shifting from 0 again reads the
    stable color anew against the canary's own values: up to 11, or back to 3 and no record."""
    config = canary_config(staging_config)
    step(config, shift(parse_stack_config(config), "staging", 10, RUNS_9))
    plan = rollback(parse_stack_config(config), "staging")
    assert {c.path[0] for c in plan.changes} == {"golden-fleet:traffic"}
    assert "green keeps the min 9" in plan.notes[0] and "its own: 3" in plan.notes[0]
    step(config, plan)
    assert green(config)["min"] == 9 and record(config)["min"] == 3

    again = copy.deepcopy(config)
    step(again, shift(parse_stack_config(again), "staging", 10, StableSize(11, "g")))
    assert green(again) == {"min": 11, "desired": 11, "max": 12}
    assert record(again) == {"color": "green", "min": 3, "desired": 3}, "the own values stay"

    quiet = copy.deepcopy(config)
    step(quiet, shift(parse_stack_config(quiet), "staging", 10, StableSize(2, "g")))
    assert green(quiet) == {"min": 3, "desired": 3, "max": 12} and record(quiet) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"color": "blue", "min": 3, "desired": 3}, "canaryRestore.color: names blue, the stable"),
        ({"color": "green", "min": 4, "desired": 3}, "canaryRestore.desired: must be at least"),
        ({"color": "green", "min": 3, "desired": 13}, "fleets.green.capacity.max (12)"),
        ({"color": "green", "min": "3", "desired": 3}, "canaryRestore.min: "),
        ({"color": "green", "min": 3, "desired": 3, "max": 9}, "canaryRestore.max: unknown key"),
        ({"color": "red", "min": 3, "desired": 3}, "canaryRestore.color: "),
    ],
)
def test_the_record_is_validated_with_errors_naming_its_key(staging_config, value, message):
    config = canary_config(staging_config)
    config[RELEASE]["canaryRestore"] = value
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config)
    [problem] = caught.value.problems
    assert problem.startswith("golden-fleet:release.canaryRestore.") and message in problem


def test_status_names_the_raised_min_and_its_own_values(staging_config):
    config = canary_config(staging_config)
    assert transitions.canary_line(parse_stack_config(config)) is None
    step(config, shift(parse_stack_config(config), "staging", 10, RUNS_9))
    line = transitions.canary_line(parse_stack_config(config))
    assert line and "green's min is 9" in line and "min 3, desired 3" in line


# ---------------------------------------------------------------------------------------------
# The command, against AWS in moto
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def world(world, monkeypatch):
    monkeypatch.setattr(live.Clients, "for_region", classmethod(lambda cls, r: world.clients))
    return world


@pytest.fixture
def staging(tmp_path) -> Path:
    """Staging's file with both colors at 3/3/12: blue 1.4.0 stable at 100 %, green 1.5.0 at 0."""
    target = tmp_path / "Pulumi.staging.yaml"
    text = stack_file("staging").read_text()
    assert text.count(SMALL) == 2
    target.write_text(text.replace(SMALL, "capacity: {min: 3, desired: 3, max: 12}"))
    return target


def release(capsys, path: Path, *args: str) -> tuple[int, str, str]:
    command, stack, *rest = args
    code = main([command, stack, "--file", str(path), *rest])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(capsys, path: Path, *args: str) -> str:
    before = path.read_bytes()
    code, out, err = release(capsys, path, *args)
    assert code == 1, f"{args} was not refused: {out}"
    assert path.read_bytes() == before, f"{args} touched the file"
    return err


def running(world: World, blue: int = 9) -> None:
    """Blue runs ``blue`` instances (the autoscaler's count), green 3 rolled and healthy."""
    world.color("blue", ["1.3.0", "1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=blue)
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.5.0", desired=3)
    world.refresh("green", "Successful")


@pytest.fixture
def writes(monkeypatch) -> list[bytes]:
    """Every stack-file write the command makes (the real atomic write still happens)."""
    made: list[bytes] = []
    real = stackfile.atomic_write

    def counting(path: Path, data: bytes, expected: bytes) -> None:
        made.append(data)
        real(path, data, expected)

    monkeypatch.setattr(stackfile, "atomic_write", counting)
    return made


def file_config(path: Path) -> dict:
    return load_stack_config(path)


def test_shift_raises_min_to_the_live_stable_size_in_one_write(capsys, world, staging, writes):
    """Blue's group desires 9, green's min is 3: one write holds the weights, green's min 9
    and the record; the output says so."""
    running(world)
    code, out, err = release(capsys, staging, "shift", "staging", "10")
    assert code == 0, err
    assert len(writes) == 1 and writes[0] == staging.read_bytes()
    config = file_config(staging)
    assert config["golden-fleet:traffic"] == {"blue": 90, "green": 10}
    assert green(config) == {"min": 9, "desired": 9, "max": 12}
    assert record(config) == {"color": "green", "min": 3, "desired": 3}
    assert (
        "note: blue runs 9 (checkout-blue-asg-0123abcd desired capacity): green's min set "
        "to 9" in out
    )
    assert "+      capacity: {min: 9, desired: 9, max: 12}" in out
    assert "warning" not in out


def test_an_interrupted_write_leaves_the_original_file(capsys, world, staging, monkeypatch):
    running(world)
    original = staging.read_bytes()

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", crash)
    code, _, err = release(capsys, staging, "shift", "staging", "10")
    assert code == 1 and "could not write" in err
    assert staging.read_bytes() == original
    assert sorted(p.name for p in staging.parent.iterdir()) == [staging.name]


def test_finish_restores_the_own_min_and_drops_the_record_in_one_write(
    capsys, world, staging, writes
):
    running(world)
    assert release(capsys, staging, "shift", "staging", "10")[0] == 0
    world.refresh("green", "Successful")  # the gate of the shift to 100 (not a first shift)
    assert release(capsys, staging, "shift", "staging", "100")[0] == 0
    assert green(file_config(staging))["min"] == 9, "a later shift leaves the raised min alone"
    world.forward({"blue": 0, "green": 100})  # the shift to 100 applied
    world.refresh("green", "Successful")
    writes.clear()
    code, out, err = release(capsys, staging, "finish", "staging")
    assert code == 0, err
    assert len(writes) == 1
    config = file_config(staging)
    assert green(config) == {"min": 3, "desired": 3, "max": 12}
    assert record(config) is None and "canaryRestore" not in staging.read_text()
    assert config[RELEASE]["stable"] == "green"
    assert "green's min back to its own 3" in out
    assert staging.read_text() == stack_file("staging").read_text().replace(
        SMALL, "capacity: {min: 3, desired: 3, max: 12}"
    ).replace("    blue: 100\n    green: 0\n", "    blue: 0\n    green: 100\n").replace(
        "stable: blue ",
        "stable: green",  # the inline comment keeps its column
    ).replace(
        "      capacity: {min: 3, desired: 3, max: 12}\n    green:",
        "      capacity: {min: 0, desired: 0, max: 12}\n    green:",
    ), "finish leaves the file as before the release except the weights, stable and cold blue"


def test_rollback_keeps_the_raised_min_and_says_why(capsys, world, staging):
    running(world)
    assert release(capsys, staging, "shift", "staging", "10")[0] == 0
    before = file_config(staging)
    code, out, err = release(capsys, staging, "rollback", "staging")
    assert code == 0, err
    after = file_config(staging)
    assert after["golden-fleet:traffic"] == {"blue": 100, "green": 0}
    assert {k: v for k, v in after.items() if k != "golden-fleet:traffic"} == {
        k: v for k, v in before.items() if k != "golden-fleet:traffic"
    }
    assert "note: green keeps the min 9" in out


def test_without_credentials_shift_warns_that_min_was_not_raised(
    capsys, staging, no_aws_credentials
):
    code, out, err = release(capsys, staging, "shift", "staging", "10")
    assert code == 0, err
    assert (
        "warning: green's min not raised, it stays 3: could not read blue's live desired "
        "capacity (no AWS credentials found)"
    ) in out
    config = file_config(staging)
    assert config["golden-fleet:traffic"]["green"] == 10
    assert green(config)["min"] == 3 and record(config) is None


def test_without_credentials_require_healthy_refuses(capsys, staging, no_aws_credentials):
    err = refused(capsys, staging, "shift", "staging", "10", "--require-healthy")
    assert "--require-healthy is set" in err


def test_a_stable_color_without_a_group_is_a_warning(capsys, world, staging):
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.5.0", desired=3)
    world.refresh("green", "Successful")
    code, out, err = release(capsys, staging, "shift", "staging", "10")
    assert code == 0, err
    assert (
        "could not read blue's live desired capacity (no Auto Scaling group tagged for blue)" in out
    )
    assert green(file_config(staging))["min"] == 3


def test_a_canary_max_below_the_stable_size_is_refused_then_capped_with_force(
    capsys, world, staging
):
    staging.write_text(
        staging.read_text().replace(
            "      version: 1.5.0\n      capacity: {min: 3, desired: 3, max: 12}",
            "      version: 1.5.0\n      capacity: {min: 3, desired: 3, max: 6}",
        )
    )
    running(world)
    err = refused(capsys, staging, "shift", "staging", "10")
    assert "golden-fleet:fleets.green.capacity.max 6" in err and "--force" in err
    # refused before the live gate read green: its queued refresh answer serves the next run
    code, out, err = release(capsys, staging, "shift", "staging", "10", "--force")
    assert code == 0, err
    assert "warning: --force: green's min capped at golden-fleet:fleets.green.capacity.max 6" in out
    assert green(file_config(staging)) == {"min": 6, "desired": 6, "max": 6}


def test_the_reader_is_one_describe_call_on_the_stable_colors_group(world):
    """Found by its tags, the group's desired capacity; another color's or stack's group is
    not it."""
    world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=7)
    world.color("green", ["1.5.0"], group_on="1.5.0", instances_on="1.5.0", desired=3)
    cfg = edits.read_config(stack_file("staging"))
    size = canary.read_stable_size(cfg, "staging", clients=world.clients)
    assert size == StableSize(7, "checkout-blue-asg-0123abcd desired capacity")
    assert canary.read_stable_size(cfg, "prod", clients=world.clients).desired is None


# ---------------------------------------------------------------------------------------------
# rollout: the first step sizes the canary once, later steps do not
# ---------------------------------------------------------------------------------------------
class FakeClock(Clock):
    def __init__(self):
        self.now = 0.0
        super().__init__(monotonic=lambda: self.now, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.now += seconds


class RecordingApplier(ListenerApplier):
    """The listener stand-in, also recording green's capacity and the record at each update."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.files: list[dict] = []

    def preview_and_up(self, stack, out):
        self.files.append(load_stack_config(self.path))
        super().preview_and_up(stack, out)


def _rollout(path: Path, capacity, applier=None, lines=None) -> Rollout:
    return Rollout(
        stack="staging",
        path=path,
        steps=(10, 50, 100),
        bake_s=30,
        applier=applier or ListenerApplier(path),
        alarms=cloudwatch_alarms("eu-west-1"),
        clock=FakeClock(),
        out=(lines if lines is not None else []).append,
        stream=io.StringIO(),
        capacity=capacity,
    )


def test_rollout_sizes_the_canary_once_before_its_first_step(aws, staging):
    """The reader is asked once; step 1's write holds 10 % and min 9, steps 2 and 3 keep
    min 9 and the record as step 1 wrote them."""
    build("staging", "checkout", {"blue": 100, "green": 0})
    asked: list[int] = []

    def capacity(cfg):
        asked.append(cfg.traffic.green)
        return RUNS_9

    applier = RecordingApplier(staging)
    lines: list[str] = []
    assert _rollout(staging, capacity, applier, lines).run() == 0
    assert asked == [0]
    assert [f["golden-fleet:traffic"]["green"] for f in applier.files] == [10, 50, 100]
    assert [green(f)["min"] for f in applier.files] == [9, 9, 9]
    assert all(record(f) == {"color": "green", "min": 3, "desired": 3} for f in applier.files)
    assert any("step 1/3: wrote green 10%, blue 90%, green min 9" in line for line in lines)
    assert not any("step 2/3: wrote green 50%, blue 50%, green min" in line for line in lines)


def test_rollout_with_the_real_reader_reads_the_stable_group_in_aws(aws, staging):
    build("staging", "checkout", {"blue": 100, "green": 0})
    world = World()
    world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=5)
    applier = RecordingApplier(staging)
    assert _rollout(staging, canary.reader("staging"), applier).run() == 0
    assert [green(f)["min"] for f in applier.files] == [5, 5, 5]


def test_rollout_refuses_before_writing_when_the_stable_size_is_unknown_or_too_big(aws, staging):
    live_stack = build("staging", "checkout", {"blue": 100, "green": 0})
    before = staging.read_bytes()
    with pytest.raises(
        ReleaseError,
        match="could not read blue's live desired capacity "
        r"\(no Auto Scaling group tagged for blue\).*nothing written",
    ):
        _rollout(staging, canary.reader("staging")).run()
    with pytest.raises(ReleaseError, match=r"golden-fleet:fleets\.green\.capacity\.max 12"):
        _rollout(staging, lambda cfg: StableSize(13, "g")).run()
    assert staging.read_bytes() == before
    assert live_stack.weights() == {"blue": 100, "green": 0}


def test_a_resumed_rollout_does_not_size_the_canary_again(aws, staging):
    """Green already at 50 % (the first step wrote its min): the reader is not asked."""
    build("staging", "checkout", {"blue": 50, "green": 50})
    edits.write(edits.prepare(staging, lambda cfg: shift(cfg, "staging", 50, RUNS_9)))

    def capacity(cfg):
        raise AssertionError("a resumed rollout must not size the canary again")

    applier = RecordingApplier(staging)
    assert _rollout(staging, capacity, applier).run() == 0
    # A resumed rollout applies its current step again from its start, then the rest: every
    # file it applies keeps the raised min, and none sizes it again.
    mins = [green(f)["min"] for f in applier.files]
    assert mins and mins == [9] * len(mins), mins


def test_the_printed_plan_names_the_sizing_on_the_first_step_only(staging):
    cfg = edits.read_config(staging)
    lines = plan_lines("staging", cfg, (10, 50, 100), 300)
    sized = [line for line in lines if "min raised to blue's live desired capacity" in line]
    assert len(sized) == 1 and "step 1/3" in sized[0]


# ---------------------------------------------------------------------------------------------
# The program: one `pulumi up` raises min, waits for it, then moves the listener
# ---------------------------------------------------------------------------------------------
ASG, COMMAND, LISTENER = (
    "aws:autoscaling/group:Group",
    "command:local:Command",
    "aws:lb/listener:Listener",
)


def color_gate(run, color: str):
    """The color's gate before the listener: the resource of its Fleet that the listener
    depends on (the rollout waiter, or the refresh resource that replaces it)."""
    listener = run.one(LISTENER, "checkout-listener")
    gates = [
        run.resources[name]
        for name in listener.options["depends_on"]
        if run.resources[name].parent == f"checkout-{color}"
    ]
    assert len(gates) == 1, (listener.options["depends_on"], color)
    return gates[0]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_raise_reaches_the_group_and_its_gate_before_the_listener(
    stack, staging_config, prod_config
):
    """The first shift's edit changes green's group (min 9; desired stays the autoscaler's, so
    AWS raises it to the new min), re-runs green's gate (its triggers hold min and desired; it
    depends on the group) and changes the listener, which depends on that gate: in one update
    the weights move only after green's gate has seen healthy targets >= its live desired."""
    config = canary_config({"staging": staging_config, "prod": prod_config}[stack])
    before = run_program(config, stack=stack)
    edited = step(copy.deepcopy(config), shift(parse_stack_config(config), stack, 10, RUNS_9))
    after = run_program(edited, stack=stack)
    gate = color_gate(after, "green")
    assert gate.type_ == COMMAND
    assert changed_resources(before, after) == {
        "checkout-green-asg",
        gate.name,
        "checkout-listener",
    }
    group = after.one(ASG, "checkout-green-asg")
    assert group.inputs["minSize"] == 9
    assert "desiredCapacity" in group.options["ignore_changes"], "AWS raises desired to min"
    assert group.inputs["waitForCapacityTimeout"] == "0", "the gate is the capacity wait"
    assert gate.inputs["triggers"][-3:] == [9, 9, 12]
    assert gate.inputs["triggers"] != before.resources[gate.name].inputs["triggers"]
    assert "triggers" in gate.options["replace_on_changes"], "a new trigger re-runs it"
    assert gate.options["depends_on"] == ["checkout-green-asg"]


def test_finish_after_a_raise_changes_the_new_colors_group_not_the_listener(prod_config):
    """Warm standby: finish's restore is green's group and gate; the listener keeps 0/100."""
    config = canary_config(prod_config)
    step(config, shift(parse_stack_config(config), "prod", 100, RUNS_9))
    before = run_program(config, stack="prod")
    step(config, finish(parse_stack_config(config), "prod"))
    after = run_program(config, stack="prod")
    assert after.one(ASG, "checkout-green-asg").inputs["minSize"] == 3
    assert changed_resources(before, after) == {
        "checkout-green-asg",
        color_gate(after, "green").name,
    }


def test_after_the_raise_the_group_is_unfit_until_healthy_targets_reach_the_new_desired(world):
    """What the update does in AWS: raising MinSize above the group's size raises its desired
    (UpdateAutoScalingGroup API reference, MinSize; moto models it), and the health check the
    gate applies to the group (release.live.problems on read_group) compares healthy targets
    with that live desired: 3 healthy of 9 is not ready."""
    world.color("green", ["1.5.0"], group_on="1.5.0", instances_on="1.5.0", desired=3)
    made = world.colors["green"]
    first = set(world.instances("green"))
    world.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=made.group, MinSize=9, MaxSize=12
    )
    booting = [i for i in world.instances("green") if i not in first]
    assert len(booting) == 6
    boto3.client("ec2", region_name="eu-west-1").stop_instances(InstanceIds=booting)
    world.refresh("green", None)
    state = live.read_group(world.clients, made.group, made.target_group_arn)
    assert state.desired == 9
    assert "3/9 targets healthy in its target group" in live.problems(state)
