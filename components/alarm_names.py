"""Names of the stack's CloudWatch alarms: the program makes them, the release command reads them.

Names are explicit (not Pulumi auto-names) so that ``python -m release`` finds the alarms that
judge a color with ``DescribeAlarms(AlarmNamePrefix=...)`` calls, without the pulumi CLI or
stack outputs. The stack name is part of every prefix: staging and prod may share an account.
This module imports nothing heavy; both sides import it.

Two scopes, each with its own prefix:

- a color's alarms, ``<service>-<stack>-<color>-<kind>``, on that color's target group;
- the load balancer's, ``<service>-<stack>-lb-<kind>``, on metrics that have no target-group
  dimension and so judge whichever color is serving. The scope ``lb`` is not a color, so no
  color's prefix matches a load-balancer alarm, nor the load-balancer prefix a color's alarm.

A color is judged by both: :func:`watched_alarm_prefixes`. Its own alarms are what say whether
the color itself has data: :func:`unjudged_alarms` names each that is missing or has none, so a
load-balancer alarm in ``OK`` never stands in for a color nobody measured.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Every alarm a color has, by kind: the share of requests that failed on its targets (metric
# math over HTTPCode_Target_5XX_Count, TargetConnectionErrorCount and RequestCount),
# UnHealthyHostCount, and p99 TargetResponseTime.
ALARM_KINDS: tuple[str, ...] = ("error-rate", "unhealthy-hosts", "p99-latency")

# The scope of the stack's load-balancer alarms, where a color's name stands in a color's alarm.
LOAD_BALANCER_SCOPE = "lb"
# Every alarm the load balancer has, by kind: the 5xx the load balancer itself answered
# (HTTPCode_ELB_5XX_Count) as a share of its requests.
LOAD_BALANCER_ALARM_KINDS: tuple[str, ...] = ("elb-5xx",)


# The states in which an alarm has evaluated data: CloudWatch's DescribeAlarms answers OK, ALARM
# or INSUFFICIENT_DATA. With missing data treated as notBreaching (components/color_alarms.py) an
# idle color's alarms read OK, so INSUFFICIENT_DATA means an alarm never evaluated (just created)
# or cannot evaluate (its metric or metric math yields nothing): it judges nothing.
EVALUATED_STATES = frozenset({"OK", "ALARM"})
_SHOWN_STATE = re.compile(r"[A-Z_]{1,32}")  # a state as AWS spells one; anything else shows "?"


def _stack_prefix(service: str, stack: str) -> str:
    return f"{service}-{stack}-"


def alarm_name_prefix(service: str, stack: str, color: str) -> str:
    """``checkout-prod-green-``: every alarm of one color of one stack starts with it."""
    if color == LOAD_BALANCER_SCOPE:
        raise ValueError(f"{color!r} is the load balancer's scope, not a color")
    return f"{_stack_prefix(service, stack)}{color}-"


def alarm_name(service: str, stack: str, color: str, kind: str) -> str:
    if kind not in ALARM_KINDS:
        raise ValueError(f"unknown alarm kind {kind!r} (known: {', '.join(ALARM_KINDS)})")
    return alarm_name_prefix(service, stack, color) + kind


def color_alarm_names(service: str, stack: str, color: str) -> tuple[str, ...]:
    """Every alarm the program creates on ``color``'s own target group, one per kind."""
    return tuple(alarm_name(service, stack, color, kind) for kind in ALARM_KINDS)


def unjudged_alarms(names: Iterable[str], states: Mapping[str, str]) -> list[str]:
    """One line for each alarm of ``names`` (a color's own, :func:`color_alarm_names`) that does
    not judge the color now: missing from ``states`` (alarm name -> state as read), or in a
    state without data (``INSUFFICIENT_DATA``). Empty when every one has evaluated data; ALARM
    is a judgement, reported by its readers. The load balancer's alarms are not asked: they
    see every color at once, so their ``OK`` says nothing about whether this one was measured."""
    lines = []
    for name in names:
        state = states.get(name)
        if state is None:
            lines.append(f"alarm {name} is missing (run `pulumi up` to create it)")
        elif state not in EVALUATED_STATES:
            shown = state if _SHOWN_STATE.fullmatch(state) else "?"
            lines.append(f"alarm {name} is {shown}: it has no data, so it judges nothing")
    return lines


def load_balancer_alarm_prefix(service: str, stack: str) -> str:
    """``checkout-prod-lb-``: every alarm of the stack's load balancer starts with it."""
    return f"{_stack_prefix(service, stack)}{LOAD_BALANCER_SCOPE}-"


def load_balancer_alarm_name(service: str, stack: str, kind: str) -> str:
    """``checkout-prod-lb-elb-5xx``."""
    if kind not in LOAD_BALANCER_ALARM_KINDS:
        raise ValueError(
            f"unknown load-balancer alarm kind {kind!r} "
            f"(known: {', '.join(LOAD_BALANCER_ALARM_KINDS)})"
        )
    return load_balancer_alarm_prefix(service, stack) + kind


def is_load_balancer_alarm(name: str) -> bool:
    """True for a load-balancer alarm's name (``<service>-<stack>-lb-<kind>``): no color's
    alarm ends so, since ``lb`` is not a color and the kinds differ."""
    return any(
        name.endswith(f"-{LOAD_BALANCER_SCOPE}-{kind}") for kind in LOAD_BALANCER_ALARM_KINDS
    )


def watched_alarm_prefixes(service: str, stack: str, color: str) -> tuple[str, str]:
    """The prefixes of every alarm that judges one color: its own, then the load balancer's
    (which sees the 5xx the load balancer answers for a crashing color's requests)."""
    return alarm_name_prefix(service, stack, color), load_balancer_alarm_prefix(service, stack)


def alarm_label(name: str, color_prefix: str) -> str:
    """How the release command shows an alarm read for a color: the kind after the color's
    prefix (``error-rate``), ``lb-<kind>`` for a load-balancer alarm (``lb-elb-5xx``), and any
    other name in full."""
    if name.startswith(color_prefix):
        return name[len(color_prefix) :]
    # The color is the prefix's last part and has no hyphen: what precedes it is the stack's.
    stack_prefix = color_prefix[: color_prefix.rstrip("-").rfind("-") + 1]
    if stack_prefix and name.startswith(f"{stack_prefix}{LOAD_BALANCER_SCOPE}-"):
        return name[len(stack_prefix) :]
    return name
