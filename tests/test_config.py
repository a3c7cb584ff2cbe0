"""The stack-config model: every rule refuses bad input with a message naming the key path."""

from __future__ import annotations

import pytest

from components.config import Color, ConfigError, check_version, parse_stack_config


def refused(config: dict, key: str, rule: str) -> None:
    """Assert the config is refused with a problem line naming ``key`` and matching ``rule``."""
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config)
    lines = caught.value.problems
    assert any(
        line.startswith(key) and line[len(key)] in ":[" and rule in line for line in lines
    ), f"expected a problem for {key} saying {rule!r}; got {lines}"


def test_both_real_stack_files_validate(staging_config, prod_config):
    """The committed stack files are valid, and differ where the issue says they must."""
    staging, prod = parse_stack_config(staging_config), parse_stack_config(prod_config)
    assert staging.image.mode == "bake" and prod.image.mode == "promote"
    assert not staging.https and prod.https
    assert prod.load_balancer.deletion_protection and not staging.load_balancer.deletion_protection
    assert prod.fleets.blue.capacity.min > staging.fleets.blue.capacity.min


# --- traffic -----------------------------------------------------------------------------------
@pytest.mark.parametrize("blue, green", [(90, 20), (50, 40), (0, 0)])
def test_weights_must_sum_to_100(staging_config, blue, green):
    staging_config["golden-fleet:traffic"] = {"blue": blue, "green": green}
    staging_config["golden-fleet:fleets"]["green"]["capacity"]["min"] = 1
    refused(staging_config, "golden-fleet:traffic", "sum to 100")


def test_weight_out_of_range(staging_config):
    staging_config["golden-fleet:traffic"] = {"blue": 150, "green": -50}
    refused(staging_config, "golden-fleet:traffic.blue", "less than or equal to 100")
    refused(staging_config, "golden-fleet:traffic.green", "greater than or equal to 0")


def test_only_two_colors(staging_config):
    staging_config["golden-fleet:traffic"] = {"blue": 50, "green": 0, "red": 50}
    refused(staging_config, "golden-fleet:traffic.red", "unknown key")


def test_color_taking_traffic_needs_capacity(staging_config):
    staging_config["golden-fleet:traffic"] = {"blue": 90, "green": 10}
    staging_config["golden-fleet:fleets"]["green"]["capacity"] = {"min": 0, "desired": 0, "max": 2}
    refused(staging_config, "golden-fleet:fleets.green.capacity.min", "receives 10% of traffic")


def test_idle_color_may_be_cold(staging_config):
    staging_config["golden-fleet:fleets"]["green"]["capacity"] = {"min": 0, "desired": 0, "max": 2}
    assert parse_stack_config(staging_config).fleets.green.capacity.desired == 0


# --- capacity and versions ----------------------------------------------------------------------
@pytest.mark.parametrize("capacity", [(2, 1, 3), (1, 4, 3), (3, 3, 2)])
def test_min_desired_max_ordered(staging_config, capacity):
    low, desired, high = capacity
    staging_config["golden-fleet:fleets"]["blue"]["capacity"] = {
        "min": low,
        "desired": desired,
        "max": high,
    }
    refused(staging_config, "golden-fleet:fleets.blue.capacity", "min <= desired <= max")


@pytest.mark.parametrize(
    "version",
    [
        "latest",
        "1.4",
        "v1.4.0",
        "1.4.0; rm -rf /",
        "1.4.0$(id)",
        "1.4.0 ",
        "01.4.0",
        "1.4.0+build.7",
        "`x`",
        "",
        "1.4.0-rc.1|x",
    ],
)
def test_versions_are_immutable_semver(staging_config, version):
    staging_config["golden-fleet:fleets"]["green"]["version"] = version
    refused(staging_config, "golden-fleet:fleets.green.version", "immutable semantic version")


@pytest.mark.parametrize("version", ["1.4.0", "0.0.1", "2.0.0-rc.1", "10.20.30-alpha.beta-2"])
def test_semver_accepted(version):
    assert check_version(version) == version


def test_version_must_be_a_string(staging_config):
    staging_config["golden-fleet:fleets"]["green"]["version"] = 1.5
    refused(staging_config, "golden-fleet:fleets.green.version", "")


# --- instance refresh ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, value, rule",
    [
        ("minHealthyPercentage", 101, "less than or equal to 100"),
        ("minHealthyPercentage", -1, "greater than or equal to 0"),
        ("maxHealthyPercentage", 99, "greater than or equal to 100"),
        ("maxHealthyPercentage", 201, "less than or equal to 200"),
        ("instanceWarmup", -5, "greater than or equal to 0"),
        ("checkpointDelay", 172_801, "less than or equal to 172800"),
        ("checkpointPercentages", [50, 20, 100], "strictly ascending"),
        ("checkpointPercentages", [20, 50], "last checkpoint must be 100"),
        ("checkpointPercentages", [0, 100], "within 1-100"),
        ("skipMatching", "sometimes", "valid boolean"),
    ],
)
def test_instance_refresh_within_aws_limits(staging_config, key, value, rule):
    staging_config["golden-fleet:instanceRefresh"][key] = value
    refused(staging_config, f"golden-fleet:instanceRefresh.{key}", rule)


def test_healthy_window_at_most_100(staging_config):
    staging_config["golden-fleet:instanceRefresh"].update(
        {"minHealthyPercentage": 50, "maxHealthyPercentage": 200}
    )
    refused(staging_config, "golden-fleet:instanceRefresh", "must not exceed 100")


# --- service, network, image --------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, value, rule",
    [
        ("name", "Checkout", "lowercase"),
        ("name", "checkout-service-api", "lowercase"),  # too long for AWS names
        ("name", "a_b", "lowercase"),
        ("port", 80, "greater than or equal to 1024"),
        ("port", 70000, "less than or equal to 65535"),
        ("healthCheckPath", "healthz", "absolute URL path"),
        ("healthCheckPath", "/health z", "absolute URL path"),
        ("instanceTypes", [], "at least 1"),
        ("instanceTypes", ["t3.small", "t3.small"], "duplicates"),
        ("instanceTypes", ["large"], "EC2 instance type"),
    ],
)
def test_service_rules(staging_config, key, value, rule):
    staging_config["golden-fleet:service"][key] = value
    refused(staging_config, f"golden-fleet:service.{key}", rule)


@pytest.mark.parametrize(
    "key, value, rule",
    [
        ("vpcId", "vpc-xyz", "not well-formed"),
        ("privateSubnetIds", ["subnet-0a1b2c3d4e5f60101"], "at least 2"),
        ("privateSubnetIds", ["subnet-0a1b2c3d4e5f60101", "sg-123"], "not well-formed"),
        ("certificateArn", "arn:aws:iam::123:server-certificate/x", "ACM certificate ARN"),
        ("ingressCidrs", ["10.0.0.0/33"], "not a valid IPv4 CIDR"),
    ],
)
def test_network_rules(staging_config, key, value, rule):
    staging_config["golden-fleet:network"][key] = value
    refused(staging_config, f"golden-fleet:network.{key}", rule)


def test_public_and_private_subnets_disjoint(staging_config):
    network = staging_config["golden-fleet:network"]
    network["privateSubnetIds"] = [network["publicSubnetIds"][0], "subnet-0a1b2c3d4e5f60102"]
    refused(staging_config, "golden-fleet:network", "both public and private")


def test_image_mode_must_be_known(staging_config):
    staging_config["golden-fleet:image"] = {"mode": "rebuild"}
    refused(staging_config, "golden-fleet:image", "mode must be 'bake' or 'promote'")


@pytest.mark.parametrize(
    "key, value, rule",
    [
        ("shareWithAccounts", ["2222"], "not well-formed"),
        ("copyToRegions", ["mars-1"], "not well-formed"),
        ("varFile", "../secrets.pkrvars.hcl", "inside the project"),
        ("varFile", "packer/x.json", "pkrvars.hcl"),
        ("runtime", "ruby", "'python', 'nodejs' or 'openjdk17'"),
        ("keepSshd", "yes", "valid boolean"),
    ],
)
def test_bake_rules(staging_config, key, value, rule):
    staging_config["golden-fleet:image"][key] = value
    refused(staging_config, f"golden-fleet:image.{key}", rule)


def test_keep_sshd_is_off_unless_the_stack_asks(staging_config):
    """The image has no SSH daemon by default; image.keepSshd keeps it (PKR_VAR_keep_sshd)."""
    from components.golden_image import bake_environment

    assert parse_stack_config(staging_config).image.keep_sshd is False
    staging_config["golden-fleet:image"]["keepSshd"] = True
    bake = parse_stack_config(staging_config).image
    assert bake.keep_sshd is True and bake_environment(bake)["PKR_VAR_keep_sshd"] == "true"


def test_promote_needs_an_owner_account(prod_config):
    prod_config["golden-fleet:image"] = {"mode": "promote", "ownerAccountId": "11111111111"}
    refused(prod_config, "golden-fleet:image.ownerAccountId", "not well-formed")
    prod_config["golden-fleet:image"] = {"mode": "promote"}
    refused(prod_config, "golden-fleet:image.ownerAccountId", "is required")


def test_promote_refuses_bake_settings(prod_config):
    prod_config["golden-fleet:image"]["shareWithAccounts"] = ["222222222222"]
    refused(prod_config, "golden-fleet:image.shareWithAccounts", "unknown key")


def test_tls_policy_must_be_tls13(prod_config):
    prod_config["golden-fleet:loadBalancer"]["sslPolicy"] = "ELBSecurityPolicy-2016-08"
    refused(prod_config, "golden-fleet:loadBalancer.sslPolicy", "TLS 1.3 policy")


# --- structure ----------------------------------------------------------------------------------
def test_unknown_top_level_key_is_refused(staging_config):
    staging_config["golden-fleet:fleet"] = {"blue": {}}
    refused(staging_config, "golden-fleet:fleet", "unknown key")


def test_unknown_nested_key_is_refused(staging_config):
    staging_config["golden-fleet:fleets"]["blue"]["capacty"] = {"min": 1}
    refused(staging_config, "golden-fleet:fleets.blue.capacty", "unknown key")


def test_missing_keys_are_named(staging_config):
    del staging_config["golden-fleet:traffic"], staging_config["aws:region"]
    refused(staging_config, "golden-fleet:traffic", "is required")
    refused(staging_config, "aws:region", "is required")


def test_every_problem_is_reported_at_once(staging_config):
    """One run lists all faults, so an operator fixes a file in one pass."""
    staging_config["golden-fleet:fleets"]["blue"]["version"] = "latest"
    staging_config["golden-fleet:service"]["port"] = 22
    staging_config["golden-fleet:typo"] = 1
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(staging_config)
    assert len(caught.value.problems) == 3, caught.value.problems


def test_other_namespaces_are_left_alone(staging_config):
    staging_config["aws:profile"] = "ops"
    staging_config["pulumi:tags"] = {"team": "checkout"}
    assert parse_stack_config(staging_config).service.name == "checkout"


# --- derived colors -----------------------------------------------------------------------------
def test_live_and_stable_colors(staging_config):
    staging_config["golden-fleet:traffic"] = {"blue": 10, "green": 90}
    config = parse_stack_config(staging_config)
    assert config.live_color is Color.GREEN
    assert config.stable_color is Color.BLUE  # release.stable in the file: rollback target
    del staging_config["golden-fleet:release"]
    assert parse_stack_config(staging_config).stable_color is Color.GREEN


# --- health ------------------------------------------------------------------------------------
def test_health_defaults_when_the_section_is_absent(staging_config):
    """No golden-fleet:health: 15-minute capacity wait, 60-minute refresh wait, and alarms."""
    del staging_config["golden-fleet:health"]
    health = parse_stack_config(staging_config).health
    assert (health.capacity_timeout, health.refresh_timeout) == (900, 3600)
    assert health.error_rate.threshold_percent == 5.0 and health.error_rate.min_requests == 20
    assert health.unhealthy_hosts.threshold == 1
    assert health.p99_latency.threshold_seconds == 2.0
    lb = health.load_balancer_5xx
    assert (lb.threshold_percent, lb.min_requests) == (1.0, 20)
    for window in (health.error_rate, health.unhealthy_hosts, health.p99_latency, lb):
        assert (window.period, window.evaluation_periods, window.datapoints_to_alarm) == (60, 3, 2)


def test_prod_health_is_stricter_than_staging(staging_config, prod_config):
    """Prod tolerates fewer errors and less latency, and waits long enough for its checkpoints."""
    staging = parse_stack_config(staging_config)
    prod = parse_stack_config(prod_config)
    assert prod.health.error_rate.threshold_percent < staging.health.error_rate.threshold_percent
    assert prod.health.p99_latency.threshold_seconds < staging.health.p99_latency.threshold_seconds
    assert prod.health.unhealthy_hosts.evaluation_periods <= (
        staging.health.unhealthy_hosts.evaluation_periods
    )
    refresh = prod.instance_refresh
    checkpoints = len(refresh.checkpoint_percentages) * refresh.checkpoint_delay
    assert prod.health.refresh_timeout > checkpoints + refresh.instance_warmup


@pytest.mark.parametrize(
    "key, value, rule",
    [
        ("capacityTimeout", 0, "greater than or equal to 60"),
        ("capacityTimeout", 7201, "less than or equal to 7200"),
        ("refreshTimeout", 59, "greater than or equal to 60"),
        ("refreshTimeout", 172_801, "less than or equal to 172800"),
        ("errorRate.datapointsToAlarm", 0, "greater than or equal to 1"),
        ("errorRate.minRequests", 1_000_001, "less than or equal to 1000000"),
        ("unhealthyHosts.threshold", 1001, "less than or equal to 1000"),
        ("p99Latency.evaluationPeriods", 1441, "less than or equal to 1440"),
        ("errorRate.period", 86_460, "less than or equal to 86400"),
        ("errorRate", 5, "should be an object"),
        ("errorRate.thresholdPercent", 0, "greater than 0"),
        ("errorRate.thresholdPercent", 101, "less than or equal to 100"),
        ("errorRate.minRequests", 0, "greater than or equal to 1"),
        ("unhealthyHosts.threshold", 0, "greater than or equal to 1"),
        ("p99Latency.thresholdSeconds", 0, "greater than 0"),
        ("p99Latency.thresholdSeconds", 4001, "less than or equal to 4000"),
        ("p99Latency.period", 30, "greater than or equal to 60"),
        ("p99Latency.period", 90, "not a multiple of 60"),
        ("unhealthyHosts.evaluationPeriods", 0, "greater than or equal to 1"),
        ("errorRate.datapointsToAlarm", 4, "must not exceed evaluationPeriods"),
        ("loadBalancer5xx", 1, "should be an object"),
        ("loadBalancer5xx.thresholdPercent", 0, "greater than 0"),
        ("loadBalancer5xx.thresholdPercent", 100.5, "less than or equal to 100"),
        ("loadBalancer5xx.minRequests", 0, "greater than or equal to 1"),
        ("loadBalancer5xx.minRequests", 1_000_001, "less than or equal to 1000000"),
        ("loadBalancer5xx.period", 90, "not a multiple of 60"),
        ("loadBalancer5xx.period", 30, "greater than or equal to 60"),
        ("loadBalancer5xx.evaluationPeriods", 0, "greater than or equal to 1"),
        ("loadBalancer5xx.datapointsToAlarm", 4, "must not exceed evaluationPeriods"),
        ("loadBalancer5xx.threshold", 1, "unknown key"),
    ],
)
def test_health_bounds(staging_config, key, value, rule):
    section = staging_config["golden-fleet:health"]
    *parents, leaf = key.split(".")
    for parent in parents:
        section = section.setdefault(parent, {})
    section[leaf] = value
    refused(staging_config, f"golden-fleet:health.{key}", rule)


def test_alarm_window_within_cloudwatch_limit(staging_config):
    """CloudWatch refuses period x evaluationPeriods above one day."""
    staging_config["golden-fleet:health"]["p99Latency"] = {
        "period": 3600,
        "evaluationPeriods": 25,
        "datapointsToAlarm": 1,
    }
    refused(staging_config, "golden-fleet:health.p99Latency.evaluationPeriods", "86400")
    staging_config["golden-fleet:health"]["loadBalancer5xx"] = {
        "period": 3600,
        "evaluationPeriods": 25,
        "datapointsToAlarm": 1,
    }
    refused(staging_config, "golden-fleet:health.loadBalancer5xx.evaluationPeriods", "86400")


def test_both_stack_files_set_the_load_balancer_alarm_prod_stricter(staging_config, prod_config):
    """The load balancer's 5xx alarm is an operator's setting in both files (what they edit),
    and prod tolerates fewer of the balancer's own 5xx, over more requests, than staging."""
    for config in (staging_config, prod_config):
        assert set(config["golden-fleet:health"]["loadBalancer5xx"]) == {
            "thresholdPercent",
            "minRequests",
            "period",
            "evaluationPeriods",
            "datapointsToAlarm",
        }
    staging = parse_stack_config(staging_config).health.load_balancer_5xx
    prod = parse_stack_config(prod_config).health.load_balancer_5xx
    assert prod.threshold_percent < staging.threshold_percent
    assert prod.min_requests >= staging.min_requests


@pytest.mark.parametrize(
    "key, value",
    [
        ("capacityTimeout", True),
        ("capacityTimeout", "900"),
        ("capacityTimeout", 900.0),
        ("refreshTimeout", False),
        ("errorRate.thresholdPercent", True),
        ("errorRate.thresholdPercent", "5"),
        ("unhealthyHosts.threshold", 1.0),
        ("p99Latency.thresholdSeconds", False),
        ("p99Latency.period", "60"),
        ("errorRate.minRequests", True),
        ("errorRate.evaluationPeriods", 3.0),
        ("unhealthyHosts.datapointsToAlarm", "2"),
        ("loadBalancer5xx.thresholdPercent", "1"),
        ("loadBalancer5xx.thresholdPercent", True),
        ("loadBalancer5xx.minRequests", 20.0),
        ("loadBalancer5xx.period", True),
    ],
)
def test_health_values_are_strict(staging_config, key, value):
    """No boolean, string or float where an integer is meant; no boolean or string as a number."""
    section = staging_config["golden-fleet:health"]
    *parents, leaf = key.split(".")
    for parent in parents:
        section = section[parent]
    section[leaf] = value
    refused(staging_config, f"golden-fleet:health.{key}", "valid")


def test_refresh_timeout_must_outlast_the_checkpoints(prod_config):
    """3 checkpoints x 600 s + 180 s warmup = 1980 s: a shorter wait fails every rollout."""
    prod_config["golden-fleet:health"]["refreshTimeout"] = 1980
    refused(prod_config, "golden-fleet:health.refreshTimeout", "must exceed 1980 seconds")
    prod_config["golden-fleet:health"]["refreshTimeout"] = 1981
    assert parse_stack_config(prod_config).health.refresh_timeout == 1981


def test_unknown_health_key_is_refused(staging_config):
    staging_config["golden-fleet:health"]["errorRate"]["treshold"] = 5
    refused(staging_config, "golden-fleet:health.errorRate.treshold", "unknown key")
