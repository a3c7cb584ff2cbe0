"""``--apply`` and the AMI column of ``status``: the Pulumi Automation API over the pulumi CLI.

The Automation API drives the ``pulumi`` executable, so both need it on PATH. Without it,
``--apply`` stops before touching the stack file and says what to install; ``status`` shows
``-`` for the AMI and says why.

Every preview and update here runs the policy pack in policy/ with its stack's config
(``policy/<stack>.json``: prod mandatory, staging advisory), as ``--policy-pack`` would: a
mandatory violation fails the update, and the rollout rolls back. Pulumi Cloud's policy group
(platform/) enforces the same pack again on the service side.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from components.config import COLORS, Color
from release.transitions import ReleaseError

INSTALL_HINT = (
    "install the pulumi CLI (https://www.pulumi.com/docs/install/, e.g. "
    "`curl -fsSL https://get.pulumi.com | sh`) and log in (`pulumi login`)"
)


def pulumi_cli() -> str | None:
    return shutil.which("pulumi")


def require_cli() -> str:
    path = pulumi_cli()
    if path is None:
        raise ReleaseError(
            f"--apply needs the pulumi CLI, which is not on PATH — {INSTALL_HINT}; or leave out "
            "--apply and run `pulumi preview`/`pulumi up` yourself"
        )
    return path


POLICY_DIR = "policy"


def policy_args(stack: str, work_dir: Path) -> dict[str, list[str]]:
    """``policy_packs``/``policy_pack_configs`` for the stack (``org/project/name`` or ``name``)."""
    name = stack.rsplit("/", 1)[-1]
    pack = work_dir / POLICY_DIR
    config = pack / f"{name}.json"
    if not config.is_file():
        raise ReleaseError(
            f"no policy config {config} for stack {name!r}: every stack's updates run the pack "
            "with its own config (policy/<stack>.json)"
        )
    return {"policy_packs": [str(pack)], "policy_pack_configs": [str(config)]}


def _select(stack: str, work_dir: Path) -> Any:
    from pulumi import automation

    return automation.select_stack(stack_name=stack, work_dir=str(work_dir))


def preview_and_up(
    stack: str,
    work_dir: Path,
    confirm: Callable[[], bool],
    out: Callable[[str], None] = print,
) -> bool:
    """``pulumi preview --diff`` then, if ``confirm()`` agrees, ``pulumi up``. True if applied."""
    from pulumi.automation import errors

    policies = policy_args(stack, work_dir)
    flags = (
        f"--policy-pack {policies['policy_packs'][0]} --policy-pack-config "
        + (policies["policy_pack_configs"][0])
    )
    try:
        selected = _select(stack, work_dir)
        out(f"$ pulumi preview --stack {stack} --diff {flags}")
        selected.preview(diff=True, on_output=out, **policies)
        if not confirm():
            out("not applied: the stack file is edited; run `pulumi up` when ready")
            return False
        out(f"$ pulumi up --stack {stack} {flags}")
        selected.up(on_output=out, **policies)
    except errors.CommandError as error:
        last = str(error).strip().splitlines()[-1] if str(error).strip() else "failed"
        raise ReleaseError(
            f"pulumi failed for stack {stack!r} ({last}) — the stack file is edited; fix the "
            f"cause and run `pulumi preview --stack {stack} --diff`"
        ) from None
    return True


def ami_outputs(outputs: Mapping[str, Any]) -> dict[Color, str]:
    """The image id per color from the stack outputs ``blue``/``green`` (``{amiId: ...}``).

    Values may be wrapped in Automation API ``OutputValue`` objects.
    """
    found: dict[Color, str] = {}
    for color in COLORS:
        fleet = getattr(outputs.get(color.value), "value", outputs.get(color.value))
        ami = fleet.get("amiId") if isinstance(fleet, Mapping) else None
        if isinstance(ami, str) and ami:
            found[color] = ami
    return found


def read_amis(stack: str, work_dir: Path) -> tuple[dict[Color, str], str | None]:
    """(image per color, a note when they could not be read)."""
    if pulumi_cli() is None:
        return {}, (
            "AMI: not read — the pulumi CLI is not on PATH (see --apply in docs/guides/release.md)"
        )
    try:
        outputs = _select(stack, work_dir).outputs()
    except Exception as error:  # any failure only costs the AMI column
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return {}, f"AMI: could not read the stack outputs ({first})"
    amis = ami_outputs(outputs)
    note = None if amis else "AMI: the stack has no amiId outputs yet (never updated?)"
    return amis, note
