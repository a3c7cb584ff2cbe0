"""The stack's CloudWatch dashboard (components/service_dashboard.py) under the mock engine."""

from __future__ import annotations

import json

import pytest
from harness import run_program

from components.config import COLORS
from components.service_dashboard import COLOR_ROWS, dashboard_body

DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_dashboard_charts_both_colors_and_lists_every_alarm(stack, staging_config, prod_config):
    """One dashboard per stack, child of the service's dashboard component (itself the
    service's child): valid JSON; each color's requests, 5xx, p99 and healthy hosts on its own
    target group (with the load balancer), side by side; every alarm of the stack by ARN."""
    config = {"staging": staging_config, "prod": prod_config}[stack]
    run = run_program(config, stack=stack)
    [dashboard] = run.of_type(DASHBOARD)
    component = run.one("golden-fleet:index:ServiceDashboard", "checkout-dashboard")
    assert component.parent == "checkout" and dashboard.parent == component.name
    assert dashboard.inputs["dashboardName"] == f"checkout-{stack}"
    body = json.loads(dashboard.inputs["dashboardBody"])

    lb = run.one("aws:lb/loadBalancer:LoadBalancer", "checkout-alb").state["arnSuffix"]
    groups = {
        color: run.one("aws:lb/targetGroup:TargetGroup", f"checkout-{color}-tg").state["arnSuffix"]
        for color in COLORS
    }
    charted = {
        (line[1], line[3], line[-1]["stat"], widget["x"])
        for widget in body["widgets"] if widget["type"] == "metric"
        for line in widget["properties"]["metrics"] if line[2] == "TargetGroup"
    }  # fmt: skip
    for color in COLORS:
        x = 0 if color == "blue" else 12
        for _title, metric, stat in COLOR_ROWS:
            assert (metric, groups[color], stat, x) in charted, (dashboard.name, color, metric)
    assert all(
        line[line.index("LoadBalancer") + 1] == lb
        for widget in body["widgets"] if widget["type"] == "metric"
        for line in widget["properties"]["metrics"]
    )  # fmt: skip
    listed = {
        arn for w in body["widgets"] if w["type"] == "alarm" for arn in w["properties"]["alarms"]
    }
    every = {alarm.state["arn"] for alarm in run.of_type(ALARM)}
    assert len(every) == 7 and listed == every, "3 alarms per color and the load balancer's"


def test_widgets_do_not_overlap():
    body = json.loads(
        dashboard_body(
            "eu-west-1", "app/x/1", {"blue": "targetgroup/b/1", "green": "targetgroup/g/2"},
            {"blue": ["arn:b"], "green": ["arn:g"]}, ["arn:lb"],
        )
    )  # fmt: skip
    cells = set()
    for widget in body["widgets"]:
        for dx in range(widget["width"]):
            for dy in range(widget["height"]):
                cell = (widget["x"] + dx, widget["y"] + dy)
                assert cell not in cells, widget["properties"]["title"]
                cells.add(cell)
        assert widget["x"] + widget["width"] <= 24
