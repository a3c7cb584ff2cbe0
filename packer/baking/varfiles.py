"""Packer variables as Packer resolves them: template defaults, then ``PKR_VAR_*``, then the var
file, then ``-var`` on the command line (the wrapper puts its ``-var`` after ``-var-file``).

Only the variables that change what is inside the image are resolved here (for the digest);
Packer itself reads every variable and reports its own errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

# Variables that change what is inside the image, with the template's defaults (as Packer reads
# a bare number: text). Where the image is and how it is encrypted (region, kms_key_id) and how
# it is built (instance_type) are not content.
CONTENT_DEFAULTS: dict[str, object] = {
    "runtime": "python",
    "source_ami_owners": ["136693071363"],
    "source_ami_name": "debian-12-amd64-*",
    "app_port": "8080",  # written into the app's unit at bake time (scripts/50-app.sh)
    "ssh_username": "admin",  # the login user the image tests and clean-up act on
}
LIST_VARIABLES = frozenset({"source_ami_owners"})

_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)[ \t]*=[ \t]*(.*)", re.S)


def parse_hcl_value(raw: str) -> object:
    """A pkrvars/PKR_VAR_ value: quoted string, list of strings, or bare word/number (as text)."""
    raw = raw.strip()
    if raw.startswith("["):
        raw = re.sub(r",[ \t]*\]\Z", "]", raw)  # HCL allows a trailing comma; JSON does not
    if raw.startswith(("[", '"')):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            raise ValueError(f"cannot read value {raw!r}: {error.msg}") from None
    if not raw:
        raise ValueError("empty value")
    return raw


def _strip_comment(line: str) -> str:
    """The line without a trailing `#` or `//` comment; quotes are respected."""
    quoted = escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and (char == "#" or line.startswith("//", index)):
            return line[:index]
    return line


def _depth(text: str) -> int:
    """Open brackets minus closed ones, outside quotes."""
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char in "[{(":
            depth += 1
        elif not quoted and char in "]})":
            depth -= 1
    return depth


def parse_var_file(text: str) -> dict[str, object]:
    """Top-level ``name = value`` statements of a pkrvars file; a list or map may span lines.

    Raises ValueError naming the line for anything that is not such a statement."""
    values: dict[str, object] = {}
    pending: tuple[int, str, str] | None = None  # (line number, name, value so far)
    for number, line in enumerate(text.splitlines(), start=1):
        line = _strip_comment(line).strip()
        if pending is not None:
            start, name, value = pending
            value = f"{value} {line}"
            if _depth(value) > 0:
                pending = (start, name, value)
                continue
            pending = None
            values[name] = _value(name, value, start)
            continue
        if not line:
            continue
        match = _ASSIGNMENT.fullmatch(line)
        if not match:
            raise ValueError(f"line {number}: expected `name = value`, got {line[:60]!r}")
        name, value = match.group(1), match.group(2)
        if name in values:
            raise ValueError(f"line {number}: {name} is set twice")
        if _depth(value) > 0:
            pending = (number, name, value)
            continue
        values[name] = _value(name, value, number)
    if pending is not None:
        raise ValueError(f"line {pending[0]}: {pending[1]} has an unclosed bracket")
    return values


def _value(name: str, raw: str, number: int) -> object:
    if raw.strip().startswith("{"):
        return raw.strip()  # a map (e.g. tags): Packer reads it; no content variable is a map
    try:
        return parse_hcl_value(raw)
    except ValueError as error:
        raise ValueError(f"line {number}: {name}: {error}") from None


def read_var_file(path: Path) -> dict[str, object]:
    """The var file's values, or ValueError with one line saying why it cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    except OSError as error:
        raise ValueError(f"{path}: {error.strerror}") from None
    if "\0" in text:
        raise ValueError(f"{path} is not a text file")
    try:
        return parse_var_file(text)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def resolve_variables(
    names: Iterable[str],
    environ: Mapping[str, str],
    var_file_values: Mapping[str, object],
    defaults: Mapping[str, object],
    command_line: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """Effective values in Packer's order: defaults, PKR_VAR_*, the var file, then -var."""
    resolved: dict[str, object] = {}
    for name in names:
        value = defaults.get(name)
        if f"PKR_VAR_{name}" in environ:
            raw = environ[f"PKR_VAR_{name}"]
            value = parse_hcl_value(raw) if name in LIST_VARIABLES else raw
        if name in var_file_values:
            value = var_file_values[name]
        if command_line and name in command_line:
            value = command_line[name]
        resolved[name] = str(value) if isinstance(value, int | float) else value
    return resolved
