"""deploy/run_deployment.py against a Pulumi Cloud stand-in on 127.0.0.1.

The invariants: the deployment is created for exactly the given commit on the documented
endpoint; the job's exit code follows the deployment's final status (only ``succeeded`` is 0),
never the creation call's; a lost status read is retried, a dead API is not waited on forever;
bad arguments and a missing token send nothing.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHA = "0123456789abcdef0123456789abcdef01234567"
ENV = {"PULUMI_ACCESS_TOKEN": "test-token-not-real"}


@pytest.fixture(scope="module")
def rd():
    spec = importlib.util.spec_from_file_location(
        "run_deployment", ROOT / "deploy" / "run_deployment.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Cloud(http.server.BaseHTTPRequestHandler):
    statuses: ClassVar[list] = []  # answers to successive GETs: a status, or an HTTP error code
    requests: ClassVar[list] = []

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


@pytest.fixture
def cloud() -> Iterator[type[_Cloud]]:
    handler = type("Cloud", (_Cloud,), {"statuses": ["succeeded"], "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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
    """POST .../acme/golden-fleet/prod/deployments: update, inherited settings, the commit."""
    assert _main(rd, cloud) == 0
    method, path, headers, body = cloud.requests[0]
    assert (method, path) == ("POST", "/api/stacks/acme/golden-fleet/prod/deployments")
    assert headers["Authorization"] == "token test-token-not-real"
    assert body == {
        "operation": "update",
        "inheritSettings": True,
        "sourceContext": {"git": {"commit": SHA}},
    }
    assert cloud.requests[1][:2] == ("GET", "/api/stacks/acme/golden-fleet/prod/deployments/d-1")


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
    with pytest.raises(rd.DeploymentError, match="d-1 still running after 60 minutes"):
        rd.run(base, "t", SHA, 3600, out=lambda _l: None, sleep=lambda _s: None,
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
