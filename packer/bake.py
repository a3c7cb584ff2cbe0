#!/usr/bin/env python3
"""Bake the golden image and print its AMI id.

    python packer/bake.py --version 1.4.0 --service checkout --region eu-west-1 [--var-file F]
    python packer/bake.py --version 1.0.0 --local            # no cloud account needed

stdout carries only the AMI id; Packer's progress and every message go to stderr. Each failure
exits with its own code and one line on stderr, prints no id and leaves no image behind that looks
good. An image of the same service, version and template digest is reused at once; the same
version built from different content is refused (one version, one content).

Local mode bakes on this machine: a local EC2 API (moto_server on loopback) and a Debian 12 build
host (a debootstrap rootfs, cached, with sshd on a loopback port) stand in for AWS, so every
provisioner really runs on Debian 12 and the AMI is registered in the emulator.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKER_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKER_DIR.parent
APP_DIR = REPO_DIR / "app"
COMPAT_DIR = PACKER_DIR / "compat"
# Files only current Packer understands; Packer 1.6.6 gets COMPAT_DIR's versions instead.
CURRENT_ONLY = ("plugins.pkr.hcl", "source.amazon-ebs.pkr.hcl")
MANAGED_BY = "golden-fleet"
BUILD_SOURCE = "golden.amazon-ebs.golden"

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PREREQUISITE = 3
EXIT_CREDENTIALS = 4
EXIT_CONFLICT = 5
EXIT_BUILD = 6
EXIT_INTERRUPTED = 130

# Variables that change what is inside the image, with the template's defaults. Sharing and copy
# settings (ami_users, ami_regions) are left out: they change where an image is, not what it is.
CONTENT_DEFAULTS = {
    "runtime": "python",
    "source_ami_owners": ["136693071363"],
    "source_ami_name": "debian-12-amd64-*",
}
LIST_VARIABLES = {"source_ami_owners", "ami_users", "ami_regions"}

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
SERVICE = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"

# Local mode: the emulator's stand-in for the official Debian 12 AMI (same owner, same name shape).
LOCAL_ACCESS_KEY = "testing"
LOCAL_BASE_AMI = {
    "ami_id": "ami-0de12b00c0ffee001",
    "name": "debian-12-amd64-20250101-1980",
    "owner_id": "136693071363",
    "state": "available",
    "public": True,
    "description": "Debian 12 (20250101-1980) stand-in for the local bake",
    "image_location": "136693071363/debian-12-amd64-20250101-1980",
    "image_type": "machine",
    "architecture": "x86_64",
    "platform": None,
    "root_device_type": "ebs",
    "root_device_name": "/dev/xvda",
    "virtualization_type": "hvm",
    "hypervisor": "xen",
    "sriov": "simple",
    "creation_date": "2025-01-01T00:00:00.000Z",
}
LOGIN_USER = "admin"


class BakeError(Exception):
    """A failure with its exit code; main() prints the message as one line."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def log(message: str) -> None:
    print(f"bake: {message}", file=sys.stderr, flush=True)


class Phases:
    """Wall-clock time per phase of one bake; logged on stderr when GOLDEN_FLEET_TIMINGS is set."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = time.monotonic()
        try:
            yield
        finally:
            self.spans.append((name, time.monotonic() - started))

    def report(self) -> None:
        if self.spans and os.environ.get("GOLDEN_FLEET_TIMINGS"):
            log("phases: " + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in self.spans))


PHASES = Phases()


class TimedExitStack(contextlib.ExitStack):
    """An ExitStack whose unwinding (everything it stops and removes) is one timed phase."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def __exit__(self, *exc_info):
        with PHASES(self.name):
            return super().__exit__(*exc_info)


# ---------------------------------------------------------------- pure logic


def validate_version(version: str) -> str:
    """A semantic version, never `latest` nor anything a shell would read specially."""
    if version == "latest" or not SEMVER.match(version):
        raise BakeError(
            EXIT_USAGE, f"invalid version {version!r}: expected a semantic version such as 1.4.0"
        )
    return version


def validate_service(service: str) -> str:
    if not SERVICE.match(service):
        raise BakeError(
            EXIT_USAGE,
            f"invalid service {service!r}: lower-case letters, digits and dashes, 2-40 chars",
        )
    return service


def validate_region(region: str) -> str:
    if not REGION.match(region):
        raise BakeError(EXIT_USAGE, f"invalid region {region!r}")
    return region


def image_name(service: str, version: str, build_time: str) -> str:
    return f"{service}-{version}-{build_time}"


def image_name_filter(service: str, version: str) -> str:
    """The EC2 name filter the program's promote mode also uses."""
    return f"{service}-{version}-*"


def image_name_regex(service: str, version: str) -> re.Pattern[str]:
    """Exact names of this service and version (`1.0.0-*` also matches `1.0.0-rc.1-...`)."""
    return re.compile(rf"^{re.escape(service)}-{re.escape(version)}-\d{{8}}T\d{{6}}Z$")


def build_timestamp(now: float | None = None) -> str:
    return time.strftime(TIMESTAMP_FORMAT, time.gmtime(now))


def parse_hcl_value(raw: str) -> object:
    """A pkrvars/PKR_VAR_ value: quoted string, list of strings, number or bare word."""
    raw = raw.strip()
    if raw.startswith(("[", '"')):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            raise ValueError(f"cannot read value {raw!r}") from error
    return raw


def parse_var_file(text: str) -> dict[str, object]:
    """Top-level `name = value` lines of a pkrvars file (one line per value, as ours are)."""
    values: dict[str, object] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(.+)$", line)
        if match:
            values[match.group(1)] = parse_hcl_value(match.group(2))
    return values


def resolve_variables(
    names: tuple[str, ...] | list[str],
    environ: dict[str, str],
    var_file_values: dict[str, object],
    defaults: dict[str, object],
) -> dict[str, object]:
    """Effective values in Packer's order: defaults, then PKR_VAR_*, then the var file."""
    resolved: dict[str, object] = {}
    for name in names:
        value = defaults.get(name)
        if f"PKR_VAR_{name}" in environ:
            raw = environ[f"PKR_VAR_{name}"]
            value = parse_hcl_value(raw) if name in LIST_VARIABLES else raw
        if name in var_file_values:
            value = var_file_values[name]
        resolved[name] = value
    return resolved


def template_files(
    packer_dir: Path = PACKER_DIR, app_dir: Path = APP_DIR
) -> list[tuple[str, Path]]:
    """Everything that shapes the image: templates (both variants), scripts and the app."""
    files: list[tuple[str, Path]] = []
    for path in sorted(packer_dir.glob("*.pkr.hcl")) + sorted(packer_dir.glob("compat/*.pkr.hcl")):
        files.append((f"packer/{path.relative_to(packer_dir)}", path))
    for base, prefix in ((packer_dir / "scripts", "packer/scripts"), (app_dir, "app")):
        for path in sorted(
            p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ):
            files.append((f"{prefix}/{path.relative_to(base)}", path))
    return files


def template_digest(files: list[tuple[str, Path]], content_values: dict[str, object]) -> str:
    digest = hashlib.sha256()
    for name, path in files:
        data = path.read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    digest.update(json.dumps(content_values, sort_keys=True).encode())
    return digest.hexdigest()


def parse_manifest(text: str, builder_type: str = "amazon-ebs") -> dict[str, str]:
    """AMI ids by region from the last run in a Packer manifest."""
    try:
        manifest = json.loads(text)
        run = manifest["last_run_uuid"]
        builds = [
            b
            for b in manifest["builds"]
            if b.get("packer_run_uuid") == run and b.get("builder_type") == builder_type
        ]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"unreadable manifest: {error}") from error
    if not builds:
        raise ValueError(f"manifest has no {builder_type} artifact from the last run")
    amis: dict[str, str] = {}
    for pair in builds[-1].get("artifact_id", "").split(","):
        region, _, ami = pair.partition(":")
        if not re.match(r"^ami-[0-9a-f]+$", ami):
            raise ValueError(f"manifest artifact {pair!r} is not region:ami-id")
        amis[region] = ami
    return amis


def tag_map(image: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


@dataclass
class Decision:
    action: str  # "reuse", "conflict" or "build"
    image: dict | None = None


def decide(images: list[dict], service: str, version: str, digest: str) -> Decision:
    """Reuse an available image with this digest; refuse one of this version with another digest."""
    pattern = image_name_regex(service, version)
    ours = [
        i
        for i in images
        if pattern.match(i.get("Name", "")) and tag_map(i).get("ManagedBy") == MANAGED_BY
    ]
    available = sorted(
        (i for i in ours if i.get("State") == "available"), key=lambda i: i.get("CreationDate", "")
    )
    for image in reversed(available):
        if tag_map(image).get("TemplateDigest") == digest:
            return Decision("reuse", image)
    if available:
        return Decision("conflict", available[-1])
    return Decision("build")


def packer_is_legacy(version_output: str) -> bool:
    """Packer before 1.7 has its plugins built in and rejects required_plugins."""
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", version_output)
    if not match:
        return False
    return (int(match.group(1)), int(match.group(2))) < (1, 7)


def assemble_legacy_template(
    target: Path, packer_dir: Path = PACKER_DIR, app_dir: Path = APP_DIR
) -> Path:
    """A directory Packer 1.6.6 accepts: the shared files plus compat/ in place of CURRENT_ONLY."""
    template = target / "packer"
    template.mkdir(parents=True)
    for path in packer_dir.glob("*.pkr.hcl"):
        if path.name not in CURRENT_ONLY:
            shutil.copy2(path, template / path.name)
    for path in (packer_dir / "compat").glob("*.pkr.hcl"):
        shutil.copy2(path, template / path.name)
    (template / "scripts").symlink_to(packer_dir / "scripts")
    (target / "app").symlink_to(app_dir)
    return template


# ---------------------------------------------------------------- AWS (boto3)


def aws_session(region: str, endpoint: str | None):
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30
    )
    session = boto3.session.Session(region_name=region)

    def client(service: str, client_region: str | None = None):
        return session.client(
            service, region_name=client_region or region, endpoint_url=endpoint, config=config
        )

    return client


def check_credentials(client) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return client("sts").get_caller_identity()["Account"]
    except ClientError as error:
        raise BakeError(
            EXIT_CREDENTIALS, f"credentials rejected: {error.response['Error'].get('Code')}"
        ) from None
    except BotoCoreError as error:
        raise BakeError(EXIT_CREDENTIALS, f"credentials unavailable: {error}") from None


def find_images(ec2, service: str, version: str) -> list[dict]:
    response = ec2.describe_images(
        Owners=["self"],
        Filters=[
            {"Name": "name", "Values": [image_name_filter(service, version)]},
            {"Name": "tag:ManagedBy", "Values": [MANAGED_BY]},
        ],
    )
    return response["Images"]


def remove_images(client, regions: list[str], name: str) -> list[str]:
    """Deregister every image called `name` (and its snapshots) in the given regions."""
    removed: list[str] = []
    for region in regions:
        ec2 = client("ec2", region)
        with contextlib.suppress(Exception):
            for image in ec2.describe_images(
                Owners=["self"], Filters=[{"Name": "name", "Values": [name]}]
            )["Images"]:
                ec2.deregister_image(ImageId=image["ImageId"])
                removed.append(f"{region}:{image['ImageId']}")
                for mapping in image.get("BlockDeviceMappings", []):
                    snapshot = mapping.get("Ebs", {}).get("SnapshotId")
                    if snapshot:
                        with contextlib.suppress(Exception):
                            ec2.delete_snapshot(SnapshotId=snapshot)
    return removed


# ---------------------------------------------------------------- local mode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise BakeError(EXIT_PREREQUISITE, f"{what} did not come up within {timeout:.0f}s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop_process(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after `timeout`. A process started with start_new_session gets the
    signals as a group: `unshare --fork` blocks SIGTERM in itself and only ends with its child,
    so the build host's sshd must get the signal directly (it is the PID namespace's init)."""
    if process is None or process.poll() is not None:
        return
    try:
        group = os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        group = False

    def send(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)

    send(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def local_emulator(workdir: Path):
    """moto_server on a loopback port, seeded with the Debian 12 stand-in; yields its URL."""
    moto = shutil.which("moto_server")
    if not moto:
        raise BakeError(EXIT_PREREQUISITE, "moto_server not found: pip install 'moto[server]'")
    amis = workdir / "moto-amis.json"
    amis.write_text(json.dumps([LOCAL_BASE_AMI]))
    port = free_port()
    env = dict(os.environ, MOTO_AMIS_PATH=str(amis))
    process = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: process.poll() is None and port_open(port), 30, "moto_server")
        log(f"local EC2 API on http://127.0.0.1:{port} (pid {process.pid})")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "golden-fleet"


def pristine_rootfs() -> Path:
    """Debian 12 minbase plus what a cloud image logs in with (sshd, sudo); cached."""
    rootfs = cache_dir() / "bookworm-minbase"
    if (rootfs / ".complete").exists():
        return rootfs
    debootstrap = shutil.which("debootstrap")
    if not debootstrap:
        raise BakeError(EXIT_PREREQUISITE, "debootstrap not found: apt-get install debootstrap")
    partial = rootfs.with_name(rootfs.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    log(f"building the Debian 12 build host once into {rootfs}")
    result = subprocess.run(
        [
            debootstrap,
            "--variant=minbase",
            "--include=openssh-server,sudo,ca-certificates",
            "bookworm",
            str(partial),
        ],
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,
        stderr=sys.stderr,
    )
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise BakeError(EXIT_PREREQUISITE, f"debootstrap failed with exit code {result.returncode}")
    (partial / ".complete").touch()
    shutil.rmtree(rootfs, ignore_errors=True)
    shutil.rmtree(spare_rootfs(rootfs), ignore_errors=True)
    partial.rename(rootfs)
    return rootfs


def spare_rootfs(pristine: Path) -> Path:
    """A ready copy of the pristine rootfs, made while the previous bake's build ran."""
    return pristine.with_name(pristine.name + ".spare")


def take_spare(pristine: Path, target: Path) -> bool:
    """Move the spare copy to `target` (one rename, same filesystem); False if there is none,
    it was copied from an older pristine rootfs, or it lives on another filesystem."""
    spare = spare_rootfs(pristine)
    try:
        if (spare / ".complete").stat().st_mtime_ns != (pristine / ".complete").stat().st_mtime_ns:
            shutil.rmtree(spare, ignore_errors=True)
            return False
        os.rename(spare, target)
    except OSError:
        return False
    return True


class SpareCopy:
    """Copies the pristine rootfs to the spare in the background; finish() waits and keeps it,
    abort() stops the copy and removes it. Either way nothing of it runs on afterwards."""

    # A copy takes seconds; a partial copy this old was left by a bake that was killed (SIGKILL)
    # before it could clean up, and is removed so the cache does not grow.
    STALE_AFTER_S = 3600

    def __init__(self, pristine: Path) -> None:
        self.spare = spare_rootfs(pristine)
        for leftover in pristine.parent.glob(f"{self.spare.name}-*"):
            try:
                if time.time() - leftover.stat().st_mtime > self.STALE_AFTER_S:
                    shutil.rmtree(leftover, ignore_errors=True)
            except OSError:
                pass
        self.partial = Path(tempfile.mkdtemp(prefix=f"{self.spare.name}-", dir=pristine.parent))
        self.process: subprocess.Popen | None = subprocess.Popen(
            ["cp", "-a", f"{pristine}/.", str(self.partial)],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def finish(self) -> None:
        if self.process is None:
            return
        try:
            code = self.process.wait()
        except BaseException:  # Ctrl-C while waiting: nothing half-copied stays
            self.abort()
            raise
        self.process = None
        try:
            if code == 0:
                os.rename(self.partial, self.spare)  # fails if another bake left one first
        except OSError:
            pass
        shutil.rmtree(self.partial, ignore_errors=True)

    def abort(self) -> None:
        stop_process(self.process)
        self.process = None
        shutil.rmtree(self.partial, ignore_errors=True)


def host_command(root: Path, argv: list[str], own_network: bool = False) -> list[str]:
    """argv run inside the build host: own mount and PID namespaces, so nothing outlives it.

    With own_network, also a fresh network namespace (loopback only, down) whose per-namespace
    sysctls (net.*) can be set as the image's boot would, without touching the machine's."""
    namespaces = ["--mount", "--pid", "--fork", "--kill-child"] + (["--net"] if own_network else [])
    script = (
        'set -e; r="$1"; shift; mount --make-rprivate /; mount -t proc proc "$r/proc"; '
        'mount --rbind /dev "$r/dev"; mount -t sysfs sysfs "$r/sys"; exec chroot "$r" "$@"'
    )
    return ["unshare", *namespaces, "sh", "-c", script, "host", str(root), *argv]


def run_in_host(
    root: Path, argv: list[str], own_network: bool = False, **kwargs
) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(host_command(root, argv, own_network), **kwargs)


@dataclass
class BuildHost:
    workdir: Path
    root: Path = field(init=False)
    key: Path = field(init=False)
    port: int = 0
    process: subprocess.Popen | None = None
    spare_copy: SpareCopy | None = None

    def __post_init__(self) -> None:
        self.root = self.workdir / "rootfs"
        self.key = self.workdir / "id_ed25519"

    def prepare(self) -> None:
        for tool in ("unshare", "chroot", "ssh-keygen"):
            if not shutil.which(tool):
                raise BakeError(EXIT_PREREQUISITE, f"{tool} not found")
        pristine = pristine_rootfs()
        shutil.rmtree(self.root, ignore_errors=True)
        self.key.unlink(missing_ok=True)
        Path(f"{self.key}.pub").unlink(missing_ok=True)
        with PHASES("rootfs copy"):
            if not take_spare(pristine, self.root):
                subprocess.run(["cp", "-a", str(pristine), str(self.root)], check=True)
        (self.root / ".complete").unlink(missing_ok=True)
        # The next bake's copy is made now, while this one provisions (stop() waits for it).
        self.spare_copy = SpareCopy(pristine)
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "local-bake",
                "-f",
                str(self.key),
            ],
            check=True,
        )
        # What a Debian cloud image has at first boot: the login user with passwordless sudo
        # (cloud-init writes that sudoers line on EC2) and host keys.
        run_in_host(self.root, ["useradd", "-m", "-s", "/bin/bash", LOGIN_USER], check=True)
        ssh_dir = self.root / "home" / LOGIN_USER / ".ssh"
        ssh_dir.mkdir(mode=0o700)
        (ssh_dir / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        run_in_host(
            self.root,
            ["chown", "-R", f"{LOGIN_USER}:{LOGIN_USER}", f"/home/{LOGIN_USER}/.ssh"],
            check=True,
        )
        (self.root / "etc/sudoers.d/90-cloud-init-users").write_text(
            f"{LOGIN_USER} ALL=(ALL) NOPASSWD:ALL\n"
        )
        run_in_host(self.root, ["ssh-keygen", "-A"], check=True, stdout=subprocess.DEVNULL)
        with open(self.root / "etc/hosts", "a") as hosts:  # cloud-init's manage_etc_hosts on EC2
            hosts.write(f"127.0.1.1\t{socket.gethostname()}\n")
        # A chroot has no init: keep package scripts from starting daemons in it.
        policy = self.root / "usr/sbin/policy-rc.d"
        policy.write_text(
            "#!/bin/sh\n# local build host only: no daemons start in the chroot\nexit 101\n"
        )
        policy.chmod(0o755)
        (self.root / "run/sshd").mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.port = free_port()
        argv = ["/usr/sbin/sshd", "-D", "-e", "-p", str(self.port), "-o", "ListenAddress=127.0.0.1"]
        self.process = subprocess.Popen(
            host_command(self.root, argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "sshd.log", "ab"),
            start_new_session=True,
        )
        wait_for(
            lambda: self.process.poll() is None and port_open(self.port), 30, "build host sshd"
        )
        log(f"build host {self.root} with sshd on 127.0.0.1:{self.port}")

    def stop(self, failed: bool = False) -> None:
        """Stop sshd; finish the spare copy, or on failure or interruption abandon it."""
        with PHASES("sshd stop"):
            stop_process(self.process)
        self.process = None
        (self.root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
        if self.spare_copy is not None:
            with PHASES("spare copy wait"):
                if failed:
                    self.spare_copy.abort()
                else:
                    self.spare_copy.finish()
            self.spare_copy = None


# ---------------------------------------------------------------- the bake


@dataclass
class Options:
    version: str
    service: str
    region: str
    var_file: Path | None
    local: bool
    endpoint: str | None
    workdir: Path | None


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="bake.py", description=__doc__.split("\n\n")[0])
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
        args.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    if args.var_file is not None and not args.var_file.is_file():
        raise BakeError(EXIT_USAGE, f"var file {args.var_file} not found")
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


class Interrupted(Exception):
    pass


def run_packer(command: list[str], env: dict[str, str], cwd: Path) -> int:
    """Packer, output on stderr; on Ctrl-C or SIGTERM it gets SIGINT and time to clean up."""
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr
    )
    try:
        return process.wait()
    except (KeyboardInterrupt, Interrupted):
        process.send_signal(signal.SIGINT)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise


def bake(options: Options) -> str:
    packer = shutil.which("packer")
    if not packer:
        raise BakeError(
            EXIT_PREREQUISITE, "packer not found on PATH: install Packer (apt-get install packer)"
        )

    var_file_values = parse_var_file(options.var_file.read_text()) if options.var_file else {}
    try:
        content = resolve_variables(
            tuple(CONTENT_DEFAULTS), os.environ, var_file_values, CONTENT_DEFAULTS
        )
        copies = resolve_variables(
            ("ami_regions",), os.environ, var_file_values, {"ami_regions": []}
        )
    except ValueError as error:
        raise BakeError(EXIT_USAGE, f"invalid Packer variable: {error}") from None
    with PHASES("digest"):
        digest = template_digest(template_files(), content)

    with TimedExitStack("teardown") as stack:
        workdir = options.workdir
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="golden-fleet-")))
        workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        endpoint = None
        if options.local:
            for name in (
                "AWS_PROFILE",
                "AWS_SESSION_TOKEN",
                "AWS_ENDPOINT_URL",
                "AWS_ENDPOINT_URL_EC2",
            ):
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
                with PHASES("moto start"):
                    endpoint = stack.enter_context(local_emulator(workdir))
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

        build_time = build_timestamp()
        name = image_name(options.service, options.version, build_time)
        manifest = workdir / "manifest.json"
        manifest.unlink(missing_ok=True)
        with PHASES("packer version"):
            version_output = subprocess.run(
                [packer, "version"], capture_output=True, text=True
            ).stdout
        if packer_is_legacy(version_output):
            template = assemble_legacy_template(
                Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gf-tpl-")))
            )
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
                ssh_username=LOGIN_USER,
            )
        command = [packer, "build", "-color=false", f"-only={BUILD_SOURCE}"]
        if options.var_file:
            command += ["-var-file", str(options.var_file)]
        for key, value in variables.items():
            command += ["-var", f"{key}={value}"]
        command.append(".")

        regions = [options.region, *[r for r in copies["ami_regions"] if r != options.region]]
        log(f"baking {name} (template digest {digest[:12]})")
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
            removed = remove_images(client, regions, name)
            if removed:
                log(f"removed half-done images: {', '.join(removed)}")
            raise


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


if __name__ == "__main__":
    sys.exit(main())
