"""The platform stack's config, validated once into one typed object (``PlatformConfig``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

NAMESPACE = "golden-fleet-platform"
KEYS = ("organization", "repository", "policyPackVersion", "driftSchedule", "stacks")
STACKS = ("staging", "prod")
# What AWS Organizations names the admin role it creates in a new member account, trusted by the
# management account (Organizations user guide, "Accessing a member account ... with the role").
DEFAULT_ADMIN_ROLE = "OrganizationAccountAccessRole"


class PlatformConfigError(ValueError):
    """Bad platform config; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class StackTarget(_Strict):
    """One stack of the main project: where it runs and how strictly policies hold there."""

    account_id: str = Field(alias="accountId", pattern=r"^[0-9]{12}$",
                            description="The stack's AWS account.")  # fmt: skip
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$", description="Its AWS region.")
    environment: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$",
                             description="The GitHub environment its jobs run in.")  # fmt: skip
    enforcement: Literal["mandatory", "advisory"] = Field(
        description="The policy pack's enforcement on this stack's updates."
    )
    bakes: bool = Field(description="Whether its deployment bakes the image (Packer).")
    admin_role_arn: str | None = Field(
        default=None,
        alias="adminRoleArn",
        pattern=r"^arn:aws:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$",
        description="The role the platform assumes in this account to create its roles. "
        "Default: OrganizationAccountAccessRole, which AWS Organizations creates in every "
        "account it creates (an invited account needs it made, or another role named here).",
    )

    @model_validator(mode="after")
    def _admin_role_in_its_account(self) -> StackTarget:
        account = self.admin_role().split(":")[4]
        if account != self.account_id:
            raise ValueError(
                f"adminRoleArn {self.admin_role()} is in account {account}, not the stack's "
                f"account {self.account_id}: the platform creates its roles where it assumes it"
            )
        return self

    def admin_role(self) -> str:
        """The ARN of the role the platform's AWS provider assumes in this account."""
        return self.admin_role_arn or (f"arn:aws:iam::{self.account_id}:role/{DEFAULT_ADMIN_ROLE}")


class PlatformConfig(_Strict):
    organization: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$",
                            description="owner/name on GitHub.")  # fmt: skip
    policy_pack_version: str = Field(alias="policyPackVersion",
                                     pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")  # fmt: skip
    drift_schedule: str = Field(
        alias="driftSchedule", description="Cron (5 fields, UTC) of each stack's drift check."
    )
    stacks: dict[str, StackTarget]

    @field_validator("drift_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        field = r"(\*|[0-9]{1,2}(-[0-9]{1,2})?(,[0-9]{1,2}(-[0-9]{1,2})?)*)(/[0-9]{1,2})?"
        if not re.fullmatch(rf"{field}( {field}){{4}}", value):
            raise ValueError(f"{value!r} is not a five-field cron expression")
        return value

    @field_validator("stacks")
    @classmethod
    def _both_stacks(cls, value: dict[str, StackTarget]) -> dict[str, StackTarget]:
        if sorted(value) != sorted(STACKS):
            raise ValueError(f"must name exactly {list(STACKS)}, not {sorted(value)}")
        if value["prod"].enforcement != "mandatory":
            raise ValueError("prod's enforcement must be mandatory")
        return value


def load(raw: Mapping[str, Any]) -> PlatformConfig:
    """``raw``: key (without namespace) -> value. Errors name ``golden-fleet-platform:<key>``."""
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise PlatformConfigError(f"{NAMESPACE}:{unknown[0]}: not a platform config key")
    try:
        return PlatformConfig.model_validate(dict(raw))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlatformConfigError(f"{NAMESPACE}:{where}: {first['msg']}") from None


def deploy_role(role_arn: str, stack: str, target: StackTarget) -> tuple[str, str]:
    """(account, role name) of the deploy role the settings file names; it must live in the
    stack's account, which the platform config names."""
    match = re.fullmatch(r"arn:aws:iam::([0-9]{12}):role/([A-Za-z0-9+=,.@_-]{1,64})", role_arn)
    if not match:
        raise PlatformConfigError(f"deploy/{stack}.deploy.yaml: roleArn {role_arn!r} is no role")
    if match.group(1) != target.account_id:
        raise PlatformConfigError(
            f"{NAMESPACE}:stacks.{stack}.accountId: {target.account_id} is not the account of "
            f"deploy/{stack}.deploy.yaml's roleArn ({match.group(1)})"
        )
    return match.group(1), match.group(2)


def read() -> PlatformConfig:
    """Every ``golden-fleet-platform:*`` key from the engine (so a typo is refused, not
    ignored), validated. Structured values arrive JSON-encoded."""
    import json

    from pulumi.runtime import config as runtime_config

    def decode(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    return load({k[len(prefix) :]: decode(v) for k, v in values.items() if k.startswith(prefix)})


def main_service(stack: str, root: Path) -> str:
    """The service the main project's stack runs (``golden-fleet:service.name`` of
    ``Pulumi.<stack>.yaml``, validated as the main program validates it): its roles are named
    ``<service>-*``, and only those may the stack's deploy roles change."""
    from components.config import ConfigError
    from release import stackfile
    from release.transitions import ReleaseError

    path = root / f"Pulumi.{stack}.yaml"
    try:
        return stackfile.load(path).parse().service.name
    except ConfigError as error:
        raise PlatformConfigError(f"{path.name}: {'; '.join(error.problems)}") from None
    except (OSError, ReleaseError) as error:
        raise PlatformConfigError(f"{path.name}: {error}") from None


def check_outside_service_roles(service: str, stack: str, role_names: Iterable[str]) -> None:
    """The deploy roles may change roles named ``<service>-*`` (that carry the boundary) and
    pass any of them to EC2: a role the platform makes, or assumes, must not be one of them."""
    inside = sorted(name for name in role_names if name.lower().startswith(f"{service}-"))
    if inside:
        raise PlatformConfigError(
            f"Pulumi.{stack}.yaml: golden-fleet:service.name {service!r} would let the deploy "
            f"roles pass {inside} (they may pass roles named {service}-*): rename the service "
            "or those roles"
        )
