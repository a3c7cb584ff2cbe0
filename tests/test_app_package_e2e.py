"""End to end: a service that is not the sample app, packaged by the test with dpkg-deb, baked
--local from a local path and from s3:// in the local AWS API; it runs and answers in the build
host. Packages that do not fit (digest, version, name, a rebuild under a baked version) are
refused before Packer starts. The image's boot-environment unit reads secrets from the local
API's Secrets Manager and SSM inside the baked build host. A package whose unit fixes its own
port bakes when that port is service.port (--port) and is refused, naming both ports, when it is
not. Three application bakes on the session's shared foundation (tests/shared_bakes.py), one of
them refused by the image tests; a fourth, whose unit has StateDirectory= and LogsDirectory=,
answers and leaves no trace of the check in the image; runs in CI."""

from __future__ import annotations

import json
import re
import shutil
import stat
import time
from pathlib import Path

import pytest
from app_packages import build_deb, sha256_of, write_sidecar
from bake_fixtures import describe_image, require, run_bake
from baking import build_host, emulator, errors

from components import image_contract

# One xdist group: these tests share the session's bake cache (one foundation, one local API),
# and a session fixture is one per worker.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-bake")]
SERVICE, VERSION, S3_VERSION, WRONG_PORT_VERSION = "greeter", "2.1.0", "2.2.0", "2.3.0"
# greeter 2.4.0's unit has StateDirectory=/LogsDirectory= and its server writes there first.
DIRECTORIES_VERSION = "2.4.0"
# The port greeter 2.2.0 and 2.3.0 fix in their own unit (Environment=PORT=9191), as most
# packaged services do, instead of listening on the image's GF_APP_PORT.
FIXED_PORT = 9191
HEALTH = "/ping"
BUCKET = "packages"
REGION = "us-east-1"
SECRET_VALUE = 'pa$$ "word" `x` \\ end'
PARAMETER_VALUE = "token-line-1\nline-2"


def aws(endpoint: str, service: str):
    import boto3

    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=emulator.LOCAL_ACCESS_KEY,
        aws_secret_access_key=emulator.LOCAL_ACCESS_KEY,
    )


@pytest.fixture
def cache_env(bake_cache):
    """The environment of every bake below: the session's bake cache (tests/shared_bakes.py)."""
    return bake_cache.env


@pytest.fixture
def local_api(bake_cache):
    """The session's shared local EC2 API, which also serves S3, Secrets Manager and SSM."""
    return bake_cache.url


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> Path:
    """greeter 2.1.0 (with its sidecar), 2.2.0 and 2.3.0, as a release pipeline would publish
    them; 2.2.0 and 2.3.0 listen on the port their unit fixes (FIXED_PORT)."""
    require("dpkg-deb")
    directory = tmp_path_factory.mktemp("packages")
    write_sidecar(build_deb(directory, SERVICE, VERSION))
    build_deb(directory, SERVICE, S3_VERSION, port=FIXED_PORT)
    write_sidecar(build_deb(directory, SERVICE, WRONG_PORT_VERSION, port=FIXED_PORT))
    write_sidecar(build_deb(directory, SERVICE, DIRECTORIES_VERSION, directories=True))
    return directory


def bake_args(endpoint: str, version: str, package: str, *extra: str) -> list[str]:
    return [
        "--version",
        version,
        "--service",
        SERVICE,
        "--local",
        "--endpoint",
        endpoint,
        "--package",
        package,
        "--health-check-path",
        HEALTH,
        "--verbose",  # the image tests' own lines are asserted
        *extra,
    ]


@pytest.fixture
def baked(bake_cache, local_api, packages):
    """The session's bake of greeter 2.1.0 from a local path, its build host kept:
    (AMI id, root, stderr)."""
    template = str(packages / "greeter_{version}_all.deb")
    args = bake_args(local_api, VERSION, template)
    assert args[:5] == ["--version", VERSION, "--service", SERVICE, "--local"]
    args = args[5:]  # bake_cache.application() gives the first five itself
    bake = bake_cache.application(VERSION, *args, service=SERVICE, keep_root=True)
    return bake.ami, bake.root, bake.stderr


@pytest.fixture
def no_packer(cache_env, tmp_path):
    """PATH with a `packer` that only records that it was started: a refusal must come first."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "packer-started"
    fake = bin_dir / "packer"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    fake.chmod(0o755)
    env = dict(cache_env, PATH=f"{bin_dir}:{cache_env['PATH']}")
    return env, marker


def in_host(root: Path, *argv: str, env: dict[str, str] | None = None, check: bool = True):
    command = ["env", *(f"{k}={v}" for k, v in (env or {}).items()), *argv]
    result = build_host.run_in_host(root, command, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"{argv}: {result.stderr}"
    return result


# --- the baked package ----------------------------------------------------------------------


def test_image_carries_the_package_digest_in_tags_and_description(baked, local_api, packages):
    ami, _, _ = baked
    digest = sha256_of(packages / f"greeter_{VERSION}_all.deb")
    image = describe_image(local_api, ami)
    tags = image_contract.tag_map(image)
    assert tags["AppPackage"] == f"{SERVICE}_{VERSION}" and tags["AppSha256"] == digest
    assert tags["Service"] == SERVICE and tags["Version"] == VERSION
    # moto's ModifyImageAttribute, which Packer sets the description with, ignores it: the
    # description the bake hands Packer is checked here, EC2 keeping it only on AWS.
    _, _, stderr = baked
    prefix = "bake: description: "
    descriptions = [line[len(prefix) :] for line in stderr.splitlines() if line.startswith(prefix)]
    # The last one is the application image's (a foundation bake may come first).
    assert f"package sha256 {digest}" in descriptions[-1], descriptions
    assert len(descriptions[-1]) <= image_contract.DESCRIPTION_MAX


def test_package_is_installed_enabled_and_answers_in_the_build_host(baked):
    _, root, stderr = baked
    for line in (
        f"app package {SERVICE} installed",
        f"app package version {VERSION}",
        f"app unit {SERVICE}.service enabled",
        "boot environment unit enabled",
        f"app user {SERVICE} is not root",
        f"app answers {HEALTH} on port 8080",
    ):
        assert f"image-test ok:   {line}" in stderr, line
    assert in_host(root, "dpkg-query", "-W", "-f=${Version}", SERVICE).stdout == VERSION
    assert not (root / "opt/golden-app").exists() and not (root / "opt/sample").exists(), (
        "only the configured package is baked"
    )
    record = json.loads((root / "etc/golden-fleet/application.json").read_text())
    assert record["user"] == SERVICE and record["unit"] == f"{SERVICE}.service"
    drop_in = (root / f"etc/systemd/system/{SERVICE}.service.d/golden-fleet.conf").read_text()
    assert "Requires=golden-fleet-environment.service" in drop_in
    assert "After=golden-fleet-environment.service" in drop_in
    assert f"EnvironmentFile=/run/{SERVICE}/environment" in drop_in
    assert "RuntimeDirectoryPreserve=yes" in drop_in, "a restart finds its environment"


# --- the boot environment, against the local API --------------------------------------------


def boot_unit_command(root: Path) -> list[str]:
    """The boot-environment unit's ExecStart, as baked."""
    unit = (root / "etc/systemd/system/golden-fleet-environment.service").read_text()
    (line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=").split()


@pytest.fixture
def boot_config(baked):
    """Writes the launch template's boot-config.json into the host; removes it and the
    environment file afterwards, so the kept host is as baked."""
    _, root, _ = baked
    path = root / "etc/golden-fleet/boot-config.json"

    def write(secrets: dict) -> None:
        config = {
            "service": SERVICE,
            "region": REGION,
            "environment": {"GF_APP_PORT": "8080", "GF_COLOR": "blue", "GREETING_STYLE": "warm"},
            "secrets": secrets,
        }
        path.write_text(json.dumps(config))
        path.chmod(0o644)

    yield write
    path.unlink(missing_ok=True)
    shutil.rmtree(root / "run" / SERVICE, ignore_errors=True)


def test_boot_unit_writes_secrets_for_the_service_user_only(baked, local_api, boot_config):
    _, root, _ = baked
    secret = aws(local_api, "secretsmanager").create_secret(
        Name=f"{SERVICE}/db-{time.monotonic_ns()}", SecretString=SECRET_VALUE
    )["ARN"]
    parameter = f"/{SERVICE}/token-{time.monotonic_ns()}"
    aws(local_api, "ssm").put_parameter(Name=parameter, Value=PARAMETER_VALUE, Type="SecureString")
    boot_config({"DB_PASSWORD": {"secretsManager": secret}, "TOKEN": {"ssmParameter": parameter}})
    env = {
        "GF_AWS_ENDPOINT_URL": local_api,
        "AWS_ACCESS_KEY_ID": emulator.LOCAL_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": emulator.LOCAL_ACCESS_KEY,
    }
    result = in_host(root, *boot_unit_command(root), env=env)
    output = result.stdout + result.stderr
    assert "pa$$" not in output and "token-line" not in output, "values are never logged"
    target = root / "run" / SERVICE / "environment"
    info = target.stat()
    uid = int(in_host(root, "id", "-u", SERVICE).stdout)
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == uid
    assert target.read_text() == (
        'DB_PASSWORD="pa\\$\\$ \\"word\\" \\`x\\` \\\\ end"\n'
        'GF_APP_PORT="8080"\n'
        'GF_COLOR="blue"\n'
        'GREETING_STYLE="warm"\n'
        'TOKEN="token-line-1\nline-2"\n'
    )


def test_a_missing_secret_fails_the_boot_unit_naming_the_key(baked, local_api, boot_config):
    _, root, _ = baked
    missing = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{SERVICE}/gone-AbCdEf"
    boot_config({"DB_PASSWORD": {"secretsManager": missing}})
    env = {
        "GF_AWS_ENDPOINT_URL": local_api,
        "AWS_ACCESS_KEY_ID": emulator.LOCAL_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": emulator.LOCAL_ACCESS_KEY,
    }
    result = in_host(root, *boot_unit_command(root), env=env, check=False)
    assert result.returncode != 0
    assert "secret key DB_PASSWORD" in result.stderr and "ResourceNotFound" in result.stderr
    assert not (root / "run" / SERVICE / "environment").exists(), "no environment, no app"


# --- refused before Packer starts -----------------------------------------------------------


def refused_fast(args: list[str], env: dict[str, str], marker: Path, code: int, pattern: str):
    started = time.monotonic()
    result = run_bake(args, env=env, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == code, result.stderr
    assert re.search(pattern, result.stderr), result.stderr
    assert result.stdout == "" and not marker.exists(), "Packer must not have started"
    assert elapsed < 30, f"refusal took {elapsed:.1f}s"
    return result


def test_wrong_digest_version_or_name_is_refused_before_packer(
    local_api, packages, tmp_path, no_packer
):
    env, marker = no_packer
    good = packages / f"greeter_{VERSION}_all.deb"
    tampered = tmp_path / f"greeter_{VERSION}_all.deb"
    tampered.write_bytes(good.read_bytes() + b"\0")
    write_sidecar(tampered, sha256_of(good))
    refused_fast(
        bake_args(local_api, VERSION, str(tampered)),
        env,
        marker,
        errors.EXIT_CONFLICT,
        rf"sha256 {sha256_of(tampered)} is not the expected {sha256_of(good)}",
    )
    newer = build_deb(tmp_path, SERVICE, "2.1.1")
    refused_fast(
        bake_args(local_api, VERSION, str(newer), "--package-sha256", sha256_of(newer)),
        env,
        marker,
        errors.EXIT_CONFLICT,
        r"package version 2\.1\.1 \(upstream 2\.1\.1\) is not the image version 2\.1\.0",
    )
    other = build_deb(tmp_path, "other", VERSION)
    refused_fast(
        bake_args(local_api, VERSION, str(other), "--package-sha256", sha256_of(other)),
        env,
        marker,
        errors.EXIT_CONFLICT,
        r"package name 'other' is not the service 'greeter'",
    )


def test_s3_object_without_checksum_is_refused_saying_how_to_upload(local_api, packages, no_packer):
    env, marker = no_packer
    s3 = aws(local_api, "s3")
    s3.create_bucket(Bucket="bare-packages")
    deb = packages / f"greeter_{VERSION}_all.deb"
    s3.put_object(Bucket="bare-packages", Key=deb.name, Body=deb.read_bytes())
    uri = "s3://bare-packages/greeter_{version}_all.deb"
    refused_fast(
        bake_args(local_api, VERSION, uri, "--package-sha256-from", "s3"),
        env,
        marker,
        errors.EXIT_PREREQUISITE,
        r"has no ChecksumSHA256: .*--checksum-algorithm SHA256",
    )


def test_rebuilt_package_under_a_baked_version_is_refused(baked, local_api, tmp_path, no_packer):
    """Same version, another package digest: one version, one content; the same digest reuses."""
    ami, _, _ = baked
    env, marker = no_packer
    rebuilt = build_deb(tmp_path, SERVICE, VERSION, flavour="rebuilt")
    result = refused_fast(
        bake_args(local_api, VERSION, str(rebuilt), "--package-sha256", sha256_of(rebuilt)),
        env,
        marker,
        errors.EXIT_CONFLICT,
        r"one version, one content",
    )
    assert ami in result.stderr


def test_same_package_again_is_reused(baked, local_api, packages, no_packer):
    ami, _, _ = baked
    env, marker = no_packer
    result = run_bake(
        bake_args(local_api, VERSION, str(packages / "greeter_{version}_all.deb")), env=env
    )
    assert result.returncode == 0 and result.stdout.strip() == ami, result.stderr
    assert "reusing" in result.stderr and not marker.exists()


# --- from s3:// -----------------------------------------------------------------------------


def test_s3_package_with_its_checksum_is_baked_and_answers(baked, cache_env, local_api, packages):
    """After the local bake, so its foundation is reused: one application bake more. Its unit
    fixes its own port (FIXED_PORT, not GF_APP_PORT): baked with that port as service.port
    (--port), the image tests ask it there, as the load balancer will, and it bakes."""
    deb = packages / f"greeter_{S3_VERSION}_all.deb"
    s3 = aws(local_api, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(
        Bucket=BUCKET, Key=f"greeter/{deb.name}", Body=deb.read_bytes(), ChecksumAlgorithm="SHA256"
    )
    uri = f"s3://{BUCKET}/greeter/greeter_{{version}}_all.deb"
    result = run_bake(
        bake_args(
            local_api, S3_VERSION, uri, "--package-sha256-from", "s3", "--port", str(FIXED_PORT)
        ),
        env=cache_env,
    )
    assert result.returncode == 0, f"bake failed ({result.returncode}):\n{result.stderr[-6000:]}"
    assert f"image-test ok:   app answers {HEALTH} on port {FIXED_PORT}" in result.stderr
    assert f"image-test ok:   app package version {S3_VERSION}" in result.stderr
    tags = image_contract.tag_map(describe_image(local_api, result.stdout.strip()))
    assert tags["AppSha256"] == sha256_of(deb) and tags["AppPackage"] == f"greeter_{S3_VERSION}"


# --- the image tests ask where the load balancer will -----------------------------------------


def test_a_unit_on_another_port_than_service_port_is_refused_naming_both(
    baked, cache_env, local_api, packages
):
    """greeter 2.3.0's unit fixes port FIXED_PORT; the bake asks service.port (8080 here, no
    --port): the image test fails with one line naming the port asked and the one it listens
    on, the bake fails and no image of the version is kept."""
    package = str(packages / "greeter_{version}_all.deb")
    result = run_bake(bake_args(local_api, WRONG_PORT_VERSION, package), env=cache_env)
    assert result.returncode == errors.EXIT_BUILD, result.stderr[-6000:]
    assert result.stdout == ""
    (line,) = [
        line for line in result.stderr.splitlines() if "image-test FAIL: app answers" in line
    ]
    assert line.endswith(
        f"image-test FAIL: app answers {HEALTH} on port 8080: asked http://127.0.0.1:8080{HEALTH}"
        f" for 20 s: the service listens on port {FIXED_PORT}, not 8080 (0.0.0.0:{FIXED_PORT}); "
        "make it listen on $GF_APP_PORT or set service.port (bake --port) to its port"
    ), line
    assert "image-tests: 1 check(s) failed" in result.stderr
    ec2 = aws(local_api, "ec2")
    names = [i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    assert not [n for n in names if n.startswith(f"{SERVICE}-{WRONG_PORT_VERSION}-")], names


def test_a_unit_with_state_and_logs_directories_answers_and_leaves_no_trace(
    bake_cache, local_api, packages
):
    """greeter 2.4.0's unit has StateDirectory=greeter greeter/sessions (0750) and
    LogsDirectory=greeter, its package a tmpfiles.d snippet for /var/spool/greeter; its server
    writes into each directory systemd names in $STATE_DIRECTORY/$LOGS_DIRECTORY and into the
    spool, and exits otherwise. The image test makes them as systemd would, so it answers and
    bakes; it makes them in a private view, so the baked tree has none of them (on an instance
    systemd-tmpfiles makes the spool at boot, systemd the others at the unit's start)."""
    template = str(packages / "greeter_{version}_all.deb")
    args = bake_args(local_api, DIRECTORIES_VERSION, template)[5:]
    bake = bake_cache.application(DIRECTORIES_VERSION, *args, service=SERVICE, keep_root=True)
    assert f"image-test ok:   app answers {HEALTH} on port 8080" in bake.stderr
    root = bake.root
    unit = (root / f"lib/systemd/system/{SERVICE}.service").read_text()
    assert f"StateDirectory={SERVICE} {SERVICE}/sessions" in unit, "the unit as packaged"
    assert (root / f"usr/lib/tmpfiles.d/{SERVICE}.conf").exists(), "the snippet as packaged"
    for left in (f"var/lib/{SERVICE}", f"var/log/{SERVICE}", f"var/spool/{SERVICE}"):
        assert not (root / left).exists(), f"the image test left /{left} in the image"
    print(f"bake of greeter {DIRECTORIES_VERSION}: {bake.seconds:.0f} s")
