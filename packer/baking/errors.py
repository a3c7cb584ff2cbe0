"""Exit codes of the bake and the one exception that carries them."""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PREREQUISITE = 3
EXIT_CREDENTIALS = 4
EXIT_CONFLICT = 5
EXIT_BUILD = 6
EXIT_INTERRUPTED = 130


class BakeError(Exception):
    """A failure with its exit code; the entry point prints the message as one line."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class Interrupted(Exception):
    """SIGTERM arrived; raised from the signal handler so every clean-up path runs."""
