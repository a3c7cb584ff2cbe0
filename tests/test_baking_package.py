"""baking.package: the application package is fetched, verified against its digest and checked
against the bake's service and version before Packer runs; the sample service is a reproducible
package. No network: s3:// goes to a stand-in client."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import subprocess

import pytest
from app_packages import build_deb, sha256_of, write_sidecar
from bake_fixtures import require
from baking import errors, package
from baking.errors import BakeError
from baking.package import PackageSource

SERVICE, VERSION = "greeter", "2.1.0"


class StubS3:
    """get_object and head_object of one in-memory bucket, as boto3 answers them."""

    def __init__(self, objects: dict[str, bytes], checksums: dict[str, str] | None = None):
        self.objects, self.checksums, self.calls = objects, checksums or {}, []

    def _missing(self, key):
        from botocore.exceptions import ClientError

        return ClientError({"Error": {"Code": "NoSuchKey", "Message": key}}, "GetObject")

    def get_object(self, Bucket, Key):
        self.calls.append(("get_object", Bucket, Key))
        if Key not in self.objects:
            raise self._missing(Key)
        return {"Body": io.BytesIO(self.objects[Key])}

    def head_object(self, Bucket, Key, ChecksumMode=None):
        self.calls.append(("head_object", Bucket, Key, ChecksumMode))
        if Key not in self.objects:
            raise self._missing(Key)
        answer = {"ContentLength": len(self.objects[Key])}
        if Key in self.checksums:
            answer["ChecksumSHA256"] = self.checksums[Key]
        return answer


def no_s3():
    raise AssertionError("a local package must not need an S3 client")


def refused(code: int, pattern: str, call, *args, **kwargs) -> BakeError:
    with pytest.raises(BakeError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, (caught.value.code, str(caught.value))
    assert re.search(pattern, str(caught.value)), str(caught.value)
    return caught.value


# --- pure rules -----------------------------------------------------------------------------


def test_uri_template_takes_the_version_and_nothing_else():
    assert package.resolve_uri("s3://pkgs/greeter_{version}_all.deb", "2.1.0") == (
        "s3://pkgs/greeter_2.1.0_all.deb"
    )
    assert package.resolve_uri("dist/{version}/g_{version}.deb", "1.0.0-rc.1") == (
        "dist/1.0.0-rc.1/g_1.0.0-rc.1.deb"
    )
    refused(errors.EXIT_USAGE, r"only placeholder", package.resolve_uri, "x_{ver}.deb", "1.0.0")
    refused(errors.EXIT_USAGE, r"plain http", package.resolve_uri, "http://h/x.deb", "1.0.0")
    refused(errors.EXIT_USAGE, r"s3://BUCKET/KEY", package.resolve_uri, "s3://bucket", "1.0.0")
    refused(errors.EXIT_USAGE, r"expected s3://", package.resolve_uri, "ftp://h/x.deb", "1.0.0")
    for secret in ("https://u:pw@h/x.deb", "https://h/x.deb?X-Amz-Signature=abc", "http://u:pw@h"):
        error = refused(errors.EXIT_USAGE, r"no credentials", package.resolve_uri, secret, "1.0.0")
        assert "pw" not in str(error) and "abc" not in str(error), "the refusal repeats no secret"


def test_source_flags_are_checked_before_anything_runs():
    refused(
        errors.EXIT_USAGE,
        r"--package-sha256 'abc'",
        package.check_source,
        PackageSource(uri="p.deb", sha256="abc"),
    )
    refused(
        errors.EXIT_USAGE,
        r"only to an s3:// package",
        package.check_source,
        PackageSource(uri="p.deb", sha256_from="s3"),
    )
    refused(
        errors.EXIT_USAGE,
        r"only with --package",
        package.check_source,
        PackageSource(sha256="a" * 64),
    )
    refused(
        errors.EXIT_USAGE,
        r"--package-unit: .* is not a systemd service unit name",
        package.check_source,
        PackageSource(uri="p.deb", unit="greeter; rm -rf /"),
    )
    assert package.check_source(PackageSource(uri="p.deb", sha256="A" * 64)).sha256 == "A" * 64


def test_sidecar_is_one_sha256sum_line():
    digest = hashlib.sha256(b"x").hexdigest()
    assert package.parse_sidecar(f"{digest}  greeter_2.1.0_all.deb\n", "s") == digest
    assert package.parse_sidecar(f"{digest} *greeter_2.1.0_all.deb\n", "s") == digest
    assert package.parse_sidecar(f"{digest.upper()}\n", "s") == digest
    refused(errors.EXIT_PREREQUISITE, r"found 2", package.parse_sidecar, f"{digest}\n" * 2, "s")
    refused(errors.EXIT_PREREQUISITE, r"found 0", package.parse_sidecar, "\n", "s")
    refused(errors.EXIT_PREREQUISITE, r"sha256sum", package.parse_sidecar, digest[:-1], "s")
    refused(errors.EXIT_PREREQUISITE, r"sha256sum", package.parse_sidecar, digest + "0", "s")


def test_s3_checksum_is_the_whole_files_sha256_or_refused():
    raw = hashlib.sha256(b"package").digest()
    assert package.s3_checksum_hex(base64.b64encode(raw).decode(), "s3://b/k") == raw.hex()
    error = refused(
        errors.EXIT_PREREQUISITE, r"no ChecksumSHA256", package.s3_checksum_hex, None, "s3://b/k"
    )
    assert "--checksum-algorithm SHA256" in str(error) and "s3://b/k" in str(error)
    composite = base64.b64encode(raw).decode() + "-3"
    refused(errors.EXIT_PREREQUISITE, r"multipart", package.s3_checksum_hex, composite, "s3://b/k")
    refused(errors.EXIT_PREREQUISITE, r"not a sha256", package.s3_checksum_hex, "AAAA", "s3://b/k")


@pytest.mark.parametrize(
    ("debian", "upstream"),
    [
        ("2.1.0", "2.1.0"),
        ("2.1.0-1", "2.1.0"),
        ("1:2.1.0-3", "2.1.0"),
        ("2.1.0-rc.1-1", "2.1.0-rc.1"),
        ("2.1.0~rc.1", "2.1.0~rc.1"),
    ],
)
def test_upstream_version_drops_epoch_and_revision(debian, upstream):
    assert package.upstream_version(debian) == upstream


def test_control_fields_must_name_the_service_at_the_image_version():
    package.check_control({"Package": SERVICE, "Version": "1:2.1.0-2"}, SERVICE, VERSION, "p")
    package.check_control({"Package": SERVICE, "Version": "2.1.0~rc.1"}, SERVICE, "2.1.0-rc.1", "p")
    refused(
        errors.EXIT_CONFLICT,
        r"package name 'other' is not the service 'greeter'",
        package.check_control,
        {"Package": "other", "Version": VERSION},
        SERVICE,
        VERSION,
        "p",
    )
    refused(
        errors.EXIT_CONFLICT,
        r"package version 2\.1\.1-1 \(upstream 2\.1\.1\) is not the image version 2\.1\.0",
        package.check_control,
        {"Package": SERVICE, "Version": "2.1.1-1"},
        SERVICE,
        VERSION,
        "p",
    )


# --- the sample service ---------------------------------------------------------------------


def test_sample_package_is_reproducible_and_named_after_the_service(tmp_path):
    """Same app/ and version: the same bytes, wherever and whenever it is built."""
    require("dpkg-deb")
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    first = package.build_sample("checkout", "1.4.0", first_dir)
    second = package.build_sample("checkout", "1.4.0", second_dir)
    assert first.name == "checkout_1.4.0-1_all.deb"
    assert sha256_of(first) == sha256_of(second)
    assert sha256_of(first) != sha256_of(package.build_sample("checkout", "1.4.1", first_dir))
    assert package.control_fields(first) == {"Package": "checkout", "Version": "1.4.0-1"}
    listing = subprocess.run(
        ["dpkg-deb", "--contents", str(first)], capture_output=True, text=True, check=True
    ).stdout
    entries = {line.split()[-1]: line.split()[1] for line in listing.splitlines()}
    assert entries["./opt/checkout/server.py"] == "root/root"
    assert entries["./lib/systemd/system/checkout.service"] == "root/root"
    assert all(owner == "root/root" for owner in entries.values()), entries
    unit = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(first)], capture_output=True, check=True
    ).stdout
    assert b"User=checkout" in unit and b"GF_APP_VERSION=1.4.0" in unit
    postinst = subprocess.run(
        ["dpkg-deb", "--info", str(first), "postinst"], capture_output=True, text=True, check=True
    ).stdout
    assert "useradd --system --user-group" in postinst and "checkout" in postinst


# --- prepare: fetch, verify, check ----------------------------------------------------------


def test_local_package_with_its_sidecar_is_prepared(tmp_path):
    require("dpkg-deb")
    deb = build_deb(tmp_path, SERVICE, VERSION)
    write_sidecar(deb)
    template = str(tmp_path / "greeter_{version}_all.deb")
    ready = package.prepare(PackageSource(uri=template), SERVICE, VERSION, tmp_path / "w", no_s3)
    assert ready.sha256 == sha256_of(deb) and ready.label == f"{SERVICE}_{VERSION}"
    assert ready.unit == "greeter.service" and ready.path.read_bytes() == deb.read_bytes()


def test_wrong_digest_is_refused_naming_both_and_nothing_is_kept(tmp_path):
    require("dpkg-deb")
    deb = build_deb(tmp_path, SERVICE, VERSION)
    write_sidecar(deb, "0" * 64)
    work = tmp_path / "w"
    error = refused(
        errors.EXIT_CONFLICT,
        rf"sha256 {sha256_of(deb)} is not the expected {'0' * 64}",
        package.prepare,
        PackageSource(uri=str(deb)),
        SERVICE,
        VERSION,
        work,
        no_s3,
    )
    assert "nothing was built" in str(error)
    assert not list(work.iterdir()), "the refused package was removed"


def test_explicit_pin_wins_and_a_missing_sidecar_says_how_to_make_one(tmp_path):
    require("dpkg-deb")
    deb = build_deb(tmp_path, SERVICE, VERSION)
    refused(
        errors.EXIT_PREREQUISITE,
        r"sidecar .*\.sha256 not found: write it with `sha256sum",
        package.prepare,
        PackageSource(uri=str(deb)),
        SERVICE,
        VERSION,
        tmp_path / "w",
        no_s3,
    )
    pinned = PackageSource(uri=str(deb), sha256=sha256_of(deb).upper())
    assert package.prepare(pinned, SERVICE, VERSION, tmp_path / "w", no_s3).sha256 == sha256_of(deb)


def test_package_of_another_name_or_version_is_refused(tmp_path):
    require("dpkg-deb")
    other_name = build_deb(tmp_path, "other", VERSION)
    other_version = build_deb(tmp_path, SERVICE, "2.1.1")
    for deb, pattern in (
        (other_name, r"package name 'other' is not the service 'greeter'"),
        (other_version, r"package version 2\.1\.1 .* is not the image version 2\.1\.0"),
    ):
        source = PackageSource(uri=str(deb), sha256=sha256_of(deb))
        refused(
            errors.EXIT_CONFLICT,
            pattern,
            package.prepare,
            source,
            SERVICE,
            VERSION,
            tmp_path / "w",
            no_s3,
        )


def test_not_a_debian_package_is_refused(tmp_path):
    require("dpkg-deb")
    fake = tmp_path / "greeter_2.1.0_all.deb"
    fake.write_bytes(b"not an archive")
    source = PackageSource(uri=str(fake), sha256=sha256_of(fake))
    refused(
        errors.EXIT_PREREQUISITE,
        r"is not a Debian package",
        package.prepare,
        source,
        SERVICE,
        VERSION,
        tmp_path / "w",
        no_s3,
    )


def test_s3_package_with_sidecar_or_checksum(tmp_path):
    """s3://: the sidecar object, or the object's own ChecksumSHA256 read with ChecksumMode."""
    require("dpkg-deb")
    data = build_deb(tmp_path, SERVICE, VERSION).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    key = f"greeter/{SERVICE}_{VERSION}_all.deb"
    s3 = StubS3(
        {key: data, key + ".sha256": f"{digest}  x.deb\n".encode()},
        {key: base64.b64encode(bytes.fromhex(digest)).decode()},
    )
    uri = "s3://packages/greeter/greeter_{version}_all.deb"
    ready = package.prepare(PackageSource(uri=uri), SERVICE, VERSION, tmp_path / "a", lambda: s3)
    assert ready.sha256 == digest
    assert ("get_object", "packages", key + ".sha256") in s3.calls
    source = PackageSource(uri=uri, sha256_from="s3")
    assert package.prepare(source, SERVICE, VERSION, tmp_path / "b", lambda: s3).sha256 == digest
    assert ("head_object", "packages", key, "ENABLED") in s3.calls
    bare = StubS3({key: data})
    error = refused(
        errors.EXIT_PREREQUISITE,
        r"has no ChecksumSHA256",
        package.prepare,
        source,
        SERVICE,
        VERSION,
        tmp_path / "c",
        lambda: bare,
    )
    assert f"s3://packages/{key}" in str(error)
    refused(
        errors.EXIT_PREREQUISITE,
        r"cannot read \(NoSuchKey\)",
        package.prepare,
        PackageSource(uri=uri),
        SERVICE,
        "9.9.9",
        tmp_path / "d",
        lambda: s3,
    )


def test_upload_holds_the_package_the_boot_reader_and_the_service_check_only(tmp_path):
    require("dpkg-deb")
    deb = build_deb(tmp_path, SERVICE, VERSION)
    upload = tmp_path / "upload"
    upload.mkdir()
    source = PackageSource(uri=str(deb), sha256=sha256_of(deb), unit="greeter.service")
    ready = package.prepare_upload(source, SERVICE, VERSION, upload, no_s3)
    assert sorted(p.name for p in upload.iterdir()) == [
        "boot-environment.py",
        "package.deb",
        "service-check.py",
    ]
    assert ready.path == upload / "package.deb" and sha256_of(ready.path) == ready.sha256
    variables = ready.packer_variables()
    assert variables == {
        "app_sha256": sha256_of(deb),
        "app_unit": "greeter.service",
        "app_upload_dir": str(upload),
        "app_package_label": f"{SERVICE}_{VERSION}",
    }
    assert ready.description_part() == f"package sha256 {sha256_of(deb)}"


# --- the bake's flags -----------------------------------------------------------------------


def test_package_flags_reach_the_options():
    from baking import cli

    options = cli.parse_args(
        [
            "--version",
            VERSION,
            "--service",
            SERVICE,
            "--package",
            "s3://pkgs/greeter_{version}_all.deb",
            "--package-sha256-from",
            "s3",
            "--package-unit",
            "greeter-web.service",
            "--health-check-path",
            "/ping",
        ],
        {},
    )
    assert options.package == PackageSource(
        uri="s3://pkgs/greeter_{version}_all.deb", sha256_from="s3", unit="greeter-web.service"
    )
    assert options.health_check_path == "/ping"
    default = cli.parse_args(["--version", VERSION], {})
    assert default.package == PackageSource() and default.health_check_path == "/healthz"


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--health-check-path", "healthz"], r"--health-check-path 'healthz'"),
        (["--health-check-path", "/a b"], r"--health-check-path '/a b'"),
        (["--package", "p.deb", "--package-sha256-from", "s3"], r"only to an s3:// package"),
        (["--package-sha256", "a" * 64], r"only with --package"),
        (["--package", "p.deb", "--package-sha256-from", "etag"], r"invalid choice"),
    ],
)
def test_bad_package_flags_are_usage_errors(argv, pattern):
    from baking import cli

    refused(errors.EXIT_USAGE, pattern, cli.parse_args, ["--version", VERSION, *argv], {})


def test_stack_file_gives_the_package_the_program_would_bake(tmp_path, monkeypatch):
    """--stack reads image.app and service.healthCheckPath; flags on the command line win."""
    from baking import cli, stackfile

    (tmp_path / "Pulumi.shop.yaml").write_text(
        "config:\n"
        "  aws:region: eu-west-1\n"
        "  golden-fleet:service:\n    name: greeter\n    healthCheckPath: /ping\n"
        "  golden-fleet:image:\n    app:\n"
        "      package: s3://pkgs/greeter_{version}_all.deb\n"
        "      sha256: s3\n      unit: greeter-web.service\n"
    )
    stack = stackfile.read_stack("shop", tmp_path)
    assert (stack.package, stack.package_sha256_from, stack.package_unit) == (
        "s3://pkgs/greeter_{version}_all.deb",
        "s3",
        "greeter-web.service",
    )
    monkeypatch.setattr(cli, "read_stack", lambda name: stackfile.read_stack(name, tmp_path))
    options = cli.parse_args(["--stack", "shop", "--version", VERSION], {})
    assert options.service == SERVICE and options.health_check_path == "/ping"
    assert options.package == PackageSource(
        uri="s3://pkgs/greeter_{version}_all.deb", sha256_from="s3", unit="greeter-web.service"
    )
    own = cli.parse_args(
        ["--stack", "shop", "--version", VERSION, "--package", "g.deb", "--health-check-path", "/"],
        {},
    )
    assert own.package == PackageSource(uri="g.deb") and own.health_check_path == "/"
    (tmp_path / "Pulumi.bare.yaml").write_text("config:\n  golden-fleet:service:\n    name: x1\n")
    bare = cli.parse_args(["--stack", "bare", "--version", VERSION], {})
    assert bare.package == PackageSource() and bare.health_check_path == "/healthz"
