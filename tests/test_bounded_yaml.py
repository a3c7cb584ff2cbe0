"""Bounded input: a stack file over 1 MiB, an alias bomb and 50,000 nested ``[`` are refused in
one line naming the file and the rule, by every reader of stack and settings files and by every
``python -m release`` subcommand, before parsing goes on (components/bounded_yaml.py).

Before the bounds: the alias bomb ran out of memory after 12 s (unbounded without a memory cap),
the nesting raised RecursionError in every subcommand, and ``status`` on a 30 MB file took more
than 90 s.

The bounds on time are this process's CPU time (``time.process_time``): what the refusal
costs, which other work on a busy machine does not inflate (a wall-clock bound of 0.5 s failed
once on a 2-core machine running a bake beside the suite).
"""

from __future__ import annotations

import ast
import itertools
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import stack_file
from ruamel.yaml.error import YAMLError

from components import bounded_yaml
from release import rollout
from release.cli import main

ROOT = Path(__file__).resolve().parent.parent
STACK = "staging"

# The rule each input breaks, as the refusal names it.
RULES = {
    "alias-bomb": f"more than {bounded_yaml.MAX_ALIASES} YAML aliases",
    "deep-nesting": f"nested more than {bounded_yaml.MAX_DEPTH} levels deep",
    "30-mb": "over the limit of 1,048,576 bytes",
}


def alias_bomb() -> str:
    """Nine anchors, each a list of nine aliases of the previous: 9^9 strings once expanded."""
    lines = ['  bomb-a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghi"
    for previous, name in itertools.pairwise(names):
        lines.append(f"  bomb-{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


def bad_text(kind: str) -> str:
    """The staging stack file with the bad input under its ``config:``."""
    text = stack_file(STACK).read_text(encoding="utf-8")
    if kind == "alias-bomb":
        return text.replace("config:\n", "config:\n" + alias_bomb(), 1)
    if kind == "deep-nesting":
        return text.replace("config:\n", "config:\n  deep: " + "[" * 50_000 + "\n", 1)
    filler = "# " + "x" * 97 + "\n"  # 100 bytes a line: 30 MB of comments after the config
    return text + filler * (30 * 1024 * 1024 // len(filler))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    """Each bad input as a project's ``Pulumi.staging.yaml``, in its own directory."""
    made = {}
    for kind in RULES:
        directory = tmp_path_factory.mktemp(kind)
        shutil.copyfile(ROOT / "Pulumi.yaml", directory / "Pulumi.yaml")
        path = directory / f"Pulumi.{STACK}.yaml"
        path.write_text(bad_text(kind), encoding="utf-8")
        made[kind] = path
    return made


def refusal(error: BaseException | str, kind: str, name: str) -> str:
    line = str(error)
    assert "\n" not in line.strip(), line
    assert name in line and RULES[kind] in line, line
    return line


# ---------------------------------------------------------------------------------------------
# The rule itself
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", RULES)
@pytest.mark.parametrize("parse", [bounded_yaml.safe_load, bounded_yaml.compose])
def test_each_bad_input_is_refused_within_milliseconds(bad_files, kind, parse):
    started = time.process_time()
    with pytest.raises(bounded_yaml.InputLimitError) as refused:
        parse(bounded_yaml.read_text(bad_files[kind]), bad_files[kind].name)
    took = time.process_time() - started
    refusal(refused.value, kind, f"Pulumi.{STACK}.yaml")
    assert took < 0.5, f"{kind} refused after {took * 1000:.0f} ms"


def test_a_refusal_names_the_line_and_column():
    """At the 33rd `[` (column 36 after `b: `), before the rest is scanned."""
    with pytest.raises(bounded_yaml.InputLimitError, match=r"^f\.yaml:2:36: nested more than"):
        bounded_yaml.safe_load("a: 1\nb: " + "[" * 40 + "]" * 40 + "\n", "f.yaml")


def test_block_nesting_is_counted_as_well_as_flow_nesting():
    deep = "".join(f"{'  ' * level}k{level}:\n" for level in range(40)) + "  " * 40 + "v: 1\n"
    with pytest.raises(bounded_yaml.InputLimitError, match="nested more than 32 levels"):
        bounded_yaml.compose(deep, "deep.yaml")


def test_up_to_the_bounds_reads_as_usual():
    """32 aliases and 32 levels of collections (the top mapping counts as one) are within."""
    aliased = bounded_yaml.safe_load("a: &a [1]\nb: [" + ", ".join(["*a"] * 32) + "]\n", "t")
    assert aliased["b"] == [[1]] * 32
    nested = bounded_yaml.safe_load("x: " + "[" * 31 + "1" + "]" * 31 + "\n", "t")
    inner = nested["x"]
    for _ in range(30):
        inner = inner[0]
    assert inner == [1]
    with pytest.raises(bounded_yaml.InputLimitError):
        bounded_yaml.safe_load("a: &a [1]\nb: [" + ", ".join(["*a"] * 33) + "]\n", "t")


def test_merge_keys_count_as_aliases():
    text = "base: &b {x: 1}\n" + "".join(f"k{i}:\n  <<: *b\n" for i in range(33))
    with pytest.raises(bounded_yaml.InputLimitError, match="aliases"):
        bounded_yaml.compose(text, "merge.yaml")


def test_a_file_is_never_read_past_the_cap():
    """A character device says size 0 and never ends: cut at the cap and refused."""
    with pytest.raises(bounded_yaml.InputLimitError, match="zero: more than that, over"):
        bounded_yaml.read_bytes(Path("/dev/zero"))


def test_text_already_in_memory_is_held_to_the_same_cap():
    with pytest.raises(bounded_yaml.InputLimitError, match="1,048,577 bytes"):
        bounded_yaml.safe_load("#" * 1_048_576 + "\n", "edited")
    with pytest.raises(bounded_yaml.InputLimitError, match="over the limit"):
        bounded_yaml.safe_load("é" * 600_000, "edited")  # 600,000 characters, 1.2 MB


def test_invalid_yaml_is_still_ruamels_error():
    with pytest.raises(YAMLError):
        bounded_yaml.safe_load("a: [1\n", "t")


# ---------------------------------------------------------------------------------------------
# Every reader of stack and settings files
# ---------------------------------------------------------------------------------------------
def _release_stackfile(path: Path) -> None:
    from release import stackfile

    stackfile.load(path)


def _packer_stack(path: Path) -> None:
    from baking.stackfile import read_stack

    read_stack(STACK, path.parent)


def _deploy_settings(path: Path) -> None:
    from deploy.settings_file import load_settings

    load_settings(path)


def _deploy_live_weights(path: Path) -> None:
    from deploy.live_weights import file_weights

    file_weights(STACK, path.parent)


READERS = {
    "release/stackfile.py": _release_stackfile,
    "packer/baking/stackfile.py": _packer_stack,
    "deploy/settings_file.py": _deploy_settings,
    "deploy/live_weights.py": _deploy_live_weights,
}


@pytest.fixture
def packer_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "packer"))


@pytest.mark.parametrize("kind", RULES)
@pytest.mark.parametrize("reader", READERS)
def test_every_reader_refuses_in_one_line(bad_files, packer_on_path, reader, kind):
    started = time.process_time()
    with pytest.raises(Exception) as refused:  # each reader's own error type
        READERS[reader](bad_files[kind])
    took = time.process_time() - started
    assert took < 0.5, f"{reader} refused {kind} after {took * 1000:.0f} ms of CPU"
    assert not isinstance(refused.value, MemoryError | RecursionError)
    refusal(refused.value, kind, f"Pulumi.{STACK}.yaml")


PRODUCTION = ("__main__.py", "components", "release", "packer", "deploy", "platform", "policy")
# Modules of ruamel.yaml that parse nothing: error types and node classes.
TYPES_ONLY = {"ruamel.yaml.error", "ruamel.yaml.nodes"}


def _yaml_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if name == "yaml" or name.startswith("yaml."):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
            elif name.startswith("ruamel") and name not in TYPES_ONLY:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    return found


def test_no_module_parses_yaml_around_the_bounds():
    """One copy of the rule: only components/bounded_yaml.py imports a YAML parser."""
    found = []
    for top in PRODUCTION:
        paths = [ROOT / top] if top.endswith(".py") else sorted((ROOT / top).rglob("*.py"))
        for path in paths:
            if "venv" in path.parts or path == ROOT / "components" / "bounded_yaml.py":
                continue
            found += _yaml_imports(path)
    assert not found, f"YAML parsed outside components/bounded_yaml.py: {found}"


# ---------------------------------------------------------------------------------------------
# Every subcommand of the release command
# ---------------------------------------------------------------------------------------------
SUBCOMMANDS = {
    "status": ["status", STACK],
    "deploy": ["deploy", STACK, "1.6.0"],
    "shift": ["shift", STACK, "10"],
    "rollback": ["rollback", STACK],
    "rollback --now": ["rollback", STACK, "--now"],
    "finish": ["finish", STACK],
    "rollout": ["rollout", STACK],
    "prune": ["prune", STACK],
    "images": ["images", STACK],
}


@pytest.mark.parametrize("kind", RULES)
@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_refuses_in_one_line(capsys, bad_files, no_aws_credentials, command, kind):
    before = bad_files[kind].read_bytes()
    started = time.process_time()
    code = main([*SUBCOMMANDS[command], "--file", str(bad_files[kind])])
    took = time.process_time() - started
    out, err = capsys.readouterr()
    # refused before anything was written: a rollout says so with its own status (REFUSED)
    assert code == (rollout.REFUSED if command == "rollout" else 1), (out, err)
    [line] = err.strip().splitlines()
    refusal(line, kind, f"Pulumi.{STACK}.yaml")
    assert took < 1.0, f"{command} refused {kind} after {took * 1000:.0f} ms"
    assert bad_files[kind].read_bytes() == before


def _memory_cap() -> None:
    """1 GiB of address space for the child: an unbounded expansion fails fast here instead of
    taking the machine's memory."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("kind", RULES)
def test_the_entry_point_refuses_without_a_traceback(bad_files, no_aws_credentials, kind):
    """``python -m release status`` as an operator runs it, under a 1 GiB memory cap."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "release", "status", STACK, "--file", str(bad_files[kind])],
        cwd=bad_files[kind].parent, env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, preexec_fn=_memory_cap,
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-2000:]
    [line] = done.stderr.strip().splitlines()
    refusal(line, kind, f"Pulumi.{STACK}.yaml")
    assert took < 10, f"status on {kind} took {took:.1f} s"
