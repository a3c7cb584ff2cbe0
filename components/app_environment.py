"""The service's environment at boot: names, secret references, the boot config and user data.

Contract (docs/guides/bake-your-service.md): the launch template's user data writes
``/etc/golden-fleet/boot-config.json`` (root:root 0644) holding *references only*::

    {"service": S, "region": R,
     "environment": {K: V, "GF_APP_PORT": ..., "GF_COLOR": ..., "GF_EXPECTED_VERSION": ...},
     "secrets": {K: {"secretsManager": ARN} | {"ssmParameter": NAME}}}

The image's ``golden-fleet-environment.service`` reads it with the instance role and writes
``/run/<service>/environment`` for the app's unit. No secret value is ever known to the
program: it names secrets, the instance resolves them.

Pure functions, no Pulumi: the config model (components/config.py), the fleet
(components/fleet.py) and the role policy (components/policies.py) share these rules.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

BOOT_CONFIG_PATH = "/etc/golden-fleet/boot-config.json"
ENVIRONMENT_UNIT = "golden-fleet-environment.service"
# Keys the platform sets itself; a stack's own keys may not use these prefixes.
RESERVED_PREFIXES = ("GF_", "AWS_")
PLATFORM_KEYS = ("GF_APP_PORT", "GF_COLOR", "GF_EXPECTED_VERSION")
# EC2 refuses user data above 16 KB in raw form, before base64 (EC2 User Guide, "Run commands
# when you launch an EC2 instance with user data input").
USER_DATA_LIMIT = 16 * 1024

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REGION = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]"
_PARTITION = r"aws(?:-cn|-us-gov|-iso(?:-[a-z])?)?"
# Secrets Manager appends a hyphen and six random characters to a secret's name in its ARN;
# only the full ARN names exactly one secret (a partial ARN would match a later secret whose
# name shares the prefix). Secret names: letters, digits and /_+=.@- (CreateSecret, Name).
_SECRET_ARN = re.compile(
    rf"arn:(?P<partition>{_PARTITION}):secretsmanager:(?P<region>{_REGION}):"
    r"(?P<account>[0-9]{12}):secret:(?P<name>[A-Za-z0-9/_+=.@-]{1,512})-[A-Za-z0-9]{6}"
)
# Parameter names: letters, digits and _.-/ , a leading slash for a hierarchy (PutParameter,
# Name); at most 1011 characters here (2048 for the whole ARN).
_PARAMETER_NAME = re.compile(r"(?:/[A-Za-z0-9_.-]+)+")
_PARAMETER_ARN = re.compile(
    rf"arn:(?P<partition>{_PARTITION}):ssm:(?P<region>{_REGION}):(?P<account>[0-9]{{12}}):"
    r"parameter(?P<name>(?:/[A-Za-z0-9_.-]+)+)"
)
PARAMETER_NAME_MAX = 1011


def partition_of(region: str) -> str:
    """The AWS partition a region belongs to (ARNs name it)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be an environment variable of the service, or None."""
    if not _ENV_KEY.fullmatch(key):
        return (
            f"{key!r} is not an environment variable name (letters, digits and _, not "
            "starting with a digit)"
        )
    if key.upper().startswith(RESERVED_PREFIXES):
        return (
            f"{key!r} starts with a reserved prefix ({', '.join(RESERVED_PREFIXES)}: the "
            "platform's own keys and the AWS SDK's settings)"
        )
    return None


def value_problem(value: str) -> str | None:
    """Why ``value`` cannot be written as one line of an EnvironmentFile, or None."""
    if any(c in value for c in "\n\r\0"):
        return "a value may not contain a newline, a carriage return or a NUL character"
    return None


@dataclass(frozen=True)
class SecretRef:
    """One configured secret: a Secrets Manager secret or an SSM parameter."""

    kind: str  # "secretsManager" | "ssmParameter"
    reference: str  # the full secret ARN, or the parameter's name or ARN as configured
    parameter_name: str | None = None  # "/path/name" (ssmParameter only)
    account: str | None = None  # the account the ARN names; None: a name, this account

    def boot_entry(self) -> dict[str, str]:
        """What the boot config names: a secret by its ARN, a parameter by its name (the
        boot unit reads parameters of the instance's own account and region)."""
        if self.kind == "ssmParameter":
            return {self.kind: str(self.parameter_name)}
        return {self.kind: self.reference}

    def account_problem(self, account: str) -> str | None:
        """Why the deploying ``account`` cannot read this parameter by name, or None."""
        if self.kind == "ssmParameter" and self.account not in (None, account):
            return (
                f"{self.reference} belongs to account {self.account}, but the stack deploys to "
                f"{account}: instances read parameters of their own account by name; name a "
                "parameter of this account (or share the value through Secrets Manager)"
            )
        return None

    def arn(self, partition: str, region: str, account: str) -> str:
        """The resource's ARN; a parameter given by name lives in ``account`` (the stack's)."""
        if self.kind == "secretsManager":
            return self.reference
        return (
            f"arn:{partition}:ssm:{region}:{self.account or account}:parameter{self.parameter_name}"
        )


def secret_ref(value: str, region: str) -> SecretRef:
    """Parse a configured secret reference; ``ValueError`` names the rule it breaks.

    Accepted: the full ARN of a Secrets Manager secret, an SSM parameter name (``/path/name``)
    or an SSM parameter ARN, in the stack's own partition and region (the boot unit asks the
    region's endpoints; a secret elsewhere would fail every boot).
    """
    for kind, pattern in (("secretsManager", _SECRET_ARN), ("ssmParameter", _PARAMETER_ARN)):
        match = pattern.fullmatch(value)
        if match is None:
            continue
        partition, arn_region = match["partition"], match["region"]
        if arn_region != region or partition != partition_of(region):
            raise ValueError(
                f"{value!r} is in {partition}/{arn_region}; secrets must be in the stack's "
                f"partition and region {partition_of(region)}/{region}"
            )
        if kind == "ssmParameter":
            _check_parameter_name(match["name"], value)
            return SecretRef(kind, value, match["name"], match["account"])
        return SecretRef(kind, value, account=match["account"])
    if value.startswith("/"):
        _check_parameter_name(value, value)
        return SecretRef("ssmParameter", value, value)
    if value.startswith("arn:") and ":secretsmanager:" in value:
        raise ValueError(
            f"{value!r} is not the full ARN of a Secrets Manager secret "
            "(arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name>-<6 characters>; "
            "the 6-character suffix makes it name exactly one secret)"
        )
    raise ValueError(
        f"{value!r} is neither a Secrets Manager secret ARN "
        "(arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name>-<6 characters>) nor an "
        "SSM parameter name (/path/name) or ARN "
        "(arn:aws:ssm:<region>:<12-digit account>:parameter/path/name)"
    )


def _check_parameter_name(name: str, value: str) -> None:
    if not _PARAMETER_NAME.fullmatch(name) or len(name) > PARAMETER_NAME_MAX:
        raise ValueError(
            f"{value!r}: a parameter name is /path/name of letters, digits and _ . - "
            f"(at most {PARAMETER_NAME_MAX} characters)"
        )
    if name.split("/")[1].lower().startswith(("aws", "ssm")):
        raise ValueError(f"{value!r}: parameter names beginning with aws or ssm are reserved")


def platform_environment(port: int, color: str, version: str) -> dict[str, str]:
    """What the platform tells every instance: its port, its color, the version it must run."""
    return {"GF_APP_PORT": str(port), "GF_COLOR": color, "GF_EXPECTED_VERSION": version}


def boot_config(
    service: str,
    region: str,
    platform: Mapping[str, str],
    environment: Mapping[str, str],
    secrets: Mapping[str, SecretRef],
) -> dict[str, object]:
    """The boot config document (references only), keys sorted so one config is one text."""
    return {
        "service": service,
        "region": region,
        "environment": dict(sorted({**environment, **platform}.items())),
        "secrets": {key: secrets[key].boot_entry() for key in sorted(secrets)},
    }


def user_data_document(config: Mapping[str, object]) -> str:
    """Cloud-config that only writes the boot config: nothing is installed or run at boot; the
    image's environment unit runs after cloud-init and the app's unit after it."""
    return "#cloud-config\n" + json.dumps(
        {
            "write_files": [
                {
                    "path": BOOT_CONFIG_PATH,
                    "permissions": "0644",
                    "owner": "root:root",
                    "content": json.dumps(config, indent=1, sort_keys=True) + "\n",
                }
            ]
        },
        indent=1,
    )


def user_data(config: Mapping[str, object]) -> str:
    """The launch template's user data (base64)."""
    return base64.b64encode(user_data_document(config).encode()).decode()
