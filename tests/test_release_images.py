"""``deploy`` in a promote stack refuses a version that was never baked.

The lookup runs against a local AWS API (moto's server on 127.0.0.1) through the ordinary
credential chain and ``AWS_ENDPOINT_URL``, exactly as the command does against AWS.
"""

from __future__ import annotations

import os
import shutil
import socket
import urllib.request

import pytest
from botocore.exceptions import ClientError
from harness import load_stack_config, stack_file
from moto.server import ThreadedMotoServer

from components.config import parse_stack_config
from release.cli import main
from release.images import check_baked, newest_image
from release.transitions import BakeStatus

BAKER = "111111111111"  # prod's ownerAccountId: staging's account


@pytest.fixture(scope="module")
def aws_endpoint():
    """A local AWS API on a free loopback port, stopped after the module."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(aws_endpoint, monkeypatch):
    """Credentials for the emulator, its state reset; ``register(name, account)`` bakes."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", BAKER)
    reset = urllib.request.Request(f"{aws_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=5).close()

    import boto3

    def register(name: str, account: str = BAKER) -> str:
        monkeypatch.setenv("MOTO_ACCOUNT_ID", account)
        try:
            ec2 = boto3.client("ec2", region_name="eu-west-1")
            return ec2.register_image(
                Name=name, RootDeviceName="/dev/xvda", VirtualizationType="hvm"
            )["ImageId"]
        finally:
            monkeypatch.setenv("MOTO_ACCOUNT_ID", BAKER)

    return register


@pytest.fixture
def prod_file(tmp_path):
    target = tmp_path / "Pulumi.prod.yaml"
    shutil.copyfile(stack_file("prod"), target)
    return target


def deploy(capsys, path, version: str, *extra: str) -> tuple[int, str, str]:
    code = main(["deploy", "prod", version, "--file", str(path), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_deploys_a_version_that_was_baked(capsys, aws, prod_file):
    image_id = aws("checkout-1.5.0-20261101T120000Z")
    code, out, err = deploy(capsys, prod_file, "1.5.0")
    assert code == 0, err
    assert f"image found: checkout-1.5.0-20261101T120000Z ({image_id})" in out
    config = parse_stack_config(load_stack_config(prod_file))
    assert config.fleets.green.version == "1.5.0"


@pytest.mark.parametrize(
    ("name", "account"),
    [
        (None, BAKER),  # nothing baked at all
        ("checkout-1.5.0-rc.1-20261101T120000Z", BAKER),  # a pre-release is another version
        ("checkout-1.5.0-manual", BAKER),  # not <service>-<version>-<timestamp>
        ("checkout-1.5.0-20261101T120000Z", "333333333333"),  # an account prod does not trust
    ],
)
def test_refuses_a_version_never_baked(capsys, aws, prod_file, name, account):
    if name:
        aws(name, account)
    before = prod_file.read_bytes()
    code, _, err = deploy(capsys, prod_file, "1.5.0")
    assert code == 1, "deployed an unbaked version"
    assert "1.5.0 was never baked: no image checkout-1.5.0-* owned by 111111111111" in err
    assert prod_file.read_bytes() == before


def test_without_credentials_it_warns_and_goes_ahead(capsys, prod_file, no_aws_credentials):
    """Unknown is not missing: `pulumi preview` resolves the image by name and would fail."""
    code, out, err = deploy(capsys, prod_file, "1.5.0")
    assert code == 0, err
    assert "warning: could not check whether 1.5.0 was baked (no AWS credentials found)" in out

    before = prod_file.read_bytes()
    code, _, err = deploy(capsys, prod_file, "1.6.0", "--require-baked")
    assert code == 1 and "--require-baked" in err
    assert prod_file.read_bytes() == before


def test_a_denied_lookup_is_unknown_not_missing():
    class Denied:
        def describe_images(self, **_):
            raise ClientError({"Error": {"Code": "UnauthorizedOperation"}}, "DescribeImages")

    config = parse_stack_config(load_stack_config(stack_file("prod")))
    check = check_baked(config, "1.5.0", ec2=Denied())
    assert check.status is BakeStatus.UNKNOWN and "UnauthorizedOperation" in check.detail


def test_the_newest_exact_match_wins():
    images = [
        {"Name": "checkout-1.5.0-20261101T120000Z"},
        {"Name": "checkout-1.5.0-20261102T090000Z"},
        {"Name": "checkout-1.5.0-rc.1-20261201T000000Z"},
    ]
    assert newest_image(images, "checkout", "1.5.0") == images[1]
    assert newest_image(images, "checkout", "1.6.0") is None
