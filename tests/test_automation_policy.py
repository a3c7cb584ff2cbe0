"""The rollout's updates run the policy pack: release/automation.py passes policy/ and the
stack's config to the Automation API's preview and up, and a mandatory violation there stops
the rollout (ReleaseError) through the rollout's own applier.

The engine is a stand-in: its ``up`` reads the policy config it is handed and refuses, as the
CLI does, when a mandatory policy fires on the program's resources (decided by policy/rules.py
on a launch template without IMDSv2). The real CLI's enforcement is verified by real runs only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from release import automation
from release.rollout import AutomationApplier
from release.transitions import ReleaseError

ROOT = Path(__file__).resolve().parent.parent


class _Engine:
    """select_stack's result: records calls; `up` enforces the pack config it is given."""

    def __init__(self, violating: bool):
        self.violating = violating
        self.calls: list[tuple[str, dict]] = []

    def preview(self, **kwargs):
        self.calls.append(("preview", kwargs))

    def up(self, **kwargs):
        from pulumi.automation import errors

        self.calls.append(("up", kwargs))
        for config in kwargs.get("policy_pack_configs") or []:
            levels = json.loads(Path(config).read_text(encoding="utf-8"))
            if self.violating and levels.get("all") == "mandatory":
                sys.path.insert(0, str(ROOT / "policy"))
                try:
                    import rules  # policy/rules.py: the pack's own rule
                finally:
                    sys.path.remove(str(ROOT / "policy"))
                problems = rules.launch_template_imdsv2({"metadata_options": {}})
                assert problems, "the rule no longer fires on a template without IMDSv2"
                raise errors.CommandError(
                    "error: preview failed\nmandatory policy violation: launch-template-imdsv2"
                )


@pytest.fixture
def engine(monkeypatch):
    made = {}

    def select(stack, work_dir):
        made["engine"] = made.get("engine") or _Engine(violating=made.get("violating", False))
        return made["engine"]

    monkeypatch.setattr(automation, "_select", select)
    return made


@pytest.mark.parametrize("stack", ["staging", "acme/golden-fleet/prod"])
def test_preview_and_up_run_the_pack_with_the_stacks_config(engine, stack):
    """Both calls get policy_packs=[policy/] and policy_pack_configs=[policy/<stack>.json]."""
    AutomationApplier(ROOT).preview_and_up(stack, out=lambda _l: None)
    name = stack.rsplit("/", 1)[-1]
    for call, kwargs in engine["engine"].calls:
        assert kwargs["policy_packs"] == [str(ROOT / "policy")], call
        assert kwargs["policy_pack_configs"] == [str(ROOT / "policy" / f"{name}.json")], call
    assert [c for c, _k in engine["engine"].calls] == ["preview", "up"]


def test_a_mandatory_violation_refuses_the_rollouts_update(engine):
    """On prod (mandatory), a violating program's `up` fails and the rollout gets a
    ReleaseError naming the policy; the violation reaches the applier, not a log line."""
    engine["violating"] = True
    with pytest.raises(ReleaseError, match="launch-template-imdsv2"):
        AutomationApplier(ROOT).preview_and_up("acme/golden-fleet/prod", out=lambda _l: None)


def test_a_stack_without_a_policy_config_is_refused_before_any_update(engine, tmp_path):
    with pytest.raises(ReleaseError, match="no policy config"):
        automation.preview_and_up("qa", tmp_path, confirm=lambda: True, out=lambda _l: None)
    assert "engine" not in engine
