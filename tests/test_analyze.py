"""``python -m release analyze``: the canary judge on demand, against metric series.

The stack's load balancer and listener are in the local AWS API (moto); the metrics come from
:class:`metric_store.MetricStore` (GetMetricData through botocore's Stubber), filled by a
:class:`traffic_model.TrafficModel` at the listener's live weights (green 10 %)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from harness import copy_stack_file
from live_stack import build, shift_file
from metric_store import MetricStore
from test_rollout import FakeClock
from traffic_model import Behaviour, TrafficModel

from release import analyze, canary_report, emergency
from release.cli import build_parser, main

STACK, SERVICE, REGION = "staging", "checkout", "eu-west-1"
NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)


@pytest.fixture
def path(tmp_path) -> Path:
    """Staging's stack file with green 1.5.0 at 10 %."""
    target = copy_stack_file(STACK, tmp_path)
    shift_file(target, STACK, 10)
    return target


def _analyze(
    path: Path, tmp_path: Path, behaviours, *extra: str, delay=None, clock=None
) -> tuple[int, list[str]]:
    """``analyze`` over a served hour and a half: the last hour before the window at the same
    weights as the window. ``delay``: minute -> how long after its end CloudWatch has it (None:
    never); without it every minute is there the moment it ends. The clock is fake, at NOW."""
    clock = clock or FakeClock(start=NOW)
    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    elbv2 = boto3.client("elbv2", region_name=REGION)
    listener = emergency.find_listener(elbv2, STACK, SERVICE)
    store = MetricStore(page_size=300)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    store.attach(cloudwatch)
    model = TrafficModel(
        store, listener.load_balancer_arn, dict(live.target_groups), live.weights, behaviours
    )
    model.history(NOW - timedelta(minutes=15), {"blue": 90, "green": 10}, minutes=75)
    store.before_answer = model.until
    if delay is not None:
        model.clock, model.delay = clock.wall, delay
    args = build_parser().parse_args(
        ["analyze", STACK, "--file", str(path), "--report-dir", str(tmp_path / "r"), *extra]
    )
    lines: list[str] = []
    code = analyze.run(
        args, path, lines.append, cloudwatch, elbv2, clock.wall, tmp_path / "summary.md", clock
    )
    png = (tmp_path / "r" / canary_report.TIMELINE).read_bytes()
    assert png[:4] == b"\x89PNG" and (tmp_path / "r" / canary_report.MARKDOWN).is_file()
    return code, lines


def _same(_minute):
    return {"blue": Behaviour(), "green": Behaviour()}


def test_an_equal_canary_passes_exit_0(aws, path, tmp_path):
    code, lines = _analyze(path, tmp_path, _same)
    assert code == analyze.PASSED, lines
    assert lines[0] == (
        "analyze staging: green (10%) against blue, 2026-11-27T06:15Z to 2026-11-27T06:30Z"
    )
    assert lines[1] == (
        "Judged the minutes 06:15-06:29 UTC: 15 of the window's 15 whole minutes have requests."
    )
    assert lines[2].split()[:3] == ["metric", "green", "blue"]
    assert lines[-2].startswith("score 100: PASS")


def test_a_regression_fails_exit_1_with_the_metric_named(aws, path, tmp_path):
    def worse(_minute):
        return {"blue": Behaviour(), "green": Behaviour(error_ratio=0.006, p99=0.7)}

    code, lines = _analyze(path, tmp_path, worse, "--last", "10m")
    assert code == analyze.FAILED
    row = next(line for line in lines if line.startswith("target 5xx / requests"))
    assert "fail" in row and "+" in row
    p99 = next(line for line in lines if line.startswith("p99 response time"))
    assert "+40 %" in p99 and "fail" in p99
    assert "critical metric failed: target5xx, p99Latency" in lines[-2]


def test_no_canary_traffic_is_inconclusive_exit_3(aws, path, tmp_path):
    def idle(_minute):
        return {"blue": Behaviour(), "green": Behaviour(serves=False)}

    code, lines = _analyze(path, tmp_path, idle)
    assert code == analyze.INCONCLUSIVE
    assert "INCONCLUSIVE — the canary had 0 requests" in lines[-2]


def test_a_shared_outage_is_exit_4(aws, path, tmp_path):
    def outage(minute):
        ratio = 0.05 if minute >= NOW - timedelta(minutes=15) else 0.002
        return {"blue": Behaviour(error_ratio=ratio), "green": Behaviour(error_ratio=ratio)}

    code, lines = _analyze(path, tmp_path, outage)
    assert code == analyze.SHARED
    assert "SHARED — both colors are worse than their own last hour on target5xx" in lines[-2]


def test_json_is_one_document_for_machines(aws, path, tmp_path):
    code, lines = _analyze(
        path, tmp_path, _same, "--json", "--start", "2026-11-27T06:10Z", "--end",
        "2026-11-27T06:25Z",
    )  # fmt: skip
    [text] = lines
    document = json.loads(text)
    assert code == 0 and document["verdict"] == "pass" and document["score"] == 100
    assert document["start"] == "2026-11-27T06:10:00Z" and document["canaryWeight"] == 10
    assert [m["metric"] for m in document["metrics"]] == [
        "target5xx", "connectionErrors", "p50Latency", "p90Latency", "p99Latency",
    ]  # fmt: skip
    assert {m["test"] for m in document["metrics"]} == {"chi-square", "no difference possible",
                                                       "mann-whitney"}  # fmt: skip
    assert (tmp_path / "summary.md").read_text().startswith("## analyze staging: pass")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--last", "2m"], "is not a window"),
        (["--last", "15"], "is not a window"),
        (["--start", "2026-11-27 06:00"], "is not a UTC time"),
        (["--last", "15m", "--start", "2026-11-27T06:00Z"], "not allowed with argument"),
    ],
)
def test_bad_windows_are_refused_in_one_line_exit_2(path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["analyze", STACK, "--file", str(path), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_an_end_without_a_start_is_refused(path, capsys):
    assert main(["analyze", STACK, "--file", str(path), "--end", "2026-11-27T06:00Z"]) == 1
    assert "--end needs --start" in capsys.readouterr().err


def test_help_documents_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = capsys.readouterr().out
    for line in ("0  pass", "1  fail", "3  inconclusive", "4  shared"):
        assert line in text


def test_help_documents_the_wait_for_the_metrics(capsys):
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--no-wait judge at once, without waiting" in text
    assert "less than golden-fleet:analysis.publicationWait (default 180 s) ago" in text


# ---------------------------------------------------------------------------------------------
# A window ending about now is judged once CloudWatch has published its last minute
# ---------------------------------------------------------------------------------------------
def _late(_minute):
    return timedelta(minutes=2)


def test_a_window_ending_now_is_judged_once_its_last_minute_is_published(
    aws, path, tmp_path, capsys
):
    """--last 15m at 06:30, every minute 2 minutes late: analyze waits 2 minutes, judges all
    15 minutes, and its JSON says which (the note that it waits goes to stderr)."""
    clock = FakeClock(start=NOW)
    code, lines = _analyze(path, tmp_path, _same, "--json", delay=_late, clock=clock)
    [text] = lines
    document = json.loads(text)
    assert code == analyze.PASSED and clock.now == 120
    assert document["firstMinute"] == "2026-11-27T06:15:00Z"
    assert document["lastMinute"] == "2026-11-27T06:29:00Z"
    assert document["minutesWithData"] == 15 and document["missingMinutes"] == []
    assert document["publicationWaitSeconds"] == 120
    assert "waiting for CloudWatch to publish the minute 06:29 UTC (at most 3m00s more)" in (
        capsys.readouterr().err
    )
    report = (tmp_path / "r" / canary_report.MARKDOWN).read_text()
    assert "| 06:15-06:29 |" in report and "Waited 2m00s for CloudWatch" in report


def test_minutes_that_never_arrive_are_named_after_the_bound(aws, path, tmp_path):
    """06:28 and 06:29 never reach CloudWatch: analyze waits its 3 minutes, then judges the 13
    minutes there are and says which two it judged without."""
    lost = (NOW - timedelta(minutes=2), NOW - timedelta(minutes=1))
    clock = FakeClock(start=NOW)
    code, lines = _analyze(
        path, tmp_path, _same, delay=lambda m: None if m in lost else timedelta(0), clock=clock
    )
    assert code == analyze.PASSED and clock.now == 180
    assert lines[0] == (
        "analyze: waiting for CloudWatch to publish the minute 06:29 UTC (at most 3m00s more)"
    )
    assert lines[2] == (
        "Judged the minutes 06:15-06:27 UTC: 13 of the window's 15 whole minutes have requests. "
        "Waited 3m00s for CloudWatch to publish its last minute. No data for 06:28-06:29 UTC "
        "(not published 3m00s after the window): judged without."
    )


def test_no_wait_judges_at_once(aws, path, tmp_path):
    """--no-wait: judged at 06:30 on what CloudWatch has then (up to 06:27), nothing awaited."""
    clock = FakeClock(start=NOW)
    code, lines = _analyze(path, tmp_path, _same, "--json", "--no-wait", delay=_late, clock=clock)
    document = json.loads(lines[0])
    assert code == analyze.PASSED and clock.now == 0
    assert document["lastMinute"] == "2026-11-27T06:27:00Z", "06:28 and 06:29 not in yet"
    assert document["missingMinutes"] is None and document["publicationWaitSeconds"] == 0


def test_a_window_long_past_gets_no_wait_but_its_missing_minutes_named(aws, path, tmp_path):
    """06:15-06:25 read at 06:30 is past its wait (publicationWait after its end): one look, no
    sleep; its minute 06:24, which never arrived, is named."""
    clock = FakeClock(start=NOW)
    code, lines = _analyze(
        path, tmp_path, _same, "--json", "--start", "2026-11-27T06:15Z", "--end",
        "2026-11-27T06:25Z", delay=lambda m: None if m.minute == 24 else timedelta(0),
        clock=clock,
    )  # fmt: skip
    document = json.loads(lines[0])
    assert code == analyze.PASSED and clock.now == 0 and document["publicationWaitSeconds"] == 0
    assert document["missingMinutes"] == ["2026-11-27T06:24:00Z"]
    assert document["lastMinute"] == "2026-11-27T06:23:00Z"


def test_without_credentials_it_says_so_in_one_line(path, capsys, no_aws_credentials):
    assert main(["analyze", STACK, "--file", str(path)]) == 1
    assert "no AWS credentials for eu-west-1: analyze reads" in capsys.readouterr().err


def test_without_the_stacks_listener_it_says_so_in_one_line(aws, path, capsys):
    """moto holds no load balancer tagged for the stack: refused, naming the tags."""
    assert main(["analyze", STACK, "--file", str(path)]) == 1
    assert "no application load balancer tagged Stack=staging" in capsys.readouterr().err


def test_a_bad_publication_wait_is_refused_in_one_line_naming_it(path, capsys):
    with path.open("a", encoding="utf-8") as stack_file:
        stack_file.write("\n  golden-fleet:analysis:\n    publicationWait: -60\n")
    assert main(["analyze", STACK, "--file", str(path)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "golden-fleet:analysis.publicationWait: Input should be greater than or equal to 0" in (
        line
    )
