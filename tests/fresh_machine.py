"""Proof that the README's Quick start works on a fresh Debian 12 with only python3 and git.

A Debian 12 minbase tree with python3, git and ca-certificates and nothing else (debootstrap,
cached like the local bake's build host: the tree is never modified, every run works on a copy)
gets a clone of this repository in /root/golden-fleet, a cold HOME, and a clean environment. The
two commands of the README's Quick start, parsed out of README.md so they cannot drift, then run
verbatim in one shell inside it, as a new user would type them: install, bake, test. The network
is the machine's own (apt and pip reach the same package registries, with the machine's resolver
and any CA certificate it adds to Debian's bundle); everything else the commands start listens on
loopback.

The tree runs in its own mount and PID namespaces (`unshare`), as the bake's build host does:
/proc, /sys and /dev are mounted inside that namespace only, so they vanish with it on every
exit path (success, failure, timeout, Ctrl-C, SIGKILL of this script), and nothing started inside
outlives it. The copy is deleted afterwards only when no mount is left under it.

Needs root, debootstrap, unshare and chroot. `.ci/run` runs it after the test suite:

    python tests/fresh_machine.py [--timeout-min 90]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packer"))

from baking.processes import stop_process  # noqa: E402
from baking.rootfs import cache_dir  # noqa: E402

# What "a fresh machine with python3 and git" has: Debian's minimal base plus those two and the
# CA bundle HTTPS needs. Nothing the Quick start installs is here.
PRISTINE_PACKAGES = ("python3", "git", "ca-certificates")
CLONE_IN_TREE = Path("root/golden-fleet")
# Only these reach the commands from this machine's environment: how to reach the network.
PASSED_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
MARK = "fresh-machine:"


class FreshMachineError(RuntimeError):
    """The proof failed; the message says which step and why."""


def quick_start_commands(readme: str) -> list[str]:
    """The commands of the README's Quick start: the first ```sh block under "## Quick start",
    one command per line, trailing `# comments` removed. Exactly two, or an error."""
    section = re.search(r"^## Quick start\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    if section is None:
        raise FreshMachineError('README.md has no "## Quick start" section')
    block = re.search(r"^```sh\n(.*?)^```$", section[1], re.MULTILINE | re.DOTALL)
    if block is None:
        raise FreshMachineError("README.md's Quick start has no ```sh block")
    commands = []
    for line in block[1].splitlines():
        # A comment starts at a `#` after whitespace; the commands themselves have none.
        command = re.sub(r"(?:^|[ \t]+)#.*", "", line).strip()
        if command:
            commands.append(command)
    if len(commands) != 2:
        raise FreshMachineError(
            f"README.md's Quick start must hold exactly two commands, found {len(commands)}: "
            f"{commands}"
        )
    return commands


def session_script(commands: list[str], clone: str) -> str:
    """One shell session running `commands` verbatim in order, stopping at the first failure;
    between them, marker lines with the elapsed seconds (the commands' text is untouched)."""
    lines = [f"cd {clone}", "SECONDS=0"]
    for number, command in enumerate(commands, 1):
        lines += [
            command,
            "status=$?",
            f'echo "{MARK} command {number} exited $status after $SECONDS s"',
            '[ "$status" -eq 0 ] || exit "$status"',
        ]
        if number == 1:  # the venv exists from here on; report it even if a later command fails
            lines.append(f"echo \"{MARK} venv home $(sed -n 's/^home = //p' venv/pyvenv.cfg)\"")
    return "\n".join(lines) + "\n"


def check_transcript(lines: list[str], commands: list[str]) -> list[str]:
    """What the transcript proves is wrong (empty when the Quick start worked as documented):
    every command exited 0, the bake printed an AMI id, pytest passed with no failure or error,
    and the venv was made from Debian's python3."""
    problems = []
    for number, command in enumerate(commands, 1):
        exits = [line for line in lines if line.startswith(f"{MARK} command {number} exited ")]
        if not exits or not exits[-1].startswith(f"{MARK} command {number} exited 0 "):
            problems.append(f"command {number} did not succeed: {command}")
    if not any(re.fullmatch(r"ami-[0-9a-f]{8,17}", line) for line in lines):
        problems.append("the bake printed no AMI id")
    summaries = [
        line for line in lines if re.fullmatch(r"=+ .* in [0-9.]+s( \([0-9:]+\))? =+", line)
    ]
    if not summaries:
        problems.append("pytest printed no summary line")
    elif " passed" not in summaries[-1] or re.search(r" (failed|errors?)\b", summaries[-1]):
        problems.append(f"pytest did not pass: {summaries[-1]}")
    if f"{MARK} venv home /usr/bin" not in lines:
        problems.append("venv was not made from Debian's python3 (/usr/bin)")
    return problems


PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----")


def extra_certificates(machine_bundle: str, fresh_bundle: str) -> list[str]:
    """The CA certificates this machine trusts beyond a fresh Debian's bundle (a site's own CA,
    e.g. for a TLS-inspecting proxy in front of the package registries), in bundle order."""
    fresh = set(PEM_BLOCK.findall(fresh_bundle.replace("\r\n", "\n")))
    return [
        block
        for block in dict.fromkeys(PEM_BLOCK.findall(machine_bundle.replace("\r\n", "\n")))
        if block not in fresh
    ]


def trust_like_this_machine(tree: Path) -> int:
    """Adds this machine's extra CA certificates to the tree the way a Debian admin would
    (/usr/local/share/ca-certificates, then update-ca-certificates), so they survive a bundle
    rebuild; returns how many. A fresh machine on this network would need the same."""
    bundle = "etc/ssl/certs/ca-certificates.crt"
    machine = Path("/") / bundle
    if not machine.is_file():
        return 0
    extras = extra_certificates(
        machine.read_text(errors="replace"), (tree / bundle).read_text(errors="replace")
    )
    local = tree / "usr/local/share/ca-certificates"
    local.mkdir(parents=True, exist_ok=True)
    for number, block in enumerate(extras, 1):
        (local / f"machine-{number}.crt").write_text(block + "\n")
    if extras:
        subprocess.run(
            ["chroot", str(tree), "update-ca-certificates"],
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,  # its rehash warns about the bundle file itself, harmlessly
        )
    return len(extras)


def namespace_command(tree: Path, argv: list[str]) -> list[str]:
    """argv chrooted into `tree`, in new mount and PID namespaces: the mounts exist only there.

    The tree is bind-mounted onto itself first so that its / is a mount point, as a real root is:
    `unshare --mount` inside (the local bake's build host) changes the propagation of /, which
    fails with EINVAL on a directory that is not one."""
    script = (
        'set -e; r="$1"; shift; mount --make-rprivate /; mount --bind "$r" "$r"; '
        'mount -t proc proc "$r/proc"; '
        'mount -t sysfs sysfs "$r/sys"; mount --rbind /dev "$r/dev"; exec chroot "$r" "$@"'
    )
    namespaces = ["--mount", "--pid", "--fork", "--kill-child"]
    return ["unshare", *namespaces, "sh", "-c", script, "fresh-machine", str(tree), *argv]


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` in this process's mount namespace."""
    prefix = str(path.resolve())
    found = []
    for entry in Path("/proc/self/mountinfo").read_text().splitlines():
        point = entry.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def log(message: str) -> None:
    print(f"{MARK} {message}", flush=True)


def pristine_tree() -> Path:
    """Debian 12 minbase + PRISTINE_PACKAGES, built once; never modified afterwards."""
    tree = cache_dir() / "fresh-machine-bookworm"
    if (tree / ".complete").exists():
        return tree
    partial = tree.with_name(tree.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap: Debian 12 minbase + {', '.join(PRISTINE_PACKAGES)} into {tree} (once)")
    started = time.monotonic()
    result = subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PRISTINE_PACKAGES)}",
            "bookworm",
            str(partial),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise FreshMachineError(
            f"debootstrap failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr}"
        )
    (partial / ".complete").touch()
    partial.rename(tree)
    log(f"debootstrap took {time.monotonic() - started:.0f} s")
    return tree


def prove(timeout_s: float) -> dict[str, float]:
    """Runs the Quick start in a fresh copy of the tree; returns seconds per phase."""
    for tool in ("debootstrap", "unshare", "chroot", "git"):
        if shutil.which(tool) is None:
            raise FreshMachineError(
                f"{tool} not found (apt-get install debootstrap util-linux git)"
            )
    if os.geteuid() != 0:
        raise FreshMachineError("needs root: it builds a chroot and mounts /proc, /sys, /dev in it")
    commands = quick_start_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    times: dict[str, float] = {}
    started = time.monotonic()
    pristine = pristine_tree()
    times["tree (debootstrap, cached)"] = time.monotonic() - started
    work = Path(tempfile.mkdtemp(prefix="fresh-machine-", dir=pristine.parent))
    tree = work / "root"
    process: subprocess.Popen | None = None
    try:
        phase = time.monotonic()
        subprocess.run(["cp", "-a", f"{pristine}/.", str(tree)], check=True)
        (tree / ".complete").unlink()
        # The tree shares this machine's network; it needs the same resolver and trust anchors.
        shutil.copyfile("/etc/resolv.conf", tree / "etc/resolv.conf")
        added = trust_like_this_machine(tree)
        if added:
            log(f"added this machine's {added} extra CA certificate(s) to the tree's trust store")
        # safe.directory: in CI the checkout belongs to another user than root.
        subprocess.run(
            [
                "git",
                "-c",
                f"safe.directory={ROOT}",
                "clone",
                "--quiet",
                "--no-hardlinks",
                str(ROOT),
                str(tree / CLONE_IN_TREE),
            ],
            check=True,
        )
        times["copy + clone"] = time.monotonic() - phase
        env = {
            "HOME": "/root",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
        }
        env.update({key: os.environ[key] for key in PASSED_ENV if key in os.environ})
        script = session_script(commands, f"/{CLONE_IN_TREE}")
        # setsid: the session and its process group start inside the PID namespace, as a login
        # shell's do on a machine (otherwise their ids are outside it and read as 0 inside).
        argv = [
            "/usr/bin/setsid",
            "--wait",
            "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in env.items()),
            "/bin/bash",
            "-c",
            script,
        ]
        for number, command in enumerate(commands, 1):
            log(f"command {number}: {command}")
        phase = time.monotonic()
        process = subprocess.Popen(
            namespace_command(tree, argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
            # A session on a real machine gets Ctrl-C; when this script was started in the
            # background its SIGINT is ignored, and the tests that interrupt themselves would
            # inherit that. Default disposition, as a terminal's shell has.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        transcript: list[str] = []
        # A silent hang must end too: at the deadline the whole namespace is stopped, which
        # closes the output and ends the loop below.
        timer = threading.Timer(timeout_s, stop_process, [process])
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip("\n")
                transcript.append(line)
                print(f"  | {line}", flush=True)
            code = process.wait()
        finally:
            timer.cancel()
        if time.monotonic() - phase >= timeout_s:
            raise FreshMachineError(f"timed out after {timeout_s / 60:.0f} min")
        process = None
        elapsed = [
            float(m[1])
            for line in transcript
            if (m := re.fullmatch(rf"{MARK} command [0-9]+ exited [0-9]+ after ([0-9]+) s", line))
        ]
        for number, seconds in enumerate(elapsed, 1):
            times[f"command {number}"] = seconds - (elapsed[number - 2] if number > 1 else 0)
        times["total"] = time.monotonic() - started
        problems = check_transcript(transcript, commands)
        if code != 0 and not problems:
            problems.append(f"the session exited {code}")
        if problems:
            raise FreshMachineError("; ".join(problems))
        return times
    finally:
        stop_process(process)
        left = mounts_under(work)
        if left:  # never delete through a mount into this machine's /dev or /proc
            print(f"{MARK} NOT removing {work}: still mounted: {left}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


class Stopped(BaseException):
    """SIGTERM or SIGHUP (a CI cancellation, a closed terminal): stop, with the clean-up of
    :func:`prove` (its ``finally`` ends the namespace and removes the copy). Never an
    ``Exception``: nothing may catch it on the way."""


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP raise :class:`Stopped` (by default they end the process at once,
    skipping every ``finally``: the chroot's ``unshare`` and all it runs stayed alive)."""

    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout-min", type=float, default=90)
    args = parser.parse_args()
    stop_on_signals()
    try:
        times = prove(args.timeout_min * 60)
    except FreshMachineError as error:
        print(f"{MARK} FAILED: {error}", file=sys.stderr)
        return 1
    except Stopped as stopped:
        print(f"{MARK} STOPPED by {stopped}: the tree's processes were ended", file=sys.stderr)
        return 128 + int(getattr(signal, str(stopped)))
    log("PASSED: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
