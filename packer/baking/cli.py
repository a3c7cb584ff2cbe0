"""Arguments in, AMI id out: argument checks, signal handling and exit codes of the bake."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from pathlib import Path

from baking.console import PHASES
from baking.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, BakeError, Interrupted
from baking.pipeline import Options, bake
from components.image_contract import service_name_problem, version_problem

USAGE = """Bake the golden image and print its AMI id.

    python packer/bake.py --version 1.4.0 --service checkout --region eu-west-1 [--var-file F]
    python packer/bake.py --version 1.0.0 --local            # no cloud account needed
"""
# Commercial, GovCloud and ISO partitions: eu-west-1, us-gov-west-1, us-isob-east-1.
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")


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


def parse_args(argv: list[str], environ: dict[str, str] | None = None) -> Options:
    environ = dict(os.environ) if environ is None else environ
    parser = argparse.ArgumentParser(prog="bake.py", description=USAGE.split("\n\n")[0])
    parser.add_argument("--version", required=True, help="semantic version of the image")
    parser.add_argument("--service", default="sample", help="service name (default: sample)")
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

    def error(message: str):
        raise BakeError(EXIT_USAGE, f"usage: {message}")

    parser.error = error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    region = (
        args.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    if args.var_file is not None and not args.var_file.is_file():
        raise BakeError(EXIT_USAGE, f"var file {args.var_file} not found (or not a file)")
    if (args.endpoint or args.workdir) and not args.local:
        raise BakeError(EXIT_USAGE, "--endpoint and --workdir only apply with --local")
    return Options(
        version=validate_version(args.version),
        service=validate_service(args.service),
        region=validate_region(region),
        var_file=args.var_file.resolve() if args.var_file else None,
        local=args.local,
        endpoint=args.endpoint,
        workdir=args.workdir.resolve() if args.workdir else None,
    )


def main(argv: list[str] | None = None) -> int:
    def on_term(signum, frame):
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_term)
    try:
        with PHASES("arguments"):
            options = parse_args(sys.argv[1:] if argv is None else argv)
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
