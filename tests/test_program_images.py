"""Image accounts, encryption and sharing: the real program on both real stack files.

Who owns the image keys, who grants whom, which launch permissions and copies exist, and what
an edit of ``shareWithAccounts`` or ``copyToRegions`` adds, removes and leaves alone.
"""

from __future__ import annotations

import copy
import json
import shlex

import pytest
from harness import ACCOUNT, STACK_ACCOUNTS, baked_image, changed_resources, run_program

from components.config import ConfigError, parse_stack_config
from components.golden_image import distributing_colors, pick_promoted_image
from components.image_distribution import copy_deprecation_time
from components.image_grant import AUTOSCALING_GRANT_OPERATIONS
from components.image_key import image_key_policy
from components.interpreter import program_python

KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
GRANT = "aws:kms/grant:Grant"
COPY = "aws:ec2/amiCopy:AmiCopy"
LAUNCH = "aws:ec2/amiLaunchPermission:AmiLaunchPermission"
COMMAND = "command:local:Command"
DISTRIBUTION = "golden-fleet:index:ImageDistribution"
PROD_KEY = "arn:aws:kms:eu-west-1:111111111111:key/4f1c2a9e-7b3d-4e8a-9c21-5d6e7f8a9b0c"
SLR = "role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


def _image(config: dict) -> dict:
    return config["golden-fleet:image"]


def _names(run, token: str) -> set[str]:
    return {r.name for r in run.of_type(token)}


def _image_keys(run) -> list:
    """The image keys: every KMS key but the stack's log key (components/log_key.py)."""
    return [r for r in run.of_type(KEY) if r.name.startswith("checkout-image-key-")]


def provider_deletes(before, after) -> set[str]:
    """The resources of ``before`` that an update to ``after`` deletes through their provider,
    by the engine's rule: a resource the program no longer registers is deleted unless it is
    ``retain_on_delete``, or ``deleted_with`` a resource deleted in the same update (Pulumi
    docs, resource options retainOnDelete and deletedWith). Components have no provider."""
    removed = {n for n in before.resources if n not in after.resources}
    return {
        name
        for name in removed
        if not before.resources[name].type_.startswith(("golden-fleet:", "pulumi:"))
        and before.resources[name].options.get("retain_on_delete") is not True
        and before.resources[name].options.get("deleted_with") not in removed
    }


# ---------------------------------------------------------------------------------------------
# Promote: deprecated images stay findable
# ---------------------------------------------------------------------------------------------
def test_promote_lookups_ask_for_deprecated_images(prod_config):
    """Each color looks its version up twice, once without and once with deprecated images,
    with the same owner, name filter and exact regex: a year-old version is still found."""
    run = run_program(prod_config, stack="prod")
    lookups = [
        args
        for token, args in run.mocks.calls
        if token == "aws:ec2/getAmiIds:getAmiIds"
        and all(f["name"] != "description" for f in args["filters"])
    ]  # revoked: apart
    assert sorted(bool(a.get("includeDeprecated")) for a in lookups) == [False, False, True, True]
    for args in lookups:
        assert args["owners"] == ["111111111111"], args
        assert {"name": "name", "values": ["checkout-1.4.0-*"]} in args["filters"], args
        assert args["nameRegex"], args


def test_promote_finds_a_version_whose_only_image_is_deprecated(prod_config):
    """An image past its deprecation time still serves its version (EC2 hides it from the
    accounts it is shared with unless they ask): prod previews and runs it."""
    old = baked_image("111111111111", "checkout", "1.4.0", deprecated=True)
    run = run_program(prod_config, stack="prod", images=[old])
    assert run.outputs["blue"]["amiId"] == old.image_id
    assert run.outputs["green"]["amiId"] == old.image_id


def test_promote_prefers_an_image_that_is_not_deprecated(prod_config):
    """When a version has a deprecated image and one that is not, the one that is not wins,
    even when the deprecated one is newer."""
    current = baked_image("111111111111", "checkout", "1.4.0", stamp="20261101T120000Z")
    newer_deprecated = baked_image(
        "111111111111", "checkout", "1.4.0", stamp="20261201T120000Z", deprecated=True
    )
    run = run_program(prod_config, stack="prod", images=[newer_deprecated, current])
    assert run.outputs["blue"]["amiId"] == current.image_id


def test_promote_of_a_version_never_baked_still_fails_with_deprecated_images_counted(prod_config):
    prod_config["golden-fleet:fleets"]["green"]["version"] = "9.9.9"
    only_old = [baked_image("111111111111", "checkout", "1.4.0", deprecated=True)]
    with pytest.raises(Exception, match=r"no image checkout 9\.9\.9 .* deprecated images included"):
        run_program(prod_config, stack="prod", images=only_old)


def test_pick_promoted_image_prefers_current_then_deprecated_then_fails():
    assert pick_promoted_image(["ami-a"], "checkout", "1.4.0", "1" * 12, ["ami-d", "ami-a"]) == (
        "ami-a"
    )
    assert pick_promoted_image([], "checkout", "1.4.0", "1" * 12, ["ami-d"]) == "ami-d"
    with pytest.raises(ValueError, match="never baked"):
        pick_promoted_image([], "checkout", "1.4.0", "1" * 12, [])


# ---------------------------------------------------------------------------------------------
# Keys and grants: who owns what
# ---------------------------------------------------------------------------------------------
def test_prod_grants_its_autoscaling_role_on_the_configured_key(prod_config):
    """Prod creates one grant, from its own account, for its own Auto Scaling service-linked
    role, on the key ARN its config names, with the operations EC2 needs to launch from an
    encrypted snapshot; it owns no key and shares nothing."""
    run = run_program(prod_config, stack="prod")
    grants = run.of_type(GRANT)
    assert len(grants) == 1, [g.name for g in grants]
    grant = grants[0].inputs
    assert grant["keyId"] == PROD_KEY == _image(prod_config)["kmsKeyArn"]
    assert grant["granteePrincipal"] == f"arn:aws:iam::{STACK_ACCOUNTS['prod']}:{SLR}"
    assert sorted(grant["operations"]) == sorted(AUTOSCALING_GRANT_OPERATIONS)
    assert "Decrypt" in grant["operations"] and "CreateGrant" in grant["operations"]
    assert grant["region"] == "eu-west-1"
    assert grants[0].parent == "checkout-image-grant"
    assert not _image_keys(run) and not run.of_type(COPY) and not run.of_type(LAUNCH)
    assert "imageKeyArns" not in run.outputs


def test_prod_grant_follows_the_configured_key(prod_config):
    """Naming another key changes the grant and nothing but the grant."""
    before = run_program(prod_config, stack="prod")
    other = PROD_KEY.replace("4f1c2a9e", "0000aaaa")
    _image(prod_config)["kmsKeyArn"] = other
    after = run_program(prod_config, stack="prod")
    assert changed_resources(before, after) == {"checkout-image-grant-autoscaling"}
    assert after.one(GRANT, "checkout-image-grant-autoscaling").inputs["keyId"] == other


def test_staging_owns_a_rotating_retained_key_whose_policy_admits_the_share_accounts(
    staging_config,
):
    """Staging owns the home region's image key (rotation on, 30-day window, never deleted by
    the program), its policy keeps the account root as admin, admits staging's own Auto
    Scaling role, and lets each share account use the key and create grants; no grant."""
    run = run_program(staging_config)
    assert {k.name for k in _image_keys(run)} == {"checkout-image-key-eu-west-1-key"}
    key = run.one(KEY, "checkout-image-key-eu-west-1-key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    assert key.inputs["customerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert key.options["retain_on_delete"] is True, "a deleted key strands every image"
    assert key.parent == "checkout-image-key-eu-west-1"
    policy = json.loads(key.inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["Enable IAM User Permissions"]["Principal"] == {
        "AWS": "arn:aws:iam::111111111111:root"
    }
    assert by_sid["Enable IAM User Permissions"]["Action"] == "kms:*"
    own_role = [f"arn:aws:iam::111111111111:{SLR}"]
    assert by_sid["Allow service-linked role use of the customer managed key"]["Principal"] == {
        "AWS": own_role
    }
    attach = by_sid["Allow attachment of persistent resources"]
    assert attach["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": True}}
    for account in _image(staging_config)["shareWithAccounts"]:
        use = by_sid[f"Allow external account {account} use of the customer managed key"]
        grants = by_sid[f"Allow attachment of persistent resources in external account {account}"]
        assert use["Principal"] == grants["Principal"] == {"AWS": [f"arn:aws:iam::{account}:root"]}
        assert "kms:Decrypt" in use["Action"] and grants["Action"] == ["kms:CreateGrant"]
    principals = {json.dumps(s["Principal"]) for s in policy["Statement"]}
    assert len(principals) == 2 + len(_image(staging_config)["shareWithAccounts"]), principals
    assert not run.of_type(GRANT)
    arn = run.one(KEY, "checkout-image-key-eu-west-1-key").state["arn"]
    assert run.outputs["imageKeyArns"] == {"eu-west-1": arn}
    assert {n for n in _names(run, ALIAS) if n.startswith("checkout-image-key-")} == {
        "checkout-image-key-eu-west-1-alias"
    }


def test_the_image_key_policy_refuses_to_share_with_its_own_account():
    with pytest.raises(ValueError, match="shareWithAccounts lists 111111111111"):
        image_key_policy("aws", "111111111111", ["111111111111"])


def test_a_share_account_may_create_grants_only_for_its_own_autoscaling_role():
    """Each share account's CreateGrant names that account's AWSServiceRoleForAutoScaling as
    the only grantee (kms:GranteePrincipal), in the account's partition, and does not require
    kms:GrantIsForAWSResource (the account's deploying principal creates the grant itself);
    this account's own CreateGrant keeps AWS's example-1 condition and only that."""
    policy = image_key_policy("aws", "111111111111", ["222222222222", "333333333333"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    for account in ("222222222222", "333333333333"):
        grants = by_sid[f"Allow attachment of persistent resources in external account {account}"]
        assert grants["Condition"] == {
            "StringEquals": {
                "kms:GranteePrincipal": (
                    f"arn:aws:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/"
                    "AWSServiceRoleForAutoScaling"
                )
            }
        }, grants["Sid"]
    assert by_sid["Allow attachment of persistent resources"]["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": True}
    }
    [gov] = [
        s
        for s in image_key_policy("aws-us-gov", "111111111111", ["222222222222"])["Statement"]
        if s["Sid"].endswith("external account 222222222222") and s["Action"] == ["kms:CreateGrant"]
    ]
    assert gov["Condition"]["StringEquals"]["kms:GranteePrincipal"].startswith(
        "arn:aws-us-gov:iam::222222222222:role/aws-service-role/"
    )


def _allows(policy: dict, account: str, action: str, context: dict) -> bool:
    """Whether an Allow statement of a key policy admits ``action`` by a principal of
    ``account`` with the request's condition ``context`` (IAM's rules for the operators the
    image key uses; any other operator fails the test rather than being guessed)."""

    def holds(operator: str, key: str, wanted) -> bool:
        wanted = wanted if isinstance(wanted, list) else [wanted]
        if key not in context:
            return False
        if operator in ("StringEquals", "ArnEquals"):
            return context[key] in wanted
        if operator == "Bool":
            return str(context[key]).lower() in {str(w).lower() for w in wanted}
        raise AssertionError(f"no evaluator for the condition operator {operator}")

    for statement in policy["Statement"]:
        principals = statement["Principal"]["AWS"]
        principals = principals if isinstance(principals, list) else [principals]
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if (
            statement["Effect"] == "Allow"
            and f"arn:aws:iam::{account}:root" in principals
            and (action in actions or "kms:*" in actions)
            and all(
                holds(op, key, value)
                for op, pairs in statement.get("Condition", {}).items()
                for key, value in pairs.items()
            )
        ):
            return True
    return False


def test_the_grant_prod_creates_is_the_one_stagings_key_policy_allows(prod_config, staging_config):
    """The CreateGrant request prod's program makes (grantee, operations, made by prod's
    deploying principal itself, so not for an AWS resource) is allowed by staging's key policy;
    the same request for any other grantee is not."""
    grant = (
        run_program(prod_config, stack="prod").one(GRANT, "checkout-image-grant-autoscaling").inputs
    )
    key = run_program(staging_config).one(KEY, "checkout-image-key-eu-west-1-key")
    policy = json.loads(key.inputs["policy"])
    prod = STACK_ACCOUNTS["prod"]
    request = {
        "kms:GranteePrincipal": grant["granteePrincipal"],
        "kms:GrantOperations": grant["operations"],
        "kms:GrantIsForAWSResource": False,
    }
    assert _allows(policy, prod, "kms:CreateGrant", request)
    for other in (
        f"arn:aws:iam::{prod}:role/deploy",
        f"arn:aws:iam::{ACCOUNT}:{SLR}",
        f"arn:aws:iam::333333333333:{SLR}",
    ):
        assert not _allows(
            policy, prod, "kms:CreateGrant", {**request, "kms:GranteePrincipal": other}
        ), other
    assert _allows(policy, prod, "kms:Decrypt", {}), "the account uses the key as before"


# ---------------------------------------------------------------------------------------------
# The bake: the program's interpreter, the home key, no sharing
# ---------------------------------------------------------------------------------------------
def test_bake_command_starts_with_the_programs_interpreter_and_the_home_key(staging_config):
    """The bake runs packer/bake.py with the interpreter running the program (never a python
    from PATH), encrypts with the stack's home key, and is told nothing about sharing."""
    run = run_program(staging_config)
    key_arn = run.one(KEY, "checkout-image-key-eu-west-1-key").state["arn"]
    bakes = [c for c in run.of_type(COMMAND) if c.name.endswith("-image-bake")]
    assert len(bakes) == 2
    for bake in bakes:
        argv = shlex.split(bake.inputs["create"])
        assert argv[:2] == [program_python(), "packer/bake.py"], argv
        assert argv[0] != "python"
        env = bake.inputs["environment"]
        assert env["PKR_VAR_kms_key_id"] == key_arn
        assert not {"PKR_VAR_ami_users", "PKR_VAR_ami_regions"} & set(env), sorted(env)


# ---------------------------------------------------------------------------------------------
# Sharing and copies as resources
# ---------------------------------------------------------------------------------------------
def test_each_version_gets_one_launch_permission_per_account(staging_config):
    """Per version the colors run, one launch permission per share account on that image,
    inside the version's distribution under the first color running it."""
    run = run_program(staging_config)
    fleets = staging_config["golden-fleet:fleets"]
    versions = {fleets["blue"]["version"], fleets["green"]["version"]}
    accounts = _image(staging_config)["shareWithAccounts"]
    assert _names(run, LAUNCH) == {f"checkout-{v}-launch-{a}" for v in versions for a in accounts}
    for color in ("blue", "green"):
        version = fleets[color]["version"]
        for account in accounts:
            permission = run.one(LAUNCH, f"checkout-{version}-launch-{account}")
            assert permission.inputs["imageId"] == run.outputs[color]["amiId"]
            assert permission.inputs["accountId"] == account
            assert permission.parent == f"checkout-{version}-distribution"
            assert permission.options["retain_on_delete"] is True, permission.name
        assert run.one(DISTRIBUTION, f"checkout-{version}-distribution").parent == (
            f"checkout-{color}-image"
        )
    assert not run.of_type(COPY), "staging copies to no region"


def test_adding_a_region_adds_its_key_one_copy_per_image_and_their_permissions_only(
    staging_config,
):
    """With both colors on one version (one image), adding a copy region adds exactly one
    copy, that region's key (component, key, alias) and the copy's launch permissions;
    nothing else changes, the bakes included."""
    for color in ("blue", "green"):
        staging_config["golden-fleet:fleets"][color]["version"] = "1.4.0"
    before = run_program(staging_config)
    added = copy.deepcopy(staging_config)
    _image(added)["copyToRegions"] = ["eu-central-1"]
    after = run_program(added)
    assert changed_resources(before, after) == {
        "checkout-image-key-eu-central-1",
        "checkout-image-key-eu-central-1-key",
        "checkout-image-key-eu-central-1-alias",
        "checkout-1.4.0-copy-eu-central-1",
        "checkout-1.4.0-launch-222222222222-eu-central-1",
    }
    image = after.one(COPY, "checkout-1.4.0-copy-eu-central-1")
    region_key = after.one(KEY, "checkout-image-key-eu-central-1-key")
    assert region_key.inputs["region"] == "eu-central-1"
    assert image.inputs["region"] == "eu-central-1"
    assert image.inputs["encrypted"] is True
    assert image.inputs["kmsKeyId"] == region_key.state["arn"]
    assert ":eu-central-1:" in image.inputs["kmsKeyId"]
    assert image.inputs["sourceAmiId"] == after.outputs["blue"]["amiId"]
    assert image.inputs["sourceAmiRegion"] == "eu-west-1"
    assert image.inputs["name"] == "checkout-1.4.0-20261101T120000Z", "prod finds copies by name"
    assert image.inputs["deprecationTime"] == "2027-11-01T12:00:00Z"
    assert image.options["retain_on_delete"] is True, image.name
    permission = after.one(LAUNCH, "checkout-1.4.0-launch-222222222222-eu-central-1")
    assert permission.options["retain_on_delete"] is True, permission.name
    assert permission.inputs["imageId"] == image.state["id"]
    assert permission.inputs["region"] == "eu-central-1"
    assert after.outputs["imageKeyArns"]["eu-central-1"] == region_key.state["arn"]


def test_a_second_region_renames_nothing_of_the_first(staging_config):
    """Regions are keys, not list positions: adding one before another leaves the other's
    copy, key and permissions exactly as they were."""
    _image(staging_config)["copyToRegions"] = ["eu-north-1"]
    before = run_program(staging_config)
    _image(staging_config)["copyToRegions"] = ["eu-central-1", "eu-north-1"]
    after = run_program(staging_config)
    changed = changed_resources(before, after)
    assert changed and all("eu-central-1" in name for name in changed), changed


def test_removing_a_region_leaves_its_copies_permissions_and_key_in_aws(staging_config):
    """Dropping a copy region drops its copies, their launch permissions and its key from the
    program, and the only provider delete of the update is the key's alias: no copy is
    deregistered and no permission revoked (prod may still run them there; prune removes
    them once unused); nothing else changes."""
    _image(staging_config)["copyToRegions"] = ["eu-central-1", "eu-north-1"]
    before = run_program(staging_config)
    removed = copy.deepcopy(staging_config)
    _image(removed)["copyToRegions"] = ["eu-north-1"]
    after = run_program(removed)
    gone = {n for n in before.resources if n.endswith("eu-central-1") or "eu-central-1-" in n}
    assert gone == {
        "checkout-image-key-eu-central-1",
        "checkout-image-key-eu-central-1-key",
        "checkout-image-key-eu-central-1-alias",
        "checkout-1.4.0-copy-eu-central-1",
        "checkout-1.5.0-copy-eu-central-1",
        "checkout-1.4.0-launch-222222222222-eu-central-1",
        "checkout-1.5.0-launch-222222222222-eu-central-1",
    }, gone
    assert changed_resources(before, after) == gone
    assert provider_deletes(before, after) == {"checkout-image-key-eu-central-1-alias"}
    assert set(after.outputs["imageKeyArns"]) == {"eu-west-1", "eu-north-1"}


def test_removing_an_account_leaves_its_permissions_in_aws(staging_config):
    """Dropping an account drops its launch permissions on every image from the program
    without revoking any (no provider delete at all) and drops it from the key policies;
    every other account's permission stays as it was."""
    _image(staging_config)["shareWithAccounts"] = ["222222222222", "333333333333"]
    _image(staging_config)["copyToRegions"] = ["eu-central-1"]
    before = run_program(staging_config)
    removed = copy.deepcopy(staging_config)
    _image(removed)["shareWithAccounts"] = ["222222222222"]
    after = run_program(removed)
    gone = {
        f"checkout-{v}-launch-333333333333{suffix}"
        for v in ("1.4.0", "1.5.0")
        for suffix in ("", "-eu-central-1")
    }
    assert gone <= set(before.resources) and not gone & set(after.resources)
    assert changed_resources(before, after) == gone | {
        "checkout-image-key-eu-west-1-key",
        "checkout-image-key-eu-central-1-key",
    }
    assert provider_deletes(before, after) == set()
    for key in after.of_type(KEY):
        assert "333333333333" not in key.inputs["policy"], key.name


def test_a_version_no_color_runs_keeps_its_image_copies_and_permissions(staging_config):
    """When both colors move on from a version, its distribution leaves the program with every
    copy and permission in it, and no provider delete happens: prod, a release behind, still
    runs that version, in every region and account."""
    _image(staging_config)["copyToRegions"] = ["eu-central-1"]
    before = run_program(staging_config)
    moved = copy.deepcopy(staging_config)
    for color in ("blue", "green"):
        moved["golden-fleet:fleets"][color]["version"] = "1.6.0"
    after = run_program(moved)
    left = {n for n in before.resources if n.startswith("checkout-1.4.0-")}
    assert {before.resources[n].type_ for n in left} == {DISTRIBUTION, COPY, LAUNCH}
    assert not left & set(after.resources)
    assert provider_deletes(before, after) == set()


def test_a_version_has_one_distribution_whichever_colors_run_it(staging_config):
    """Both colors on one version share one image: one distribution, under blue. When blue
    moves on, green takes the version's distribution over with identical inputs (same URN:
    the parent's type is part of it, not its name), so no permission is revoked or re-made."""
    for color in ("blue", "green"):
        staging_config["golden-fleet:fleets"][color]["version"] = "1.4.0"
    _image(staging_config)["copyToRegions"] = ["eu-central-1"]
    both = run_program(staging_config)
    assert _names(both, DISTRIBUTION) == {"checkout-1.4.0-distribution"}
    assert both.one(DISTRIBUTION, "checkout-1.4.0-distribution").parent == "checkout-blue-image"
    moved = copy.deepcopy(staging_config)
    moved["golden-fleet:fleets"]["blue"]["version"] = "1.5.0"
    after = run_program(moved)
    assert after.one(DISTRIBUTION, "checkout-1.4.0-distribution").parent == "checkout-green-image"
    old = {n for n in both.resources if n.startswith("checkout-1.4.0-")}
    assert old and not changed_resources(
        {n: both.resources[n] for n in old}, {n: after.resources[n] for n in old}
    )
    new = {n for n in after.resources if n.startswith("checkout-1.5.0-")}
    assert new == {
        "checkout-1.5.0-distribution",
        "checkout-1.5.0-launch-222222222222",
        "checkout-1.5.0-copy-eu-central-1",
        "checkout-1.5.0-launch-222222222222-eu-central-1",
    }


def test_distributing_colors_picks_one_color_per_version():
    assert distributing_colors({"blue": "1.4.0", "green": "1.4.0"}) == {"blue"}
    assert distributing_colors({"blue": "1.4.0", "green": "1.5.0"}) == {"blue", "green"}
    assert distributing_colors({"blue": "1.5.0", "green": "1.4.0"}) == {"blue", "green"}


@pytest.mark.parametrize(
    "source, copied",
    [
        ("2027-11-01T12:00:00.000Z", "2027-11-01T12:00:00Z"),
        ("2027-11-01T12:00:00Z", "2027-11-01T12:00:00Z"),
        (None, None),
        ("", None),
    ],
)
def test_copies_keep_the_source_deprecation_time_to_the_second(source, copied):
    assert copy_deprecation_time(source) == copied


# ---------------------------------------------------------------------------------------------
# Configuration of the image section
# ---------------------------------------------------------------------------------------------
def _problems(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config)
    return caught.value.problems


@pytest.mark.parametrize(
    "value, rule",
    [
        ("alias/checkout-image", "a KMS key ARN"),
        (PROD_KEY + "\n", "a KMS key ARN"),
        (PROD_KEY.replace("key/", "alias/"), "a KMS key ARN"),
        (PROD_KEY.replace("4f1c2a9e", "4F1C2A9E"), "a KMS key ARN"),
        (PROD_KEY.replace("111111111111", "\uff11" * 12), "a KMS key ARN"),
        (PROD_KEY.replace("111111111111", "333333333333"), "belong to the account that bakes"),
        (PROD_KEY.replace("eu-west-1", "eu-central-1"), "image key of this stack's region"),
    ],
)
def test_promote_kms_key_arn_is_the_owners_key_in_this_region(prod_config, value, rule):
    _image(prod_config)["kmsKeyArn"] = value
    problems = _problems(prod_config)
    assert any(p.startswith("golden-fleet:image.kmsKeyArn:") and rule in p for p in problems), (
        problems
    )


def test_promote_needs_the_image_key(prod_config):
    del _image(prod_config)["kmsKeyArn"]
    assert "golden-fleet:image.kmsKeyArn: is required" in _problems(prod_config)


def test_a_multi_region_key_arn_is_accepted(prod_config):
    _image(prod_config)["kmsKeyArn"] = (
        "arn:aws:kms:eu-west-1:111111111111:key/mrk-1234567890abcdef1234567890abcdef"
    )
    assert parse_stack_config(prod_config).image.kms_key_arn.endswith(
        "mrk-1234567890abcdef1234567890abcdef"
    )


def test_copies_never_target_the_home_region(staging_config):
    _image(staging_config)["copyToRegions"] = ["eu-west-1"]
    problems = _problems(staging_config)
    assert any(
        p.startswith("golden-fleet:image.copyToRegions:") and "own region" in p for p in problems
    ), problems


def test_a_bake_stack_takes_no_kms_key_arn(staging_config):
    """The baking stack owns its keys; naming one is a mistake, refused by name."""
    _image(staging_config)["kmsKeyArn"] = PROD_KEY
    problems = _problems(staging_config)
    assert any(
        p.startswith("golden-fleet:image.kmsKeyArn:") and "unknown key" in p for p in problems
    ), problems
