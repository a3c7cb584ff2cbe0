"""The release command looks before it writes: the live-state gate of ``shift`` and ``finish``.

Traffic only moves to a color that AWS shows fully rolled and healthy (:func:`release.live.gate`
decides what that means). The policy around it lives here:

* which colors a step puts at risk (:func:`colors_gaining`): the colors whose weight grows, and
  for ``finish`` the color that is left serving alone;
* what happens when AWS says no: refuse with one line, or write anyway with ``--force`` and a
  warning;
* what happens when AWS cannot be read (no credentials, denied, unreachable): warn and go ahead,
  as ``deploy`` does about baking, or refuse with ``--require-healthy``.

:func:`check` is the one entry point; ``rollout`` calls it before each step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from components.config import COLORS, Color, StackConfig
from release import live
from release.transitions import ReleaseError, new_color


def colors_gaining(cfg: StackConfig, weights: Mapping[Color, int]) -> tuple[Color, ...]:
    """The colors that will take a larger share than the file gives them now."""
    return tuple(c for c in COLORS if weights.get(c, 0) > cfg.traffic[c])


def check(
    cfg: StackConfig,
    stack: str,
    colors: tuple[Color, ...],
    *,
    force: bool = False,
    require_healthy: bool = False,
    weights: Mapping[Color, int] | None = None,
    clients: live.Clients | None = None,
    has_credentials: Callable[[str], bool] | None = None,
) -> list[str]:
    """Warnings to print before writing; raises :class:`ReleaseError` to refuse.

    ``colors`` are the colors that must be fit for traffic; ``weights``, when given, are the
    percentages the live listener must already forward (``finish`` checks that the shift to
    100 % was applied, not only written).
    """
    if not colors and weights is None:
        return []
    names = " and ".join(c.value for c in colors) or "the listener"
    if has_credentials is None:
        from release.aws_clients import has_credentials
    unknown = None
    if clients is None and not has_credentials(cfg.region):
        unknown = "no AWS credentials found"
    else:
        try:
            report = live.gate(cfg, stack, colors, clients=clients, weights=weights)
        except live.LiveError as error:
            unknown = str(error)
    if unknown is not None:
        if require_healthy:
            raise ReleaseError(
                f"could not check the live state of {names} ({unknown}) and --require-healthy "
                f"is set — provide AWS credentials that may read Auto Scaling, EC2, ELB and "
                f"CloudWatch in {cfg.region}"
            )
        return [
            f"could not check the live state of {names} ({unknown}); continuing — check it "
            "yourself before `pulumi up` (or pass --require-healthy to refuse instead)"
        ]
    if not report.problems:
        return []
    found = "; ".join(report.problems)
    if force:
        return [f"--force: writing although {found}"]
    raise ReleaseError(
        f"not safe to move traffic: {found} — wait and look again (`python -m release status "
        f"{stack}`), fix it, or pass --force to write anyway"
    )


def for_shift(cfg: StackConfig, percent: int) -> tuple[tuple[Color, ...], None]:
    """``shift``: the colors whose weight grows must be ready; the listener is not compared."""
    new = new_color(cfg)
    return colors_gaining(cfg, {new: percent, new.other: 100 - percent}), None


def for_finish(cfg: StackConfig) -> tuple[tuple[Color, ...], dict[Color, int]]:
    """``finish``: the new color serves alone afterwards, and the live listener must already
    send it 100 % (the file's weights applied, not only written)."""
    new = new_color(cfg)
    return (new,), {new: 100, new.other: 0}
