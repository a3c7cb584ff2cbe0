"""Fleet: one color's instances — launch template, target group and Auto Scaling Group.

Instances are never changed in place. A new image is a new launch-template version; the ASG
points at that *numbered* version (never ``$Latest``/``$Default``, which would let a template
edit reach running fleets unreviewed and which instance-refresh rollback does not support),
and the change starts an instance refresh with the configured preferences.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.config import Capacity, InstanceRefreshConfig
from components.policies import cloudwatch_agent_policy, ec2_assume_role_policy
from components.tags import asg_tag_blocks

ROOT_DEVICE = "/dev/xvda"  # Debian's official AMIs boot from xvda


@dataclass(frozen=True)
class FleetArgs:
    service: str
    """Service name."""
    color: str
    """``blue`` or ``green``."""
    version: str
    """The version this color runs (tags only; the image is ``image_id``)."""
    image_id: pulumi.Input[str]
    """AMI the launch template runs."""
    instance_types: list[str]
    """First is the launch template's type; more than one gives a mixed-instances policy."""
    capacity: Capacity
    """min/desired/max instances."""
    port: int
    """Port the service listens on."""
    health_check_path: str
    """Path the target group probes."""
    vpc_id: pulumi.Input[str]
    """VPC of the target group."""
    subnet_ids: list[str]
    """Private subnets, one per availability zone."""
    security_group_id: pulumi.Input[str]
    """The instances' security group (reachable only from the load balancer)."""
    log_group_arn: pulumi.Input[str]
    """The service's log group; the only one the instances may write to."""
    instance_refresh: InstanceRefreshConfig
    """Rolling replacement preferences."""
    deregistration_delay: int = 30
    """Seconds the target group drains a leaving instance."""
    tags: dict[str, str] = field(default_factory=dict)
    """Full tag map for the ASG, instances and volumes (provider default tags miss these)."""
    root_volume_gib: int = 16
    """Encrypted gp3 root volume size."""


# The baked app unit reads this file after its own defaults (see app/golden-app.service).
APP_UNIT = "golden-app.service"
APP_STACK_ENV = "/etc/golden-fleet/app.env"


def user_data(port: int, color: str, version: str) -> str:
    """Cloud-init that only writes the app's stack settings: nothing is installed at boot."""
    env = f"GF_APP_PORT={port}\nGF_COLOR={color}\nGF_EXPECTED_VERSION={version}\n"
    document = "#cloud-config\n" + json.dumps(
        {
            "write_files": [
                {
                    "path": APP_STACK_ENV,
                    "permissions": "0644",
                    "owner": "root:root",
                    "content": env,
                }
            ],
            "runcmd": [["systemctl", "restart", APP_UNIT]],
        },
        indent=1,
    )
    return base64.b64encode(document.encode()).decode()


def refresh_preferences(refresh: InstanceRefreshConfig) -> dict[str, object]:
    """The ASG's ``instance_refresh.preferences`` from validated config (numbers as AWS wants)."""
    preferences: dict[str, object] = {
        "min_healthy_percentage": refresh.min_healthy_percentage,
        "max_healthy_percentage": refresh.max_healthy_percentage,
        "instance_warmup": str(refresh.instance_warmup),
        "skip_matching": refresh.skip_matching,
        "auto_rollback": refresh.auto_rollback,
        "scale_in_protected_instances": "Refresh",
        "standby_instances": "Terminate",
    }
    if refresh.checkpoint_percentages:
        preferences["checkpoint_percentages"] = list(refresh.checkpoint_percentages)
        preferences["checkpoint_delay"] = str(refresh.checkpoint_delay)
    return preferences


def health_check(path: str) -> dict[str, object]:
    """Tight thresholds: a bad instance leaves rotation in 20 s, a good one joins in 20 s."""
    return {
        "enabled": True,
        "path": path,
        "port": "traffic-port",
        "protocol": "HTTP",
        "matcher": "200",
        "interval": 10,
        "timeout": 5,
        "healthy_threshold": 2,
        "unhealthy_threshold": 2,
    }


class Fleet(pulumi.ComponentResource):
    """One color's fleet."""

    asg_name: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    launch_template_version: pulumi.Output[int]

    def __init__(self, name: str, args: FleetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("golden-fleet:index:Fleet", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        role = aws.iam.Role(
            f"{name}-role",
            description=f"Instances of {args.service} ({args.color}): SSM and CloudWatch agents",
            assume_role_policy=json.dumps(ec2_assume_role_policy()),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-ssm",
            role=role.name,
            policy_arn=aws.iam.ManagedPolicy.AMAZON_SSM_MANAGED_INSTANCE_CORE,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-cloudwatch-agent",
            role=role.id,
            policy=pulumi.Output.from_input(args.log_group_arn).apply(
                lambda arn: json.dumps(cloudwatch_agent_policy(arn, args.service))
            ),
            opts=child,
        )
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name, opts=child)

        template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"{args.service} {args.color} {args.version}",
            image_id=args.image_id,
            instance_type=args.instance_types[0],
            iam_instance_profile={"arn": profile.arn},
            # IMDSv2 only; a hop limit of 1 keeps the credentials away from containers.
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 1,
                "instance_metadata_tags": "enabled",
            },
            network_interfaces=[
                {
                    "associate_public_ip_address": "false",
                    "delete_on_termination": "true",
                    "security_groups": [args.security_group_id],
                }
            ],
            block_device_mappings=[
                {
                    "device_name": ROOT_DEVICE,
                    "ebs": {
                        "encrypted": "true",
                        "volume_type": "gp3",
                        "volume_size": args.root_volume_gib,
                        "delete_on_termination": "true",
                    },
                }
            ],
            monitoring={"enabled": True},
            user_data=user_data(args.port, args.color, args.version),
            tag_specifications=[
                {"resource_type": kind, "tags": args.tags} for kind in ("instance", "volume")
            ],
            update_default_version=True,
            opts=child,
        )

        target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            port=args.port,
            protocol="HTTP",
            target_type="instance",
            vpc_id=args.vpc_id,
            deregistration_delay=args.deregistration_delay,
            health_check=health_check(args.health_check_path),
            tags={"Color": args.color},
            opts=child,
        )

        # The numbered version, as a string: what the ASG and instance-refresh rollback need.
        template_version = template.latest_version.apply(str)
        template_spec = {"id": template.id, "version": template_version}
        mixed_instances = None
        single_template = None
        if len(args.instance_types) > 1:
            mixed_instances = {
                "launch_template": {
                    "launch_template_specification": {
                        "launch_template_id": template.id,
                        "version": template_version,
                    },
                    "overrides": [{"instance_type": t} for t in args.instance_types],
                },
                "instances_distribution": {
                    "on_demand_base_capacity": 0,
                    "on_demand_percentage_above_base_capacity": 100,
                    "on_demand_allocation_strategy": "prioritized",
                },
            }
        else:
            single_template = template_spec

        group = aws.autoscaling.Group(
            f"{name}-asg",
            vpc_zone_identifiers=args.subnet_ids,
            min_size=args.capacity.min,
            desired_capacity=args.capacity.desired,
            max_size=args.capacity.max,
            launch_template=single_template,
            mixed_instances_policy=mixed_instances,
            target_group_arns=[target_group.arn],
            health_check_type="ELB",
            health_check_grace_period=args.instance_refresh.instance_warmup,
            default_instance_warmup=args.instance_refresh.instance_warmup,
            termination_policies=["OldestLaunchTemplate", "OldestInstance"],
            enabled_metrics=[
                "GroupDesiredCapacity",
                "GroupInServiceInstances",
                "GroupPendingInstances",
                "GroupTerminatingInstances",
            ],
            instance_refresh={
                "strategy": "Rolling",
                "preferences": refresh_preferences(args.instance_refresh),
            },
            tags=asg_tag_blocks(args.tags),
            opts=child,
        )

        self.asg_name = group.name
        self.target_group_arn = target_group.arn
        self.launch_template_version = template.latest_version
        self.register_outputs(
            {
                "asgName": self.asg_name,
                "targetGroupArn": self.target_group_arn,
                "launchTemplateVersion": self.launch_template_version,
            }
        )
