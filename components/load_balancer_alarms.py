"""LoadBalancerAlarms: the stack's alarms on the load balancer itself, which judge every color.

One alarm (kind and name from :mod:`components.alarm_names`): ``elb-5xx``, the 5xx responses
the load balancer generated itself, as a share of its requests.

Why it exists: when a target crashes, resets a connection or does not answer in time, the
client gets a 502, 503 or 504 *from the load balancer*. ALB counts those in
``HTTPCode_ELB_5XX_Count``, not in ``HTTPCode_Target_5XX_Count``, and publishes that metric
with the ``LoadBalancer`` dimension only (and ``AvailabilityZone``), never per ``TargetGroup``
(ELB user guide, "CloudWatch metrics for your Application Load Balancer"). A color's own alarms
(:mod:`components.color_alarms`) therefore cannot see them: this alarm watches the whole
balancer. Its denominator, ``RequestCount`` with the ``LoadBalancer`` dimension alone, counts
both colors' requests.

Rate, not count. The balancer's volume differs by orders of magnitude between staging and prod
and between night and peak: a count threshold low enough to catch a 10 % canary crashing at
night fires on ordinary noise at peak, and one quiet at peak misses the canary at night. A share
of requests means the same in every stack at every hour, and reads like the colors'
``errorRate``. The ``minRequests`` guard keeps one error among a handful of requests from
rolling a release back. ``RequestCount`` counts only requests for which the balancer chose a
target (the same user guide), so a crashing, resetting or hanging target's 502 or 504 is in
both numbers; a 503 for which no target could be chosen is not in the denominator and only
raises the share. A period with fewer than ``minRequests`` requests reaching a target reads 0:
a serving color whose every target is gone is the ``unhealthy-hosts`` alarm's case, which fires
as the targets fail their health checks, before Auto Scaling replaces them.

It serves the same two readers as the colors' alarms. Each color's Auto Scaling group names it
in its instance refresh's ``alarm_specification`` (``FleetArgs.shared_alarm_names``), so the
balancer's 5xx stop and roll back a refresh whichever color serves; and the release command
reads it with each color's alarms (:func:`components.alarm_names.watched_alarm_prefixes`).
It has no dimension that names a color: while a color bakes, the balancer's 5xx count against
that color, whichever color answered them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.alarm_names import LOAD_BALANCER_ALARM_KINDS, load_balancer_alarm_name
from components.color_alarms import NAMESPACE, alarm_window, percent_of_requests
from components.config import HealthConfig


@dataclass(frozen=True)
class LoadBalancerAlarmsArgs:
    service: str
    """Service name, the first part of every alarm name."""
    stack: str
    """Short stack name (``pulumi.get_stack()``), part of every alarm name."""
    load_balancer_arn_suffix: pulumi.Input[str]
    """The load balancer, as CloudWatch's ``LoadBalancer`` dimension wants it."""
    health: HealthConfig
    """Thresholds and evaluation windows (``health.loadBalancer5xx``)."""


def elb_5xx_expression(min_requests: int) -> str:
    """The load balancer's own 5xx in percent of its requests, 0 below ``min_requests``."""
    return percent_of_requests(("elb_errors",), min_requests)


def load_balancer_alarm_definitions(
    service: str, stack: str, load_balancer: pulumi.Input[str], health: HealthConfig
) -> dict[str, dict[str, Any]]:
    """``aws.cloudwatch.MetricAlarm`` arguments per load-balancer alarm kind. Pure: tested
    without Pulumi. Every metric has the ``LoadBalancer`` dimension alone."""
    dimensions = {"LoadBalancer": load_balancer}
    window = health.load_balancer_5xx

    def metric(name: str) -> dict[str, Any]:
        return {
            "namespace": NAMESPACE,
            "metric_name": name,
            "dimensions": dimensions,
            "period": window.period,
            "stat": "Sum",
        }

    definitions = {
        "elb-5xx": {
            "alarm_description": (
                f"{service} load balancer ({stack}): more than {window.threshold_percent}% of "
                "requests answered 5xx by the load balancer itself (502, 503, 504: targets "
                f"crashing, resetting or timing out), with at least {window.min_requests} "
                "requests a period. Not narrowed to a color: a firing alarm fails (and with "
                "autoRollback rolls back) either color's refresh and stops a rollout."
            ),
            "comparison_operator": "GreaterThanThreshold",
            "threshold": window.threshold_percent,
            "metric_queries": [
                {
                    "id": "elb_errors",
                    "metric": metric("HTTPCode_ELB_5XX_Count"),
                    "return_data": False,
                },
                {
                    "id": "requests",
                    "metric": metric("RequestCount"),
                    "return_data": False,
                },
                {
                    "id": "rate",
                    "expression": elb_5xx_expression(window.min_requests),
                    "label": "load balancer 5xx, percent of requests",
                    "return_data": True,
                },
            ],
            **alarm_window(window),
        },
    }
    if tuple(definitions) != LOAD_BALANCER_ALARM_KINDS:
        raise ValueError(
            f"alarm kinds {tuple(definitions)} differ from {LOAD_BALANCER_ALARM_KINDS}"
        )
    for kind, definition in definitions.items():
        definition["name"] = load_balancer_alarm_name(service, stack, kind)
    return definitions


class LoadBalancerAlarms(pulumi.ComponentResource):
    """The load balancer's alarms. ``names`` are plain strings, known before anything is
    created; ``alarms`` are the resources a refresh naming them must wait for."""

    names: list[str]
    arns: pulumi.Output[list[str]]
    alarms: list[aws.cloudwatch.MetricAlarm]

    def __init__(
        self, name: str, args: LoadBalancerAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golden-fleet:index:LoadBalancerAlarms", name, None, opts)
        definitions = load_balancer_alarm_definitions(
            args.service, args.stack, args.load_balancer_arn_suffix, args.health
        )
        self.alarms = [
            aws.cloudwatch.MetricAlarm(
                f"{name}-{kind}",
                opts=pulumi.ResourceOptions(parent=self),
                **definition,
            )
            for kind, definition in definitions.items()
        ]
        self.names = [definition["name"] for definition in definitions.values()]
        self.arns = pulumi.Output.all(*(alarm.arn for alarm in self.alarms))
        self.register_outputs({"names": self.names, "arns": self.arns})
