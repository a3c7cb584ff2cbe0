"""ServiceDashboard: one CloudWatch dashboard per stack, both colors side by side.

What an operator watches during a rollout, next to the release command's canary report: for
each color, in two columns (blue left, green right), its requests, its targets' 5xx, its p99
response time and its healthy hosts (``AWS/ApplicationELB`` per ``TargetGroup`` with
``LoadBalancer``, the dimensions the canary analysis reads), then each color's alarms, then the
load balancer's own 5xx and requests beside its alarms. The body is built by
:func:`dashboard_body`, a plain function (the dashboard body structure of the CloudWatch API
reference: ``widgets`` with ``type``, ``x``, ``y``, ``width``, ``height``, ``properties``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

NAMESPACE = "AWS/ApplicationELB"
GRID = 24  # the dashboard's width in grid units
HALF = GRID // 2
HEIGHT = 6
# Per color: (title, metric, statistic), one row each.
COLOR_ROWS: tuple[tuple[str, str, str], ...] = (
    ("requests", "RequestCount", "Sum"),
    ("target 5xx", "HTTPCode_Target_5XX_Count", "Sum"),
    ("p99 response time (s)", "TargetResponseTime", "p99"),
    ("healthy hosts", "HealthyHostCount", "Minimum"),
)
COLUMN = {"blue": 0, "green": HALF}


@dataclass(frozen=True)
class ServiceDashboardArgs:
    service: str
    """Service name, the first part of the dashboard's name."""
    stack: str
    """Short stack name, the second part."""
    region: str
    """Where the metrics are."""
    load_balancer_arn_suffix: pulumi.Input[str]
    """CloudWatch's ``LoadBalancer`` dimension."""
    target_group_arn_suffixes: Mapping[str, pulumi.Input[str]]
    """Color -> CloudWatch's ``TargetGroup`` dimension."""
    alarm_arns: Mapping[str, pulumi.Input[list[str]]]
    """Color -> its alarms' ARNs."""
    load_balancer_alarm_arns: pulumi.Input[list[str]]
    """The load balancer's alarms' ARNs."""


def dashboard_name(service: str, stack: str) -> str:
    return f"{service}-{stack}"


def _metric_widget(
    title: str, region: str, metrics: list[list[Any]], x: int, y: int, width: int = HALF
) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": HEIGHT,
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "period": 60,
            "metrics": metrics,
        },
    }


def _alarm_widget(title: str, arns: Sequence[str], x: int, y: int) -> dict[str, Any]:
    return {
        "type": "alarm",
        "x": x,
        "y": y,
        "width": HALF,
        "height": HEIGHT // 2,
        "properties": {"title": title, "alarms": sorted(arns)},
    }


def dashboard_body(
    region: str,
    load_balancer: str,
    target_groups: Mapping[str, str],
    alarm_arns: Mapping[str, Sequence[str]],
    load_balancer_alarm_arns: Sequence[str],
) -> str:
    """The dashboard's JSON body. Pure: tested without Pulumi."""
    widgets: list[dict[str, Any]] = []
    y = 0
    for title, metric, stat in COLOR_ROWS:
        for color, group in target_groups.items():
            line = [
                NAMESPACE, metric, "TargetGroup", group, "LoadBalancer", load_balancer,
                {"stat": stat, "label": f"{color} {stat}"},
            ]  # fmt: skip
            widgets.append(_metric_widget(f"{color}: {title}", region, [line], COLUMN[color], y))
        y += HEIGHT
    for color in target_groups:
        widgets.append(_alarm_widget(f"{color}: alarms", alarm_arns[color], COLUMN[color], y))
    y += HEIGHT // 2
    balancer = [
        [NAMESPACE, "HTTPCode_ELB_5XX_Count", "LoadBalancer", load_balancer, {"stat": "Sum"}],
        [NAMESPACE, "RequestCount", "LoadBalancer", load_balancer, {"stat": "Sum"}],
    ]
    widgets.append(
        _metric_widget("load balancer: its own 5xx, all requests", region, balancer, 0, y)
    )
    widgets.append(_alarm_widget("load balancer: alarms", load_balancer_alarm_arns, HALF, y))
    return json.dumps({"widgets": widgets}, sort_keys=True)


class ServiceDashboard(pulumi.ComponentResource):
    """The stack's dashboard (``<service>-<stack>``)."""

    def __init__(
        self, name: str, args: ServiceDashboardArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golden-fleet:index:ServiceDashboard", name, None, opts)
        colors = list(args.target_group_arn_suffixes)
        body = pulumi.Output.all(
            args.load_balancer_arn_suffix,
            [args.target_group_arn_suffixes[c] for c in colors],
            [args.alarm_arns[c] for c in colors],
            args.load_balancer_alarm_arns,
        ).apply(
            lambda values: dashboard_body(
                args.region,
                values[0],
                dict(zip(colors, values[1], strict=True)),
                dict(zip(colors, values[2], strict=True)),
                values[3],
            )
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=dashboard_name(args.service, args.stack),
            dashboard_body=body,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.dashboard_name = self.dashboard.dashboard_name
        self.register_outputs({"dashboardName": self.dashboard_name})
