"""The canary judge (release/judge.py): pure functions, properties and known answers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.config import AnalysisConfig, HealthConfig
from release import analysis
from release.judge import (
    METRICS,
    Action,
    Sample,
    Verdict,
    action_for,
    judge_window,
    proportion_p_value,
    relative_effect,
)

POLICY = analysis.policy_of(AnalysisConfig())
MINUTES = 5


def _sample(requests: int, errors: int = 0, p99=(0.5,) * MINUTES, scale: float = 1.0) -> Sample:
    """A color over one window: ``errors`` target 5xx, p50/p90 as fixed fractions of p99."""
    p99 = tuple(p99)
    return Sample(
        requests=requests,
        counts={"HTTPCode_Target_5XX_Count": errors, "TargetConnectionErrorCount": 0},
        latency={
            "p50": tuple(v * 0.2 * scale for v in p99),
            "p90": tuple(v * 0.6 * scale for v in p99),
            "p99": tuple(v * scale for v in p99),
        },
    )


def _verdicts(judgement) -> dict[str, Verdict]:
    return {r.metric.name: r.verdict for r in judgement.results}


# ---------------------------------------------------------------------------------------------
# Known answers
# ---------------------------------------------------------------------------------------------
def test_errors_from_0_2_to_0_6_percent_at_20k_requests_fail_below_the_fixed_alarm():
    """0.6 % of 20 000 requests is far below the error-rate alarm's 5 %: the alarm never fires,
    the judge fails the canary (the baseline serving 180 000 at 0.2 %)."""
    canary, baseline = _sample(20_000, 120), _sample(180_000, 360)
    assert 100 * 120 / 20_000 < HealthConfig().error_rate.threshold_percent
    judgement = judge_window(canary, baseline, POLICY)
    assert _verdicts(judgement)["target5xx"] is Verdict.FAIL
    assert judgement.verdict is Verdict.FAIL
    result = judgement.results[0]
    assert result.test == "chi-square" and result.p_value < 1e-6
    assert result.effect == pytest.approx(2.0)


def test_p99_up_40_percent_fails_below_the_fixed_alarm():
    """p99 0.5 s -> 0.7 s each minute (with jitter): under the 2 s alarm, judged a failure."""
    base = [0.50, 0.52, 0.48, 0.51, 0.49]
    worse = [v * 1.4 for v in base]
    assert max(worse) < HealthConfig().p99_latency.threshold_seconds
    judgement = judge_window(
        _sample(5_000, 5, p99=worse, scale=1.0), _sample(45_000, 45, p99=base), POLICY
    )
    verdicts = _verdicts(judgement)
    assert verdicts["p99Latency"] is Verdict.FAIL
    assert verdicts["target5xx"] is Verdict.PASS
    assert judgement.verdict is Verdict.FAIL, judgement.reason
    p99 = next(r for r in judgement.results if r.metric.name == "p99Latency")
    assert p99.test == "mann-whitney" and p99.effect == pytest.approx(0.4)


def test_a_shared_outage_is_shared_and_pauses():
    """Both colors go from 0.1 % to 5 % errors against their own last hour: shared, pause."""
    history = _sample(600_000, 600, p99=(0.5,) * 60)
    canary, baseline = _sample(10_000, 500), _sample(90_000, 4_500)
    judgement = judge_window(canary, baseline, POLICY, None, history)
    assert judgement.verdict is Verdict.SHARED
    assert "target5xx" in judgement.shared
    assert action_for(judgement.verdict, 0, 2) is Action.PAUSE


def test_a_canary_worse_than_a_healthy_baseline_is_not_shared():
    """Only the canary is worse than the past: a plain failure, rolled back."""
    history = _sample(600_000, 600, p99=(0.5,) * 60)
    canary, baseline = _sample(10_000, 500), _sample(90_000, 90)
    judgement = judge_window(canary, baseline, POLICY, None, history)
    assert judgement.shared == () and judgement.verdict is Verdict.FAIL
    assert action_for(judgement.verdict, 0, 2) is Action.ROLL_BACK


def test_no_traffic_is_inconclusive_extended_then_failed():
    """A canary that served nothing passes no alarm and no judge: extend, then roll back."""
    judgement = judge_window(Sample(), _sample(50_000, 50), POLICY)
    assert judgement.verdict is Verdict.INCONCLUSIVE
    assert set(_verdicts(judgement).values()) == {Verdict.INCONCLUSIVE}
    assert "0 requests" in judgement.reason
    assert math.isnan(judgement.score)
    assert [action_for(judgement.verdict, used, 2) for used in range(3)] == [
        Action.EXTEND,
        Action.EXTEND,
        Action.ROLL_BACK,
    ]


def test_tiny_traffic_with_an_error_is_inconclusive_not_failed():
    """2 errors in 40 requests (5 %) against 0.1 %: too few requests to say anything."""
    judgement = judge_window(_sample(40, 2), _sample(50_000, 50), POLICY)
    assert judgement.verdict is Verdict.INCONCLUSIVE
    assert "40 requests" in judgement.reason


def test_low_counts_use_fishers_exact_test():
    p, test = proportion_p_value(1, 400, 20, 20_000)
    assert test == "fisher" and 0.1 < p < 0.5
    p, test = proportion_p_value(300, 20_000, 200, 20_000)
    assert test == "chi-square" and p < 1e-4


def test_marginal_score_extends():
    """Only p50 fails (weight 10 of 100, not critical): score 90, marginal, extended."""
    base = [0.50, 0.52, 0.48, 0.51, 0.49]
    canary = _sample(5_000, 5, p99=base)
    canary = Sample(canary.requests, canary.counts, {**canary.latency, "p50": [0.2] * 5})
    judgement = judge_window(canary, _sample(45_000, 45, p99=base), POLICY)
    assert _verdicts(judgement)["p50Latency"] is Verdict.FAIL
    assert judgement.score == pytest.approx(90.0)
    assert judgement.verdict is Verdict.MARGINAL
    assert action_for(judgement.verdict, 0, 2) is Action.EXTEND
    assert action_for(judgement.verdict, 2, 2) is Action.ROLL_BACK


def test_direction_decrease_counts_a_fall_as_worse():
    assert relative_effect(0.5, 1.0, "decrease") == pytest.approx(0.5)
    assert relative_effect(1.0, 0.0, "increase") == math.inf
    assert relative_effect(0.0, 0.0, "increase") == 0.0


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------
latencies = st.lists(
    st.floats(min_value=0.001, max_value=30, allow_nan=False), min_size=0, max_size=30
)


@st.composite
def samples(draw) -> Sample:
    requests = draw(st.integers(min_value=0, max_value=2_000_000))
    return Sample(
        requests=requests,
        counts={
            metric.source: draw(st.integers(min_value=0, max_value=requests))
            for metric in METRICS
            if metric.kind == "ratio"
        },
        latency={metric.source: draw(latencies) for metric in METRICS if metric.kind == "latency"},
    )


@settings(max_examples=150, deadline=None)
@given(samples())
def test_identical_series_never_fail(sample):
    judgement = judge_window(sample, sample, POLICY)
    assert Verdict.FAIL not in _verdicts(judgement).values()
    assert judgement.verdict in (Verdict.PASS, Verdict.INCONCLUSIVE)


@settings(max_examples=100, deadline=None)
@given(
    base_rate=st.floats(min_value=0.001, max_value=0.05),
    factor=st.floats(min_value=2.0, max_value=10.0),
    requests=st.integers(min_value=40_000, max_value=500_000),
)
def test_a_ratio_worse_by_more_than_the_tolerance_with_enough_requests_fails(
    base_rate, factor, requests
):
    """Twice the tolerance and more, with at least 40 expected baseline errors: fails."""
    worse = min(base_rate * (1 + POLICY.metrics["target5xx"].tolerance) * factor, 0.9)
    canary = _sample(requests, round(requests * worse))
    baseline = _sample(requests, round(requests * base_rate))
    judgement = judge_window(canary, baseline, POLICY)
    assert _verdicts(judgement)["target5xx"] is Verdict.FAIL
    assert judgement.verdict is Verdict.FAIL


@settings(max_examples=100, deadline=None)
@given(
    base=st.lists(st.floats(min_value=0.01, max_value=5), min_size=8, max_size=60),
    extra=st.lists(st.floats(min_value=0.0, max_value=5), min_size=8, max_size=60),
)
def test_latency_worse_by_more_than_the_tolerance_over_enough_minutes_fails(base, extra):
    """Every canary minute above every baseline minute, the median over 1 + tolerance: fails."""
    floor = max(base) * (1 + POLICY.metrics["p99Latency"].tolerance) * 1.01
    canary = _sample(10_000, 0, p99=[floor + e for e in extra])
    judgement = judge_window(canary, _sample(10_000, 0, p99=base), POLICY)
    assert _verdicts(judgement)["p99Latency"] is Verdict.FAIL


@settings(max_examples=100, deadline=None)
@given(samples(), samples())
def test_fewer_requests_than_the_minimum_is_inconclusive(canary, baseline):
    short = Sample(canary.requests % POLICY.min_requests, {}, canary.latency)
    judgement = judge_window(short, baseline, POLICY)
    assert set(_verdicts(judgement).values()) == {Verdict.INCONCLUSIVE}
    assert judgement.verdict is Verdict.INCONCLUSIVE


def test_a_large_effect_on_few_errors_is_not_significant_and_passes():
    """1 error in 400 (0.25 %) against 20 in 20 000 (0.1 %): +150 %, but chance explains it."""
    judgement = judge_window(_sample(400, 1), _sample(20_000, 20), POLICY)
    result = judgement.results[0]
    assert result.effect == pytest.approx(1.5) and result.test == "fisher"
    assert result.verdict is Verdict.PASS and "not significant" in result.reason
