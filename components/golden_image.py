"""GoldenImage: the AMI one color runs, baked here or promoted from the baking account.

``bake`` mode runs the bake wrapper as a ``pulumi_command`` Command. Its ``triggers`` hold only
what defines the image (service and version), and ``replace_on_changes=["triggers"]`` makes a
version bump a *replacement* in ``pulumi preview``. Any other input edit (sharing, regions) runs
the ``update`` command, which re-emits the previous AMI id: a color serving traffic is never
rebaked because someone edited a cosmetic input. Template changes ship under a new version;
the wrapper refuses to bake one version from two different templates.

``promote`` mode never bakes: it finds the image that the baking account built for this
version, by owner and name. AMI tags are not visible to the accounts an image is shared with,
so the name ``<service>-<version>-<timestamp>`` is the cross-account key.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi_command import local

from components.config import BakeImage, PromoteImage, check_version
from components.image_contract import image_name_filter, image_name_regex

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


def bake_command(service: str, version: str, region: str, var_file: str | None) -> str:
    """The bake wrapper's command line. Every value is validated and quoted; no secrets."""
    check_version(version)
    parts = ["python", BAKE_SCRIPT, "--version", version, "--service", service, "--region", region]
    if var_file:
        parts += ["--var-file", var_file]
    return shlex.join(parts)


def _hcl_list(values: list[str]) -> str:
    # Packer parses PKR_VAR_ values of non-string variables as HCL; a JSON list is valid HCL.
    return json.dumps(list(values))


def bake_environment(bake: BakeImage) -> dict[str, str]:
    """Packer variables for the bake, passed as PKR_VAR_* (never on the command line)."""
    return {
        "PKR_VAR_source_ami_owners": _hcl_list(bake.source.owners),
        "PKR_VAR_source_ami_name": bake.source.name,
        "PKR_VAR_runtime": bake.runtime.value,
        "PKR_VAR_instance_type": bake.build_instance_type,
        "PKR_VAR_ami_users": _hcl_list(bake.share_with_accounts),
        "PKR_VAR_ami_regions": _hcl_list(bake.copy_to_regions),
    }


def bake_triggers(service: str, version: str) -> list[str]:
    """What defines a color's image. A change here, and only here, rebakes."""
    return [service, version]


def pick_promoted_image(ids: list[str], service: str, version: str, owner: str) -> str:
    """The newest matching image, or a clear failure naming what was never baked."""
    if not ids:
        raise ValueError(
            f"no image {service} {version} owned by account {owner}: this version was never "
            f"baked (or not shared with this account). Bake it in the baking stack first; "
            f"looked for AMI names matching {image_name_filter(service, version)!r}"
        )
    return ids[0]


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
                create=bake_command(args.service, args.version, args.region, source.var_file),
                update=REEMIT_PREVIOUS_IMAGE,
                environment=bake_environment(source),
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
        else:
            found = aws.ec2.get_ami_ids_output(
                owners=[source.owner_account_id],
                filters=[
                    {"name": "name", "values": [image_name_filter(args.service, args.version)]},
                    {"name": "state", "values": ["available"]},
                ],
                name_regex=image_name_regex(args.service, args.version),
                sort_ascending=False,
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            owner = source.owner_account_id
            self.image_id = found.ids.apply(
                lambda ids: pick_promoted_image(list(ids or []), args.service, args.version, owner)
            )
        self.register_outputs({"imageId": self.image_id})
