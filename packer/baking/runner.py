"""The Packer process: its command line, and its interruption with time to clean up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
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


def run_packer(
    command: list[str], env: Mapping[str, str], cwd: Path, grace_s: float = CLEANUP_GRACE_S
) -> int:
    """Packer, output on stderr. On Ctrl-C or SIGTERM to the bake, Packer is cancelled first and
    given ``grace_s`` to clean up; whatever of its session is left after that is killed."""
    process = subprocess.Popen(
        command,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,
        stderr=sys.stderr,
        start_new_session=True,  # one signal from the bake, not a second one from the terminal
        preexec_fn=die_with_parent(CANCEL_SIGNAL),
    )
    try:
        return process.wait()
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
