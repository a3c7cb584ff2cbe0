"""A stack's live traffic path in a local AWS API (moto): what the release commands act on.

:func:`build` creates what the program creates for the listener, tagged as the provider's
default tags and the Fleet component tag them (Project, Stack, Service, ManagedBy on everything,
Color on the target groups), plus each color's alarms and the load balancer's under their real
names. A second,
unrelated load balancer (another stack of the same service) shows that look-ups go by tags.

:class:`ListenerApplier` stands in for ``pulumi up`` in rollout tests: it reads the stack
file's traffic and applies exactly that to the listener with ModifyListener, which is the only
change ``pulumi up`` makes for a weight edit (tests/test_replacement.py shows a shift changes the
listener and nothing else). :class:`StandInStack` is the same for an edit's ``--apply``, in the
place of the Automation API's stack.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from components.alarm_names import (
    ALARM_KINDS,
    LOAD_BALANCER_ALARM_KINDS,
    alarm_name,
    load_balancer_alarm_name,
)
from release import edits, emergency, transitions
from release.transitions import ReleaseError

REGION = "eu-west-1"
COLORS = ("blue", "green")


def _tags(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in mapping.items()]


@dataclass
class LiveStack:
    listener_arn: str
    target_groups: dict[str, str]
    alarms: dict[str, list[str]]  # color -> alarm names
    other_listener_arn: str
    load_balancer_alarms: list[str] = field(default_factory=list)  # the stack's, not a color's

    def weights(self, listener_arn: str | None = None) -> dict[str, int]:
        elbv2 = boto3.client("elbv2", region_name=REGION)
        [listener] = elbv2.describe_listeners(ListenerArns=[listener_arn or self.listener_arn])[
            "Listeners"
        ]
        return emergency.forward_weights(listener["DefaultActions"], self.target_groups)

    def other_weights(self) -> list[int]:
        elbv2 = boto3.client("elbv2", region_name=REGION)
        [listener] = elbv2.describe_listeners(ListenerArns=[self.other_listener_arn])["Listeners"]
        return [g["Weight"] for g in listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]]


def _balancer(
    ec2: Any, elbv2: Any, name: str, stack: str, service: str, weights: dict[str, int]
) -> tuple[str, dict[str, str]]:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab", 1)
    ]
    common = {"Project": "golden-fleet", "Stack": stack, "Service": service}
    common["ManagedBy"] = "golden-fleet"
    lb = elbv2.create_load_balancer(Name=name, Subnets=subnets, Tags=_tags(common))[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    groups = {
        color: elbv2.create_target_group(
            Name=f"{name}-{color}-tg",
            Protocol="HTTP",
            Port=8080,
            VpcId=vpc,
            Tags=_tags({**common, "Color": color}),
        )["TargetGroups"][0]["TargetGroupArn"]
        for color in COLORS
    }
    # Each color's attachment listener (components/fleet.py ``<color>-attach``: its group
    # alone, tagged Purpose=health-check-attachment): blue's listed before the weighted
    # listener, green's after it, since DescribeListeners documents no order.
    _attachment(elbv2, lb, "blue", groups["blue"])
    listener = elbv2.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": groups[c], "Weight": weights[c]} for c in COLORS
                    ],
                    "TargetGroupStickinessConfig": {"Enabled": False, "DurationSeconds": 1},
                },
            }
        ],
    )["Listeners"][0]["ListenerArn"]
    _attachment(elbv2, lb, "green", groups["green"])
    return listener, groups


def _attachment(elbv2: Any, lb: str, color: str, group: str) -> None:
    elbv2.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port={"blue": 65001, "green": 65002}[color],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
        Tags=_tags({"Color": color, "Purpose": "health-check-attachment"}),
    )


def _alarm(cloudwatch: Any, name: str) -> str:
    """An alarm under ``name`` in state OK (what it watches does not matter here)."""
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApplicationELB",
        MetricName="UnHealthyHostCount",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="test")
    return name


def build(
    stack: str,
    service: str,
    weights: dict[str, int],
    alarms: bool = True,
    load_balancer_alarms: bool | None = None,
) -> LiveStack:
    """The stack's load balancer, target groups, weighted listener and alarms in moto: each
    color's, and (unless ``load_balancer_alarms`` says otherwise, as ``alarms``) the load
    balancer's."""
    ec2 = boto3.client("ec2", region_name=REGION)
    elbv2 = boto3.client("elbv2", region_name=REGION)
    listener, groups = _balancer(ec2, elbv2, f"{service}-{stack}", stack, service, weights)
    other, _ = _balancer(
        ec2, elbv2, f"{service}-other", "other", service, {"blue": 30, "green": 70}
    )
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    names: dict[str, list[str]] = {color: [] for color in COLORS}
    if alarms:
        for color in COLORS:
            for kind in ALARM_KINDS:
                names[color].append(_alarm(cloudwatch, alarm_name(service, stack, color, kind)))
    balancer_names = []
    if alarms if load_balancer_alarms is None else load_balancer_alarms:
        balancer_names = [
            _alarm(cloudwatch, load_balancer_alarm_name(service, stack, kind))
            for kind in LOAD_BALANCER_ALARM_KINDS
        ]
    lock_table()
    return LiveStack(listener, groups, names, other, balancer_names)


def lock_table(region: str = REGION) -> str:
    """The release lock's table as platform/bootstrap/release_lock_table.py declares it in each
    stack's account (on-demand, encrypted, deletion protection); made once per AWS."""
    from release.lock_table import PARTITION_KEY, TABLE_NAME

    dynamodb = boto3.client("dynamodb", region_name=region)
    try:
        dynamodb.create_table(
            TableName=TABLE_NAME,
            AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True},
            DeletionProtectionEnabled=True,
        )
    except dynamodb.exceptions.ResourceInUseException:
        pass
    return TABLE_NAME


def shift_file(path: Path, stack: str, percent: int) -> None:
    """The file as `python -m release shift` leaves it (same plan, same checked write), without
    the command's look at live Auto Scaling groups, which these tests do not build."""
    edits.write(edits.prepare(path, lambda cfg: transitions.shift(cfg, stack, percent)))


def set_alarm(name: str, state: str = "ALARM") -> None:
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName=name, StateValue=state, StateReason="test"
    )


@dataclass
class ListenerApplier:
    """``pulumi up`` for a weight edit: the file's traffic onto the listener (ModifyListener)."""

    path: Path
    fail_on: set[int] = field(default_factory=set)  # 1-based call numbers that fail
    applied: list[dict[str, int]] = field(default_factory=list)  # file traffic at each call

    def preview_and_up(self, stack: str, out: Any) -> None:
        cfg = edits.read_config(self.path)
        weights = {color: cfg.traffic[color] for color in COLORS}
        self.applied.append(weights)
        if len(self.applied) in self.fail_on:
            raise ReleaseError(f"pulumi failed for stack {stack!r} (update {len(self.applied)})")
        elbv2 = boto3.client("elbv2", region_name=REGION)
        listener = emergency.find_listener(elbv2, stack.split("/")[-1], cfg.service.name)
        emergency.set_weights(elbv2, listener, weights)


class StandInStack:
    """An Automation API stack (``automation._select``'s answer): ``up`` applies the file's
    weights to the listener (the only change a weight edit's update makes) and records the
    release lock's item as it stood meanwhile. ``during_up`` runs inside ``up``, before the
    listener changes."""

    def __init__(self, path: Path, stack: str, service: str):
        from release import lock

        self.path, self.stack, self.service = path, stack, service
        self.key = lock.lock_key(service, stack)
        self.seen: list[lock.Record] = []
        self.during_up: Callable[[], None] = lambda: None
        self.ran: list[str] = []
        self.beating: list[bool] = []  # the lock's heartbeat thread alive, at each `up`

    def item(self) -> Any:
        from release import lock

        return lock.read(boto3.client("dynamodb", region_name=REGION), lock.TABLE_NAME, self.key)

    def preview(self, diff: Any = None, on_output: Any = None, **_: Any) -> None:
        self.ran.append("preview")
        self.seen.append(self.item())

    def up(self, on_output: Any = None, **_: Any) -> None:
        self.ran.append("up")
        self.seen.append(self.item())
        self.beating.append(
            any(t.name.startswith("release-lock-heartbeat") for t in threading.enumerate())
        )
        self.during_up()
        weights = {color: edits.read_config(self.path).traffic[color] for color in COLORS}
        elbv2 = boto3.client("elbv2", region_name=REGION)
        listener = emergency.find_listener(elbv2, self.stack, self.service)
        emergency.set_weights(elbv2, listener, weights)
