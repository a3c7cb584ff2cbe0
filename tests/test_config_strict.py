"""Strict values: no trailing newline, no non-ASCII digit, no boolean or string as a number.

Python's ``$`` matches before a trailing newline, ``\\d`` matches any Unicode digit (in Python and
in pydantic's Rust patterns alike), and lax validation reads ``true`` as 1. Each case below was
accepted once; every one must now be refused with the key path in the message.
"""

from __future__ import annotations

import copy

import pytest

from components.config import ConfigError, parse_stack_config

ARABIC_ONE = "\u0661"  # ARABIC-INDIC DIGIT ONE


def _set(config: dict, path: tuple, value) -> dict:
    edited = copy.deepcopy(config)
    node = edited
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return edited


# (stack, path, valid value) for every pattern-checked field of the model.
PATTERN_FIELDS = [
    ("staging", ("aws:region",), "eu-west-1"),
    ("staging", ("golden-fleet:service", "name"), "checkout"),
    ("staging", ("golden-fleet:service", "instanceTypes", 0), "t3.small"),
    ("staging", ("golden-fleet:service", "healthCheckPath"), "/healthz"),
    ("staging", ("golden-fleet:network", "vpcId"), "vpc-0a1b2c3d4e5f60718"),
    ("staging", ("golden-fleet:network", "publicSubnetIds", 0), "subnet-0a1b2c3d4e5f60001"),
    ("staging", ("golden-fleet:network", "privateSubnetIds", 0), "subnet-0a1b2c3d4e5f60101"),
    (
        "prod",
        ("golden-fleet:network", "certificateArn"),
        "arn:aws:acm:eu-west-1:222222222222:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
    ),
    ("staging", ("golden-fleet:image", "source", "owners", 0), "136693071363"),
    ("staging", ("golden-fleet:image", "source", "name"), "debian-12-amd64-*"),
    ("staging", ("golden-fleet:image", "buildInstanceType"), "t3.small"),
    ("staging", ("golden-fleet:image", "varFile"), "packer/staging.pkrvars.hcl"),
    ("prod", ("golden-fleet:image", "ownerAccountId"), "111111111111"),
    ("staging", ("golden-fleet:fleets", "green", "version"), "1.5.0"),
    ("prod", ("golden-fleet:loadBalancer", "sslPolicy"), "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"),
    ("prod", ("golden-fleet:loadBalancer", "accessLogs", "bucket"), "checkout-prod-alb-logs"),
]


def _config(stack, staging_config, prod_config) -> dict:
    return staging_config if stack == "staging" else prod_config


@pytest.mark.parametrize(
    ("stack", "path", "value"),
    PATTERN_FIELDS,
    ids=[".".join(map(str, p)) for _, p, _ in PATTERN_FIELDS],
)
def test_the_valid_value_is_accepted(staging_config, prod_config, stack, path, value):
    parse_stack_config(_set(_config(stack, staging_config, prod_config), path, value))


# AMI names may contain spaces (EC2 RegisterImage), so a name filter may start with one.
MUTATED = [
    (stack, path, value, mutation)
    for stack, path, value in PATTERN_FIELDS
    for mutation in ("trailing newline", "leading space", "unicode digit")
    if not (mutation == "leading space" and path[-1] == "name" and "source" in path)
]


@pytest.mark.parametrize(
    ("stack", "path", "value", "mutation"),
    MUTATED,
    ids=[f"{'.'.join(map(str, m[1]))}:{m[3]}" for m in MUTATED],
)
def test_a_value_with_a_trailing_newline_or_a_unicode_digit_is_refused(
    staging_config, prod_config, stack, path, value, mutation
):
    if mutation == "trailing newline":
        bad = value + "\n"
    elif mutation == "leading space":
        bad = " " + value
    else:  # the first ASCII digit as an Arabic-Indic one, or one appended
        digits = [c for c in value if c in "0123456789"]
        bad = (
            value.replace(digits[0], chr(0x0660 + int(digits[0])), 1)
            if digits
            else value + ARABIC_ONE
        )
    config = _set(_config(stack, staging_config, prod_config), path, bad)
    with pytest.raises(ConfigError) as error:
        parse_stack_config(config)
    key = path[0] if path[0] == "aws:region" else path[0] + "." + str(path[1])
    assert any(p.startswith(key.split("[")[0].split(".0")[0]) for p in error.value.problems), (
        error.value.problems
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("golden-fleet:fleets", "blue", "capacity", "min"), True),
        (("golden-fleet:fleets", "green", "capacity", "max"), True),
        (("golden-fleet:traffic", "blue"), True),
        (("golden-fleet:service", "port"), True),
        (("golden-fleet:service", "port"), "8080"),
        (("golden-fleet:instanceRefresh", "instanceWarmup"), True),
        (("golden-fleet:instanceRefresh", "minHealthyPercentage"), 50.5),
        (("golden-fleet:loadBalancer", "idleTimeout"), False),
        (("golden-fleet:instanceRefresh", "skipMatching"), 1),
        (("golden-fleet:loadBalancer", "deletionProtection"), "yes"),
    ],
)
def test_booleans_strings_and_fractions_are_not_numbers_or_flags(staging_config, path, value):
    config = _set(staging_config, path, value)
    if path[0] == "golden-fleet:traffic":
        config["golden-fleet:traffic"]["green"] = 99  # true + 99 would "sum to 100"
    with pytest.raises(ConfigError, match=path[0].split(":")[1]):
        parse_stack_config(config)
