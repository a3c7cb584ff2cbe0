"""The stack's image.app and app sections: every rule refuses with one error naming the key."""

from __future__ import annotations

import pytest

from components.app_environment import SecretRef, secret_ref
from components.config import ConfigError, parse_stack_config

SECRET = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:checkout/db-AbC123"
PARAMETER_ARN = "arn:aws:ssm:eu-west-1:111111111111:parameter/checkout/api-key"


def _with(config: dict, app: dict | None = None, image_app: dict | None = None) -> dict:
    config = dict(config)
    if app is not None:
        config["golden-fleet:app"] = app
    if image_app is not None:
        config["golden-fleet:image"] = {**config["golden-fleet:image"], "app": image_app}
    return config


def _refused(config: dict) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(config)
    assert len(raised.value.problems) == 1, raised.value.problems
    return raised.value.problems[0]


def test_environment_and_secrets_of_every_accepted_shape(staging_config):
    cfg = parse_stack_config(
        _with(
            staging_config,
            app={
                "environment": {"LOG_LEVEL": "info", "_private": "x", "FEATURE_1": ""},
                "secrets": {
                    "DB_PASSWORD": SECRET,
                    "API_KEY": PARAMETER_ARN,
                    "TOKEN": "/checkout/token",
                },
            },
        )
    )
    assert cfg.app.environment["LOG_LEVEL"] == "info"
    refs = cfg.app_secrets
    assert refs["DB_PASSWORD"] == SecretRef("secretsManager", SECRET, account="111111111111")
    assert refs["API_KEY"].parameter_name == "/checkout/api-key"
    assert refs["TOKEN"] == SecretRef("ssmParameter", "/checkout/token", "/checkout/token")


def test_no_app_section_means_no_environment_and_no_secrets(staging_config):
    staging_config.pop("golden-fleet:app", None)
    cfg = parse_stack_config(staging_config)
    assert cfg.app.environment == {} and cfg.app.secrets == {}


@pytest.mark.parametrize(
    ("section", "key", "rule"),
    [
        ("environment", "1ST", "is not an environment variable name"),
        ("environment", "WITH-DASH", "is not an environment variable name"),
        ("environment", "WITH SPACE", "is not an environment variable name"),
        ("environment", "GF_APP_PORT", "reserved prefix"),
        ("environment", "gf_color", "reserved prefix"),
        ("environment", "AWS_REGION", "reserved prefix"),
        ("secrets", "AWS_SECRET_ACCESS_KEY", "reserved prefix"),
        ("secrets", "ÄPFEL", "is not an environment variable name"),
    ],
)
def test_bad_keys_are_refused_naming_the_key(staging_config, section, key, rule):
    value = SECRET if section == "secrets" else "x"
    problem = _refused(_with(staging_config, app={section: {key: value}}))
    assert problem.startswith(f"golden-fleet:app.{section}.{key}: "), problem
    assert rule in problem


@pytest.mark.parametrize("value", ["two\nlines", "carriage\rreturn", "nul\0"])
def test_values_that_would_break_the_environment_file_are_refused(staging_config, value):
    problem = _refused(_with(staging_config, app={"environment": {"A": value}}))
    assert problem.startswith("golden-fleet:app.environment.A: ") and "newline" in problem


def test_a_value_must_be_a_string_not_a_number_or_boolean(staging_config):
    for value in (5, True, None):
        problem = _refused(_with(staging_config, app={"environment": {"A": value}}))
        assert problem.startswith("golden-fleet:app.environment.A: "), problem


def test_a_key_in_both_maps_is_refused(staging_config):
    problem = _refused(
        _with(
            staging_config,
            app={"environment": {"DB_PASSWORD": "plain"}, "secrets": {"DB_PASSWORD": SECRET}},
        )
    )
    assert problem.startswith("golden-fleet:app.secrets.DB_PASSWORD: ") and "one source" in problem


def test_unknown_keys_of_the_app_section_are_refused(staging_config):
    problem = _refused(_with(staging_config, app={"environ": {}}))
    assert problem.startswith("golden-fleet:app.environ: unknown key"), problem


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        # Partial ARN (no 6-character suffix): could name a later secret sharing the prefix.
        ("arn:aws:secretsmanager:eu-west-1:111111111111:secret:checkout/db", "full ARN"),
        ("arn:aws:secretsmanager:eu-west-1:111111111111:secret:db-AbC12", "full ARN"),
        ("arn:aws:secretsmanager:eu-west-1:11111111111:secret:db-AbC123", "full ARN"),
        ("arn:aws:secretsmanager:us-east-1:111111111111:secret:db-AbC123", "region"),
        ("arn:aws-cn:secretsmanager:eu-west-1:111111111111:secret:db-AbC123", "partition"),
        ("arn:aws:ssm:us-east-1:111111111111:parameter/checkout/key", "region"),
        ("arn:aws:ssm:eu-west-1:1111111111111:parameter/checkout/key", "12-digit account"),
        ("arn:aws:ssm:eu-west-1:111111111111:parameter/aws/reserved", "reserved"),
        ("/ssm/reserved", "reserved"),
        ("checkout/no-leading-slash", "neither"),
        ("/checkout//empty", "parameter name"),
        ("/checkout/bad*name", "parameter name"),
        ("arn:aws:kms:eu-west-1:111111111111:key/abc", "neither"),
        ("*", "neither"),
    ],
)
def test_secret_references_of_unknown_shape_or_elsewhere_are_refused(staging_config, value, rule):
    problem = _refused(_with(staging_config, app={"secrets": {"DB": value}}))
    assert problem.startswith("golden-fleet:app.secrets.DB: "), problem
    assert rule in problem, problem


def test_secret_ref_names_the_stacks_partition():
    arn = "arn:aws-cn:ssm:cn-north-1:111111111111:parameter/a"
    assert secret_ref(arn, "cn-north-1").arn("aws-cn", "cn-north-1", "222222222222") == arn
    with pytest.raises(ValueError, match="partition and region"):
        secret_ref("arn:aws:ssm:cn-north-1:111111111111:parameter/a", "cn-north-1")


def test_a_parameter_by_name_lives_in_the_stacks_account():
    ref = secret_ref("/checkout/token", "eu-west-1")
    assert ref.arn("aws", "eu-west-1", "333333333333") == (
        "arn:aws:ssm:eu-west-1:333333333333:parameter/checkout/token"
    )


def test_user_data_too_large_for_ec2_is_refused(staging_config):
    problem = _refused(
        _with(staging_config, app={"environment": {f"KEY_{i}": "v" * 400 for i in range(45)}})
    )
    assert problem.startswith("golden-fleet:app: ") and "16384" in problem, problem


def test_duplicate_keys_in_the_stack_file_are_refused_by_the_release_loader():
    """Pulumi's engine hands the program a JSON object: a YAML duplicate key would silently
    become its last value there. The release command's loader refuses the file instead."""
    from release import stackfile
    from release.transitions import ReleaseError

    text = "config:\n  golden-fleet:app:\n    environment:\n      A: one\n      A: two\n"
    with pytest.raises(ReleaseError, match="duplicate"):
        stackfile.load_config_text(text)


# --------------------------------------------------------------------------------------------
# image.app
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "package",
    [
        "s3://golden-artifacts/checkout/checkout_{version}_amd64.deb",
        "https://artifacts.example.com/checkout/checkout_{version}_amd64.deb",
        "https://artifacts.example.com:8443/c/checkout_{version}_amd64.deb",
        "dist/checkout_{version}_amd64.deb",
    ],
)
def test_package_templates_of_each_scheme(staging_config, package):
    cfg = parse_stack_config(_with(staging_config, image_app={"package": package}))
    assert cfg.image.app.package == package
    assert cfg.image.app.sha256 == "sidecar"
    assert cfg.image.app.unit_of("checkout") == "checkout.service"


@pytest.mark.parametrize(
    ("app", "key", "rule"),
    [
        ({"package": "dist/checkout_1.0.0_amd64.deb"}, "package", "{version}"),
        ({"package": "dist/checkout_{version}_{arch}.deb"}, "package", "only placeholder"),
        ({"package": "dist/checkout_{version}.tar.gz"}, "package", "*.deb"),
        ({"package": "/abs/checkout_{version}.deb"}, "package", "relative path"),
        ({"package": "../outside/checkout_{version}.deb"}, "package", "relative path"),
        ({"package": "dist//checkout_{version}.deb"}, "package", "relative path"),
        ({"package": "dist/$(id)_{version}.deb"}, "package", "relative path"),
        ({"package": "http://example.com/c_{version}.deb"}, "package", "only s3:// and https://"),
        ({"package": "https://u:p@example.com/c_{version}.deb"}, "package", "no credentials"),
        ({"package": "https://example.com/c_{version}?t=x.deb"}, "package", "no credentials"),
        ({"package": "s3://Bad_Bucket/c_{version}.deb"}, "package", "s3://<bucket>/<key>"),
        ({"package": "dist/c_{version}.deb", "sha256": "s3"}, "sha256", "s3:// object"),
        ({"package": "dist/c_{version}.deb", "sha256": "md5"}, "sha256", "sidecar"),
        ({"package": "dist/c_{version}.deb", "unit": "checkout"}, "unit", "systemd service"),
        ({"package": "dist/c_{version}.deb", "unit": "a b.service"}, "unit", "systemd service"),
        ({"package": "dist/c_{version}.deb", "units": "x"}, "units", "unknown key"),
    ],
)
def test_bad_package_settings_are_refused_naming_the_key(staging_config, app, key, rule):
    problem = _refused(_with(staging_config, image_app=app))
    assert problem.startswith(f"golden-fleet:image.app.{key}: "), problem
    assert rule in problem, problem


def test_the_unit_may_be_named(staging_config):
    cfg = parse_stack_config(
        _with(
            staging_config,
            image_app={
                "package": "s3://golden-artifacts/c_{version}.deb",
                "sha256": "s3",
                "unit": "checkout-api.service",
            },
        )
    )
    assert cfg.image.app.unit_of("checkout") == "checkout-api.service"


def test_a_pulumi_secret_in_the_app_section_is_refused(staging_config):
    config = _with(staging_config, app={"environment": {"A": "x"}})
    with pytest.raises(ConfigError, match="golden-fleet:app: holds a Pulumi secret"):
        parse_stack_config(config, secret_keys=["golden-fleet:app"])
    assert parse_stack_config(config, secret_keys=["golden-fleet:logs"]).app.environment
