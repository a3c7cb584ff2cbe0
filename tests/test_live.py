"""Live state: the pure evaluation without AWS, the reads against the local AWS API (moto) with
the instance-refresh calls stubbed (botocore's Stubber)."""

from __future__ import annotations

import pytest
from live_fixtures import SERVICE, STACK

from components.alarm_names import alarm_name_prefix
from components.config import Color
from release import live
from release.live import ColorState, Configuration, ImageFacts, Instance, Refresh


def state(**overrides) -> ColorState:
    base = dict(
        group="checkout-green-asg",
        desired=2,
        template_id="lt-0123",
        template_version="3",
        image_id="ami-new",
        refresh=Refresh("Successful", percentage_complete=100, instances_to_update=0),
        instances=(
            Instance("i-1", "InService", "3"),
            Instance("i-2", "InService", "3"),
        ),
        targets={"i-1": "healthy", "i-2": "healthy"},
    )
    base.update(overrides)
    return ColorState(**base)


# ---------------------------------------------------------------------------------------------
# Pure evaluation
# ---------------------------------------------------------------------------------------------
def test_a_rolled_healthy_group_is_ready_and_has_no_problems():
    assert live.problems(state()) == []


@pytest.mark.parametrize("status", sorted(live.RUNNING))
def test_a_refresh_still_running_is_a_problem(status):
    s = state(refresh=Refresh(status, percentage_complete=40))
    assert any(status in p for p in live.problems(s))


@pytest.mark.parametrize("status", sorted(live.FAILED))
def test_a_finished_refresh_never_blocks_a_group_that_runs_its_version_healthy(status):
    """The refresh that failed was toward another configuration and never saved it (the
    program's refreshes carry a DesiredConfiguration): the group is judged by what it runs."""
    s = state(
        refresh=Refresh(
            status,
            status_reason="alarm checkout-staging-green-error-rate fired",
            desired=Configuration("lt-0123", "4"),
        )
    )
    assert live.problems(s) == []


def test_no_refresh_at_all_is_fine_when_instances_and_targets_are():
    assert live.problems(state(refresh=None)) == []


def test_instances_on_another_version_are_named_with_their_version():
    s = state(instances=(Instance("i-1", "InService", "3"), Instance("i-2", "InService", "2")))
    assert "1 of 2 in-service instances run launch-template version 2, not 3" in live.problems(s)


def test_fewer_healthy_targets_than_desired_is_not_ready():
    s = state(targets={"i-1": "healthy", "i-2": "initial"})
    found = live.problems(s)
    assert "1/2 targets healthy in its target group" in found
    assert any("i-2 initial" in p for p in found)


def test_pending_and_terminating_instances_do_not_count_as_in_service():
    s = state(
        instances=(
            Instance("i-1", "InService", "3"),
            Instance("i-2", "InService", "3"),
            Instance("i-0", "Terminating", "2"),
        )
    )
    assert live.problems(s) == []


def test_desired_zero_is_ready_at_once_whatever_else_is_true():
    s = state(desired=0, instances=(), targets={}, refresh=Refresh("InProgress"))
    assert live.problems(s) == []


def test_progress_line_shows_percentage_instances_checkpoint_and_health():
    s = state(
        refresh=Refresh(
            "InProgress",
            status_reason="Waiting for checkpoint delay.",
            percentage_complete=50,
            instances_to_update=1,
            checkpoints=(50, 100),
            checkpoint_delay=600,
        ),
        instances=(Instance("i-1", "InService", "3"), Instance("i-2", "InService", "2")),
        targets={"i-1": "healthy", "i-2": "healthy"},
    )
    line = live.progress_line(s, "3")
    for part in (
        "refresh InProgress 50%",
        "1 to update",
        "checkpoint 50% reached, delay 600 s",
        "1/2 in service on version 3",
        "2/2 healthy",
    ):
        assert part in line, line


def test_progress_line_names_the_bake_time():
    line = live.progress_line(state(refresh=Refresh("Baking", percentage_complete=100)), "3")
    assert "Baking" in line and "bake time" in line


def test_drift_is_reported_when_the_group_runs_the_previous_image():
    s = state(image_id="ami-old", template_version="2", refresh=Refresh("RollbackSuccessful"))
    line = live.drift("1.5.0", s, ImageFacts(expected_image="ami-new", running_version="1.4.0"))
    assert line is not None
    assert "stack file says 1.5.0 (ami-new)" in line and "ami-old (1.4.0)" in line
    assert "launch-template version 2" in line and "RollbackSuccessful" in line


def test_no_drift_when_the_image_is_the_files_or_a_copy_of_the_same_version():
    assert live.drift("1.5.0", state(), ImageFacts("ami-new", None)) is None
    assert live.drift("1.5.0", state(image_id="ami-copy"), ImageFacts("ami-new", "1.5.0")) is None


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("checkout-1.4.0-20260101T000000Z", "1.4.0"),
        ("checkout-1.5.0-rc.1-20260101T000000Z", "1.5.0-rc.1"),
        ("checkout-1.4.0", None),
        ("other-1.4.0-20260101T000000Z", None),
        ("checkout-1.4.0-20260101T000000Z\n", None),
    ],
)
def test_version_from_image_name_follows_the_name_contract(name, version):
    assert live.version_from_image_name(name, "checkout") == version


# ---------------------------------------------------------------------------------------------
# Reads against the local AWS API
# ---------------------------------------------------------------------------------------------
def test_read_color_finds_the_group_by_tags_and_reports_what_it_runs(world):
    green = world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.5.0")
    world.color("blue", ["1.3.0", "1.4.0"], group_on="1.4.0", instances_on="1.4.0")
    world.set_alarm("green", "error-rate")
    world.set_alarm("green", "p99-latency", "OK")
    world.set_alarm("green", "unhealthy-hosts", "INSUFFICIENT_DATA")
    world.refresh("green", "Successful", PercentageComplete=100, InstancesToUpdate=0)
    s = live.read_color(world.clients, f"acme/golden-fleet/{STACK}", SERVICE, Color.GREEN)
    assert s is not None and s.group == green.group
    assert (s.template_version, s.image_id) == ("2", green.images["1.5.0"])
    assert s.desired == 2 and len(s.in_service) == 2
    assert {i.template_version for i in s.in_service} == {"2"}
    assert s.healthy_targets == 2 and s.target_group_arn == green.target_group_arn
    prefix = alarm_name_prefix(SERVICE, STACK, "green")
    assert s.alarms == {
        f"{prefix}error-rate": "ALARM",
        f"{prefix}p99-latency": "OK",
        f"{prefix}unhealthy-hosts": "INSUFFICIENT_DATA",
    }
    assert live.problems(s) == [f"alarm {prefix}error-rate is in ALARM"], (
        "a firing alarm is the one problem of an otherwise whole color"
    )


def test_read_color_reads_the_load_balancer_alarm_with_the_colors_own(world):
    """The load balancer's 5xx alarm judges every color: read with each color's alarms, shown
    as ``lb-elb-5xx``; another stack's load-balancer alarm is not this stack's."""
    world.color("green", ["1.5.0"], group_on="1.5.0", instances_on="1.5.0")
    world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0")
    world.set_alarm("green", "p99-latency", "INSUFFICIENT_DATA")
    mine = world.load_balancer_alarm("ALARM")
    world.load_balancer_alarm("OK", stack="prod")
    summaries = {}
    for color in (Color.GREEN, Color.BLUE):
        world.refresh(color.value, "Successful", PercentageComplete=100, InstancesToUpdate=0)
        s = live.read_color(world.clients, STACK, SERVICE, color)
        assert s is not None
        assert mine == "checkout-staging-lb-elb-5xx" and s.alarms[mine] == "ALARM", color
        assert len(s.alarms) == 4, s.alarms  # its three, the balancer's one; not prod's
        summaries[color] = live.alarm_summary(s, alarm_name_prefix(SERVICE, STACK, color.value))
    assert summaries[Color.GREEN] == (
        "error-rate OK, p99-latency INSUFFICIENT_DATA, unhealthy-hosts OK, lb-elb-5xx ALARM"
    )
    assert summaries[Color.BLUE].endswith(", lb-elb-5xx ALARM"), summaries[Color.BLUE]


def test_read_color_of_a_stack_without_that_group_is_none(world):
    world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0")
    assert live.read_color(world.clients, "prod", SERVICE, Color.BLUE) is None


def test_rolled_back_group_reports_drift_and_the_version_aws_left(world):
    """The file says 1.5.0; AWS rolled the refresh back to launch-template version 1 (1.4.0)."""
    from harness import load_stack_config, stack_file

    from components.config import parse_stack_config

    cfg = parse_stack_config(load_stack_config(stack_file("staging")))
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.4.0", instances_on="1.4.0")
    world.refresh(
        "green",
        "RollbackSuccessful",
        StatusReason="alarm fired",
        RollbackDetails={"RollbackReason": "Alarm error-rate in ALARM"},
        DesiredConfiguration={
            "LaunchTemplate": {
                "LaunchTemplateId": world.colors["green"].template_id,
                "Version": "2",
            }
        },
    )
    s = live.read_color(world.clients, STACK, SERVICE, Color.GREEN)
    assert s is not None and s.template_version == "1"
    facts = live.image_facts(world.clients, cfg, "1.5.0", s)
    line = live.drift("1.5.0", s, facts)
    assert line is not None and "(1.4.0)" in line and "launch-template version 1" in line
    assert (
        "the latest instance refresh (toward launch-template version 2) was "
        "RollbackSuccessful: Alarm error-rate in ALARM"
    ) in line
    assert live.problems(s) == [], "the group itself is whole: drift is what makes it unfit"


def test_listener_weights_are_read_per_color(world):
    world.color("blue", ["1.4.0"], group_on="1.4.0", instances_on="1.4.0")
    world.color("green", ["1.5.0"], group_on="1.5.0", instances_on="1.5.0")
    world.forward({"blue": 90, "green": 10})
    arns = {Color(c): world.colors[c].target_group_arn for c in ("blue", "green")}
    assert live.listener_weights(world.clients, arns) == {Color.BLUE: 90, Color.GREEN: 10}


def test_aws_errors_become_one_line_live_errors(world):
    world.stubber.add_client_error(
        "describe_instance_refreshes", service_error_code="AccessDenied", service_message="no"
    )
    with pytest.raises(
        live.LiveError,
        match=r"^reading g's instance refreshes: AWS refused "
        r"\(AccessDenied: no\)$",
    ):
        live.latest_refresh(world.clients, "g")


def test_the_latest_refresh_is_the_newest_by_start_time_or_a_pending_one_listed_first(world):
    import datetime

    def at(hour: int) -> datetime.datetime:
        return datetime.datetime(2026, 11, 27, hour, tzinfo=datetime.UTC)

    old = {"InstanceRefreshId": "old", "Status": "Failed", "StartTime": at(5)}
    new = {"InstanceRefreshId": "new", "Status": "InProgress", "StartTime": at(6)}
    pending = {"InstanceRefreshId": "pending", "Status": "Pending"}  # not started: no StartTime
    for listed, expected in (([old, new], "new"), ([pending, new, old], "pending")):
        world.stubber.add_response(
            "describe_instance_refreshes",
            {"InstanceRefreshes": listed},
            {"AutoScalingGroupName": "g"},
        )
        refresh = live.latest_refresh(world.clients, "g")
        assert refresh is not None and refresh.refresh_id == expected, listed
