"""Both target groups' metrics over a window, read with one CloudWatch GetMetricData query set.

Per color, one value a minute (``Period`` 60, the finest an Application Load Balancer publishes):
``RequestCount``, ``HTTPCode_Target_5XX_Count`` and ``TargetConnectionErrorCount`` (``Sum``) and
``TargetResponseTime`` at ``p50``/``p90``/``p99``, each with the dimensions ``TargetGroup`` and
``LoadBalancer`` as the ELB user guide lists them ("CloudWatch metrics for your Application Load
Balancer"); the values are ARN suffixes (``targetgroup/<name>/<id>``, ``app/<name>/<id>``).

What the GetMetricData API reference says, and this module does:

- one answer may be split across pages: a result whose ``StatusCode`` is ``PartialData`` has
  more values behind ``NextToken``; every page is read and each query's values joined;
- ``Complete`` is the only status taken as read; ``InternalError`` or ``Forbidden`` (and any
  ``Messages``) make the read fail, naming the query: a window half read is not judged;
- timestamps come in ``ScanBy`` order (descending by default) and the order of values across
  pages is not promised: every series is sorted by its timestamps here;
- a minute without requests has no datapoint at all: missing, never zero.

:func:`published` reads ``RequestCount`` alone, of both colors and of the load balancer itself
(the ``LoadBalancer`` dimension only): what :mod:`release.publication` waits on before a window
is judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from release.judge import METRICS, Sample
from release.publication import Published

NAMESPACE = "AWS/ApplicationELB"
PERIOD_S = 60
REQUESTS = "RequestCount"
RESPONSE_TIME = "TargetResponseTime"
COUNTS = tuple(metric.source for metric in METRICS if metric.kind == "ratio")
PERCENTILES = tuple(metric.source for metric in METRICS if metric.kind == "latency")
# Query ids must start with a lowercase letter and hold letters, digits and underscores.
_ID_OF = {
    REQUESTS: "requests",
    "HTTPCode_Target_5XX_Count": "target5xx",
    "TargetConnectionErrorCount": "connection_errors",
    **{p: p for p in PERCENTILES},
}
BALANCER_REQUESTS = "balancer_requests"  # not a color's: colors are blue and green


class MetricsError(Exception):
    """The metrics could not be read whole."""


def arn_suffix(arn: str) -> str:
    """CloudWatch's dimension value for a load balancer or target group ARN:
    ``app/<name>/<id>`` and ``targetgroup/<name>/<id>``."""
    resource = arn.split(":", 5)[-1]
    return resource.removeprefix("loadbalancer/")


@dataclass(frozen=True)
class Series:
    """One color's per-minute values over a window, oldest first: statistic -> [(minute,
    value)] for ``RequestCount``, each count and each percentile."""

    points: Mapping[str, tuple[tuple[datetime, float], ...]] = field(default_factory=dict)

    def values(self, statistic: str) -> tuple[float, ...]:
        return tuple(value for _, value in self.points.get(statistic, ()))

    def sample(self) -> Sample:
        """What the judge reads: totals of the counts, per-minute values of the percentiles."""
        return Sample(
            requests=round(sum(self.values(REQUESTS))),
            counts={name: round(sum(self.values(name))) for name in COUNTS},
            latency={p: self.values(p) for p in PERCENTILES},
        )


def queries(load_balancer: str, target_groups: Mapping[str, str]) -> list[dict[str, Any]]:
    """The MetricDataQueries for every color: ``<color>_<what>`` ids, ARN suffixes given."""
    result = []
    for color, group in target_groups.items():
        dimensions = [
            {"Name": "TargetGroup", "Value": group},
            {"Name": "LoadBalancer", "Value": load_balancer},
        ]
        wanted = [(name, "Sum") for name in (REQUESTS, *COUNTS)]
        wanted += [(RESPONSE_TIME, p) for p in PERCENTILES]
        for name, stat in wanted:
            key = stat if name == RESPONSE_TIME else name
            result.append(
                {
                    "Id": f"{color}_{_ID_OF[key]}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": name,
                            "Dimensions": dimensions,
                        },
                        "Period": PERIOD_S,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
    return result


def whole_minutes(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The minutes wholly inside ``start``-``end``: a minute the window only touches holds
    requests from before a shift or after the bake. CloudWatch also asks for ``StartTime`` and
    ``EndTime`` aligned with the period (GetMetricData API reference)."""
    floor = end.replace(second=0, microsecond=0)
    ceiling = start.replace(second=0, microsecond=0)
    if ceiling < start:
        ceiling += timedelta(minutes=1)
    return ceiling, max(floor, ceiling)


def _fetch(
    cloudwatch: Any, asked: list[dict[str, Any]], start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, float]]]:
    """Every page of one GetMetricData query set: each query's (timestamp, value) pairs, in no
    promised order. Raises :class:`MetricsError` unless every query answered ``Complete``."""
    joined: dict[str, list[tuple[datetime, float]]] = {q["Id"]: [] for q in asked}
    status: dict[str, str] = {}  # the last page's status of each query
    failed: list[str] = []  # InternalError or Forbidden on any page
    token = None
    while True:
        kwargs: dict[str, Any] = {
            "MetricDataQueries": asked,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        if token:
            kwargs["NextToken"] = token
        page = cloudwatch.get_metric_data(**kwargs)
        for message in page.get("Messages", []):
            raise MetricsError(f"GetMetricData: {message.get('Code')}: {message.get('Value')}")
        for result in page.get("MetricDataResults", []):
            joined.setdefault(result["Id"], []).extend(
                zip(result.get("Timestamps", []), result.get("Values", []), strict=True)
            )
            status[result["Id"]] = result.get("StatusCode", "Complete")
            if status[result["Id"]] not in ("Complete", "PartialData"):
                failed.append(f"{result['Id']} {status[result['Id']]}")
        token = page.get("NextToken")
        if not token:
            break
    # PartialData on the last page: CloudWatch said more values exist but gave no way to them.
    problems = failed + [f"{i} {s}" for i, s in sorted(status.items()) if s == "PartialData"]
    problems += [f"{i} missing" for i in joined if i not in status]
    if problems:
        raise MetricsError(f"GetMetricData did not answer whole: {', '.join(problems)}")
    return joined


def read(
    cloudwatch: Any,
    load_balancer: str,
    target_groups: Mapping[str, str],
    start: datetime,
    end: datetime,
) -> dict[str, Series]:
    """Each color's :class:`Series` over the whole minutes from ``start`` to ``end`` (every page
    read)."""
    start, end = whole_minutes(start, end)
    if start >= end:  # no whole minute: nothing to ask (the API refuses StartTime >= EndTime)
        return {color: Series() for color in target_groups}
    joined = _fetch(cloudwatch, queries(load_balancer, target_groups), start, end)
    series = {}
    for color in target_groups:
        points = {}
        for key, short in _ID_OF.items():
            values = dict(joined[f"{color}_{short}"])  # one value per minute
            points[key] = tuple(sorted(values.items()))
        series[color] = Series(points)
    return series


def request_queries(load_balancer: str, target_groups: Mapping[str, str]) -> list[dict[str, Any]]:
    """``RequestCount`` of each color's target group and of the load balancer alone (the
    ``LoadBalancer`` dimension only): what tells a minute not yet published from a minute a color
    served nothing in (release/publication.py)."""
    per_color = [q for q in queries(load_balancer, target_groups) if q["Id"].endswith("_requests")]
    balancer = {
        "Id": BALANCER_REQUESTS,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": REQUESTS,
                "Dimensions": [{"Name": "LoadBalancer", "Value": load_balancer}],
            },
            "Period": PERIOD_S,
            "Stat": "Sum",
        },
        "ReturnData": True,
    }
    return [*per_color, balancer]


def published(
    cloudwatch: Any,
    load_balancer: str,
    target_groups: Mapping[str, str],
    start: datetime,
    end: datetime,
) -> Published:
    """The minutes from ``start`` to ``end`` (whole minutes) that have a ``RequestCount``
    datapoint, per color and for the load balancer."""
    start, end = whole_minutes(start, end)
    if start >= end:
        return Published({color: frozenset() for color in target_groups})
    joined = _fetch(cloudwatch, request_queries(load_balancer, target_groups), start, end)
    return Published(
        {color: frozenset(t for t, _ in joined[f"{color}_requests"]) for color in target_groups},
        frozenset(t for t, _ in joined[BALANCER_REQUESTS]),
    )
