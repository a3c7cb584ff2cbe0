"""The last guard of every ``python -m release`` command: an error nobody foresaw (a botocore
``ClientError`` no handler names, a bug) becomes one line on stderr, naming the error and a log
file that holds its traceback, and exit status :data:`UNEXPECTED`.

Only ``Exception``: Ctrl-C (``KeyboardInterrupt``), a rollout's ``Interrupted``, ``SystemExit``
and every other ``BaseException`` that must stop the work pass through untouched.

Logs go to ``$XDG_STATE_HOME/golden-fleet/errors/`` (``~/.local/state/...`` by default, as the
XDG base directory specification puts state a user may want to look at later), one file per
error, readable by the user only; where that directory cannot be made, to the temporary
directory. A log holds the command's arguments (stack names, paths, percentages: the release
command takes no secret on its command line) and the traceback.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

# EX_SOFTWARE of sysexits.h ("an internal software error"): distinct from every status a command
# gives on purpose (0 done, 1 refused or rolled back, 2 bad arguments, 3 rollback incomplete,
# 130 interrupted).
UNEXPECTED = 70
MESSAGE_LIMIT = 300  # characters of the error's own message on the line; the log has it whole


def log_directory() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "golden-fleet" / "errors"


def _create(directory: Path, name: str) -> tuple[Path, int]:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / name
    return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def write(error: BaseException, argv: Sequence[str], now: datetime | None = None) -> Path:
    """The log of ``error``: when, the command, the traceback. Its path; OSError if neither the
    state directory nor the temporary directory takes it."""
    now = now or datetime.now(UTC)
    name = f"release-{now:%Y%m%dT%H%M%SZ}-{os.getpid()}.log"
    try:
        path, fd = _create(log_directory(), name)
    except OSError:
        path, fd = _create(Path(tempfile.gettempdir()) / "golden-fleet-errors", name)
    text = (
        f"{now.isoformat()} python -m release {' '.join(argv)}\n"
        f"python {sys.version.split()[0]} on {sys.platform}\n\n"
        + "".join(traceback.format_exception(error))
    )
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def report(error: Exception, argv: Sequence[str] | None, say: Callable[[str], None]) -> int:
    """Log ``error``, ``say`` one line naming it and the log, return :data:`UNEXPECTED`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    message = " ".join(str(error).split())
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    what = f"{type(error).__name__}: {message}" if message else type(error).__name__
    try:
        where = f"the traceback is in {write(error, argv)}"
    except OSError as failed:
        frame = traceback.extract_tb(error.__traceback__)[-1:]
        at = f" (at {frame[0].filename}:{frame[0].lineno})" if frame else ""
        where = f"its traceback could not be logged ({failed.strerror or failed}){at}"
    say(f"unexpected error: {what} — the command stopped there; {where}")
    return UNEXPECTED
