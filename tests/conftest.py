"""Shared fixtures: the real stack files' config, and a clean Pulumi runtime around each test."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from harness import load_stack_config, stack_file  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _moto_without_its_public_images():
    """moto's EC2 loads its list of public images into every region's backend at every start of
    a mock (about 0.3 s each, some 200 starts a run); no test uses them: each registers the
    images it needs. A server started with MOTO_AMIS_PATH (the local bake's) still loads its
    seed file (moto/ec2/models/amis.py reads MOTO_AMIS_PATH first)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        yield


@pytest.fixture(autouse=True)
def _program_runs_shared_unless_patched(request):
    """Program runs are shared within the session (harness.memo), except in a test that uses
    ``monkeypatch``: it may patch what the program runs, which a run's key cannot see."""
    import harness

    harness.memo.enabled = "monkeypatch" not in request.fixturenames
    yield
    harness.memo.enabled = True


@pytest.fixture(autouse=True)
def _clean_pulumi_runtime():
    """Each test starts and ends with no mocks, config or root stack left from another."""
    import pulumi
    from pulumi.runtime import settings

    settings.reset_options()
    pulumi.runtime.set_all_config({})
    yield
    settings.reset_options()
    pulumi.runtime.set_all_config({})


@pytest.fixture
def no_aws_credentials(monkeypatch):
    """No AWS credentials, config or instance metadata reach boto3 in this test."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws(no_aws_credentials):
    """A local AWS API (moto, in process) and nothing of the machine's AWS configuration."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture(scope="module")
def aws_endpoint():
    """A local AWS API (moto_server) on a free loopback port, one per test module, stopped
    after it; each test resets its state (local_aws.use_test_credentials)."""
    from local_aws import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def images(aws_endpoint, monkeypatch):
    """Images registered as the layered bake registers them, in the module's local AWS API with
    image deprecation and DisableImage modelled (tests/layered_images.py); boto3 talks to it
    with test credentials only."""
    from layered_images import Images, use_local_aws

    use_local_aws(monkeypatch, aws_endpoint)
    return Images()


@pytest.fixture(scope="session")
def _stack_configs() -> dict[str, dict]:
    return {stack: load_stack_config(stack_file(stack)) for stack in ("staging", "prod")}


@pytest.fixture
def staging_config(_stack_configs) -> dict:
    """A private copy of Pulumi.staging.yaml's config, free to edit."""
    return copy.deepcopy(_stack_configs["staging"])


@pytest.fixture
def prod_config(_stack_configs) -> dict:
    """A private copy of Pulumi.prod.yaml's config, free to edit."""
    return copy.deepcopy(_stack_configs["prod"])


@pytest.fixture
def world(monkeypatch, request):
    """One blue/green stack in a local AWS API (moto), instance refreshes stubbed
    (tests/live_fixtures.py); every stubbed answer must have been asked for. Its listeners are
    listed with the attachment listeners after the weighted one, unless a test parametrizes
    ``world`` (indirectly) with another of ``live_fixtures.LISTENER_ORDERS``."""
    from live_fixtures import LISTENER_ORDERS, World
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        made = World(getattr(request, "param", LISTENER_ORDERS[0]))
        yield made
        made.stubber.assert_no_pending_responses()


@pytest.fixture(scope="session")
def bake_cache(tmp_path_factory):
    """The session's bake cache (tests/shared_bakes.py): one foundation and each application
    bake made once, on first use; removed with its local API at the end of the session."""
    from shared_bakes import BakeCache, claim_for_this_worker

    claim_for_this_worker(tmp_path_factory.getbasetemp())
    cache = BakeCache(tmp_path_factory.mktemp("bakes"))
    try:
        yield cache
    finally:
        cache.close()
