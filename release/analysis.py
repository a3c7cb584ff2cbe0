"""Canary analysis for the release command: the stack's policy, each step's judgement, and what
the rollout does with it. The statistics are :mod:`release.judge`'s; the metrics are read by
:mod:`release.metrics`."""

from __future__ import annotations

from typing import Any

from release.judge import MetricPolicy, Policy


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
