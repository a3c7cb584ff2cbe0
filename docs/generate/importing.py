"""Importing the parts of the repository that run as scripts with their own directory first on
sys.path (packer/ for the bake, policy/ for the pack, platform/ for the platform program)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def from_directory(directory: str, *modules: str) -> Iterator[list[ModuleType]]:
    """Import ``modules`` as their script would, with ROOT/directory first on sys.path; on the
    way out the path and every module newly imported under those top-level names go again, so
    a test process keeps no ``rules`` or ``baking`` of ours under a generic name."""
    path = str(ROOT / directory)
    tops = {name.split(".")[0] for name in modules}
    before = {name for name in sys.modules if name.split(".")[0] in tops}
    sys.path.insert(0, path)
    try:
        yield [importlib.import_module(name) for name in modules]
    finally:
        sys.path.remove(path)
        for name in [n for n in sys.modules if n.split(".")[0] in tops and n not in before]:
            del sys.modules[name]
