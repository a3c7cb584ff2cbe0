"""Fleet: one color's instances — launch template, target group, Auto Scaling Group, refresh.

Instances are never changed in place. A new image is a new launch-template version; the group
launches a *numbered* version (never ``$Latest``/``$Default``, which would let a template edit
reach running fleets unreviewed and which instance-refresh rollback does not support).

Who moves a group onto a new version: the color's refresh resource, never the provider. The
group gets its launch template when it is created and ignores every later change of it
(``ignore_changes`` on ``launchTemplate`` and ``mixedInstancesPolicy``; no ``instance_refresh``
block): the provider would save the new version on the group with ``UpdateAutoScalingGroup``
before starting a refresh, and AWS's rollback would then restore that new version
(release/refresh.py quotes the provider's source and AWS's guide). The refresh resource runs
``python -m release.refresh`` after the group, on every change of the color's template version,
instance types or capacity: it starts a refresh whose ``DesiredConfiguration`` carries the new
version (components/refresh_spec.py), so AWS saves it on the group only when the refresh
succeeds, adopts one an interrupted ``pulumi up`` left running, and fails ``pulumi up`` with the
truth when AWS rolled the refresh back.

The health gate: ``pulumi up`` does not finish a color until the color is whole.

- The group waits, on create and on a capacity change, until ``desired`` instances are healthy
  targets (``wait_for_elb_capacity``). The provider's update path waits only when
  ``min_size``/``desired_capacity`` change (terraform-provider-aws, ``resourceGroupUpdate`` and
  "Waiting for Capacity").
- The refresh resource then returns only when the group saves the wanted configuration, every
  in-service instance runs it and healthy targets >= the group's live desired capacity.
- A target group that no listener uses is never health-checked: its targets stay ``unused``
  (``Target.NotInUse``, ELB API reference, TargetHealth). The weighted listener is created only
  after both refresh resources, so each color also has its own *attachment* listener, on a port
  that the load balancer's security group opens to nobody, which puts the target group in use
  before the group first waits for healthy targets.
- The color's alarms (:mod:`components.color_alarms`), and the load balancer's, stop and roll
  back a refresh that makes it unhealthy.
- With scaling on (:mod:`components.fleet_scaling`) the autoscaler owns ``desired`` of a color
  with instances: the group ignores changes of it, the provider's exact capacity wait is off
  and the refresh resource, which reads the live desired capacity, is the whole gate.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from pulumi_command import local

from components.app_environment import (
    SecretRef,
    boot_config,
    partition_of,
    platform_environment,
    user_data,
)
from components.color_alarms import ColorAlarms, ColorAlarmsArgs
from components.config import Capacity, HealthConfig, InstanceRefreshConfig, ScalingConfig
from components.fleet_scaling import FleetScaling, FleetScalingArgs, group_capacity_settings
from components.interpreter import program_python
from components.policies import (
    SSM_MANAGED_INSTANCE_CORE,
    app_secrets_policy,
    boundary_policy_arn,
    cloudwatch_agent_policy,
    ec2_assume_role_policy,
    managed_policy_arn,
    parameter_fence_policy,
)
from components.refresh_spec import RefreshSpec, refresh_preferences
from components.tags import asg_tag_blocks

ROOT_DEVICE = "/dev/xvda"  # Debian's official AMIs boot from xvda
# The group's launch settings, which only an instance refresh changes after create.
LAUNCH_SETTINGS = ("launchTemplate", "mixedInstancesPolicy")


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
    stack: str
    """Short stack name (``pulumi.get_stack()``): part of the alarm names."""
    region: str
    """The stack's region, for the refresh resource."""
    load_balancer_arn: pulumi.Input[str]
    """The load balancer the color's attachment listener belongs to."""
    load_balancer_arn_suffix: pulumi.Input[str]
    """The load balancer as CloudWatch names it (the alarms' ``LoadBalancer`` dimension)."""
    attachment_port: int
    """Port of the color's attachment listener; no security-group rule may open it."""
    certificate_arn: str | None
    """The stack's certificate: with one, the attachment listener is HTTPS like the rest."""
    ssl_policy: str
    """TLS 1.3 policy of an HTTPS attachment listener."""
    health: HealthConfig
    """Capacity and refresh timeouts, alarm thresholds."""
    deregistration_delay: int = 30
    """Seconds the target group drains a leaving instance."""
    tags: dict[str, str] = field(default_factory=dict)
    """Full tag map for the ASG, instances and volumes (provider default tags miss these)."""
    root_volume_gib: int = 16
    """Encrypted gp3 root volume size."""
    scaling: ScalingConfig | None = None
    """Target tracking on this color (components/fleet_scaling.py); None: fixed capacity."""
    shared_alarm_names: list[str] = field(default_factory=list)
    """Alarms beyond the color's own that also stop and roll back its instance refresh (the
    load balancer's, which no target group dimension narrows to one color)."""
    environment: dict[str, str] = field(default_factory=dict)
    """The stack's app.environment: plain values the boot config carries."""
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    """The stack's app.secrets: references the instance resolves at boot with its role."""
    serving: bool = False
    """The color takes traffic (weight > 0): its launch template keeps the boot config it
    was released with (see :data:`SERVING_KEEPS`)."""


# A color taking traffic keeps the user data it was released with: an edit of app.environment
# or app.secrets would otherwise make a new template version, and a new version re-runs the
# color's refresh resource (refresh_triggers), which replaces every serving instance. The idle
# color takes the edit at once; the serving color takes it with its next release (deploy puts
# the version on the idle color, which then carries the current environment). The engine keeps
# an ignored input's old value on update and uses the new one on create.
SERVING_KEEPS = ("userData",)


def fleet_user_data(args: FleetArgs) -> str:
    """The color's user data: the boot config (references only, never a secret value)."""
    return user_data(
        boot_config(
            args.service,
            args.region,
            platform_environment(args.port, args.color, args.version),
            args.environment,
            args.secrets,
        )
    )


REFRESH_MODULE = "release.refresh"


def capacity_timeout(seconds: int) -> str:
    """``wait_for_capacity_timeout`` as the Go duration the provider parses ("0" turns the
    wait off, which the config's lower bound forbids)."""
    if seconds <= 0:
        raise ValueError(f"capacity timeout must be positive, got {seconds}")
    return f"{seconds}s"


def refresh_command(python: str) -> str:
    """The refresh resource's command line: the interpreter and the module, nothing else. What
    to refresh arrives as JSON on standard input (components/refresh_spec.py); credentials reach
    it through the environment ``pulumi up`` runs in, never through its arguments."""
    return shlex.join([python, "-m", REFRESH_MODULE])


def refresh_triggers(
    template_version: pulumi.Input[int], instance_types: list[str], capacity: Capacity
) -> list[object]:
    """What re-runs the refresh resource: a new launch-template version or instance types (a
    refresh), or new capacity (a wait for healthy targets)."""
    return [template_version, *instance_types, capacity.min, capacity.desired, capacity.max]


def live_version(stdout: str) -> str | None:
    """The launch-template version the group saves, from the refresh command's last line."""
    lines = stdout.strip().splitlines()
    if not lines:
        return None
    try:
        return json.loads(lines[-1]).get("launchTemplateVersion")
    except (ValueError, AttributeError):
        return None


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


def launch_settings(
    template_id: pulumi.Input[str], template_version: pulumi.Input[str], instance_types: list[str]
) -> tuple[dict[str, object] | None, dict[str, object] | None]:
    """The group's ``(launch_template, mixed_instances_policy)``: one instance type launches the
    template as it is; more than one, a mixed-instances policy overriding its type, all on demand
    in the order given. Exactly one of the two is set."""
    if len(instance_types) <= 1:
        return {"id": template_id, "version": template_version}, None
    return None, {
        "launch_template": {
            "launch_template_specification": {
                "launch_template_id": template_id,
                "version": template_version,
            },
            "overrides": [{"instance_type": t} for t in instance_types],
        },
        "instances_distribution": {
            "on_demand_base_capacity": 0,
            "on_demand_percentage_above_base_capacity": 100,
            "on_demand_allocation_strategy": "prioritized",
        },
    }


class Fleet(pulumi.ComponentResource):
    """One color's fleet."""

    asg_name: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    launch_template_version: pulumi.Output[int]
    live_launch_template_version: pulumi.Output[str | None]
    alarm_names: list[str]
    refresh: local.Command

    def __init__(self, name: str, args: FleetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("golden-fleet:index:Fleet", name, None, opts)
        profile, boot_policies = self._instance_role(name, args)
        template = self._launch_template(name, args, profile, boot_policies)
        target_group, attachment = self._target_group(name, args)
        alarms = self._alarms(name, args, target_group)
        group = self._group(name, args, template, target_group, [alarms, attachment])
        if args.scaling is not None and args.scaling.enabled:
            self._scaling(name, args.scaling, args, group, target_group)
        self.refresh = self._refresh(name, args, template, target_group, group, alarms)

        self.asg_name = group.name
        self.target_group_arn = target_group.arn
        self.launch_template_version = template.latest_version
        self.live_launch_template_version = self.refresh.stdout.apply(live_version)
        self.alarm_names = alarms.names
        # The stack's dashboard (components/service_dashboard.py) charts and lists these.
        self.target_group_arn_suffix = target_group.arn_suffix
        self.alarm_arns = alarms.arns
        self.register_outputs(
            {
                "asgName": self.asg_name,
                "targetGroupArn": self.target_group_arn,
                "launchTemplateVersion": self.launch_template_version,
                "liveLaunchTemplateVersion": self.live_launch_template_version,
                "alarmNames": self.alarm_names,
            }
        )

    def _instance_role(
        self, name: str, args: FleetArgs
    ) -> tuple[aws.iam.InstanceProfile, list[aws.iam.RolePolicy]]:
        """The instances' role (SSM and CloudWatch agents, their secrets) and its profile; with
        the policies that must exist before an instance boots."""
        child = pulumi.ResourceOptions(parent=self)
        partition = partition_of(args.region)
        account = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        # The role is named <service>-<color>-role-<suffix> (autonaming): the deploy roles may
        # create and change only roles named <service>-* that carry the service's boundary,
        # which platform/ creates in the account (docs/explanation/least-privilege.md).
        role = aws.iam.Role(
            f"{name}-role",
            description=f"Instances of {args.service} ({args.color}): SSM and CloudWatch agents",
            assume_role_policy=json.dumps(ec2_assume_role_policy()),
            permissions_boundary=account.apply(
                lambda acct: boundary_policy_arn(partition, acct, args.service)
            ),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-ssm",
            role=role.name,
            policy_arn=managed_policy_arn(partition, SSM_MANAGED_INSTANCE_CORE),
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
        boot_policies = self._secret_policies(name, args, role, partition, account)
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name, opts=child)
        return profile, boot_policies

    def _secret_policies(
        self,
        name: str,
        args: FleetArgs,
        role: aws.iam.Role,
        partition: str,
        account: pulumi.Output[str],
    ) -> list[aws.iam.RolePolicy]:
        """The role's fence over SSM parameters and, with app secrets, the grant to read them."""
        child = pulumi.ResourceOptions(parent=self)
        secrets = list(args.secrets.values())

        def arns(kind: str, account: str) -> list[str]:
            problems = [p for p in (s.account_problem(account) for s in secrets) if p]
            if problems:
                raise ValueError(f"golden-fleet:app.secrets: {problems[0]}")
            return [s.arn(partition, args.region, account) for s in secrets if s.kind == kind]

        # The instances read their secrets at boot: the template (and so the group and its
        # refresh) waits for the role's policies, so no instance boots before it may read them.
        boot_policies = [
            aws.iam.RolePolicy(
                f"{name}-parameter-fence",
                role=role.id,
                policy=account.apply(
                    lambda acct: json.dumps(parameter_fence_policy(arns("ssmParameter", acct)))
                ),
                opts=child,
            )
        ]
        if secrets:
            boot_policies.append(
                aws.iam.RolePolicy(
                    f"{name}-app-secrets",
                    role=role.id,
                    policy=account.apply(
                        lambda acct: json.dumps(
                            app_secrets_policy(
                                arns("secretsManager", acct),
                                arns("ssmParameter", acct),
                                args.region,
                                partition,
                            )
                        )
                    ),
                    opts=child,
                )
            )
        return boot_policies

    def _launch_template(
        self,
        name: str,
        args: FleetArgs,
        profile: aws.iam.InstanceProfile,
        boot_policies: list[aws.iam.RolePolicy],
    ) -> aws.ec2.LaunchTemplate:
        """The launch template: a new image or boot config is a new numbered version."""
        return aws.ec2.LaunchTemplate(
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
            user_data=fleet_user_data(args),
            tag_specifications=[
                {"resource_type": kind, "tags": args.tags} for kind in ("instance", "volume")
            ],
            update_default_version=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=boot_policies,
                ignore_changes=list(SERVING_KEEPS) if args.serving else None,
            ),
        )

    def _target_group(
        self, name: str, args: FleetArgs
    ) -> tuple[aws.lb.TargetGroup, aws.lb.Listener]:
        """The color's target group and the attachment listener that puts it in use."""
        child = pulumi.ResourceOptions(parent=self)
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
        # Puts the target group in use (health-checked) before the group waits for healthy
        # targets; unreachable: no security-group rule opens this port. In a stack with a
        # certificate it is HTTPS on the same TLS 1.3 policy, so that opening the port by
        # mistake would still never serve plain HTTP.
        tls = (
            {
                "protocol": "HTTPS",
                "ssl_policy": args.ssl_policy,
                "certificate_arn": args.certificate_arn,
            }
            if args.certificate_arn
            else {"protocol": "HTTP"}
        )
        attachment = aws.lb.Listener(
            f"{name}-attach",
            load_balancer_arn=args.load_balancer_arn,
            port=args.attachment_port,
            default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
            **tls,
            tags={"Color": args.color, "Purpose": "health-check-attachment"},
            opts=child,
        )
        return target_group, attachment

    def _alarms(self, name: str, args: FleetArgs, target_group: aws.lb.TargetGroup) -> ColorAlarms:
        """The color's alarms, which stop and roll back a refresh that makes it unhealthy."""
        return ColorAlarms(
            f"{name}-alarms",
            ColorAlarmsArgs(
                service=args.service,
                stack=args.stack,
                color=args.color,
                target_group_arn_suffix=target_group.arn_suffix,
                load_balancer_arn_suffix=args.load_balancer_arn_suffix,
                health=args.health,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _group(
        self,
        name: str,
        args: FleetArgs,
        template: aws.ec2.LaunchTemplate,
        target_group: aws.lb.TargetGroup,
        depends_on: list[pulumi.Resource],
    ) -> aws.autoscaling.Group:
        """The Auto Scaling group, created on the template's numbered version and waiting for
        healthy targets; ``depends_on``: the alarms and the attachment listener."""
        # The numbered version, as a string: what the ASG and instance-refresh rollback need.
        single_template, mixed_instances = launch_settings(
            template.id, template.latest_version.apply(str), args.instance_types
        )
        capacity_wait, ignored = group_capacity_settings(
            args.capacity, args.scaling, capacity_timeout(args.health.capacity_timeout)
        )
        return aws.autoscaling.Group(
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
            # Create, and an update that changes min_size or desired_capacity, wait until the
            # group has `desired` in-service instances that are healthy in the target group
            # (at least that many on create, exactly that many on update). A value of 0 turns
            # the target check off, so a cold color (desired 0) waits for no target; a
            # launch-template change alone does not wait at all (terraform-provider-aws:
            # "Waiting for Capacity", capacitySatisfiedCreate/Update, resourceGroupUpdate).
            # With scaling on, the autoscaler owns desired and the refresh resource is the only
            # capacity wait (components/fleet_scaling.py, group_capacity_settings).
            **capacity_wait,
            tags=asg_tag_blocks(args.tags),
            # The alarms must exist before a refresh names them (depending on a component
            # waits for all its children: pulumi.runtime.rpc._add_dependency); the target group
            # must be in use before the group waits for healthy targets. The launch settings
            # are the group's only at create: afterwards only a refresh changes them (the
            # module's docstring says why).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                ignore_changes=[*LAUNCH_SETTINGS, *ignored],
            ),
        )

    def _scaling(
        self,
        name: str,
        scaling: ScalingConfig,
        args: FleetArgs,
        group: aws.autoscaling.Group,
        target_group: aws.lb.TargetGroup,
    ) -> FleetScaling:
        """Target tracking on the group (components/fleet_scaling.py)."""
        return FleetScaling(
            f"{name}-scaling",
            FleetScalingArgs(
                group_name=group.name,
                load_balancer_arn_suffix=args.load_balancer_arn_suffix,
                target_group_arn_suffix=target_group.arn_suffix,
                scaling=scaling,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _refresh(
        self,
        name: str,
        args: FleetArgs,
        template: aws.ec2.LaunchTemplate,
        target_group: aws.lb.TargetGroup,
        group: aws.autoscaling.Group,
        alarms: ColorAlarms,
    ) -> local.Command:
        """The refresh resource: moves the group onto the template's version (module docstring)."""
        version = template.latest_version
        preferences = refresh_preferences(
            args.instance_refresh, [*alarms.names, *args.shared_alarm_names]
        )
        return local.Command(
            f"{name}-refresh",
            create=refresh_command(program_python()),
            stdin=pulumi.Output.all(group.name, target_group.arn, template.id, version).apply(
                lambda values: RefreshSpec(
                    region=args.region,
                    group=values[0],
                    target_group_arn=values[1],
                    template_id=values[2],
                    template_version=str(values[3]),
                    instance_types=tuple(args.instance_types),
                    preferences=preferences,
                    timeout=args.health.refresh_timeout,
                ).to_json()
            ),
            # No update and no delete command: a change of the triggers replaces the resource,
            # which runs `create`; a change of the spec alone (preferences, alarms, timeout)
            # runs `create` again in place (pulumi-command: "If an update command isn't
            # provided, then create will also be run"), which converges: it starts a refresh
            # only when the group does not save the wanted configuration. Deleting it touches
            # nothing in AWS. Only the last line of its standard output is read (live_version).
            triggers=refresh_triggers(version, args.instance_types, args.capacity),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[group], replace_on_changes=["triggers"]
            ),
        )
