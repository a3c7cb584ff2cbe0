"""The bake wrapper: its pure logic, and every exit path against the local EC2 API."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest
from bake_fixtures import PACKER_DIR, bake, require, run_bake

# ------------------------------------------------------------------ pure logic


@pytest.mark.parametrize(
    "version", ["1.4.0", "0.0.1", "2.0.0-rc.1", "1.0.0+build.7", "10.20.30-alpha.beta"]
)
def test_semantic_versions_are_accepted(version):
    assert bake.validate_version(version) == version


@pytest.mark.parametrize(
    "version",
    [
        "latest",
        "1.0",
        "v1.0.0",
        "01.0.0",
        "1.0.0;rm -rf /",
        "$(id)",
        "1.0.0 ",
        "`x`",
        "",
        "1.0.0|x",
    ],
)
def test_other_versions_are_refused_with_exit_2(version):
    with pytest.raises(bake.BakeError, match="invalid version") as error:
        bake.validate_version(version)
    assert error.value.code == bake.EXIT_USAGE


def test_name_regex_is_exact_per_version():
    """`1.0.0-*` as a filter also matches 1.0.0-rc.1 images; the regex keeps them apart."""
    pattern = bake.image_name_regex("checkout", "1.0.0")
    assert pattern.match("checkout-1.0.0-20261126T080000Z")
    assert not pattern.match("checkout-1.0.0-rc.1-20261126T080000Z")
    assert not pattern.match("checkout-1x0x0-20261126T080000Z")
    assert (
        bake.image_name("checkout", "1.0.0", "20261126T080000Z")
        == "checkout-1.0.0-20261126T080000Z"
    )
    assert bake.image_name_filter("checkout", "1.0.0") == "checkout-1.0.0-*"
    assert bake.build_timestamp(0) == "19700101T000000Z"


def manifest(*builds: dict, last: str = "run-2") -> str:
    return json.dumps({"builds": list(builds), "last_run_uuid": last})


def test_manifest_gives_the_last_runs_amis_by_region():
    text = manifest(
        {
            "builder_type": "amazon-ebs",
            "packer_run_uuid": "run-1",
            "artifact_id": "us-east-1:ami-0old",
        },
        {
            "builder_type": "amazon-ebs",
            "packer_run_uuid": "run-2",
            "artifact_id": "eu-west-1:ami-0a1,eu-central-1:ami-0b2",
        },
    )
    assert bake.parse_manifest(text) == {"eu-west-1": "ami-0a1", "eu-central-1": "ami-0b2"}


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"builds": []}),
        manifest(
            {
                "builder_type": "amazon-ebs",
                "packer_run_uuid": "run-1",
                "artifact_id": "us-east-1:ami-0a1",
            }
        ),
        manifest(
            {"builder_type": "docker", "packer_run_uuid": "run-2", "artifact_id": "sha256:abc"}
        ),
        manifest(
            {
                "builder_type": "amazon-ebs",
                "packer_run_uuid": "run-2",
                "artifact_id": "us-east-1:notanami",
            }
        ),
    ],
    ids=["garbage", "no-last-run", "stale-run", "other-builder", "bad-id"],
)
def test_unusable_manifests_are_errors(text):
    with pytest.raises(ValueError):
        bake.parse_manifest(text)


def test_var_files_and_environment_resolve_in_packers_order():
    values = bake.parse_var_file((PACKER_DIR / "prod.pkrvars.hcl").read_text())
    assert values["ami_regions"] == ["eu-central-1"] and values["runtime"] == "python"
    env = {"PKR_VAR_runtime": "nodejs", "PKR_VAR_source_ami_owners": '["123"]'}
    resolved = bake.resolve_variables(tuple(bake.CONTENT_DEFAULTS), env, {}, bake.CONTENT_DEFAULTS)
    assert resolved == {
        "runtime": "nodejs",
        "source_ami_owners": ["123"],
        "source_ami_name": "debian-12-amd64-*",
    }
    resolved = bake.resolve_variables(
        ("runtime",), env, {"runtime": "openjdk17"}, bake.CONTENT_DEFAULTS
    )
    assert resolved == {"runtime": "openjdk17"}, "a var file beats PKR_VAR_ in Packer"


def copy_template(tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    packer_dir, app_dir = tmp_path / "packer", tmp_path / "app"
    shutil.copytree(PACKER_DIR, packer_dir, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    shutil.copytree(bake.APP_DIR, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    return packer_dir, app_dir


def test_digest_follows_content_not_sharing(tmp_path):
    packer_dir, app_dir = copy_template(tmp_path)
    content = dict(bake.CONTENT_DEFAULTS)

    def digest(values=content):
        return bake.template_digest(bake.template_files(packer_dir, app_dir), values)

    base = digest()
    assert base == digest(), "the digest is stable"
    assert digest({**content, "runtime": "nodejs"}) != base
    assert digest({**content, "source_ami_name": "debian-12-arm64-*"}) != base
    (packer_dir / "prod.pkrvars.hcl").write_text('ami_users = ["1"]\n')
    assert digest() == base, "sharing and copy settings are not content"
    script = packer_dir / "scripts" / "20-cis-sshd.sh"
    script.write_text(script.read_text() + "\n# changed\n")
    assert digest() != base
    script.write_text(script.read_text().replace("\n# changed\n", ""))
    (app_dir / "server.py").write_text((app_dir / "server.py").read_text() + "\n")
    assert digest() != base


def image(
    name: str, digest: str, state: str = "available", created: str = "2026-11-26T08:00:00.000Z"
) -> dict:
    tags = [
        {"Key": "ManagedBy", "Value": "golden-fleet"},
        {"Key": "TemplateDigest", "Value": digest},
    ]
    return {
        "ImageId": f"ami-{abs(hash(name + digest)) % 10**12:012x}",
        "Name": name,
        "State": state,
        "Tags": tags,
        "CreationDate": created,
    }


def test_decide_reuses_refuses_or_builds():
    name = "checkout-1.0.0-20261126T080000Z"
    assert bake.decide([], "checkout", "1.0.0", "d1").action == "build"
    assert bake.decide([image(name, "d1")], "checkout", "1.0.0", "d1").action == "reuse"
    assert bake.decide([image(name, "d2")], "checkout", "1.0.0", "d1").action == "conflict"
    assert (
        bake.decide([image(name, "d1", state="failed")], "checkout", "1.0.0", "d1").action
        == "build"
    )
    rc = image("checkout-1.0.0-rc.1-20261126T080000Z", "d2")
    assert bake.decide([rc], "checkout", "1.0.0", "d1").action == "build", (
        "another version is not a conflict"
    )


def test_legacy_packer_is_detected():
    assert bake.packer_is_legacy("Packer v1.6.6")
    assert not bake.packer_is_legacy("Packer v1.11.2\n\nYour version of Packer is out of date!")


# ------------------------------------------------------------------ exit paths (subprocess)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    require("moto_server")
    with bake.local_emulator(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture()
def fake_packer(tmp_path) -> Path:
    """A `packer` that registers a half-done image (as a build that fails late would) and fails."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "packer"
    script.write_text(f"""#!{sys.executable}
import sys, boto3
args = sys.argv[1:]
if args[:1] == ["version"]:
    print("Packer v1.6.6"); sys.exit(0)
values = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
ec2 = boto3.client("ec2", region_name=values["region"])
name = f"{{values['service']}}-{{values['version']}}-{{values['build_time']}}"
ec2.register_image(Name=name, RootDeviceName="/dev/xvda",
                   BlockDeviceMappings=[{{"DeviceName": "/dev/xvda", "Ebs": {{"VolumeSize": 8}}}}])
print("==> amazon-ebs: Script exited with non-zero exit status: 1", file=sys.stderr)
sys.exit(1)
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def aws_env(emulator: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PKR_VAR_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=emulator,
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


def ec2(emulator: str):
    import boto3

    return boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=emulator,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def register(emulator: str, name: str, digest: str) -> str:
    client = ec2(emulator)
    ami = client.register_image(
        Name=name,
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]
    client.create_tags(
        Resources=[ami],
        Tags=[
            {"Key": "ManagedBy", "Value": "golden-fleet"},
            {"Key": "TemplateDigest", "Value": digest},
        ],
    )
    return ami


def current_digest() -> str:
    return bake.template_digest(bake.template_files(), dict(bake.CONTENT_DEFAULTS))


def test_invalid_version_exits_2_without_output():
    result = run_bake(["--version", "latest", "--service", "checkout"])
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "bake.py: error: invalid version 'latest': expected a semantic version such as 1.4.0"
    ]


def test_unknown_option_exits_2():
    result = run_bake(["--version", "1.0.0", "--nope"])
    assert result.returncode == 2 and result.stdout == "" and "usage" in result.stderr


def test_missing_packer_exits_3(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))
    result = subprocess_run_without_packer(env)
    assert result.returncode == 3 and result.stdout == ""
    assert "packer not found" in result.stderr


def subprocess_run_without_packer(env):
    import subprocess

    return subprocess.run(
        [sys.executable, str(PACKER_DIR / "bake.py"), "--version", "1.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_credentials_exit_4(fake_packer, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{fake_packer}:{os.environ['PATH']}",
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        HOME=str(tmp_path),
    )
    result = run_bake(["--version", "1.0.0", "--region", "us-east-1"], env=env, timeout=60)
    assert result.returncode == 4 and result.stdout == ""
    assert result.stderr.startswith("bake.py: error: credentials")


def test_existing_image_with_same_digest_is_reused_fast(emulator, fake_packer):
    ami = register(emulator, "reuse-1.0.0-20261126T080000Z", current_digest())
    env = aws_env(emulator, PATH=f"{fake_packer}:{os.environ['PATH']}")
    started = time.monotonic()
    result = run_bake(["--version", "1.0.0", "--service", "reuse"], env=env)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{ami}\n"
    assert elapsed < 2.0, f"reuse took {elapsed:.2f}s"


def test_same_version_other_digest_exits_5(emulator, fake_packer):
    ami = register(emulator, "conflict-1.0.0-20261126T080000Z", "0" * 64)
    env = aws_env(emulator, PATH=f"{fake_packer}:{os.environ['PATH']}")
    result = run_bake(["--version", "1.0.0", "--service", "conflict"], env=env)
    assert result.returncode == 5 and result.stdout == ""
    assert ami in result.stderr and "one version, one content" in result.stderr


def test_failed_build_exits_6_and_leaves_no_image(emulator, fake_packer):
    env = aws_env(emulator, PATH=f"{fake_packer}:{os.environ['PATH']}")
    result = run_bake(["--version", "1.0.0", "--service", "broken"], env=env)
    assert result.returncode == 6 and result.stdout == ""
    assert "packer build failed" in result.stderr and "removed half-done images" in result.stderr
    images = ec2(emulator).describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": ["broken-*"]}]
    )["Images"]
    assert images == []
