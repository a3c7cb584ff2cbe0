"""``python -m release revoke VERSION|FOUNDATION --reason TEXT``: nothing launches the image again.

A revoked image keeps existing (instances and launch templates that run it go on working; prune
keeps it while anything runs it) but every release step refuses it, naming the reason. What is
recorded, per image, in this order:

1. the tags ``Revoked=<reason>`` and ``RevokedAt=<UTC ISO 8601>``: the owner account's release
   command and prune read them at once;
2. the description, prefixed ``REVOKED: <reason> | ``: tags are invisible to the accounts an
   image is shared with (EC2 User Guide, "Share an AMI with specific AWS accounts"), its
   description is not, so the promote lookups of other accounts read the prefix;
3. deprecation (EnableImageDeprecation) at the next whole minute: EC2 refuses a ``DeprecateAt``
   in the past and rounds seconds to the nearest minute (EnableImageDeprecation API reference),
   so "now" is the next minute, at most 60 s away; an image already deprecated, or due sooner,
   keeps its time. A deprecated image drops out of other accounts' DescribeImages answers
   unless they ask for deprecated images (EC2 User Guide, "Deprecate an Amazon EC2 AMI").

4. disabled (DisableImage), once nothing launches it. Deprecation alone does not stop launches:
   "launch templates and Auto Scaling groups can continue to use a deprecated AMI by specifying
   its ID" (EC2 User Guide, "Deprecate an Amazon EC2 AMI"), so scale-outs and refreshes would
   keep launching it. A disabled image "can't be used for instance launches", loses every launch
   permission and no longer appears in DescribeImages unless asked for (DisableImage API
   reference); it stays deprecated, keeps its tags, and EnableImage brings it back (without its
   launch permissions). Disabling an image a group, a launch-template version or an instance of
   this account still uses would break that color's next launch, so such an image is left
   enabled and the table says which color (stack, group) uses it and the command that replaces
   it (release/image_usage.py); a rerun once it is replaced disables it. An image shared with
   other accounts is left enabled too unless ``--disable-shared``: their groups are invisible
   from here and would stop launching it (run ``images STACK --revoked`` in each of them first).
   What uses the images is read after the other steps, right before the first DisableImage.

A foundation's revocation covers every application image built on it (tag ``Foundation`` = its
id), of every service of the account. Each step is skipped when already done, so the command is
idempotent and a rerun completes one that stopped: a failed call stops at once and the table
says which images are revoked, which partly (and which steps) and which untouched. An image
revoked before keeps its first reason and time (the table says so): the record says why it was
first pulled, and a later reason never rewrites it.

Scope: the account of the credentials (the one that bakes), in the stack's region and every
``copyToRegions`` (copies carry the same name; tags are found on the home region's images).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config import BakeImage, StackConfig
from components.image_contract import (
    DISABLED,
    FOUNDATION_TAG,
    REVOKED_AT_TAG,
    REVOKED_TAG,
    image_name_filter,
    is_foundation_name,
    is_image_name,
    is_valid_version,
    revocation,
    revocation_in_description,
    revocation_reason_problem,
    revoked_description,
    tag_map,
)
from release import image_usage, stackfile
from release.images import parse_aws_time, utcnow
from release.transitions import ReleaseError

_AMI_ID = re.compile(r"ami-[0-9a-f]{8,17}")
NAME_FILTER_CHUNK = 200  # names per DescribeImages name filter


class RevokeError(ReleaseError):
    """Revocation refused before any write, or stopped midway. One line."""


def target_kind(value: str) -> str:
    """``version``, ``foundation`` or ``image`` (an AMI id); raises for anything else."""
    if is_valid_version(value):
        return "version"
    if is_foundation_name(value):
        return "foundation"
    if _AMI_ID.fullmatch(value):
        return "image"
    raise argparse.ArgumentTypeError(
        f"{value[:60]!r} is neither a semantic version (1.5.0), a foundation image name "
        "(golden-foundation-<runtime>-<YYYYMMDDThhmmssZ>) nor an AMI id (ami-0123456789abcdef0)"
    )


def what_text(value: str) -> str:
    target_kind(value)
    return value


def reason_text(value: str) -> str:
    problem = revocation_reason_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def next_minute(now: dt.datetime) -> dt.datetime:
    """The next whole minute after ``now``: the soonest DeprecateAt EC2 takes as it is."""
    return now.astimezone(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


def iso(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"


# ---------------------------------------------------------------------------------------------
# The decision (pure)
# ---------------------------------------------------------------------------------------------
@dataclass
class Target:
    """One image to revoke, as DescribeImages showed it, and what is left to do on it."""

    region: str
    raw: dict
    why: str  # "version 1.5.0", "built on golden-foundation-..."
    reason: str = ""  # the reason the image ends up with (its first one, if it had one)
    kept_reason: str = ""  # the earlier reason kept instead of this run's, when they differ
    revoked_at: str = ""
    description: str | None = None  # the new description, when it must change
    deprecate_at: dt.datetime | None = None  # when deprecation must be set
    tag: bool = False  # the tags must be written
    disable: bool = False  # DisableImage is due: nothing uses it (decided by keep_or_disable)
    uses: list[image_usage.Use] = field(default_factory=list)  # why it stays enabled
    shared_with: list[str] = field(default_factory=list)  # accounts etc. (kept enabled)
    done: list[str] = field(default_factory=list)  # the steps written by this run
    failed: str = ""

    @property
    def image_id(self) -> str:
        return self.raw["ImageId"]

    @property
    def name(self) -> str:
        return self.raw.get("Name", "")

    @property
    def disabled(self) -> bool:
        return self.raw.get("State") == DISABLED

    @property
    def steps(self) -> list[str]:
        return (
            (["tags"] if self.tag else [])
            + (["description"] if self.description is not None else [])
            + (["deprecation"] if self.deprecate_at is not None else [])
            + (["disable"] if self.disable else [])
        )

    @property
    def kept_enabled(self) -> str:
        """Why the image stays enabled ("" when it is disabled or about to be)."""
        if self.disabled or self.disable:
            return ""
        if self.uses:
            return "in use: " + "; ".join(u.what for u in self.uses)
        if self.shared_with:
            return (
                f"shared with {', '.join(self.shared_with)}: their launches are not "
                "visible from here (--disable-shared)"
            )
        return ""


def plan(targets: Iterable[Target], reason: str, now: dt.datetime) -> list[Target]:
    """What each image still needs; raises :class:`RevokeError` (nothing written) when a
    description would pass EC2's 255 characters."""
    planned, too_long = [], []
    for target in targets:
        tags = tag_map(target.raw)
        earlier = revocation(target.raw)
        target.reason = earlier or reason
        if earlier and earlier != reason:
            target.kept_reason = earlier
        target.revoked_at = tags.get(REVOKED_AT_TAG) or iso(now)
        target.tag = tags.get(REVOKED_TAG) != target.reason or REVOKED_AT_TAG not in tags
        description = target.raw.get("Description")
        if revocation_in_description(description) is None:
            try:
                target.description = revoked_description(target.reason, description)
            except ValueError as error:
                too_long.append(f"{target.name} ({target.image_id}) in {target.region}: {error}")
        due = next_minute(now)
        current = parse_aws_time(target.raw.get("DeprecationTime"))
        if current is None or current > due:  # one already deprecated, or due sooner, stays
            target.deprecate_at = due
        planned.append(target)
    if too_long:
        raise RevokeError("nothing revoked: " + "; ".join(too_long) + " — shorten --reason")
    return planned


def render(targets: list[Target], stopped: bool) -> str:
    rows = [("IMAGE", "REGION", "NAME", "WHY", "RESULT")]
    for t in targets:
        if t.failed:
            result = f"partly: {', '.join(t.done) or 'nothing'} written; {t.failed}"
        elif t.steps and len(t.done) == len(t.steps):
            result = "revoked (" + ", ".join(t.done) + ")"
        elif not t.steps:
            result = "already revoked"
        else:
            result = "not reached" if stopped else "would revoke (" + ", ".join(t.steps) + ")"
        if t.kept_reason:
            result += f"; its earlier reason kept: {t.kept_reason!r} ({t.revoked_at})"
        if t.kept_enabled:
            result += f"; NOT disabled, {t.kept_enabled}"
        elif t.disabled:
            result += "; disabled"
        rows.append((t.image_id, t.region, t.name, t.why, result))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


# ---------------------------------------------------------------------------------------------
# Reading AWS
# ---------------------------------------------------------------------------------------------
def _aws_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _code(error: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "error"))
    return str(error)


def describe(ec2: Any, **request: Any) -> Iterator[dict]:
    """Every image of a DescribeImages request, all pages, deprecated and disabled ones too (a
    rerun finds the images it disabled: DescribeImages hides them unless asked)."""
    request = {"IncludeDeprecated": True, "IncludeDisabled": True, **request}
    while True:
        page = ec2.describe_images(**request)
        yield from page.get("Images", [])
        token = page.get("NextToken")
        if not token:
            return
        request["NextToken"] = token


def _by_names(ec2: Any, names: list[str]) -> list[dict]:
    found: list[dict] = []
    for start in range(0, len(names), NAME_FILTER_CHUNK):
        chunk = names[start : start + NAME_FILTER_CHUNK]
        found += describe(ec2, Owners=["self"], Filters=[{"Name": "name", "Values": chunk}])
    return found


def find_targets(
    clients: Callable[[str], Any], home: str, regions: list[str], service: str, what: str
) -> list[Target]:
    """The images to revoke: a version's images (this service's), or a foundation and every
    image built on it (any service's); in ``home`` by what they are, elsewhere by name."""
    ec2 = clients(home)
    kind = target_kind(what)
    if kind == "image":
        found = list(describe(ec2, ImageIds=[what]))
        if not found:
            raise RevokeError(f"no image {what} in {home}")
        name = found[0].get("Name", "")
        if is_foundation_name(name):
            kind, what = "foundation", name
        else:
            version = _version_of(name, service)
            if version is None:
                raise RevokeError(
                    f"{what} is {name!r}: neither a foundation nor an image of {service} — "
                    "revoke only what the bake made"
                )
            kind, what = "version", version
    if kind == "version":
        home_found = [
            (i, f"version {what}")
            for i in describe(
                ec2,
                Owners=["self"],
                Filters=[{"Name": "name", "Values": [image_name_filter(service, what)]}],
            )
            if is_image_name(i.get("Name"), service, what)
        ]
    else:
        foundations = [i for i in _by_names(ec2, [what]) if i.get("Name") == what]
        home_found = [(i, "foundation") for i in foundations]
        for foundation in foundations:
            home_found += [
                (child, f"built on {what}")
                for child in describe(
                    ec2,
                    Owners=["self"],
                    Filters=[{"Name": f"tag:{FOUNDATION_TAG}", "Values": [foundation["ImageId"]]}],
                )
            ]
    if not home_found:
        raise RevokeError(
            f"no image of {what} owned by this account in {home}"
            + (f" for service {service}" if kind == "version" else "")
            + " — nothing revoked"
        )
    targets = [Target(home, raw, why) for raw, why in home_found]
    why_of = {raw.get("Name"): why for raw, why in home_found}
    for region in regions:
        if region == home:
            continue
        for raw in _by_names(clients(region), sorted(why_of)):
            targets.append(Target(region, raw, why_of[raw.get("Name")] + " (copy)"))
    return targets


def _version_of(name: str, service: str) -> str | None:
    prefix = f"{service}-"
    if not name.startswith(prefix) or len(name) < len(prefix) + 17:
        return None
    version = name[len(prefix) : -17]
    return version if is_image_name(name, service, version) else None


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def apply(clients: Callable[[str], Any], targets: list[Target]) -> None:
    """Each image's remaining steps in order (those this run has not written yet); the first
    failure stops everything (raises)."""
    for target in targets:
        ec2 = clients(target.region)
        calls: list[tuple[str, Callable[[], Any]]] = []
        if target.tag:
            calls.append(
                (
                    "tags",
                    lambda t=target, e=ec2: e.create_tags(
                        Resources=[t.image_id],
                        Tags=[
                            {"Key": REVOKED_TAG, "Value": t.reason},
                            {"Key": REVOKED_AT_TAG, "Value": t.revoked_at},
                        ],
                    ),
                )
            )
        if target.description is not None:
            calls.append(
                (
                    "description",
                    lambda t=target, e=ec2: e.modify_image_attribute(
                        ImageId=t.image_id, Description={"Value": t.description}
                    ),
                )
            )
        if target.deprecate_at is not None:
            calls.append(
                (
                    "deprecation",
                    lambda t=target, e=ec2: e.enable_image_deprecation(
                        ImageId=t.image_id, DeprecateAt=t.deprecate_at
                    ),
                )
            )
        if target.disable:
            calls.append(("disable", lambda t=target, e=ec2: e.disable_image(ImageId=t.image_id)))
        for step, call in calls:
            if step in target.done:
                continue
            try:
                call()
            except _aws_errors() as error:
                target.failed = f"{step} refused ({_code(error)})"
                raise
            target.done.append(step)


def shared_with(ec2: Any, image_id: str) -> list[str]:
    """Who else may launch the image (DescribeImageAttribute launchPermission): accounts,
    organizations, units, or everyone."""
    answer = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    found = []
    for permission in answer.get("LaunchPermissions") or []:
        if permission.get("Group") == "all":
            found.append("everyone (public)")
        for key, what in (
            ("UserId", "account"),
            ("OrganizationArn", "organization"),
            ("OrganizationalUnitArn", "organizational unit"),
        ):
            if permission.get(key):
                found.append(f"{what} {permission[key]}")
    return found


def keep_or_disable(
    clients: Callable[[str], Any],
    autoscaling: Callable[[str], Any],
    targets: list[Target],
    disable_shared: bool,
) -> None:
    """Decide DisableImage for every image not disabled yet: due when no group, launch-template
    version or instance of this account uses it in its region, and (unless ``disable_shared``)
    no other account may launch it. Raises :class:`image_usage.UsageError` or botocore's
    errors when that cannot be read: then nothing is disabled."""
    by_region: dict[str, list[Target]] = {}
    for target in targets:
        target.disable, target.uses, target.shared_with = False, [], []
        if not target.disabled:
            by_region.setdefault(target.region, []).append(target)
    for region, pending in sorted(by_region.items()):
        ec2 = clients(region)
        uses = image_usage.read_uses(ec2, autoscaling(region), [t.image_id for t in pending])
        for target in pending:
            target.uses = uses.get(target.image_id, [])
            if not target.uses:
                target.shared_with = shared_with(ec2, target.image_id)
            target.disable = not target.uses and (disable_shared or not target.shared_with)


def replacement_lines(targets: list[Target], root: Path) -> list[str]:
    """For each image left enabled because something uses it: who, and the command that
    replaces it (a stack file in ``root`` says which color is stable)."""

    def stable_color(stack: str) -> str | None:
        path = root / f"Pulumi.{stack}.yaml"
        try:
            return stackfile.load(path).parse().stable_color.value
        except Exception:  # no such file here, or one that does not validate: say both commands
            return None

    lines = []
    for target in targets:
        for use in target.uses:
            lines.append(
                f"still launchable: {target.image_id} ({target.region}): {use.what} — replace "
                f"it: {image_usage.replacement(use, stable_color)}"
            )
    return lines


def summary(targets: list[Target]) -> str:
    complete = [t for t in targets if not t.failed and len(t.done) == len(t.steps)]
    partly = [t for t in targets if t.failed or 0 < len(t.done) < len(t.steps)]
    untouched = [t for t in targets if t not in complete and t not in partly]

    def ids(items: list[Target]) -> str:
        return ", ".join(f"{t.image_id} ({t.region})" for t in items) or "none"

    return (
        f"revoked: {ids(complete)}; partly revoked: "
        + (
            ", ".join(
                f"{t.image_id} ({t.region}: {', '.join(t.done) or 'nothing'} written)"
                for t in partly
            )
            or "none"
        )
        + f"; not reached: {ids(untouched)}"
    )


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def bake_stack(root: Path, stack: str | None, path: Path | None) -> tuple[str, StackConfig]:
    """The stack whose images are revoked: the one named (or its file), else the project's only
    bake stack."""
    if path is not None or stack is not None:
        path = path or root / f"Pulumi.{(stack or '').split('/')[-1]}.yaml"
        cfg = _parse(path)
        if not isinstance(cfg.image, BakeImage):
            raise RevokeError(
                f"{path.name} promotes images owned by account {cfg.image.owner_account_id}: "
                "revoke where they are baked, with that account's credentials"
            )
        return path.name, cfg
    bakers = []
    for candidate in sorted(root.glob("Pulumi.*.yaml")):
        if candidate.name == "Pulumi.yaml":
            continue
        cfg = _parse(candidate)
        if isinstance(cfg.image, BakeImage):
            bakers.append((candidate.name, cfg))
    places = {(c.service.name, c.region) for _, c in bakers}
    if len(places) != 1:
        raise RevokeError(
            f"{len(bakers)} bake stacks ({', '.join(n for n, _ in bakers) or 'none'}) for "
            f"{len(places)} service/region pairs: name the one that baked the image with --stack"
        )
    return bakers[0]


def _parse(path: Path) -> StackConfig:
    from components.config import ConfigError

    try:
        return stackfile.load(path).parse()
    except ConfigError as error:
        raise RevokeError(f"{path.name} does not validate: {'; '.join(error.problems)}") from None


def run(
    args: argparse.Namespace,
    root: Path,
    out: Callable[[str], None] = print,
    clients: Callable[[str], Any] | None = None,
    now: dt.datetime | None = None,
    autoscaling: Callable[[str], Any] | None = None,
) -> int:
    from release import aws_clients

    name, cfg = bake_stack(root, args.stack, args.file)
    regions = sorted({cfg.region, *cfg.image.copy_to_regions})
    if clients is None:
        if not aws_clients.has_credentials(cfg.region):
            raise RevokeError("no AWS credentials found — nothing was read or revoked")
        clients = _per_region("ec2")

    try:
        targets = find_targets(clients, cfg.region, regions, cfg.service.name, args.what)
    except _aws_errors() as error:
        raise RevokeError(
            f"could not read the images to revoke ({_code(error)}) — nothing revoked"
        ) from None
    targets = plan(targets, args.reason, now or utcnow())
    autoscaling = autoscaling or _per_region("autoscaling")
    out(
        f"revoke {args.what} ({name}: {cfg.service.name}, {', '.join(regions)}): "
        f"{len(targets)} image{'s' if len(targets) != 1 else ''}, reason {args.reason!r}"
    )
    if args.dry_run:
        _decide(clients, autoscaling, targets, args.disable_shared, out, written=False)
        out(render(targets, stopped=False))
        for line in replacement_lines(targets, root):
            out(line)
        out("dry run: nothing written")
        return 0
    try:
        apply(clients, targets)
        # Read what uses the images now, right before the first DisableImage: a group that
        # started using one while the tags were written is seen.
        _decide(clients, autoscaling, targets, args.disable_shared, out, written=True)
        apply(clients, targets)
    except RevokeError:
        raise
    except BaseException as error:
        out(render(targets, stopped=True))
        cause = (
            f"AWS refused a call ({_code(error)})"
            if isinstance(error, _aws_errors())
            else f"interrupted ({type(error).__name__})"
        )
        if not isinstance(error, Exception):  # an interrupt stays one: said, then re-raised
            out(f"{cause}: {summary(targets)} — run the same command again to complete it")
            raise
        raise RevokeError(
            f"{cause}: {summary(targets)} — run the same command again to complete it"
        ) from None
    out(render(targets, stopped=False))
    for line in replacement_lines(targets, root):
        out(line)
    out(outcome(targets))
    return 0


def outcome(targets: list[Target]) -> str:
    """The last line of a revocation that ran to its end."""
    kept = [t for t in targets if t.kept_reason]
    enabled = [t for t in targets if t.kept_enabled]
    return (
        f"revoked {sum(1 for t in targets if t.steps)} image(s), "
        f"{sum(1 for t in targets if not t.steps)} already revoked"
        + (f"; {len(kept)} keep their earlier reason" if kept else "")
        + f"; disabled {sum(1 for t in targets if t.disabled or 'disable' in t.done)}"
        + ": deploy, rollouts, refreshes and promote lookups now refuse them"
        + (
            f"; {len(enabled)} stay launchable until what uses them is replaced (above), then "
            "run the same command again"
            if enabled
            else ""
        )
    )


def _per_region(service: str) -> Callable[[str], Any]:
    """A client of ``service`` per region, made once, with the patient timeouts (writes)."""
    from release import aws_clients

    made: dict[str, Any] = {}

    def client(region: str) -> Any:
        if region not in made:
            made[region] = aws_clients.client(service, region, patient=True)
        return made[region]

    return client


def _decide(
    clients: Callable[[str], Any],
    autoscaling: Callable[[str], Any],
    targets: list[Target],
    disable_shared: bool,
    out: Callable[[str], None],
    written: bool,
) -> None:
    """:func:`keep_or_disable`, its failure one line that says what was written."""
    try:
        keep_or_disable(clients, autoscaling, targets, disable_shared)
    except (image_usage.UsageError, *_aws_errors()) as error:
        for target in targets:
            target.disable = False
        detail = str(error) if isinstance(error, image_usage.UsageError) else _code(error)
        if not written:
            raise RevokeError(
                f"could not read what launches the images ({detail}) — nothing revoked"
            ) from None
        out(render(targets, stopped=False))
        raise RevokeError(
            f"could not read what launches the images ({detail}): {summary(targets)}; none "
            "disabled — run the same command again to disable those nothing uses"
        ) from None


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """``revoke``'s arguments (its own builder: cli.py only wires it)."""
    sub = commands.add_parser(
        "revoke",
        help="revoke a version's images, or a foundation and every image built on it",
        description="Tag the image(s) Revoked/RevokedAt, prefix their description with "
        "'REVOKED: <reason> | ', deprecate them at the next minute and disable each one that "
        "no group, launch-template version or instance uses (those in use are named with the "
        "command that replaces them; a rerun disables them once replaced); a foundation's "
        "revocation covers every application image built on it. deploy, rollouts and the "
        "promote lookup then refuse them, naming the reason. Idempotent: a rerun completes a "
        "revocation that stopped; an image revoked before keeps its first reason.",
    )
    sub.add_argument(
        "what",
        type=what_text,
        metavar="VERSION|FOUNDATION",
        help="a version (1.5.0), a foundation image name or an AMI id",
    )
    sub.add_argument(
        "--reason",
        type=reason_text,
        required=True,
        metavar="TEXT",
        help="why (a tag value: letters, digits, spaces, _ . : / = + - @)",
    )
    sub.add_argument(
        "--stack",
        metavar="STACK",
        help="the bake stack whose service and regions are searched (default: "
        "the project's only bake stack)",
    )
    sub.add_argument("--file", type=Path, metavar="PATH", help="that stack's file")
    sub.add_argument("--dry-run", action="store_true", help="show what would be written")
    sub.add_argument(
        "--disable-shared",
        action="store_true",
        help="also disable images shared with other accounts (they lose them at "
        "once; check `images STACK --revoked` in each of them first)",
    )
    return sub
