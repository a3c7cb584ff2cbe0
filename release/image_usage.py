"""Who launches an image, in one account and region: Auto Scaling groups, launch-template
versions and instances, each traced to the color (stack, service, group) it belongs to.

A deprecated image stays launchable by id: "launch templates and Auto Scaling groups can
continue to use a deprecated AMI" (EC2 User Guide, "Deprecate an Amazon EC2 AMI"). A disabled
one cannot be launched at all (DisableImage API reference), so ``revoke`` disables an image only
when nothing here uses it (release/revoke.py), and ``images --revoked`` says who still does.

What counts as a use:

* a group whose launch template version (``$Latest`` and ``$Default`` resolved), mixed-instances
  policy or launch configuration names the image: its scale-outs and replacements launch it;
* any launch-template version naming it: a group can be pointed back at it (a refresh's
  rollback restores the previous version, AWS "restores your Auto Scaling group to the
  configuration that it was using before the start of the instance refresh");
* a non-terminated instance running it (a stopped one starts again from its volume, but the
  group's replacement of it launches from the template).

Reads every page of each listing (``NextToken``); AWS trouble is one :class:`UsageError` line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from release.live import configuration_of
from release.transitions import ReleaseError

LIVE_INSTANCE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
GROUP_TAG = "aws:autoscaling:groupName"  # set by Auto Scaling on the instances it launches


class UsageError(ReleaseError):
    """What uses the images could not be read. One line."""


class UnresolvedImage(UsageError):
    """A launch-template version names its image by something that did not resolve to an AMI
    id: what it launches cannot be known."""

    def __init__(self, template_id: str, version: str, named: str) -> None:
        super().__init__(
            f"launch template {template_id} version {version} names its image as "
            f"{named[:80]!r}, which did not resolve to an AMI id"
        )
        self.template_id, self.version, self.named = template_id, version, named


# How a reader makes one AWS call: (what, call, **request) -> answer, raising the caller's own
# one-line error (prune's says that nothing was deleted).
Caller = Callable[..., dict]


def _call(what: str, call: Callable[..., dict], **request: Any) -> dict:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call(**request)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise UsageError(f"{what} was refused ({code})") from None
    except BotoCoreError as error:
        raise UsageError(f"{what} failed ({error})") from None


@dataclass(frozen=True)
class Owner:
    """The color a group is (its Stack/Service/Color tags, components/tags.py); empty strings
    for a group not made by this program."""

    group: str
    stack: str = ""
    service: str = ""
    color: str = ""

    def describe(self) -> str:
        if self.stack and self.color:
            return f"{self.color} of {self.stack} (group {self.group})"
        return f"group {self.group} (not a color of this program)"


@dataclass(frozen=True)
class Use:
    """One thing that launches (or runs) an image."""

    image_id: str
    kind: str  # "group", "template", "instances"
    what: str  # one line: what it is
    owner: Owner | None = None  # the color, when it can be traced to a group
    template_id: str = ""
    template_version: str = ""
    default_version: bool = False  # (template) the template's default version
    instance_ids: tuple[str, ...] = ()
    left_behind: bool = False  # (instances) their group launches another image now


def pages(
    what: str, call: Callable[..., dict], key: str, caller: Caller | None = None, **request: Any
) -> Iterator[dict]:
    """Every item of a paginated EC2/Auto Scaling call (NextToken)."""
    make = caller or _call
    while True:
        page = make(what, call, **request)
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return
        request["NextToken"] = token


def _owner(group: Mapping[str, Any]) -> Owner:
    tags = {t.get("Key"): t.get("Value", "") for t in group.get("Tags") or []}
    return Owner(
        group["AutoScalingGroupName"],
        tags.get("Stack", ""),
        tags.get("Service", ""),
        tags.get("Color", ""),
    )


@dataclass
class Templates:
    """Every launch-template version of the account: (template, version number) -> image, in
    the order AWS listed them."""

    images: dict[tuple[str, str], str]
    default: dict[str, str]  # template -> its default version number
    latest: dict[str, str]
    names: dict[str, str]

    def resolve(self, template_id: str, version: str | None) -> str:
        """A group's version as a number: ``$Latest``, ``$Default`` (or none: the default)."""
        alias = {"$Latest": self.latest, "$Default": self.default}.get(version or "$Default")
        return str(alias.get(template_id) if alias is not None else version)


def read_templates(ec2: Any, caller: Caller | None = None) -> Templates:
    """Every launch template of the account, not only this service's (an image another stack's
    template names is in use all the same), and every version of each. ResolveAlias turns a
    "resolve:ssm:" ImageId into the AMI id it stands for (DescribeLaunchTemplateVersions API
    reference); one that stays unresolved raises :class:`UnresolvedImage`."""
    found = Templates({}, {}, {}, {})
    for template in pages(
        "DescribeLaunchTemplates", ec2.describe_launch_templates, "LaunchTemplates", caller
    ):
        template_id = template["LaunchTemplateId"]
        found.default[template_id] = str(template.get("DefaultVersionNumber"))
        found.latest[template_id] = str(template.get("LatestVersionNumber"))
        found.names[template_id] = template.get("LaunchTemplateName", template_id)
        for version in pages(
            "DescribeLaunchTemplateVersions",
            ec2.describe_launch_template_versions,
            "LaunchTemplateVersions",
            caller,
            LaunchTemplateId=template_id,
            ResolveAlias=True,
        ):
            image = (version.get("LaunchTemplateData") or {}).get("ImageId")
            if not image:
                continue
            number = str(version.get("VersionNumber"))
            if not image.startswith("ami-"):
                raise UnresolvedImage(template_id, number, image)
            found.images[(template_id, number)] = image
    return found


def read_launch_configurations(
    autoscaling: Any, caller: Caller | None = None
) -> list[tuple[str, str]]:
    """(name, image id) of every launch configuration of the account."""
    return [
        (c.get("LaunchConfigurationName", ""), c.get("ImageId", ""))
        for c in pages(
            "DescribeLaunchConfigurations",
            autoscaling.describe_launch_configurations,
            "LaunchConfigurations",
            caller,
        )
    ]


def read_instances(
    ec2: Any, image_ids: list[str] | None = None, caller: Caller | None = None
) -> list[dict]:
    """Every non-terminated instance of the account (running ``image_ids`` only, if given)."""
    return [
        instance
        for reservation in pages(
            "DescribeInstances",
            ec2.describe_instances,
            "Reservations",
            caller,
            Filters=[
                {"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES},
                *([{"Name": "image-id", "Values": image_ids}] if image_ids else []),
            ],
        )
        for instance in reservation.get("Instances", [])
    ]


def read_uses(ec2: Any, autoscaling: Any, image_ids: Iterable[str]) -> dict[str, list[Use]]:
    """Image id -> what uses it (an image nothing uses is absent), for ``image_ids`` only."""
    wanted = set(image_ids)
    if not wanted:
        return {}
    templates = read_templates(ec2)
    groups = list(
        pages(
            "DescribeAutoScalingGroups",
            autoscaling.describe_auto_scaling_groups,
            "AutoScalingGroups",
        )
    )
    configurations = dict(read_launch_configurations(autoscaling))
    uses: dict[str, list[Use]] = {}
    owners: dict[str, Owner] = {}
    group_image: dict[str, str | None] = {}
    by_template: dict[str, Owner] = {}
    launched: set[tuple[str, str]] = set()  # (template, version) a group launches
    for group in groups:
        owner = _owner(group)
        owners[owner.group] = owner
        spec = configuration_of(group)
        if spec.template_id:
            by_template.setdefault(spec.template_id, owner)
            number = templates.resolve(spec.template_id, spec.version)
            image = templates.images.get((spec.template_id, number))
            where = f"launch template {spec.template_id} version {number}"
            launched.add((spec.template_id, number))
        else:
            name = group.get("LaunchConfigurationName")
            image = configurations.get(name)
            where = f"launch configuration {name}"
        group_image[owner.group] = image
        if image in wanted:
            uses.setdefault(image, []).append(
                Use(image, "group", f"{owner.describe()} launches it ({where})", owner)
            )
    for (template_id, version), image in sorted(templates.images.items()):
        if image not in wanted or (template_id, version) in launched:
            continue
        owner = by_template.get(template_id)
        default = templates.default.get(template_id) == version
        uses.setdefault(image, []).append(
            Use(
                image,
                "template",
                f"launch template {templates.names[template_id]} ({template_id}) version {version}"
                + (" (its default)" if default else "")
                + (f" of {owner.describe()}" if owner else ", used by no group"),
                owner,
                template_id,
                version,
                default_version=default,
            )
        )
    running: dict[tuple[str, str], list[str]] = {}
    for instance in read_instances(ec2, sorted(wanted)):
        if instance.get("ImageId") not in wanted:
            continue
        tags = {t.get("Key"): t.get("Value") for t in instance.get("Tags") or []}
        key = (instance["ImageId"], tags.get(GROUP_TAG) or "")
        running.setdefault(key, []).append(instance["InstanceId"])
    for (image, group), instances in sorted(running.items()):
        owner = owners.get(group) if group else None
        count = f"{len(instances)} instance{'s' if len(instances) != 1 else ''}"
        behind = owner is not None and group_image.get(owner.group) != image
        text = (
            f"{count} of {owner.describe()} run it"
            if owner
            else f"{count} outside any group run it ({', '.join(sorted(instances))})"
        )
        if behind:
            text += f" (the group launches {group_image.get(owner.group)} now)"
        uses.setdefault(image, []).append(
            Use(
                image,
                "instances",
                text,
                owner,
                instance_ids=tuple(sorted(instances)),
                left_behind=behind,
            )
        )
    return uses


def replacement(use: Use, stable_color: Callable[[str], str | None]) -> str:
    """The command that takes ``use`` off the image. ``stable_color(stack)`` is the stack file's
    stable color, or None when the file is not at hand."""
    if use.left_behind and use.owner is not None:
        return (
            f"aws autoscaling start-instance-refresh --auto-scaling-group-name "
            f"{use.owner.group} (its instances are replaced from what it launches now)"
        )
    color_owned = use.owner is not None and use.owner.stack and use.owner.color
    if color_owned and (use.kind != "template" or use.default_version):
        stack, color = use.owner.stack, use.owner.color
        if stable_color(stack) == color or stable_color(stack) is None:
            return (
                f"python -m release rollout {stack} VERSION (a version not revoked: its "
                f"traffic and instances leave {color})"
            )
        return f"python -m release deploy {stack} VERSION --apply (a version not revoked)"
    if use.kind == "template":
        if use.default_version:  # used by no group: its default version cannot go alone
            return f"aws ec2 delete-launch-template --launch-template-id {use.template_id}"
        return (
            f"aws ec2 delete-launch-template-versions --launch-template-id "
            f"{use.template_id} --versions {use.template_version}"
        )
    if use.owner is not None:
        return (
            f"point group {use.owner.group} at an image that is not revoked and start an "
            "instance refresh"
        )
    return f"aws ec2 terminate-instances --instance-ids {' '.join(use.instance_ids)}"
