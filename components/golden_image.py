"""GoldenImage: the AMI one color runs, baked here or promoted from the baking account.

``bake`` mode runs the bake wrapper as a ``pulumi_command`` Command, with the program's own
interpreter (components/interpreter.py): the language host puts the project's virtualenv on the
program only, so a ``python`` from PATH lacks boto3, or does not exist. Its ``triggers`` hold
only what defines the image (service and version), and ``replace_on_changes=["triggers"]``
makes a version bump a *replacement* in ``pulumi preview``. Any other input edit runs the
``update`` command, which re-emits the previous AMI id: a color serving traffic is never rebaked
because someone edited a cosmetic input. Template changes ship under a new version; the wrapper
refuses to bake one version from two different templates. The bake builds in the home region
only, encrypted with the stack's image key there (PKR_VAR_kms_key_id); the accounts that may
launch the image and its copies to other regions are resources of an ImageDistribution
(components/image_distribution.py) under the first color that runs the version.

``promote`` mode never bakes: it finds the image that the baking account built for this
version, by owner and name. AMI tags are not visible to the accounts an image is shared with,
so the name ``<service>-<version>-<timestamp>`` is the cross-account key. The baking template
deprecates every image a year after its bake, and EC2 hides a deprecated AMI from
DescribeImages for every account but its owner unless the call asks for deprecated images
(EC2 User Guide, "Deprecate an Amazon EC2 AMI"; DescribeImages' IncludeDeprecated: "If you are
the AMI owner, all deprecated AMIs appear in the response regardless"). A lookup without them
would fail ("never baked") for any version a year old, a listener-only rollback included; so a
second lookup asks for them, and a match that is not deprecated is preferred when both exist.
A third lookup finds the version's revoked images by the ``REVOKED: `` prefix of their
description (the only revocation mark another account can read; tags are the owner's): they are
never picked for a new use. A version with nothing else is refused with the reason its
description gives, except on a color that already runs it: the launch template of the color's
group (found by its Stack/Service/Color tags, components/tags.py) names one of those images in
its default version, which is what the last ``pulumi up`` gave it (the program's templates make
each new version their default). That color keeps the image, with a warning in preview, so that
a stack whose serving color was revoked can still ``pulumi up`` the fix on the other color, and
a color left cold on it after a finish stays deployable; its launch template does not change,
so nothing is refreshed onto it (and the refresh command refuses a refresh toward a revoked
image). The group and its template are read from AWS, not from state, and only when the
version has nothing but revoked images. Any other color (a new one, one on another image) is a
new use: refused.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi_command import local

from components.config import AppPackage, BakeImage, PromoteImage, check_version
from components.image_contract import (
    REVOKED_PREFIX,
    image_name_filter,
    image_name_regex,
    revocation_in_description,
)
from components.image_distribution import (
    ImageDistribution,
    ImageDistributionArgs,
    distribution_name,
)
from components.interpreter import program_python

BAKE_SCRIPT = "packer/bake.py"

# ``pulumi up`` keeps the previous stdout in PULUMI_COMMAND_STDOUT; printing it back makes an
# update a no-op that preserves the AMI id.
REEMIT_PREVIOUS_IMAGE = 'printf "%s\\n" "$PULUMI_COMMAND_STDOUT"'


@dataclass(frozen=True)
class GoldenImageArgs:
    service: str
    """Service name; the first part of the image name."""
    version: str
    """Immutable semantic version this color runs."""
    region: str
    """Region the image must exist in (the stack's region)."""
    source: BakeImage | PromoteImage
    """How the image is obtained: the stack's validated ``golden-fleet:image``."""
    kms_key_arn: pulumi.Input[str] = ""
    """(bake) The image key of the home region the bake encrypts with (ImageKey.key_arn)."""
    copy_keys: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """(bake) Copy region -> that region's image key, one per image.copyToRegions entry."""
    distribute: bool = True
    """(bake) This color owns its version's launch permissions and copies: true for the first
    color running the version (see :func:`distributing_colors`), false for the other."""
    launchable_after: pulumi.Input[str] | None = None
    """(promote) Something ``image_id`` waits for before it is known, so that nothing launches
    the image before it: the Auto Scaling grant on the baking account's key."""
    health_check_path: str | None = None
    """(bake) The path the image's own tests ask the service for (service.healthCheckPath)."""
    stack: str = ""
    """(promote) The stack's name: with ``color``, how the color's group is tagged."""
    color: str = ""
    """(promote) The color this image is for: a color whose launch template already names a
    revoked image keeps it."""
    port: int | None = None
    """(bake) The port they ask it on, as the load balancer will (service.port)."""


def bake_command(
    service: str,
    version: str,
    region: str,
    var_file: str | None,
    python: str | None = None,
    app: AppPackage | None = None,
    health_check_path: str | None = None,
    foundation: str | None = None,
    port: int | None = None,
) -> str:
    """The bake wrapper's command line, run by the program's interpreter (``python``, by
    default :func:`program_python`). Every value is validated and quoted; no secrets: the
    package is a URI template (no credentials, config rule) that the wrapper fills with the
    version. Nothing of the stack's app.environment or app.secrets: the image is the same in
    every stack. Without ``app`` the wrapper bakes the sample service."""
    check_version(version)
    interpreter = python or program_python()
    parts = [
        interpreter,
        BAKE_SCRIPT,
        "--version",
        version,
        "--service",
        service,
        "--region",
        region,
    ]
    if var_file:
        parts += ["--var-file", var_file]
    if app is not None:
        parts += [
            "--package",
            app.package,
            "--package-sha256-from",
            app.sha256,
            "--package-unit",
            app.unit_of(service),
        ]
    if health_check_path is not None:
        parts += ["--health-check-path", health_check_path]
    if port is not None:
        # service.port: the image tests ask the service where the load balancer will.
        parts += ["--port", str(port)]
    if foundation is not None:
        # image.foundation: the application layer is baked on this foundation, not the newest.
        parts += ["--foundation", foundation]
    return shlex.join(parts)


def _hcl_list(values: list[str]) -> str:
    # Packer parses PKR_VAR_ values of non-string variables as HCL; a JSON list is valid HCL.
    return json.dumps(list(values))


def bake_environment(bake: BakeImage, kms_key_arn: pulumi.Input[str] = "") -> dict[str, Any]:
    """Packer variables for the bake, passed as PKR_VAR_* (never on the command line).

    No sharing and no copies: those are ImageDistribution resources, so that an edit reaches
    images already baked. The key is the stack's image key in the home region; an empty one
    means the account's default EBS key, whose images no other account can launch.
    """
    return {
        "PKR_VAR_source_ami_owners": _hcl_list(bake.source.owners),
        "PKR_VAR_source_ami_name": bake.source.name,
        "PKR_VAR_runtime": bake.runtime.value,
        "PKR_VAR_instance_type": bake.build_instance_type,
        "PKR_VAR_kms_key_id": kms_key_arn,
        "PKR_VAR_keep_sshd": "true" if bake.keep_sshd else "false",
    }


def distributing_colors(versions: Mapping[str, str]) -> set[str]:
    """The colors that own their version's distribution: the first (in the mapping's order)
    of each version, so one version has exactly one, whichever colors run it."""
    owners: dict[str, str] = {}
    for color, version in versions.items():
        owners.setdefault(version, color)
    return set(owners.values())


def _refuse(message: str) -> str:
    raise ValueError(message)


def bake_triggers(service: str, version: str) -> list[str]:
    """What defines a color's image. A change here, and only here, rebakes."""
    return [service, version]


class RevokedImage(ValueError):
    """Every image of the version was revoked; ``image_id`` is the newest of them."""

    def __init__(self, image_id: str):
        super().__init__(image_id)
        self.image_id = image_id


def pick_promoted_image(
    ids: list[str],
    service: str,
    version: str,
    owner: str,
    including_deprecated: list[str] | None = None,
    revoked: list[str] | None = None,
) -> str:
    """The newest matching image that is not deprecated (``ids``), else the newest deprecated
    one (``including_deprecated``), never a revoked one (``revoked``); a clear failure naming
    what was never baked, or :class:`RevokedImage` when only revoked images exist."""
    skip = set(revoked or [])
    for candidates in (ids, including_deprecated or []):
        usable = [i for i in candidates if i not in skip]
        if usable:
            return usable[0]
    if revoked:
        raise RevokedImage(revoked[0])
    raise ValueError(
        f"no image {service} {version} owned by account {owner}: this version was never "
        f"baked (or not shared with this account). Bake it in the baking stack first; "
        f"looked for AMI names matching {image_name_filter(service, version)!r}, "
        "deprecated images included"
    )


def revoked_refusal(service: str, version: str, image_id: str, description: str | None) -> str:
    """The failure of a promote lookup whose version has only revoked images: its reason."""
    reason = revocation_in_description(description) or "reason not readable"
    return (
        f"{service} {version} is revoked: its image {image_id} says {reason!r} (python -m "
        "release revoke, in the baking account) — run another version on this color (only a "
        "color whose launch template already launches it keeps it)"
    )


def kept_revoked_image(revoked: list[str], launched: str | None) -> str | None:
    """The revoked image a color keeps: the one its launch template already launches
    (``launched``), when it is among ``revoked``; None otherwise (a new use)."""
    return launched if launched is not None and launched in revoked else None


def template_of_group(group: Any) -> str | None:
    """The launch template id of an Auto Scaling group (getGroup's answer): its launch template,
    or its mixed-instances policy's."""
    for template in group.launch_templates or []:
        if template.id:
            return template.id
    for policy in group.mixed_instances_policies or []:
        for template in policy.launch_templates or []:
            for spec in template.launch_template_specifications or []:
                if spec.launch_template_id:
                    return spec.launch_template_id
    return None


def kept_revoked_warning(
    service: str, version: str, color: str, image_id: str, description: str | None
) -> str:
    """The preview's warning for a color that keeps the revoked image it runs."""
    reason = revocation_in_description(description) or "reason not readable"
    return (
        f"{service} {version} is revoked ({reason!r}): {color} keeps {image_id}, which its "
        "launch template already launches, so that this update can go on; no refresh puts it "
        "on new instances — put a version that is not revoked on this color and move traffic "
        "off it"
    )


class GoldenImage(pulumi.ComponentResource):
    """One color's AMI. ``image_id`` is what the color's launch template runs."""

    image_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: GoldenImageArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golden-fleet:index:GoldenImage", name, None, opts)
        source = args.source
        if isinstance(source, BakeImage):
            bake = local.Command(
                f"{name}-bake",
                create=bake_command(
                    args.service,
                    args.version,
                    args.region,
                    source.var_file,
                    app=source.app,
                    health_check_path=args.health_check_path,
                    foundation=source.foundation,
                    port=args.port,
                ),
                update=REEMIT_PREVIOUS_IMAGE,
                environment=bake_environment(source, args.kms_key_arn),
                triggers=bake_triggers(args.service, args.version),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    replace_on_changes=["triggers"],
                    # Keep the old image until the new one exists: the launch template points
                    # at it until then. Deleting the resource does not deregister the AMI.
                    delete_before_replace=False,
                ),
            )
            self.image_id = bake.stdout.apply(str.strip)
            if args.distribute:
                ImageDistribution(
                    distribution_name(args.service, args.version),
                    ImageDistributionArgs(
                        service=args.service,
                        version=args.version,
                        image_id=self.image_id,
                        home_region=args.region,
                        share_with_accounts=list(source.share_with_accounts),
                        copy_keys=dict(args.copy_keys),
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
        else:

            def lookup(include_deprecated: bool, revoked: bool = False) -> aws.ec2.GetAmiIdsResult:
                # Tags are invisible across accounts: a revoked image is known by the prefix
                # `python -m release revoke` gives its description (components/image_contract).
                return aws.ec2.get_ami_ids_output(
                    owners=[source.owner_account_id],
                    filters=[
                        {"name": "name", "values": [image_name_filter(args.service, args.version)]},
                        {"name": "state", "values": ["available"]},
                        *(
                            [{"name": "description", "values": [f"{REVOKED_PREFIX}*"]}]
                            if revoked
                            else []
                        ),
                    ],
                    name_regex=image_name_regex(args.service, args.version),
                    sort_ascending=False,
                    include_deprecated=include_deprecated,
                    opts=pulumi.InvokeOutputOptions(parent=self),
                )

            current, everything = lookup(False), lookup(True)
            revoked = lookup(True, revoked=True)
            owner = source.owner_account_id

            def choose(found: list[Any]) -> Any:
                revoked_ids = list(found[2] or [])
                try:
                    return pick_promoted_image(
                        list(found[0] or []),
                        args.service,
                        args.version,
                        owner,
                        including_deprecated=list(found[1] or []),
                        revoked=revoked_ids,
                    )
                except RevokedImage as only_revoked:
                    newest = only_revoked.image_id
                # Only now are the reasons and the color's launch template worth a read.
                described = {
                    image_id: aws.ec2.get_ami_output(
                        owners=[owner],
                        filters=[{"name": "image-id", "values": [image_id]}],
                        include_deprecated=True,
                        opts=pulumi.InvokeOutputOptions(parent=self),
                    ).description
                    for image_id in revoked_ids
                }
                return pulumi.Output.all(described, self._launched_image(args)).apply(
                    lambda read: keep_or_refuse(newest, revoked_ids, read[0], read[1])
                )

            def keep_or_refuse(
                newest: str, revoked_ids: list[str], texts: dict, launched: str | None
            ) -> str:
                kept = kept_revoked_image(revoked_ids, launched)
                if kept is None:
                    return _refuse(
                        revoked_refusal(args.service, args.version, newest, texts.get(newest))
                    )
                pulumi.log.warn(
                    kept_revoked_warning(
                        args.service, args.version, args.color, kept, texts.get(kept)
                    ),
                    resource=self,
                )
                return kept

            self.image_id = pulumi.Output.all(
                current.ids, everything.ids, revoked.ids, args.launchable_after
            ).apply(choose)
        self.register_outputs({"imageId": self.image_id})

    def _launched_image(self, args: GoldenImageArgs) -> pulumi.Output[str | None]:
        """The image the color's launch template launches (its default version), read from
        AWS: the color's group by its tags, then its template. None when the color has no group
        (a first deploy) or more than one (not this program's)."""
        invoke = pulumi.InvokeOutputOptions(parent=self)
        # pulumi-aws names the aws_autoscaling_groups data source autoscaling.getAmiIds.
        groups = aws.autoscaling.get_ami_ids_output(
            filters=[
                {"name": "tag:Stack", "values": [args.stack]},
                {"name": "tag:Service", "values": [args.service]},
                {"name": "tag:Color", "values": [args.color]},
            ],
            opts=invoke,
        )

        def template_image(names: list[str] | None) -> Any:
            if len(names or []) != 1:
                return None
            group = aws.autoscaling.get_group_output(name=names[0], opts=invoke)

            def image(template_id: str | None) -> Any:
                if not template_id:
                    return None
                return aws.ec2.get_launch_template_output(id=template_id, opts=invoke).image_id

            return group.apply(template_of_group).apply(image)

        return groups.names.apply(template_image)
