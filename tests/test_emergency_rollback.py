"""``python -m release rollback STACK --now``: the listener first, in one call, then the file.

Against moto (in-process): the stack's load balancer, target groups and weighted listener,
tagged as the program tags them, next to another stack's load balancer of the same service.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from harness import copy_stack_file, stack_file
from live_stack import REGION, build, shift_file

from release import edits, emergency
from release.cli import build_parser, main

STACK, SERVICE = "staging", "checkout"


def _copy(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    return copy_stack_file(STACK, directory)


@pytest.fixture
def split_file(tmp_path) -> Path:
    """Staging's file mid-release: green (the new color) 10 %, blue (stable) 90 %."""
    path = _copy(tmp_path, "now")
    shift_file(path, STACK, 10)
    return path


def _now(path: Path, *extra: str) -> int:
    return main(["rollback", STACK, "--now", "--file", str(path), *extra])


def test_now_rolls_the_listener_back_and_writes_the_same_edit_as_the_plain_rollback(
    aws, split_file, tmp_path, capsys
):
    """Live: blue 100 / green 0; file: byte for byte what `rollback` writes; others untouched."""
    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    twin = _copy(tmp_path, "plain")
    shutil.copyfile(split_file, twin)
    assert main(["rollback", STACK, "--file", str(twin)]) == 0

    assert _now(split_file) == 0
    out = capsys.readouterr().out
    assert live.weights() == {"blue": 100, "green": 0}
    assert split_file.read_bytes() == twin.read_bytes()
    assert live.other_weights() == [30, 70], "another stack's listener was changed"
    assert "--refresh" in out and "no listener change" in out


def test_the_listener_changes_before_the_file_is_written(aws, split_file, monkeypatch):
    """When the file is written, the live listener already sends 100 % to the stable color."""
    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    seen = []
    real_write = edits.write

    def write(prepared):
        seen.append((live.weights(), edits.read_config(prepared.path).traffic.green))
        return real_write(prepared)

    monkeypatch.setattr(edits, "write", write)
    assert _now(split_file) == 0
    assert seen == [({"blue": 100, "green": 0}, 10)]


def test_one_modify_listener_call_and_nothing_else_written(aws, split_file):
    """Exactly one change of traffic: ModifyListener, on the stack's listener, first; then the
    halt (one UpdateItem on the release lock's item, no read) that stops a rollout in flight."""
    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    calls = []

    def client(service: str, region: str):
        real = boto3.client(service, region_name=region)
        real.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
        return real

    args = build_parser().parse_args(["rollback", STACK, "--now", "--file", str(split_file)])
    assert emergency.run_now(args, split_file, client=client) == 0
    mutating = [name for name in calls if not name.startswith(("Describe", "Get"))]
    assert mutating == ["ModifyListener", "UpdateItem"], calls
    assert live.weights() == {"blue": 100, "green": 0}
    assert calls == [
        "DescribeLoadBalancers",
        "DescribeTags",
        "DescribeListeners",
        "DescribeTags",
        "ModifyListener",
        "UpdateItem",
    ], calls


def test_a_missing_listener_is_one_clear_error_and_nothing_is_written(aws, split_file, capsys):
    """No load balancer tagged for the stack: exit 1, the tags named, the plain rollback offered."""
    before = split_file.read_bytes()
    assert _now(split_file) == 1
    err = capsys.readouterr().err
    assert "no application load balancer tagged Stack=staging, Service=checkout" in err
    assert f"python -m release rollback {STACK}" in err
    assert len(err.strip().splitlines()) == 1
    assert split_file.read_bytes() == before


def test_a_failed_modify_listener_leaves_the_file_untouched(aws, split_file, capsys):
    """ModifyListener refused: exit 1, listener and file as they were, the plain path offered."""
    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    before = split_file.read_bytes()

    def client(service: str, region: str):
        real = boto3.client(service, region_name=region)

        def deny(**_):
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "ModifyListener"
            )

        real.modify_listener = deny
        return real

    args = build_parser().parse_args(["rollback", STACK, "--now", "--file", str(split_file)])
    errors: list[str] = []
    assert emergency.run_now(args, split_file, err=errors.append, client=client) == 1
    assert "ModifyListener failed" in errors[0] and "AccessDenied" in errors[0]
    assert "the listener's weights were not changed" in errors[0]
    assert live.weights() == {"blue": 90, "green": 10}
    assert split_file.read_bytes() == before


def test_a_file_that_cannot_be_written_after_the_call_is_reported_loudly(aws, split_file, capsys):
    """Listener rolled back, file read-only: exit 1 naming the risk of the next `pulumi up`."""
    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    before = split_file.read_bytes()
    split_file.chmod(0o444)
    assert _now(split_file) == 1
    err = capsys.readouterr().err
    assert live.weights() == {"blue": 100, "green": 0}
    assert "before any `pulumi up`" in err and "read-only" in err
    assert split_file.read_bytes() == before


def test_dry_run_finds_the_listener_and_changes_nothing(aws, split_file, capsys):
    """--now --dry-run: the live weights and the edit are shown; listener and file unchanged."""
    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    before = split_file.read_bytes()
    assert _now(split_file, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "blue 90%, green 10%" in out and live.listener_arn in out
    assert live.weights() == {"blue": 90, "green": 10}
    assert split_file.read_bytes() == before


def test_an_invalid_stack_file_is_refused_before_any_aws_call(aws, split_file, capsys):
    """A file the command could not write afterwards: refused first, the listener untouched."""
    live = build(STACK, SERVICE, {"blue": 90, "green": 10})
    split_file.write_text(split_file.read_text().replace("green: 10", "green: 15"))
    assert _now(split_file) == 1
    assert "does not validate" in capsys.readouterr().err
    assert live.weights() == {"blue": 90, "green": 10}


def test_without_credentials_nothing_changes(no_aws_credentials, split_file, capsys):
    """No AWS credentials: exit 1 saying so, file untouched."""
    before = split_file.read_bytes()
    assert _now(split_file) == 1
    assert "no AWS credentials" in capsys.readouterr().err
    assert split_file.read_bytes() == before


def test_now_refuses_apply(split_file, capsys):
    """--now changes the listener itself; --apply would run pulumi up as well: refused."""
    assert _now(split_file, "--apply") == 1
    assert "leave out --apply" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Pure functions
# ---------------------------------------------------------------------------------------------
BLUE, GREEN, OTHER = "arn:tg/blue", "arn:tg/green", "arn:tg/other"


def _forward(*groups: tuple[str, int], **extra) -> dict:
    return {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in groups],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300},
        },
        **extra,
    }


def test_with_weights_changes_only_the_weights():
    """Order, stickiness and other actions are sent back as described; only weights differ."""
    actions = [_forward((BLUE, 90), (GREEN, 10), Order=1), {"Type": "fixed-response", "Order": 2}]
    result = emergency.with_weights(
        actions, {"blue": BLUE, "green": GREEN}, {"blue": 100, "green": 0}
    )
    expected = [_forward((BLUE, 100), (GREEN, 0), Order=1), {"Type": "fixed-response", "Order": 2}]
    assert result == expected
    assert actions[0]["ForwardConfig"]["TargetGroups"][0]["Weight"] == 90, "input mutated"


def test_pick_listener_refuses_none_and_several():
    """Exactly one listener forwarding to one blue and one green group, or a clear refusal."""
    colors = {BLUE: "blue", GREEN: "green", OTHER: "blue"}
    good = {"ListenerArn": "l1", "DefaultActions": [_forward((BLUE, 50), (GREEN, 50))]}
    redirect = {"ListenerArn": "l0", "DefaultActions": [{"Type": "redirect"}]}
    assert emergency.pick_listener([redirect, good], colors)[1] == {"blue": BLUE, "green": GREEN}
    with pytest.raises(emergency.ListenerNotFound, match="no listener forwards"):
        emergency.pick_listener([redirect], colors)
    twin = {"ListenerArn": "l2", "DefaultActions": [_forward((BLUE, 1), (GREEN, 1))]}
    with pytest.raises(emergency.ListenerNotFound, match="refusing to guess"):
        emergency.pick_listener([good, twin], colors)
    two_blues = {"ListenerArn": "l3", "DefaultActions": [_forward((BLUE, 1), (OTHER, 1))]}
    with pytest.raises(emergency.ListenerNotFound):
        emergency.pick_listener([two_blues], colors)


def test_tags_are_read_in_batches_of_twenty():
    """DescribeTags takes at most 20 ARNs: 45 ARNs are three calls."""
    assert [len(b) for b in emergency.batches([str(i) for i in range(45)])] == [20, 20, 5]


def test_region_constant_matches_the_stack_file():
    """The fixture's region is the one the staging file names (the command looks there)."""
    assert edits.read_config(stack_file(STACK)).region == REGION
