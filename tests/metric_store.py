"""A stand-in for CloudWatch's GetMetricData over stored per-minute values, served through
botocore's Stubber (moto 5 answers GetMetricData without percentile statistics -- its
``get_statistics_for_type`` knows Sum, Average, Minimum, Maximum and SampleCount only -- and
without pages).

Each call's answer is computed from the request as the GetMetricData API reference documents
it, queued into a Stubber (which checks the request and validates the answer against the
service model) and returned:

- one datapoint per stored minute with ``StartTime <= t < EndTime``; a minute never stored has
  no datapoint (CloudWatch reports missing, not zero);
- the dimensions must match exactly (a target group's metrics carry both ``TargetGroup`` and
  ``LoadBalancer``);
- at most ``page_size`` datapoints per page (all queries together); a query with values left
  over is ``PartialData`` and the page carries an opaque ``NextToken``;
- ``ScanBy`` orders the timestamps, ``TimestampDescending`` when not given;
- a datapoint is answered only once it has arrived: CloudWatch has a load balancer's minute a
  minute or more after it ends. Each datapoint may carry the time it arrives (``now``, the
  store's clock, decides), or never arrive at all; by default it is there at once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.stub import Stubber


class MetricStore:
    def __init__(self, page_size: int = 50):
        self.page_size = page_size
        # (metric name, stat, ((dimension name, value), ...)) -> {minute: value}
        self.values: dict[tuple[str, str, tuple], dict[datetime, float]] = defaultdict(dict)
        # the same keys -> {minute: when CloudWatch has it (None: never)}; absent: at once
        self.arrives: dict[tuple[str, str, tuple], dict[datetime, datetime | None]] = defaultdict(
            dict
        )
        self.now: Callable[[], datetime] | None = None  # the clock arrivals are held against
        self.calls: list[dict[str, Any]] = []
        self.failing: str | None = None  # a StatusCode to answer every query with
        # Runs with each call's EndTime before it is answered (a traffic model publishes the
        # minutes up to it).
        self.before_answer: Callable[[datetime], None] = lambda end: None

    def put(
        self,
        dimensions: dict[str, str],
        metric: str,
        stat: str,
        minute: datetime,
        value: float,
        arrives: datetime | bool | None = True,
    ) -> None:
        """``arrives``: when CloudWatch has the datapoint (None: never; True: at once)."""
        key = (metric, stat, tuple(sorted(dimensions.items())))
        self.values[key][minute] = value
        if arrives is True:
            self.arrives[key].pop(minute, None)
        else:
            self.arrives[key][minute] = arrives

    def _arrived(self, key: tuple, minute: datetime) -> bool:
        if minute not in self.arrives.get(key, {}):
            return True
        at = self.arrives[key][minute]
        return at is not None and self.now is not None and at <= self.now()

    def attach(self, client: Any) -> Stubber:
        stubber = Stubber(client)
        client.meta.events.register(
            "provide-client-params.cloudwatch.GetMetricData",
            lambda params, **_: stubber.add_response(
                "get_metric_data", self.answer(params), params
            ),
        )
        stubber.activate()
        return stubber

    def answer(self, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(params)
        self.before_answer(params["EndTime"])
        start, end = params["StartTime"], params["EndTime"]
        descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
        skip = json.loads(params["NextToken"]) if params.get("NextToken") else {}
        left = self.page_size
        results, more = [], False
        for query in params["MetricDataQueries"]:
            stat = query["MetricStat"]
            if stat["Period"] != 60:
                raise ValueError(f"the store holds one value a minute, not {stat['Period']} s")
            metric = stat["Metric"]
            key = (
                metric["MetricName"],
                stat["Stat"],
                tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))),
            )
            points = sorted(
                (t, v)
                for t, v in self.values.get(key, {}).items()
                if start <= t < end and self._arrived(key, t)
            )
            if descending:
                points.reverse()
            done = skip.get(query["Id"], 0)
            page = points[done : done + left]
            left -= len(page)
            partial = done + len(page) < len(points)
            more = more or partial
            skip[query["Id"]] = done + len(page)
            results.append(
                {
                    "Id": query["Id"],
                    "Label": metric["MetricName"],
                    "Timestamps": [t for t, _ in page],
                    "Values": [v for _, v in page],
                    "StatusCode": self.failing or ("PartialData" if partial else "Complete"),
                }
            )
        answer: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
        if more:
            answer["NextToken"] = json.dumps(skip)
        return answer

    def put_minute(
        self,
        load_balancer: str,
        target_group: str,
        minute: datetime,
        requests: int,
        target5xx: int = 0,
        connection_errors: int = 0,
        p99: float = 0.5,
        arrives: datetime | bool | None = True,
    ) -> None:
        """One minute of one target group as an ALB publishes it: nothing without requests, a
        count only when non-zero, p50/p90 in proportion to p99; all of it arriving together."""
        if requests <= 0:
            return
        dims = {"TargetGroup": target_group, "LoadBalancer": load_balancer}
        self.put(dims, "RequestCount", "Sum", minute, float(requests), arrives)
        if target5xx:
            self.put(dims, "HTTPCode_Target_5XX_Count", "Sum", minute, float(target5xx), arrives)
        if connection_errors:
            self.put(
                dims, "TargetConnectionErrorCount", "Sum", minute, float(connection_errors),
                arrives,
            )  # fmt: skip
        for stat, share in (("p50", 0.2), ("p90", 0.6), ("p99", 1.0)):
            self.put(dims, "TargetResponseTime", stat, minute, p99 * share, arrives)

    def put_balancer_minute(
        self,
        load_balancer: str,
        minute: datetime,
        requests: int,
        arrives: datetime | bool | None = True,
    ) -> None:
        """The load balancer's own ``RequestCount`` (the ``LoadBalancer`` dimension alone) for
        one minute: reported for every minute in which requests flow through it (the ELB user
        guide: RequestCount is always reported; no metric without requests)."""
        if requests > 0:
            self.put(
                {"LoadBalancer": load_balancer}, "RequestCount", "Sum", minute, float(requests),
                arrives,
            )  # fmt: skip
