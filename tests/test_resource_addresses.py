"""Every resource's address (URN) in both stacks equals the committed inventory.

A URN is the stack, the project, the resource's qualified type (its parents' types joined with
``$``, then its own) and its name. The engine knows a resource by its URN alone: a changed name,
type or parent chain is a *different* resource, which ``pulumi up`` deletes and creates (a load
balancer, a target group, a role: an outage), or leaves behind, unless the new registration
carries ``aliases`` naming the old URN. So a refactoring of a component must leave this list as
it is, and a deliberate change of it is reviewed here, line by line, with its aliases.

The inventories are ``tests/resource_addresses/<stack>.txt``: one URN a line, sorted, from the
real ``__main__.py`` on the real ``Pulumi.<stack>.yaml`` under the mock engine (tests/harness.py).
After a deliberate change, write them again from the code and review the diff::

    RESOURCE_ADDRESSES=write python -m pytest -n0 tests/test_resource_addresses.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import load_stack_config, run_program, stack_file

INVENTORIES = Path(__file__).resolve().parent / "resource_addresses"
WRITE = "RESOURCE_ADDRESSES"  # set to "write": the test writes the inventories it checks
HEADER = (
    "# Every resource's URN in this stack, sorted: tests/test_resource_addresses.py checks it.\n"
    "# Written by: RESOURCE_ADDRESSES=write python -m pytest -n0 tests/test_resource_addresses.py\n"
)


def inventory_path(stack: str) -> Path:
    return INVENTORIES / f"{stack}.txt"


def read_inventory(text: str) -> list[str]:
    """The URNs of an inventory file: its lines but blank ones and ``#`` comments."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def render_inventory(urns: list[str]) -> str:
    return HEADER + "".join(f"{urn}\n" for urn in sorted(urns))


def address_differences(stack: str, expected: list[str], actual: list[str]) -> str | None:
    """None when the two lists of URNs agree; otherwise what was added and removed, what a
    removed URN means in a real stack and how to record a deliberate change."""
    duplicates = sorted({urn for urn in actual if actual.count(urn) > 1})
    added = sorted(set(actual) - set(expected))
    removed = sorted(set(expected) - set(actual))
    if not (added or removed or duplicates):
        return None
    lines = [f"the {stack} stack's resource addresses differ from {inventory_path(stack).name}:"]
    lines += [f"  registered twice: {urn}" for urn in duplicates]
    lines += [f"  added:   {urn}" for urn in added]
    lines += [f"  removed: {urn}" for urn in removed]
    if removed:
        lines.append(
            "A removed URN is a replacement in every real stack (the engine deletes the old "
            "resource and creates the new one, or orphans it) unless the new registration "
            "carries `aliases` naming the old URN."
        )
    lines.append(
        f"If the change is deliberate (and aliased where it must be): {WRITE}=write "
        "python -m pytest -n0 tests/test_resource_addresses.py, then review and commit the "
        "inventory's diff."
    )
    return "\n".join(lines)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_resource_addresses_match_the_inventory(stack):
    """The real program on the real stack file registers exactly the inventory's URNs, each once:
    no resource renamed, retyped or moved to another parent without the inventory saying so."""
    run = run_program(load_stack_config(stack_file(stack)), stack)
    assert run.urns, "the program registered nothing"
    path = inventory_path(stack)
    if os.environ.get(WRITE) == "write":
        path.parent.mkdir(exist_ok=True)
        path.write_text(render_inventory(run.urns))
    assert path.exists(), f"no inventory {path}: write it with {WRITE}=write (module docstring)"
    problem = address_differences(stack, read_inventory(path.read_text()), run.urns)
    assert problem is None, problem


def test_a_renamed_resource_is_named_as_added_and_removed():
    """The failure names both URNs, says a removed one is a replacement, and says how to write
    the inventory again."""
    service = "golden-fleet:index:BlueGreenService"
    old = f"urn:pulumi:prod::golden-fleet::{service}$aws:lb/listener:Listener::checkout-listener"
    new = old.replace("checkout-listener", "checkout-weighted-listener")
    keep = old.replace("checkout-listener", "checkout-http-redirect")
    problem = address_differences("prod", [keep, old], [keep, new])
    assert problem is not None
    assert f"added:   {new}" in problem and f"removed: {old}" in problem
    assert "replacement in every real stack" in problem and "aliases" in problem
    assert f"{WRITE}=write" in problem
    assert keep not in problem


def test_an_added_resource_alone_is_no_replacement():
    """A new URN fails too (the inventory must say what the stack will hold), without the
    replacement warning; a URN registered twice is named."""
    urn = "urn:pulumi:staging::golden-fleet::pulumi:providers:aws::aws"
    problem = address_differences("staging", [], [urn, urn])
    assert problem is not None
    assert f"added:   {urn}" in problem and f"registered twice: {urn}" in problem
    assert "replacement" not in problem
    assert address_differences("staging", [urn], [urn]) is None


def test_inventory_round_trip():
    """What the writer renders, the reader reads back: sorted URNs, the header ignored."""
    urns = ["urn:b", "urn:a"]
    assert read_inventory(render_inventory(urns)) == ["urn:a", "urn:b"]
