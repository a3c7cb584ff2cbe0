"""Whether a version's application package exists and has a digest, before deploy writes.

A stack with ``image.app`` bakes each version from the package its template names
(``{version}`` filled in): ``pulumi up`` would fail in the bake, minutes later, if the package
or its digest were missing. ``deploy`` looks first, with what the bake itself will read:

- ``s3://`` — HeadObject of the package (``ChecksumMode=ENABLED``: S3 returns the object's
  ``ChecksumSHA256`` only when asked, S3 API reference, HeadObject), then either that checksum
  (``sha256: s3``; a multipart upload's *composite* checksum is not the object's SHA-256) or
  the sidecar object ``<key>.sha256``.
- ``https://`` — HEAD of the package and of its sidecar, TLS verified.
- a project path — the file and its sidecar beside it.

No credentials, a denied call or no network give UNKNOWN, which ``deploy`` reports as a warning
(``--require-baked`` refuses instead), as it does for the image lookup.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import VERSION_PLACEHOLDER, BakeImage, StackConfig
from release.transitions import BakeStatus

SIDECAR_SUFFIX = ".sha256"
HTTP_TIMEOUT_S = 5


@dataclass(frozen=True)
class PackageCheck:
    status: BakeStatus  # FOUND, MISSING or UNKNOWN
    detail: str  # what was found, what is missing, or why nothing was learnt


def package_uri(template: str, version: str) -> str:
    """The package of ``version``: the template with its placeholder filled."""
    return template.replace(VERSION_PLACEHOLDER, version)


def check_package(
    cfg: StackConfig,
    version: str,
    root: Path,
    s3: Any = None,
    urlopen: Callable[..., Any] = urllib.request.urlopen,
) -> PackageCheck | None:
    """None when the stack names no package (the sample app, or a promote stack, whose images
    come from the baking stack); otherwise what was found. Never raises for AWS or network
    trouble."""
    if not isinstance(cfg.image, BakeImage) or cfg.image.app is None:
        return None
    app = cfg.image.app
    uri = package_uri(app.package, version)
    if uri.startswith("s3://"):
        return _check_s3(cfg.region, uri, app.sha256 == "s3", s3)
    if uri.startswith("https://"):
        return _check_https(uri, urlopen)
    return _check_local(root, uri)


def _check_local(root: Path, uri: str) -> PackageCheck:
    package = root / uri
    if not package.is_file():
        return PackageCheck(BakeStatus.MISSING, f"no file {uri} in the project")
    if not Path(f"{package}{SIDECAR_SUFFIX}").is_file():
        return PackageCheck(
            BakeStatus.MISSING, f"{uri} has no digest: no {uri}{SIDECAR_SUFFIX} beside it"
        )
    return PackageCheck(BakeStatus.FOUND, f"{uri} and {uri}{SIDECAR_SUFFIX}")


def _check_https(uri: str, urlopen: Callable[..., Any]) -> PackageCheck:
    for url, what in ((uri, "package"), (f"{uri}{SIDECAR_SUFFIX}", "digest (sidecar)")):
        request = urllib.request.Request(url, method="HEAD")
        try:
            urlopen(request, timeout=HTTP_TIMEOUT_S).close()
        except urllib.error.HTTPError as error:
            if error.code in (404, 410):
                return PackageCheck(BakeStatus.MISSING, f"no {what} at {url} (HTTP {error.code})")
            return PackageCheck(BakeStatus.UNKNOWN, f"{url} answered HTTP {error.code}")
        except (urllib.error.URLError, OSError) as error:
            return PackageCheck(BakeStatus.UNKNOWN, f"{url} could not be reached ({error})")
    return PackageCheck(BakeStatus.FOUND, f"{uri} and its {SIDECAR_SUFFIX} sidecar")


def _check_s3(region: str, uri: str, s3_digest: bool, s3: Any) -> PackageCheck:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if s3 is None:
        from release import aws_clients

        if not aws_clients.has_credentials(region):
            return PackageCheck(BakeStatus.UNKNOWN, "no AWS credentials found")
        s3 = aws_clients.client("s3", region)

    def head(object_key: str) -> dict | None:
        try:
            return s3.head_object(Bucket=bucket, Key=object_key, ChecksumMode="ENABLED")
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    try:
        found = head(key)
        if found is None:
            return PackageCheck(BakeStatus.MISSING, f"no object {uri}")
        if s3_digest:
            checksum = found.get("ChecksumSHA256")
            if not checksum:
                return PackageCheck(
                    BakeStatus.MISSING,
                    f"{uri} has no SHA-256 checksum: upload it with a SHA-256 checksum "
                    "(e.g. aws s3 cp --checksum-algorithm SHA256), or use the sidecar",
                )
            if found.get("ChecksumType") == "COMPOSITE" or "-" in checksum:
                return PackageCheck(
                    BakeStatus.MISSING,
                    f"{uri} carries a multipart upload's composite checksum, not the object's "
                    "SHA-256: upload it in one part, or use the sidecar",
                )
            return PackageCheck(BakeStatus.FOUND, f"{uri} (ChecksumSHA256 {checksum})")
        if head(f"{key}{SIDECAR_SUFFIX}") is None:
            return PackageCheck(
                BakeStatus.MISSING, f"{uri} has no digest: no object {uri}{SIDECAR_SUFFIX}"
            )
        return PackageCheck(BakeStatus.FOUND, f"{uri} and {uri}{SIDECAR_SUFFIX}")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        return PackageCheck(BakeStatus.UNKNOWN, f"AWS refused the lookup of {uri}: {code}")
    except BotoCoreError as error:
        return PackageCheck(BakeStatus.UNKNOWN, f"the lookup of {uri} failed: {error}")
