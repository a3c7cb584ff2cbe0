"""release/publication.py: when a window's minutes count as published, and the bounded wait for
them. Plain functions: a fake monotonic clock and sleep, no AWS."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import pytest

from release import publication
from release.publication import Outcome, Published
from release.rollout import Interrupted

T0 = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def _at(*offsets: int) -> frozenset[datetime]:
    return frozenset(T0 + n * M for n in offsets)


class Ticks:
    """A monotonic clock that moves only in its sleeps."""

    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_minute_is_published_when_every_color_has_it_or_the_load_balancer_does():
    both = Published({"blue": _at(4), "green": _at(4)})
    assert both.has(T0 + 4 * M), "both colors' datapoints are in"
    quiet_green = Published({"blue": _at(4), "green": _at()}, balancer=_at(4))
    assert quiet_green.has(T0 + 4 * M), "green served nothing: the load balancer's minute is in"
    unsure = Published({"blue": _at(4), "green": _at()})
    assert not unsure.has(T0 + 4 * M), "green's may still come: the load balancer's is not in"
    silent = Published({"blue": _at(), "green": _at()})
    assert not silent.has(T0 + 4 * M)


def test_unpublished_minutes_are_named_as_runs():
    seen = Published({"blue": _at(0, 1, 2, 5), "green": _at(0, 1, 2)}, balancer=_at(5))
    window = publication.minutes(T0, T0 + 7 * M)
    assert len(window) == 7 and window[0] == T0 and window[-1] == T0 + 6 * M
    missing = publication.unpublished(window, seen)
    assert missing == (T0 + 3 * M, T0 + 4 * M, T0 + 6 * M)
    assert publication.spans(missing) == "06:03-06:04, 06:06"
    assert publication.minutes(T0, T0) == ()


def test_the_wait_ends_as_soon_as_the_last_minute_is_in():
    """Published 2 minutes late: found at the first look after it lands, not at the bound."""
    ticks = Ticks()
    lands_at = 120.0

    def check() -> Published:
        return Published({"blue": _at(4) if ticks.now >= lands_at else _at()}, _at())

    told: list[float] = []
    done, waited = publication.wait(
        T0 + 4 * M, check, 180.0, ticks.monotonic, ticks.sleep, poll_s=15.0, waiting=told.append
    )
    assert (done, waited) == (True, 120.0)
    assert ticks.slept == [15.0] * 8 and told == [180.0], "told once, with the whole bound left"


def test_the_wait_never_outlasts_its_bound():
    ticks = Ticks()
    looks = []

    def never() -> Published:
        looks.append(ticks.now)
        return Published({"blue": _at()})

    done, waited = publication.wait(T0, never, 40.0, ticks.monotonic, ticks.sleep, poll_s=15.0)
    assert (done, waited) == (False, 40.0)
    assert ticks.slept == [15.0, 15.0, 10.0], "the last sleep ends at the bound"
    assert looks == [0.0, 15.0, 30.0, 40.0], "a last look at the bound"


def test_a_window_past_its_bound_gets_one_look_and_no_sleep():
    ticks = Ticks()
    done, waited = publication.wait(
        T0, lambda: Published({"blue": _at()}), -600.0, ticks.monotonic, ticks.sleep
    )
    assert (done, waited) == (False, 0.0) and ticks.slept == []


def test_an_interrupt_stops_the_wait_at_once():
    """Interrupted (a BaseException) raised in the sleep is not swallowed: no further look."""
    ticks = Ticks()
    looks = []

    def sleep(seconds: float) -> None:
        raise Interrupted(signal.SIGTERM)

    def check() -> Published:
        looks.append(ticks.now)
        return Published({"blue": _at()})

    with pytest.raises(Interrupted):
        publication.wait(T0, check, 180.0, ticks.monotonic, sleep)
    assert looks == [0.0]


def test_the_watch_runs_after_every_sleep_and_its_refusal_ends_the_wait():
    ticks = Ticks()
    watched = []

    def watch() -> None:
        watched.append(ticks.now)
        if ticks.now >= 30:
            raise RuntimeError("alarm")

    with pytest.raises(RuntimeError, match="alarm"):
        publication.wait(
            T0, lambda: Published({"blue": _at()}), 180.0, ticks.monotonic, ticks.sleep,
            poll_s=15.0, watch=watch,
        )  # fmt: skip
    assert watched == [15.0, 30.0]


def test_the_description_names_missing_minutes_and_why():
    assert publication.describe(None) == ""
    assert publication.describe(Outcome(180, 12, True, ())) == ""
    late = Outcome(180, 180, False, (T0 + 3 * M, T0 + 4 * M))
    assert publication.describe(late) == (
        "no data for 06:03-06:04 UTC (not published 3m00s after the window): judged without"
    )
    gap = Outcome(180, 0, True, (T0 + 2 * M,))
    assert "06:02 UTC (unpublished, or no request through the load balancer)" in (
        publication.describe(gap)
    )
