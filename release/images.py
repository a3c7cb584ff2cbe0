"""Finding a version's image, deprecated or not, and how old the images the colors run are.

Images are named ``<service>-<version>-<timestamp>`` in the baking account. Tags are invisible
to the accounts an image is shared with, so the name is the cross-account key: the lookup is
``describe_images(Owners=[owner], Filters=[name = <service>-<version>-*])`` narrowed by the exact
rule of :mod:`components.image_contract` (``1.4.0-*`` would also match ``1.4.0-rc.1-...``).

Every lookup asks for deprecated images too. The bake deprecates each image a year after it was
built, and "for AMI users, the deprecated AMI does not appear in DescribeImages API calls unless
you specify its ID or specify that deprecated AMIs must appear. AMI owners continue to see
deprecated AMIs" (EC2 User Guide, "Deprecate an Amazon EC2 AMI", ami-deprecate.html). Without
``IncludeDeprecated=True`` a promoting account would call a year-old version "never baked",
although launch templates and Auto Scaling groups keep launching it by id (same page). When a
deprecated and a current image of one version both exist, the current one is preferred.

An image that ``python -m release prune --apply`` is about to deregister carries the tag
:data:`PRUNING_TAG` (release/prune.py). The lookups here never resolve a version to such an
image, and :func:`check_baked` reports it so that ``deploy`` refuses the version. Only the
owning account sees the tag: for a promote stack reading across accounts the lookup cannot tell,
and prune's re-check of each image just before deregistering it is what protects it.

A revoked image (``python -m release revoke``, release/revoke.py) is skipped the same way, and
:func:`check_baked` reports it with its reason so that ``deploy`` refuses it: the owner account
reads the ``Revoked`` tag, every other account the ``REVOKED: <reason> | `` description prefix
(:func:`components.image_contract.revocation`).

Freshness: an application image names its foundation (tag ``FoundationName``; in every account,
its description), whose build time is the timestamp ending the foundation's name. An image from
before the layers names none: its foundation is "unknown" and never called stale, so that the
day the layers ship every image baked before them stays deployable (a rollback target among
them); the image-age rule (``release.maxImageAgeDays``, :func:`age_lines`) still covers it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from components.config import COLORS, BakeImage, Color, StackConfig
from components.image_contract import (
    DISABLED,
    FOUNDATION_NAME_TAG,
    REVOKED_AT_TAG,
    TIMESTAMP_FORMAT,
    foundation_in_text,
    image_name_filter,
    is_image_name,
    revocation,
    tag_map,
)
from release.transitions import BakeCheck, BakeStatus, ReleaseError

DAY = dt.timedelta(days=1)

# Set by `prune --apply` on each image it has decided to deregister, removed when the image is
# kept after all; the value is "<run start, UTC> <run id>" (release/prune.py).
PRUNING_TAG = "golden-fleet:pruning"


class NoCredentials(Exception):
    """The default credential chain found nothing: no call was made."""


def image_owner(cfg: StackConfig) -> str:
    """``self`` for a stack that bakes, the trusted baking account for one that promotes."""
    return "self" if isinstance(cfg.image, BakeImage) else cfg.image.owner_account_id


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_aws_time(value: object) -> dt.datetime | None:
    """EC2's ISO 8601 times (``2027-11-01T12:00:00.000Z``) as aware UTC datetimes; None for
    anything else (absent, empty, or not a time), so a strange answer never reads as a date."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def build_time(name: str) -> dt.datetime | None:
    """The bake time in an image name's ``<timestamp>`` suffix. A copy in another region has a
    later CreationDate; the name keeps the time the image was built."""
    try:
        return dt.datetime.strptime(name[-16:], TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def is_deprecated(image: Mapping[str, Any], now: dt.datetime) -> bool:
    """True once the image's DeprecationTime has passed (a future one is a schedule, not yet
    a deprecation)."""
    deprecation = parse_aws_time(image.get("DeprecationTime"))
    return deprecation is not None and deprecation <= now


def pruning_mark(image: Mapping[str, Any]) -> str | None:
    """The value of the image's :data:`PRUNING_TAG`, or None when it carries none (or its tags
    are not visible to the caller: another account's image)."""
    for tag in image.get("Tags") or []:
        if tag.get("Key") == PRUNING_TAG:
            return str(tag.get("Value", ""))
    return None


def marked_images(images: Iterable[Mapping[str, Any]], service: str, version: str) -> list[dict]:
    """The images of exactly this version that a prune run has marked for deregistration."""
    return [
        dict(i)
        for i in images
        if is_image_name(i.get("Name"), service, version) and pruning_mark(i) is not None
    ]


def revoked_images(images: Iterable[Mapping[str, Any]], service: str, version: str) -> list[dict]:
    """The images of exactly this version that were revoked, newest first."""
    return sorted(
        (
            dict(i)
            for i in images
            if is_image_name(i.get("Name"), service, version) and revocation(dict(i))
        ),
        key=lambda i: i["Name"],
        reverse=True,
    )


def revoked_text(image: Mapping[str, Any]) -> str:
    """``name (id) revoked at <time>: <reason>`` (the time where the owner's tag shows it)."""
    at = tag_map(dict(image)).get(REVOKED_AT_TAG)
    return (
        f"{image.get('Name')} ({image.get('ImageId', '?')}) revoked"
        + (f" at {at}" if at else "")
        + f": {revocation(dict(image))}"
    )


def newest_image(
    images: Iterable[Mapping[str, Any]],
    service: str,
    version: str,
    now: dt.datetime | None = None,
) -> dict | None:
    """The image exactly named ``<service>-<version>-<timestamp>``: a current one before a
    deprecated one, and the newest of those (the timestamp suffix sorts chronologically and,
    unlike CreationDate, is what the bake set). An image marked for pruning is skipped: it may
    be gone by the time anything launches it; a revoked one too: nothing launches it again; a
    disabled one cannot be launched."""
    now = now or utcnow()
    matching = [
        dict(i)
        for i in images
        if is_image_name(i.get("Name"), service, version)
        and pruning_mark(i) is None
        and not revocation(dict(i))
        and i.get("State") != DISABLED
    ]
    if not matching:
        return None
    return max(matching, key=lambda i: (not is_deprecated(i, now), i["Name"]))


def describe_version_images(ec2: Any, owner: str, service: str, version: str) -> list[dict]:
    """Every image of one version that ``owner`` has, deprecated ones included, all pages."""
    found: list[dict] = []
    request: dict[str, Any] = {
        "Owners": [owner],
        "Filters": [{"Name": "name", "Values": [image_name_filter(service, version)]}],
        "IncludeDeprecated": True,
        # The owner sees its disabled images only when it asks: a revoked version whose images
        # revoke disabled is then refused as revoked, not as never baked.
        "IncludeDisabled": True,
    }
    while True:
        page = ec2.describe_images(**request)
        found.extend(page.get("Images", []))
        token = page.get("NextToken")
        if not token:
            return found
        request["NextToken"] = token


def _client(cfg: StackConfig) -> Any | str:
    """An EC2 client for the stack's region, or why there is none."""
    from release import aws_clients

    if not aws_clients.has_credentials(cfg.region):
        return "no AWS credentials found"
    return aws_clients.client("ec2", cfg.region)


def _failure(error: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        return f"AWS refused the lookup: {error.response.get('Error', {}).get('Code', 'error')}"
    return f"the lookup failed: {error}"


def _aws_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


@dataclass(frozen=True)
class Found:
    """One version's lookup: the image it resolves to, and the images it never resolves to."""

    image: dict | None
    marked: list[dict]  # marked for pruning
    revoked: list[dict]  # revoked, newest first


def _lookup(cfg: StackConfig, version: str, ec2: Any) -> Found:
    """One DescribeImages: the image the version resolves to, and its images marked for
    pruning or revoked (which it never resolves to)."""
    if ec2 is None:
        ec2 = _client(cfg)
        if isinstance(ec2, str):
            raise NoCredentials(ec2)
    service = cfg.service.name
    found = describe_version_images(ec2, image_owner(cfg), service, version)
    return Found(
        newest_image(found, service, version),
        marked_images(found, service, version),
        revoked_images(found, service, version),
    )


def find_image(cfg: StackConfig, version: str, ec2: Any = None) -> dict | None:
    """The image ``version`` resolves to in the stack's region (the promote lookup, deprecated
    images included, images marked for pruning skipped). Raises :class:`NoCredentials` and
    botocore's errors; :func:`check_baked` and :func:`read_image_ages` turn them into a
    status."""
    return _lookup(cfg, version, ec2).image


def _marks(marked: Iterable[Mapping[str, Any]]) -> str:
    """``name (id) marked golden-fleet:pruning=<value>`` for each image, newest first."""
    return ", ".join(
        f"{i['Name']} ({i.get('ImageId', '?')}) marked {PRUNING_TAG}={pruning_mark(i)}"
        for i in sorted(marked, key=lambda i: i["Name"], reverse=True)
    )


def check_baked(cfg: StackConfig, version: str, ec2: Any = None) -> BakeCheck:
    """Look the version's image up in the stack's region; never raises for AWS trouble.

    ``ec2`` is a boto3 EC2 client (one from :mod:`release.aws_clients` when omitted). Missing
    credentials, a denied call or no network give ``UNKNOWN`` with the reason.
    """
    service, owner = cfg.service.name, image_owner(cfg)
    where = f"{image_name_filter(service, version)} owned by {owner} in {cfg.region}"
    try:
        found = _lookup(cfg, version, ec2)
    except NoCredentials as error:
        return BakeCheck(BakeStatus.UNKNOWN, str(error))
    except _aws_errors() as error:
        return BakeCheck(BakeStatus.UNKNOWN, _failure(error))
    image, marked = found.image, found.marked
    if image is None and found.revoked:
        return BakeCheck(BakeStatus.REVOKED, revoked_text(found.revoked[0]))
    if image is None and marked:
        return BakeCheck(BakeStatus.PRUNING, _marks(marked))
    if image is None:
        return BakeCheck(BakeStatus.MISSING, where)
    note = " (deprecated: still launchable by id)" if is_deprecated(image, utcnow()) else ""
    roots = lineage(image)
    return BakeCheck(
        BakeStatus.FOUND,
        f"{image['Name']} ({image.get('ImageId', '?')}){note}",
        foundation=roots.foundation,
        foundation_built=roots.built,
    )


# ---------------------------------------------------------------------------------------------
# Lineage and freshness
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lineage:
    """The foundation an application image was built on, as far as the caller can see."""

    foundation: str | None  # its name; None: unknown (an image from before the layers)
    built: dt.datetime | None  # the foundation's build time (None when unknown)


def lineage(image: Mapping[str, Any]) -> Lineage:
    """The owner's ``FoundationName`` tag, else the foundation named in the description (every
    account reads it), else unknown."""
    name = tag_map(dict(image)).get(FOUNDATION_NAME_TAG) or foundation_in_text(
        image.get("Description")
    )
    return Lineage(name, build_time(name)) if name else Lineage(None, None)


def foundation_text(foundation: str | None, built: dt.datetime | None, now: dt.datetime) -> str:
    """``foundation golden-foundation-python-... (12 days old)``, or ``foundation unknown (baked
    before layers)``."""
    if not foundation:
        return "foundation unknown (baked before layers)"
    return (
        f"foundation {foundation} ({_days(now - built)} days old)"
        if built
        else (f"foundation {foundation}")
    )


def foundation_stale(built: dt.datetime | None, limit: int, now: dt.datetime) -> bool:
    """Older than ``limit`` whole days (release.maxFoundationAgeDays); an unknown foundation is
    never called stale (module docstring)."""
    return built is not None and _days(now - built) > limit


# ---------------------------------------------------------------------------------------------
# Image age in `status`
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageAge:
    """What one color's version resolves to, or why it could not be read."""

    image_id: str | None = None
    name: str | None = None
    built: dt.datetime | None = None
    deprecation: dt.datetime | None = None
    problem: str | None = None  # set when the lookup failed or found nothing
    missing: bool = False  # the lookup ran and found no usable image (else: it could not run)
    foundation: str | None = None  # the foundation's name; None: unknown (see lineage())
    foundation_built: dt.datetime | None = None
    revoked: str | None = None  # revoked_text() when the version's only images are revoked
    # "group G, launch-template version N" when the image is the one the color's group really
    # launches (read from AWS), not the one its version resolves to
    launched_by: str | None = None

    @classmethod
    def of(
        cls, image: Mapping[str, Any], revoked: str | None = None, launched_by: str | None = None
    ) -> ImageAge:
        name = image.get("Name", "")
        roots = lineage(image)
        return cls(
            launched_by=launched_by,
            image_id=image.get("ImageId"),
            name=name,
            built=build_time(name) or parse_aws_time(image.get("CreationDate")),
            deprecation=parse_aws_time(image.get("DeprecationTime")),
            foundation=roots.foundation,
            foundation_built=roots.built,
            revoked=revoked,
        )


def read_image_ages(
    cfg: StackConfig, ec2: Any = None, stack: str | None = None, autoscaling: Any = None
) -> dict[Color, ImageAge]:
    """Each color's image. With ``stack``, the image its group's launch template really
    launches (the launch-template version the group saves: a rebake of the version, or a
    refresh rolled back, makes it differ from what the version resolves to); a color without a
    group, or without ``stack``, gets the version's lookup. One lookup per distinct version;
    AWS trouble becomes ``problem``."""
    if ec2 is None:
        ec2 = _client(cfg)  # one client for both lookups (a new one loads EC2's model again)
        if isinstance(ec2, str):
            return {color: ImageAge(problem=ec2) for color in COLORS}
    launched: dict[Color, ImageAge] = {}
    if stack is not None:
        if autoscaling is None:
            from release import aws_clients

            autoscaling = aws_clients.client("autoscaling", cfg.region)
        launched = {
            color: age
            for color in COLORS
            if (age := launched_image(cfg, stack, color, ec2, autoscaling)) is not None
        }
    versions = {cfg.fleets[c].version for c in COLORS if c not in launched}
    found = {version: _version_age(cfg, version, ec2) for version in sorted(versions)}
    return {color: launched.get(color) or found[cfg.fleets[color].version] for color in COLORS}


def launched_image(
    cfg: StackConfig, stack: str, color: Color, ec2: Any, autoscaling: Any
) -> ImageAge | None:
    """The image the color's group launches (its saved launch-template version's ImageId), as
    this account sees it; None when the color has no group (or one on a launch configuration:
    not this program's)."""
    from release import live

    clients = live.Clients(autoscaling=autoscaling, refreshes=autoscaling, ec2=ec2, elbv2=None,
                           cloudwatch=None)  # fmt: skip
    try:
        group = live.find_group(clients, stack.split("/")[-1], cfg.service.name, color.value)
        spec = live.configuration_of(group) if group else None
        if group is None or spec is None or not spec.template_id:
            return None
        by = f"group {group['AutoScalingGroupName']}, launch-template version {spec.version}"
        image_id = live.template_image(clients, spec.template_id, spec.version or "$Default")
        image = live.image_record(clients, image_id) if image_id else None
    except live.LiveError as error:
        return ImageAge(problem=f"could not read what {color.value}'s group launches: {error}")
    if image is None:
        return ImageAge(
            problem=f"{by} launches {image_id or 'no image'}, which EC2 does not show to this "
            "account (deregistered, or no longer shared)",
            missing=True,
        )
    revoked = revoked_text(image) if revocation(dict(image)) else None
    if revoked is None and image.get("State") == DISABLED:
        revoked = f"{image.get('Name')} ({image.get('ImageId')}) disabled: it cannot be launched"
    return ImageAge.of(image, revoked, launched_by=by)


def _version_age(cfg: StackConfig, version: str, ec2: Any) -> ImageAge:
    """What ``version`` resolves to (the promote lookup), for a color without a group."""
    try:
        looked = _lookup(cfg, version, ec2)
    except NoCredentials as error:
        return ImageAge(problem=str(error))
    except _aws_errors() as error:
        return ImageAge(problem=_failure(error))
    if looked.image:
        return ImageAge.of(looked.image)
    if looked.revoked:  # what the color may still run: shown, and flagged
        return ImageAge.of(looked.revoked[0], revoked_text(looked.revoked[0]))
    return ImageAge(
        problem=f"being pruned: {_marks(looked.marked)}"
        if looked.marked
        else f"no image {image_name_filter(cfg.service.name, version)} "
        f"owned by {image_owner(cfg)} in {cfg.region}",
        missing=True,
    )


def _days(delta: dt.timedelta) -> int:
    return delta // DAY


def runs(cfg: StackConfig, color: Color) -> bool:
    """The color has instances or traffic: what it runs matters now."""
    return cfg.fleets[color].capacity.desired > 0 or cfg.traffic[color] > 0


def revocation_reason(text: str) -> str:
    """The reason at the end of :func:`revoked_text`."""
    return text.split(": ", 1)[1] if ": " in text else text


def age_lines(cfg: StackConfig, ages: Mapping[Color, ImageAge], now: dt.datetime) -> list[str]:
    """``status`` lines: each color's image, age and deprecation date, then one warning per
    color that takes traffic on an image older than ``release.maxImageAgeDays``."""
    limit = cfg.release.max_image_age_days
    lines: list[str] = []
    roots: list[str] = []  # each color's foundation, after the image lines
    warnings: list[str] = []
    for color in COLORS:
        age, version = ages[color], cfg.fleets[color].version
        if age.problem is not None:
            # Looked up and absent is a fact about AWS; a lookup that could not run is not.
            said = "not found" if age.missing else "not read"
            lines.append(f"image {color.value}: {version} — {said} ({age.problem})")
            continue
        days = _days(now - age.built) if age.built else None
        when = f"built {days} days ago" if days is not None else "build time unknown"
        if age.deprecation is None:
            deprecation = "no deprecation date"
        elif age.deprecation <= now:
            deprecation = f"deprecated since {age.deprecation:%Y-%m-%d} (still launchable by id)"
        else:
            deprecation = f"deprecates {age.deprecation:%Y-%m-%d}"
        lines.append(
            f"image {color.value}: {age.name} ({age.image_id}), {when}, {deprecation}"
            + (f" — launched by {age.launched_by}" if age.launched_by else "")
        )
        roots.append(
            f"{color.value}'s {foundation_text(age.foundation, age.foundation_built, now)}"
            + (f"; REVOKED: {revocation_reason(age.revoked)}" if age.revoked else "")
        )
        if age.revoked and runs(cfg, color):
            warnings.append(
                f"warning: {color.value} runs {version}, whose image {age.revoked} — deploy "
                "another version and move traffic off it (deploy, shift and rollouts refuse "
                "this one)"
            )
        foundation_limit = cfg.release.max_foundation_age_days
        if runs(cfg, color) and foundation_stale(age.foundation_built, foundation_limit, now):
            warnings.append(
                f"warning: {color.value} runs {version} on "
                + foundation_text(age.foundation, age.foundation_built, now)
                + f", past release.maxFoundationAgeDays ({foundation_limit}): rebake the "
                "version's successor on a fresh foundation (security updates land only there)"
            )
        weight = cfg.traffic[color]
        if weight > 0 and days is not None and days > limit:
            warnings.append(
                f"warning: {color.value} serves {weight}% of traffic on an image built {days} "
                f"days ago, past release.maxImageAgeDays ({limit}): bake and deploy a fresh "
                "build (patches land only in new images)"
            )
    return lines + roots + warnings


def status_lines(
    cfg: StackConfig,
    read: Callable[[StackConfig], Mapping[Color, ImageAge]] | None = None,
    now: dt.datetime | None = None,
    stack: str | None = None,
) -> list[str]:
    """The image lines of ``status``: with ``stack``, of the images the groups launch;
    ``read`` is replaceable for tests."""
    ages = read(cfg) if read is not None else read_image_ages(cfg, stack=stack)
    return age_lines(cfg, ages, now or utcnow())


# ---------------------------------------------------------------------------------------------
# `python -m release images STACK [--stale]`: what each color runs, and whether it is fresh
# ---------------------------------------------------------------------------------------------
def freshness_lines(
    cfg: StackConfig, ages: Mapping[Color, ImageAge], now: dt.datetime
) -> tuple[list[str], list[str]]:
    """One line per color (image, foundation, verdict), and the running colors whose image is
    revoked or whose foundation is stale (a pipeline's reason to rebake)."""
    limit = cfg.release.max_foundation_age_days
    lines: list[str] = []
    due: list[str] = []
    for color in COLORS:
        age, version = ages[color], cfg.fleets[color].version
        state = "running" if runs(cfg, color) else "idle"
        if age.problem is not None:
            if not age.missing:
                raise ReleaseError(f"could not read {color.value}'s image ({age.problem})")
            lines.append(f"{color.value} ({state}): {version} — not found ({age.problem})")
            continue
        if age.revoked:
            verdict = f"REVOKED: {revocation_reason(age.revoked)}"
        elif foundation_stale(age.foundation_built, limit, now):
            verdict = f"STALE: past release.maxFoundationAgeDays ({limit})"
        elif age.foundation:
            verdict = "fresh"
        else:
            verdict = "foundation unknown: not judged (release.maxImageAgeDays applies)"
        lines.append(
            f"{color.value} ({state}): {age.name} ({age.image_id})"
            + (f" launched by {age.launched_by}" if age.launched_by else "")
            + f" on {foundation_text(age.foundation, age.foundation_built, now)}: {verdict}"
        )
        if state == "running" and verdict.startswith(("REVOKED", "STALE")):
            due.append(f"{color.value} {version}: {verdict}")
    return lines, due


def add_arguments(sub: Any) -> None:
    sub.add_argument(
        "--stale",
        action="store_true",
        help="exit 1 when a running color's group launches a revoked image or one whose "
        "foundation is older than release.maxFoundationAgeDays (0 otherwise); the lines list "
        "every color",
    )
    sub.add_argument(
        "--revoked",
        action="store_true",
        help="also list the service's revoked images with their state (deprecated, disabled, "
        "in use by); exit 1 when a group, launch-template version or instance of this account "
        "still uses one",
    )


def revoked_lines(
    cfg: StackConfig, ec2: Any, autoscaling: Any, now: dt.datetime
) -> tuple[list[str], int]:
    """One line per revoked image of the service (owned by the stack's image owner, in its
    region) with its state, and how many of them something of this account still uses."""
    from release import image_usage

    service = cfg.service.name
    request: dict[str, Any] = {
        "Owners": [image_owner(cfg)],
        "Filters": [{"Name": "name", "Values": [f"{service}-*"]}],
        "IncludeDeprecated": True,
        "IncludeDisabled": True,
    }
    found: list[dict] = []
    while True:
        page = ec2.describe_images(**request)
        found += page.get("Images", [])
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    revoked = sorted(
        (i for i in found if _service_image(i.get("Name", ""), service) and revocation(i)),
        key=lambda i: i["Name"],
    )
    uses = image_usage.read_uses(ec2, autoscaling, [i["ImageId"] for i in revoked])
    lines = []
    for image in revoked:
        deprecation = parse_aws_time(image.get("DeprecationTime"))
        state = [
            "not deprecated"
            if deprecation is None
            else f"deprecated since {deprecation:%Y-%m-%d %H:%M}"
            if is_deprecated(image, now)
            else f"deprecated from {deprecation:%Y-%m-%d %H:%M}",
            "disabled" if image.get("State") == DISABLED else "enabled (launchable by id)",
        ]
        users = uses.get(image["ImageId"], [])
        state.append(
            "in use by: " + "; ".join(u.what for u in users) if users else "in use by nothing"
        )
        lines.append(f"revoked: {revoked_text(image)} — {', '.join(state)}")
    return lines, sum(1 for i in revoked if uses.get(i["ImageId"]))


def _service_image(name: str, service: str) -> bool:
    """``name`` is ``<service>-<version>-<timestamp>`` (of any version) under the contract."""
    prefix = f"{service}-"
    version = name[len(prefix) : -17] if name.startswith(prefix) and len(name) > 17 else ""
    return bool(version) and is_image_name(name, service, version)


def run_command(
    args: Any,
    cfg: StackConfig,
    out: Callable[[str], None] = print,
    read: Callable[[StackConfig], Mapping[Color, ImageAge]] | None = None,
    now: dt.datetime | None = None,
) -> int:
    now = now or utcnow()
    ages = read(cfg) if read is not None else read_image_ages(cfg, stack=args.stack)
    lines, due = freshness_lines(cfg, ages, now)
    out(
        f"images {args.stack}: {cfg.service.name} in {cfg.region}, foundations older than "
        f"{cfg.release.max_foundation_age_days} days are stale"
    )
    for line in lines:
        out(line)
    if due:
        out(f"rebake needed: {'; '.join(due)}")
    in_use = 0
    if getattr(args, "revoked", False):
        in_use = _print_revoked(cfg, out, now)
    return 1 if (args.stale and due) or in_use else 0


def _print_revoked(cfg: StackConfig, out: Callable[[str], None], now: dt.datetime) -> int:
    from release import aws_clients, image_usage

    ec2 = _client(cfg)
    if isinstance(ec2, str):
        raise ReleaseError(f"could not read the revoked images ({ec2})")
    try:
        lines, in_use = revoked_lines(cfg, ec2, aws_clients.client("autoscaling", cfg.region), now)
    except image_usage.UsageError as error:
        raise ReleaseError(f"could not read what uses the revoked images: {error}") from None
    except _aws_errors() as error:
        raise ReleaseError(f"could not read the revoked images ({_failure(error)})") from None
    for line in lines or ["revoked: none"]:
        out(line)
    if in_use:
        out(
            f"{in_use} revoked image(s) still launchable by what uses them: replace it, then "
            "`python -m release revoke` (in the baking account) disables them"
        )
    return in_use
