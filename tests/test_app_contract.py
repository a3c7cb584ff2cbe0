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
