"""The canary judge: the new color against the stable one over the same window. Pure: no AWS.

As Kayenta (Spinnaker) and Argo Rollouts' analysis, the canary is judged against a baseline that
serves at the same time: during every step of a weighted blue/green rollout both colors take
requests, so whatever the time of day, the load or a dependency does, it does to both.

Per metric (:data:`METRICS`), with a direction (which way is worse), a tolerance (the relative
effect size below which a difference does not count) and a confidence:

- error ratios (a count over ``RequestCount``): a one-sided test of two proportions. With every
  expected cell of the 2x2 table at least :data:`EXPECTED_CELL_MIN` it is the chi-square test
  without continuity correction (the z test of two proportions, squared), halved to one side;
  below that, Fisher's exact test -- both from scipy.stats;
- latency (``TargetResponseTime`` p50/p90/p99, one value a minute): Mann-Whitney U over the
  window's per-minute values (scipy.stats), plus the tolerance on the ratio of the medians.

A metric fails when the difference is significant (p below ``1 - confidence``) in the worse
direction *and* larger than its tolerance; it is ``inconclusive`` when either color has fewer
requests than the minimum, or fewer per-minute values than :data:`MIN_MINUTES`. The score is the
weighted share of metrics that pass, 0-100, against the ``pass`` and ``marginal`` thresholds as
Kayenta scores a run; a failing critical metric fails the window whatever the score.

A window in which both colors are worse than their own recent past (:func:`shared_problems`) is
``shared``: a dependency both use failed, and the canary is not rolled back for it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from scipy import stats

# Below this expected count in any cell of the 2x2 table the chi-square approximation is poor
# (Cochran's rule): Fisher's exact test instead.
EXPECTED_CELL_MIN = 5.0
# Mann-Whitney U on fewer values a color cannot reach significance: with 3 against 3 the
# smallest one-sided p is 1/20 = 0.05.
MIN_MINUTES = 3

Direction = Literal["increase", "decrease"]  # which way is worse


@dataclass(frozen=True)
class Metric:
    """One judged metric: a ratio of a count to ``RequestCount``, or a latency percentile."""

    name: str  # the key under golden-fleet:analysis.metrics
    kind: Literal["ratio", "latency"]
    source: str  # the CloudWatch metric (ratio: the numerator) or the percentile statistic
    label: str
    direction: Direction = "increase"


METRICS: tuple[Metric, ...] = (
    Metric("target5xx", "ratio", "HTTPCode_Target_5XX_Count", "target 5xx / requests"),
    Metric(
        "connectionErrors", "ratio", "TargetConnectionErrorCount", "connection errors / requests"
    ),
    Metric("p50Latency", "latency", "p50", "p50 response time (s)"),
    Metric("p90Latency", "latency", "p90", "p90 response time (s)"),
    Metric("p99Latency", "latency", "p99", "p99 response time (s)"),
)
METRIC_NAMES = tuple(metric.name for metric in METRICS)


class Verdict(StrEnum):
    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    SHARED = "shared"


@dataclass(frozen=True)
class MetricPolicy:
    """How one metric is judged (golden-fleet:analysis.metrics.<name>)."""

    tolerance: float  # relative: 0.25 = a canary up to 25 % worse does not count
    weight: float
    critical: bool = False


@dataclass(frozen=True)
class Policy:
    """The judge's settings (golden-fleet:analysis, :func:`policy_of`)."""

    metrics: Mapping[str, MetricPolicy]
    confidence: float = 0.95
    min_requests: int = 300
    pass_score: float = 95.0
    marginal_score: float = 75.0

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence


@dataclass(frozen=True)
class Sample:
    """One color over one window: its requests, each ratio metric's count, and each latency
    percentile's per-minute values (any order; minutes without requests have none)."""

    requests: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)  # CloudWatch metric -> sum
    latency: Mapping[str, Sequence[float]] = field(default_factory=dict)  # "p99" -> values

    def ratio(self, source: str) -> float:
        return self.counts.get(source, 0) / self.requests if self.requests else math.nan


@dataclass(frozen=True)
class MetricResult:
    metric: Metric
    verdict: Verdict
    canary: float  # the ratio, or the median of the per-minute values (NaN: no data)
    baseline: float
    effect: float  # relative: canary / baseline - 1 (inf when the baseline is 0 and canary not)
    p_value: float  # one-sided, in the worse direction (NaN: not tested)
    test: str  # "fisher", "chi-square", "mann-whitney" or why none ran
    reason: str = ""


@dataclass(frozen=True)
class Judgement:
    results: tuple[MetricResult, ...]
    score: float  # 0-100; NaN when no metric was conclusive
    verdict: Verdict
    reason: str
    shared: tuple[str, ...] = ()  # metrics on which both colors are worse than their past


# ---------------------------------------------------------------------------------------------
# One metric
# ---------------------------------------------------------------------------------------------
def relative_effect(canary: float, baseline: float, direction: Direction = "increase") -> float:
    """How much worse the canary is, relative to the baseline: 0.4 = 40 % worse; negative is
    better. A baseline of 0: no effect when the canary is 0 too, else infinitely worse."""
    if math.isnan(canary) or math.isnan(baseline):
        return math.nan
    if baseline == 0:
        worse = canary > 0 if direction == "increase" else canary < 0
        return math.inf if worse else (0.0 if canary == 0 else -math.inf)
    change = canary / baseline - 1.0
    return change if direction == "increase" else -change


def proportion_p_value(
    canary_events: int,
    canary_n: int,
    baseline_events: int,
    baseline_n: int,
    direction: Direction = "increase",
) -> tuple[float, str]:
    """One-sided p-value that the canary's proportion is worse (higher for ``increase``) than
    the baseline's, and which test gave it."""
    table = [
        [canary_events, canary_n - canary_events],
        [baseline_events, baseline_n - baseline_events],
    ]
    total = canary_n + baseline_n
    events = canary_events + baseline_events
    if events == 0 or events == total:
        return 1.0, "no difference possible"
    expected = [
        row * column / total
        for row in (canary_n, baseline_n)
        for column in (events, total - events)
    ]
    alternative = "greater" if direction == "increase" else "less"
    if min(expected) < EXPECTED_CELL_MIN:
        return float(stats.fisher_exact(table, alternative=alternative).pvalue), "fisher"
    chi2 = stats.chi2_contingency(table, correction=False)
    canary_p, baseline_p = canary_events / canary_n, baseline_events / baseline_n
    worse = canary_p > baseline_p if direction == "increase" else canary_p < baseline_p
    half = float(chi2.pvalue) / 2.0
    return (half if worse else 1.0 - half), "chi-square"


@dataclass(frozen=True)
class _Observed:
    """One metric in both colors: the values compared, why the window's data cannot judge it
    beyond the request floor (empty: it can), and the one-sided test of the difference."""

    canary: float
    baseline: float
    shortfall: str
    test: Callable[[], tuple[float, str]]  # (p-value, test name); run only when judged


def _observe_ratio(metric: Metric, canary: Sample, baseline: Sample) -> _Observed:
    def test() -> tuple[float, str]:
        return proportion_p_value(
            canary.counts.get(metric.source, 0),
            canary.requests,
            baseline.counts.get(metric.source, 0),
            baseline.requests,
            metric.direction,
        )

    return _Observed(canary.ratio(metric.source), baseline.ratio(metric.source), "", test)


def _observe_latency(metric: Metric, canary: Sample, baseline: Sample) -> _Observed:
    cs = [v for v in canary.latency.get(metric.source, ()) if not math.isnan(v)]
    bs = [v for v in baseline.latency.get(metric.source, ()) if not math.isnan(v)]
    shortfall = ""
    if min(len(cs), len(bs)) < MIN_MINUTES:
        shortfall = (
            f"{len(cs)} canary and {len(bs)} baseline minutes with data; at least "
            f"{MIN_MINUTES} each are needed"
        )

    def test() -> tuple[float, str]:
        if len(set(cs) | set(bs)) == 1:  # all equal: U is exactly half, no difference
            return 1.0, "mann-whitney"
        alternative = "greater" if metric.direction == "increase" else "less"
        return float(stats.mannwhitneyu(cs, bs, alternative=alternative).pvalue), "mann-whitney"

    return _Observed(
        statistics.median(cs) if cs else math.nan,
        statistics.median(bs) if bs else math.nan,
        shortfall,
        test,
    )


def _too_few_requests(canary: Sample, baseline: Sample, min_requests: int) -> str:
    for name, sample in (("canary", canary), ("baseline", baseline)):
        if sample.requests < min_requests:
            return (
                f"the {name} had {sample.requests} requests in the window; at least "
                f"{min_requests} are needed"
            )
    return ""


def _decide(
    metric: Metric,
    c: float,
    b: float,
    effect: float,
    p: float,
    test: str,
    policy: MetricPolicy,
    alpha: float,
) -> MetricResult:
    significant = p < alpha
    beyond = effect > policy.tolerance
    if significant and beyond:
        verdict, reason = (
            Verdict.FAIL,
            (
                f"worse by {_percent(effect)} (tolerance {_percent(policy.tolerance)}), "
                f"p={p:.3g} < {alpha:.3g}"
            ),
        )
    else:
        verdict = Verdict.PASS
        reason = (
            f"not significant (p={p:.3g})"
            if not significant
            else f"within tolerance ({_percent(effect)} <= {_percent(policy.tolerance)})"
        )
    return MetricResult(metric, verdict, c, b, effect, p, test, reason)


def _percent(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value * 100:+.0f}%"


def judge_metric(metric: Metric, canary: Sample, baseline: Sample, policy: Policy) -> MetricResult:
    """Inconclusive below the request floor, then below the metric's own data floor; otherwise
    the metric's one-sided test and its tolerance decide."""
    observe = _observe_ratio if metric.kind == "ratio" else _observe_latency
    seen = observe(metric, canary, baseline)
    c, b = seen.canary, seen.baseline
    effect = relative_effect(c, b, metric.direction)
    short = _too_few_requests(canary, baseline, policy.min_requests) or seen.shortfall
    if short:
        return MetricResult(metric, Verdict.INCONCLUSIVE, c, b, effect, math.nan, "none", short)
    p, test = seen.test()
    return _decide(metric, c, b, effect, p, test, policy.metrics[metric.name], policy.alpha)


# ---------------------------------------------------------------------------------------------
# The window
# ---------------------------------------------------------------------------------------------
def score(results: Sequence[MetricResult], policy: Policy) -> float:
    """Weighted share of the conclusive metrics that pass, 0-100 (Kayenta's weighted sum); NaN
    when none is conclusive."""
    judged = [r for r in results if r.verdict in (Verdict.PASS, Verdict.FAIL)]
    total = sum(policy.metrics[r.metric.name].weight for r in judged)
    if not judged or total <= 0:
        return math.nan
    passed = sum(policy.metrics[r.metric.name].weight for r in judged if r.verdict is Verdict.PASS)
    return 100.0 * passed / total


def judge_window(
    canary: Sample,
    baseline: Sample,
    policy: Policy,
    canary_history: Sample | None = None,
    baseline_history: Sample | None = None,
) -> Judgement:
    """Every configured metric of the canary against the baseline, the score and the verdict.

    With the colors' histories (their own hour before the window), a window in which both colors
    are worse than their past on some metric is ``shared`` whatever the canary's score."""
    results = tuple(
        judge_metric(metric, canary, baseline, policy)
        for metric in METRICS
        if metric.name in policy.metrics
    )
    value = score(results, policy)
    shared: tuple[str, ...] = ()
    if baseline_history is not None:
        shared = shared_problems(canary, baseline, canary_history, baseline_history, policy)
    verdict, reason = _overall(results, value, policy, shared)
    return Judgement(results, value, verdict, reason, shared)


def _overall(
    results: Sequence[MetricResult], value: float, policy: Policy, shared: Sequence[str]
) -> tuple[Verdict, str]:
    failed = [r.metric.name for r in results if r.verdict is Verdict.FAIL]
    if shared:
        return Verdict.SHARED, (
            f"both colors are worse than their own last hour on {', '.join(shared)}: a shared "
            "cause, not the canary"
        )
    critical = [n for n in failed if policy.metrics[n].critical]
    if critical:
        return Verdict.FAIL, f"critical metric failed: {', '.join(critical)}"
    short = [r for r in results if r.verdict is Verdict.INCONCLUSIVE]
    if short:
        return Verdict.INCONCLUSIVE, short[0].reason
    if value >= policy.pass_score:
        return Verdict.PASS, f"score {value:.0f} >= pass {policy.pass_score:g}"
    if value >= policy.marginal_score:
        return Verdict.MARGINAL, (
            f"score {value:.0f} between marginal {policy.marginal_score:g} and pass "
            f"{policy.pass_score:g} (failed: {', '.join(failed)})"
        )
    return Verdict.FAIL, (
        f"score {value:.0f} < marginal {policy.marginal_score:g} (failed: {', '.join(failed)})"
    )


def shared_problems(
    canary: Sample,
    baseline: Sample,
    canary_history: Sample | None,
    baseline_history: Sample,
    policy: Policy,
) -> tuple[str, ...]:
    """Metrics on which both colors are worse than their own last hour (the same test and
    tolerance as canary against baseline). A canary without enough history of its own (it
    took no traffic before the rollout) is held against the baseline's."""
    enough = canary_history is not None and canary_history.requests >= policy.min_requests
    canary_past = canary_history if enough and canary_history is not None else baseline_history
    names = []
    for metric in METRICS:
        if metric.name not in policy.metrics:
            continue
        baseline_now = judge_metric(metric, baseline, baseline_history, policy)
        canary_now = judge_metric(metric, canary, canary_past, policy)
        if baseline_now.verdict is Verdict.FAIL and canary_now.verdict is Verdict.FAIL:
            names.append(metric.name)
    return tuple(names)


# ---------------------------------------------------------------------------------------------
# What the rollout does with a verdict
# ---------------------------------------------------------------------------------------------
class Action(StrEnum):
    GO_ON = "go on"
    EXTEND = "extend"
    PAUSE = "pause"
    ROLL_BACK = "roll back"


def action_for(verdict: Verdict, extensions_used: int, max_extensions: int) -> Action:
    """pass: go on; fail: roll back; shared: pause (never roll back the canary for an outage the
    baseline has too); inconclusive or marginal: extend the window, at most ``max_extensions``
    times, then fail (a step that could not be judged is not passed)."""
    if verdict is Verdict.PASS:
        return Action.GO_ON
    if verdict is Verdict.SHARED:
        return Action.PAUSE
    if verdict in (Verdict.INCONCLUSIVE, Verdict.MARGINAL) and extensions_used < max_extensions:
        return Action.EXTEND
    return Action.ROLL_BACK
