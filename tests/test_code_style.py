"""The code's style is checked, not hoped for: ``ruff check`` (the rules pyproject.toml selects)
and ``ruff format --check`` over the whole repository, as a reviewer's CI would run them. ruff
is pinned exactly in requirements-dev.txt, so a new release cannot fail a run that changed
nothing. Fix a failure with ``ruff check --fix .`` and ``ruff format .``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["check", "--output-format", "concise", "."],
        ["format", "--check", "--output-format", "concise", "."],
    ],
    ids=["lint", "format"],
)
def test_ruff_finds_nothing(command):
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
