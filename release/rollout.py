"""``python -m release rollout STACK --steps 10,50,100 --bake 5m [--apply]``: a canary, automated.

For each step (as Argo Rollouts' ``setWeight`` + ``pause`` with analysis, or CodeDeploy's
linear/canary configurations with alarms):

0. **gate** -- AWS must show the new color fit for traffic (:func:`release.live.gate`: refresh
   finished, instances on the expected version, healthy targets, the listener forwarding what
   the file says); before the first step a refusal writes nothing, later it rolls back;
1. **shift** -- the ordinary ``shift`` plan (:func:`release.transitions.shift`), validated with
   the program's model and written atomically, compare-and-swap (:mod:`release.edits`); the
   first step from 0 % also raises the new color's min to the stable color's live desired
   capacity (:mod:`release.canary`, read before the first step: unreadable, or above the new
   color's max, is refused with nothing written), so later steps find the canary sized;
2. **apply** -- ``pulumi preview`` then ``pulumi up`` through an :class:`Applier` (the real one
   is the Automation API, :class:`AutomationApplier`);
3. **bake** -- watch the new color's CloudWatch alarms and the load balancer's (every alarm whose
   name starts with one of :func:`components.alarm_names.watched_alarm_prefixes`: the 5xx the
   load balancer answers for a crashing color carry no target-group dimension) for the bake
   time, with a live progress line;
4. **judge** -- with ``golden-fleet:analysis`` enabled, the new color against the stable one over
   the bake (:mod:`release.analysis`), once CloudWatch has published the bake's last minute
   (:mod:`release.publication`: at most ``publicationWait``, the alarms still watched):
   inconclusive baked again, a failure rolls back, an outage both colors share pauses (exit 4,
   weights kept, the step not recorded as baked).

Every check -- before each step, again right before its write, and at every poll of a bake --
reads the release lock (:mod:`release.lock`: still this rollout's, not halted by ``rollback
--now``; its heartbeat refreshed), the stack file (it must hold exactly what the rollout last
wrote) and every alarm the program creates for the color and the load balancer (each must exist,
none in ALARM). Any of those failing, a failed edit or update, an alarm read that fails, a bake in
which a color's own alarm ends INSUFFICIENT_DATA, or SIGINT/SIGTERM (whatever call is in flight:
:class:`Interrupted` is a ``BaseException``) rolls back: the ordinary ``rollback`` plan (stable
color 100 %) is written and applied, and the command exits 1 with a timeline of what happened
and when. If the rollback's ``pulumi up`` fails, the stable weights are set on the live listener
directly (one ModifyListener, as ``rollback --now``) and it still exits 1; only when that fails
too, or the file cannot be written, it exits 3. Without ``--apply`` it prints the plan and
writes nothing.

Re-running resumes: steps below the new color's weight in the file are skipped; the step the
file is at is applied and baked again from its start unless the release lock's item records
that its bake passed (``baked``), so a step killed in its update or bake is never counted as baked.

A hand edit of the stack file detected mid-rollout is never deployed: the stable weights go onto
the live listener directly, the file stays as the person left it, the difference is printed, and
the command exits 6 (:data:`HAND_EDIT`). A halted rollout (``rollback --now``) sets the stable
weights on the listener itself first (its own update may have landed after ``--now``), then
rolls back. SIGINT/SIGTERM while the lock is released: the release finishes first, and the exit
status stays what the listener holds.
"""

from __future__ import annotations

import argparse
import itertools
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from release.durations import duration
from release.transitions import ReleaseError

DEFAULT_STEPS = (10, 50, 100)
DEFAULT_BAKE_S = 300
MAX_BAKE_S = 24 * 3600
POLL_S = 10.0  # CloudWatch evaluates alarms once per period (60 s at the finest standard period)
PLAIN_EVERY_S = 60.0  # without a terminal: a progress line on every change and at least this often

ROLLED_BACK = 1
ROLLBACK_FAILED = 3
PAUSED = 4  # canary analysis saw both colors worse than their past: weights left as they are
# A hand edit of the stack file was detected mid-rollout: the stable color's weights were set on
# the live listener directly, and the file was left as the person left it (never deployed).
HAND_EDIT = 6
# Refused before anything was written (the release lock held, a gate, no credentials, ...): the
# listener and the file are as they were. release.cli maps the command's ReleaseError to it.
REFUSED = 5

_STEPS = re.compile(r"[1-9][0-9]{0,2}(?:,[1-9][0-9]{0,2})*")
_BAKE = re.compile(r"([1-9][0-9]{0,5})([smh])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


# ---------------------------------------------------------------------------------------------
# Arguments (pure)
# ---------------------------------------------------------------------------------------------
def parse_steps(text: str) -> tuple[int, ...]:
    """``10,50,100``: whole percentages in ASCII digits, strictly ascending, ending at 100."""
    rule = "strictly ascending whole percentages 1-100 separated by commas, ending at 100"
    if not _STEPS.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a list of steps ({rule})")
    steps = tuple(int(part) for part in text.split(","))
    if any(step > 100 for step in steps) or steps[-1] != 100:
        raise argparse.ArgumentTypeError(f"{text!r}: steps must be {rule}")
    if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
        raise argparse.ArgumentTypeError(f"{text!r}: steps must be {rule}")
    return steps


def parse_bake(text: str) -> int:
    """``30s``, ``5m``, ``1h`` (ASCII digits and one unit) -> seconds, at most 24 h."""
    match = _BAKE.fullmatch(text)
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)] if match else 0
    if not 1 <= seconds <= MAX_BAKE_S:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is not a bake time (a whole number and s, m or h, e.g. 30s, 5m, 1h; "
            "at most 24h)"
        )
    return seconds


def remaining_steps(steps: tuple[int, ...], current: int) -> tuple[int, ...]:
    """Steps still to take when the new color already has ``current`` percent."""
    return tuple(step for step in steps if step > current)


def alarm_summary(states: Mapping[str, str]) -> str:
    """``ALARM 1 (checkout-prod-green-error-rate) · OK 2``: counts, and which alarms fire."""
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    parts = []
    for state in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        if counts.get(state):
            names = sorted(n for n, s in states.items() if s == state) if state == "ALARM" else []
            parts.append(f"{state} {counts[state]}" + (f" ({', '.join(names)})" if names else ""))
    return " · ".join(parts) or "no alarms"


# ---------------------------------------------------------------------------------------------
# Injectable parts
# ---------------------------------------------------------------------------------------------
class Applier(Protocol):
    """Makes the stack match its file: ``pulumi preview`` then ``pulumi up``.

    Raises :class:`ReleaseError` when the update fails.
    """

    def preview_and_up(self, stack: str, out: Callable[[str], None]) -> None: ...


@dataclass(frozen=True)
class AutomationApplier:
    """The real applier: the Pulumi Automation API (needs the pulumi CLI on PATH)."""

    work_dir: Path

    def preview_and_up(self, stack: str, out: Callable[[str], None]) -> None:
        from release import automation

        automation.preview_and_up(stack, self.work_dir, confirm=lambda: True, out=out)


AlarmReader = Callable[[str], dict[str, str]]  # name prefix -> {alarm name: state}


def cloudwatch_alarms(region: str) -> AlarmReader:
    """DescribeAlarms by name prefix, metric and composite alarms, every page."""
    from release.aws_clients import client

    cloudwatch = client("cloudwatch", region)

    def read(prefix: str) -> dict[str, str]:
        states: dict[str, str] = {}
        pages = cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
        for page in pages:
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                states[alarm["AlarmName"]] = alarm["StateValue"]
        return states

    return read


@dataclass
class Clock:
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class Interrupted(BaseException):
    """SIGINT or SIGTERM. A BaseException, like KeyboardInterrupt: botocore turns any
    ``Exception`` raised while it waits for an answer into a retried network error, and
    ``except Exception`` anywhere would take it for a failed call; the signal must reach the
    rollback whatever call is in flight."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)


class AlarmFired(Exception):
    pass


class HandEdited(ReleaseError):
    """The stack file is not what this rollout last wrote: someone edited it. Its ``diff`` is
    shown; the edit was never reviewed as part of this rollout, so it is never deployed."""

    def __init__(self, message: str, diff: str):
        super().__init__(message)
        self.diff = diff


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
@dataclass
class Timeline:
    clock: Clock
    out: Callable[[str], None]
    events: list[tuple[datetime, str]] = field(default_factory=list)

    def add(self, what: str) -> None:
        at = self.clock.wall()
        self.events.append((at, what))
        self.out(f"[{at:%H:%M:%S}Z] {what}")

    def report(self, title: str) -> str:
        lines = [f"{title} — timeline (UTC):"]
        lines += [f"  {at:%Y-%m-%dT%H:%M:%SZ}  {what}" for at, what in self.events]
        return "\n".join(lines)


@dataclass
class Progress:
    """One updating line on a terminal; plain lines (on change, and every minute) otherwise."""

    stream: TextIO
    tty: bool
    clock: Clock
    out: Callable[[str], None]
    _last: str = ""
    _last_at: float = float("-inf")
    _open: bool = False

    def show(self, line: str, key: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()
            self._open = True
            return
        now = self.clock.monotonic()
        if key != self._last or now - self._last_at >= PLAIN_EVERY_S:
            self.out(line)
            self._last, self._last_at = key, now

    def end(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


# ---------------------------------------------------------------------------------------------
# The rollout
# ---------------------------------------------------------------------------------------------
@dataclass
class Rollout:
    stack: str
    path: Path
    steps: tuple[int, ...]
    bake_s: float
    applier: Applier
    alarms: AlarmReader
    clock: Clock = field(default_factory=Clock)
    out: Callable[[str], None] = print
    stream: TextIO = sys.stdout
    tty: bool = False
    poll_s: float = POLL_S
    # Last resort when the rollback's `pulumi up` fails: stable 100 % on the live listener
    # directly; returns the listener's ARN (release.emergency.roll_back_listener).
    direct: Callable[[], str] | None = None
    # Before each step: why the new color is not fit for more traffic, one line each (empty: go
    # ahead). The real one is release.live.gate (refresh finished, instances on the expected
    # launch-template version, healthy targets >= desired, no image drift, and the live
    # listener forwarding what the file says); see live_gate().
    gate: Callable[[Any], list[str]] | None = None
    # Before the first step from 0 %: the stable color's live desired capacity, which that
    # step raises the new color's min to (release.canary.reader, which the command always
    # passes). None: the canary is not sized (as gate None: no look at AWS).
    capacity: Callable[[Any], Any] | None = None
    # The release lock, the halt mark of `rollback --now` and the record of baked steps, one
    # DynamoDB item (release.lock.DynamoLock, which the command always passes). None: no lock,
    # and a resumed rollout re-bakes the step the file is at.
    lock: Any = None
    # The canary judged against the stable color after each bake (release.analysis
    # .CanaryAnalysis); None: the alarms alone judge. Its report and timeline PNG go to
    # report_dir, the report also to step_summary ($GITHUB_STEP_SUMMARY) when set.
    analysis: Any = None
    report_dir: Path | None = None
    step_summary: Path | None = None

    def __post_init__(self) -> None:
        self.timeline = Timeline(self.clock, self.out)
        self.progress = Progress(self.stream, self.tty, self.clock, self.out)
        self.started = False  # True once the first step may have written

    # -- the steps -----------------------------------------------------------------------------
    def run(self) -> int:
        from components.alarm_names import watched_alarm_prefixes
        from release import edits, transitions

        self.written = self.path.read_bytes()  # what the rollout last wrote: so far, the start
        cfg = edits.read_config(self.path)
        stable, new = cfg.stable_color, transitions.new_color(cfg)
        current = cfg.traffic[new]
        todo = remaining_steps(self.steps, current)
        short = self.stack.split("/")[-1]
        prefixes = watched_alarm_prefixes(cfg.service.name, short, new.value)
        self.stable, self.new, self.prefixes = stable, new, prefixes
        self.expected = expected_alarms(cfg.service.name, short, new.value)
        self.version = cfg.fleets[new].version
        if todo:
            transitions.shift(cfg, self.stack, todo[0])  # its refusals, before anything else
        states = self._read()
        missing = self._missing(states)
        if missing:
            raise ReleaseError(
                f"no CloudWatch alarm named {' nor '.join(missing)} in {cfg.region}: the "
                "rollout would not watch everything that judges the color — run `pulumi up` "
                "so that the program creates the color's and the load balancer's alarms, then "
                "start the rollout again"
            )
        if any(state == "ALARM" for state in states.values()):
            raise ReleaseError(
                f"alarms judging {new.value} fire before any shift ({alarm_summary(states)}) — "
                "fix the cause first; nothing written"
            )
        previous = self._signals(self._interrupt)
        try:
            try:
                if self.lock is not None:
                    note = self.lock.acquire()  # refuses, naming the holder: nothing written
                    self.timeline.add(note)
                return self._run(cfg, current, todo, states)
            except (Interrupted, AlarmFired, ReleaseError, Exception) as error:
                self.progress.end()
                if self.started and self.analysis is not None:
                    from release.analysis import Paused

                    if isinstance(error, Paused):
                        return self._pause(str(error))
                self._signals(self._note)
                if not self.started:  # nothing written yet: a refusal, not a rollback
                    if isinstance(error, Interrupted):
                        raise ReleaseError(f"interrupted ({error}); nothing written") from None
                    raise
                if isinstance(error, HandEdited):
                    return self._hand_edit_back(error)
                from release import lock as locks

                return self._roll_back(self._reason(error), isinstance(error, locks.Halted))
            finally:
                if self.lock is not None:
                    # A signal now would leave the lock behind, or turn a finished rollout into
                    # "rolled back": the release finishes first, and the exit status stays what
                    # the listener holds.
                    self._signals(self._note_release)
                    self._release_lock()
                self._report()
        finally:
            self._restore(previous)

    def _run(self, cfg: Any, current: int, todo: tuple[int, ...], states: Mapping[str, str]) -> int:
        """After the lock: resume or start, step by step. Raises to roll back once started."""
        from release import lock as locks

        new = self.new
        self.started = False
        record = locks.baked_record(new.value, self.version, current)
        baked = self.lock.baked() if self.lock is not None else ""
        if self.lock is not None and baked and baked != record:
            self.lock.forget_baked()  # a record of another release or weight: not this one's
        rebake = current > 0 and baked != record
        if not todo and not rebake:
            self.out(
                f"{new.value} already takes 100% (its bake passed): nothing to roll out — next: "
                f"python -m release finish {self.stack}"
            )
            return 0
        steps = ((current,) if rebake else ()) + todo
        self.timeline.add(
            f"start: {new.value} {self.version} from {current}%, steps "
            f"{', '.join(map(str, steps))}, bake {duration(self.bake_s)} each, watching "
            f"{len(states)} alarms {watching(self.prefixes)}"
        )
        if rebake:
            self.timeline.add(
                f"resume: {self.path.name} says {new.value} {current}% but no bake of it passed "
                "(an interrupted step): applying it again and baking it from its start"
            )
        self.last = current
        self._check_gate(cfg, "before the first step")  # refuses: nothing written yet
        self.stable_size = self._size(cfg, todo[0]) if todo and not rebake else None
        self.started = True
        for number, percent in enumerate(steps, 1):
            self._step(number, len(steps), percent, again=rebake and number == 1)
        self.timeline.add(
            f"done: {new.value} takes 100% ({self.version}); next: python -m "
            f"release finish {self.stack}"
        )
        self.out(self.timeline.report(f"rollout {self.stack}: completed"))
        return 0

    def _step(self, number: int, total: int, percent: int, again: bool = False) -> None:
        """One step: checks, the write (not for a step the file is already at), the update and
        the bake. Every check before the write is made again right before it: nothing moves
        onto a color whose alarms fire, after `rollback --now`, or over a hand edit."""
        from release import edits, transitions
        from release import lock as locks

        label = f"step {number}/{total}"
        self._check(f"before {label}")
        if number > 1:
            self._check_gate(edits.read_config(self.path), f"before {label}")
        if again:
            self._check(f"before {label}", phase="update")
            self.timeline.add(f"{label}: {self.path.name} already says {self.new.value} {percent}%")
        else:
            prepared = edits.prepare(
                self.path, lambda cfg: transitions.shift(cfg, self.stack, percent, self.stable_size)
            )
            self._unchanged(prepared.original)
            self._check(f"before {label}", phase="update")  # the last look before the write
            edits.write(prepared)
            self.written = prepared.text.encode()
            self.last = percent
            raised = [
                c.value
                for c in prepared.plan.changes
                if c.path == (transitions.FLEETS, self.new.value, "capacity", "min")
            ]
            self.timeline.add(
                f"{label}: wrote {self.new.value} {percent}%, {self.stable.value} "
                f"{100 - percent}%" + (f", {self.new.value} min {raised[0]}" if raised else "")
            )
        self.timeline.add(f"{label}: pulumi preview + up")
        self.applier.preview_and_up(self.stack, self.out)
        self.timeline.add(f"{label}: applied")
        self._bake_and_judge(label, percent)
        if self.lock is not None:
            self.lock.record_baked(locks.baked_record(self.new.value, self.version, percent))
        self.timeline.add(f"{label}: bake of {duration(self.bake_s)} passed")

    def _check(self, when: str, phase: str | None = None) -> dict[str, str]:
        """One check, as before a write and at every poll of a bake: the lock still this
        rollout's and not halted (heartbeat refreshed), the file what the rollout last wrote,
        every alarm there and none in ALARM. Returns the alarm states."""
        if self.lock is not None:
            self.lock.check(phase)
        self._unchanged(self.path.read_bytes())
        states = self._read()
        summary = alarm_summary(states)
        missing = self._missing(states)
        if missing:
            raise AlarmFired(
                f"{when}: the alarms {', '.join(missing)} are gone ({summary}): no longer watched"
            )
        if any(state == "ALARM" for state in states.values()):
            raise AlarmFired(f"{when}: {summary}")
        return states

    def _unchanged(self, now: bytes) -> None:
        """The file must hold what this rollout last wrote: any other edit (traffic, a version,
        capacity, a comment) was not reviewed as part of it."""
        from release import stackfile

        if now == self.written:
            return
        diff = stackfile.unified_diff(
            self.written.decode(errors="replace"), now.decode(errors="replace"), self.path.name
        )
        lines = diff.splitlines()
        was = [line[1:].strip() for line in lines if line[:1] == "-" and line[:3] != "---"]
        now_ = [line[1:].strip() for line in lines if line[:1] == "+" and line[:3] != "+++"]
        first = f"{(was or ['-'])[0][:60]!r} -> {(now_ or ['-'])[0][:60]!r}"
        raise HandEdited(
            f"{self.path.name} changed under the rollout: it is not what this rollout last "
            f"wrote ({max(len(was), len(now_))} changed lines, first {first})",
            diff,
        )

    def _size(self, cfg: Any, first: int) -> Any:
        """The stable color's size for the first step, when it sizes the canary; refuses when
        it cannot be read (automation never goes on unchecked) or the new color's max is too
        small for it (the shift plan's refusal, before anything is written)."""
        from release import transitions

        if self.capacity is None or not transitions.sizes_canary(cfg, first):
            return None
        try:
            size = self.capacity(cfg)
        except Exception as error:  # a reader that raises instead of reporting
            size = transitions.StableSize(None, str(error))
        if size.desired is None:
            raise ReleaseError(
                f"could not read {self.stable.value}'s live desired capacity ({size.detail}), "
                f"which the first step raises {self.new.value}'s min to — nothing written"
            )
        plan = transitions.shift(cfg, self.stack, first, size)
        for note in plan.notes[:1]:
            self.timeline.add(f"before the first step: {note}")
        return size

    def _check_gate(self, cfg: Any, when: str) -> None:
        if self.gate is None:
            return
        try:
            problems = self.gate(cfg)
        except ReleaseError:
            raise
        except Exception as error:  # AWS unreadable: the color's fitness is unknown
            raise ReleaseError(f"could not read {self.new.value}'s live state ({error})") from None
        if problems:
            raise ReleaseError(
                f"{self.new.value} is not fit for more traffic {when}: {'; '.join(problems)}"
            )
        self.timeline.add(f"{when}: {self.new.value} fit for traffic (live state checked)")

    def _bake(self, label: str, percent: int) -> None:
        """Watch for the bake time from its start; every poll is a full :meth:`_check`. The bake
        passes only if, at its end, every alarm of the new color's own has data: one still in
        INSUFFICIENT_DATA judged nothing, whatever the load balancer's alarm says (it sees both
        colors). A color that has just received traffic may lack data at the first polls."""
        from components.alarm_names import is_load_balancer_alarm, unjudged_alarms

        own = [name for name in self.expected if not is_load_balancer_alarm(name)]
        start = self.clock.monotonic()
        while True:
            states = self._check(f"alarm during the bake of {label}", phase="bake")
            elapsed = self.clock.monotonic() - start
            summary = alarm_summary(states)
            self.progress.show(
                f"{label} {self.new.value} {percent}% | bake {duration(elapsed)}/"
                f"{duration(self.bake_s)} | {summary}",
                key=summary,
            )
            if elapsed >= self.bake_s:
                self.progress.end()
                unjudged = unjudged_alarms(own, states)
                if unjudged:
                    raise AlarmFired(
                        f"the bake of {label} judged nothing of {self.new.value}: "
                        f"{'; '.join(unjudged)} ({summary})"
                    )
                return
            self.clock.sleep(min(self.poll_s, self.bake_s - elapsed))

    def _bake_and_judge(self, label: str, percent: int) -> None:
        """The bake (the alarms, the fast trip-wire); then, with canary analysis, the canary
        against the stable color over the bake's window once CloudWatch has published it
        (release/analysis.py: extended while it cannot say, :class:`Paused` on a shared outage,
        a failure rolls back). While it waits for the metrics the color still serves at this
        step's weight, so every poll of that wait is a full :meth:`_check` too."""
        start = self.clock.wall()

        def bake() -> datetime:
            self._bake(label, percent)
            return self.clock.wall()

        def watch() -> None:
            self._check(f"alarm while the metrics of {label} are awaited", phase="bake")

        if self.analysis is None:
            bake()
        else:
            self.analysis.settle(
                label, percent, start, bake, self.timeline.add, clock=self.clock, watch=watch
            )

    def _pause(self, reason: str) -> int:
        """A shared outage: the weights stay (rolling the canary back would not help, moving on
        would be blind); the step is not recorded as baked, so a re-run judges it again."""
        self.timeline.add(
            f"paused: {reason} — the weights stay as they are; when the shared cause is fixed "
            f"run the same rollout again (it judges this step again), or `python -m release "
            f"rollback {self.stack}`"
        )
        self.out(self.timeline.report(f"rollout {self.stack}: PAUSED"))
        return PAUSED

    def _report(self) -> None:
        """The canary report and timeline PNG, whatever the outcome (release/canary_report.py)."""
        if self.analysis is None or self.report_dir is None or not self.started:
            return  # refused before the first step: nothing to show
        from release import canary_report

        outcome = self.timeline.events[-1][1] if self.timeline.events else "nothing done"
        try:
            report, png = canary_report.write(
                self.report_dir, f"rollout {self.stack}: {outcome.split(':')[0]}",
                self.analysis.records, self.new.value, self.stable.value,
                self.timeline.events, self.step_summary,
            )  # fmt: skip
        except OSError as error:  # the rollout's outcome stands without its pictures
            self.out(f"could not write the canary report in {self.report_dir} ({error})")
        else:
            self.out(f"canary report: {report} (timeline {png.name} beside it)")

    def _read(self) -> dict[str, str]:
        try:
            states: dict[str, str] = {}
            for prefix in self.prefixes:
                states.update(self.alarms(prefix))
            return states
        except (ReleaseError, Interrupted):
            raise
        except Exception as error:  # botocore's errors, or a bad answer: watching is impossible
            raise ReleaseError(
                f"could not read the alarms {watching(self.prefixes)} ({error})"
            ) from None

    def _missing(self, states: Mapping[str, str]) -> list[str]:
        """Every alarm the program creates for the color and the load balancer that the read
        lacks (``prefix*`` when all of a prefix's are gone): each must be there to watch."""
        missing = []
        for prefix in self.prefixes:
            names = [name for name in self.expected if name.startswith(prefix)]
            gone = [name for name in names if name not in states]
            missing += [f"{prefix}*"] if gone and len(gone) == len(names) else gone
        return missing

    # -- rolling back --------------------------------------------------------------------------
    @staticmethod
    def _reason(error: BaseException) -> str:
        from release import lock as locks

        if isinstance(error, Interrupted):
            return f"interrupted ({error})"
        if isinstance(error, locks.Halted):
            return f"{error}: not applying this rollout's weights again"
        if isinstance(error, AlarmFired | ReleaseError):
            return str(error)
        return f"unexpected error: {type(error).__name__}: {error}"

    def _hand_edit_back(self, error: HandEdited) -> int:
        """A hand edit is never deployed: the stable weights go onto the live listener directly
        (one ModifyListener), the file stays as the person left it, the difference is shown."""
        self.timeline.add(f"rolling back without the file: {error}")
        self._forget_baked()
        done = self._set_directly(
            f"set directly (one ModifyListener); {self.path.name} left as edited, not deployed",
            "direct listener rollback failed",
        )
        code = HAND_EDIT if done else ROLLBACK_FAILED
        self.out(f"the edit of {self.path.name} this rollout did not make (not deployed):")
        self.out(error.diff.rstrip("\n"))
        title = (
            "rolled back on the listener" if code == HAND_EDIT else "FAILED, rollback incomplete"
        )
        self.out(self.timeline.report(f"rollout {self.stack}: {title}"))
        self.out(
            f"next: review the edit; the file's weights are not what the listener sends — "
            f"`python -m release rollback {self.stack}` writes {self.stable.value} 100% into it "
            "before any `pulumi up`"
        )
        return code

    def _forget_baked(self) -> None:
        if self.lock is None:
            return
        try:
            self.lock.forget_baked()
        except Exception as error:  # the rollback itself matters more than the record
            self.timeline.add(f"could not clear the bake record ({error})")

    def _set_directly(self, done: str, failed: str) -> bool:
        """The stable color 100 % on the live listener directly (one ModifyListener); the
        timeline says ``listener <arn>: <stable> 100% <done>`` or ``<failed>: <why>``."""
        if self.direct is None:
            self.timeline.add(f"{failed}: no direct way to the listener")
            return False
        try:
            listener = self.direct()
        except Exception as error:
            self.timeline.add(f"{failed}: {error}")
            return False
        self.timeline.add(f"listener {listener}: {self.stable.value} 100% {done}")
        return True

    def _roll_back(self, reason: str, halted: bool = False) -> int:
        """The rollback edit, written and applied; the listener directly if Pulumi cannot."""
        from release import edits, transitions

        self.timeline.add(f"rolling back: {reason}")
        if halted:  # --now's weights first: this rollout's own update may have landed after
            self._set_directly("reasserted after the halt", "could not reassert the halt")
        self._forget_baked()
        problem = None
        try:
            written = edits.write(
                edits.prepare(self.path, lambda cfg: transitions.rollback(cfg, self.stack))
            )
            self.timeline.add(
                f"wrote {self.stable.value} 100%, {self.new.value} 0%"
                if written
                else f"{self.path.name} already says {self.stable.value} 100%"
            )
        except Exception as error:
            problem = f"{self.path.name} could not be written ({error})"
        if problem is None:
            try:
                self.applier.preview_and_up(self.stack, self.out)
            except Exception as error:
                problem = f"pulumi up failed ({error})"
            else:
                self.timeline.add(f"rolled back: {self.stable.value} 100% applied")
                self.out(self.timeline.report(f"rollout {self.stack}: rolled back"))
                return ROLLED_BACK
        self.timeline.add(f"rollback through Pulumi not applied: {problem}")
        if self.direct is not None and self._set_directly(
            "set directly (one ModifyListener); Pulumi's state still holds the split until "
            "`pulumi up --refresh`",
            "direct listener rollback failed too",
        ):
            if problem.startswith("pulumi up"):
                self.out(self.timeline.report(f"rollout {self.stack}: rolled back"))
                return ROLLED_BACK
        self.out(self.timeline.report(f"rollout {self.stack}: FAILED, rollback incomplete"))
        self.out(
            f"check traffic now: `python -m release rollback {self.stack} --now` sets the "
            f"listener and the file to {self.stable.value} 100%; then `python -m release "
            f"status {self.stack}`"
        )
        return ROLLBACK_FAILED

    def _release_lock(self) -> None:
        from release.apply_lock import release_noting

        release_noting(self.lock, self.out)

    def _note_release(self, signum: int, _frame: Any) -> None:
        self.out(
            f"{signal.Signals(signum).name} received while releasing the release lock: "
            "finishing that first"
        )

    # -- signals -------------------------------------------------------------------------------
    def _interrupt(self, signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    def _note(self, signum: int, _frame: Any) -> None:
        self.out(
            f"{signal.Signals(signum).name} received while rolling back: finishing the "
            "rollback first"
        )

    def _signals(self, handler: Any) -> dict:
        """Install ``handler`` for SIGINT and SIGTERM; the handlers it replaced."""
        from release.apply_lock import catch_signals

        return catch_signals(handler)

    def _restore(self, previous: dict) -> None:
        from release.apply_lock import restore_signals

        restore_signals(previous)


def live_gate(stack: str) -> Callable[[Any], list[str]]:
    """:func:`release.live.gate` for the new color, with the file's current weights."""

    def check(cfg: Any) -> list[str]:
        from components.config import COLORS
        from release import live, transitions

        weights = {color: cfg.traffic[color] for color in COLORS}
        report = live.gate(cfg, stack, (transitions.new_color(cfg),), weights=weights)
        return list(report.problems)

    return check


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def expected_alarms(service: str, stack: str, color: str) -> tuple[str, ...]:
    """Every alarm the program creates that judges ``color``: its own, then the load
    balancer's (components/alarm_names.py)."""
    from components.alarm_names import (
        LOAD_BALANCER_ALARM_KINDS,
        color_alarm_names,
        load_balancer_alarm_name,
    )

    return color_alarm_names(service, stack, color) + tuple(
        load_balancer_alarm_name(service, stack, kind) for kind in LOAD_BALANCER_ALARM_KINDS
    )


def watching(prefixes: tuple[str, ...]) -> str:
    """``checkout-prod-green-*, checkout-prod-lb-*``: the alarms a rollout watches."""
    return ", ".join(f"{prefix}*" for prefix in prefixes)


def plan_lines(stack: str, cfg: Any, steps: tuple[int, ...], bake_s: float) -> list[str]:
    """What ``rollout`` would do, step by step (printed without ``--apply``)."""
    from components.alarm_names import watched_alarm_prefixes
    from release import transitions

    stable, new = cfg.stable_color, transitions.new_color(cfg)
    current = cfg.traffic[new]
    todo = remaining_steps(steps, current)
    prefixes = watched_alarm_prefixes(cfg.service.name, stack.split("/")[-1], new.value)
    lines = [
        f"rollout {stack}: {new.value} ({cfg.fleets[new].version}) now {current}%, "
        f"{stable.value} ({cfg.fleets[stable].version}) stable"
    ]
    skipped = [step for step in steps if step <= current]
    if skipped:
        lines.append(f"  skipped (already at or above): {', '.join(map(str, skipped))}")
    for number, step in enumerate(todo, 1):
        sizing = (
            f" with {new.value}'s min raised to {stable.value}'s live desired capacity (read "
            "before the step; finish puts it back)"
            if number == 1 and transitions.sizes_canary(cfg, step)
            else ""
        )
        lines.append(
            f"  step {number}/{len(todo)}: check {new.value}'s live state, shift {new.value} "
            f"{step}% / {stable.value} {100 - step}%{sizing}, pulumi preview + up, bake "
            f"{duration(bake_s)} watching {watching(prefixes)}"
            + (
                f", then judge {new.value} against {stable.value} over the bake (canary "
                "analysis"
                + (
                    f", once CloudWatch has published the bake's last minute: at most "
                    f"{duration(cfg.analysis.publication_wait)} more"
                    if cfg.analysis.publication_wait
                    else ""
                )
                + ")"
                if cfg.analysis.enabled
                else ""
            )
        )
    if todo:
        lines.append(
            f"  on any ALARM, failed update or Ctrl-C: {stable.value} 100% written and applied"
        )
    return lines


def _canary_analysis(cfg: Any, short: str, stable: str) -> Any:
    """The judge of each step (release.analysis), over both colors' target groups as the
    weighted listener names them; None when ``golden-fleet:analysis.enabled`` is false."""
    if not cfg.analysis.enabled:
        return None
    from release import analysis, emergency, transitions
    from release.aws_clients import client as aws_client

    try:
        listener = emergency.find_listener(
            aws_client("elbv2", cfg.region), short, cfg.service.name, cfg.region
        )
    except Exception as error:  # the judge reads both target groups' metrics through it
        raise ReleaseError(
            f"cannot read the weighted listener for the canary analysis: {error} — nothing written"
        ) from None
    return analysis.for_listener(cfg, listener, transitions.new_color(cfg).value, stable)


def run(
    args: argparse.Namespace,
    path: Path,
    root: Path,
    out: Callable[[str], None] = print,
    applier: Applier | None = None,
    alarms: AlarmReader | None = None,
    clock: Clock | None = None,
) -> int:
    from release import automation, edits, transitions

    cfg = edits.read_config(path)
    todo = remaining_steps(args.steps, cfg.traffic[transitions.new_color(cfg)])
    if todo:
        transitions.shift(cfg, args.stack, todo[0])  # refuse a cold or undeployed color now
    for line in plan_lines(args.stack, cfg, args.steps, args.bake):
        out(line)
    if not args.apply:
        out("plan only: nothing written (pass --apply to run it)")
        return 0
    if applier is None:
        automation.require_cli()
        if path.resolve() != (root / f"Pulumi.{args.stack.split('/')[-1]}.yaml").resolve():
            raise ReleaseError(
                f"--apply updates the project's stack {args.stack!r}, but --file points at {path}"
            )
        applier = AutomationApplier(root)
    if alarms is None:
        from release.aws_clients import has_credentials

        if not has_credentials(cfg.region):
            raise ReleaseError(
                f"no AWS credentials for {cfg.region}: the rollout cannot watch alarms — "
                "nothing written"
            )
        alarms = cloudwatch_alarms(cfg.region)
    from release import canary, emergency
    from release import lock as locks

    stable = cfg.stable_color.value
    short = args.stack.split("/")[-1]
    from release.aws_clients import client as aws_client

    clock = clock or Clock()
    release_lock = locks.DynamoLock(
        aws_client("dynamodb", cfg.region),
        locks.lock_key(cfg.service.name, short),
        args.stack,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        wall=clock.wall,
        take_over=getattr(args, "take_over_stale_lock", False),
        out=out,
    )
    from release import canary_report

    rollout = Rollout(
        analysis=_canary_analysis(cfg, short, stable),
        report_dir=canary_report.REPORT_DIR,
        step_summary=canary_report.step_summary(),
        lock=release_lock,
        direct=lambda: emergency.roll_back_listener(
            cfg.region, args.stack.split("/")[-1], cfg.service.name, stable
        ),
        gate=live_gate(args.stack.split("/")[-1]),  # the Stack tag holds the short name
        capacity=canary.reader(args.stack),
        stack=args.stack,
        path=path,
        steps=args.steps,
        bake_s=args.bake,
        applier=applier,
        alarms=alarms,
        clock=clock,
        out=out,
        tty=sys.stdout.isatty(),
    )
    return rollout.run()
