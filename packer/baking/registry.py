"""The images already in EC2: reuse one of the same content, refuse the same version from other
content, and remove what a failed bake left behind. Home region only: copies to other regions
and launch permissions for other accounts are Pulumi resources of the GoldenImage component."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from components.image_contract import MANAGED_BY, image_name_filter, is_image_name, tag_map


@dataclass(frozen=True)
class Decision:
    action: str  # "reuse", "conflict" or "build"
    image: dict | None = None


def version_images(images: list[dict], service: str, version: str) -> list[dict]:
    """The available managed images of this service's version, oldest first."""
    ours = [
        i
        for i in images
        if is_image_name(i.get("Name"), service, version)
        and tag_map(i).get("ManagedBy") == MANAGED_BY
    ]
    return sorted(
        (i for i in ours if i.get("State") == "available"), key=lambda i: i.get("CreationDate", "")
    )


def decide(images: list[dict], service: str, version: str, digest: str) -> Decision:
    """Reuse an available image with this digest; refuse one of this version with another digest."""
    available = version_images(images, service, version)
    for image in reversed(available):
        if tag_map(image).get("TemplateDigest") == digest:
            return Decision("reuse", image)
    if available:
        return Decision("conflict", available[-1])
    return Decision("build")


def conflict_without_foundation(images: list[dict], service: str, version: str) -> Decision:
    """The decision when no foundation exists to build this version on: any image of the version
    was built on another foundation (its digest covers the foundation's), so a new foundation means
    other content. A conflict is known before the foundation is baked, not minutes after."""
    available = version_images(images, service, version)
    return Decision("conflict", available[-1]) if available else Decision("build")


def find_images(ec2, service: str, version: str) -> list[dict]:
    """This account's managed images of the version (the name filter is wider; decide() narrows)."""
    response = ec2.describe_images(
        Owners=["self"],
        # A deprecated image is still this version's image: never bake the version twice. (The
        # owner sees its deprecated images anyway, per the EC2 API reference for IncludeDeprecated;
        # asking explicitly keeps that true if this lookup ever runs from another account.)
        IncludeDeprecated=True,
        Filters=[
            {"Name": "name", "Values": [image_name_filter(service, version)]},
            {"Name": "tag:ManagedBy", "Values": [MANAGED_BY]},
        ],
    )
    return response["Images"]


def remove_images(ec2, name: str, bake_run: str) -> list[str]:
    """Deregister the images called ``name`` that bake ``bake_run`` registered (and delete their
    snapshots) in the client's region. Another bake of the same name (same version, same second)
    tags its image with its own run id, so its image stays.

    Best effort on a path that is already failing: an error here must not hide the first one."""
    removed: list[str] = []
    with contextlib.suppress(Exception):
        for image in ec2.describe_images(
            Owners=["self"],
            IncludeDeprecated=True,
            Filters=[
                {"Name": "name", "Values": [name]},
                {"Name": "tag:BakeRun", "Values": [bake_run]},
            ],
        )["Images"]:
            ec2.deregister_image(ImageId=image["ImageId"])
            removed.append(image["ImageId"])
            for mapping in image.get("BlockDeviceMappings", []):
                snapshot = mapping.get("Ebs", {}).get("SnapshotId")
                if snapshot:
                    with contextlib.suppress(Exception):
                        ec2.delete_snapshot(SnapshotId=snapshot)
    return removed
