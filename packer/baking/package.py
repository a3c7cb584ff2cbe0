"""The application package of a bake: where it comes from, its digest, and what it claims to be.

One path for every service: a Debian package, fetched (or, for the sample service, built from
app/) into the bake's scratch directory before Packer runs, verified against its sha256 and
checked against the bake's service and version. Packer's file provisioner then hands it to
scripts/50-app.sh, which installs it with apt. Nothing here builds an image: a package that
does not fit is refused while nothing has been created.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from baking.errors import EXIT_CONFLICT, EXIT_PREREQUISITE, EXIT_USAGE, BakeError
from baking.layout import APP_DIR, PACKER_DIR
from components.image_contract import unit_name_problem

SIDECAR = "sidecar"
S3 = "s3"
DIGEST_SOURCES = (SIDECAR, S3)
# A sidecar is one line; anything larger is not one.
_SIDECAR_MAX = 4096
_SHA256 = re.compile(r"[0-9a-f]{64}")
# sha256sum's output: the digest, then optionally a space, a mode character (space or `*`) and
# the file name.
_SIDECAR_LINE = re.compile(r"([0-9A-Fa-f]{64})(?:[ ][ *][^\r\n]+)?")
# Debian's version syntax (deb-version(7)): [epoch:]upstream[-revision].
_DEBIAN_VERSION = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*")
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)")
# The sample service's sources, relative to app/, and where the package puts them.
SAMPLE_SERVER = "server.py"
SAMPLE_UNIT = "service.unit"
# Fixed file times of the sample package (2020-01-01T00:00:00Z): the same sources give the same
# bytes, so the same sha256, on any machine and at any time.
SAMPLE_EPOCH = 1577836800
# What the file provisioner uploads next to the package (scripts/50-app.sh installs them): the
# boot-environment reader and the image test that starts the unit as an instance would.
BOOT_READER = PACKER_DIR / "files" / "boot-environment.py"
SERVICE_CHECK = PACKER_DIR / "files" / "service-check.py"
UPLOADED_PACKAGE = "package.deb"


@dataclass(frozen=True)
class PackageSource:
    """Where a bake's package comes from; ``uri`` None means the sample service from app/."""

    uri: str | None = None
    sha256: str | None = None
    sha256_from: str = SIDECAR
    unit: str | None = None


@dataclass(frozen=True)
class Package:
    """A fetched, verified package in the bake's scratch directory."""

    path: Path
    sha256: str
    name: str
    version: str
    unit: str
    origin: str

    @property
    def label(self) -> str:
        """``<package>_<version>``, as the AppPackage tag carries it."""
        return f"{self.name}_{self.version}"

    def content_values(self) -> dict[str, str]:
        """The Packer variables of the package that shape the image (varfiles.CONTENT_DEFAULTS):
        the digest enters the template digest, so another package is another image."""
        return {"app_sha256": self.sha256, "app_unit": self.unit}

    def packer_variables(self) -> dict[str, str]:
        """Everything the template needs of the package: the upload directory is the
        package's own (:func:`prepare_upload`)."""
        return {
            **self.content_values(),
            "app_upload_dir": str(self.path.parent),
            "app_package_label": self.label,
        }

    def description_part(self) -> str:
        """What the AMI description says of the package (other accounts read descriptions)."""
        return f"package sha256 {self.sha256}"


def resolve_uri(template: str, version: str) -> str:
    """The package URI of ``version``: every ``{version}`` replaced, no other braces allowed."""
    uri = template.replace("{version}", version)
    if "://" in uri:
        from urllib.parse import urlsplit

        parts = urlsplit(uri)
        # A user name, password or query (a presigned URL's signature) is a credential: it would
        # be in the command line, the logs and the stack's config. Checked first, so that no
        # refusal below repeats it.
        if parts.username is not None or parts.password is not None or parts.query:
            raise BakeError(
                EXIT_USAGE,
                "--package: a package URI carries no credentials or query; serve it without, "
                "or use s3:// with the credential chain",
            )
    if "{" in uri or "}" in uri:
        raise BakeError(
            EXIT_USAGE,
            f"--package {template!r}: the only placeholder allowed is {{version}}",
        )
    if uri.startswith("http://"):
        raise BakeError(
            EXIT_USAGE, f"--package {uri!r}: plain http is refused; use https:// or s3://"
        )
    if uri.startswith("s3://") and not _S3_URI.fullmatch(uri):
        raise BakeError(EXIT_USAGE, f"--package {uri!r}: expected s3://BUCKET/KEY")
    if "://" in uri and not uri.startswith(("s3://", "https://")):
        raise BakeError(EXIT_USAGE, f"--package {uri!r}: expected s3://, https:// or a local path")
    return uri


def check_source(source: PackageSource) -> PackageSource:
    """Argument checks that need no network: one clear error per wrong flag."""
    if source.sha256_from not in DIGEST_SOURCES:
        raise BakeError(
            EXIT_USAGE,
            f"--package-sha256-from {source.sha256_from!r}: expected one of "
            f"{', '.join(DIGEST_SOURCES)}",
        )
    if source.sha256 is not None and not _SHA256.fullmatch(source.sha256.lower()):
        raise BakeError(
            EXIT_USAGE, f"--package-sha256 {source.sha256!r}: expected 64 hexadecimal digits"
        )
    unit_problem = unit_name_problem(source.unit) if source.unit is not None else None
    if unit_problem:
        raise BakeError(EXIT_USAGE, f"--package-unit: {unit_problem}")
    if source.uri is None and (source.sha256 is not None or source.unit is not None):
        raise BakeError(EXIT_USAGE, "--package-sha256 and --package-unit apply only with --package")
    if source.uri is not None and source.sha256_from == S3 and not source.uri.startswith("s3://"):
        raise BakeError(EXIT_USAGE, "--package-sha256-from s3 applies only to an s3:// package")
    return source


def parse_sidecar(text: str, where: str) -> str:
    """The one digest of a sha256sum-format sidecar, lower-case."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise BakeError(
            EXIT_PREREQUISITE,
            f"{where}: expected one line `<sha256>  <file>` (sha256sum format), found {len(lines)}",
        )
    match = _SIDECAR_LINE.fullmatch(lines[0].rstrip())
    if not match:
        raise BakeError(
            EXIT_PREREQUISITE,
            f"{where}: expected `<64 hexadecimal digits>  <file>` (sha256sum format)",
        )
    return match.group(1).lower()


def s3_checksum_hex(value: str | None, uri: str) -> str:
    """S3's base64 ChecksumSHA256 of a whole object as hex; refused if absent or composite."""
    how = (
        "upload it with a SHA-256 checksum, e.g. "
        "`aws s3 cp PACKAGE URI --checksum-algorithm SHA256`, or use --package-sha256-from sidecar"
    )
    if not value:
        raise BakeError(EXIT_PREREQUISITE, f"{uri}: the object has no ChecksumSHA256: {how}")
    if "-" in value:
        # A multipart upload's checksum is a checksum of the parts' checksums, not of the file.
        raise BakeError(
            EXIT_PREREQUISITE,
            f"{uri}: ChecksumSHA256 {value} is a multipart composite, not the file's digest: {how}",
        )
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise BakeError(EXIT_PREREQUISITE, f"{uri}: ChecksumSHA256 {value!r} is not a sha256")
    return raw.hex()


def upstream_version(debian_version: str) -> str:
    """The upstream part of a Debian version: without ``epoch:`` and without ``-revision``."""
    version = (
        debian_version.split(":", 1)[1]
        if re.match(r"[0-9]+:", debian_version)
        else (debian_version)
    )
    return version.rsplit("-", 1)[0] if "-" in version else version


def check_control(fields: dict[str, str], service: str, version: str, origin: str) -> None:
    """The package must be the service's, at the image's version (its upstream part)."""
    name = fields.get("Package", "")
    if name != service:
        raise BakeError(
            EXIT_CONFLICT,
            f"{origin}: package name {name!r} is not the service {service!r}: "
            "the package must be named after the service",
        )
    debian_version = fields.get("Version", "")
    if not _DEBIAN_VERSION.fullmatch(debian_version):
        raise BakeError(EXIT_CONFLICT, f"{origin}: invalid Version {debian_version!r}")
    upstream = upstream_version(debian_version)
    # A pre-release is spelt with `~` in Debian (2.0.0~rc.1 sorts before 2.0.0): the same version.
    if upstream != version and upstream.replace("~", "-") != version:
        raise BakeError(
            EXIT_CONFLICT,
            f"{origin}: package version {debian_version} (upstream {upstream}) is not the "
            f"image version {version}",
        )


def control_fields(path: Path) -> dict[str, str]:
    """Package and Version of a .deb, read by dpkg-deb."""
    result = subprocess.run(
        ["dpkg-deb", "--field", str(path), "Package", "Version"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BakeError(
            EXIT_PREREQUISITE,
            f"{path.name} is not a Debian package: {result.stderr.strip()[:200]}",
        )
    fields: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- fetching -------------------------------------------------------------------------------


def _s3_parts(uri: str) -> tuple[str, str]:
    match = _S3_URI.fullmatch(uri)
    assert match, uri  # resolve_uri checked the shape
    return match.group(1), match.group(2)


def _s3_error(uri: str, error: Exception) -> BakeError:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "error")
        return BakeError(EXIT_PREREQUISITE, f"{uri}: cannot read ({code})")
    return BakeError(EXIT_PREREQUISITE, f"{uri}: cannot read ({error})")


def _fetch_bytes_s3(s3, uri: str, limit: int | None, target: Path | None) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _s3_parts(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        if target is not None:
            with target.open("wb") as stream:
                for chunk in iter(lambda: body.read(1 << 20), b""):
                    stream.write(chunk)
            return b""
        data = body.read(limit + 1 if limit else None)
    except (BotoCoreError, ClientError) as error:
        raise _s3_error(uri, error) from None
    return data


def _fetch_bytes_https(uri: str, limit: int | None, target: Path | None) -> bytes:
    import urllib.error
    import urllib.request

    try:
        # The default context verifies the certificate and the host name.
        with urllib.request.urlopen(uri, timeout=30) as response:
            if target is not None:
                with target.open("wb") as stream:
                    shutil.copyfileobj(response, stream, 1 << 20)
                return b""
            return response.read(limit + 1 if limit else -1)
    except urllib.error.HTTPError as error:
        raise BakeError(EXIT_PREREQUISITE, f"{uri}: cannot read (HTTP {error.code})") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise BakeError(EXIT_PREREQUISITE, f"{uri}: cannot read ({reason})") from None


def _local_path(uri: str) -> Path:
    return Path(uri).expanduser().resolve()


def fetch(uri: str, target: Path, s3_client) -> None:
    """Copy the package at ``uri`` to ``target``."""
    if uri.startswith("s3://"):
        _fetch_bytes_s3(s3_client(), uri, None, target)
    elif uri.startswith("https://"):
        _fetch_bytes_https(uri, None, target)
    else:
        path = _local_path(uri)
        if not path.is_file():
            raise BakeError(EXIT_PREREQUISITE, f"package {uri} not found (or not a file)")
        shutil.copyfile(path, target)


def read_small(uri: str, s3_client) -> str:
    """A sidecar's text (at most a few KB)."""
    if uri.startswith("s3://"):
        data = _fetch_bytes_s3(s3_client(), uri, _SIDECAR_MAX, None)
    elif uri.startswith("https://"):
        data = _fetch_bytes_https(uri, _SIDECAR_MAX, None)
    else:
        path = _local_path(uri)
        if not path.is_file():
            raise BakeError(
                EXIT_PREREQUISITE,
                f"digest sidecar {uri} not found: write it with `sha256sum PACKAGE > {uri}` "
                "or pin the digest with --package-sha256",
            )
        with path.open("rb") as stream:
            data = stream.read(_SIDECAR_MAX + 1)
    if len(data) > _SIDECAR_MAX:
        raise BakeError(EXIT_PREREQUISITE, f"{uri}: larger than a sha256sum line")
    return data.decode("utf-8", "replace")


def s3_object_checksum(uri: str, s3_client) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _s3_parts(uri)
    try:
        head = s3_client().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except (BotoCoreError, ClientError) as error:
        raise _s3_error(uri, error) from None
    return s3_checksum_hex(head.get("ChecksumSHA256"), uri)


def expected_digest(source: PackageSource, uri: str, s3_client) -> tuple[str, str]:
    """(sha256, where it came from): the explicit pin, S3's checksum or the sidecar's line."""
    if source.sha256 is not None:
        return source.sha256.lower(), "--package-sha256"
    if source.sha256_from == S3:
        return s3_object_checksum(uri, s3_client), f"ChecksumSHA256 of {uri}"
    sidecar = f"{uri}.sha256"
    return parse_sidecar(read_small(sidecar, s3_client), sidecar), sidecar


# --- the sample service ---------------------------------------------------------------------


def _sample_control(service: str, version: str) -> str:
    return (
        f"Package: {service}\n"
        # Revision 1: a hyphen in a pre-release (2.0.0-rc.1) then stays in the upstream part.
        f"Version: {version}-1\n"
        "Architecture: all\n"
        "Maintainer: golden-fleet <golden-fleet@localhost>\n"
        "Depends: python3, passwd\n"
        "Section: net\n"
        "Priority: optional\n"
        f"Description: {service}: the golden-fleet sample service\n"
        " Answers /healthz and /version over HTTP on $GF_APP_PORT.\n"
    )


def _sample_postinst(service: str) -> str:
    return (
        "#!/bin/sh\n"
        "# The service's own system user, created once; the unit runs as it.\n"
        "set -e\n"
        f'if [ "$1" = configure ] && ! getent passwd {service} >/dev/null; then\n'
        "  useradd --system --user-group --no-create-home --home-dir /nonexistent "
        f"--shell /usr/sbin/nologin {service}\n"
        "fi\n"
    )


def build_sample(service: str, version: str, target_dir: Path, app_dir: Path = APP_DIR) -> Path:
    """The sample service as ``<service>_<version>-1_all.deb`` in ``target_dir``: reproducible
    (fixed file times, root owner, sorted entries), so the same app/ gives the same sha256."""
    unit = (app_dir / SAMPLE_UNIT).read_text()
    unit = unit.replace("@SERVICE@", service).replace("@VERSION@", version)
    with tempfile.TemporaryDirectory(prefix="sample-deb-", dir=target_dir) as staging_dir:
        root = Path(staging_dir) / "root"
        files = {
            "DEBIAN/control": (_sample_control(service, version), 0o644),
            "DEBIAN/postinst": (_sample_postinst(service), 0o755),
            f"opt/{service}/server.py": ((app_dir / SAMPLE_SERVER).read_text(), 0o644),
            f"lib/systemd/system/{service}.service": (unit, 0o644),
        }
        for relative, (text, _mode) in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for path in sorted(root.rglob("*"), reverse=True):
            mode = files.get(path.relative_to(root).as_posix(), (None, 0o755))[1]
            os.chmod(path, mode)
            os.utime(path, (SAMPLE_EPOCH, SAMPLE_EPOCH), follow_symlinks=False)
        os.chmod(root, 0o755)
        os.utime(root, (SAMPLE_EPOCH, SAMPLE_EPOCH))
        target = target_dir / f"{service}_{version}-1_all.deb"
        result = subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(target)],
            capture_output=True,
            text=True,
            # dpkg-deb dates the archive members with SOURCE_DATE_EPOCH and clamps file times.
            env=dict(os.environ, SOURCE_DATE_EPOCH=str(SAMPLE_EPOCH)),
        )
        if result.returncode != 0:
            raise BakeError(
                EXIT_PREREQUISITE, f"building the sample package failed: {result.stderr.strip()}"
            )
    return target


# --- one call from the pipeline -------------------------------------------------------------


def prepare(source: PackageSource, service: str, version: str, scratch: Path, s3_client) -> Package:
    """The bake's package in ``scratch``, verified; a BakeError while nothing has been created.

    ``s3_client``: a factory, called only for an s3:// package or sidecar (the caller gives it
    the bake's region, credentials and, for --local bakes, the local API's endpoint)."""
    scratch.mkdir(parents=True, exist_ok=True)
    if source.uri is None:
        path = build_sample(service, version, scratch)
        origin = "the sample service (app/)"
        sha256 = file_sha256(path)
    else:
        uri = resolve_uri(source.uri, version)
        origin = uri
        expected, where = expected_digest(source, uri, s3_client)
        path = scratch / "package.deb"
        fetch(uri, path, s3_client)
        sha256 = file_sha256(path)
        if sha256 != expected:
            path.unlink(missing_ok=True)
            raise BakeError(
                EXIT_CONFLICT,
                f"{uri}: sha256 {sha256} is not the expected {expected} (from {where}); "
                "nothing was built",
            )
    fields = control_fields(path)
    check_control(fields, service, version, origin)
    return Package(
        path=path,
        sha256=sha256,
        name=fields["Package"],
        version=fields["Version"],
        unit=source.unit or f"{service}.service",
        origin=origin,
    )


def prepare_upload(
    source: PackageSource, service: str, version: str, upload_dir: Path, s3_client
) -> Package:
    """:func:`prepare` into ``upload_dir`` as the file provisioner wants it: the package as
    ``package.deb`` beside the boot-environment reader and the service check, nothing else."""
    work = upload_dir / ".fetch"
    try:
        package = prepare(source, service, version, work, s3_client)
        target = upload_dir / UPLOADED_PACKAGE
        package.path.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for image_file in (BOOT_READER, SERVICE_CHECK):
        shutil.copyfile(image_file, upload_dir / image_file.name)
    return Package(
        path=target,
        sha256=package.sha256,
        name=package.name,
        version=package.version,
        unit=package.unit,
        origin=package.origin,
    )
