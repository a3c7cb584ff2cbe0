"""The golden image contract: service and version rules, image names, the name lookup, the tags.

One module for every entry point that names, finds or checks an image: the Pulumi program
(``components.config``, ``components.golden_image``), the release command and the bake
(``packer/baking``). It imports only the standard library, so the bake and the release command
load it without pulumi or pydantic (``python -X importtime -c 'import components.image_contract'``).

Every check is ``re.fullmatch`` over explicit ASCII classes: ``$`` would also match before a
trailing newline and ``\\d`` matches any Unicode digit, and either would let ``"1.0.0\\n"`` or an
Arabic-Indic digit into an AMI name, a tag or a command line.
"""

from __future__ import annotations

import re
import time

# AWS caps target-group names at 32 characters; the program names them "<service>-green-tg" plus
# an 8-character random suffix, so 14 + 9 + 8 = 31 is the longest that fits. The bake applies the
# same limit: an image whose service the program refuses could never be deployed.
SERVICE_NAME_MIN = 2
SERVICE_NAME_MAX = 14
SERVICE_NAME_PATTERN = r"[a-z][a-z0-9-]*[a-z0-9]"

# Semantic Versioning 2.0.0 (semver.org's grammar) without build metadata: "+" is not allowed in
# AMI names (EC2 RegisterImage: letters, digits, ( ) [ ] space . / - ' @ _), and two builds that
# differ only in metadata would be one version to an operator.
_NUMBER = r"(?:0|[1-9][0-9]*)"
_PRERELEASE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
SEMVER_PATTERN = rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}(?:-{_PRERELEASE_ID}(?:\.{_PRERELEASE_ID})*)?"
# EC2 limits AMI names to 128 characters; service (14) + version + timestamp (16) + dashes.
IMAGE_NAME_MAX = 128
VERSION_MAX = IMAGE_NAME_MAX - SERVICE_NAME_MAX - 16 - 2

# The build time suffix of every image name: UTC, sortable, no characters AMI names refuse.
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
TIMESTAMP_PATTERN = r"[0-9]{8}T[0-9]{6}Z"

MANAGED_BY = "golden-fleet"
# The tags the bake puts on every image and its snapshots (packer/locals.pkr.hcl `local.tags`;
# tests/test_packer_template.py holds the two together). Tags are invisible to the accounts an
# image is shared with, so lookups across accounts go by name; these serve the owning account.
# BakeRun identifies the bake that registered the image: a failed bake removes only its own image,
# never that of another bake of the same version started in the same second (same name).
IMAGE_TAG_KEYS = (
    "Service",
    "Version",
    "TemplateDigest",
    "SourceAmi",
    "BuildTime",
    "BakeRun",
    "ManagedBy",
)

# Foundation and application layers (packer/locals.pkr.hcl `common_tags` and `layer_tags`). Every
# image of either layer carries COMMON_TAG_KEYS; a foundation adds its runtime, an application
# image its service, version and lineage: the foundation it was built on, by id, name and time.
LAYER_FOUNDATION = "foundation"
LAYER_APPLICATION = "application"
COMMON_TAG_KEYS = ("TemplateDigest", "SourceAmi", "BuildTime", "BakeRun", "ManagedBy", "Layer")
FOUNDATION_TAG_KEYS = ("Runtime",)
APPLICATION_TAG_KEYS = (
    "Service",
    "Version",
    "Foundation",
    "FoundationName",
    "FoundationBuildTime",
    "AppPackage",
    "AppSha256",
)
FOUNDATION_NAME_PREFIX = "golden-foundation-"
RUNTIME_PATTERN = r"[a-z][a-z0-9]*"
_RUNTIME = re.compile(RUNTIME_PATTERN)

_SEMVER = re.compile(SEMVER_PATTERN)
_SERVICE = re.compile(SERVICE_NAME_PATTERN)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)


def is_valid_version(version: object) -> bool:
    """True for an immutable semantic version such as ``1.4.0`` or ``2.0.0-rc.1``."""
    return (
        isinstance(version, str)
        and len(version) <= VERSION_MAX
        and _SEMVER.fullmatch(version) is not None
    )


def version_key(version: str) -> tuple:
    """A sort key in semantic-version precedence (semver.org, section 11): numbers numerically,
    a pre-release below its release, numeric identifiers below alphanumeric ones, a longer
    identifier list above its prefix. ``version`` must be valid (:func:`is_valid_version`)."""
    core, _, pre = version.partition("-")
    major, minor, patch = (int(n) for n in core.split("."))
    if not pre:
        return (major, minor, patch, 1, ())
    ids = tuple(
        (0, int(p), "") if p.isascii() and p.isdigit() else (1, 0, p) for p in pre.split(".")
    )
    return (major, minor, patch, 0, ids)


def version_problem(version: object) -> str | None:
    """Why ``version`` is refused, or None. ``latest``, build metadata and anything a shell would
    read specially fall outside the semver alphabet."""
    if is_valid_version(version):
        return None
    return (
        f"{version!r} is not an immutable semantic version (e.g. 1.4.0 or 2.0.0-rc.1; no "
        f"build metadata '+...', at most {VERSION_MAX} characters); moving labels such as "
        "'latest' and shell metacharacters are refused"
    )


def is_valid_service_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and SERVICE_NAME_MIN <= len(name) <= SERVICE_NAME_MAX
        and _SERVICE.fullmatch(name) is not None
    )


def service_name_problem(name: object) -> str | None:
    """Why ``name`` is refused as a service name, or None."""
    if is_valid_service_name(name):
        return None
    return (
        f"{name!r} must be {SERVICE_NAME_MIN}-{SERVICE_NAME_MAX} characters of lowercase "
        "letters, digits and '-', starting with a letter and not ending with '-' (it is part "
        "of AWS names)"
    )


def build_timestamp(now: float | None = None) -> str:
    """The UTC build time as it appears in image names (``20261126T080000Z``)."""
    return time.strftime(TIMESTAMP_FORMAT, time.gmtime(now))


def image_name(service: str, version: str, build_time: str) -> str:
    """``<service>-<version>-<timestamp>``: the image's name, the key accounts share it by."""
    if not _TIMESTAMP.fullmatch(build_time):
        raise ValueError(f"build time {build_time!r} is not {TIMESTAMP_FORMAT}")
    return f"{service}-{version}-{build_time}"


def foundation_name(runtime: str, build_time: str) -> str:
    """``golden-foundation-<runtime>-<timestamp>``: the name of a foundation image."""
    if not _RUNTIME.fullmatch(runtime):
        raise ValueError(f"runtime {runtime!r} is not {RUNTIME_PATTERN}")
    if not _TIMESTAMP.fullmatch(build_time):
        raise ValueError(f"build time {build_time!r} is not {TIMESTAMP_FORMAT}")
    return f"{FOUNDATION_NAME_PREFIX}{runtime}-{build_time}"


def foundation_name_filter(runtime: str) -> str:
    """The EC2 ``name`` filter of one runtime's foundations (narrow the result with
    :func:`is_foundation_name`)."""
    return f"{FOUNDATION_NAME_PREFIX}{runtime}-*"


def is_foundation_name(name: object, runtime: str | None = None) -> bool:
    """True if ``name`` is a foundation image's name (of ``runtime``, if given)."""
    runtime_pattern = re.escape(runtime) if runtime is not None else RUNTIME_PATTERN
    return (
        isinstance(name, str)
        and re.fullmatch(
            rf"{re.escape(FOUNDATION_NAME_PREFIX)}{runtime_pattern}-{TIMESTAMP_PATTERN}", name
        )
        is not None
    )


def image_name_filter(service: str, version: str) -> str:
    """The EC2 ``name`` filter of one version's images. Wider than the version on purpose
    (``1.4.0-*`` also matches ``1.4.0-rc.1-...``): narrow the result with the exact rule."""
    return f"{service}-{version}-*"


def image_name_pattern(service: str, version: str) -> str:
    """The unanchored regular expression of exactly this service's and version's image names."""
    return rf"{re.escape(service)}-{re.escape(version)}-{TIMESTAMP_PATTERN}"


def image_name_regex(service: str, version: str) -> str:
    """``^<pattern>$`` for the provider's ``name_regex`` (Go RE2, in which ``$`` without the
    ``m`` flag is the end of the text). In Python use :func:`is_image_name`, or ``re.fullmatch``
    on this string: ``re.match``/``re.search`` would let ``$`` pass a trailing newline."""
    return f"^{image_name_pattern(service, version)}$"


def is_image_name(name: object, service: str, version: str) -> bool:
    """True if ``name`` is exactly one of this service's and version's image names."""
    return (
        isinstance(name, str)
        and re.fullmatch(image_name_pattern(service, version), name) is not None
    )


def image_tags(
    service: str,
    version: str,
    template_digest: str,
    source_ami: str,
    build_time: str,
    bake_run: str,
) -> dict[str, str]:
    """The tag map of one image, keyed as :data:`IMAGE_TAG_KEYS`."""
    return {
        "Service": service,
        "Version": version,
        "TemplateDigest": template_digest,
        "SourceAmi": source_ami,
        "BuildTime": build_time,
        "BakeRun": bake_run,
        "ManagedBy": MANAGED_BY,
    }


def tag_map(image: dict) -> dict[str, str]:
    """An EC2 ``Tags`` list (``[{"Key": ..., "Value": ...}]``) as a dict."""
    return {t["Key"]: t["Value"] for t in image.get("Tags") or []}


# ---------------------------------------------------------------------------------------------
# Layers: foundation images and the application images built on them
# ---------------------------------------------------------------------------------------------
# An application image names its foundation in tags (owner account) and in its description
# (every account it is shared with).
LAYER_TAG = "Layer"
RUNTIME_TAG = "Runtime"
FOUNDATION_TAG = "Foundation"  # the foundation's AMI id
FOUNDATION_NAME_TAG = "FoundationName"
FOUNDATION_BUILD_TIME_TAG = "FoundationBuildTime"

# Bounded on both sides so that a longer name or a suffix is never read as a foundation's name.
_FOUNDATION_IN_TEXT = re.compile(
    rf"(?<![A-Za-z0-9-]){re.escape(FOUNDATION_NAME_PREFIX)}({RUNTIME_PATTERN})-"
    rf"({TIMESTAMP_PATTERN})(?![A-Za-z0-9])"
)


def foundation_runtime(name: str) -> str | None:
    """The runtime part of a foundation's name, or None for any other name."""
    match = _FOUNDATION_IN_TEXT.fullmatch(name) if isinstance(name, str) else None
    return match.group(1) if match else None


def foundation_in_text(text: object) -> str | None:
    """The first foundation name in ``text`` (an application image's description), or None."""
    if not isinstance(text, str):
        return None
    match = _FOUNDATION_IN_TEXT.search(text)
    return match.group(0) if match else None


# ---------------------------------------------------------------------------------------------
# Revocation
# ---------------------------------------------------------------------------------------------
# A revoked image carries Revoked=<reason> and RevokedAt=<UTC ISO 8601> (owner account), is
# deprecated, and its description starts with "REVOKED: <reason> | ": tags are invisible to the
# accounts an image is shared with, its description and deprecation are not.
REVOKED_TAG = "Revoked"
REVOKED_AT_TAG = "RevokedAt"
# DescribeImages' State of an image DisableImage turned off (revoke does it once nothing uses
# the image): it cannot be launched, and DescribeImages lists it only when asked
# (IncludeDisabled; DisableImage API reference).
DISABLED = "disabled"
REVOKED_PREFIX = "REVOKED: "
REVOKED_SEPARATOR = " | "
# EC2 caps an AMI description at 255 characters (RegisterImage, ModifyImageAttribute) and a tag
# value at 256 (EC2 User Guide, "Tag restrictions").
DESCRIPTION_MAX = 255
TAG_VALUE_MAX = 256
# The characters AWS's tagging guidance calls portable across services: letters, digits, spaces
# and _ . : / = + - @. No "|", so the reason ends where the separator starts.
REASON_PATTERN = r"[A-Za-z0-9_.:/=+@-](?:[A-Za-z0-9 _.:/=+@-]*[A-Za-z0-9_.:/=+@-])?"
_REASON = re.compile(REASON_PATTERN)
_REVOKED_DESCRIPTION = re.compile(
    rf"{re.escape(REVOKED_PREFIX)}({REASON_PATTERN}){re.escape(REVOKED_SEPARATOR)}(.*)", re.S
)


def revocation_reason_problem(reason: object) -> str | None:
    """Why ``reason`` cannot be recorded as a revocation, or None."""
    if isinstance(reason, str) and len(reason) <= TAG_VALUE_MAX and _REASON.fullmatch(reason):
        return None
    return (
        f"--reason {str(reason)[:60]!r} must be 1-{TAG_VALUE_MAX} characters of ASCII letters, "
        "digits, spaces and _ . : / = + - @ (a tag value every AWS service accepts), not "
        "starting or ending with a space"
    )


def revoked_description(reason: str, description: str | None) -> str:
    """``REVOKED: <reason> | <description>``; ValueError when it exceeds EC2's 255 characters."""
    text = f"{REVOKED_PREFIX}{reason}{REVOKED_SEPARATOR}{description or ''}"
    if len(text) > DESCRIPTION_MAX:
        room = DESCRIPTION_MAX - len(text) + len(reason)
        raise ValueError(
            f"the description would be {len(text)} characters, over EC2's {DESCRIPTION_MAX}: "
            f"a reason of at most {max(room, 0)} characters fits this image"
        )
    return text


def revocation_in_description(description: object) -> str | None:
    """The reason of a ``REVOKED: <reason> | ...`` description, or None."""
    if not isinstance(description, str):
        return None
    match = _REVOKED_DESCRIPTION.fullmatch(description)
    return match.group(1) if match else None


def revocation(image: dict) -> str | None:
    """Why ``image`` (a DescribeImages entry) was revoked, or None: its Revoked tag (seen by the
    owner account), else its description's prefix (seen by every account)."""
    reason = tag_map(image).get(REVOKED_TAG)
    return reason if reason else revocation_in_description(image.get("Description"))


# ---------------------------------------------------------------------------------------------
# The application package (image.app): the template naming each version's package, its unit
# ---------------------------------------------------------------------------------------------
_PACKAGE_CHARS = re.compile(r"[A-Za-z0-9._~/+=-]+")
_PACKAGE_HTTPS = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/+%=-]+")
_PACKAGE_S3 = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/[A-Za-z0-9._~/+=-]+")
# A systemd unit name (systemd.unit(5)): at most 255 characters of letters, digits and ":-_.\",
# here a service, optionally a template instance ("name@instance.service").
_UNIT = re.compile(r"[A-Za-z0-9:_.-]+(@[A-Za-z0-9:_.-]*)?\.service")
UNIT_NAME_MAX = 255
VERSION_PLACEHOLDER = "{version}"


def package_template_problem(template: str) -> str | None:
    """Why ``template`` cannot name the package of every version, or None. The wrapper
    substitutes the version for ``{version}``; the result must be an s3:// object, an https://
    URL without credentials, or a relative path inside the project."""
    if VERSION_PLACEHOLDER not in template:
        return f"{template!r} must contain {VERSION_PLACEHOLDER} (one package per version)"
    sample = template.replace(VERSION_PLACEHOLDER, "1.0.0")
    if "{" in sample or "}" in sample:
        return f"{template!r}: {VERSION_PLACEHOLDER} is the only placeholder"
    if not sample.endswith(".deb"):
        return f"{template!r} must name a Debian package (*.deb)"
    if sample.startswith("s3://"):
        return (
            None
            if _PACKAGE_S3.fullmatch(sample)
            else (
                f"{template!r} is not s3://<bucket>/<key> (letters, digits and ._~/+=- in the key)"
            )
        )
    if sample.startswith("https://"):
        return (
            None
            if _PACKAGE_HTTPS.fullmatch(sample)
            else (
                f"{template!r} is not https://<host>/<path> (no credentials, query or fragment: "
                "the URL is part of the bake's command line)"
            )
        )
    if "://" in sample:
        return f"{template!r}: only s3:// and https:// packages (or a project path) are fetched"
    parts = sample.split("/")
    if (
        sample.startswith("/")
        or ".." in parts
        or "" in parts
        or not _PACKAGE_CHARS.fullmatch(sample)
    ):
        return (
            f"{template!r} must be a relative path inside the project (no leading /, no .. "
            "or empty segment; letters, digits and ._~/+=-)"
        )
    return None


def unit_name_problem(unit: str) -> str | None:
    """Why ``unit`` is not a systemd service unit name, or None."""
    if len(unit) > UNIT_NAME_MAX or not _UNIT.fullmatch(unit):
        return f"{unit!r} is not a systemd service unit name such as checkout.service"
    return None
