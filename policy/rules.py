"""The golden-fleet pattern's invariants, as plain functions over the engine's resource properties.

Each rule takes a resource's type token and its properties (the engine's camelCase names, as a
policy pack sees them) and returns one message per violation, saying what to change. The pack
(``policy/__main__.py``) wraps them in CrossGuard policies; tests call them directly on what the
program registers. Unknown values (a preview of resources not yet created) are skipped by the
pack, never guessed.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
GROUP = "aws:autoscaling/group:Group"
LISTENER = "aws:lb/listener:Listener"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LEGACY_SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ROLE = "aws:iam/role:Role"

WEB_PORTS = (80, 443)
ANYWHERE = ("0.0.0.0/0", "::/0")
MOVING_VERSIONS = ("$Latest", "$Default")


def _truthy(value: Any) -> bool:
    """The provider types some booleans as strings ("true"/"false")."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _list(value: Any) -> list[Any]:
    """A list property; CrossGuard hands lists over as read-only Sequence proxies."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return []


# ---------------------------------------------------------------------------------------------
# Launch templates
# ---------------------------------------------------------------------------------------------
def launch_template_imdsv2(props: Mapping[str, Any]) -> list[str]:
    """Launch templates require IMDSv2 tokens with a hop limit of 1.

    Fires on: a launch template without `http_tokens = "required"`, or with a metadata response
    hop limit other than 1.

    Fix: set `metadata_options.http_tokens = "required"` and `http_put_response_hop_limit = 1`.
    """
    options = props.get("metadataOptions") or {}
    problems = []
    if options.get("httpTokens") != "required":
        problems.append(
            "instance metadata must require IMDSv2 tokens: set metadata_options.http_tokens "
            '= "required"'
        )
    hops = options.get("httpPutResponseHopLimit")
    if hops is None or int(hops) != 1:
        problems.append(
            "the metadata response hop limit must be 1 (keeps role credentials away from "
            "containers): set metadata_options.http_put_response_hop_limit = 1"
        )
    return problems


def launch_template_no_public_ip(props: Mapping[str, Any]) -> list[str]:
    """Launch templates never ask for a public IP.

    Fires on: a network interface asking for a public IP.

    Fix: `associate_public_ip_address = "false"`: instances sit in private subnets behind the
    load balancer.
    """
    return [
        f"network interface {index} asks for a public IP: set associate_public_ip_address = "
        '"false" (instances sit in private subnets behind the load balancer)'
        for index, interface in enumerate(_list(props.get("networkInterfaces")))
        if _truthy(interface.get("associatePublicIpAddress"))
    ]


def launch_template_encrypted_volumes(props: Mapping[str, Any]) -> list[str]:
    """Launch templates declare every EBS volume encrypted.

    Fires on: no block device mapping (the image's own mapping may be unencrypted), or an
    unencrypted EBS volume.

    Fix: `ebs.encrypted = "true"` on every mapping.
    """
    mappings = _list(props.get("blockDeviceMappings"))
    if not mappings:
        return [
            'no block device mapping: declare the root volume with ebs.encrypted = "true" '
            "(the image's own mapping may be unencrypted)"
        ]
    return [
        f'volume {m.get("deviceName", index)} is not encrypted: set ebs.encrypted = "true"'
        for index, m in enumerate(mappings)
        if isinstance(m.get("ebs"), Mapping) and not _truthy(m["ebs"].get("encrypted"))
    ]


# ---------------------------------------------------------------------------------------------
# Auto Scaling groups
# ---------------------------------------------------------------------------------------------
def _template_versions(props: Mapping[str, Any]) -> list[Any]:
    versions = []
    if isinstance(props.get("launchTemplate"), Mapping):
        versions.append(props["launchTemplate"].get("version"))
    mixed = props.get("mixedInstancesPolicy") or {}
    spec = ((mixed.get("launchTemplate") or {}).get("launchTemplateSpecification")) or None
    if isinstance(spec, Mapping):
        versions.append(spec.get("version"))
    return versions


def group_numbered_version(props: Mapping[str, Any]) -> list[str]:
    """Groups run a launch template at a numbered version.

    Fires on: a group on `$Latest`, `$Default` or no launch template.

    Fix: pin the numbered version (`latest_version`), so a template edit is reviewed and an
    instance-refresh rollback works.
    """
    versions = _template_versions(props)
    if not versions:
        return ["the group names no launch template: use a launch template at a numbered version"]
    return [
        f"launch template version {version!r} moves under the group: pin the numbered version "
        "(latest_version), so that a template edit is reviewed and instance-refresh rollback works"
        for version in versions
        if not (isinstance(version, str) and version.isascii() and version.isdigit())
    ]


def group_no_provider_refresh(props: Mapping[str, Any]) -> list[str]:
    """Groups leave instance refreshes to the color's refresh resource, never the provider.

    Fires on: a group with an `instance_refresh` block: the provider would save the new version
    on the group before refreshing, so AWS's rollback would restore the new version.

    Fix: leave refreshes to the color's refresh resource (`release/refresh.py`).
    """
    if props.get("instanceRefresh"):
        return [
            "instance_refresh on the group: the provider saves the new launch-template version "
            "on the group before it starts the refresh, so AWS's rollback would restore the new "
            "version; refreshes belong to the color's refresh resource (release/refresh.py)"
        ]
    return []


def group_elb_health_checks(props: Mapping[str, Any]) -> list[str]:
    """Groups replace instances the load balancer finds unhealthy.

    Fires on: a group whose health check type is not `ELB` (EC2 checks alone keep an instance
    whose app is down in service).

    Fix: `health_check_type = "ELB"`.
    """
    if props.get("healthCheckType") != "ELB":
        return [
            'health_check_type must be "ELB": EC2 checks alone keep an instance whose app is '
            "down in service"
        ]
    return []


# ---------------------------------------------------------------------------------------------
# Log groups
# ---------------------------------------------------------------------------------------------
# A year of logs (CIS; Security Hub CloudWatch.16, Checkov CKV_AWS_338); 0 or no retention is
# "never expire", which keeps them longer still.
LOG_RETENTION_MIN_DAYS = 365


def log_group_retained_and_encrypted(props: Mapping[str, Any]) -> list[str]:
    """Log groups are kept a year and encrypted with a key the stack owns.

    Fires on: a log group kept less than 365 days, or without a KMS key.

    Fix: `retention_in_days` >= 365 and `kms_key_id` a customer managed key.
    """
    problems = []
    retention = props.get("retentionInDays") or 0
    if retention and retention < LOG_RETENTION_MIN_DAYS:
        problems.append(
            f"set retention_in_days to at least {LOG_RETENTION_MIN_DAYS} (got {retention}): "
            "logs must cover a year"
        )
    if not props.get("kmsKeyId"):
        problems.append("set kms_key_id to a customer managed KMS key the stack owns")
    return problems


# ---------------------------------------------------------------------------------------------
# Load balancer and listeners
# ---------------------------------------------------------------------------------------------
def load_balancer_drops_invalid_headers(props: Mapping[str, Any]) -> list[str]:
    """Application load balancers drop malformed headers.

    Fires on: an application load balancer that forwards malformed headers (request smuggling).

    Fix: `drop_invalid_header_fields = True`.
    """
    if props.get("loadBalancerType", "application") != "application":
        return []
    if props.get("dropInvalidHeaderFields") is not True:
        return ["set drop_invalid_header_fields = True (request smuggling via malformed headers)"]
    return []


def _redirects_to_https(action: Mapping[str, Any]) -> bool:
    redirect = action.get("redirect") or {}
    return action.get("type") == "redirect" and redirect.get("protocol") == "HTTPS"


def listener_tls13_or_redirect(props: Mapping[str, Any], allow_plain_http: bool) -> list[str]:
    """Listeners serve HTTPS with a TLS 1.3 policy or redirect HTTP to HTTPS.

    Fires on: an HTTPS listener without an `ELBSecurityPolicy-TLS13-*` policy; an HTTP listener
    that serves instead of redirecting (allowed only with the policy's `allowPlainHttp`,
    staging's config).

    Fix: a TLS 1.3 policy such as `ELBSecurityPolicy-TLS13-1-2-Res-2021-06`, or a redirect to
    HTTPS.
    """
    protocol = props.get("protocol")
    actions = _list(props.get("defaultActions"))
    if protocol == "HTTPS":
        policy = props.get("sslPolicy") or ""
        if not (isinstance(policy, str) and policy.startswith("ELBSecurityPolicy-TLS13-")):
            return [
                f"ssl_policy {policy or '(default)'!r} allows pre-TLS-1.3 clients only: use a "
                "TLS 1.3 policy such as ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
            ]
        return []
    if protocol == "HTTP" and actions and all(_redirects_to_https(a) for a in actions):
        return []
    if protocol == "HTTP" and allow_plain_http:
        return []
    return [
        f"a {protocol} listener that serves traffic: serve HTTPS with a TLS 1.3 policy, or make "
        "this listener redirect to HTTPS (allowPlainHttp is only for stacks without a certificate)"
    ]


def listener_weights(props: Mapping[str, Any]) -> list[str]:
    """Forward weights are whole, not negative, and sum to 100.

    Fires on: forward weights that are not whole, are below 0 or do not sum to 100 (a share that
    goes nowhere is an outage for it); one target group named twice.

    Fix: weights summing to 100, each target group once.
    """
    problems = []
    for action in _list(props.get("defaultActions")):
        if action.get("type") != "forward" or not isinstance(action.get("forward"), Mapping):
            continue
        groups = _list(action["forward"].get("targetGroups"))
        weights = [group.get("weight") for group in groups]
        if any(not isinstance(w, int | float) or w < 0 or int(w) != w for w in weights):
            problems.append(f"forward weights must be whole numbers >= 0 (got {weights})")
        elif sum(weights) != 100:
            problems.append(
                f"forward weights must sum to 100 (got {' + '.join(str(int(w)) for w in weights)}"
                f" = {int(sum(weights))}): a share that goes nowhere is an outage for it"
            )
        arns = [group.get("arn") for group in groups]
        if len(set(arns)) != len(arns):
            problems.append("the forward action names one target group twice")
    return problems


# ---------------------------------------------------------------------------------------------
# Stack-wide rules
# ---------------------------------------------------------------------------------------------
def forward_to_existing_target_groups(
    resources: Iterable[tuple[str, str, Mapping[str, Any]]],
) -> list[tuple[str, str]]:
    """Listeners forward only to target groups of this stack.

    Returns (resource name, message) for each forward to a target group it does not own.

    Fires on: a listener forwarding to a target group the stack does not own.

    Fix: forward only to this stack's colors: weights move traffic between them.
    """
    resources = list(resources)
    owned = {props.get("arn") for type_, _, props in resources if type_ == TARGET_GROUP}
    problems = []
    for type_, name, props in resources:
        if type_ != LISTENER:
            continue
        for action in _list(props.get("defaultActions")):
            forward = action.get("forward") if isinstance(action, Mapping) else None
            for group in _list((forward or {}).get("targetGroups")):
                if group.get("arn") not in owned:
                    problems.append(
                        (
                            name,
                            f"forwards to {group.get('arn')}, which is not a target group of "
                            "this stack: weights must move traffic between this stack's colors",
                        )
                    )
    return problems


def open_ingress_only_to_the_load_balancer(
    resources: Iterable[tuple[str, str, Mapping[str, Any]]],
) -> list[tuple[str, str]]:
    """Only the load balancer is open to the internet, and only on 80 and 443.

    Returns (resource name, message) for ingress from anywhere to anything else.

    Fires on: ingress from `0.0.0.0/0` or `::/0` to anything but the load balancer's security
    group on 80/443, or inline ingress from anywhere.

    Fix: restrict the source or the port; separate ingress rules, open only to the load balancer
    on 80 and 443.
    """
    resources = list(resources)
    balancer_groups = {
        group
        for type_, _, props in resources
        if type_ == LOAD_BALANCER
        for group in _list(props.get("securityGroups"))
    }
    problems = []
    for type_, name, props in resources:
        if type_ == INGRESS_RULE:
            sources = [props.get("cidrIpv4"), props.get("cidrIpv6")]
            group = props.get("securityGroupId")
        elif type_ == LEGACY_SG_RULE and props.get("type") == "ingress":
            sources = _list(props.get("cidrBlocks")) + _list(props.get("ipv6CidrBlocks"))
            group = props.get("securityGroupId")
        elif type_ == SECURITY_GROUP:
            for rule in _list(props.get("ingress")):
                if set(_list(rule.get("cidrBlocks")) + _list(rule.get("ipv6CidrBlocks"))) & set(
                    ANYWHERE
                ):
                    problems.append(
                        (
                            name,
                            "inline ingress from anywhere: use separate ingress rules, and "
                            "only to the load balancer on 80/443",
                        )
                    )
            continue
        else:
            continue
        if not set(sources) & set(ANYWHERE):
            continue
        ports = (props.get("fromPort"), props.get("toPort"))
        web = ports[0] == ports[1] and ports[0] in WEB_PORTS
        if group not in balancer_groups or not web:
            problems.append(
                (
                    name,
                    f"ingress from anywhere on ports {ports[0]}-{ports[1]} to {group}: only "
                    "the load balancer's security group may be open, and only on 80 and 443",
                )
            )
    return problems


# ---------------------------------------------------------------------------------------------
# Secrets the instances may read
# ---------------------------------------------------------------------------------------------
# Every action that returns a secret's or a parameter's value.
SECRET_READS = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:BatchGetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
)
# AWS managed policies that allow ssm:GetParameter(s) on "*" (AmazonSSMManagedInstanceCore).
PARAMETER_READING_MANAGED_POLICIES = ("AmazonSSMManagedInstanceCore",)


def _statements(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    document = props.get("policy")
    if isinstance(document, str):
        document = json.loads(document)
    if not isinstance(document, Mapping):
        return []
    statements = document.get("Statement")
    return [statements] if isinstance(statements, Mapping) else _list(statements)


def _reads_secrets(actions: Any) -> list[str]:
    patterns = [actions] if isinstance(actions, str) else _list(actions)
    return [
        action
        for action in SECRET_READS
        if any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in patterns)
    ]


# Where platform/ creates each service's permissions boundary (components/policies.py
# BOUNDARY_PATH; the pack is published from policy/ alone, so it holds its own copy, which
# tests/test_policy_pack.py holds equal to the program's).
BOUNDARY_PATH = "/golden-fleet/"


def role_has_permissions_boundary(props: Mapping[str, Any]) -> list[str]:
    """Every role the program makes carries its service's permissions boundary.

    Fires on: an IAM role without `permissions_boundary`, or with a policy other than a
    `<service>-boundary` under the `/golden-fleet/` path that `platform/` creates.

    Fix: set `permissions_boundary` to
    `arn:aws:iam::<account>:policy/golden-fleet/<service>-boundary`: without it the deploy roles
    may not create the role at all, and nothing caps what the role may be given.
    """
    boundary = props.get("permissionsBoundary")
    if not isinstance(boundary, str) or not boundary:
        return [
            "the role has no permissions_boundary: set it to the service's boundary "
            f"(arn:aws:iam::<account>:policy{BOUNDARY_PATH}<service>-boundary, made by platform/)"
        ]
    resource = boundary.split(":", 5)[-1]
    if not (resource.startswith(f"policy{BOUNDARY_PATH}") and resource.endswith("-boundary")):
        return [
            f"permissions_boundary {boundary} is not a service's boundary: use "
            f"arn:aws:iam::<account>:policy{BOUNDARY_PATH}<service>-boundary (made by platform/)"
        ]
    return []


def role_policy_names_each_secret(props: Mapping[str, Any]) -> list[str]:
    """Roles read only the secrets and parameters they name, never "*" or a wildcard.

    Fires on: a role policy allowing `secretsmanager:GetSecretValue`/`BatchGetSecretValue` or
    `ssm:GetParameter*` on `"*"`, a wildcard, no resource, or with `NotResource`/`NotAction`.

    Fix: name each secret by its full ARN and each parameter by its ARN
    (`golden-fleet:app.secrets`).
    """
    problems = []
    for index, statement in enumerate(_statements(props)):
        if statement.get("Effect") != "Allow":
            continue
        reads = _reads_secrets(statement.get("Action"))
        if not reads:
            continue
        where = f"statement {statement.get('Sid') or index} allows {', '.join(reads)}"
        if "NotResource" in statement or "NotAction" in statement:
            problems.append(f"{where} with NotResource/NotAction: name each resource instead")
            continue
        resources = statement.get("Resource")
        resources = [resources] if isinstance(resources, str) else _list(resources)
        wild = [r for r in resources if "*" in str(r) or "?" in str(r)]
        if wild or not resources:
            problems.append(
                f"{where} on {', '.join(map(str, wild)) or 'no resource'}: name each secret by "
                "its full ARN and each parameter by its ARN (golden-fleet:app.secrets)"
            )
    return problems


def parameter_reads_fenced(
    resources: Iterable[tuple[str, str, Mapping[str, Any]]],
) -> list[tuple[str, str]]:
    """A role given AmazonSSMManagedInstanceCore denies reading parameters it does not name.

    Fires on: a role given `AmazonSSMManagedInstanceCore` (which allows `ssm:GetParameter(s)` on
    every parameter) without a deny of the parameter reads on everything it does not name.

    Fix: the color's `parameter-fence` policy: a Deny of the parameter reads on `NotResource` =
    the configured parameters (`components/policies.py`, `parameter_fence_policy`).
    """
    fenced: set[str] = set()
    exposed: dict[str, str] = {}
    for type_, name, props in resources:
        if type_ == ROLE_POLICY_ATTACHMENT and str(props.get("policyArn", "")).endswith(
            tuple(f":policy/{p}" for p in PARAMETER_READING_MANAGED_POLICIES)
        ):
            exposed[str(props.get("role"))] = name
        if type_ == ROLE_POLICY:
            for statement in _statements(props):
                actions = statement.get("Action")
                denied = set(_reads_secrets(actions)) if statement.get("Effect") == "Deny" else ()
                if {"ssm:GetParameter", "ssm:GetParameters"} <= set(denied) and (
                    "NotResource" in statement or statement.get("Resource") == "*"
                ):
                    fenced.add(str(props.get("role")))
    return [
        (
            attachment,
            f"role {role} has AmazonSSMManagedInstanceCore, which allows "
            "ssm:GetParameter(s) on every parameter: add a Deny of the parameter reads on "
            "NotResource = the configured parameters (components/policies.py "
            "parameter_fence_policy)",
        )
        for role, attachment in sorted(exposed.items())
        if role not in fenced
    ]


# Resource rules by policy name: (resource type, rule).
RESOURCE_RULES = {
    "launch-template-imdsv2": (LAUNCH_TEMPLATE, launch_template_imdsv2),
    "launch-template-no-public-ip": (LAUNCH_TEMPLATE, launch_template_no_public_ip),
    "launch-template-encrypted-volumes": (LAUNCH_TEMPLATE, launch_template_encrypted_volumes),
    "group-numbered-launch-template-version": (GROUP, group_numbered_version),
    "group-no-provider-refresh": (GROUP, group_no_provider_refresh),
    "group-elb-health-checks": (GROUP, group_elb_health_checks),
    "load-balancer-drops-invalid-headers": (LOAD_BALANCER, load_balancer_drops_invalid_headers),
    "listener-weights-sum-to-100": (LISTENER, listener_weights),
    "log-group-retained-a-year-and-encrypted": (LOG_GROUP, log_group_retained_and_encrypted),
    "role-policy-names-each-secret": (ROLE_POLICY, role_policy_names_each_secret),
    "role-has-permissions-boundary": (ROLE, role_has_permissions_boundary),
}
STACK_RULES = {
    "forward-to-own-target-groups": forward_to_existing_target_groups,
    "open-ingress-only-to-the-load-balancer": open_ingress_only_to_the_load_balancer,
    "parameter-reads-fenced": parameter_reads_fenced,
}
