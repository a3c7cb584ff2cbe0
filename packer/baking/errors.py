"""Exit codes of the bake and the one exception that carries them."""

from __future__ import annotations

# Each code's comment is its meaning in the command reference (docs/reference/bake-command.md).
EXIT_OK = 0  # the AMI id is on stdout (built, or reused)
EXIT_USAGE = 2  # invalid arguments: version, service, region, var file (the line is named)
EXIT_PREREQUISITE = 3  # a tool, the endpoint's base image, or the package or its digest is missing
EXIT_CREDENTIALS = 4  # AWS credentials missing or rejected (checked with STS before anything else)
EXIT_CONFLICT = 5  # one version, one content: other content, or not the package asked for
EXIT_BUILD = 6  # the build failed; the image this run registered, if any, is deregistered
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: Packer cancelled, the same removal


class BakeError(Exception):
    """A failure with its exit code; the entry point prints the message as one line."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class Interrupted(Exception):
    """SIGTERM arrived; raised from the signal handler so every clean-up path runs."""
