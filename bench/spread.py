"""How the benches report a figure: the spread over N repeated runs, judged on the median.

One good run proves little on a shared 2-core machine (the same bench has measured 0.96 and 1.38
minutes apart), so every bench repeats its measurement and prints min / median / max; a goal is
met when the median meets it, and the line says so either way.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    minimum: float
    median: float
    maximum: float
    runs: int


def spread(values: Sequence[float]) -> Spread:
    """min / median / max of at least one value (the median of an even count is the mean of the
    middle two, statistics.median's rule)."""
    if not values:
        raise ValueError("spread: no values (a bench must run at least once)")
    return Spread(min(values), statistics.median(values), max(values), len(values))


def judge(figure: Spread, goal: float) -> str:
    """'met' or 'NOT met' for a goal of at most `goal`, on the median."""
    return "met" if figure.median <= goal else "NOT met"


def report(name: str, figure: Spread, unit: str = "", goal: float | None = None) -> str:
    """One line: `name: MIN to MAX, median M over N runs  (goal <= G on the median: met)`."""
    fmt = "{:.2f}"
    text = (
        f"{name}: {fmt.format(figure.minimum)} to {fmt.format(figure.maximum)}{unit}, "
        f"median {fmt.format(figure.median)}{unit} over {figure.runs} runs"
    )
    if goal is not None:
        text += f"  (goal <= {goal:g}{unit} on the median: {judge(figure, goal)})"
    return text
