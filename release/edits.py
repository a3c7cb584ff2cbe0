"""One stack-file edit, prepared and checked before it is written: for commands that act in between.

``rollback --now`` changes the live listener between preparing its edit and writing it, and
``rollout`` writes one edit per step; both need what ``python -m release shift``/``rollback``
do in one go, split in two: :func:`prepare` (read, plan, validate the result with the program's
own model, render) and :func:`write` (atomic, and only if the file still holds the bytes the
edit was prepared from). Nothing here talks to AWS or Pulumi.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from release import stackfile, transitions
from release.transitions import Plan, ReleaseError


@dataclass(frozen=True)
class Prepared:
    path: Path
    original: bytes
    text: str  # the whole file after the edit; equal to the original for a no-op plan
    plan: Plan
    config: Any  # the validated StackConfig the file holds *before* the edit

    @property
    def diff(self) -> str:
        return stackfile.unified_diff(self.original.decode(), self.text, self.path.name)


def read_config(path: Path) -> Any:
    """The validated :class:`StackConfig` in ``path`` (:class:`ReleaseError` if it is invalid)."""
    return prepare(path, lambda cfg: Plan(command="read", summary="")).config


def prepare(path: Path, make_plan: Callable[[Any], Plan]) -> Prepared:
    """Read ``path``, plan with ``make_plan(config)``, and check the edited file validates.

    Raises :class:`ReleaseError` (one line) for an unreadable or invalid file, a refused step,
    or an edit that would not validate; nothing is written.
    """
    from components.config import ConfigError, parse_stack_config

    sf = stackfile.load(path)
    try:
        cfg = sf.parse()
    except ConfigError as error:
        raise ReleaseError(
            f"{sf.path.name} does not validate: {'; '.join(error.problems)} — fix the file (or "
            "restore it from git) first; the release command only edits valid stack files"
        ) from None
    plan = make_plan(cfg)
    if plan.is_noop:
        return Prepared(path, sf.original, sf.original.decode(), plan, cfg)
    try:
        transitions.validate_plan(stackfile.load_config_text(sf.original.decode()), plan)
        text = sf.render(plan)
        parse_stack_config(stackfile.load_config_text(text))  # exactly what will be written
    except ConfigError as error:
        raise ReleaseError(
            f"the edit would not validate ({'; '.join(error.problems)}) — nothing written"
        ) from None
    return Prepared(path, sf.original, text, plan, cfg)


def write(prepared: Prepared) -> bool:
    """Write the prepared edit atomically; False for a no-op. Refuses if the file changed."""
    if prepared.plan.is_noop:
        return False
    try:
        stackfile.atomic_write(prepared.path, prepared.text.encode(), expected=prepared.original)
    except OSError as error:
        raise ReleaseError(
            f"could not write {prepared.path} ({error.strerror or error}) — the file is unchanged"
        ) from None
    return True
