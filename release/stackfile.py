"""Reading and writing ``Pulumi.<stack>.yaml`` without losing a comment or a broken file.

* Round-trip YAML (ruamel): comments, key order, quoting and flow-style maps such as
  ``{min: 1, desired: 1, max: 2}`` survive an edit; only the edited scalars change.
* The text to be written is re-read and validated before it replaces anything.
* The write is atomic: a temporary file in the same directory, flushed and fsynced, takes the
  original's mode and then replaces it with ``os.replace``. An interrupted or failed write leaves
  the original file as it was, byte for byte.
"""

from __future__ import annotations

import difflib
import io
import os
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from components.config import StackConfig, parse_stack_config
from release.transitions import Plan, ReleaseError, apply_plan


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long value such as a certificate ARN
    yaml.indent(mapping=2, sequence=4, offset=2)  # the stack files' own layout
    return yaml


def load_config_text(text: str) -> dict[str, Any]:
    """The ``config:`` mapping of a stack file's text, as plain Python values."""
    document = YAML(typ="safe", pure=True).load(text)
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ReleaseError("the stack file has no `config:` mapping at its top level")
    return document["config"]


@dataclass
class StackFile:
    path: Path
    original: bytes
    document: Any  # the round-trip document: a CommentedMap

    @property
    def config(self) -> MutableMapping[str, Any]:
        return self.document["config"]

    def parse(self) -> StackConfig:
        """The validated config as it is on disk (:class:`ConfigError` if it does not validate)."""
        return parse_stack_config(load_config_text(self.original.decode("utf-8")))

    def render(self, plan: Plan) -> str:
        """The file's text after ``plan``; the loaded document is edited in place."""
        apply_plan(self.config, plan)
        buffer = io.StringIO()
        _round_trip().dump(self.document, buffer)
        return buffer.getvalue()


def load(path: Path) -> StackFile:
    try:
        original = path.read_bytes()
    except FileNotFoundError:
        raise ReleaseError(
            f"{path} does not exist — create the stack file, or point at it with --file"
        ) from None
    try:
        document = _round_trip().load(original.decode("utf-8"))
    except (YAMLError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ReleaseError(f"{path} is not readable YAML ({first}) — fix it first") from None
    if not isinstance(document, MutableMapping) or not isinstance(
        document.get("config"), MutableMapping
    ):
        raise ReleaseError(f"{path} has no `config:` mapping at its top level — fix it first")
    return StackFile(path=path, original=original, document=document)


def unified_diff(before: str, after: str, name: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
    )


def atomic_write(path: Path, data: bytes, expected: bytes) -> None:
    """Replace ``path`` with ``data`` in one step, if it still holds ``expected``.

    ``expected`` guards against a concurrent edit between reading the file and writing it.
    """
    if path.read_bytes() != expected:
        raise ReleaseError(
            f"{path} changed while the edit was prepared — nothing written; run the command again"
        )
    mode = path.stat().st_mode & 0o7777
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
