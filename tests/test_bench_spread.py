"""Bench reporting: a figure is the spread over repeated runs and a goal is judged on its median."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from spread import Spread, judge, report, spread


def test_spread_is_min_median_max_of_the_runs_in_any_order():
    """The order of runs does not matter; the median of an even count is the middle pair's mean."""
    assert spread([1.38, 0.96, 1.05]) == Spread(0.96, 1.05, 1.38, 3)
    assert spread([4.0, 1.0, 3.0, 2.0]) == Spread(1.0, 2.5, 4.0, 4)
    assert spread([2.0]) == Spread(2.0, 2.0, 2.0, 1)


def test_no_runs_is_refused():
    """A figure needs at least one run: an empty list is an error, not a zero."""
    with pytest.raises(ValueError, match="at least once"):
        spread([])


def test_a_goal_is_judged_on_the_median_not_the_best_run():
    """One lucky run under the goal does not meet it; one unlucky run over it does not fail it."""
    assert judge(spread([0.9, 1.2, 1.3]), 1.1) == "NOT met"
    assert judge(spread([0.9, 1.0, 1.9]), 1.1) == "met"
    assert judge(spread([1.1, 1.1, 1.1]), 1.1) == "met", "the goal is 'at most'"


def test_the_report_line_states_range_median_runs_and_verdict():
    """The printed line carries everything the README quotes: range, median, runs, verdict."""
    line = report("wrapper / plain packer", spread([0.96, 1.38, 1.05]), goal=1.1)
    assert line == (
        "wrapper / plain packer: 0.96 to 1.38, median 1.05 over 3 runs"
        "  (goal <= 1.1 on the median: met)"
    )
    assert (
        report("reuse", spread([0.3, 0.5]), " s")
        == "reuse: 0.30 to 0.50 s, median 0.40 s over 2 runs"
    )
