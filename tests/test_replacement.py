"""What ``pulumi preview`` will show, proven by running the program on two configs and comparing.

The invariants of an immutable blue/green release:
- an unchanged config changes nothing;
- a version bump on the idle color changes only that color's resources and *replaces* its image;
- the live color is never touched by a release of the other color, nor by a template edit;
- moving traffic, including a full rollback, changes exactly one resource: the listener;
- a color's refresh resource re-runs (is replaced) exactly when its launch-template version or
  its capacity changes, and never on a shift; a version bump never changes what the group
  itself would send to AWS (its launch settings are ignored after create).
"""

from __future__ import annotations

import copy

import pytest
from harness import changed_resources, run_program

COLOR_RESOURCES = (
    "{color}-image",
    "{color}-image-bake",
    "{color}",
    "{color}-lt",
    "{color}-asg",
    "{color}-tg",
    "{color}-role",
    "{color}-profile",
    "{color}-ssm",
    "{color}-cloudwatch-agent",
    "{color}-attach",
    "{color}-refresh",
    "{color}-alarms",
    "{color}-alarms-error-rate",
    "{color}-alarms-unhealthy-hosts",
    "{color}-alarms-p99-latency",
)


def resources_of(color: str) -> set[str]:
    return {f"checkout-{pattern.format(color=color)}" for pattern in COLOR_RESOURCES}


@pytest.fixture(params=["staging", "prod"])
def stack(request, staging_config, prod_config):
    config = {"staging": staging_config, "prod": prod_config}[request.param]
    return request.param, config


def test_unchanged_config_changes_nothing(stack):
    name, config = stack
    assert changed_resources(run_program(config, name), run_program(config, name)) == set()


def test_idle_color_version_bump_replaces_only_its_image(staging_config):
    """Staging, blue live: green 1.5.0 -> 1.6.0 touches green only, and green's bake is replaced."""
    before = run_program(staging_config)
    bumped = copy.deepcopy(staging_config)
    bumped["golden-fleet:fleets"]["green"]["version"] = "1.6.0"
    after = run_program(bumped)

    changed = changed_resources(before, after)
    assert changed, "a version bump must change something"
    # Launch permissions are per version (blue runs another one): green's old version's go,
    # its new version's come, and no other.
    shared = {n for n in changed if n.startswith(("checkout-1.5.0-", "checkout-1.6.0-"))}
    assert shared == {
        f"checkout-{v}-{kind}"
        for v in ("1.5.0", "1.6.0")
        for kind in ("distribution", "launch-222222222222")
    }, shared
    changed -= shared
    assert changed <= resources_of("green"), f"outside green: {changed - resources_of('green')}"
    assert not changed & resources_of("blue"), "the live color was touched"
    assert "checkout-listener" not in changed and "checkout-alb" not in changed
    assert {"checkout-green-image-bake", "checkout-green-lt", "checkout-green-refresh"} <= changed
    assert "checkout-green-asg" not in changed, "only the refresh moves a group to a version"

    bake_before = before.resources["checkout-green-image-bake"]
    bake_after = after.resources["checkout-green-image-bake"]
    assert bake_before.inputs["triggers"] != bake_after.inputs["triggers"]
    assert "triggers" in bake_after.options["replace_on_changes"], (
        "triggers changing must be a replacement, not the re-emitting update"
    )
    assert after.outputs["green"]["amiId"] != before.outputs["green"]["amiId"]
    assert after.outputs["blue"] == before.outputs["blue"]
    lt = after.resources["checkout-green-lt"].inputs
    assert lt["imageId"] == after.outputs["green"]["amiId"]


def test_idle_color_version_bump_in_a_promote_stack(prod_config):
    """Prod, blue live: deploying 1.5.0 to green changes green's template and group only."""
    before = run_program(prod_config, "prod")
    bumped = copy.deepcopy(prod_config)
    bumped["golden-fleet:fleets"]["green"]["version"] = "1.5.0"
    after = run_program(bumped, "prod")
    changed = changed_resources(before, after)
    assert changed == {"checkout-green-lt", "checkout-green-refresh"}, changed
    assert after.outputs["blue"] == before.outputs["blue"]


def test_sharing_edit_does_not_rebake(staging_config):
    """Sharing with one more account adds that account's launch permission on each image the
    colors run and admits it in the key policy; no bake, template or fleet is touched."""
    before = run_program(staging_config)
    edited = copy.deepcopy(staging_config)
    edited["golden-fleet:image"]["shareWithAccounts"].append("333333333333")
    after = run_program(edited)
    changed = changed_resources(before, after)
    assert changed == {
        "checkout-1.4.0-launch-333333333333",
        "checkout-1.5.0-launch-333333333333",
        "checkout-image-key-eu-west-1-key",
    }, changed
    for color in ("blue", "green"):
        bake = after.resources[f"checkout-{color}-image-bake"]
        assert "PULUMI_COMMAND_STDOUT" in bake.inputs["update"]


@pytest.mark.parametrize("weights", [(90, 10), (50, 50), (0, 100)])
def test_shifting_traffic_changes_only_the_listener(staging_config, weights):
    staging_config["golden-fleet:fleets"]["green"]["capacity"]["min"] = 1
    before = run_program(staging_config)
    shifted = copy.deepcopy(staging_config)
    shifted["golden-fleet:traffic"] = dict(zip(("blue", "green"), weights, strict=True))
    after = run_program(shifted)
    assert changed_resources(before, after) == {"checkout-listener"}


def test_rollback_is_one_listener_change(stack):
    """From a 50/50 canary back to all-stable: one resource, whatever the stack."""
    name, config = stack
    canary = copy.deepcopy(config)
    canary["golden-fleet:fleets"]["green"]["version"] = "1.5.0"
    canary["golden-fleet:fleets"]["green"]["capacity"]["min"] = max(
        1, canary["golden-fleet:fleets"]["green"]["capacity"]["min"]
    )
    canary["golden-fleet:traffic"] = {"blue": 50, "green": 50}
    rolled_back = copy.deepcopy(canary)
    rolled_back["golden-fleet:traffic"] = {"blue": 100, "green": 0}
    changed = changed_resources(run_program(canary, name), run_program(rolled_back, name))
    assert changed == {"checkout-listener"}, changed


def test_capacity_change_touches_only_that_colors_group(staging_config):
    before = run_program(staging_config)
    scaled = copy.deepcopy(staging_config)
    scaled["golden-fleet:fleets"]["blue"]["capacity"] = {"min": 2, "desired": 3, "max": 4}
    assert changed_resources(before, run_program(scaled)) == {
        "checkout-blue-asg",
        "checkout-blue-refresh",
    }


def test_refresh_preferences_change_touches_the_refreshes_only(staging_config):
    """Preferences are inputs of the refresh resources (which converge without a new refresh
    when the group already runs its configuration); no group, template or image changes."""
    before = run_program(staging_config)
    edited = copy.deepcopy(staging_config)
    edited["golden-fleet:instanceRefresh"]["minHealthyPercentage"] = 75
    changed = changed_resources(before, run_program(edited))
    assert changed == {"checkout-blue-refresh", "checkout-green-refresh"}, changed
