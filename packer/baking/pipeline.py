"""One bake, start to end: digest, reuse or conflict, build, verify, or clean up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from baking import local_api
from baking.aws import aws_session, check_credentials
from baking.build_host import LOGIN_USER, BuildHost
from baking.console import PHASES, TimedExitStack, log
from baking.digest import template_digest, template_files
from baking.emulator import LOCAL_ACCESS_KEY, find_base_image
from baking.errors import EXIT_BUILD, EXIT_CONFLICT, EXIT_PREREQUISITE, EXIT_USAGE, BakeError
from baking.layout import PACKER_DIR
from baking.legacy import assemble_legacy_template, packer_is_legacy
from baking.manifest import parse_manifest
from baking.package import PackageSource
from baking.registry import decide, find_images, remove_images
from baking.rootfs import cache_dir
from baking.runner import packer_build_command, run_packer
from baking.scratch import remove_orphans, scratch_dir
from baking.varfiles import CONTENT_DEFAULTS, read_var_file, resolve_variables
from components.image_contract import build_timestamp, image_name, tag_map

# Credentials and endpoints of the caller that must not reach a local bake.
_LOCAL_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2")


@dataclass(frozen=True)
class Options:
    version: str
    service: str
    region: str
    var_file: Path | None
    local: bool
    endpoint: str | None
    workdir: Path | None
    local_reset: bool = False
    package: PackageSource = field(default_factory=PackageSource)
    health_check_path: str = "/healthz"


def image_digest(options: Options, environ: dict[str, str], command_line: dict[str, str]) -> str:
    """The digest of what this bake would put in the image."""
    try:
        var_file_values = read_var_file(options.var_file) if options.var_file else {}
        content = resolve_variables(
            tuple(CONTENT_DEFAULTS), environ, var_file_values, CONTENT_DEFAULTS, command_line
        )
    except ValueError as error:
        raise BakeError(EXIT_USAGE, f"invalid Packer variable: {error}") from None
    return template_digest(template_files(), content)


def base_image_query(
    options: Options, environ: dict[str, str], command_line: dict[str, str]
) -> tuple[list[str], str]:
    """The owners and name pattern the template's source_ami_filter will use for this bake."""
    try:
        var_file_values = read_var_file(options.var_file) if options.var_file else {}
        values = resolve_variables(
            ("source_ami_owners", "source_ami_name"),
            environ,
            var_file_values,
            CONTENT_DEFAULTS,
            command_line,
        )
    except ValueError as error:
        raise BakeError(EXIT_USAGE, f"invalid Packer variable: {error}") from None
    return list(values["source_ami_owners"]), str(values["source_ami_name"])


def bake(options: Options) -> str:
    packer = shutil.which("packer")
    if not packer:
        raise BakeError(
            EXIT_PREREQUISITE, "packer not found on PATH: install Packer (apt-get install packer)"
        )
    # What the wrapper itself passes with -var that also shapes the image.
    fixed = {"ssh_username": LOGIN_USER} if options.local else {}
    with PHASES("digest"):
        digest = image_digest(options, dict(os.environ), fixed)

    with PHASES("orphans"):
        for path in remove_orphans():
            log(f"removed {path}, left by a bake that was killed")

    with TimedExitStack("teardown") as stack:
        workdir = options.workdir
        if workdir is None:
            workdir = stack.enter_context(scratch_dir("work"))
        workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        endpoint = None
        if options.local:
            for name in _LOCAL_UNSET:
                env.pop(name, None)
            env.update(
                AWS_ACCESS_KEY_ID=LOCAL_ACCESS_KEY,
                AWS_SECRET_ACCESS_KEY=LOCAL_ACCESS_KEY,
                AWS_EC2_METADATA_DISABLED="true",
            )
            os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
            if options.endpoint:
                endpoint = options.endpoint
            else:
                # The shared emulator of this cache directory, started if none runs: it keeps
                # the images of earlier `--local` bakes, so a rebake of a version is a reuse.
                with PHASES("local api"):
                    endpoint = local_api.ensure(cache_dir())
                log(f"local EC2 API on {endpoint} (stop it: python packer/bake.py --local-reset)")
        with PHASES("sts"):
            client = aws_session(options.region, endpoint)
            check_credentials(client)

        with PHASES("describe_images"):
            ec2 = client("ec2")
            decision = decide(
                find_images(ec2, options.service, options.version),
                options.service,
                options.version,
                digest,
            )
        if decision.action == "reuse":
            log(f"reusing {decision.image['Name']}: same version, same template digest")
            return decision.image["ImageId"]
        if decision.action == "conflict":
            raise BakeError(
                EXIT_CONFLICT,
                f"version {options.version} already exists as {decision.image['ImageId']} "
                f"({decision.image['Name']}) from other template content: one version, one content",
            )

        if options.local and options.endpoint:
            # Someone else's emulator may lack the base image: say so now, not after a Packer run.
            with PHASES("base image"):
                owners, pattern = base_image_query(options, dict(os.environ), fixed)
                if find_base_image(ec2, owners, pattern) is None:
                    raise BakeError(
                        EXIT_PREREQUISITE,
                        f"no base image at {endpoint} (an x86_64 hvm ebs image named {pattern} "
                        f"owned by {', '.join(owners)}): start the emulator with the stand-in, "
                        "see `python packer/bake.py seed-base-image --help`",
                    )
        build_time = build_timestamp()
        bake_run = uuid.uuid4().hex
        name = image_name(options.service, options.version, build_time)
        manifest = workdir / "manifest.json"
        manifest.unlink(missing_ok=True)
        with PHASES("packer version"):
            version_output = subprocess.run(
                [packer, "version"], capture_output=True, text=True
            ).stdout
        if packer_is_legacy(version_output):
            scratch = stack.enter_context(scratch_dir("template"))
            try:
                template = assemble_legacy_template(scratch)
            except ValueError as error:
                raise BakeError(EXIT_BUILD, f"Packer 1.6.6 template: {error}") from None
        else:
            template = PACKER_DIR
            if subprocess.run(
                [packer, "init", str(template)], stdout=sys.stderr, stderr=sys.stderr
            ).returncode:
                raise BakeError(EXIT_BUILD, "packer init failed: plugins could not be installed")
        variables = {
            "service": options.service,
            "version": options.version,
            "region": options.region,
            "build_time": build_time,
            "bake_run": bake_run,
            "template_digest": digest,
            "manifest_path": str(manifest),
        }
        if options.local:
            host = BuildHost(workdir)
            log(f"build host directory: {host.root}")
            stack.push(lambda kind, value, trace: host.stop(failed=kind is not None))
            with PHASES("host prepare"):
                host.prepare()
            with PHASES("sshd start"):
                host.start()
            variables.update(
                ec2_endpoint=endpoint,
                skip_region_validation="true",
                ssh_host="127.0.0.1",
                ssh_port=str(host.port),
                ssh_private_key_file=str(host.key),
                **fixed,
            )
        command = packer_build_command(packer, variables, options.var_file)

        log(f"baking {name} in {options.region} (template digest {digest[:12]})")
        try:
            with PHASES("packer build"):
                code = run_packer(command, env, template)
            if code != 0:
                raise BakeError(
                    EXIT_BUILD, f"packer build failed with exit code {code}; no image kept"
                )
            try:
                amis = parse_manifest(manifest.read_text())
            except (OSError, ValueError) as error:
                raise BakeError(EXIT_BUILD, f"build produced no usable manifest: {error}") from None
            ami = amis.get(options.region)
            if not ami:
                raise BakeError(EXIT_BUILD, f"manifest has no image in {options.region}")
            with PHASES("verify"):
                images = ec2.describe_images(ImageIds=[ami])["Images"]
            if (
                not images
                or images[0].get("State") != "available"
                or tag_map(images[0]).get("TemplateDigest") != digest
            ):
                raise BakeError(
                    EXIT_BUILD, f"{ami} is not an available image tagged with this template digest"
                )
            return ami
        except BaseException:
            removed = remove_images(ec2, name, bake_run)
            if removed:
                log(f"removed half-done images in {options.region}: {', '.join(removed)}")
            raise
