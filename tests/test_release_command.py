"""``python -m release`` on copies of the real stack files.

Each edit must leave a file that parses, validates and keeps its comments and key order, and
the real program run on it under the mock engine must change only what the step intends:
deploy -> the idle color's resources; shift and rollback -> the listener alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import (
    apply_project,
    changed_resources,
    copy_stack_file,
    load_stack_config,
    run_program,
)
from pulumi.automation import OutputValue

from components.config import Color, parse_stack_config
from release import automation
from release.cli import main

ROOT = Path(__file__).resolve().parent.parent
LISTENER = "aws:lb/listener:Listener"


@pytest.fixture
def stack_copy(tmp_path):
    """A copy of a real stack file in a temporary directory."""

    def copy(stack: str) -> Path:
        return copy_stack_file(stack, tmp_path)

    return copy


@pytest.fixture(autouse=True)
def _no_aws(no_aws_credentials):
    """No credentials and no instance metadata: the image check must say it could not check."""


def release(capsys, path: Path, *args: str) -> tuple[int, str, str]:
    """Run the command on ``path``; (exit code, stdout, stderr)."""
    command, stack, *rest = args
    code = main([command, stack, "--file", str(path), *rest])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def comments(text: str) -> list[str]:
    return [m.group() for line in text.splitlines() if (m := re.search(r"#.*$", line))]


def keys(text: str) -> list[str]:
    return re.findall(r"^\s*([\w:-]+):", text, flags=re.MULTILINE)


def assert_well_formed(before: str, path: Path) -> None:
    """The edited file parses, validates, and keeps every comment and the key order."""
    after = path.read_text()
    parse_stack_config(load_stack_config(path))
    assert comments(after) == comments(before), f"{path.name}: comments changed"
    assert keys(after) == keys(before), f"{path.name}: key order changed"
    assert "{min: " in after, f"{path.name}: flow-style capacity maps were expanded"


def changes(stack: str, before: dict, path: Path) -> set[str]:
    return changed_resources(
        run_program(before, stack), run_program(load_stack_config(path), stack)
    )


# ---------------------------------------------------------------------------------------------
# Each command: file well formed, and the intended change under the mock engine
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("stack", "version"), [("staging", "1.6.0"), ("prod", "1.5.0")])
def test_deploy_changes_only_the_idle_colors_resources(capsys, stack_copy, stack, version):
    path = stack_copy(stack)
    before_text, before = path.read_text(), load_stack_config(path)
    code, out, err = release(capsys, path, "deploy", stack, version)
    assert code == 0, err
    assert_well_formed(before_text, path)
    changed = changes(stack, before, path)
    assert changed, "deploy changed no resource"
    # Launch permissions are per version: green's old version's go, the new version's come.
    old_version = before["golden-fleet:fleets"]["green"]["version"]
    changed = {
        n for n in changed if not n.startswith((f"checkout-{old_version}-", f"checkout-{version}-"))
    }
    assert all("-green-" in name for name in changed), f"outside green: {sorted(changed)}"
    assert "checkout-green-lt" in changed, sorted(changed)
    assert f"pulumi preview --stack {stack} --diff" in out
    assert f"+      version: {version}" in out  # the unified diff


@pytest.mark.parametrize(("stack", "command"), [("staging", "shift"), ("staging", "rollback")])
def test_shift_and_rollback_change_only_the_listener(capsys, stack_copy, stack, command):
    path = stack_copy(stack)
    if command == "rollback":
        assert release(capsys, path, "shift", stack, "50")[0] == 0
    before_text, before = path.read_text(), load_stack_config(path)
    args = ("shift", stack, "10") if command == "shift" else ("rollback", stack)
    code, _, err = release(capsys, path, *args)
    assert code == 0, err
    assert_well_formed(before_text, path)
    changed = changes(stack, before, path)
    run = run_program(load_stack_config(path), stack)
    assert len(changed) == 1 and run.resources[changed.pop()].type_ == LISTENER, changed


def test_shift_on_prod_after_a_deploy_changes_only_the_listener(capsys, stack_copy):
    """The HTTPS stack too: one listener change, not its HTTP redirect."""
    path = stack_copy("prod")
    assert release(capsys, path, "deploy", "prod", "1.5.0")[0] == 0
    before = load_stack_config(path)
    assert release(capsys, path, "shift", "prod", "20")[0] == 0
    changed = changes("prod", before, path)
    run = run_program(load_stack_config(path), "prod")
    assert len(changed) == 1 and run.resources[changed.pop()].type_ == LISTENER, changed


def test_finish_cold_changes_only_the_old_colors_group(capsys, stack_copy):
    """The weights were applied by the shift to 100; finish retires the old color alone."""
    path = stack_copy("staging")
    assert release(capsys, path, "shift", "staging", "100")[0] == 0
    before_text, before = path.read_text(), load_stack_config(path)
    code, out, err = release(capsys, path, "finish", "staging")
    assert code == 0, err
    assert_well_formed(before_text, path)
    changed = changes("staging", before, path)
    assert "checkout-blue-asg" in changed and "checkout-listener" not in changed, changed
    assert all(name.startswith("checkout-blue-") for name in changed), changed
    assert "boot and pass health checks" in out  # the rollback cost of cold standby


def test_finish_warm_changes_no_resource(capsys, stack_copy):
    """Warm standby: the old color keeps its capacity, the listener already sends 100 %."""
    path = stack_copy("prod")
    assert release(capsys, path, "deploy", "prod", "1.5.0")[0] == 0
    assert release(capsys, path, "shift", "prod", "100")[0] == 0
    before = load_stack_config(path)
    code, out, err = release(capsys, path, "finish", "prod")
    assert code == 0, err
    assert changes("prod", before, path) == set()
    assert "warm standby" in out and "seconds" in out


# ---------------------------------------------------------------------------------------------
# Whole releases
# ---------------------------------------------------------------------------------------------
def test_a_full_release_then_the_next_goes_to_the_other_color(capsys, stack_copy):
    """deploy -> shift 10 -> shift 50 -> finish; the next deploy lands on blue."""
    path = stack_copy("staging")
    original = path.read_text()
    for args in (
        ("deploy", "staging", "1.6.0"),
        ("shift", "staging", "10"),
        ("shift", "staging", "50"),
        ("shift", "staging", "100"),
        ("finish", "staging"),
    ):
        code, _, err = release(capsys, path, *args)
        assert code == 0, f"{args}: {err}"
        assert_well_formed(original, path)
    config = parse_stack_config(load_stack_config(path))
    assert config.stable_color is Color.GREEN
    assert (config.traffic.blue, config.traffic.green) == (0, 100)
    assert config.fleets[Color.GREEN].version == "1.6.0"

    code, out, err = release(capsys, path, "deploy", "staging", "1.7.0")
    assert code == 0, err
    config = parse_stack_config(load_stack_config(path))
    assert config.fleets[Color.BLUE].version == "1.7.0"
    assert config.fleets[Color.BLUE].capacity.min == 1, "the cold color was not re-warmed"
    assert "blue was cold" in out


def test_deploy_shift_rollback_returns_traffic_in_one_edit(capsys, stack_copy):
    path = stack_copy("staging")
    assert release(capsys, path, "deploy", "staging", "1.6.0")[0] == 0
    assert release(capsys, path, "shift", "staging", "30")[0] == 0
    code, out, err = release(capsys, path, "rollback", "staging")
    assert code == 0, err
    edited = [line for line in out.splitlines() if re.match(r"^[-+](?![-+]{2} )", line)]
    assert edited == ["-    blue: 70", "-    green: 30", "+    blue: 100", "+    green: 0"], edited
    config = parse_stack_config(load_stack_config(path))
    assert (config.traffic.blue, config.traffic.green) == (100, 0)
    assert config.fleets[Color.GREEN].version == "1.6.0"  # kept for a fix or a retry


# ---------------------------------------------------------------------------------------------
# Refusals: one line on stderr, exit 1, the file byte for byte as it was
# ---------------------------------------------------------------------------------------------
def refused(capsys, path: Path, *args: str) -> str:
    before = path.read_bytes()
    code, out, err = release(capsys, path, *args)
    assert code == 1, f"{args} was not refused: {out}"
    assert path.read_bytes() == before, f"{args} touched the file"
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_refuses_to_deploy_over_a_color_that_takes_traffic(capsys, stack_copy):
    path = stack_copy("staging")
    assert release(capsys, path, "shift", "staging", "10")[0] == 0
    err = refused(capsys, path, "deploy", "staging", "1.6.0")
    assert "green still takes 10% — shift to 0" in err and "or finish first" in err


def test_refuses_to_shift_to_a_color_without_capacity(capsys, stack_copy):
    path = stack_copy("staging")
    for args in (("shift", "staging", "100"), ("finish", "staging")):
        assert release(capsys, path, *args)[0] == 0
    err = refused(capsys, path, "shift", "staging", "10")
    assert "blue has no capacity (0/0/2) — deploy a version to it first" in err


def test_refuses_to_shift_to_a_color_never_deployed(capsys, stack_copy):
    err = refused(capsys, stack_copy("prod"), "shift", "prod", "10")
    assert "green runs the stable version 1.4.0" in err


def test_refuses_a_file_that_does_not_validate(capsys, stack_copy):
    path = stack_copy("staging")
    path.write_text(path.read_text().replace("    blue: 100\n", "    blue: 90\n"))
    err = refused(capsys, path, "shift", "staging", "10")
    assert "does not validate: golden-fleet:traffic: weights must sum to 100" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [("config: [1, 2\n", "not readable YAML"), ("name: x\n", "no `config:` mapping")],
)
def test_refuses_a_file_that_is_not_a_stack_file(capsys, stack_copy, text, message):
    path = stack_copy("staging")
    path.write_text(text)
    assert message in refused(capsys, path, "rollback", "staging")


def test_refuses_a_missing_file(capsys, tmp_path):
    code, _, err = release(capsys, tmp_path / "Pulumi.nope.yaml", "status", "nope")
    assert code == 1 and "does not exist" in err


def test_refuses_an_edit_that_would_not_validate(capsys, stack_copy):
    """Validation runs on the result: a step the model rejects writes nothing."""
    path = stack_copy("staging")
    path.write_text(path.read_text().replace("stable: blue ", "stable: green"))
    # green is "stable" with 0% and blue takes 100%: rollback would send all traffic to green,
    # whose capacity is fine, so make green cold to make the result invalid.
    path.write_text(
        path.read_text().replace(
            "green:\n      version: 1.5.0\n      capacity: {min: 1, desired: 1, max: 2}",
            "green:\n      version: 1.5.0\n      capacity: {min: 0, desired: 0, max: 2}",
        )
    )
    err = refused(capsys, path, "rollback", "staging")
    assert "the edit would not validate" in err and "capacity.min" in err


def test_an_interrupted_write_leaves_the_original_byte_for_byte(capsys, stack_copy, monkeypatch):
    """A failure between writing the new text and the rename changes nothing, leaves no litter."""
    path = stack_copy("staging")
    original = path.read_bytes()

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    code, _, err = release(capsys, path, "shift", "staging", "10")
    assert code == 1 and "could not write" in err and "No space left on device" in err
    assert path.read_bytes() == original
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "temp file left behind"


def test_a_write_killed_midway_leaves_the_original(capsys, stack_copy, monkeypatch):
    """Even an exception that is not an OSError (Ctrl-C mid-write) leaves the original."""
    path = stack_copy("staging")
    original = path.read_bytes()
    real_fsync = os.fsync

    def interrupted(fd):
        real_fsync(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    code, _, err = release(capsys, path, "shift", "staging", "10")
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert path.read_bytes() == original
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_the_written_file_keeps_its_mode(capsys, stack_copy):
    path = stack_copy("staging")
    path.chmod(0o640)
    assert release(capsys, path, "shift", "staging", "10")[0] == 0
    assert path.stat().st_mode & 0o777 == 0o640


def test_dry_run_writes_nothing(capsys, stack_copy):
    path = stack_copy("staging")
    before = path.read_bytes()
    code, out, _ = release(capsys, path, "shift", "staging", "10", "--dry-run")
    assert code == 0 and "+    green: 10" in out and "not written" in out
    assert path.read_bytes() == before


def test_a_noop_writes_nothing_and_succeeds(capsys, stack_copy):
    path = stack_copy("staging")
    before = path.read_bytes()
    code, out, _ = release(capsys, path, "rollback", "staging")
    assert code == 0 and "nothing to roll back" in out
    assert path.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# --apply, status, and the real entry point
# ---------------------------------------------------------------------------------------------
def test_apply_without_the_pulumi_cli_says_what_to_install(capsys, stack_copy, monkeypatch):
    path = stack_copy("staging")
    before = path.read_bytes()
    monkeypatch.setenv("PATH", str(path.parent))  # no pulumi here
    monkeypatch.chdir(path.parent)
    (path.parent / "Pulumi.yaml").write_text("name: golden-fleet\nruntime: python\n")
    code, _, err = release(capsys, path, "shift", "staging", "10", "--apply")
    assert code == 1
    assert "--apply needs the pulumi CLI, which is not on PATH — install the pulumi CLI" in err
    assert path.read_bytes() == before


def test_status_prints_the_table_and_the_next_step(capsys, stack_copy, monkeypatch):
    path = stack_copy("staging")
    monkeypatch.setenv("PATH", str(path.parent))
    code, out, err = release(capsys, path, "status", "staging")
    assert code == 0, err
    assert re.search(r"^green\s+1\.5\.0\s+-\s+0%\s+1/1/2\s+idle$", out, re.MULTILINE), out
    assert "AMI: not read — the pulumi CLI is not on PATH" in out
    assert "next: green has 1.5.0 at weight 0" in out


def test_python_dash_m_release_runs(stack_copy):
    """The real entry point: help, and a refusal's exit code, in a fresh interpreter."""
    path = stack_copy("prod")
    env = {"PATH": str(path.parent), "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(path.parent)}
    run = [sys.executable, "-m", "release"]
    shown = subprocess.run([*run, "--help"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert shown.returncode == 0 and "deploy" in shown.stdout and "rollback" in shown.stdout
    bad = subprocess.run(
        [*run, "shift", "prod", "150", "--file", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a whole percentage" in bad.stderr


class FakeStack:
    """Stands in for an Automation API stack: records what was run, serves outputs."""

    def __init__(self, outputs: dict | None = None):
        self.ran: list[str] = []
        self._outputs = outputs or {}

    def preview(self, diff=None, on_output=None, policy_packs=(), policy_pack_configs=()):
        self.ran.append(f"preview diff={diff}")
        self.policies = (list(policy_packs), list(policy_pack_configs))
        on_output("~ aws:lb/listener:Listener checkout-listener update [diff: ~defaultActions]")

    def up(self, on_output=None, policy_packs=(), policy_pack_configs=()):
        assert (list(policy_packs), list(policy_pack_configs)) == self.policies, (
            "up runs the pack the preview ran"
        )
        self.ran.append("up")
        on_output("Resources: 1 updated")

    def outputs(self):
        return self._outputs


@pytest.fixture
def fake_pulumi(tmp_path, monkeypatch):
    """A `pulumi` executable on PATH and the Automation API stack replaced by a fake."""
    apply_project(tmp_path, monkeypatch, ("staging", "prod"))
    selected: list[tuple[str, Path]] = []
    stack = FakeStack(
        {"blue": OutputValue({"amiId": "ami-0aaaaaaaaaaaaaaaa", "version": "1.4.0"}, False)}
    )

    def select(name, work_dir):
        selected.append((name, work_dir))
        return stack

    monkeypatch.setattr(automation, "_select", select)
    return stack, selected


@pytest.fixture
def lock_table(monkeypatch):
    """moto in process with the release lock's table: every --apply takes the stack's lock."""
    from live_stack import lock_table
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        lock_table()
        yield


@pytest.mark.parametrize(("yes", "expected"), [(True, ["preview diff=True", "up"]), (False, [])])
def test_apply_previews_then_updates_only_when_confirmed(
    capsys, stack_copy, fake_pulumi, lock_table, yes, expected
):
    """--apply: the edit, then preview with diff, then up with --yes (no terminal: no up); under
    the release lock, released after either way (tests/test_apply_lock.py)."""
    stack, selected = fake_pulumi
    path = stack_copy("staging")
    # --force: the lock's AWS (moto) has no Auto Scaling groups for the live gate to find
    code, out, err = release(
        capsys, path, "shift", "staging", "10", "--apply", "--force", *(["--yes"] * yes)
    )
    assert code == 0, err
    assert stack.ran == (expected or ["preview diff=True"])
    assert stack.policies == (
        [str(path.parent.resolve() / "policy")],
        [str(path.parent.resolve() / "policy" / "staging.json")],
    )
    assert selected == [("staging", path.parent.resolve())]
    assert "checkout-listener update" in out
    assert parse_stack_config(load_stack_config(path)).traffic.green == 10


def test_apply_refuses_a_file_outside_the_project(capsys, stack_copy, fake_pulumi, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = elsewhere / "Pulumi.staging.yaml"
    shutil.copyfile(stack_copy("staging"), path)
    err = refused(capsys, path, "shift", "staging", "10", "--apply")
    assert "--file points at" in err


def test_status_reads_the_ami_from_stack_outputs(capsys, stack_copy, fake_pulumi):
    code, out, err = release(capsys, stack_copy("staging"), "status", "staging")
    assert code == 0, err
    assert re.search(r"^blue\s+1\.4\.0\s+ami-0aaaaaaaaaaaaaaaa\s+100%", out, re.MULTILINE), out
    assert re.search(r"^green\s+1\.5\.0\s+-\s+0%", out, re.MULTILINE), out
