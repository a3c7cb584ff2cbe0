"""The contract between the stack's user data and the baked app: same unit, file and variable."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from components.fleet import APP_STACK_ENV, APP_UNIT, user_data

ROOT = Path(__file__).resolve().parent.parent


def test_user_data_writes_what_the_baked_unit_reads():
    unit = (ROOT / "app" / APP_UNIT).read_text()
    environment_files = [
        line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("EnvironmentFile=")
    ]
    # The stack's file is optional ("-") and read after the baked defaults, so it wins.
    assert environment_files[-1] == f"-{APP_STACK_ENV}", environment_files
    document = base64.b64decode(user_data(9090, "blue", "1.4.0")).decode()
    written = json.loads(document.split("\n", 1)[1])["write_files"][0]
    assert written["path"] == APP_STACK_ENV
    server = (ROOT / "app" / "server.py").read_text()
    for line in written["content"].splitlines():
        name = line.split("=", 1)[0]
        if name == "GF_APP_PORT":
            assert f'"{name}"' in server, f"the app does not read {name}"


def test_baked_agent_config_matches_what_the_role_allows():
    """The CloudWatch agent writes only where the instance role's policy lets it."""
    from components.policies import log_group_name, metric_namespace

    script = (ROOT / "packer" / "scripts" / "30-agents.sh").read_text()
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
