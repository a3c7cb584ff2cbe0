"""baking.console: phase times are measured always and reported only when asked for."""

from __future__ import annotations

import bake_fixtures  # noqa: F401  (puts packer/, the bake package's home, on sys.path)
import pytest
from baking.console import Phases, TimedExitStack


def test_phases_are_timed_even_when_they_fail(capsys, monkeypatch):
    phases = Phases()
    with phases("first"):
        pass
    with pytest.raises(RuntimeError), phases("failing"):
        raise RuntimeError("x")
    assert [name for name, _ in phases.spans] == ["first", "failing"]
    monkeypatch.delenv("GOLDEN_FLEET_TIMINGS", raising=False)
    phases.report()
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("GOLDEN_FLEET_TIMINGS", "1")
    phases.report()
    err = capsys.readouterr().err
    assert err.startswith("bake: phases: first ") and "failing" in err


def test_teardown_is_one_timed_phase():
    phases = Phases()
    done = []
    with TimedExitStack("teardown", phases) as stack:
        stack.callback(done.append, "stopped")
    assert done == ["stopped"] and [name for name, _ in phases.spans] == ["teardown"]
