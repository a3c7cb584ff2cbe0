"""Property: any sequence of release commands on any valid stack file changes only its keys.

Hypothesis generates stack files (versions, weights, capacities, stable color, standby, the
canary capacity record a first shift writes; LF or CRLF, a byte-order mark or none, flow or
block maps, quoted or plain versions, comments) and sequences of
``deploy``/``shift``/``rollback``/``finish``. After every command that exits 0, the keys that
changed must be among the keys that command may touch, and every line
of the file that holds none of them must be byte for byte what it was. A command that exits
non-zero must leave the file byte for byte unchanged.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.config import parse_stack_config
from release import stackfile
from release.cli import main

STACK = "staging"

# What each command may change, as key paths below ``config:`` ("<new>"/"<old>" are colors).
ALLOWED = {
    "deploy": {
        ("golden-fleet:fleets", "<new>", "version"),
        ("golden-fleet:fleets", "<new>", "capacity", "min"),
        ("golden-fleet:fleets", "<new>", "capacity", "desired"),
        ("golden-fleet:fleets", "<new>", "capacity", "max"),
        ("golden-fleet:release", "stable"),
    },
    "shift": {
        ("golden-fleet:traffic", "blue"),
        ("golden-fleet:traffic", "green"),
        ("golden-fleet:release", "stable"),
    },
    "rollback": {("golden-fleet:traffic", "blue"), ("golden-fleet:traffic", "green")},
    # finish never moves traffic: it needs the new color at 100 % already. It puts back the
    # new color's own min and desired a first shift recorded, and removes the record.
    "finish": {
        ("golden-fleet:release", "stable"),
        ("golden-fleet:fleets", "<old>", "capacity", "min"),
        ("golden-fleet:fleets", "<old>", "capacity", "desired"),
        ("golden-fleet:fleets", "<new>", "capacity", "min"),
        ("golden-fleet:fleets", "<new>", "capacity", "desired"),
        ("golden-fleet:release", "canaryRestore", "color"),
        ("golden-fleet:release", "canaryRestore", "min"),
        ("golden-fleet:release", "canaryRestore", "desired"),
    },
}


def leaves(value: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(value, dict):
        found: dict[tuple[str, ...], Any] = {}
        for key, item in value.items():
            found.update(leaves(item, (*path, str(key))))
        return found
    return {path: value}


versions = st.builds(
    lambda a, b, c: f"{a}.{b}.{c}",
    st.integers(0, 3),
    st.integers(0, 12),
    st.integers(0, 3),
)


@st.composite
def stack_files(draw) -> str:
    stable = draw(st.sampled_from(["blue", "green"]))
    other = "green" if stable == "blue" else "blue"
    stable_version = draw(versions)
    new_version = draw(versions)
    new_weight = draw(st.sampled_from([0, 0, 10, 50, 100]))
    capacity = {stable: draw(st.integers(1, 3))}
    capacity[other] = draw(st.integers(1 if new_weight else 0, 3))
    flow = draw(st.booleans())
    quote = draw(st.sampled_from(["", '"', "'"]))
    standby = draw(st.sampled_from(["warm", "cold"]))
    pin_stable = draw(st.booleans()) or new_weight >= 50
    # What a first shift records when it raised the new color's min (finish restores it).
    record = ""
    if capacity[other] >= 1 and draw(st.booleans()):
        own = draw(st.integers(1, capacity[other]))
        record = (
            f"    canaryRestore: {{color: {other}, min: {own}, desired: {own}}}\n"
            if flow
            else f"    canaryRestore:   # the canary's own\n      color: {other}\n"
            f"      min: {own}\n      desired: {own}\n"
        )

    def fleet(color: str, version: str) -> str:
        n = capacity[color]
        cap = (
            f"      capacity: {{min: {n}, desired: {n}, max: {n + 1}}}\n"
            if flow
            else f"      capacity:\n        min: {n}   # floor\n        desired: {n}\n"
            f"        max: {n + 1}\n"
        )
        return f"    {color}:\n      version: {quote}{version}{quote}\n{cap}"

    versions_by_color = {stable: stable_version, other: new_version}
    weights = {other: new_weight, stable: 100 - new_weight}
    text = (
        "# generated stack file\nconfig:\n  aws:region: eu-west-1\n\n"
        "  golden-fleet:service:\n    name: checkout\n    port: 8080\n"
        "    instanceTypes: [t3.small]\n"
        "  golden-fleet:network:\n    vpcId: vpc-0a1b2c3d4e5f60718\n"
        "    publicSubnetIds: [subnet-0a1b2c3d4e5f60001, subnet-0a1b2c3d4e5f60002]\n"
        "    privateSubnetIds:\n      - subnet-0a1b2c3d4e5f60101\n"
        "      - subnet-0a1b2c3d4e5f60102\n"
        "  golden-fleet:image:\n    mode: bake\n\n"
        "  golden-fleet:fleets:   # one per color\n"
        + fleet("blue", versions_by_color["blue"])
        + fleet("green", versions_by_color["green"])
        + f"\n  golden-fleet:traffic:\n    blue: {weights['blue']}\n"
        f"    green: {weights['green']}   # percent\n"
        "  golden-fleet:release:\n"
        + (f"    stable: {stable}\n" if pin_stable else "")
        + f"    standby: {standby}\n"
        + record
    )
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text


commands = st.lists(
    st.one_of(
        st.tuples(st.just("deploy"), versions),
        st.tuples(st.just("shift"), st.sampled_from(["0", "10", "50", "100"])),
        st.tuples(st.just("rollback")),
        st.tuples(st.just("finish")),
    ),
    min_size=1,
    max_size=6,
)


def run(path: Path, command: tuple[str, ...]) -> int:
    name, *rest = command
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main([name, STACK, *rest, "--file", str(path)])


@pytest.fixture(autouse=True)
def _no_aws(no_aws_credentials):
    """Commands warn that they cannot read AWS and edit the file only."""


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=stack_files(), sequence=commands)
def test_each_command_changes_only_its_own_keys(tmp_path, text, sequence):
    path = tmp_path / f"Pulumi.{STACK}.yaml"
    path.write_bytes(text.encode())
    parse_stack_config(stackfile.load_config_text(text))  # the generator makes valid files
    for command in sequence:
        before_bytes = path.read_bytes()
        before = stackfile.load_config_text(before_bytes.decode())
        stable = parse_stack_config(before).stable_color.value
        code = run(path, command)
        after_bytes = path.read_bytes()
        if code != 0:
            assert after_bytes == before_bytes, f"{command} failed but touched the file"
            continue
        after = stackfile.load_config_text(after_bytes.decode())
        new = "green" if stable == "blue" else "blue"
        allowed = {
            tuple(new if p == "<new>" else stable if p == "<old>" else p for p in path_)
            for path_ in ALLOWED[command[0]]
        }
        old_leaves, new_leaves = leaves(before), leaves(after)
        changed = {
            k
            for k in old_leaves.keys() | new_leaves.keys()
            if old_leaves.get(k) != new_leaves.get(k)
        }
        assert changed <= allowed, f"{command} changed {sorted(changed - allowed)}"
        if command[0] == "finish":
            assert "canaryRestore" not in after.get("golden-fleet:release", {}), "record kept"
        # Lines holding no changed key are byte for byte the same, in the same order.
        old_lines = before_bytes.splitlines(keepends=True)
        new_lines = after_bytes.splitlines(keepends=True)
        kept_old = [line for line in old_lines if line in new_lines]
        assert len(new_lines) - len(kept_old) <= len(changed), (command, changed)
        assert after_bytes.startswith(b"\xef\xbb\xbf") == before_bytes.startswith(b"\xef\xbb\xbf")
        assert (b"\r\n" in after_bytes) == (b"\r\n" in before_bytes)
