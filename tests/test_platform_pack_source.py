"""platform/bootstrap/pack_source.py: what the pulumiservice provider would fingerprint of
policy/ (its hashPolicyPackSource), refused when it is more than the repository holds, and the
policies' metadata read from the pack itself without writing bytecode into it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "platform"))

from bootstrap import pack_source  # noqa: E402

POLICY_DIR = ROOT / "policy"


@pytest.fixture
def clone_of_policy(tmp_path) -> Path:
    """A repository holding a copy of policy/'s tracked files, as a clean clone has them."""
    repo = tmp_path / "repo"
    (repo / "policy").mkdir(parents=True)
    for name in pack_source.repository_files(POLICY_DIR):
        (repo / "policy" / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "policy" / name).write_bytes((POLICY_DIR / name).read_bytes())
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "policy"], check=True)
    return repo / "policy"


def test_a_clean_clone_is_exactly_what_the_provider_fingerprints(clone_of_policy):
    assert pack_source.hashed_files(clone_of_policy) == pack_source.repository_files(
        clone_of_policy
    )
    pack_source.check_pack_source(clone_of_policy)  # nothing to refuse


@pytest.mark.parametrize(
    "made",
    ["venv/bin/python", "__pycache__/rules.cpython-311.pyc", "notes.txt"],
    ids=["preview-venv", "bytecode", "stray-file"],
)
def test_files_the_repository_does_not_hold_are_refused_by_name(clone_of_policy, made):
    """A venv for `pulumi preview --policy-pack`, bytecode or a stray file would change the
    fingerprint and republish the same versionTag, which Pulumi Cloud refuses."""
    (clone_of_policy / made).parent.mkdir(parents=True, exist_ok=True)
    (clone_of_policy / made).write_text("x")
    with pytest.raises(
        pack_source.PackSourceError,
        match=rf"policy/ holds files the repository "
        rf"does not \({made}\).*git clean -fdX",
    ):
        pack_source.check_pack_source(clone_of_policy)


def test_what_the_provider_skips_is_not_refused(clone_of_policy):
    """node_modules, .git and .pulumi are outside the provider's fingerprint."""
    for skipped in ("node_modules/x.js", ".pulumi/state", ".git/HEAD"):
        (clone_of_policy / skipped).parent.mkdir(parents=True, exist_ok=True)
        (clone_of_policy / skipped).write_text("x")
    pack_source.check_pack_source(clone_of_policy)


def test_the_policies_metadata_is_the_packs_own_and_writes_no_bytecode(clone_of_policy):
    """Every policy the pack declares, with its description, the pack's enforcement level and
    the listener policy's config schema; reading them leaves policy/ as the repository holds it."""
    described = pack_source.pack_policies(clone_of_policy, "mandatory")
    sys.path.insert(0, str(POLICY_DIR))
    flag = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        import policies

        declared = policies.all_policies()
    finally:
        sys.path.remove(str(POLICY_DIR))
        sys.dont_write_bytecode = flag
    assert [d["name"] for d in described] == [p.name for p in declared]
    assert [d["description"] for d in described] == [p.description for p in declared]
    assert {d["enforcement_level"] for d in described} == {"mandatory"}
    (listener,) = [d for d in described if "config_schema" in d]
    assert listener["name"] == "listener-tls13-or-redirect"
    assert listener["config_schema"] == {
        "type": "object",
        "properties": {"allowPlainHttp": {"type": "boolean", "default": False}},
    }
    pack_source.check_pack_source(clone_of_policy)


def test_outside_a_git_checkout_the_pack_is_refused_saying_why(tmp_path):
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "PulumiPolicy.yaml").write_text("runtime: python\n")
    with pytest.raises(
        pack_source.PackSourceError,
        match=r"cannot tell which files of policy/ "
        r"the repository holds .*git checkout",
    ):
        pack_source.check_pack_source(tmp_path / "policy")
