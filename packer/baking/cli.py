"""Arguments in, AMI id out: argument checks, signal handling and exit codes of the bake."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from pathlib import Path

from baking import emulator, layers, local_api
from baking.console import PHASES, log
from baking.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PREREQUISITE,
    EXIT_USAGE,
    BakeError,
    Interrupted,
)
from baking.package import DIGEST_SOURCES, SIDECAR, PackageSource, check_source
from baking.pipeline import Options, bake
from baking.rootfs import cache_dir
from baking.stackfile import read_stack
from baking.varfiles import CONTENT_DEFAULTS
from components.image_contract import (
    LAYER_APPLICATION,
    LAYER_FOUNDATION,
    RUNTIME_PATTERN,
    service_name_problem,
    version_problem,
)

USAGE = """Bake the golden image and print its AMI id.

    python packer/bake.py --version 1.4.0 --service checkout --region eu-west-1 [--var-file F]
    python packer/bake.py --version 1.0.0 --local            # no cloud account needed
    python packer/bake.py --stack staging --version 1.0.0 --local   # the staging stack's image
    python packer/bake.py foundation [--runtime R] [--local] # the foundation layer alone
    python packer/bake.py --version 1.4.0 --service checkout --package s3://B/checkout_{version}_all.deb
    python packer/bake.py --local-reset                      # stop the shared local EC2 API
    python packer/bake.py seed-base-image --amis-file F      # stand-in for your own emulator
"""
# Commercial, GovCloud and ISO partitions: eu-west-1, us-gov-west-1, us-isob-east-1.
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
# What an ALB health check accepts as a path: / then URL path characters.
_HEALTH_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,1023}")


def validate_version(version: str) -> str:
    """A semantic version, never `latest` nor anything a shell would read specially."""
    if version_problem(version):
        raise BakeError(
            EXIT_USAGE,
            f"invalid version {version!r}: expected a semantic version such as 1.4.0 "
            "(no build metadata)",
        )
    return version


def validate_service(service: str) -> str:
    problem = service_name_problem(service)
    if problem:
        raise BakeError(EXIT_USAGE, f"invalid service: {problem}")
    return service


def validate_region(region: str) -> str:
    if not _REGION.fullmatch(region):
        raise BakeError(EXIT_USAGE, f"invalid region {region!r}")
    return region


def validate_health_check_path(path: str) -> str:
    if not _HEALTH_PATH.fullmatch(path):
        raise BakeError(
            EXIT_USAGE,
            f"invalid --health-check-path {path!r}: expected an absolute URL path such as /healthz",
        )
    return path


_PORT = re.compile(r"[0-9]{1,5}")


def validate_port(value: str | int, where: str = "--port") -> int:
    """A TCP port 1-65535, written in ASCII digits."""
    text = str(value)
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise BakeError(
            EXIT_USAGE,
            f"invalid {where} {text!r}: expected a TCP port number 1-65535 (the service's "
            "service.port, where the image tests ask it)",
        )
    return int(text)


def resolve_port(flag: str | None, stack_port: int | None) -> int | None:
    """The port the image tests ask the service on: --port, else the stack's service.port (with
    --stack), else None: the template's app_port (a var file's or PKR_VAR_app_port, else 8080)."""
    if flag is not None:
        return validate_port(flag)
    if stack_port is not None:
        return validate_port(stack_port, "golden-fleet:service.port")
    return None


def build_parser() -> argparse.ArgumentParser:
    """The bake's arguments (`foundation` is a first word taken off before them, see
    parse_args). A function of its own so that the documentation's command reference is
    generated from this very parser (docs/generate)."""
    parser = argparse.ArgumentParser(prog="bake.py", description=USAGE.split("\n\n")[0])
    parser.add_argument("--version", help="semantic version of the image (required to bake)")
    parser.add_argument(
        "--service", default=None, help="service name (default: the stack's, else sample)"
    )
    parser.add_argument(
        "--stack",
        help="read service, region, var file, runtime, pinned foundation, package, health "
        "check path and port from Pulumi.<STACK>.yaml (options given here win)",
    )
    parser.add_argument(
        "--runtime", help="language runtime of the foundation: python, nodejs or openjdk17"
    )
    parser.add_argument(
        "--foundation",
        help="application layer: build on this foundation (golden-foundation-<runtime>-<time>) "
        "instead of the newest of the runtime",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show Packer's and the provisioners' whole output (default: one line per step, "
        "the output's tail on failure)",
    )
    parser.add_argument(
        "--region", default=None, help="build region (default: AWS_REGION, else us-east-1)"
    )
    parser.add_argument(
        "--var-file", type=Path, help="Packer variables file, e.g. packer/staging.pkrvars.hcl"
    )
    parser.add_argument(
        "--local", action="store_true", help="bake against a local EC2 emulator and build host"
    )
    parser.add_argument(
        "--endpoint", help="local mode: use this running EC2 emulator instead of starting one"
    )
    parser.add_argument(
        "--workdir", type=Path, help="local mode: keep the provisioned build host here"
    )
    parser.add_argument(
        "--package",
        help="the service's Debian package: s3://BUCKET/KEY, https://... or a path, {version} "
        "replaced by --version (default: the stack's image.app, else the sample service built "
        "from app/)",
    )
    parser.add_argument(
        "--package-sha256", help="expected sha256 of the package (wins over --package-sha256-from)"
    )
    parser.add_argument(
        "--package-sha256-from",
        choices=DIGEST_SOURCES,
        default=None,
        help="where the expected digest comes from: the sidecar <package>.sha256 (sha256sum "
        "format; default) or the S3 object's ChecksumSHA256",
    )
    parser.add_argument(
        "--package-unit", help="the systemd unit the package ships (default: <service>.service)"
    )
    parser.add_argument(
        "--health-check-path",
        default=None,
        help="path the image tests expect a 200 from, on the service's port (default: the "
        "stack's service.healthCheckPath, else /healthz)",
    )
    parser.add_argument(
        "--port",
        default=None,
        help="port the service listens on, where the image tests ask it as the load balancer "
        "will (default: the stack's service.port, else 8080)",
    )
    parser.add_argument(
        "--local-reset",
        action="store_true",
        help="stop the shared local EC2 API of --local bakes (its images go with it); "
        "alone it only stops it, with --local the bake starts a fresh one",
    )
    return parser


def parse_args(argv: list[str], environ: dict[str, str] | None = None) -> Options | None:
    """The bake's options; None for `--local-reset` alone (stop the emulator, bake nothing).

    `foundation` first bakes the foundation layer alone; otherwise `--version` bakes the
    application layer on the newest foundation of the runtime (or `--foundation NAME`)."""
    environ = dict(os.environ) if environ is None else environ
    layer = LAYER_FOUNDATION if argv[:1] == ["foundation"] else LAYER_APPLICATION
    if layer == LAYER_FOUNDATION:
        argv = argv[1:]
    parser = build_parser()

    def error(message: str):
        raise BakeError(EXIT_USAGE, f"usage: {message}")

    parser.error = error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    stack_port = None
    if args.stack is not None:
        try:
            stack = read_stack(args.stack)
        except ValueError as error:
            raise BakeError(EXIT_USAGE, str(error)) from None
        args.service = args.service or stack.service
        args.region = args.region or stack.region
        args.var_file = args.var_file or stack.var_file
        args.runtime = args.runtime or stack.runtime
        args.foundation = args.foundation or stack.foundation
        # The stack's package, as the program's bake command passes it (image.app).
        if args.package is None and stack.package is not None:
            args.package = stack.package
            args.package_sha256_from = args.package_sha256_from or stack.package_sha256_from
            args.package_unit = args.package_unit or stack.package_unit
        args.health_check_path = args.health_check_path or stack.health_check_path
        stack_port = stack.port
    port = resolve_port(args.port, stack_port)
    args.service = args.service or "sample"
    if args.runtime is not None and not re.fullmatch(RUNTIME_PATTERN, args.runtime):
        raise BakeError(EXIT_USAGE, f"invalid --runtime {args.runtime!r}: e.g. python")
    if layer == LAYER_FOUNDATION and (args.version is not None or args.foundation):
        raise BakeError(
            EXIT_USAGE,
            "`foundation` bakes the foundation layer: --version and --foundation "
            "belong to an application bake",
        )
    region = (
        args.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    if args.var_file is not None and not args.var_file.is_file():
        raise BakeError(EXIT_USAGE, f"var file {args.var_file} not found (or not a file)")
    if args.local_reset and args.endpoint:
        raise BakeError(
            EXIT_USAGE,
            "--local-reset stops the shared local EC2 API; it does not apply with --endpoint",
        )
    if args.local_reset and args.version is not None and not args.local:
        raise BakeError(EXIT_USAGE, "--local-reset applies alone or with --local")
    if args.version is None and layer == LAYER_APPLICATION:
        if args.local_reset and not (args.local or args.workdir or args.var_file):
            return None
        raise BakeError(EXIT_USAGE, "usage: the following arguments are required: --version")
    if (args.endpoint or args.workdir) and not args.local:
        raise BakeError(EXIT_USAGE, "--endpoint and --workdir only apply with --local")
    return Options(
        version=validate_version(args.version) if args.version is not None else None,
        service=validate_service(args.service),
        region=validate_region(region),
        var_file=args.var_file.resolve() if args.var_file else None,
        local=args.local,
        endpoint=args.endpoint,
        workdir=args.workdir.resolve() if args.workdir else None,
        local_reset=args.local_reset,
        layer=layer,
        runtime=args.runtime,
        foundation=args.foundation,
        verbose=args.verbose,
        package=check_source(
            PackageSource(
                uri=args.package,
                sha256=args.package_sha256,
                sha256_from=args.package_sha256_from or SIDECAR,
                unit=args.package_unit,
            )
        ),
        health_check_path=validate_health_check_path(args.health_check_path or "/healthz"),
        port=port,
    )


_ENDPOINT = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?/?")


def build_seed_parser() -> argparse.ArgumentParser:
    """`seed-base-image`'s arguments (also read by the documentation's command reference)."""
    parser = argparse.ArgumentParser(
        prog="bake.py seed-base-image",
        description="The Debian 12 stand-in for an EC2 emulator that `--local --endpoint` uses.",
    )
    parser.add_argument("--amis-file", type=Path, help="write moto's seed file (MOTO_AMIS_PATH)")
    parser.add_argument("--endpoint", help="check this emulator for the base image; prints its id")
    parser.add_argument("--region", default="us-east-1", help="region to check (default us-east-1)")
    return parser


def seed_base_image(argv: list[str]) -> int:
    """`seed-base-image`: the Debian 12 stand-in for an EC2 emulator the bake does not start.

    --amis-file writes moto's seed file (start moto_server with MOTO_AMIS_PATH pointing at it);
    --endpoint checks that an emulator offers the base image the template would pick and prints
    its id. No EC2 call can create an image owned by Debian's account, so there is no third way."""
    parser = build_seed_parser()

    def error(message: str):
        raise BakeError(EXIT_USAGE, f"usage: {message}")

    parser.error = error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    validate_region(args.region)
    if args.amis_file is None and args.endpoint is None:
        raise BakeError(EXIT_USAGE, "seed-base-image needs --amis-file FILE or --endpoint URL")
    if args.endpoint is not None and not _ENDPOINT.fullmatch(args.endpoint):
        raise BakeError(
            EXIT_USAGE, f"invalid --endpoint {args.endpoint!r}: expected http://HOST:PORT"
        )
    if args.amis_file is not None:
        if args.amis_file.is_dir() or not args.amis_file.parent.is_dir():
            raise BakeError(
                EXIT_USAGE, f"--amis-file {args.amis_file}: not a file path in a directory"
            )
        emulator.write_amis_file(args.amis_file)
        log(
            f"wrote the Debian 12 stand-in to {args.amis_file}; start an emulator with it: "
            f"MOTO_AMIS_PATH={args.amis_file} moto_server -H 127.0.0.1 -p 5000"
        )
    if args.endpoint is not None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        ec2 = boto3.client(
            "ec2",
            region_name=args.region,
            endpoint_url=args.endpoint,
            aws_access_key_id=emulator.LOCAL_ACCESS_KEY,
            aws_secret_access_key=emulator.LOCAL_ACCESS_KEY,
        )
        owners = [str(o) for o in CONTENT_DEFAULTS["source_ami_owners"]]  # type: ignore[union-attr]
        pattern = str(CONTENT_DEFAULTS["source_ami_name"])
        try:
            image = emulator.find_base_image(ec2, owners, pattern)
        except (BotoCoreError, ClientError) as problem:
            raise BakeError(EXIT_PREREQUISITE, f"{args.endpoint}: {problem}") from None
        if image is None:
            raise BakeError(
                EXIT_PREREQUISITE,
                f"no base image at {args.endpoint}: restart it with MOTO_AMIS_PATH set to a file "
                "written by `seed-base-image --amis-file FILE`",
            )
        print(image["ImageId"], flush=True)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    def on_term(signum, frame):
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_term)
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["seed-base-image"]:
            return seed_base_image(argv[1:])
        with PHASES("arguments"):
            options = parse_args(argv)
        if options is None or options.local_reset:
            stopped = local_api.stop(cache_dir())
            log(
                f"stopped the local EC2 API (pid {', '.join(map(str, stopped))}) and its images"
                if stopped
                else "no local EC2 API was running"
            )
            # Its foundations are gone with it: so are their kept roots.
            for path in layers.remove_roots(cache_dir()):
                log(f"removed the kept foundation root {path}")
            if options is None:
                return EXIT_OK
        ami = bake(options)
    except BakeError as error:
        print(f"bake.py: error: {error}", file=sys.stderr, flush=True)
        return error.code
    except (KeyboardInterrupt, Interrupted):
        print(
            "bake.py: error: interrupted; everything started was stopped and no image kept",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        PHASES.report()
    print(ami, flush=True)
    return EXIT_OK
