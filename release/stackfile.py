"""Reading and writing ``Pulumi.<stack>.yaml`` so that an edit changes only what it says.

* **Surgical edits.** A plan's values are spliced into the file's own text at the positions the
  YAML parser reports for them; nothing is re-serialized. Comments, key order, quoting, flow-style
  maps such as ``{min: 1, desired: 1, max: 2}``, unused anchors, indentation, blank lines, line
  endings (LF or CRLF) and a byte-order mark outside the edited scalars stay byte for byte. A key
  that does not exist yet is added as one new line at the end of its mapping; a key a plan
  removes (:data:`release.transitions.REMOVE`) loses its own lines, or its entry in a flow map.
* **Checked after the edit.** The edited text is parsed again: every edited key must hold
  exactly the planned value (and type), every removed key must be gone, and every other key
  must hold what it held before.
* **No shared nodes.** A file whose ``golden-fleet`` values share a node through a YAML
  anchor/alias (``green: *fleet``) or a merge key is refused for edits, naming both places: an
  edit of one color would silently change the other.
* **One writer at a time.** The write takes an exclusive lock on the file's directory, checks
  that the file still holds the bytes the edit was prepared from (compare-and-swap) and renames
  under that same lock; a second writer waits up to :data:`LOCK_WAIT_S` and then refuses, and one
  whose file changed meanwhile refuses. An edit is never lost.
* **Atomic and faithful.** A temporary file in the target's directory, fsynced, given the
  original's mode, owner and group, replaces the target with ``os.replace``. A symlinked stack
  file is followed: its target is edited and the link stays. A read-only file is refused.
  Temporary files left by a killed writer are removed by the next writer, under the lock.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import errno
import fcntl
import functools
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from components import bounded_yaml
from components.config import NAMESPACE, StackConfig, parse_stack_config
from release.transitions import Plan, ReleaseError, apply_plan

BOM = "\ufeff"
LOCK_WAIT_S = 10.0
_TEMP_SUFFIX = ".tmp"
# A plain YAML scalar that reads back as the same string in YAML 1.2 (checked again after the
# splice, so this only decides the style, never correctness).
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def describe_yaml_error(error: Exception, name: str) -> str:
    """``Pulumi.prod.yaml:12:5: found duplicate key "blue"`` — where and what, on one line."""
    if isinstance(error, MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = " ".join(str(error.problem or error.context or "invalid YAML").split())
        if mark is not None:
            return f"{name}:{mark.line + 1}:{mark.column + 1}: {problem}"
        return f"{name}: {problem}"
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"{name}: {first}"


@functools.lru_cache(maxsize=8)
def _loaded(text: str) -> Any:
    return bounded_yaml.safe_load(text, "the stack file")


def _safe_load(text: str, name: str = "the stack file") -> Any:
    """The document of ``text``. One command reads the same text several times (the file, its
    plan's check, the render's check): it is parsed once per process, so the result is shared
    and never mutated here (:func:`load_config_text` hands out a copy). Within the bounds of
    :mod:`components.bounded_yaml`: size, aliases, depth."""
    try:
        return _loaded(text)
    except bounded_yaml.InputLimitError as error:
        raise ReleaseError(str(error.renamed(name))) from None
    except YAMLError as error:
        raise ReleaseError(f"{describe_yaml_error(error, name)} — fix the YAML first") from None


def _unshared(value: Any) -> Any:
    """A tree copy: aliased nodes become separate values (``copy.deepcopy`` would keep them one).

    Validating a plan on shared values would apply an edit of one color to both and then blame
    the wrong one; the edit itself is refused by :func:`refuse_shared_nodes` with both places.
    """
    if isinstance(value, dict):
        return {key: _unshared(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unshared(item) for item in value]
    return value


def load_config_text(text: str) -> dict[str, Any]:
    """The ``config:`` mapping of a stack file's text, as plain Python values (no sharing)."""
    document = _safe_load(text)
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ReleaseError("the stack file has no `config:` mapping at its top level")
    return _unshared(document["config"])


@dataclass
class StackFile:
    path: Path  # the path as given (a symlink stays a symlink)
    original: bytes
    text: str  # ``original`` decoded, byte-order mark included
    root: MappingNode  # the composed node graph: positions of every key and value

    @property
    def target(self) -> Path:
        """The file that is really edited: a symlink's final target."""
        return self.path.resolve()

    def parse(self) -> StackConfig:
        """The validated config as it is on disk (:class:`ConfigError` if it does not validate)."""
        return parse_stack_config(load_config_text(self.text))

    def render(self, plan: Plan) -> str:
        """The file's text after ``plan``: only the planned scalars differ from the original."""
        refuse_shared_nodes(self.root, self.path.name)
        text = self.text
        for change in plan.changes:
            path = ("config", *change.path)
            if change.removes:
                text = remove_value(text, path, self.path.name)
            else:
                text = set_value(text, path, change.value, self.path.name)
        check_only_planned(self.text, text, plan, self.path.name)
        return text


def _read(path: Path) -> bytes:
    try:
        return bounded_yaml.read_bytes(path)  # never more than its size cap
    except bounded_yaml.InputLimitError as error:
        raise ReleaseError(str(error)) from None
    except FileNotFoundError:
        raise ReleaseError(
            f"{path} does not exist — create the stack file, or point at it with --file"
        ) from None
    except IsADirectoryError:
        raise ReleaseError(f"{path} is a directory, not a stack file — check --file") from None
    except PermissionError:
        raise ReleaseError(f"{path} is not readable (permission denied)") from None
    except OSError as error:
        raise ReleaseError(f"{path} could not be read ({error.strerror or error})") from None


def load(path: Path) -> StackFile:
    original = _read(path)
    try:
        text = original.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ReleaseError(
            f"{path.name}: byte {error.start} is not UTF-8 — stack files are UTF-8 text"
        ) from None
    try:
        root = bounded_yaml.compose(text, path.name)
        _safe_load(text, path.name)  # duplicate keys and other load-time faults, with position
    except bounded_yaml.InputLimitError as error:
        raise ReleaseError(str(error)) from None
    except YAMLError as error:
        raise ReleaseError(
            f"{path} is not readable YAML ({describe_yaml_error(error, path.name)}) — fix it first"
        ) from None
    config = _child(root, "config") if isinstance(root, MappingNode) else None
    if not isinstance(config, MappingNode):
        raise ReleaseError(f"{path} has no `config:` mapping at its top level — fix it first")
    return StackFile(path=path, original=original, text=text, root=root)


# ---------------------------------------------------------------------------------------------
# Shared nodes (anchors, aliases, merge keys)
# ---------------------------------------------------------------------------------------------
def _child(mapping: MappingNode, key: str) -> Node | None:
    for key_node, value_node in mapping.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return None


def _where(node: Node) -> str:
    return f"line {node.start_mark.line + 1}"


def refuse_shared_nodes(root: MappingNode, name: str) -> None:
    """Refuse a file in which two ``golden-fleet`` keys are one node (alias or merge key)."""
    config = _child(root, "config")
    seen: dict[int, str] = {}

    def walk(node: Node, path: str) -> None:
        if id(node) in seen:
            raise ReleaseError(
                f"{name}: {path} ({_where(node)}) is the same YAML node as {seen[id(node)]} "
                "(an anchor and alias): an edit of one would change both — write both out in "
                "full (no &anchor/*alias or << merge under golden-fleet keys), then run again"
            )
        seen[id(node)] = path
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key == "<<":
                    raise ReleaseError(
                        f"{name}: {path} uses a YAML merge key (<<) at {_where(key_node)}: "
                        "merged keys cannot be edited in place — write them out in full"
                    )
                walk(value_node, f"{path}.{key}")
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{path}[{index}]")

    if isinstance(config, MappingNode):
        for key_node, value_node in config.value:
            if str(key_node.value).startswith(f"{NAMESPACE}:"):
                walk(value_node, str(key_node.value))


# ---------------------------------------------------------------------------------------------
# Splicing one value into the text
# ---------------------------------------------------------------------------------------------
def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def render_scalar(value: Any, style: str | None = None) -> str:
    """``value`` as YAML scalar text, in the original's quoting style where it has one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise ReleaseError(f"cannot write {value!r} into a stack file (not a scalar)")
    if style == "'" and "\n" not in value:
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or not _PLAIN_SAFE.fullmatch(value) or _reads_back(value) != value:
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted one
    return value


def _reads_back(plain: str) -> Any:
    try:
        return bounded_yaml.safe_load(f"v: {plain}\n", "a scalar")["v"]
    except (YAMLError, bounded_yaml.InputLimitError):
        return None


def _line_end(text: str, index: int) -> int:
    """The index of the line break ending the line that holds ``index`` (or the text's end)."""
    end = text.find("\n", index)
    if end < 0:
        return len(text)
    return end - 1 if end > 0 and text[end - 1] == "\r" else end


def _last_scalar(node: Node) -> Node:
    while isinstance(node, MappingNode | SequenceNode) and node.value and not node.flow_style:
        last = node.value[-1]
        node = last[1] if isinstance(node, MappingNode) else last
    return node


def _new_block(keys: tuple[str, ...], value: Any, indent: int, newline: str) -> str:
    """Lines (each starting with a line break) adding ``keys`` -> ``value`` at ``indent``."""
    lines = []
    for depth, key in enumerate(keys[:-1]):
        lines.append(" " * (indent + 2 * depth) + f"{key}:")
    lines.append(" " * (indent + 2 * (len(keys) - 1)) + f"{keys[-1]}: {render_scalar(value)}")
    return "".join(newline + line for line in lines)


def _insert(text: str, mapping: MappingNode, keys: tuple[str, ...], value: Any) -> str:
    """Add ``keys`` -> ``value`` as the last entry of ``mapping``."""
    if mapping.flow_style:
        closing = text.rindex("}", mapping.start_mark.index, mapping.end_mark.index)
        inner = text[mapping.start_mark.index + 1 : closing].strip()
        nested = render_scalar(value)
        for key in reversed(keys[1:]):
            nested = f"{{{key}: {nested}}}"
        entry = f"{keys[0]}: {nested}"
        return text[:closing] + (f", {entry}" if inner else entry) + text[closing:]
    if not mapping.value:
        raise ReleaseError("cannot add a key to an empty block mapping")
    indent = mapping.value[0][0].start_mark.column
    at = _line_end(text, _last_scalar(mapping.value[-1][1]).end_mark.index)
    return text[:at] + _new_block(keys, value, indent, _newline(text)) + text[at:]


def _compose(text: str, name: str) -> Any:
    try:
        return bounded_yaml.compose(text, name)
    except bounded_yaml.InputLimitError as error:
        raise ReleaseError(str(error)) from None


def set_value(text: str, path: tuple[str, ...], value: Any, name: str = "stack file") -> str:
    """``text`` with the scalar at ``path`` replaced by ``value`` (added if missing)."""
    node = _compose(text, name)
    for depth, key in enumerate(path):
        if not isinstance(node, MappingNode):
            raise ReleaseError(
                f"{name}: {'.'.join(path[:depth])} is not a mapping ({_where(node)}) — "
                "fix the file first"
            )
        child = _child(node, key)
        if child is None:
            return _insert(text, node, path[depth:], value)
        node = child
    if not isinstance(node, ScalarNode):
        raise ReleaseError(
            f"{name}: {'.'.join(path[1:])} ({_where(node)}) holds a mapping or list where a "
            "single value belongs — fix the file first"
        )
    start, end = node.start_mark.index, node.end_mark.index
    rendered = render_scalar(value, node.style)
    return text[:start] + rendered + _keep_comment_column(text[end:], len(rendered) - (end - start))


_SPACES_THEN_COMMENT = re.compile(r"( +)#")


def _keep_comment_column(rest: str, grown: int) -> str:
    """The rest of the line after a replaced value, with the spaces before an inline comment
    adjusted by what the value ``grown`` (at least one space left): the comment keeps its column
    (``stable: blue   # ...`` becomes ``stable: green  # ...``)."""
    found = _SPACES_THEN_COMMENT.match(rest)
    if not found or grown == 0:
        return rest
    spaces = max(1, len(found.group(1)) - grown)
    return " " * spaces + rest[len(found.group(1)) :]


def _value_end(text: str, node: Node) -> int:
    """Where a value ends in the text: after its scalar, or after a flow collection's bracket."""
    if isinstance(node, MappingNode | SequenceNode) and not node.flow_style:
        return _line_end(text, _last_scalar(node).end_mark.index)
    return node.end_mark.index


def remove_value(text: str, path: tuple[str, ...], name: str = "stack file") -> str:
    """``text`` without the key at ``path`` and its value; unchanged if there is no such key.

    In a block mapping the entry's lines go (from the key's line to the end of its value's
    last line, comments on those lines included); in a flow mapping the entry and one comma.
    The last key of a block mapping is refused: the mapping would be left empty (null).
    """
    node = _compose(text, name)
    parent: MappingNode | None = None
    index = -1
    for depth, key in enumerate(path):
        if not isinstance(node, MappingNode):
            raise ReleaseError(
                f"{name}: {'.'.join(path[:depth])} is not a mapping ({_where(node)}) — "
                "fix the file first"
            )
        found = [
            i for i, (k, _) in enumerate(node.value) if isinstance(k, ScalarNode) and k.value == key
        ]
        if not found:
            return text
        parent, index = node, found[0]
        node = node.value[index][1]
    assert parent is not None
    entries = parent.value
    key_node, value_node = entries[index]
    if parent.flow_style:
        if index + 1 < len(entries):  # "key: value, " up to the next key
            start, end = key_node.start_mark.index, entries[index + 1][0].start_mark.index
        elif index > 0:  # ", key: value" after the previous value
            start, end = _value_end(text, entries[index - 1][1]), _value_end(text, value_node)
        else:
            start, end = key_node.start_mark.index, _value_end(text, value_node)
        return text[:start] + text[end:]
    where = ".".join(path[1:])
    if len(entries) == 1:
        raise ReleaseError(
            f"{name}: removing {where} would leave {'.'.join(path[1:-1])} empty — nothing written"
        )
    line_start = text.rfind("\n", 0, key_node.start_mark.index) + 1
    if text[line_start : key_node.start_mark.index].strip(" \ufeff"):
        raise ReleaseError(
            f"{name}: {where} ({_where(key_node)}) does not start its own line and cannot be "
            "removed in place — fix the file first"
        )
    end = _line_end(text, _value_end(text, value_node))
    end += len("\r\n") if text.startswith("\r\n", end) else int(text.startswith("\n", end))
    return text[:line_start] + text[end:]


def _without(config: Mapping[str, Any], paths: list[tuple[str, ...]]) -> Any:
    result = copy.deepcopy(dict(config))
    for path in paths:
        node = result
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return result


def check_only_planned(before: str, after: str, plan: Plan, name: str) -> None:
    """Every planned key holds its planned value; every other key is as it was."""
    old, new = load_config_text(before), load_config_text(after)
    expected = copy.deepcopy(old)
    apply_plan(expected, plan)
    paths = [change.path for change in plan.changes]
    for change in plan.changes:
        got: Any = new
        present = True
        for key in change.path:
            present = isinstance(got, dict) and key in got
            got = got.get(key) if present else None
            if not present:
                break
        if change.removes:
            if present:
                raise ReleaseError(
                    f"{name}: {'.'.join(change.path)} would still be there after its removal "
                    "— nothing written"
                )
            continue
        if got != change.value or type(got) is not type(change.value):
            raise ReleaseError(
                f"{name}: {'.'.join(change.path)} would read back as {got!r}, not "
                f"{change.value!r} — nothing written"
            )
    if _without(new, paths) != _without(expected, paths):
        raise ReleaseError(f"{name}: the edit would change keys outside the plan — nothing written")


def unified_diff(before: str, after: str, name: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
    )


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def locked(path: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Exclusive advisory lock for edits of stack files in ``path``'s directory.

    The lock is on the directory (``flock`` on its descriptor), not on the file: the file is
    replaced by rename, so a lock on its inode would not be seen by the next writer.
    """
    directory = path.resolve().parent
    fd = os.open(directory, os.O_RDONLY)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise ReleaseError(
                        f"another release command is editing a stack file in {directory} — "
                        "nothing written; run the command again when it has finished"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _remove_stale_temporaries(target: Path) -> None:
    """Temporary files of a writer that was killed before its rename (we hold the lock)."""
    for leftover in target.parent.glob(f".{target.name}.*{_TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def atomic_write(path: Path, data: bytes, expected: bytes) -> None:
    """Replace ``path`` (a symlink's target) with ``data`` if it still holds ``expected``."""
    target = path.resolve()
    with locked(target):
        _remove_stale_temporaries(target)
        info = target.stat()
        if not info.st_mode & stat.S_IWUSR:
            raise ReleaseError(
                f"{target} is read-only (mode {stat.filemode(info.st_mode)}) — nothing written; "
                "make it writable if it should be edited"
            )
        if target.read_bytes() != expected:
            raise ReleaseError(
                f"{path} changed while the edit was prepared — nothing written; run the "
                "command again"
            )
        fd, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=_TEMP_SUFFIX
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if (os.geteuid() == 0) or (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                os.chown(temporary, info.st_uid, info.st_gid)
            os.chmod(temporary, stat.S_IMODE(info.st_mode))
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_directory(target.parent)


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
