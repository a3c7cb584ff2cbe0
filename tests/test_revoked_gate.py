"""Shift, finish and rollouts move no traffic onto a revoked image: the live gate
(release.live.gate, which ``shift``/``finish`` and every rollout step call) names it and its
reason; ``status``'s live lines flag it. On the in-process local AWS API of
tests/live_fixtures.py."""

from __future__ import annotations

import pytest
from harness import load_stack_config, stack_file
from live_fixtures import LISTENER_ORDERS

from components.config import Color, parse_stack_config
from release import live

REASON = "CVE-2027-0001 in openssl"
both_orders = pytest.mark.parametrize("world", LISTENER_ORDERS, indirect=True)


def _deployed(world) -> None:
    world.color("blue", ["1.3.0", "1.4.0"], group_on="1.4.0", instances_on="1.4.0", desired=1)
    world.color("green", ["1.4.0", "1.5.0"], group_on="1.5.0", instances_on="1.5.0", desired=1)


def _revoke(world, color: str, version: str, how: str) -> None:
    image_id = world.colors[color].images[version]
    if how == "tag":  # the owner account's view
        world.ec2.create_tags(Resources=[image_id], Tags=[{"Key": "Revoked", "Value": REASON}])
    else:  # another account's view: only the description
        world.ec2.create_tags(Resources=[image_id], Tags=[{"Key": "Other", "Value": "x"}])
        from moto.backends import get_backend

        backend = get_backend("ec2")["123456789012"]["eu-west-1"]
        backend.amis[image_id].description = f"REVOKED: {REASON} | checkout {version}"


@both_orders
@pytest.mark.parametrize("how", ["tag", "description"])
def test_the_gate_refuses_traffic_onto_a_revoked_image(world, how):
    cfg = parse_stack_config(load_stack_config(stack_file("staging")))
    _deployed(world)
    world.refresh("green", "Successful")
    world.forward({"blue": 100, "green": 0})
    assert live.gate(cfg, "staging", (Color.GREEN,), clients=world.clients).problems == ()

    _revoke(world, "green", "1.5.0", how)
    world.refresh("green", "Successful")
    problems = live.gate(cfg, "staging", (Color.GREEN,), clients=world.clients).problems
    assert len(problems) == 1, problems
    assert problems[0].startswith("green: checkout-1.5.0-") and f"revoked: {REASON}" in problems[0]
    assert "no traffic moves onto a revoked image" in problems[0]


@both_orders
def test_status_flags_the_live_color_on_a_revoked_image(world):
    cfg = parse_stack_config(load_stack_config(stack_file("staging")))
    _deployed(world)
    _revoke(world, "blue", "1.4.0", "tag")
    world.refresh("blue", "Successful")
    world.refresh("green", "Successful")
    world.forward({"blue": 100, "green": 0})
    lines = live.status_lines(cfg, "staging", clients=world.clients)
    flagged = [line for line in lines if "REVOKED" in line]
    assert len(flagged) == 1 and REASON in flagged[0], lines


@both_orders
def test_the_gate_refuses_traffic_onto_a_disabled_image(world, monkeypatch):
    """A disabled image is hidden from DescribeImages unless asked for: the gate asks, and a
    group launching one (it cannot launch anything) takes no traffic."""
    from layered_images import teach_disabled_images

    teach_disabled_images(monkeypatch)  # as the DisableImage API reference documents it
    cfg = parse_stack_config(load_stack_config(stack_file("staging")))
    _deployed(world)
    world.ec2.disable_image(ImageId=world.colors["green"].images["1.5.0"])
    world.refresh("green", "Successful")
    world.forward({"blue": 100, "green": 0})
    problems = live.gate(cfg, "staging", (Color.GREEN,), clients=world.clients).problems
    assert any("disabled: it cannot be launched" in p for p in problems), problems
