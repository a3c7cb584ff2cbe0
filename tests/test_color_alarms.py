"""Pure rules of the health gate, without the Pulumi runtime: alarm definitions and the capacity
timeout (the refresh resource's rules: tests/test_refresh_spec.py)."""

from __future__ import annotations

import pytest

from components.alarm_names import ALARM_KINDS, alarm_name
from components.color_alarms import alarm_definitions, error_rate_expression
from components.config import HealthConfig
from components.fleet import capacity_timeout

TG = "targetgroup/checkout-green-tg/0123456789abcdef"
LB = "app/checkout-alb/fedcba9876543210"


def definitions(health: HealthConfig | None = None) -> dict[str, dict]:
    return alarm_definitions("checkout", "prod", "green", TG, LB, health or HealthConfig())


def test_one_alarm_per_kind_named_by_the_shared_rule():
    """Names come from components/alarm_names.py, which the release command reads too."""
    defs = definitions()
    assert list(defs) == list(ALARM_KINDS)
    for kind, definition in defs.items():
        assert definition["name"] == alarm_name("checkout", "prod", "green", kind)


def test_missing_data_never_alarms():
    """A color at weight 0 publishes no request metrics: that must read as healthy."""
    for kind, definition in definitions().items():
        assert definition["treat_missing_data"] == "notBreaching", kind


def test_every_metric_watches_this_target_group_on_this_load_balancer():
    expected = {"TargetGroup": TG, "LoadBalancer": LB}
    for kind, definition in definitions().items():
        metrics = [q["metric"] for q in definition.get("metric_queries", []) if "metric" in q]
        metrics = metrics or [definition]
        for metric in metrics:
            assert metric["namespace"] == "AWS/ApplicationELB", kind
            assert metric["dimensions"] == expected, kind


def test_error_rate_counts_target_5xx_and_connection_errors_over_requests():
    """One returned series: the targets' 5xx plus the connections the load balancer could not
    make to a target (a crashed service), each missing = 0, over requests, guarded by
    minRequests. Both counts have the TargetGroup dimension, so they judge this color alone."""
    health = HealthConfig.model_validate(
        {"errorRate": {"thresholdPercent": 2.5, "minRequests": 40}}
    )
    definition = definitions(health)["error-rate"]
    queries = {q["id"]: q for q in definition["metric_queries"]}
    assert queries["errors"]["metric"]["metric_name"] == "HTTPCode_Target_5XX_Count"
    assert queries["connection_errors"]["metric"]["metric_name"] == "TargetConnectionErrorCount"
    assert queries["requests"]["metric"]["metric_name"] == "RequestCount"
    assert {q["metric"]["stat"] for q in queries.values() if "metric" in q} == {"Sum"}
    assert [q["id"] for q in definition["metric_queries"] if q["return_data"]] == ["rate"]
    assert (
        queries["rate"]["expression"]
        == error_rate_expression(40)
        == (
            "IF(requests >= 40, 100 * (FILL(errors, 0) + FILL(connection_errors, 0)) / requests, 0)"
        )
    )
    assert definition["threshold"] == 2.5
    assert definition["comparison_operator"] == "GreaterThanThreshold"
    assert "metric_name" not in definition, "metric math alarms name no metric of their own"


def test_thresholds_and_windows_come_from_config():
    health = HealthConfig.model_validate(
        {
            "unhealthyHosts": {
                "threshold": 2,
                "period": 120,
                "evaluationPeriods": 4,
                "datapointsToAlarm": 3,
            },
            "p99Latency": {
                "thresholdSeconds": 0.75,
                "period": 300,
                "evaluationPeriods": 2,
                "datapointsToAlarm": 1,
            },
        }
    )
    defs = definitions(health)
    unhealthy, latency = defs["unhealthy-hosts"], defs["p99-latency"]
    assert (
        unhealthy["threshold"],
        unhealthy["period"],
        unhealthy["evaluation_periods"],
        unhealthy["datapoints_to_alarm"],
    ) == (2, 120, 4, 3)
    assert unhealthy["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert unhealthy["statistic"] == "Maximum"
    assert (
        latency["threshold"],
        latency["period"],
        latency["evaluation_periods"],
        latency["datapoints_to_alarm"],
    ) == (0.75, 300, 2, 1)
    assert latency["extended_statistic"] == "p99" and "statistic" not in latency
    assert latency["evaluate_low_sample_count_percentiles"] == "ignore"


def test_capacity_timeout_is_a_go_duration_and_never_zero():
    """ "0" would switch the provider's capacity wait off."""
    assert capacity_timeout(900) == "900s"
    with pytest.raises(ValueError, match="positive"):
        capacity_timeout(0)
