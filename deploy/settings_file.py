"""One stack's Pulumi Deployments settings, read from deploy/<stack>.deploy.yaml.

The file is the whole truth about a stack's settings, and two readers use it through this
module only: platform/ declares it as the stack's ``DeploymentSettings`` resource, and
deploy/run_deployment.py sends it, with the commit in place of the branch, in every deployment
request (``inheritSettings: false``). Imports nothing heavy (ruamel.yaml, lazily, through
components/bounded_yaml.py: the bounds every reader of these files keeps).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SETTINGS_DIR = Path(__file__).resolve().parent
_PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


class SettingsError(ValueError):
    """A settings file or placeholder that cannot make valid settings; one line."""


def settings_path(stack: str) -> Path:
    return SETTINGS_DIR / f"{stack}.deploy.yaml"


def load_settings(path: Path) -> dict[str, Any]:
    """The ``settings:`` mapping of a settings file (the only top-level key allowed)."""
    from components import bounded_yaml

    try:
        document = bounded_yaml.safe_load(bounded_yaml.read_text(path, str(path)), str(path))
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror}") from exc
    except bounded_yaml.InputLimitError as exc:  # size, aliases, depth: names file and rule
        raise SettingsError(str(exc)) from exc
    except Exception as exc:  # ruamel's parse errors share no public base class
        raise SettingsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("settings"), Mapping):
        raise SettingsError(f"{path}: must hold a mapping with a `settings:` mapping in it")
    extra = sorted(set(document) - {"settings"})
    if extra:
        raise SettingsError(f"{path}: unexpected top-level keys {extra}: only `settings:`")
    return dict(document["settings"])


def fill_placeholders(value: Any, env: Mapping[str, str], where: str = "settings") -> Any:
    """``value`` with every whole-string ``${NAME}`` replaced by ``env[NAME]`` (which must be set).

    Only whole strings: ``${PACKER_VERSION}`` inside a pre-run command is the deployment's shell's.
    """
    if isinstance(value, Mapping):
        return {k: fill_placeholders(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [fill_placeholders(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        match = _PLACEHOLDER.fullmatch(value)
        if match:
            name = match.group(1)
            filled = env.get(name, "")
            if not filled:
                raise SettingsError(
                    f"{where}: placeholder ${{{name}}} needs the value of {name}"
                    " (GitHub Actions sets GITHUB_REPOSITORY)"
                )
            return filled
    return value


def pinned_to_commit(settings: Mapping[str, Any], commit: str) -> dict[str, Any]:
    """The settings with ``sourceContext.git`` naming ``commit`` and no branch.

    SourceContextGitRequest: "commit: The commit hash to deploy. Mutually exclusive with branch."
    """
    pinned = copy.deepcopy(dict(settings))
    git = dict(pinned.get("sourceContext", {}).get("git") or {})
    git.pop("branch", None)
    git["commit"] = commit
    pinned["sourceContext"] = {**pinned.get("sourceContext", {}), "git": git}
    return pinned
