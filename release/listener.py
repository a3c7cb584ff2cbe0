"""The stack's weighted listener: one definition, shared by every command that reads or sets
traffic.

A load balancer of this program has more than one listener: the weighted one, whose forward
action names **both** colors' target groups (the stack exports it as ``listenerArn``), and one
*attachment* listener per color (components/fleet.py ``<color>-attach``: a single target group,
tagged ``Purpose=health-check-attachment``, on a port no client reaches) that only puts the
color's target group in use for health checks. An attachment listener forwards 100 % to its one
group; read as "the listener", it would report that color at 100 % whatever the real split is.
DescribeListeners documents no order, so a reader that merges every listener is wrong in one order
or the other.

The weighted listener is therefore:

* the listener whose ARN the stack exports, when the caller knows it; else
* the one listener whose forward actions name exactly one target group of each color.

None, or several, is an error: guessing could read or move another service's traffic. Plain
functions of described data (no AWS calls) so that ``live``, ``emergency``, ``rollout`` and the
program's refresh command can share them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

# components/fleet.py tags each color's attachment listener with this.
ATTACHMENT_PURPOSE = ("Purpose", "health-check-attachment")

C = TypeVar("C", bound=Hashable)


class ListenerError(Exception):
    """No weighted listener, or more than one: one line saying which."""


def forwards(actions: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """``(target group ARN, weight)`` of every forward action, weighted or not. A plain
    ``TargetGroupArn`` forward has weight 1, as AWS's default."""
    found: list[tuple[str, int]] = []
    for action in actions:
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        found += [(g["TargetGroupArn"], int(g.get("Weight", 1))) for g in groups]
        if not groups and action.get("TargetGroupArn"):
            found.append((action["TargetGroupArn"], 1))
    return found


def is_attachment(tags: Mapping[str, str]) -> bool:
    """A listener tagged as a color's health-check attachment (when its tags were read)."""
    key, value = ATTACHMENT_PURPOSE
    return tags.get(key) == value


def colors_named(
    listener: Mapping[str, Any], color_of: Mapping[str, C], colors: Sequence[C]
) -> dict[C, str] | None:
    """``{color: target group ARN}`` when the listener's forward actions name exactly one
    target group of each of ``colors``; ``None`` otherwise (an attachment listener names one)."""
    by_color: dict[C, list[str]] = {}
    for arn, _ in forwards(listener.get("DefaultActions", [])):
        color = color_of.get(arn)
        if color in colors:
            by_color.setdefault(color, []).append(arn)
    if all(len(by_color.get(color, [])) == 1 for color in colors):
        return {color: by_color[color][0] for color in colors}
    return None


def weighted(
    listeners: Sequence[Mapping[str, Any]],
    color_of: Mapping[str, C],
    colors: Sequence[C],
    exported_arn: str | None = None,
    tags: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[Mapping[str, Any], dict[C, str]]:
    """The weighted listener among ``listeners`` and its target group per color.

    ``color_of`` maps target group ARN -> color (from the Color tags, or from the groups the
    caller knows); ``exported_arn`` is the stack's ``listenerArn`` output when known; ``tags``
    (listener ARN -> tags), when read, rule out attachment listeners by their tag as well as by
    their shape. Raises :class:`ListenerError` for none and several.
    """
    tags = tags or {}
    candidates = []
    for listener in listeners:
        if is_attachment(tags.get(listener.get("ListenerArn", ""), {})):
            continue
        groups = colors_named(listener, color_of, colors)
        if groups is not None:
            candidates.append((listener, groups))
    if exported_arn:
        exported = [c for c in candidates if c[0].get("ListenerArn") == exported_arn]
        if exported:
            return exported[0]
        raise ListenerError(
            f"the exported listener {exported_arn} does not forward to one target group of "
            f"each color ({', '.join(map(_name, colors))})"
        )
    if len(candidates) != 1:
        names = ", ".join(listener.get("ListenerArn", "?") for listener, _ in candidates)
        colors_text = " and ".join(f"one {_name(c)}" for c in colors)
        raise ListenerError(
            f"no listener forwards to {colors_text} target group"
            if not candidates
            else f"{len(candidates)} listeners forward to both colors ({names}); refusing to guess"
        )
    return candidates[0]


def weights(actions: Iterable[Mapping[str, Any]], groups: Mapping[C, str]) -> dict[C, int]:
    """Each color's raw weight (0-999) in the listener's forward actions; a color it does not
    name: 0."""
    by_arn = {arn: color for color, arn in groups.items()}
    found = dict.fromkeys(groups, 0)
    for arn, weight in forwards(actions):
        color = by_arn.get(arn)
        if color is not None:
            found[color] = weight
    return found


def percentages(actions: Iterable[Mapping[str, Any]], groups: Mapping[C, str]) -> dict[C, int]:
    """The same weights in percent of their sum, as the stack file speaks (weights are
    relative: 1 and 1 is 50/50)."""
    raw = weights(actions, groups)
    total = sum(raw.values())
    if total == 0:
        return dict.fromkeys(raw, 0)
    return {color: round(100 * weight / total) for color, weight in raw.items()}


def share_of(listeners: Sequence[Mapping[str, Any]], target_group_arn: str) -> int | None:
    """``target_group_arn``'s share (percent) on a listener forwarding to it and to another
    target group: the weighted listener as seen from one color's group alone, when the other
    color's is not known (a color's attachment listener forwards to its own group only). The
    largest such share; None when no listener is one."""
    shares = []
    for listener in listeners:
        actions = listener.get("DefaultActions", [])
        arns = {arn for arn, _ in forwards(actions)}
        if target_group_arn in arns and len(arns) > 1:
            shares.append(percentages(actions, {arn: arn for arn in arns})[target_group_arn])
    return max(shares) if shares else None


def _name(color: object) -> str:
    return str(getattr(color, "value", color))
