"""Processes the bake starts: loopback ports, waiting for them, stopping them for good."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

from baking.errors import EXIT_PREREQUISITE, BakeError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise BakeError(EXIT_PREREQUISITE, f"{what} did not come up within {timeout:.0f}s")


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
