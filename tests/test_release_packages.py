"""`deploy` checks that the version's package (image.app) exists and has a digest before it
writes: against a local AWS API (moto) on loopback for s3://, the project for a path, and a
stand-in opener for https://."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request

import pytest
from harness import load_stack_config, stack_file
from local_aws import use_test_credentials

from components.config import parse_stack_config
from release import packages
from release.cli import main
from release.transitions import BakeStatus

BUCKET = "golden-artifacts"
TEMPLATE = "s3://golden-artifacts/checkout/checkout_{version}_amd64.deb"
KEY = "checkout/checkout_1.6.0_amd64.deb"
PACKAGE = b"!<arch>\nnot really a package, but bytes with a digest\n"


@pytest.fixture
def aws(aws_endpoint, monkeypatch):
    """Credentials for the emulator, its state reset, and the artifact bucket."""
    use_test_credentials(monkeypatch, aws_endpoint)
    import boto3

    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return s3


def _stack(tmp_path, package: str = TEMPLATE, sha256: str = "sidecar"):
    """A project with the staging stack file naming ``package``."""
    (tmp_path / "Pulumi.yaml").write_text("name: golden-fleet\nruntime: python\n")
    path = tmp_path / "Pulumi.staging.yaml"
    text = stack_file("staging").read_text()
    anchor = "    varFile: packer/staging.pkrvars.hcl\n"
    assert anchor in text
    path.write_text(
        text.replace(
            anchor, f'{anchor}    app:\n      package: "{package}"\n      sha256: {sha256}\n'
        )
    )
    return path


def _deploy(capsys, path, *extra):
    code = main(["deploy", "staging", "1.6.0", "--file", str(path), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _sidecar(data: bytes) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()}  checkout_1.6.0_amd64.deb\n".encode()


def test_deploys_when_the_package_and_its_sidecar_exist(capsys, aws, tmp_path):
    aws.put_object(Bucket=BUCKET, Key=KEY, Body=PACKAGE)
    aws.put_object(Bucket=BUCKET, Key=f"{KEY}.sha256", Body=_sidecar(PACKAGE))
    path = _stack(tmp_path)
    code, out, err = _deploy(capsys, path)
    assert code == 0, err
    assert f"package found: s3://{BUCKET}/{KEY} and s3://{BUCKET}/{KEY}.sha256" in out
    assert parse_stack_config(load_stack_config(path)).fleets.green.version == "1.6.0"


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ((), f"no object s3://{BUCKET}/{KEY}"),
        ((KEY,), f"has no digest: no object s3://{BUCKET}/{KEY}.sha256"),
    ],
)
def test_refuses_a_missing_package_or_digest_and_writes_nothing(
    capsys, aws, tmp_path, objects, message
):
    for key in objects:
        aws.put_object(Bucket=BUCKET, Key=key, Body=PACKAGE)
    path = _stack(tmp_path)
    before = path.read_bytes()
    code, _, err = _deploy(capsys, path)
    assert code == 1 and message in err, err
    assert "1.6.0's package cannot be baked" in err
    assert path.read_bytes() == before


def test_s3_checksum_is_the_digest_when_configured(capsys, aws, tmp_path):
    path = _stack(tmp_path, sha256="s3")
    aws.put_object(Bucket=BUCKET, Key=KEY, Body=PACKAGE)  # no checksum asked for
    code, _, err = _deploy(capsys, path)
    assert code == 1 and "has no SHA-256 checksum" in err, err
    aws.put_object(Bucket=BUCKET, Key=KEY, Body=PACKAGE, ChecksumAlgorithm="SHA256")
    code, out, err = _deploy(capsys, path)
    assert code == 0, err
    assert "package found: " in out and "ChecksumSHA256" in out


def test_without_credentials_deploy_warns_and_require_baked_refuses(
    capsys, tmp_path, no_aws_credentials
):
    path = _stack(tmp_path)
    before = path.read_bytes()
    code, _, err = _deploy(capsys, path, "--require-baked")
    assert code == 1 and "could not check 1.6.0's package (no AWS credentials found)" in err
    assert path.read_bytes() == before
    code, out, err = _deploy(capsys, path)
    assert code == 0, err
    assert "warning: could not check 1.6.0's package (no AWS credentials found)" in out


def test_a_project_path_needs_the_file_and_its_sidecar(
    capsys, tmp_path, monkeypatch, no_aws_credentials
):
    path = _stack(tmp_path, package="dist/checkout_{version}_amd64.deb")
    monkeypatch.chdir(tmp_path)
    code, _, err = _deploy(capsys, path)
    assert code == 1 and "no file dist/checkout_1.6.0_amd64.deb in the project" in err, err
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "checkout_1.6.0_amd64.deb").write_bytes(PACKAGE)
    code, _, err = _deploy(capsys, path)
    assert code == 1 and "no dist/checkout_1.6.0_amd64.deb.sha256 beside it" in err, err
    (tmp_path / "dist" / "checkout_1.6.0_amd64.deb.sha256").write_bytes(_sidecar(PACKAGE))
    code, out, err = _deploy(capsys, path)
    assert code == 0, err
    assert "package found: dist/checkout_1.6.0_amd64.deb and" in out


def test_https_package_and_sidecar_are_asked_with_head(staging_config, tmp_path):
    staging_config["golden-fleet:image"]["app"] = {
        "package": "https://artifacts.example.com/checkout_{version}_amd64.deb"
    }
    cfg = parse_stack_config(staging_config)
    asked: list[tuple[str, str]] = []

    def answering(missing: set[str], unreachable: bool = False):
        def urlopen(request, timeout):
            asked.append((request.get_method(), request.full_url))
            if unreachable:
                raise urllib.error.URLError("no route to host")
            if request.full_url in missing:
                raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)

            class Response:
                def close(self):
                    pass

            return Response()

        return urlopen

    url = "https://artifacts.example.com/checkout_1.6.0_amd64.deb"
    found = packages.check_package(cfg, "1.6.0", tmp_path, urlopen=answering(set()))
    assert found.status is BakeStatus.FOUND
    assert asked == [("HEAD", url), ("HEAD", f"{url}.sha256")]
    missing = packages.check_package(cfg, "1.6.0", tmp_path, urlopen=answering({f"{url}.sha256"}))
    assert missing.status is BakeStatus.MISSING and "digest (sidecar)" in missing.detail
    unknown = packages.check_package(
        cfg, "1.6.0", tmp_path, urlopen=answering(set(), unreachable=True)
    )
    assert unknown.status is BakeStatus.UNKNOWN


def test_stacks_without_a_package_are_not_checked(staging_config, prod_config, tmp_path):
    for config in (staging_config, prod_config):
        assert packages.check_package(parse_stack_config(config), "1.6.0", tmp_path) is None
