"""The contract between the stack's user data and the baked app: same unit, file and variable."""

from __future__ import annotations

from pathlib import Path

from components.app_environment import BOOT_CONFIG_PATH, platform_environment

ROOT = Path(__file__).resolve().parent.parent


def test_the_platform_keys_are_what_the_app_reads():
    """The boot config's platform keys reach the app through /run/<service>/environment;
    the sample app reads its port from there."""
    assert BOOT_CONFIG_PATH == "/etc/golden-fleet/boot-config.json"
    server = (ROOT / "app" / "server.py").read_text()
    assert '"GF_APP_PORT"' in server, "the app does not read GF_APP_PORT"
    assert set(platform_environment(8080, "blue", "1.4.0")) == {
        "GF_APP_PORT",
        "GF_COLOR",
        "GF_EXPECTED_VERSION",
    }


def test_baked_agent_config_matches_what_the_role_allows():
    """The CloudWatch agent writes only where the instance role's policy lets it."""
    from components.policies import log_group_name, metric_namespace

    # The application layer configures the agents (the foundation only installs them).
    script = (ROOT / "packer" / "scripts" / "55-agent-config.sh").read_text()
    assert f'"namespace": "{metric_namespace("${GF_SERVICE}")}"' in script
    assert f'"log_group_name": "{log_group_name("${GF_SERVICE}")}"' in script


def test_stack_var_files_do_not_override_the_stacks_packer_variables(staging_config):
    """A var file wins over PKR_VAR_*: it must not set what the stack config passes that way."""
    import re

    from components.config import parse_stack_config
    from components.golden_image import bake_environment

    bake = parse_stack_config(staging_config).image
    assert bake.var_file, "staging names its var file"
    from_stack = {key.removeprefix("PKR_VAR_") for key in bake_environment(bake)}
    text = (ROOT / bake.var_file).read_text()
    in_file = set(re.findall(r"^\s*([a-z_]+)\s*=", text, flags=re.MULTILINE))
    assert in_file, "the var file sets something"
    assert not in_file & from_stack, f"{bake.var_file} overrides the stack's {in_file & from_stack}"


def test_the_images_boot_reader_accepts_the_programs_boot_config():
    """What user data writes (components/app_environment.py) is what the image's
    golden-fleet-environment.service reads (packer/files/boot-environment.py)."""
    import base64
    import importlib.util
    import json

    from components.app_environment import boot_config, secret_ref, user_data

    spec = importlib.util.spec_from_file_location(
        "boot_environment", ROOT / "packer" / "files" / "boot-environment.py"
    )
    reader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reader)
    secrets = {
        "DB": secret_ref(
            "arn:aws:secretsmanager:eu-west-1:111111111111:secret:db-AbC123", "eu-west-1"
        ),
        "API": secret_ref("arn:aws:ssm:eu-west-1:111111111111:parameter/checkout/api", "eu-west-1"),
        "TOKEN": secret_ref("/checkout/token", "eu-west-1"),
    }
    document = base64.b64decode(
        user_data(
            boot_config(
                "checkout",
                "eu-west-1",
                platform_environment(8080, "blue", "1.4.0"),
                {"LOG_LEVEL": "info"},
                secrets,
            )
        )
    ).decode()
    (written,) = json.loads(document.split("\n", 1)[1])["write_files"]
    assert written["path"] == reader.CONFIG
    region, environment, read_secrets = reader.read_config(written["content"], "checkout")
    assert region == "eu-west-1"
    assert environment["GF_APP_PORT"] == "8080" and environment["LOG_LEVEL"] == "info"
    assert read_secrets["API"] == {"ssmParameter": "/checkout/api"}
    assert set(read_secrets) == {"DB", "API", "TOKEN"}
