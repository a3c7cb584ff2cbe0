"""The bake's entry point: argument checks, and every exit path against the local EC2 API.

The package's modules are tested on their own in tests/test_baking_*.py."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from bake_fixtures import PACKER_DIR, require, run_bake, run_bake_timed
from baking import cli, digest, errors, layers, package, varfiles
from baking.emulator import local_emulator

# ------------------------------------------------------------------ arguments


@pytest.mark.parametrize("version", ["1.4.0", "0.0.1", "2.0.0-rc.1", "10.20.30-alpha.beta"])
def test_semantic_versions_are_accepted(version):
    assert cli.validate_version(version) == version


@pytest.mark.parametrize(
    "version",
    [
        "latest",
        "1.0",
        "v1.0.0",
        "01.0.0",
        "1.0.0+build.7",  # "+" is not allowed in AMI names: the program refuses it too
        "1.0.0\n",
        "1\u0660.0.0",
        "1.0.0;rm -rf /",
        "$(id)",
        "1.0.0 ",
        "`x`",
        "",
        "1.0.0|x",
    ],
)
def test_other_versions_are_refused_with_exit_2(version):
    with pytest.raises(errors.BakeError, match="invalid version") as error:
        cli.validate_version(version)
    assert error.value.code == errors.EXIT_USAGE


@pytest.mark.parametrize("service", ["a" * 15, "a" * 40, "Checkout", "checkout\n", "x"])
def test_services_the_program_refuses_are_refused_with_exit_2(service):
    """One rule: 40-character services used to pass the bake and fail the program."""
    with pytest.raises(errors.BakeError, match=r"invalid service.*2-14 characters") as error:
        cli.validate_service(service)
    assert error.value.code == errors.EXIT_USAGE


@pytest.mark.parametrize("region", ["eu-west-1", "us-gov-west-1", "us-isob-east-1"])
def test_regions_are_accepted(region):
    assert cli.validate_region(region) == region


@pytest.mark.parametrize("region", ["eu-west-1\n", "eu-west-\u0661", "EU-WEST-1", "eu", ""])
def test_other_regions_are_refused_with_exit_2(region):
    with pytest.raises(errors.BakeError, match="invalid region") as error:
        cli.validate_region(region)
    assert error.value.code == errors.EXIT_USAGE


def test_region_falls_back_to_the_environment_then_us_east_1():
    assert cli.parse_args(["--version", "1.0.0"], {}).region == "us-east-1"
    assert cli.parse_args(["--version", "1.0.0"], {"AWS_REGION": "eu-west-1"}).region == "eu-west-1"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--version", "1.0.0", "--endpoint", "http://127.0.0.1:1"], "only apply with --local"),
        (["--version", "1.0.0", "--var-file", "/nonexistent.pkrvars.hcl"], "not found"),
        (["--version", "1.0.0", "--var-file", "/"], "not a file"),
        (["--version", "1.0.0", "--nope"], "usage"),
    ],
)
def test_bad_arguments_are_one_error_with_exit_2(argv, message):
    with pytest.raises(errors.BakeError, match=message) as error:
        cli.parse_args(argv, {})
    assert error.value.code == errors.EXIT_USAGE


# ------------------------------------------------------------------ exit paths (subprocess)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """The local EC2 API with one usable foundation, so application bakes build on it."""
    require("moto_server")
    with local_emulator(tmp_path_factory.mktemp("moto")) as url:
        register_foundation(url)
        yield url


@pytest.fixture()
def fake_packer(tmp_path) -> Path:
    """A `packer` that registers a half-done image (as a build that fails late would), while a
    concurrent bake of the same version registers one of the same name, and fails."""
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
for run in (values["bake_run"], "another-bake-of-the-same-second"):
    ami = ec2.register_image(
        Name=name, RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{{"DeviceName": "/dev/xvda", "Ebs": {{"VolumeSize": 8}}}}])["ImageId"]
    ec2.create_tags(Resources=[ami], Tags=[{{"Key": "BakeRun", "Value": run}}])
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


FOUNDATION = layers.Foundation(
    ami="",
    name="golden-foundation-python-20261101T000000Z",
    build_time="20261101T000000Z",
    digest="f" * 64,
    runtime="python",
)


def register_foundation(emulator: str) -> str:
    client = ec2(emulator)
    ami = client.register_image(
        Name=FOUNDATION.name,
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]
    client.create_tags(
        Resources=[ami],
        Tags=[
            {"Key": "ManagedBy", "Value": "golden-fleet"},
            {"Key": "Layer", "Value": "foundation"},
            {"Key": "TemplateDigest", "Value": FOUNDATION.digest},
            {"Key": "BuildTime", "Value": FOUNDATION.build_time},
        ],
    )
    return ami


def current_digest(service: str, version: str = "1.0.0", tmp: Path | None = None) -> str:
    """The application digest a bake of the sample service computes on FOUNDATION."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        sample = package.build_sample(service, version, Path(scratch))
        values = {
            **varfiles.CONTENT_DEFAULTS,
            "app_sha256": package.file_sha256(sample),
            "app_unit": f"{service}.service",
        }
    return digest.template_digest(
        layers.layer_files(digest.template_files(), "application"),
        layers.application_content(values, FOUNDATION),
    )


def test_invalid_version_exits_2_without_output():
    result = run_bake(["--version", "latest", "--service", "checkout"])
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "bake.py: error: invalid version 'latest': expected a semantic version such as 1.4.0 "
        "(no build metadata)"
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
    # The error is the last line; before it may stand only notices of scratch directories a
    # killed bake left (an earlier test's), which every bake clears first.
    *notices, error = result.stderr.strip().splitlines()
    assert error.startswith("bake.py: error: credentials"), result.stderr
    assert all(n.startswith("bake: removed ") for n in notices), result.stderr


def test_existing_image_with_same_digest_is_reused_fast(emulator, fake_packer):
    ami = register(emulator, "reuse-1.0.0-20261126T080000Z", current_digest("reuse"))
    env = aws_env(emulator, PATH=f"{fake_packer}:{os.environ['PATH']}")
    result, wall, cpu = run_bake_timed(["--version", "1.0.0", "--service", "reuse"], env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{ami}\n"
    assert cpu < 2.0 and wall < 10, f"reuse took {cpu:.2f} s of CPU, {wall:.2f} s in all"


def test_same_version_other_digest_exits_5(emulator, fake_packer):
    ami = register(emulator, "conflict-1.0.0-20261126T080000Z", "0" * 64)
    env = aws_env(emulator, PATH=f"{fake_packer}:{os.environ['PATH']}")
    result = run_bake(["--version", "1.0.0", "--service", "conflict"], env=env)
    assert result.returncode == 5 and result.stdout == ""
    assert ami in result.stderr and "one version, one content" in result.stderr


def test_failed_build_exits_6_and_removes_only_its_own_image(emulator, fake_packer):
    """The half-done image goes; another bake's image of the same name (same version, same
    second) stays: clean-up goes by this run's id, never by name alone."""
    env = aws_env(emulator, PATH=f"{fake_packer}:{os.environ['PATH']}")
    result = run_bake(["--version", "1.0.0", "--service", "broken"], env=env)
    assert result.returncode == 6 and result.stdout == ""
    assert "packer build failed" in result.stderr and "removed half-done images" in result.stderr
    images = ec2(emulator).describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": ["broken-*"]}]
    )["Images"]
    runs = [tag["Value"] for image in images for tag in image["Tags"] if tag["Key"] == "BakeRun"]
    assert runs == ["another-bake-of-the-same-second"]


def test_a_killed_bakes_scratch_directories_go_with_the_next_bake(emulator, tmp_path):
    """SIGKILL runs no clean-up; the next bake removes what the killed one left in $TMPDIR."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "packer"
    script.write_text(
        f"#!{sys.executable}\nimport sys, time\n"
        "if sys.argv[1:2] == ['version']:\n    print('Packer v1.6.6'); sys.exit(0)\n"
        "print('==> golden.amazon-ebs.golden: Provisioning with shell script: /s/50-app.sh',"
        " flush=True)\ntime.sleep(60)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    scratch_base = tmp_path / "tmp"
    scratch_base.mkdir()
    env = aws_env(emulator, PATH=f"{bin_dir}:{os.environ['PATH']}", TMPDIR=str(scratch_base))
    import subprocess

    killed = subprocess.Popen(
        [sys.executable, str(PACKER_DIR / "bake.py"), "--version", "1.0.0", "--service", "killed"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in killed.stderr:
            if "step 50-app.sh" in line:  # the quiet bake's line for Packer's step
                break
        left = sorted(p.name for p in scratch_base.iterdir())
        assert {"template", "work"} <= {n.split("-")[2] for n in left}, left
        # Packer's own directory: under /tmp, as this TMPDIR is too long for its sockets.
        packer_dirs = [
            path
            for path in Path("/tmp").glob("golden-fleet-packer-tmp-*")
            if (path / ".golden-fleet-owner").read_text().split()[0] == str(killed.pid)
        ]
        assert len(packer_dirs) == 1, packer_dirs
        killed.kill()
        killed.wait(10)
    finally:
        killed.kill()
        killed.wait(10)
        killed.stderr.close()
    assert len(list(scratch_base.iterdir())) == len(left), "SIGKILL ran no clean-up"
    ami = register(emulator, "killed-1.0.0-20261126T080000Z", current_digest("killed"))
    result = run_bake(["--version", "1.0.0", "--service", "killed"], env=env)
    assert result.returncode == 0 and result.stdout == f"{ami}\n", result.stderr
    assert list(scratch_base.iterdir()) == []
    assert not packer_dirs[0].exists(), "the killed bake's Packer directory was left"
    assert "left by a bake that was killed" in result.stderr
