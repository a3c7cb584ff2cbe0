"""``python -m release.refresh``: the program's own instance refresh, against the local AWS API
(moto) with the instance-refresh calls answered by a model of the documented API
(tests/refresh_model.py): every refresh started by anyone, in shuffled order, with the group's
saved settings changed only by a successful refresh.

Each test states one invariant of issue "the program owns the refresh":
- a new version reaches the group only inside StartInstanceRefresh's DesiredConfiguration;
- a refresh AWS rolls back leaves the group on the old version, and the command says so;
- a finished refresh of another configuration never blocks; one still running is never doubled;
- an interrupted run resumes (adopts) its own refresh; a rerun after success starts nothing.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from layered_images import teach_image_lifecycle
from live_fixtures import REGION, World
from refresh_model import RefreshService

from components.config import InstanceRefreshConfig
from components.refresh_spec import RefreshSpec, refresh_preferences
from release import refresh as command
from release.live import Clients

ROOT = Path(__file__).resolve().parent.parent
ALARMS = ["checkout-staging-green-unhealthy-hosts", "checkout-staging-lb-elb-5xx"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Fleet:
    """One color on moto, its refreshes answered by the model, the command's calls recorded."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.model = RefreshService(world.autoscaling, world.ec2)
        # The command's own Auto Scaling client: every request it sends is recorded.
        import boto3

        self.group_client = boto3.client("autoscaling", region_name=REGION)
        self.sent: list[tuple[str, dict]] = []
        self.group_client.meta.events.register(
            "provide-client-params.autoscaling.*",
            lambda params, model, **_: self.sent.append((model.name, dict(params))),
        )
        self.clients = Clients(
            autoscaling=self.group_client,
            refreshes=self.model,
            ec2=world.ec2,
            elbv2=world.elbv2,
            cloudwatch=world.cloudwatch,
        )

    def color(
        self,
        versions: list[str],
        on: str,
        desired: int = 2,
        color: str = "green",
        instance_type: str = "t3.micro",
    ):
        self.made = self.world.color(
            color,
            versions,
            group_on=on,
            instances_on=on,
            desired=desired,
            instance_type=instance_type,
        )
        return self.made

    def spec(self, version: str, timeout: int = 3600, types=("t3.micro",)) -> RefreshSpec:
        made = self.made
        return RefreshSpec(
            region=REGION,
            group=made.group,
            target_group_arn=made.target_group_arn,
            template_id=made.template_id,
            template_version=made.template_versions[version],
            instance_types=tuple(types),
            preferences=refresh_preferences(InstanceRefreshConfig(), ALARMS),
            timeout=timeout,
        )

    def run(self, spec: RefreshSpec, retry: bool = False, poll: float = 15):
        clock, out, err = Clock(), [], []
        code = command.converge(
            command.Run(
                clients=self.clients,
                spec=spec,
                out=out.append,
                err=err.append,
                poll=poll,
                retry=retry,
                clock=clock,
                sleep=clock.sleep,
            )
        )
        return code, out, err, clock

    def saved_version(self) -> str:
        group = self.world.autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.made.group]
        )["AutoScalingGroups"][0]
        return group["LaunchTemplate"]["Version"]

    def requests_sent(self, name: str) -> list[dict]:
        return [params for call, params in self.sent if call == name]


@pytest.fixture
def fleet(world):
    return Fleet(world)


def test_a_new_version_reaches_the_group_only_inside_the_refresh_desired_configuration(fleet):
    """The command never sends UpdateAutoScalingGroup; StartInstanceRefresh carries the new
    version as DesiredConfiguration with the preferences and alarms; AWS saves it on the group
    when the refresh succeeds; the last stdout line says what the group really saves."""
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    fleet.model.will("InProgress", "Baking", "Successful")
    code, out, err, _ = fleet.run(fleet.spec("1.5.0"))
    assert code == 0, err
    assert fleet.requests_sent("UpdateAutoScalingGroup") == []
    [start] = fleet.model.requests("StartInstanceRefresh")
    assert start["DesiredConfiguration"] == {
        "LaunchTemplate": {"LaunchTemplateId": fleet.made.template_id, "Version": "2"}
    }
    assert start["Preferences"]["AutoRollback"] is True
    assert start["Preferences"]["AlarmSpecification"] == {"Alarms": ALARMS}
    assert fleet.saved_version() == "2"
    result = json.loads(out[-1])
    assert result["launchTemplateVersion"] == "2" and result["refreshId"]
    assert any("Baking" in line for line in err), err


def test_auto_rollback_leaves_the_old_version_saved_and_the_command_says_so(fleet):
    """An alarm rolls the refresh back: the group still saves version 1 (the old one), its
    instances run 1, and the one-line failure says exactly that, with what to do."""
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    fleet.model.will("InProgress", "RollbackInProgress", "RollbackSuccessful")
    code, out, err, _ = fleet.run(fleet.spec("1.5.0"))
    assert code == 1 and out == []
    assert fleet.saved_version() == "1"
    message = err[-1]
    assert message.startswith("python -m release.refresh: error: ")
    assert "ended RollbackSuccessful: alarm checkout-staging-green-unhealthy-hosts in ALARM" in (
        message
    )
    assert "AWS kept the previous configuration: the group saves launch-template version 1" in (
        message
    )
    assert "2 in-service instances on launch-template version 1" in message
    assert "GF_RETRY_REFRESH=1" in message and "\n" not in message


def test_the_providers_order_would_make_the_rollback_restore_the_new_version(fleet):
    """Why the group must never receive the version: driven the provider's way
    (UpdateAutoScalingGroup with the new version, then StartInstanceRefresh), the model's
    rollback keeps version 2 — what terraform-provider-aws#34189 reports."""
    made = fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    new = {"LaunchTemplate": {"LaunchTemplateId": made.template_id, "Version": "2"}}
    fleet.world.autoscaling.update_auto_scaling_group(AutoScalingGroupName=made.group, **new)
    fleet.model.will("InProgress", "RollbackInProgress", "RollbackSuccessful")
    fleet.model.start_instance_refresh(
        AutoScalingGroupName=made.group,
        DesiredConfiguration=new,
        Preferences={"AutoRollback": True},
    )
    while any(r.status != "RollbackSuccessful" for r in fleet.model.of(made.group)):
        fleet.model.describe_instance_refreshes(AutoScalingGroupName=made.group)
    assert fleet.saved_version() == "2"


def test_the_next_run_after_a_rollback_reports_it_and_starts_nothing(fleet):
    """`pulumi up` again after a rollback: the command refuses at once (no second refresh of the
    version AWS just rolled back), naming the refresh, AWS's reason and the version kept."""
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    fleet.model.will("InProgress", "RollbackSuccessful")
    assert fleet.run(fleet.spec("1.5.0"))[0] == 1
    code, _out, err, clock = fleet.run(fleet.spec("1.5.0"))
    assert code == 1 and clock.now == 0, "refused at once, without waiting"
    assert len(fleet.model.requests("StartInstanceRefresh")) == 1
    assert "ended RollbackSuccessful" in err[-1] and "keeps launch-template version 1" in err[-1]


def test_a_retry_asked_for_starts_the_rolled_back_version_again_and_converges(fleet):
    """With GF_RETRY_REFRESH=1 the same configuration is tried again; when it succeeds the
    group saves it and the command reports it."""
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    fleet.model.will("InProgress", "RollbackSuccessful")
    fleet.model.will("InProgress", "Successful")
    assert fleet.run(fleet.spec("1.5.0"))[0] == 1
    code, _out, err, _ = fleet.run(fleet.spec("1.5.0"), retry=True)
    assert code == 0, err
    assert fleet.saved_version() == "2"
    assert len(fleet.model.requests("StartInstanceRefresh")) == 2


def test_a_stale_failed_refresh_of_another_version_never_blocks(fleet):
    """An old refresh toward version 2 failed on a briefly firing alarm; the group runs version
    3 healthy. A capacity-only rerun for version 3 starts nothing and is ready at once."""
    made = fleet.color(["1.4.0", "1.5.0", "1.6.0"], on="1.6.0")
    fleet.model.existing(
        made.group,
        "RollbackSuccessful",
        {"LaunchTemplate": {"LaunchTemplateId": made.template_id, "Version": "2"}},
        reason="alarm checkout-staging-green-error-rate in ALARM",
        age_minutes=600,
    )
    fleet.model.existing(
        made.group,
        "Failed",
        {"LaunchTemplate": {"LaunchTemplateId": made.template_id, "Version": "2"}},
        reason="Instance i-0bad failed ELB health checks.",
        age_minutes=300,
    )
    code, _out, err, clock = fleet.run(fleet.spec("1.6.0"))
    assert code == 0, err
    assert clock.now == 0 and fleet.model.requests("StartInstanceRefresh") == []
    assert "already runs launch-template version 3: no refresh" in err[0]


def test_an_interrupted_run_adopts_its_own_running_refresh(fleet):
    """`pulumi up` was interrupted while its refresh ran: the rerun waits for that very refresh
    (no second StartInstanceRefresh) and converges."""
    made = fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    fleet.model.existing(
        made.group,
        "InProgress",
        {"LaunchTemplate": {"LaunchTemplateId": made.template_id, "Version": "2"}},
        "InProgress",
        "Successful",
        age_minutes=3,
    )
    code, _out, err, _ = fleet.run(fleet.spec("1.5.0"))
    assert code == 0, err
    assert fleet.model.requests("StartInstanceRefresh") == []
    assert err[0].startswith("adopting instance refresh ")
    assert fleet.saved_version() == "2"


def test_a_foreign_running_refresh_fails_at_once_with_what_to_do(fleet):
    """A refresh toward another version (or without a desired configuration) is running: one
    refresh at a time, so the command fails at once, names it, and never cancels it."""
    made = fleet.color(["1.4.0", "1.5.0", "1.6.0"], on="1.4.0")
    fleet.model.existing(made.group, "InProgress", None, "InProgress", age_minutes=3)
    code, _, err, clock = fleet.run(fleet.spec("1.6.0"))
    assert code == 1 and clock.now == 0
    assert "started without a desired configuration" in err[-1]
    assert "cancel-instance-refresh" in err[-1]
    assert fleet.model.requests("StartInstanceRefresh") == []
    assert fleet.model.requests("CancelInstanceRefresh") == []


def test_a_refresh_started_between_read_and_start_is_not_doubled(fleet):
    """Someone starts the same configuration's refresh after our read: AWS refuses our
    StartInstanceRefresh (InstanceRefreshInProgress); we read again and adopt theirs."""
    made = fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    real_start = fleet.model.start_instance_refresh

    def racing_start(**request):
        if not fleet.model.refreshes:
            fleet.model.existing(
                made.group,
                "InProgress",
                request["DesiredConfiguration"],
                "InProgress",
                "Successful",
                age_minutes=0,
            )
        return real_start(**request)

    fleet.model.start_instance_refresh = racing_start
    code, _, err, _ = fleet.run(fleet.spec("1.5.0"))
    assert code == 0, err
    assert len(fleet.model.refreshes) == 1, "one refresh in AWS, never two"
    assert any(line.startswith("adopting instance refresh") for line in err)


def test_a_refresh_not_listed_yet_right_after_its_start_is_waited_for(fleet):
    """AWS's reads are eventually consistent: the refresh just started is missing from the first
    two DescribeInstanceRefreshes answers. The command waits for it (no second start, no
    failure) and converges."""
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    fleet.model.unlisted_reads = 2
    fleet.model.will("InProgress", "Successful")
    code, _, err, clock = fleet.run(fleet.spec("1.5.0"))
    assert code == 0, err
    assert len(fleet.model.requests("StartInstanceRefresh")) == 1
    assert any("does not list instance refresh" in line for line in err), err
    assert clock.now >= 30, "it waited a poll for each unlisted read"


def test_refused_starts_are_retried_after_a_pause_not_in_a_tight_loop(fleet):
    """A refresh AWS refuses to start (InstanceRefreshInProgress) that reads do not show yet: the
    command pauses a poll between attempts, and fails at the timeout."""
    from botocore.exceptions import ClientError

    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")

    def refused(**request):
        fleet.model.calls.append(("StartInstanceRefresh", request))
        if len(fleet.model.requests("StartInstanceRefresh")) > 20:
            raise RuntimeError("StartInstanceRefresh retried in a tight loop")
        raise ClientError(
            {
                "Error": {
                    "Code": "InstanceRefreshInProgress",
                    "Message": "An Instance Refresh is already in progress",
                }
            },
            "StartInstanceRefresh",
        )

    fleet.model.start_instance_refresh = refused
    code, _, err, clock = fleet.run(fleet.spec("1.5.0", timeout=60), poll=15)
    assert code == 1 and clock.now == 60
    assert len(fleet.model.requests("StartInstanceRefresh")) == 5, "one attempt per poll"
    assert "another instance refresh started meanwhile" in err[-1]


def test_a_cold_color_gets_the_new_version_saved_before_it_ever_scales_up(fleet):
    """desired 0: nothing to replace, but the refresh still runs so that AWS saves the new
    configuration; a later scale-up then launches the new version, not the old one."""
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0", desired=0)
    fleet.model.will("Successful")
    code, _out, err, _ = fleet.run(fleet.spec("1.5.0"))
    assert code == 0, err
    assert fleet.saved_version() == "2"


def test_a_rerun_after_success_starts_nothing(fleet):
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    fleet.model.will("InProgress", "Successful")
    assert fleet.run(fleet.spec("1.5.0"))[0] == 0
    code, _, err, clock = fleet.run(fleet.spec("1.5.0"))
    assert code == 0 and clock.now == 0, err
    assert len(fleet.model.requests("StartInstanceRefresh")) == 1


def test_unhealthy_targets_after_success_time_out_with_the_truth(fleet):
    """The refresh succeeded but a target is not healthy: the command waits, then fails at the
    timeout naming the health problem; it never sleeps past the deadline."""
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    fleet.world.make_unhealthy("green")
    fleet.model.will("Successful")
    code, _, err, clock = fleet.run(fleet.spec("1.5.0", timeout=120), poll=50)
    assert code == 1
    assert clock.now == 120
    assert "timed out after 120 s waiting for healthy targets" in err[-1]
    assert "healthy" in err[-1]


def test_a_timeout_while_the_refresh_runs_leaves_it_running_for_the_next_run(fleet):
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    fleet.model.will(*["InProgress"] * 50)
    code, _, err, clock = fleet.run(fleet.spec("1.5.0", timeout=60), poll=15)
    assert code == 1 and clock.now == 60
    assert "the next `pulumi up` adopts it" in err[-1]
    assert [r.status for r in fleet.model.refreshes] == ["InProgress"]


def test_an_unreadable_aws_is_retried_and_reported_once(fleet):
    """AWS refuses reads: one line per distinct problem, the refresh is never started blind."""
    from botocore.exceptions import ClientError

    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")

    def denied(**_):
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeInstanceRefreshes"
        )

    fleet.model.describe_instance_refreshes = denied
    code, _, err, _ = fleet.run(fleet.spec("1.5.0", timeout=60))
    assert code == 1
    assert sum("AccessDenied" in line for line in err) == 2, err  # said once, then the timeout
    assert fleet.model.requests("StartInstanceRefresh") == []


# ---------------------------------------------------------------------------------------------
# As a process: exit codes, stdin, signals
# ---------------------------------------------------------------------------------------------
def _spec_text(**overrides) -> str:
    spec = {
        "region": "eu-west-1",
        "group": "checkout-green-asg-0123abcd",
        "targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/"
        "checkout-green/0123456789abcdef",
        "launchTemplate": {"id": "lt-0123456789abcdef0", "version": "2"},
        "instanceTypes": ["t3.micro"],
        "preferences": {"MinHealthyPercentage": 90},
        "timeout": 60,
    }
    spec.update(overrides)
    return json.dumps(spec)


@pytest.mark.parametrize(
    "overrides, named",
    [
        (
            {"launchTemplate": {"id": "lt-0123456789abcdef0", "version": "$Latest"}},
            "launchTemplate.version",
        ),
        ({"group": "g\n"}, "group"),
        ({"preferences": {"AutoRollback": "yes"}}, "preferences.AutoRollback"),
        ({"preferences": {"CheckpointPercentages": [50, 90]}}, "preferences.CheckpointPercentages"),
        ({"timeout": 0}, "timeout"),
        ({"instanceTypes": []}, "instanceTypes"),
    ],
)
def test_a_bad_spec_exits_2_naming_the_field(overrides, named, capsys):
    code = command.main([], stdin=io.StringIO(_spec_text(**overrides)), environ={})
    assert code == 2
    err = capsys.readouterr().err
    assert f"[{named}]" in err and err.count("\n") == 1


def test_sigterm_during_an_aws_call_stops_the_command_with_130(tmp_path):
    """SIGTERM (a CI cancel) while a call hangs: exit 130 with one line, never swallowed by
    botocore's retries (Stop is not an Exception). The endpoint is a loopback socket that
    accepts and never answers."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "release.refresh"],
        cwd=ROOT,
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        process.stdin.write(_spec_text())
        process.stdin.close()
        connection, _ = server.accept()  # the command is inside its first AWS call
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        err = process.stderr.read()
        connection.close()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()
        process.stderr.close()
        server.close()
    assert process.returncode == 130, err
    assert "interrupted while converging checkout-green-asg-0123abcd" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# The program's own spec, end to end: what the mock engine registers, run against the model
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize(
    "fate",
    [("InProgress", "Successful"), ("InProgress", "RollbackInProgress", "RollbackSuccessful")],
)
def test_the_programs_spec_refreshes_and_rolls_back_truthfully(
    fleet, stack, fate, staging_config, prod_config
):
    """Green's refresh spec exactly as the program registers it for each stack file (its
    preferences, alarms and instance types: several make a mixed-instances policy), with
    only the names of what the mock engine invented swapped for the local API's: AWS's rules
    (AutoRollback needs a numbered desired configuration) accept it, success saves the new
    version, and a rollback leaves the old one saved and reports it — the next `pulumi up`
    then refuses the same configuration without a new refresh."""
    import dataclasses

    from harness import run_program

    from components.refresh_spec import parse_spec

    config = {"staging": staging_config, "prod": prod_config}[stack]
    program = run_program(config, stack=stack)
    written = parse_spec(
        program.one("command:local:Command", "checkout-green-refresh").inputs["stdin"]
    )
    made = fleet.color(["1.4.0", "1.5.0"], on="1.4.0", instance_type=written.instance_types[0])
    spec = dataclasses.replace(
        written,
        group=made.group,
        target_group_arn=made.target_group_arn,
        template_id=made.template_id,
        template_version="2",
        region=REGION,
    )
    assert spec.mixed is (len(config["golden-fleet:service"]["instanceTypes"]) > 1)
    fleet.model.will(*fate)
    code, out, err, _ = fleet.run(spec)
    [start] = fleet.model.requests("StartInstanceRefresh")
    assert start["Preferences"] == dict(written.preferences)
    assert start["DesiredConfiguration"] == spec.desired_configuration()
    group = fleet.world.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[made.group]
    )["AutoScalingGroups"][0]
    saved = (
        group.get("MixedInstancesPolicy", {})
        .get("LaunchTemplate", {})
        .get("LaunchTemplateSpecification")
        or group["LaunchTemplate"]
    )
    if fate[-1] == "Successful":
        assert code == 0, err
        assert saved["Version"] == "2" and json.loads(out[-1])["launchTemplateVersion"] == "2"
    else:
        assert code == 1 and saved["Version"] == "1", err
        assert "AWS kept the previous configuration" in err[-1]
        again = fleet.run(spec)
        assert again[0] == 1 and len(fleet.model.requests("StartInstanceRefresh")) == 1


def _idle_or_serving(fleet, green_weight: int):
    """Blue serves (1.4.0), green is refreshed onto 1.5.0 with green_weight % of the traffic."""
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0", color="blue")
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0", color="green")
    fleet.world.forward({"blue": 100 - green_weight, "green": green_weight})
    fleet.model.will("InProgress", "Successful")
    return fleet.run(fleet.spec("1.5.0"))


def test_an_idle_colors_refresh_is_not_judged_by_the_load_balancers_alarms(fleet):
    """While blue serves errors, the load balancer's 5xx alarm (no color dimension) would roll
    back idle green's refresh of the fix: green at 0 % is refreshed with its own alarms only, and
    the command says why."""
    code, _, err, _ = _idle_or_serving(fleet, 0)
    assert code == 0, err
    [start] = fleet.model.requests("StartInstanceRefresh")
    assert start["Preferences"]["AlarmSpecification"] == {
        "Alarms": ["checkout-staging-green-unhealthy-hosts"]
    }
    assert start["Preferences"]["AutoRollback"] is True
    assert any("takes no traffic" in line and "checkout-staging-lb-elb-5xx" in line
               for line in err), err  # fmt: skip


def test_a_serving_colors_refresh_keeps_the_load_balancers_alarms(fleet):
    code, _, err, _ = _idle_or_serving(fleet, 10)
    assert code == 0, err
    [start] = fleet.model.requests("StartInstanceRefresh")
    assert start["Preferences"]["AlarmSpecification"] == {"Alarms": ALARMS}


def test_a_serving_colors_rollback_by_the_load_balancers_alarm_does_not_block_the_next_run(
    fleet,
):
    """Green serves 10 %, so its refresh watches the load balancer's 5xx alarm too; an incident
    on blue fires it and AWS rolls green's refresh back. That run fails saying the next one
    starts again, and the next `pulumi up` (no GF_RETRY_REFRESH) does, and converges."""
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0", color="blue")
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0", color="green")
    fleet.world.forward({"blue": 90, "green": 10})
    fleet.model.will("InProgress", "RollbackInProgress", "RollbackSuccessful",
                     alarm="checkout-staging-lb-elb-5xx")  # fmt: skip
    fleet.model.will("InProgress", "Successful")
    code, _, err, _ = fleet.run(fleet.spec("1.5.0"))
    assert code == 1 and fleet.saved_version() == "1"
    assert ("rolled back by the load balancer's alarm checkout-staging-lb-elb-5xx, not this "
            "color's: the next `pulumi up` starts it again") in err[-1], err  # fmt: skip
    code, out, err, _ = fleet.run(fleet.spec("1.5.0"))
    assert code == 0, err
    assert len(fleet.model.requests("StartInstanceRefresh")) == 2
    assert any("was rolled back by the load balancer's alarm checkout-staging-lb-elb-5xx, not "
               "this color's: starting again" in line for line in err), err  # fmt: skip
    assert fleet.saved_version() == "2" and json.loads(out[-1])["launchTemplateVersion"] == "2"


def test_an_unreadable_listener_keeps_every_alarm_and_says_so(fleet):
    from release import live

    def refused(**_):
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}},
                          "DescribeTargetGroups")  # fmt: skip

    fleet.color(["1.4.0", "1.5.0"], on="1.4.0", color="green")

    class Denied:  # the real client, but DescribeTargetGroups is refused
        def __getattr__(self, name):
            return refused if name == "describe_target_groups" else getattr(real, name)

    real = fleet.clients.elbv2
    fleet.clients = dataclasses.replace(fleet.clients, elbv2=Denied())
    fleet.model.will("InProgress", "Successful")
    code, _, err, _ = fleet.run(fleet.spec("1.5.0"))
    assert code == 0, err
    [start] = fleet.model.requests("StartInstanceRefresh")
    assert start["Preferences"]["AlarmSpecification"] == {"Alarms": ALARMS}
    assert any("could not read its traffic share" in line and "AccessDenied" in line
               for line in err), err  # fmt: skip
    assert live.target_group_weight  # the one reader of the share


@pytest.mark.parametrize("mark", ["tag", "description", "disabled"])
def test_a_refresh_to_a_revoked_image_is_refused_before_it_starts(fleet, mark, monkeypatch):
    """Finding 5 of issue 24: a revoked (deprecated) image stayed launchable by id, and the
    refresh command put it on every instance. The owner's Revoked tag, the description prefix
    another account reads, or a disabled image: no StartInstanceRefresh."""
    teach_image_lifecycle(monkeypatch)  # description edits and DisableImage as documented
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    image_id = fleet.made.images["1.5.0"]
    ec2 = fleet.world.ec2
    if mark == "tag":
        ec2.create_tags(Resources=[image_id], Tags=[{"Key": "Revoked", "Value": "CVE-1"}])
    elif mark == "description":
        ec2.modify_image_attribute(
            ImageId=image_id, Description={"Value": "REVOKED: CVE-1 | checkout 1.5.0"}
        )
    else:
        ec2.disable_image(ImageId=image_id)
    fleet.model.will("InProgress", "Successful")
    code, _, err, _ = fleet.run(fleet.spec("1.5.0"))
    assert code == 1, err
    assert fleet.model.requests("StartInstanceRefresh") == [], "started a refresh to it"
    assert image_id in err[-1] and "not starting an instance refresh" in err[-1], err
    assert ("CVE-1" in err[-1]) if mark != "disabled" else ("disabled" in err[-1]), err
    assert fleet.saved_version() == "1"


def test_a_refresh_to_an_image_that_is_not_revoked_still_starts(fleet):
    fleet.color(["1.4.0", "1.5.0"], on="1.4.0")
    ec2 = fleet.world.ec2
    ec2.create_tags(
        Resources=[fleet.made.images["1.4.0"]], Tags=[{"Key": "Revoked", "Value": "CVE-1"}]
    )
    fleet.model.will("InProgress", "Successful")
    code, _, err, _ = fleet.run(fleet.spec("1.5.0"))
    assert code == 0, err
    assert len(fleet.model.requests("StartInstanceRefresh")) == 1
