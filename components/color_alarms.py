"""ColorAlarms: the CloudWatch alarms that judge one color, on that color's target group.

Three alarms per color (kinds and names from :mod:`components.alarm_names`):

- ``error-rate``: the share of the color's requests that failed on its targets, as metric math
  over ``HTTPCode_Target_5XX_Count`` (a target answered 5xx), ``TargetConnectionErrorCount``
  (the load balancer could not open a connection to a target: its service crashed or
  refuses connections) and
  ``RequestCount``;
- ``unhealthy-hosts``: ``UnHealthyHostCount``, targets failing the load balancer's health check;
- ``p99-latency``: the 99th percentile of ``TargetResponseTime``.

Which metric has which dimensions (ELB user guide, "CloudWatch metrics for your Application
Load Balancer"): ``HTTPCode_Target_5XX_Count``, ``TargetConnectionErrorCount``, ``RequestCount``,
``UnHealthyHostCount`` and ``TargetResponseTime`` are published per ``TargetGroup`` (with
``LoadBalancer``), so each can judge one color. The 502, 503 and 504 the load balancer itself
answers when a target crashes, resets the connection or times out are
``HTTPCode_ELB_5XX_Count``, published per ``LoadBalancer`` only: no alarm of a color can see
them, and the stack's load-balancer alarm (:mod:`components.load_balancer_alarms`) watches them
instead.

They serve two readers. The color's Auto Scaling group lists them in its instance refresh's
``alarm_specification``: when one fires during a refresh, AWS fails the refresh and, with
``auto_rollback``, puts the previous launch-template version back (RefreshPreferences,
Amazon EC2 Auto Scaling API reference). The release command reads their states by name prefix
before and while it moves traffic.

A color at weight 0 receives no requests: ALB publishes no ``RequestCount`` then, so the
error-rate and latency series are *missing*, never zero. Every alarm treats missing data as
``notBreaching``: an idle color is not an alarm, and an idle color's refresh is judged by its
health checks (``unhealthy-hosts``) alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.alarm_names import ALARM_KINDS, alarm_name
from components.config import AlarmWindow, HealthConfig

NAMESPACE = "AWS/ApplicationELB"


@dataclass(frozen=True)
class ColorAlarmsArgs:
    service: str
    """Service name, the first part of every alarm name."""
    stack: str
    """Short stack name (``pulumi.get_stack()``), part of every alarm name."""
    color: str
    """``blue`` or ``green``."""
    target_group_arn_suffix: pulumi.Input[str]
    """The color's target group, as CloudWatch's ``TargetGroup`` dimension wants it."""
    load_balancer_arn_suffix: pulumi.Input[str]
    """The load balancer, as CloudWatch's ``LoadBalancer`` dimension wants it."""
    health: HealthConfig
    """Thresholds and evaluation windows."""


def alarm_window(window: AlarmWindow) -> dict[str, Any]:
    """M of N periods, and missing data as health (shared with the load balancer's alarm)."""
    return {
        "evaluation_periods": window.evaluation_periods,
        "datapoints_to_alarm": window.datapoints_to_alarm,
        # An idle color (or balancer) has no requests and so no data: that is health, not an
        # alarm.
        "treat_missing_data": "notBreaching",
    }


def percent_of_requests(counts: tuple[str, ...], min_requests: int) -> str:
    """Metric math: the sum of the ``counts`` (query ids) as a percentage of ``requests``; 0
    below ``min_requests`` so that one error in three requests at a 1 % canary does not roll a
    release back. ALB publishes no error count in a minute without such errors, so each count
    is ``FILL(..., 0)``; without requests the result is missing (IF and FILL: CloudWatch user
    guide, "Metric math syntax and functions")."""
    if not counts:
        raise ValueError("a percentage of requests needs at least one count")
    filled = " + ".join(f"FILL({count}, 0)" for count in counts)
    errors = f"({filled})" if len(counts) > 1 else filled
    return f"IF(requests >= {min_requests}, 100 * {errors} / requests, 0)"


def error_rate_expression(min_requests: int) -> str:
    """The color's failed requests in percent: its targets' 5xx plus the connections the load
    balancer could not make to its targets, over its requests."""
    return percent_of_requests(("errors", "connection_errors"), min_requests)


def alarm_definitions(
    service: str,
    stack: str,
    color: str,
    target_group: pulumi.Input[str],
    load_balancer: pulumi.Input[str],
    health: HealthConfig,
) -> dict[str, dict[str, Any]]:
    """``aws.cloudwatch.MetricAlarm`` arguments per alarm kind. Pure: tested without Pulumi."""
    dimensions = {"TargetGroup": target_group, "LoadBalancer": load_balancer}
    where = f"{service} {color} ({stack})"
    rollback = "A firing alarm fails (and with autoRollback rolls back) this color's refresh."

    def metric(name: str, period: int, stat: str) -> dict[str, Any]:
        return {
            "namespace": NAMESPACE,
            "metric_name": name,
            "dimensions": dimensions,
            "period": period,
            "stat": stat,
        }

    errors = health.error_rate
    unhealthy = health.unhealthy_hosts
    latency = health.p99_latency
    definitions = {
        "error-rate": {
            "alarm_description": (
                f"{where}: more than {errors.threshold_percent}% of requests failed on the "
                "targets, answered 5xx by a target or not connected to one (with at least "
                f"{errors.min_requests} requests a period). " + rollback
            ),
            "comparison_operator": "GreaterThanThreshold",
            "threshold": errors.threshold_percent,
            "metric_queries": [
                {
                    "id": "errors",
                    "metric": metric("HTTPCode_Target_5XX_Count", errors.period, "Sum"),
                    "return_data": False,
                },
                {
                    "id": "connection_errors",
                    "metric": metric("TargetConnectionErrorCount", errors.period, "Sum"),
                    "return_data": False,
                },
                {
                    "id": "requests",
                    "metric": metric("RequestCount", errors.period, "Sum"),
                    "return_data": False,
                },
                {
                    "id": "rate",
                    "expression": error_rate_expression(errors.min_requests),
                    "label": "failed on targets, percent of requests",
                    "return_data": True,
                },
            ],
            **alarm_window(errors),
        },
        "unhealthy-hosts": {
            "alarm_description": (
                f"{where}: {unhealthy.threshold} or more targets failing the load balancer's "
                "health check. " + rollback
            ),
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            "threshold": unhealthy.threshold,
            "namespace": NAMESPACE,
            "metric_name": "UnHealthyHostCount",
            "dimensions": dimensions,
            "period": unhealthy.period,
            "statistic": "Maximum",
            **alarm_window(unhealthy),
        },
        "p99-latency": {
            "alarm_description": (
                f"{where}: p99 target response time above {latency.threshold_seconds} s. "
                + rollback
            ),
            "comparison_operator": "GreaterThanThreshold",
            "threshold": latency.threshold_seconds,
            "namespace": NAMESPACE,
            "metric_name": "TargetResponseTime",
            "dimensions": dimensions,
            "period": latency.period,
            "extended_statistic": "p99",
            # A few requests make no percentile: keep the state rather than flap on them
            # (evaluate_low_sample_count_percentiles, aws.cloudwatch.MetricAlarm).
            "evaluate_low_sample_count_percentiles": "ignore",
            **alarm_window(latency),
        },
    }
    if tuple(definitions) != ALARM_KINDS:
        raise ValueError(f"alarm kinds {tuple(definitions)} differ from {ALARM_KINDS}")
    for kind, definition in definitions.items():
        definition["name"] = alarm_name(service, stack, color, kind)
    return definitions


class ColorAlarms(pulumi.ComponentResource):
    """One color's alarms. ``names`` are plain strings, known before anything is created."""

    names: list[str]
    arns: pulumi.Output[list[str]]
    alarms: list[aws.cloudwatch.MetricAlarm]

    def __init__(
        self, name: str, args: ColorAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golden-fleet:index:ColorAlarms", name, None, opts)
        definitions = alarm_definitions(
            args.service,
            args.stack,
            args.color,
            args.target_group_arn_suffix,
            args.load_balancer_arn_suffix,
            args.health,
        )
        self.alarms = [
            aws.cloudwatch.MetricAlarm(
                f"{name}-{kind}",
                tags={"Color": args.color},
                opts=pulumi.ResourceOptions(parent=self),
                **definition,
            )
            for kind, definition in definitions.items()
        ]
        self.names = [definition["name"] for definition in definitions.values()]
        self.arns = pulumi.Output.all(*(alarm.arn for alarm in self.alarms))
        self.register_outputs({"names": self.names, "arns": self.arns})
