"""Canary analysis for the release command: the stack's policy, each step's judgement, and what
the rollout does with it. The statistics are :mod:`release.judge`'s; the metrics are read by
:mod:`release.metrics`."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from release import publication
from release.durations import duration
from release.judge import (
    Action,
    Judgement,
    MetricPolicy,
    Policy,
    Verdict,
    action_for,
    judge_window,
)
from release.metrics import REQUESTS, Series, whole_minutes
from release.publication import Outcome, Published
from release.transitions import ReleaseError


def policy_of(analysis: Any) -> Policy:
    """The judge's :class:`Policy` from ``golden-fleet:analysis`` (components.config)."""
    return Policy(
        metrics={
            name: MetricPolicy(tolerance, weight, critical)
            for name, (tolerance, weight, critical) in analysis.metrics.resolved().items()
        },
        confidence=analysis.confidence,
        min_requests=analysis.min_requests,
        pass_score=float(analysis.pass_score),
        marginal_score=float(analysis.marginal_score),
    )


# ---------------------------------------------------------------------------------------------
# One step: judge after the bake, extend while it cannot say, then go on, pause or roll back
# ---------------------------------------------------------------------------------------------
HISTORY = timedelta(hours=1)  # each color's own past, against which `shared` is decided

# colors' per-minute series from start to end (release.metrics.read, bound to a stack)
MetricReader = Callable[[datetime, datetime], Mapping[str, Series]]
# the minutes from start to end with a RequestCount datapoint, per color and for the load
# balancer (release.metrics.published, bound to a stack)
PublicationReader = Callable[[datetime, datetime], Published]


class CanaryFailed(ReleaseError):
    """The judge failed the canary (or could not judge it within its extensions)."""


class Paused(Exception):
    """Both colors are worse than their own past: a shared cause. The weights stay as they are;
    the canary is not rolled back for it."""


@dataclass(frozen=True)
class StepRecord:
    """One judged window, for the report and the timeline."""

    label: str
    percent: int  # the canary's weight
    start: datetime
    end: datetime
    judgement: Judgement
    action: Action
    canary: Series
    baseline: Series
    baseline_is_history: bool = False  # the baseline took no traffic: its last hour instead
    publication: Outcome | None = None  # the wait for the window's metrics (None: not waited)

    def data_minutes(self) -> tuple[datetime, ...]:
        """The minutes of the window in which a judged color has requests: the canary's, and
        the baseline's when it served beside it. Their first and last are the window judged."""
        seen = {minute for minute, _ in self.canary.points.get(REQUESTS, ())}
        if not self.baseline_is_history:
            seen |= {minute for minute, _ in self.baseline.points.get(REQUESTS, ())}
        return tuple(sorted(seen))


@dataclass
class CanaryAnalysis:
    policy: Policy
    max_extensions: int
    read: MetricReader
    canary: str  # color names
    baseline: str
    records: list[StepRecord] = field(default_factory=list)
    # Before a window is judged, wait up to publication_wait_s after its end for CloudWatch to
    # publish its last whole minute (release/publication.py); 0 or no reader: judge at once.
    published: PublicationReader | None = None
    publication_wait_s: float = 0.0

    def judge(
        self,
        label: str,
        percent: int,
        start: datetime,
        end: datetime,
        used: int = 0,
        clock: Any = None,
        watch: Callable[[], None] | None = None,
        note: Callable[[str], None] | None = None,
    ) -> StepRecord:
        """One window: both colors over it, and over their hour before it -- once its last
        minute is published, when a ``clock`` (release.rollout.Clock: wall, monotonic, sleep)
        is given to wait on. ``watch`` runs at every poll of that wait; ``note`` says that it
        waits."""
        waited = self._await(label, start, end, clock, watch, note)
        try:
            now = self.read(start, end)
            past = self.read(start - HISTORY, start)
        except Exception as error:  # MetricsError, botocore's: a step never passes unjudged
            raise CanaryFailed(
                f"could not read both colors' metrics for {label} ({error}): not judged"
            ) from None
        canary, baseline = now[self.canary], now[self.baseline]
        alone = percent >= 100  # no baseline serves beside the canary: its last hour instead
        judgement = judge_window(
            canary.sample(),
            (past[self.baseline] if alone else baseline).sample(),
            self.policy,
            None if alone else past[self.canary].sample(),
            None if alone else past[self.baseline].sample(),
        )
        action = action_for(judgement.verdict, used, self.max_extensions)
        record = StepRecord(
            label,
            percent,
            start,
            end,
            judgement,
            action,
            canary,
            past[self.baseline] if alone else baseline,
            alone,
            waited,
        )
        self.records.append(record)
        return record

    def _await(
        self,
        label: str,
        start: datetime,
        end: datetime,
        clock: Any,
        watch: Callable[[], None] | None,
        note: Callable[[str], None] | None,
    ) -> Outcome | None:
        """Wait until the window's last whole minute is published, at most publication_wait_s
        after ``end``; then which of its minutes are not (:mod:`release.publication`)."""
        if self.published is None or self.publication_wait_s <= 0 or clock is None:
            return None
        first, stop = whole_minutes(start, end)
        if first >= stop:
            return None
        last = stop - publication.MINUTE
        reader = self.published

        def look(since: datetime) -> Published:
            try:
                return reader(since, stop)
            except Exception as error:  # MetricsError, botocore's: as a read of the window
                raise CanaryFailed(
                    f"could not read both colors' metrics for {label} ({error}): not judged"
                ) from None

        budget = self.publication_wait_s - (clock.wall() - end).total_seconds()

        def waiting(left: float) -> None:
            if note is not None:
                note(
                    f"{label}: waiting for CloudWatch to publish the minute {last:%H:%M} UTC "
                    f"(at most {duration(left)} more)"
                )

        done, waited = publication.wait(
            last, lambda: look(last), budget, clock.monotonic, clock.sleep,
            watch=watch, waiting=waiting,
        )  # fmt: skip
        missing = publication.unpublished(publication.minutes(first, stop), look(first))
        return Outcome(self.publication_wait_s, waited, done, missing)

    def settle(
        self,
        label: str,
        percent: int,
        start: datetime,
        bake: Callable[[], datetime],
        note: Callable[[str], None],
        clock: Any = None,
        watch: Callable[[], None] | None = None,
    ) -> StepRecord:
        """Judge the window from ``start`` to the end of the bake; while it is inconclusive or
        marginal, ``bake`` again (the alarms still watched; it returns the new end) and judge the
        whole longer window, at most ``max_extensions`` times. Each judgement first waits on
        ``clock`` for the window's metrics to be published (``watch`` at every poll). Returns a
        passing record; raises :class:`Paused` (shared) or :class:`CanaryFailed`."""
        end = bake()
        for used in itertools.count():
            record = self.judge(label, percent, start, end, used, clock, watch, note)
            note(f"{label}: canary analysis of {judged_minutes(record)}: {summary(record)}")
            if record.action is Action.GO_ON:
                return record
            if record.action is Action.PAUSE:
                raise Paused(f"{label}: {record.judgement.reason}")
            if record.action is Action.ROLL_BACK:
                raise CanaryFailed(
                    f"canary analysis of {label} failed: {record.judgement.reason}"
                    + (f" after {used} extensions" if used else "")
                )
            end = bake()
        raise AssertionError("unreachable")  # pragma: no cover


def judged_minutes(record: StepRecord) -> str:
    """``the minutes 06:00-06:04 UTC`` (the first and last with data), or why there are none."""
    seen = record.data_minutes()
    if not seen:
        return "no minute with requests"
    return f"the minutes {seen[0]:%H:%M}-{seen[-1]:%H:%M} UTC"


def summary(record: StepRecord) -> str:
    """``fail (score 70): target5xx +200% p=1e-09 -> roll back``, then the minutes left without
    data when the wait for them ran out (release/publication.py)."""
    j = record.judgement
    score = "-" if math.isnan(j.score) else f"{j.score:.0f}"
    failed = [
        f"{r.metric.name} {r.effect * 100:+.0f}% p={r.p_value:.2g}"
        for r in j.results
        if r.verdict is Verdict.FAIL and not math.isinf(r.effect)
    ]
    failed += [
        f"{r.metric.name} from 0"
        for r in j.results
        if r.verdict is Verdict.FAIL and math.isinf(r.effect)
    ]
    detail = f": {'; '.join(failed)}" if failed else f": {j.reason}"
    missing = publication.describe(record.publication)
    return f"{j.verdict.value} (score {score}){detail} -> {record.action.value}" + (
        f"; {missing}" if missing else ""
    )


def for_listener(
    cfg: Any, listener: Any, canary: str, baseline: str, cloudwatch: Any = None
) -> CanaryAnalysis:
    """The stack's analysis over CloudWatch: both colors of the weighted listener
    (release.emergency.LiveListener), the judge configured by ``golden-fleet:analysis``."""
    from release import metrics
    from release.aws_clients import client

    cloudwatch = cloudwatch or client("cloudwatch", cfg.region)
    balancer = metrics.arn_suffix(listener.load_balancer_arn)
    groups = {
        getattr(color, "value", color): metrics.arn_suffix(arn)
        for color, arn in listener.target_groups.items()
    }
    return CanaryAnalysis(
        policy_of(cfg.analysis),
        cfg.analysis.max_extensions,
        lambda start, end: metrics.read(cloudwatch, balancer, groups, start, end),
        canary,
        baseline,
        published=lambda start, end: metrics.published(cloudwatch, balancer, groups, start, end),
        publication_wait_s=cfg.analysis.publication_wait,
    )
