"""baking.manifest: the AMI ids of Packer's last run, or an error."""

from __future__ import annotations

import json

import bake_fixtures  # noqa: F401  (puts packer/, the bake package's home, on sys.path)
import pytest
from baking.manifest import parse_manifest


def manifest(*builds: dict, last: str = "run-2") -> str:
    return json.dumps({"builds": list(builds), "last_run_uuid": last})


def build(run: str, artifact: str, builder: str = "amazon-ebs") -> dict:
    return {"builder_type": builder, "packer_run_uuid": run, "artifact_id": artifact}


def test_manifest_gives_the_last_runs_amis_by_region():
    text = manifest(build("run-1", "us-east-1:ami-0old"), build("run-2", "eu-west-1:ami-0a1"))
    assert parse_manifest(text) == {"eu-west-1": "ami-0a1"}


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"builds": []}),
        manifest(build("run-1", "us-east-1:ami-0a1")),
        manifest(build("run-2", "sha256:abc", builder="docker")),
        manifest(build("run-2", "us-east-1:notanami")),
        manifest(build("run-2", "us-east-1:ami-0a1\n")),
        manifest(build("run-2", "us-east-\u0661:ami-0a1")),
    ],
    ids=[
        "garbage",
        "not-a-map",
        "no-last-run",
        "stale-run",
        "other-builder",
        "bad-id",
        "newline",
        "unicode-digit",
    ],
)
def test_unusable_manifests_are_errors(text):
    with pytest.raises(ValueError):
        parse_manifest(text)
