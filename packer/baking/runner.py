"""The Packer process: its command line, and its interruption with time to clean up."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from baking.errors import Interrupted
from baking.layout import BUILD_SOURCE
from baking.processes import die_with_parent

# Packer's own clean-up on SIGINT (terminate the instance, delete the temporary key and security
# group, deregister nothing it has not registered) takes well under this in practice.
CLEANUP_GRACE_S = 120


def packer_build_command(
    packer: str, variables: Mapping[str, str], var_file: Path | None
) -> list[str]:
    """``packer build`` of the amazon-ebs source only. The var file comes first so that the
    wrapper's own ``-var`` values (name, digest, build host) win over it: Packer applies the
    command line's variable options in order."""
    command = [packer, "build", "-color=false", f"-only={BUILD_SOURCE}"]
    if var_file is not None:
        command += ["-var-file", str(var_file)]
    for key, value in variables.items():
        command += ["-var", f"{key}={value}"]
    command.append(".")
    return command


# `packer` re-executes itself under panicwrap: the first process ignores SIGINT (a terminal sends
# Ctrl-C to the whole group) and forwards SIGTERM to the worker, which cancels the build on either
# (hashicorp/packer main.go: wrapConfig.ForwardSignals = SIGTERM; its signal handler takes
# os.Interrupt and SIGTERM). A SIGINT sent to the first process alone is lost: the build would
# run to the end. So the bake sends SIGTERM, and Packer gets it also when the bake dies.
CANCEL_SIGNAL = signal.SIGTERM


# Packer announces each provisioner script with this line (packer/provisioner/shell): the one
# line per step a quiet bake shows.
_STEP = re.compile(r".*: Provisioning with shell script: .*/([^/\s]+)\s*")
LOG_TAIL_LINES = 60


def step_name(line: str) -> str | None:
    """The script a Packer output line starts, or None."""
    match = _STEP.fullmatch(line.rstrip("\n"))
    # An inline provisioner (Packer's own packer-shell* file) is a preparation, not a step.
    if match is None or match.group(1).startswith("packer-shell"):
        return None
    return match.group(1)


def run_packer(
    command: list[str],
    env: Mapping[str, str],
    cwd: Path,
    grace_s: float = CLEANUP_GRACE_S,
    log_path: Path | None = None,
) -> int:
    """Packer, its output on stderr (``log_path`` None) or into ``log_path`` with one line per
    provisioner script on stderr and the log's tail on failure. On Ctrl-C or SIGTERM to the bake,
    Packer is cancelled first and given ``grace_s`` to clean up; whatever of its session is left
    after that is killed."""
    quiet = log_path is not None
    process = subprocess.Popen(
        command,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if quiet else sys.stderr,
        stderr=subprocess.STDOUT if quiet else sys.stderr,
        start_new_session=True,  # one signal from the bake, not a second one from the terminal
        preexec_fn=die_with_parent(CANCEL_SIGNAL),
    )
    reader = None
    if quiet:
        reader = threading.Thread(target=_copy_output, args=(process.stdout, log_path), daemon=True)
        reader.start()
    try:
        code = process.wait()
    except (KeyboardInterrupt, Interrupted):
        process.send_signal(CANCEL_SIGNAL)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # plugins and anything else left in its session
        if reader is not None:
            reader.join(10)
    if quiet and code != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        print(
            f"bake: packer failed; the last {len(tail)} lines of its output "
            "(all of it with --verbose):",
            file=sys.stderr,
        )
        print("\n".join(tail), file=sys.stderr, flush=True)
    return code


def _copy_output(stream, log_path: Path) -> None:
    """Every line into the log; a step line on stderr per provisioner script."""
    with open(log_path, "w", encoding="utf-8", errors="replace") as log_file:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace")
            log_file.write(line)
            log_file.flush()
            step = step_name(line)
            if step:
                print(f"bake: step {step}", file=sys.stderr, flush=True)
