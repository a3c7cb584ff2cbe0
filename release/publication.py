"""Whether a window's load balancer metrics are published yet, and the wait for them.

CloudWatch has an Application Load Balancer's metrics of a minute only some time after that
minute ends: ELB measures and sends them in 60-second intervals (ELB user guide, "CloudWatch
metrics for your Application Load Balancer"), and they typically appear a minute or more later.
A window read the moment its bake ends lacks its last one to three minutes: the judge sees fewer
requests than were served (a 10 % canary turns inconclusive more often), and the window it would
report is not the one it judged. So before a window is judged, the rollout -- and ``analyze``
for a window ending about now -- polls until the window's last whole minute is published, for at
most ``golden-fleet:analysis.publicationWait`` after the window's end.

**Published, or quiet?** A target group that served no request in a minute has no datapoint for
it (missing, never zero), exactly like a minute not published yet. The load balancer's own
``RequestCount`` (the ``LoadBalancer`` dimension alone) tells them apart: it is reported for
every minute in which requests flow through the load balancer, and ELB sends one minute of a load
balancer's metrics together. Once the load balancer's count for a minute is in, a color without
a datapoint for that minute served nothing in it; it is not waited for. When the load balancer
has no datapoint either, the minute is unpublished or no request went through the load balancer
at all -- CloudWatch cannot say which -- and it is waited for up to the bound (a window without
requests could not pass anyway, and the wait costs at most the bound). The colors' sum is not
held against the load balancer's count: that count also holds requests of the load balancer's
other rules, and equality would never be reached on a load balancer serving more than this
listener's two groups.

Pure apart from the ``check``, ``monotonic``, ``sleep`` and ``watch`` handed to :func:`wait`;
imports nothing heavy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from release.durations import duration

MINUTE = timedelta(minutes=1)
# An ALB publishes one datapoint a minute: four looks a minute see a minute soon after it lands;
# each look is one GetMetricData call of three metrics over that one minute.
POLL_S = 15.0


@dataclass(frozen=True)
class Published:
    """The minutes that have a ``RequestCount`` datapoint: each color's target group's, and the
    load balancer's own."""

    colors: Mapping[str, frozenset[datetime]] = field(default_factory=dict)
    balancer: frozenset[datetime] = frozenset()

    def has(self, minute: datetime) -> bool:
        """Every color's datapoint for ``minute`` is in, or the load balancer's is (then a color
        without one served nothing in that minute)."""
        return minute in self.balancer or all(minute in got for got in self.colors.values())


@dataclass(frozen=True)
class Outcome:
    """What a window's wait found, for the step's line and the report."""

    bound_s: float  # publicationWait, as configured
    waited_s: float  # how long the judge waited (0: the last minute was already in)
    last_published: bool  # False: the bound ran out first
    missing: tuple[datetime, ...]  # the window's whole minutes unpublished when judged


def minutes(first: datetime, stop: datetime) -> tuple[datetime, ...]:
    """The minutes from ``first`` (aligned) up to, not including, ``stop``."""
    count = max(0, int((stop - first) / MINUTE))
    return tuple(first + n * MINUTE for n in range(count))


def unpublished(window: Iterable[datetime], published: Published) -> tuple[datetime, ...]:
    return tuple(minute for minute in window if not published.has(minute))


def spans(window: Sequence[datetime]) -> str:
    """``06:03-06:04, 06:07``: runs of consecutive minutes, UTC (each minute by its start)."""
    runs = []
    for _, run in itertools.groupby(enumerate(sorted(window)), lambda p: p[1] - p[0] * MINUTE):
        members = [minute for _, minute in run]
        first, last = members[0], members[-1]
        runs.append(f"{first:%H:%M}" + (f"-{last:%H:%M}" if last != first else ""))
    return ", ".join(runs)


def wait(
    last: datetime,
    check: Callable[[], Published],
    budget_s: float,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
    poll_s: float = POLL_S,
    watch: Callable[[], None] | None = None,
    waiting: Callable[[float], None] | None = None,
) -> tuple[bool, float]:
    """Poll ``check`` until minute ``last`` is published (:meth:`Published.has`), for at most
    ``budget_s`` (at least one look, even with none left). ``waiting`` hears the time left
    before the first sleep; ``watch`` runs after every sleep (the rollout's alarm and lock check:
    the color still serves while it waits). Returns whether ``last`` is in and the seconds
    waited. Nothing here catches an interrupt: it stops the wait at once, from inside ``sleep``,
    ``check`` or ``watch``."""
    started = monotonic()
    while True:
        if check().has(last):
            return True, monotonic() - started
        left = budget_s - (monotonic() - started)
        if left <= 0:
            return False, monotonic() - started
        if waiting is not None:
            waiting(left)
            waiting = None
        sleep(min(poll_s, left))
        if watch is not None:
            watch()


def describe(outcome: Outcome | None) -> str:
    """What the step's line and the report say of a window's minutes without data ("" when
    there are none, or the wait was off)."""
    if outcome is None or not outcome.missing:
        return ""
    why = (
        f"not published {duration(outcome.bound_s)} after the window"
        if not outcome.last_published
        else "unpublished, or no request through the load balancer"
    )
    return f"no data for {spans(outcome.missing)} UTC ({why}): judged without"
