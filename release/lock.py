"""The release lock, the halt mark and the bake record: tags on the stack's weighted listener.

A lock in a local file only stops a second rollout on the same machine; two CI runners, or a
laptop and a runner, both see AWS. The weighted listener (:func:`release.emergency.find_listener`)
is the one resource every release command already finds by the stack's tags, and ELBv2 keeps up
to 50 tags on it, so the lock lives there:

``golden-fleet:lock``            a random token of the rollout that holds it
``golden-fleet:lock-holder``     ``user@host pid N``
``golden-fleet:lock-started``    when it was taken (UTC, ISO 8601)
``golden-fleet:lock-heartbeat``  refreshed at every check of the rollout, at least once a minute
``golden-fleet:lock-phase``      ``check``, ``update`` (a ``pulumi up`` in flight) or ``bake``
``golden-fleet:halted``          written by ``rollback --now``: the token of the rollout it halts
``golden-fleet:halted-by``       who halted it, and when
``golden-fleet:baked``           ``<color> <version> <percent>``: the last step whose bake passed

Tag writes are not conditional (AddTags has no compare-and-swap), so taking the lock is decided
and then checked: the token is written, read back, and the rollout proceeds only when the token
read is its own; before every irreversible step (each write of the stack file) the token is read
again. A lock whose heartbeat is older than :data:`STALE_AFTER_S` belongs to a process that is
gone or hung; it is taken over only when the operator says so (``--take-over-stale-lock``).

Tag values hold only letters, digits, spaces and ``_ . : / = + - @`` (ELBv2 API reference, Tag).
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from release.transitions import ReleaseError

TOKEN = "golden-fleet:lock"
HOLDER = "golden-fleet:lock-holder"
STARTED = "golden-fleet:lock-started"
HEARTBEAT = "golden-fleet:lock-heartbeat"
PHASE = "golden-fleet:lock-phase"
HALTED = "golden-fleet:halted"
HALTED_BY = "golden-fleet:halted-by"
BAKED = "golden-fleet:baked"
LOCK_KEYS = (TOKEN, HOLDER, STARTED, HEARTBEAT, PHASE)

STALE_AFTER_S = 600.0  # ten missed heartbeats
HEARTBEAT_EVERY_S = 60.0
NO_LOCK = "none"  # the halt mark's value when no rollout held the lock


class LockHeld(ReleaseError):
    """Another rollout holds the release lock (or took it while this one tried)."""


class Halted(ReleaseError):
    """``rollback --now`` halted this rollout."""


class LockLost(ReleaseError):
    """The lock this rollout took is no longer its own."""


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def default_holder() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    clean = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_.-") else "_" for ch in user)
    host = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in ".-") else "_"
        for ch in socket.gethostname()
    )
    return f"{clean or 'unknown'}@{host or 'unknown'} pid {os.getpid()}"


@dataclass(frozen=True)
class Holder:
    """The lock as the tags show it."""

    token: str
    holder: str
    started: str
    heartbeat: datetime | None
    phase: str

    def age_s(self, now: datetime) -> float | None:
        return None if self.heartbeat is None else (now - self.heartbeat).total_seconds()

    def stale(self, now: datetime, after_s: float = STALE_AFTER_S) -> bool:
        age = self.age_s(now)
        return age is None or age >= after_s

    def describe(self, now: datetime) -> str:
        age = self.age_s(now)
        beat = "no heartbeat" if age is None else f"last heartbeat {int(age)}s ago"
        return f"{self.holder} (since {self.started}, {beat}, {self.phase or 'no phase'})"


def holder_of(tags: Mapping[str, str]) -> Holder | None:
    if not tags.get(TOKEN):
        return None
    return Holder(
        token=tags[TOKEN],
        holder=tags.get(HOLDER, "unknown holder"),
        started=tags.get(STARTED, "?"),
        heartbeat=parse_stamp(tags.get(HEARTBEAT, "")),
        phase=tags.get(PHASE, ""),
    )


def read_tags(elbv2: Any, arn: str) -> dict[str, str]:
    [description] = elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"]
    return {tag["Key"]: tag.get("Value", "") for tag in description.get("Tags", [])}


def put_tags(elbv2: Any, arn: str, tags: Mapping[str, str]) -> None:
    elbv2.add_tags(ResourceArns=[arn], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def baked_record(color: str, version: str, percent: int) -> str:
    return f"{color} {version} {percent}"


def halt(
    elbv2: Any, arn: str, by: str, now: datetime, tags: Mapping[str, str] | None = None
) -> Holder | None:
    """Mark the stack halted for the rollout holding the lock (if any); that rollout stops at its
    next check. Returns the holder that was halted. ``tags``: the listener's tags as just read
    (None: read them here)."""
    current = holder_of(read_tags(elbv2, arn) if tags is None else dict(tags))
    put_tags(
        elbv2,
        arn,
        {HALTED: current.token if current else NO_LOCK, HALTED_BY: f"{by} at {stamp(now)}"},
    )
    return current


@dataclass
class ListenerLock:
    """The release lock of one stack, on its weighted listener."""

    elbv2: Any
    arn: str
    stack: str
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    take_over: bool = False
    stale_after_s: float = STALE_AFTER_S
    holder: str = field(default_factory=default_holder)
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    held: bool = False

    def _tags(self) -> dict[str, str]:
        return read_tags(self.elbv2, self.arn)

    def acquire(self) -> str:
        """Take the lock, or raise :class:`LockHeld` naming its holder. Returns a note."""
        now = self.wall()
        current = holder_of(self._tags())
        note = f"release lock taken on {self.arn} ({self.holder})"
        if current is not None and current.token != self.token:
            if not current.stale(now, self.stale_after_s):
                raise LockHeld(
                    f"another rollout of {self.stack} holds the release lock: "
                    f"{current.describe(now)} — wait for it to end; `python -m release rollback "
                    f"{self.stack} --now` halts it; nothing written"
                )
            if not self.take_over:
                raise LockHeld(
                    f"the release lock of {self.stack} is stale: {current.describe(now)}, no "
                    f"heartbeat for {int(self.stale_after_s) // 60} minutes — if that rollout is "
                    "gone, take the lock over with --take-over-stale-lock; nothing written"
                )
            note = f"took over the stale release lock of {current.describe(now)}"
        put_tags(
            self.elbv2,
            self.arn,
            {
                TOKEN: self.token,
                HOLDER: self.holder,
                STARTED: stamp(now),
                HEARTBEAT: stamp(now),
                PHASE: "check",
            },
        )
        self.held = True  # from here release() removes it, if the token read is still ours
        after = holder_of(self._tags())
        if after is None or after.token != self.token:
            self.held = False
            raise LockHeld(
                f"another rollout of {self.stack} took the release lock at the same time: "
                f"{after.describe(now) if after else 'released again'}; nothing written"
            )
        return note

    def check(self, phase: str | None = None) -> None:
        """Raise :class:`Halted` after ``rollback --now``, :class:`LockLost` when the lock is no
        longer this rollout's; otherwise refresh the heartbeat (and the phase)."""
        tags = self._tags()
        if tags.get(HALTED) == self.token:
            raise Halted(f"halted by `rollback --now` ({tags.get(HALTED_BY, 'unknown')})")
        current = holder_of(tags)
        if current is None or current.token != self.token:
            raise LockLost(
                "the release lock is no longer this rollout's ("
                + (f"now held by {current.describe(self.wall())}" if current else "released")
                + ")"
            )
        beat = {HEARTBEAT: stamp(self.wall())}
        if phase is not None:
            beat[PHASE] = phase
        put_tags(self.elbv2, self.arn, beat)

    def baked(self) -> str:
        return self._tags().get(BAKED, "")

    def record_baked(self, record: str) -> None:
        put_tags(self.elbv2, self.arn, {BAKED: record})

    def forget_baked(self) -> None:
        self.elbv2.remove_tags(ResourceArns=[self.arn], TagKeys=[BAKED])

    def release(self) -> None:
        """Remove the lock if it is still this rollout's (and the halt mark naming it)."""
        if not self.held:
            return
        tags = self._tags()
        keys = [key for key in LOCK_KEYS if key in tags] if tags.get(TOKEN) == self.token else []
        if tags.get(HALTED) == self.token:
            keys += [HALTED, HALTED_BY]
        if keys:
            self.elbv2.remove_tags(ResourceArns=[self.arn], TagKeys=keys)
        self.held = False
