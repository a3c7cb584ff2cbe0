"""``python -m release.refresh``: start one color's instance refresh, wait for it, judge it.

Why the program, not the provider, starts refreshes. On a launch-template change the provider
first saves the new version on the group with ``UpdateAutoScalingGroup`` and only then calls
``StartInstanceRefresh`` without a desired configuration (terraform-provider-aws
``internal/service/autoscaling/group.go``, ``resourceGroupUpdate``: ``if
d.HasChange("launch_template") { input.LaunchTemplate = ...; shouldRefreshInstances = true }``,
the refresh started after ``UpdateAutoScalingGroup`` returns). A rollback then restores "the
configuration that you last saved on the Auto Scaling group before starting the instance
refresh" (EC2 Auto Scaling user guide, "Undo changes with a manual or auto rollback") -- the
*new* version, so a failed release is relaunched, not undone (hashicorp/terraform-provider-aws
#34189, open). The group resource therefore never receives a launch-template version after it
is created (components/fleet.py), and this command, run by each color's refresh resource after
its group, asks for the new configuration only as the refresh's ``DesiredConfiguration``: AWS
saves it on the group when the refresh succeeds, and a rollback really restores the previous one.

What it does, reading AWS first (release/live.py) and deciding with :func:`plan`:

- a refresh of *this* configuration already running (an interrupted ``pulumi up``): adopt it;
- another refresh running: fail at once, saying whose and what to do (never a second refresh);
- the group already saves this configuration and every in-service instance runs it: no refresh
  (a capacity-only change, or a rerun after success) -- wait for healthy targets only;
- the latest refresh of this configuration failed or was rolled back: refuse to relaunch it
  unless ``GF_RETRY_REFRESH=1`` is set (a version AWS just rolled back is not retried by
  rerunning ``pulumi up`` by accident) -- except a rollback that AWS's reasons pin on the load
  balancer's alarms alone (:func:`rolled_back_by_others`): those judge whichever color serves,
  so an incident elsewhere says nothing against this configuration, and it is started again;
- the wanted launch-template version launches a revoked (or disabled) image: refuse, naming
  the reason (``python -m release revoke``; a refresh would replace every instance with it);
- otherwise: ``StartInstanceRefresh`` with the desired configuration and preferences.

Then it waits for that refresh by id, prints a progress line when something changes, and on
success waits until the group saves the configuration and ``desired`` targets are healthy. On
``RollbackSuccessful`` (or any failure) it says which configuration AWS left the group on.

Input: the refresh spec as JSON on standard input (components/refresh_spec.py). Output: progress
on standard error; on success one JSON line on standard output, what the group really runs
(``{"group": ..., "launchTemplateVersion": ..., "refreshId": ...}``). Exit status: 0 ready, 1
failed or timed out (the refresh goes on in AWS; the next run adopts it), 2 bad input, 130 on
Ctrl-C or SIGTERM (the refresh goes on in AWS; the next run adopts it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from components.alarm_names import is_load_balancer_alarm
from components.image_contract import DISABLED, revocation
from components.refresh_spec import RefreshSpec, SpecError, idle_color_preferences, parse_spec
from release.live import (
    SUCCESSFUL,
    Clients,
    ColorState,
    Configuration,
    GroupNotFound,
    LiveError,
    Refresh,
    _aws,
    image_record,
    list_refreshes,
    problems,
    progress_line,
    read_group,
    target_group_weight,
    template_image,
)

PROG = "python -m release.refresh"
USAGE_ERROR = 2
FAILED = 1
INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
RETRY_VARIABLE = "GF_RETRY_REFRESH"
POLL_MAX = 300.0

# Statuses after which a refresh of a configuration is not started again by a plain rerun.
# Cancelled is not among them: a cancel is an operator's decision, and rerunning `pulumi up`
# is another.
NOT_RETRIED = frozenset({"Failed", "RollbackSuccessful", "RollbackFailed"})


class Stop(BaseException):
    """SIGTERM (a CI cancel, `pulumi cancel`): like Ctrl-C, never an ``Exception``, so that no
    library catches and retries it (botocore retries any ``Exception`` raised while sending)."""


# ---------------------------------------------------------------------------------------------
# The decision: plain functions of what AWS said
# ---------------------------------------------------------------------------------------------
class Action(Enum):
    ADOPT = "adopt"  # wait for the running refresh of this configuration
    START = "start"  # start a refresh with this configuration
    SETTLE = "settle"  # no refresh needed: wait for healthy targets
    REFUSE = "refuse"  # fail now, with the reason


@dataclass(frozen=True)
class Step:
    action: Action
    message: str
    refresh_id: str = ""


def wanted(spec: RefreshSpec) -> Configuration:
    return Configuration(
        spec.template_id, spec.template_version, spec.instance_types if spec.mixed else None
    )


def same_configuration(a: Configuration | None, b: Configuration) -> bool:
    return a == b  # a frozen dataclass: template, version and instance types


def stray_instances(state: ColorState, want: Configuration) -> list[str]:
    """In-service instances not on the wanted version (or, in a mixed group, not of one of its
    types): what a refresh still has to replace."""
    return sorted(
        i.instance_id
        for i in state.in_service
        if i.template_version != want.version
        or (want.instance_types is not None and i.instance_type not in want.instance_types)
    )


# Which alarms ended a refresh. AWS documents that an auto rollback follows a failure or "any
# CloudWatch alarms you specify go into the ALARM state" (EC2 Auto Scaling user guide, "Undo
# changes with a manual or auto rollback"), and that RollbackDetails.RollbackReason says "whether
# a manual or automatic rollback was initiated" (API reference, RollbackDetails); the wording of
# neither it nor StatusReason is documented. So both are read conservatively, and anything not
# read with certainty keeps the refusal: only names from the refresh's own AlarmSpecification
# count (the only alarms AWS may roll it back for), each as a whole word; the text must speak of
# an alarm; a text that also names an instance (a failed health check or launch) is the color's
# own trouble; and only a rollback that completed is started again (RollbackFailed leaves the
# group for an operator; Failed is no rollback).
RETRIED_AFTER_OTHERS_ALARMS = frozenset({"RollbackSuccessful"})
_NAME_CHARACTER = r"[A-Za-z0-9_.:/-]"  # an alarm name's characters but space (refresh_spec)
_NOT_BEFORE_NAME = rf"(?<!{_NAME_CHARACTER})"
# After a name: no name character, but a sentence's full stop or colon may end it ("... 5xx.").
_NOT_AFTER_NAME = r"(?![A-Za-z0-9_/-]|[.:][A-Za-z0-9_./:-])"
_SPEAKS_OF_ALARMS = re.compile(r"\balarms?\b", re.IGNORECASE)
_INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}\b")


def alarms_named(text: str, watched: Iterable[str]) -> list[str]:
    """The names of ``watched`` that ``text`` names, each as a whole word, never as a part of a
    longer name (the longest are matched and blanked out first). Sorted."""
    found = []
    for name in sorted(set(watched), key=len, reverse=True):
        pattern = re.compile(_NOT_BEFORE_NAME + re.escape(name) + _NOT_AFTER_NAME)
        text, count = pattern.subn(" ", text)
        if count:
            found.append(name)
    return sorted(found)


def rolled_back_by_others(refresh: Refresh) -> list[str]:
    """The alarms, none of them the color's own, that alone rolled ``refresh`` back: the load
    balancer's (no color dimension: they judge whichever color serves). Empty -- the refusal
    stands -- unless the rollback completed, AWS's reasons speak of alarms and name no
    instance, name at least one alarm of the refresh's AlarmSpecification, and every one they
    name is the load balancer's."""
    if refresh.status not in RETRIED_AFTER_OTHERS_ALARMS:
        return []
    text = f"{refresh.status_reason} {refresh.rollback_reason}"
    if not _SPEAKS_OF_ALARMS.search(text) or _INSTANCE_ID.search(text):
        return []
    named = alarms_named(text, refresh.alarms)
    if not named or not all(is_load_balancer_alarm(name) for name in named):
        return []
    return named


def others_alarms_phrase(names: Sequence[str]) -> str:
    """``rolled back by the load balancer's alarm X, not this color's``."""
    plural = "s" if len(names) > 1 else ""
    return f"rolled back by the load balancer's alarm{plural} {', '.join(names)}, not this color's"


def plan(state: ColorState, refreshes: Sequence[Refresh], want: Configuration, retry: bool) -> Step:
    """What to do for ``want`` on this group, given its refreshes newest first."""
    running = [r for r in refreshes if r.running]
    if running:
        current = running[0]
        if same_configuration(current.desired, want):
            return Step(
                Action.ADOPT,
                f"adopting instance refresh {current.refresh_id} "
                f"({current.status}) toward {want.describe()}",
                current.refresh_id,
            )
        toward = (
            f"toward {current.desired.describe()}"
            if current.desired
            else "started without a desired configuration (not by this program)"
        )
        return Step(
            Action.REFUSE,
            f"{state.group}: instance refresh {current.refresh_id} is {current.status}, "
            f"{toward}, not {want.describe()}; AWS runs one refresh at a time — wait for it to "
            f"end (`python -m release status STACK`) or cancel it (`aws autoscaling "
            f"cancel-instance-refresh --auto-scaling-group-name {state.group}`), then run "
            "`pulumi up` again",
        )
    stray = stray_instances(state, want)
    if same_configuration(state.configuration, want) and not stray:
        return Step(Action.SETTLE, f"{state.group} already runs {want.describe()}: no refresh")
    ours = [r for r in refreshes if same_configuration(r.desired, want)]
    if ours and ours[0].status in NOT_RETRIED and not retry:
        last = ours[0]
        others = rolled_back_by_others(last)
        if others:
            return Step(
                Action.START,
                f"{state.group}: instance refresh {last.refresh_id} toward {want.describe()} was "
                f"{others_alarms_phrase(others)}: starting again",
            )
        return Step(
            Action.REFUSE,
            f"{state.group}: instance refresh {last.refresh_id} toward {want.describe()} ended "
            f"{last.status} ({last.reason}); the group keeps {state.configuration.describe()}. "
            f"Not starting it again: deploy a fixed version (or roll the file back), or set "
            f"{RETRY_VARIABLE}=1 for one `pulumi up` to retry this one",
        )
    why = (
        "the group saves " + state.configuration.describe()
        if not same_configuration(state.configuration, want)
        else f"{len(stray)} in-service instances run another configuration"
    )
    return Step(Action.START, f"starting an instance refresh toward {want.describe()} ({why})")


def settle_problems(state: ColorState, want: Configuration) -> list[str]:
    """What still keeps a group from ready once no refresh is needed or one succeeded: the
    configuration saved on it, its instances' versions and types, its targets' health."""
    found = []
    if not same_configuration(state.configuration, want):
        found.append(f"the group saves {state.configuration.describe()}, not {want.describe()}")
    if state.desired == 0:
        return found
    found += problems(state, want.version)
    if want.instance_types is not None:
        other = sorted(
            i.instance_id for i in state.in_service if i.instance_type not in want.instance_types
        )
        if other:
            found.append(f"in service on another instance type: {', '.join(other[:3])}")
    return found


def _rolled_back_message(state: ColorState, refresh: Refresh, want: Configuration) -> str:
    """The truth after a refresh that did not succeed: what AWS said, what the group saves now
    and what its instances run, what to do."""
    on = sorted({i.template_version or "unknown" for i in state.in_service})
    instances = (
        f"{len(state.in_service)} in-service instances on launch-template version {', '.join(on)}"
        if on
        else "no in-service instances"
    )
    kept = (
        "AWS kept the previous configuration"
        if not same_configuration(state.configuration, want)
        else "AWS saved the new configuration anyway"
    )
    others = rolled_back_by_others(refresh)
    then = (
        f"{others_alarms_phrase(others)}: the next `pulumi up` starts it again"
        if others
        else f"deploy a fixed version or `python -m release rollback STACK`, or set "
        f"{RETRY_VARIABLE}=1 for one `pulumi up` to retry"
    )
    return (
        f"{state.group}: instance refresh {refresh.refresh_id} toward {want.describe()} ended "
        f"{refresh.status}: {refresh.reason}; {kept}: the group saves "
        f"{state.configuration.describe()}, {instances}, {state.healthy_targets}/"
        f"{state.desired} healthy — the traffic it serves is unchanged; {then}"
    )


# ---------------------------------------------------------------------------------------------
# Acting: AWS calls, polling
# ---------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One run of the command: its clients, spec, clock and output."""

    clients: Clients
    spec: RefreshSpec
    out: Callable[[str], None]
    err: Callable[[str], None]
    poll: float = 15.0
    retry: bool = False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.deadline = self.clock() + self.spec.timeout
        self.last_line: str | None = None
        self.last_state: ColorState | None = None

    @property
    def want(self) -> Configuration:
        return wanted(self.spec)

    def say(self, line: str) -> None:
        if line != self.last_line:
            self.err(line)
            self.last_line = line

    def pause(self) -> bool:
        """Sleep one poll; False once the deadline has passed."""
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            return False
        self.sleep(min(self.poll, remaining))
        return True

    def read(self) -> ColorState:
        state = read_group(
            self.clients, self.spec.group, self.spec.target_group_arn, with_refresh=False
        )
        self.last_state = state
        return state

    def preferences(self) -> dict:
        """The spec's preferences; for a color the weighted listener gives no traffic, without
        the load balancer's alarms (refresh_spec.idle_color_preferences): read right before the
        start. A listener that cannot be read keeps every alarm, and says so."""
        preferences = dict(self.spec.preferences)
        dropped = [a for a in self.spec.alarms() if is_load_balancer_alarm(a)]
        if not dropped:
            return preferences
        try:
            weight = target_group_weight(self.clients, self.spec.target_group_arn)
        except LiveError as error:
            self.err(f"{PROG}: {self.spec.group}: could not read its traffic share ({error}); "
                     "the load balancer's alarms stay in the refresh")  # fmt: skip
            return preferences
        if weight != 0:
            return preferences
        self.err(f"{PROG}: {self.spec.group} takes no traffic: the load balancer's alarms "
                 f"({', '.join(dropped)}) judge the serving color, not this refresh")  # fmt: skip
        return idle_color_preferences(preferences)

    def start(self) -> str:
        answer = _aws(
            f"starting an instance refresh of {self.spec.group}",
            self.clients.refreshes.start_instance_refresh,
            AutoScalingGroupName=self.spec.group,
            Strategy="Rolling",
            DesiredConfiguration=self.spec.desired_configuration(),
            Preferences=self.preferences(),
        )
        return answer["InstanceRefreshId"]

    def fail(self, message: str) -> int:
        self.err(f"{PROG}: error: {message}")
        return FAILED

    def timed_out(self, what: str) -> int:
        seen = self.last_line  # the last thing said: progress, or why AWS could not be read
        return self.fail(
            f"{self.spec.group}: timed out after {self.spec.timeout} s {what} ({seen}); an "
            "instance refresh goes on in AWS and the next `pulumi up` adopts it"
        )


def revoked_target(run: Run) -> str | None:
    """Why no refresh may start toward the spec's launch-template version: the image it
    launches is revoked (its tag, or the description prefix another account reads) or
    disabled. None when it may (an image EC2 does not know is left to the launch to refuse)."""
    want = run.want
    image_id = template_image(run.clients, want.template_id or "", want.version or "")
    image = image_record(run.clients, image_id) if image_id else None
    if image is None:
        return None
    reason = revocation(image)
    if not reason and image.get("State") != DISABLED:
        return None
    what = f"revoked: {reason!r}" if reason else "disabled (it cannot be launched)"
    return (
        f"{run.spec.group}: {want.describe()} launches {image_id} ({image.get('Name', '?')}), "
        f"{what} — not starting an instance refresh that would put it on every instance; put "
        "a version that is not revoked on this color (python -m release deploy STACK VERSION) "
        "and run `pulumi up` again"
    )


def _choose(run: Run) -> Step | int:
    """Read and plan, retrying unreadable AWS until the deadline; start when the plan says so.

    StartInstanceRefresh is the one irreversible call. AWS itself refuses it while another
    refresh runs (``InstanceRefreshInProgress``), so a refresh someone started between our read
    and our call is never doubled: we read again and decide again.
    """
    while True:
        try:
            # Refreshes first, then the group: a refresh that ends between the two reads has
            # saved its configuration by the time the group is read, so it is never mistaken
            # for one that still has to run.
            refreshes = list_refreshes(run.clients, run.spec.group)
            state = run.read()
            step = plan(state, refreshes, run.want, run.retry)
            if step.action is Action.ADOPT:
                run.err(step.message)
            if step.action is not Action.START:
                return step
            refused = revoked_target(run)  # read right before the one irreversible call
            if refused is not None:
                return Step(Action.REFUSE, refused)
            run.err(step.message)
            return Step(Action.ADOPT, step.message, run.start())
        except GroupNotFound as error:
            return run.fail(f"{error} — check the group's name and region")
        except LiveError as error:
            if "InstanceRefreshInProgress" in str(error):
                # Read again after a pause: AWS may not list the other refresh at once, and a
                # tight loop of refused starts would only hammer the API.
                run.say(
                    f"{run.spec.group}: another instance refresh started meanwhile; reading again"
                )
            else:
                run.say(
                    f"{run.spec.group}: could not read AWS ({error}); retrying until the timeout"
                )
        if not run.pause():
            return run.timed_out("before the refresh could start")


def _follow(run: Run, refresh_id: str) -> Refresh | int:
    """Poll the refresh by its id until it ends; its last description, or an exit code."""
    while True:
        try:
            found = list_refreshes(run.clients, run.spec.group, [refresh_id])
            if not found:
                # A refresh just started may not be listed yet (AWS's reads are eventually
                # consistent); it is waited for like any other, until the timeout.
                run.say(
                    f"{run.spec.group}: AWS does not list instance refresh {refresh_id} "
                    "yet; reading again"
                )
            elif not found[0].running:
                return found[0]
            else:
                state = run.read()
                run.say(
                    progress_line(
                        ColorState(**{**state.__dict__, "refresh": found[0]}),
                        run.spec.template_version,
                    )
                )
        except LiveError as error:
            run.say(f"{run.spec.group}: could not read AWS ({error}); retrying until the timeout")
        if not run.pause():
            return run.timed_out(f"waiting for instance refresh {refresh_id}")


def _settle(run: Run, refresh_id: str) -> int:
    """After success (or when none was needed): the group saves the wanted configuration, every
    in-service instance runs it and ``desired`` targets are healthy."""
    while True:
        try:
            state = run.read()
            found = settle_problems(state, run.want)
            if not found:
                run.err(
                    f"ready: {state.group} saves {state.configuration.describe()}; "
                    f"{len(state.in_service)} in-service instances on it, "
                    f"{state.healthy_targets}/{state.desired} healthy"
                )
                run.out(
                    json.dumps(
                        {
                            "group": state.group,
                            "launchTemplateVersion": state.template_version,
                            "refreshId": refresh_id,
                        },
                        sort_keys=True,
                    )
                )
                return 0
            run.say(f"{state.group}: " + "; ".join(found))
        except GroupNotFound as error:
            return run.fail(f"{error} — check the group's name and region")
        except LiveError as error:
            run.say(f"{run.spec.group}: could not read AWS ({error}); retrying until the timeout")
        if not run.pause():
            return run.timed_out("waiting for healthy targets")


def converge(run: Run) -> int:
    """The whole run: choose, follow, judge, settle. 0 ready, 1 failed or timed out."""
    step = _choose(run)
    if isinstance(step, int):
        return step
    if step.action is Action.REFUSE:
        return run.fail(step.message)
    if step.action is Action.SETTLE:
        run.err(step.message)
        return _settle(run, "")
    ended = _follow(run, step.refresh_id)
    if isinstance(ended, int):
        return ended
    if ended.status == SUCCESSFUL:
        return _settle(run, ended.refresh_id)
    try:
        state = run.read()
    except LiveError as error:
        return run.fail(
            f"{run.spec.group}: instance refresh {ended.refresh_id} ended {ended.status}: "
            f"{ended.reason}; the group could not be read afterwards ({error})"
        )
    return run.fail(_rolled_back_message(state, ended, run.want))


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def _poll(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number <= POLL_MAX or not value.replace(".", "", 1).isascii():
        raise argparse.ArgumentTypeError(
            f"{value[:20]!r} is not a number of seconds above 0 and at most {POLL_MAX:g}"
        )
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Start (or adopt) one Auto Scaling group's instance refresh toward the "
        "configuration on standard input (JSON, components/refresh_spec.py), wait for it, and "
        f"wait for healthy targets. {RETRY_VARIABLE}=1 retries a configuration AWS rolled back.",
    )
    parser.add_argument("--poll", default=15.0, type=_poll, help="seconds between polls")
    return parser


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Stop


def main(
    argv: Sequence[str] | None = None,
    clients: Clients | None = None,
    stdin: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    environ: Any = None,
) -> int:
    args = build_parser().parse_args(argv)
    try:
        spec = parse_spec((stdin or sys.stdin).read())
    except SpecError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr, flush=True)
        return USAGE_ERROR
    environ = os.environ if environ is None else environ
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return converge(
            Run(
                clients=clients or Clients.for_region(spec.region, patient=True),
                spec=spec,
                out=_print,
                err=_print_err,
                poll=args.poll,
                retry=environ.get(RETRY_VARIABLE) == "1",
                sleep=sleep,
            )
        )
    except (KeyboardInterrupt, Stop):
        _print_err(
            f"{PROG}: interrupted while converging {spec.group}; an instance refresh goes on in "
            "AWS and the next `pulumi up` adopts it"
        )
        return INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print(line: str) -> None:
    print(line, flush=True)


def _print_err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
