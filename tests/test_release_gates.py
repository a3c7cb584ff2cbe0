"""``shift`` and ``finish`` look at AWS before they write: each refusal, ``--force``, no
credentials (warn), ``--require-healthy``, and finish's two separate updates.

AWS is the local API (moto) for groups, launch templates, images, target health, listeners and
alarms; the instance-refresh calls go to botocore's Stubber.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import copy_stack_file, load_stack_config
from live_fixtures import World

from components.config import Color, parse_stack_config
from release import automation, gates, live
from release.cli import main


@pytest.fixture
def world(world, monkeypatch):
    """The shared live world, and the release command's clients pointed at it."""
    monkeypatch.setattr(live.Clients, "for_region", classmethod(lambda cls, r: world.clients))
    return world


@pytest.fixture
def staging(tmp_path) -> Path:
    """A copy of Pulumi.staging.yaml: blue 1.4.0 stable at 100 %, green 1.5.0 idle (1/1/2)."""
    return copy_stack_file("staging", tmp_path)


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
    assert len(err.strip().splitlines()) == 1, err
    return err


def rolled(world: World, refresh: str | None = "Successful", **fields) -> None:
    """Both colors deployed as the staging file says; green's latest refresh as given."""
    world.color("blue", ["1.3.0", "1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=1)
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.5.0", desired=1)
    world.refresh("green", refresh, **fields)


# ---------------------------------------------------------------------------------------------
# shift
# ---------------------------------------------------------------------------------------------
def test_shift_to_a_ready_color_writes_without_warning(capsys, world, staging):
    rolled(world)
    code, out, err = release(capsys, staging, "shift", "staging", "10")
    assert code == 0, err
    assert "warning" not in out
    assert parse_stack_config(load_stack_config(staging)).traffic.green == 10


def test_shift_refuses_while_the_refresh_runs(capsys, world, staging):
    rolled(world, "InProgress", PercentageComplete=50, InstancesToUpdate=1)
    err = refused(capsys, staging, "shift", "staging", "10")
    assert "green: instance refresh InProgress (50% complete)" in err and "--force" in err


def test_shift_refuses_after_a_rollback_and_names_the_drift(capsys, world, staging):
    """AWS rolled green back to 1.4.0: the file's 1.5.0 is not what serves."""
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.4.0", instances_on="1.4.0", desired=1)
    world.refresh(
        "green", "RollbackSuccessful", RollbackDetails={"RollbackReason": "alarm error-rate"}
    )
    err = refused(capsys, staging, "shift", "staging", "10")
    assert "the latest instance refresh was RollbackSuccessful: alarm error-rate" in err
    assert "drift: the stack file says 1.5.0" in err and "(1.4.0)" in err


@pytest.mark.parametrize("status", ["Failed", "RollbackSuccessful", "Cancelled"])
def test_a_stale_failed_refresh_of_another_version_never_blocks_a_shift(
    capsys, world, staging, status
):
    """Green runs the file's 1.5.0, whole and healthy; its latest refresh, toward another
    launch-template version, ended badly long ago. It never saved that version, so it is
    history: the shift goes ahead (it used to be refused at once, until some new refresh)."""
    rolled(
        world,
        status,
        StatusReason="alarm fired briefly",
        DesiredConfiguration={
            "LaunchTemplate": {"LaunchTemplateId": "lt-0ffffffffffffffff", "Version": "9"}
        },
    )
    code, _, err = release(capsys, staging, "shift", "staging", "10")
    assert code == 0, err
    assert parse_stack_config(load_stack_config(staging)).traffic.green == 10


@pytest.mark.parametrize("firing", ["error-rate", "load-balancer"])
def test_shift_refuses_while_an_alarm_of_the_color_is_in_alarm(capsys, world, staging, firing):
    """Green whole and healthy, but its error-rate alarm (or the load balancer's 5xx alarm,
    which judges whichever color serves) is in ALARM: no more traffic onto it without --force."""
    rolled(world)
    if firing == "load-balancer":
        name = world.load_balancer_alarm("ALARM")
    else:
        world.set_alarm("green", "error-rate")
        name = "checkout-staging-green-error-rate"
    err = refused(capsys, staging, "shift", "staging", "10")
    assert f"green: alarm {name} is in ALARM" in err and "--force" in err
    code, _, _ = release(capsys, staging, "shift", "staging", "10", "--force")
    assert code == 0


@pytest.mark.parametrize("kind", ["error-rate", "unhealthy-hosts", "p99-latency"])
def test_shift_refuses_an_alarm_of_the_color_without_data_naming_it(capsys, world, staging, kind):
    """One of green's own alarms is INSUFFICIENT_DATA: it judges nothing, and the load
    balancer's alarm in OK (it sees both colors) does not stand in for it."""
    rolled(world)
    world.load_balancer_alarm("OK")
    world.set_alarm("green", kind, "INSUFFICIENT_DATA")
    err = refused(capsys, staging, "shift", "staging", "10")
    name = f"checkout-staging-green-{kind}"
    assert f"green: alarm {name} is INSUFFICIENT_DATA: it has no data" in err, err
    assert "--force" in err


def test_shift_refuses_a_missing_alarm_of_the_color_naming_it(capsys, world, staging):
    rolled(world)
    world.load_balancer_alarm("OK")
    world.cloudwatch.delete_alarms(AlarmNames=["checkout-staging-green-p99-latency"])
    err = refused(capsys, staging, "shift", "staging", "10")
    assert "green: alarm checkout-staging-green-p99-latency is missing" in err, err


def test_finish_refuses_an_alarm_of_the_new_color_without_data(capsys, world, staging):
    """At 100 % on the live listener, but green's error rate never evaluated: not finished."""
    at_100(staging)
    rolled(world)
    world.forward({"blue": 0, "green": 100})
    world.set_alarm("green", "error-rate", "INSUFFICIENT_DATA")
    world.cloudwatch.delete_alarms(AlarmNames=["checkout-staging-green-unhealthy-hosts"])
    err = refused(capsys, staging, "finish", "staging")
    assert "green: alarm checkout-staging-green-error-rate is INSUFFICIENT_DATA" in err, err
    assert "green: alarm checkout-staging-green-unhealthy-hosts is missing" in err, err


def test_the_idle_stable_colors_alarms_are_not_asked_by_a_shift(capsys, world, staging):
    """Only the colors gaining traffic are judged: blue's alarm without data does not block a
    shift onto green."""
    rolled(world)
    world.set_alarm("blue", "error-rate", "INSUFFICIENT_DATA")
    code, _out, err = release(capsys, staging, "shift", "staging", "10")
    assert code == 0, err


def test_shift_refuses_instances_on_another_version(capsys, world, staging):
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.4.0", desired=1)
    world.refresh("green", None)
    err = refused(capsys, staging, "shift", "staging", "10")
    assert "1 of 1 in-service instances run launch-template version 1, not 2" in err


def test_shift_refuses_unhealthy_targets(capsys, world, staging):
    rolled(world, None)
    world.make_unhealthy("green")
    err = refused(capsys, staging, "shift", "staging", "10")
    assert "0/1 targets healthy" in err


def test_shift_refuses_a_color_without_a_group(capsys, world, staging):
    world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=1)
    err = refused(capsys, staging, "shift", "staging", "10")
    assert "green: no Auto Scaling group tagged for it" in err


def test_shift_force_writes_with_a_warning(capsys, world, staging):
    rolled(world, "InProgress", PercentageComplete=50)
    code, out, err = release(capsys, staging, "shift", "staging", "10", "--force")
    assert code == 0, err
    assert "warning: --force: writing although green: instance refresh InProgress" in out
    assert parse_stack_config(load_stack_config(staging)).traffic.green == 10


def test_shift_back_toward_the_stable_color_checks_the_color_gaining(capsys, world, staging):
    """Shifting 50 -> 10 sends more to blue: blue is read, green (losing traffic) is not."""
    config = load_stack_config(staging)
    assert gates.for_shift(parse_stack_config(config), 10)[0] == (Color.GREEN,)
    text = staging.read_text().replace(
        "    blue: 100\n    green: 0\n", "    blue: 50\n    green: 50\n"
    )
    staging.write_text(text)
    cfg = parse_stack_config(load_stack_config(staging))
    assert gates.for_shift(cfg, 10)[0] == (Color.BLUE,)
    world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=1)
    world.refresh("blue", "Successful")
    code, out, err = release(capsys, staging, "shift", "staging", "10")
    assert code == 0 and "warning" not in out, err


def test_an_aws_error_is_a_warning_not_a_refusal(capsys, world, staging):
    world.color("green", ["1.5.0"], group_on="1.5.0", instances_on="1.5.0", desired=1)
    world.stubber.add_client_error("describe_instance_refreshes", "AccessDenied", "not allowed")
    code, out, err = release(capsys, staging, "shift", "staging", "10")
    assert code == 0, err
    assert "could not check the live state of green" in out and "AccessDenied" in out


# ---------------------------------------------------------------------------------------------
# No credentials
# ---------------------------------------------------------------------------------------------
def test_without_credentials_shift_warns_and_writes(capsys, staging, no_aws_credentials):
    code, out, err = release(capsys, staging, "shift", "staging", "10")
    assert code == 0, err
    assert "warning: could not check the live state of green (no AWS credentials found)" in out
    assert parse_stack_config(load_stack_config(staging)).traffic.green == 10


def test_without_credentials_require_healthy_refuses(capsys, staging, no_aws_credentials):
    err = refused(capsys, staging, "shift", "staging", "10", "--require-healthy")
    assert "--require-healthy is set" in err and "no AWS credentials found" in err


# ---------------------------------------------------------------------------------------------
# finish
# ---------------------------------------------------------------------------------------------
def at_100(path: Path) -> None:
    path.write_text(
        path.read_text().replace("    blue: 100\n    green: 0\n", "    blue: 0\n    green: 100\n")
    )


def test_finish_refuses_when_the_live_listener_is_not_at_100(capsys, world, staging):
    """The file says green 100 %, but that shift was never applied."""
    at_100(staging)
    rolled(world)
    world.forward({"blue": 90, "green": 10})
    err = refused(capsys, staging, "finish", "staging")
    assert "green: the live listener sends it 10%, the stack file 100%" in err
    assert "pulumi up" in err


def test_finish_goes_ahead_when_the_listener_sends_100(capsys, world, staging):
    at_100(staging)
    rolled(world)
    world.forward({"blue": 0, "green": 100})
    code, out, err = release(capsys, staging, "finish", "staging")
    assert code == 0 and "warning" not in out, err
    cfg = parse_stack_config(load_stack_config(staging))
    assert cfg.stable_color is Color.GREEN and cfg.fleets[Color.BLUE].capacity.desired == 0


def test_finish_refuses_below_100_without_apply(capsys, staging, no_aws_credentials):
    assert release(capsys, staging, "shift", "staging", "50")[0] == 0
    err = refused(capsys, staging, "finish", "staging")
    assert "green takes 50%, not 100%" in err and "finish staging --apply" in err


def test_finish_apply_makes_two_updates_weights_first(
    capsys, tmp_path, monkeypatch, no_aws_credentials
):
    """finish --apply from 50 %: update 1 changes only the weights, update 2 only the rest.
    Every --apply holds the stack's release lock (release/apply_lock.py): its table is in a
    local AWS API for the finish; --force, because that API has no groups for the live gate."""
    from live_stack import lock_table
    from moto import mock_aws

    (tmp_path / "Pulumi.yaml").write_text("name: golden-fleet\nruntime: python\n")
    path = copy_stack_file("staging", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert release(capsys, path, "shift", "staging", "50")[0] == 0  # no credentials: no gate
    applied: list[dict] = []
    monkeypatch.setattr(automation, "require_cli", lambda: "pulumi")
    monkeypatch.setattr(
        automation,
        "preview_and_up",
        lambda stack, root, confirm, out: applied.append(load_stack_config(path)),
    )
    start = load_stack_config(path)
    with mock_aws():
        lock_table()
        code, _, err = release(capsys, path, "finish", "staging", "--apply", "--yes", "--force")
    assert code == 0, err
    assert len(applied) == 2, "expected two updates"
    first, second = applied
    assert first["golden-fleet:traffic"] == {"blue": 0, "green": 100}
    assert first["golden-fleet:fleets"] == start["golden-fleet:fleets"], "scaled in update 1"
    assert second["golden-fleet:traffic"] == first["golden-fleet:traffic"], "weights in update 2"
    assert second["golden-fleet:fleets"]["blue"]["capacity"]["desired"] == 0
    assert second["golden-fleet:release"]["stable"] == "green"


# ---------------------------------------------------------------------------------------------
# status: what AWS runs next to what the file says
# ---------------------------------------------------------------------------------------------
def status(capsys, path: Path) -> tuple[int, str, str]:
    return release(capsys, path, "status", "staging", "--no-outputs", "--no-images")


def test_status_shows_each_colors_live_state(capsys, world, staging):
    world.color("blue", ["1.3.0", "1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=1)
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.5.0", desired=1)
    world.refresh("blue", None)  # status reads blue, then green
    world.refresh("green", "Successful", PercentageComplete=100)
    world.set_alarm("green", "error-rate")
    code, out, err = status(capsys, staging)
    assert code == 0, err
    green = next(line for line in out.splitlines() if line.startswith("live green: "))
    made = world.colors["green"]
    for part in (
        made.group,
        f"launch-template version 2 {made.images['1.5.0']} (file: 1.5.0)",
        "refresh Successful 100%",
        "1/1 targets healthy, desired 1",
        "error-rate ALARM",
    ):
        assert part in green, green
    assert any(
        line.startswith("live blue: ") and "no instance refresh" in line
        for line in out.splitlines()
    )
    assert "drift" not in out


def test_status_shows_the_live_listener_beside_the_file(capsys, world, staging):
    """The file says blue 100 %, but the weighted listener splits 50/50 (an interrupted rollout,
    or `rollback --now` undone by hand): status says so, and says when they agree."""
    world.color("blue", ["1.3.0", "1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=1)
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.5.0", desired=1)
    world.forward({"blue": 50, "green": 50})
    for _ in range(2):
        world.refresh("blue", None)
        world.refresh("green", "Successful", PercentageComplete=100)
    code, out, err = status(capsys, staging)
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("listener: "))
    assert line.startswith(
        "listener: blue 50%, green 50% — the stack file says blue 100%, green 0%"
    ), line
    world.forward({"blue": 100, "green": 0})
    code, out, err = status(capsys, staging)
    assert "listener: blue 100%, green 0%, as the stack file says" in out


def test_status_shows_a_firing_load_balancer_alarm_on_every_color(capsys, world, staging):
    """The load balancer's 5xx alarm has no color: status shows it in both colors' alarms."""
    world.color("blue", ["1.3.0", "1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=1)
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.5.0", desired=1)
    world.refresh("blue", None)
    world.refresh("green", "Successful", PercentageComplete=100)
    world.load_balancer_alarm("ALARM")
    code, out, err = status(capsys, staging)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("live ")]
    assert len(lines) == 2, out
    for line in lines:
        assert line.endswith(", lb-elb-5xx ALARM"), line


def test_status_reports_drift_when_aws_rolled_the_refresh_back(capsys, world, staging):
    """The file says green 1.5.0; AWS rolled green back to launch-template version 1 (1.4.0)."""
    world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=1)
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.4.0", instances_on="1.4.0", desired=1)
    world.refresh("blue", None)
    world.refresh("green", "RollbackSuccessful")
    code, out, err = status(capsys, staging)
    assert code == 0, err
    drift = [line.strip() for line in out.splitlines() if "drift:" in line]
    assert len(drift) == 1, out
    assert "the stack file says 1.5.0" in drift[0] and "(1.4.0)" in drift[0]
    assert "launch-template version 1" in drift[0] and "RollbackSuccessful" in drift[0]


def test_status_without_credentials_is_the_file_table_and_one_note(
    capsys, staging, no_aws_credentials
):
    code, out, err = status(capsys, staging)
    assert code == 0, err
    notes = [line for line in out.splitlines() if line.startswith("live")]
    assert notes == [
        "live: not read (no AWS credentials found); the table shows the stack file only"
    ]
    assert "COLOR" in out and "next:" in out
