"""The session's bake cache is one per run: a second xdist worker asking for it fails loudly."""

from __future__ import annotations

import pytest
from shared_bakes import claim_for_this_worker


def test_a_second_worker_asking_for_the_bake_cache_fails_naming_the_group(tmp_path, monkeypatch):
    run = tmp_path / "pytest-7"
    run.mkdir()
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "run-1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    claim_for_this_worker(run / "popen-gw0")
    claim_for_this_worker(run / "popen-gw0")  # the same worker again: its own cache
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    with pytest.raises(AssertionError, match=r"gw1 .* gw0 already made.*xdist_group"):
        claim_for_this_worker(run / "popen-gw1")
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "run-2")  # another run: its own claim
    claim_for_this_worker(run / "popen-gw1")


def test_without_xdist_there_is_nothing_to_claim(tmp_path, monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_TESTRUNUID", raising=False)
    claim_for_this_worker(tmp_path / "basetemp")
    assert list(tmp_path.iterdir()) == []
