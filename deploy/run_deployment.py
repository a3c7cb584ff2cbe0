"""Run ``pulumi up`` for one stack through Pulumi Deployments, pinned to one commit, and wait.

    python -m deploy.run_deployment --org ORG --stack STACK --commit SHA [--timeout-minutes N]
        [--retry-refresh]

Why not ``pulumi deployment run update``: it builds the branch named in the stack's deployment
settings (main's head, which may be a newer, untested commit), and before pulumi/pulumi#24155
(fixing #24051) it exits 0 when the deployment fails, so a failed staging update would not stop
prod. This script uses the documented Deployments REST API directly:

* ``POST {api}/api/stacks/{org}/{project}/{stack}/deployments`` with ``operation: update``,
  ``inheritSettings: false`` and the whole of deploy/<stack>.deploy.yaml (the settings platform/
  declares for the stack), its ``sourceContext.git`` naming the commit this workflow run tested
  and no branch. Inheriting would merge the stored ``branch`` with the request's ``commit``, which
  SourceContextGitRequest calls "mutually exclusive with branch". The response names the
  deployment (CreateDeploymentResponse: ``id``, ``consoleUrl``, ``version``).
* ``GET .../deployments/{id}`` until its ``status`` is terminal (GetDeploymentResponse status:
  not-started, accepted, running, failed, succeeded, skipped). Only ``succeeded`` exits 0;
  ``failed`` and ``skipped`` (an intermediate deployment dropped) exit 1, and so does the timeout.

``--retry-refresh`` sets ``GF_RETRY_REFRESH=1`` in this one deployment's environment (the
request's ``operationContext.environmentVariables``, beside the file's): the program's instance
refresh then starts again a configuration whose last refresh failed or was rolled back
(release/refresh.py). It is never written into the stack's deployment settings (this script
never writes them; platform/ declares them), and a settings file that sets it is refused, so no
later deployment retries by accident.

The token is read from ``PULUMI_ACCESS_TOKEN`` only, never from the command line. Exit codes:
0 succeeded, 1 the deployment did not succeed (or the API refused or could not be reached),
2 a bad argument or no token.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deploy.settings_file import (
    SettingsError,
    fill_placeholders,
    load_settings,
    pinned_to_commit,
    settings_path,
)
from release.refresh import RETRY_VARIABLE

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"
DEFAULT_API_URL = "https://api.pulumi.com"
TOKEN_ENV = "PULUMI_ACCESS_TOKEN"
TERMINAL = {"succeeded", "failed", "skipped"}
POLL_S = 15.0
READ_ATTEMPTS = 5

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # organization, project and stack names
_SHA = re.compile(r"[0-9a-f]{40}")  # a full commit id: a branch or a short id could move


class DeploymentError(Exception):
    """The deployment could not be created or did not succeed; one line."""


def _name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value) or value in (".", ".."):
        raise argparse.ArgumentTypeError(
            f"{what} {value[:40]!r} is not a valid Pulumi name (1-100 of A-Z a-z 0-9 _ . -)"
        )
    return value


def commit_sha(value: str) -> str:
    if not _SHA.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"--commit {value[:50]!r} is not a full 40-character lowercase hex commit id"
        )
    return value


def project_name(project_file: Path = PROJECT_FILE) -> str:
    for line in project_file.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"name:[ \t]*([A-Za-z0-9_.-]{1,100})[ \t]*", line)
        if match:
            return match.group(1)
    raise DeploymentError(f"{project_file}: no `name:` line")


def deployments_url(api_url: str, org: str, project: str, stack: str) -> str:
    parts = [urllib.parse.quote(_name(v, w), safe="") for v, w in
             ((org, "organization"), (project, "project"), (stack, "stack"))]  # fmt: skip
    return f"{api_url.rstrip('/')}/api/stacks/{'/'.join(parts)}/deployments"


def create_body(
    settings: Mapping[str, Any], commit: str, retry_refresh: bool = False
) -> dict[str, Any]:
    """CreateDeploymentRequest: the stack's whole settings, pinned to ``commit``, not inherited;
    with ``retry_refresh``, ``GF_RETRY_REFRESH=1`` added to this request's environment only."""
    context = settings.get("operationContext") or {}
    if RETRY_VARIABLE in (context.get("environmentVariables") or {}):
        raise DeploymentError(
            f"the settings set operationContext.environmentVariables.{RETRY_VARIABLE}: every "
            f"deployment would start a rolled-back refresh again; remove it and pass "
            f"--retry-refresh to the one deployment that should"
        )
    body = {"operation": "update", "inheritSettings": False, **pinned_to_commit(settings, commit)}
    if retry_refresh:
        context = dict(body.get("operationContext") or {})
        variables = dict(context.get("environmentVariables") or {})
        context["environmentVariables"] = {**variables, RETRY_VARIABLE: "1"}
        body["operationContext"] = context
    return body


def _request(url: str, token: str, body: Any = None, timeout: float = 30.0) -> Any:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={
            "Authorization": f"token {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        detail = error.read()[:300].decode(errors="replace").strip()
        raise DeploymentError(f"{request.method} {url}: HTTP {error.code} {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise DeploymentError(f"{request.method} {url}: {error}") from None


def run(
    base: str,
    token: str,
    settings: Mapping[str, Any],
    commit: str,
    timeout_s: float,
    out: Callable[[str], None] = print,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    poll_s: float | None = None,
    retry_refresh: bool = False,
) -> Mapping[str, Any]:
    """Create the deployment and wait for a terminal status; its last GET answer if it succeeded."""
    sleep = sleep or time.sleep
    poll_s = POLL_S if poll_s is None else poll_s
    body = create_body(settings, commit, retry_refresh)
    if retry_refresh:
        out(f"{RETRY_VARIABLE}=1 for this deployment only: a refresh that failed or was rolled "
            "back is started again")  # fmt: skip
    created = _request(base, token, body)
    deployment = created.get("id")
    if not isinstance(deployment, str) or not _NAME.fullmatch(deployment):
        raise DeploymentError(f"the API answered no usable deployment id: {created!r:.200}")
    out(f"deployment {deployment} (version {created.get('version')}) of commit {commit}")
    if created.get("consoleUrl"):
        out(f"  {created['consoleUrl']}")
    deadline = clock() + timeout_s
    last = None
    failures = 0
    while True:
        try:
            answer = _request(f"{base}/{urllib.parse.quote(deployment, safe='')}", token)
            failures = 0
        except DeploymentError as error:
            # One lost status read must not fail a deployment that is still running.
            failures += 1
            if failures >= READ_ATTEMPTS:
                raise DeploymentError(f"{error} ({failures} reads in a row failed)") from None
            out(f"  could not read the status ({error}); trying again")
            sleep(poll_s)
            continue
        status = answer.get("status")
        if status != last:
            out(f"  status: {status}")
            last = status
        if status == "succeeded":
            return answer
        if status in TERMINAL:
            raise DeploymentError(
                f"deployment {deployment} of {commit} ended {status}"
                + (" (an intermediate deployment was dropped)" if status == "skipped" else "")
            )
        if clock() >= deadline:
            raise DeploymentError(
                f"deployment {deployment} still {status} after {timeout_s / 60:.0f} minutes"
            )
        sleep(poll_s)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--org", required=True, type=lambda v: _name(v, "--org"))
    parser.add_argument("--stack", required=True, type=lambda v: _name(v, "--stack"))
    parser.add_argument("--commit", required=True, type=commit_sha, help="full commit id")
    parser.add_argument("--project", type=lambda v: _name(v, "--project"))
    parser.add_argument("--settings", type=Path,
                        help="settings file (default: deploy/<stack>.deploy.yaml)")  # fmt: skip
    parser.add_argument("--timeout-minutes", type=int, default=110, choices=range(1, 1441),
                        metavar="1-1440")  # fmt: skip
    parser.add_argument(
        "--retry-refresh",
        action="store_true",
        help=f"set {RETRY_VARIABLE}=1 for this deployment only: the program's instance refresh "
        "starts again a configuration whose last refresh failed or was rolled back",
    )
    parser.add_argument(
        "--api-url", default=os.environ.get("PULUMI_BACKEND_URL") or DEFAULT_API_URL
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    env = os.environ if env is None else env
    token = env.get(TOKEN_ENV, "")
    if not token:
        print(f"error: {TOKEN_ENV} is not set (pulumi/auth-actions sets it)", file=sys.stderr)
        return 2
    try:
        path = args.settings or settings_path(args.stack)
        settings = fill_placeholders(load_settings(path), env)
        base = deployments_url(args.api_url, args.org, args.project or project_name(), args.stack)
        run(base, token, settings, args.commit, args.timeout_minutes * 60.0,
            retry_refresh=args.retry_refresh)  # fmt: skip
    except (DeploymentError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"deployment of {args.commit} to {args.stack} succeeded")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
