"""deploy/run_deployment.py against a Pulumi Cloud stand-in on 127.0.0.1.

The stand-in models the documented schema, not just this script: it holds the stack's settings
as Pulumi Cloud returns them (DeploymentSettings, with the server-managed ``version``), accepts
only CreateDeploymentRequest's fields, merges the request into the stored settings unless
``inheritSettings`` is false, and refuses a source naming both a branch and a commit
(SourceContextGitRequest: "Mutually exclusive with branch"), so a request the real API would
refuse fails here.

The invariants: the deployment is created for exactly the given commit on the documented
endpoint, with the stack's whole settings file and no branch; the job's exit code follows the
deployment's final status (only ``succeeded`` is 0), never the creation call's; a lost status
read is retried, a dead API is not waited on forever; bad arguments and a missing token send
nothing.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from deploy import run_deployment, settings_file

ROOT = Path(__file__).resolve().parent.parent
SHA = "0123456789abcdef0123456789abcdef01234567"
ENV = {"PULUMI_ACCESS_TOKEN": "test-token-not-real", "GITHUB_REPOSITORY": "acme/golden-fleet"}

# CreateDeploymentRequest's properties (Pulumi Cloud REST API reference, schema
# CreateDeploymentRequest); anything else, `version` included, is refused.
CREATE_FIELDS = {
    "operation", "tag", "executorContext", "executorImage", "executorRootPath",
    "inheritSettings", "sourceContext", "gitHub", "operationContext", "cacheOptions",
    "agentPoolID",
}  # fmt: skip
OPERATIONS = {"update", "preview", "destroy", "refresh", "detect-drift", "remediate-drift"}
# OperationContext.environmentVariables (deploy/settings.schema.json, from Pulumi's reference):
# names a shell can hold; these are set by Pulumi Deployments itself.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV = {
    "PULUMI_CI_BUILD_URL", "PULUMI_CI_SYSTEM", "PULUMI_CI_BUILD_NUMBER", "PULUMI_CI_BUILD_ID",
    "PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL",
}  # fmt: skip


@pytest.fixture(scope="module")
def rd():
    return run_deployment


def stored_settings(stack: str) -> dict:
    """The stack's settings as Pulumi Cloud answers them: the file's, plus what the server
    manages (DeploymentSettings.version)."""
    settings = settings_file.fill_placeholders(
        settings_file.load_settings(settings_file.settings_path(stack)), ENV
    )
    return {**settings, "version": 4}


def _merged(stored: dict, request: dict) -> dict:
    out = dict(stored)
    for key, value in request.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def refusal(stored: dict, body: dict) -> str | None:
    """Why Pulumi Cloud's documented schema refuses ``body`` (None: accepted)."""
    unknown = sorted(set(body) - CREATE_FIELDS)
    if unknown:
        return f"unknown fields {unknown}"
    if body.get("operation") not in OPERATIONS:
        return f"operation {body.get('operation')!r}"
    request = {k: v for k, v in body.items() if k not in ("operation", "inheritSettings")}
    inherit = body.get("inheritSettings", True)  # "Defaults to true."
    server_side = {k: v for k, v in stored.items() if k != "version"}
    effective = _merged(server_side, request) if inherit else request
    git = (effective.get("sourceContext") or {}).get("git") or {}
    if "branch" in git and "commit" in git:
        return "sourceContext.git: commit is mutually exclusive with branch"
    if "branch" not in git and "commit" not in git:
        return "sourceContext.git: a branch or a commit is required"
    repository = (effective.get("gitHub") or {}).get("repository")
    if bool(repository) == bool(git.get("repoUrl")):
        return "exactly one of gitHub.repository and sourceContext.git.repoUrl"
    if not (effective.get("operationContext") or {}).get("oidc"):
        return "no AWS credentials for the deployment (operationContext.oidc)"
    variables = (effective.get("operationContext") or {}).get("environmentVariables") or {}
    for name, value in variables.items():
        if not ENV_NAME.fullmatch(name) or name in RESERVED_ENV:
            return f"operationContext.environmentVariables: {name!r} may not be set"
        if not isinstance(value, str) and set(value) != {"secret"}:
            return f"operationContext.environmentVariables.{name}: a string or a secret"
    return None


class _Cloud(http.server.BaseHTTPRequestHandler):
    statuses: ClassVar[list] = []  # answers to successive GETs: a status, or an HTTP error code
    requests: ClassVar[list] = []
    stored: ClassVar[dict] = {}  # the stack's settings as the service holds them

    def _answer(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        type(self).requests.append(("POST", self.path, dict(self.headers), body))
        if self.path.endswith("/deployments/settings"):
            # The one call that changes the stack's stored settings (a deployment never does).
            type(self).stored = {**_merged(type(self).stored, body), "version": 5}
            self._answer(200, type(self).stored)
            return
        why = refusal(type(self).stored, body)
        if why:
            self._answer(400, {"code": 400, "message": why})
            return
        self._answer(202, {"id": "d-1", "consoleUrl": "https://console.invalid/d-1", "version": 7})

    def do_GET(self):
        type(self).requests.append(("GET", self.path, dict(self.headers), None))
        answer = type(self).statuses.pop(0) if len(type(self).statuses) > 1 else self.statuses[0]
        if isinstance(answer, int):
            self._answer(answer, {"message": "unavailable"})
        else:
            self._answer(200, {"id": "d-1", "status": answer})

    def log_message(self, *args):
        pass


def rd_body(stack: str) -> dict:
    """What run_deployment sends for ``stack`` without a retry."""
    settings = settings_file.fill_placeholders(
        settings_file.load_settings(settings_file.settings_path(stack)), ENV
    )
    return run_deployment.create_body(settings, SHA)


@pytest.fixture
def cloud() -> Iterator[type[_Cloud]]:
    handler = type(
        "Cloud",
        (_Cloud,),
        {"statuses": ["succeeded"], "requests": [], "stored": stored_settings("prod")},
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll: shutdown() waits for serve_forever to see it (0.5 s by default, per test).
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _main(rd, cloud, *extra, env=ENV):
    argv = ["--org", "acme", "--stack", "prod", "--commit", SHA, "--api-url", cloud.url, *extra]
    return rd.main(argv, env=env)


@pytest.fixture(autouse=True)
def _no_real_waiting(rd, monkeypatch):
    monkeypatch.setattr(rd, "POLL_S", 0.0)  # polls back to back: the stand-in answers at once


def test_the_deployment_is_created_for_exactly_the_given_commit(rd, cloud):
    """POST .../acme/golden-fleet/prod/deployments: update, the whole settings file, the commit
    and no branch, nothing inherited; the stand-in accepts it."""
    assert _main(rd, cloud) == 0
    method, path, headers, body = cloud.requests[0]
    assert (method, path) == ("POST", "/api/stacks/acme/golden-fleet/prod/deployments")
    assert headers["Authorization"] == "token test-token-not-real"
    assert body["operation"] == "update"
    assert body["inheritSettings"] is False
    assert body["sourceContext"]["git"] == {"commit": SHA}
    file = settings_file.fill_placeholders(
        settings_file.load_settings(settings_file.settings_path("prod")), ENV
    )
    assert body["operationContext"] == file["operationContext"]
    assert body["gitHub"] == file["gitHub"] == {**file["gitHub"], "repository": "acme/golden-fleet"}
    assert cloud.requests[1][:2] == ("GET", "/api/stacks/acme/golden-fleet/prod/deployments/d-1")


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_stack_request_is_accepted_by_the_documented_schema(rd, stack):
    """For each settings file, the body run_deployment sends passes the schema-faithful check
    against that stack's stored settings (server-managed `version` included)."""
    settings = settings_file.fill_placeholders(
        settings_file.load_settings(settings_file.settings_path(stack)), ENV
    )
    assert refusal(stored_settings(stack), rd.create_body(settings, SHA)) is None


@pytest.mark.parametrize(
    "body, reason",
    [
        # The request this script used to send: the stored branch is inherited beside the commit.
        ({"operation": "update", "inheritSettings": True,
          "sourceContext": {"git": {"commit": SHA}}}, "mutually exclusive with branch"),
        # Sending the settings as read back, server-managed version and all.
        ({**stored_settings("prod"), "operation": "update", "inheritSettings": False},
         r"unknown fields \['version'\]"),
        # An environment variable Pulumi Deployments sets itself.
        ({**rd_body("prod"), "operationContext": {**rd_body("prod")["operationContext"],
          "environmentVariables": {"PULUMI_ACCESS_TOKEN": "x"}}}, "'PULUMI_ACCESS_TOKEN' may not"),
        ({"operation": "update", "inheritSettings": False,
          "sourceContext": {"git": {"commit": SHA}}}, "gitHub.repository"),
    ],
)  # fmt: skip
def test_the_stand_in_refuses_what_the_real_api_refuses(
    rd, cloud, capsys, monkeypatch, body, reason
):
    """A branch beside the commit, a server-managed field, no repository: HTTP 400 naming the
    cause, and the job exits 1 without polling."""
    assert re.search(reason, refusal(cloud.stored, body) or "")
    monkeypatch.setattr(rd, "create_body", lambda *_: body)
    assert _main(rd, cloud) == 1
    err = capsys.readouterr().err
    assert "HTTP 400" in err and re.search(reason, err)
    assert [r[0] for r in cloud.requests] == ["POST"]


@pytest.mark.parametrize("flag", [False, True])
def test_a_retry_reaches_only_the_one_deployment_that_asks_for_it(rd, cloud, capsys, flag):
    """--retry-refresh: GF_RETRY_REFRESH=1 in this request's operationContext.environmentVariables,
    the file's own variables kept; without it, no such variable. Either way the stand-in accepts
    the request and the stack's stored settings are not touched (no settings call)."""
    before = json.loads(json.dumps(cloud.stored))
    assert _main(rd, cloud, *(["--retry-refresh"] if flag else [])) == 0
    posts = [(path, body) for method, path, _h, body in cloud.requests if method == "POST"]
    assert [path for path, _ in posts] == ["/api/stacks/acme/golden-fleet/prod/deployments"]
    variables = posts[0][1]["operationContext"].get("environmentVariables") or {}
    assert ("GF_RETRY_REFRESH" in variables) is flag
    if flag:
        assert variables["GF_RETRY_REFRESH"] == "1"
        assert "GF_RETRY_REFRESH=1 for this deployment only" in capsys.readouterr().out
    assert cloud.stored == before
    assert "GF_RETRY_REFRESH" not in json.dumps(cloud.stored)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_retry_keeps_the_files_own_variables_and_is_accepted(rd, stack):
    settings = settings_file.fill_placeholders(
        settings_file.load_settings(settings_file.settings_path(stack)), ENV
    )
    own = settings["operationContext"].get("environmentVariables") or {}
    body = rd.create_body(settings, SHA, retry_refresh=True)
    assert body["operationContext"]["environmentVariables"] == {**own, "GF_RETRY_REFRESH": "1"}
    assert "GF_RETRY_REFRESH" not in json.dumps(settings), "the settings read are not changed"
    assert "GF_RETRY_REFRESH" not in json.dumps(rd.create_body(settings, SHA))
    assert refusal(stored_settings(stack), body) is None


def test_a_settings_file_that_sets_the_retry_is_refused_before_anything_is_sent(
    rd, cloud, capsys, tmp_path
):
    """Persisted in the settings, every deployment would retry a rolled-back refresh."""
    text = settings_file.settings_path("prod").read_text(encoding="utf-8")
    persisted = text.replace(
        "  operationContext:\n",
        '  operationContext:\n    environmentVariables:\n      GF_RETRY_REFRESH: "1"\n',
        1,
    )
    assert persisted != text
    path = tmp_path / "prod.deploy.yaml"
    path.write_text(persisted, encoding="utf-8")
    assert _main(rd, cloud, "--settings", str(path)) == 1
    err = capsys.readouterr().err
    assert "GF_RETRY_REFRESH" in err and "--retry-refresh" in err
    assert cloud.requests == []


@pytest.mark.parametrize(
    "statuses, code",
    [
        (["not-started", "accepted", "running", "succeeded"], 0),
        (["running", "failed"], 1),
        (["accepted", "skipped"], 1),
    ],
)
def test_the_exit_code_follows_the_final_status(rd, cloud, capsys, statuses, code):
    """Only `succeeded` passes; `failed` and `skipped` fail the job after a 202 create."""
    cloud.statuses = list(statuses)
    assert _main(rd, cloud) == code
    out, err = capsys.readouterr()
    assert f"status: {statuses[-1]}" in out
    if code:
        assert f"ended {statuses[-1]}" in err


def test_a_lost_status_read_is_retried(rd, cloud):
    """One 503 while polling does not fail a deployment that then succeeds."""
    cloud.statuses = ["running", 503, "running", "succeeded"]
    assert _main(rd, cloud) == 0


def test_an_api_that_keeps_failing_fails_the_job(rd, cloud, capsys):
    """Five failed reads in a row: exit 1 naming the HTTP status."""
    cloud.statuses = [503]
    assert _main(rd, cloud) == 1
    assert "HTTP 503" in capsys.readouterr().err


def test_a_deployment_that_never_ends_times_out(rd, cloud, capsys):
    """Still running at the deadline: exit 1, the deployment and its status named."""
    cloud.statuses = ["running"]
    ticks = iter(range(0, 10_000, 600))
    base = rd.deployments_url(cloud.url, "acme", "golden-fleet", "prod")
    settings = stored_settings("prod")
    settings.pop("version")
    with pytest.raises(rd.DeploymentError, match="d-1 still running after 60 minutes"):
        rd.run(base, "t", settings, SHA, 3600, out=lambda _l: None, sleep=lambda _s: None,
               clock=lambda: next(ticks))  # fmt: skip


@pytest.mark.parametrize(
    "commit", ["main", "0123456", SHA.upper(), SHA + "\n", SHA[:-1] + "g", "HEAD~1"]
)
def test_only_a_full_commit_id_is_accepted(rd, cloud, commit):
    """A branch, a short or upper-case id, or a trailing newline: exit 2, nothing sent."""
    with pytest.raises(SystemExit) as exit_:
        rd.main(["--org", "acme", "--stack", "prod", "--commit", commit, "--api-url", cloud.url],
                env=ENV)  # fmt: skip
    assert exit_.value.code == 2
    assert cloud.requests == []


def test_without_a_token_nothing_is_sent(rd, cloud, capsys):
    assert _main(rd, cloud, env={}) == 2
    assert "PULUMI_ACCESS_TOKEN" in capsys.readouterr().err
    assert cloud.requests == []


@pytest.mark.parametrize("org", ["acme/../x", "", "a b"])
def test_names_that_would_change_the_url_are_refused(rd, cloud, org):
    with pytest.raises(SystemExit):
        rd.main(["--org", org, "--stack", "prod", "--commit", SHA, "--api-url", cloud.url], env=ENV)
    assert cloud.requests == []
