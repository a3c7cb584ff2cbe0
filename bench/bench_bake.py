"""Bake wrapper overhead and reuse time, measured on the local bake. Not a test; prints figures.

    python bench/bench_bake.py [--runs 3]

Repeated --runs times (each run bakes a new version, so the wrapper really builds); every figure
is printed as min / median / max over the runs and each goal is judged on the median.

1. A plain `packer build` of the same (1.6.6) template against the same local EC2 API and a
   fresh build host, timed; 2. the wrapper's `--local` bake, timed; ratio 2/1 (goal <= 1.10);
3. the wrapper run again for the image it just made (reuse path, goal <= 2 s).

Both builds get the same running emulator, warmed before either is timed (its first EC2 call
loads the AMI catalogue, about 1 s, which would otherwise count against whichever runs first).
The plain build is handed a ready build host; the wrapper prepares, starts and stops its own, so
that work is the wrapper's overhead. The wrapper's phase times are printed too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (str(REPO), str(REPO / "packer")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from baking.build_host import LOGIN_USER, BuildHost  # noqa: E402
from baking.emulator import local_emulator  # noqa: E402
from baking.layout import BUILD_SOURCE  # noqa: E402
from baking.legacy import assemble_legacy_template  # noqa: E402
from baking.rootfs import pristine_rootfs  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from spread import report, spread  # noqa: E402


def plain_packer_build(endpoint: str, workdir: Path) -> float:
    """The build alone: the wrapper's own preparation (build host copy, sshd) is not timed."""
    workdir.mkdir(parents=True)
    host = BuildHost(workdir)
    host.prepare()
    host.start()
    try:
        template = assemble_legacy_template(workdir / "template")
        variables = {
            "service": "plain",
            "version": "1.0.0",
            "region": "us-east-1",
            "ec2_endpoint": endpoint,
            "skip_region_validation": "true",
            "ssh_host": "127.0.0.1",
            "ssh_port": str(host.port),
            "ssh_private_key_file": str(host.key),
            "ssh_username": LOGIN_USER,
            "manifest_path": str(workdir / "manifest.json"),
        }
        command = ["packer", "build", "-color=false", f"-only={BUILD_SOURCE}"]
        for key, value in variables.items():
            command += ["-var", f"{key}={value}"]
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        started = time.monotonic()
        subprocess.run(
            [*command, "."],
            cwd=template,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.monotonic() - started
    finally:
        host.stop()


def warm_up(endpoint: str) -> None:
    import boto3

    boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).describe_images(Owners=["self"])


def wrapper(endpoint: str, workdir: Path | None, version: str) -> tuple[float, str, str]:
    command = [
        sys.executable,
        str(REPO / "packer" / "bake.py"),
        "--version",
        version,
        "--service",
        "bench",
        "--local",
        "--endpoint",
        endpoint,
    ]
    if workdir:
        command += ["--workdir", str(workdir)]
    env = dict(os.environ, GOLDEN_FLEET_TIMINGS="1")
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    elapsed = time.monotonic() - started
    phases = [line for line in result.stderr.splitlines() if line.startswith("bake: phases: ")]
    return elapsed, result.stdout.strip(), phases[-1].removeprefix("bake: ") if phases else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repeated runs reported (>= 1)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    pristine_rootfs()  # the one-off debootstrap is not part of either figure
    plains, wrappeds, reuses = [], [], []
    with tempfile.TemporaryDirectory(prefix="gf-bench-") as scratch:
        scratch_dir = Path(scratch)
        with local_emulator(scratch_dir) as endpoint:
            warm_up(endpoint)
            for run in range(args.runs):
                version = f"1.0.{run}"
                plain = plain_packer_build(endpoint, scratch_dir / f"plain-{run}")
                wrapped, ami, phases = wrapper(endpoint, scratch_dir / f"wrapped-{run}", version)
                reuse, again, reuse_phases = wrapper(endpoint, None, version)
                assert again == ami, "the reuse run must return the same image"
                print(
                    f"run {run + 1}: plain packer build {plain:.1f} s, bake.py --local "
                    f"{wrapped:.1f} s (ratio {wrapped / plain:.2f}), reuse {reuse:.2f} s",
                    flush=True,
                )
                print(f"  {phases}\n  reuse {reuse_phases}", flush=True)
                plains.append(plain)
                wrappeds.append(wrapped)
                reuses.append(reuse)
    print(report("plain packer build", spread(plains), " s"))
    print(report("bake.py --local", spread(wrappeds), " s"))
    ratios = [w / p for w, p in zip(wrappeds, plains, strict=True)]
    print(report("bake.py --local / plain packer build", spread(ratios), goal=1.10))
    print(report("reuse path", spread(reuses), " s", goal=2))


if __name__ == "__main__":
    main()
