"""golden-fleet:analysis: the canary judge's settings, validated like the rest of the stack."""

from __future__ import annotations

import pytest
from test_config import refused

from components.config import ANALYSIS_METRIC_DEFAULTS, parse_stack_config

KEY = "golden-fleet:analysis"
ALL_OFF = {name: {"enabled": False} for name in ANALYSIS_METRIC_DEFAULTS}


def test_the_sample_stacks_get_the_defaults(staging_config, prod_config):
    """Neither stack file sets it: both judge every metric, errors and p99 critical."""
    for config in (staging_config, prod_config):
        analysis = parse_stack_config(config).analysis
        assert analysis.enabled and analysis.confidence == 0.95
        assert analysis.min_requests == 300 and analysis.max_extensions == 2
        assert analysis.metrics.resolved() == ANALYSIS_METRIC_DEFAULTS


def test_the_wait_for_published_metrics_is_three_minutes_unless_set(staging_config):
    """publicationWait: seconds, 180 by default, 0 turns the wait off."""
    assert parse_stack_config(staging_config).analysis.publication_wait == 180
    staging_config[KEY] = {"publicationWait": 0}
    assert parse_stack_config(staging_config).analysis.publication_wait == 0


def test_a_metric_keeps_the_defaults_it_does_not_override(staging_config):
    staging_config[KEY] = {
        "metrics": {"p99Latency": {"tolerance": 0.5}, "p50Latency": {"enabled": False}}
    }
    resolved = parse_stack_config(staging_config).analysis.metrics.resolved()
    assert resolved["p99Latency"] == (0.5, 25.0, True)
    assert "p50Latency" not in resolved


@pytest.mark.parametrize(
    "value, key, rule",
    [
        ({"confidence": 1.0}, "confidence", "less than or equal to 0.999"),
        ({"confidence": 0.5}, "confidence", "greater than or equal to 0.8"),
        ({"minRequests": 0}, "minRequests", "greater than or equal to 1"),
        ({"minRequests": True}, "minRequests", "valid integer"),
        ({"maxExtensions": 11}, "maxExtensions", "less than or equal to 10"),
        ({"passScore": 70, "marginalScore": 80}, "marginalScore", "must not exceed passScore"),
        ({"metrics": {"p99": {}}}, "metrics.p99", "unknown key"),
        (
            {"metrics": {"target5xx": {"tolerence": 1}}},
            "metrics.target5xx.tolerence",
            "unknown key",
        ),
        (
            {"metrics": {"target5xx": {"weight": -1}}},
            "metrics.target5xx.weight",
            "greater than or equal to 0",
        ),
        ({"metrics": ALL_OFF}, "metrics", "at least one metric must be enabled"),
        ({"publicationWait": -1}, "publicationWait", "greater than or equal to 0"),
        ({"publicationWait": 901}, "publicationWait", "less than or equal to 900"),
        ({"publicationWait": "3m"}, "publicationWait", "valid integer"),
        ({"publicationWait": 1.5}, "publicationWait", "valid integer"),
        ({"publicationWait": True}, "publicationWait", "valid integer"),
    ],
)
def test_bad_analysis_is_refused_naming_key_and_rule(staging_config, value, key, rule):
    staging_config[KEY] = value
    refused(staging_config, f"{KEY}.{key}", rule)
