"""The release steps as pure functions: a validated stack config in, the edits to make out.

Nothing here reads files, talks to AWS or runs Pulumi. Each step (:func:`deploy`, :func:`shift`,
:func:`rollback`, :func:`finish`) takes the parsed :class:`StackConfig` and returns a
:class:`Plan`: the config keys to set, what the operator should know, what ``pulumi preview``
will show and what undoing the step costs. :func:`apply_plan` writes a plan into any mutable
``config:`` mapping (a plain dict in tests, the round-trip YAML document in the command), and
:func:`validate_plan` checks the result against the same model the Pulumi program uses.

Vocabulary (as in progressive-delivery controllers such as Argo Rollouts):

* **stable** -- ``release.stable``: the color that last held all traffic. Rollback returns there.
* **new** -- the other color: where ``deploy`` puts a version and ``shift`` sends traffic.
* **live** / **idle** -- a color with / without a traffic weight.
* **cold** -- a color with no instances (``capacity.min`` 0): it cannot take traffic.

Canary capacity (as Argo Rollouts scales a canary up before it shifts traffic to it): the first
shift of a release onto the new color, with target tracking on, also raises the new color's
``min`` to the stable color's live desired capacity (:class:`StableSize`, read by
:mod:`release.canary`) and records the color's own values in ``release.canaryRestore``;
``finish`` puts them back and removes the record. Each in the same write as the rest of its step.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import datetime
import shlex
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from components.config import (
    COLORS,
    NAMESPACE,
    Capacity,
    Color,
    PromoteImage,
    StackConfig,
    Standby,
    check_version,
    parse_stack_config,
)
from components.image_contract import version_key

FLEETS = f"{NAMESPACE}:fleets"
TRAFFIC = f"{NAMESPACE}:traffic"
RELEASE = f"{NAMESPACE}:release"
CANARY_RESTORE = "canaryRestore"  # under RELEASE: the canary's own min and desired

COMMAND = "python -m release"
# The stack file a command was given with --file: every command a hint suggests names it too, so
# that following a hint never edits the project's own stack file instead.
_HINT_FILE: contextvars.ContextVar[str | None] = contextvars.ContextVar("hint_file", default=None)


@contextlib.contextmanager
def hints_for_file(path: str | None) -> Iterator[None]:
    """Within the block, the commands hints suggest carry ``--file path`` (none: no option)."""
    token = _HINT_FILE.set(path)
    try:
        yield
    finally:
        _HINT_FILE.reset(token)


class ReleaseError(Exception):
    """A step that must not be taken. The message is one line: what is wrong, what to do."""


class BakeStatus(StrEnum):
    FOUND = "found"
    MISSING = "missing"
    UNKNOWN = "unknown"  # no credentials, no permission or no network: nothing was learnt
    PRUNING = "pruning"  # only images marked by `prune --apply`: about to be deregistered
    REVOKED = "revoked"  # only revoked images (`python -m release revoke`): never launched again


@dataclass(frozen=True)
class BakeCheck:
    """Whether an image exists for a version, as :mod:`release.images` found out."""

    status: BakeStatus
    detail: str  # the image name found, the filter that matched nothing, or why it was unknown
    # FOUND: the foundation the image was built on and its build time (None: unknown, an image
    # from before the layers), see release.images.lineage.
    foundation: str | None = None
    foundation_built: datetime.datetime | None = None


@dataclass(frozen=True)
class StableSize:
    """The stable color's live desired capacity, as :mod:`release.canary` read it."""

    desired: int | None  # None: it could not be read
    detail: str  # the group it was read from, or why it could not be read


class _Remove:
    """The value of a :class:`Change` that deletes its key (see :data:`REMOVE`)."""

    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Any = _Remove()  # Change(path, REMOVE): the key at ``path`` is deleted, not set


@dataclass(frozen=True)
class Change:
    """Set the value at ``path`` (keys from the top of the ``config:`` mapping), or delete the
    key when ``value`` is :data:`REMOVE`."""

    path: tuple[str, ...]
    value: Any

    @property
    def removes(self) -> bool:
        return self.value is REMOVE


@dataclass(frozen=True)
class Plan:
    command: str
    summary: str  # one line: the state after this step
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()  # what the operator should know (capacity restored, warnings)
    preview: str = ""  # what `pulumi preview --diff` will show
    undo: str = ""  # how to undo this step and what it costs
    warnings: tuple[str, ...] = ()  # could not check something; the step goes ahead

    @property
    def is_noop(self) -> bool:
        return not self.changes


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _cap(capacity: Capacity) -> str:
    return f"{capacity.min}/{capacity.desired}/{capacity.max}"


def is_cold(cfg: StackConfig, color: Color) -> bool:
    """A color without a guaranteed instance cannot take traffic (min is what the model checks)."""
    return cfg.fleets[color].capacity.min < 1


def new_color(cfg: StackConfig) -> Color:
    return cfg.stable_color.other


def holds_previous_version(cfg: StackConfig) -> bool:
    """The non-stable color runs an older version than the stable one: it is the color a
    finish retired (warm or cold standby), not a release waiting for traffic. Versions are
    compared in semantic-version order, so 1.10.0 is newer than 1.9.0."""
    new, stable = cfg.fleets[new_color(cfg)].version, cfg.fleets[cfg.stable_color].version
    return version_key(new) < version_key(stable)


def _pin_stable(cfg: StackConfig) -> list[Change]:
    """Write ``release.stable`` if the file leaves it derived.

    A derived stable color follows the larger weight, so it would flip to the new color halfway
    through a shift and rollback would "return" traffic to the wrong color. Pinning it on the
    first edit of a release keeps rollback pointing at the color that last held all traffic.
    """
    if cfg.release.stable is not None:
        return []
    return [Change((RELEASE, "stable"), cfg.stable_color.value)]


def _traffic(new: Color, percent: int) -> list[Change]:
    return [
        Change((TRAFFIC, new.value), percent),
        Change((TRAFFIC, new.other.value), 100 - percent),
    ]


def _capacity(color: Color, capacity: Mapping[str, int]) -> list[Change]:
    return [Change((FLEETS, color.value, "capacity", k), v) for k, v in capacity.items()]


def _cmd(*args: object) -> str:
    """A release command to suggest, with the ``--file`` the current command was given."""
    words = [COMMAND, *(str(a) for a in args)]
    given = _HINT_FILE.get()
    if given is not None:
        words += ["--file", shlex.quote(given)]
    return " ".join(words)


# ---------------------------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------------------------
def deploy(
    cfg: StackConfig,
    stack: str,
    version: str,
    baked: BakeCheck | None = None,
    allow_stale_foundation: bool = False,
    now: datetime.datetime | None = None,
) -> Plan:
    """Put ``version`` on the new (non-stable) color, at weight 0.

    Refuses: an invalid version; a new color that still takes traffic; a version the new color
    already runs with capacity (nothing to deploy); the version the stable color already serves;
    in a promote stack, a version whose image was never baked (``baked`` says MISSING); in
    any stack, a version whose only images are being pruned (``baked`` says PRUNING) or revoked
    (REVOKED), or whose image's foundation is older than ``release.maxFoundationAgeDays``
    (unless ``allow_stale_foundation``: then a warning).
    A cold new color gets the stable color's capacity back so that it can take traffic.
    """
    _check_deploy_target(cfg, stack, version)
    stale = _check_deploy_image(cfg, version, baked, allow_stale_foundation, now)
    changes, notes = _deploy_changes(cfg, version)
    warnings = [f"--allow-stale-foundation: deploying although {stale}"] if stale else []
    image_notes, image_warnings = _bake_check_notes(version, baked)
    return _deploy_plan(cfg, version, changes, notes + image_notes, warnings + image_warnings)


def _check_deploy_target(cfg: StackConfig, stack: str, version: str) -> None:
    """Refuse an invalid version, a new color that still takes traffic, and a version that is
    nothing to deploy (the stable color serves it, or the new color runs it with capacity)."""
    try:
        check_version(version)
    except ValueError as error:
        raise ReleaseError(str(error)) from None
    stable, new = cfg.stable_color, new_color(cfg)
    target, source = cfg.fleets[new], cfg.fleets[stable]
    if cfg.traffic[new] > 0:
        raise ReleaseError(
            f"{new.value} still takes {cfg.traffic[new]}% — shift to 0 "
            f"({_cmd('rollback', stack)}) or finish first ({_cmd('finish', stack)})"
        )
    if version == source.version:
        raise ReleaseError(
            f"{stable.value} (stable) already serves {version} — nothing to release; "
            "deploy a version that differs from the stable one"
        )
    if version == target.version and not is_cold(cfg, new):
        raise ReleaseError(
            f"{new.value} already runs {version} with capacity {_cap(target.capacity)} — "
            f"nothing to deploy; shift traffic to it instead ({_cmd('shift', stack, 10)})"
        )


def _check_deploy_image(
    cfg: StackConfig,
    version: str,
    baked: BakeCheck | None,
    allow_stale_foundation: bool,
    now: datetime.datetime | None,
) -> str | None:
    """Refuse a version whose image is being pruned, is revoked, runs on a stale foundation
    (unless allowed) or, in a promote stack, was never baked. Returns why the foundation is
    stale (allowed), or None."""
    if baked is not None and baked.status is BakeStatus.PRUNING:
        raise ReleaseError(
            f"{version}'s image is being pruned: {baked.detail} — deploy another version; to "
            "keep this one, delete that tag from the image (aws ec2 delete-tags) and deploy "
            "again: prune re-checks each image just before deleting it and keeps one whose mark "
            "is gone"
        )
    if baked is not None and baked.status is BakeStatus.REVOKED:
        raise ReleaseError(
            f"{version} is revoked: {baked.detail} — deploy another version (a revoked image "
            "is never launched again; bake a fixed version)"
        )
    stale = _stale_foundation(cfg, version, baked, now)
    if stale and not allow_stale_foundation:
        raise ReleaseError(
            f"{stale} — bake the next version on a fresh foundation, or pass "
            "--allow-stale-foundation to deploy it anyway"
        )
    if baked is not None and baked.status is BakeStatus.MISSING:
        if isinstance(cfg.image, PromoteImage):
            raise ReleaseError(
                f"{version} was never baked: no image {baked.detail} — bake it in the baking "
                "stack (and let it pass there) before promoting it"
            )
    return stale


def _deploy_changes(cfg: StackConfig, version: str) -> tuple[list[Change], list[str]]:
    """The edits that put ``version`` on the new color, and the note a cold color's capacity
    needs; refuses a cold new color when the stable one has no capacity to copy."""
    stable, new = cfg.stable_color, new_color(cfg)
    target, source = cfg.fleets[new], cfg.fleets[stable]
    changes: list[Change] = [*_pin_stable(cfg)]
    notes: list[str] = []
    if version != target.version:
        changes.append(Change((FLEETS, new.value, "version"), version))
    if is_cold(cfg, new):
        if is_cold(cfg, stable):
            raise ReleaseError(
                f"{new.value} is cold and {stable.value} has no capacity to copy — set "
                f"{FLEETS}.{new.value}.capacity by hand, then deploy"
            )
        changes += _capacity(new, source.capacity.model_dump())
        notes.append(
            f"{new.value} was cold ({_cap(target.capacity)}): its capacity is set to "
            f"{stable.value}'s {_cap(source.capacity)} so that it can take traffic"
        )
    return changes, notes


def _bake_check_notes(version: str, baked: BakeCheck | None) -> tuple[list[str], list[str]]:
    """What the image lookup tells the operator: a note, or a warning when it could not check."""
    if baked is None:
        return [], []
    if baked.status is BakeStatus.FOUND:
        return [f"image found: {baked.detail}"], []
    if baked.status is BakeStatus.MISSING:  # bake stack: `pulumi up` bakes it
        return [f"no image {baked.detail} yet: `pulumi up` will bake {version}"], []
    return [], [
        f"could not check whether {version} was baked ({baked.detail}); continuing: "
        "`pulumi preview` looks the image up by the same name and fails if there is none"
    ]


def _deploy_plan(
    cfg: StackConfig, version: str, changes: list[Change], notes: list[str], warnings: list[str]
) -> Plan:
    stable, new = cfg.stable_color, new_color(cfg)
    target, source = cfg.fleets[new], cfg.fleets[stable]
    return Plan(
        command="deploy",
        summary=(
            f"{new.value} ← {version} at weight 0; {stable.value} stays stable with "
            f"{cfg.traffic[stable]}% ({source.version})"
        ),
        changes=tuple(changes),
        notes=tuple(notes),
        warnings=tuple(warnings),
        preview=(
            f"{new.value}'s launch template (new image) and Auto Scaling Group change; "
            f"{stable.value} and the listener do not"
            if version != target.version
            else f"only {new.value}'s Auto Scaling Group capacity (and its rollout waiter): it "
            f"already runs {version}'s image; {stable.value} and the listener do not change"
        ),
        undo=(
            f"{new.value} takes no traffic yet: undoing costs nothing (deploy another version, "
            "or revert this edit)"
        ),
    )


def _stale_foundation(
    cfg: StackConfig, version: str, baked: BakeCheck | None, now: datetime.datetime | None
) -> str | None:
    """Why the found image's foundation is stale, or None. An image from before the layers has
    no known foundation and is never stale here (release/images.py says why)."""
    if baked is None or baked.status is not BakeStatus.FOUND or baked.foundation_built is None:
        return None
    now = now or datetime.datetime.now(datetime.UTC)
    days = (now - baked.foundation_built) // datetime.timedelta(days=1)
    limit = cfg.release.max_foundation_age_days
    if days <= limit:
        return None
    return (
        f"{version}'s image runs on foundation {baked.foundation}, built {days} days ago, past "
        f"release.maxFoundationAgeDays ({limit})"
    )


def sizes_canary(cfg: StackConfig, percent: int) -> bool:
    """True for the first shift of a release onto the new color (it holds 0 % now) while
    target tracking is on: that shift also raises the new color's ``min`` (see :func:`shift`).

    With scaling off the stack file owns ``desired`` and nothing shrinks a color between steps,
    so the color runs the capacity its file gives it (``deploy`` copies the stable color's onto
    a cold color).
    """
    return cfg.scaling.enabled and percent > 0 and cfg.traffic[new_color(cfg)] == 0


@dataclass(frozen=True)
class _Sizing:
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    raised_to: int | None = None  # the new min, when it goes up


def _restore_record(color: Color, own_min: int, own_desired: int) -> list[Change]:
    return [
        Change((RELEASE, CANARY_RESTORE, "color"), color.value),
        Change((RELEASE, CANARY_RESTORE, "min"), own_min),
        Change((RELEASE, CANARY_RESTORE, "desired"), own_desired),
    ]


def _size_canary(
    cfg: StackConfig, stack: str, size: StableSize | None, cap_at_max: bool
) -> _Sizing:
    """The new color's min (and desired, if lower) raised to what the stable color runs, so
    that target tracking cannot shrink the canary to its min while it takes a small share and
    leave it under-sized when the larger shares arrive. Its own values go into
    ``release.canaryRestore`` (kept from an earlier shift if there is one) for ``finish``.
    """
    stable, new = cfg.stable_color, new_color(cfg)
    capacity = cfg.fleets[new].capacity
    record = cfg.release.canary_restore
    own_min, own_desired = (
        (record.min, record.desired) if record is not None else (capacity.min, capacity.desired)
    )
    key = f"{FLEETS}.{new.value}.capacity"
    if size is None or size.desired is None:
        why = size.detail if size is not None else "not read"
        return _Sizing(
            warnings=(
                f"{new.value}'s min not raised, it stays {capacity.min}: could not read "
                f"{stable.value}'s live desired capacity ({why}) — target tracking may shrink "
                f"{new.value} to {capacity.min} before the larger shares reach it; set "
                f"{key}.min by hand, or shift from 0 again with AWS credentials "
                "(--require-healthy refuses instead of going on)",
            )
        )
    runs = f"{stable.value} runs {size.desired} ({size.detail})"
    target = max(own_min, size.desired)
    warnings: list[str] = []
    if target > capacity.max:
        if not cap_at_max:
            raise ReleaseError(
                f"{runs}, above {key}.max {capacity.max}: {new.value} could not grow to carry "
                f"what {stable.value} carries — raise {key}.max to at least {size.desired} and "
                f"shift again, or pass --force to raise {new.value}'s min only to its max "
                f"{capacity.max}"
            )
        warnings.append(
            f"--force: {new.value}'s min capped at {key}.max {capacity.max}, below the "
            f"{size.desired} instances {stable.value} runs"
        )
        target = capacity.max
    desired = max(own_desired, target)
    if (target, desired) == (own_min, own_desired):
        # Nothing to raise; an earlier raise that the stable color no longer needs goes back.
        changes: list[Change] = []
        if record is not None:
            changes += [
                c
                for c in _capacity(new, {"min": own_min, "desired": own_desired})
                if getattr(capacity, c.path[-1]) != c.value
            ]
            changes.append(Change((RELEASE, CANARY_RESTORE), REMOVE))
        return _Sizing(
            changes=tuple(changes),
            notes=(f"{runs}: {new.value}'s own min {own_min} covers it, nothing raised",),
            warnings=tuple(warnings),
        )
    changes = [
        c
        for c in _capacity(new, {"min": target, "desired": desired})
        if getattr(capacity, c.path[-1]) != c.value
    ]
    if record is None:
        changes += _restore_record(new, own_min, own_desired)
    what = (
        f"{new.value}'s min set to {target} before it takes traffic"
        if target != capacity.min
        else f"{new.value}'s min stays raised at {target}"
    )
    return _Sizing(
        changes=tuple(changes),
        notes=(
            f"{runs}: {what}, so that target tracking cannot shrink it below that between "
            f"steps; finish puts its own min {own_min} (desired {own_desired}) back "
            f"({RELEASE}.{CANARY_RESTORE})",
        ),
        warnings=tuple(warnings),
        raised_to=target if target > capacity.min else None,
    )


def shift(
    cfg: StackConfig,
    stack: str,
    percent: int,
    stable_size: StableSize | None = None,
    cap_at_max: bool = False,
) -> Plan:
    """Send ``percent`` of traffic to the new color and the rest to the stable one.

    Refuses: a percentage outside 0-100; traffic to a cold color; traffic to a color that was
    never deployed (it runs the stable color's version). The first shift of a release with
    target tracking on (:func:`sizes_canary`) also raises the new color's min to
    ``stable_size`` (refused when that is above the color's max, unless ``cap_at_max``; a
    warning when it is not known).
    """
    if not 0 <= percent <= 100:
        raise ReleaseError(f"{percent} is not a percentage — give a whole number from 0 to 100")
    stable, new = cfg.stable_color, new_color(cfg)
    if percent > 0 and is_cold(cfg, new):
        raise ReleaseError(
            f"{new.value} has no capacity ({_cap(cfg.fleets[new].capacity)}) — deploy a version "
            f"to it first ({_cmd('deploy', stack, 'VERSION')})"
        )
    if percent > 0 and cfg.fleets[new].version == cfg.fleets[stable].version:
        raise ReleaseError(
            f"{new.value} runs the stable version {cfg.fleets[stable].version}: nothing was "
            f"deployed to it — deploy a new version first ({_cmd('deploy', stack, 'VERSION')})"
        )
    split = f"{new.value} {percent}% ({cfg.fleets[new].version}), " + (
        f"{stable.value} {100 - percent}% ({cfg.fleets[stable].version}, stable)"
    )
    if cfg.traffic[new] == percent:
        return Plan(command="shift", summary=f"already {split} — nothing to change")
    sizing = (
        _size_canary(cfg, stack, stable_size, cap_at_max)
        if sizes_canary(cfg, percent)
        else _Sizing()
    )
    notes = list(sizing.notes)
    if percent == 100:
        notes.append(
            f"{new.value} takes all traffic but {stable.value} is still the stable color: "
            f"finish to make {new.value} stable ({_cmd('finish', stack)})"
        )
    undo = (
        f"{_cmd('rollback', stack)} returns all traffic to {stable.value} in one listener "
        f"change: seconds, {stable.value} was never scaled down"
    )
    preview = "one change: the listener's forward weights"
    if sizing.raised_to is not None:
        preview = (
            f"{new.value}'s Auto Scaling Group min to {sizing.raised_to} (AWS raises its desired "
            f"to match) and its rollout waiter, which waits for {sizing.raised_to} healthy "
            "targets; then the listener's forward weights, which wait for that waiter"
        )
        undo += f"; {new.value} keeps min {sizing.raised_to} for a retry until finish"
    elif any(c.path[0] == FLEETS for c in sizing.changes):
        preview = (
            f"{new.value}'s Auto Scaling Group min (back to its own) and its rollout waiter; "
            "then the listener's forward weights"
        )
    return Plan(
        command="shift",
        summary=split,
        changes=tuple(_pin_stable(cfg) + _traffic(new, percent) + list(sizing.changes)),
        notes=tuple(notes),
        warnings=sizing.warnings,
        preview=preview,
        undo=undo,
    )


def rollback(cfg: StackConfig, stack: str) -> Plan:
    """All traffic back to the stable color, in one edit of the traffic key only."""
    stable, new = cfg.stable_color, new_color(cfg)
    if cfg.traffic[stable] == 100:
        here = f"all traffic is already on {stable.value} (stable, {cfg.fleets[stable].version})"
        if holds_previous_version(cfg):
            hint = (
                f"after a finish, go back to {cfg.fleets[new].version} by releasing it again: "
                f"{_standby_return(cfg, stack)}"
            )
        elif is_cold(cfg, new) or cfg.fleets[new].version == cfg.fleets[stable].version:
            hint = f"no release in progress ({_cmd('deploy', stack, 'VERSION')} starts one)"
        else:
            hint = (
                f"{new.value} keeps {cfg.fleets[new].version} at 0%: deploy a fixed version "
                f"({_cmd('deploy', stack, 'VERSION')}) before sending it traffic again"
            )
        return Plan(command="rollback", summary=f"{here} — nothing to roll back; {hint}")
    record = cfg.release.canary_restore
    notes = ()
    if record is not None and record.color is new:
        notes = (
            f"{new.value} keeps the min {cfg.fleets[new].capacity.min} its first shift gave it "
            f"(its own: {record.min}, in {RELEASE}.{CANARY_RESTORE}): a retry has the "
            "capacity at once, and the rollback stays one listener change; finish puts "
            f"{record.min} back, and the next shift from 0% sizes it again",
        )
    return Plan(
        command="rollback",
        summary=(
            f"{stable.value} 100% ({cfg.fleets[stable].version}, stable), {new.value} 0% "
            f"({cfg.fleets[new].version} keeps its instances for a retry or a fix)"
        ),
        changes=tuple(_traffic(stable, 100)),
        notes=notes,
        preview="one change: the listener's forward weights",
        undo=f"shift again when fixed ({_cmd('shift', stack, cfg.traffic[new])})",
    )


def finish(cfg: StackConfig, stack: str) -> Plan:
    """Complete a release: the new color, already at 100%, becomes stable.

    With ``standby: cold`` the retired color scales to 0 (max kept); ``warm`` keeps it running.
    Finish never changes weights: an edit that both moved traffic and removed capacity would
    reach one ``pulumi up``, where nothing orders the listener change before the scale-down.
    So it refuses when the new color takes less than 100% (shift to 100 and apply that first;
    ``finish --apply`` does the two as separate updates), and when it takes no traffic at all.
    """
    stable, new = cfg.stable_color, new_color(cfg)
    if cfg.traffic[new] == 0:
        raise ReleaseError(
            f"nothing to finish: {new.value} takes no traffic ({stable.value} is stable with "
            f"{cfg.traffic[stable]}%) — shift some to it first ({_cmd('shift', stack, 10)}), "
            f"or start a release ({_cmd('deploy', stack, 'VERSION')})"
        )
    if cfg.traffic[new] < 100:
        raise ReleaseError(
            f"{new.value} takes {cfg.traffic[new]}%, not 100% — finish never moves traffic and "
            f"retires a color in one edit: shift first ({_cmd('shift', stack, 100)}) and apply "
            f"it, then finish; or run `{_cmd('finish', stack, '--apply')}`, which applies the "
            "two as separate updates"
        )
    old = cfg.fleets[stable]
    changes = [Change((RELEASE, "stable"), new.value)]
    restore, notes = _restore_canary(cfg)
    changes += restore
    cold = cfg.release.standby is Standby.COLD
    if cold:
        changes += _capacity(stable, {"min": 0, "desired": 0})
        standby = (
            f"{stable.value} scales to 0 (cold standby, max {old.capacity.max} kept): going "
            f"back to {old.version} means `{_cmd('deploy', stack, old.version)}` (restores its "
            "capacity), `pulumi up` waiting for instances to boot and pass health checks "
            f"(minutes: at least instanceWarmup {cfg.instance_refresh.instance_warmup} s), "
            "then shift"
        )
    else:
        standby = (
            f"{stable.value} keeps {_cap(old.capacity)} running {old.version} (warm standby, "
            f"billed while idle): going back is `{_cmd('shift', stack, 100)}` then finish — "
            "one listener change, seconds"
        )
    return Plan(
        command="finish",
        summary=(
            f"{new.value} 100% ({cfg.fleets[new].version}) and stable; {stable.value} retired "
            f"({cfg.release.standby.value} standby)"
        ),
        changes=tuple(changes),
        notes=notes,
        preview=(
            f"{stable.value}'s Auto Scaling Group capacity (to 0); the listener does not change"
            if cold
            else f"no resource changes (the listener already sends all traffic to {new.value})"
        )
        + (
            f"; {new.value}'s Auto Scaling Group min back to its own and its rollout waiter"
            if any(c.path[0] == FLEETS and c.path[1] == new.value for c in restore)
            else ""
        ),
        undo=standby,
    )


def _restore_canary(cfg: StackConfig) -> tuple[list[Change], tuple[str, ...]]:
    """``finish``: the new color's own min (and desired) back from ``release.canaryRestore``,
    and the record removed.

    With target tracking on, the file's desired is only the count a group is created with (the
    autoscaler owns the live one), so it goes back too; lowering min removes no instance at
    once, the autoscaler scales in from the current count as the load allows. With scaling off
    the file's desired is the count that runs, and the color now serves all traffic: desired
    stays, only min goes back.
    """
    record = cfg.release.canary_restore
    if record is None:
        return [], ()
    new = new_color(cfg)  # the model refuses a record naming the stable color
    capacity = cfg.fleets[new].capacity
    wanted = {"min": record.min}
    if cfg.scaling.enabled:
        wanted["desired"] = record.desired
        how = (
            f"desired {record.desired} in the file; target tracking sizes the running group "
            "from its current count, nothing is removed at once"
        )
    else:
        wanted["desired"] = max(capacity.desired, record.min)
        how = (
            f"desired stays {wanted['desired']}: scaling is off, so the file's desired is what "
            f"runs, and {new.value} now serves all traffic"
        )
    changes = [c for c in _capacity(new, wanted) if getattr(capacity, c.path[-1]) != c.value]
    changes.append(Change((RELEASE, CANARY_RESTORE), REMOVE))
    note = (
        f"{new.value}'s min back to its own {record.min} (raised to {capacity.min} for the "
        f"release; {how}); {RELEASE}.{CANARY_RESTORE} removed"
    )
    return changes, (note,)


def finish_needs_shift(cfg: StackConfig) -> bool:
    """True when finishing first needs the weight change (``finish --apply`` does it first)."""
    return 0 < cfg.traffic[new_color(cfg)] < 100


def _standby_return(cfg: StackConfig, stack: str) -> str:
    other = new_color(cfg)
    if is_cold(cfg, other):
        return (
            f"{_cmd('deploy', stack, cfg.fleets[other].version)} ({other.value} is cold: "
            "minutes for instances to boot), then shift"
        )
    return f"{_cmd('shift', stack, 100)} ({other.value} is warm: seconds), then finish"


# ---------------------------------------------------------------------------------------------
# Applying a plan
# ---------------------------------------------------------------------------------------------
def apply_plan(config: MutableMapping[str, Any], plan: Plan) -> None:
    """Set every change in ``config`` in place, creating missing mappings on the way; a
    :data:`REMOVE` change deletes its key (and creates nothing).

    Only leaf values are assigned, so a round-trip YAML document keeps its comments, key order
    and flow-style maps.
    """
    for change in plan.changes:
        node: Any = config
        for key in change.path[:-1]:
            if not isinstance(node.get(key), MutableMapping):
                if change.removes:
                    node = None
                    break
                node[key] = {}
            node = node[key]
        if change.removes:
            if node is not None:
                node.pop(change.path[-1], None)
        else:
            node[change.path[-1]] = change.value


def validate_plan(config: Mapping[str, Any], plan: Plan) -> StackConfig:
    """The config after ``plan``, validated; ``config`` itself is left untouched."""
    result = copy.deepcopy(dict(config))
    apply_plan(result, plan)
    return parse_stack_config(result)


# ---------------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    color: str
    version: str
    ami: str
    weight: str
    capacity: str
    state: str


def status_rows(cfg: StackConfig, amis: Mapping[Color, str] | None = None) -> list[Row]:
    rows = []
    for color in COLORS:
        fleet, weight = cfg.fleets[color], cfg.traffic[color]
        state = ["live" if weight > 0 else "idle"]
        if color is cfg.stable_color:
            state.append("stable")
        if is_cold(cfg, color):
            state.append("cold")
        rows.append(
            Row(
                color=color.value,
                version=fleet.version,
                ami=(amis or {}).get(color) or "-",
                weight=f"{weight}%",
                capacity=_cap(fleet.capacity),
                state=", ".join(state),
            )
        )
    return rows


def canary_line(cfg: StackConfig) -> str | None:
    """``status``: the canary min a first shift raised, and what finish puts back."""
    record = cfg.release.canary_restore
    if record is None:
        return None
    capacity = cfg.fleets[record.color].capacity
    return (
        f"canary capacity: {record.color.value}'s min is {capacity.min} for this release (its "
        f"own: min {record.min}, desired {record.desired}, in {RELEASE}.{CANARY_RESTORE}); "
        "finish puts them back"
    )


def render_table(rows: list[Row]) -> str:
    header = Row("COLOR", "VERSION", "AMI", "WEIGHT", "CAPACITY", "STATE")
    table = [header, *rows]
    fields = list(Row.__dataclass_fields__)
    widths = {f: max(len(getattr(r, f)) for r in table) for f in fields}
    return "\n".join(
        "  ".join(getattr(r, f).ljust(widths[f]) for f in fields).rstrip() for r in table
    )


def next_step(cfg: StackConfig, stack: str) -> str:
    """What an operator would do next, as a command."""
    stable, new = cfg.stable_color, new_color(cfg)
    weight = cfg.traffic[new]
    fleet = cfg.fleets[new]
    if weight == 0:
        if is_cold(cfg, new) or fleet.version == cfg.fleets[stable].version:
            return f"no release in progress — start one: {_cmd('deploy', stack, 'VERSION')}"
        if holds_previous_version(cfg):
            return (
                f"no release in progress: {new.value} keeps the previous version "
                f"{fleet.version} as {cfg.release.standby.value} standby (going back: "
                f"{_standby_return(cfg, stack)}) — start the next release: "
                f"{_cmd('deploy', stack, 'VERSION')}"
            )
        return (
            f"{new.value} has {fleet.version} at weight 0 — if it was just deployed: once "
            f"`pulumi up` has run and it is healthy, send it a first share "
            f"({_cmd('shift', stack, 10)}, or {_cmd('rollout', stack)}); if traffic was rolled "
            f"back from it: deploy a fixed version ({_cmd('deploy', stack, 'VERSION')})"
        )
    if weight < 100:
        return (
            f"{new.value} takes {weight}% — watch its errors and latency, then shift more "
            f"({_cmd('shift', stack, min(100, max(50, weight * 2)))}) or roll back "
            f"({_cmd('rollback', stack)})"
        )
    return (
        f"{new.value} takes all traffic — make it stable ({_cmd('finish', stack)}; "
        f"{cfg.release.standby.value} standby for {stable.value}) or roll back "
        f"({_cmd('rollback', stack)})"
    )
