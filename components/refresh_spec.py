"""What one color's instance refresh asks AWS for: the contract between the program and
``python -m release.refresh``.

The program writes it (as JSON, on the refresh command's standard input, so that `pulumi preview`
shows it as an input of the color's refresh resource); the refresh command reads it back and
checks it. One module, imported by both sides, holds the shape: no pulumi, no pydantic, nothing
heavy.

The request is StartInstanceRefresh's (EC2 Auto Scaling API reference):

- ``DesiredConfiguration``: the launch template id and *numbered* version, or a whole
  mixed-instances policy carrying them. AWS saves it on the group only when the refresh succeeds
  ("Once the instance refresh succeeds, Amazon EC2 Auto Scaling updates the settings of the Auto
  Scaling group to reflect the new desired configuration": StartInstanceRefresh,
  DesiredConfiguration), so a rollback restores the configuration the group had before.
- ``Preferences`` (RefreshPreferences): the stack's ``instanceRefresh`` settings, the color's
  alarms as ``AlarmSpecification``, instances protected from scale in refreshed too and standby
  instances terminated (so that no instance outlives a refresh on an old version).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.alarm_names import is_load_balancer_alarm
from components.config import InstanceRefreshConfig

_REGION = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]")
# CreateAutoScalingGroup: 1-255 characters, no control characters; we also refuse spaces at
# either end, which no group the program creates has.
_GROUP = re.compile(r"[A-Za-z0-9_.:/()#,@\[\]+=&;{}!$*-][A-Za-z0-9 _.:/()#,@\[\]+=&;{}!$*-]{0,254}")
_TARGET_GROUP_ARN = re.compile(
    r"arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:"
    r"targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}"
)
_TEMPLATE_ID = re.compile(r"lt-[0-9a-f]{8,17}")
# A numbered version only: $Latest and $Default would let a template edit reach the group
# unreviewed, and AWS cannot roll a refresh back to them (RollbackInstanceRefresh: "A rollback
# is not supported ... The Auto Scaling group uses the launch template's $Latest or $Default").
_VERSION = re.compile(r"[1-9][0-9]{0,8}")
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]{0,19}\.[a-z0-9]{1,16}")
_ALARM = re.compile(r"[A-Za-z0-9_.:/ -]{1,255}")
TIMEOUT_MAX = 172_800  # the longest refresh timeout the stack config allows


class SpecError(ValueError):
    """The refresh spec is not one the program writes. One line, naming the field."""


@dataclass(frozen=True)
class RefreshSpec:
    """One color's refresh: which group, which configuration, how, and how long to wait."""

    region: str
    group: str
    target_group_arn: str
    template_id: str
    template_version: str
    instance_types: tuple[str, ...]
    """One type: a plain launch template. More: a mixed-instances policy over them, in order."""
    preferences: Mapping[str, Any]
    """StartInstanceRefresh ``Preferences``, as AWS spells them."""
    timeout: int
    """Seconds to wait for the refresh and then for healthy targets."""

    @property
    def mixed(self) -> bool:
        return len(self.instance_types) > 1

    def desired_configuration(self) -> dict[str, Any]:
        """StartInstanceRefresh ``DesiredConfiguration``: the group's whole launch settings."""
        template = {"LaunchTemplateId": self.template_id, "Version": self.template_version}
        if not self.mixed:
            return {"LaunchTemplate": template}
        return {"MixedInstancesPolicy": mixed_instances_policy(template, self.instance_types)}

    def alarms(self) -> list[str]:
        return list(self.preferences.get("AlarmSpecification", {}).get("Alarms", []))

    def to_json(self) -> str:
        return json.dumps(
            {
                "region": self.region,
                "group": self.group,
                "targetGroupArn": self.target_group_arn,
                "launchTemplate": {"id": self.template_id, "version": self.template_version},
                "instanceTypes": list(self.instance_types),
                "preferences": dict(self.preferences),
                "timeout": self.timeout,
            },
            sort_keys=True,
        )


def mixed_instances_policy(
    template: Mapping[str, str], instance_types: Sequence[str]
) -> dict[str, Any]:
    """All on-demand, types tried in the listed order: the capacity a service counts on."""
    return {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": dict(template),
            "Overrides": [{"InstanceType": t} for t in instance_types],
        },
        "InstancesDistribution": {
            "OnDemandAllocationStrategy": "prioritized",
            "OnDemandBaseCapacity": 0,
            "OnDemandPercentageAboveBaseCapacity": 100,
        },
    }


def refresh_preferences(
    refresh: InstanceRefreshConfig, alarm_names: Sequence[str]
) -> dict[str, Any]:
    """StartInstanceRefresh ``Preferences`` from the validated config (RefreshPreferences).

    ``AlarmSpecification``: a refresh fails when one of these alarms is in ALARM and, with
    ``AutoRollback``, AWS rolls it back. ``ScaleInProtectedInstances: Refresh`` and
    ``StandbyInstances: Terminate``: no instance is left on the previous version.
    """
    preferences: dict[str, Any] = {
        "MinHealthyPercentage": refresh.min_healthy_percentage,
        "MaxHealthyPercentage": refresh.max_healthy_percentage,
        "InstanceWarmup": refresh.instance_warmup,
        "SkipMatching": refresh.skip_matching,
        "AutoRollback": refresh.auto_rollback,
        "ScaleInProtectedInstances": "Refresh",
        "StandbyInstances": "Terminate",
    }
    if refresh.checkpoint_percentages:
        preferences["CheckpointPercentages"] = list(refresh.checkpoint_percentages)
        preferences["CheckpointDelay"] = refresh.checkpoint_delay
    if alarm_names:
        preferences["AlarmSpecification"] = {"Alarms": list(alarm_names)}
    return preferences


def idle_color_preferences(preferences: Mapping[str, Any]) -> dict[str, Any]:
    """``preferences`` for a refresh of a color that takes no traffic: without the load
    balancer's alarms. They have no color dimension and judge whichever color serves, so while
    the live color serves errors they would roll back the idle color's refresh (the fix, often)
    for an outage it has no part in. The color's own alarms stay."""
    result = dict(preferences)
    alarms = list(result.get("AlarmSpecification", {}).get("Alarms", []))
    kept = [name for name in alarms if not is_load_balancer_alarm(name)]
    if kept:
        result["AlarmSpecification"] = {"Alarms": kept}
    else:
        result.pop("AlarmSpecification", None)
    return result


# ---------------------------------------------------------------------------------------------
# Reading it back (the refresh command): every field checked, the first problem named
# ---------------------------------------------------------------------------------------------
_PREFERENCE_CHECKS: dict[str, Any] = {
    "MinHealthyPercentage": lambda v: type(v) is int and 0 <= v <= 100,
    "MaxHealthyPercentage": lambda v: type(v) is int and 100 <= v <= 200,
    "InstanceWarmup": lambda v: type(v) is int and 0 <= v <= 172_800,
    "SkipMatching": lambda v: type(v) is bool,
    "AutoRollback": lambda v: type(v) is bool,
    "ScaleInProtectedInstances": lambda v: v in ("Refresh", "Ignore", "Wait"),
    "StandbyInstances": lambda v: v in ("Terminate", "Ignore", "Wait"),
    "CheckpointPercentages": lambda v: (
        isinstance(v, list)
        and 0 < len(v) <= 100
        and all(type(p) is int and 1 <= p <= 100 for p in v)
        and v[-1] == 100
        and all(a < b for a, b in itertools.pairwise(v))
    ),
    "CheckpointDelay": lambda v: type(v) is int and 0 <= v <= 172_800,
    "AlarmSpecification": lambda v: (
        isinstance(v, dict)
        and set(v) == {"Alarms"}
        and isinstance(v["Alarms"], list)
        and 0 < len(v["Alarms"]) <= 10
        and all(isinstance(a, str) and _ALARM.fullmatch(a) for a in v["Alarms"])
    ),
}
_REQUIRED = (
    "region",
    "group",
    "targetGroupArn",
    "launchTemplate",
    "instanceTypes",
    "preferences",
    "timeout",
)


def _text(
    document: Mapping[str, Any], key: str, pattern: re.Pattern[str], rule: str, label: str = ""
) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise SpecError(f"[{label or key}] must be {rule} (got {str(value)[:60]!r})")
    return value


def parse_spec(text: str) -> RefreshSpec:
    """The spec from its JSON text; :class:`SpecError` names the first field that is wrong."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise SpecError(f"the refresh spec is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise SpecError("the refresh spec must be a JSON object")
    unknown = sorted(set(document) - set(_REQUIRED))
    missing = [key for key in _REQUIRED if key not in document]
    if unknown or missing:
        raise SpecError(f"the refresh spec has unknown keys {unknown} or lacks {missing}")
    template = document["launchTemplate"]
    if not isinstance(template, dict) or set(template) != {"id", "version"}:
        raise SpecError('[launchTemplate] must be {"id": ..., "version": ...}')
    types = document["instanceTypes"]
    if (
        not isinstance(types, list)
        or not 1 <= len(types) <= 20
        or not all(isinstance(t, str) and _INSTANCE_TYPE.fullmatch(t) for t in types)
        or len(set(types)) != len(types)
    ):
        raise SpecError(f"[instanceTypes] must be 1-20 distinct instance types (got {types!r})")
    preferences = document["preferences"]
    if not isinstance(preferences, dict):
        raise SpecError("[preferences] must be an object")
    for key, value in preferences.items():
        check = _PREFERENCE_CHECKS.get(key)
        if check is None:
            raise SpecError(f"[preferences.{key}] is not a refresh preference this program sets")
        if not check(value):
            raise SpecError(f"[preferences.{key}] has a value AWS would refuse ({value!r})")
    timeout = document["timeout"]
    if type(timeout) is not int or not 0 < timeout <= TIMEOUT_MAX:
        raise SpecError(f"[timeout] must be whole seconds within 1-{TIMEOUT_MAX} (got {timeout!r})")
    return RefreshSpec(
        region=_text(document, "region", _REGION, "an AWS region (e.g. eu-west-1)"),
        group=_text(document, "group", _GROUP, "an Auto Scaling group name"),
        target_group_arn=_text(document, "targetGroupArn", _TARGET_GROUP_ARN, "a target group ARN"),
        template_id=_text(
            template, "id", _TEMPLATE_ID, "a launch template id (lt-...)", "launchTemplate.id"
        ),
        template_version=_text(
            template,
            "version",
            _VERSION,
            "a numbered launch-template version (1, 2, ...)",
            "launchTemplate.version",
        ),
        instance_types=tuple(types),
        preferences=preferences,
        timeout=timeout,
    )
