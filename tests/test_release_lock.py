"""The release lock (release/lock.py): its pure parts, and two rollouts racing for it through
tests/fault_proxy.py in front of a local AWS API (moto_server) for the lock's calls (DynamoDB),
with a second of latency on the lock's writes and two checkouts of the stack file standing in
for two machines. moto's item writes are made atomic, as DynamoDB's are
(tests/local_aws.py ``atomic_dynamodb_items``): without that, moto lets two conditional writes
racing in its threads both pass (seen in 1 of 20 trials here).

Each rollout runs as the command runs it (release.rollout.Rollout with the DynamoDB lock the
command builds), with the stand-in for ``pulumi up`` that applies the file's weights to the
listener (tests/live_stack.py ListenerApplier) and a fake clock for its bakes; only the proxy's
latency is real time.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from fault_proxy import FaultProxy, delay, fault_proxy
from harness import copy_stack_file
from live_stack import REGION, ListenerApplier, LiveStack, build
from local_aws import atomic_dynamodb_items, moto_server

from release import emergency, lock, rollout
from release.aws_clients import client

STACK, SERVICE = "staging", "checkout"
TRIALS = 20
LATENCY_S = 1.0  # on every conditional write of the lock (UpdateItem)
KEY = lock.lock_key(SERVICE, STACK)


# ---------------------------------------------------------------------------------------------
# Pure parts
# ---------------------------------------------------------------------------------------------
def test_a_watch_counts_only_time_the_same_version_was_seen():
    """Staleness is time on the waiter's own clock since it first saw this version; any other
    version starts again from zero."""
    watch = lock.Watch()
    assert watch.see("a", 100.0) == 0.0
    assert watch.see("a", 159.0) == 59.0
    assert watch.see("b", 160.0) == 0.0, "a moved version is a live holder"
    assert watch.see("b", 220.0) == 60.0


def test_a_record_reads_every_field_and_an_absent_item_is_not_held():
    item = {
        "lock_key": {"S": KEY}, "owner": {"S": "t0k"}, "holder": {"S": "a@b pid 1"},
        "rvn": {"S": "v1"}, "lease_s": {"N": "90"}, "phase": {"S": "bake"},
        "halted": {"S": "t0k"}, "baked": {"S": "green 1.5.0 50"},
    }  # fmt: skip
    record = lock.record_of(item)
    assert (record.owner, record.rvn, record.lease_s, record.phase) == ("t0k", "v1", 90.0, "bake")
    assert record.held and record.halted == "t0k" and record.baked == "green 1.5.0 50"
    assert not lock.record_of(None).held and lock.record_of(None).lease_s == lock.LEASE_S


def test_the_key_is_the_service_and_the_short_stack_name():
    assert lock.lock_key("checkout", "acme/golden-fleet/prod") == "checkout/prod"


# ---------------------------------------------------------------------------------------------
# Two rollouts at once
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world() -> Iterator[tuple[FaultProxy, LiveStack]]:
    """moto_server with the stack built once (building it costs seconds per AWS reset), and the
    proxy in front of it for the lock's calls (DynamoDB); the rest goes straight to the server.
    Test credentials only: nothing of the machine's AWS configuration."""
    import os

    with (
        pytest.MonkeyPatch.context() as env,
        atomic_dynamodb_items(),
        moto_server() as url,
        fault_proxy(url) as made,
    ):
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            env.delenv(name)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_DYNAMODB": made.url,
        }.items():  # fmt: skip
            env.setenv(name, value)
        yield made, build(STACK, SERVICE, {"blue": 100, "green": 0})


@pytest.fixture
def proxy(world) -> Iterator[FaultProxy]:
    """Each trial from blue 100 / green 0 and no lock item; the proxy without faults after."""
    made, _ = world
    elbv2 = boto3.client("elbv2", region_name=REGION)
    emergency.set_weights(elbv2, emergency.find_listener(elbv2, STACK, SERVICE),
                          {"blue": 100, "green": 0})  # fmt: skip
    boto3.client("dynamodb", region_name=REGION).delete_item(
        TableName=lock.TABLE_NAME, Key={"lock_key": {"S": KEY}}
    )
    try:
        yield made
    finally:
        made.faults.clear()


class Clock(rollout.Clock):
    """Bakes pass on this clock only; it moves when the rollout sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        start = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
        super().__init__(monotonic=lambda: self.now, sleep=self._sleep,
                         wall=lambda: start + timedelta(seconds=self.now))  # fmt: skip

    def _sleep(self, seconds: float) -> None:
        self.now += seconds


class Racer(threading.Thread):
    """One machine's rollout, as `rollout --apply` builds it, started after ``offset_s``."""

    def __init__(self, name: str, path: Path, offset_s: float, go: threading.Event):
        super().__init__(name=name)
        self.path, self.offset_s, self.go = path, offset_s, go
        self.applier = ListenerApplier(path)
        self.lines: list[str] = []
        self.code: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        clock = Clock()
        release_lock = lock.DynamoLock(
            client("dynamodb", REGION), KEY, STACK, monotonic=clock.monotonic,
            sleep=clock.sleep, wall=clock.wall, holder=f"{self.name} pid 1",
            out=self.lines.append,
        )  # fmt: skip
        alarms = rollout.cloudwatch_alarms(REGION)
        self.go.wait()
        threading.Event().wait(self.offset_s)  # the start offset; no lease is timed this way
        try:
            self.code = rollout.Rollout(
                stack=STACK, path=self.path, steps=(100,), bake_s=10,
                applier=self.applier, alarms=alarms, clock=clock,
                out=self.lines.append, stream=io.StringIO(), lock=release_lock,
                direct=lambda: emergency.roll_back_listener(REGION, STACK, SERVICE, "blue"),
            ).run()  # fmt: skip
        except BaseException as error:  # what the command would print: kept for the asserts
            self.error = error


def _checkout(root: Path, name: str) -> Path:
    directory = root / name
    directory.mkdir()
    return copy_stack_file(STACK, directory)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_two_rollouts_at_once_let_exactly_one_through_and_the_loser_runs_no_update(
    proxy, world, tmp_path, trial
):
    """Finding 1. Both rollouts start within 0-570 ms of each other (30 ms more each trial,
    alternating which goes first) while every lock write takes 1 s: exactly one completes, the
    other refuses naming it and never runs `pulumi up`; the listener ends where the winner
    left it, and the lock is free."""
    _, live = world
    proxy.set("UpdateItem", delay(LATENCY_S))
    go = threading.Event()
    offset = trial * 0.03
    first, second = ("a", "b") if trial % 2 == 0 else ("b", "a")
    racers = [
        Racer(f"{first}@machine", _checkout(tmp_path, first), 0.0, go),
        Racer(f"{second}@machine", _checkout(tmp_path, second), offset, go),
    ]
    for racer in racers:
        racer.start()
    go.set()
    while all(racer.is_alive() for racer in racers):  # the loser ends first, or both run on
        racers[0].join(0.05)
    proxy.set("UpdateItem", None)  # the race is decided: the winner goes on at full speed
    for racer in racers:
        racer.join(60)
        assert not racer.is_alive(), f"{racer.name} still running"
    through = [racer for racer in racers if racer.code == 0]
    refused = [racer for racer in racers if isinstance(racer.error, lock.LockHeld)]
    assert len(through) == 1 and len(refused) == 1, [
        (racer.name, racer.code, racer.error, racer.lines[-3:]) for racer in racers
    ]
    [winner], [loser] = through, refused
    assert winner.name in str(loser.error), loser.error
    assert loser.applier.applied == [], "the loser ran an update"
    assert [a["green"] for a in winner.applier.applied] == [100]
    assert live.weights() == {"blue": 0, "green": 100}
    item = (
        boto3.client("dynamodb", region_name=REGION)
        .get_item(TableName=lock.TABLE_NAME, Key={"lock_key": {"S": KEY}}, ConsistentRead=True)
        .get("Item")
    )
    assert not lock.record_of(item).held
