"""The stack's app section under the mock engine, on the real stack files: what the instance
role may read, what user data carries, and what an edit of it touches."""

from __future__ import annotations

import base64
import json

import pytest
from harness import ACCOUNT, STACK_ACCOUNTS, changed_resources, run_program

LT = "aws:ec2/launchTemplate:LaunchTemplate"
POLICY = "aws:iam/rolePolicy:RolePolicy"
COMMAND = "command:local:Command"
SECRET = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:checkout/db-password-Xy12Ab"
PARAMETER_ARN = "arn:aws:ssm:eu-west-1:111111111111:parameter/checkout/api-key"


def parameter_arn(stack: str) -> str:
    """The API key parameter, by ARN, in the account the stack deploys to."""
    return PARAMETER_ARN.replace(ACCOUNT, STACK_ACCOUNTS[stack])


PARAMETER_NAME = "/checkout/feature-token"
# What the secrets hold in the account; the program never learns it, so it must appear nowhere.
SECRET_VALUE = "s3cr3t-value-that-must-never-appear"
COLORS = ("blue", "green")


def _app(
    config: dict,
    environment: dict | None = None,
    secrets: dict | None = None,
    stack: str = "staging",
) -> dict:
    config = dict(config)
    config["golden-fleet:app"] = {
        "environment": environment if environment is not None else {"LOG_LEVEL": "info"},
        "secrets": secrets
        if secrets is not None
        else {
            "DB_PASSWORD": SECRET,
            "API_KEY": parameter_arn(stack),
            "FEATURE_TOKEN": PARAMETER_NAME,
        },
    }
    return config


def _boot_config(run, color: str) -> dict:
    user_data = base64.b64decode(run.one(LT, f"checkout-{color}-lt").inputs["userData"]).decode()
    (written,) = json.loads(user_data.split("\n", 1)[1])["write_files"]
    return json.loads(written["content"])


def _statements(run, name: str) -> list[dict]:
    return json.loads(run.one(POLICY, name).inputs["policy"])["Statement"]


@pytest.fixture(params=["staging", "prod"])
def stack(request, staging_config, prod_config):
    return request.param, {"staging": staging_config, "prod": prod_config}[request.param]


def test_the_role_reads_exactly_the_configured_secrets(stack):
    name, config = stack
    run = run_program(_app(config, stack=name), stack=name)
    parameter_by_name = f"arn:aws:ssm:eu-west-1:{run.mocks.account}:parameter{PARAMETER_NAME}"
    for color in COLORS:
        by_sid = {s["Sid"]: s for s in _statements(run, f"checkout-{color}-app-secrets")}
        where = f"checkout-{color}-app-secrets"
        assert by_sid["ReadConfiguredSecrets"]["Action"] == "secretsmanager:GetSecretValue"
        assert by_sid["ReadConfiguredSecrets"]["Resource"] == [SECRET], where
        assert by_sid["ReadConfiguredParameters"]["Action"] == "ssm:GetParameter"
        assert by_sid["ReadConfiguredParameters"]["Resource"] == sorted(
            [parameter_arn(name), parameter_by_name]
        ), where
        secrets_kms = by_sid["DecryptConfiguredSecrets"]["Condition"]["StringEquals"]
        assert secrets_kms == {
            "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com",
            "kms:EncryptionContext:SecretARN": [SECRET],
        }, where
        ssm_kms = by_sid["DecryptConfiguredParameters"]["Condition"]["StringEquals"]
        assert ssm_kms == {
            "kms:ViaService": "ssm.eu-west-1.amazonaws.com",
            "kms:EncryptionContext:PARAMETER_ARN": sorted([parameter_arn(name), parameter_by_name]),
        }
        for statement in by_sid.values():
            assert statement["Resource"] != "*", statement
        assert run.one(LT, f"checkout-{color}-lt").options["depends_on"] == sorted(
            [f"checkout-{color}-app-secrets", f"checkout-{color}-parameter-fence"]
        ), "instances must not boot before their role may read the secrets"
        fence = _statements(run, f"checkout-{color}-parameter-fence")
        assert fence == [
            {
                "Sid": "NoOtherParameters",
                "Effect": "Deny",
                "Action": [
                    "ssm:GetParameter",
                    "ssm:GetParameters",
                    "ssm:GetParametersByPath",
                    "ssm:GetParameterHistory",
                ],
                "NotResource": sorted([parameter_arn(name), parameter_by_name]),
            }
        ], where


def test_without_secrets_the_role_has_no_secret_statement_and_reads_no_parameter(stack):
    name, config = stack
    run = run_program(_app(config, secrets={}), stack=name)
    for color in COLORS:
        assert f"checkout-{color}-app-secrets" not in run.resources
        # AmazonSSMManagedInstanceCore allows ssm:GetParameter(s) on "*": fenced off entirely.
        (fence,) = _statements(run, f"checkout-{color}-parameter-fence")
        assert fence["Effect"] == "Deny" and fence["Resource"] == "*"
    for policy in run.of_type(POLICY):
        assert "secretsmanager:" not in policy.inputs["policy"], policy.name


def test_user_data_holds_references_and_no_secret_value_reaches_the_program(stack):
    name, config = stack
    run = run_program(_app(config, stack=name), stack=name)
    for color in COLORS:
        version = config["golden-fleet:fleets"][color]["version"]
        port = str(config["golden-fleet:service"]["port"])
        assert _boot_config(run, color) == {
            "service": "checkout",
            "region": "eu-west-1",
            "environment": {
                "GF_APP_PORT": port,
                "GF_COLOR": color,
                "GF_EXPECTED_VERSION": version,
                "LOG_LEVEL": "info",
            },
            # A parameter by name: the boot unit reads its own account's parameters.
            "secrets": {
                "API_KEY": {"ssmParameter": "/checkout/api-key"},
                "DB_PASSWORD": {"secretsManager": SECRET},
                "FEATURE_TOKEN": {"ssmParameter": PARAMETER_NAME},
            },
        }
    everything = json.dumps(
        [[r.inputs, r.state] for r in run.resources.values()] + [run.outputs], default=str
    )
    assert SECRET_VALUE not in everything
    # Only references travel: the secret's ARN is in user data and the role's policy, never
    # in an output.
    assert SECRET not in json.dumps(run.outputs, default=str)


def test_the_bake_and_the_image_do_not_depend_on_the_stacks_environment(staging_config):
    """The bake never sees app.*: one image serves every stack."""
    without = run_program(staging_config)
    with_app = run_program(_app(staging_config))
    other = run_program(
        _app(
            staging_config,
            environment={"LOG_LEVEL": "debug", "X": "1"},
            secrets={"DB_PASSWORD": SECRET},
        )
    )
    bakes = [c.name for c in without.of_type(COMMAND) if c.name.endswith("-bake")]
    assert bakes, "staging bakes"
    for bake in bakes:
        first = without.resources[bake]
        for run in (with_app, other):
            assert run.resources[bake].inputs == first.inputs, bake
            assert run.resources[bake].state["stdout"] == first.state["stdout"], bake
    assert without.outputs["blue"]["amiId"] == other.outputs["blue"]["amiId"]
    assert not {c for c in changed_resources(with_app, other) if c.endswith("-bake")}


def test_an_environment_edit_reaches_the_idle_color_only(staging_config):
    """Blue serves 100 %: its template keeps the boot config it was released with (userData
    ignored), so its refresh resource does not re-run and its instances stay; green (idle)
    gets a new template version and is refreshed."""
    before = run_program(_app(staging_config))
    after = run_program(_app(staging_config, environment={"LOG_LEVEL": "debug"}), previous=before)
    changed = changed_resources(before, after)
    assert "checkout-green-lt" in changed and "checkout-green-refresh" in changed
    assert "checkout-blue-lt" not in changed, changed
    assert "checkout-blue-refresh" not in changed, changed
    assert after.one(LT, "checkout-blue-lt").options["ignore_changes"] == ["userData"]
    assert after.one(LT, "checkout-green-lt").options["ignore_changes"] == []
    assert _boot_config(after, "green")["environment"]["LOG_LEVEL"] == "debug"


def test_a_secret_edit_changes_the_roles_of_both_colors(staging_config):
    """The role is not the template: both colors' policies name the new secret at once, so
    the serving color's instances can still read the old one only if it stays configured."""
    other = SECRET.replace("Xy12Ab", "Zz99Zz")
    before = run_program(_app(staging_config))
    after = run_program(_app(staging_config, secrets={"DB_PASSWORD": other}))
    changed = changed_resources(before, after)
    assert {"checkout-blue-app-secrets", "checkout-green-app-secrets"} <= changed


def test_both_colors_serving_both_keep_their_boot_config(staging_config):
    staging_config["golden-fleet:traffic"] = {"blue": 50, "green": 50}
    before = run_program(_app(staging_config))
    after = run_program(_app(staging_config, environment={"LOG_LEVEL": "debug"}), previous=before)
    changed = changed_resources(before, after)
    assert (
        not {
            "checkout-blue-lt",
            "checkout-green-lt",
            "checkout-blue-refresh",
            "checkout-green-refresh",
        }
        & changed
    ), changed


def test_a_parameter_of_another_account_is_refused(prod_config):
    """Instances read parameters of their own account by name: prod naming staging's
    parameter by ARN would read (or be denied) another parameter at boot."""
    with pytest.raises(
        Exception, match="belongs to account 111111111111, but the stack deploys to 222222222222"
    ):
        run_program(_app(prod_config, secrets={"API_KEY": PARAMETER_ARN}), stack="prod")


def test_account_of_a_parameter_by_name_is_the_deploying_account(staging_config):
    run = run_program(_app(staging_config, secrets={"T": PARAMETER_NAME}))
    (read,) = [
        s
        for s in _statements(run, "checkout-blue-app-secrets")
        if s["Sid"] == "ReadConfiguredParameters"
    ]
    assert read["Resource"] == [f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter{PARAMETER_NAME}"]


# --------------------------------------------------------------------------------------------
# image.app: the bake command
# --------------------------------------------------------------------------------------------
APP_PACKAGE = {
    "package": "s3://golden-artifacts/checkout/checkout_{version}_amd64.deb",
    "sha256": "s3",
    "unit": "checkout-api.service",
}


def _bake_argv(run, color: str) -> list[str]:
    import shlex

    return shlex.split(run.resources[f"checkout-{color}-image-bake"].inputs["create"])


def test_the_bake_command_names_the_package_of_image_app(staging_config):
    staging_config["golden-fleet:image"] = {
        **staging_config["golden-fleet:image"],
        "app": APP_PACKAGE,
    }
    run = run_program(_app(staging_config))
    for color in COLORS:
        argv = _bake_argv(run, color)
        flags = dict(zip(argv[2::2], argv[3::2], strict=False))
        assert flags["--package"] == APP_PACKAGE["package"]
        assert flags["--package-sha256-from"] == "s3"
        assert flags["--package-unit"] == "checkout-api.service"
        assert flags["--health-check-path"] == "/healthz"
        assert flags["--port"] == str(staging_config["golden-fleet:service"]["port"])
        assert "LOG_LEVEL" not in " ".join(argv) and SECRET not in " ".join(argv)


def test_the_bake_wrapper_accepts_the_programs_command_line(staging_config, monkeypatch):
    """The command the program writes parses with the wrapper's own argument rules."""
    import bake_fixtures  # noqa: F401  (puts packer/ on sys.path)
    from baking import cli
    from harness import PROJECT_ROOT

    monkeypatch.chdir(PROJECT_ROOT)  # the stack's var file is a project path
    staging_config["golden-fleet:image"] = {
        **staging_config["golden-fleet:image"],
        "app": {**APP_PACKAGE, "unit": None},
    }
    run = run_program(staging_config)
    options = cli.parse_args(_bake_argv(run, "green")[2:], environ={})
    assert options.package.uri == APP_PACKAGE["package"]
    assert options.package.sha256_from == "s3"
    assert options.package.unit == "checkout.service"
    assert options.health_check_path == "/healthz"
    assert options.port == staging_config["golden-fleet:service"]["port"]


def test_without_image_app_the_bake_builds_the_sample_package(staging_config):
    run = run_program(staging_config)
    argv = _bake_argv(run, "blue")
    assert not [a for a in argv if a.startswith("--package")], argv


def test_a_pulumi_secret_in_the_app_section_is_refused_before_anything_is_registered(
    staging_config,
):
    """app.* is written into user data, readable by whoever may describe the launch template:
    a value set with `pulumi config set --secret` there would be published in clear."""
    from components.config import ConfigError

    registered: dict = {}
    with pytest.raises(ConfigError, match="golden-fleet:app: holds a Pulumi secret"):
        run_program(_app(staging_config), secret_keys=["golden-fleet:app"], record_into=registered)
    assert not [r for r in registered.values() if not r.type_.startswith("pulumi:")], registered
