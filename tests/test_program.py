"""The real program on the real stack files, under the mock engine: security and wiring."""

from __future__ import annotations

import base64
import json
import re
import shlex

import pytest
from harness import baked_ami_id, run_program

from components.config import ConfigError
from components.interpreter import program_python

LT = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
TG = "aws:lb/targetGroup:TargetGroup"
ALB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
COMMAND = "command:local:Command"


@pytest.fixture(params=["staging", "prod"])
def stack_run(request, staging_config, prod_config):
    """Each real stack file through the real ``__main__.py``."""
    config = {"staging": staging_config, "prod": prod_config}[request.param]
    return request.param, config, run_program(config, stack=request.param)


def test_stack_outputs(stack_run):
    """URL, live color, and per color the version, AMI id and ASG name."""
    stack, config, run = stack_run
    outputs = run.outputs
    scheme = "https" if stack == "prod" else "http"
    assert outputs["url"].startswith(f"{scheme}://") and outputs["url"].endswith(
        ".elb.amazonaws.com"
    ), outputs["url"]
    assert outputs["liveColor"] == "blue"
    for color in ("blue", "green"):
        version = config["golden-fleet:fleets"][color]["version"]
        assert outputs[color]["version"] == version
        assert outputs[color]["amiId"] == baked_ami_id("checkout", version)
        assert outputs[color]["asgName"].startswith(f"checkout-{color}-asg")


def test_every_resource_is_inside_a_component(stack_run):
    """Everything but the provider and the top-level components has ``parent=self``."""
    _, _, run = stack_run
    top_level = {
        "aws",
        "checkout",
        "checkout-blue-image",
        "checkout-green-image",
        "checkout-image-key-eu-west-1",
        "checkout-image-grant",
    }
    orphans = [r.name for r in run.resources.values() if r.name not in top_level and not r.parent]
    assert not orphans, f"resources without a parent: {orphans}"


def test_provider_default_tags(stack_run):
    stack, _, run = stack_run
    provider = run.one("pulumi:providers:aws", "aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags == {
        "Project": "golden-fleet",
        "Stack": stack,
        "Service": "checkout",
        "ManagedBy": "golden-fleet",
    }
    assert provider.inputs["region"] == "eu-west-1"


def test_launch_templates_are_locked_down(stack_run):
    """IMDSv2 with hop limit 1, encrypted root, no public IP, no SSH key, nothing installed."""
    _, _, run = stack_run
    templates = run.of_type(LT)
    assert len(templates) == 2
    for lt in templates:
        where = f"{lt.name}"
        i = lt.inputs
        assert i["metadataOptions"]["httpTokens"] == "required", where
        assert i["metadataOptions"]["httpPutResponseHopLimit"] == 1, where
        assert i["metadataOptions"]["httpEndpoint"] == "enabled", where
        assert all(b["ebs"]["encrypted"] == "true" for b in i["blockDeviceMappings"]), where
        assert [n["associatePublicIpAddress"] for n in i["networkInterfaces"]] == ["false"], where
        assert "keyName" not in i, f"{where} has an SSH key"
        assert "vpcSecurityGroupIds" not in i, where
        user_data = base64.b64decode(i["userData"]).decode()
        for forbidden in ("packages", "apt", "pip ", "curl", "wget", "package_upgrade"):
            assert forbidden not in user_data, f"{where} user data installs: {forbidden}"
        assert i["imageId"].startswith("ami-"), where


def test_asgs_pin_numbered_template_versions(stack_run):
    """Never ``$Latest``/``$Default``: a template edit must not reach instances unreviewed."""
    _, config, run = stack_run
    types = config["golden-fleet:service"]["instanceTypes"]
    for asg in run.of_type(ASG):
        i = asg.inputs
        if len(types) > 1:
            assert "launchTemplate" not in i, asg.name
            spec = i["mixedInstancesPolicy"]["launchTemplate"]["launchTemplateSpecification"]
            overrides = i["mixedInstancesPolicy"]["launchTemplate"]["overrides"]
            assert [o["instanceType"] for o in overrides] == types, asg.name
            version = spec["version"]
        else:
            version = i["launchTemplate"]["version"]
        assert version.isdigit(), f"{asg.name} uses launch template version {version!r}"


def test_asgs_use_elb_health_private_subnets_and_capacity(stack_run):
    _, config, run = stack_run
    network = config["golden-fleet:network"]
    for color in ("blue", "green"):
        asg = run.one(ASG, f"checkout-{color}-asg")
        i = asg.inputs
        capacity = config["golden-fleet:fleets"][color]["capacity"]
        assert i["healthCheckType"] == "ELB", asg.name
        assert i["vpcZoneIdentifiers"] == network["privateSubnetIds"], asg.name
        assert (i["minSize"], i["desiredCapacity"], i["maxSize"]) == (
            capacity["min"],
            capacity["desired"],
            capacity["max"],
        ), asg.name
        assert i["targetGroupArns"] == [
            run.resources[f"checkout-{color}-tg"].inputs.get("arn", i["targetGroupArns"][0])
        ], asg.name
        assert f"/checkout-{color}-tg/" in i["targetGroupArns"][0], asg.name
        tags = {t["key"]: t for t in i["tags"]}
        assert tags["Color"]["value"] == color and tags["Color"]["propagateAtLaunch"], asg.name
        assert "Version" not in tags, "a group tag would outlive a rolled-back refresh"
        assert tags["Service"]["value"] == "checkout", asg.name
        template = run.one("aws:ec2/launchTemplate:LaunchTemplate", f"checkout-{color}-lt")
        for spec in template.inputs["tagSpecifications"]:
            assert spec["tags"]["Version"] == config["golden-fleet:fleets"][color]["version"]


def test_instance_refresh_preferences_follow_config(stack_run):
    """Every preference of golden-fleet:instanceRefresh reaches each color's refresh resource as
    StartInstanceRefresh spells it; the groups carry no refresh of their own."""
    import json

    _, config, run = stack_run
    refresh = config["golden-fleet:instanceRefresh"]
    for color in ("blue", "green"):
        command = run.one("command:local:Command", f"checkout-{color}-refresh")
        prefs = json.loads(command.inputs["stdin"])["preferences"]
        for key in (
            "MinHealthyPercentage",
            "MaxHealthyPercentage",
            "InstanceWarmup",
            "CheckpointPercentages",
            "CheckpointDelay",
            "SkipMatching",
            "AutoRollback",
        ):
            assert prefs[key] == refresh[key[0].lower() + key[1:]], (command.name, key)
        assert prefs["ScaleInProtectedInstances"] == "Refresh", command.name
        assert prefs["StandbyInstances"] == "Terminate", command.name
        assert "instanceRefresh" not in run.one(ASG, f"checkout-{color}-asg").inputs


def test_target_groups_check_health_tightly(stack_run):
    _, config, run = stack_run
    for tg in run.of_type(TG):
        i = tg.inputs
        check = i["healthCheck"]
        assert check["path"] == config["golden-fleet:service"]["healthCheckPath"], tg.name
        assert check["matcher"] == "200" and check["port"] == "traffic-port", tg.name
        assert check["healthyThreshold"] <= 3 and check["unhealthyThreshold"] <= 3, tg.name
        assert check["interval"] <= 15, tg.name
        assert i["deregistrationDelay"] <= 60, tg.name
        assert i["port"] == config["golden-fleet:service"]["port"], tg.name


def test_only_the_alb_reaches_instances_only_on_the_service_port(stack_run):
    _, config, run = stack_run
    port = config["golden-fleet:service"]["port"]
    instance_sg = run.one("aws:ec2/securityGroup:SecurityGroup", "checkout-instance-sg")
    alb_sg = run.one("aws:ec2/securityGroup:SecurityGroup", "checkout-alb-sg")
    assert "ingress" not in instance_sg.inputs and "ingress" not in alb_sg.inputs
    into_instances = [r for r in run.of_type(INGRESS) if r.name.startswith("checkout-instance")]
    assert len(into_instances) == 1
    rule = into_instances[0].inputs
    assert (rule["fromPort"], rule["toPort"], rule["ipProtocol"]) == (port, port, "tcp")
    assert rule["referencedSecurityGroupId"].startswith("sg-")
    assert "cidrIpv4" not in rule and "cidrIpv6" not in rule
    # Nothing on port 22 anywhere.
    for r in run.of_type(INGRESS):
        assert not r.inputs["fromPort"] <= 22 <= r.inputs["toPort"], r.name
    alb_out = [r.inputs for r in run.of_type(EGRESS) if r.name.startswith("checkout-alb")]
    assert [(o["fromPort"], o["toPort"]) for o in alb_out] == [(port, port)]


def test_alb_hardening(stack_run):
    stack, config, run = stack_run
    alb = run.one(ALB, "checkout-alb").inputs
    assert alb["dropInvalidHeaderFields"] is True
    assert alb["desyncMitigationMode"] in ("defensive", "strictest")
    assert alb["enableDeletionProtection"] is (stack == "prod")
    assert alb["subnets"] == config["golden-fleet:network"]["publicSubnetIds"]
    assert alb["internal"] is False


def test_listener_forwards_to_both_colors_with_weights(stack_run):
    _, config, run = stack_run
    listener = run.one(LISTENER, "checkout-listener").inputs
    [action] = listener["defaultActions"]
    groups = action["forward"]["targetGroups"]
    weights = {g["arn"].split("/")[1].split("-")[1]: g["weight"] for g in groups}
    assert weights == config["golden-fleet:traffic"], "idle color must stay in at weight 0"


def test_https_on_tls13_with_redirect_in_prod(prod_config):
    run = run_program(prod_config, stack="prod")
    listener = run.one(LISTENER, "checkout-listener").inputs
    assert (listener["port"], listener["protocol"]) == (443, "HTTPS")
    assert listener["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-")
    assert listener["certificateArn"] == prod_config["golden-fleet:network"]["certificateArn"]
    redirect = run.one(LISTENER, "checkout-http-redirect").inputs
    [action] = redirect["defaultActions"]
    assert action["redirect"]["protocol"] == "HTTPS" and action["redirect"]["statusCode"] == (
        "HTTP_301"
    )
    ports = sorted(r.inputs["fromPort"] for r in run.of_type(INGRESS) if "alb-in" in r.name)
    assert ports == [80, 443]


def test_http_only_without_certificate(staging_config):
    run = run_program(staging_config)
    listener = run.one(LISTENER, "checkout-listener").inputs
    assert (listener["port"], listener["protocol"]) == (80, "HTTP")
    assert "checkout-http-redirect" not in run.resources
    assert "sslPolicy" not in listener


def test_instance_role_has_only_agent_permissions(stack_run):
    _, _, run = stack_run
    for color in ("blue", "green"):
        role = run.one("aws:iam/role:Role", f"checkout-{color}-role").inputs
        trust = json.loads(role["assumeRolePolicy"])
        assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ec2.amazonaws.com"}]
        attachments = [
            r.inputs["policyArn"]
            for r in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if r.parent == f"checkout-{color}"
        ]
        assert attachments == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
        policy = json.loads(
            run.one("aws:iam/rolePolicy:RolePolicy", f"checkout-{color}-cloudwatch-agent").inputs[
                "policy"
            ]
        )
        for statement in policy["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert all("*" not in a for a in actions), statement
            if statement["Resource"] == "*":
                assert statement.get("Condition") or all(
                    a.startswith("ec2:Describe") for a in actions
                ), statement
            else:
                assert all("/golden-fleet/checkout" in r for r in statement["Resource"])


REFRESHES = ["checkout-blue-refresh", "checkout-green-refresh"]


def bake_commands(run) -> list:
    """Every Command but the two refresh resources (which the health-gate tests cover)."""
    return [c for c in run.of_type(COMMAND) if c.name not in REFRESHES]


def test_bake_mode_bakes_each_color_through_the_wrapper(staging_config):
    run = run_program(staging_config)
    commands = bake_commands(run)
    assert sorted(c.name for c in commands) == [
        "checkout-blue-image-bake",
        "checkout-green-image-bake",
    ]
    for command in commands:
        color = command.name.split("-")[1]
        version = staging_config["golden-fleet:fleets"][color]["version"]
        i = command.inputs
        # The program's own interpreter, never a `python` from PATH (components/interpreter.py).
        assert i["create"] == (
            f"{shlex.quote(program_python())} packer/bake.py --version {version} "
            "--service checkout --region eu-west-1 --var-file packer/staging.pkrvars.hcl "
            "--health-check-path /healthz --port 8080"
        )
        assert i["triggers"] == ["checkout", version]
        assert "PULUMI_COMMAND_STDOUT" in i["update"]
        # Sharing is a resource now (tests/test_program_images.py); the bake gets the key only.
        assert i["environment"]["PKR_VAR_kms_key_id"].startswith("arn:aws:kms:eu-west-1:")
        assert "triggers" in command.options["replace_on_changes"], command.name
        assert not [t for t, _ in run.mocks.calls if "getAmi" in t], (
            "a bake stack must not look images up"
        )


def test_promote_mode_looks_up_by_owner_and_exact_name(prod_config):
    run = run_program(prod_config, stack="prod")
    assert not bake_commands(run), "prod must never bake"
    assert sorted(c.name for c in run.of_type(COMMAND)) == REFRESHES
    lookups = [args for token, args in run.mocks.calls if token.endswith("getAmiIds")]
    # Per color one lookup without and one with deprecated images (tests/test_program_images.py),
    # and one for its revoked images (tests/test_program_revoked.py).
    assert len(lookups) == 6
    for args in lookups:
        assert args["owners"] == ["111111111111"]
        assert {"name": "name", "values": ["checkout-1.4.0-*"]} in args["filters"]
        name_regex = re.compile(args["nameRegex"])
        assert name_regex.search("checkout-1.4.0-20261101T120000Z"), args["nameRegex"]
        for other in (
            "checkout-1.4.0-rc.1-20261101T120000Z",
            "checkout-1.4.0-20261101T120000Z-x",
            "checkout-1.4.0-latest",
        ):
            assert not name_regex.search(other), (args["nameRegex"], other)


def test_promote_of_a_version_never_baked_fails_with_a_clear_message(prod_config):
    prod_config["golden-fleet:fleets"]["green"]["version"] = "9.9.9"
    from harness import baked_image

    only_old = [baked_image("111111111111", "checkout", "1.4.0")]
    with pytest.raises(
        Exception,
        match=r"no image checkout 9\.9\.9 owned by account "
        r"111111111111: this version was never baked",
    ):
        run_program(prod_config, stack="prod", images=only_old)


def test_prerelease_image_does_not_satisfy_the_release(prod_config):
    """``1.4.0-rc.1`` matches the name filter ``checkout-1.4.0-*`` but must not be promoted."""
    from harness import BakedImage

    rc_only = [BakedImage("111111111111", "checkout-1.4.0-rc.1-20261101T120000Z", "ami-0rc")]
    with pytest.raises(Exception, match="never baked"):
        run_program(prod_config, stack="prod", images=rc_only)


def test_images_from_another_owner_are_not_trusted(prod_config):
    from harness import baked_image

    elsewhere = [baked_image("999999999999", "checkout", "1.4.0")]
    with pytest.raises(Exception, match="never baked"):
        run_program(prod_config, stack="prod", images=elsewhere)


def test_bad_config_fails_before_any_resource_is_registered(staging_config):
    staging_config["golden-fleet:traffic"] = {"blue": 50, "green": 60}
    registered: dict = {}
    with pytest.raises(ConfigError, match="golden-fleet:traffic: weights must sum to 100"):
        run_program(staging_config, record_into=registered)
    assert registered == {}, f"registered before validation: {sorted(registered)}"


def test_typo_in_a_stack_key_fails_the_program(staging_config):
    staging_config["golden-fleet:instancerefresh"] = staging_config.pop(
        "golden-fleet:instanceRefresh"
    )
    with pytest.raises(ConfigError, match="golden-fleet:instancerefresh: unknown key"):
        run_program(staging_config)
