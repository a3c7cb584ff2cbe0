"""The health gate inside the program, on the real stack files and on a mid-release edit.

Invariants, read from what the mock engine registers:
- the weighted listener depends on both colors' rollout waiters, each waiter on its group, so
  in one ``pulumi up`` weights move only after both colors are rolled and healthy;
- each group waits for exactly ``desired`` healthy targets, and its target group is in use
  (an attachment listener no client can reach) before it waits;
- each group's refresh is stopped by exactly its own color's alarms, on its own target group;
- the waiter runs the project's waiter module with names and numbers only, written the same on
  every machine, and re-runs exactly when the color's template version or capacity changes.
"""

from __future__ import annotations

import copy
import shlex
import sys

import pytest
from harness import PROJECT_ROOT, changed_resources, run_program

from components.alarm_names import ALARM_KINDS, alarm_name
from components.blue_green_service import ATTACHMENT_PORTS, HTTP_PORT, HTTPS_PORT
from components.config import parse_stack_config

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


def waiter_argv(run, color: str) -> list[str]:
    return shlex.split(run.one(COMMAND, f"checkout-{color}-rollout-wait").inputs["create"])


def flag(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, f"{name} must appear once in {argv}"
    return argv[argv.index(name) + 1]


def test_listener_depends_on_both_waiters_and_each_waiter_on_its_group(gated):
    """The dependency graph the engine sees: listener -> both waiters -> each its own group."""
    _, _, run = gated
    listener = run.one(LISTENER, "checkout-listener")
    assert listener.options["depends_on"] == [f"checkout-{c}-rollout-wait" for c in COLORS], (
        listener.name
    )
    for color in COLORS:
        waiter = run.one(COMMAND, f"checkout-{color}-rollout-wait")
        assert waiter.parent == f"checkout-{color}", "the waiter is a child of its Fleet"
        assert waiter.options["depends_on"] == [f"checkout-{color}-asg"], waiter.name
        group = run.one(ASG, f"checkout-{color}-asg")
        assert group.options["depends_on"] == sorted(
            [f"checkout-{color}-alarms", f"checkout-{color}-attach"]
        ), group.name


def test_waiter_waits_for_its_own_group_template_version_and_target_group(gated):
    """The waiter names this color's group, target group and current template version."""
    _, config, run = gated
    health = parse_stack_config(config).health
    for color in COLORS:
        argv = waiter_argv(run, color)
        assert argv[1:3] == ["-m", "release.waiter"], argv
        assert flag(argv, "--region") == config["aws:region"]
        assert flag(argv, "--group") == run.one(ASG, f"checkout-{color}-asg").state["name"]
        assert flag(argv, "--target-group-arn") == run.one(TG, f"checkout-{color}-tg").state["arn"]
        version = run.one(LT, f"checkout-{color}-lt").state["latestVersion"]
        assert flag(argv, "--launch-template-version") == str(int(version))
        assert flag(argv, "--timeout") == str(health.refresh_timeout)
        assert len(argv) == 13, f"nothing but the five flags: {argv}"


def test_waiter_reruns_on_triggers_and_does_nothing_on_delete(gated):
    """Triggers are the template version and capacity; a change replaces (re-runs) the waiter;
    no update command (which would run instead of create) and no delete command."""
    _, config, run = gated
    for color in COLORS:
        waiter = run.one(COMMAND, f"checkout-{color}-rollout-wait")
        capacity = config["golden-fleet:fleets"][color]["capacity"]
        version = run.one(LT, f"checkout-{color}-lt").state["latestVersion"]
        assert waiter.inputs["triggers"] == [
            version, capacity["min"], capacity["desired"], capacity["max"]
        ], waiter.name
        assert "triggers" in waiter.options["replace_on_changes"], waiter.name
        for absent in ("update", "delete", "environment", "stdin"):
            assert absent not in waiter.inputs, f"{waiter.name} has {absent}"


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
    """alarm_specification lists this color's three alarms, which watch this color's target
    group on this load balancer, and nothing of the other color."""
    stack, _, run = gated
    lb_suffix = run.one("aws:lb/loadBalancer:LoadBalancer", "checkout-alb").state["arnSuffix"]
    for color in COLORS:
        prefs = run.one(ASG, f"checkout-{color}-asg").inputs["instanceRefresh"]["preferences"]
        expected = [alarm_name("checkout", stack, color, kind) for kind in ALARM_KINDS]
        assert prefs["alarmSpecification"] == {"alarms": expected}, color
        assert prefs["autoRollback"] is True, "an alarm must roll the refresh back"
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


def test_mid_release_edit_reruns_only_the_bumped_colors_waiter(staging_config, prod_config):
    """From a cold idle color, bump + capacity + 50/50 in one edit: the bumped color's waiter
    is replaced, the live color's waiter is untouched, and the listener (which changes) waits
    for both."""
    for stack, config in (("staging", staging_config), ("prod", prod_config)):
        config["golden-fleet:scaling"] = FIXED_CAPACITY
        cold = copy.deepcopy(config)
        cold["golden-fleet:fleets"]["green"]["capacity"] = {"min": 0, "desired": 0, "max": 2}
        before = run_program(cold, stack=stack)
        after = run_program(mid_release(cold), stack=stack)
        assert after.resources["checkout-green-asg"].inputs["waitForElbCapacity"] == (
            config["golden-fleet:fleets"]["blue"]["capacity"]["desired"]
        ), "the capacity the edit gives is what the group waits for"
        changed = changed_resources(before, after)
        assert "checkout-green-rollout-wait" in changed, stack
        assert "checkout-blue-rollout-wait" not in changed, stack
        assert "checkout-listener" in changed, stack
        old = before.resources["checkout-green-rollout-wait"].inputs["triggers"]
        new = after.resources["checkout-green-rollout-wait"].inputs["triggers"]
        assert old != new, "a trigger must change, so replace_on_changes re-runs the waiter"


def test_a_shift_never_reruns_a_waiter(staging_config):
    """Weights alone: both waiters keep identical inputs (no re-run, no diff)."""
    staging_config["golden-fleet:fleets"]["green"]["capacity"]["min"] = 1
    before = run_program(staging_config)
    shifted = copy.deepcopy(staging_config)
    shifted["golden-fleet:traffic"] = {"blue": 0, "green": 100}
    after = run_program(shifted)
    for color in COLORS:
        name = f"checkout-{color}-rollout-wait"
        assert before.resources[name].inputs == after.resources[name].inputs, name


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_no_op_preview_shows_no_change(stack, staging_config, prod_config):
    """A preview of the config just applied registers exactly the same inputs everywhere,
    the waiters included."""
    config = {"staging": staging_config, "prod": prod_config}[stack]
    applied = run_program(config, stack=stack)
    previewed = run_program(config, stack=stack, preview=True)
    assert changed_resources(applied, previewed) == set()


def test_waiter_command_line_is_the_same_on_every_machine(staging_config, monkeypatch):
    """Run from the project's venv, the command line holds no absolute path: the interpreter
    is ``venv/bin/python`` relative to the project, so another checkout, CI or Pulumi
    Deployments compute the same text and a preview shows no diff."""
    monkeypatch.setattr(sys, "executable", str(PROJECT_ROOT / "venv" / "bin" / "python"))
    run = run_program(staging_config)
    for color in COLORS:
        argv = waiter_argv(run, color)
        assert argv[0] == "venv/bin/python", argv
        assert not [a for a in argv if a.startswith("/") or str(PROJECT_ROOT) in a], argv


def test_a_cold_idle_color_waits_for_no_targets(staging_config):
    """desired 0: wait_for_elb_capacity 0 (the provider then checks no targets) and the waiter
    still runs, so a scale-down is also confirmed before the listener moves."""
    staging_config["golden-fleet:fleets"]["green"]["capacity"] = {"min": 0, "desired": 0, "max": 2}
    run = run_program(staging_config)
    assert run.one(ASG, "checkout-green-asg").inputs["waitForElbCapacity"] == 0
    assert run.one(COMMAND, "checkout-green-rollout-wait").inputs["triggers"][1:] == [0, 0, 2]


def test_groups_wait_for_desired_not_min_nor_max(staging_config):
    """With min < desired < max the wait follows desired, the number the group launches
    (fixed capacity; with scaling on the autoscaler owns desired and the waiter is the gate)."""
    staging_config["golden-fleet:scaling"] = FIXED_CAPACITY
    staging_config["golden-fleet:fleets"]["blue"]["capacity"] = {"min": 1, "desired": 2, "max": 3}
    run = run_program(staging_config)
    assert run.one(ASG, "checkout-blue-asg").inputs["waitForElbCapacity"] == 2


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_waiter_module_accepts_the_command_line_the_program_writes(stack, staging_config,
                                                                   prod_config):
    """Contract with release/waiter.py: its own parser takes each waiter's arguments as the
    program wrote them (the mock engine's realistic names and ARNs), value for value."""
    from release.waiter import build_parser

    config = {"staging": staging_config, "prod": prod_config}[stack]
    run = run_program(config, stack=stack)
    for color in COLORS:
        argv = waiter_argv(run, color)
        parsed = build_parser().parse_args(argv[3:])
        assert parsed.group == flag(argv, "--group")
        assert parsed.target_group_arn == flag(argv, "--target-group-arn")
        assert str(parsed.launch_template_version) == flag(argv, "--launch-template-version")
        assert parsed.region == config["aws:region"]
        assert parsed.timeout == parse_stack_config(config).health.refresh_timeout


def test_health_settings_touch_only_the_gate(staging_config):
    """A new refresh timeout re-runs the two waiters; new alarm settings update those alarms;
    neither touches a group, a template, an image or the listener."""
    before = run_program(staging_config)
    longer = copy.deepcopy(staging_config)
    longer["golden-fleet:health"]["refreshTimeout"] = 2400
    assert changed_resources(before, run_program(longer)) == {
        f"checkout-{c}-rollout-wait" for c in COLORS}
    stricter = copy.deepcopy(staging_config)
    stricter["golden-fleet:health"]["errorRate"]["thresholdPercent"] = 2
    stricter["golden-fleet:health"]["p99Latency"]["evaluationPeriods"] = 5
    assert changed_resources(before, run_program(stricter)) == {
        f"checkout-{c}-alarms-{kind}" for c in COLORS for kind in ("error-rate", "p99-latency")}
