"""Shared helpers and fixtures of the golden image tests (plain module; import what you need)."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKER_DIR = REPO / "packer"
BAKE = PACKER_DIR / "bake.py"
# packer/ holds the bake package (`baking`) next to its entry point; it is not itself a package.
if str(PACKER_DIR) not in sys.path:
    sys.path.insert(0, str(PACKER_DIR))

from baking import build_host  # noqa: E402

LYNIS_FILES = {
    "/usr/sbin/lynis": "lynis",
    "/usr/share/lynis": ".",
    "/etc/lynis/plugins": "plugins",
    "/etc/lynis/default.prf": "default.prf",
}


def require(*tools: str) -> None:
    """A missing prerequisite fails the test (never skips): CI must install it."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"prerequisite missing on PATH: {', '.join(missing)} (see packer/README.md, Testing)"
        )


def run_bake(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BAKE), *args],
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def run_bake_timed(
    args: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, float, float]:
    """:func:`run_bake`, and what it cost: wall-clock seconds and the CPU seconds of the bake
    and the processes it waited for. A bound on the CPU time is what a fast path costs, which
    a busy CI machine (two cores, a bake beside the suite) does not inflate; the wall-clock
    time still catches a wait that costs no CPU (a network timeout, a sleep)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = run_bake(args, env=env)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result, wall, cpu


def boot_mount_commands(root: Path) -> list[str]:
    """Shell commands that mount, in a private mount namespace, what the image's boot mounts
    over its tree: each enabled mount unit of /etc/systemd/system (tmpfs, or a bind with its
    options) and the fstab remounts of /dev and /dev/shm. Options are read from the image's
    files."""
    commands: list[str] = []
    wants = root / "etc/systemd/system/local-fs.target.wants"
    for unit in sorted(wants.glob("*.mount")) if wants.is_dir() else []:
        fields = dict(
            line.split("=", 1)
            for line in (root / "etc/systemd/system" / unit.name).read_text().splitlines()
            if "=" in line and not line.startswith(("#", ";"))
        )
        where, what = fields.get("Where", ""), fields.get("What", "")
        options = fields.get("Options", "").replace("%%", "%")
        if not re.fullmatch(r"/[A-Za-z0-9/_.-]+", where) or not re.fullmatch(
            r"[A-Za-z0-9/_.%=,-]*", options
        ):
            raise AssertionError(f"{unit.name}: unexpected mount unit {fields}")
        if fields.get("Type") == "tmpfs":
            commands.append(f"mount -t tmpfs -o {options} tmpfs {where}")
        elif "bind" in options.split(","):
            flags = ",".join(o for o in options.split(",") if o != "bind")
            commands.append(f"mount --bind {what} {where}")
            commands.append(f"mount -o remount,bind,{flags} {where}")
    for line in (root / "etc/fstab").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] in {"/dev", "/dev/shm"}:
            flags = ",".join(o for o in parts[3].split(",") if o in {"nodev", "nosuid", "noexec"})
            # A bind remount changes this namespace's mount only, never the machine's /dev.
            commands.append(f"mount -o remount,bind,{flags} {parts[1]}")
    return commands


def lynis_index(root: Path) -> tuple[int, str]:
    """Run the machine's lynis inside the build host and return (hardening index, its log).

    Lynis runs in its own network and mount namespaces, in which the image's boot is applied as
    far as it can be without touching the machine: the net.* sysctls, and the mounts its units
    and fstab declare (tmpfs /tmp, /var/tmp, /dev and /dev/shm with their options). kernel.* and
    fs.* values, running daemons and AppArmor are the machine's and count as lynis finds them.
    Lynis's files are copied in (under /opt: /tmp is mounted noexec) and removed afterwards."""
    require("lynis", "unshare", "chroot")
    staging = root / "opt" / "lynis-scan"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for source, target in LYNIS_FILES.items():
            if Path(source).is_dir():
                shutil.copytree(source, staging / target, dirs_exist_ok=True)
            else:
                shutil.copy2(source, staging / target)
        script = (
            "grep -h '^net\\.' /etc/sysctl.d/*.conf | sysctl -q -e -p - >/dev/null 2>&1 || true; "
            + "".join(f"{command}; " for command in boot_mount_commands(root))
            + "cd /opt/lynis-scan && ./lynis audit system --quick --no-colors "
            "--profile /opt/lynis-scan/default.prf "
            "--logfile /opt/lynis-scan/lynis.log --report-file /opt/lynis-scan/report.dat "
            ">/dev/null 2>&1; "
            "cat /opt/lynis-scan/report.dat"
        )
        result = build_host.run_in_host(
            root,
            ["sh", "-c", script],
            own_network=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        match = re.search(r"^hardening_index=(\d+)$", result.stdout, re.M)
        log = (
            (staging / "lynis.log").read_text(errors="replace")
            if (staging / "lynis.log").exists()
            else result.stderr
        )
        if not match:
            raise AssertionError(f"lynis produced no hardening index: {result.stderr[-2000:]}")
        return int(match.group(1)), log
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def describe_image(endpoint: str, ami: str, region: str = "us-east-1") -> dict:
    import boto3

    ec2 = boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return ec2.describe_images(ImageIds=[ami])["Images"][0]


def describe_images_named(endpoint: str, pattern: str, region: str = "us-east-1") -> list[dict]:
    """This account's images whose name matches the EC2 filter ``pattern``."""
    import boto3

    ec2 = boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [pattern]}])[
        "Images"
    ]


def dumps(value: object) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)
