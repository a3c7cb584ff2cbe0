"""ImageDistribution: where one baked image may be launched: accounts and regions, as resources.

Per share account an ``aws.ec2.AmiLaunchPermission`` on the image; per copy region an
``aws.ec2.AmiCopy`` encrypted with that region's image key, and a launch permission per account
on the copy. Adding an account or a region to the config adds exactly these resources on the
next ``pulumi up``, for the images the colors already run. Every name is keyed by version,
account and region, never by list position, so adding one never renames another.

Removing an account or a region from the config, or a version from both colors, never
deregisters an image or revokes a permission: every resource here is ``retain_on_delete``, so
the engine drops it from the stack's state without calling the provider's delete ("Pulumi will
not call through to the resource provider's Delete method when deleting or replacing the
resource during pulumi up or pulumi destroy", Pulumi docs, resource options, retainOnDelete).
Another stack (prod, one release behind) may still run the image in that region or account, an
instance refresh may roll back to it, and Pulumi cannot see either. ``deleted_with`` would not
do: it skips the delete only when the resource it names is deleted in the same update (Pulumi
docs, resource options, deletedWith), and a config edit deletes a copy while its distribution
stays. ``python -m release prune`` deregisters images and their copies, in every region they
live in, once nothing uses them (release/prune.py); deregistering an image ends its launch
permissions with it. Revoking an account's permission on purpose is a deliberate act outside
the program (docs/explanation/accounts-and-encryption.md).

One distribution exists per *version*, not per color: when both colors run one version they run
one image, and two resources managing one launch permission would revoke it for both as soon
as one color moved on. The first color running the version parents it; the URN holds the
parent's type, not its name, so the parent moving from one color to the other changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


def distribution_name(service: str, version: str) -> str:
    return f"{service}-{version}-distribution"


def copy_deprecation_time(source: str | None) -> str | None:
    """The copy's deprecation time: the source's, to the second. CopyImage does not carry it
    over, and a copy that is never deprecated would outlive the image it was copied from."""
    if not source:
        return None
    seconds, _, _ = source.partition(".")
    return seconds.removesuffix("Z") + "Z"


@dataclass(frozen=True)
class ImageDistributionArgs:
    service: str
    """Service name; the first part of every child's name."""
    version: str
    """The version the image was baked for; part of every child's name."""
    image_id: pulumi.Input[str]
    """The image in the home region, as the bake printed it."""
    home_region: str
    """The region the bake builds in (the stack's region)."""
    share_with_accounts: list[str]
    """Accounts that may launch the image and its copies (image.shareWithAccounts)."""
    copy_keys: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Copy region -> ARN of the image key in that region (image.copyToRegions)."""


class ImageDistribution(pulumi.ComponentResource):
    """The launch permissions and copies of one image. ``copies`` maps region -> AMI id."""

    copies: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: ImageDistributionArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golden-fleet:index:ImageDistribution", name, None, opts)
        prefix = f"{args.service}-{args.version}"
        # retain_on_delete, not deleted_with (module docstring): a config edit deletes a copy or
        # a permission while this distribution stays, and only retain_on_delete skips that
        # provider delete. It holds for a replacement too: the old copy stays registered until
        # prune finds it unused. Set on each resource rather than inherited from the component,
        # so that the option is visible where the resource is declared.
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        for account in args.share_with_accounts:
            aws.ec2.AmiLaunchPermission(
                f"{prefix}-launch-{account}",
                image_id=args.image_id,
                account_id=account,
                opts=child,
            )
        self.copies = {}
        if args.copy_keys:
            # A copy keeps the image's name, which is how promoting stacks find it in their
            # region; the name and deprecation time come from the image itself.
            source = aws.ec2.get_ami_output(
                owners=["self"],
                filters=[{"name": "image-id", "values": [args.image_id]}],
                include_deprecated=True,
                most_recent=True,
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
        for region, key_arn in sorted(args.copy_keys.items()):
            copy = aws.ec2.AmiCopy(
                f"{prefix}-copy-{region}",
                name=source.name,
                description=source.description,
                source_ami_id=args.image_id,
                source_ami_region=args.home_region,
                # Encrypted with the region's own image key: a key is regional, and only a key
                # whose policy admits the share accounts lets them launch the copy.
                encrypted=True,
                kms_key_id=key_arn,
                deprecation_time=source.deprecation_time.apply(copy_deprecation_time),
                tags={"Version": args.version},
                region=region,
                opts=child,
            )
            for account in args.share_with_accounts:
                aws.ec2.AmiLaunchPermission(
                    f"{prefix}-launch-{account}-{region}",
                    image_id=copy.id,
                    account_id=account,
                    region=region,
                    opts=child,
                )
            self.copies[region] = copy.id
        self.register_outputs({"copies": self.copies})
