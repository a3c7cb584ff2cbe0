"""One bake, start to end: digest, reuse or conflict, build, verify, or clean up.

An application bake first picks its foundation (baking.layers); when there is none yet it bakes
one first, in the same run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from baking import layers, local_api
from baking.aws import aws_session, check_credentials
from baking.build_host import LOGIN_USER, BuildHost
from baking.console import PHASES, TimedExitStack, log
from baking.digest import template_digest, template_files
from baking.emulator import LOCAL_ACCESS_KEY, find_base_image
from baking.errors import EXIT_BUILD, EXIT_CONFLICT, EXIT_PREREQUISITE, EXIT_USAGE, BakeError
from baking.layout import PACKER_DIR
from baking.legacy import assemble_legacy_template, packer_is_legacy
from baking.manifest import parse_manifest
from baking.package import Package, PackageSource, prepare_upload
from baking.registry import conflict_without_foundation, decide, find_images, remove_images
from baking.rootfs import cache_dir
from baking.runner import packer_build_command, run_packer
from baking.scratch import remove_orphans, scratch_dir, short_base
from baking.varfiles import CONTENT_DEFAULTS, read_var_file, resolve_variables
from components.image_contract import (
    LAYER_APPLICATION,
    LAYER_FOUNDATION,
    build_timestamp,
    foundation_name,
    image_name,
    tag_map,
)

# Credentials and endpoints of the caller that must not reach a local bake.
_LOCAL_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2")


@dataclass(frozen=True)
class Options:
    version: str | None  # None for a foundation bake
    service: str
    region: str
    var_file: Path | None
    local: bool
    endpoint: str | None
    workdir: Path | None
    local_reset: bool = False
    package: PackageSource = field(default_factory=PackageSource)
    health_check_path: str = "/healthz"
    # --port (or the stack's service.port): app_port of the application layer; None leaves the
    # template's (a var file's, PKR_VAR_app_port, else 8080).
    port: int | None = None
    layer: str = LAYER_APPLICATION
    runtime: str | None = None  # --runtime: wins over the var file's and PKR_VAR_runtime
    foundation: str | None = None  # --foundation: the pinned foundation's name
    verbose: bool = False


def content_values(
    options: Options, environ: dict[str, str], command_line: dict[str, str]
) -> dict[str, object]:
    """The effective values of the variables that shape the image (varfiles.CONTENT_DEFAULTS)."""
    try:
        var_file_values = read_var_file(options.var_file) if options.var_file else {}
        return resolve_variables(
            tuple(CONTENT_DEFAULTS), environ, var_file_values, CONTENT_DEFAULTS, command_line
        )
    except ValueError as error:
        raise BakeError(EXIT_USAGE, f"invalid Packer variable: {error}") from None


def port_variable(options: Options) -> dict[str, str]:
    """The application layer's -var app_port: the port its image tests ask the service on
    (GF_APP_PORT in the provisioners), when --port or the stack names one."""
    return {} if options.port is None else {"app_port": str(options.port)}


def application_values(options: Options, app: Package) -> dict[str, str]:
    """What the wrapper passes with -var that shapes an application image: the package's and
    the port's (the image was tested at that port: another port is another image)."""
    return {**app.content_values(), **port_variable(options)}


def image_digest(
    options: Options,
    environ: dict[str, str],
    command_line: dict[str, str],
    foundation: layers.Foundation | None = None,
) -> str:
    """The digest of what this bake would put in the image: a foundation's own files and values,
    or an application image's plus its foundation's digest (both layers)."""
    content = content_values(options, environ, command_line)
    if options.layer == LAYER_FOUNDATION:
        content = layers.foundation_content(content)
    else:
        if foundation is None:
            raise ValueError("an application image's digest needs its foundation")
        content = layers.application_content(content, foundation)
    return template_digest(layers.layer_files(template_files(), options.layer), content)


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
    """Bake ``options.layer`` and return its AMI id. An application bake finds its foundation
    first (the pinned one, else the newest of its runtime) and bakes one when there is none."""
    packer = shutil.which("packer")
    if not packer:
        raise BakeError(
            EXIT_PREREQUISITE, "packer not found on PATH: install Packer (apt-get install packer)"
        )
    # What the wrapper itself passes with -var that also shapes the image.
    fixed = {"ssh_username": LOGIN_USER} if options.local else {}
    if options.runtime:
        fixed["runtime"] = options.runtime
    if options.layer == LAYER_FOUNDATION:
        with PHASES("digest"):
            digest = image_digest(options, dict(os.environ), fixed)

    with PHASES("orphans"):
        for path in remove_orphans() + (remove_orphans(short_base()) if short_base() else []):
            log(f"removed {path}, left by a bake that was killed")

    with TimedExitStack("teardown") as stack:
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
        ec2 = client("ec2")
        session = _Session(packer, fixed, env, endpoint, ec2)
        if options.local:
            with PHASES("foundation roots"):
                _prune_foundation_roots(ec2, endpoint)

        if options.layer == LAYER_FOUNDATION:
            return _build(options, session, digest, None)

        # The package is fetched and verified before any lookup or build (a foundation's
        # included): its digest is part of the template digest, so one version never carries
        # two packages.
        with PHASES("package"):
            upload = stack.enter_context(scratch_dir("package"))
            app = prepare_upload(
                options.package, options.service, options.version, upload, lambda: client("s3")
            )
        log(f"package {app.label} from {app.origin} (sha256 {app.sha256})")
        foundation = _foundation(options, session)
        with PHASES("digest"):
            digest = image_digest(
                options, dict(os.environ), {**fixed, **application_values(options, app)}, foundation
            )
        with PHASES("describe_images"):
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
        return _build(options, session, digest, foundation, app)


@dataclass(frozen=True)
class _Session:
    """What every layer's build in one bake shares: Packer, the wrapper's -var values, the
    environment, the EC2 endpoint and client."""

    packer: str
    fixed: dict[str, str]
    env: dict[str, str]
    endpoint: str | None
    ec2: object


def _runtime(options: Options, fixed: dict[str, str]) -> str:
    return str(content_values(options, dict(os.environ), fixed)["runtime"])


def _prune_foundation_roots(ec2, endpoint: str) -> None:
    """Remove the kept roots whose foundation image is gone (from this local API, or with a
    stopped one), so the cache holds only roots a bake can still use."""
    records = layers.kept_roots(cache_dir())
    if not records:
        return
    existing = {
        image["ImageId"]
        for image in ec2.describe_images(Owners=["self"], IncludeDeprecated=True)["Images"]
    }
    stale = layers.stale_roots(records, endpoint, existing, layers.endpoint_answers)
    for path in layers.remove_roots(cache_dir(), stale):
        log(f"removed {path}: its foundation image is gone")


def _foundation(options: Options, session: _Session) -> layers.Foundation:
    """The foundation this application image is built on: the pinned one (--foundation), else
    the newest usable one of the runtime; none yet (and no pin): bake one now and say so. In
    local mode a foundation is usable only with its provisioned root kept in the cache."""
    runtime = _runtime(options, session.fixed)
    with PHASES("foundation"):
        images = layers.find_foundations(session.ec2, runtime, options.foundation)
        if options.foundation:
            problem = layers.pinned_foundation_problem(images, options.foundation, runtime)
            if problem:
                raise BakeError(EXIT_PREREQUISITE, f"foundation: {problem}")
        if options.local:
            images = [
                i for i in images if layers.foundation_root(cache_dir(), i["ImageId"]).is_dir()
            ]
            if options.foundation and not images:
                raise BakeError(
                    EXIT_PREREQUISITE,
                    f"foundation: {options.foundation} has no provisioned root kept here (a "
                    "local bake keeps the newest foundation's only): bake without --foundation",
                )
        image = layers.newest_foundation(images, runtime)
    if image is None:
        with PHASES("describe_images"):
            early = conflict_without_foundation(
                find_images(session.ec2, options.service, options.version),
                options.service,
                options.version,
            )
        if early.action == "conflict":
            raise BakeError(
                EXIT_CONFLICT,
                f"version {options.version} already exists as {early.image['ImageId']} "
                f"({early.image['Name']}) on another foundation, and no foundation of runtime "
                f"{runtime} exists to build it on: other content under the same version (one "
                "version, one content); bake a new version",
            )
        log(f"no foundation of runtime {runtime} yet: baking one first")
        foundation_options = replace(
            options, layer=LAYER_FOUNDATION, version=None, workdir=None, foundation=None
        )
        with PHASES("digest"):
            digest = image_digest(foundation_options, dict(os.environ), session.fixed)
        ami = _build(foundation_options, session, digest, None)
        image = session.ec2.describe_images(ImageIds=[ami])["Images"][0]
    foundation = layers.foundation_of(image)
    log(f"on foundation {foundation.name} ({foundation.ami})")
    return foundation


def _build(
    options: Options,
    session: _Session,
    digest: str,
    foundation: layers.Foundation | None,
    app: Package | None = None,
) -> str:
    """One Packer build of ``options.layer``: the image's id, verified; on any failure nothing
    of it is kept. A local foundation's provisioned root is kept in the cache for the
    application bakes on it."""
    with TimedExitStack(f"{options.layer} teardown") as stack:
        workdir = _workdir(options, stack)
        if options.local and options.endpoint and foundation is None:
            # Someone else's emulator may lack the base image: say so now, not after a Packer run.
            _check_base_image(options, session)
        build_time = build_timestamp()
        bake_run = uuid.uuid4().hex
        runtime = _runtime(options, session.fixed)
        name, description = _name_and_description(options, runtime, build_time, foundation, app)
        manifest = workdir / "manifest.json"
        manifest.unlink(missing_ok=True)
        template = _template(session.packer, stack)
        variables = _image_variables(
            options, digest, build_time, bake_run, manifest, description, foundation, app
        )
        host = _start_host(workdir, foundation, stack) if options.local else None
        variables.update(_host_variables(options, session, host, foundation))
        command = packer_build_command(session.packer, variables, options.var_file)

        log(f"baking {name} in {options.region} (template digest {digest[:12]})")
        log(f"description: {description}")
        packer_env, log_path = _packer_env(options, session, stack)
        try:
            ami = _packer_build(
                options, session, command, packer_env, template, log_path, manifest, digest
            )
            if host is not None and options.layer == LAYER_FOUNDATION:
                _keep_foundation_root(session, host, ami, runtime)
            log(f"baked {name}: {ami}")
            return ami
        except BaseException:
            removed = remove_images(session.ec2, name, bake_run)
            if removed:
                log(f"removed half-done images in {options.region}: {', '.join(removed)}")
            raise


def _workdir(options: Options, stack: TimedExitStack) -> Path:
    """The build's directory (its manifest, a local build host): --workdir, else a scratch one
    removed with the build."""
    workdir = options.workdir
    if workdir is None:
        workdir = stack.enter_context(scratch_dir("work"))
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _check_base_image(options: Options, session: _Session) -> None:
    with PHASES("base image"):
        owners, pattern = base_image_query(options, dict(os.environ), session.fixed)
        if find_base_image(session.ec2, owners, pattern) is None:
            raise BakeError(
                EXIT_PREREQUISITE,
                f"no base image at {session.endpoint} (an x86_64 hvm ebs image named {pattern} "
                f"owned by {', '.join(owners)}): start the emulator with the stand-in, "
                "see `python packer/bake.py seed-base-image --help`",
            )


def _name_and_description(
    options: Options,
    runtime: str,
    build_time: str,
    foundation: layers.Foundation | None,
    app: Package | None,
) -> tuple[str, str]:
    """The image's name and AMI description: a foundation's, or an application image's naming
    its foundation and package."""
    if options.layer == LAYER_FOUNDATION:
        return (
            foundation_name(runtime, build_time),
            layers.foundation_description(runtime, build_time),
        )
    name = image_name(options.service, options.version, build_time)
    try:
        description = layers.application_description(
            options.service, options.version, foundation, app.description_part()
        )
    except ValueError as error:
        raise BakeError(EXIT_USAGE, str(error)) from None
    return name, description


def _template(packer: str, stack: TimedExitStack) -> Path:
    """The template to build: assembled for Packer 1.6.6 in a scratch directory (removed with
    the build), else the HCL2 template directory, its plugins installed."""
    with PHASES("packer version"):
        version_output = subprocess.run([packer, "version"], capture_output=True, text=True).stdout
    if packer_is_legacy(version_output):
        scratch = stack.enter_context(scratch_dir("template"))
        try:
            return assemble_legacy_template(scratch)
        except ValueError as error:
            raise BakeError(EXIT_BUILD, f"Packer 1.6.6 template: {error}") from None
    if subprocess.run(
        [packer, "init", str(PACKER_DIR)], stdout=sys.stderr, stderr=sys.stderr
    ).returncode:
        raise BakeError(EXIT_BUILD, "packer init failed: plugins could not be installed")
    return PACKER_DIR


def _image_variables(
    options: Options,
    digest: str,
    build_time: str,
    bake_run: str,
    manifest: Path,
    description: str,
    foundation: layers.Foundation | None,
    app: Package | None,
) -> dict[str, str]:
    """The -var values of the image itself: every layer's, and an application image's service,
    version, lineage, package, port and health check."""
    variables = {
        "layer": options.layer,
        "region": options.region,
        "build_time": build_time,
        "bake_run": bake_run,
        "template_digest": digest,
        "manifest_path": str(manifest),
        "ami_description": description,
    }
    if options.layer == LAYER_APPLICATION:
        variables.update(
            service=options.service,
            version=options.version,
            **layers.lineage_variables(foundation),
            **app.packer_variables(),
            **port_variable(options),
            health_check_path=options.health_check_path,
        )
    return variables


def _start_host(
    workdir: Path, foundation: layers.Foundation | None, stack: TimedExitStack
) -> BuildHost:
    """A local build host, on the foundation's kept root when there is one, stopped with the
    build (as failed when the build fails)."""
    base = layers.foundation_root(cache_dir(), foundation.ami) if foundation else None
    host = BuildHost(workdir, base=base)
    log(f"build host directory: {host.root}")
    stack.push(lambda kind, value, trace: host.stop(failed=kind is not None))
    with PHASES("host prepare"):
        host.prepare()
    with PHASES("sshd start"):
        host.start()
    return host


def _host_variables(
    options: Options,
    session: _Session,
    host: BuildHost | None,
    foundation: layers.Foundation | None,
) -> dict[str, str]:
    """The -var values of where the build runs: the local API and build host (none: the
    --runtime, which a local bake passes with the wrapper's other values)."""
    if host is None:
        return {"runtime": options.runtime} if options.runtime else {}
    variables = dict(
        ec2_endpoint=session.endpoint,
        skip_region_validation="true",
        ssh_host="127.0.0.1",
        ssh_port=str(host.port),
        ssh_private_key_file=str(host.key),
        **session.fixed,
    )
    if foundation is not None:
        # The emulator cannot launch a foundation it created (variables.pkr.hcl,
        # build_source_ami): launch from the Debian stand-in, build on the
        # foundation's kept root.
        owners, pattern = base_image_query(options, dict(os.environ), session.fixed)
        stand_in = find_base_image(session.ec2, owners, pattern)
        if stand_in is None:
            raise BakeError(EXIT_PREREQUISITE, f"no base image at {session.endpoint}")
        variables["build_source_ami"] = stand_in["ImageId"]
    return variables


def _packer_env(
    options: Options, session: _Session, stack: TimedExitStack
) -> tuple[dict[str, str], Path | None]:
    """Packer's environment, and the file its output goes to (None: the terminal, --verbose)."""
    # Packer's own temporary files (its packer-shell* script copies, its plugins' sockets)
    # go to a directory of the bake's, removed with it; on a short base (scratch.short_base).
    packer_tmp = stack.enter_context(scratch_dir("packer-tmp", short_base()))
    packer_env = dict(session.env, TMPDIR=str(packer_tmp), PACKER_TMP_DIR=str(packer_tmp))
    return packer_env, None if options.verbose else packer_tmp / "packer.log"


def _packer_build(
    options: Options,
    session: _Session,
    command: list[str],
    packer_env: dict[str, str],
    template: Path,
    log_path: Path | None,
    manifest: Path,
    digest: str,
) -> str:
    """Run the build and return the image it made, available and tagged with ``digest``."""
    with PHASES(f"packer build ({options.layer})"):
        code = run_packer(command, packer_env, template, log_path=log_path)
    if code != 0:
        raise BakeError(EXIT_BUILD, f"packer build failed with exit code {code}; no image kept")
    try:
        amis = parse_manifest(manifest.read_text())
    except (OSError, ValueError) as error:
        raise BakeError(EXIT_BUILD, f"build produced no usable manifest: {error}") from None
    ami = amis.get(options.region)
    if not ami:
        raise BakeError(EXIT_BUILD, f"manifest has no image in {options.region}")
    with PHASES("verify"):
        images = session.ec2.describe_images(ImageIds=[ami])["Images"]
    if (
        not images
        or images[0].get("State") != "available"
        or tag_map(images[0]).get("TemplateDigest") != digest
    ):
        raise BakeError(
            EXIT_BUILD, f"{ami} is not an available image tagged with this template digest"
        )
    return ami


def _keep_foundation_root(session: _Session, host: BuildHost, ami: str, runtime: str) -> None:
    """Keep a local foundation's provisioned root for the application bakes on it, and remove
    the roots of the runtime's older foundations."""
    host.stop()
    with PHASES("foundation root keep"):
        kept = layers.keep_foundation_root(host.root, cache_dir(), ami, session.endpoint)
    log(f"kept the foundation's root for application bakes: {kept}")
    older = layers.superseded_roots(
        layers.kept_roots(cache_dir()),
        session.endpoint,
        layers.find_foundations(session.ec2, runtime),
        ami,
    )
    for path in layers.remove_roots(cache_dir(), older):
        log(f"removed {path}: a newer foundation of {runtime} is kept")
