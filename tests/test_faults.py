"""Fast, honest faults: the interactive commands against a local AWS API (moto_server) behind
tests/fault_proxy.py, run as whole processes (``python -m release``) as an operator runs them.

A blackholed endpoint (every request accepted, none answered) costs at most 10 s for
``rollback --now`` and 15 s for ``status`` and ``shift``, each saying in one line what could
not be read; a denied call and an HTML 502 are one line too, however long AWS's message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fault_proxy import BLACKHOLE, HTML_502, deny, fault_proxy
from harness import copy_stack_file
from live_stack import build, shift_file
from local_aws import moto_server

ROOT = Path(__file__).resolve().parent.parent
STACK, SERVICE = "staging", "checkout"


@pytest.fixture
def proxy(monkeypatch, no_aws_credentials):
    """The staging stack's listener in moto_server, and the proxy in front of it."""
    with moto_server() as url:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": url,
        }.items():
            monkeypatch.setenv(name, value)
        build(STACK, SERVICE, {"blue": 90, "green": 10})
        try:
            with fault_proxy(url) as made:
                yield made
        finally:
            # moto_server's state is the process's: the next test starts from none.
            urllib.request.urlopen(
                urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10
            ).close()


@pytest.fixture
def split_file(tmp_path) -> Path:
    target = copy_stack_file(STACK, tmp_path)
    shift_file(target, STACK, 10)
    return target


def release(proxy, *args: str) -> tuple[int, str, str, float]:
    """``python -m release ARGS`` through the proxy: exit status, stdout, stderr, seconds."""
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "release", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def test_rollback_now_against_a_blackholed_endpoint_gives_up_within_10s(proxy, split_file):
    before = split_file.read_bytes()
    proxy.set("*", BLACKHOLE)
    code, out, err, took = release(proxy, "rollback", STACK, "--now", "--file", str(split_file))
    assert code == 1, out
    assert took <= 10, f"rollback --now took {took:.1f} s against a blackholed endpoint"
    assert split_file.read_bytes() == before
    [line] = err.strip().splitlines()
    assert "could not read the load balancers" in line and "nothing was changed" in line


def test_rollback_now_with_the_lock_table_blackholed_moves_the_listener_within_10s(
    proxy, split_file
):
    """The release lock's table never answers: --now still moves the listener and writes the
    file, says the halt could not be written, and exits 1 within 10 s: it never waits."""
    proxy.set("UpdateItem", BLACKHOLE)
    code, out, err, took = release(proxy, "rollback", STACK, "--now", "--file", str(split_file))
    assert took <= 10, f"rollback --now took {took:.1f} s with the halt's UpdateItem blackholed"
    assert code == 1, out
    assert "now blue 100%" in out and "blue: 100" in split_file.read_text(), out
    [line] = err.strip().splitlines()
    assert "the halt could not be written" in line, line


def test_status_against_a_blackholed_endpoint_gives_up_within_15s(proxy, split_file):
    proxy.set("*", BLACKHOLE)
    code, out, err, took = release(proxy, "status", STACK, "--file", str(split_file))
    assert code == 0, err
    assert took <= 15, f"status took {took:.1f} s against a blackholed endpoint"
    live = [line for line in out.splitlines() if line.startswith("live")]
    assert len(live) == 1 and "not read" in live[0] and "timeout" in live[0].lower(), out


def test_shift_against_a_blackholed_endpoint_gives_up_within_15s(proxy, split_file):
    proxy.set("*", BLACKHOLE)
    code, out, err, took = release(
        proxy, "shift", STACK, "50", "--file", str(split_file), "--dry-run"
    )
    assert code == 0, err
    assert took <= 15, f"shift took {took:.1f} s against a blackholed endpoint"
    assert "could not check the live state" in out


def test_a_long_denial_is_one_short_line(proxy, split_file):
    """AccessDenied on ModifyListener with a 5,000-character message: one line, cut, and the
    file untouched."""
    before = split_file.read_bytes()
    proxy.set("ModifyListener", deny("x " * 2500))
    code, _out, err, _ = release(proxy, "rollback", STACK, "--now", "--file", str(split_file))
    assert code == 1
    [line] = err.strip().splitlines()
    assert "AccessDenied" in line and len(line) < 600, len(line)
    assert split_file.read_bytes() == before


def test_a_denied_lock_write_at_acquire_is_one_line_and_nothing_written(
    proxy, split_file, tmp_path
):
    """``rollout --apply`` with the release lock's first write denied (the conditional UpdateItem
    on the lock table, answered as DynamoDB answers it; AddTags and PutItem too, which no lock
    write may fall back to): one line naming the call and AccessDenied, exit 5 (refused before
    any write), no traceback, the file untouched. Before, AddTags denied at acquire was an
    uncaught ClientError's traceback. A stand-in ``pulumi`` on PATH lets --apply start; it is
    never run."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copyfile(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    stack_path = project / f"Pulumi.{STACK}.yaml"
    shutil.copyfile(split_file, stack_path)
    before = stack_path.read_bytes()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\necho 'pulumi must not run here' >&2\nexit 99\n")
    (bin_dir / "pulumi").chmod(0o755)
    for action in ("AddTags", "PutItem", "UpdateItem"):
        proxy.set(action, deny("User is not authorized to perform: " + action))
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": proxy.url,
        "PYTHONPATH": str(ROOT),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "release", "rollout", STACK, "--apply", "--bake", "1m"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 5, (done.stdout, done.stderr)  # release.rollout.REFUSED
    [line] = done.stderr.strip().splitlines()
    assert "AccessDenied" in line and "UpdateItem" in line and "<" not in line, line
    assert "Traceback" not in done.stderr
    assert "pulumi must not run here" not in done.stderr
    assert stack_path.read_bytes() == before
    assert {"AddTags", "PutItem", "UpdateItem"} & set(proxy.seen), proxy.seen


def test_an_html_502_is_named_as_such(proxy, split_file):
    proxy.set("DescribeLoadBalancers", HTML_502)
    code, _out, err, _ = release(proxy, "rollback", STACK, "--now", "--file", str(split_file))
    assert code == 1
    [line] = err.strip().splitlines()
    assert "502" in line and "<html>" not in line and len(line) < 600, line


def test_the_proxy_forwards_untouched_actions_and_records_them(proxy, split_file):
    """Without a fault the command works through the proxy: the fixture is not the failure."""
    code, _out, err, _ = release(proxy, "rollback", STACK, "--now", "--file", str(split_file))
    assert code == 0, err
    assert "ModifyListener" in proxy.seen


def test_a_5000_character_status_reason_is_cut_in_the_progress_line():
    from release import live

    state = live.ColorState(
        "checkout-green-asg",
        1,
        "lt-1",
        "2",
        "ami-1",
        live.Refresh("InProgress", status_reason="Waiting for instances. " * 220),
    )
    line = live.progress_line(state, "2")
    assert len(line) < 400 and "\n" not in line, len(line)


def test_a_write_is_tried_even_right_after_a_read_timed_out(monkeypatch, no_aws_credentials):
    """An endpoint that just timed out is skipped for reads (status would otherwise pay the
    timeout per read), never for a write: the rollout's rollback (ModifyListener) right after a
    blackholed DescribeListeners still reaches AWS and moves the listener."""
    from botocore.exceptions import BotoCoreError

    from release import aws_clients

    with moto_server() as url:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": url,
        }.items():
            monkeypatch.setenv(name, value)
        made = build(STACK, SERVICE, {"blue": 50, "green": 50})
        monkeypatch.setattr(aws_clients, "_unreachable", {})
        try:
            with fault_proxy(url) as proxy:
                monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
                proxy.set("DescribeListeners", BLACKHOLE)
                elbv2 = aws_clients.client("elbv2", "eu-west-1")
                with pytest.raises(BotoCoreError):
                    elbv2.describe_listeners(ListenerArns=[made.listener_arn])
                with pytest.raises(BotoCoreError, match="did not answer just now"):
                    elbv2.describe_target_groups()  # a read: skipped at once
                started = time.monotonic()
                elbv2.modify_listener(
                    ListenerArn=made.listener_arn,
                    DefaultActions=[
                        {
                            "Type": "forward",
                            "ForwardConfig": {
                                "TargetGroups": [
                                    {"TargetGroupArn": made.target_groups["blue"], "Weight": 100},
                                    {"TargetGroupArn": made.target_groups["green"], "Weight": 0},
                                ]
                            },
                        }
                    ],
                )
                assert time.monotonic() - started < 5
                assert proxy.seen.count("ModifyListener") == 1
        finally:
            urllib.request.urlopen(
                urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10
            ).close()
