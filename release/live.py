"""What AWS actually runs for one color of one stack, and whether that color is fit for traffic.

Pulumi state says what the program last asked for; AWS may run something else. An instance
refresh is started by the provider, which returns at once: the pulumi_aws ``Group``
``instance_refresh`` argument documents "This resource does not wait for the instance refresh
to complete" (pulumi_aws ``autoscaling/_inputs.py``; hashicorp/terraform-provider-aws#42355), and
AWS offers no SDK waiter for refreshes (aws/aws-cli#7929). When a refresh fails with auto
rollback, AWS "restores your Auto Scaling group to the configuration that it was using before
the start of the instance refresh" (RollbackInstanceRefresh API reference; EC2 Auto Scaling user
guide, "Undo changes with a manual or auto rollback"): the group is back on the previous
launch-template version while Pulumi state still holds the new one.

Two halves, kept apart:

* reading (:func:`read_group`, :func:`read_color`, :func:`listener_weights`,
  :func:`image_for_version`): boto3 calls through :mod:`release.aws_clients` (3 s connect, 10 s
  read, 3 attempts), so nothing sits silent for minutes. AWS trouble becomes one
  :class:`LiveError` line.
* evaluation (:func:`problems`, :func:`verdict`, :func:`progress_line`, :func:`drift`): plain
  functions of the facts read, tested without AWS.

:func:`gate` joins them for the release command (``shift``, ``finish``, ``rollout``): the
problems, one line each, that make the given colors unfit for traffic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from components.alarm_names import alarm_name_prefix
from components.config import Color, StackConfig

# DescribeInstanceRefreshes ``Status`` values (botocore's autoscaling service model). ``Baking``
# is the bake time after the last replacement; ``Cancelling``/``RollbackInProgress`` still move
# instances. A refresh in any of these has not finished.
RUNNING = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
# A refresh that ended without putting the new configuration on every instance. After
# RollbackSuccessful the group runs its previous launch-template version; after Failed or
# Cancelled (no rollback) it may run a mix, since "cancellation does not roll back any
# replacements that have already been completed" (DescribeInstanceRefreshes API reference).
FAILED = frozenset({"Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"})
SUCCESSFUL = "Successful"

# ELB target health states (DescribeTargetHealth): only ``healthy`` takes requests.
HEALTHY = "healthy"
IN_SERVICE = "InService"

WHAT_TO_DO = (
    "run `pulumi refresh` so that Pulumi state shows what AWS runs, then `python -m release "
    "rollback STACK` (traffic back to the stable color) or deploy a fixed version"
)


class LiveError(Exception):
    """AWS could not be read (no credentials, denied, unreachable, or nothing found). One line."""


class GroupNotFound(LiveError):
    """The named group does not exist: waiting longer cannot help."""


def _one_line(text: object, limit: int = 160) -> str:
    """Whitespace collapsed and cut: an error body (even an HTML page) stays one short line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# The facts
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refresh:
    """The group's latest instance refresh, as DescribeInstanceRefreshes reports it.

    After an auto rollback (``Preferences.AutoRollback``, triggered by a failure or by an alarm
    of ``AlarmSpecification``) the status is ``RollbackInProgress`` then ``RollbackSuccessful``
    or ``RollbackFailed``, and ``RollbackDetails.RollbackReason`` says why (InstanceRefresh and
    RollbackDetails API references; botocore's autoscaling service model).
    """

    status: str
    status_reason: str = ""
    percentage_complete: int | None = None
    instances_to_update: int | None = None
    checkpoints: tuple[int, ...] = ()  # Preferences.CheckpointPercentages
    checkpoint_delay: int | None = None  # Preferences.CheckpointDelay (seconds)
    rollback_reason: str = ""  # RollbackDetails.RollbackReason (auto or manual rollback)
    refresh_id: str = ""

    @property
    def reason(self) -> str:
        """The most specific explanation AWS gave, or a plain placeholder."""
        return self.rollback_reason or self.status_reason or "no status reason given"


@dataclass(frozen=True)
class Instance:
    instance_id: str
    lifecycle: str  # InService, Pending, Terminating, ...
    template_version: str | None  # the launch-template version it was launched from


@dataclass(frozen=True)
class ColorState:
    """One Auto Scaling group and what serves behind it."""

    group: str
    desired: int
    template_id: str | None
    template_version: str | None  # the version the group launches now (after any rollback)
    image_id: str | None  # that version's ImageId
    refresh: Refresh | None
    instances: tuple[Instance, ...] = ()
    target_group_arn: str | None = None
    targets: Mapping[str, str] = field(default_factory=dict)  # instance id -> health state
    alarms: Mapping[str, str] = field(default_factory=dict)  # alarm name -> OK/ALARM/...

    @property
    def in_service(self) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances if i.lifecycle == IN_SERVICE)

    @property
    def healthy_targets(self) -> int:
        return sum(1 for state in self.targets.values() if state == HEALTHY)


# ---------------------------------------------------------------------------------------------
# Evaluation: plain functions of the facts
# ---------------------------------------------------------------------------------------------
class Outcome(Enum):
    READY = "ready"
    WAIT = "wait"
    FAILED = "failed"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    message: str


def _version_problems(state: ColorState, expected: str) -> list[str]:
    off = [i for i in state.in_service if i.template_version != expected]
    if not off:
        return []
    versions = sorted({i.template_version or "unknown" for i in off})
    return [
        f"{len(off)} of {len(state.in_service)} in-service instances run launch-template "
        f"version {', '.join(versions)}, not {expected}"
    ]


def _health_problems(state: ColorState) -> list[str]:
    found = []
    if state.healthy_targets < state.desired:
        found.append(f"{state.healthy_targets}/{state.desired} targets healthy in its target group")
    unhealthy = [
        f"{i.instance_id} {state.targets.get(i.instance_id, 'not registered')}"
        for i in state.in_service
        if state.targets.get(i.instance_id) != HEALTHY
    ]
    if unhealthy:
        found.append(f"in-service but not healthy: {', '.join(sorted(unhealthy)[:3])}")
    return found


def refresh_problem(refresh: Refresh | None) -> str | None:
    """Why the latest refresh stands in the way, or ``None`` (none, or Successful)."""
    if refresh is None or refresh.status == SUCCESSFUL:
        return None
    if refresh.status in RUNNING:
        done = refresh.percentage_complete
        return f"instance refresh {refresh.status}" + (f" ({done}% complete)" if done else "")
    return f"latest instance refresh {refresh.status}: {refresh.reason}"


def problems(state: ColorState, expected_version: str | None = None) -> list[str]:
    """Everything that makes the group unfit for traffic; empty when it is ready.

    Ready means: no instance refresh in progress and the latest one did not fail; every
    in-service instance runs ``expected_version`` (default: the version the group launches
    now); at least ``desired`` healthy targets, and every in-service instance healthy among
    them. A group with desired 0 has nothing to wait for.
    """
    if state.desired == 0:
        return []
    found = []
    refresh = refresh_problem(state.refresh)
    if refresh:
        found.append(refresh)
    expected = expected_version or state.template_version
    if expected is not None:
        found += _version_problems(state, expected)
    return found + _health_problems(state)


def verdict(state: ColorState, version: str) -> Verdict:
    """The waiter's decision for one poll: ready, keep waiting, or failed for good."""
    if state.desired == 0:
        return Verdict(Outcome.READY, f"{state.group}: desired capacity 0, nothing to wait for")
    refresh = state.refresh
    if refresh is not None and refresh.status in FAILED:
        return Verdict(Outcome.FAILED, failure_message(state, version))
    found = problems(state, version)
    if not found:
        return Verdict(
            Outcome.READY,
            f"{state.group}: launch-template version {version} on all "
            f"{len(state.in_service)} in-service instances, {state.healthy_targets}/"
            f"{state.desired} healthy",
        )
    return Verdict(Outcome.WAIT, "; ".join(found))


def failure_message(state: ColorState, version: str, why: str | None = None) -> str:
    """One line: the group, what AWS said, the version it left the group on, what to do."""
    refresh = state.refresh
    what = why or (
        f"instance refresh {refresh.status}: {refresh.reason}"
        if refresh is not None
        else "no instance refresh"
    )
    left = state.template_version or "unknown"
    drifted = (
        f" (not {version}: AWS rolled the group back)"
        if state.template_version not in (None, version)
        else ""
    )
    return (
        f"{state.group}: {what}; AWS left the group on launch-template version {left}"
        f"{drifted} — {WHAT_TO_DO}"
    )


def _checkpoint(refresh: Refresh) -> str | None:
    """The checkpoint the refresh is at or heading for, from its preferences and progress.

    DescribeInstanceRefreshes has no checkpoint field: a refresh paused at a checkpoint stays
    ``InProgress`` with ``PercentageComplete`` at (or past) that checkpoint's percentage until
    ``CheckpointDelay`` has passed (EC2 Auto Scaling user guide, "Add checkpoints to an instance
    refresh"; the InstanceRefresh and RefreshPreferences API references). So it is derived here
    from ``Preferences.CheckpointPercentages`` and the progress; AWS's ``StatusReason`` is shown
    beside it verbatim, since its wording is not documented.
    """
    if not refresh.checkpoints:
        return None
    done = refresh.percentage_complete or 0
    reached = [p for p in refresh.checkpoints if p <= done and p < 100]
    if reached and refresh.status == "InProgress":
        delay = f", delay {refresh.checkpoint_delay} s" if refresh.checkpoint_delay else ""
        return f"checkpoint {reached[-1]}% reached{delay}"
    upcoming = [p for p in refresh.checkpoints if p > done]
    return f"next checkpoint {upcoming[0]}%" if upcoming else None


def progress_line(state: ColorState, version: str) -> str:
    """What the waiter prints while it waits: refresh progress, versions, health."""
    parts = [state.group]
    refresh = state.refresh
    if refresh is None:
        parts.append("no instance refresh")
    else:
        text = f"refresh {refresh.status}"
        if refresh.percentage_complete is not None:
            text += f" {refresh.percentage_complete}%"
        if refresh.instances_to_update is not None:
            text += f", {refresh.instances_to_update} to update"
        parts.append(text)
        checkpoint = _checkpoint(refresh)
        if checkpoint:
            parts.append(checkpoint)
        if refresh.status == "Baking":
            parts.append("bake time after the last replacement")
        if refresh.status in RUNNING and refresh.status_reason:
            parts.append(refresh.status_reason)
    on_version = sum(1 for i in state.in_service if i.template_version == version)
    parts.append(f"{on_version}/{len(state.in_service)} in service on version {version}")
    parts.append(f"{state.healthy_targets}/{state.desired} healthy")
    return " | ".join(parts)


# ---------------------------------------------------------------------------------------------
# Image drift: what the stack file says against what the group launches
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageFacts:
    """The image the file's version resolves to, and the version the group's image is named for."""

    expected_image: str | None  # the newest <service>-<version>-<timestamp> image, if found
    running_version: str | None  # parsed from the name of the image the group launches


# The characters EC2 allows in an AMI name (RegisterImage API reference), 3-128 of them.
_AMI_NAME = re.compile(r"[A-Za-z0-9()\[\] ./'@_-]{3,128}")


def version_from_image_name(name: str, service: str) -> str | None:
    """``checkout-1.4.0-20260101T000000Z`` -> ``1.4.0``, checked against the name contract."""
    from release import images

    prefix = f"{service}-"
    if not (_AMI_NAME.fullmatch(name) and name.startswith(prefix)):
        return None
    if "-" not in name[len(prefix) :]:
        return None
    candidate = name[len(prefix) :].rsplit("-", 1)[0]
    if images.newest_image([{"Name": name}], service, candidate) is None:
        return None
    return candidate


def drift(file_version: str, state: ColorState, facts: ImageFacts) -> str | None:
    """One line when the group does not launch the image of the file's version.

    Image ids are compared first; when they differ (or the file's image was not found), the
    version in the running image's name decides, so that a copy of the same version is not
    called drift.
    """
    if state.image_id is None:
        return None
    if facts.expected_image is not None and state.image_id == facts.expected_image:
        return None
    if facts.running_version == file_version:
        return None
    runs = facts.running_version or "an image not named for any version"
    expected = f" ({facts.expected_image})" if facts.expected_image else ""
    return (
        f"drift: the stack file says {file_version}{expected}, but {state.group} launches "
        f"{state.image_id} ({runs}) from launch-template version {state.template_version}"
        + (
            f" — the latest instance refresh was {state.refresh.status}"
            if state.refresh is not None and state.refresh.status in FAILED
            else ""
        )
    )


# ---------------------------------------------------------------------------------------------
# Reading AWS
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clients:
    """The boto3 clients the reads use. ``refreshes`` is an Auto Scaling client too; it is
    separate so that tests can stub the instance-refresh calls alone."""

    autoscaling: Any
    refreshes: Any
    ec2: Any
    elbv2: Any
    cloudwatch: Any

    @classmethod
    def for_region(cls, region: str) -> Clients:
        from release.aws_clients import client

        autoscaling = client("autoscaling", region)
        return cls(
            autoscaling=autoscaling,
            refreshes=autoscaling,
            ec2=client("ec2", region),
            elbv2=client("elbv2", region),
            cloudwatch=client("cloudwatch", region),
        )


def _aws(what: str, call: Any, **kwargs: Any) -> dict[str, Any]:
    """One AWS call; any botocore trouble becomes a one-line :class:`LiveError`."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    try:
        return call(**kwargs)
    except ResponseParserError:
        # Not a BotoCoreError: an HTML error page (a proxy, a captive portal, a 500 from an
        # emulator) where an AWS answer was expected.
        raise LiveError(f"{what}: the endpoint did not answer like AWS (unparseable)") from None
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise LiveError(
            f"{what}: AWS refused ({_one_line(detail.get('Code', 'error'), 60)}: "
            f"{_one_line(detail.get('Message', ''))})"
        ) from None
    except BotoCoreError as error:
        raise LiveError(f"{what}: {_one_line(error)}") from None


def _template_spec(group: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(template id, version) from a launch template or a mixed-instances policy."""
    spec = group.get("LaunchTemplate") or (
        group.get("MixedInstancesPolicy", {})
        .get("LaunchTemplate", {})
        .get("LaunchTemplateSpecification", {})
    )
    return spec.get("LaunchTemplateId"), spec.get("Version")


def find_group(clients: Clients, stack: str, service: str, color: str) -> dict[str, Any] | None:
    """The color's group, by its Stack/Service/Color tags; ``None`` when there is none."""
    filters = [
        {"Name": "tag:Stack", "Values": [stack]},
        {"Name": "tag:Service", "Values": [service]},
        {"Name": "tag:Color", "Values": [color]},
    ]
    groups: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Filters": filters}
        if token:
            kwargs["NextToken"] = token
        page = _aws(
            f"finding the {color} group of {stack}",
            clients.autoscaling.describe_auto_scaling_groups,
            **kwargs,
        )
        groups += page.get("AutoScalingGroups", [])
        token = page.get("NextToken")
        if not token:
            break
    if len(groups) > 1:
        names = ", ".join(sorted(g["AutoScalingGroupName"] for g in groups))
        raise LiveError(
            f"more than one group is tagged Stack={stack} Service={service} Color={color}: "
            f"{names} — remove the stray one"
        )
    return groups[0] if groups else None


def latest_refresh(clients: Clients, group: str) -> Refresh | None:
    page = _aws(
        f"reading {group}'s instance refreshes",
        clients.refreshes.describe_instance_refreshes,
        AutoScalingGroupName=group,
    )
    refreshes = page.get("InstanceRefreshes", [])
    if not refreshes:
        return None
    # AWS lists the newest first. One not started yet (Pending) may have no StartTime: taken as
    # listed. Otherwise the start time decides, should that order ever change.
    timed = [r for r in refreshes if r.get("StartTime") is not None]
    if refreshes[0].get("StartTime") is None or not timed:
        newest = refreshes[0]
    else:
        newest = max(timed, key=lambda r: r["StartTime"])
    preferences = newest.get("Preferences", {})
    return Refresh(
        status=newest.get("Status", "unknown"),
        status_reason=" ".join(str(newest.get("StatusReason", "")).split()),
        percentage_complete=newest.get("PercentageComplete"),
        instances_to_update=newest.get("InstancesToUpdate"),
        checkpoints=tuple(preferences.get("CheckpointPercentages") or ()),
        checkpoint_delay=preferences.get("CheckpointDelay"),
        rollback_reason=" ".join(
            str(newest.get("RollbackDetails", {}).get("RollbackReason", "")).split()
        ),
        refresh_id=newest.get("InstanceRefreshId", ""),
    )


def template_image(clients: Clients, template_id: str, version: str) -> str | None:
    page = _aws(
        f"reading launch template {template_id} version {version}",
        clients.ec2.describe_launch_template_versions,
        LaunchTemplateId=template_id,
        Versions=[version],
    )
    versions = page.get("LaunchTemplateVersions", [])
    return versions[0].get("LaunchTemplateData", {}).get("ImageId") if versions else None


def target_health(clients: Clients, target_group_arn: str) -> dict[str, str]:
    page = _aws(
        "reading target health",
        clients.elbv2.describe_target_health,
        TargetGroupArn=target_group_arn,
    )
    return {
        d["Target"]["Id"]: d.get("TargetHealth", {}).get("State", "unknown")
        for d in page.get("TargetHealthDescriptions", [])
    }


def alarm_states(clients: Clients, prefix: str) -> dict[str, str]:
    states: dict[str, str] = {}
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "AlarmNamePrefix": prefix,
            "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
        }
        if token:
            kwargs["NextToken"] = token
        page = _aws("reading alarms", clients.cloudwatch.describe_alarms, **kwargs)
        for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
            states[alarm["AlarmName"]] = alarm.get("StateValue", "unknown")
        token = page.get("NextToken")
        if not token:
            return states


def _state(
    clients: Clients,
    group: Mapping[str, Any],
    target_group_arn: str | None,
    alarm_prefix: str | None,
    skip_when_empty: bool = False,
) -> ColorState:
    name = group["AutoScalingGroupName"]
    desired = int(group.get("DesiredCapacity", 0))
    if skip_when_empty and desired == 0:
        # Nothing can be unready in an empty group; the waiter returns without more calls.
        return ColorState(name, 0, *_template_spec(group), image_id=None, refresh=None)
    template_id, version = _template_spec(group)
    image = template_image(clients, template_id, version) if template_id and version else None
    tg = target_group_arn or next(iter(group.get("TargetGroupARNs") or []), None)
    return ColorState(
        group=name,
        desired=desired,
        template_id=template_id,
        template_version=version,
        image_id=image,
        refresh=latest_refresh(clients, name),
        instances=tuple(
            Instance(
                instance_id=i["InstanceId"],
                lifecycle=i.get("LifecycleState", "unknown"),
                template_version=(
                    i.get("LaunchTemplate", {}).get("Version") if i.get("LaunchTemplate") else None
                ),
            )
            for i in group.get("Instances", [])
        ),
        target_group_arn=tg,
        targets=target_health(clients, tg) if tg else {},
        alarms=alarm_states(clients, alarm_prefix) if alarm_prefix else {},
    )


def read_group(clients: Clients, group: str, target_group_arn: str | None = None) -> ColorState:
    """The state of the group named ``group`` (the waiter's view: it knows the name)."""
    page = _aws(
        f"reading group {group}",
        clients.autoscaling.describe_auto_scaling_groups,
        AutoScalingGroupNames=[group],
    )
    groups = page.get("AutoScalingGroups", [])
    if not groups:
        raise GroupNotFound(f"no Auto Scaling group named {group!r} in this account and region")
    return _state(clients, groups[0], target_group_arn, None, skip_when_empty=True)


def read_color(clients: Clients, stack: str, service: str, color: Color) -> ColorState | None:
    """The state of one color of one stack, found by tags; ``None`` when it has no group."""
    short = stack.split("/")[-1]
    group = find_group(clients, short, service, color.value)
    if group is None:
        return None
    return _state(clients, group, None, alarm_name_prefix(service, short, color.value))


def image_for_version(clients: Clients, cfg: StackConfig, version: str) -> str | None:
    """The image the file's version resolves to: the lookup a promote stack makes."""
    from release import images

    # Deprecated images included, a current one preferred: the same lookup as the program's
    # promote mode and the release command's baked check (release/images.py explains why).
    found = _aws(
        f"looking up the image of {version}",
        images.describe_version_images,
        ec2=clients.ec2,
        owner=images.image_owner(cfg),
        service=cfg.service.name,
        version=version,
    )
    image = images.newest_image(found, cfg.service.name, version)
    return image.get("ImageId") if image else None


def image_version(clients: Clients, image_id: str, service: str) -> str | None:
    page = _aws(f"reading image {image_id}", clients.ec2.describe_images, ImageIds=[image_id])
    found = page.get("Images", [])
    return version_from_image_name(found[0].get("Name", ""), service) if found else None


def image_facts(clients: Clients, cfg: StackConfig, version: str, state: ColorState) -> ImageFacts:
    expected = image_for_version(clients, cfg, version)
    running = None
    if state.image_id and state.image_id != expected:
        running = image_version(clients, state.image_id, cfg.service.name)
    return ImageFacts(expected_image=expected, running_version=running)


def listener_weights(clients: Clients, target_group_arns: Mapping[Color, str]) -> dict[Color, int]:
    """The weights the live listener forwards with, per color (colors it does not forward to
    are absent). Read from the load balancer the target groups are attached to."""
    arns = [a for a in target_group_arns.values() if a]
    if not arns:
        return {}
    groups = _aws(
        "reading target groups", clients.elbv2.describe_target_groups, TargetGroupArns=arns
    ).get("TargetGroups", [])
    balancers = sorted({lb for g in groups for lb in g.get("LoadBalancerArns", [])})
    by_arn = {arn: color for color, arn in target_group_arns.items()}
    weights: dict[Color, int] = {}
    for balancer in balancers:
        listeners = _aws(
            "reading listeners", clients.elbv2.describe_listeners, LoadBalancerArn=balancer
        ).get("Listeners", [])
        for listener in listeners:
            for action in listener.get("DefaultActions", []):
                if action.get("Type") != "forward":
                    continue
                forwarded = action.get("ForwardConfig", {}).get("TargetGroups") or (
                    [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}]
                    if action.get("TargetGroupArn")
                    else []
                )
                total = sum(int(t.get("Weight", 1)) for t in forwarded) or 1
                for target in forwarded:
                    color = by_arn.get(target.get("TargetGroupArn"))
                    if color is not None:
                        # Weights are relative (0-999 each); the file speaks in percent.
                        weights[color] = round(100 * int(target.get("Weight", 1)) / total)
    return weights


# ---------------------------------------------------------------------------------------------
# The gate: the release command's (and the rollout's) look before a write
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateReport:
    problems: tuple[str, ...]  # one line each, prefixed with the color; empty: go ahead
    states: Mapping[Color, ColorState | None]


def gate(
    cfg: StackConfig,
    stack: str,
    colors: Iterable[Color],
    clients: Clients | None = None,
    weights: Mapping[Color, int] | None = None,
) -> GateReport:
    """Check that every color in ``colors`` is fit to take traffic; raises :class:`LiveError`
    when AWS cannot be read.

    Per color: its group exists; no instance refresh in progress and the latest did not fail;
    every in-service instance on the group's launch-template version; healthy targets >=
    desired; the group's image is the image of the file's version (no drift). With ``weights``
    (the percentages the file sets now), the live listener must forward exactly those.
    """
    clients = clients or Clients.for_region(cfg.region)
    found: list[str] = []
    states: dict[Color, ColorState | None] = {}
    for color in colors:
        state = read_color(clients, stack, cfg.service.name, color)
        states[color] = state
        if state is None:
            found.append(f"{color.value}: no Auto Scaling group tagged for it (not deployed?)")
            continue
        found += [f"{color.value}: {p}" for p in problems(state)]
        version = cfg.fleets[color].version
        drifted = drift(version, state, image_facts(clients, cfg, version, state))
        if drifted:
            found.append(f"{color.value}: {drifted}")
    if weights is not None and not found:
        arns = {c: s.target_group_arn for c, s in states.items() if s and s.target_group_arn}
        live = listener_weights(clients, arns)  # type: ignore[arg-type]
        for color, weight in weights.items():
            if color in live and live[color] != weight:
                found.append(
                    f"{color.value}: the live listener sends it {live[color]}%, the stack file "
                    f"{weight}% — run `pulumi up` for the file's weights first"
                )
    return GateReport(problems=tuple(found), states=states)


_ALARM_STATE = re.compile(r"[A-Z_]{1,32}")


def alarm_summary(state: ColorState, prefix: str) -> str:
    """``error-rate OK, p99-latency ALARM``: alarm kinds (the name after the prefix) and states."""
    if not state.alarms:
        return "no alarms"
    return ", ".join(
        f"{name.removeprefix(prefix)} {value if _ALARM_STATE.fullmatch(value) else '?'}"
        for name, value in sorted(state.alarms.items())
    )


# ---------------------------------------------------------------------------------------------
# Status: what AWS runs next to what the file says
# ---------------------------------------------------------------------------------------------
def color_line(color: Color, state: ColorState | None, prefix: str, file_version: str) -> str:
    """``live green: ...`` — the group, its launch-template version and image, the refresh,
    healthy/total targets, alarm states."""
    if state is None:
        return f"live {color.value}: no Auto Scaling group tagged for it"
    image = state.image_id or "unknown image"
    refresh = state.refresh
    refresh_text = "no instance refresh"
    if refresh is not None:
        refresh_text = f"refresh {refresh.status}" + (
            f" {refresh.percentage_complete}%" if refresh.percentage_complete is not None else ""
        )
    return (
        f"live {color.value}: {state.group} launch-template version "
        f"{state.template_version or '?'} {image} (file: {file_version}); {refresh_text}; "
        f"{state.healthy_targets}/{len(state.targets)} targets healthy, desired {state.desired}; "
        f"alarms: {alarm_summary(state, prefix)}"
    )


def status_lines(
    cfg: StackConfig,
    stack: str,
    clients: Clients | None = None,
    has_credentials: Any = None,
) -> list[str]:
    """Per color: what AWS runs, and a drift line where it is not what the file says. Without
    credentials, or when AWS cannot be read, one note instead."""
    from components.config import COLORS

    if has_credentials is None:
        from release.aws_clients import has_credentials
    if clients is None and not has_credentials(cfg.region):
        return ["live: not read (no AWS credentials found); the table shows the stack file only"]
    clients = clients or Clients.for_region(cfg.region)
    short = stack.split("/")[-1]
    lines: list[str] = []
    try:
        for color in COLORS:
            version = cfg.fleets[color].version
            state = read_color(clients, stack, cfg.service.name, color)
            prefix = alarm_name_prefix(cfg.service.name, short, color.value)
            lines.append(color_line(color, state, prefix, version))
            if state is None or state.desired == 0:
                continue
            drifted = drift(version, state, image_facts(clients, cfg, version, state))
            if drifted:
                lines.append(f"  {drifted}")
    except LiveError as error:
        return [*lines, f"live: not read ({error}); the table shows the stack file only"]
    return lines
