"""``python -m release.waiter``: wait until one color's group is fully rolled and healthy.

The program runs this after each color's Auto Scaling group changes, because the provider
starts an instance refresh and returns without waiting for it ("This resource does not wait for
the instance refresh to complete": pulumi_aws ``autoscaling/_inputs.py``, the ``Group``
``instance_refresh`` argument; hashicorp/terraform-provider-aws#42355). AWS has no SDK waiter
for refreshes either (aws/aws-cli#7929), so this polls DescribeInstanceRefreshes,
DescribeAutoScalingGroups and DescribeTargetHealth.

Exit status: 0 when the latest instance refresh is Successful (or none was started), every
in-service instance runs ``--launch-template-version`` and is healthy in the target group, and
healthy targets >= desired capacity (desired 0: at once). 1 on Failed, Cancelled,
RollbackSuccessful, RollbackFailed or timeout, with one line naming the group, AWS's reason, the
launch-template version AWS left the group on and what to do. 2 on bad arguments, 130 on Ctrl-C.

While waiting, one progress line per poll, only when something changed, flushed at once so that
``pulumi up`` shows it live.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence

from release.live import (
    Clients,
    GroupNotFound,
    LiveError,
    Outcome,
    failure_message,
    progress_line,
    read_group,
)
from release.live import verdict as decide

PROG = "python -m release.waiter"
USAGE_ERROR = 2
FAILED = 1
INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C

_REGION = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]")
# CreateAutoScalingGroup: 1-255 characters, no control characters; we also refuse spaces at
# either end, which no group the program creates has.
_GROUP = re.compile(r"[A-Za-z0-9_.:/()#,@\[\]+=&;{}!$*-][A-Za-z0-9 _.:/()#,@\[\]+=&;{}!$*-]{0,254}")
_TARGET_GROUP_ARN = re.compile(
    r"arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:"
    r"targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}"
)
_VERSION = re.compile(r"[1-9][0-9]{0,8}")
_SECONDS = re.compile(r"(?:0|[1-9][0-9]{0,5})(?:\.[0-9]{1,3})?")
TIMEOUT_MAX = 172_800  # the longest instance refresh the config allows
POLL_MAX = 300.0


def _matching(pattern: re.Pattern[str], rule: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise argparse.ArgumentTypeError(f"{value[:60]!r} is not {rule}")
        return value

    return check


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def check(value: str) -> float:
        number = float(value) if _SECONDS.fullmatch(value) else -1.0
        if not low < number <= high:
            raise argparse.ArgumentTypeError(
                f"{value[:20]!r} is not a number of seconds above {low:g} and at most {high:g}"
            )
        return number

    return check


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Wait until an Auto Scaling group's instance refresh is done and all its "
        "in-service instances run a launch-template version and are healthy in its target "
        "group.",
    )
    parser.add_argument(
        "--region", required=True, type=_matching(_REGION, "an AWS region (e.g. eu-west-1)")
    )
    parser.add_argument(
        "--group", required=True, type=_matching(_GROUP, "an Auto Scaling group name")
    )
    parser.add_argument(
        "--target-group-arn",
        required=True,
        type=_matching(_TARGET_GROUP_ARN, "a target group ARN"),
    )
    parser.add_argument(
        "--launch-template-version",
        required=True,
        type=_matching(_VERSION, "a launch-template version number (1, 2, ...)"),
    )
    parser.add_argument("--timeout", required=True, type=_seconds(0, TIMEOUT_MAX))
    parser.add_argument(
        "--poll", default=15.0, type=_seconds(0, POLL_MAX), help="seconds between polls"
    )
    return parser


def wait(
    clients: Clients,
    group: str,
    target_group_arn: str,
    version: str,
    timeout: float,
    poll: float,
    out: Callable[[str], None],
    err: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Poll until ready (0), failed or timed out (1). ``clock``/``sleep`` are injectable."""
    deadline = clock() + timeout
    last_line, last_state = None, None
    while True:
        try:
            state = read_group(clients, group, target_group_arn)
        except GroupNotFound as error:
            err(f"{PROG}: error: {error} — check --group and --region")
            return FAILED
        except LiveError as error:
            line = f"{group}: could not read AWS ({error}); retrying until the timeout"
            state = None
        else:
            last_state = state
            result = decide(state, version)
            if result.outcome is Outcome.READY:
                out(f"ready: {result.message}")
                return 0
            if result.outcome is Outcome.FAILED:
                err(f"{PROG}: error: {result.message}")
                return FAILED
            line = progress_line(state, version)
        if line != last_line:
            out(line)
            last_line = line
        remaining = deadline - clock()
        if remaining <= 0:
            break
        sleep(min(poll, remaining))
    why = f"timed out after {timeout:g} s"
    if last_state is None:
        err(f"{PROG}: error: {group}: {why} without reading the group — {last_line}")
        return FAILED
    refresh = last_state.refresh
    status = (
        f"{why}; instance refresh {refresh.status}: {refresh.reason}"
        if refresh is not None
        else f"{why}; no instance refresh; {progress_line(last_state, version)}"
    )
    err(f"{PROG}: error: {failure_message(last_state, version, status)}")
    return FAILED


def _print(line: str) -> None:
    print(line, flush=True)


def _print_err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(
    argv: Sequence[str] | None = None,
    clients: Clients | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    args = build_parser().parse_args(argv)
    try:
        return wait(
            clients or Clients.for_region(args.region),
            args.group,
            args.target_group_arn,
            args.launch_template_version,
            args.timeout,
            args.poll,
            out=_print,
            err=_print_err,
            sleep=sleep,
        )
    except KeyboardInterrupt:
        _print_err(f"{PROG}: interrupted while waiting for {args.group}")
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
