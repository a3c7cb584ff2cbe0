"""``python -m release prune``: deregister this service's old images, never one in use.

An image is kept when any of these holds (every reason is printed):

* its version is among the newest ``--keep`` versions (semantic-version order, not string
  order: ``1.10.0`` is newer than ``1.9.0`` and ``2.0.0-rc.1`` older than ``2.0.0``);
* either color of any ``Pulumi.*.yaml`` of the project names its version (``release.stable``
  is one of the two colors, so it is covered);
* any version of any launch template in the region launches it. An instance refresh that
  fails with auto rollback "restores your Auto Scaling group to the configuration that it was
  using before the start of the instance refresh" (RollbackInstanceRefresh API reference), the
  previous launch-template version: deleting its image would break the rollback;
* a launch configuration names it, or a non-terminated instance runs it;
* it is still ``pending`` (a copy in progress).

Revoked images (``python -m release revoke``) stay exactly as long as something above other than
``--keep`` holds them (a stack file names the version, a launch template, launch configuration or
instance uses it): nothing may launch them again, so they are no rollback target, and a revoked
version does not count among the newest ``--keep``.

Foundation images (``golden-foundation-<runtime>-<timestamp>``, shared by every service of the
account) are kept when any of these holds: it is the newest foundation of its runtime that is not
revoked (the next application bake starts there); a stack file pins it (``image.foundation``);
an image of the account that stays was built on it (tag ``Foundation``, any service's; the
application images this run deletes do not count, and the re-check before deregistering the
foundation reads them again); something uses it directly; it is pending. Foundations go after the
application images of their region.

The kept set is computed completely, in every region, before anything is deleted: a denied or
failed call, or a stack file that does not parse, stops the command with nothing deleted.
Without ``--apply`` nothing is written at all.

``--apply`` then deletes in two phases, because a decision taken once and acted on later loses
whatever starts using an image in between (a deploy, a new launch-template version reusing an
old image). Phase 1 marks every doomed image with the tag ``golden-fleet:pruning`` =
``<run start> <run id>``; ``deploy`` refuses, and the release command's lookups skip, a marked
image (release/images.py). Phase 2 takes the marked images one at a time and, immediately before
deregistering *that* image, re-reads every use of it: the stack files, every version of every
launch template, the launch configurations and instances of its region, in this account and
each ``--usage-role`` account, and the image's own mark. Found in use (or its mark removed or
replaced by someone else), it is kept, unmarked and reported; the window left open is the one
image's re-check. A mark present when the run starts (a killed run's) is never trusted as a
decision: the image is decided afresh, re-marked with this run's value if it still goes, and
unmarked if it stays. A failure or Ctrl-C unmarks every image not yet deregistered.

Deregistering an image "has no effect on any snapshots that were created during the AMI creation
process" (EC2 User Guide, "Deregister an Amazon EC2 AMI"), and EC2 refuses to delete a snapshot
a registered image uses (DeleteSnapshot API reference). So each image is deregistered first, and
then only the snapshots of its block-device mappings that this account owns and that no other
still-registered image (deprecated and disabled ones included) uses are deleted.

Scope: the account of the credentials, in the regions given: by default the stack's region and
every ``copyToRegions`` of the project's bake stacks; ``--region`` names them instead;
``--all-regions`` takes every region enabled for the account (DescribeRegions). Copies outlive
the config (components/image_distribution.py retains them when a region leaves
``copyToRegions``), and a copy's name is its image's, so a copy in a region that left the config
is found by name in any region read, and ``--all-regions`` finds it without anyone remembering
where it was. What uses an image is read only in the regions where this service has images: a
launch template or instance can only use an image of its own region. Images shared with other
accounts are protected there by the stack files and ``--keep``, and by those accounts' launch
templates and instances when ``--usage-role`` can read them (docs/guides/image-retention.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config import COLORS, BakeImage, ConfigError, StackConfig
from components.image_contract import (
    FOUNDATION_TAG,
    SEMVER_PATTERN,
    TIMESTAMP_PATTERN,
    foundation_runtime,
    revocation,
    tag_map,
    version_key,
)
from release import image_usage, stackfile
from release.images import PRUNING_TAG, build_time, pruning_mark, utcnow
from release.transitions import ReleaseError

DEFAULT_KEEP = 3
KEEP_MAX = 1000
_KEEP = re.compile(r"[1-9][0-9]{0,3}")
# AWS region names (us-east-1, eu-central-2, us-gov-west-1, ap-southeast-4).
_REGION = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}")
# Instances in any of these states still hold their image (DescribeInstances instance-state-name).
PENDING = "pending"


class PruneError(ReleaseError):
    """The kept set could not be computed, or a deletion failed. One line."""


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------
def keep_count(value: str) -> int:
    """``--keep``: 1 to 1000 in plain ASCII digits. 0 is refused: a version just baked and not
    yet deployed anywhere would go."""
    if not _KEEP.fullmatch(value) or int(value) > KEEP_MAX:
        raise argparse.ArgumentTypeError(
            f"{value[:20]!r} is not a number of versions to keep from 1 to {KEEP_MAX}"
        )
    return int(value)


def region_name(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value[:40]!r} is not an AWS region name such as eu-west-1"
        )
    return value


# An IAM role ARN (IAM names: letters, digits and +=,.@_- ; paths of / separated parts).
_ROLE_ARN = re.compile(r"arn:aws(?:-cn|-us-gov)?:iam::([0-9]{12}):role/[A-Za-z0-9+=,.@_/-]{1,512}")


def role_arn(value: str) -> str:
    if not _ROLE_ARN.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value[:60]!r} is not an IAM role ARN such as "
            "arn:aws:iam::222222222222:role/golden-fleet-image-usage"
        )
    return value


# ---------------------------------------------------------------------------------------------
# Versions in semantic-version order (semver.org, section 11)
# ---------------------------------------------------------------------------------------------
semver_key = version_key  # the image contract's one rule


# ---------------------------------------------------------------------------------------------
# The decision (pure)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Image:
    """One of this service's images in one region."""

    image_id: str
    region: str
    name: str
    version: str
    state: str
    snapshots: tuple[str, ...]
    mark: str | None = None  # the pruning mark it carried when read (an earlier run's)
    revoked: str | None = None  # its revocation reason
    runtime: str | None = None  # set for a foundation (its version is then "")

    @property
    def is_foundation(self) -> bool:
        return self.runtime is not None

    @property
    def built(self) -> dt.datetime | None:
        return build_time(self.name)


@dataclass
class Decision:
    image: Image
    reasons: list[str] = field(default_factory=list)  # empty: the image goes
    outcome: str = ""  # set by the apply step
    # Found by the re-check just before deregistration: the image was kept after all.
    late: list[str] = field(default_factory=list)
    mark_note: str = ""  # what became of a mark an earlier run left on it

    @property
    def kept(self) -> bool:
        return bool(self.reasons)


def image_of(raw: Mapping[str, Any], service: str, region: str) -> Image | None:
    """The image if its name is exactly ``<service>-<semver>-<timestamp>`` or a foundation's,
    else None (another service's, a hand-made one: never touched)."""
    name = raw.get("Name")
    if not isinstance(name, str):
        return None
    runtime = foundation_runtime(name)
    match = re.fullmatch(rf"{re.escape(service)}-({SEMVER_PATTERN})-{TIMESTAMP_PATTERN}", name)
    if match is None and runtime is None:
        return None
    snapshots = tuple(
        m["Ebs"]["SnapshotId"]
        for m in raw.get("BlockDeviceMappings") or []
        if (m.get("Ebs") or {}).get("SnapshotId")
    )
    return Image(
        raw["ImageId"],
        region,
        name,
        match.group(1) if match else "",
        raw.get("State", ""),
        snapshots,
        pruning_mark(raw),
        revocation(dict(raw)),
        runtime,
    )


def decide(
    images: Iterable[Image],
    keep: int,
    named: Mapping[str, list[str]],
    in_use: Mapping[tuple[str, str], list[str]],
    children: Mapping[tuple[str, str], list[str]] | None = None,
    pinned: Mapping[str, list[str]] | None = None,
) -> list[Decision]:
    """Each image with the reasons it stays (none: it goes).

    ``named`` maps versions to the stack files' colors naming them; ``in_use`` maps
    ``(region, image id)`` to the launch templates, launch configurations and instances using it.
    The newest ``keep`` versions are counted over every region together, so a version copied to
    several regions is one version; a revoked image never counts among them. ``children`` maps
    ``(region, foundation id)`` to the names of the account's images built on it (those of this
    service are counted only when they stay); ``pinned`` maps foundation names to the stack
    files pinning them. Application images come before the foundations of their region.
    """
    images = list(images)
    apps = [i for i in images if not i.is_foundation]
    newest = sorted({i.version for i in apps if not i.revoked}, key=semver_key, reverse=True)[:keep]
    decisions = []
    for image in sorted(apps, key=lambda i: (i.region, semver_key(i.version), i.name)):
        reasons = []
        if image.version in newest and not image.revoked:
            reasons.append(f"newest {keep}")
        reasons.extend(named.get(image.version, []))
        reasons.extend(in_use.get((image.region, image.image_id), []))
        if image.state == PENDING:
            reasons.append("pending")
        decisions.append(Decision(image, reasons))
    doomed_names = {(d.image.region, d.image.name) for d in decisions if not d.kept}
    newest_foundation = {
        runtime: max(i.name for i in images if i.runtime == runtime and not i.revoked)
        for runtime in {i.runtime for i in images if i.is_foundation and not i.revoked}
    }
    for image in sorted((i for i in images if i.is_foundation), key=lambda i: (i.region, i.name)):
        reasons = []
        if newest_foundation.get(image.runtime) == image.name:
            reasons.append(f"newest {image.runtime} foundation")
        reasons.extend((pinned or {}).get(image.name, []))
        built_on = [
            name
            for name in (children or {}).get((image.region, image.image_id), [])
            if (image.region, name) not in doomed_names
        ]
        if built_on:
            reasons.append(f"base of {', '.join(sorted(built_on))}")
        reasons.extend(in_use.get((image.region, image.image_id), []))
        if image.state == PENDING:
            reasons.append("pending")
        decisions.append(Decision(image, reasons))
    return sorted(decisions, key=lambda d: (d.image.region, d.image.is_foundation))


def render(decisions: list[Decision], now: dt.datetime, applied: bool) -> str:
    header = ("IMAGE", "REGION", "VERSION", "AGE", "DECISION")
    rows = [header]
    for d in decisions:
        built = d.image.built
        age = f"{(now - built) // dt.timedelta(days=1)}d" if built else "?"
        if d.kept:
            decision = "kept: " + ", ".join(d.reasons)
        elif d.late:
            decision = "kept at deletion: " + ", ".join(d.late)
        else:
            decision = d.outcome or ("not reached: stopped" if applied else "would delete")
        if d.mark_note:
            decision += f"; {d.mark_note}"
        if d.image.revoked:
            decision += f"; revoked: {d.image.revoked}"
        version = d.image.version or f"{d.image.runtime} foundation"
        rows.append((d.image.image_id, d.image.region, version, age, decision))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


# ---------------------------------------------------------------------------------------------
# Stack files
# ---------------------------------------------------------------------------------------------
def stack_files(root: Path, extra: Path | None = None) -> list[Path]:
    """Every ``Pulumi.<stack>.yaml`` of the project (and ``--file``, when it lies elsewhere)."""
    found = sorted(p.resolve() for p in root.glob("Pulumi.*.yaml") if p.name != "Pulumi.yaml")
    if extra is not None and extra.resolve() not in found:
        found.append(extra.resolve())
    return found


def read_stack_files(paths: Iterable[Path]) -> dict[Path, StackConfig]:
    """Each file's validated config; one that does not parse stops the command, since the
    versions it names are unknown."""
    configs = {}
    for path in paths:
        try:
            configs[path] = stackfile.load(path).parse()
        except (ConfigError, ReleaseError, OSError) as error:
            detail = "; ".join(error.problems) if isinstance(error, ConfigError) else str(error)
            raise PruneError(
                f"{path.name} does not parse ({detail}) — the versions it runs are unknown, so "
                "nothing can be pruned safely; fix the file first"
            ) from None
    return configs


def named_versions(configs: Mapping[Path, StackConfig], service: str) -> dict[str, list[str]]:
    """version -> ``Pulumi.prod.yaml blue`` for every color of this service's stack files."""
    named: dict[str, list[str]] = defaultdict(list)
    for path, cfg in configs.items():
        if cfg.service.name != service:
            continue
        for color in COLORS:
            named[cfg.fleets[color].version].append(f"{path.name} {color.value}")
    return dict(named)


def pinned_foundations(configs: Mapping[Path, StackConfig]) -> dict[str, list[str]]:
    """foundation name -> ``Pulumi.staging.yaml image.foundation`` for every stack pinning it."""
    pinned: dict[str, list[str]] = defaultdict(list)
    for path, cfg in configs.items():
        foundation = getattr(cfg.image, "foundation", None)
        if foundation:
            pinned[foundation].append(f"{path.name} image.foundation")
    return dict(pinned)


def enabled_regions(ec2: Any, home: str) -> list[str]:
    """Every region enabled for the account (DescribeRegions without AllRegions lists only
    those: regions not opted in are left out, as no image can live there)."""
    answer = _call("DescribeRegions", home, ec2.describe_regions)
    return sorted(r["RegionName"] for r in answer.get("Regions", []))


def default_regions(cfg: StackConfig, configs: Mapping[Path, StackConfig]) -> list[str]:
    """The stack's region and every region a bake stack of this service copies to."""
    regions = {cfg.region}
    for other in configs.values():
        if other.service.name == cfg.service.name and isinstance(other.image, BakeImage):
            regions.update(other.image.copy_to_regions)
    return sorted(regions)


# ---------------------------------------------------------------------------------------------
# Reading AWS: everything before any deletion
# ---------------------------------------------------------------------------------------------
def _call(what: str, region: str, call: Callable[..., dict], **kwargs: Any) -> dict:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call(**kwargs)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise PruneError(
            f"{what} in {region} was refused ({code}) — the images in use cannot be known, so "
            "nothing was deleted; grant the call (docs/guides/image-retention.md) and run again"
        ) from None
    except BotoCoreError as error:
        raise PruneError(
            f"{what} in {region} failed ({error}) — nothing was deleted; run again"
        ) from None


def _pages(
    what: str, region: str, call: Callable[..., dict], key: str, **kwargs: Any
) -> Iterator[dict]:
    """Every item of a paginated EC2/Auto Scaling call (NextToken), prune's errors."""
    return image_usage.pages(what, call, key, _caller(region), **kwargs)


def _caller(region: str) -> image_usage.Caller:
    """:func:`_call` in ``region``, as the shared readers of release/image_usage.py call it."""

    def caller(what: str, call: Callable[..., dict], **request: Any) -> dict:
        return _call(what, region, call, **request)

    return caller


@dataclass
class RegionView:
    region: str
    images: list[Image]
    # snapshot id -> every image of this account in the region that uses it
    snapshot_users: dict[str, set[str]]
    # foundation id -> the names of every image of this account in the region built on it
    children: dict[str, list[str]] = field(default_factory=dict)


def read_region(ec2: Any, region: str, service: str) -> RegionView:
    """This account's images in ``region`` and the snapshots they use (what uses the images is
    ``read_usage``'s, read only where this service has images)."""
    images: list[Image] = []
    users: dict[str, set[str]] = defaultdict(set)
    children: dict[str, list[str]] = defaultdict(list)
    # Every image this account owns, deprecated and disabled ones too: a snapshot any of them
    # uses must stay (DescribeImages hides both kinds unless asked).
    for raw in _pages(
        "DescribeImages",
        region,
        ec2.describe_images,
        "Images",
        Owners=["self"],
        IncludeDeprecated=True,
        IncludeDisabled=True,
    ):
        for mapping in raw.get("BlockDeviceMappings") or []:
            snapshot = (mapping.get("Ebs") or {}).get("SnapshotId")
            if snapshot:
                users[snapshot].add(raw["ImageId"])
        base = tag_map(raw).get(FOUNDATION_TAG)
        if base:
            children[base].append(raw.get("Name", raw["ImageId"]))
        image = image_of(raw, service, region)
        if image is not None:
            images.append(image)

    return RegionView(region, images, dict(users), dict(children))


def read_usage(
    ec2: Any, autoscaling: Any, region: str, who: str = "", image_id: str | None = None
) -> dict[tuple[str, str], list[str]]:
    """``(region, image id)`` -> what uses it: launch-template versions, launch configurations
    and non-terminated instances of the account ``ec2`` belongs to (``who`` prefixes the
    reasons of another account). ``image_id`` narrows the instance read to that image (every
    launch-template version is still read: a ``resolve:ssm:`` name can only be matched once
    resolved). The reads are release/image_usage.py's, which revoke shares."""
    caller = _caller(region)
    in_use: dict[tuple[str, str], list[str]] = defaultdict(list)
    try:
        templates = image_usage.read_templates(ec2, caller)
    except image_usage.UnresolvedImage as error:
        raise PruneError(f"{error} in {region} — nothing was deleted") from None
    for (template_id, version), named in templates.images.items():
        in_use[(region, named)].append(
            f"{who}launch template {templates.names[template_id]} v{version}"
        )
    for name, named in image_usage.read_launch_configurations(autoscaling, caller):
        in_use[(region, named)].append(f"{who}launch configuration {name}")
    for instance in image_usage.read_instances(ec2, [image_id] if image_id else None, caller):
        in_use[(region, instance.get("ImageId", ""))].append(
            f"{who}instance {instance.get('InstanceId')}"
        )
    return dict(in_use)


def assumed_clients(
    clients: Callable[[str, str], Any], home: str, role_arn: str
) -> Callable[[str, str], Any]:
    """Clients in the account of ``role_arn``, by STS AssumeRole from the caller's credentials
    (15 minutes, the least STS allows: the reads take seconds)."""
    import boto3

    from release import aws_clients

    answer = _call(
        f"AssumeRole {role_arn}",
        home,
        clients("sts", home).assume_role,
        RoleArn=role_arn,
        RoleSessionName="golden-fleet-prune",
        DurationSeconds=900,
    )
    keys = answer["Credentials"]
    # A session of its own: the assumed keys never reach the environment or a log. One for
    # every region: a session loads each service model once.
    session = boto3.session.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name=home,
    )

    def make(service: str, region: str) -> Any:
        return session.client(service, region_name=region, config=aws_clients.client_config())

    return _memoized(make)


def owned_snapshots(ec2: Any, region: str, snapshot_ids: list[str]) -> set[str]:
    """Which of these snapshots this account owns (only those are ever deleted)."""
    if not snapshot_ids:
        return set()
    owned: set[str] = set()
    for start in range(0, len(snapshot_ids), 200):
        for snapshot in _pages(
            "DescribeSnapshots",
            region,
            ec2.describe_snapshots,
            "Snapshots",
            OwnerIds=["self"],
            SnapshotIds=snapshot_ids[start : start + 200],
        ):
            owned.add(snapshot["SnapshotId"])
    return owned


# ---------------------------------------------------------------------------------------------
# Deleting
# ---------------------------------------------------------------------------------------------
def freed_snapshots(view: RegionView, doomed: list[Decision], owned: set[str]) -> set[str]:
    """The snapshots in ``view.region`` that deleting ``doomed`` frees: owned by this account and
    used by no image that stays."""
    gone = {d.image.image_id for d in doomed if d.image.region == view.region}
    return {
        s
        for d in doomed
        if d.image.region == view.region
        for s in d.image.snapshots
        if s in owned and view.snapshot_users.get(s, set()) <= gone
    }


def _write(call: Callable[..., dict], **kwargs: Any) -> str | None:
    """One deregistration or deletion; None on success, else the error code or message."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        call(**kwargs)
    except ClientError as error:
        return str(error.response.get("Error", {}).get("Code", "error"))
    except BotoCoreError as error:
        return str(error)
    return None


# DeleteSnapshot right after DeregisterImage may still see the image (EC2's API is eventually
# consistent: "Eventual consistency in the Amazon EC2 API", EC2 developer guide).
SNAPSHOT_IN_USE = "InvalidSnapshot.InUse"
SNAPSHOT_RETRIES = 3
SNAPSHOT_RETRY_WAIT_S = 2.0


def delete(
    ec2: Any,
    view: RegionView,
    doomed: list[Decision],
    owned: set[str],
    sleep: Callable[[float], None] = time.sleep,
    deregistered: set[str] | None = None,
) -> int:
    """Deregister each image, then delete each of its snapshots that this account owns and that
    no image still registered uses. Returns the number of snapshots deleted. The first failure
    stops everything, with the table saying what was done. ``deregistered`` collects the
    images of ``view.region`` deregistered so far, across calls."""
    deregistered = set() if deregistered is None else deregistered
    deleted = 0
    for decision in doomed:
        image, where = decision.image, view.region
        failed = _write(ec2.deregister_image, ImageId=image.image_id)
        if failed:
            decision.outcome = f"not deleted: DeregisterImage refused ({failed})"
            raise PruneError(
                f"DeregisterImage {image.image_id} in {where} failed ({failed}) — stopped there: "
                "images the table marks deleted are gone, the others are untouched; fix the "
                "cause (deregistration protection, permissions) and run again"
            )
        deregistered.add(image.image_id)
        gone = []
        # A snapshot shared by two doomed images goes with the second.
        for snapshot in image.snapshots:
            users = view.snapshot_users.get(snapshot, set())
            if snapshot not in owned or not users <= deregistered:
                continue
            for attempt in range(SNAPSHOT_RETRIES):
                failed = _write(ec2.delete_snapshot, SnapshotId=snapshot)
                if failed != SNAPSHOT_IN_USE or attempt == SNAPSHOT_RETRIES - 1:
                    break
                sleep(SNAPSHOT_RETRY_WAIT_S * (attempt + 1))
            if failed:
                decision.outcome = f"deregistered; snapshot {snapshot} left ({failed})"
                raise PruneError(
                    f"DeleteSnapshot {snapshot} in {where} failed ({failed}) after its image "
                    f"{image.image_id} was deregistered — stopped; delete it by hand "
                    f"(aws ec2 delete-snapshot --region {where} --snapshot-id {snapshot}), "
                    "then run again"
                )
            gone.append(snapshot)
        deleted += len(gone)
        decision.outcome = f"deleted, {len(gone)} snapshot{'s' if len(gone) != 1 else ''}"
    return deleted


# ---------------------------------------------------------------------------------------------
# Two phases: mark, then re-check and delete one image at a time
# ---------------------------------------------------------------------------------------------
# Why a tag and not the name: an AMI cannot be renamed (EC2 has no call for it), and the name is
# the key every lookup goes by, across accounts too, so it must stay what the bake made. A tag is
# added and removed per image at once, the owner account sees it in the DescribeImages answer
# the lookups already read, and DeleteTags given the value removes only that exact mark (never
# a newer run's). Accounts the image is shared with do not see it: docs/guides/image-retention.md.
MARK_CHUNK = 500  # images per CreateTags call (one region's)


def mark_value(started: dt.datetime, run_id: str) -> str:
    """``2027-03-01T09:00:00Z 3f9c2a7d1e4b``: when the run started, and which run it is."""
    return f"{started.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ} {run_id}"


class Marks:
    """The images this run has marked and not yet deregistered or unmarked, so that a failure or
    Ctrl-C can unmark the rest (a killed run's marks are the next run's to judge)."""

    def __init__(self, clients: Callable[[str, str], Any], value: str):
        self.clients, self.value = clients, value
        self.held: dict[tuple[str, str], Decision] = {}

    def mark(self, region: str, doomed: list[Decision]) -> None:
        ids = [d.image.image_id for d in doomed]
        for start in range(0, len(ids), MARK_CHUNK):
            chunk = ids[start : start + MARK_CHUNK]
            failed = _write(
                self.clients("ec2", region).create_tags,
                Resources=chunk,
                Tags=[{"Key": PRUNING_TAG, "Value": self.value}],
            )
            if failed:
                raise PruneError(
                    f"CreateTags {PRUNING_TAG} in {region} failed ({failed}) — nothing was "
                    "deleted; grant ec2:CreateTags on the images and run again"
                )
            for decision in doomed[start : start + MARK_CHUNK]:
                self.held[(region, decision.image.image_id)] = decision

    def done(self, decision: Decision) -> None:
        """Deregistered: its tags went with it."""
        self.held.pop((decision.image.region, decision.image.image_id), None)

    def release(self, decision: Decision) -> str | None:
        """Remove this run's mark; None on success, else why not (also noted on the row)."""
        image = decision.image
        self.held.pop((image.region, image.image_id), None)
        failed = unmark(self.clients("ec2", image.region), image.image_id, self.value)
        if failed:
            decision.mark_note = f"mark left ({failed}): delete the {PRUNING_TAG} tag by hand"
        return failed

    def release_all(self) -> None:
        for decision in list(self.held.values()):
            self.release(decision)


def unmark(ec2: Any, image_id: str, value: str) -> str | None:
    """DeleteTags of exactly ``value``: a mark another run has put since stays."""
    return _write(
        ec2.delete_tags, Resources=[image_id], Tags=[{"Key": PRUNING_TAG, "Value": value}]
    )


def _renewing(
    make: Callable[[], Any], every_s: float = 600.0, clock: Callable[[], float] = time.monotonic
) -> Callable[[], Any]:
    """``make()`` again once ``every_s`` have passed: assumed-role clients outlive neither their
    15 minutes nor a long second phase."""
    made: list[tuple[float, Any]] = []

    def get() -> Any:
        if not made or clock() - made[0][0] > every_s:
            made[:] = [(clock(), make())]
        return made[0][1]

    return get


# (account id, its clients, renewed): the --usage-role accounts
_Accounts = list[tuple[str, Callable[[], Callable[[str, str], Any]]]]


@dataclass
class Uses:
    """Where the uses of one image are read again, just before it is deregistered."""

    paths: list[Path]  # the stack files
    service: str
    clients: Callable[[str, str], Any]
    accounts: _Accounts


def uses_now(uses: Uses, image: Image) -> tuple[list[str], RegionView]:
    """Everything that uses ``image`` now, and its region's images as they are now (the image's
    own mark, the snapshots' users). The image's own reads come last."""
    region, key = image.region, (image.region, image.image_id)
    configs = read_stack_files(uses.paths)
    named = named_versions(configs, uses.service)
    reasons = (
        list(named.get(image.version, []))
        if not image.is_foundation
        else list(pinned_foundations(configs).get(image.name, []))
    )
    for account, other in uses.accounts:
        their = other()
        usage = read_usage(
            their("ec2", region),
            their("autoscaling", region),
            region,
            f"{account} ",
            image.image_id,
        )
        reasons += usage.get(key, [])
    ec2 = uses.clients("ec2", region)
    usage = read_usage(ec2, uses.clients("autoscaling", region), region, "", image.image_id)
    reasons += usage.get(key, [])
    view = read_region(ec2, region, uses.service)
    if image.is_foundation and view.children.get(image.image_id):
        reasons.append(f"base of {', '.join(sorted(view.children[image.image_id]))}")
    return reasons, view


def delete_marked(
    uses: Uses,
    marks: Marks,
    region: str,
    doomed: list[Decision],
    owned: set[str],
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Phase 2 in one region: for each marked image, re-check its uses and at once deregister it
    (and free its snapshots), or keep and unmark it. Returns the snapshots deleted."""
    deregistered: set[str] = set()
    snapshots = 0
    ec2 = uses.clients("ec2", region)
    for decision in doomed:
        image = decision.image
        try:
            reasons, now = uses_now(uses, image)
        except PruneError as error:
            raise PruneError(
                f"re-checking {image.image_id} in {region}: {str(error).split(' — ')[0]} — "
                "stopped there: images the table marks deleted are gone, the others stay and "
                "are unmarked; run again"
            ) from None
        current = next((i for i in now.images if i.image_id == image.image_id), None)
        if current is None:
            marks.done(decision)
            decision.outcome = "gone already: deregistered by someone else"
        elif current.mark != marks.value:
            # An operator removed the mark to keep the image, or a newer run took it over.
            marks.held.pop((region, image.image_id), None)
            decision.outcome = (
                f"left: its mark was replaced ({current.mark})"
                if current.mark
                else "left: its mark was removed"
            )
        elif reasons:
            decision.late = reasons
            marks.release(decision)
        else:
            try:
                snapshots += delete(ec2, now, [decision], owned, sleep, deregistered)
            finally:
                if image.image_id in deregistered:
                    marks.done(decision)
    return snapshots


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def _memoized(make: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
    """One client per service and region for the whole run (each new boto3 session loads the
    EC2 service model again, about a second)."""
    made: dict[tuple[str, str], Any] = {}

    def client(service: str, region: str) -> Any:
        if (service, region) not in made:
            made[(service, region)] = make(service, region)
        return made[(service, region)]

    return client


def run(
    args: argparse.Namespace,
    path: Path,
    root: Path,
    out: Callable[[str], None] = print,
    clients: Callable[[str, str], Any] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """``clients(service, region)`` makes boto3 clients (release.aws_clients by default)."""
    path = path.resolve()
    configs = read_stack_files(stack_files(root, path))
    cfg = _baking_stack(path, configs)
    service = cfg.service.name
    all_regions = getattr(args, "all_regions", False)
    if clients is None:
        clients = _session_clients(cfg.region)
    clients = _memoized(clients)
    regions = _regions(args, cfg, configs, clients, all_regions)

    views = {region: read_region(clients("ec2", region), region, service) for region in regions}
    # What uses an image is read where this service has images, and only there.
    occupied = [region for region in regions if views[region].images]
    roles = getattr(args, "usage_role", None) or []
    in_use, accounts = _in_use(clients, cfg.region, occupied, roles)
    decisions = decide(
        [i for v in views.values() for i in v.images],
        args.keep,
        named_versions(configs, service),
        in_use,
        {(r, base): names for r, v in views.items() for base, names in v.children.items()},
        pinned_foundations(configs),
    )
    doomed = [d for d in decisions if not d.kept]
    owned = _owned_by_region(clients, regions, doomed)
    out(_heading(args, service, regions, occupied, all_regions))
    _judge_earlier_marks(decisions, args.apply, clients)
    snapshots = 0
    if args.apply:
        marks = Marks(clients, mark_value(utcnow(), uuid.uuid4().hex[:12]))
        uses = Uses(stack_files(root, path), service, clients, accounts)
        snapshots = _apply(marks, uses, regions, decisions, doomed, owned, out, now)
    out(render(decisions, now or utcnow(), applied=args.apply))
    out(_closing(args.apply, regions, views, doomed, owned, snapshots))
    return 0


def _baking_stack(path: Path, configs: Mapping[Path, StackConfig]) -> StackConfig:
    """The config of ``path``, refused when its stack promotes images it does not bake."""
    cfg = configs[path]
    if not isinstance(cfg.image, BakeImage):
        bakers = sorted(
            p.name
            for p, c in configs.items()
            if isinstance(c.image, BakeImage) and c.service.name == cfg.service.name
        )
        raise PruneError(
            f"{path.name} promotes images owned by account {cfg.image.owner_account_id}; prune "
            f"where they are baked ({', '.join(bakers) or 'the baking stack'}), with that "
            "account's credentials"
        )
    return cfg


def _session_clients(home: str) -> Callable[[str, str], Any]:
    """Clients of the caller's credentials (release.aws_clients); refused without any."""
    from release import aws_clients

    if not aws_clients.has_credentials(home):
        raise PruneError("no AWS credentials found — nothing was read or deleted")
    # One session for every region (each new session loads the service models again:
    # --all-regions reads every enabled region).
    session = aws_clients.session(home)

    def clients(service: str, region: str) -> Any:
        return session.client(service, region_name=region, config=aws_clients.client_config())

    return clients


def _regions(
    args: argparse.Namespace,
    cfg: StackConfig,
    configs: Mapping[Path, StackConfig],
    clients: Callable[[str, str], Any],
    all_regions: bool,
) -> list[str]:
    """The regions read: ``--region``'s, else every enabled one (``--all-regions``) with the
    stacks' own, else the stacks' own."""
    if args.region:
        return sorted(set(args.region))
    if all_regions:
        return sorted(
            set(enabled_regions(clients("ec2", cfg.region), cfg.region))
            | set(default_regions(cfg, configs))
        )
    return default_regions(cfg, configs)


def _in_use(
    clients: Callable[[str, str], Any], home: str, occupied: list[str], roles: list[str]
) -> tuple[dict[tuple[str, str], list[str]], _Accounts]:
    """What uses each image in ``occupied``, in this account and then in each ``--usage-role``
    account, and those accounts (their clients renewed) for phase 2's re-checks."""
    in_use: dict[tuple[str, str], list[str]] = defaultdict(list)
    for region in occupied:
        usage = read_usage(clients("ec2", region), clients("autoscaling", region), region)
        for key, reasons in usage.items():
            in_use[key].extend(reasons)
    # Accounts the images are shared with: their launch templates and instances count too.
    accounts = [
        (
            _ROLE_ARN.fullmatch(role).group(1),
            _renewing(lambda role=role: assumed_clients(clients, home, role)),
        )
        for role in roles
    ]
    for account, other in accounts:
        for region in occupied:
            their = other()
            usage = read_usage(
                their("ec2", region), their("autoscaling", region), region, f"{account} "
            )
            for key, reasons in usage.items():
                in_use[key].extend(reasons)
    return in_use, accounts


def _owned_by_region(
    clients: Callable[[str, str], Any], regions: list[str], doomed: list[Decision]
) -> dict[str, set[str]]:
    """Per region, which of the doomed images' snapshots this account owns."""
    return {
        region: owned_snapshots(
            clients("ec2", region),
            region,
            sorted({s for d in doomed if d.image.region == region for s in d.image.snapshots}),
        )
        for region in regions
    }


def _heading(
    args: argparse.Namespace,
    service: str,
    regions: list[str],
    occupied: list[str],
    all_regions: bool,
) -> str:
    where = (
        f"the {len(regions)} regions enabled for the account" if all_regions else ", ".join(regions)
    )
    return (
        f"prune {args.stack}: images of {service} owned by this account in {where} "
        f"(found in {', '.join(occupied) or 'none'}); keeping the newest {args.keep} versions "
        "and every image in use"
    )


def _judge_earlier_marks(
    decisions: list[Decision], apply: bool, clients: Callable[[str, str], Any]
) -> None:
    """Marks found now were left by an earlier run (killed, or still running): never trusted as
    a decision. Each image was decided afresh; --apply unmarks the kept ones and marks the
    doomed ones again with this run's value."""
    for decision in decisions:
        earlier = decision.image.mark
        if earlier is None:
            continue
        if not apply:
            decision.mark_note = f"an earlier run's mark ({earlier}) is not trusted"
        elif decision.kept:
            failed = unmark(clients("ec2", decision.image.region), decision.image.image_id, earlier)
            decision.mark_note = (
                f"an earlier run's mark left ({failed})"
                if failed
                else "an earlier run's mark removed"
            )
        else:
            decision.mark_note = "an earlier run's mark replaced"


def _apply(
    marks: Marks,
    uses: Uses,
    regions: list[str],
    decisions: list[Decision],
    doomed: list[Decision],
    owned: dict[str, set[str]],
    out: Callable[[str], None],
    now: dt.datetime | None,
) -> int:
    """Both phases of --apply; the snapshots deleted. On any failure or interrupt the images not
    yet deregistered are unmarked and the table printed as far as it got."""
    snapshots = 0
    try:
        # Phase 1: every doomed image is marked before the first is deleted.
        for region in regions:
            region_doomed = [d for d in doomed if d.image.region == region]
            if region_doomed:
                marks.mark(region, region_doomed)
        # Phase 2: each image re-checked, and deleted or kept, one at a time.
        for region in regions:
            region_doomed = [d for d in doomed if d.image.region == region]
            snapshots += delete_marked(uses, marks, region, region_doomed, owned[region])
    except BaseException:
        marks.release_all()
        out(render(decisions, now or utcnow(), applied=True))
        raise
    return snapshots


def _closing(
    applied: bool,
    regions: list[str],
    views: Mapping[str, RegionView],
    doomed: list[Decision],
    owned: Mapping[str, set[str]],
    snapshots: int,
) -> str:
    """The last line: what was deleted, or what a dry run would delete."""
    if applied:
        deleted = sum(1 for d in doomed if d.outcome.startswith("deleted"))
        late = sum(1 for d in doomed if d.late)
        return f"deleted {deleted} images and {snapshots} snapshots" + (
            f"; {late} kept at deletion (in use)" if late else ""
        )
    would = sum(len(freed_snapshots(views[r], doomed, owned[r])) for r in regions)
    return (
        f"dry run: {len(doomed)} images and {would} snapshots would be deleted; "
        "nothing was changed — pass --apply to delete them"
    )
