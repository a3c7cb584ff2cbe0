"""YAML read within bounds: the one rule every reader of a stack file or settings file uses.

A stack file (``Pulumi.<stack>.yaml``) is a few kilobytes of config that people edit by hand and
tools rewrite. Read without bounds, three shapes of input never end in an error message:

- an **alias bomb** (nine anchors, each a list of nine aliases of the previous one) is a few
  hundred bytes that expand to 9^9 values: whatever walks the loaded tree runs out of memory;
- **deep nesting** (50,000 ``[``) makes the recursive composer raise RecursionError;
- a **huge file** (30 MB) takes minutes to parse.

So each is refused in one line naming the file and the rule, *while* parsing, before anything
is built on the input: the size before a byte is parsed (and a file is never read past the
cap), aliases and depth as the composer meets them (:class:`_BoundedComposer` counts alias
events and nesting as ruamel.yaml's composer walks the parser's events, which are produced
lazily, so a refusal at the 33rd ``[`` never scans the rest); flow nesting is counted by the
scanner as well, which otherwise looks far ahead after each ``[``. ruamel.yaml's pure-Python
parser is used throughout: the C parser would compose outside these counts.

Every reader goes through :func:`read_bytes`/:func:`read_text` and :func:`safe_load`/
:func:`compose` (tests/test_bounded_yaml.py checks that no other module parses YAML). Imports
nothing heavy at import time (ruamel.yaml lazily).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

MAX_BYTES = 1024 * 1024  # a stack file is a few kilobytes; 1 MiB leaves a hundredfold margin
# Aliases (``*name``, merge keys included) in one file: a bomb needs many, a stack file a few.
# With at most 32, the largest expansion (3 aliases per level, 10 levels) is 3^10 values.
MAX_ALIASES = 32
MAX_DEPTH = 32  # mappings and lists inside each other; a stack file nests about 5 deep


class InputLimitError(ValueError):
    """Input beyond a bound; ``str()`` is one line: ``<name>: <what> — <the rule>``."""

    def __init__(self, name: str, problem: str):
        self.name, self.problem = name, problem
        super().__init__(f"{name}: {problem}")

    def renamed(self, name: str) -> InputLimitError:
        """The same refusal, naming the input as the caller knows it."""
        return InputLimitError(name, self.problem)


def _too_big(name: str, size: int | None) -> InputLimitError:
    found = f"{size:,} bytes" if size is not None else "more than that"
    return InputLimitError(
        name,
        f"{found}, over the limit of {MAX_BYTES:,} bytes (1 MiB) for a YAML stack or settings "
        "file — refused before parsing; a stack file is a few kilobytes of config",
    )


def read_bytes(path: Path, name: str | None = None) -> bytes:
    """The file's bytes, never more than :data:`MAX_BYTES` read: its size is checked before
    reading, and a file that grows (or is not a regular file) is cut off at the cap and refused.
    OSError (missing, a directory, permission) reaches the caller as it is."""
    name = name or path.name
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_BYTES:
            raise _too_big(name, size)
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise _too_big(name, None)
    return data


def read_text(path: Path, name: str | None = None) -> str:
    """:func:`read_bytes`, decoded as UTF-8 (UnicodeDecodeError reaches the caller)."""
    return read_bytes(path, name).decode("utf-8")


def check_size(text: str, name: str) -> None:
    """Text already in memory (an edited stack file): the same cap, in UTF-8 bytes."""
    if len(text) > 4 * MAX_BYTES:  # at most 4 bytes a character: too big, without encoding
        raise _too_big(name, None)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise _too_big(name, size)


@functools.cache
def _composer_class() -> type:
    from ruamel.yaml.composer import Composer
    from ruamel.yaml.events import AliasEvent, ScalarEvent

    class _BoundedComposer(Composer):
        """ruamel.yaml's composer, counting alias events and nesting as it meets them."""

        def __init__(self, loader: Any = None):
            super().__init__(loader=loader)
            self.bounded_aliases = 0
            self.bounded_depth = 0

        def _refuse(self, problem: str) -> InputLimitError:
            mark = self.parser.peek_event().start_mark
            name = getattr(self.loader, "bounded_name", "the YAML input")
            return InputLimitError(f"{name}:{mark.line + 1}:{mark.column + 1}", problem)

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.parser.check_event(ScalarEvent):  # a leaf: no deeper than its collection
                return super().compose_node(parent, index)
            if self.parser.check_event(AliasEvent):
                self.bounded_aliases += 1
                if self.bounded_aliases > MAX_ALIASES:
                    raise self._refuse(
                        f"more than {MAX_ALIASES} YAML aliases (*name or <<) in one file — "
                        "refused before expanding them; write the values out"
                    )
                return super().compose_node(parent, index)
            self.bounded_depth += 1
            try:
                if self.bounded_depth > MAX_DEPTH:
                    raise self._refuse(
                        f"nested more than {MAX_DEPTH} levels deep — refused before parsing "
                        "further; a stack file nests a few levels"
                    )
                return super().compose_node(parent, index)
            finally:
                self.bounded_depth -= 1

    return _BoundedComposer


@functools.cache
def _scanner_class(base: type) -> type:
    class _BoundedScanner(base):  # type: ignore[misc, valid-type]
        """The scanner looks ahead up to 1,024 characters for a possible simple key after each
        ``[`` or ``{``: 50,000 of them cost a second before the composer counts the 33rd.
        Counted here too, as each is scanned."""

        def fetch_flow_collection_start(self, *args: Any, **kwargs: Any) -> None:
            if self.flow_level >= MAX_DEPTH:
                mark = self.reader.get_mark()
                name = getattr(self.loader, "bounded_name", "the YAML input")
                raise InputLimitError(
                    f"{name}:{mark.line + 1}:{mark.column + 1}",
                    f"nested more than {MAX_DEPTH} levels deep — refused before parsing "
                    "further; a stack file nests a few levels",
                )
            super().fetch_flow_collection_start(*args, **kwargs)

    return _BoundedScanner


def _yaml(typ: str, name: str) -> Any:
    import ruamel.yaml.scanner
    from ruamel.yaml import YAML

    yaml = YAML(typ=typ, pure=True)
    # Before first use: YAML makes its scanner and composer lazily from these classes (the
    # safe loader picks the plain Scanner when none is set: ruamel/yaml/main.py).
    yaml.Scanner = _scanner_class(yaml.Scanner or ruamel.yaml.scanner.Scanner)
    yaml.Composer = _composer_class()
    yaml.bounded_name = name
    return yaml


def safe_load(text: str, name: str) -> Any:
    """The document of ``text`` as plain Python values (YAML 1.2, safe types), within bounds.
    Raises :class:`InputLimitError`, or ruamel.yaml's ``YAMLError`` for invalid YAML."""
    check_size(text, name)
    return _yaml("safe", name).load(text)


def compose(text: str, name: str) -> Any:
    """The round-trip node graph of ``text`` (positions of every key and value), within
    bounds. Raises :class:`InputLimitError`, or ruamel.yaml's ``YAMLError``."""
    check_size(text, name)
    return _yaml("rt", name).compose(text)
