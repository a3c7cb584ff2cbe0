"""Canary capacity: how many instances the stable color runs now, read from AWS.

The first shift of a release onto a color raises that color's ``min`` to what the stable color
runs (:func:`release.transitions.shift`), as Argo Rollouts scales a canary up before it sends
traffic to it. With target tracking on, the stack file's ``desired`` of the stable color is only
the count its group was created with; the autoscaler owns the live count, so it is read here:
the stable color's Auto Scaling group, found by its Stack/Service/Color tags, and its
``DesiredCapacity``. One DescribeAutoScalingGroups call (:func:`release.live.find_group`, the
lookup :func:`release.live.read_color` starts with; its refresh, launch-template, target and
alarm reads are not needed for one number).

What AWS trouble means is decided here, as :mod:`release.gates` decides it for the live gate:
without credentials, or when AWS refuses or cannot be reached, the size is unknown and the
shift goes on with a warning (``--require-healthy`` refuses instead); ``rollout`` always
refuses, before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from components.config import StackConfig
from release import live
from release.transitions import ReleaseError, StableSize


def read_stable_size(
    cfg: StackConfig,
    stack: str,
    clients: live.Clients | None = None,
    has_credentials: Callable[[str], bool] | None = None,
) -> StableSize:
    """The stable color's live desired capacity, or why it is unknown (never raises)."""
    stable = cfg.stable_color
    if has_credentials is None:
        from release.aws_clients import has_credentials
    if clients is None and not has_credentials(cfg.region):
        return StableSize(None, "no AWS credentials found")
    try:
        clients = clients or live.Clients.for_region(cfg.region)
        group = live.find_group(clients, stack.split("/")[-1], cfg.service.name, stable.value)
    except live.LiveError as error:
        return StableSize(None, str(error))
    if group is None:
        return StableSize(None, f"no Auto Scaling group tagged for {stable.value}")
    desired = group.get("DesiredCapacity")
    if not isinstance(desired, int) or isinstance(desired, bool) or desired < 0:
        return StableSize(None, f"{group.get('AutoScalingGroupName')}: no desired capacity")
    return StableSize(desired, f"{group['AutoScalingGroupName']} desired capacity")


def for_shift(
    cfg: StackConfig,
    stack: str,
    percent: int,
    require_healthy: bool = False,
    **read: Any,
) -> StableSize | None:
    """``shift``: the stable color's size when this shift sizes the canary, else ``None``.

    Unknown with ``require_healthy``: refused, naming what to provide.
    """
    from release.transitions import sizes_canary

    if not sizes_canary(cfg, percent):
        return None
    size = read_stable_size(cfg, stack, **read)
    if size.desired is None and require_healthy:
        raise ReleaseError(
            f"could not read {cfg.stable_color.value}'s live desired capacity ({size.detail}), "
            "which the first shift raises the new color's min to, and --require-healthy is set "
            "— provide AWS credentials that may call autoscaling:DescribeAutoScalingGroups in "
            f"{cfg.region}"
        )
    return size


def reader(stack: str) -> Callable[[StackConfig], StableSize]:
    """:func:`read_stable_size` for ``rollout`` (the Stack tag holds the short name)."""
    return lambda cfg: read_stable_size(cfg, stack)
