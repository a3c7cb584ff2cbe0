"""The CrossGuard policy pack, run over what the real program registers.

Every policy passes on both real stack files (run under the mock engine), and each one fires on
a broken variant with a message that says what to change. Properties reach the policies through
the policy SDK's own unknown-checking proxy, as they do under the engine.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import load_stack_config, run_program, stack_file

POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))

import policies  # noqa: E402
import rules  # noqa: E402
from pulumi_policy import (  # noqa: E402
    PolicyResource,
    ResourceValidationArgs,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy  # noqa: E402

STACK_CONFIG = {"staging": {"allowPlainHttp": True}, "prod": {}}


def resources_of(stack: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, name, properties) of every AWS resource the program registers on a stack file."""
    run = run_program(load_stack_config(stack_file(stack)), stack)
    return [
        (r.type_, r.name, r.state or r.inputs)
        for r in run.resources.values()
        if not r.type_.startswith(("golden-fleet:", "pulumi:"))
    ]


def violations(resources, config: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Policy name -> [(resource name, message)] for every violation reported."""
    found: dict[str, list[tuple[str, str]]] = {}
    for policy in policies.all_policies():

        def report(message, urn=None, policy=policy, name=None):
            found.setdefault(policy.name, []).append((name or urn or "", message))

        if isinstance(policy, StackValidationPolicy):
            stack_resources = [
                PolicyResource(
                    t,
                    unknown_checking_proxy(copy.deepcopy(p)),
                    f"urn:{n}",
                    n,
                    None,
                    None,
                    None,
                    [],
                    {},
                )
                for t, n, p in resources
            ]
            policy.validate(StackValidationArgs(stack_resources, config), report)
            continue
        for type_, name, props in resources:
            args = ResourceValidationArgs(
                type_,
                unknown_checking_proxy(copy.deepcopy(props)),
                f"urn:{name}",
                name,
                None,
                None,
                config,  # the policies read no options or provider
            )
            policy.validate(
                args,
                lambda message, urn=None, n=name, p=policy: found.setdefault(p.name, []).append(
                    (n, message)
                ),
            )
    return found


@pytest.fixture(scope="module")
def real_resources() -> dict[str, list]:
    return {stack: resources_of(stack) for stack in ("staging", "prod")}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_policy_passes_on_the_real_stack(real_resources, stack):
    assert violations(real_resources[stack], STACK_CONFIG[stack]) == {}


def test_every_policy_is_evaluated_on_some_resource(real_resources):
    """A rule keyed to a type the program never registers would pass vacuously."""
    types = {type_ for type_, _, _ in real_resources["prod"]}
    for name, (type_, _) in rules.RESOURCE_RULES.items():
        assert type_ in types, f"{name} checks {type_}, which the program never registers"


def _edit(resources, type_, name_part, change):
    edited = copy.deepcopy(resources)
    hits = 0
    for t, n, props in edited:
        if t == type_ and name_part in n:
            change(props)
            hits += 1
    assert hits, f"no {type_} named like {name_part}"
    return edited


BROKEN = [
    (
        "launch-template-imdsv2",
        rules.LAUNCH_TEMPLATE,
        "blue-lt",
        lambda p: p["metadataOptions"].update(httpTokens="optional"),
        "http_tokens",
    ),
    (
        "launch-template-imdsv2",
        rules.LAUNCH_TEMPLATE,
        "blue-lt",
        lambda p: p["metadataOptions"].update(httpPutResponseHopLimit=2),
        "hop limit must be 1",
    ),
    (
        "launch-template-no-public-ip",
        rules.LAUNCH_TEMPLATE,
        "green-lt",
        lambda p: p["networkInterfaces"][0].update(associatePublicIpAddress="true"),
        'associate_public_ip_address = "false"',
    ),
    (
        "launch-template-encrypted-volumes",
        rules.LAUNCH_TEMPLATE,
        "green-lt",
        lambda p: p["blockDeviceMappings"][0]["ebs"].update(encrypted="false"),
        'ebs.encrypted = "true"',
    ),
    (
        "group-numbered-launch-template-version",
        rules.GROUP,
        "blue-asg",
        lambda p: p["mixedInstancesPolicy"]["launchTemplate"]["launchTemplateSpecification"].update(
            version="$Latest"
        ),
        "pin the numbered version",
    ),
    (
        "group-no-provider-refresh",
        rules.GROUP,
        "green-asg",
        lambda p: p.update(
            instanceRefresh={"strategy": "Rolling", "preferences": {"autoRollback": True}}
        ),
        "AWS's rollback would restore the new version",
    ),
    (
        "group-elb-health-checks",
        rules.GROUP,
        "green-asg",
        lambda p: p.update(healthCheckType="EC2"),
        'health_check_type must be "ELB"',
    ),
    (
        "load-balancer-drops-invalid-headers",
        rules.LOAD_BALANCER,
        "alb",
        lambda p: p.update(dropInvalidHeaderFields=False),
        "drop_invalid_header_fields",
    ),
    (
        "listener-weights-sum-to-100",
        rules.LISTENER,
        "checkout-listener",
        lambda p: p["defaultActions"][0]["forward"]["targetGroups"][1].update(weight=10),
        "must sum to 100",
    ),
    (
        "listener-tls13-or-redirect",
        rules.LISTENER,
        "checkout-listener",
        lambda p: p.update(sslPolicy="ELBSecurityPolicy-2016-08"),
        "TLS 1.3 policy",
    ),
    (
        "listener-tls13-or-redirect",
        rules.LISTENER,
        "http-redirect",
        lambda p: p.update(defaultActions=[{"type": "fixed-response"}]),
        "redirect to HTTPS",
    ),
    (
        "forward-to-own-target-groups",
        rules.LISTENER,
        "checkout-listener",
        lambda p: p["defaultActions"][0]["forward"]["targetGroups"][0].update(
            arn="arn:aws:elasticloadbalancing:eu-west-1:999999999999:targetgroup/other/0123"
        ),
        "not a target group of this stack",
    ),
    (
        "open-ingress-only-to-the-load-balancer",
        rules.INGRESS_RULE,
        "instance-in-alb",
        lambda p: (p.pop("referencedSecurityGroupId"), p.update(cidrIpv4="0.0.0.0/0")),
        "only the load balancer's security group may be open",
    ),
    (
        "open-ingress-only-to-the-load-balancer",
        rules.INGRESS_RULE,
        "alb-in-443",
        lambda p: p.update(fromPort=22, toPort=22),
        "only on 80 and 443",
    ),
    (
        "log-group-retained-a-year-and-encrypted",
        rules.LOG_GROUP,
        "checkout-logs",
        lambda p: p.update(retentionInDays=30),
        "retention_in_days to at least 365",
    ),
    (
        "log-group-retained-a-year-and-encrypted",
        rules.LOG_GROUP,
        "waf-logs",
        lambda p: p.pop("kmsKeyId"),
        "kms_key_id",
    ),
    (
        "role-policy-names-each-secret",
        rules.ROLE_POLICY,
        "blue-app-secrets",
        lambda p: p.update(
            policy=p["policy"].replace(
                '"Resource": ["arn:aws:secretsmanager', '"Resource": ["*", "arn:aws:secretsmanager'
            )
        ),
        "name each secret by its full ARN",
    ),
    (
        "role-policy-names-each-secret",
        rules.ROLE_POLICY,
        "green-cloudwatch-agent",
        lambda p: p.update(
            policy=p["policy"].replace('"logs:CreateLogStream"', '"ssm:GetParameter*"')
        ),
        "each parameter by its ARN",
    ),
    (
        "role-has-permissions-boundary",
        rules.ROLE,
        "blue-role",
        lambda p: p.pop("permissionsBoundary"),
        "has no permissions_boundary",
    ),
    (
        "role-has-permissions-boundary",
        rules.ROLE,
        "green-role",
        lambda p: p.update(permissionsBoundary="arn:aws:iam::aws:policy/AdministratorAccess"),
        "is not a service's boundary",
    ),
    (
        "parameter-reads-fenced",
        rules.ROLE_POLICY,
        "blue-parameter-fence",
        # A deny of the named parameters only: every other parameter stays readable.
        lambda p: p.update(policy=p["policy"].replace('"NotResource"', '"Resource"')),
        "AmazonSSMManagedInstanceCore",
    ),
]


@pytest.mark.parametrize(
    ("policy", "type_", "name", "change", "advice"), BROKEN, ids=[f"{b[0]}:{b[4]}" for b in BROKEN]
)
def test_each_policy_fires_on_a_broken_variant_and_says_what_to_change(
    real_resources, policy, type_, name, change, advice
):
    broken = _edit(real_resources["prod"], type_, name, change)
    found = violations(broken, STACK_CONFIG["prod"])
    assert set(found) == {policy}, f"expected only {policy} to fire, got {sorted(found)}"
    assert any(advice in message for _, message in found[policy]), found[policy]


def test_staging_plain_http_listener_is_allowed_only_by_its_config(real_resources):
    assert "listener-tls13-or-redirect" in violations(real_resources["staging"], {})
    assert violations(real_resources["staging"], {"allowPlainHttp": True}) == {}


def test_unknown_values_are_not_guessed():
    """A preview of a new resource: the SDK's proxy raises, the policy reports nothing."""
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

    props = unknown_checking_proxy({"healthCheckType": UNKNOWN_STRING_VALUE})
    with pytest.raises(UnknownValueError):
        rules.group_elb_health_checks(props)


def test_the_pack_starts_as_the_engine_starts_it():
    """`python policy/__main__.py` serves the analyzer on loopback and prints its port."""
    import subprocess

    # pulumi_policy writes the port with sys.stdout.buffer.write and no flush (policy.py), so on
    # a pipe it only arrives unbuffered: without PYTHONUNBUFFERED from the caller's environment
    # (a clean machine has none) the readline below would wait forever.
    pack = subprocess.Popen(
        [sys.executable, str(POLICY_DIR / "__main__.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=POLICY_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        port = pack.stdout.readline().decode().strip()
        assert port.isascii() and port.isdigit() and 0 < int(port) < 65536, (
            port,
            pack.stderr.read1().decode() if pack.poll() is not None else "",
        )
    finally:
        pack.kill()
        pack.wait(timeout=10)
        pack.stdout.close()
        pack.stderr.close()


def test_pull_request_previews_run_the_pack_with_each_stacks_config():
    """The pack guards every previewed change: prod mandatory, staging advisory."""
    import json

    from ruamel.yaml import YAML

    root = POLICY_DIR.parent
    workflow = YAML(typ="safe").load((root / ".github/workflows/pull-request.yml").read_text())
    steps = workflow["jobs"]["preview"]["steps"]
    [preview] = [s for s in steps if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert preview["with"]["policyPacks"] == "policy"
    assert preview["with"]["policyPackConfigs"] == "policy/${{ matrix.stack }}.json"
    for stack in workflow["jobs"]["preview"]["strategy"]["matrix"]["stack"]:
        config = json.loads((POLICY_DIR / f"{stack}.json").read_text())
        assert config["all"] == ("mandatory" if stack == "prod" else "advisory")
    install = next(s["run"] for s in steps if "policy/requirements.txt" in s.get("run", ""))
    assert "policy/venv" in install


def test_the_packs_boundary_path_is_the_programs():
    """The pack is published from policy/ alone, so it holds its own copy of the path."""
    from components import policies

    assert rules.BOUNDARY_PATH == policies.BOUNDARY_PATH
