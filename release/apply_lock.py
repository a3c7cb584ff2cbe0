"""The release lock around an edit command's ``--apply`` (``deploy``, ``shift``, ``rollback``,
``finish``): the same DynamoDB item a rollout takes (:mod:`release.lock`), held from before the
file is written to after ``pulumi up`` ends, so that no rollout (and no other ``--apply``) writes
the stack file or moves the listener in between.

* **acquire** before the file is read for the plan: a held lock is refused in one line naming its
  holder, nothing written (:class:`release.lock.LockHeld`, exit status
  :data:`release.rollout.REFUSED`); a lock that cannot be taken (no table, no credentials) is
  refused the same way: an ``--apply`` that might run unlocked would be no lock at all.
  With ``--take-over-stale-lock`` a held lock is watched for one lease first, on this process's
  monotonic clock, and taken only if its record version never moved (a rollout's take-over,
  :meth:`release.lock.DynamoLock._take_over`); a signal during that watch ends the command with
  nothing written and nothing to release (:class:`InterruptedWatching`).
* **heartbeat**: the lock's own thread, through the preview, the confirmation and the update;
  the phase is ``update`` while ``pulumi up`` runs.
* **release** in a ``finally``, with SIGINT/SIGTERM only noted while it runs (as a rollout's):
  done, failed, refused or interrupted. An interrupt raises :class:`release.rollout.Interrupted`
  (a ``BaseException``) wherever the main thread is; inside ``pulumi up`` it ends the wait in
  ``subprocess.Popen.__exit__`` only after the ``pulumi`` process has exited (CPython
  Lib/subprocess.py: ``__exit__`` calls ``wait()`` for any exception but KeyboardInterrupt), so
  the lock is never released under an update still running.

Without ``--apply`` an edit writes the file alone, for a person to review and ``pulumi up``: no
lock is taken (docs/guides/release-lock.md).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

from release import lock as locks
from release.rollout import Clock, Interrupted
from release.transitions import ReleaseError


class LockRefused(ReleaseError):
    """The release lock could not be taken (held, no table, no credentials): nothing written."""


class InterruptedWatching(Interrupted):
    """SIGINT or SIGTERM before the lock was this command's (a take-over's watch, or a refusal
    being read): nothing was written and there is nothing to release, which the command's last
    line says instead of "the release lock is released"."""


def catch_signals(handler: Any) -> dict:
    """Install ``handler`` for SIGINT and SIGTERM; the handlers it replaced."""
    replaced = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            replaced[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: signals cannot be caught here
            pass
    return replaced


def restore_signals(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def release_noting(lock: Any, out: Callable[[str], None]) -> None:
    """Release ``lock``; a release that fails is one line saying what becomes of the item."""
    try:
        note = lock.release()
    except Exception as error:  # AWS unreachable: no heartbeat any more, a waiter takes it
        out(
            f"could not release the release lock ({lock.where}: {error}): its heartbeat has "
            "stopped, so a release command started with --take-over-stale-lock takes it after "
            f"watching it for one lease ({int(lock.lease_s)}s)"
        )
    else:
        if note and note != "released":
            out(f"release lock: {note}")


@contextlib.contextmanager
def held(lock: Any, out: Callable[[str], None], say: Callable[[str], None]) -> Iterator[Any]:
    """``lock`` taken for the block, released on every way out (see the module's docstring).
    ``say`` gets the line saying it was taken (the command shows it with the edit's lines)."""

    def interrupt(signum: int, _frame: Any) -> None:
        # Before the acquire's write is sent (a take-over's watch: up to a lease of reads and
        # sleeps) nothing is this command's yet; from then on release() settles the write.
        raise (Interrupted if lock.held or lock.pending else InterruptedWatching)(signum)

    def note(signum: int, _frame: Any) -> None:
        out(
            f"{signal.Signals(signum).name} received while releasing the release lock: "
            "finishing that first"
        )

    previous = catch_signals(interrupt)
    try:
        try:
            try:
                say(lock.acquire())
            except ReleaseError as error:
                raise LockRefused(str(error)) from None
            yield lock
        finally:
            catch_signals(note)
            release_noting(lock, out)
    finally:
        restore_signals(previous)


def for_edit(
    args: Any, region: str, service: str, out: Callable[[str], None], clock: Clock | None = None
) -> Any:
    """The stack's lock as an edit command's ``--apply`` takes it: the holder names the
    command, so that a refused rollout (or ``status``) says what holds it. With
    ``--take-over-stale-lock`` a held lock is watched on ``clock`` (the waiter's monotonic clock
    and its sleep) before it is taken; the heartbeat keeps the real clock."""
    from release.aws_clients import client

    clock = clock or Clock()

    command = " ".join(
        [args.command, *([args.version] if args.command == "deploy" else []),
         *([str(args.percent)] if args.command == "shift" else []), "--apply"]
    )  # fmt: skip
    return locks.DynamoLock(
        client("dynamodb", region),
        locks.lock_key(service, args.stack.split("/")[-1]),
        args.stack,
        holder=f"{locks.default_holder()} ({command})",
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        wall=clock.wall,
        take_over=args.take_over_stale_lock,
        out=out,
    )
