"""Names of each color's CloudWatch alarms: the program makes them, the release command reads them.

Names are explicit (not Pulumi auto-names) so that ``python -m release`` finds a color's alarms
with one ``DescribeAlarms(AlarmNamePrefix=...)`` call, without the pulumi CLI or stack outputs.
The stack name is part of the prefix: staging and prod may share an account.
This module imports nothing heavy; both sides import it.
"""

from __future__ import annotations

# Every alarm a color has, by kind: the 5xx share of requests (metric math over
# HTTPCode_Target_5XX_Count and RequestCount), UnHealthyHostCount, and p99 TargetResponseTime.
ALARM_KINDS: tuple[str, ...] = ("error-rate", "unhealthy-hosts", "p99-latency")


def alarm_name_prefix(service: str, stack: str, color: str) -> str:
    """``checkout-prod-green-``: every alarm of one color of one stack starts with it."""
    return f"{service}-{stack}-{color}-"


def alarm_name(service: str, stack: str, color: str, kind: str) -> str:
    if kind not in ALARM_KINDS:
        raise ValueError(f"unknown alarm kind {kind!r} (known: {', '.join(ALARM_KINDS)})")
    return alarm_name_prefix(service, stack, color) + kind
