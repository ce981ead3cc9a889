"""Repositories: the only place that writes SQL. Every value is a bound parameter."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.errors import QuotaExceeded
from services.model.jobs import JOB_COLUMNS, JSON_COLUMNS, Job, JobKind, JobState, can_move
from services.model.specs import checked_params
from services.storage.db import (
    LOCK_CREDITS,
    LOCK_SENDS,
    LOCK_TURNS,
    Database,
    Row,
    Transaction,
)

Clock = Callable[[], float]
# Workers claiming due jobs at once each take other rows, and none waits on another's lock
# (PostgreSQL; SQLite has one writer at a time anyway).
_SKIP_LOCKED = {"sqlite": "", "postgres": " FOR UPDATE SKIP LOCKED"}


def _encode(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, JobState):
        return value.value
    return value


# The day's allowance spent since a moment: reserved from it and not refunded (kept or still
# held). A reservation counts against the day it was made; its refund cancels it. The part of
# a reservation paid with bought credits is not the day's. Parameters: user, user, since.
_SPENT_SINCE = (
    "SELECT COALESCE(SUM(CASE entry WHEN 'reserve' THEN amount - bought "
    "WHEN 'refund' THEN bought - amount ELSE 0 END), 0) AS n FROM ledger "
    "WHERE user_id = ? AND job_id IN (SELECT job_id FROM ledger WHERE user_id = ? "
    "AND entry = 'reserve' AND created_at >= ?)"
)
# Bought credits left: the packs' grants (and what refunds took back), less what reservations
# took from them, plus what refunds of those gave back. They never expire. Parameter: user.
BOUGHT_BALANCE = (
    "SELECT COALESCE(SUM(CASE entry WHEN 'grant' THEN amount WHEN 'reserve' THEN -bought "
    "WHEN 'refund' THEN bought ELSE 0 END), 0) AS n FROM ledger WHERE user_id = ?"
)


# Told (PostgreSQL's NOTIFY) whenever a job becomes due before its time: queued by the ingress,
# woken by a callback. Workers listening start claiming at once; the poll stays the truth.
DUE_CHANNEL = "studio_due"


@dataclass(frozen=True)
class Reservation:
    """Credits to hold for a job as it is queued: ``amount``, if what the user has held since
    ``since`` leaves room under ``limit`` (None: no limit, e.g. admins)."""

    user_id: int
    amount: int
    since: float
    limit: int | None
    resets_at: float


def _assignments(fields: dict[str, Any]) -> tuple[str, list[Any]]:
    unknown = set(fields) - JOB_COLUMNS
    if unknown:
        raise ValueError(f"not job columns: {sorted(unknown)}")
    # Column names come from the fixed JOB_COLUMNS set above, never from input.
    sql = ", ".join(f"{name} = ?" for name in fields)
    return sql, [_encode(name, value) for name, value in fields.items()]


@dataclass(frozen=True)
class UserRecord:
    """A chat user as stored."""

    id: int
    chat_id: int | None
    first_name: str
    language: str
    settings: dict[str, Any]


class UserRepository:
    """Users seen by the bot."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def touch(
        self, user_id: int, chat_id: int | None, first_name: str, username: str | None, lang: str
    ) -> None:
        """Insert or refresh a user on every update."""
        now = self.clock()
        await self.db.execute(
            "INSERT INTO users (id, chat_id, first_name, username, language, created_at, "
            "last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "chat_id = COALESCE(excluded.chat_id, users.chat_id), "
            "first_name = excluded.first_name, username = excluded.username, "
            "last_seen_at = excluded.last_seen_at",
            (user_id, chat_id, first_name, username, lang, now, now),
        )

    async def get(self, user_id: int) -> UserRecord | None:
        """One user, or None."""
        row = await self.db.fetchone(
            "SELECT id, chat_id, first_name, language, settings FROM users WHERE id = ?",
            (user_id,),
        )
        if row is None:
            return None
        return UserRecord(
            id=row["id"],
            chat_id=row["chat_id"],
            first_name=row["first_name"],
            language=row["language"],
            settings=json.loads(row["settings"] or "{}"),
        )

    async def save_settings(self, user_id: int, settings: dict[str, Any]) -> None:
        """Replace a user's settings."""
        await self.db.execute(
            "UPDATE users SET settings = ? WHERE id = ?",
            (json.dumps(settings, sort_keys=True), user_id),
        )

    async def count(self) -> int:
        """How many users the bot has seen."""
        row = await self.db.fetchone("SELECT COUNT(*) AS n FROM users")
        return int(row["n"]) if row else 0


class UpdateRepository:
    """Update ids already handled, so a redelivered update is ignored."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def seen(self, update_id: int) -> bool:
        """Whether this update was handled before."""
        row = await self.db.fetchone(
            "SELECT 1 FROM processed_updates WHERE update_id = ?", (update_id,)
        )
        return row is not None

    async def mark(self, update_id: int) -> None:
        """Record the update as handled."""
        await self.db.execute(
            "INSERT INTO processed_updates (update_id, processed_at) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING",
            (update_id, self.clock()),
        )

    async def prune(self, older_than: float) -> int:
        """Forget old ids; Telegram never redelivers after a day."""
        return await self.db.execute(
            "DELETE FROM processed_updates WHERE processed_at < ?", (older_than,)
        )


class JobRepository:
    """The ``jobs`` table, which is also the work queue."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def create(self, job: Job) -> tuple[Job, bool]:
        """Insert a job; if one exists for the same source message, return that one instead.

        Returns the job and whether it is new.
        """
        now = self.clock()
        checked_params(job.kind, job.params)
        fields = {
            name: _encode(name, getattr(job, name))
            for name in JOB_COLUMNS
            if name not in {"updated_at"}
        }
        fields.update(state=job.state.value, created_at=now, updated_at=now)
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        job_id = await self.db.insert(
            f"INSERT INTO jobs ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING",  # noqa: S608
            list(fields.values()),
        )
        if not job_id and job.source_message_id is not None:
            existing = await self.by_source(job.chat_id, job.source_message_id)
            if existing is not None:
                return existing, False
        created = await self.get(job_id)
        assert created is not None
        return created, True

    async def get(self, job_id: int) -> Job | None:
        """One job, or None."""
        row = await self.db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(row) if row else None

    async def by_source(self, chat_id: int, message_id: int) -> Job | None:
        """The job made from a given user message."""
        row = await self.db.fetchone(
            "SELECT * FROM jobs WHERE chat_id = ? AND source_message_id = ?",
            (chat_id, message_id),
        )
        return Job.from_row(row) if row else None

    async def by_card(self, chat_id: int, message_id: int) -> Job | None:
        """The job whose card or prompt request is that bot message."""
        row = await self.db.fetchone(
            "SELECT * FROM jobs WHERE chat_id = ? AND (card_message_id = ? "
            "OR status_message_id = ?) ORDER BY id DESC LIMIT 1",
            (chat_id, message_id, message_id),
        )
        return Job.from_row(row) if row else None

    async def transition(
        self,
        job_id: int,
        src: JobState | Iterable[JobState],
        dst: JobState,
        *,
        settle: str | None = None,
        reserve: Reservation | None = None,
        **fields: Any,
    ) -> bool:
        """Move a job from ``src`` to ``dst`` if it is still in ``src``; False if it was not.

        ``settle`` ("keep" or "refund") settles the job's credit reservation in the same
        transaction, so a crash can never leave a failed job charged or a delivered one free.
        ``reserve`` holds the job's credits in that transaction too (QuotaExceeded, and no
        change at all, when they are short): credits are never held for a job that did not
        move, and no job is queued without its credits held.
        """
        sources = [src] if isinstance(src, JobState) else list(src)
        for s in sources:
            if not can_move(s, dst):
                raise ValueError(f"illegal transition {s} -> {dst}")
        if "params" in fields:
            await self._check_params(job_id, fields["params"], fields.get("kind"))
        if settle not in (None, "keep", "refund"):
            raise ValueError(f"cannot settle with {settle!r}")
        now = self.clock()
        fields["updated_at"] = now
        assignments, values = _assignments(fields)
        marks = ", ".join("?" for _ in sources)
        update = (
            f"UPDATE jobs SET state = ?, {assignments} "  # noqa: S608
            f"WHERE id = ? AND state IN ({marks})"
        )
        params = [dst.value, *values, job_id, *(s.value for s in sources)]
        if reserve is None and not settle:
            # One statement is atomic by itself: no transaction's extra round trips.
            moved = await self.db.execute(update, params) == 1
        else:
            moved = await self._move_with_credits(update, params, job_id, dst, reserve, settle, now)
        if moved and dst == JobState.QUEUED:
            await self.db.notify(DUE_CHANNEL)  # a worker elsewhere may start on it at once
        return moved

    async def _move_with_credits(
        self,
        update: str,
        params: list[Any],
        job_id: int,
        dst: JobState,
        reserve: Reservation | None,
        settle: str | None,
        now: float,
    ) -> bool:
        """The state change ``update`` and the credits it holds or settles, in one
        transaction."""
        async with self.db.transaction() as tx:
            if await tx.execute(update, params) != 1:
                return False
            if reserve is not None:
                await _hold(tx, job_id, reserve, now)
            if settle:
                # Settle only reservations that exist and are not settled yet: the job's own,
                # and a story's shots (a failed shot was refunded when it failed; the made ones
                # are kept with the story's film, or refunded when there is none).
                await tx.execute(
                    "INSERT INTO ledger (user_id, job_id, entry, amount, bought, reason, "
                    "created_at) SELECT r.user_id, r.job_id, CAST(? AS TEXT), r.amount, "
                    "r.bought, CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION) FROM ledger r "
                    "WHERE r.entry = 'reserve' AND (r.job_id = ? OR r.job_id IN "
                    "(SELECT id FROM jobs WHERE parent_id = ?)) AND NOT EXISTS "
                    "(SELECT 1 FROM ledger s WHERE s.job_id = r.job_id "
                    "AND s.entry IN ('keep', 'refund'))",
                    (settle, dst.value, now, job_id, job_id),
                )
        return True

    async def update(self, job_id: int, **fields: Any) -> None:
        """Set non-state columns (new params are checked against the job's kind)."""
        if "params" in fields:
            await self._check_params(job_id, fields["params"], fields.get("kind"))
        fields["updated_at"] = self.clock()
        assignments, values = _assignments(fields)
        await self.db.execute(
            f"UPDATE jobs SET {assignments} WHERE id = ?",  # noqa: S608
            [*values, job_id],
        )

    async def claim_due(
        self,
        owner: str,
        lease_seconds: float,
        limit: int,
        states: Iterable[JobState] | None = None,
    ) -> list[Job]:
        """Lease up to ``limit`` due jobs (active, or of ``states``); no other process gets them.

        Woken jobs come first (a callback's job must not wait behind a backlog of polls), then
        the jobs due longest. Each is one statement for a whole batch, so a round over
        thousands of jobs costs one write per batch rather than three per job, and two
        processes can never lease one job.
        """
        now = self.clock()
        among = _among(states if states is not None else _ACTIVE)
        lease = [owner, now + lease_seconds]
        woken = (
            "UPDATE jobs SET lease_owner = ?, lease_until = ?, woken_at = NULL "  # noqa: S608
            f"WHERE id IN (SELECT id FROM jobs WHERE state IN ({among}) "
            "AND woken_at IS NOT NULL AND (lease_until IS NULL OR lease_until < ?) "
            f"ORDER BY woken_at LIMIT ?{_SKIP_LOCKED[self.db.dialect]}) "
            "AND (lease_until IS NULL OR lease_until < ?) RETURNING *",
            [*lease, now],
        )
        due = (
            "UPDATE jobs SET lease_owner = ?, lease_until = ?, woken_at = NULL "  # noqa: S608
            f"WHERE id IN (SELECT id FROM jobs WHERE state IN ({among}) "
            "AND COALESCE(next_poll_at, 0) <= ? AND (lease_until IS NULL OR lease_until < ?) "
            f"ORDER BY COALESCE(next_poll_at, 0) LIMIT ?{_SKIP_LOCKED[self.db.dialect]}) "
            "AND (lease_until IS NULL OR lease_until < ?) RETURNING *",
            [*lease, now, now],
        )
        claimed: list[Job] = []
        for sql, args in (woken, due):
            if len(claimed) >= limit:
                break
            rows = await self.db.fetchall(sql, [*args, limit - len(claimed), now])
            batch = [Job.from_row(row) for row in rows]
            claimed += sorted(batch, key=lambda job: (job.next_poll_at or 0, job.id))
        return claimed

    async def claim(
        self, job_id: int, owner: str, lease_seconds: float, states: Iterable[JobState]
    ) -> Job | None:
        """Lease one job now if it is in ``states`` and nobody holds it (a provider called
        back about it: polled at once by the process that heard, with no round trip through
        the queue); None when it is elsewhere or held."""
        now = self.clock()
        among = _among(states)
        row = await self.db.fetchone(
            "UPDATE jobs SET lease_owner = ?, lease_until = ?, woken_at = NULL "  # noqa: S608
            f"WHERE id = ? AND state IN ({among}) AND (lease_until IS NULL OR lease_until < ?) "
            "RETURNING *",
            (owner, now + lease_seconds, job_id, now),
        )
        return Job.from_row(row) if row is not None else None

    async def renew_leases(self, owner: str, lease_seconds: float, job_ids: list[int]) -> int:
        """Extend the leases ``owner`` holds on ``job_ids``, the jobs still at work (long work
        such as an upload is still going)."""
        if not job_ids:
            return 0
        marks = ", ".join("?" for _ in job_ids)
        # Rows being given back meanwhile are skipped, not waited for: a lease renewed and a
        # batch of releases each lock several rows, and must never wait on each other.
        return await self.db.execute(
            "UPDATE jobs SET lease_until = ? WHERE id IN (SELECT id FROM jobs "  # noqa: S608
            f"WHERE lease_owner = ? AND id IN ({marks}){_SKIP_LOCKED[self.db.dialect]})",
            (self.clock() + lease_seconds, owner, *job_ids),
        )

    async def release(
        self, job_id: int, owner: str, next_poll_at: float | None, **fields: Any
    ) -> bool:
        """Give the lease back and say when the job is next due (now, if it was woken while
        leased: that news is newer than what the holder saw); ``fields`` (a poll's outcome)
        are set with it, and only while ``owner`` still holds the lease. True when the job was
        woken meanwhile, so the caller can claim it again at once."""
        woken = await self.release_all(owner, [Release(job_id, next_poll_at, fields)])
        return job_id in woken

    async def release_all(self, owner: str, releases: Iterable[Release]) -> set[int]:
        """``release`` for many jobs in few statements (one per kind of outcome, up to
        ``RELEASE_BATCH`` jobs each); return the ids of the jobs woken meanwhile."""
        latest = {r.job_id: r for r in releases}  # a job given back twice: the later word
        groups: dict[tuple[str, ...], list[Release]] = {}
        for release in latest.values():
            unknown = set(release.fields) - set(_RELEASE_TYPES)
            if unknown:
                raise ValueError(f"not poll outcomes: {sorted(unknown)}")
            groups.setdefault(tuple(sorted(release.fields)), []).append(release)
        woken: set[int] = set()
        for columns, group in groups.items():
            for start in range(0, len(group), RELEASE_BATCH):
                chunk = group[start : start + RELEASE_BATCH]
                rows = await self._release_chunk(owner, columns, chunk)
                woken.update(int(row["id"]) for row in rows if row["woken_at"] is not None)
        return woken

    async def _release_chunk(
        self, owner: str, columns: tuple[str, ...], chunk: list[Release]
    ) -> list[Row]:
        # Padded to a power of two with rows of no job (ids start at 1), so a few statement
        # texts serve every batch size and each connection prepares them once.
        size = 1 << (len(chunk) - 1).bit_length()
        types = ["BIGINT", "DOUBLE PRECISION", *(_RELEASE_TYPES[c] for c in columns)]
        aliases = ["job", "due", *columns]
        first = ", ".join(f"CAST(? AS {t}) AS {a}" for t, a in zip(types, aliases, strict=True))
        other = ", ".join(f"CAST(? AS {t})" for t in types)
        marks = " UNION ALL ".join(["SELECT " + first] + ["SELECT " + other] * (size - 1))
        values: list[Any] = []
        for release in chunk:
            values += [release.job_id, release.next_poll_at]
            values += [release.fields[c] for c in columns]
        values += [0, None, *(None for _ in columns)] * (size - len(chunk))
        stamp: list[Any] = [self.clock()] if columns else []
        assignments = "".join(f", {c} = v.{c}" for c in columns)
        if columns:
            assignments += ", updated_at = ?"
        return await self.db.fetchall(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, next_poll_at = "  # noqa: S608
            f"CASE WHEN woken_at IS NULL THEN v.due ELSE woken_at END{assignments} "
            f"FROM ({marks}) AS v WHERE jobs.id = v.job AND jobs.lease_owner = ? "
            "RETURNING id, woken_at",
            [*stamp, *values, owner],
        )

    async def for_user(self, user_id: int, states: Iterable[JobState]) -> list[Job]:
        """A user's jobs in the given states, newest first (a story's shots are part of the
        story, not jobs of their own)."""
        values = [s.value for s in states]
        marks = ", ".join("?" for _ in values)
        rows = await self.db.fetchall(
            f"SELECT * FROM jobs WHERE user_id = ? AND state IN ({marks}) "  # noqa: S608
            "AND parent_id IS NULL ORDER BY id DESC",
            [user_id, *values],
        )
        return [Job.from_row(r) for r in rows]

    async def active_inputs(self) -> set[str]:
        """Input files of jobs that may still need them (drafts and active jobs)."""
        states = [s.value for s in _ACTIVE] + [JobState.DRAFT.value]
        marks = ", ".join("?" for _ in states)
        rows = await self.db.fetchall(
            f"SELECT input_path FROM jobs WHERE state IN ({marks}) "  # noqa: S608
            "AND input_path IS NOT NULL "
            # An album's photos and clips, while it is collected and while its story may run.
            "UNION SELECT path AS input_path FROM album_items WHERE path IS NOT NULL "
            f"AND (job_id IS NULL OR job_id IN (SELECT id FROM jobs WHERE state IN ({marks})))",
            [*states, *states],
        )
        return {r["input_path"] for r in rows}

    async def _check_params(
        self, job_id: int, params: dict[str, Any], kind: JobKind | None = None
    ) -> None:
        if kind is None:
            row = await self.db.fetchone("SELECT kind FROM jobs WHERE id = ?", (job_id,))
            kind = JobKind(row["kind"]) if row is not None else None
        if kind is not None:
            checked_params(kind, params)

    async def shots(self, parent_id: int) -> list[Job]:
        """A story's shot jobs, by shot and then by attempt."""
        rows = await self.db.fetchall(
            "SELECT * FROM jobs WHERE parent_id = ? ORDER BY step, id", (parent_id,)
        )
        return [Job.from_row(r) for r in rows]

    async def add_shots(
        self,
        parent_id: int,
        shots: list[tuple[Job, Reservation | None]],
        *,
        src: JobState | None = None,
        dst: JobState | None = None,
        **fields: Any,
    ) -> bool:
        """Insert a story's shot jobs with their credit holds and set ``fields`` on the story,
        in one transaction: with ``src`` and ``dst`` the story moves too, else it must still be
        active (False, and nothing written, otherwise). A shot that already has a live job is
        not added twice."""
        now = self.clock()
        if "params" in fields:
            await self._check_params(parent_id, fields["params"])
        fields["updated_at"] = now
        assignments, values = _assignments(fields)
        async with self.db.transaction() as tx:
            if src is not None and dst is not None:
                if not can_move(src, dst):
                    raise ValueError(f"illegal transition {src} -> {dst}")
                moved = await tx.execute(
                    f"UPDATE jobs SET state = ?, {assignments} "  # noqa: S608
                    "WHERE id = ? AND state = ?",
                    [dst.value, *values, parent_id, src.value],
                )
            else:
                # Shots are only ever added to a story that is still going.
                marks = ", ".join("?" for _ in _ACTIVE)
                moved = await tx.execute(
                    f"UPDATE jobs SET {assignments} "  # noqa: S608
                    f"WHERE id = ? AND state IN ({marks})",
                    [*values, parent_id, *(s.value for s in _ACTIVE)],
                )
            if moved != 1:
                return False
            for shot, reserve in shots:
                checked_params(shot.kind, shot.params)
                row = {
                    name: _encode(name, getattr(shot, name))
                    for name in JOB_COLUMNS
                    if name != "updated_at"
                }
                row.update(
                    parent_id=parent_id,
                    state=shot.state.value,
                    created_at=now,
                    updated_at=now,
                )
                names = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                shot_id = await tx.insert(
                    f"INSERT INTO jobs ({names}) VALUES ({marks}) "  # noqa: S608
                    "ON CONFLICT DO NOTHING",
                    list(row.values()),
                )
                if shot_id and reserve is not None and reserve.amount:
                    await _hold(tx, shot_id, reserve, now)
        await self.db.notify(DUE_CHANNEL)
        return True

    async def take_turn(self, shot_id: int, parent_id: int, limit: int) -> bool:
        """Let a story's shot go to its provider if fewer than ``limit`` of its siblings are
        there or on their way (one at a time per story: shots claimed together cannot all
        pass, in one process or several)."""
        async with self.db.transaction() as tx:
            await tx.lock(LOCK_TURNS, parent_id)
            taken = await tx.execute(
                "UPDATE jobs SET provider_status = 'turn' WHERE id = ? AND (provider_status = "
                "'turn' OR (SELECT COUNT(*) FROM jobs WHERE parent_id = ? AND id != ? AND (state "
                "IN ('submitting', 'running') OR (state = 'queued' AND provider_status = 'turn')))"
                " < ?)",
                (shot_id, parent_id, shot_id, limit),
            )
        return taken == 1

    async def wake(self, job_id: int) -> None:
        """Make a job due now, ahead of the jobs due by the clock (a provider called back; a
        story's shot has ended)."""
        now = self.clock()
        await self.db.execute(
            "UPDATE jobs SET woken_at = ?, next_poll_at = CASE WHEN next_poll_at IS NULL "
            "OR next_poll_at > ? THEN ? ELSE next_poll_at END WHERE id = ?",
            (now, now, now, job_id),
        )
        await self.db.notify(DUE_CHANNEL)

    async def oldest_due(self, states: Iterable[JobState]) -> float | None:
        """The earliest due time among jobs in ``states`` (None when there are none)."""
        values = [s.value for s in states]
        marks = ", ".join("?" for _ in values)
        row = await self.db.fetchone(
            f"SELECT MIN(next_poll_at) AS due FROM jobs WHERE state IN ({marks})",  # noqa: S608
            values,
        )
        return float(row["due"]) if row is not None and row["due"] is not None else None

    async def count_by_state(self) -> dict[str, int]:
        """How many jobs are in each state."""
        rows = await self.db.fetchall("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        return {r["state"]: int(r["n"]) for r in rows}


def _among(states: Iterable[JobState]) -> str:
    """Active states as SQL literals (the enum's own values, never input): with literals
    PostgreSQL knows that the partial indexes over active jobs cover a claim."""
    return ", ".join(f"'{state.value}'" for state in sorted(states) if state in _ACTIVE)


@dataclass(frozen=True)
class Release:
    """A lease given back: when the job is next due, and the outcome of the poll just made."""

    job_id: int
    next_poll_at: float | None
    fields: Mapping[str, Any] = field(default_factory=dict)


# The columns a poll's outcome may set with its release, and their SQL types.
_RELEASE_TYPES = {
    "provider_status": "TEXT",
    "same_status_polls": "INTEGER",
    "poll_errors": "INTEGER",
    "progress": "DOUBLE PRECISION",
    "queue_position": "INTEGER",
}
RELEASE_BATCH = 64


_ACTIVE = frozenset(
    {
        JobState.QUEUED,
        JobState.SUBMITTING,
        JobState.RUNNING,
        JobState.DOWNLOADING,
        JobState.DELIVERING,
    }
)


async def _hold(tx: Transaction, job_id: int, reserve: Reservation, now: float) -> None:
    """Write the job's reservation inside ``tx``; raising rolls the whole transaction back.
    The day's allowance is spent first, then bought credits (which do not expire)."""
    bought = 0
    if reserve.limit is not None:
        await tx.lock(LOCK_CREDITS, reserve.user_id)
        row = await tx.fetchone(_SPENT_SINCE, (reserve.user_id, reserve.user_id, reserve.since))
        today = max(0, reserve.limit - (int(row["n"]) if row else 0))
        bought = max(0, reserve.amount - today)
        if bought:
            row = await tx.fetchone(BOUGHT_BALANCE, (reserve.user_id,))
            balance = max(0, int(row["n"]) if row else 0)
            if bought > balance:
                raise QuotaExceeded(reserve.amount, today + balance, reserve.resets_at)
    await tx.execute(
        "INSERT INTO ledger (user_id, job_id, entry, amount, bought, reason, created_at) "
        "VALUES (?, ?, 'reserve', ?, ?, 'submit', ?) ON CONFLICT DO NOTHING",
        (reserve.user_id, job_id, reserve.amount, bought, now),
    )


@dataclass(frozen=True)
class MediaRecord:
    """A video the bot delivered, re-sendable by ``file_id``."""

    job_id: int | None
    chat_id: int
    message_id: int
    kind: str
    file_id: str
    width: int | None
    height: int | None
    duration: float | None
    size: int | None


class MediaRepository:
    """The file_id cache of delivered media."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def add(self, record: MediaRecord, file_unique_id: str | None = None) -> None:
        """Remember a delivered file."""
        await self.db.execute(
            "INSERT INTO media (job_id, chat_id, message_id, kind, file_id, "
            "file_unique_id, width, height, duration, size, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                record.job_id,
                record.chat_id,
                record.message_id,
                record.kind,
                record.file_id,
                file_unique_id,
                record.width,
                record.height,
                record.duration,
                record.size,
                self.clock(),
            ),
        )

    async def for_job(self, job_id: int) -> MediaRecord | None:
        """The delivered file of a job."""
        row = await self.db.fetchone(
            "SELECT * FROM media WHERE job_id = ? ORDER BY id DESC LIMIT 1", (job_id,)
        )
        return _media(row) if row else None

    async def by_message(self, chat_id: int, message_id: int) -> MediaRecord | None:
        """The delivered file behind a bot message (for replies to it)."""
        row = await self.db.fetchone(
            "SELECT * FROM media WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
        )
        return _media(row) if row else None


def _media(row: Any) -> MediaRecord:
    return MediaRecord(
        job_id=row["job_id"],
        chat_id=row["chat_id"],
        message_id=row["message_id"],
        kind=row["kind"],
        file_id=row["file_id"],
        width=row["width"],
        height=row["height"],
        duration=row["duration"],
        size=row["size"],
    )


class LedgerRepository:
    """Credit movements; the balance is always derived from these rows."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def add(
        self, user_id: int, job_id: int | None, entry: str, amount: int, reason: str
    ) -> bool:
        """Write one entry; False if the job already has an entry of that kind."""
        changed = await self.db.execute(
            "INSERT INTO ledger (user_id, job_id, entry, amount, reason, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (user_id, job_id, entry, amount, reason, self.clock()),
        )
        return changed == 1

    async def spent_since(self, user_id: int, since: float) -> int:
        """The day's allowance reserved since ``since`` and not refunded (kept or held)."""
        row = await self.db.fetchone(_SPENT_SINCE, (user_id, user_id, since))
        return int(row["n"]) if row else 0

    async def bought(self, user_id: int) -> int:
        """Bought credits left (not held for a job)."""
        row = await self.db.fetchone(BOUGHT_BALANCE, (user_id,))
        return max(0, int(row["n"]) if row else 0)

    async def kept_since(self, since: float) -> int:
        """Credits spent for good by everyone since ``since`` (for /stats)."""
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(amount), 0) AS n FROM ledger WHERE entry = 'keep' "
            "AND created_at >= ?",
            (since,),
        )
        return int(row["n"]) if row else 0

    async def entries(self, job_id: int) -> list[tuple[str, int]]:
        """Every entry of one job, oldest first."""
        rows = await self.db.fetchall(
            "SELECT entry, amount FROM ledger WHERE job_id = ? ORDER BY id", (job_id,)
        )
        return [(r["entry"], int(r["amount"])) for r in rows]


class AlertRepository:
    """When each operator alert was last sent."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def claim(self, key: str, cooldown: float) -> bool:
        """True if the alert ``key`` may be sent now (and records it as sent)."""
        now = self.clock()
        changed = await self.db.execute(
            "INSERT INTO alerts (key, sent_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            "SET sent_at = excluded.sent_at WHERE alerts.sent_at < ?",
            (key, now, now - cooldown),
        )
        return changed == 1


@dataclass(frozen=True)
class AlbumItem:
    """A photo or clip of a Telegram album, kept from its arrival; ``path`` once fetched."""

    chat_id: int
    message_id: int
    user_id: int
    media_group_id: str
    kind: str  # "photo" or "clip"
    file_id: str
    file_unique_id: str | None
    path: str | None = None
    caption: str = ""
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    language: str = "en"
    job_id: int | None = None
    created_at: float = 0.0


_ALBUM_COLUMNS = tuple(name for name in AlbumItem.__dataclass_fields__)


class AlbumRepository:
    """Album items while their album is collected: there is no "last item" signal."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def arrive(self, item: AlbumItem) -> bool:
        """Note an item as it arrives, before it is fetched; False if it was kept already
        (a redelivered message). An item noted but never fetched (the bot stopped meanwhile)
        may be fetched again."""
        row = {name: getattr(item, name) for name in _ALBUM_COLUMNS}
        row.update(path=None, job_id=None, created_at=self.clock())
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        added = await self.db.execute(
            f"INSERT INTO album_items ({names}) VALUES ({marks}) "  # noqa: S608
            "ON CONFLICT DO NOTHING",
            list(row.values()),
        )
        if added:
            return True
        kept = await self.db.fetchone(
            "SELECT path FROM album_items WHERE chat_id = ? AND message_id = ?",
            (item.chat_id, item.message_id),
        )
        return kept is not None and kept["path"] is None

    async def fetched(
        self,
        chat_id: int,
        message_id: int,
        path: str,
        size: tuple[int | None, int | None],
        seconds: float | None,
    ) -> None:
        """The item is on our disk and checked."""
        await self.db.execute(
            "UPDATE album_items SET path = ?, width = ?, height = ?, duration = ? "
            "WHERE chat_id = ? AND message_id = ?",
            (path, size[0], size[1], seconds, chat_id, message_id),
        )

    async def drop(self, chat_id: int, message_id: int) -> None:
        """Leave an item out (it could not be fetched, or its album was refused)."""
        await self.db.execute(
            "DELETE FROM album_items WHERE chat_id = ? AND message_id = ? AND job_id IS NULL",
            (chat_id, message_id),
        )

    async def unfetched(self) -> list[AlbumItem]:
        """Items noted but never fetched (the process fetching them stopped)."""
        rows = await self.db.fetchall(
            "SELECT * FROM album_items WHERE job_id IS NULL AND path IS NULL ORDER BY message_id"
        )
        return [AlbumItem(**{name: r[name] for name in _ALBUM_COLUMNS}) for r in rows]

    async def has(self, chat_id: int, message_id: int) -> bool:
        """Whether that message is an album item kept already."""
        row = await self.db.fetchone(
            "SELECT 1 FROM album_items WHERE chat_id = ? AND message_id = ?",
            (chat_id, message_id),
        )
        return row is not None

    async def settled(self, quiet_since: float, stale_before: float) -> list[list[AlbumItem]]:
        """Albums nobody has taken whose last item arrived before ``quiet_since`` and none of
        whose items is still being fetched (a fetch begun before ``stale_before`` died with
        the process that began it), each with its fetched items in the order sent."""
        rows = await self.db.fetchall(
            "SELECT * FROM album_items a WHERE job_id IS NULL AND path IS NOT NULL "
            "AND (chat_id, media_group_id) IN ("
            "SELECT chat_id, media_group_id FROM album_items WHERE job_id IS NULL "
            "GROUP BY chat_id, media_group_id HAVING MAX(created_at) <= ? "
            "AND SUM(CASE WHEN path IS NULL AND created_at >= ? THEN 1 ELSE 0 END) = 0) "
            "ORDER BY chat_id, media_group_id, message_id",
            (quiet_since, stale_before),
        )
        albums: dict[tuple[int, str], list[AlbumItem]] = {}
        for r in rows:
            item = AlbumItem(**{name: r[name] for name in _ALBUM_COLUMNS})
            albums.setdefault((item.chat_id, item.media_group_id), []).append(item)
        return list(albums.values())

    async def take(self, items: list[AlbumItem], job_id: int) -> None:
        """Mark the items as made into ``job_id``."""
        for item in items:
            await self.db.execute(
                "UPDATE album_items SET job_id = ? WHERE chat_id = ? AND message_id = ? "
                "AND job_id IS NULL",
                (job_id, item.chat_id, item.message_id),
            )

    async def prune(self, older_than: float) -> int:
        """Forget items of albums long made into stories (or long abandoned)."""
        return await self.db.execute("DELETE FROM album_items WHERE created_at < ?", (older_than,))


class LeaseRepository:
    """Named leases: which process does a piece of work that only one may do at a time."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def take(self, name: str, owner: str, seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``seconds``; False while another holds it."""
        now = self.clock()
        taken = await self.db.execute(
            "INSERT INTO leases (name, owner, until) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until "
            "WHERE leases.until < ? OR leases.owner = excluded.owner",
            (name, owner, now + seconds, now),
        )
        return taken == 1

    async def give_back(self, name: str, owner: str) -> None:
        """Let another process take the lease now."""
        await self.db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))


@dataclass(frozen=True)
class Bucket:
    """A token bucket: ``rate`` tokens a second, holding at most ``burst``; a take needs
    ``need`` tokens there (more than the one it takes leaves some for other senders)."""

    key: str
    rate: float
    burst: float
    need: float = 1.0


class SendTokenRepository:
    """Token buckets in the database, so that processes sharing it share Telegram's limits."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def take(self, buckets: list[Bucket]) -> dict[str, float]:
        """One token from every bucket, or none at all: empty when taken, else the seconds each
        bucket that is short needs to hold one (by its key)."""
        now = self.clock()
        keys = [bucket.key for bucket in buckets]
        marks = ", ".join("?" for _ in keys)
        async with self.db.transaction() as tx:
            await tx.lock(LOCK_SENDS, 0)
            # One read and one write for all the buckets: the lock is held for as short a time
            # as can be, since every send of every process waits for it.
            rows = await tx.fetchall(
                f"SELECT key, tokens, at FROM send_tokens WHERE key IN ({marks})",  # noqa: S608
                keys,
            )
            held = {row["key"]: (float(row["tokens"]), float(row["at"])) for row in rows}
            levels: dict[str, float] = {}
            for bucket in buckets:
                tokens, at = held.get(bucket.key, (bucket.burst, now))
                refill = max(0.0, (now - at) * bucket.rate)
                levels[bucket.key] = min(bucket.burst, tokens + refill)
            # A hair under a token is one: refills are sums of small float steps.
            short = {
                b.key: (b.need - levels[b.key]) / b.rate
                for b in buckets
                if levels[b.key] < b.need - 1e-9
            }
            if short:
                return short
            marks = ", ".join("(?, ?, ?)" for _ in buckets)
            await tx.execute(
                f"INSERT INTO send_tokens (key, tokens, at) VALUES {marks} "  # noqa: S608
                "ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
                [v for b in buckets for v in (b.key, max(0.0, levels[b.key] - 1), now)],
            )
        return {}

    async def prune(self, older_than: float) -> int:
        """Forget chats' buckets that have long been full again."""
        return await self.db.execute(
            "DELETE FROM send_tokens WHERE at < ? AND key != 'all'", (older_than,)
        )
