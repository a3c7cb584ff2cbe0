"""The template Packer 1.6.6 builds, generated at bake time from the current one.

Packer before 1.7 has its plugins built in: it rejects the ``required_plugins`` block and the
amazon-ebs options added since (``imds_support``, ``deprecate_at``). Instead of a hand copy kept
in step, the wrapper writes the current files into a temporary directory, without
``plugins.pkr.hcl`` and without those options. Everything else is byte for byte the current
template, so both Packers build the same image (the instance's IMDSv2 requirement is also set by
the launch template, and deprecation is metadata).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from baking.layout import APP_DIR, PACKER_DIR

# Files only current Packer reads at all.
CURRENT_ONLY_FILES = ("plugins.pkr.hcl",)
# Attributes Packer 1.6.6 refuses, per file. Each must be present exactly once, on one line: a
# rename or a multi-line value fails the generation loudly instead of producing a silent drift.
LEGACY_UNSUPPORTED: dict[str, tuple[str, ...]] = {
    "source.amazon-ebs.pkr.hcl": ("imds_support", "deprecate_at"),
}

_ATTRIBUTE = re.compile(r"[ \t]*([A-Za-z_][A-Za-z0-9_-]*)[ \t]*=(.*)", re.S)


def packer_is_legacy(version_output: str) -> bool:
    """Packer before 1.7 has its plugins built in and rejects required_plugins."""
    match = re.search(r"([0-9]+)\.([0-9]+)\.([0-9]+)", version_output)
    if not match:
        return False
    return (int(match.group(1)), int(match.group(2))) < (1, 7)


def _balanced(text: str) -> bool:
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
    return depth == 0 and not quoted


def legacy_source(text: str, unsupported: tuple[str, ...], origin: str) -> str:
    """``text`` without the one-line attributes named in ``unsupported``, with a header saying so.

    Raises ValueError if an attribute is missing, repeated or spans several lines."""
    kept: list[str] = []
    found: dict[str, int] = dict.fromkeys(unsupported, 0)
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        match = _ATTRIBUTE.fullmatch(line.rstrip("\r\n"))
        if match and match.group(1) in found:
            if not _balanced(match.group(2)):
                raise ValueError(
                    f"{origin}:{number}: {match.group(1)} spans several lines; keep it on one "
                    "line so the Packer 1.6.6 variant can drop it"
                )
            found[match.group(1)] += 1
            continue
        kept.append(line)
    wrong = {name: count for name, count in found.items() if count != 1}
    if wrong:
        raise ValueError(
            f"{origin}: expected each of {', '.join(unsupported)} exactly once, found "
            + ", ".join(f"{name} {count} times" for name, count in wrong.items())
            + " (update baking.legacy.LEGACY_UNSUPPORTED)"
        )
    header = (
        f"# Generated from {origin} for Packer 1.6.6 by packer/baking/legacy.py: the same source "
        f"without {', '.join(unsupported)}.\n"
    )
    return header + "".join(kept)


def assemble_legacy_template(
    target: Path, packer_dir: Path = PACKER_DIR, app_dir: Path = APP_DIR
) -> Path:
    """A directory Packer 1.6.6 builds, under ``target``; returns the template directory.

    ``scripts``, ``files`` and ``app`` are linked, not copied: ``${path.root}/scripts``,
    ``${path.root}/files`` and ``${path.root}/../app`` resolve as in the current template."""
    template = target / "packer"
    template.mkdir(parents=True)
    for path in sorted(packer_dir.glob("*.pkr.hcl")):
        if path.name in CURRENT_ONLY_FILES:
            continue
        if path.name in LEGACY_UNSUPPORTED:
            text = legacy_source(
                path.read_text(), LEGACY_UNSUPPORTED[path.name], f"packer/{path.name}"
            )
            (template / path.name).write_text(text)
        else:
            shutil.copy2(path, template / path.name)
    missing = [name for name in LEGACY_UNSUPPORTED if not (packer_dir / name).is_file()]
    if missing:
        raise ValueError(f"template file(s) {', '.join(missing)} not found in {packer_dir}")
    (template / "scripts").symlink_to(packer_dir / "scripts")
    (template / "files").symlink_to(packer_dir / "files")
    (target / "app").symlink_to(app_dir)
    return template
