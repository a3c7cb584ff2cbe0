"""The health gate inside the program, on the real stack files and on a mid-release edit.

Invariants, read from what the mock engine registers:
- the weighted listener depends on both colors' refresh resources, each on its group, so in one
  ``pulumi up`` weights move only after both colors are refreshed and healthy;
- each group waits for exactly ``desired`` healthy targets, and its target group is in use
  (an attachment listener no client can reach) before it waits;
- a group never receives a launch-template version after create: the provider has no
  ``instance_refresh`` to run and every launch setting a release changes is ignored, so only the
  refresh resource's ``DesiredConfiguration`` moves a group to a new version;
- each color's refresh is stopped by exactly its own color's alarms (and the load balancer's);
- the refresh resource runs the project's refresh module with its spec on standard input,
  written the same on every machine, and re-runs exactly when the color's template version,
  instance types or capacity change.
"""

from __future__ import annotations

import copy
import json
import shlex
import sys

import pytest
from harness import PROJECT_ROOT, changed_resources, run_program

from components.alarm_names import ALARM_KINDS, alarm_name
from components.blue_green_service import ATTACHMENT_PORTS, HTTP_PORT, HTTPS_PORT
from components.config import parse_stack_config
from components.fleet import LAUNCH_SETTINGS
from components.refresh_spec import parse_spec

ASG = "aws:autoscaling/group:Group"
TG = "aws:lb/targetGroup:TargetGroup"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
LISTENER = "aws:lb/listener:Listener"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMMAND = "command:local:Command"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
COLORS = ("blue", "green")


def mid_release(config: dict) -> dict:
    """One edit that bumps the idle color, gives it the live color's capacity and splits 50/50."""
    edited = copy.deepcopy(config)
    fleets = edited["golden-fleet:fleets"]
    fleets["green"]["version"] = "1.6.0"
    fleets["green"]["capacity"] = dict(fleets["blue"]["capacity"])
    edited["golden-fleet:traffic"] = {"blue": 50, "green": 50}
    return edited


@pytest.fixture(params=["staging", "prod", "staging-mid-release", "prod-mid-release"])
def gated(request, staging_config, prod_config):
    stack, _, variant = request.param.partition("-")
    config = {"staging": staging_config, "prod": prod_config}[stack]
    if variant:
        config = mid_release(config)
    return stack, config, run_program(config, stack=stack)


def refresh_name(color: str) -> str:
    return f"checkout-{color}-refresh"


def refresh_spec(run, color: str) -> dict:
    return json.loads(run.one(COMMAND, refresh_name(color)).inputs["stdin"])


def test_listener_depends_on_both_refreshes_and_each_refresh_on_its_group(gated):
    """The dependency graph the engine sees: listener -> both refreshes -> each its own group."""
    _, _, run = gated
    listener = run.one(LISTENER, "checkout-listener")
    assert listener.options["depends_on"] == [refresh_name(c) for c in COLORS], listener.name
    for color in COLORS:
        refresh = run.one(COMMAND, refresh_name(color))
        assert refresh.parent == f"checkout-{color}", "the refresh is a child of its Fleet"
        assert refresh.options["depends_on"] == [f"checkout-{color}-asg"], refresh.name
        group = run.one(ASG, f"checkout-{color}-asg")
        assert group.options["depends_on"] == sorted(
            [f"checkout-{color}-alarms", f"checkout-{color}-attach"]
        ), group.name


def test_the_provider_never_refreshes_nor_saves_a_new_version_on_a_group(gated):
    """No ``instance_refresh`` block (the provider would start its own refresh, without a desired
    configuration), and both launch settings ignored after create: the provider sends a changed
    ``launch_template``/``mixed_instances_policy`` whole with UpdateAutoScalingGroup
    (terraform-provider-aws resourceGroupUpdate), which AWS's rollback would then restore."""
    _, _, run = gated
    for color in COLORS:
        group = run.one(ASG, f"checkout-{color}-asg")
        assert "instanceRefresh" not in group.inputs, group.name
        assert set(LAUNCH_SETTINGS) <= set(group.options["ignore_changes"]), group.name


def _group_inputs_reaching_aws(before, after) -> dict[str, list[str]]:
    """Per group, the inputs that differ between two runs and that the group does not ignore."""
    reaching = {}
    for color in COLORS:
        group = f"checkout-{color}-asg"
        old, new = before.resources[group].inputs, after.resources[group].inputs
        differing = {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}
        ignored = set(after.resources[group].options["ignore_changes"])
        reaching[group] = sorted(differing - ignored)
    return reaching


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_version_bump_reaches_aws_only_through_the_refresh_spec(
    stack, staging_config, prod_config
):
    """Bump green's version: no group input that the group does not ignore differs; the new
    version is in green's refresh spec only, and blue's refresh spec is unchanged."""
    config = {"staging": staging_config, "prod": prod_config}[stack]
    before = run_program(config, stack=stack)
    bumped = copy.deepcopy(config)
    bumped["golden-fleet:fleets"]["green"]["version"] = "9.1.0"
    after = run_program(bumped, stack=stack)
    assert _group_inputs_reaching_aws(before, after) == {f"checkout-{c}-asg": [] for c in COLORS}
    old_spec, new_spec = refresh_spec(before, "green"), refresh_spec(after, "green")
    assert old_spec["launchTemplate"]["version"] != new_spec["launchTemplate"]["version"]
    assert new_spec["launchTemplate"]["version"] == str(
        int(after.one(LT, "checkout-green-lt").state["latestVersion"])
    )
    assert refresh_spec(before, "blue") == refresh_spec(after, "blue")


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_new_instance_types_reach_aws_only_through_the_refresh_specs(
    stack, staging_config, prod_config
):
    """Reorder (or add) instance types: the groups' mixed-instances policy or template is
    ignored, and each refresh spec carries the new types for a refresh to apply."""
    config = {"staging": staging_config, "prod": prod_config}[stack]
    before = run_program(config, stack=stack)
    edited = copy.deepcopy(config)
    types = edited["golden-fleet:service"]["instanceTypes"]
    types[:] = [*types[1:], types[0]] if len(types) > 1 else [types[0], "m6a.large"]
    after = run_program(edited, stack=stack)
    assert _group_inputs_reaching_aws(before, after) == {f"checkout-{c}-asg": [] for c in COLORS}
    for color in COLORS:
        assert refresh_spec(after, color)["instanceTypes"] == types, color


def test_refresh_spec_names_its_own_group_template_version_and_target_group(gated):
    """The spec on the refresh's standard input names this color's group, target group, launch
    template and current version, the stack's instance types and the refresh timeout."""
    _, config, run = gated
    cfg = parse_stack_config(config)
    for color in COLORS:
        spec = refresh_spec(run, color)
        assert spec["region"] == config["aws:region"]
        assert spec["group"] == run.one(ASG, f"checkout-{color}-asg").state["name"]
        assert spec["targetGroupArn"] == run.one(TG, f"checkout-{color}-tg").state["arn"]
        template = run.one(LT, f"checkout-{color}-lt").state
        assert spec["launchTemplate"] == {
            "id": template["id"],
            "version": str(int(template["latestVersion"])),
        }
        assert spec["instanceTypes"] == cfg.service.instance_types
        assert spec["timeout"] == cfg.health.refresh_timeout
        argv = shlex.split(run.one(COMMAND, refresh_name(color)).inputs["create"])
        assert argv[1:] == ["-m", "release.refresh"], f"nothing but the module: {argv}"


def test_outputs_say_which_version_each_group_really_saves(gated):
    """``liveLaunchTemplateVersion`` is read from the refresh command's last line (what the
    group saves after it succeeded), beside the version the program asked for."""
    _, _, run = gated
    for color in COLORS:
        asked = run.one(LT, f"checkout-{color}-lt").state["latestVersion"]
        assert run.outputs[color]["launchTemplateVersion"] == asked
        assert run.outputs[color]["liveLaunchTemplateVersion"] == str(int(asked)), color


def test_refresh_reruns_on_triggers_and_does_nothing_on_delete(gated):
    """Triggers are the template version, the instance types and capacity; a change replaces
    (re-runs) the refresh; no update command (which would run instead of create) and no delete
    command."""
    _, config, run = gated
    types = config["golden-fleet:service"]["instanceTypes"]
    for color in COLORS:
        refresh = run.one(COMMAND, refresh_name(color))
        capacity = config["golden-fleet:fleets"][color]["capacity"]
        version = run.one(LT, f"checkout-{color}-lt").state["latestVersion"]
        assert refresh.inputs["triggers"] == [
            version,
            *types,
            capacity["min"],
            capacity["desired"],
            capacity["max"],
        ], refresh.name
        assert "triggers" in refresh.options["replace_on_changes"], refresh.name
        for absent in ("update", "delete", "environment"):
            assert absent not in refresh.inputs, f"{refresh.name} has {absent}"


FIXED_CAPACITY = {"enabled": False}  # golden-fleet:scaling off: the stack file owns desired


def test_groups_wait_for_exactly_desired_healthy_targets(gated):
    """With fixed capacity: wait_for_elb_capacity = desired; the timeout is the configured one,
    never "0" (off). (With scaling on: tests/test_program_scaling.py.)"""
    stack, config, _ = gated
    config = {**config, "golden-fleet:scaling": FIXED_CAPACITY}
    run = run_program(config, stack=stack)
    timeout = parse_stack_config(config).health.capacity_timeout
    for color in COLORS:
        group = run.one(ASG, f"checkout-{color}-asg").inputs
        desired = config["golden-fleet:fleets"][color]["capacity"]["desired"]
        assert group["waitForElbCapacity"] == desired, color
        assert group["waitForCapacityTimeout"] == f"{timeout}s", color


def test_refresh_is_stopped_by_exactly_its_colors_alarms(gated):
    """AlarmSpecification lists this color's alarms, which watch this color's target group on
    this load balancer, and nothing of the other color."""
    stack, _, run = gated
    lb_suffix = run.one("aws:lb/loadBalancer:LoadBalancer", "checkout-alb").state["arnSuffix"]
    for color in COLORS:
        prefs = refresh_spec(run, color)["preferences"]
        expected = [alarm_name("checkout", stack, color, kind) for kind in ALARM_KINDS]
        watched = prefs["AlarmSpecification"]["Alarms"]
        assert watched[: len(expected)] == expected, color
        other = "green" if color == "blue" else "blue"
        assert not [a for a in watched if f"-{other}-" in a], f"{color} watches {other}'s alarms"
        assert prefs["AutoRollback"] is True, "an alarm must roll the refresh back"
        tg_suffix = run.one(TG, f"checkout-{color}-tg").state["arnSuffix"]
        alarms = [a for a in run.of_type(ALARM) if a.parent == f"checkout-{color}-alarms"]
        assert sorted(a.inputs["name"] for a in alarms) == sorted(expected)
        for alarm in alarms:
            i = alarm.inputs
            queries = i.get("metricQueries") or [{"metric": i}]
            for query in queries:
                dimensions = query["metric"]["dimensions"] if "metric" in query else None
                if dimensions is not None:
                    assert dimensions == {"TargetGroup": tg_suffix, "LoadBalancer": lb_suffix}, (
                        alarm.name
                    )
            assert i["treatMissingData"] == "notBreaching", alarm.name
        assert run.outputs[color]["alarmNames"] == expected


def test_target_groups_are_in_use_through_unreachable_attachment_listeners(gated):
    """Each color's attachment listener forwards only to its own target group, on a port that no
    security-group rule opens; the client-facing ports stay 80 and 443. With a certificate it
    is HTTPS on the TLS 1.3 policy, like every other listener of the stack."""
    stack, _, run = gated
    sg = run.one("aws:ec2/securityGroup:SecurityGroup", "checkout-alb-sg").state["id"]
    into_alb = [r.inputs for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == sg]
    assert into_alb, "the load balancer must have ingress rules"
    opened = {port for r in into_alb for port in range(int(r["fromPort"]), int(r["toPort"]) + 1)}
    assert opened <= {HTTP_PORT, HTTPS_PORT}, opened
    https = stack == "prod"
    for color in COLORS:
        attach = run.one(LISTENER, f"checkout-{color}-attach").inputs
        assert attach["port"] == ATTACHMENT_PORTS[color] and attach["port"] not in opened
        if https:
            assert attach["protocol"] == "HTTPS", "a stack with a certificate never serves HTTP"
            assert attach["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-")
        else:
            assert attach["protocol"] == "HTTP"
        [action] = attach["defaultActions"]
        assert action["targetGroupArn"] == run.one(TG, f"checkout-{color}-tg").state["arn"]


def test_mid_release_edit_reruns_only_the_bumped_colors_refresh(staging_config, prod_config):
    """From a cold idle color, bump + capacity + 50/50 in one edit: the bumped color's refresh
    is replaced, the live color's refresh is untouched, and the listener (which changes) waits
    for both."""
    for stack, config in (("staging", staging_config), ("prod", prod_config)):
        config["golden-fleet:scaling"] = FIXED_CAPACITY
        cold = copy.deepcopy(config)
        cold["golden-fleet:fleets"]["green"]["capacity"] = {"min": 0, "desired": 0, "max": 2}
        before = run_program(cold, stack=stack)
        after = run_program(mid_release(cold), stack=stack)
        assert (
            after.resources["checkout-green-asg"].inputs["waitForElbCapacity"]
            == (config["golden-fleet:fleets"]["blue"]["capacity"]["desired"])
        ), "the capacity the edit gives is what the group waits for"
        changed = changed_resources(before, after)
        assert "checkout-green-refresh" in changed, stack
        assert "checkout-blue-refresh" not in changed, stack
        assert "checkout-listener" in changed, stack
        old = before.resources["checkout-green-refresh"].inputs["triggers"]
        new = after.resources["checkout-green-refresh"].inputs["triggers"]
        assert old != new, "a trigger must change, so replace_on_changes re-runs the refresh"


def test_a_shift_touches_only_the_listener(staging_config, prod_config):
    """Weights alone: the listener is the one resource whose inputs change; both refreshes
    and both groups keep identical inputs (no re-run, no diff)."""
    for stack, config in (("staging", staging_config), ("prod", prod_config)):
        before = run_program(config, stack=stack)
        shifted = copy.deepcopy(config)
        shifted["golden-fleet:traffic"] = {"blue": 90, "green": 10}
        assert changed_resources(before, run_program(shifted, stack=stack)) == {
            "checkout-listener"
        }, stack


def test_a_shift_never_reruns_a_refresh(staging_config):
    """Weights alone, onto a color with instances: both refreshes keep identical inputs."""
    staging_config["golden-fleet:fleets"]["green"]["capacity"]["min"] = 1
    before = run_program(staging_config)
    shifted = copy.deepcopy(staging_config)
    shifted["golden-fleet:traffic"] = {"blue": 0, "green": 100}
    after = run_program(shifted)
    for color in COLORS:
        name = refresh_name(color)
        assert before.resources[name].inputs == after.resources[name].inputs, name


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_no_op_preview_shows_no_change(stack, staging_config, prod_config):
    """A preview of the config just applied registers exactly the same inputs everywhere,
    the refreshes included."""
    config = {"staging": staging_config, "prod": prod_config}[stack]
    applied = run_program(config, stack=stack)
    previewed = run_program(config, stack=stack, preview=True)
    assert changed_resources(applied, previewed) == set()


def test_refresh_command_line_is_the_same_on_every_machine(staging_config, monkeypatch):
    """Run from the project's venv, the command line holds no absolute path: the interpreter
    is ``venv/bin/python`` relative to the project, so another checkout, CI or Pulumi
    Deployments compute the same text and a preview shows no diff."""
    monkeypatch.setattr(sys, "executable", str(PROJECT_ROOT / "venv" / "bin" / "python"))
    run = run_program(staging_config)
    for color in COLORS:
        argv = shlex.split(run.one(COMMAND, refresh_name(color)).inputs["create"])
        assert argv[0] == "venv/bin/python", argv
        assert not [a for a in argv if a.startswith("/") or str(PROJECT_ROOT) in a], argv


def test_a_cold_idle_color_waits_for_no_targets(staging_config):
    """desired 0: wait_for_elb_capacity 0 (the provider then checks no targets) and the refresh
    still runs, so a cold color's saved configuration is the file's version before it ever
    scales up, and a scale-down is confirmed before the listener moves."""
    staging_config["golden-fleet:fleets"]["green"]["capacity"] = {"min": 0, "desired": 0, "max": 2}
    run = run_program(staging_config)
    assert run.one(ASG, "checkout-green-asg").inputs["waitForElbCapacity"] == 0
    assert run.one(COMMAND, "checkout-green-refresh").inputs["triggers"][-3:] == [0, 0, 2]


def test_groups_wait_for_desired_not_min_nor_max(staging_config):
    """With min < desired < max the wait follows desired, the number the group launches
    (fixed capacity; with scaling on the autoscaler owns desired and the refresh is the gate)."""
    staging_config["golden-fleet:scaling"] = FIXED_CAPACITY
    staging_config["golden-fleet:fleets"]["blue"]["capacity"] = {"min": 1, "desired": 2, "max": 3}
    run = run_program(staging_config)
    assert run.one(ASG, "checkout-blue-asg").inputs["waitForElbCapacity"] == 2


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_refresh_module_accepts_the_spec_the_program_writes(stack, staging_config, prod_config):
    """Contract with release/refresh.py: its own parser takes each refresh spec as the program
    wrote it (the mock engine's realistic names and ARNs), value for value."""
    config = {"staging": staging_config, "prod": prod_config}[stack]
    run = run_program(config, stack=stack)
    cfg = parse_stack_config(config)
    for color in COLORS:
        text = run.one(COMMAND, refresh_name(color)).inputs["stdin"]
        spec = parse_spec(text)
        assert spec.to_json() == text
        assert spec.group == run.one(ASG, f"checkout-{color}-asg").state["name"]
        assert spec.region == config["aws:region"]
        assert spec.timeout == cfg.health.refresh_timeout
        assert spec.preferences["MinHealthyPercentage"] == (
            cfg.instance_refresh.min_healthy_percentage
        )
        mixed = len(cfg.service.instance_types) > 1
        assert ("MixedInstancesPolicy" in spec.desired_configuration()) is mixed


def test_health_settings_touch_only_the_gate(staging_config):
    """A new refresh timeout re-runs the two refreshes; new alarm settings update those alarms;
    neither touches a group, a template, an image or the listener."""
    before = run_program(staging_config)
    longer = copy.deepcopy(staging_config)
    longer["golden-fleet:health"]["refreshTimeout"] = 2400
    assert changed_resources(before, run_program(longer)) == {refresh_name(c) for c in COLORS}
    stricter = copy.deepcopy(staging_config)
    stricter["golden-fleet:health"]["errorRate"]["thresholdPercent"] = 2
    stricter["golden-fleet:health"]["p99Latency"]["evaluationPeriods"] = 5
    assert changed_resources(before, run_program(stricter)) == {
        f"checkout-{c}-alarms-{kind}" for c in COLORS for kind in ("error-rate", "p99-latency")
    }
