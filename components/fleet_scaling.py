"""FleetScaling: one color's target-tracking policies, and who owns its desired count.

Two target-tracking policies per color: requests per target on *this color's* target group
(``ALBRequestCountPerTarget``, whose resource label is the load balancer's ARN suffix and the
target group's joined by ``/``: Auto Scaling API reference, PredefinedMetricSpecification), and
average CPU. With several target-tracking policies Auto Scaling scales out when any policy asks
and scales in only when all of them agree (EC2 Auto Scaling user guide, "Target tracking
scaling policies", multiple policies), and never outside min..max.

Who owns ``desired``: once scaling is on, the autoscaler. A group that keeps sending
``desired_capacity`` resets the autoscaler's choice at every update (pulumi_aws
``autoscaling.Policy`` docs: "You may want to omit desired_capacity attribute from attached
aws.autoscaling.Group when using autoscaling policies"), so the group ignores changes of it.
The stack file's ``desired`` is still the count the group is *created* with (ignore_changes
applies to updates only). Two cases stay with the program:

- a cold color (``desired`` 0, what ``finish`` writes for cold standby): a group without
  traffic produces no request metric, so the autoscaler would never take it to zero; the
  program sends ``desired`` 0 itself.
- raising ``min`` (``deploy`` bringing a cold color back): Auto Scaling raises desired to the
  new minimum when the group is smaller (UpdateAutoScalingGroup API reference, MinSize), so
  the color comes back with ``min`` instances and the autoscaler sizes it from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import Capacity, ScalingConfig

# CloudWatch's dimension forms of the two ARNs (what ``arn_suffix`` holds).
_LB_SUFFIX = re.compile(r"app/[A-Za-z0-9-]{1,32}/[0-9a-f]{1,16}")
_TG_SUFFIX = re.compile(r"targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{1,16}")


def request_count_label(load_balancer_arn_suffix: str, target_group_arn_suffix: str) -> str:
    """``app/<lb>/<id>/targetgroup/<tg>/<id>``: the one target group the metric counts."""
    if not _LB_SUFFIX.fullmatch(load_balancer_arn_suffix):
        raise ValueError(f"not an ALB ARN suffix: {load_balancer_arn_suffix!r}")
    if not _TG_SUFFIX.fullmatch(target_group_arn_suffix):
        raise ValueError(f"not a target group ARN suffix: {target_group_arn_suffix!r}")
    return f"{load_balancer_arn_suffix}/{target_group_arn_suffix}"


def autoscaler_owns_desired(scaling: ScalingConfig, capacity: Capacity) -> bool:
    """True when ``pulumi up`` must leave the group's desired count alone."""
    return scaling.enabled and capacity.desired > 0


def group_capacity_settings(
    capacity: Capacity, scaling: ScalingConfig | None, capacity_timeout: str
) -> tuple[dict[str, object], list[str]]:
    """The group's capacity wait and ignore_changes for this color.

    The provider's update wait compares the group with the *configured* desired count and
    ``wait_for_elb_capacity`` exactly ("wait for exactly this number of healthy instances ...
    on both create and update": pulumi_aws ``autoscaling.Group``, wait_for_elb_capacity). Once
    the autoscaler owns desired, that number is stale and an update would wait for a count the
    group no longer has, so the provider's wait is off ("0") and the refresh resource, which
    compares healthy targets with the group's *live* desired capacity
    (``python -m release.refresh``), is the gate on create and on every change.
    """
    if scaling is not None and autoscaler_owns_desired(scaling, capacity):
        return {"wait_for_capacity_timeout": "0"}, ["desiredCapacity"]
    return (
        {"wait_for_elb_capacity": capacity.desired, "wait_for_capacity_timeout": capacity_timeout},
        [],
    )


@dataclass(frozen=True)
class FleetScalingArgs:
    group_name: pulumi.Input[str]
    """The color's Auto Scaling group."""
    load_balancer_arn_suffix: pulumi.Input[str]
    """The load balancer (first half of the request-count label)."""
    target_group_arn_suffix: pulumi.Input[str]
    """This color's target group (second half)."""
    scaling: ScalingConfig
    """Targets."""


class FleetScaling(pulumi.ComponentResource):
    """Request-count and CPU target tracking on one color's group."""

    def __init__(
        self, name: str, args: FleetScalingArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golden-fleet:index:FleetScaling", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        label = pulumi.Output.all(
            args.load_balancer_arn_suffix, args.target_group_arn_suffix
        ).apply(lambda values: request_count_label(values[0], values[1]))
        # No estimated_instance_warmup: the group's default_instance_warmup applies to both
        # (EC2 Auto Scaling user guide, "Set the default instance warmup").
        aws.autoscaling.Policy(
            f"{name}-requests",
            autoscaling_group_name=args.group_name,
            policy_type="TargetTrackingScaling",
            target_tracking_configuration={
                "predefined_metric_specification": {
                    "predefined_metric_type": "ALBRequestCountPerTarget",
                    "resource_label": label,
                },
                "target_value": float(args.scaling.requests_per_target),
            },
            opts=child,
        )
        aws.autoscaling.Policy(
            f"{name}-cpu",
            autoscaling_group_name=args.group_name,
            policy_type="TargetTrackingScaling",
            target_tracking_configuration={
                "predefined_metric_specification": {
                    "predefined_metric_type": "ASGAverageCPUUtilization",
                },
                "target_value": float(args.scaling.cpu_percent),
            },
            opts=child,
        )
        self.register_outputs({})
