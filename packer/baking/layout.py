"""Where the template, its scripts and the app live, and which build the program bakes."""

from __future__ import annotations

from pathlib import Path

PACKER_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = PACKER_DIR.parent
APP_DIR = REPO_DIR / "app"
# The amazon-ebs source of the `golden` build: the only target the program bakes.
BUILD_SOURCE = "golden.amazon-ebs.golden"
