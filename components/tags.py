"""The one place that builds tags.

Stack-wide tags travel as the AWS provider's ``default_tags``; what differs per color (color,
version) is added here. Auto Scaling groups and launch-template tag specifications do not
receive provider default tags, so they get the full map from :func:`instance_tags`.
"""

from __future__ import annotations

MANAGED_BY = "golden-fleet"


def stack_tags(project: str, stack: str, service: str) -> dict[str, str]:
    """Tags on every resource of the stack (the provider's ``default_tags``)."""
    return {"Project": project, "Stack": stack, "Service": service, "ManagedBy": MANAGED_BY}


def fleet_tags(service: str, color: str, version: str) -> dict[str, str]:
    """Tags naming what a color runs: visible on the ASG, its instances and volumes."""
    return {
        "Name": f"{service}-{color}",
        "Service": service,
        "Color": color,
        "Version": version,
    }


def instance_tags(stack: dict[str, str], fleet: dict[str, str]) -> dict[str, str]:
    """Everything an instance should carry; fleet values win over stack values."""
    return {**stack, **fleet}


# What a launch-template version says of its own instances, never the group: the group keeps
# its tags through a refresh that AWS rolls back, so a group tag would name a version its
# instances do not run, and a group tag propagated at launch overrides the launch template's
# tag of the same key (EC2 Auto Scaling user guide, "Tag Auto Scaling groups and instances").
PER_VERSION_KEYS = frozenset({"Version"})


def asg_tag_blocks(tags: dict[str, str]) -> list[dict[str, object]]:
    """ASG tags as blocks, propagated so instances can be traced to their color. The version an
    instance runs comes from its launch-template version's tags (:data:`PER_VERSION_KEYS`)."""
    return [
        {"key": key, "value": value, "propagate_at_launch": True}
        for key, value in sorted(tags.items())
        if key not in PER_VERSION_KEYS
    ]
