"""``python -m release analyze STACK [--last 15m | --start T --end T] [--json]``: the rollout's
canary judge on demand, between the colors as they serve now.

The canary is the stack's new color (the one that is not stable), the baseline the stable
one; both target groups are those of the stack's weighted listener (found by tags, as
``rollback --now``). When the stable color takes no traffic (the new one at 100 %), the canary
is judged against the stable color's last hour instead. Prints a table per metric (canary,
baseline, effect, p-value, verdict), the score and the verdict, or with ``--json`` one JSON
document; writes the Markdown report and PNG timeline (release/canary_report.py).

A window that ends less than ``golden-fleet:analysis.publicationWait`` ago (``--last``, or an
``--end`` close to now) is judged once CloudWatch has published its last whole minute, as the
rollout's are (release/publication.py): load balancer metrics come a minute or more late, and a
window read at once lacks its last minutes. ``--no-wait`` judges at once.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from components.config import PUBLICATION_WAIT_DEFAULT

PASSED, FAILED, INCONCLUSIVE, SHARED = 0, 1, 3, 4
DEFAULT_LAST = timedelta(minutes=15)
MAX_WINDOW = timedelta(days=15)  # CloudWatch keeps one-minute datapoints for 15 days
MIN_WINDOW = timedelta(minutes=3)  # release.judge.MIN_MINUTES one-minute values

WAITING = f"""\
waiting for the metrics:
  CloudWatch publishes load balancer metrics a minute or more after each minute ends. A
  window ending less than golden-fleet:analysis.publicationWait (default
  {PUBLICATION_WAIT_DEFAULT} s) ago -- --last, or an --end close to now -- is judged once both
  colors' last whole minute is published (a color without requests in it counts as published
  once the load balancer's own RequestCount is), at most until publicationWait after the
  window's end; minutes still unpublished then are named in the output and the report.
  --no-wait judges at once."""

EXIT_STATUS = f"""\
exit status:
  {PASSED}  pass: the canary is not worse than the baseline beyond any tolerance
  {FAILED}  fail: worse on a critical metric, or a score below marginal (or an error)
  {INCONCLUSIVE}  inconclusive or marginal: too few requests, or a score between marginal and pass
  {SHARED}  shared: both colors worse than their own last hour (not the canary's doing)"""

_LENGTH = re.compile(r"([1-9][0-9]{0,5})([mhd])")
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?Z")


def window_length(text: str) -> timedelta:
    """``15m``, ``2h``, ``1d``: at least 3 minutes, at most 15 days."""
    match = _LENGTH.fullmatch(text)
    length = int(match.group(1)) * _UNIT[match.group(2)] if match else timedelta(0)
    if not MIN_WINDOW <= length <= MAX_WINDOW:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is not a window (a whole number and m, h or d, e.g. 15m, 2h; at "
            "least 3m, at most 15d)"
        )
    return length


def instant(text: str) -> datetime:
    """``2026-11-27T06:00Z`` or ``...:00Z``: UTC, to the minute or second."""
    if not _INSTANT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a UTC time like 2026-11-27T06:00Z")
    try:
        return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None


def add_arguments(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub.formatter_class = argparse.RawDescriptionHelpFormatter
    sub.epilog = f"{WAITING}\n\n{EXIT_STATUS}"
    when = sub.add_mutually_exclusive_group()
    when.add_argument(
        "--last", type=window_length, metavar="LENGTH",
        help="the window ending now: 15m, 2h, 1d (default 15m)",
    )  # fmt: skip
    when.add_argument("--start", type=instant, metavar="T", help="window start, UTC")
    sub.add_argument("--end", type=instant, metavar="T", help="window end, UTC (with --start)")
    sub.add_argument(
        "--no-wait", action="store_true",
        help="judge at once, without waiting (up to golden-fleet:analysis.publicationWait) for "
        "CloudWatch to publish the window's last minute",
    )  # fmt: skip
    sub.add_argument("--json", action="store_true", help="one JSON document on stdout")
    sub.add_argument(
        "--report-dir", type=Path, metavar="DIR",
        help="where the Markdown report and PNG timeline go (default ./canary-report)",
    )  # fmt: skip
    return sub


def window(args: argparse.Namespace, now: datetime) -> tuple[datetime, datetime]:
    from release.transitions import ReleaseError

    if args.end is not None and args.start is None:
        raise ReleaseError("--end needs --start (or use --last)")
    if args.start is None:
        return now - (args.last or DEFAULT_LAST), now
    start, end = args.start, args.end or now
    if not MIN_WINDOW <= end - start <= MAX_WINDOW:
        raise ReleaseError(
            f"--start {start:%Y-%m-%dT%H:%MZ} to {end:%Y-%m-%dT%H:%MZ} is not a window of 3 "
            "minutes to 15 days"
        )
    return start, end


def exit_status(verdict: Any) -> int:
    from release.judge import Verdict

    return {
        Verdict.PASS: PASSED,
        Verdict.FAIL: FAILED,
        Verdict.SHARED: SHARED,
    }.get(verdict, INCONCLUSIVE)


def _finite(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    return ("inf" if value > 0 else "-inf") if math.isinf(value) else value


def _minute(at: datetime) -> str:
    return f"{at:%Y-%m-%dT%H:%M:%SZ}"


def as_json(record: Any, canary: str, baseline: str) -> dict[str, Any]:
    j = record.judgement
    seen = record.data_minutes()
    return {
        "canary": canary,
        "baseline": baseline,
        "baselineIsLastHour": record.baseline_is_history,
        "canaryWeight": record.percent,
        "start": f"{record.start:%Y-%m-%dT%H:%M:%SZ}",
        "end": f"{record.end:%Y-%m-%dT%H:%M:%SZ}",
        # The window judged: the first and last minute with requests (each by its start, as
        # CloudWatch stamps a minute), the minutes CloudWatch had not published when judged
        # (null: not waited for), and how long the judge waited for them.
        "firstMinute": _minute(seen[0]) if seen else None,
        "lastMinute": _minute(seen[-1]) if seen else None,
        "minutesWithData": len(seen),
        "missingMinutes": (
            [_minute(m) for m in record.publication.missing] if record.publication else None
        ),
        "publicationWaitSeconds": (
            round(record.publication.waited_s, 1) if record.publication else 0
        ),
        "verdict": j.verdict.value,
        "score": _finite(j.score),
        "reason": j.reason,
        "shared": list(j.shared),
        "metrics": [
            {
                "metric": r.metric.name,
                "canary": _finite(r.canary),
                "baseline": _finite(r.baseline),
                "effect": _finite(r.effect),
                "pValue": _finite(r.p_value),
                "test": r.test,
                "verdict": r.verdict.value,
                "reason": r.reason,
            }
            for r in j.results
        ],
    }


def table(record: Any, canary: str, baseline: str) -> list[str]:
    from release.canary_report import metric_rows

    header = ["metric", canary, baseline, "effect", "p-value", "verdict"]
    rows = [header, *metric_rows(record)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
    j = record.judgement
    score = "-" if math.isnan(j.score) else f"{j.score:.0f}"
    return [*lines, f"score {score}: {j.verdict.value.upper()} — {j.reason}"]


def run(
    args: argparse.Namespace,
    path: Path,
    out: Callable[[str], None] = print,
    cloudwatch: Any = None,
    elbv2: Any = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    step_summary: Path | None = None,
    clock: Any = None,
) -> int:
    """``clock`` (release.rollout.Clock) is what the wait for the metrics sleeps and measures
    on; by default the real one, its wall clock ``now``."""
    from release import analysis, canary_report, edits, emergency, transitions
    from release.aws_clients import client
    from release.rollout import Clock

    clock = clock or Clock(wall=now)
    cfg = edits.read_config(path)
    start, end = window(args, clock.wall())
    canary, baseline = transitions.new_color(cfg).value, cfg.stable_color.value
    short = args.stack.split("/")[-1]
    if elbv2 is None:
        from release.aws_clients import has_credentials

        if not has_credentials(cfg.region):
            raise transitions.ReleaseError(
                f"no AWS credentials for {cfg.region}: analyze reads the stack's listener and "
                "both target groups' CloudWatch metrics"
            )
        elbv2 = client("elbv2", cfg.region)
    try:
        listener = emergency.find_listener(elbv2, short, cfg.service.name, cfg.region)
    except transitions.ReleaseError:
        raise
    except Exception as error:  # botocore's: access denied, throttled, unreachable
        raise transitions.ReleaseError(f"could not read the stack's listener ({error})") from None
    judge = analysis.for_listener(cfg, listener, canary, baseline, cloudwatch)
    percent = listener.weights.get(canary, 0)
    # With --json, stdout holds the one document: the note that it waits goes to stderr.
    note = (lambda line: print(line, file=sys.stderr)) if args.json else out
    try:
        record = judge.judge(
            "analyze", percent, start, end, clock=None if args.no_wait else clock, note=note
        )
    except Exception as error:  # metrics.MetricsError, botocore's: nothing was judged
        raise transitions.ReleaseError(f"could not read the metrics ({error})") from None
    if args.json:
        out(json.dumps(as_json(record, canary, baseline), indent=2))
    else:
        out(
            f"analyze {args.stack}: {canary} ({percent}%) against "
            + (f"{baseline}'s last hour" if record.baseline_is_history else baseline)
            + f", {start:%Y-%m-%dT%H:%MZ} to {end:%Y-%m-%dT%H:%MZ}"
        )
        out(canary_report.judged(record).replace("**", ""))
        for line in table(record, canary, baseline):
            out(line)
    report, png = canary_report.write(
        args.report_dir or canary_report.REPORT_DIR,
        f"analyze {args.stack}: {record.judgement.verdict.value}",
        [record], canary, baseline, (),
        step_summary if step_summary is not None else canary_report.step_summary(),
    )  # fmt: skip
    if not args.json:
        out(f"report: {report} (timeline {png.name} beside it)")
    return exit_status(record.judgement.verdict)
