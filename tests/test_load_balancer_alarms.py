"""The load balancer's own alarm: the 502/503/504 the load balancer answers when targets crash,
reset or time out, which no color's alarm can see.

Two layers: the pure definitions and names (no Pulumi runtime), then the real ``__main__.py``
on both stack files under the mock engine: the alarm exists once per stack, on the load
balancer alone, before the Fleets; each Fleet receives its name and waits for it, and each
color's refresh lists it in its AlarmSpecification.
"""

from __future__ import annotations

import copy
import json

import pytest
from harness import changed_resources, run_program

from components import blue_green_service
from components.alarm_names import (
    ALARM_KINDS,
    LOAD_BALANCER_ALARM_KINDS,
    alarm_label,
    alarm_name,
    alarm_name_prefix,
    load_balancer_alarm_name,
    load_balancer_alarm_prefix,
    watched_alarm_prefixes,
)
from components.color_alarms import percent_of_requests
from components.config import HealthConfig
from components.fleet import Fleet
from components.load_balancer_alarms import elb_5xx_expression, load_balancer_alarm_definitions

LB = "app/checkout-alb/fedcba9876543210"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMMAND = "command:local:Command"
COLORS = ("blue", "green")


def definitions(health: HealthConfig | None = None) -> dict[str, dict]:
    return load_balancer_alarm_definitions("checkout", "prod", LB, health or HealthConfig())


# --- names ---------------------------------------------------------------------------------------
def test_the_load_balancer_alarm_is_read_by_its_own_prefix_never_a_colors():
    """``checkout-prod-lb-elb-5xx``: the release command finds it by the stack's load-balancer
    prefix; no color's prefix reads it, and that prefix reads no color's alarm."""
    name = load_balancer_alarm_name("checkout", "prod", "elb-5xx")
    assert name == "checkout-prod-lb-elb-5xx"
    assert name.startswith(load_balancer_alarm_prefix("checkout", "prod"))
    for color in COLORS:
        assert not name.startswith(alarm_name_prefix("checkout", "prod", color)), color
        for kind in ALARM_KINDS:
            own = alarm_name("checkout", "prod", color, kind)
            assert not own.startswith(load_balancer_alarm_prefix("checkout", "prod")), own
        assert watched_alarm_prefixes("checkout", "prod", color) == (
            f"checkout-prod-{color}-",
            "checkout-prod-lb-",
        )
    with pytest.raises(ValueError, match="load balancer's scope, not a color"):
        alarm_name_prefix("checkout", "prod", "lb")
    with pytest.raises(ValueError, match="unknown load-balancer alarm kind 'error-rate'"):
        load_balancer_alarm_name("checkout", "prod", "error-rate")


@pytest.mark.parametrize(
    "name, label",
    [
        ("checkout-prod-green-error-rate", "error-rate"),
        ("checkout-prod-lb-elb-5xx", "lb-elb-5xx"),
        ("checkout-prod-blue-p99-latency", "checkout-prod-blue-p99-latency"),
        ("checkout-staging-lb-elb-5xx", "checkout-staging-lb-elb-5xx"),
    ],
)
def test_alarm_labels_show_the_kind_and_the_load_balancers_scope(name, label):
    """What status prints for an alarm read for green of prod: the kind, ``lb-<kind>`` for the
    stack's load balancer, anything else in full."""
    assert alarm_label(name, alarm_name_prefix("checkout", "prod", "green")) == label


# --- definitions ---------------------------------------------------------------------------------
def test_one_alarm_per_load_balancer_kind_named_by_the_shared_rule():
    defs = definitions()
    assert list(defs) == list(LOAD_BALANCER_ALARM_KINDS) == ["elb-5xx"]
    assert defs["elb-5xx"]["name"] == load_balancer_alarm_name("checkout", "prod", "elb-5xx")


def test_elb_5xx_is_the_balancers_own_5xx_over_its_requests_on_the_balancer_alone():
    """HTTPCode_ELB_5XX_Count (missing = 0) over RequestCount, both summed per period with the
    LoadBalancer dimension and no TargetGroup: that metric has no target-group dimension."""
    health = HealthConfig.model_validate(
        {"loadBalancer5xx": {"thresholdPercent": 0.5, "minRequests": 40}}
    )
    definition = definitions(health)["elb-5xx"]
    queries = {q["id"]: q for q in definition["metric_queries"]}
    metrics = {q["id"]: q["metric"] for q in definition["metric_queries"] if "metric" in q}
    assert {i: m["metric_name"] for i, m in metrics.items()} == {
        "elb_errors": "HTTPCode_ELB_5XX_Count",
        "requests": "RequestCount",
    }
    for metric in metrics.values():
        assert metric["namespace"] == "AWS/ApplicationELB"
        assert metric["dimensions"] == {"LoadBalancer": LB}, "no TargetGroup dimension"
        assert metric["stat"] == "Sum"
    assert [q["id"] for q in definition["metric_queries"] if q["return_data"]] == ["rate"]
    assert (
        queries["rate"]["expression"]
        == elb_5xx_expression(40)
        == ("IF(requests >= 40, 100 * FILL(elb_errors, 0) / requests, 0)")
    )
    assert definition["threshold"] == 0.5
    assert definition["comparison_operator"] == "GreaterThanThreshold"
    assert "metric_name" not in definition and "dimensions" not in definition


def test_elb_5xx_window_comes_from_its_own_key_and_no_data_is_health():
    health = HealthConfig.model_validate(
        {
            "errorRate": {"period": 60, "evaluationPeriods": 3, "datapointsToAlarm": 2},
            "loadBalancer5xx": {"period": 120, "evaluationPeriods": 5, "datapointsToAlarm": 4},
        }
    )
    definition = definitions(health)["elb-5xx"]
    assert {q["metric"]["period"] for q in definition["metric_queries"] if "metric" in q} == {120}
    assert (definition["evaluation_periods"], definition["datapoints_to_alarm"]) == (5, 4)
    assert definition["treat_missing_data"] == "notBreaching"


@pytest.mark.parametrize(
    "counts, expression",
    [
        (("e",), "IF(requests >= 7, 100 * FILL(e, 0) / requests, 0)"),
        (("a", "b"), "IF(requests >= 7, 100 * (FILL(a, 0) + FILL(b, 0)) / requests, 0)"),
    ],
)
def test_percent_of_requests_fills_every_count_and_keeps_the_guard(counts, expression):
    assert percent_of_requests(counts, 7) == expression


def test_percent_of_requests_needs_a_count():
    with pytest.raises(ValueError, match="at least one count"):
        percent_of_requests((), 7)


# --- the program ---------------------------------------------------------------------------------
@pytest.fixture
def fleet_args(monkeypatch) -> dict:
    """The FleetArgs each Fleet is built with, by Fleet name, as BlueGreenService passes them."""
    received: dict = {}

    class RecordingFleet(Fleet):
        def __init__(self, name, args, opts=None):
            received[name] = args
            super().__init__(name, args, opts)

    monkeypatch.setattr(blue_green_service, "Fleet", RecordingFleet)
    return received


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_each_stack_has_one_load_balancer_alarm_that_every_fleet_names_and_waits_for(
    stack, staging_config, prod_config, fleet_args
):
    """On each real stack file: one ``elb-5xx`` alarm, child of the service's load-balancer
    alarms component, on the ALB alone, with the file's thresholds; registered before the
    Fleets; each Fleet receives its name as a shared alarm and depends on it; exported."""
    config = {"staging": staging_config, "prod": prod_config}[stack]
    run = run_program(config, stack=stack)
    name = load_balancer_alarm_name("checkout", stack, "elb-5xx")
    component = run.one("golden-fleet:index:LoadBalancerAlarms", "checkout-lb-alarms")
    assert component.parent == "checkout", "a child of BlueGreenService"
    [alarm] = [a for a in run.of_type(ALARM) if a.inputs["name"] == name]
    assert alarm.name == "checkout-lb-alarms-elb-5xx" and alarm.parent == component.name
    lb_suffix = run.one("aws:lb/loadBalancer:LoadBalancer", "checkout-alb").state["arnSuffix"]
    metrics = [q["metric"] for q in alarm.inputs["metricQueries"] if "metric" in q]
    assert [m["dimensions"] for m in metrics] == [{"LoadBalancer": lb_suffix}] * 2, alarm.name
    written = config["golden-fleet:health"]["loadBalancer5xx"]
    assert alarm.inputs["threshold"] == written["thresholdPercent"]
    [rate] = [q for q in alarm.inputs["metricQueries"] if q.get("returnData")]
    assert f"requests >= {written['minRequests']}" in rate["expression"]
    assert alarm.inputs["treatMissingData"] == "notBreaching"

    order = list(run.resources)
    for color in COLORS:
        fleet = run.one("golden-fleet:index:Fleet", f"checkout-{color}")
        assert order.index(component.name) < order.index(fleet.name), "created before the Fleet"
        assert fleet.options["depends_on"] == [component.name], fleet.name
        assert fleet_args[fleet.name].shared_alarm_names == [name], fleet.name
    assert sorted(fleet_args) == [f"checkout-{color}" for color in COLORS]
    assert run.outputs["loadBalancerAlarmNames"] == [name]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_each_colors_refresh_is_stopped_by_the_load_balancer_alarm_too(
    stack, staging_config, prod_config
):
    """The refresh each Fleet runs lists the load balancer's alarm after the color's own in its
    AlarmSpecification: the balancer's 5xx fail (and roll back) either color's refresh."""
    config = {"staging": staging_config, "prod": prod_config}[stack]
    run = run_program(config, stack=stack)
    for color in COLORS:
        spec = json.loads(run.one(COMMAND, f"checkout-{color}-refresh").inputs["stdin"])
        own = [alarm_name("checkout", stack, color, kind) for kind in ALARM_KINDS]
        assert spec["preferences"]["AlarmSpecification"]["Alarms"] == [
            *own,
            load_balancer_alarm_name("checkout", stack, "elb-5xx"),
        ], color


def test_load_balancer_alarm_settings_touch_only_that_alarm(staging_config):
    """A new loadBalancer5xx threshold or window updates the one alarm and nothing else: no
    color's alarm, group, template or listener."""
    before = run_program(staging_config)
    stricter = copy.deepcopy(staging_config)
    stricter["golden-fleet:health"]["loadBalancer5xx"].update(
        {"thresholdPercent": 0.25, "evaluationPeriods": 5}
    )
    assert changed_resources(before, run_program(stricter)) == {"checkout-lb-alarms-elb-5xx"}
