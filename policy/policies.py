"""CrossGuard policies wrapping the plain rules of ``rules.py``.

Unknown values (resources not created yet, in a preview) raise ``UnknownValueError`` inside a
rule; the policy SDK catches it and reports the policy as not evaluated for that resource rather
than guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rules
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

LISTENER_POLICY = "listener-tls13-or-redirect"


def _resource_policy(name: str, resource_type: str, rule: Callable[[Any], list[str]]):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type != resource_type:
            return
        for message in rule(args.props):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=(rule.__doc__ or name.replace("-", " ")).strip().splitlines()[0],
        validate=validate,
    )


def _listener_policy() -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type != rules.LISTENER:
            return
        allow = bool(args.get_config().get("allowPlainHttp", False))
        for message in rules.listener_tls13_or_redirect(args.props, allow):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=LISTENER_POLICY,
        description="Listeners serve HTTPS with a TLS 1.3 policy or redirect HTTP to HTTPS.",
        validate=validate,
        config_schema=PolicyConfigSchema(
            properties={"allowPlainHttp": {"type": "boolean", "default": False}}
        ),
    )


def _stack_policy(name: str, rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [(r.resource_type, r.name, r.props) for r in args.resources]
        by_name = {r.name: r.urn for r in args.resources}
        for resource_name, message in rule(resources):
            report_violation(message, by_name.get(resource_name))

    return StackValidationPolicy(
        name=name,
        description=(rule.__doc__ or name).strip().splitlines()[0],
        validate=validate,
    )


def all_policies() -> list:
    return [
        *(_resource_policy(n, t, r) for n, (t, r) in rules.RESOURCE_RULES.items()),
        _listener_policy(),
        *(_stack_policy(n, r) for n, r in rules.STACK_RULES.items()),
    ]


__all__ = ["LISTENER_POLICY", "EnforcementLevel", "all_policies"]
