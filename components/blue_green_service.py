"""BlueGreenService: one ALB in front of two fleets, with weights choosing who serves.

Both target groups always stay in the listener's forward action; the idle color sits at weight 0.
Moving traffic, or rolling it all back, is then an in-place change of one resource: the
listener. Neither fleet, nor the load balancer, is touched by a weight change.

The listener depends on both colors' refresh resources: in any one ``pulumi up``, weights change
only after every color is fully refreshed and healthy, and a failed refresh leaves the listener
as it was (Pulumi does not update a resource whose dependency failed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.access_log_bucket import AccessLogBucket, AccessLogBucketArgs
from components.app_environment import SecretRef
from components.config import (
    COLORS,
    Capacity,
    HealthConfig,
    InstanceRefreshConfig,
    LoadBalancerConfig,
    LogsConfig,
    ScalingConfig,
    WafConfig,
)
from components.fleet import Fleet, FleetArgs
from components.load_balancer_alarms import LoadBalancerAlarms, LoadBalancerAlarmsArgs
from components.log_key import LogKey, LogKeyArgs
from components.policies import log_group_name
from components.service_dashboard import ServiceDashboard, ServiceDashboardArgs
from components.tags import fleet_tags, instance_tags
from components.web_acl import WebAcl, WebAclArgs, waf_log_group_name

HTTP_PORT = 80
HTTPS_PORT = 443
# Each color's attachment listener (see components/fleet.py): ports no client can reach,
# because the load balancer's security group opens only the listener ports above.
ATTACHMENT_PORTS = {"blue": 65001, "green": 65002}


@dataclass(frozen=True)
class ColorArgs:
    version: str
    """Version this color runs."""
    image_id: pulumi.Input[str]
    """Its AMI."""
    capacity: Capacity
    """Its min/desired/max."""
    weight: int
    """Percent of requests it receives."""


@dataclass(frozen=True)
class BlueGreenServiceArgs:
    service: str
    """Service name, the prefix of every resource name."""
    port: int
    """Port the instances serve on."""
    health_check_path: str
    """Path the target groups probe."""
    instance_types: list[str]
    """Instance types for both colors."""
    vpc_id: str
    """VPC of everything."""
    public_subnet_ids: list[str]
    """Subnets of the internet-facing load balancer."""
    private_subnet_ids: list[str]
    """Subnets of the instances."""
    colors: dict[str, ColorArgs]
    """``blue`` and ``green``."""
    instance_refresh: InstanceRefreshConfig
    """Rolling replacement inside a color."""
    load_balancer: LoadBalancerConfig
    """ALB settings."""
    stack: str
    """Short stack name (``pulumi.get_stack()``), part of the alarm names."""
    region: str
    """The stack's region, for the refresh resources."""
    health: HealthConfig
    """The health gate: timeouts and alarms."""
    certificate_arn: str | None = None
    """HTTPS (and an HTTP redirect) when set; plain HTTP otherwise."""
    ingress_cidrs: list[str] = field(default_factory=lambda: ["0.0.0.0/0"])
    """Who may reach the load balancer."""
    stack_tags: dict[str, str] = field(default_factory=dict)
    """Stack-wide tags, repeated where provider default tags do not reach."""
    logs: LogsConfig = field(default_factory=LogsConfig)
    """Retention of the service's (and the web ACL's) log group, encrypted with a stack key."""
    waf: WafConfig = field(default_factory=WafConfig)
    """The web ACL in front of the load balancer."""
    scaling: ScalingConfig | None = None
    """Target tracking on both colors; None: capacity is what the stack file says."""
    app_environment: dict[str, str] = field(default_factory=dict)
    """The stack's app.environment, written to every instance's boot config."""
    app_secrets: dict[str, SecretRef] = field(default_factory=dict)
    """The stack's app.secrets (references), which each color's role may read."""


def forward_action(target_groups: dict[str, pulumi.Input[str]], weights: dict[str, int]):
    """A weighted forward to *both* colors; the idle one stays in at weight 0."""
    return {
        "type": "forward",
        "forward": {
            "target_groups": [
                {"arn": target_groups[color], "weight": weights[color]}
                for color in sorted(target_groups)
            ],
            "stickiness": {"enabled": False, "duration": 1},
        },
    }


def redirect_to_https() -> dict[str, object]:
    return {
        "type": "redirect",
        "redirect": {"protocol": "HTTPS", "port": str(HTTPS_PORT), "status_code": "HTTP_301"},
    }


def listener_ports(https: bool) -> list[int]:
    return [HTTP_PORT, HTTPS_PORT] if https else [HTTP_PORT]


class BlueGreenService(pulumi.ComponentResource):
    """Security groups, the ALB, both fleets and the weighted listener."""

    url: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    listener_arn: pulumi.Output[str]
    fleets: dict[str, Fleet]
    load_balancer_alarm_names: list[str]

    def __init__(
        self, name: str, args: BlueGreenServiceArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golden-fleet:index:BlueGreenService", name, None, opts)
        https = args.certificate_arn is not None
        alb_sg, instance_sg = self._security_groups(name, args, https)
        log_key, log_group = self._logs(name, args)
        alb = self._load_balancer(name, args, alb_sg)
        if args.waf.enabled:
            self._web_acl(name, args, alb, log_key)
        lb_alarms = self._load_balancer_alarms(name, args, alb)
        self.fleets = self._fleets(name, args, instance_sg, log_group, alb, lb_alarms)
        self._dashboard(name, args, alb, lb_alarms)
        listener = self._listeners(name, args, alb, https)

        scheme = "https" if https else "http"
        self.dns_name = alb.dns_name
        self.url = alb.dns_name.apply(lambda dns: f"{scheme}://{dns}")
        self.listener_arn = listener.arn
        self.load_balancer_alarm_names = lb_alarms.names
        self.register_outputs(
            {
                "url": self.url,
                "dnsName": self.dns_name,
                "listenerArn": self.listener_arn,
                "loadBalancerAlarmNames": self.load_balancer_alarm_names,
            }
        )

    def _security_groups(
        self, name: str, args: BlueGreenServiceArgs, https: bool
    ) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup]:
        """The load balancer's and the instances' security groups, and every rule of both."""
        child = pulumi.ResourceOptions(parent=self)
        alb_sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            vpc_id=args.vpc_id,
            description=f"{args.service} load balancer: web in, service port out to instances",
            opts=child,
        )
        instance_sg = aws.ec2.SecurityGroup(
            f"{name}-instance-sg",
            vpc_id=args.vpc_id,
            description=f"{args.service} instances: only the load balancer, only the service port",
            opts=child,
        )
        for port in listener_ports(https):
            for index, cidr in enumerate(args.ingress_cidrs):
                self._tcp_rule(
                    f"{name}-alb-in-{port}-{index}",
                    alb_sg,
                    port,
                    f"clients to the load balancer on {port}",
                    cidr_ipv4=cidr,
                )
        self._tcp_rule(
            f"{name}-alb-out-instances",
            alb_sg,
            args.port,
            "load balancer to instances, service port only",
            outbound=True,
            referenced_security_group_id=instance_sg.id,
        )
        self._tcp_rule(
            f"{name}-instance-in-alb",
            instance_sg,
            args.port,
            "from the load balancer only, service port only",
            referenced_security_group_id=alb_sg.id,
        )
        # Agents reach SSM and CloudWatch over HTTPS (through NAT or VPC endpoints). Nothing else
        # leaves: the image has everything, so instances never download at boot.
        self._tcp_rule(
            f"{name}-instance-out-https",
            instance_sg,
            HTTPS_PORT,
            "SSM and CloudWatch agents over HTTPS",
            outbound=True,
            cidr_ipv4="0.0.0.0/0",
        )
        return alb_sg, instance_sg

    def _tcp_rule(
        self,
        rule_name: str,
        security_group: aws.ec2.SecurityGroup,
        port: int,
        description: str,
        outbound: bool = False,
        **peer,
    ) -> None:
        """One TCP port, one peer (a CIDR or another security group), one direction."""
        rule = aws.vpc.SecurityGroupEgressRule if outbound else aws.vpc.SecurityGroupIngressRule
        rule(
            rule_name,
            security_group_id=security_group.id,
            description=description,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            opts=pulumi.ResourceOptions(parent=self),
            **peer,
        )

    def _logs(
        self, name: str, args: BlueGreenServiceArgs
    ) -> tuple[LogKey, aws.cloudwatch.LogGroup]:
        """The stack's log key and the service's log group, encrypted with it."""
        child = pulumi.ResourceOptions(parent=self)
        # One key for the stack's log groups; its policy names each of them.
        log_groups = [log_group_name(args.service)]
        if args.waf.enabled:
            log_groups.append(waf_log_group_name(args.service, args.stack))
        log_key = LogKey(
            f"{name}-log-key",
            LogKeyArgs(
                service=args.service,
                stack=args.stack,
                region=args.region,
                log_group_names=log_groups,
            ),
            opts=child,
        )
        # Adding the key to an existing log group associates it in place (AssociateKmsKey, the
        # provider's update path since terraform-provider-aws#1751): the group and its history
        # stay; logs ingested before stay as they were stored.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=log_group_name(args.service),
            retention_in_days=args.logs.retention_days,
            kms_key_id=log_key.key_arn,
            opts=child,
        )
        return log_key, log_group

    def _load_balancer(
        self, name: str, args: BlueGreenServiceArgs, alb_sg: aws.ec2.SecurityGroup
    ) -> aws.lb.LoadBalancer:
        """The internet-facing load balancer, with its access logs."""
        lb = args.load_balancer
        # Access logs always: into the configured bucket, or into one the stack owns. The load
        # balancer waits for the bucket policy: ELB checks that it may write (a test object)
        # when access logs are turned on, and refuses the change otherwise (ELB user guide,
        # "Troubleshoot access logs": Access Denied for bucket).
        access_log_bucket = None
        if lb.access_logs.bucket is None:
            access_log_bucket = AccessLogBucket(
                f"{name}-access-logs",
                AccessLogBucketArgs(
                    region=args.region,
                    prefix=lb.access_logs.prefix,
                    expiration_days=lb.access_logs.expiry,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        access_logs = {
            "bucket": access_log_bucket.bucket_name if access_log_bucket else lb.access_logs.bucket,
            "prefix": lb.access_logs.prefix,
            "enabled": True,
        }
        return aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[alb_sg.id],
            drop_invalid_header_fields=True,
            desync_mitigation_mode=lb.desync_mitigation_mode,
            enable_deletion_protection=lb.deletion_protection,
            idle_timeout=lb.idle_timeout,
            enable_http2=True,
            access_logs=access_logs,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[access_log_bucket.policy] if access_log_bucket else None,
            ),
        )

    def _web_acl(
        self, name: str, args: BlueGreenServiceArgs, alb: aws.lb.LoadBalancer, log_key: LogKey
    ) -> WebAcl:
        """The web ACL in front of the load balancer (components/web_acl.py)."""
        return WebAcl(
            f"{name}-waf",
            WebAclArgs(
                service=args.service,
                stack=args.stack,
                load_balancer_arn=alb.arn,
                rate_limit=args.waf.rate_limit,
                rate_window_seconds=args.waf.rate_window_seconds,
                log_retention_days=args.logs.retention_days,
                log_kms_key_arn=log_key.key_arn,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _load_balancer_alarms(
        self, name: str, args: BlueGreenServiceArgs, alb: aws.lb.LoadBalancer
    ) -> LoadBalancerAlarms:
        """The load balancer's own alarm, which a serving color's refresh also watches."""
        # The load balancer's own 5xx (targets crashing, resetting, timing out) carry no target
        # group dimension, so no color's alarm sees them: one alarm on the balancer judges both.
        # A serving color's refresh names it (an idle color's leaves it out: an incident on the
        # live color must not roll back the idle one's fix), so each Fleet waits until it exists
        # (a component's children are registered only after the component, and it only after
        # its depends_on).
        return LoadBalancerAlarms(
            f"{name}-lb-alarms",
            LoadBalancerAlarmsArgs(
                service=args.service,
                stack=args.stack,
                load_balancer_arn_suffix=alb.arn_suffix,
                health=args.health,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _fleets(
        self,
        name: str,
        args: BlueGreenServiceArgs,
        instance_sg: aws.ec2.SecurityGroup,
        log_group: aws.cloudwatch.LogGroup,
        alb: aws.lb.LoadBalancer,
        lb_alarms: LoadBalancerAlarms,
    ) -> dict[str, Fleet]:
        """Both colors' fleets, each after the load balancer's alarm."""
        lb = args.load_balancer
        after_lb_alarms = pulumi.ResourceOptions(parent=self, depends_on=[lb_alarms])
        fleets = {}
        for color in (c.value for c in COLORS):
            spec = args.colors[color]
            fleets[color] = Fleet(
                f"{name}-{color}",
                FleetArgs(
                    service=args.service,
                    color=color,
                    version=spec.version,
                    image_id=spec.image_id,
                    instance_types=args.instance_types,
                    capacity=spec.capacity,
                    port=args.port,
                    health_check_path=args.health_check_path,
                    vpc_id=args.vpc_id,
                    subnet_ids=args.private_subnet_ids,
                    security_group_id=instance_sg.id,
                    log_group_arn=log_group.arn,
                    instance_refresh=args.instance_refresh,
                    stack=args.stack,
                    region=args.region,
                    load_balancer_arn=alb.arn,
                    load_balancer_arn_suffix=alb.arn_suffix,
                    attachment_port=ATTACHMENT_PORTS[color],
                    certificate_arn=args.certificate_arn,
                    ssl_policy=lb.ssl_policy,
                    health=args.health,
                    deregistration_delay=lb.deregistration_delay,
                    scaling=args.scaling,
                    tags=instance_tags(
                        args.stack_tags, fleet_tags(args.service, color, spec.version)
                    ),
                    shared_alarm_names=list(lb_alarms.names),
                    environment=dict(args.app_environment),
                    secrets=dict(args.app_secrets),
                    serving=spec.weight > 0,
                ),
                opts=after_lb_alarms,
            )
        return fleets

    def _dashboard(
        self,
        name: str,
        args: BlueGreenServiceArgs,
        alb: aws.lb.LoadBalancer,
        lb_alarms: LoadBalancerAlarms,
    ) -> ServiceDashboard:
        """The stack's dashboard: both colors and the load balancer (needs the fleets)."""
        return ServiceDashboard(
            f"{name}-dashboard",
            ServiceDashboardArgs(
                service=args.service,
                stack=args.stack,
                region=args.region,
                load_balancer_arn_suffix=alb.arn_suffix,
                target_group_arn_suffixes={
                    color: fleet.target_group_arn_suffix for color, fleet in self.fleets.items()
                },
                alarm_arns={color: fleet.alarm_arns for color, fleet in self.fleets.items()},
                load_balancer_alarm_arns=lb_alarms.arns,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _listeners(
        self, name: str, args: BlueGreenServiceArgs, alb: aws.lb.LoadBalancer, https: bool
    ) -> aws.lb.Listener:
        """The weighted listener (needs the fleets) and, with HTTPS, the HTTP redirect; returns
        the weighted one."""
        lb = args.load_balancer
        forward = forward_action(
            {color: fleet.target_group_arn for color, fleet in self.fleets.items()},
            {color: spec.weight for color, spec in args.colors.items()},
        )
        # Weights move only once both colors are refreshed and healthy.
        after_refreshes = pulumi.ResourceOptions(
            parent=self, depends_on=[fleet.refresh for fleet in self.fleets.values()]
        )
        if https:
            listener = aws.lb.Listener(
                f"{name}-listener",
                load_balancer_arn=alb.arn,
                port=HTTPS_PORT,
                protocol="HTTPS",
                ssl_policy=lb.ssl_policy,
                certificate_arn=args.certificate_arn,
                default_actions=[forward],
                opts=after_refreshes,
            )
            aws.lb.Listener(
                f"{name}-http-redirect",
                load_balancer_arn=alb.arn,
                port=HTTP_PORT,
                protocol="HTTP",
                default_actions=[redirect_to_https()],
                opts=pulumi.ResourceOptions(parent=self),
            )
        else:
            listener = aws.lb.Listener(
                f"{name}-listener",
                load_balancer_arn=alb.arn,
                port=HTTP_PORT,
                protocol="HTTP",
                default_actions=[forward],
                opts=after_refreshes,
            )
        return listener
