"""What the pulumiservice provider publishes of policy/, and how it decides a new version is due.

Read from the provider's source (pulumi/pulumi-pulumiservice,
``provider/pkg/resources/policy_pack.go``):

- ``resolvePolicies``: without a ``policies`` input it spawns the pack as a policy analyzer to
  read its policies, which needs the pack's virtual environment; with one, it never runs it.
- ``hashPolicyPackSource``: the diff fingerprint is every file under ``sourcePath`` (path, mode,
  bytes) except under ``node_modules``, ``.git`` and ``.pulumi``; a different fingerprint
  replaces the resource, which publishes the same ``versionTag`` again, and Pulumi Cloud refuses
  that (versions are immutable). So a virtual environment or ``__pycache__`` inside policy/, or
  any file the repository does not hold, would make another clone or Python version republish.

Hence the platform passes the policies' metadata itself (read from the pack's own code, without
writing bytecode into it), so the pack never runs and needs no virtual environment where the
platform is deployed, and it refuses to run while policy/ holds a file the repository does not
(a ``venv`` made for ``pulumi preview --policy-pack policy``, ``__pycache__``, a stray file),
naming it, before anything is registered.
"""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# Skipped by hashPolicyPackSource (provider/pkg/resources/policy_pack.go), whole subtrees.
PROVIDER_SKIPS = frozenset({"node_modules", ".git", ".pulumi"})


class PackSourceError(ValueError):
    """policy/ is not what the repository holds; the message names the files."""


def hashed_files(pack_dir: Path) -> list[str]:
    """The files (relative, '/'-separated) the provider's fingerprint reads under ``pack_dir``."""
    found = []
    for path in sorted(pack_dir.rglob("*")):
        relative = path.relative_to(pack_dir)
        if PROVIDER_SKIPS & set(relative.parts):
            continue
        if path.is_file() or path.is_symlink():
            found.append(relative.as_posix())
    return found


def repository_files(pack_dir: Path) -> list[str]:
    """The files of ``pack_dir`` the git repository holds (its source, on any clone)."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(pack_dir), "ls-files", "-z", "--", "."],
            capture_output=True,
            check=True,
            stdin=subprocess.DEVNULL,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", b"") or str(error).encode()
        raise PackSourceError(
            f"cannot tell which files of {pack_dir.name}/ the repository holds (git ls-files: "
            f"{detail.decode(errors='replace').strip()}): run the platform from a git checkout"
        ) from None
    return sorted(name for name in listed.split("\0") if name)


def foreign_files(hashed: list[str], held: list[str]) -> list[str]:
    """Files the fingerprint would read that the repository does not hold."""
    return sorted(set(hashed) - set(held))


def check_pack_source(pack_dir: Path) -> None:
    """Refuse a policy/ whose fingerprint would differ from a clean clone's."""
    extra = foreign_files(hashed_files(pack_dir), repository_files(pack_dir))
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise PackSourceError(
            f"{pack_dir.name}/ holds files the repository does not ({shown}): the published "
            "pack's content hash would differ from a clean clone's and republish its version, "
            f"which Pulumi Cloud refuses; remove them (git clean -fdX {pack_dir.name}/)"
        )


@contextlib.contextmanager
def _importable(pack_dir: Path) -> Iterator[None]:
    """``pack_dir`` importable for a moment, writing no bytecode into it."""
    saved_path, saved_flag = list(sys.path), sys.dont_write_bytecode
    saved_modules = {name: sys.modules.get(name) for name in ("policies", "rules")}
    sys.path.insert(0, str(pack_dir))
    sys.dont_write_bytecode = True
    try:
        for name in saved_modules:
            sys.modules.pop(name, None)
        yield
    finally:
        sys.path[:] = saved_path
        sys.dont_write_bytecode = saved_flag
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def pack_policies(pack_dir: Path, enforcement_level: str) -> list[dict]:
    """Each policy's metadata as the analyzer would report it: name, description, the pack's
    enforcement level (no policy sets its own), and a config schema where it has one."""
    with _importable(pack_dir):
        policies = importlib.import_module("policies").all_policies()
    described = []
    for policy in policies:
        own = getattr(policy, "enforcement_level", None)
        entry = {
            "name": policy.name,
            "description": policy.description,
            "enforcement_level": own.value if own is not None else enforcement_level,
        }
        schema = getattr(policy, "config_schema", None)
        if schema is not None:
            entry["config_schema"] = {"type": "object", "properties": dict(schema.properties)}
            if schema.required:
                entry["config_schema"]["required"] = list(schema.required)
        described.append(entry)
    return described
