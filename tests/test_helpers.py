"""Pure helpers of the components, tested without the Pulumi runtime."""

from __future__ import annotations

import base64
import json
import re
import shlex

import pytest

from components.app_environment import user_data
from components.blue_green_service import forward_action, listener_ports, redirect_to_https
from components.config import InstanceRefreshConfig, parse_stack_config
from components.fleet import health_check, launch_settings
from components.golden_image import (
    bake_command,
    bake_environment,
    bake_triggers,
    image_name_regex,
    pick_promoted_image,
)
from components.policies import cloudwatch_agent_policy, ec2_assume_role_policy
from components.refresh_spec import refresh_preferences
from components.tags import asg_tag_blocks, fleet_tags, instance_tags, stack_tags


def test_bake_command_is_the_documented_interface():
    """The wrapper runs with the program's own interpreter, never a ``python`` from PATH."""
    from components.interpreter import program_python

    assert shlex.split(bake_command("checkout", "2.0.0-rc.1", "eu-west-1", None)) == [
        program_python(),
        "packer/bake.py",
        "--version",
        "2.0.0-rc.1",
        "--service",
        "checkout",
        "--region",
        "eu-west-1",
    ]
    venv = bake_command("checkout", "1.0.0", "eu-west-1", None, python="venv/bin/python")
    assert shlex.split(venv)[0] == "venv/bin/python"
    assert bake_command("checkout", "1.0.0", "eu-west-1", "packer/prod.pkrvars.hcl").endswith(
        "--var-file packer/prod.pkrvars.hcl"
    )


@pytest.mark.parametrize("version", ["latest", "1.0.0;reboot", "$(id)", "1.0"])
def test_bake_command_refuses_what_is_not_a_version(version):
    with pytest.raises(ValueError, match="immutable semantic version"):
        bake_command("checkout", version, "eu-west-1", None)


def test_bake_environment_carries_packer_variables_not_secrets(staging_config):
    bake = parse_stack_config(staging_config).image
    key = "arn:aws:kms:eu-west-1:111111111111:key/4f1c2a9e-7b3d-4e8a-9c21-5d6e7f8a9b0c"
    env = bake_environment(bake, key)
    assert all(k.startswith("PKR_VAR_") for k in env)
    assert env["PKR_VAR_kms_key_id"] == key
    # Sharing and copies are Pulumi resources now: the bake builds in its home region only.
    assert not {"PKR_VAR_ami_users", "PKR_VAR_ami_regions"} & set(env)
    assert json.loads(env["PKR_VAR_source_ami_owners"]) == ["136693071363"]
    assert env["PKR_VAR_runtime"] == "python"
    assert env["PKR_VAR_keep_sshd"] == "false"
    assert not any("SECRET" in k or "TOKEN" in k or "PASSWORD" in k.upper() for k in env)


def test_triggers_hold_only_what_defines_the_image():
    assert bake_triggers("checkout", "1.4.0") == ["checkout", "1.4.0"]
    assert bake_triggers("checkout", "1.4.0") != bake_triggers("checkout", "1.4.1")


@pytest.mark.parametrize(
    "name, matches",
    [
        ("checkout-1.4.0-20261126T080000Z", True),
        ("checkout-1.4.0-rc.1-20261126T080000Z", False),
        ("checkout-1.4.0-20261126", False),
        ("checkout-1x4x0-20261126T080000Z", False),
        ("checkout-api-1.4.0-20261126T080000Z", False),
    ],
)
def test_image_name_regex_is_exact(name, matches):
    assert bool(re.search(image_name_regex("checkout", "1.4.0"), name)) is matches


def test_pick_promoted_image():
    assert pick_promoted_image(["ami-new", "ami-old"], "checkout", "1.4.0", "1" * 12) == "ami-new"
    with pytest.raises(ValueError, match=r"no image checkout 1\.4\.0 owned by account 1{12}"):
        pick_promoted_image([], "checkout", "1.4.0", "1" * 12)


def test_forward_action_keeps_the_idle_color_at_weight_zero():
    action = forward_action({"green": "tg-g", "blue": "tg-b"}, {"blue": 100, "green": 0})
    assert action["forward"]["target_groups"] == [
        {"arn": "tg-b", "weight": 100},
        {"arn": "tg-g", "weight": 0},
    ]
    assert action["forward"]["stickiness"]["enabled"] is False


def test_listener_ports_and_redirect():
    assert listener_ports(False) == [80] and listener_ports(True) == [80, 443]
    assert redirect_to_https()["redirect"]["status_code"] == "HTTP_301"


def test_refresh_preferences_map_config_to_aws_names():
    prefs = refresh_preferences(
        InstanceRefreshConfig.model_validate(
            {
                "minHealthyPercentage": 90,
                "maxHealthyPercentage": 120,
                "instanceWarmup": 30,
                "checkpointPercentages": [25, 100],
                "checkpointDelay": 60,
            }
        ),
        [],
    )
    assert prefs["MinHealthyPercentage"] == 90 and prefs["MaxHealthyPercentage"] == 120
    assert prefs["InstanceWarmup"] == 30
    assert prefs["CheckpointPercentages"] == [25, 100] and prefs["CheckpointDelay"] == 60
    no_checkpoints = refresh_preferences(InstanceRefreshConfig(), [])
    assert "CheckpointPercentages" not in no_checkpoints
    assert "CheckpointDelay" not in no_checkpoints, "AWS refuses a delay without checkpoints"


def test_user_data_only_writes_the_boot_config():
    """Nothing is installed or run at boot: one file of references (contract B)."""
    from components.app_environment import boot_config, platform_environment, secret_ref

    secret = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:db-AbC123"
    config = boot_config(
        "checkout",
        "eu-west-1",
        platform_environment(8080, "green", "1.5.0"),
        {"LOG_LEVEL": "info"},
        {"DB": secret_ref(secret, "eu-west-1")},
    )
    document = base64.b64decode(user_data(config)).decode()
    assert document.startswith("#cloud-config\n")
    body = json.loads(document.split("\n", 1)[1])
    assert set(body) == {"write_files"}, "no runcmd: the image's units run in boot order"
    (written,) = body["write_files"]
    assert (written["path"], written["owner"], written["permissions"]) == (
        "/etc/golden-fleet/boot-config.json",
        "root:root",
        "0644",
    )
    assert json.loads(written["content"]) == {
        "service": "checkout",
        "region": "eu-west-1",
        "environment": {
            "GF_APP_PORT": "8080",
            "GF_COLOR": "green",
            "GF_EXPECTED_VERSION": "1.5.0",
            "LOG_LEVEL": "info",
        },
        "secrets": {"DB": {"secretsManager": secret}},
    }


def test_health_check_is_tight():
    check = health_check("/healthz")
    # Out of rotation after unhealthy_threshold * interval seconds.
    assert check["unhealthy_threshold"] * check["interval"] <= 30
    assert check["timeout"] < check["interval"]


def test_cloudwatch_policy_is_scoped_to_the_service():
    arn = "arn:aws:logs:eu-west-1:111111111111:log-group:/golden-fleet/checkout"
    policy = cloudwatch_agent_policy(arn, "checkout")
    actions = {
        a
        for s in policy["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert "logs:CreateLogGroup" not in actions and "ssm:GetParameter" not in actions
    logs = next(s for s in policy["Statement"] if s["Sid"] == "WriteOwnLogGroup")
    assert logs["Resource"] == [arn, f"{arn}:*"]
    metrics = next(s for s in policy["Statement"] if s["Sid"] == "PutOwnMetrics")
    assert metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "golden-fleet/checkout"}
    }
    assert ec2_assume_role_policy()["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_tags_one_map_fleet_values_win():
    merged = instance_tags(
        stack_tags("golden-fleet", "prod", "checkout"), fleet_tags("checkout", "green", "1.5.0")
    )
    assert merged["Color"] == "green" and merged["Version"] == "1.5.0"
    assert merged["Stack"] == "prod"
    blocks = asg_tag_blocks(merged)
    assert all(b["propagate_at_launch"] for b in blocks)
    assert [b["key"] for b in blocks] == sorted(set(merged) - {"Version"}), (
        "the version is a launch-template version's tag, never the group's"
    )


def test_launch_settings_one_type_is_the_template_itself():
    """One instance type: the group launches the template's numbered version, no policy."""
    template, mixed = launch_settings("lt-1", "7", ["t3.small"])
    assert template == {"id": "lt-1", "version": "7"} and mixed is None


def test_launch_settings_several_types_are_a_mixed_policy_on_demand_in_order():
    """More than one type: only a mixed-instances policy on the same numbered version, each type
    an override in the order given, all on demand (prioritized: the first type first)."""
    template, mixed = launch_settings("lt-1", "7", ["t3.small", "t3a.small"])
    assert template is None and mixed is not None
    spec = mixed["launch_template"]
    assert spec["launch_template_specification"] == {"launch_template_id": "lt-1", "version": "7"}
    assert spec["overrides"] == [{"instance_type": "t3.small"}, {"instance_type": "t3a.small"}]
    assert mixed["instances_distribution"]["on_demand_percentage_above_base_capacity"] == 100
    assert mixed["instances_distribution"]["on_demand_allocation_strategy"] == "prioritized"
