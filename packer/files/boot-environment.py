#!/usr/bin/python3
"""golden-fleet-environment.service: the service's environment, written at boot.

Reads /etc/golden-fleet/boot-config.json (written by the launch template's user data; it holds
only references), reads each secret with the instance role (Secrets Manager GetSecretValue,
SSM GetParameter with decryption) and writes /run/<service>/environment atomically, mode 0600,
owned by the service's user, in systemd's EnvironmentFile syntax. Any problem exits non-zero
naming the key, never a value: the app unit Requires= this one, so it does not start.

GF_AWS_ENDPOINT_URL points the clients at another endpoint (tests on loopback only).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import sys
import tempfile
import time

CONFIG = "/etc/golden-fleet/boot-config.json"
PLATFORM_KEYS = frozenset({"GF_APP_PORT", "GF_COLOR", "GF_EXPECTED_VERSION"})
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SERVICE = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
_SECRET_ARN = re.compile(
    r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+"
)
_REFERENCE = "expected {secretsManager: ARN} or {ssmParameter: NAME}"
_PARAMETER = re.compile(r"/?[A-Za-z0-9_.\-/]{1,2048}")


class Refused(Exception):
    """A problem with the configuration or a secret; the message names keys, never values."""


def quote(value: str) -> str:
    """A value for systemd's EnvironmentFile: double-quoted; inside double quotes systemd reads
    a backslash before one of " \\ ` $ as that character and keeps newlines (systemd's
    src/basic/env-file.c, state DOUBLE_QUOTE_VALUE_ESCAPE, SHELL_NEED_ESCAPE)."""
    if "\0" in value:
        raise ValueError("a NUL character cannot be passed in an environment")
    return '"' + re.sub(r'(["\\`$])', r"\\\1", value) + '"'


def read_config(text: str, service: str) -> tuple[str, dict[str, str], dict[str, dict]]:
    """(region, environment, secrets) of the boot configuration, checked."""
    try:
        config = json.loads(text)
    except ValueError as error:
        raise Refused(f"{CONFIG}: not JSON ({error.msg})") from None
    if not isinstance(config, dict):
        raise Refused(f"{CONFIG}: expected an object")
    if config.get("service") != service:
        raise Refused(f"{CONFIG}: service is not {service!r}")
    region = config.get("region")
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise Refused(f"{CONFIG}: region: expected an AWS region")
    environment = config.get("environment", {})
    secrets = config.get("secrets", {})
    if not isinstance(environment, dict) or not isinstance(secrets, dict):
        raise Refused(f"{CONFIG}: environment and secrets must be objects")
    for key, value in environment.items():
        if not _KEY.fullmatch(key):
            raise Refused(f"environment key {key!r}: not a valid environment name")
        if key.startswith(("GF_", "AWS_")) and key not in PLATFORM_KEYS:
            raise Refused(f"environment key {key}: GF_ and AWS_ are reserved for the platform")
        if not isinstance(value, str):
            raise Refused(f"environment key {key}: the value must be a string")
    for key, reference in secrets.items():
        if not _KEY.fullmatch(key) or key.startswith(("GF_", "AWS_")):
            raise Refused(f"secret key {key!r}: not a valid environment name, or reserved")
        if key in environment:
            raise Refused(f"secret key {key}: also an environment key")
        if not isinstance(reference, dict) or len(reference) != 1:
            raise Refused(f"secret key {key}: {_REFERENCE}")
        kind, name = next(iter(reference.items()))
        pattern = {"secretsManager": _SECRET_ARN, "ssmParameter": _PARAMETER}.get(kind)
        valid = pattern is not None and isinstance(name, str) and pattern.fullmatch(name)
        if not valid:
            raise Refused(f"secret key {key}: {_REFERENCE}")
    return region, environment, secrets


# Answers that can turn into a value without anyone changing the stack: IAM is eventually
# consistent, so an instance launched right after its role was given a secret is denied for a
# while ("Troubleshoot IAM": changes take time to propagate); throttling and server errors pass;
# the network may not be up yet early in boot. A missing secret or parameter, or a malformed
# name, is the stack's mistake: refused at once, naming the key.
RETRIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "InternalServiceError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
    }
)
# How long one start keeps trying (the unit's TimeoutStartSec is longer): a retry of the whole
# unit (Restart=) would not help, because the app's start job has already failed with its
# Requires= dependency and nothing starts it again; the instance would stay unhealthy.
RETRY_FOR_S = 180.0
FIRST_WAIT_S, LONGEST_WAIT_S = 1.0, 20.0


def read_secret(
    clients,
    key: str,
    reference: dict,
    retry_for_s: float = RETRY_FOR_S,
    sleep=time.sleep,
    monotonic=time.monotonic,
) -> str:
    """The secret's value; a transient refusal (RETRIED_CODES, no answer) is retried with
    exponential backoff for ``retry_for_s`` on this process's monotonic clock."""
    from botocore.exceptions import BotoCoreError, ClientError

    kind, name = next(iter(reference.items()))
    deadline = monotonic() + retry_for_s
    wait = FIRST_WAIT_S
    attempts = 0
    while True:
        attempts += 1
        try:
            if kind == "secretsManager":
                answer = clients("secretsmanager").get_secret_value(SecretId=name)
                value = answer.get("SecretString")
            else:
                answer = clients("ssm").get_parameter(Name=name, WithDecryption=True)
                value = answer["Parameter"]["Value"]
            break
        except ClientError as error:
            problem = error.response.get("Error", {}).get("Code", "error")
            if problem not in RETRIED_CODES:
                raise Refused(f"secret key {key}: cannot read {kind} {name} ({problem})") from None
        except BotoCoreError as error:
            problem = type(error).__name__
        left = deadline - monotonic()
        if left <= 0:
            raise Refused(
                f"secret key {key}: cannot read {kind} {name} ({problem}; still after "
                f"{attempts} attempts in {retry_for_s:.0f} s)"
            )
        print(f"boot-environment: secret key {key}: {problem}; trying again in "
              f"{min(wait, left):.0f} s", file=sys.stderr)  # fmt: skip
        sleep(min(wait, left))
        wait = min(wait * 2, LONGEST_WAIT_S)
    if not isinstance(value, str):
        raise Refused(f"secret key {key}: {kind} {name} holds no string")
    return value


def render(values: dict[str, str]) -> str:
    return "".join(f"{key}={quote(values[key])}\n" for key in sorted(values))


def write_environment(service: str, user: str, text: str, run_dir: str = "/run") -> str:
    """/run/<service>/environment, replaced atomically, 0600, owned by ``user``."""
    account = pwd.getpwnam(user)
    directory = os.path.join(run_dir, service)
    os.makedirs(directory, mode=0o750, exist_ok=True)
    os.chown(directory, 0, account.pw_gid)
    os.chmod(directory, 0o750)
    handle, temporary = tempfile.mkstemp(prefix=".environment.", dir=directory)
    try:
        os.fchmod(handle, 0o600)
        os.fchown(handle, account.pw_uid, account.pw_gid)
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        target = os.path.join(directory, "environment")
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boot-environment")
    parser.add_argument("--service", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--run-dir", default="/run")
    args = parser.parse_args(argv)
    if not _SERVICE.fullmatch(args.service):
        print(f"boot-environment: invalid service {args.service!r}", file=sys.stderr)
        return 2
    try:
        try:
            with open(args.config, encoding="utf-8") as stream:
                text = stream.read()
        except OSError as error:
            raise Refused(f"{args.config}: cannot read ({error.strerror})") from None
        region, environment, secrets = read_config(text, args.service)
        values = dict(environment)
        if secrets:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=10
            )
            endpoint = os.environ.get("GF_AWS_ENDPOINT_URL") or None

            def clients(name: str):
                return boto3.client(name, region_name=region, endpoint_url=endpoint, config=config)

            for key in sorted(secrets):
                values[key] = read_secret(clients, key, secrets[key])
        target = write_environment(args.service, args.user, render(values), args.run_dir)
    except Refused as problem:
        print(f"boot-environment: {problem}", file=sys.stderr)
        return 1
    except KeyError:
        print(f"boot-environment: user {args.user} does not exist", file=sys.stderr)
        return 1
    counts = f"{len(environment)} setting(s), {len(secrets)} secret(s)"
    print(f"boot-environment: wrote {target}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
