"""Was a version ever baked? The same lookup a promote stack makes when it resolves its image.

Images are named ``<service>-<version>-<timestamp>`` in the baking account. Tags are invisible
to the accounts an image is shared with, so the name is the cross-account key: the lookup is
``describe_images(Owners=[owner], Filters=[name = <service>-<version>-*])`` narrowed by an exact
regular expression (``1.4.0-*`` would also match ``1.4.0-rc.1-...``).
"""

from __future__ import annotations

import re
from typing import Any

from components.config import BakeImage, StackConfig
from components.golden_image import image_name_filter, image_name_regex
from release.transitions import BakeCheck, BakeStatus


def image_owner(cfg: StackConfig) -> str:
    """``self`` for a stack that bakes, the trusted baking account for one that promotes."""
    return "self" if isinstance(cfg.image, BakeImage) else cfg.image.owner_account_id


def newest_image(images: list[dict[str, Any]], service: str, version: str) -> dict | None:
    """The newest image whose name is exactly ``<service>-<version>-<timestamp>``."""
    pattern = re.compile(image_name_regex(service, version))
    matching = [i for i in images if pattern.match(i.get("Name", ""))]
    # The timestamp suffix sorts chronologically, and unlike CreationDate it is what the bake set.
    return max(matching, key=lambda i: i["Name"], default=None)


def check_baked(cfg: StackConfig, version: str, ec2: Any = None) -> BakeCheck:
    """Look the version's image up in the stack's region; never raises for AWS trouble.

    ``ec2`` is a boto3 EC2 client (made from the default credential chain when omitted). Missing
    credentials, a denied call or no network give ``UNKNOWN`` with the reason.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    service, owner = cfg.service.name, image_owner(cfg)
    where = f"{image_name_filter(service, version)} owned by {owner} in {cfg.region}"
    try:
        if ec2 is None:
            session = boto3.session.Session(region_name=cfg.region)
            if session.get_credentials() is None:
                return BakeCheck(BakeStatus.UNKNOWN, "no AWS credentials found")
            ec2 = session.client("ec2")
        response = ec2.describe_images(
            Owners=[owner],
            Filters=[{"Name": "name", "Values": [image_name_filter(service, version)]}],
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        return BakeCheck(BakeStatus.UNKNOWN, f"AWS refused the lookup: {code}")
    except BotoCoreError as error:
        return BakeCheck(BakeStatus.UNKNOWN, f"the lookup failed: {error}")
    image = newest_image(response.get("Images", []), service, version)
    if image is None:
        return BakeCheck(BakeStatus.MISSING, where)
    return BakeCheck(BakeStatus.FOUND, f"{image['Name']} ({image.get('ImageId', '?')})")
