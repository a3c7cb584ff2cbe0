"""One definition of the stack's weighted listener (release/listener.py), used by every command.

Each color also has an attachment listener (components/fleet.py ``<color>-attach``: one target
group, "100 %"). DescribeListeners documents no order, so every test that reads the live
listener runs with the attachment listeners listed after the weighted one and before it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import copy_stack_file, load_stack_config, stack_file
from live_fixtures import LISTENER_ORDERS, World

from components.config import Color, parse_stack_config
from release import listener, live
from release.cli import main

both_orders = pytest.mark.parametrize("world", LISTENER_ORDERS, indirect=True)

BLUE, GREEN, OTHER = "arn:tg/blue", "arn:tg/green", "arn:tg/other-blue"


def _forward(*groups: tuple[str, int]) -> dict:
    return {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in groups]
        },
    }


def _attach(arn: str) -> dict:
    return {"Type": "forward", "TargetGroupArn": arn}


# ---------------------------------------------------------------------------------------------
# The pure definition
# ---------------------------------------------------------------------------------------------
def test_the_weighted_listener_is_the_one_naming_both_colors_in_any_order():
    """Attachment listeners (one group each) are never the weighted listener, listed first or
    last."""
    colors = {BLUE: "blue", GREEN: "green"}
    weighted = {"ListenerArn": "w", "DefaultActions": [_forward((BLUE, 100), (GREEN, 0))]}
    blue = {"ListenerArn": "a1", "DefaultActions": [_attach(BLUE)]}
    green = {"ListenerArn": "a2", "DefaultActions": [_attach(GREEN)]}
    for listeners in ([weighted, blue, green], [blue, green, weighted], [green, weighted, blue]):
        found, groups = listener.weighted(listeners, colors, ("blue", "green"))
        assert found is weighted, [x["ListenerArn"] for x in listeners]
        assert groups == {"blue": BLUE, "green": GREEN}
        assert listener.percentages(found["DefaultActions"], groups) == {"blue": 100, "green": 0}


def test_the_exported_listener_wins_and_must_name_both_colors():
    colors = {BLUE: "blue", GREEN: "green"}
    first = {"ListenerArn": "w1", "DefaultActions": [_forward((BLUE, 1), (GREEN, 1))]}
    second = {"ListenerArn": "w2", "DefaultActions": [_forward((BLUE, 9), (GREEN, 1))]}
    with pytest.raises(listener.ListenerError, match="refusing to guess"):
        listener.weighted([first, second], colors, ("blue", "green"))
    assert listener.weighted([first, second], colors, ("blue", "green"), "w2")[0] is second
    attach = {"ListenerArn": "a1", "DefaultActions": [_attach(BLUE)]}
    with pytest.raises(listener.ListenerError, match="exported listener a1 does not forward"):
        listener.weighted([first, attach], colors, ("blue", "green"), "a1")


def test_a_listener_tagged_as_an_attachment_is_ignored_even_if_it_names_both():
    colors = {BLUE: "blue", GREEN: "green"}
    weighted = {"ListenerArn": "w", "DefaultActions": [_forward((BLUE, 50), (GREEN, 50))]}
    odd = {"ListenerArn": "a", "DefaultActions": [_forward((BLUE, 1), (GREEN, 1))]}
    tags = {"a": {"Purpose": "health-check-attachment"}}
    assert listener.weighted([odd, weighted], colors, ("blue", "green"), tags=tags)[0] is weighted


def test_no_weighted_listener_and_two_of_one_color_are_refused():
    colors = {BLUE: "blue", GREEN: "green", OTHER: "blue"}
    attach = {"ListenerArn": "a1", "DefaultActions": [_attach(BLUE)]}
    with pytest.raises(listener.ListenerError, match="no listener forwards to one blue and one"):
        listener.weighted([attach], colors, ("blue", "green"))
    two = {"ListenerArn": "t", "DefaultActions": [_forward((BLUE, 1), (OTHER, 1), (GREEN, 1))]}
    with pytest.raises(listener.ListenerError, match="no listener"):
        listener.weighted([two], colors, ("blue", "green"))


# ---------------------------------------------------------------------------------------------
# Against the local AWS API, in both listing orders
# ---------------------------------------------------------------------------------------------
def _deployed(world: World) -> dict[Color, str]:
    world.color("blue", ["1.3.0", "1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=1)
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.5.0", desired=1)
    return {Color(c): world.colors[c].target_group_arn for c in ("blue", "green")}


@both_orders
def test_listener_weights_read_the_weighted_listener_only(world):
    arns = _deployed(world)
    world.forward({"blue": 100, "green": 0})
    listed = world.elbv2.describe_listeners(
        LoadBalancerArn=world.elbv2.describe_load_balancers()["LoadBalancers"][0]["LoadBalancerArn"]
    )["Listeners"]
    assert len(listed) == 3, "the fixture creates both attachment listeners"
    assert live.listener_weights(world.clients, arns) == {Color.BLUE: 100, Color.GREEN: 0}


@both_orders
def test_listener_weights_with_one_color_known_still_find_the_weighted_listener(world):
    """The gate of a color alone (finish, rollout) must not read that color's attachment."""
    arns = _deployed(world)
    world.forward({"blue": 100, "green": 0})
    weights = live.listener_weights(
        world.clients, {Color.GREEN: arns[Color.GREEN]}, stack="staging", service="checkout"
    )
    assert weights == {Color.BLUE: 100, Color.GREEN: 0}


@pytest.fixture
def commands(world, monkeypatch, tmp_path) -> Path:
    """The release command's clients on the world; a copy of Pulumi.staging.yaml."""
    monkeypatch.setattr(live.Clients, "for_region", classmethod(lambda cls, r: world.clients))
    return copy_stack_file("staging", tmp_path)


@both_orders
def test_finish_refuses_while_the_weighted_listener_sends_the_old_color_100(
    capsys, world, commands
):
    """The file says green 100 %, the weighted listener still blue 100 %: finish refuses, and
    names both colors' live weights."""
    commands.write_text(
        commands.read_text().replace(
            "    blue: 100\n    green: 0\n", "    blue: 0\n    green: 100\n"
        )
    )
    before = commands.read_bytes()
    _deployed(world)
    world.refresh("green", "Successful")
    world.forward({"blue": 100, "green": 0})
    code = main(["finish", "staging", "--file", str(commands)])
    err = capsys.readouterr().err
    assert code == 1, "finish passed its live check while blue still takes all traffic"
    assert commands.read_bytes() == before
    assert "green: the live listener sends it 0%, the stack file 100%" in err
    assert "blue: the live listener sends it 100%, the stack file 0%" in err


@both_orders
def test_finish_goes_ahead_when_the_weighted_listener_sends_the_new_color_100(
    capsys, world, commands
):
    commands.write_text(
        commands.read_text().replace(
            "    blue: 100\n    green: 0\n", "    blue: 0\n    green: 100\n"
        )
    )
    _deployed(world)
    world.refresh("green", "Successful")
    world.forward({"blue": 0, "green": 100})
    assert main(["finish", "staging", "--file", str(commands)]) == 0, capsys.readouterr().err
    assert parse_stack_config(load_stack_config(commands)).stable_color is Color.GREEN


@both_orders
def test_the_rollout_gate_passes_a_healthy_release_at_0(world, monkeypatch):
    """Before the first step (green 0 % in the file and on the weighted listener) the gate has
    no problem, whatever green's attachment listener says."""
    from release import rollout

    monkeypatch.setattr(live.Clients, "for_region", classmethod(lambda cls, r: world.clients))
    _deployed(world)
    world.refresh("green", "Successful")
    world.forward({"blue": 100, "green": 0})
    cfg = parse_stack_config(load_stack_config(stack_file("staging")))
    assert rollout.live_gate("staging")(cfg) == []


def test_a_groups_share_seen_from_it_alone_ignores_its_attachment_listener():
    """The refresh command knows its own target group only: its share is read on the listener
    forwarding to it and another group, in percent of the weights; the attachment listener
    (its group alone, 100 %) never counts."""
    attachment = {"DefaultActions": [_forward((GREEN, 1))]}
    weighted = {"DefaultActions": [_forward((BLUE, 3), (GREEN, 1))]}
    assert listener.share_of([attachment, weighted], GREEN) == 25
    assert listener.share_of([weighted, attachment], GREEN) == 25
    assert listener.share_of([{"DefaultActions": [_forward((BLUE, 1), (GREEN, 0))]}], GREEN) == 0
    assert listener.share_of([attachment], GREEN) is None
    assert listener.share_of([weighted], OTHER) is None
