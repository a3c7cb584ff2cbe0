"""The image's boot-environment reader (packer/files/boot-environment.py): configuration checks,
systemd EnvironmentFile quoting, and the file it writes, without a network. Its secrets are
read against the local AWS API in tests/test_app_package_e2e.py, inside the build host."""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import stat

import pytest
from bake_fixtures import PACKER_DIR

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:greeter/db-AbCdEf"


@pytest.fixture(scope="module")
def reader():
    spec = importlib.util.spec_from_file_location(
        "boot_environment", PACKER_DIR / "files" / "boot-environment.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config(**overrides) -> str:
    base = {
        "service": "greeter",
        "region": "eu-west-1",
        "environment": {"GF_APP_PORT": "8080", "FEATURE_X": "on"},
        "secrets": {"DB_PASSWORD": {"secretsManager": ARN}, "TOKEN": {"ssmParameter": "/g/t"}},
    }
    base.update(overrides)
    return json.dumps(base)


def test_values_are_quoted_as_systemd_reads_them(reader):
    """Inside double quotes systemd takes a backslash before " \\ ` $ as the character itself
    and keeps newlines (systemd.exec(5), EnvironmentFile=); nothing else is special there."""
    assert reader.quote("plain") == '"plain"'
    assert reader.quote('a "b" $HOME `x` \\n') == '"a \\"b\\" \\$HOME \\`x\\` \\\\n"'
    assert reader.quote("two\nlines; #not a comment") == '"two\nlines; #not a comment"'
    with pytest.raises(ValueError, match="NUL"):
        reader.quote("a\0b")
    assert reader.render({"B": "2", "A": "x y"}) == 'A="x y"\nB="2"\n'


def test_configuration_is_read_with_platform_keys_and_references(reader):
    region, environment, secrets = reader.read_config(config(), "greeter")
    assert region == "eu-west-1" and environment["GF_APP_PORT"] == "8080"
    assert secrets == {"DB_PASSWORD": {"secretsManager": ARN}, "TOKEN": {"ssmParameter": "/g/t"}}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"service": "other"}, r"service is not 'greeter'"),
        ({"region": "moon"}, r"region"),
        ({"environment": {"1BAD": "x"}}, r"environment key '1BAD'"),
        ({"environment": {"GF_SECRET": "x"}}, r"GF_SECRET: GF_ and AWS_ are reserved"),
        ({"environment": {"AWS_REGION": "x"}}, r"AWS_REGION: GF_ and AWS_ are reserved"),
        ({"environment": {"PORT": 8080}}, r"PORT: the value must be a string"),
        ({"environment": {"TOKEN": "x"}}, r"secret key TOKEN: also an environment key"),
        ({"secrets": {"X": {"secretsManager": "arn:aws:s3:::bucket"}}}, r"secret key X"),
        ({"secrets": {"X": {"vault": "x"}}}, r"secret key X"),
        ({"secrets": {"GF_X": {"ssmParameter": "/x"}}}, r"secret key 'GF_X'"),
    ],
)
def test_bad_configuration_is_refused_naming_the_key(reader, overrides, message):
    with pytest.raises(reader.Refused, match=message):
        reader.read_config(config(**overrides), "greeter")


def test_environment_file_is_replaced_atomically_0600_for_the_user(reader, tmp_path):
    user = pwd.getpwuid(os.getuid()).pw_name
    target = reader.write_environment("greeter", user, 'A="1"\n', str(tmp_path))
    mode = os.stat(target)
    assert stat.S_IMODE(mode.st_mode) == 0o600 and mode.st_uid == os.getuid()
    assert stat.S_IMODE(os.stat(tmp_path / "greeter").st_mode) == 0o750
    reader.write_environment("greeter", user, 'A="2"\n', str(tmp_path))
    assert (tmp_path / "greeter" / "environment").read_text() == 'A="2"\n'
    assert os.listdir(tmp_path / "greeter") == ["environment"], "no temporary file is left"


def test_without_secrets_no_client_is_made_and_a_missing_config_fails(reader, tmp_path, capsys):
    user = pwd.getpwuid(os.getuid()).pw_name
    path = tmp_path / "boot-config.json"
    path.write_text(config(secrets={}))
    argv = ["--service", "greeter", "--user", user, "--config", str(path)]
    assert reader.main([*argv, "--run-dir", str(tmp_path)]) == 0
    written = (tmp_path / "greeter" / "environment").read_text()
    assert written == 'FEATURE_X="on"\nGF_APP_PORT="8080"\n'
    path.unlink()
    assert reader.main([*argv, "--run-dir", str(tmp_path)]) == 1
    assert "boot-config.json: cannot read" in capsys.readouterr().err


class _Clock:
    """Time moves only when the reader sleeps."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self):
        return self.now


def _answers(*outcomes):
    """A clients() whose calls answer ``outcomes`` in order: an error code or a value."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    calls = []

    class Client:
        def get_secret_value(self, SecretId):
            calls.append(SecretId)
            outcome = outcomes[min(len(calls), len(outcomes)) - 1]
            if outcome == "no-network":
                raise EndpointConnectionError(endpoint_url="https://secretsmanager")
            if outcome.startswith("code:"):
                raise ClientError({"Error": {"Code": outcome[5:]}}, "GetSecretValue")
            return {"SecretString": outcome}

    return (lambda name: Client()), calls


def test_a_denied_read_is_retried_until_iam_has_propagated(reader, capsys):
    """AccessDenied right after the role was given the secret (IAM is eventually consistent),
    then no network, then the value: read, after backoff 1 s, 2 s on the reader's own clock."""
    clock = _Clock()
    clients, calls = _answers("code:AccessDeniedException", "no-network", "s3cret")
    value = reader.read_secret(clients, "DB_PASSWORD", {"secretsManager": ARN},
                               sleep=clock.sleep, monotonic=clock.monotonic)  # fmt: skip
    assert value == "s3cret" and len(calls) == 3 and clock.sleeps == [1.0, 2.0]
    err = capsys.readouterr().err
    assert "DB_PASSWORD: AccessDeniedException; trying again in 1 s" in err
    assert "s3cret" not in err


def test_a_denial_that_lasts_is_refused_at_the_deadline_naming_the_key(reader):
    clock = _Clock()
    clients, calls = _answers("code:AccessDeniedException")
    with pytest.raises(
        reader.Refused,
        match=r"secret key DB_PASSWORD: .*AccessDeniedException; "
        r"still after \d+ attempts in 180 s",
    ):
        reader.read_secret(clients, "DB_PASSWORD", {"secretsManager": ARN},
                           sleep=clock.sleep, monotonic=clock.monotonic)  # fmt: skip
    assert sum(clock.sleeps) == pytest.approx(180.0) and max(clock.sleeps) == 20.0
    assert clock.sleeps[:5] == [1.0, 2.0, 4.0, 8.0, 16.0] and len(calls) == len(clock.sleeps) + 1


@pytest.mark.parametrize("code", ["ResourceNotFoundException", "ValidationException"])
def test_a_missing_or_malformed_secret_is_refused_at_once(reader, code):
    """The stack's mistake does not get better by waiting: no retry, no sleep."""
    clock = _Clock()
    clients, calls = _answers(f"code:{code}")
    with pytest.raises(reader.Refused, match=rf"secret key DB_PASSWORD: .*\({code}\)$"):
        reader.read_secret(clients, "DB_PASSWORD", {"secretsManager": ARN},
                           sleep=clock.sleep, monotonic=clock.monotonic)  # fmt: skip
    assert len(calls) == 1 and clock.sleeps == []


def test_the_unit_waits_longer_than_the_reader_retries(reader):
    """systemd would kill a start that outlasts TimeoutStartSec: the unit gives the reader its
    retry window plus one last attempt (5 tries of at most 5 + 10 s)."""
    script = (PACKER_DIR / "scripts" / "50-app.sh").read_text()
    (timeout,) = [line for line in script.splitlines() if line.startswith("TimeoutStartSec=")]
    assert int(timeout.split("=")[1]) >= reader.RETRY_FOR_S + 5 * (5 + 10)
