"""The release lock, the halt mark and the bake record: one DynamoDB item per stack.

The design of the amazon-dynamodb-lock-client (awslabs/amazon-dynamodb-lock-client,
``AmazonDynamoDBLockClient``): every write is conditional, so two writers can never both win,
and whether a holder is alive is decided by *observing* its record version number change, on
the observer's own monotonic clock, never by comparing wall clocks across machines.

The item (table :data:`release.lock_table.TABLE_NAME`, key ``lock_key`` = ``<service>/<stack>``):

``owner``     the random token of the rollout holding the lock (absent: not held)
``holder``    ``user@host pid N``, for messages
``rvn``       the record version number: a new random value at every write of the holder
``lease_s``   how long a waiter must see the same ``rvn`` before the holder counts as dead
``phase``     ``check``, ``update`` (a ``pulumi up`` in flight) or ``bake``
``started``   ``beat_at``: wall-clock stamps, shown to people, never compared
``halted``    written by ``rollback --now``: the token of the rollout it halts (``none``: none)
``halted_by`` who halted it, and when
``baked``     ``<color> <version> <percent>``: the last step whose bake passed

* **acquire**: UpdateItem with ``attribute_not_exists(owner)``. UpdateItem, not PutItem: the
  item also carries the bake record, which outlives a lock (a rerun after a completed or killed
  rollout reads it), and PutItem would replace the item whole. Two rollouts started together:
  DynamoDB applies one write, the other's condition fails, and it refuses naming the winner.
* **heartbeat**: a background thread bumps ``rvn`` every :data:`HEARTBEAT_EVERY_S` under the
  condition ``owner = <token>`` (so it goes on through a bake and a ``pulumi up`` of 30 minutes);
  the rollout's checks read the item (halted? still ours?) and raise :class:`LockLost` when no
  heartbeat has landed for a whole lease, since a waiter may have taken the lock by then.
* **take-over** (``--take-over-stale-lock``, on ``rollout`` and on an edit's ``--apply``): the
  waiter reads the item every :data:`POLL_S`, saying at each read what it watches, and takes the
  lock only when the same ``rvn`` was seen for a whole lease on its own monotonic clock, with a
  write conditioned on exactly that ``rvn``; a version that moves is a live holder, and the
  waiter refuses. A live holder is never taken over, whatever any clock says.
* **release**: DeleteItem conditioned on the token; when a bake record must outlive the lock,
  UpdateItem removing the lock's attributes, conditioned on the token.
* **halt** (``rollback --now``): one UpdateItem that sets the halt mark to the owner the item
  holds at that moment and removes the bake record: both change together or neither does.
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from release.lock_table import PARTITION_KEY, TABLE_NAME, lock_key
from release.transitions import ReleaseError

__all__ = ["TABLE_NAME", "lock_key"]

LEASE_S = 60.0  # a waiter takes a lock whose record version stood still this long
HEARTBEAT_EVERY_S = 10.0  # six heartbeats per lease: five may be lost before it lapses
POLL_S = 5.0  # how often a waiter reads the item
NO_LOCK = "none"  # the halt mark's value when no rollout held the lock

LOCK_ATTRIBUTES = ("owner", "holder", "rvn", "lease_s", "phase", "started", "beat_at")


class LockHeld(ReleaseError):
    """Another rollout holds the release lock (or took it while this one tried)."""


class Halted(ReleaseError):
    """``rollback --now`` halted this rollout."""


class LockLost(ReleaseError):
    """The lock this rollout took is no longer its own (or may not be)."""


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_holder() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    clean = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_.-") else "_" for ch in user)
    host = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in ".-") else "_" for ch in socket.gethostname()
    )
    return f"{clean or 'unknown'}@{host or 'unknown'} pid {os.getpid()}"


def new_version() -> str:
    return secrets.token_hex(8)


def baked_record(color: str, version: str, percent: int) -> str:
    return f"{color} {version} {percent}"


# ---------------------------------------------------------------------------------------------
# The item, as read (pure)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """The stack's item as one read showed it (an absent item: every field empty)."""

    owner: str = ""
    holder: str = ""
    rvn: str = ""
    lease_s: float = LEASE_S
    phase: str = ""
    started: str = ""
    beat_at: str = ""
    halted: str = ""
    halted_by: str = ""
    baked: str = ""

    @property
    def held(self) -> bool:
        return bool(self.owner)

    def describe(self) -> str:
        """``alice@ci-1 pid 7 (since ..., last heartbeat stamped ..., phase bake)``: the stamps
        are the holder's own clock, shown, never compared."""
        return (
            f"{self.holder or 'unknown holder'} (since {self.started or '?'}, last heartbeat "
            f"stamped {self.beat_at or '?'} by its clock, {self.phase or 'no phase'})"
        )


def record_of(item: Mapping[str, Any] | None) -> Record:
    """A DynamoDB item (low-level attribute values) as a :class:`Record`."""
    item = item or {}

    def text(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    lease = item.get("lease_s", {}).get("N")
    return Record(
        owner=text("owner"),
        holder=text("holder"),
        rvn=text("rvn"),
        lease_s=float(lease) if lease else LEASE_S,
        phase=text("phase"),
        started=text("started"),
        beat_at=text("beat_at"),
        halted=text("halted"),
        halted_by=text("halted_by"),
        baked=text("baked"),
    )


def status_lines(record: Record, key: str) -> list[str]:
    """What ``status`` says of the item: the holder, its stamps as the holder wrote them (its
    own clock: shown, never judged), its phase, and a halt mark. Pure."""
    if record.held:
        lines = [
            f"release lock: held by {record.holder or 'unknown holder'}, started "
            f"{record.started or '?'}, last heartbeat {record.beat_at or '?'} (as the holder "
            f"wrote them, by its clock), phase {record.phase or 'not recorded'} ({key})"
        ]
    else:
        lines = [f"release lock: free ({key})"]
    if record.halted:
        whom = (
            "no holder"
            if record.halted == NO_LOCK
            else ("this holder" if record.halted == record.owner else "an earlier holder")
        )
        lines.append(
            f"release lock: halt set by `rollback --now` ({record.halted_by or 'unknown'}), "
            f"for {whom}"
        )
    return lines


def read_status(dynamodb: Any, key: str, table: str = TABLE_NAME) -> list[str]:
    """:func:`status_lines` of the stack's item; a read that fails (no table, no credentials,
    no answer) is one line saying so, and ``status`` goes on."""
    try:
        record = read(dynamodb, table, key)
    except Exception as error:
        why = (
            f"no table {table} in this account and region"
            if error_code(error) == "ResourceNotFoundException"
            else " ".join(str(error).split()) or type(error).__name__
        )
        return [f"release lock: could not be read ({why})"]
    return status_lines(record, key)


@dataclass
class Watch:
    """A waiter's observation of one holder: how long the same record version has been seen,
    on the waiter's own monotonic clock. Any other version starts the count again."""

    rvn: str = ""
    since: float = 0.0

    def see(self, rvn: str, now: float) -> float:
        """Seconds ``rvn`` has been seen unchanged (0 when it just changed)."""
        if rvn != self.rvn:
            self.rvn, self.since = rvn, now
        return now - self.since


# ---------------------------------------------------------------------------------------------
# DynamoDB calls
# ---------------------------------------------------------------------------------------------
def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else)."""
    from botocore.exceptions import ClientError

    if not isinstance(error, ClientError):
        return ""
    return str(error.response.get("Error", {}).get("Code", ""))


def conditional_failed(error: BaseException) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"


def read(dynamodb: Any, table: str, key: str) -> Record:
    """The item, strongly consistent (a lock decided on a stale read is no lock)."""
    answer = dynamodb.get_item(
        TableName=table, Key={PARTITION_KEY: {"S": key}}, ConsistentRead=True
    )
    return record_of(answer.get("Item"))


def _update(
    dynamodb: Any,
    table: str,
    key: str,
    expression: str,
    condition: str,
    values: Mapping[str, Any] | None = None,
) -> Record:
    names = {name: name[1:] for name in set(re.findall(r"#[a-z_]+", f"{expression} {condition}"))}
    kwargs: dict[str, Any] = {}
    if values:
        kwargs["ExpressionAttributeValues"] = dict(values)
    answer = dynamodb.update_item(
        TableName=table,
        Key={PARTITION_KEY: {"S": key}},
        UpdateExpression=expression,
        ConditionExpression=condition,
        ExpressionAttributeNames=names,
        ReturnValues="ALL_NEW",
        **kwargs,
    )
    return record_of(answer.get("Attributes"))


def halt(dynamodb: Any, table: str, key: str, by: str, now: datetime) -> Record:
    """Mark the stack halted for the rollout holding the lock (if any) and drop the bake record,
    in one write that names the owner as DynamoDB holds it at that moment (``if_not_exists``
    reads the item's own ``owner``): no read before it, so no holder can change in between.
    That rollout stops at its next check. Returns the item as it was before (its holder is the
    one halted)."""
    answer = dynamodb.update_item(
        TableName=table,
        Key={PARTITION_KEY: {"S": key}},
        UpdateExpression=(
            "SET #halted = if_not_exists(#owner, :none), #halted_by = :by REMOVE #baked"
        ),
        ExpressionAttributeNames={
            "#halted": "halted",
            "#owner": "owner",
            "#halted_by": "halted_by",
            "#baked": "baked",
        },
        ExpressionAttributeValues={":none": {"S": NO_LOCK}, ":by": {"S": f"{by} at {stamp(now)}"}},
        ReturnValues="ALL_OLD",
    )
    return record_of(answer.get("Attributes"))


# ---------------------------------------------------------------------------------------------
# The lock
# ---------------------------------------------------------------------------------------------
@dataclass
class DynamoLock:
    """The release lock of one stack (see the module's docstring)."""

    dynamodb: Any
    key: str
    stack: str
    table: str = TABLE_NAME
    # The waiter's clock (watching a holder for one lease before a take-over).
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # The holder's clock: the heartbeat thread waits on it, and a holder none of whose
    # heartbeats landed for a lease by it gives the lock up.
    beat_clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    take_over: bool = False
    lease_s: float = LEASE_S
    heartbeat_s: float = HEARTBEAT_EVERY_S
    poll_s: float = POLL_S
    holder: str = field(default_factory=default_holder)
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    out: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self.held = False
        self.pending = False  # an acquire's write was sent and its answer never came
        self.record = Record()  # the item as this lock last wrote or read it
        self.beaten_at = 0.0  # monotonic time of the last heartbeat that landed
        self.lost = ""  # why the lock is no longer ours, seen by the heartbeat
        self.beats = 0  # heartbeats that landed (for tests and the timeline)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writing = threading.Lock()  # the heartbeat and the main thread write in turn

    @property
    def where(self) -> str:
        return f"{self.table} item {self.key}"

    # -- acquire -----------------------------------------------------------------------------
    def acquire(self) -> str:
        """Take the lock, or raise :class:`LockHeld` naming its holder. Returns a note."""
        taken = f"release lock taken ({self.where}, {self.holder})"
        for _ in range(2):  # a lock released between the failed write and the read: once more
            if self._try_acquire("attribute_not_exists(#owner)", {}):
                return taken
            current = read(self.dynamodb, self.table, self.key)
            if current.held:
                break
        else:
            raise LockHeld(f"the release lock of {self.stack} kept changing hands; nothing written")
        if not self.take_over:
            raise LockHeld(
                f"another release of {self.stack} holds the release lock: {current.describe()} "
                f"— wait for it to end; `python -m release rollback {self.stack} --now` halts "
                "it; if its process is gone, the same command with --take-over-stale-lock "
                f"watches it for one lease ({int(max(self.lease_s, current.lease_s))}s) and "
                "takes it only if it never heartbeats; nothing written"
            )
        return self._take_over(current)

    def _try_acquire(self, condition: str, values: dict[str, Any]) -> bool:
        """One conditional write: True when it took the lock, False when its condition failed
        (nothing written); any other failure is one line (and release() settles it)."""
        try:
            self._write_acquire(condition, values)
        except Exception as error:
            if conditional_failed(error):
                self.pending = False
                return False
            if error_code(error) == "ResourceNotFoundException":
                self.pending = False
                raise ReleaseError(
                    f"no release lock table {self.table} in this account and region: `pulumi up` "
                    "of platform/ declares it (platform/bootstrap/release_lock_table.py); "
                    "nothing written"
                ) from None
            from botocore.exceptions import NoCredentialsError

            if isinstance(error, NoCredentialsError):  # raised before any request is sent
                self.pending = False
            raise ReleaseError(f"could not take the release lock ({self.where}): {error}") from None
        return True

    def _take_over(self, first: Record) -> str:
        """Watch the holder for one lease on this process's monotonic clock; take the lock only
        if its record version stood still the whole time, conditioned on exactly that version.
        Each read is one line: an operator waiting a minute sees what is watched and how long is
        left (a signal meanwhile ends the watch with nothing written: the caller's handler
        raises from the sleep or the read, before any write of this lock)."""
        lease = max(self.lease_s, first.lease_s)
        self.out(
            f"release lock of {self.stack} held by {first.describe()}, record version "
            f"{first.rvn or '?'}: watching it for {int(lease)}s (a read every "
            f"{int(self.poll_s)}s), taken only if that version never moves; Ctrl-C stops "
            "watching, nothing written"
        )
        watch = Watch()
        current = first
        while True:
            if not current.held:
                if self._try_acquire("attribute_not_exists(#owner)", {}):
                    return f"release lock taken ({self.where}, {self.holder}) after its holder left"
                current = read(self.dynamodb, self.table, self.key)
                continue
            if watch.rvn and current.rvn != watch.rvn:
                raise LockHeld(
                    f"the release lock of {self.stack} is alive: {current.describe()} "
                    "heartbeat while watched — it is never taken over; nothing written"
                )
            still = watch.see(current.rvn, self.monotonic())
            if still >= lease:
                if not self._try_acquire("#rvn = :seen", {":seen": {"S": current.rvn}}):
                    now = read(self.dynamodb, self.table, self.key)
                    raise LockHeld(
                        f"the release lock of {self.stack} changed at the last moment (its "
                        "holder heartbeat, or another release took it over"
                        + (f": now held by {now.describe()}" if now.held else "")
                        + "); nothing written"
                    )
                return (
                    f"took over the release lock of {current.describe()}: its record version "
                    f"stood still for {int(still)}s (one lease, {int(lease)}s)"
                )
            if still:
                self.out(
                    f"release lock: version {current.rvn} unchanged for {int(still)}s of "
                    f"{int(lease)}s"
                )
            self.sleep(min(self.poll_s, lease - still))
            current = read(self.dynamodb, self.table, self.key)

    def _write_acquire(self, condition: str, values: dict[str, Any]) -> None:
        now = stamp(self.wall())
        values = {
            **values,
            ":owner": {"S": self.token},
            ":holder": {"S": self.holder},
            ":rvn": {"S": new_version()},
            ":lease": {"N": str(int(self.lease_s))},
            ":phase": {"S": "check"},
            ":now": {"S": now},
        }
        self.pending = True  # from here, release() settles whether the write landed
        self.record = _update(
            self.dynamodb,
            self.table,
            self.key,
            "SET #owner = :owner, #holder = :holder, #rvn = :rvn, #lease_s = :lease, "
            "#phase = :phase, #started = :now, #beat_at = :now REMOVE #halted, #halted_by",
            condition,
            values,
        )
        self.pending, self.held = False, True
        self.beaten_at = self.beat_clock()
        self._start_heartbeat()

    # -- heartbeat ---------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat_loop, name=f"release-lock-heartbeat {self.key}", daemon=True
        )
        self._thread.start()

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self.beat()

    def beat(self, phase: str | None = None) -> None:
        """One heartbeat: a new record version, conditioned on this token. A failed condition
        means the lock is no longer ours; any other failure is retried at the next beat, and
        :meth:`check` gives the lock up when none has landed for a whole lease."""
        expression = "SET #rvn = :rvn, #beat_at = :now"
        values = {
            ":rvn": {"S": new_version()},
            ":now": {"S": stamp(self.wall())},
            ":owner": {"S": self.token},
        }
        if phase is not None:
            expression += ", #phase = :phase"
            values[":phase"] = {"S": phase}
        with self._writing:
            if not self.held or self.lost:
                return
            try:
                self.record = _update(
                    self.dynamodb, self.table, self.key, expression, "#owner = :owner", values
                )
            except Exception as error:
                if conditional_failed(error):
                    self.lost = "another rollout holds it now, or it was removed"
                    self._stop.set()
                return
            self.beaten_at = self.beat_clock()
            self.beats += 1

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- checks ------------------------------------------------------------------------------
    def check(self, phase: str | None = None) -> None:
        """Raise :class:`Halted` after ``rollback --now``, :class:`LockLost` when the lock is no
        longer this rollout's, or when no heartbeat landed for a whole lease (a waiter may have
        taken it); with ``phase``, record it (which is a heartbeat too)."""
        if self.lost:
            raise LockLost(f"the release lock is no longer this rollout's ({self.lost})")
        silent = self.beat_clock() - self.beaten_at
        if silent >= self.lease_s:
            raise LockLost(
                f"no heartbeat of the release lock landed for {int(silent)}s (one lease is "
                f"{int(self.lease_s)}s): another rollout may have taken it"
            )
        current = read(self.dynamodb, self.table, self.key)
        if current.halted and current.halted == self.token:
            raise Halted(f"halted by `rollback --now` ({current.halted_by or 'unknown'})")
        if current.owner != self.token:
            raise LockLost(
                "the release lock is no longer this rollout's ("
                + (f"now held by {current.describe()}" if current.held else "released")
                + ")"
            )
        self.record = current
        if phase is not None and phase != current.phase:
            self.beat(phase)
            if self.lost:
                raise LockLost(f"the release lock is no longer this rollout's ({self.lost})")

    # -- the bake record ---------------------------------------------------------------------
    def baked(self) -> str:
        return self.record.baked

    def record_baked(self, record: str) -> None:
        self._own_write("SET #baked = :baked", {":baked": {"S": record}})

    def forget_baked(self) -> None:
        self._own_write("REMOVE #baked", {})

    def _own_write(self, expression: str, values: dict[str, Any]) -> None:
        values = {**values, ":owner": {"S": self.token}}
        with self._writing:
            try:
                self.record = _update(
                    self.dynamodb, self.table, self.key, expression, "#owner = :owner", values
                )
            except Exception as error:
                if conditional_failed(error):
                    raise LockLost("the release lock is no longer this rollout's") from None
                raise

    # -- release -----------------------------------------------------------------------------
    def release(self) -> str:
        """Give the lock up if it is (or, after an interrupted acquire, may be) this rollout's:
        one write conditioned on the token. Returns what happened, in a few words."""
        if not (self.held or self.pending):
            return ""
        self._stop_heartbeat()
        unsure = self.pending
        condition = "#owner = :owner"
        values = {":owner": {"S": self.token}}
        with self._writing:
            try:
                if self.record.baked or unsure:  # a bake record to keep (or perhaps one)
                    _update(
                        self.dynamodb,
                        self.table,
                        self.key,
                        "REMOVE "
                        + ", ".join(f"#{n}" for n in (*LOCK_ATTRIBUTES, "halted", "halted_by")),
                        condition,
                        values,
                    )
                else:
                    self.dynamodb.delete_item(
                        TableName=self.table,
                        Key={PARTITION_KEY: {"S": self.key}},
                        ConditionExpression=condition,
                        ExpressionAttributeNames={"#owner": "owner"},
                        ExpressionAttributeValues=values,
                    )
            except Exception as error:
                if not conditional_failed(error):
                    raise
                self.held = self.pending = False
                return (
                    "the interrupted acquire had not landed: no lock to release"
                    if unsure
                    else "it was no longer this rollout's: left as it is"
                )
            self.held = self.pending = False
        return "the interrupted acquire had landed: released" if unsure else "released"
