"""A stand-in for EC2 Auto Scaling's instance-refresh API, on top of the local AWS API (moto),
which has none.

It models what AWS documents, not what a test stored:

- StartInstanceRefresh refuses while a refresh is Pending, InProgress, Cancelling,
  RollbackInProgress or Baking (``InstanceRefreshInProgress``: "An Instance Refresh is already in
  progress and blocks the execution of this Instance Refresh"); refuses ``AutoRollback`` without
  a ``DesiredConfiguration`` or with ``$Latest``/``$Default``, and a desired configuration with
  both or neither of ``LaunchTemplate``/``MixedInstancesPolicy`` (ValidationError).
- The id, ``StartTime``, ``EndTime``, ``PercentageComplete``, ``InstancesToUpdate`` and
  ``RollbackDetails`` are the server's; a new refresh is ``Pending`` and has no StartTime yet.
- "Once the instance refresh succeeds, Amazon EC2 Auto Scaling updates the settings of the Auto
  Scaling group to reflect the new desired configuration" (StartInstanceRefresh): only then is
  the group's launch template changed (in moto). A rollback replaces the instances with "the
  configuration that you last saved on the Auto Scaling group before starting the instance
  refresh" (user guide, "Undo changes with a manual or auto rollback"); failed, cancelled and
  rolled-back refreshes leave the group's settings as they were.
- DescribeInstanceRefreshes promises no order: this one lists in a shuffled order (seeded), two
  per page with ``NextToken``.

moto keeps a group's ``LaunchTemplate`` beside a ``MixedInstancesPolicy`` saved later, where AWS
has one or the other; the reader (release/live.py ``configuration_of``) takes the policy.

What the instances run is moto's: an instance reports its template's *default* version (moto's
model), so the stand-in moves the template's default version to what the instances would run.

How a refresh goes on is the test's script: ``fate`` says what each started refresh does (e.g.
``["InProgress", "InProgress", "Successful"]`` over successive DescribeInstanceRefreshes calls,
or ``rollback``), and ``alarm`` which alarm rolls it back. AWS rolls a refresh back only for an
alarm of its ``AlarmSpecification``; the model refuses a script that names another. The wording of
the reason AWS gives is not documented; the model writes ``alarm <name> in ALARM`` in
``RollbackDetails.RollbackReason``. ``calls`` records every request, for asserting the call
sequence.
"""

from __future__ import annotations

import datetime
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

RUNNING = {"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"}
BASE_TIME = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)


def _error(code: str, message: str, operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        operation,
    )


@dataclass
class ModelRefresh:
    refresh_id: str
    group: str
    desired: dict[str, Any] | None
    preferences: dict[str, Any]
    fate: list[str]  # the statuses still to come, one per DescribeInstanceRefreshes
    status: str = "Pending"
    started: datetime.datetime | None = None
    ended: datetime.datetime | None = None
    status_reason: str = ""
    rollback_reason: str = ""
    percentage: int = 0
    previous: dict[str, Any] = field(default_factory=dict)  # the group's saved settings
    alarm: str = ""  # the alarm of its AlarmSpecification that rolls it back (the test's script)

    def describe(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "InstanceRefreshId": self.refresh_id,
            "AutoScalingGroupName": self.group,
            "Status": self.status,
            "PercentageComplete": self.percentage,
            "InstancesToUpdate": 0 if self.status == "Successful" else 2,
            "Preferences": self.preferences,
        }
        if self.status_reason:
            answer["StatusReason"] = self.status_reason
        if self.started is not None:
            answer["StartTime"] = self.started
        if self.ended is not None:
            answer["EndTime"] = self.ended
        if self.desired is not None:
            answer["DesiredConfiguration"] = self.desired
        if self.rollback_reason:
            answer["RollbackDetails"] = {"RollbackReason": self.rollback_reason}
        return answer


class RefreshService:
    """The instance-refresh calls of an Auto Scaling client; everything else goes to moto."""

    def __init__(self, autoscaling: Any, ec2: Any, seed: int = 7) -> None:
        self.autoscaling = autoscaling
        self.ec2 = ec2
        self.refreshes: list[ModelRefresh] = []
        self.fates: list[tuple[list[str], str]] = []  # for the refreshes started next, and
        # the alarm that rolls each back ("" for the default)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.random = random.Random(seed)
        self.clock = BASE_TIME
        # Reads are eventually consistent: a refresh just started stays unlisted for this many
        # DescribeInstanceRefreshes calls (0: listed at once).
        self.unlisted_reads = 0
        self._unlisted: dict[str, int] = {}

    # -- test controls --------------------------------------------------------------------
    def will(self, *statuses: str, alarm: str = "") -> None:
        """The next started refresh goes through these statuses, one per describe call; a
        rollback among them is for ``alarm``, which must be in the refresh's
        AlarmSpecification (default: the color's unhealthy-hosts alarm)."""
        self.fates.append((list(statuses), alarm))

    def existing(
        self,
        group: str,
        status: str,
        desired: dict[str, Any] | None,
        *fate: str,
        reason: str = "",
        age_minutes: int = 60,
    ) -> ModelRefresh:
        """A refresh AWS already knows of (started earlier, by anyone)."""
        refresh = ModelRefresh(
            refresh_id=str(uuid.UUID(int=self.random.getrandbits(128))),
            group=group,
            desired=desired,
            preferences={},
            fate=list(fate),
            status=status,
            started=self.clock - datetime.timedelta(minutes=age_minutes),
            previous=self._saved(group),
        )
        if status not in RUNNING:
            refresh.ended = refresh.started + datetime.timedelta(minutes=5)
            refresh.status_reason = reason
            if status.startswith("Rollback"):
                refresh.rollback_reason = reason
        self.refreshes.append(refresh)
        return refresh

    # -- the API ----------------------------------------------------------------------------
    def start_instance_refresh(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("StartInstanceRefresh", request))
        group = request["AutoScalingGroupName"]
        if any(r.group == group and r.status in RUNNING for r in self.refreshes):
            raise _error(
                "InstanceRefreshInProgress",
                "An Instance Refresh is already in progress and blocks the execution of this "
                "Instance Refresh.",
                "StartInstanceRefresh",
            )
        desired = request.get("DesiredConfiguration")
        preferences = request.get("Preferences") or {}
        if desired is not None and ("LaunchTemplate" in desired) == (
            "MixedInstancesPolicy" in desired
        ):
            raise _error(
                "ValidationError",
                "Specify either LaunchTemplate or MixedInstancesPolicy in DesiredConfiguration.",
                "StartInstanceRefresh",
            )
        if preferences.get("AutoRollback"):
            version = self._version_of(desired) if desired else None
            if desired is None or version in ("$Latest", "$Default", None):
                raise _error(
                    "ValidationError",
                    "Rollback is not supported without a desired "
                    "configuration with a numbered launch template version.",
                    "StartInstanceRefresh",
                )
        fate, alarm = self.fates.pop(0) if self.fates else (["InProgress", "Successful"], "")
        watched = (preferences.get("AlarmSpecification") or {}).get("Alarms") or []
        if alarm and alarm not in watched:
            raise AssertionError(
                f"the test's script: AWS cannot roll a refresh back for {alarm}, "
                f"which is not in its AlarmSpecification {watched}"
            )
        self.clock += datetime.timedelta(minutes=1)
        refresh = ModelRefresh(
            refresh_id=str(uuid.UUID(int=self.random.getrandbits(128))),
            group=group,
            desired=desired,
            preferences=preferences,
            fate=fate,
            previous=self._saved(group),
            alarm=alarm,
        )
        self.refreshes.append(refresh)
        self._unlisted[refresh.refresh_id] = self.unlisted_reads
        return {"InstanceRefreshId": refresh.refresh_id}

    def describe_instance_refreshes(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("DescribeInstanceRefreshes", request))
        group = request["AutoScalingGroupName"]
        ids = set(request.get("InstanceRefreshIds") or [])
        hidden = {rid for rid, left in self._unlisted.items() if left > 0}
        for rid in hidden:
            self._unlisted[rid] -= 1
        for refresh in self.refreshes:
            if (
                refresh.group == group
                and refresh.status in RUNNING
                and refresh.fate
                and refresh.refresh_id not in hidden
            ):
                self._advance(refresh, refresh.fate.pop(0))
        listed = [
            r
            for r in self.refreshes
            if r.group == group and (not ids or r.refresh_id in ids) and r.refresh_id not in hidden
        ]
        self.random.shuffle(listed)
        start = int(request.get("NextToken") or 0)
        page = listed[start : start + 2]
        answer: dict[str, Any] = {"InstanceRefreshes": [r.describe() for r in page]}
        if start + 2 < len(listed):
            answer["NextToken"] = str(start + 2)
        return answer

    def cancel_instance_refresh(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("CancelInstanceRefresh", request))
        for refresh in self.refreshes:
            if refresh.group == request["AutoScalingGroupName"] and refresh.status in RUNNING:
                refresh.fate = ["Cancelled"]
                self._advance(refresh, "Cancelling")
                return {"InstanceRefreshId": refresh.refresh_id}
        raise _error(
            "ActiveInstanceRefreshNotFound",
            "No in progress or pending Instance Refresh found.",
            "CancelInstanceRefresh",
        )

    # -- what a status change does to the group -----------------------------------------------
    def _advance(self, refresh: ModelRefresh, status: str) -> None:
        self.clock += datetime.timedelta(minutes=1)
        if refresh.started is None and status != "Pending":
            refresh.started = self.clock
        refresh.status = status
        if status in ("InProgress", "Baking"):
            refresh.percentage = min(100, refresh.percentage + 50)
            if refresh.desired is not None:
                self._instances_run(refresh.group, refresh.desired)
        elif status == "RollbackInProgress":
            refresh.rollback_reason = refresh.rollback_reason or self._alarm_reason(refresh)
            self._instances_run(refresh.group, refresh.previous)
        elif status == "Successful":
            refresh.percentage = 100
            refresh.ended = self.clock
            if refresh.desired is not None:
                self._save(refresh.group, refresh.desired)
                self._instances_run(refresh.group, refresh.desired)
        elif status in ("RollbackSuccessful", "RollbackFailed", "Failed", "Cancelled"):
            refresh.ended = self.clock
            refresh.status_reason = refresh.status_reason or {
                "Failed": "Instance i-0bad failed ELB health checks.",
                "Cancelled": "Cancelled due to user request.",
            }.get(status, "")
            if status == "RollbackSuccessful":
                refresh.rollback_reason = refresh.rollback_reason or self._alarm_reason(refresh)
                self._instances_run(refresh.group, refresh.previous)

    @staticmethod
    def _alarm_reason(refresh: ModelRefresh) -> str:
        return f"alarm {refresh.alarm or 'checkout-staging-green-unhealthy-hosts'} in ALARM"

    def _group(self, group: str) -> dict[str, Any]:
        return self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
            "AutoScalingGroups"
        ][0]

    def _saved(self, group: str) -> dict[str, Any]:
        found = self._group(group)
        if found.get("MixedInstancesPolicy"):
            return {"MixedInstancesPolicy": found["MixedInstancesPolicy"]}
        template = found["LaunchTemplate"]
        return {
            "LaunchTemplate": {
                "LaunchTemplateId": template["LaunchTemplateId"],
                "Version": template["Version"],
            }
        }

    def _save(self, group: str, desired: dict[str, Any]) -> None:
        self.autoscaling.update_auto_scaling_group(AutoScalingGroupName=group, **desired)

    @staticmethod
    def _version_of(settings: dict[str, Any]) -> str | None:
        if "LaunchTemplate" in settings:
            return settings["LaunchTemplate"].get("Version")
        return settings["MixedInstancesPolicy"]["LaunchTemplate"][
            "LaunchTemplateSpecification"
        ].get("Version")

    def _instances_run(self, group: str, settings: dict[str, Any]) -> None:
        """The group's instances as a refresh (or its rollback) leaves them: on the settings'
        version. Their instance types stay moto's (the template's type, fixed at launch), so a
        test of a mixed-instances policy starts its instances with one of the policy's types."""
        template = (
            settings.get("LaunchTemplate")
            or settings["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
        )
        self.ec2.modify_launch_template(
            LaunchTemplateId=template["LaunchTemplateId"],
            DefaultVersion=self._version_of(settings),
        )

    def requests(self, name: str) -> list[dict[str, Any]]:
        return [request for call, request in self.calls if call == name]

    def of(self, group: str) -> Iterable[ModelRefresh]:
        return [r for r in self.refreshes if r.group == group]
