"""A rollout judged by canary analysis (release/analysis.py) against metric series.

The load balancer, target groups, listener and alarms are in the local AWS API (moto); the
metrics come from :class:`metric_store.MetricStore` (GetMetricData through botocore's Stubber:
moto has no percentile statistics), filled by a :class:`traffic_model.TrafficModel` that splits
a fixed load by the live listener's weights. Every fixed alarm stays OK throughout: what rolls
back, extends or pauses is the judge alone. The clock is fake: no test sleeps.
"""

from __future__ import annotations

import os
import shutil
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from harness import copy_stack_file
from live_stack import ListenerApplier, build, set_alarm
from metric_store import MetricStore
from test_rollout import BAKE_S, REGION, SERVICE, STACK, FakeClock, _file_traffic, _rollout
from traffic_model import Behaviour, TrafficModel

from components.config import HealthConfig
from release import analysis, canary_report, edits, emergency, rollout
from release.publication import Outcome

REGENERATE = "GOLDEN_FLEET_DOCS_IMAGES"
DOCS_IMAGE = Path(__file__).resolve().parent.parent / "docs" / "images" / "canary-timeline.png"
START = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)  # FakeClock's wall clock at 0


@pytest.fixture
def path(tmp_path) -> Path:
    return copy_stack_file(STACK, tmp_path)


class Scenario:
    """The stack in moto, its metrics, and a rollout judged by canary analysis."""

    def __init__(self, path: Path, tmp_path: Path, behaviours, delay=None, on_sleep=None):
        """``delay``: minute -> how long after its end CloudWatch has it (None: never); without
        it every minute is there the moment it ends."""
        self.live = build(STACK, SERVICE, {"blue": 100, "green": 0})
        elbv2 = boto3.client("elbv2", region_name=REGION)
        listener = emergency.find_listener(elbv2, STACK, SERVICE)
        self.store = MetricStore(page_size=500)
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        self.store.attach(cloudwatch)
        self.model = TrafficModel(
            self.store, listener.load_balancer_arn, dict(self.live.target_groups),
            self.live.weights, behaviours,
        )  # fmt: skip
        self.model.history(START, {"blue": 100, "green": 0})
        cfg = edits.read_config(path)
        self.analysis = analysis.for_listener(cfg, listener, "green", "blue", cloudwatch)
        self.store.before_answer = self.model.until
        self.clock = FakeClock(on_sleep) if on_sleep else FakeClock()
        if delay is not None:
            self.model.clock, self.model.delay = self.clock.wall, delay
        self.lines: list[str] = []
        self.applier = ListenerApplier(path)
        self.rollout = _rollout(path, self.clock, self.applier, self.lines)
        self.rollout.analysis = self.analysis
        self.rollout.report_dir = tmp_path / "canary-report"
        self.rollout.step_summary = tmp_path / "summary.md"

    def run(self) -> int:
        return self.rollout.run()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def assert_report(self, *words: str) -> str:
        report = self.rollout.report_dir / canary_report.MARKDOWN
        png = self.rollout.report_dir / canary_report.TIMELINE
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        text = report.read_text()
        assert text == self.rollout.step_summary.read_text(), "the summary holds the report"
        for word in words:
            assert word in text, f"{word!r} not in the report:\n{text}"
        return text


def _healthy(_minute):
    return {"blue": Behaviour(), "green": Behaviour()}


def test_a_regression_under_the_fixed_alarms_is_rolled_back(aws, path, tmp_path):
    """green fails 0.6 % of requests, blue 0.2 %: the error-rate alarm (5 %) stays OK, the judge
    fails the first step and the rollout rolls back after one bake."""
    assert 0.6 < HealthConfig().error_rate.threshold_percent

    def behaviours(_minute):
        return {"blue": Behaviour(error_ratio=0.002), "green": Behaviour(error_ratio=0.006)}

    s = Scenario(path, tmp_path, behaviours)
    assert s.run() == rollout.ROLLED_BACK
    assert [a["green"] for a in s.applier.applied] == [10, 0]
    assert s.live.weights() == {"blue": 100, "green": 0} == _file_traffic(path)
    assert s.clock.now == BAKE_S, "rolled back at the end of the first bake"
    assert "canary analysis of step 1/3 failed: critical metric failed: target5xx" in s.text
    assert [r.action.value for r in s.analysis.records] == ["roll back"]
    s.assert_report("rolled back", "target 5xx / requests", "| fail")


def test_a_canary_equal_to_its_baseline_goes_all_the_way(aws, path, tmp_path):
    """Both colors alike: every step passes, the last one against blue's last hour."""
    s = Scenario(path, tmp_path, _healthy)
    assert s.run() == 0
    assert s.live.weights() == {"blue": 0, "green": 100}
    assert s.clock.now == 3 * BAKE_S, "no step extended"
    records = s.analysis.records
    assert [(r.percent, r.judgement.verdict.value) for r in records] == [
        (10, "pass"), (50, "pass"), (100, "pass"),
    ]  # fmt: skip
    assert records[-1].baseline_is_history and not records[0].baseline_is_history
    s.assert_report("done", "against blue's last hour")


def test_a_latency_regression_under_load_is_rolled_back_at_its_step(aws, path, tmp_path):
    """green's p99 is blue's at 10 %, then 40 % above it once it takes half the load (0.7 s,
    far under the 2 s alarm): step 1 passes, step 2 fails on p99 and rolls back."""
    assert 0.7 * 1.05 < HealthConfig().p99_latency.threshold_seconds

    def behaviours(minute):
        loaded = minute >= START + timedelta(minutes=5)
        return {"blue": Behaviour(), "green": Behaviour(p99=0.7 if loaded else 0.5)}

    s = Scenario(path, tmp_path, behaviours)
    assert s.run() == rollout.ROLLED_BACK
    judged = [(r.percent, r.judgement.verdict.value) for r in s.analysis.records]
    assert judged == [(10, "pass"), (50, "fail")]
    p99 = next(r for r in s.analysis.records[1].judgement.results if r.metric.name == "p99Latency")
    assert p99.effect == pytest.approx(0.4, abs=0.01) and p99.verdict.value == "fail"
    assert s.live.weights() == {"blue": 100, "green": 0}
    s.assert_report("rolled back", "p99 response time")
    if os.environ.get(REGENERATE):  # the documentation's picture is this test's
        shutil.copyfile(s.rollout.report_dir / canary_report.TIMELINE, DOCS_IMAGE)


def test_the_documentation_shows_a_timeline_this_suite_draws():
    """docs/images/canary-timeline.png is a PNG of the size the report draws; regenerate it with
    GOLDEN_FLEET_DOCS_IMAGES=1 and test_a_latency_regression_under_load_is_rolled_back_at_its_step.
    """
    data = DOCS_IMAGE.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (800, 560), "figsize 10x7 inches at 80 dpi"


def test_a_canary_without_traffic_is_extended_then_rolled_back(aws, path, tmp_path):
    """green takes no request (weights say 10 %, its targets get none): every alarm stays OK
    (missing data is notBreaching); the judge extends twice, then fails."""

    def behaviours(_minute):
        return {"blue": Behaviour(), "green": Behaviour(serves=False)}

    s = Scenario(path, tmp_path, behaviours)
    assert s.run() == rollout.ROLLED_BACK
    assert s.clock.now == 3 * BAKE_S, "one bake and two extensions"
    actions = [r.action.value for r in s.analysis.records]
    assert actions == ["extend", "extend", "roll back"]
    assert all(r.judgement.verdict.value == "inconclusive" for r in s.analysis.records)
    assert "the canary had 0 requests" in s.text and "after 2 extensions" in s.text
    assert s.live.weights() == {"blue": 100, "green": 0}
    s.assert_report("inconclusive", "extend")


def test_a_shared_outage_pauses_and_moves_no_traffic(aws, path, tmp_path):
    """From 06:02 both colors fail 5 % of requests (a dependency): shared, exit 4, the weights
    stay at the step, the step is not recorded as baked."""

    def behaviours(minute):
        bad = minute >= START + timedelta(minutes=2)
        ratio = 0.05 if bad else 0.002
        return {"blue": Behaviour(error_ratio=ratio), "green": Behaviour(error_ratio=ratio)}

    s = Scenario(path, tmp_path, behaviours)
    assert s.run() == rollout.PAUSED
    assert s.live.weights() == {"blue": 90, "green": 10} == _file_traffic(path)
    assert [a["green"] for a in s.applier.applied] == [10], "no rollback applied"
    assert "paused: step 1/3: both colors are worse than their own last hour" in s.text
    assert "rolling back" not in s.text
    s.assert_report("shared", "paused")


def test_metrics_that_cannot_be_read_roll_back(aws, path, tmp_path):
    """GetMetricData answers InternalError: the step was not judged, so it does not pass."""
    s = Scenario(path, tmp_path, _healthy)
    s.store.failing = "InternalError"
    assert s.run() == rollout.ROLLED_BACK
    assert "could not read both colors' metrics for step 1/3" in s.text
    assert "green_requests InternalError" in s.text
    assert s.live.weights() == {"blue": 100, "green": 0}


def test_ctrl_c_while_the_metrics_are_read_rolls_back(aws, path, tmp_path):
    """SIGINT arriving inside GetMetricData is not taken for a failed read: it rolls back as an
    interruption (a BaseException the analysis never catches)."""
    s = Scenario(path, tmp_path, _healthy)

    def interrupted(end):
        raise rollout.Interrupted(signal.SIGINT)

    s.store.before_answer = interrupted
    assert s.run() == rollout.ROLLED_BACK
    assert "rolling back: interrupted (SIGINT)" in s.text
    assert "could not read" not in s.text


def test_a_paused_step_is_judged_again_by_the_same_rollout_once_the_outage_is_over(
    aws, path, tmp_path
):
    """Paused on a shared outage at 10 %; once it is over, the same command applies that step
    again, bakes and judges it from its start, and goes on to 100 %."""
    outage = {"on": True}

    def behaviours(minute):
        ratio = 0.05 if outage["on"] and minute >= START + timedelta(minutes=2) else 0.002
        return {"blue": Behaviour(error_ratio=ratio), "green": Behaviour(error_ratio=ratio)}

    s = Scenario(path, tmp_path, behaviours)
    assert s.run() == rollout.PAUSED
    outage["on"] = False
    s.model.history(START + timedelta(minutes=65), {"blue": 90, "green": 10})  # an hour later
    s.clock.now = 65 * 60.0
    again = _rollout(path, s.clock, s.applier, s.lines)
    again.analysis, again.report_dir = s.analysis, s.rollout.report_dir
    assert again.run() == 0
    assert s.live.weights() == {"blue": 0, "green": 100}
    judged = [(r.percent, r.judgement.verdict.value) for r in s.analysis.records]
    assert judged == [(10, "shared"), (10, "pass"), (50, "pass"), (100, "pass")]
    assert "resume: Pulumi.staging.yaml says green 10% but no bake of it passed" in s.text


# ---------------------------------------------------------------------------------------------
# CloudWatch publishes a minute late: each window is judged once its last minute is in
# ---------------------------------------------------------------------------------------------
def _late(_minute):
    return timedelta(minutes=2)


def _minutes(record) -> list[str]:
    return [f"{m:%H:%M}" for m in record.data_minutes()]


def test_metrics_published_two_minutes_late_are_waited_for_and_judged_whole(aws, path, tmp_path):
    """Every minute reaches CloudWatch 2 minutes after it ends: each step waits 2 minutes after
    its bake (not the 3-minute bound) and judges all of its 5 whole minutes, every request the
    canary served."""
    s = Scenario(path, tmp_path, _healthy, delay=_late)
    assert s.run() == 0
    records = s.analysis.records
    assert [r.judgement.verdict.value for r in records] == ["pass"] * 3
    assert [r.publication for r in records] == [Outcome(180, 120.0, True, ())] * 3
    assert s.clock.now == 3 * BAKE_S + 3 * 120
    assert _minutes(records[0]) == ["06:00", "06:01", "06:02", "06:03", "06:04"]
    assert records[0].canary.sample().requests == 5 * 400, "5 minutes of 10 % of 4,000"
    assert _minutes(records[1])[0] == "06:07", "step 2 starts after step 1's wait"
    assert (
        "step 1/3: waiting for CloudWatch to publish the minute 06:04 UTC (at most 3m00s more)"
        in s.text
    )
    assert "step 1/3: canary analysis of the minutes 06:00-06:04 UTC: pass" in s.text
    s.assert_report("| 06:00-06:04 |", "Judged the minutes 06:00-06:04 UTC: 5 of the window's 5")


def test_metrics_that_never_arrive_end_the_wait_at_its_bound_and_are_named(aws, path, tmp_path):
    """06:03 and 06:04 never reach CloudWatch: step 1 waits its 3 minutes, judges the three
    minutes there are (enough requests to pass) and names the two it judged without, in its
    line and in the report."""
    lost = (START + timedelta(minutes=3), START + timedelta(minutes=4))
    s = Scenario(path, tmp_path, _healthy, delay=lambda m: None if m in lost else timedelta(0))
    assert s.run() == 0
    first = s.analysis.records[0]
    assert first.publication == Outcome(180, 180.0, False, lost)
    assert _minutes(first) == ["06:00", "06:01", "06:02"]
    assert first.canary.sample().requests == 3 * 400
    assert s.clock.now == 3 * BAKE_S + 180, "only step 1 waited: later minutes came at once"
    missing = "no data for 06:03-06:04 UTC (not published 3m00s after the window): judged without"
    assert "step 1/3: canary analysis of the minutes 06:00-06:02 UTC: pass" in s.text
    assert f"-> go on; {missing}" in s.text
    s.assert_report("| 06:00-06:02 |", f"**N{missing[1:]}.**")


def test_a_canary_without_traffic_is_not_taken_for_unpublished_data(aws, path, tmp_path):
    """green serves nothing and the metrics come 2 minutes late: each judgement waits for blue's
    and the load balancer's last minute (2 minutes, not the bound), finds no minute missing, and
    the canary goes its existing way: inconclusive, extended twice, rolled back."""

    def idle(_minute):
        return {"blue": Behaviour(), "green": Behaviour(serves=False)}

    s = Scenario(path, tmp_path, idle, delay=_late)
    assert s.run() == rollout.ROLLED_BACK
    records = s.analysis.records
    assert [r.action.value for r in records] == ["extend", "extend", "roll back"]
    assert [r.publication for r in records] == [Outcome(180, 120.0, True, ())] * 3
    assert s.clock.now == 3 * BAKE_S + 3 * 120
    assert "the canary had 0 requests" in s.text and "no data for" not in s.text
    assert s.live.weights() == {"blue": 100, "green": 0}


def test_publication_wait_0_judges_the_moment_the_bake_ends(aws, path, tmp_path):
    """``publicationWait: 0`` keeps the judgement at the end of the bake: the last two minutes,
    not yet published, are not waited for."""
    with path.open("a", encoding="utf-8") as stack_file:
        stack_file.write("\n  golden-fleet:analysis:\n    publicationWait: 0\n")
    s = Scenario(path, tmp_path, _healthy, delay=_late)
    assert s.run() == 0
    assert s.clock.now == 3 * BAKE_S
    first = s.analysis.records[0]
    assert first.publication is None and _minutes(first) == ["06:00", "06:01", "06:02"]
    assert "waiting for CloudWatch" not in s.text


def test_ctrl_c_while_waiting_for_the_metrics_rolls_back_at_once(aws, path, tmp_path):
    """SIGINT in the wait's sleep stops it there: nothing judged, no more time spent, rolled
    back as an interruption."""

    def interrupt(_n):
        if s.clock.now >= BAKE_S:  # the bake is over: this sleep is the wait's
            raise rollout.Interrupted(signal.SIGINT)

    s = Scenario(path, tmp_path, _healthy, delay=_late, on_sleep=interrupt)
    assert s.run() == rollout.ROLLED_BACK
    assert "step 1/3: waiting for CloudWatch to publish the minute 06:04 UTC" in s.text
    assert "rolling back: interrupted (SIGINT)" in s.text
    assert s.analysis.records == [] and s.clock.now == BAKE_S
    assert s.live.weights() == {"blue": 100, "green": 0}


def test_an_alarm_while_the_metrics_are_awaited_rolls_back(aws, path, tmp_path):
    """The canary still serves while its metrics are awaited: every poll of the wait is a full
    check, and green's alarm firing then rolls back before anything is judged."""

    def fire(_n):
        if s.clock.now >= BAKE_S:
            set_alarm(s.live.alarms["green"][0])

    s = Scenario(path, tmp_path, _healthy, delay=_late, on_sleep=fire)
    assert s.run() == rollout.ROLLED_BACK
    assert "rolling back: alarm while the metrics of step 1/3 are awaited: ALARM 1" in s.text
    assert s.analysis.records == [] and s.clock.now == BAKE_S + 15
