"""``python -m release rollback STACK --now``: all traffic back to the stable color in seconds.

Order, and why it is the safe one:

1. Read the stack file, plan the ordinary rollback and validate the edited file (no AWS call
   yet): a file the command could not write afterwards is refused before anything changes.
2. Find the live listener by the stack's tags and set the stable color 100 / new 0 with **one**
   ``ModifyListener`` call. This is what stops the bad version taking requests, so it comes
   first and waits for nothing else.
3. Halt the rollout holding the release lock, if any: one conditional write on the lock's
   DynamoDB item sets the halt mark and removes the bake record (:func:`release.lock.halt`).
   The command never waits for that rollout: it reads the halt before and after each of its
   updates and sets these weights again itself, so an update of its own that lands after step 2
   is undone by it; a dead rollout sets nothing.
4. Write the stack file to match (the very edit ``python -m release rollback`` makes).

If 2 fails, the halt is still written (a rollout stops and rolls back itself), and the file is
**not** written: a file claiming 100/0 while the
listener still splits traffic would make ``status`` and reviewers believe the rollback happened.
The command says so and prints the ordinary rollback (file edit, then ``pulumi up``) to run
instead. If 4 fails after 2, the listener is rolled back but the file still holds the split; the
command says so loudly, because the next ``pulumi up`` from that file would send traffic back to
the new color.

Pulumi diffs the program against its *state*, not against AWS (``pulumi refresh`` reads AWS into
the state). After step 2 the state still holds the old weights, so a plain ``pulumi up`` shows a
listener update from the state's old weights to the file's, which sends AWS the values it already
has; ``pulumi up --refresh`` reads the live listener first and then shows no listener change.

Imports are lazy: this path must not pay for anything it does not use.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from release.transitions import ReleaseError

COLORS = ("blue", "green")
TAG_BATCH = 20  # DescribeTags takes at most 20 ARNs per call (ELBv2 API reference, DescribeTags)
MANAGED_BY = "golden-fleet"  # components/tags.py MANAGED_BY: the provider's default tag


class ListenerNotFound(ReleaseError):
    """No live listener could be identified for the stack; nothing was changed."""


@dataclass(frozen=True)
class LiveListener:
    arn: str
    load_balancer_arn: str
    actions: tuple[dict[str, Any], ...]  # DefaultActions as DescribeListeners returned them
    target_groups: Mapping[str, str]  # color -> target group ARN
    # The listener's own tags, read in the same DescribeTags call as the target groups' (it
    # takes any ELBv2 resource ARNs, 20 at a time). None: not read.
    tags: Mapping[str, str] | None = None

    @property
    def weights(self) -> dict[str, int]:
        return forward_weights(self.actions, self.target_groups)


# ---------------------------------------------------------------------------------------------
# Pure functions over the described data
# ---------------------------------------------------------------------------------------------
def batches(items: Sequence[str], size: int = TAG_BATCH) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def tags_of(description: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag.get("Value", "") for tag in description.get("Tags", [])}


def forward_arns(actions: Iterable[Mapping[str, Any]]) -> list[str]:
    """The target group ARNs of every forward action (weighted or not)."""
    arns: list[str] = []
    for action in actions:
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        arns += [group["TargetGroupArn"] for group in groups]
        if not groups and action.get("TargetGroupArn"):
            arns.append(action["TargetGroupArn"])
    return arns


def forward_weights(
    actions: Iterable[Mapping[str, Any]], target_groups: Mapping[str, str]
) -> dict[str, int]:
    """Each color's weight in the weighted forward action (a color not in it: 0)."""
    by_arn = {arn: color for color, arn in target_groups.items()}
    weights = dict.fromkeys(target_groups, 0)
    for action in actions:
        if action.get("Type") != "forward":
            continue
        for group in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            color = by_arn.get(group["TargetGroupArn"])
            if color is not None:
                weights[color] = int(group.get("Weight", 1))  # AWS default weight is 1
    return weights


def with_weights(
    actions: Sequence[Mapping[str, Any]],
    target_groups: Mapping[str, str],
    weights: Mapping[str, int],
) -> list[dict[str, Any]]:
    """``actions`` with only the forward weights changed: what ModifyListener must be sent.

    ModifyListener replaces the listener's default actions as a whole, so every other field of
    every action (order, stickiness, other action types) is sent back exactly as described. A
    top-level TargetGroupArn is only valid next to a single-group ForwardConfig (ELBv2 API
    reference, Action), so it is dropped from a weighted forward.
    """
    by_arn = {arn: color for color, arn in target_groups.items()}
    result = []
    for action in actions:
        action = copy.deepcopy(dict(action))
        config = action.get("ForwardConfig") or {}
        groups = config.get("TargetGroups") or []
        if action.get("Type") == "forward" and any(g["TargetGroupArn"] in by_arn for g in groups):
            for group in groups:
                color = by_arn.get(group["TargetGroupArn"])
                if color is not None:
                    group["Weight"] = int(weights[color])
            if len(groups) > 1:
                action.pop("TargetGroupArn", None)
        result.append(action)
    return result


def pick_listener(
    listeners: Sequence[Mapping[str, Any]], colors: Mapping[str, str]
) -> tuple[Mapping[str, Any], dict[str, str]]:
    """The one listener whose forward action names exactly one target group of each color
    (release/listener.py: the one definition every command shares; a color's attachment
    listener names one group and is never it).

    ``colors`` maps target group ARN -> its Color tag. Refuses none and several (a guess could
    move the wrong service's traffic).
    """
    from release import listener as weighted

    try:
        return weighted.weighted(listeners, colors, COLORS)
    except weighted.ListenerError as error:
        raise ListenerNotFound(str(error)) from None


# ---------------------------------------------------------------------------------------------
# AWS
# ---------------------------------------------------------------------------------------------
def _tags(elbv2: Any, arns: Sequence[str]) -> dict[str, dict[str, str]]:
    tags: dict[str, dict[str, str]] = {}
    for batch in batches(list(arns)):
        for description in elbv2.describe_tags(ResourceArns=list(batch))["TagDescriptions"]:
            tags[description["ResourceArn"]] = tags_of(description)
    return tags


def find_listener(elbv2: Any, stack: str, service: str, region: str = "") -> LiveListener:
    """The stack's weighted listener, found by tags: Stack, Service and ManagedBy on the load
    balancer (the provider's default tags), Color on the target groups."""
    wanted = {"Stack": stack, "Service": service, "ManagedBy": MANAGED_BY}
    where = f" in {region}" if region else ""
    balancers = [
        lb["LoadBalancerArn"]
        for page in elbv2.get_paginator("describe_load_balancers").paginate()
        for lb in page["LoadBalancers"]
        if lb.get("Type", "application") == "application"
    ]
    tags = _tags(elbv2, balancers)
    ours = [arn for arn in balancers if wanted.items() <= tags.get(arn, {}).items()]
    label = ", ".join(f"{key}={value}" for key, value in wanted.items())
    if not ours:
        raise ListenerNotFound(f"no application load balancer tagged {label}{where}")
    listeners = [
        listener
        for lb in ours
        for page in elbv2.get_paginator("describe_listeners").paginate(LoadBalancerArn=lb)
        for listener in page["Listeners"]
    ]
    arns = sorted(
        {arn for listener in listeners for arn in forward_arns(listener["DefaultActions"])}
    )
    listener_arns = [listener["ListenerArn"] for listener in listeners]
    tags = _tags(elbv2, [*arns, *listener_arns])
    colors = {arn: tags.get(arn, {}).get("Color", "") for arn in arns}
    try:
        listener, groups = pick_listener(listeners, colors)
    except ListenerNotFound as error:
        raise ListenerNotFound(f"{error} on the load balancer tagged {label}{where}") from None
    return LiveListener(
        arn=listener["ListenerArn"],
        load_balancer_arn=listener["LoadBalancerArn"],
        actions=tuple(listener["DefaultActions"]),
        target_groups=groups,
        tags=tags.get(listener["ListenerArn"]),
    )


def set_weights(elbv2: Any, listener: LiveListener, weights: Mapping[str, int]) -> dict[str, int]:
    """One ModifyListener call; returns the weights AWS reports back for the listener."""
    actions = with_weights(listener.actions, listener.target_groups, weights)
    response = elbv2.modify_listener(ListenerArn=listener.arn, DefaultActions=actions)
    [updated] = response["Listeners"]
    return forward_weights(updated["DefaultActions"], listener.target_groups)


def roll_back_listener(
    region: str, stack: str, service: str, stable: str, client: Callable[..., Any] | None = None
) -> str:
    """The stable color 100 % on the live listener (one ModifyListener unless already so).

    Returns the listener's ARN; raises :class:`ReleaseError` when it cannot be found or set.
    For callers that cannot wait for ``pulumi up`` (the rollout's last resort).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if client is None:
        from release.aws_clients import client
    target = {color: (100 if color == stable else 0) for color in COLORS}
    elbv2 = client("elbv2", region)
    try:
        listener = find_listener(elbv2, stack, service, region)
        if listener.weights != target and set_weights(elbv2, listener, target) != target:
            raise ReleaseError(f"ModifyListener on {listener.arn} did not take {target}")
    except (BotoCoreError, ClientError) as error:
        raise ReleaseError(f"AWS refused or could not be reached ({error})") from None
    return listener.arn


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def _instead(stack: str) -> str:
    return (
        f"nothing was changed; to roll back through Pulumi instead: `python -m release "
        f"rollback {stack}` (edits the file), then `pulumi up --stack {stack}`"
    )


def _split(weights: Mapping[str, int]) -> str:
    return ", ".join(f"{color} {weights.get(color, 0)}%" for color in COLORS)


def read_back(elbv2: Any, listener: LiveListener, stack: str) -> str:
    """After a write whose answer never came: what the listener says now, or that it is unknown."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        [now] = elbv2.describe_listeners(ListenerArns=[listener.arn])["Listeners"]
    except (BotoCoreError, ClientError, ValueError) as error:
        return (
            f"unknown: the listener could not be read back ({error}) — check with "
            f"`python -m release status {stack}`"
        )
    weights = forward_weights(now["DefaultActions"], listener.target_groups)
    return f"the listener now says {_split(weights)}"


def _halt(
    client: Callable[[str, str], Any],
    region: str,
    key: str,
    stable: str,
    out: Callable[[str], None],
) -> str | None:
    """The halt mark and the bake record's removal, one write on the lock's item.
    None when written (or no lock table exists: no rollout can hold a lock); otherwise why not."""
    from botocore.exceptions import BotoCoreError, ClientError

    from release import lock as locks

    try:
        halted = locks.halt(
            client("dynamodb", region),
            locks.TABLE_NAME,
            key,
            locks.default_holder(),
            datetime.now(UTC),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            out(f"no release lock table {locks.TABLE_NAME} in {region}: no rollout holds a lock")
            return None
        return str(error)
    except (BotoCoreError, ReleaseError) as error:
        return str(error)
    if halted.held:
        out(
            f"halted the rollout of {halted.holder}: at its next check it sets {stable} 100% "
            "on the listener itself (after any update of its own in flight) and rolls back"
        )
    return None


def run_now(
    args: argparse.Namespace,
    path: Path,
    out: Callable[[str], None] = print,
    err: Callable[[str], None] = print,
    client: Callable[[str, str], Any] | None = None,
) -> int:
    """Listener (one ModifyListener), the halt mark (one UpdateItem, which also clears
    the bake record), then the file; never waits for a rollout. Exit 0, or 1 with what
    happened."""
    from release import edits, transitions
    from release import lock as locks

    stack = args.stack
    prepared = edits.prepare(path, lambda cfg: transitions.rollback(cfg, stack))
    cfg: Any = prepared.config
    stable = cfg.stable_color.value
    target = {color: (100 if color == stable else 0) for color in COLORS}
    short = stack.split("/")[-1]  # the Stack tag holds the short stack name
    if client is None:
        from release import aws_clients

        region_session = aws_clients.session(cfg.region)
        if not aws_clients.has_credentials(cfg.region, region_session):
            err(f"error: no AWS credentials for {cfg.region} — {_instead(stack)}")
            return 1

        def client(service: str, region: str) -> Any:
            return aws_clients.client(service, region, made_by=region_session)

    from botocore.exceptions import BotoCoreError, ClientError

    elbv2 = client("elbv2", cfg.region)
    try:
        listener = find_listener(elbv2, short, cfg.service.name, cfg.region)
    except ListenerNotFound as error:
        err(f"error: {error} — {_instead(stack)}")
        return 1
    except (BotoCoreError, ClientError) as error:
        err(f"error: could not read the load balancers ({error}) — {_instead(stack)}")
        return 1
    before = listener.weights
    split = _split(before)
    if args.dry_run:
        out(f"dry run: listener {listener.arn} sends {split}; would set {stable} 100%")
        out(prepared.diff.rstrip("\n") or f"{path.name} already says {stable} 100%")
        return 0
    key = locks.lock_key(cfg.service.name, short)
    if before == target:
        out(f"listener already sends {stable} 100% ({listener.arn}): no call made")
    else:
        try:
            after = set_weights(elbv2, listener, target)
        except ClientError as error:  # AWS answered: the call was refused, nothing changed
            unhalted = _halt(client, cfg.region, key, stable, out)
            marked = (
                f"; the halt could not be written either ({unhalted})"
                if unhalted
                else "; the stack is marked halted, so a rollout holding the release lock "
                "stops at its next check and rolls back"
            )
            err(
                f"error: ModifyListener failed ({error}): the listener's weights were not "
                f"changed{marked} — to roll back through Pulumi instead: `python -m release "
                f"rollback {stack}` (edits the file), then `pulumi up --stack {stack}`"
            )
            return 1
        except BotoCoreError as error:  # no answer: the call may or may not have landed
            now = read_back(elbv2, listener, stack)
            if now != f"the listener now says {_split(target)}":
                _halt(client, cfg.region, key, stable, out)
                err(
                    f"error: ModifyListener got no answer ({error}); {now} — {path.name} was "
                    f"not written; run `python -m release rollback {stack} --now` again"
                )
                return 1
            out(f"ModifyListener got no answer ({error}); {now}")
            after = target
        if after != target:
            err(
                f"error: ModifyListener answered {after}, not {target} — check the listener "
                f"{listener.arn} in the console; {path.name} was not written"
            )
            return 1
        out(f"listener {listener.arn}: was {split}; now {stable} 100% (one ModifyListener call)")
    unhalted = _halt(client, cfg.region, key, stable, out)
    try:
        written = edits.write(prepared)
    except ReleaseError as error:
        err(
            f"error: the listener sends {stable} 100%, but {path.name} could not be written "
            f"({error}) — run `python -m release rollback {stack}` before any `pulumi up`, or "
            "that update sends traffic back to the new color"
        )
        return 1
    if written:
        out(prepared.diff.rstrip("\n"))
        out(f"wrote {path}")
    else:
        out(f"{path.name} already says {stable} 100%: not written")
    if unhalted:
        err(
            f"error: the listener sends {stable} 100% and {path.name} says so, but the halt "
            f"could not be written ({unhalted}): a rollout holding the release lock may set "
            f"its weights again — run `python -m release rollback {stack} --now` again"
        )
        return 1
    out(
        f"next: commit the file; `pulumi up --stack {stack} --refresh` then shows no listener "
        "change (a plain `pulumi up` shows the listener's weights moving from the state's old "
        "values to these, which AWS already has)"
    )
    return 0
