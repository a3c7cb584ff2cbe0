"""Requests the way the weighted listener sends them: each minute, a fixed load split by the
live listener's weights (read from the local AWS API), each color's errors and p99 by a
behaviour per color, published into a :class:`metric_store.MetricStore` as an ALB publishes them:
each target group's metrics and the load balancer's own ``RequestCount``.
Minutes are served when a read asks for them (the rollout's clock is fake: time passes only
in its sleeps, and the weights do not change during a bake or the wait for its metrics): up to
the read's end, or with a ``clock``, up to now. ``delay`` says how long after its end a minute
reaches CloudWatch (None: never); without a ``clock`` every minute is there at once."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from metric_store import MetricStore

from release import metrics


@dataclass(frozen=True)
class Behaviour:
    """One color in one minute: its error ratio, its p99, and whether it takes requests."""

    error_ratio: float = 0.002
    p99: float = 0.5
    serves: bool = True


Behaviours = Callable[[datetime], dict[str, Behaviour]]  # minute -> color -> behaviour
Delay = Callable[[datetime], timedelta | None]  # minute -> after its end, when CloudWatch has it
MINUTE = timedelta(minutes=1)


def on_time(_minute: datetime) -> timedelta | None:
    return timedelta(0)


def healthy(_minute: datetime) -> dict[str, Behaviour]:
    return {"blue": Behaviour(), "green": Behaviour()}


@dataclass
class TrafficModel:
    store: MetricStore
    load_balancer_arn: str
    target_groups: dict[str, str]  # color -> target group ARN
    weights: Callable[[], dict[str, int]]  # the live listener's
    behaviours: Behaviours = healthy
    per_minute: int = 4000
    published: datetime | None = None  # every minute before it is in the store
    clock: Callable[[], datetime] | None = None  # now: minutes are served up to it, and arrive
    delay: Delay = on_time

    @property
    def dimension(self) -> str:
        return metrics.arn_suffix(self.load_balancer_arn)

    def publish(self, minute: datetime, weights: dict[str, int]) -> None:
        # The same gentle wave in both colors' p99: identical code serves alike.
        wave = 1.0 + 0.04 * math.sin(minute.minute / 3)
        late = self.delay(minute) if self.clock is not None else timedelta(0)
        arrives = None if late is None else (True if not late else minute + MINUTE + late)
        total = 0
        for color, behaviour in self.behaviours(minute).items():
            requests = self.per_minute * weights[color] // 100 if behaviour.serves else 0
            total += requests
            self.store.put_minute(
                self.dimension,
                metrics.arn_suffix(self.target_groups[color]),
                minute,
                requests,
                target5xx=round(requests * behaviour.error_ratio),
                p99=behaviour.p99 * wave,
                arrives=arrives,
            )
        self.store.put_balancer_minute(self.dimension, minute, total, arrives)

    def until(self, end: datetime) -> None:
        """Every whole minute before ``end`` (or now, when later) not yet served, at the
        listener's weights."""
        if self.clock is not None:
            self.store.now = self.clock
            end = max(end, self.clock())
        weights = self.weights()
        minute = self.published or end
        while minute + timedelta(minutes=1) <= end:
            self.publish(minute, weights)
            minute += timedelta(minutes=1)
        self.published = minute

    def history(self, start: datetime, weights: dict[str, int], minutes: int = 60) -> None:
        """The hour before ``start`` at ``weights`` (the stable color alone, before a rollout)."""
        for m in range(minutes, 0, -1):
            self.publish(start - timedelta(minutes=m), weights)
        self.published = start
