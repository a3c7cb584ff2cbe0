"""Scaling with traffic: target tracking per color on the real stack files, under the mock
engine, and who owns the desired count."""

from __future__ import annotations

import copy

import pytest
from harness import changed_resources, run_program

from components.config import Capacity, ConfigError, ScalingConfig, parse_stack_config
from components.fleet_scaling import (
    autoscaler_owns_desired,
    group_capacity_settings,
    request_count_label,
)

ASG = "aws:autoscaling/group:Group"
POLICY = "aws:autoscaling/policy:Policy"
TG = "aws:lb/targetGroup:TargetGroup"
ALB = "aws:lb/loadBalancer:LoadBalancer"
COLORS = ("blue", "green")


@pytest.fixture(params=["staging", "prod"])
def stack_run(request, staging_config, prod_config):
    config = {"staging": staging_config, "prod": prod_config}[request.param]
    return request.param, config, run_program(config, stack=request.param)


def _policies(run, color: str) -> dict[str, dict]:
    return {
        p.name.rsplit("-", 1)[1]: p.inputs
        for p in run.of_type(POLICY)
        if p.parent == f"checkout-{color}-scaling"
    }


def test_each_color_tracks_requests_on_its_own_target_group_and_cpu(stack_run):
    """Per color: a request-count policy labelled <this ALB>/<this color's target group> and
    a CPU policy, both on this color's group, targets from config."""
    _, config, run = stack_run
    scaling = config["golden-fleet:scaling"]
    lb_suffix = run.one(ALB, "checkout-alb").state["arnSuffix"]
    labels = set()
    for color in COLORS:
        policies = _policies(run, color)
        assert set(policies) == {"requests", "cpu"}, (color, sorted(policies))
        group = run.one(ASG, f"checkout-{color}-asg").state["name"]
        tg_suffix = run.one(TG, f"checkout-{color}-tg").state["arnSuffix"]
        requests, cpu = policies["requests"], policies["cpu"]
        for policy in (requests, cpu):
            assert policy["autoscalingGroupName"] == group, color
            assert policy["policyType"] == "TargetTrackingScaling", color
        spec = requests["targetTrackingConfiguration"]["predefinedMetricSpecification"]
        assert spec["predefinedMetricType"] == "ALBRequestCountPerTarget"
        assert spec["resourceLabel"] == f"{lb_suffix}/{tg_suffix}", color
        labels.add(spec["resourceLabel"])
        assert (
            requests["targetTrackingConfiguration"]["targetValue"] == (scaling["requestsPerTarget"])
        )
        cpu_spec = cpu["targetTrackingConfiguration"]["predefinedMetricSpecification"]
        assert cpu_spec == {"predefinedMetricType": "ASGAverageCPUUtilization"}
        assert cpu["targetTrackingConfiguration"]["targetValue"] == scaling["cpuPercent"]
    assert len(labels) == 2, "each color must count its own target group's requests"


def test_autoscaler_owns_desired_once_scaling_is_on(stack_run):
    """A color with instances: desired is the create-time value only (ignore_changes), and the
    provider's exact capacity wait is off, the refresh resource being the gate; min and max
    stay the stack file's."""
    _, config, run = stack_run
    for color in COLORS:
        capacity = config["golden-fleet:fleets"][color]["capacity"]
        group = run.one(ASG, f"checkout-{color}-asg")
        assert capacity["desired"] > 0
        assert group.options["ignore_changes"] == [
            "launchTemplate",
            "mixedInstancesPolicy",
            "desiredCapacity",
        ], color
        assert (group.inputs["minSize"], group.inputs["maxSize"]) == (
            capacity["min"],
            capacity["max"],
        ), color
        assert group.inputs["desiredCapacity"] == capacity["desired"], "the create-time count"
        assert "waitForElbCapacity" not in group.inputs, color
        assert group.inputs["waitForCapacityTimeout"] == "0", color
        refresh = run.one("command:local:Command", f"checkout-{color}-refresh")
        assert f"checkout-{color}-asg" in refresh.options["depends_on"]


def test_a_cold_color_is_sized_by_the_program(staging_config):
    """desired 0 (finish with cold standby): the program sends 0 itself, since a color without
    traffic gives the autoscaler no metric to scale in on; no exact-wait hazard at 0."""
    staging_config["golden-fleet:fleets"]["green"]["capacity"] = {"min": 0, "desired": 0, "max": 2}
    run = run_program(staging_config)
    green = run.one(ASG, "checkout-green-asg")
    assert green.options["ignore_changes"] == ["launchTemplate", "mixedInstancesPolicy"]
    assert green.inputs["desiredCapacity"] == 0 and green.inputs["waitForElbCapacity"] == 0
    assert run.one(ASG, "checkout-blue-asg").options["ignore_changes"] == [
        "launchTemplate",
        "mixedInstancesPolicy",
        "desiredCapacity",
    ]
    assert set(_policies(run, "green")) == {"requests", "cpu"}, "policies stay; max is kept"


def test_scaling_off_keeps_fixed_capacity(staging_config):
    staging_config["golden-fleet:scaling"] = {"enabled": False}
    run = run_program(staging_config)
    assert not run.of_type(POLICY)
    for color in COLORS:
        group = run.one(ASG, f"checkout-{color}-asg")
        assert group.options["ignore_changes"] == ["launchTemplate", "mixedInstancesPolicy"]
        assert (
            group.inputs["waitForElbCapacity"]
            == (staging_config["golden-fleet:fleets"][color]["capacity"]["desired"])
        )


def test_new_targets_touch_only_the_policies(stack_run):
    """A changed target updates the four policies and nothing else."""
    stack, config, before = stack_run
    edited = copy.deepcopy(config)
    edited["golden-fleet:scaling"]["requestsPerTarget"] += 1
    edited["golden-fleet:scaling"]["cpuPercent"] += 5
    after = run_program(edited, stack=stack)
    assert changed_resources(before, after) == {
        f"checkout-{c}-scaling-{k}" for c in COLORS for k in ("requests", "cpu")
    }


def test_shift_and_bump_leave_the_scaling_policies_alone(staging_config):
    """Shift: only the listener. Bump of the idle color: no policy of either color changes."""
    before = run_program(staging_config)
    shifted = copy.deepcopy(staging_config)
    shifted["golden-fleet:traffic"] = {"blue": 0, "green": 100}
    assert changed_resources(before, run_program(shifted)) == {"checkout-listener"}
    bumped = copy.deepcopy(staging_config)
    bumped["golden-fleet:fleets"]["green"]["version"] = "1.6.0"
    changed = changed_resources(before, run_program(bumped))
    assert not {n for n in changed if "scaling" in n}, changed
    assert not {n for n in changed if n.startswith("checkout-blue")}, changed


# --- pure ----------------------------------------------------------------------------------
def test_request_count_label_joins_the_two_suffixes_and_refuses_anything_else():
    lb, tg = "app/checkout-alb/0123456789abcdef", "targetgroup/checkout-blue-tg/0123abcd"
    assert request_count_label(lb, tg) == f"{lb}/{tg}"
    for bad_lb, bad_tg in (
        (f"{lb}\n", tg),
        (lb, f"{tg}\n"),
        ("net/x/0a", tg),
        (lb, "targetgroup/x/0a/extra"),
        ("arn:aws:" + lb, tg),
    ):
        with pytest.raises(ValueError, match="ARN suffix"):
            request_count_label(bad_lb, bad_tg)


@pytest.mark.parametrize(
    ("enabled", "capacity", "owned"),
    [
        (True, (1, 1, 2), True),
        (True, (0, 0, 2), False),
        (False, (1, 1, 2), False),
        (True, (2, 3, 3), True),
    ],
)
def test_who_owns_desired(enabled, capacity, owned):
    cap = Capacity(min=capacity[0], desired=capacity[1], max=capacity[2])
    scaling = ScalingConfig(enabled=enabled)
    assert autoscaler_owns_desired(scaling, cap) is owned
    wait, ignored = group_capacity_settings(cap, scaling, "900s")
    assert (ignored == ["desiredCapacity"]) is owned
    assert wait["wait_for_capacity_timeout"] == ("0" if owned else "900s")
    assert ("wait_for_elb_capacity" in wait) is not owned


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ({"requestsPerTarget": 0}, "requestsPerTarget"),
        ({"requestsPerTarget": 1_000_001}, "requestsPerTarget"),
        ({"requestsPerTarget": 500.0}, "requestsPerTarget"),
        ({"cpuPercent": 95}, "cpuPercent"),
        ({"cpuPercent": 5}, "cpuPercent"),
        ({"cpuPercent": True}, "cpuPercent"),
        ({"enabled": "true"}, "enabled"),
        ({"target": 1}, "target"),
    ],
)
def test_bad_scaling_settings_are_refused_by_key(staging_config, value, key):
    staging_config["golden-fleet:scaling"] = value
    with pytest.raises(ConfigError, match=rf"golden-fleet:scaling\.{key}: "):
        parse_stack_config(staging_config)
