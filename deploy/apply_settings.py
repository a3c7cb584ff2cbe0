"""Push a stack's Pulumi Deployments settings from ``deploy/<stack>.deploy.yaml`` to Pulumi Cloud.

    python deploy/apply_settings.py deploy/staging.deploy.yaml --org ORG [--dry-run]

The file holds the documented DeploymentSettings object under ``settings:``; this script fills the
``${NAME}`` placeholders from the environment, validates the result against
``deploy/settings.schema.json`` and sends it to the documented "Patch Settings" endpoint,
``POST {api}/api/stacks/{org}/{project}/{stack}/deployments/settings``, with the header
``Authorization: token $PULUMI_ACCESS_TOKEN``. The token is read from the environment only, never
from the command line (where it would land in shell history and process listings).

A placeholder is a whole string value ``${NAME}``; ``${...}`` inside a longer string (a pre-run
shell command) is left for the deployment's shell.

The file is the whole truth. The endpoint *merges* a request into what Pulumi Cloud holds ("for
each property, start with the current value, remove it if the patch specifies null, or merge the
new non-null value": the Patch Settings documentation), so a key deleted from the file would stay
in the cloud for ever. This script therefore reads the current settings first (Get Settings,
``GET`` on the same path), sends ``null`` for every key the file no longer has, and reads the
settings back afterwards: anything that still differs from the file is a failure (exit 1).

``--dry-run`` sends nothing. With a token it reads the current settings and prints the
difference (``+`` added, ``-`` removed, ``~`` changed; secret values masked); without one it
prints the request body as JSON.

The stack defaults to the file name's first part (``staging.deploy.yaml`` -> ``staging``), the
project to the ``name`` in ``Pulumi.yaml`` and the API to ``$PULUMI_BACKEND_URL`` or
``https://api.pulumi.com``. Exit codes: 0 sent (or printed), 1 rejected by the API or unreachable,
2 a bad file, placeholder, argument or missing token.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_PATH = HERE / "settings.schema.json"
PROJECT_FILE = HERE.parent / "Pulumi.yaml"
DEFAULT_API_URL = "https://api.pulumi.com"
TOKEN_ENV = "PULUMI_ACCESS_TOKEN"

_PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
# Organization, project and stack names as Pulumi Cloud accepts them.
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # fullmatch: `$` would let a trailing newline in


class SettingsError(ValueError):
    """A settings file, placeholder or target that cannot make a valid request."""


def load_yaml(path: Path) -> Any:
    from ruamel.yaml import YAML

    try:
        return YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror}") from exc
    except Exception as exc:  # ruamel's parse errors share no public base class
        raise SettingsError(f"{path}: not valid YAML: {exc}") from exc


def fill_placeholders(value: Any, env: Mapping[str, str], where: str = "settings") -> Any:
    """Return ``value`` with every whole-string ``${NAME}`` replaced by ``env[NAME]``."""
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
                    f"{where}: placeholder ${{{name}}} needs the environment variable {name}"
                    " (GitHub Actions sets GITHUB_REPOSITORY; elsewhere export it)"
                )
            return filled
    return value


def build_request_body(document: Any, env: Mapping[str, str]) -> dict[str, Any]:
    """The Patch Settings request body for a parsed file: its ``settings``, placeholders filled."""
    if not isinstance(document, Mapping) or not isinstance(document.get("settings"), Mapping):
        raise SettingsError("the file must hold a mapping with a `settings:` mapping in it")
    extra = sorted(set(document) - {"settings"})
    if extra:
        raise SettingsError(f"unexpected top-level keys {extra}: only `settings:` is sent")
    return fill_placeholders(document["settings"], env)


def schema_problems(document: Any, schema: Mapping[str, Any]) -> list[str]:
    """Every way ``document`` breaks ``schema``, one line each (empty when it validates)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        problems.append(f"{path}: {error.message}")
    return problems


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def settings_url(api_url: str, org: str, project: str, stack: str) -> str:
    for label, name in (("organization", org), ("project", project), ("stack", stack)):
        if not _NAME.fullmatch(name or ""):
            raise SettingsError(f"{label} {name!r} is not a valid Pulumi name")
    parsed = urllib.parse.urlsplit(api_url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise SettingsError(f"API URL {api_url!r} must be an http(s) URL")
    return f"{api_url.rstrip('/')}/api/stacks/{org}/{project}/{stack}/deployments/settings"


def stack_from_path(path: Path) -> str:
    """``deploy/staging.deploy.yaml`` -> ``staging``."""
    name = path.name
    suffix = ".deploy.yaml"
    if not name.endswith(suffix) or name == suffix:
        raise SettingsError(f"{path}: expected a file named <stack>{suffix}, or pass --stack")
    return name[: -len(suffix)]


def project_name(project_file: Path = PROJECT_FILE) -> str:
    project = load_yaml(project_file)
    name = project.get("name") if isinstance(project, Mapping) else None
    if not isinstance(name, str):
        raise SettingsError(f"{project_file}: no project `name`; pass --project")
    return name


def replacement_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch that turns ``current`` into exactly ``desired``: null for every removed key."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        old = current.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            patch[key] = replacement_patch(old, value)
        else:
            patch[key] = value
    for key in current:
        if key not in desired:
            patch[key] = None
    return patch


def merge(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The documented merge: null removes, objects merge, anything else replaces."""
    result = dict(current)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def _shown(value: Any) -> str:
    if isinstance(value, Mapping) and set(value) == {"secret"}:
        return "(secret)"
    return json.dumps(value, sort_keys=True)


def settings_diff(current: Any, desired: Any, path: str = "") -> list[str]:
    """``+ key: value``, ``- key``, ``~ key: old -> new``, one line per leaf that differs."""
    if isinstance(current, Mapping) and isinstance(desired, Mapping):
        lines = []
        for key in sorted(set(current) | set(desired)):
            where = f"{path}.{key}" if path else str(key)
            if key not in desired:
                lines.append(f"- {where}")
            elif key not in current:
                lines.append(f"+ {where}: {_shown(desired[key])}")
            else:
                lines += settings_diff(current[key], desired[key], where)
        return lines
    if current != desired:
        return [f"~ {path}: {_shown(current)} -> {_shown(desired)}"]
    return []


def _request(url: str, token: str, method: str, body: Any = None, timeout: float = 30.0) -> Any:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode("utf-8"),
        method=method,
        headers={
            "Authorization": f"token {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode("utf-8", "replace")
    return json.loads(text) if text.strip() else {}


def get_settings(url: str, token: str, timeout: float = 30.0) -> dict[str, Any]:
    """What Pulumi Cloud holds now; ``{}`` for a stack without settings (404)."""
    try:
        current = _request(url, token, "GET", timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise SettingsError(f"Pulumi Cloud answered {exc.code} {exc.reason}: {detail}") from exc
    except json.JSONDecodeError as exc:
        raise SettingsError(f"Pulumi Cloud's settings are not JSON ({exc})") from exc
    if not isinstance(current, dict):
        raise SettingsError("Pulumi Cloud's settings are not a JSON object")
    return current


def post_settings(url: str, body: Mapping[str, Any], token: str, timeout: float = 30.0) -> str:
    """POST the body; return the response text. Raises ``SettingsError`` on an HTTP error."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        method="POST",
        headers={
            "Authorization": f"token {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise SettingsError(f"Pulumi Cloud answered {exc.code} {exc.reason}: {detail}") from exc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Push deploy/<stack>.deploy.yaml to Pulumi Cloud's deployment settings. "
        f"The token comes from ${TOKEN_ENV} only."
    )
    parser.add_argument("settings_file", type=Path, help="deploy/<stack>.deploy.yaml")
    parser.add_argument(
        "--org",
        default=os.environ.get("PULUMI_ORG"),
        help="Pulumi Cloud organization (default: $PULUMI_ORG)",
    )
    parser.add_argument("--project", help="project name (default: `name` in Pulumi.yaml)")
    parser.add_argument("--stack", help="stack name (default: from the file name)")
    parser.add_argument(
        "--api-url",
        default=os.environ.get("PULUMI_BACKEND_URL") or DEFAULT_API_URL,
        help=f"Pulumi Cloud API (default: $PULUMI_BACKEND_URL or {DEFAULT_API_URL})",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the JSON request body and send nothing"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    env = os.environ if env is None else env
    try:
        document = load_yaml(args.settings_file)
        problems = schema_problems(document, load_schema())
        if problems:
            raise SettingsError(
                f"{args.settings_file} does not match deploy/settings.schema.json:\n  "
                + "\n  ".join(problems)
            )
        body = build_request_body(document, env)
        problems = schema_problems({"settings": body}, load_schema())
        if problems:
            raise SettingsError("after filling placeholders:\n  " + "\n  ".join(problems))
        token = env.get(TOKEN_ENV, "")
        if args.dry_run and not token:
            print(json.dumps(body, indent=2, sort_keys=True))
            print(
                f"apply_settings: difference to Pulumi Cloud not shown: ${TOKEN_ENV} is not set",
                file=sys.stderr,
            )
            return 0
        if not args.org:
            raise SettingsError("no organization: pass --org or set PULUMI_ORG")
        url = settings_url(
            args.api_url,
            args.org,
            args.project or project_name(),
            args.stack or stack_from_path(args.settings_file),
        )
        if not token:
            raise SettingsError(
                f"${TOKEN_ENV} is not set: log in with pulumi/auth-actions in CI, or export a token"
            )
    except SettingsError as exc:
        print(f"apply_settings: {exc}", file=sys.stderr)
        return 2
    try:
        current = get_settings(url, token)
        difference = settings_diff(current, body)
        if args.dry_run:
            print("\n".join(difference) or "no difference: Pulumi Cloud holds exactly the file")
            return 0
        post_settings(url, replacement_patch(current, body), token)
        left = settings_diff(get_settings(url, token), body)
    except (SettingsError, urllib.error.URLError, OSError) as exc:
        print(f"apply_settings: {url}: {exc}", file=sys.stderr)
        return 1
    if left:
        print(
            f"apply_settings: {url}: after the update Pulumi Cloud still differs from "
            f"{args.settings_file}:\n  " + "\n  ".join(left),
            file=sys.stderr,
        )
        return 1
    for line in difference:
        print(f"  {line}")
    print(
        f"apply_settings: {url} now holds exactly {args.settings_file} "
        f"({len(difference)} change(s))"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
