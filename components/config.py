"""The validated stack configuration of golden-fleet.

Every key under the ``golden-fleet`` namespace of ``Pulumi.<stack>.yaml`` is parsed here, once,
before a single resource is registered. A bad value raises :class:`ConfigError`, whose message
names the key path (``golden-fleet:fleets.green.capacity.min``) and the rule it broke.

The same model is used by the Pulumi program and by the release command, so an edit that the
release command accepts is an edit that ``pulumi preview`` accepts.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from components.app_environment import (
    USER_DATA_LIMIT,
    boot_config,
    key_problem,
    platform_environment,
    secret_ref,
    user_data_document,
    value_problem,
)
from components.image_contract import (
    VERSION_PLACEHOLDER,  # noqa: F401  (part of this module's interface)
    is_foundation_name,
    is_valid_version,  # noqa: F401  (part of this module's interface)
    package_template_problem,
    service_name_problem,
    unit_name_problem,
    version_problem,
)

NAMESPACE = "golden-fleet"

# The service-name and version rules are the image contract's
# (components/image_contract.py), which the bake and the release command share.
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$")
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]{36}$")
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
_CIDR = re.compile(r"^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$")
_AMI_NAME_PATTERN = re.compile(r"^[A-Za-z0-9()\[\] ./'@_*?-]{3,128}$")
_VAR_FILE = re.compile(r"^[A-Za-z0-9_./-]+\.pkrvars\.hcl$")
_TLS13_POLICY = re.compile(r"^ELBSecurityPolicy-TLS13-[A-Za-z0-9-]+$")
# A KMS key by full ARN (a grant on another account's key must name it by ARN, never by alias):
# single-Region keys have a UUID id, multi-Region keys "mrk-" and 32 hex digits.
_KMS_KEY_ARN = re.compile(
    r"arn:aws[a-z-]*:kms:[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]:[0-9]{12}:key/"
    r"(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)

# AWS limits for instance-refresh preferences (Auto Scaling API, RefreshPreferences).
CHECKPOINT_DELAY_MAX = 172_800
# AWS sets no upper bound on warmup; a warmup longer than a day is a typo, not a choice.
INSTANCE_WARMUP_MAX = 86_400


class ConfigError(ValueError):
    """Stack configuration that does not validate. ``problems`` holds one line per fault."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class Color(StrEnum):
    BLUE = "blue"
    GREEN = "green"

    @property
    def other(self) -> Color:
        return Color.GREEN if self is Color.BLUE else Color.BLUE


COLORS: tuple[Color, Color] = (Color.BLUE, Color.GREEN)


class _Strict(BaseModel):
    """Unknown keys are refused: a typo in a stack file must fail, not be ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check(pattern: re.Pattern[str], rule: str):
    def validate(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {rule}")
        return value

    return validate


def _unique(values: list[str]) -> list[str]:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"duplicates are not allowed: {', '.join(duplicates)}")
    return values


def check_version(version: str) -> str:
    """Refuse anything that is not an immutable semantic version.

    Versions become part of AMI names, tags and the bake command line, so only the semver
    alphabet is accepted: that excludes ``latest`` and every shell metacharacter.
    """
    problem = version_problem(version)
    if problem:
        raise ValueError(problem)
    return version


# ---------------------------------------------------------------------------------------------
# golden-fleet:service
# ---------------------------------------------------------------------------------------------
class ServiceConfig(_Strict):
    name: str = Field(description="Service name; lowercase, used in AWS resource names.")
    """2-14 characters, `[a-z][a-z0-9-]*[a-z0-9]`: target-group names must fit 32 characters (14
    + `-green-tg` + 8 random)."""
    port: int = Field(ge=1024, le=65535, description="Port the app listens on (unprivileged).")
    health_check_path: str = Field(alias="healthCheckPath", default="/healthz")
    """The path the load balancer's health check and the image tests expect a 200 from; an
    absolute URL path."""
    instance_types: list[str] = Field(alias="instanceTypes", min_length=1, max_length=20)
    """1-20 distinct EC2 instance types; more than one makes the group a mixed-instances policy."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = service_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("health_check_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if len(value) > 1024 or not _HEALTH_PATH.fullmatch(value):
            raise ValueError(f"{value!r} must be an absolute URL path such as /healthz")
        return value

    @field_validator("instance_types")
    @classmethod
    def _types(cls, values: list[str]) -> list[str]:
        for value in values:
            _check(_INSTANCE_TYPE, "an EC2 instance type such as t3.small")(value)
        return _unique(values)


# ---------------------------------------------------------------------------------------------
# golden-fleet:network
# ---------------------------------------------------------------------------------------------
SubnetId = Annotated[str, Field(pattern=_SUBNET_ID.pattern)]


class NetworkConfig(_Strict):
    vpc_id: str = Field(alias="vpcId", pattern=_VPC_ID.pattern)
    """The VPC of the load balancer and the instances."""
    public_subnet_ids: list[SubnetId] = Field(alias="publicSubnetIds", min_length=2)
    """At least 2 distinct subnets, for the load balancer."""
    private_subnet_ids: list[SubnetId] = Field(alias="privateSubnetIds", min_length=2)
    """At least 2 distinct subnets, for the instances; none of them in the public list."""
    certificate_arn: str | None = Field(alias="certificateArn", default=None)
    """An ACM certificate ARN: with it the load balancer serves HTTPS and redirects HTTP to it
    (301); without it, plain HTTP."""
    ingress_cidrs: list[str] = Field(alias="ingressCidrs", default=["0.0.0.0/0"], min_length=1)
    """IPv4 CIDR blocks allowed to reach the load balancer."""

    @field_validator("public_subnet_ids", "private_subnet_ids")
    @classmethod
    def _subnets(cls, values: list[str]) -> list[str]:
        return _unique(values)

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, value: str | None) -> str | None:
        if value is not None:
            _check(_ACM_ARN, "an ACM certificate ARN")(value)
        return value

    @field_validator("ingress_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            _check(_CIDR, "an IPv4 CIDR block such as 10.0.0.0/8")(value)
            address, prefix = value.split("/")
            if int(prefix) > 32 or any(int(octet) > 255 for octet in address.split(".")):
                raise ValueError(f"{value!r} is not a valid IPv4 CIDR block")
        return _unique(values)

    @model_validator(mode="after")
    def _disjoint(self) -> NetworkConfig:
        shared = sorted(set(self.public_subnet_ids) & set(self.private_subnet_ids))
        if shared:
            raise ValueError(
                f"subnets {', '.join(shared)} are listed as both public and private; instances "
                "must not share subnets with the internet-facing load balancer"
            )
        return self


# ---------------------------------------------------------------------------------------------
# golden-fleet:image
# ---------------------------------------------------------------------------------------------
AccountId = Annotated[str, Field(pattern=_ACCOUNT_ID.pattern)]
Region = Annotated[str, Field(pattern=_REGION.pattern)]


class Runtime(StrEnum):
    PYTHON = "python"
    NODEJS = "nodejs"
    OPENJDK17 = "openjdk17"


class SourceImageFilter(_Strict):
    """Which base image Packer starts from: the newest match, never a hard-coded id."""

    owners: list[AccountId] = Field(default=["136693071363"], min_length=1)  # Debian's account
    """The accounts the base image may come from (Debian's by default)."""
    name: str = Field(default="debian-12-amd64-*")
    """The base image's name pattern; the newest match at bake time is used."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check(_AMI_NAME_PATTERN, "an AMI name pattern such as debian-12-amd64-*")(value)


class AppPackage(_Strict):
    """The service's Debian package: which one each version bakes, and how it is verified."""

    package: str = Field(description="URI template with {version}: s3://, https:// or a path.")
    """A template ending in `.deb` with `{version}` as its only placeholder:
    `s3://<bucket>/<key>`, `https://<host>/<path>` (no credentials, query or fragment: it is
    part of the bake's command line) or a relative path inside the project (no leading `/`, no
    `..`)."""
    sha256: Literal["sidecar", "s3"] = Field(
        default="sidecar",
        description="Where the digest comes from: <package>.sha256, or S3's ChecksumSHA256.",
    )
    """`sidecar`: `<package>.sha256`, in `sha256sum` format; `s3`: the object's
    `ChecksumSHA256`, only with an `s3://` package."""
    unit: str | None = Field(
        default=None, description="The systemd unit the package ships (default <service>.service)."
    )
    """`[A-Za-z0-9:_.-]+(@...)?.service`."""

    @field_validator("package")
    @classmethod
    def _package(cls, value: str) -> str:
        problem = package_template_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str | None) -> str | None:
        problem = unit_name_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _s3_digest_of_s3(self) -> AppPackage:
        if self.sha256 == "s3" and not self.package.startswith("s3://"):
            raise ValueError(
                "[sha256] 's3' reads the object's ChecksumSHA256, so the package must be an "
                f"s3:// object (got {self.package!r}); use 'sidecar'"
            )
        return self

    def unit_of(self, service: str) -> str:
        return self.unit or f"{service}.service"


class BakeImage(_Strict):
    """This stack bakes its images with Packer (``packer/bake.py``)."""

    mode: Literal["bake"]
    """`bake`: this stack bakes its images (Packer, packer/bake.py); `promote`: it runs the
    images another stack baked. Decides which other `image` keys are allowed."""
    source: SourceImageFilter = Field(default_factory=SourceImageFilter)
    runtime: Runtime = Runtime.PYTHON
    """The language runtime in the foundation layer."""
    build_instance_type: str = Field(alias="buildInstanceType", default="t3.small")
    """The instance type Packer builds on."""
    share_with_accounts: list[AccountId] = Field(alias="shareWithAccounts", default=[])
    """Distinct 12-digit account ids that may launch the images: launch permissions on each
    image and copy, admitted by each image key's policy. Adding one reaches the images the
    colors already run on the next `pulumi up`; removing one drops it from the key policies but
    keeps its launch permissions (retained: that account may run them; revoke on purpose, see
    Accounts, sharing and encryption)."""
    copy_to_regions: list[Region] = Field(alias="copyToRegions", default=[])
    """Distinct regions other than `aws:region` the images are copied to, each with its own
    image key. Removing one keeps that region's copies, their permissions and its key (retained:
    prod may run them); `python -m release prune --all-regions` deregisters the copies once
    nothing uses them."""
    var_file: str | None = Field(alias="varFile", default=None)
    """A Packer variables file, `*.pkrvars.hcl`, by a relative path inside the project."""
    keep_sshd: bool = Field(
        alias="keepSshd",
        default=False,
        description="Keep openssh-server in the image (Packer's keep_sshd). Off by default: the "
        "fleet opens no port 22 and operators use SSM Session Manager.",
    )
    foundation: str | None = Field(
        default=None,
        description="A foundation image name (golden-foundation-<runtime>-<timestamp>) the "
        "application layer is baked on; default: the newest foundation of the runtime.",
    )
    """Another runtime's foundation is refused; `prune` keeps a pinned foundation."""
    app: AppPackage | None = Field(
        default=None, description="The service's package; without it the sample app is baked."
    )

    @field_validator("build_instance_type")
    @classmethod
    def _type(cls, value: str) -> str:
        return _check(_INSTANCE_TYPE, "an EC2 instance type such as t3.small")(value)

    @field_validator("share_with_accounts", "copy_to_regions")
    @classmethod
    def _lists(cls, values: list[str]) -> list[str]:
        return _unique(values)

    @field_validator("var_file")
    @classmethod
    def _var_file(cls, value: str | None) -> str | None:
        if value is not None and (".." in value.split("/") or not _VAR_FILE.fullmatch(value)):
            raise ValueError(
                f"{value!r} must be a relative path to a *.pkrvars.hcl file inside the project"
            )
        return value

    @model_validator(mode="after")
    def _foundation_of_the_runtime(self) -> BakeImage:
        if self.foundation is not None and not is_foundation_name(
            self.foundation, self.runtime.value
        ):
            raise ValueError(
                f"[foundation] {self.foundation[:80]!r} must be a foundation image name of "
                f"runtime {self.runtime.value}: golden-foundation-{self.runtime.value}-"
                "<YYYYMMDDThhmmssZ>"
            )
        return self


class PromoteImage(_Strict):
    """This stack never bakes: it runs the images another stack baked, found by name."""

    mode: Literal["promote"]
    """`promote`: this stack runs the images another stack baked, found by owner and name."""
    owner_account_id: str = Field(alias="ownerAccountId", pattern=_ACCOUNT_ID.pattern)
    """The only account whose images are trusted (12 digits)."""
    kms_key_arn: str = Field(
        alias="kmsKeyArn",
        description="The baking stack's image key in this stack's region (its imageKeyArns "
        "output): this stack grants its Auto Scaling service-linked role the use of it.",
    )
    """A full key ARN, `arn:aws:kms:<region>:<account>:key/<uuid or mrk-...>` (an alias cannot
    be granted across accounts), of the `ownerAccountId` account and in `aws:region`."""

    @field_validator("kms_key_arn")
    @classmethod
    def _key_arn(cls, value: str) -> str:
        return _check(
            _KMS_KEY_ARN,
            "a KMS key ARN such as arn:aws:kms:eu-west-1:111111111111:key/<key id> "
            "(an alias cannot be granted across accounts)",
        )(value)

    @model_validator(mode="after")
    def _key_of_the_owner(self) -> PromoteImage:
        key_account = self.kms_key_arn.split(":")[4]
        if key_account != self.owner_account_id:
            raise ValueError(
                f"[kmsKeyArn] the image key must belong to the account that bakes the images "
                f"(ownerAccountId {self.owner_account_id}); {key_account} does not"
            )
        return self


ImageConfig = Annotated[BakeImage | PromoteImage, Field(discriminator="mode")]


# ---------------------------------------------------------------------------------------------
# golden-fleet:fleets, golden-fleet:traffic
# ---------------------------------------------------------------------------------------------
class Capacity(_Strict):
    min: int = Field(ge=0, le=1000)
    """Fewest instances: Auto Scaling never goes below it. A color with traffic needs at least
    1. `min <= desired <= max`."""
    desired: int = Field(ge=0, le=1000)
    """The count the group is created with; with `scaling.enabled` the autoscaler owns it
    afterwards, and an edit of it alone changes nothing in AWS."""
    max: int = Field(ge=0, le=1000)
    """Most instances the autoscaler may run."""

    @model_validator(mode="after")
    def _ordered(self) -> Capacity:
        if not self.min <= self.desired <= self.max:
            raise ValueError(
                f"must satisfy min <= desired <= max (got min={self.min}, "
                f"desired={self.desired}, max={self.max})"
            )
        return self


class FleetConfig(_Strict):
    version: str
    """An immutable semantic version (`1.4.0`, `2.0.0-rc.1`); `latest`, `v1.4`, build metadata
    and shell metacharacters are refused."""
    capacity: Capacity
    """The color's instance counts."""

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return check_version(value)


class Fleets(_Strict):
    blue: FleetConfig
    """The blue color's version and capacity."""
    green: FleetConfig
    """The green color's version and capacity."""

    def __getitem__(self, color: Color) -> FleetConfig:
        return getattr(self, Color(color).value)


class Traffic(_Strict):
    """Percent of requests each color receives. Both colors always appear in the listener."""

    blue: int = Field(ge=0, le=100)
    """Percent of requests blue receives; blue + green = 100."""
    green: int = Field(ge=0, le=100)
    """Percent of requests green receives; blue + green = 100."""

    def __getitem__(self, color: Color) -> int:
        return getattr(self, Color(color).value)

    @model_validator(mode="after")
    def _sums_to_100(self) -> Traffic:
        if self.blue + self.green != 100:
            raise ValueError(
                f"weights must sum to 100 (blue {self.blue} + green {self.green} = "
                f"{self.blue + self.green})"
            )
        return self


# ---------------------------------------------------------------------------------------------
# golden-fleet:instanceRefresh
# ---------------------------------------------------------------------------------------------
class InstanceRefreshConfig(_Strict):
    """Rolling replacement inside one color when its launch template changes."""

    min_healthy_percentage: int = Field(alias="minHealthyPercentage", default=90, ge=0, le=100)
    """Share of the group kept in service while a refresh replaces instances."""
    max_healthy_percentage: int = Field(alias="maxHealthyPercentage", default=100, ge=100, le=200)
    """Share the group may grow to during a refresh; at most 100 above `minHealthyPercentage`
    (AWS)."""
    instance_warmup: int = Field(alias="instanceWarmup", default=120, ge=0, le=INSTANCE_WARMUP_MAX)
    """Seconds a new instance warms up before it counts (also the group's default warmup and
    health-check grace period)."""
    checkpoint_percentages: list[int] = Field(alias="checkpointPercentages", default=[])
    """Where a refresh pauses: each 1-100, strictly ascending, the last 100."""
    checkpoint_delay: int = Field(
        alias="checkpointDelay", default=600, ge=0, le=CHECKPOINT_DELAY_MAX
    )
    """Seconds a refresh waits at each checkpoint (AWS's limit: 172800); sent only with
    checkpoints."""
    skip_matching: bool = Field(alias="skipMatching", default=True)
    """Instances already on the desired configuration are not replaced."""
    auto_rollback: bool = Field(alias="autoRollback", default=True)
    """A failed refresh (or one stopped by an alarm) rolls back to the configuration saved
    before it."""

    @field_validator("checkpoint_percentages")
    @classmethod
    def _checkpoints(cls, values: list[int]) -> list[int]:
        if not values:
            return values
        if any(not 1 <= v <= 100 for v in values):
            raise ValueError(f"each checkpoint must be within 1-100 (got {values})")
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise ValueError(f"checkpoints must be strictly ascending (got {values})")
        if values[-1] != 100:
            raise ValueError(f"the last checkpoint must be 100 (got {values})")
        return values

    @model_validator(mode="after")
    def _window(self) -> InstanceRefreshConfig:
        spread = self.max_healthy_percentage - self.min_healthy_percentage
        if spread > 100:
            raise ValueError(
                "maxHealthyPercentage - minHealthyPercentage must not exceed 100 "
                f"(got {self.max_healthy_percentage} - {self.min_healthy_percentage} = {spread})"
            )
        return self


# ---------------------------------------------------------------------------------------------
# golden-fleet:loadBalancer, golden-fleet:release
# ---------------------------------------------------------------------------------------------
# Days the bucket the program creates keeps access logs; S3 Lifecycle expiration takes any
# positive whole number of days (S3 user guide, "Lifecycle configuration elements").
ACCESS_LOG_EXPIRATION_DEFAULT = 90
ACCESS_LOG_EXPIRATION_MAX = 3653


_LOG_PREFIX = re.compile(r"[A-Za-z0-9!_.'()/-]{0,200}")


class AccessLogs(_Strict):
    """Where the load balancer writes its access logs. Without ``bucket`` the program creates
    one (components/access_log_bucket.py); with it, the named bucket is used as it is."""

    bucket: str | None = None
    """An S3 bucket to log into, used as it is; without it the stack creates its own
    (AccessLogBucket)."""
    prefix: str = ""
    """Key prefix: at most 200 of `A-Z a-z 0-9 ! _ . ' ( ) - /`, not starting or ending with
    `/`, no empty segment, no `AWSLogs` (no wildcard can widen the bucket policy)."""
    expiration_days: StrictInt | None = Field(
        alias="expirationDays",
        default=None,
        ge=1,
        le=ACCESS_LOG_EXPIRATION_MAX,
        description="Days the created bucket keeps a log object (default 90); only for a "
        "bucket the program creates.",
    )

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is None:
            return value
        return _check(_S3_BUCKET, "an S3 bucket name")(value)

    @model_validator(mode="after")
    def _expiry_of_own_bucket(self) -> AccessLogs:
        if self.bucket is not None and self.expiration_days is not None:
            raise ValueError(
                "[expirationDays] applies only to the bucket the program creates; a configured "
                f"bucket ({self.bucket}) keeps the lifecycle its owner gave it"
            )
        return self

    @property
    def expiry(self) -> int:
        return (
            ACCESS_LOG_EXPIRATION_DEFAULT if self.expiration_days is None else self.expiration_days
        )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value.startswith("/") or value.endswith("/") or "AWSLogs" in value:
            raise ValueError(
                f"{value!r}: the prefix must not start or end with '/' nor contain 'AWSLogs'"
            )
        # The prefix becomes part of the bucket policy's resource: a '*' or '?' there would
        # widen what log delivery may write; S3's safe key characters only, no empty segment.
        if not _LOG_PREFIX.fullmatch(value) or "//" in value:
            raise ValueError(
                f"{value!r}: the prefix may hold only letters, digits and ! _ . ' ( ) - /, "
                "at most 200 characters, no empty segment"
            )
        return value


class LoadBalancerConfig(_Strict):
    deletion_protection: bool = Field(alias="deletionProtection", default=False)
    """On in prod."""
    idle_timeout: int = Field(alias="idleTimeout", default=60, ge=1, le=4000)
    """Seconds a connection may stay idle."""
    desync_mitigation_mode: Literal["monitor", "defensive", "strictest"] = Field(
        alias="desyncMitigationMode", default="defensive"
    )
    """How the load balancer treats requests that could be HTTP desync attacks."""
    ssl_policy: str = Field(alias="sslPolicy", default="ELBSecurityPolicy-TLS13-1-2-Res-2021-06")
    """The HTTPS listener's policy: an `ELBSecurityPolicy-TLS13-*` policy."""
    deregistration_delay: int = Field(alias="deregistrationDelay", default=30, ge=0, le=3600)
    """Seconds a deregistering target keeps serving its requests in flight."""
    # Access logs are always on: without a configured bucket the program creates one.
    access_logs: AccessLogs = Field(alias="accessLogs", default_factory=AccessLogs)
    """Access logs are always on."""

    @field_validator("ssl_policy")
    @classmethod
    def _tls13(cls, value: str) -> str:
        return _check(_TLS13_POLICY, "a TLS 1.3 policy (ELBSecurityPolicy-TLS13-...)")(value)


class Standby(StrEnum):
    """What the retired color keeps after a release is finished."""

    WARM = "warm"  # keeps its capacity: a rollback is one listener change, seconds
    COLD = "cold"  # scales to zero: a rollback first waits for instances to boot and pass checks


MAX_IMAGE_AGE_DAYS_DEFAULT = 90
MAX_IMAGE_AGE_DAYS_MAX = 365  # the bake's deprecation horizon (packer deprecate_at, 1 year)
# A foundation carries the operating system's patches of its bake day; the weekly foundation
# bake plus a release cadence keeps a running image's foundation within a month.
MAX_FOUNDATION_AGE_DAYS_DEFAULT = 30


class CanaryRestore(_Strict):
    """The canary color's own ``min`` and ``desired``, kept while a release has raised them.

    The first shift of a release onto a color raises its ``min`` to what the stable color runs
    (so that target tracking cannot shrink the canary between steps) and writes this record;
    ``finish`` puts the values back and removes it. Written and removed by the release command.
    """

    color: Color = Field(description="The color whose capacity was raised (the canary).")
    min: int = Field(ge=0, le=1000, description="Its capacity.min before the raise.")
    desired: int = Field(ge=0, le=1000, description="Its capacity.desired before the raise.")


class ReleaseConfig(_Strict):
    stable: Color | None = Field(
        default=None,
        description="The color that last held all traffic; rollback returns traffic to it. "
        "Defaults to the color with the larger weight (blue on a tie).",
    )
    standby: Standby = Standby.WARM
    """After `finish`: `warm` keeps the old color's capacity (a rollback is one listener
    change), `cold` scales it to 0 (a rollback waits for instances to boot)."""
    # `status` warns when a color taking traffic runs an image older than this. 90 days is a
    # quarterly rebake: every image then carries at most a quarter's unapplied patches. The
    # bake deprecates images after 365 days, so a larger limit would warn only after that.
    max_image_age_days: StrictInt = Field(
        alias="maxImageAgeDays",
        default=MAX_IMAGE_AGE_DAYS_DEFAULT,
        ge=1,
        le=MAX_IMAGE_AGE_DAYS_MAX,
        description="Days after its bake that an image serving traffic is called stale by "
        "`python -m release status`.",
    )
    max_foundation_age_days: StrictInt = Field(
        alias="maxFoundationAgeDays",
        default=MAX_FOUNDATION_AGE_DAYS_DEFAULT,
        ge=1,
        le=MAX_IMAGE_AGE_DAYS_MAX,
        description="Days after its bake that the foundation under a color's image is called "
        "stale: `status` warns, `deploy` refuses (unless --allow-stale-foundation), `images "
        "STACK --stale` exits 1.",
    )
    canary_restore: CanaryRestore | None = Field(
        alias="canaryRestore",
        default=None,
        description="Written by the first shift of a release, removed by finish: the canary's "
        "own min and desired, which finish restores.",
    )
    """Edit it by hand only to give the raised capacity back without a release (set the color's
    capacity.min and .desired to the recorded values and delete the record). `color` must be the
    non-stable color, and min <= desired <= fleets.<color>.capacity.max; every fault names its
    key (golden-fleet:release.canaryRestore.desired: ...)."""


# ---------------------------------------------------------------------------------------------
# golden-fleet:health
# ---------------------------------------------------------------------------------------------
# Application Load Balancers publish their CloudWatch metrics every 60 seconds, so an alarm
# period must be a whole number of minutes (ELB user guide, "CloudWatch metrics for your
# Application Load Balancer"). CloudWatch refuses EvaluationPeriods x Period above one day
# (PutMetricAlarm API reference).
ALB_METRIC_PERIOD = 60
ALARM_WINDOW_MAX = 86_400
# The ALB's idle timeout caps how long a request can take (LoadBalancerConfig.idle_timeout).
LATENCY_THRESHOLD_MAX = 4000.0
# wait_for_capacity_timeout of "0" would switch the provider's capacity wait off altogether.
CAPACITY_TIMEOUT_MIN = 60
CAPACITY_TIMEOUT_MAX = 7_200
# One refresh may wait CheckpointDelay (at most 172 800 s) at each checkpoint; two days is the
# longest any sane rollout should hold a `pulumi up` open.
REFRESH_TIMEOUT_MAX = 172_800


class AlarmWindow(_Strict):
    """How long a condition must hold before an alarm fires: M of N periods."""

    period: StrictInt = Field(default=60, ge=ALB_METRIC_PERIOD, le=ALARM_WINDOW_MAX)
    """Seconds per data point: a multiple of 60 (load balancer metrics are per minute)."""
    evaluation_periods: StrictInt = Field(alias="evaluationPeriods", default=3, ge=1, le=1440)
    """N of "M of N"; period x evaluationPeriods at most 86400 (CloudWatch)."""
    datapoints_to_alarm: StrictInt = Field(alias="datapointsToAlarm", default=2, ge=1, le=1440)
    """M of "M of N": breaching periods that fire the alarm; at most evaluationPeriods."""

    @field_validator("period")
    @classmethod
    def _whole_minutes(cls, value: int) -> int:
        if value % ALB_METRIC_PERIOD:
            raise ValueError(
                f"{value} is not a multiple of {ALB_METRIC_PERIOD}: load balancer metrics are "
                "published once a minute"
            )
        return value

    @model_validator(mode="after")
    def _window(self) -> AlarmWindow:
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError(
                f"[datapointsToAlarm] must not exceed evaluationPeriods "
                f"(got {self.datapoints_to_alarm} > {self.evaluation_periods})"
            )
        if self.period * self.evaluation_periods > ALARM_WINDOW_MAX:
            raise ValueError(
                f"[evaluationPeriods] period x evaluationPeriods must not exceed "
                f"{ALARM_WINDOW_MAX} seconds, CloudWatch's limit "
                f"(got {self.period} x {self.evaluation_periods})"
            )
        return self


class ErrorRateAlarm(AlarmWindow):
    """Requests of the color that failed on its targets (a 5xx from a target, or no connection
    to one), as a percentage of its requests."""

    threshold_percent: StrictFloat = Field(alias="thresholdPercent", default=5.0, gt=0, le=100)
    """Alarm above this percentage of the color's requests failing on its targets (target 5xx
    and connection errors)."""
    min_requests: StrictInt = Field(alias="minRequests", default=20, ge=1, le=1_000_000)
    """Periods with fewer requests count as 0 %."""


class UnhealthyHostsAlarm(AlarmWindow):
    """Targets of the color failing the load balancer's health check."""

    threshold: StrictInt = Field(default=1, ge=1, le=1000)
    """Alarm at this many unhealthy targets."""


class LatencyAlarm(AlarmWindow):
    """p99 of the color's TargetResponseTime, in seconds."""

    threshold_seconds: StrictFloat = Field(
        alias="thresholdSeconds", default=2.0, gt=0, le=LATENCY_THRESHOLD_MAX
    )
    """Alarm above this p99 response time, in seconds."""


class LoadBalancer5xxAlarm(AlarmWindow):
    """5xx responses the load balancer itself generated (502, 503, 504 when targets crash,
    reset or time out), as a percentage of all of its requests."""

    threshold_percent: StrictFloat = Field(alias="thresholdPercent", default=1.0, gt=0, le=100)
    """Alarm above this percentage of the load balancer's requests answered 5xx by the load
    balancer itself (`HTTPCode_ELB_5XX_Count`: targets crashing, resetting, timing out); judges
    both colors."""
    min_requests: StrictInt = Field(alias="minRequests", default=20, ge=1, le=1_000_000)
    """Periods with fewer requests to the whole load balancer count as 0 %."""


class HealthConfig(_Strict):
    """What `pulumi up` waits for before traffic moves, and when a color counts as unhealthy."""

    capacity_timeout: StrictInt = Field(
        alias="capacityTimeout",
        default=900,
        ge=CAPACITY_TIMEOUT_MIN,
        le=CAPACITY_TIMEOUT_MAX,
        description="Seconds a group waits for its desired instances to be healthy targets.",
    )
    """Applies to colors whose desired count the program owns (scaling off, or desired 0)."""
    refresh_timeout: StrictInt = Field(
        alias="refreshTimeout",
        default=3600,
        ge=60,
        le=REFRESH_TIMEOUT_MAX,
        description="Seconds a color's refresh resource waits for its refresh and healthy targets.",
    )
    """More than (checkpoints x `checkpointDelay`) + `instanceWarmup`, the least a refresh
    takes."""
    error_rate: ErrorRateAlarm = Field(alias="errorRate", default_factory=ErrorRateAlarm)
    """The color's error-rate alarm."""
    unhealthy_hosts: UnhealthyHostsAlarm = Field(
        alias="unhealthyHosts", default_factory=UnhealthyHostsAlarm
    )
    """The color's unhealthy-hosts alarm."""
    p99_latency: LatencyAlarm = Field(alias="p99Latency", default_factory=LatencyAlarm)
    """The color's p99-latency alarm."""
    load_balancer_5xx: LoadBalancer5xxAlarm = Field(
        alias="loadBalancer5xx", default_factory=LoadBalancer5xxAlarm
    )
    """The load balancer's own 5xx alarm (elb-5xx), shared by both colors."""


# ---------------------------------------------------------------------------------------------
# golden-fleet:logs, golden-fleet:waf
# ---------------------------------------------------------------------------------------------
# The values CloudWatch Logs accepts for a log group's retention (PutRetentionPolicy API
# reference, retentionInDays). Below a year is refused: CIS and Security Hub (CloudWatch.16)
# ask for at least 365 days.
LOG_RETENTION_DAYS_ALLOWED = (
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
LOG_RETENTION_DAYS_DEFAULT = 365


class LogsConfig(_Strict):
    """The service's log group and the web ACL's: retention, both encrypted with the stack's
    own log key."""

    retention_days: StrictInt = Field(alias="retentionDays", default=LOG_RETENTION_DAYS_DEFAULT)
    """One of CloudWatch Logs' retention values of at least a year ({LOG_RETENTION_DAYS_ALLOWED}),
    for the service's and the WAF's log groups."""

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS_ALLOWED:
            raise ValueError(
                f"{value} is not a retention CloudWatch Logs accepts of at least a year; use one "
                f"of {', '.join(map(str, LOG_RETENTION_DAYS_ALLOWED))}"
            )
        return value


# WAF's bounds for a rate-based rule (WAFV2 API reference, RateBasedStatement: Limit 10 to
# 2,000,000,000; EvaluationWindowSec 60, 120, 300 or 600).
WAF_RATE_LIMIT_MIN = 10
WAF_RATE_LIMIT_MAX = 2_000_000_000


class WafConfig(_Strict):
    """A WAFv2 web ACL in front of the load balancer: AWS managed rule groups and a per-IP rate
    limit."""

    enabled: bool = Field(default=True, description="Off only where a stack says so.")
    rate_limit: StrictInt = Field(
        alias="rateLimit",
        default=2000,
        ge=WAF_RATE_LIMIT_MIN,
        le=WAF_RATE_LIMIT_MAX,
        description="Requests one client IP may send per window before it is blocked.",
    )
    rate_window_seconds: Literal[60, 120, 300, 600] = Field(
        alias="rateWindowSeconds",
        default=300,
        description="The window the rate limit counts over.",
    )


# ---------------------------------------------------------------------------------------------
# golden-fleet:scaling
# ---------------------------------------------------------------------------------------------
REQUESTS_PER_TARGET_MAX = 1_000_000
CPU_TARGET_MIN = 10
CPU_TARGET_MAX = 90


class ScalingConfig(_Strict):
    """Target tracking per color: the stack file owns min and max, the autoscaler the desired
    count in between (see components/fleet_scaling.py)."""

    enabled: bool = Field(default=True, description="Target tracking on both colors.")
    requests_per_target: StrictInt = Field(
        alias="requestsPerTarget",
        default=1000,
        ge=1,
        le=REQUESTS_PER_TARGET_MAX,
        description="Target of ALBRequestCountPerTarget: requests per instance per minute.",
    )
    cpu_percent: StrictInt = Field(
        alias="cpuPercent",
        default=60,
        ge=CPU_TARGET_MIN,
        le=CPU_TARGET_MAX,
        description="Target of the group's average CPU utilization, percent.",
    )


# ---------------------------------------------------------------------------------------------
# golden-fleet:app
# ---------------------------------------------------------------------------------------------
class AppConfig(_Strict):
    """The service's environment at boot: plain values and references to secrets, written to
    the instance by its user data and resolved there (components/app_environment.py). Never
    baked: the image is the same in every stack."""

    environment: dict[str, str] = Field(
        default={}, description="Plain KEY: value pairs (no secrets: they are readable)."
    )
    """Strings the service gets at boot, readable in the launch template: no secrets. Keys
    `[A-Za-z_][A-Za-z0-9_]*`, not starting with `GF_` or `AWS_` (any case); values without
    newline, carriage return or NUL; the whole boot config must keep user data within EC2's 16
    KB; a `pulumi config set --secret` value here is refused (it would be published in user
    data)."""
    secrets: dict[str, str] = Field(
        default={},
        description="KEY: a Secrets Manager secret's full ARN, or an SSM parameter name or ARN.",
    )
    """Resolved at boot with the instance role: a Secrets Manager secret's full ARN (with its
    6-character suffix), an SSM parameter name `/path/name` or its ARN, of the deploying account
    (instances read parameters of their own account by name); in the stack's partition and
    region; `aws`/`ssm` parameter prefixes refused. Same key rules as `environment`, and no key
    in both maps. A YAML duplicate key is refused by the release command's loader."""

    @field_validator("environment", "secrets")
    @classmethod
    def _keys(cls, values: dict[str, str]) -> dict[str, str]:
        for key, value in values.items():
            problem = key_problem(key) or value_problem(value)
            if problem:
                raise ValueError(f"[{key}] {problem}")
        return values

    @model_validator(mode="after")
    def _disjoint(self) -> AppConfig:
        both = sorted(set(self.environment) & set(self.secrets))
        if both:
            raise ValueError(
                f"[secrets.{both[0]}] is also in app.environment: a key has one source"
            )
        return self


def refresh_time_floor(refresh: InstanceRefreshConfig) -> int:
    """Seconds an instance refresh takes at the very least: every checkpoint's delay plus one
    warmup. A refresh timeout below this fails every rollout, however healthy."""
    return len(refresh.checkpoint_percentages) * refresh.checkpoint_delay + (
        refresh.instance_warmup
    )


# ---------------------------------------------------------------------------------------------
# golden-fleet:analysis -- how a rollout judges the new color against the stable one
# (release/judge.py). The judge needs no AWS, so the defaults live here, beside the rules.
# ---------------------------------------------------------------------------------------------
# metric -> (tolerance, weight, critical). Errors are critical: a significant rise of more than a
# quarter fails the step whatever the score; so is p99, the tail users notice first.
ANALYSIS_METRIC_DEFAULTS: dict[str, tuple[float, float, bool]] = {
    "target5xx": (0.25, 30.0, True),
    "connectionErrors": (0.25, 20.0, True),
    "p50Latency": (0.20, 10.0, False),
    "p90Latency": (0.20, 15.0, False),
    "p99Latency": (0.25, 25.0, True),
}
# CloudWatch has an ALB's minute typically a minute or more after it ends, and rarely more than
# three: a window is judged once its last minute is in, waiting at most this long after the bake
# (release/publication.py). Fifteen minutes at most: later than that the data is not late, it is
# lost, and a rollout held on it holds its traffic split unjudged.
PUBLICATION_WAIT_DEFAULT = 180
PUBLICATION_WAIT_MAX = 900


class MetricAnalysis(_Strict):
    """One judged metric; a key left out keeps that metric's default."""

    enabled: bool = True
    tolerance: StrictFloat | StrictInt | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Relative effect below which a difference does not count (0.25 = 25 %).",
    )
    weight: StrictFloat | StrictInt | None = Field(default=None, ge=0, le=100)
    critical: bool | None = Field(
        default=None, description="A failure fails the window whatever the score."
    )


class AnalysisMetrics(_Strict):
    target5xx: MetricAnalysis = Field(default_factory=MetricAnalysis)
    connection_errors: MetricAnalysis = Field(
        alias="connectionErrors", default_factory=MetricAnalysis
    )
    p50_latency: MetricAnalysis = Field(alias="p50Latency", default_factory=MetricAnalysis)
    p90_latency: MetricAnalysis = Field(alias="p90Latency", default_factory=MetricAnalysis)
    p99_latency: MetricAnalysis = Field(alias="p99Latency", default_factory=MetricAnalysis)

    def resolved(self) -> dict[str, tuple[float, float, bool]]:
        """Every enabled metric by its key: (tolerance, weight, critical), defaults filled in."""
        chosen = {}
        for field_name, info in type(self).model_fields.items():
            key = info.alias or field_name
            metric: MetricAnalysis = getattr(self, field_name)
            if not metric.enabled:
                continue
            tolerance, weight, critical = ANALYSIS_METRIC_DEFAULTS[key]
            chosen[key] = (
                float(tolerance if metric.tolerance is None else metric.tolerance),
                float(weight if metric.weight is None else metric.weight),
                critical if metric.critical is None else metric.critical,
            )
        return chosen


class AnalysisConfig(_Strict):
    """How each step's bake is judged: the new color against the stable one, same window."""

    enabled: bool = Field(default=True, description="Off: the alarms alone judge each step.")
    confidence: StrictFloat = Field(default=0.95, ge=0.8, le=0.999)
    min_requests: StrictInt = Field(
        alias="minRequests",
        default=300,
        ge=1,
        le=100_000_000,
        description="Requests each color must serve in a window for it to be judged.",
    )
    max_extensions: StrictInt = Field(
        alias="maxExtensions",
        default=2,
        ge=0,
        le=10,
        description="Times an inconclusive or marginal window is extended before it fails.",
    )
    publication_wait: StrictInt = Field(
        alias="publicationWait",
        default=PUBLICATION_WAIT_DEFAULT,
        ge=0,
        le=PUBLICATION_WAIT_MAX,
        description=(
            "Seconds a window's judgement waits, after its end, for CloudWatch to publish its "
            "last minute (load balancer metrics come a minute or more late); 0: judge at once."
        ),
    )
    pass_score: StrictFloat | StrictInt = Field(alias="passScore", default=95.0, gt=0, le=100)
    marginal_score: StrictFloat | StrictInt = Field(
        alias="marginalScore", default=75.0, ge=0, le=100
    )
    metrics: AnalysisMetrics = Field(default_factory=AnalysisMetrics)

    @model_validator(mode="after")
    def _thresholds(self) -> AnalysisConfig:
        if self.marginal_score > self.pass_score:
            raise ValueError(
                f"[marginalScore] must not exceed passScore (got {self.marginal_score} > "
                f"{self.pass_score})"
            )
        if not any(weight > 0 for _, weight, _ in self.metrics.resolved().values()):
            raise ValueError(
                "[metrics] at least one metric must be enabled with a weight above 0: the "
                "score would judge nothing"
            )
        return self


# ---------------------------------------------------------------------------------------------
# The whole stack
# ---------------------------------------------------------------------------------------------
# config key (after "golden-fleet:") -> model field name
CONFIG_KEYS: dict[str, str] = {
    "service": "service",
    "network": "network",
    "image": "image",
    "fleets": "fleets",
    "traffic": "traffic",
    "instanceRefresh": "instance_refresh",
    "loadBalancer": "load_balancer",
    "release": "release",
    "health": "health",
    "logs": "logs",
    "waf": "waf",
    "scaling": "scaling",
    "app": "app",
    "analysis": "analysis",
}


class StackConfig(_Strict):
    region: str = Field(pattern=_REGION.pattern)
    """The stack's AWS region, from `aws:region`."""
    service: ServiceConfig
    network: NetworkConfig
    image: ImageConfig
    fleets: Fleets
    traffic: Traffic
    instance_refresh: InstanceRefreshConfig = Field(default_factory=InstanceRefreshConfig)
    load_balancer: LoadBalancerConfig = Field(default_factory=LoadBalancerConfig)
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    waf: WafConfig = Field(default_factory=WafConfig)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    app: AppConfig = Field(default_factory=AppConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)

    @model_validator(mode="after")
    def _app_secrets_in_region(self) -> StackConfig:
        for key, value in self.app.secrets.items():
            try:
                secret_ref(value, self.region)
            except ValueError as error:
                raise ValueError(f"[app.secrets.{key}] {error}") from None
        for color in COLORS:
            document = user_data_document(
                boot_config(
                    self.service.name,
                    self.region,
                    platform_environment(
                        self.service.port, color.value, self.fleets[color].version
                    ),
                    self.app.environment,
                    self.app_secrets,
                )
            )
            if len(document.encode()) > USER_DATA_LIMIT:
                raise ValueError(
                    f"[app] the boot config makes {color.value}'s user data "
                    f"{len(document.encode())} bytes; EC2 takes at most {USER_DATA_LIMIT}: keep "
                    "large values in Secrets Manager or SSM and name them in app.secrets"
                )
        return self

    @property
    def app_secrets(self) -> dict[str, Any]:
        """``app.secrets`` parsed (:class:`components.app_environment.SecretRef` per key)."""
        return {key: secret_ref(value, self.region) for key, value in self.app.secrets.items()}

    @model_validator(mode="after")
    def _refresh_timeout_covers_checkpoints(self) -> StackConfig:
        floor = refresh_time_floor(self.instance_refresh)
        if self.health.refresh_timeout <= floor:
            raise ValueError(
                f"[health.refreshTimeout] must exceed {floor} seconds, the least an instance "
                "refresh takes with instanceRefresh's checkpoints, checkpointDelay and "
                f"instanceWarmup (got {self.health.refresh_timeout})"
            )
        return self

    @model_validator(mode="after")
    def _image_regions(self) -> StackConfig:
        image = self.image
        if isinstance(image, BakeImage) and self.region in image.copy_to_regions:
            raise ValueError(
                f"[image.copyToRegions] must not list the stack's own region {self.region}: "
                "the bake builds there; copies go to other regions"
            )
        if isinstance(image, PromoteImage):
            key_region = image.kms_key_arn.split(":")[3]
            if key_region != self.region:
                raise ValueError(
                    f"[image.kmsKeyArn] must be the image key of this stack's region "
                    f"{self.region} (images copied there are encrypted with that region's key); "
                    f"got a key in {key_region}"
                )
        return self

    @model_validator(mode="after")
    def _traffic_needs_capacity(self) -> StackConfig:
        for color in COLORS:
            weight, capacity = self.traffic[color], self.fleets[color].capacity
            if weight > 0 and capacity.min < 1:
                raise ValueError(
                    f"[fleets.{color.value}.capacity.min] must be at least 1 because "
                    f"{color.value} receives {weight}% of traffic (traffic.{color.value})"
                )
        return self

    @model_validator(mode="after")
    def _canary_restore_fits(self) -> StackConfig:
        record = self.release.canary_restore
        if record is None:
            return self
        color = record.color.value
        if record.color is self.stable_color:
            raise ValueError(
                f"[release.canaryRestore.color] names {color}, the stable color: the record "
                "belongs to the color being released (the release command writes it on the "
                "first shift and removes it on finish) — set it to the other color, or remove "
                "it and put that color's capacity.min back by hand"
            )
        if record.min > record.desired:
            raise ValueError(
                f"[release.canaryRestore.desired] must be at least canaryRestore.min "
                f"(got min={record.min}, desired={record.desired})"
            )
        capacity = self.fleets[record.color].capacity
        if record.desired > capacity.max:
            raise ValueError(
                f"[release.canaryRestore.desired] {record.desired} is above "
                f"fleets.{color}.capacity.max ({capacity.max}): finish could not put it back "
                f"— lower it, or raise fleets.{color}.capacity.max"
            )
        return self

    @property
    def stable_color(self) -> Color:
        if self.release.stable is not None:
            return self.release.stable
        return Color.GREEN if self.traffic.green > self.traffic.blue else Color.BLUE

    @property
    def live_color(self) -> Color:
        """The color taking the larger share of traffic (the stable one on a 50/50 split)."""
        if self.traffic.blue == self.traffic.green:
            return self.stable_color
        return Color.BLUE if self.traffic.blue > self.traffic.green else Color.GREEN

    @property
    def https(self) -> bool:
        return self.network.certificate_arn is not None


def _key_path(loc: tuple[Any, ...]) -> str:
    """``("fleets", "green", "capacity", "min")`` -> ``golden-fleet:fleets.green.capacity.min``."""
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in ("bake", "promote"))]
    if not parts:
        return f"{NAMESPACE}:"
    if parts[0] == "region":
        return "aws:region"
    head = next((k for k, f in CONFIG_KEYS.items() if f == parts[0]), parts[0])
    key = f"{NAMESPACE}:{head}"
    for part in parts[1:]:
        key += f"[{part}]" if part.isdigit() else f".{part}"
    return key


def _format(error: dict[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    loc = tuple(error["loc"])
    # A model-level rule may name a more precise key itself, as "[path] message".
    if message.startswith("[") and "]" in message:
        inner, message = message[1:].split("] ", 1)
        loc = loc + tuple(inner.split("."))
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see the configuration reference)"
    elif error["type"] == "missing":
        message = "is required"
    elif error["type"] == "union_tag_invalid":
        message = "mode must be 'bake' or 'promote'"
    elif error["type"] == "string_pattern_mismatch":
        message = f"{error.get('input')!r} is not well-formed ({message})"
    return f"{_key_path(loc)}: {message}"


# Keys whose values the program writes where anyone who may describe a launch template reads
# them: a Pulumi secret there would be published in clear.
PUBLISHED_KEYS = (f"{NAMESPACE}:app",)


def parse_stack_config(config: Mapping[str, Any], secret_keys: Iterable[str] = ()) -> StackConfig:
    """Validate a stack's whole ``config:`` mapping (``"golden-fleet:service": {...}`` etc.).

    Keys of other namespaces are left alone, except ``aws:region``, which the bake and the
    image lookup need. ``secret_keys``: the keys Pulumi holds as secrets (``pulumi config set
    --secret``). Raises :class:`ConfigError` listing every fault with its key path.
    """
    problems: list[str] = [
        f"{key}: holds a Pulumi secret, but its values are written into the launch template's "
        "user data, readable by anyone who may describe it — keep secrets in Secrets Manager "
        "or SSM and name them in app.secrets"
        for key in PUBLISHED_KEYS
        if key in set(secret_keys)
    ]
    data: dict[str, Any] = {}
    if "aws:region" in config:
        data["region"] = config["aws:region"]
    for full_key, value in config.items():
        namespace, _, key = str(full_key).partition(":")
        if namespace != NAMESPACE:
            continue
        if key not in CONFIG_KEYS:
            problems.append(
                f"{full_key}: unknown key (known keys: {', '.join(sorted(CONFIG_KEYS))})"
            )
            continue
        data[CONFIG_KEYS[key]] = value
    try:
        # Strict, through JSON: a boolean is not a number (`min: true` is not 1) and a string is
        # not a number either, while enums still take their string values. YAML-only types
        # (dates) become strings and then fail the string rules that apply.
        parsed = StackConfig.model_validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as error:
        raise ConfigError(problems + [_format(e) for e in error.errors()]) from None
    if problems:
        raise ConfigError(problems)
    return parsed
