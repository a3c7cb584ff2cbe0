"""The shared local EC2 API of `--local` bakes: one moto_server per cache directory.

moto_server keeps its state in memory only: its backends are Python dicts in the server process
(moto/core/base_backend.py, BackendDict), and its request recorder, which could replay them, is
off unless MOTO_ENABLE_RECORDING is set (moto/moto_api/_internal/recorder/models.py). So the
images a local bake registers live exactly as long as the emulator process. To let the next
`--local` bake of a version find and reuse its image, the emulator is a shared service, not a
child of one bake: started on demand on 127.0.0.1 in its own session, without a parent-death
signal, and reused by every later `--local` bake that uses the same cache directory (the one the
cached rootfs lives in). It keeps running after the bake, also after a killed bake, until
`python packer/bake.py --local-reset` stops it (or the machine restarts).

The cache directory holds a record of it (``local-ec2-api.json``: pid, the process's start time,
port, cache directory). A record is believed only if that pid still runs with that start time (a
reused pid is not ours), is a moto_server and carries this cache directory in its environment
(``GOLDEN_FLEET_LOCAL_API``); otherwise the record is stale and is removed, and the process it
names is never signalled. Starting, reusing and stopping happen under one lock
(``local-ec2-api.lock``), so two bakes at once share one emulator instead of starting two. The
reset also stops any emulator of this cache directory that no record names (a bake killed
between starting it and writing the record), found by that environment entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from baking.emulator import LOCAL_BASE_AMI
from baking.errors import EXIT_PREREQUISITE, BakeError
from baking.processes import free_port, port_open, wait_for
from baking.scratch import _start_time

RECORD = "local-ec2-api.json"
LOCK = "local-ec2-api.lock"
AMIS = "local-ec2-api-amis.json"
MARKER = "GOLDEN_FLEET_LOCAL_API"
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10


@dataclass(frozen=True)
class Record:
    pid: int
    started: str
    port: int
    cache: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def read_record(cache: Path) -> Record | None:
    """The record in ``cache``, or None if there is none or it cannot be read as one."""
    try:
        data = json.loads((cache / RECORD).read_text())
        record = Record(
            pid=int(data["pid"]),
            started=str(data["started"]),
            port=int(data["port"]),
            cache=str(data["cache"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.pid <= 1 or not 0 < record.port < 65536:
        return None
    return record


def _write_record(cache: Path, record: Record) -> None:
    partial = cache / f"{RECORD}.partial"
    partial.write_text(json.dumps(asdict(record)))
    os.replace(partial, cache / RECORD)


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    entries = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in entries}


def _is_moto_server(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(arg.decode(errors="replace")).name == "moto_server" for arg in argv[:2])


def serves(pid: int, cache: Path) -> bool:
    """``pid`` is a moto_server started for ``cache`` (its environment names the cache)."""
    return _is_moto_server(pid) and _environ(pid).get(MARKER) == str(cache)


def is_ours(record: Record, cache: Path) -> bool:
    """The recorded process still runs (same pid, same start time) and is our emulator."""
    return (
        record.cache == str(cache)
        and _start_time(record.pid) == record.started
        and serves(record.pid, cache)
    )


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    # Released when the file closes, also when the bake holding it is killed.
    with open(cache / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure(cache: Path) -> str:
    """The URL of this cache directory's emulator: the running one, or one started now."""
    with _locked(cache):
        record = read_record(cache)
        if record is not None and is_ours(record, cache):
            # A bake killed right after starting it may have left it still coming up.
            wait_for(lambda: port_open(record.port), START_TIMEOUT_S, "the local EC2 API")
            return record.url
        (cache / RECORD).unlink(missing_ok=True)  # stale: its process is gone or not ours
        return _start(cache).url


def _start(cache: Path) -> Record:
    moto = shutil.which("moto_server")
    if not moto:
        raise BakeError(EXIT_PREREQUISITE, "moto_server not found: pip install 'moto[server]'")
    amis = cache / AMIS
    amis.write_text(json.dumps([LOCAL_BASE_AMI]))
    port = free_port()
    # A long-lived process gets only what it needs: no credentials of the caller.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "MOTO_AMIS_PATH": str(amis),
        MARKER: str(cache),
    }
    process = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: a Ctrl-C to the bake's terminal group does not reach it, and it
        # outlives the bake on purpose (no parent-death signal, unlike the bake's other children).
        start_new_session=True,
    )
    record = Record(process.pid, str(_start_time(process.pid)), port, str(cache))
    _write_record(cache, record)  # at once: a bake killed from here on leaves a record to reset
    try:
        wait_for(
            lambda: process.poll() is None and port_open(port),
            START_TIMEOUT_S,
            "the local EC2 API (moto_server)",
        )
    except BaseException:
        _terminate(process.pid)
        (cache / RECORD).unlink(missing_ok=True)
        raise
    return record


def _terminate(pid: int) -> None:
    """SIGTERM, SIGKILL after a grace period; to its process group when it leads one (the
    emulator runs in its own session), else to the process alone."""
    try:
        leads_group = os.getpgid(pid) == pid
    except ProcessLookupError:
        return
    for signum, grace in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5)):
        try:
            (os.killpg if leads_group else os.kill)(pid, signum)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if this process started it
            if _start_time(pid) is None:
                return
            time.sleep(0.05)


def _unrecorded(cache: Path) -> list[int]:
    """Emulators of this cache directory that the record does not name."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            if serves(int(entry.name), cache):
                pids.append(int(entry.name))
    return pids


def running(cache: Path) -> Record | None:
    """The record of this cache directory's emulator if it runs, else None (nothing changed)."""
    record = read_record(cache)
    return record if record is not None and is_ours(record, cache) else None


def stop(cache: Path) -> list[int]:
    """Stop this cache directory's emulator (its images go with it); returns the pids stopped.
    A stale record is removed; a process that is not ours is never signalled."""
    with _locked(cache):
        stopped = []
        record = read_record(cache)
        if record is not None and is_ours(record, cache):
            _terminate(record.pid)
            stopped.append(record.pid)
        for pid in _unrecorded(cache):
            _terminate(pid)
            stopped.append(pid)
        (cache / RECORD).unlink(missing_ok=True)
        (cache / AMIS).unlink(missing_ok=True)
        return stopped
