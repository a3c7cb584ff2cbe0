"""The Packer process: its command line, and its interruption with time to clean up."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from baking.errors import Interrupted
from baking.layout import BUILD_SOURCE

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


def run_packer(command: list[str], env: Mapping[str, str], cwd: Path) -> int:
    """Packer, output on stderr; on Ctrl-C or SIGTERM it gets SIGINT and time to clean up."""
    process = subprocess.Popen(
        command,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,
        stderr=sys.stderr,
    )
    try:
        return process.wait()
    except (KeyboardInterrupt, Interrupted):
        process.send_signal(signal.SIGINT)
        try:
            process.wait(CLEANUP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
