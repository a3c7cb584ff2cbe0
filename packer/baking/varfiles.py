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
    "keep_sshd": "false",  # 95-remove-sshd.sh purges openssh-server unless true
    # The application package (baking/package.py passes both with -var): its verified digest and
    # the unit the boot environment is wired to.
    "app_sha256": "",
    "app_unit": "",
}
LIST_VARIABLES = frozenset({"source_ami_owners"})


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


def parse_var_file(text: str) -> dict[str, object]:
    """The ``name = value`` attributes of a pkrvars file, read by an HCL2 parser (python-hcl2):
    every layout Packer accepts (lists and maps over several lines, trailing commas, ``#``,
    ``//`` and ``/* */`` comments) is read; anything else is a ValueError of one line.

    Strings come back unquoted and unescaped, numbers and booleans as Packer would pass them
    on (``8080``, ``true``), lists as lists and maps as dicts."""
    import hcl2  # imported here: only a bake with a var file pays for the grammar
    from lark.exceptions import LarkError

    try:
        tree = hcl2.loads(text)
    except (LarkError, ValueError) as error:
        first = " ".join(str(error).split())[:160]
        raise ValueError(f"not a Packer variables file: {first}") from None
    values: dict[str, object] = {}
    for name, value in tree.items():
        if name.startswith("__"):  # the parser's record of comments
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            raise ValueError(f"{name}: a variables file holds `name = value` only, not blocks")
        values[name] = _plain(value)
    return values


def _plain(value: object) -> object:
    """A python-hcl2 value as Packer's: strings without their quotes, scalars as HCL text."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                # HCL's string escapes are JSON's for what a var file holds (quote, backslash,
                # newline, tab, \\u).
                return json.loads(value)
            except json.JSONDecodeError:
                return value[1:-1]
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not str(k).startswith("__")}
    return value


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
