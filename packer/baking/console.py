"""Messages on stderr (stdout carries only the AMI id) and wall-clock time per phase."""

from __future__ import annotations

import contextlib
import os
import sys
import time


def log(message: str) -> None:
    print(f"bake: {message}", file=sys.stderr, flush=True)


class Phases:
    """Wall-clock time per phase of one bake; logged on stderr when GOLDEN_FLEET_TIMINGS is set."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = time.monotonic()
        try:
            yield
        finally:
            self.spans.append((name, time.monotonic() - started))

    def summary(self) -> str:
        return "phases: " + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in self.spans)

    def report(self) -> None:
        if self.spans and os.environ.get("GOLDEN_FLEET_TIMINGS"):
            log(self.summary())


PHASES = Phases()


class TimedExitStack(contextlib.ExitStack):
    """An ExitStack whose unwinding (everything it stops and removes) is one timed phase."""

    def __init__(self, name: str, phases: Phases = PHASES) -> None:
        super().__init__()
        self.name = name
        self.phases = phases

    def __exit__(self, *exc_info):
        with self.phases(self.name):
            return super().__exit__(*exc_info)
