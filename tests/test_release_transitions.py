"""The release steps as pure functions on a plain config dict: no files, no AWS, no Pulumi."""

from __future__ import annotations

import pytest

from components.config import Color, parse_stack_config
from release.transitions import (
    BakeCheck,
    BakeStatus,
    Plan,
    ReleaseError,
    apply_plan,
    deploy,
    finish,
    finish_needs_shift,
    next_step,
    render_table,
    rollback,
    shift,
    status_rows,
    validate_plan,
)


def step(config: dict, plan: Plan) -> dict:
    """Apply ``plan`` to ``config`` (validated first, as the command does) and return it."""
    validate_plan(config, plan)
    apply_plan(config, plan)
    return config


def cfg(config: dict):
    return parse_stack_config(config)


def test_deploy_puts_the_version_on_the_idle_color_only(staging_config):
    """deploy changes the idle color's version and nothing that takes traffic."""
    plan = deploy(cfg(staging_config), "staging", "1.6.0")
    assert {c.path for c in plan.changes} == {("golden-fleet:fleets", "green", "version")}
    after = cfg(step(staging_config, plan))
    assert after.fleets[Color.GREEN].version == "1.6.0"
    assert after.fleets[Color.BLUE].version == "1.4.0"
    assert (after.traffic.blue, after.traffic.green) == (100, 0)


@pytest.mark.parametrize("version", ["latest", "1.6", "1.6.0; rm -rf /", "v1.6.0", "1.6.0+b1"])
def test_deploy_refuses_an_invalid_version(staging_config, version):
    with pytest.raises(ReleaseError, match="not an immutable semantic version"):
        deploy(cfg(staging_config), "staging", version)


def test_deploy_refuses_a_color_that_takes_traffic(staging_config):
    """The idle color must be at weight 0; the message says how to get there."""
    staging_config["golden-fleet:traffic"] = {"blue": 90, "green": 10}
    with pytest.raises(ReleaseError, match=r"green still takes 10% — shift to 0 .* or finish"):
        deploy(cfg(staging_config), "staging", "1.6.0")


def test_deploy_refuses_the_version_already_there(staging_config):
    """Green already runs 1.5.0 with capacity: nothing to deploy, shift instead."""
    with pytest.raises(ReleaseError, match=r"green already runs 1.5.0 .* shift traffic to it"):
        deploy(cfg(staging_config), "staging", "1.5.0")


def test_deploy_refuses_the_stable_version(staging_config):
    with pytest.raises(ReleaseError, match=r"blue \(stable\) already serves 1.4.0"):
        deploy(cfg(staging_config), "staging", "1.4.0")


def test_deploy_restores_a_cold_colors_capacity(staging_config):
    """A cold idle color gets the stable color's capacity so it can take traffic later."""
    staging_config["golden-fleet:fleets"]["green"]["capacity"] = {"min": 0, "desired": 0, "max": 2}
    plan = deploy(cfg(staging_config), "staging", "1.6.0")
    assert any("was cold (0/0/2)" in note and "1/1/2" in note for note in plan.notes), plan.notes
    after = cfg(step(staging_config, plan))
    assert after.fleets[Color.GREEN].capacity == after.fleets[Color.BLUE].capacity


def test_deploy_of_the_same_version_to_a_cold_color_rewarms_it(staging_config):
    """After a cold finish, going back to the old version restores its capacity."""
    staging_config["golden-fleet:fleets"]["green"]["capacity"] = {"min": 0, "desired": 0, "max": 2}
    plan = deploy(cfg(staging_config), "staging", "1.5.0")
    paths = {c.path[-1] for c in plan.changes}
    assert paths == {"min", "desired", "max"}, plan.changes


def test_deploy_in_a_promote_stack_refuses_an_unbaked_version(prod_config):
    missing = BakeCheck(BakeStatus.MISSING, "checkout-1.5.0-* owned by 111111111111")
    with pytest.raises(ReleaseError, match=r"1.5.0 was never baked: no image checkout-1.5.0-\*"):
        deploy(cfg(prod_config), "prod", "1.5.0", missing)


def test_deploy_warns_when_the_image_could_not_be_checked(prod_config):
    """Unknown is not missing: the step goes ahead and says what it could not check."""
    unknown = BakeCheck(BakeStatus.UNKNOWN, "no AWS credentials found")
    plan = deploy(cfg(prod_config), "prod", "1.5.0", unknown)
    assert plan.changes
    assert any("could not check" in w and "no AWS credentials" in w for w in plan.warnings)


def test_deploy_pins_a_derived_stable_color(staging_config):
    """Without release.stable the first edit writes it, so a 60/40 shift cannot flip it."""
    del staging_config["golden-fleet:release"]
    plan = deploy(cfg(staging_config), "staging", "1.6.0")
    assert step(staging_config, plan)["golden-fleet:release"]["stable"] == "blue"


def test_shift_sets_both_weights(staging_config):
    after = step(staging_config, shift(cfg(staging_config), "staging", 10))
    assert after["golden-fleet:traffic"] == {"blue": 90, "green": 10}


def test_shift_refuses_a_color_without_capacity(staging_config):
    staging_config["golden-fleet:fleets"]["green"]["capacity"] = {"min": 0, "desired": 0, "max": 2}
    with pytest.raises(ReleaseError, match=r"green has no capacity \(0/0/2\) — deploy a version"):
        shift(cfg(staging_config), "staging", 10)


def test_shift_refuses_a_color_that_was_never_deployed(prod_config):
    """Prod's green runs blue's version: there is nothing new to send traffic to."""
    with pytest.raises(ReleaseError, match=r"green runs the stable version 1.4.0"):
        shift(cfg(prod_config), "prod", 10)


@pytest.mark.parametrize("percent", [-1, 101])
def test_shift_refuses_a_bad_percentage(staging_config, percent):
    with pytest.raises(ReleaseError, match="not a percentage"):
        shift(cfg(staging_config), "staging", percent)


def test_shift_to_the_current_weight_changes_nothing(staging_config):
    assert shift(cfg(staging_config), "staging", 0).is_noop


def test_rollback_only_touches_traffic(staging_config):
    """Rollback is one edit of the traffic key: one listener change."""
    step(staging_config, shift(cfg(staging_config), "staging", 50))
    plan = rollback(cfg(staging_config), "staging")
    assert {c.path[0] for c in plan.changes} == {"golden-fleet:traffic"}
    assert step(staging_config, plan)["golden-fleet:traffic"] == {"blue": 100, "green": 0}


def test_rollback_with_nothing_to_roll_back_is_a_noop(staging_config):
    plan = rollback(cfg(staging_config), "staging")
    assert plan.is_noop and "nothing to roll back" in plan.summary


def test_finish_cold_makes_the_new_color_stable_and_scales_the_old_to_zero(staging_config):
    """standby: cold -> the retired color keeps only its max; rollback cost is stated."""
    step(staging_config, shift(cfg(staging_config), "staging", 100))
    plan = finish(cfg(staging_config), "staging")
    after = cfg(step(staging_config, plan))
    assert after.stable_color is Color.GREEN
    assert (after.traffic.blue, after.traffic.green) == (0, 100)
    blue = after.fleets[Color.BLUE].capacity
    assert (blue.min, blue.desired, blue.max) == (0, 0, 2)
    assert "boot and pass health checks" in plan.undo and "deploy staging 1.4.0" in plan.undo


def test_finish_warm_keeps_the_old_colors_capacity(prod_config):
    prod_config["golden-fleet:fleets"]["green"]["version"] = "1.5.0"
    prod_config["golden-fleet:traffic"] = {"blue": 0, "green": 100}
    plan = finish(cfg(prod_config), "prod")
    assert not any(c.path[0] == "golden-fleet:fleets" for c in plan.changes), plan.changes
    after = cfg(step(prod_config, plan))
    assert after.fleets[Color.BLUE].capacity.desired == 3
    assert "one listener change, seconds" in plan.undo


@pytest.mark.parametrize("percent", [10, 50, 99])
def test_finish_never_changes_weights_and_capacity_in_one_edit(staging_config, percent):
    """Below 100 % finish refuses (shift and apply first); at 100 % its plan has no weight."""
    step(staging_config, shift(cfg(staging_config), "staging", percent))
    with pytest.raises(
        ReleaseError,
        match=rf"green takes {percent}%, not 100% — .*shift "
        r"staging 100.*finish staging --apply",
    ):
        finish(cfg(staging_config), "staging")
    assert finish_needs_shift(cfg(staging_config))
    step(staging_config, shift(cfg(staging_config), "staging", 100))
    plan = finish(cfg(staging_config), "staging")
    touched = {c.path[0] for c in plan.changes}
    assert "golden-fleet:traffic" not in touched, plan.changes
    assert "golden-fleet:fleets" in touched  # cold standby: the scale-down, alone
    assert not finish_needs_shift(cfg(staging_config))


def test_finish_refuses_when_the_new_color_takes_no_traffic(staging_config):
    with pytest.raises(ReleaseError, match=r"nothing to finish: green takes no traffic"):
        finish(cfg(staging_config), "staging")


def test_next_release_goes_to_the_other_color(staging_config):
    """After finish, green is stable, so the next deploy targets blue (cold: re-warmed)."""
    step(staging_config, shift(cfg(staging_config), "staging", 100))
    step(staging_config, finish(cfg(staging_config), "staging"))
    plan = deploy(cfg(staging_config), "staging", "1.6.0")
    after = cfg(step(staging_config, plan))
    assert after.fleets[Color.BLUE].version == "1.6.0"
    assert after.fleets[Color.BLUE].capacity.min == 1


def test_status_table_and_next_step(staging_config):
    config = cfg(step(staging_config, shift(cfg(staging_config), "staging", 10)))
    table = render_table(status_rows(config, {Color.GREEN: "ami-0123456789abcdef0"}))
    lines = table.splitlines()
    assert lines[0].split() == ["COLOR", "VERSION", "AMI", "WEIGHT", "CAPACITY", "STATE"]
    assert lines[1].split() == ["blue", "1.4.0", "-", "90%", "1/1/2", "live,", "stable"]
    assert lines[2].split() == ["green", "1.5.0", "ami-0123456789abcdef0", "10%", "1/1/2", "live"]
    assert "shift staging 50" in next_step(config, "staging")


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"blue": 100, "green": 0}, "shift staging 10"),
        ({"blue": 0, "green": 100}, "finish staging"),
    ],
)
def test_next_step_follows_the_release(staging_config, weights, expected):
    staging_config["golden-fleet:traffic"] = weights
    assert expected in next_step(cfg(staging_config), "staging")


def test_next_step_without_a_release_in_progress(prod_config):
    assert "deploy prod VERSION" in next_step(cfg(prod_config), "prod")
