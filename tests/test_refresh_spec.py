"""Pure rules of the refresh resource, without AWS or the Pulumi runtime: the spec the program
writes and the refresh command reads, the command line, the triggers, and the decision
(:func:`release.refresh.plan`) over every state AWS can report."""

from __future__ import annotations

import dataclasses
import datetime
import shlex

import pytest

from components.config import Capacity, InstanceRefreshConfig
from components.fleet import live_version, refresh_command, refresh_triggers
from components.refresh_spec import RefreshSpec, SpecError, parse_spec, refresh_preferences
from release.live import RUNNING, ColorState, Configuration, Instance, Refresh
from release.refresh import Action, plan

TG = (
    "arn:aws:elasticloadbalancing:eu-west-1:111111111111:targetgroup/checkout-green/"
    "0123456789abcdef"
)


def spec(types=("m6i.large",), version="7") -> RefreshSpec:
    return RefreshSpec(
        region="eu-west-1",
        group="checkout-green-asg-1a2b3c4",
        target_group_arn=TG,
        template_id="lt-0123456789abcdef0",
        template_version=version,
        instance_types=types,
        preferences=refresh_preferences(InstanceRefreshConfig(), ["a-alarm"]),
        timeout=3600,
    )


def test_the_command_line_is_the_interpreter_and_the_module_only():
    assert shlex.split(refresh_command("venv/bin/python")) == [
        "venv/bin/python",
        "-m",
        "release.refresh",
    ]
    assert shlex.split(refresh_command("/opt/my python/bin/python"))[0] == (
        "/opt/my python/bin/python"
    )


def test_triggers_are_version_types_and_capacity():
    capacity = Capacity(min=1, desired=2, max=3)
    base = refresh_triggers(4, ["m6i.large"], capacity)
    assert base == [4, "m6i.large", 1, 2, 3]
    assert refresh_triggers(5, ["m6i.large"], capacity) != base
    assert refresh_triggers(4, ["m6a.large"], capacity) != base
    assert refresh_triggers(4, ["m6i.large"], Capacity(min=1, desired=3, max=3)) != base


def test_a_plain_template_or_a_mixed_policy_as_the_desired_configuration():
    assert spec().desired_configuration() == {
        "LaunchTemplate": {"LaunchTemplateId": "lt-0123456789abcdef0", "Version": "7"}
    }
    mixed = spec(types=("m6i.large", "m6a.large")).desired_configuration()
    policy = mixed["MixedInstancesPolicy"]
    assert policy["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"] == "7"
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == [
        "m6i.large",
        "m6a.large",
    ]
    assert policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 100


def test_preferences_as_aws_spells_them_with_alarms_only_when_given():
    refresh = InstanceRefreshConfig.model_validate(
        {"checkpointPercentages": [20, 100], "checkpointDelay": 300}
    )
    prefs = refresh_preferences(refresh, [])
    assert "AlarmSpecification" not in prefs
    assert prefs["CheckpointPercentages"] == [20, 100] and prefs["CheckpointDelay"] == 300
    assert prefs["InstanceWarmup"] == 120 and prefs["AutoRollback"] is True
    assert refresh_preferences(refresh, ["x"])["AlarmSpecification"] == {"Alarms": ["x"]}


def test_the_spec_survives_its_own_json_and_refuses_what_aws_would():
    assert parse_spec(spec().to_json()) == spec()
    with pytest.raises(SpecError, match=r"^the refresh spec is not JSON"):
        parse_spec("{")
    with pytest.raises(SpecError, match=r"unknown keys \['extra'\]"):
        parse_spec(spec().to_json()[:-1] + ', "extra": 1}')
    text = spec().to_json().replace('"MinHealthyPercentage": 90', '"MinHealthyPercentage": 101')
    with pytest.raises(SpecError, match=r"^\[preferences.MinHealthyPercentage\]"):
        parse_spec(text)


@pytest.mark.parametrize(
    "stdout, version",
    [
        ('{"group": "g", "launchTemplateVersion": "7", "refreshId": "r"}\n', "7"),
        ("progress\n" + '{"launchTemplateVersion": "8"}', "8"),
        ("", None),
        ("not json", None),
    ],
)
def test_the_live_version_is_read_from_the_last_line(stdout, version):
    assert live_version(stdout) == version


# ---------------------------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------------------------
WANT = Configuration("lt-1", "7")
OLD = Configuration("lt-1", "6")


def group(saved: Configuration = OLD, on: str = "6", desired: int = 2) -> ColorState:
    return ColorState(
        group="g",
        desired=desired,
        template_id=saved.template_id,
        template_version=saved.version,
        image_id=None,
        refresh=None,
        instance_types=saved.instance_types,
        instances=tuple(Instance(f"i-{n}", "InService", on, "m6i.large") for n in range(desired)),
    )


def refresh(status: str, desired: Configuration | None, hour: int, rid: str = "") -> Refresh:
    return Refresh(
        status,
        refresh_id=rid or f"r-{hour}",
        desired=desired,
        start_time=datetime.datetime(2026, 12, 1, hour, tzinfo=datetime.UTC),
    )


@pytest.mark.parametrize("status", sorted(RUNNING))
def test_a_running_refresh_of_the_wanted_configuration_is_adopted(status):
    step = plan(group(), [refresh(status, WANT, 9)], WANT, retry=False)
    assert (step.action, step.refresh_id) == (Action.ADOPT, "r-9")


@pytest.mark.parametrize("other", [OLD, None, Configuration("lt-1", "7", ("m6i.large", "x.y"))])
def test_any_other_running_refresh_is_refused_never_doubled(other):
    step = plan(group(), [refresh("InProgress", other, 9)], WANT, retry=False)
    assert step.action is Action.REFUSE and "r-9" in step.message


def test_a_group_that_saves_and_runs_the_configuration_needs_no_refresh():
    step = plan(group(WANT, on="7"), [refresh("Failed", OLD, 8)], WANT, retry=False)
    assert step.action is Action.SETTLE


def test_stray_instances_of_a_cancelled_refresh_are_refreshed_again():
    """The group saves the configuration, but an instance still runs another version."""
    state = group(WANT, on="7")
    state = ColorState(
        **{
            **state.__dict__,
            "instances": (*state.instances, Instance("i-x", "InService", "5", "m6i.large")),
        }
    )
    assert plan(state, [], WANT, retry=False).action is Action.START


@pytest.mark.parametrize("status", ["Failed", "RollbackSuccessful", "RollbackFailed"])
def test_a_configuration_that_just_failed_is_not_started_again_unless_asked(status):
    history = [refresh(status, WANT, 9), refresh("Successful", OLD, 5)]
    refused = plan(group(), history, WANT, retry=False)
    assert refused.action is Action.REFUSE and status in refused.message
    assert "GF_RETRY_REFRESH=1" in refused.message
    assert plan(group(), history, WANT, retry=True).action is Action.START


def test_a_cancelled_configuration_is_started_again():
    assert plan(group(), [refresh("Cancelled", WANT, 9)], WANT, retry=False).action is (
        Action.START
    )


def test_only_the_newest_refresh_of_the_configuration_counts_whatever_the_listing_order():
    """Failed at 8, retried and cancelled at 9: the newest (Cancelled) decides, listed in any
    order; the plan is given them newest first (release.live.newest_first)."""
    from release.live import newest_first

    history = newest_first([refresh("Failed", WANT, 8), refresh("Cancelled", WANT, 9)])
    assert plan(group(), history, WANT, retry=False).action is Action.START


def test_an_idle_colors_preferences_drop_only_the_load_balancers_alarms():
    from components.alarm_names import is_load_balancer_alarm
    from components.refresh_spec import idle_color_preferences

    both = {"AutoRollback": True, "AlarmSpecification": {"Alarms": [
        "checkout-prod-green-error-rate", "checkout-prod-lb-elb-5xx"]}}  # fmt: skip
    assert idle_color_preferences(both) == {
        "AutoRollback": True,
        "AlarmSpecification": {"Alarms": ["checkout-prod-green-error-rate"]},
    }
    only_lb = {"AlarmSpecification": {"Alarms": ["checkout-prod-lb-elb-5xx"]}}
    assert idle_color_preferences(only_lb) == {}  # an empty AlarmSpecification is refused by AWS
    assert both["AlarmSpecification"]["Alarms"][1] == "checkout-prod-lb-elb-5xx"  # not mutated
    assert is_load_balancer_alarm("my-svc-lb-prod-lb-elb-5xx")
    assert not is_load_balancer_alarm("checkout-prod-lb-error-rate")
    assert not is_load_balancer_alarm("checkout-prod-blue-elb-5xx")


# ---------------------------------------------------------------------------------------------
# A rollback by an alarm that is not the color's own does not block a retry
# ---------------------------------------------------------------------------------------------
OWN = "checkout-prod-green-error-rate"
LB = "checkout-prod-lb-elb-5xx"


def ended(status: str, status_reason: str = "", rollback_reason: str = "",
          alarms: tuple[str, ...] = (OWN, LB)) -> Refresh:  # fmt: skip
    return dataclasses.replace(
        refresh(status, WANT, 9),
        status_reason=status_reason,
        rollback_reason=rollback_reason,
        alarms=alarms,
    )


@pytest.mark.parametrize("last", [
    ended("RollbackSuccessful", rollback_reason=f"alarm {LB} in ALARM"),
    ended("RollbackSuccessful", status_reason=f"Rolled back: the alarms {LB}."),
    ended("RollbackSuccessful", status_reason=f"Alarm '{LB}' went into ALARM state"),
    ended("RollbackSuccessful", rollback_reason=f"alarm {LB} in ALARM", alarms=(LB,)),
])  # fmt: skip
def test_a_rollback_by_the_load_balancers_alarm_alone_starts_again_saying_why(last):
    step = plan(group(), [last, refresh("Successful", OLD, 5)], WANT, retry=False)
    assert step.action is Action.START, step.message
    assert (
        f"instance refresh r-9 toward launch-template version 7 was rolled back by the load "
        f"balancer's alarm {LB}, not this color's: starting again"
    ) in step.message


@pytest.mark.parametrize("last, why", [
    (ended("RollbackSuccessful", rollback_reason=f"alarm {OWN} in ALARM"), "the color's own"),
    (ended("RollbackSuccessful", rollback_reason=f"alarms {LB}, {OWN} in ALARM"), "one is own"),
    (ended("RollbackSuccessful", status_reason=f"alarm {LB} in ALARM",
           rollback_reason=f"alarm {OWN} in ALARM"), "own in the other field"),
    (ended("RollbackSuccessful", rollback_reason="Instance i-0bad failed ELB health checks."),
     "no alarm"),
    (ended("RollbackSuccessful", rollback_reason="Rollback initiated by the user."), "manual"),
    (ended("RollbackSuccessful"), "no reason at all"),
    (ended("RollbackSuccessful", rollback_reason=LB), "does not say it is an alarm"),
    (ended("RollbackSuccessful", rollback_reason=f"alarm {LB} in ALARM; instance "
           "i-0123456789abcdef0 failed ELB health checks"), "an instance failed too"),
    (ended("RollbackSuccessful", rollback_reason=f"alarm {LB} in ALARM", alarms=()),
     "not in the refresh's AlarmSpecification"),
    (ended("RollbackSuccessful", rollback_reason=f"alarm {LB}-old in ALARM"), "a longer name"),
    (ended("RollbackSuccessful", rollback_reason=f"alarm x{LB} in ALARM"), "a longer name"),
    (ended("RollbackFailed", rollback_reason=f"alarm {LB} in ALARM"), "the rollback failed"),
    (ended("Failed", status_reason=f"alarm {LB} in ALARM"), "no rollback"),
])  # fmt: skip
def test_a_rollback_not_pinned_on_the_load_balancer_alone_keeps_refusing(last, why):
    step = plan(group(), [last], WANT, retry=False)
    assert step.action is Action.REFUSE, why
    assert "GF_RETRY_REFRESH=1" in step.message and "not this color's" not in step.message


@pytest.mark.parametrize("text, watched, named", [
    (f"alarm {LB} in ALARM", [LB, OWN], [LB]),
    (f"alarms {LB}, {OWN}.", [LB, OWN], sorted([LB, OWN])),
    (f"alarm {LB}.", [LB], [LB]),  # a full stop ends the sentence, not the name
    (f"alarm {LB}.old in ALARM", [LB], []),
    (f"alarm svc-{LB} in ALARM", [LB, f"svc-{LB}"], [f"svc-{LB}"]),  # the longer name only
    ("alarm my slow alarm in ALARM", ["my slow alarm", "slow"], ["my slow alarm"]),
    ("", [LB], []),
])  # fmt: skip
def test_alarms_are_named_only_as_whole_names_of_the_watched_ones(text, watched, named):
    from release.refresh import alarms_named

    assert alarms_named(text, watched) == named


def test_the_alarms_a_refresh_watched_are_read_from_its_preferences():
    from release.live import _refresh

    raw = {"Status": "RollbackSuccessful", "Preferences": {
        "AlarmSpecification": {"Alarms": [OWN, LB]}}}  # fmt: skip
    assert _refresh(raw).alarms == (OWN, LB)
    assert _refresh({"Status": "Failed", "Preferences": {}}).alarms == ()
