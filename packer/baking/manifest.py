"""What Packer built: the AMI ids of the last run in its manifest post-processor's file."""

from __future__ import annotations

import json
import re

_ARTIFACT = re.compile(r"([a-z]{2}(?:-[a-z]+)+-[0-9]):(ami-[0-9a-f]+)")


def parse_manifest(text: str, builder_type: str = "amazon-ebs") -> dict[str, str]:
    """AMI ids by region from the last run in a Packer manifest."""
    try:
        manifest = json.loads(text)
        run = manifest["last_run_uuid"]
        builds = [
            b
            for b in manifest["builds"]
            if b.get("packer_run_uuid") == run and b.get("builder_type") == builder_type
        ]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"unreadable manifest: {error}") from error
    if not builds:
        raise ValueError(f"manifest has no {builder_type} artifact from the last run")
    amis: dict[str, str] = {}
    for pair in str(builds[-1].get("artifact_id", "")).split(","):
        match = _ARTIFACT.fullmatch(pair)
        if not match:
            raise ValueError(f"manifest artifact {pair!r} is not region:ami-id")
        amis[match.group(1)] = match.group(2)
    return amis
