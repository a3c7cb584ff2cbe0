"""release/metrics.py: both target groups' metrics over a window, every page, in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from metric_store import MetricStore

from release import metrics, publication

LB = "app/checkout-staging/50dc6c495c0c9188"
GROUPS = {"blue": "targetgroup/checkout-blue/aaaa", "green": "targetgroup/checkout-green/bbbb"}
T0 = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


@pytest.fixture
def cloudwatch(no_aws_credentials):
    client = boto3.client(
        "cloudwatch", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    store = MetricStore(page_size=7)
    store.attach(client)
    return client, store


def _fill(store: MetricStore, minutes: int = 10) -> None:
    for m in range(minutes):
        at = T0 + timedelta(minutes=m)
        store.put_minute(LB, GROUPS["blue"], at, 900, target5xx=2, p99=0.5 + m / 100)
        store.put_minute(LB, GROUPS["green"], at, 100 if m % 2 else 0, connection_errors=1)


def test_every_page_is_read_and_every_series_is_in_time_order(cloudwatch):
    client, store = cloudwatch
    _fill(store)
    read = metrics.read(client, LB, GROUPS, T0, T0 + timedelta(minutes=10))
    assert len(store.calls) > 3, "the store's small pages force several calls"
    blue, green = read["blue"], read["green"]
    minutes = [t for t, _ in blue.points["p99"]]
    assert minutes == sorted(minutes) and len(minutes) == 10
    assert blue.values("p99") == tuple(0.5 + m / 100 for m in range(10))
    sample = blue.sample()
    assert sample.requests == 9000 and sample.counts["HTTPCode_Target_5XX_Count"] == 20
    # Green served in odd minutes only: its even minutes are missing, never zero.
    assert green.sample().requests == 500 and len(green.values("p99")) == 5
    assert green.sample().counts == {
        "HTTPCode_Target_5XX_Count": 0,
        "TargetConnectionErrorCount": 5,
    }


def test_the_queries_name_both_target_groups_with_the_load_balancer():
    asked = metrics.queries(LB, GROUPS)
    assert len({q["Id"] for q in asked}) == len(asked) == 12
    for query in asked:
        dims = {d["Name"]: d["Value"] for d in query["MetricStat"]["Metric"]["Dimensions"]}
        assert dims["LoadBalancer"] == LB and dims["TargetGroup"] in GROUPS.values()
    assert {q["MetricStat"]["Stat"] for q in asked} == {"Sum", "p50", "p90", "p99"}


@pytest.mark.parametrize("status", ["InternalError", "Forbidden"])
def test_a_query_that_failed_fails_the_read_naming_it(cloudwatch, status):
    client, store = cloudwatch
    _fill(store)
    store.failing = status
    with pytest.raises(metrics.MetricsError, match=f"blue_requests {status}"):
        metrics.read(client, LB, GROUPS, T0, T0 + timedelta(minutes=10))


def test_partial_data_without_a_next_token_fails_the_read(cloudwatch):
    client, store = cloudwatch
    _fill(store)
    store.failing = "PartialData"
    store.page_size = 10_000  # one page: no NextToken, yet the answer says partial
    with pytest.raises(metrics.MetricsError, match="PartialData"):
        metrics.read(client, LB, GROUPS, T0, T0 + timedelta(minutes=10))


def test_arn_suffixes_are_cloudwatchs_dimension_values():
    lb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/checkout/50dc6c"
    tg = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/checkout-blue/6d0ecf"
    assert metrics.arn_suffix(lb) == "app/checkout/50dc6c"
    assert metrics.arn_suffix(tg) == "targetgroup/checkout-blue/6d0ecf"


def test_the_window_is_the_whole_minutes_inside_it(cloudwatch):
    """A bake from 06:00:30 to 06:05:10 reads 06:01-06:05: the minute of the shift held
    requests at the old weights, the last one is not over."""
    client, store = cloudwatch
    _fill(store)
    read = metrics.read(
        client, LB, GROUPS, T0 + timedelta(seconds=30), T0 + timedelta(minutes=5, seconds=10)
    )
    assert store.calls[0]["StartTime"] == T0 + timedelta(minutes=1)
    assert store.calls[0]["EndTime"] == T0 + timedelta(minutes=5)
    assert [t.minute for t, _ in read["blue"].points["p99"]] == [1, 2, 3, 4]
    assert metrics.whole_minutes(T0, T0) == (T0, T0)
    assert metrics.whole_minutes(T0 + timedelta(seconds=5), T0 + timedelta(seconds=50)) == (
        T0 + timedelta(minutes=1), T0 + timedelta(minutes=1),
    )  # fmt: skip


def test_a_window_without_a_whole_minute_asks_nothing(cloudwatch):
    client, store = cloudwatch
    _fill(store)
    read = metrics.read(client, LB, GROUPS, T0 + timedelta(seconds=5), T0 + timedelta(seconds=50))
    assert store.calls == [] and read["green"].sample().requests == 0


def test_publication_is_read_from_both_colors_and_the_load_balancers_own_request_count(
    cloudwatch,
):
    """RequestCount of each target group and of the load balancer alone (its ``LoadBalancer``
    dimension only), every page: green's empty even minutes are told from unpublished ones by
    the load balancer's datapoints; a minute not yet arrived is in neither."""
    client, store = cloudwatch
    _fill(store)
    for m in range(10):
        store.put_balancer_minute(LB, T0 + timedelta(minutes=m), 1000)
    store.put_balancer_minute(LB, T0 + timedelta(minutes=9), 1000, arrives=None)  # never
    store.put_minute(LB, GROUPS["blue"], T0 + timedelta(minutes=9), 900, arrives=None)
    asked = metrics.request_queries(LB, GROUPS)
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in asked} == {"RequestCount"}
    assert [d["Name"] for d in asked[-1]["MetricStat"]["Metric"]["Dimensions"]] == ["LoadBalancer"]
    seen = metrics.published(client, LB, GROUPS, T0, T0 + timedelta(minutes=10))
    assert len(store.calls) > 1, "the store's small pages force several calls"
    assert seen.balancer == {T0 + timedelta(minutes=m) for m in range(9)}
    assert seen.colors["green"] == {T0 + timedelta(minutes=m) for m in range(1, 10, 2)}
    window = [T0 + timedelta(minutes=m) for m in range(10)]
    assert publication.unpublished(window, seen) == (T0 + timedelta(minutes=9),)
