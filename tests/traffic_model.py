"""Requests the way the weighted listener sends them: each minute, a fixed load split by the
live listener's weights (read from the local AWS API), each color's errors and p99 by a
behaviour per color, published into a :class:`metric_store.MetricStore` as an ALB publishes them.
Minutes are published when a read asks for them (the rollout's clock is fake: time passes only
in its sleeps, and the weights do not change during a bake)."""

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

    @property
    def dimension(self) -> str:
        return metrics.arn_suffix(self.load_balancer_arn)

    def publish(self, minute: datetime, weights: dict[str, int]) -> None:
        # The same gentle wave in both colors' p99: identical code serves alike.
        wave = 1.0 + 0.04 * math.sin(minute.minute / 3)
        for color, behaviour in self.behaviours(minute).items():
            requests = self.per_minute * weights[color] // 100 if behaviour.serves else 0
            self.store.put_minute(
                self.dimension,
                metrics.arn_suffix(self.target_groups[color]),
                minute,
                requests,
                target5xx=round(requests * behaviour.error_ratio),
                p99=behaviour.p99 * wave,
            )

    def until(self, end: datetime) -> None:
        """Every whole minute before ``end`` not yet published, at the listener's weights."""
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
