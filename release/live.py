"""What AWS actually runs for one color of one stack, and whether that color is fit for traffic.

Pulumi state says what the program last asked for; AWS may run something else. Each color's
instance refresh is started by the program's refresh resource (release/refresh.py) with a
``DesiredConfiguration``, which AWS saves on the group only when the refresh succeeds; when it
fails with auto rollback, AWS "restores your Auto Scaling group to the configuration that it was
using before the start of the instance refresh" (RollbackInstanceRefresh API reference; EC2 Auto
Scaling user guide, "Undo changes with a manual or auto rollback"): the group keeps the previous
launch-template version while the program's launch template already has the new one. AWS offers
no SDK waiter for refreshes (aws/aws-cli#7929), hence these reads.

Two halves, kept apart:

* reading (:func:`read_group`, :func:`read_color`, :func:`listener_weights`,
  :func:`image_for_version`): boto3 calls through :mod:`release.aws_clients` (interactive:
  2 s connect, 2 s read, 2 attempts; the refresh command's: 3 s, 10 s, 3), so nothing sits
  silent for minutes. AWS trouble becomes one
  :class:`LiveError` line.
* evaluation (:func:`problems`, :func:`progress_line`, :func:`drift`, :func:`newest_first`): plain
  functions of the facts read, tested without AWS.

:func:`gate` joins them for the release command (``shift``, ``finish``, ``rollout``): the
problems, one line each, that make the given colors unfit for traffic.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.alarm_names import (
    alarm_label,
    alarm_name_prefix,
    color_alarm_names,
    unjudged_alarms,
    watched_alarm_prefixes,
)
from components.config import Color, StackConfig
from components.image_contract import DISABLED, revocation

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
class Configuration:
    """What a group launches: a launch template and numbered version, and for a mixed-instances
    policy its instance types (``None``: a plain launch template). The unit AWS saves on a group
    and names in an instance refresh's ``DesiredConfiguration``."""

    template_id: str | None
    version: str | None
    instance_types: tuple[str, ...] | None = None

    def describe(self) -> str:
        text = f"launch-template version {self.version or '?'}"
        return text + (f" ({', '.join(self.instance_types)})" if self.instance_types else "")


@dataclass(frozen=True)
class Refresh:
    """One instance refresh of a group, as DescribeInstanceRefreshes reports it.

    After an auto rollback (``Preferences.AutoRollback``, triggered by a failure or by an alarm
    of ``AlarmSpecification``) the status is ``RollbackInProgress`` then ``RollbackSuccessful``
    or ``RollbackFailed``, and ``RollbackDetails.RollbackReason`` says why (InstanceRefresh and
    RollbackDetails API references; botocore's autoscaling service model). ``desired`` is the
    refresh's ``DesiredConfiguration``; ``None`` for a refresh started without one (the
    provider's, or one from the console), which AWS cannot roll back.
    """

    status: str
    status_reason: str = ""
    percentage_complete: int | None = None
    instances_to_update: int | None = None
    checkpoints: tuple[int, ...] = ()  # Preferences.CheckpointPercentages
    checkpoint_delay: int | None = None  # Preferences.CheckpointDelay (seconds)
    # Preferences.AlarmSpecification.Alarms: the only alarms AWS may roll this refresh back for.
    alarms: tuple[str, ...] = ()
    rollback_reason: str = ""  # RollbackDetails.RollbackReason (auto or manual rollback)
    refresh_id: str = ""
    desired: Configuration | None = None
    start_time: datetime.datetime | None = None

    @property
    def reason(self) -> str:
        """The most specific explanation AWS gave, or a plain placeholder."""
        return self.rollback_reason or self.status_reason or "no status reason given"

    @property
    def running(self) -> bool:
        return self.status in RUNNING


@dataclass(frozen=True)
class Instance:
    instance_id: str
    lifecycle: str  # InService, Pending, Terminating, ...
    template_version: str | None  # the launch-template version it was launched from
    instance_type: str | None = None


@dataclass(frozen=True)
class ColorState:
    """One Auto Scaling group and what serves behind it."""

    group: str
    desired: int
    template_id: str | None
    template_version: str | None  # the version the group launches now (saved on the group)
    image_id: str | None  # that version's ImageId
    refresh: Refresh | None  # the latest instance refresh
    instances: tuple[Instance, ...] = ()
    target_group_arn: str | None = None
    targets: Mapping[str, str] = field(default_factory=dict)  # instance id -> health state
    alarms: Mapping[str, str] = field(default_factory=dict)  # alarm name -> OK/ALARM/...
    instance_types: tuple[str, ...] | None = None  # a mixed-instances policy's override types

    @property
    def configuration(self) -> Configuration:
        """What AWS has saved on the group: what it launches now, and what a rollback restores."""
        return Configuration(self.template_id, self.template_version, self.instance_types)

    @property
    def in_service(self) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances if i.lifecycle == IN_SERVICE)

    @property
    def healthy_targets(self) -> int:
        return sum(1 for state in self.targets.values() if state == HEALTHY)


# ---------------------------------------------------------------------------------------------
# Evaluation: plain functions of the facts
# ---------------------------------------------------------------------------------------------
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
    """Why the group's latest refresh stands in the way, or ``None``.

    Only a refresh still running does: it is moving instances. A finished one is history, whatever
    its status: a failed or rolled-back refresh never saved its configuration on the group
    (the program starts every refresh with a ``DesiredConfiguration``, components/refresh_spec.py),
    so what the group runs now is judged by its instances' versions, their health and the image
    drift check, never by an old refresh that may concern another version.
    """
    if refresh is None or not refresh.running:
        return None
    done = refresh.percentage_complete
    return f"instance refresh {refresh.status}" + (f" ({done}% complete)" if done else "")


def problems(state: ColorState, expected_version: str | None = None) -> list[str]:
    """Everything that makes the group unfit for traffic; empty when it is ready.

    Ready means: no instance refresh in progress; every in-service instance runs
    ``expected_version`` (default: the version saved on the group); at least ``desired`` healthy
    targets, and every in-service instance healthy among them; none of the alarms read for it in
    ALARM. A group with desired 0 has nothing to wait for.
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
    return found + _health_problems(state) + _alarm_problems(state)


def _alarm_problems(state: ColorState) -> list[str]:
    """Alarms read for the color (its own and the load balancer's) that are in ALARM: what would
    fail its refresh, or roll back a rollout step, fails the gate before traffic moves too."""
    firing = sorted(name for name, value in state.alarms.items() if value == "ALARM")
    return [f"alarm {name} is in ALARM" for name in firing]


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
    """What the refresh command prints while it waits: refresh progress, versions, health."""
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
            parts.append(_one_line(refresh.status_reason, 240))
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
    # Set when the group launches a revoked image, or the file's version has only revoked ones
    # (release.images.revoked_text): no more traffic may go to it.
    revoked: str | None = None


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
            f" — {refresh_history(state.refresh)}"
            if state.refresh is not None and state.refresh.status in FAILED
            else ""
        )
    )


def refresh_history(refresh: Refresh) -> str:
    """``the latest instance refresh (toward launch-template version 7) was RollbackSuccessful:
    <AWS's reason>``: one line, AWS's reason cut short."""
    toward = f" (toward {refresh.desired.describe()})" if refresh.desired else ""
    return f"the latest instance refresh{toward} was {refresh.status}: {_one_line(refresh.reason)}"


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
    def for_region(cls, region: str, patient: bool = False) -> Clients:
        """Clients with the interactive timeouts, or (``patient``) the refresh command's."""
        from release.aws_clients import client

        autoscaling = client("autoscaling", region, patient)
        return cls(
            autoscaling=autoscaling,
            refreshes=autoscaling,
            ec2=client("ec2", region, patient),
            elbv2=client("elbv2", region, patient),
            cloudwatch=client("cloudwatch", region, patient),
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
    configuration = configuration_of(group)
    return configuration.template_id, configuration.version


def configuration_of(settings: Mapping[str, Any]) -> Configuration:
    """The configuration a group (DescribeAutoScalingGroups) or a refresh's
    ``DesiredConfiguration`` names: a launch template, or a mixed-instances policy's template
    and its override types."""
    # A group has one or the other (CreateAutoScalingGroup: "you must specify one of"); a
    # mixed-instances policy, when there is one, is what launches.
    mixed = settings.get("MixedInstancesPolicy") or {}
    if settings.get("LaunchTemplate") and not mixed:
        spec, types = settings["LaunchTemplate"], None
    else:
        template = mixed.get("LaunchTemplate") or {}
        spec = template.get("LaunchTemplateSpecification") or {}
        types = (
            tuple(
                o["InstanceType"] for o in template.get("Overrides") or [] if o.get("InstanceType")
            )
            or None
        )
    return Configuration(spec.get("LaunchTemplateId"), spec.get("Version"), types)


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


def _refresh(raw: Mapping[str, Any]) -> Refresh:
    preferences = raw.get("Preferences") or {}
    desired = raw.get("DesiredConfiguration")
    return Refresh(
        status=raw.get("Status", "unknown"),
        status_reason=" ".join(str(raw.get("StatusReason", "")).split()),
        percentage_complete=raw.get("PercentageComplete"),
        instances_to_update=raw.get("InstancesToUpdate"),
        checkpoints=tuple(preferences.get("CheckpointPercentages") or ()),
        checkpoint_delay=preferences.get("CheckpointDelay"),
        alarms=tuple(
            name
            for name in (preferences.get("AlarmSpecification") or {}).get("Alarms") or ()
            if isinstance(name, str)
        ),
        rollback_reason=" ".join(
            str((raw.get("RollbackDetails") or {}).get("RollbackReason", "")).split()
        ),
        refresh_id=raw.get("InstanceRefreshId", ""),
        desired=configuration_of(desired) if desired else None,
        start_time=raw.get("StartTime"),
    )


def newest_first(refreshes: Iterable[Refresh]) -> list[Refresh]:
    """Newest first, whatever order AWS listed them in: the API reference promises none. A
    refresh not started yet may have no ``StartTime``; it is the newest."""
    epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)

    def key(refresh: Refresh) -> tuple[bool, datetime.datetime]:
        started = refresh.start_time
        if started is not None and started.tzinfo is None:
            started = started.replace(tzinfo=datetime.UTC)
        return (started is None, started or epoch)

    return sorted(refreshes, key=key, reverse=True)


def list_refreshes(clients: Clients, group: str, refresh_ids: Iterable[str] = ()) -> list[Refresh]:
    """The group's instance refreshes (those AWS still lists), newest first; ``refresh_ids``
    narrows them to those ids. Follows ``NextToken`` to the end."""
    found: list[Refresh] = []
    token: str | None = None
    ids = list(refresh_ids)
    while True:
        kwargs: dict[str, Any] = {"AutoScalingGroupName": group}
        if ids:
            kwargs["InstanceRefreshIds"] = ids
        if token:
            kwargs["NextToken"] = token
        page = _aws(
            f"reading {group}'s instance refreshes",
            clients.refreshes.describe_instance_refreshes,
            **kwargs,
        )
        found += [_refresh(raw) for raw in page.get("InstanceRefreshes", [])]
        token = page.get("NextToken")
        if not token:
            return newest_first(found)


def latest_refresh(clients: Clients, group: str) -> Refresh | None:
    refreshes = list_refreshes(clients, group)
    return refreshes[0] if refreshes else None


def template_image(clients: Clients, template_id: str, version: str) -> str | None:
    page = _aws(
        f"reading launch template {template_id} version {version}",
        clients.ec2.describe_launch_template_versions,
        LaunchTemplateId=template_id,
        Versions=[version],
    )
    versions = page.get("LaunchTemplateVersions", [])
    return versions[0].get("LaunchTemplateData", {}).get("ImageId") if versions else None


def image_record(clients: Clients, image_id: str) -> dict[str, Any] | None:
    """The image as DescribeImages shows it to this account, deprecated and disabled ones too
    (both are hidden unless asked for); None when EC2 does not know it to this account
    (deregistered, or no longer shared with it)."""
    from botocore.exceptions import ClientError

    def describe(**request: Any) -> dict[str, Any]:
        try:
            return clients.ec2.describe_images(**request)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")).startswith("InvalidAMIID"):
                return {"Images": []}
            raise

    page = _aws(
        f"reading image {image_id}",
        describe,
        ImageIds=[image_id],
        IncludeDeprecated=True,
        IncludeDisabled=True,
    )
    found = page.get("Images") or []
    return found[0] if found else None


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


def alarm_states(clients: Clients, *prefixes: str) -> dict[str, str]:
    """Alarm name -> state of every alarm whose name starts with one of ``prefixes``."""
    states: dict[str, str] = {}
    for prefix in prefixes:
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
                break
    return states


def _state(
    clients: Clients,
    group: Mapping[str, Any],
    target_group_arn: str | None,
    alarm_prefixes: tuple[str, ...] | None,
    skip_when_empty: bool = False,
    with_refresh: bool = True,
) -> ColorState:
    name = group["AutoScalingGroupName"]
    desired = int(group.get("DesiredCapacity", 0))
    saved = configuration_of(group)
    if skip_when_empty and desired == 0:
        # Nothing can be unready in an empty group: no more calls.
        return ColorState(
            name,
            0,
            saved.template_id,
            saved.version,
            image_id=None,
            refresh=None,
            instance_types=saved.instance_types,
        )
    template_id, version = saved.template_id, saved.version
    image = template_image(clients, template_id, version) if template_id and version else None
    tg = target_group_arn or next(iter(group.get("TargetGroupARNs") or []), None)
    return ColorState(
        group=name,
        desired=desired,
        template_id=template_id,
        template_version=version,
        image_id=image,
        refresh=latest_refresh(clients, name) if with_refresh else None,
        instances=tuple(
            Instance(
                instance_id=i["InstanceId"],
                lifecycle=i.get("LifecycleState", "unknown"),
                template_version=(
                    i.get("LaunchTemplate", {}).get("Version") if i.get("LaunchTemplate") else None
                ),
                instance_type=i.get("InstanceType"),
            )
            for i in group.get("Instances", [])
        ),
        target_group_arn=tg,
        targets=target_health(clients, tg) if tg else {},
        alarms=alarm_states(clients, *alarm_prefixes) if alarm_prefixes else {},
        instance_types=saved.instance_types,
    )


def read_group(
    clients: Clients, group: str, target_group_arn: str | None = None, with_refresh: bool = True
) -> ColorState:
    """The state of the group named ``group`` (the refresh command's view: it knows the name).
    ``with_refresh=False`` skips reading the latest refresh (the caller follows one by id)."""
    page = _aws(
        f"reading group {group}",
        clients.autoscaling.describe_auto_scaling_groups,
        AutoScalingGroupNames=[group],
    )
    groups = page.get("AutoScalingGroups", [])
    if not groups:
        raise GroupNotFound(f"no Auto Scaling group named {group!r} in this account and region")
    return _state(
        clients, groups[0], target_group_arn, None, skip_when_empty=True, with_refresh=with_refresh
    )


def read_color(clients: Clients, stack: str, service: str, color: Color) -> ColorState | None:
    """The state of one color of one stack, found by tags; ``None`` when it has no group."""
    short = stack.split("/")[-1]
    group = find_group(clients, short, service, color.value)
    if group is None:
        return None
    # The color's own alarms and the load balancer's, which judge whichever color serves.
    return _state(clients, group, None, watched_alarm_prefixes(service, short, color.value))


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


def image_facts(clients: Clients, cfg: StackConfig, version: str, state: ColorState) -> ImageFacts:
    from release import images

    service = cfg.service.name
    found = _aws(
        f"looking up the image of {version}",
        images.describe_version_images,
        ec2=clients.ec2,
        owner=images.image_owner(cfg),
        service=service,
        version=version,
    )
    image = images.newest_image(found, service, version)
    expected = image.get("ImageId") if image else None
    revoked_ones = images.revoked_images(found, service, version)
    revoked = images.revoked_text(revoked_ones[0]) if revoked_ones and not image else None
    running = None
    if state.image_id and state.image_id != expected:
        # Deprecated and disabled images too: EC2 hides both unless asked, and a group that
        # launches one is exactly what the gate must see.
        raw = image_record(clients, state.image_id)
        running = version_from_image_name(raw.get("Name", ""), service) if raw else None
        if raw and revocation(raw):
            revoked = images.revoked_text(raw)
        elif raw and raw.get("State") == DISABLED:
            revoked = f"{raw.get('Name')} ({state.image_id}) disabled: it cannot be launched"
    return ImageFacts(expected_image=expected, running_version=running, revoked=revoked)


class NoWeightedListener(LiveError):
    """AWS was read, but no single listener forwards to both colors' target groups."""


def other_target_groups(
    clients: Clients, target_group_arns: Mapping[Color, str | None], stack: str, service: str
) -> dict[Color, str]:
    """``target_group_arns`` completed with the target group of every color it lacks, from
    that color's group (found by tags): the weighted listener is recognised by both."""
    from components.config import COLORS

    arns = {c: a for c, a in target_group_arns.items() if a}
    for color in COLORS:
        if color not in arns:
            group = find_group(clients, stack.split("/")[-1], service, color.value)
            found = next(iter((group or {}).get("TargetGroupARNs") or []), None)
            if found:
                arns[color] = found
    return arns


def _listeners_of_balancers_of(
    clients: Clients, target_group_arns: Iterable[str], what: str
) -> list[dict[str, Any]]:
    """Every listener of the load balancers these target groups belong to, all pages."""
    groups = _aws(
        what, clients.elbv2.describe_target_groups, TargetGroupArns=sorted(target_group_arns)
    ).get("TargetGroups", [])
    listeners: list[dict[str, Any]] = []
    for balancer in sorted({lb for g in groups for lb in g.get("LoadBalancerArns", [])}):
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"LoadBalancerArn": balancer}
            if token:
                kwargs["Marker"] = token
            page = _aws("reading listeners", clients.elbv2.describe_listeners, **kwargs)
            listeners += page.get("Listeners", [])
            token = page.get("NextMarker")
            if not token:
                break
    return listeners


def target_group_weight(clients: Clients, target_group_arn: str) -> int | None:
    """The share (percent) ``target_group_arn`` gets on its load balancer's weighted listener
    (release/listener.py ``share_of``); None when no such listener forwards to it."""
    from release import listener

    return listener.share_of(
        _listeners_of_balancers_of(clients, [target_group_arn], "reading the target group"),
        target_group_arn,
    )


def listener_weights(
    clients: Clients,
    target_group_arns: Mapping[Color, str | None],
    stack: str | None = None,
    service: str | None = None,
    exported_arn: str | None = None,
) -> dict[Color, int]:
    """Each color's share (percent) on the stack's **weighted** listener (release/listener.py:
    the exported one, or the one forwarding to both colors' target groups; the colors'
    attachment listeners are never read as it). With ``stack`` and ``service``, a color whose
    target group is not given is found by its group's tags. Raises :class:`NoWeightedListener`
    when there is none (or several)."""
    from components.config import COLORS
    from release import listener

    arns = (
        other_target_groups(clients, target_group_arns, stack, service)
        if stack and service
        else {c: a for c, a in target_group_arns.items() if a}
    )
    if not arns:
        return {}
    missing = [c.value for c in COLORS if c not in arns]
    if missing:
        raise NoWeightedListener(
            f"no target group found for {' and '.join(missing)}: the weighted listener is the "
            "one forwarding to both colors' groups"
        )
    listeners = _listeners_of_balancers_of(clients, arns.values(), "reading target groups")
    color_of = {arn: color for color, arn in arns.items()}
    try:
        found, by_color = listener.weighted(listeners, color_of, COLORS, exported_arn)
    except listener.ListenerError as error:
        raise NoWeightedListener(_one_line(error, 300)) from None
    return listener.percentages(found.get("DefaultActions", []), by_color)


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
    desired; none of its alarms or the load balancer's in ALARM, and each of its own alarms
    there with data (not INSUFFICIENT_DATA); the group's image is the image of the file's
    version (no drift). With ``weights``
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
        # Judged by its own alarms: each must exist and have data, whatever the load
        # balancer's alarm says (components/alarm_names.py).
        own = color_alarm_names(cfg.service.name, stack.split("/")[-1], color.value)
        found += [f"{color.value}: {p}" for p in unjudged_alarms(own, state.alarms)]
        version = cfg.fleets[color].version
        facts = image_facts(clients, cfg, version, state)
        drifted = drift(version, state, facts)
        if drifted:
            found.append(f"{color.value}: {drifted}")
        if facts.revoked:
            found.append(
                f"{color.value}: {facts.revoked} — no traffic moves onto a revoked image; "
                "deploy another version"
            )
    if weights is not None and not found:
        # Both colors, on the weighted listener: the new color at 100 % is only half of it
        # (finish), and a color's attachment listener says 100 % whatever the split.
        arns = {c: s.target_group_arn for c, s in states.items() if s and s.target_group_arn}
        try:
            live = listener_weights(clients, arns, stack, cfg.service.name)
        except NoWeightedListener as error:
            return GateReport(problems=(f"listener: {error}",), states=states)
        for color, weight in weights.items():
            if live.get(color, 0) != weight:
                found.append(
                    f"{color.value}: the live listener sends it {live.get(color, 0)}%, the "
                    f"stack file {weight}% — run `pulumi up` for the file's weights first"
                )
    return GateReport(problems=tuple(found), states=states)


_ALARM_STATE = re.compile(r"[A-Z_]{1,32}")


def alarm_summary(state: ColorState, prefix: str) -> str:
    """``error-rate OK, p99-latency ALARM, lb-elb-5xx OK``: the color's alarm kinds (the name
    after its prefix), the load balancer's as ``lb-<kind>``, and their states."""
    if not state.alarms:
        return "no alarms"
    return ", ".join(
        f"{alarm_label(name, prefix)} {value if _ALARM_STATE.fullmatch(value) else '?'}"
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
    groups: dict[Color, str | None] = {}
    try:
        for color in COLORS:
            version = cfg.fleets[color].version
            state = read_color(clients, stack, cfg.service.name, color)
            groups[color] = state.target_group_arn if state else None
            prefix = alarm_name_prefix(cfg.service.name, short, color.value)
            lines.append(color_line(color, state, prefix, version))
            if state is None or state.desired == 0:
                continue
            facts = image_facts(clients, cfg, version, state)
            drifted = drift(version, state, facts)
            if drifted:
                lines.append(f"  {drifted}")
            if facts.revoked:
                lines.append(f"  REVOKED: {facts.revoked}")
    except LiveError as error:
        return [*lines, f"live: not read ({error}); the table shows the stack file only"]
    return [*lines, listener_line(cfg, stack, clients, groups)]


def listener_line(
    cfg: StackConfig, stack: str, clients: Clients, groups: Mapping[Color, str | None]
) -> str:
    """``listener: blue 50%, green 50% — the stack file says blue 100%, green 0% ...``: the live
    weighted listener beside the file, so a split left by an interrupted rollout or a
    ``rollback --now`` not yet committed is seen."""
    from components.config import COLORS

    try:
        weights = listener_weights(clients, groups, stack, cfg.service.name)
    except LiveError as error:
        return f"listener: not read ({error})"
    live_text = ", ".join(f"{c.value} {weights.get(c, 0)}%" for c in COLORS)
    file_text = ", ".join(f"{c.value} {cfg.traffic[c]}%" for c in COLORS)
    if all(weights.get(c, 0) == cfg.traffic[c] for c in COLORS):
        return f"listener: {live_text}, as the stack file says"
    return (
        f"listener: {live_text} — the stack file says {file_text}: `pulumi up` would move "
        "traffic to the file's weights; if the live split is what you want (after `rollback "
        "--now`, or an interrupted rollout), make the file say it first"
    )
