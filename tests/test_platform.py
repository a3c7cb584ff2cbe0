"""platform/ under Pulumi's mock engine, on its real stack file (platform/Pulumi.org.yaml).

What it registers (settings per stack from deploy/<stack>.deploy.yaml, drift checks, the pack
and its groups, OIDC providers, roles and their documents), what never changes between two
runs, and that bad config is refused with the key named. The role documents are plain
functions, tested without the runtime too.
"""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest
from harness import _encode_config, _sync_await, load_stack_config, run_program, stack_file
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings

from deploy.settings_file import fill_placeholders, load_settings, settings_path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "platform"


@pytest.fixture(autouse=True)
def _platform_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLATFORM))
    yield
    for name in [m for m in sys.modules if m == "bootstrap" or m.startswith("bootstrap.")]:
        del sys.modules[name]


_checkout: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def _clean_checkout(tmp_path_factory):
    """The repository's tracked files, copied as a clean clone has them, for the platform to run
    from: policy/ in the working tree may hold a venv or bytecode the tests made, which the
    platform refuses (bootstrap/pack_source.py), as it should."""
    copy = tmp_path_factory.mktemp("checkout")
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                             check=True).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    subprocess.run(["git", "init", "-q", str(copy)], check=True)
    subprocess.run(["git", "-C", str(copy), "add", "-A"], check=True)
    _checkout["root"] = copy
    yield copy
    _checkout.clear()


def platform_config() -> dict:
    return load_stack_config(PLATFORM / "Pulumi.org.yaml")


class PlatformMocks(pulumi.runtime.Mocks):
    """ARNs in the account of the resource's AWS provider (its allowedAccountIds)."""

    def __init__(self):
        self.accounts: dict[str, str] = {}
        self.registered: dict[str, tuple[str, dict, str | None]] = {}

    def new_resource(self, args):
        inputs = dict(args.inputs)
        state = dict(inputs)
        self.registered[args.name] = (args.typ, inputs, args.provider)
        rid = f"{args.name}-id"
        if args.typ == "pulumi:providers:aws":
            urn = f"{args.name}"
            self.accounts[urn] = (
                json.loads(inputs["allowedAccountIds"])[0]
                if isinstance(inputs["allowedAccountIds"], str)
                else inputs["allowedAccountIds"][0]
            )
            return rid, state
        account = next(
            (a for u, a in self.accounts.items() if args.provider and f"::{u}::" in args.provider),
            "000000000000",
        )
        if args.typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{account}:role/{inputs['name']}"
        if args.typ == "aws:dynamodb/table:Table":
            state["arn"] = f"arn:aws:dynamodb:eu-west-1:{account}:table/{inputs['name']}"
        if args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = inputs["url"].removeprefix("https://")
            state["arn"] = f"arn:aws:iam::{account}:oidc-provider/{host}"
        return rid, state

    def call(self, args):
        return {}


async def _resolve(value):
    if isinstance(value, pulumi.Output):
        return await _resolve(await value.future())
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    return value


def run_platform(config: dict, mocks: PlatformMocks | None = None) -> tuple[PlatformMocks, dict]:
    mocks = mocks if mocks is not None else PlatformMocks()
    pulumi_settings.reset_options()
    pulumi.runtime.set_all_config(_encode_config(config))
    pulumi_mocks.set_mocks(mocks, project="golden-fleet-platform", stack="org", preview=False)

    def program() -> None:
        runpy.run_path(str(_checkout["root"] / "platform" / "__main__.py"), run_name="__main__")

    try:
        _sync_await(pulumi.runtime.stack.run_pulumi_func(program))
        root = pulumi_settings.get_root_resource()
        outputs = _sync_await(_resolve(root.outputs)) if root else {}
    finally:
        pulumi_settings.reset_options()
        pulumi.runtime.set_all_config({})
    return mocks, outputs


@pytest.fixture(scope="module")
def platform_run():
    sys.path.insert(0, str(PLATFORM))
    try:
        return run_platform(platform_config())
    finally:
        sys.path.remove(str(PLATFORM))
        for name in [m for m in sys.modules if m == "bootstrap" or m.startswith("bootstrap.")]:
            del sys.modules[name]


def _of(mocks, token):
    return {n: i for n, (t, i, _p) in mocks.registered.items() if t == token}


def _doc(value):
    return json.loads(value) if isinstance(value, str) else value


def test_each_stack_gets_its_settings_file_whole_and_a_drift_check(platform_run):
    """DeploymentSettings per stack carry the file's branch, repository, commands, options and
    OIDC role; the drift check reports and never remediates."""
    mocks, _ = platform_run
    settings = _of(mocks, "pulumiservice:index:DeploymentSettings")
    assert sorted(settings) == ["prod-deployments-settings", "staging-deployments-settings"]
    for stack in ("staging", "prod"):
        file = fill_placeholders(load_settings(settings_path(stack)),
                                 {"GITHUB_REPOSITORY": "acme/golden-fleet"})  # fmt: skip
        got = settings[f"{stack}-deployments-settings"]
        where = (got["organization"], got["project"], got["stack"])
        assert where == ("acme", "golden-fleet", stack)
        assert got["sourceContext"]["git"]["branch"] == file["sourceContext"]["git"]["branch"]
        assert got["vcs"]["repository"] == "acme/golden-fleet"
        assert got["vcs"]["deployCommits"] is False and got["vcs"]["previewPullRequests"] is False
        op, want = got["operationContext"], file["operationContext"]
        assert op["preRunCommands"] == want["preRunCommands"]
        assert op["options"]["skipIntermediateDeployments"] is False
        assert op["oidc"]["aws"]["roleARN"] == want["oidc"]["aws"]["roleArn"]
        assert op["oidc"]["aws"]["duration"] == want["oidc"]["aws"]["duration"]
        assert op.get("environmentVariables") == want.get("environmentVariables")
    drift = _of(mocks, "pulumiservice:index:DriftSchedule")
    assert {d["stack"] for d in drift.values()} == {"staging", "prod"}
    assert all(d["autoRemediate"] is False for d in drift.values()), drift


def test_the_pack_is_mandatory_on_prod_and_advisory_on_staging(platform_run):
    """One pack published from policy/; one preventative group per stack with that stack's
    policy/<stack>.json (prod: all mandatory)."""
    mocks, _ = platform_run
    (pack,) = _of(mocks, "pulumiservice:index:PolicyPack").values()
    assert pack["name"] == "golden-fleet"
    assert Path(pack["sourcePath"]) == _checkout["root"] / "policy"
    groups = _of(mocks, "pulumiservice:index:PolicyGroup")
    for stack, level in (("prod", "mandatory"), ("staging", "advisory")):
        group = groups[f"guardrails-{stack}"]
        assert group["mode"] == "preventative"
        assert group["stacks"] == [{"name": stack, "routingProject": "golden-fleet"}]
        (ref,) = group["policyPacks"]
        assert ref["name"] == "golden-fleet" and ref["versionTag"] == pack["versionTag"]
        assert ref["config"]["all"] == level


def test_roles_trust_only_their_issuer_subject_and_audience(platform_run):
    """Deploy roles trust Pulumi's issuer for their own stack; GitHub roles trust this
    repository's environment (rollout, prune) or its pull requests (preview)."""
    mocks, _ = platform_run
    roles = _of(mocks, "aws:iam/role:Role")

    def cond(name):
        return _doc(roles[name]["assumeRolePolicy"])["Statement"][0]["Condition"]

    assert cond("prod-access-deploy")["StringLike"]["api.pulumi.com/oidc:sub"] == [
        "pulumi:deploy:org:acme:project:golden-fleet:stack:prod:*"
    ]
    assert cond("prod-access-deploy")["StringEquals"]["api.pulumi.com/oidc:aud"] == "acme"
    gh = "token.actions.githubusercontent.com"
    assert cond("prod-access-rollout")["StringLike"][f"{gh}:sub"] == [
        "repo:acme/golden-fleet:environment:production"
    ]
    assert cond("staging-access-preview")["StringLike"][f"{gh}:sub"] == [
        "repo:acme/golden-fleet:environment:staging",
        "repo:acme/golden-fleet:pull_request",
    ]
    assert cond("staging-access-prune")["StringEquals"][f"{gh}:aud"] == "sts.amazonaws.com"
    principal = _doc(roles["prod-access-deploy"]["assumeRolePolicy"])["Statement"][0]["Principal"]
    assert principal["Federated"] == "arn:aws:iam::222222222222:oidc-provider/api.pulumi.com/oidc"


def test_every_permission_is_written_out_and_preview_only_reads(platform_run):
    mocks, _ = platform_run
    policies = _of(mocks, "aws:iam/rolePolicy:RolePolicy")
    # staging 5 (with prune), prod 4 (with usage), and each rollout role's release lock
    assert len(policies) == 11, sorted(policies)

    managed = _of(mocks, "aws:iam/policy:Policy")

    def actions_of(name):
        """The role's inline policy and the managed ones the platform attaches to it."""
        role = name.removesuffix("-policy")
        documents = [policies[name]] + [
            m for n, m in managed.items() if n.startswith(f"{role}-") and "-boundary" not in n
        ]
        return {a for d in documents for s in _doc(d["policy"])["Statement"] for a in s["Action"]}

    for name in policies:
        actions = actions_of(name)
        assert actions and not [a for a in actions if "*" in a], name
        if "preview" in name or "prune-read" in name or "image-usage" in name:
            verbs = {a.split(":")[1] for a in actions}
            assert all(v.startswith(("Describe", "Get", "List")) for v in verbs), (name, verbs)
    assert "ec2:DeregisterImage" in actions_of("staging-access-prune-policy")
    staging = actions_of("staging-access-deploy-policy")
    prod = actions_of("prod-access-deploy-policy")
    assert "ec2:CreateImage" in staging and "ec2:CreateImage" not in prod  # prod never bakes
    for stack in ("staging", "prod"):  # the rollout's canary analysis (release/metrics.py)
        rollout = _doc(policies[f"{stack}-access-rollout-policy"]["policy"])["Statement"][0]
        assert "cloudwatch:GetMetricData" in rollout["Action"], stack


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_sessions_outlast_the_stacks_waits(platform_run, stack):
    """The deploy role's MaxSessionDuration covers the settings' session, which covers the
    stack's health.refreshTimeout (prod: 5400 s); the rollout role allows the job's 4 hours."""
    mocks, _ = platform_run
    from bootstrap.iam_documents import duration_seconds

    roles = _of(mocks, "aws:iam/role:Role")
    session = duration_seconds(
        load_settings(settings_path(stack))["operationContext"]["oidc"]["aws"]["duration"]
    )
    refresh = load_stack_config(stack_file(stack))["golden-fleet:health"]["refreshTimeout"]
    assert roles[f"{stack}-access-deploy"]["maxSessionDuration"] >= session >= refresh
    assert roles[f"{stack}-access-rollout"]["maxSessionDuration"] == 14400


def test_the_deploy_roles_are_the_ones_the_settings_files_name(platform_run):
    mocks, outputs = platform_run
    roles = _of(mocks, "aws:iam/role:Role")
    for stack, account in (("staging", "111111111111"), ("prod", "222222222222")):
        arn = load_settings(settings_path(stack))["operationContext"]["oidc"]["aws"]["roleArn"]
        assert arn == f"arn:aws:iam::{account}:role/{roles[f'{stack}-access-deploy']['name']}"
    variables = outputs["repositoryVariables"]
    assert variables["PROD_ROLLOUT_ROLE_ARN"] == (
        "arn:aws:iam::222222222222:role/golden-fleet-prod-rollout"
    )
    workflows = "".join(p.read_text() for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    for name in variables:
        assert f"vars.{name}" in workflows, f"{name} is exported but no workflow reads it"


def test_the_roles_cover_every_type_the_main_program_registers():
    """ACTIONS_BY_TYPE has an entry for each AWS type either stack registers, and none stale."""
    from bootstrap.iam_documents import ACTIONS_BY_TYPE

    types = set()
    for stack in ("staging", "prod"):
        run = run_program(load_stack_config(stack_file(stack)), stack=stack)
        types |= {r.type_ for r in run.resources.values() if r.type_.startswith("aws:")}
    assert types - set(ACTIONS_BY_TYPE) == set()
    assert set(ACTIONS_BY_TYPE) - types == set()


def test_two_runs_register_the_same(platform_run):
    """Nothing depends on time or order: a second run registers identical inputs."""
    first, _ = platform_run
    sys.path.insert(0, str(PLATFORM))
    try:
        second, _ = run_platform(platform_config())
    finally:
        sys.path.remove(str(PLATFORM))
    assert first.registered.keys() == second.registered.keys()
    for name, (token, inputs, _p) in first.registered.items():
        assert second.registered[name][:2] == (token, inputs), name


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("golden-fleet-platform:stacks", {"staging": {}}, r"golden-fleet-platform:stacks"),
        ("golden-fleet-platform:driftSchedule", "hourly", r"golden-fleet-platform:driftSchedule"),
        ("golden-fleet-platform:repository", "golden-fleet", r"golden-fleet-platform:repository"),
        ("golden-fleet-platform:colour", "x", r"golden-fleet-platform:colour"),
    ],
)
def test_bad_config_is_refused_with_the_key_named(key, value, match):
    config = platform_config()
    config[key] = value
    with pytest.raises(Exception, match=match):
        run_platform(config)


def test_prod_must_be_mandatory_and_accounts_must_match_the_settings_files():
    config = platform_config()
    config["golden-fleet-platform:stacks"]["prod"]["enforcement"] = "advisory"
    with pytest.raises(Exception, match=r"stacks: .*prod's enforcement must be mandatory"):
        run_platform(config)
    config = platform_config()
    config["golden-fleet-platform:stacks"]["prod"]["accountId"] = "333333333333"
    with pytest.raises(Exception, match=r"stacks\.prod\.accountId: 333333333333 is not the"):
        run_platform(config)


def test_each_account_is_reached_through_its_own_admin_role(platform_run):
    """Ambient credentials are one account: each stack's provider assumes that account's admin
    role (by default the one AWS Organizations creates), and is refused any other account."""
    mocks, _ = platform_run
    providers = _of(mocks, "pulumi:providers:aws")
    assert sorted(providers) == ["prod-aws", "staging-aws"]
    for stack, account in (("staging", "111111111111"), ("prod", "222222222222")):
        provider = providers[f"{stack}-aws"]
        allowed = _doc(provider["allowedAccountIds"])
        (assumed,) = _doc(provider["assumeRoles"])
        assert allowed == [account], provider
        assert assumed["roleArn"] == f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
        assert assumed["sessionName"] == f"golden-fleet-platform-{stack}"
    # Every AWS resource goes through one of them, and lands in that provider's account.
    for name, (token, _inputs, provider) in mocks.registered.items():
        if token.startswith("aws:"):
            assert provider and "pulumi:providers:aws::" in provider, name
            stack = "staging" if "staging-aws" in provider else "prod"
            assert name.startswith(f"{stack}-"), (name, provider)


def test_a_named_admin_role_is_assumed_and_must_be_in_its_account():
    config = platform_config()
    role = "arn:aws:iam::222222222222:role/platform/GoldenFleetBootstrap"
    config["golden-fleet-platform:stacks"]["prod"]["adminRoleArn"] = role
    mocks, _ = run_platform(config)
    (assumed,) = _doc(_of(mocks, "pulumi:providers:aws")["prod-aws"]["assumeRoles"])
    assert assumed["roleArn"] == role
    config["golden-fleet-platform:stacks"]["prod"]["adminRoleArn"] = (
        "arn:aws:iam::111111111111:role/OrganizationAccountAccessRole"
    )
    with pytest.raises(
        Exception,
        match=r"stacks\.prod: .*adminRoleArn .* is in account "
        r"111111111111, not the stack's account 222222222222",
    ):
        run_platform(config)
    config["golden-fleet-platform:stacks"]["prod"]["adminRoleArn"] = "OrganizationAccountAccessRole"
    with pytest.raises(Exception, match=r"stacks\.prod\.adminRoleArn: String should match"):
        run_platform(config)


def _login_subjects_of_the_workflows(environments: dict[str, str]) -> set[str]:
    """GitHub's `sub` for every job that runs pulumi/auth-actions: its environment's, or the
    pull request's for a job without one on a pull_request trigger. An environment given as an
    expression is one of the stacks' environments (the callers pass only those)."""
    import yaml

    subjects = set()
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        triggers = workflow.get(True) or workflow.get("on")
        for name, job in workflow["jobs"].items():
            if not any("pulumi/auth-actions" in str(s.get("uses", "")) for s in
                       job.get("steps", [])):  # fmt: skip
                continue
            environment = job.get("environment")
            if environment is None:
                assert "pull_request" in triggers, f"{path.name}:{name} logs in from where?"
                subjects.add("repo:acme/golden-fleet:pull_request")
            elif "${{" in str(environment):
                subjects |= {f"repo:acme/golden-fleet:environment:{e}"
                             for e in environments.values()}  # fmt: skip
            else:
                subjects.add(f"repo:acme/golden-fleet:environment:{environment}")
    return subjects


def test_github_may_log_in_to_pulumi_cloud_from_exactly_the_jobs_that_do(platform_run):
    """The workflows' auth-actions exchange needs GitHub registered as an OIDC issuer with an
    authorization policy: organization tokens, audience urn:pulumi:org:<org>, and one subject per
    place a workflow logs in from (pull requests, each stack's environment), nothing wider."""
    mocks, _ = platform_run
    (issuer,) = _of(mocks, "pulumiservice:index:OidcIssuer").values()
    assert issuer["organization"] == "acme"
    assert issuer["url"] == "https://token.actions.githubusercontent.com"
    assert issuer["maxExpirationSeconds"] == 14400  # the rollout job's 4 hours
    policies = issuer["policies"]
    assert all(p["decision"] == "allow" and p["tokenType"] == "organization" for p in policies)
    assert all(p["rules"]["aud"] == "urn:pulumi:org:acme" for p in policies), policies
    assert all(set(p["rules"]) == {"aud", "sub"} and "*" not in p["rules"]["sub"]
               for p in policies), policies  # fmt: skip
    environments = {
        s: t["environment"] for s, t in platform_config()["golden-fleet-platform:stacks"].items()
    }
    assert {p["rules"]["sub"] for p in policies} == _login_subjects_of_the_workflows(environments)


def test_the_pack_is_published_with_its_policies_and_never_run(platform_run):
    """With each policy's metadata given, the provider does not spawn the pack to read it
    (resolvePolicies, provider/pkg/resources/policy_pack.go): the platform needs no venv of it."""
    mocks, _ = platform_run
    (pack,) = _of(mocks, "pulumiservice:index:PolicyPack").values()
    names = [policy["name"] for policy in pack["policies"]]
    assert len(names) == 15 and len(set(names)) == 15 and "listener-tls13-or-redirect" in names
    assert all(p["description"] and p["enforcementLevel"] == "mandatory" for p in pack["policies"])


def test_a_policy_dir_holding_more_than_the_repository_is_refused_before_anything(
    _clean_checkout,
):
    """A venv or bytecode in policy/ would change the pack's content hash and republish its
    version: refused, naming the file, with nothing registered."""
    stray = _clean_checkout / "policy" / "__pycache__" / "rules.cpython-311.pyc"
    stray.parent.mkdir()
    stray.write_bytes(b"x")
    mocks = PlatformMocks()
    try:
        with pytest.raises(
            Exception,
            match=r"policy/ holds files the repository does not "
            r"\(__pycache__/rules\.cpython-311\.pyc\)",
        ):
            run_platform(platform_config(), mocks)
        assert mocks.registered == {}, sorted(mocks.registered)
    finally:
        stray.unlink()
        stray.parent.rmdir()


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_release_lock_table_and_its_one_permission(platform_run, stack):
    """Per account: the lock's table on demand, encrypted with a key the account sees, with
    point-in-time recovery and deletion protection (and protected in the state); the rollout
    role may read, update and delete its items, on exactly that table, and nothing else does."""
    from release.lock_table import PARTITION_KEY, TABLE_NAME

    mocks, _ = platform_run
    table = _of(mocks, "aws:dynamodb/table:Table")[f"{stack}-release-lock-table"]
    assert table["name"] == TABLE_NAME and table["hashKey"] == PARTITION_KEY
    assert table["attributes"] == [{"name": PARTITION_KEY, "type": "S"}]
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["serverSideEncryption"] == {"enabled": True}
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["deletionProtectionEnabled"] is True
    policies = _of(mocks, "aws:iam/rolePolicy:RolePolicy")
    lock_policies = {name: policy for name, policy in policies.items() if "release-lock" in name}
    assert sorted(lock_policies) == [
        f"{s}-release-lock-rollout-policy" for s in ("prod", "staging")
    ]
    policy = lock_policies[f"{stack}-release-lock-rollout-policy"]
    assert policy["role"] == f"golden-fleet-{stack}-rollout"
    [statement] = _doc(policy["policy"])["Statement"]
    account = platform_config()["golden-fleet-platform:stacks"][stack]["accountId"]
    assert statement["Resource"] == f"arn:aws:dynamodb:eu-west-1:{account}:table/{TABLE_NAME}"
    assert statement["Action"] == ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
