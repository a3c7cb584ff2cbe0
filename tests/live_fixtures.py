"""A color of a stack on the local AWS API (moto), with botocore's Stubber for the instance-refresh
calls moto does not implement (DescribeInstanceRefreshes).

Built the way the program builds it: a launch template with numbered versions, one image per
version named by the image contract, an Auto Scaling group tagged Stack/Service/Color and
attached to one target group, the color's alarms (and on request the load balancer's) named by
``components.alarm_names``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.stub import Stubber

from components.alarm_names import ALARM_KINDS, alarm_name, load_balancer_alarm_name
from release.live import Clients

REGION = "eu-west-1"
SERVICE = "checkout"
STACK = "staging"
# DescribeListeners documents no order: the weighted listener is listed before each color's
# attachment listener, or after them. Tests that read the listener run in both orders.
LISTENER_ORDERS = ("attachments-last", "attachments-first")
ATTACHMENT_PORTS = {"blue": 65001, "green": 65002}  # components/blue_green_service.py


@dataclass
class Color:
    color: str
    group: str
    template_id: str
    target_group_arn: str
    images: dict[str, str]  # version -> image id
    template_versions: dict[str, str] = field(default_factory=dict)  # app version -> LT version


class World:
    """Clients on moto, plus a stubbed Auto Scaling client for the refresh calls."""

    def __init__(self, listener_order: str = LISTENER_ORDERS[0]) -> None:
        assert listener_order in LISTENER_ORDERS, listener_order
        self.listener_order = listener_order
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.autoscaling = boto3.client("autoscaling", region_name=REGION)
        self.elbv2 = boto3.client("elbv2", region_name=REGION)
        self.cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        self.refresh_client = boto3.client("autoscaling", region_name=REGION)
        self.stubber = Stubber(self.refresh_client)
        self.stubber.activate()
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.vpc = vpc
        self.subnet = self.ec2.create_subnet(
            VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a"
        )["Subnet"]["SubnetId"]
        self.colors: dict[str, Color] = {}
        self.listener: str | None = None

    @property
    def clients(self) -> Clients:
        return Clients(
            autoscaling=self.autoscaling,
            refreshes=self.refresh_client,
            ec2=self.ec2,
            elbv2=self.elbv2,
            cloudwatch=self.cloudwatch,
        )

    def image(self, version: str) -> str:
        return self.ec2.register_image(
            Name=f"{SERVICE}-{version}-20260101T000000Z",
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
        )["ImageId"]

    def color(
        self,
        color: str,
        versions: list[str],
        group_on: str,
        instances_on: str,
        desired: int = 2,
        instance_type: str = "t3.micro",
    ) -> Color:
        """A group whose launch template has one numbered version per app version (in order);
        the group launches ``group_on``'s version, its instances run ``instances_on``'s."""
        images = {v: self.image(v) for v in versions}
        template = self.ec2.create_launch_template(
            LaunchTemplateName=f"{SERVICE}-{color}-lt",
            LaunchTemplateData={"ImageId": images[versions[0]], "InstanceType": instance_type},
        )["LaunchTemplate"]["LaunchTemplateId"]
        numbers = {versions[0]: "1"}
        for number, version in enumerate(versions[1:], start=2):
            self.ec2.create_launch_template_version(
                LaunchTemplateId=template,
                LaunchTemplateData={"ImageId": images[version], "InstanceType": instance_type},
            )
            numbers[version] = str(number)
        # moto launches from the template's default version: that is what the instances run.
        self.ec2.modify_launch_template(
            LaunchTemplateId=template, DefaultVersion=numbers[instances_on]
        )
        target_group = self.elbv2.create_target_group(
            Name=f"{SERVICE}-{color}-tg",
            Protocol="HTTP",
            Port=8080,
            VpcId=self.vpc,
            TargetType="instance",
        )["TargetGroups"][0]["TargetGroupArn"]
        group = f"{SERVICE}-{color}-asg-0123abcd"
        tags = {"Stack": STACK, "Service": SERVICE, "Color": color, "Version": group_on}
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=group,
            MinSize=desired,
            MaxSize=max(desired, 1) * 2,
            DesiredCapacity=desired,
            LaunchTemplate={"LaunchTemplateId": template, "Version": numbers[group_on]},
            VPCZoneIdentifier=self.subnet,
            TargetGroupARNs=[target_group],
            Tags=[
                {
                    "Key": key,
                    "Value": value,
                    "PropagateAtLaunch": True,
                    "ResourceId": group,
                    "ResourceType": "auto-scaling-group",
                }
                for key, value in tags.items()
            ],
        )
        for kind in ALARM_KINDS:
            self.cloudwatch.put_metric_alarm(
                AlarmName=alarm_name(SERVICE, STACK, color, kind),
                Namespace="AWS/ApplicationELB",
                MetricName="UnHealthyHostCount",
                Statistic="Maximum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=0,
                ComparisonOperator="GreaterThanThreshold",
            )
        made = Color(color, group, template, target_group, images, numbers)
        self.colors[color] = made
        return made

    def forward(self, weights: dict[str, int]) -> None:
        """The weighted listener forwarding to the colors' target groups with these weights,
        and, as the program creates them, each color's attachment listener (one target group,
        tagged Purpose=health-check-attachment), listed before or after it as
        ``listener_order`` says."""
        action = {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": self.colors[c].target_group_arn, "Weight": w}
                    for c, w in weights.items()
                ]
            },
        }
        if self.listener is None:
            balancer = self.elbv2.create_load_balancer(
                Name="checkout-staging",
                Subnets=[
                    self.subnet,
                    self.ec2.create_subnet(
                        VpcId=self.vpc, CidrBlock="10.0.2.0/24", AvailabilityZone=f"{REGION}b"
                    )["Subnet"]["SubnetId"],
                ],
            )["LoadBalancers"][0]["LoadBalancerArn"]
            if self.listener_order == "attachments-first":
                self.attachments(balancer)
            self.listener = self.elbv2.create_listener(
                LoadBalancerArn=balancer, Protocol="HTTP", Port=80, DefaultActions=[action]
            )["Listeners"][0]["ListenerArn"]
            if self.listener_order == "attachments-last":
                self.attachments(balancer)
        else:
            self.elbv2.modify_listener(ListenerArn=self.listener, DefaultActions=[action])

    def attachments(self, balancer: str) -> None:
        """components/fleet.py's ``<color>-attach``: a forward to the color's group alone."""
        for color, made in self.colors.items():
            self.elbv2.create_listener(
                LoadBalancerArn=balancer,
                Protocol="HTTP",
                Port=ATTACHMENT_PORTS[color],
                DefaultActions=[{"Type": "forward", "TargetGroupArn": made.target_group_arn}],
                Tags=[
                    {"Key": "Color", "Value": color},
                    {"Key": "Purpose", "Value": "health-check-attachment"},
                ],
            )

    def instances(self, color: str) -> list[str]:
        group = self.autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.colors[color].group]
        )["AutoScalingGroups"][0]
        return [i["InstanceId"] for i in group["Instances"]]

    def make_unhealthy(self, color: str) -> None:
        """Stop one instance: its target leaves ``healthy`` (moto: ``unused``)."""
        self.ec2.stop_instances(InstanceIds=self.instances(color)[:1])

    def load_balancer_alarm(self, state: str, stack: str = STACK, kind: str = "elb-5xx") -> str:
        """The stack's load-balancer alarm of ``kind``, in ``state``; its name."""
        name = load_balancer_alarm_name(SERVICE, stack, kind)
        self.cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/ApplicationELB",
            MetricName="HTTPCode_ELB_5XX_Count",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
        return name

    def set_alarm(self, color: str, kind: str, state: str = "ALARM") -> None:
        self.cloudwatch.set_alarm_state(
            AlarmName=alarm_name(SERVICE, STACK, color, kind), StateValue=state, StateReason="test"
        )

    def refresh(self, color: str, status: str | None, **fields: Any) -> None:
        """Queue one DescribeInstanceRefreshes answer for the color (``None``: no refresh)."""
        group = self.colors[color].group
        refreshes = []
        if status is not None:
            refresh: dict[str, Any] = {
                "InstanceRefreshId": "0f1e2d3c-aaaa-bbbb-cccc-0123456789ab",
                "AutoScalingGroupName": group,
                "Status": status,
                "StartTime": datetime.datetime(2026, 11, 27, 6, 0, tzinfo=datetime.UTC),
            }
            refresh.update(fields)
            refreshes.append(refresh)
        self.stubber.add_response(
            "describe_instance_refreshes",
            {"InstanceRefreshes": refreshes},
            {"AutoScalingGroupName": group},
        )
