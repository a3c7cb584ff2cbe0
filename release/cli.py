"""``python -m release``: one safe, reviewable command per release step.

Every edit is validated with the model the Pulumi program uses before it is written, keeps the
stack file's comments and layout, is written atomically, and ends with the diff and the
``pulumi preview`` command to run next. Errors are one line on stderr and exit 1 with the file
untouched.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from components.config import ConfigError, PromoteImage, StackConfig, parse_stack_config

# Only what building the parser and every command need; a command's own modules are imported
# where it runs (`rollback --now` is the operator's fastest path and pays for no other command).
from release import analyze as analyze_
from release import images, rollout, stackfile, transitions
from release import prune as prune_
from release import revoke as revoke_
from release.transitions import BakeCheck, BakeStatus, Plan, ReleaseError

PROG = "python -m release"
# Pulumi's rule: stack names are at most 100 characters of ASCII letters, digits, '-', '_' and
# '.' (pulumi/pulumi#6685, #10675); an organization and project may precede them.
_STACK = re.compile(r"(?:[A-Za-z0-9_.-]{1,100}/){0,2}[A-Za-z0-9_.-]{1,100}")
_PERCENT = re.compile(r"(?:0|[1-9][0-9]{0,2})%?")

EPILOG = """\
a release, step by step:
  %(prog)s status prod             where things stand, and the next step
  %(prog)s deploy prod 1.5.0       new version on the idle color, weight 0
  %(prog)s shift prod 10           10%% of requests to it (then 50, 100)
  %(prog)s rollback prod           all traffic back to the stable color, one edit
  %(prog)s finish prod             the new color, at 100%%, becomes stable

Each edit changes Pulumi.<STACK>.yaml only; review the diff, then run the printed
`pulumi preview` (or pass --apply to preview and update through the Automation API).

With --apply (and in a rollout) the stack's release lock is held from before the write to
the end of `pulumi up`; a file edit alone takes no lock. `status` shows who holds it; a
holder whose process is gone is taken over with --take-over-stale-lock, after one lease
(60 s) in which its heartbeat never moved.

exit status: 0 done; 1 refused (one line says why) or rolled back; 2 bad arguments;
3 a rollout's rollback incomplete; 4 a rollout paused by its canary analysis (weights kept);
5 refused before any write: a rollout's refusal, or an --apply that could not take the release
lock (held: the line names the holder); 6 a rollout's hand-edited file (listener set back, file
left as edited); 70 an unexpected error: one line names it and the log
file holding its traceback ($XDG_STATE_HOME/golden-fleet/errors/); 130 interrupted."""


def project_root(start: Path | None = None) -> Path:
    """The nearest directory holding ``Pulumi.yaml``, from the working directory up."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "Pulumi.yaml").is_file():
            return directory
    return Path(__file__).resolve().parent.parent


def stack_name(value: str) -> str:
    if not _STACK.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value[:40]!r}{'...' if len(value) > 40 else ''} is not a stack name (at most 100 "
            "ASCII letters, digits, '-', '_', '.'; optionally org/project/ before it)"
        )
    return value


def percentage(value: str) -> int:
    """A whole percentage in plain ASCII digits, optionally with one '%': 0, 10, 100%.

    ``int()`` alone would take ``1_0``, `` 10`` and non-ASCII (e.g. Arabic-Indic) digits.
    """
    number = int(value.removesuffix("%")) if _PERCENT.fullmatch(value) else -1
    if not 0 <= number <= 100:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole percentage from 0 to 100")
    return number


USAGE_ERROR = 2  # a bad argument: nothing was read or written


def usage_line(prog: str, message: str) -> str:
    return f"{prog}: error: {message} (see --help)\n"


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line (what is wrong, where to look) and exit status 2.

    argparse's default prints the whole usage block first; a script reading stderr, or an
    operator scanning it, then has to find the one line that matters.
    """

    def error(self, message: str):  # type: ignore[override]
        self.exit(USAGE_ERROR, usage_line(self.prog, message))


def flag_conflict(args: argparse.Namespace) -> str | None:
    """A flag its command's other flags leave without meaning, as one line naming both (None:
    none). argparse checks each flag alone; these rules join two. Pure."""
    if not getattr(args, "take_over_stale_lock", False):
        return None
    if getattr(args, "now", False):
        # `rollback --now` takes no lock, so there is nothing to take over: it moves the
        # listener first and then halts whoever holds the lock, live or dead, in one write
        # without waiting (release/emergency.py). A watch of one lease before it would delay
        # the path that must take seconds, and a dead holder needs no take-over to be halted.
        return (
            "--take-over-stale-lock does not go with --now: --now takes no release lock (it "
            "sets the listener, then halts whoever holds the lock, live or dead, and waits for "
            "no one)"
        )
    if not args.apply:
        return "--take-over-stale-lock needs --apply: without --apply no release lock is taken " + (
            "(the rollout prints its plan)"
            if args.command == "rollout"
            else "(the edit writes the file alone)"
        )
    return None


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, checked flag by flag (argparse) and flags together
    (:func:`flag_conflict`); a bad one exits 2 with one line, before anything is read."""
    parser = build_parser()
    args = parser.parse_args(argv)
    conflict = flag_conflict(args)
    if conflict:  # named as argparse names a subcommand's own errors: `python -m release shift`
        parser.exit(USAGE_ERROR, usage_line(f"{PROG} {args.command}", conflict))
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Release a new version across the blue and green fleets of a stack by "
        "editing its Pulumi.<STACK>.yaml safely.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_status(commands)
    _add_edits(commands)
    _add_rollout(commands)
    _add_prune(commands)
    revoke_.add_parser(commands)
    _add_inspections(commands)
    return parser


# The parser, by concern: the arguments every command shares, the flag groups several share,
# then each command or family of commands. The order of the calls above is the order of --help.
def _command(
    commands: argparse._SubParsersAction, name: str, help_: str, description: str
) -> argparse.ArgumentParser:
    """A command on one stack: STACK and --file."""
    sub = commands.add_parser(name, help=help_, description=description)
    sub.add_argument("stack", type=stack_name, metavar="STACK", help="e.g. staging, prod")
    sub.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="the stack file (default: Pulumi.<STACK>.yaml in the project root)",
    )
    return sub


def _add_live_gate(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub.add_argument(
        "--force",
        action="store_true",
        help="write even when AWS shows the color receiving traffic not ready (refresh "
        "running or failed, instances on another version, unhealthy targets, image drift); "
        "on a first shift, also when the stable color runs more instances than the new "
        "color's max (its min is then raised only to that max)",
    )
    sub.add_argument(
        "--require-healthy",
        action="store_true",
        help="refuse when the live state cannot be read (no credentials), instead of "
        "warning; on a first shift this includes the stable color's desired capacity",
    )
    return sub


def _add_take_over(sub: argparse.ArgumentParser, when: str, unless: str = "") -> None:
    """One meaning for every command holding the release lock (release/lock.py, take-over)."""
    sub.add_argument(
        "--take-over-stale-lock",
        action="store_true",
        help=f"{when}when another release holds the stack's release lock (a DynamoDB item), "
        "watch it for one lease (60 s) and take it only if its heartbeat never moved; a live "
        f"lock is never taken{unless}",
    )


def _add_editing(sub: argparse.ArgumentParser, unless: str = "") -> argparse.ArgumentParser:
    mode = sub.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run",
        action="store_true",
        help="print the diff, write nothing",
    )
    mode.add_argument(
        "--apply",
        action="store_true",
        help="after writing, run `pulumi preview --diff` and `pulumi up` through the "
        "Automation API (needs the pulumi CLI), holding the stack's release lock from before "
        "the write to the end of the update (held by another: exit 5, nothing written)",
    )
    sub.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="with --apply: run `pulumi up` without asking after the preview",
    )
    _add_take_over(sub, "with --apply: ", unless)
    return sub


def _add_status(commands: argparse._SubParsersAction) -> None:
    status = _command(
        commands,
        "status",
        "show each color's version, AMI, weight, capacity and the next step",
        "Print a table of both colors and what to do next. The AMI column comes from the "
        "stack's outputs when the pulumi CLI is installed.",
    )
    status.add_argument(
        "--no-outputs", action="store_true", help="do not read stack outputs (AMI column)"
    )
    status.add_argument(
        "--no-live",
        action="store_true",
        help="do not read what AWS runs (groups, refreshes, targets, alarms, the release lock)",
    )
    status.add_argument(
        "--no-images",
        action="store_true",
        help="do not look the colors' images up in EC2 (age and deprecation lines)",
    )


def _add_edits(commands: argparse._SubParsersAction) -> None:
    """deploy, shift, rollback and finish: one edit of the stack file each (--apply: applied)."""
    deploy = _add_editing(
        _command(
            commands,
            "deploy",
            "put VERSION on the idle color (weight 0)",
            "Put VERSION on the non-stable color, which must take no traffic. A cold color gets "
            "the stable color's capacity back. In a promote stack the version's image must "
            "exist in the baking account; if that cannot be checked (no AWS credentials) the "
            "command warns and goes ahead, since `pulumi preview` resolves the image by the "
            "same name and fails without it. Use --require-baked to refuse instead.",
        )
    )
    deploy.add_argument("version", metavar="VERSION", help="semantic version, e.g. 1.5.0")
    deploy.add_argument(
        "--require-baked",
        action="store_true",
        help="refuse when the image lookup (or the check of image.app's package and its "
        "digest) cannot be made (instead of warning)",
    )
    deploy.add_argument(
        "--allow-stale-foundation",
        action="store_true",
        help="deploy although the image's foundation is older than "
        "release.maxFoundationAgeDays (a warning instead of a refusal)",
    )

    shift = _add_editing(
        _command(
            commands,
            "shift",
            "send PERCENT of traffic to the new color, the rest to the stable one",
            "Set the new (non-stable) color's weight to PERCENT and the stable color's to "
            "100-PERCENT: one listener change. Typical steps: 10, 50, 100. The first shift of "
            "a release (new color at 0%), with target tracking on, also raises the new color's "
            "capacity.min to the stable color's live desired capacity, in the same write, and "
            "records its own min and desired in release.canaryRestore for finish; `pulumi up` "
            "then waits for that many healthy instances before the listener changes.",
        )
    )
    shift.add_argument("percent", type=percentage, metavar="PERCENT", help="0-100")
    _add_live_gate(shift)

    rollback = _add_editing(
        _command(
            commands,
            "rollback",
            "all traffic back to the stable color in one edit",
            "Stable color 100%, new color 0%: only the traffic key changes, so `pulumi up` "
            "makes one listener change. Capacity is untouched, so shifting again is possible: "
            "a min the first shift raised stays raised (finish puts it back).",
        ),
        unless="; not with --now, which takes no lock",
    )
    rollback.add_argument(
        "--now",
        action="store_true",
        help="emergency: first set the live listener's weights with one ModifyListener call "
        "(found by the stack's tags), then write the file to match; with --dry-run, find the "
        "listener and change nothing",
    )
    _add_live_gate(
        _add_editing(
            _command(
                commands,
                "finish",
                "the new color, at 100%%, becomes stable; the old one goes to standby",
                "Set release.stable to the new color. With release.standby 'cold' the old "
                "color scales to 0 instances (max kept); with 'warm' it keeps running for a "
                "fast return. The new color's own min (and desired), recorded in "
                "release.canaryRestore when the first shift raised them, go back, and the "
                "record goes. The new color must already take 100% in the file and on the live "
                "listener; with --apply a lower share is first shifted to 100 and applied, then "
                "finish is written and applied: two updates, never one.",
            )
        )
    )


def _add_rollout(commands: argparse._SubParsersAction) -> None:
    rollout_ = _command(
        commands,
        "rollout",
        "shift in steps, baking each against the new color's alarms; roll back on any alarm",
        "For each step: shift, `pulumi preview` and `pulumi up` (Automation API), then watch "
        "the new color's CloudWatch alarms for the bake time, then judge it against the stable "
        "color over that window (canary analysis, golden-fleet:analysis): extended while "
        "inconclusive, rolled back on a failure, paused (exit 4, weights kept) when both colors "
        "are worse than their last hour. The first step from 0% also "
        "raises the new color's min to the stable color's live desired capacity, as shift "
        "does (refused before anything is written when that cannot be read or is above the "
        "new color's max). Any alarm in ALARM, a failed "
        "update or Ctrl-C writes and applies the rollback and exits 1 with a timeline (a hand "
        "edit of the file: the listener alone is set back, the file left as edited, exit 6; "
        "refused before any write, e.g. the release lock held: exit 5). A "
        "re-run resumes: steps at or below the new color's weight are skipped. Without "
        "--apply it prints the plan and writes nothing.",
    )
    rollout_.add_argument(
        "--steps",
        type=rollout.parse_steps,
        default=rollout.DEFAULT_STEPS,
        metavar="LIST",
        help="new color's weights, ascending, ending at 100 (default 10,50,100)",
    )
    rollout_.add_argument(
        "--bake",
        type=rollout.parse_bake,
        default=rollout.DEFAULT_BAKE_S,
        metavar="TIME",
        help="how long each step watches the alarms: 30s, 5m, 1h (default 5m)",
    )
    rollout_.add_argument(
        "--apply",
        action="store_true",
        help="run it: write, preview and update each step (needs the pulumi CLI and AWS "
        "credentials that may read CloudWatch alarms)",
    )
    _add_take_over(rollout_, "")


def _add_prune(commands: argparse._SubParsersAction) -> None:
    prune = _command(
        commands,
        "prune",
        "deregister this service's old images and their snapshots, never one in use",
        "Dry run unless --apply. Keeps the newest --keep versions, every version a color names "
        "in any Pulumi.*.yaml of the project, every image any launch-template version or "
        "launch configuration names and every image a non-terminated instance runs, in each "
        "region; deletes the rest (image first, then its snapshots no other image uses). Stops "
        "with nothing deleted when any of that cannot be read. Run it with the credentials of "
        "the account that bakes the images, naming the stack that bakes them.",
    )
    where = prune.add_mutually_exclusive_group()
    where.add_argument(
        "--region",
        action="append",
        type=prune_.region_name,
        metavar="REGION",
        help="a region to prune (repeatable; default: the stack's region and every "
        "copyToRegions of the project's bake stacks)",
    )
    where.add_argument(
        "--all-regions",
        action="store_true",
        help="prune in every region enabled for the account (DescribeRegions): finds the "
        "copies left in regions that are no longer in copyToRegions",
    )
    prune.add_argument(
        "--keep",
        type=prune_.keep_count,
        default=prune_.DEFAULT_KEEP,
        metavar="N",
        help=f"newest versions always kept (default {prune_.DEFAULT_KEEP})",
    )
    prune.add_argument(
        "--usage-role",
        action="append",
        type=prune_.role_arn,
        metavar="ROLE_ARN",
        help="a role in an account the images are shared with (e.g. prod's), assumed to read "
        "that account's launch templates, launch configurations and instances as well "
        "(repeatable)",
    )
    prune.add_argument(
        "--apply", action="store_true", help="delete (without it nothing is changed)"
    )


def _add_inspections(commands: argparse._SubParsersAction) -> None:
    """analyze and images: they read and judge, and write nothing."""
    analyze_.add_arguments(
        _command(
            commands,
            "analyze",
            "judge the new color against the stable one as they serve now (canary analysis)",
            "The rollout's canary judge on demand: each metric of the new color against the "
            "stable one over a window (error ratios by a one-sided two-proportion test, "
            "p50/p90/p99 by Mann-Whitney U, each with its tolerance), the weighted score and "
            "the verdict; a Markdown report and PNG timeline in --report-dir.",
        )
    )
    images.add_arguments(
        _command(
            commands,
            "images",
            "each color's image and foundation: fresh, stale or revoked",
            "List both colors' images with their foundation and its age. With --stale, exit 1 "
            "when a color with instances or traffic runs a revoked image or one whose "
            "foundation is older than release.maxFoundationAgeDays (a pipeline's cue to "
            "rebake); an image baked before the layers has no known foundation and is not "
            "judged.",
        )
    )


# ---------------------------------------------------------------------------------------------
def _one_line(error: ConfigError) -> str:
    return "; ".join(error.problems)


def _parse(sf: stackfile.StackFile) -> StackConfig:
    try:
        return sf.parse()
    except ConfigError as error:
        raise ReleaseError(
            f"{sf.path.name} does not validate: {_one_line(error)} — fix the file (or restore "
            "it from git) first; the release command only edits valid stack files"
        ) from None


def _bake_check(cfg: StackConfig, version: str, require: bool) -> BakeCheck | None:
    check = images.check_baked(cfg, version)
    if not isinstance(cfg.image, PromoteImage):
        # A bake stack bakes the version during `pulumi up`, or reuses its image: an image
        # that prune is deleting, a revoked one, or one found (its foundation's age) concerns
        # deploy here; a missing or unknown one is `pulumi up`'s to bake.
        relevant = (BakeStatus.PRUNING, BakeStatus.REVOKED, BakeStatus.FOUND)
        return check if check.status in relevant else None
    if check.status is BakeStatus.UNKNOWN and require:
        raise ReleaseError(
            f"could not check whether {version} was baked ({check.detail}) and --require-baked "
            f"is set — provide AWS credentials allowed ec2:DescribeImages in {cfg.region}"
        )
    return check


def _package_check(plan: Plan, cfg: StackConfig, version: str, require: bool, root: Path) -> Plan:
    """Refuse a version whose package (image.app) or its digest is missing; a check that could
    not be made warns, or refuses with --require-baked, like the image lookup."""
    from release import packages

    check = packages.check_package(cfg, version, root)
    if check is None:
        return plan
    if check.status is BakeStatus.MISSING:
        raise ReleaseError(
            f"{version}'s package cannot be baked: {check.detail} — publish the package of "
            f"{version} and its digest first (image.app in the stack file names where)"
        )
    if check.status is BakeStatus.UNKNOWN:
        if require:
            raise ReleaseError(
                f"could not check {version}'s package ({check.detail}) and --require-baked is "
                "set — provide credentials allowed s3:GetObject on it, or network access"
            )
        return dataclasses.replace(
            plan,
            warnings=(
                *plan.warnings,
                f"could not check {version}'s package ({check.detail}); continuing: the bake in "
                "`pulumi up` fetches and verifies it and fails without it",
            ),
        )
    return dataclasses.replace(plan, notes=(*plan.notes, f"package found: {check.detail}"))


def _plan(args: argparse.Namespace, cfg: StackConfig, root: Path | None = None) -> Plan:
    stack = args.stack
    if args.command == "deploy":
        transitions.deploy(cfg, stack, args.version)  # refuse before any AWS call
        baked = _bake_check(cfg, args.version, args.require_baked)
        plan = transitions.deploy(
            cfg, stack, args.version, baked, allow_stale_foundation=args.allow_stale_foundation
        )
        return _package_check(plan, cfg, args.version, args.require_baked, root or project_root())
    if args.command == "shift":
        transitions.shift(cfg, stack, args.percent)  # refuse before any AWS call
        from release import canary

        size = canary.for_shift(cfg, stack, args.percent, require_healthy=args.require_healthy)
        return transitions.shift(cfg, stack, args.percent, size, cap_at_max=args.force)
    if args.command == "rollback":
        return transitions.rollback(cfg, stack)
    return transitions.finish(cfg, stack)


def _live_gate(args: argparse.Namespace, cfg: StackConfig) -> list[str]:
    """Look at AWS before a shift or finish is written (see :mod:`release.gates`)."""
    from release import gates

    if args.command == "shift":
        colors, weights = gates.for_shift(cfg, args.percent)
    elif args.command == "finish":
        colors, weights = gates.for_finish(cfg)
    else:
        return []
    return gates.check(
        cfg,
        args.stack,
        colors,
        force=args.force,
        require_healthy=args.require_healthy,
        weights=weights,
    )


def _confirm() -> bool:
    if not sys.stdin.isatty():
        print("no terminal to confirm `pulumi up` on: pass --yes to apply without asking")
        return False
    return input("run `pulumi up` now? [y/N] ").strip().lower() in ("y", "yes")


def run_edit(
    args: argparse.Namespace,
    path: Path,
    root: Path,
    out: Callable[[str], None] = print,
    clock: rollout.Clock | None = None,
) -> int:
    """An edit; with --apply, written and applied under the stack's release lock
    (:mod:`release.apply_lock`), which a file edit alone does not take. ``clock`` is the one a
    take-over watches the holder on (default: the real one)."""
    from release import automation

    pending: list[str] = []
    if not args.apply:
        return _edit(args, path, root, out, pending, None)
    automation.require_cli()
    if path.resolve() != (root / f"Pulumi.{args.stack.split('/')[-1]}.yaml").resolve():
        raise ReleaseError(
            f"--apply updates the project's stack {args.stack!r}, but --file points at "
            f"{path} — leave out --apply, or edit the project's stack file"
        )
    from release import apply_lock

    cfg = _parse(stackfile.load(path))  # the region and service name the lock's item is under
    lock = apply_lock.for_edit(args, cfg.region, cfg.service.name, out, clock)
    with apply_lock.held(lock, out, pending.append):
        return _edit(args, path, root, out, pending, lock)


def _edit(
    args: argparse.Namespace,
    path: Path,
    root: Path,
    out: Callable[[str], None],
    pending: list[str],
    lock: object | None,
) -> int:
    from release import automation

    sf = stackfile.load(path)
    cfg = _parse(sf)
    if args.command == "finish" and args.apply and transitions.finish_needs_shift(cfg):
        # Two updates, never one: the weights first, applied; then the retirement.
        first = argparse.Namespace(**{**vars(args), "command": "shift", "percent": 100})
        _edit(first, path, root, out, pending, lock)
        sf = stackfile.load(path)
        cfg = _parse(sf)
    plan = _plan(args, cfg, root)
    # Everything said before the write waits until the file is written (or not): a reader that
    # stops early (`| head -1`) must never decide whether the edit happens.
    say = pending.append
    say(f"{plan.command} {args.stack}: {plan.summary}")
    if plan.is_noop:
        _emit(pending, out)
        return 0
    live_warnings = _live_gate(args, cfg)
    try:
        transitions.validate_plan(stackfile.load_config_text(sf.original.decode()), plan)
        text = sf.render(plan)
        parse_stack_config(stackfile.load_config_text(text))  # exactly what will be written
    except ConfigError as error:
        raise ReleaseError(
            f"the edit would not validate ({_one_line(error)}) — nothing written"
        ) from None
    for note in plan.notes:
        say(f"  note: {note}")
    for warning in (*plan.warnings, *live_warnings):
        say(f"  warning: {warning}")
    say(f"  undo: {plan.undo}")
    say(stackfile.unified_diff(sf.original.decode(), text, path.name).rstrip("\n"))
    if args.dry_run:
        _emit(pending, out)
        out(f"dry run: {path} not written")
        return 0
    if lock is not None:
        _still_ours(lock, "nothing written")  # right before the write: the gate took seconds
    try:
        stackfile.atomic_write(path, text.encode(), expected=sf.original)
    except OSError as error:
        raise ReleaseError(
            f"could not write {path} ({error.strerror or error}) — the file is unchanged; "
            "fix the cause (permissions, disk space) and run the command again"
        ) from None
    _emit(pending, out)
    out(f"wrote {path}")
    out(f"next: pulumi preview --stack {args.stack} --diff    (expect: {plan.preview})")
    if args.apply:
        _still_ours(lock, f"{path.name} is written, no update run", phase="update")
        automation.preview_and_up(
            args.stack, root, confirm=(lambda: True) if args.yes else _confirm, out=out
        )
        return _after_update(args, path, lock, out)
    return 0


def _still_ours(lock: object, written: str, phase: str | None = None) -> None:
    """The lock still this command's and not halted by `rollback --now` (which halts whoever
    holds it); ``phase`` is recorded on the item. Otherwise refused, saying what was written."""
    from release import apply_lock
    from release import lock as locks

    try:
        lock.check(phase)  # type: ignore[attr-defined]
    except (locks.Halted, locks.LockLost) as error:
        raise (ReleaseError if phase else apply_lock.LockRefused)(f"{error}; {written}") from None


def _after_update(
    args: argparse.Namespace, path: Path, lock: object, out: Callable[[str], None]
) -> int:
    """A `rollback --now` during the update set the stable weights before this update may have
    moved them again: set them once more on the listener, as a halted rollout does."""
    from release import edits, emergency
    from release import lock as locks

    try:
        lock.check()  # type: ignore[attr-defined]
    except locks.Halted as error:
        cfg = edits.read_config(path)  # as `rollback --now` wrote it
        stable = cfg.stable_color.value
        short = args.stack.split("/")[-1]
        emergency.roll_back_listener(cfg.region, short, cfg.service.name, stable)
        raise ReleaseError(
            f"{error} while `pulumi up` ran: {stable} 100% set on the listener again (one "
            f"ModifyListener); check with `python -m release status {args.stack}`"
        ) from None
    except locks.LockLost as error:
        out(f"warning: {error} (after the update ended)")
    return 0


def _emit(lines: list[str], out: Callable[[str], None]) -> None:
    for line in lines:
        out(line)
    lines.clear()


def run_status(
    args: argparse.Namespace, path: Path, root: Path, out: Callable[[str], None] = print
) -> int:
    from release import automation, live

    cfg = _parse(stackfile.load(path))
    amis, note = ({}, "AMI: not read (--no-outputs)")
    if not args.no_outputs:
        amis, note = automation.read_amis(args.stack, root)
    mode = cfg.image.mode
    out(
        f"stack {args.stack} ({path.name}): image {mode}, standby {cfg.release.standby.value}, "
        f"stable {cfg.stable_color.value}"
    )
    out(transitions.render_table(transitions.status_rows(cfg, amis)))
    if note:
        out(note)
    raised = transitions.canary_line(cfg)
    if raised:
        out(raised)
    if not args.no_images:
        for line in images.status_lines(cfg, stack=None if args.no_live else args.stack):
            out(line)
    if not args.no_live:
        for line in live.status_lines(cfg, args.stack):
            out(line)
        for line in _lock_status(cfg, args.stack):
            out(line)
    out(f"next: {transitions.next_step(cfg, args.stack)}")
    return 0


def _lock_status(cfg: StackConfig, stack: str) -> list[str]:
    """Who holds the stack's release lock, as its item says (release.lock.read_status)."""
    from release import lock as locks
    from release.aws_clients import client

    key = locks.lock_key(cfg.service.name, stack.split("/")[-1])
    try:
        dynamodb = client("dynamodb", cfg.region)
    except Exception as error:  # no region or a broken configuration: one line, status goes on
        return [f"release lock: could not be read ({error})"]
    return locks.read_status(dynamodb, key)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a reader that closed its end of the pipe ends the output quietly."""
    try:
        code = _main(argv)
        sys.stdout.flush()
    except KeyboardInterrupt:
        # Before a rollout's own handlers are in place, or during any other command: the
        # stack file is written atomically, so it is either as it was or fully written.
        print(
            f"{PROG}: interrupted — the stack file is as it was or fully written, never in "
            "between; see where things stand with `python -m release status STACK`",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        # `python -m release status prod | head -1`: the reader has what it wanted. Point
        # stdout at /dev/null so the interpreter's final flush cannot fail again (Python docs,
        # "Note on SIGPIPE"); the command's own work, such as a written file, is already done.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    except Exception as error:  # the last guard: one line, the traceback in a log file;
        # stop signals (BaseException) pass through (release/error_log.py)
        from release import error_log

        return error_log.report(
            error, argv, lambda line: print(f"{PROG}: {one_line(line)}", file=sys.stderr)
        )
    return code


def _main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    root = project_root()
    if args.command == "revoke":  # no STACK argument: it names the bake stack, if any
        try:
            return revoke_.run(args, root)
        except ReleaseError as error:
            print(f"{PROG}: error: {one_line(str(error))}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:  # the table above says what was written; no stack file
            print(
                f"{PROG}: interrupted — run the same revoke again to complete it", file=sys.stderr
            )
            return 130
    path = args.file or root / f"Pulumi.{args.stack.split('/')[-1]}.yaml"
    with transitions.hints_for_file(str(args.file) if args.file else None):
        return _run(args, path, root)


def _run(args: argparse.Namespace, path: Path, root: Path) -> int:
    try:
        if args.command == "status":
            return run_status(args, path, root)
        if args.command == "rollout":
            return rollout.run(args, path, root)
        if args.command == "analyze":
            return analyze_.run(args, path)
        if args.command == "prune":
            return prune_.run(args, path, root)
        if args.command == "images":
            return images.run_command(args, _parse(stackfile.load(path)))
        if args.command == "rollback" and args.now:
            if args.apply:
                raise ReleaseError("--now changes the listener itself: leave out --apply")
            from release import emergency

            return emergency.run_now(
                args, path, err=lambda line: print(f"{PROG}: {one_line(line)}", file=sys.stderr)
            )
        from release.apply_lock import InterruptedWatching

        try:
            return run_edit(args, path, root)
        except InterruptedWatching as error:  # before the lock was the edit's: nothing written
            print(
                f"{PROG}: interrupted ({error}) before the release lock was taken — nothing "
                f"written, the lock's item left as it was; see where things stand with "
                f"`python -m release status {args.stack}`",
                file=sys.stderr,
            )
            return 130
        except rollout.Interrupted as error:  # an edit's --apply: its lock is released by now
            # Only the edit's: anywhere else Interrupted is a stop signal on its way to the
            # code that handles it (a rollout's rollback), never swallowed here.
            print(
                f"{PROG}: interrupted ({error}) — the stack file is as it was or fully written, "
                f"never in between; the release lock is released; see where things stand with "
                f"`python -m release status {args.stack}`",
                file=sys.stderr,
            )
            return 130
    except ReleaseError as error:
        from release.apply_lock import LockRefused

        print(f"{PROG}: error: {one_line(str(error))}", file=sys.stderr)
        # A rollout raises only before its first write (later it rolls back and returns 1):
        # its own status, so that 1 always means "rolled back". An edit's --apply that could
        # not take the release lock wrote nothing either: the same status.
        if args.command == "rollout" or isinstance(error, LockRefused):
            return rollout.REFUSED
        return 1


LINE_LIMIT = 500  # characters of one error line; AWS may send 5,000 (a StatusReason, a message)


def one_line(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` on one line, whitespace collapsed; a longer one keeps its start and its end (the
    end says what to do) with the middle cut and counted."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head, tail = limit * 3 // 5, limit * 2 // 5 - 30
    return f"{flat[:head]} …[{len(flat) - head - tail} characters cut]… {flat[-tail:]}"
