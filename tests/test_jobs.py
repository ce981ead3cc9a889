"""The job state machine, its storage, and what the user sees for a job."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path

import pytest

from services.errors import QuotaExceeded
from services.model.jobs import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Job,
    JobKind,
    JobState,
    can_move,
)
from services.model.specs import Shot, SpecError, StorySpec, story_params
from services.production import messages
from services.storage.db import Database, SqliteDatabase
from services.storage.migrations import MIGRATIONS
from services.storage.repositories import (
    AlbumRepository,
    JobRepository,
    LedgerRepository,
    Reservation,
    UpdateRepository,
)

S = JobState


def test_terminal_states_have_no_way_out_and_the_happy_path_is_allowed() -> None:
    for state in TERMINAL_STATES:
        assert state not in TRANSITIONS
    path = [S.DRAFT, S.QUEUED, S.SUBMITTING, S.RUNNING, S.DOWNLOADING, S.DELIVERING, S.DELIVERED]
    for src, dst in pairwise(path):
        assert can_move(src, dst)
    assert not can_move(S.SUBMITTING, S.SUBMITTING)  # a second submit is never a transition
    assert not can_move(S.RUNNING, S.QUEUED)  # a running job is never queued again
    assert not can_move(S.DELIVERED, S.DELIVERING)
    assert ACTIVE_STATES.isdisjoint(TERMINAL_STATES)


@pytest.fixture
async def repo(database: Database) -> AsyncIterator[JobRepository]:
    yield JobRepository(database, lambda: 1000.0)


def draft(message_id: int | None = 7) -> Job:
    return Job(
        id=0,
        user_id=1,
        chat_id=1,
        kind=JobKind.ANIMATE,
        state=S.DRAFT,
        provider="local",
        model="studio-motion",
        params={"duration": 5, "aspect": "1:1"},
        source_message_id=message_id,
    )


async def test_transition_is_compare_and_set(repo: JobRepository) -> None:
    job, created = await repo.create(draft())
    assert created
    assert await repo.transition(job.id, S.DRAFT, S.QUEUED)
    assert not await repo.transition(job.id, S.DRAFT, S.QUEUED)  # the second press loses
    with pytest.raises(ValueError, match="illegal"):
        await repo.transition(job.id, S.QUEUED, S.DELIVERED)
    stored = await repo.get(job.id)
    assert stored is not None and stored.state == S.QUEUED


async def test_one_job_per_source_message(repo: JobRepository) -> None:
    first, created = await repo.create(draft(7))
    again, created_again = await repo.create(draft(7))
    assert created and not created_again and again.id == first.id
    other, created_other = await repo.create(draft(None))
    assert created_other and other.id != first.id


async def test_schema_is_migrated_once_and_survives_reopening(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "m.db")
    await db.open()
    version = await db.schema_version()
    await db.close()
    db = SqliteDatabase(tmp_path / "m.db")
    await db.open()
    assert await db.schema_version() == version >= 1
    row = await db.fetchone("PRAGMA journal_mode")
    assert row is not None and row[0] == "wal"
    await db.close()


async def test_a_database_of_the_previous_version_migrates_with_its_jobs_and_credits(
    tmp_path: Path,
) -> None:
    # The schema as the previous release left it (versions 1 and 2), with a job and its credits.
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for version, statements in MIGRATIONS:
        if version > 2:
            break
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    conn.execute(
        "INSERT INTO jobs (user_id, chat_id, kind, state, provider, model, params, cost, "
        "created_at, updated_at) VALUES (1, 1, 'animate', 'delivered', 'local', "
        "'studio-motion', '{\"duration\": 5}', 10, 1.0, 2.0)"
    )
    conn.execute(
        "INSERT INTO ledger (user_id, job_id, entry, amount, created_at) "
        "VALUES (1, 1, 'reserve', 10, 1.0), (1, 1, 'keep', 10, 2.0)"
    )
    conn.commit()
    conn.close()

    db = SqliteDatabase(path)
    await db.open()
    try:
        assert await db.schema_version() == MIGRATIONS[-1][0]
        repo = JobRepository(db, lambda: 1000.0)
        old = await repo.get(1)
        assert old is not None and old.state == S.DELIVERED and old.duration == 5
        assert old.parent_id is None and not old.is_shot
        assert await repo.for_user(1, [S.DELIVERED]) == [old]
        rows = await db.fetchall("SELECT entry, amount FROM ledger WHERE job_id = 1 ORDER BY id")
        assert [(r["entry"], r["amount"]) for r in rows] == [("reserve", 10), ("keep", 10)]
    finally:
        await db.close()


async def test_a_story_settles_its_shots_with_itself(repo: JobRepository) -> None:
    """Shots hold their credits from the start; the made ones are kept with the film."""
    story = draft(9)
    story.kind = JobKind.STORY
    shot = Shot(source="words", seconds=5, prompt="a kite")
    story.params = story_params(StorySpec(shots=(shot,) * 3), shot_model="kling-v2.1-pro-i2v")
    created, _ = await repo.create(story)
    shots = []
    for step in range(3):
        made = draft(None)
        made.state, made.step, made.cost = S.QUEUED, step, 100
        shots.append((made, Reservation(1, 100, since=0.0, limit=250, resets_at=9e9)))
    # Three shots of 100 do not fit a day of 250: nothing is written, the story stays a draft.
    with pytest.raises(QuotaExceeded):
        await repo.add_shots(created.id, shots, src=S.DRAFT, dst=S.QUEUED)
    assert await repo.shots(created.id) == []
    assert (await repo.get(created.id)).state == S.DRAFT  # type: ignore[union-attr]
    # Two fit; one fails and is refunded; the story's film keeps the other, exactly once.
    assert await repo.add_shots(created.id, shots[:2], src=S.DRAFT, dst=S.QUEUED)
    assert not await repo.add_shots(created.id, shots[:2], src=S.DRAFT, dst=S.QUEUED)
    first, second = await repo.shots(created.id)
    assert await repo.transition(second.id, S.QUEUED, S.FAILED, settle="refund")
    for state in (S.SUBMITTING, S.RUNNING, S.DOWNLOADING, S.DELIVERING, S.DELIVERED):
        assert await repo.transition(first.id, first.state, state)
        first = await repo.get(first.id)  # type: ignore[assignment]
    ledger = LedgerRepository(repo.db, lambda: 1000.0)
    assert await ledger.entries(first.id) == [("reserve", 100)]  # held until the film is out
    for state in (S.SUBMITTING, S.RUNNING, S.DOWNLOADING, S.DELIVERING, S.DELIVERED):
        current = await repo.get(created.id)
        assert current is not None
        settle = "keep" if state == S.DELIVERED else None
        assert await repo.transition(created.id, current.state, state, settle=settle)
    assert await ledger.entries(first.id) == [("reserve", 100), ("keep", 100)]
    assert await ledger.entries(second.id) == [("reserve", 100), ("refund", 100)]
    assert await ledger.entries(created.id) == []


def running_job(**changes: object) -> Job:
    job = draft()
    job.state = S.RUNNING
    job.submitted_at = 0.0
    for key, value in changes.items():
        setattr(job, key, value)
    return job


def test_status_says_progress_and_speaks_up_at_2_and_5_minutes() -> None:
    assert "40%" in messages.status(running_job(progress=0.4), now=30)
    assert "position 3" in messages.status(running_job(queue_position=2), now=30)
    assert "little longer" in messages.status(running_job(), now=125)
    assert "longer than usual" in messages.status(running_job(), now=305)
    # Elapsed time is part of the text, so the message changes at least every poll.
    assert messages.status(running_job(), now=30) != messages.status(running_job(), now=45)


def test_caption_escapes_user_text_and_fits_telegrams_limit() -> None:
    job = running_job(prompt="<b>bold</b> & *stars* _under_ 🎬 " + "x" * 5000)
    caption = messages.caption(job, note="a note")
    assert len(caption) <= 1024
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;" in caption and "<b>bold" not in caption


def test_callback_data_is_compact_and_forged_data_is_rejected() -> None:
    data = messages.button(123456789012, "again")
    assert len(data.encode()) <= 64 and messages.parse_button(data) == messages.Press(
        123456789012, "again", None
    )
    for forged in [
        "",
        "x",
        "j:abc:go",
        "j:1",
        "j:1:go:a:b",
        "j:1:g o",
        "j:12345678901234:go",
        "k:1:go",
    ]:
        assert messages.parse_button(forged) is None


async def test_housekeeping_forgets_old_update_ids_and_unused_inputs(
    tmp_path: Path, database: Database
) -> None:
    import os

    from services.production.housekeeping import Housekeeping

    now = [1_000_000.0]
    db = database
    updates, jobs = UpdateRepository(db, lambda: now[0]), JobRepository(db, lambda: now[0])
    inbound = tmp_path / "data" / "inbound"
    inbound.mkdir(parents=True)
    old, kept = inbound / "old.jpg", inbound / "kept.jpg"
    for path in (old, kept):
        path.write_bytes(b"x")
        os.utime(path, (0, 0))
    job = draft()
    job.input_path = str(kept)
    await jobs.create(job)  # a draft still needs its photo
    await updates.mark(1)
    now[0] += 3 * 86_400
    await updates.mark(2)
    albums = AlbumRepository(db, lambda: now[0])
    await Housekeeping(updates, jobs, albums, tmp_path / "data", lambda: now[0]).run()
    assert not await updates.seen(1) and await updates.seen(2)
    assert not old.exists() and kept.exists()


async def test_settling_happens_with_the_transition_and_only_once(database: Database) -> None:
    db = database
    repo, ledger = JobRepository(db, lambda: 5.0), LedgerRepository(db, lambda: 5.0)
    job, _ = await repo.create(draft(None))
    await ledger.add(job.user_id, job.id, "reserve", 100, "submit")
    assert await repo.transition(job.id, S.DRAFT, S.QUEUED)
    # A lost race settles nothing; the winner refunds exactly once.
    assert not await repo.transition(job.id, S.RUNNING, S.FAILED, settle="refund")
    assert await ledger.entries(job.id) == [("reserve", 100)]
    assert await repo.transition(job.id, S.QUEUED, S.CANCELED, settle="refund")
    assert await ledger.entries(job.id) == [("reserve", 100), ("refund", 100)]
    # A job never reserved (a free one) gets no ledger entry at all.
    free, _ = await repo.create(draft(None))
    assert await repo.transition(free.id, S.DRAFT, S.CANCELED, settle="refund")
    assert await ledger.entries(free.id) == []


async def test_params_that_do_not_fit_their_kind_are_refused_where_they_enter(
    repo: JobRepository,
) -> None:
    wrong = draft(11)
    wrong.params = {"duration": 5, "motion": "zoom_in", "mood": "calm"}  # a mood is for music
    with pytest.raises(SpecError, match=r"animate.*mood"):
        await repo.create(wrong)
    assert await repo.by_source(1, 11) is None
    job, _ = await repo.create(draft(12))
    with pytest.raises(SpecError, match="aspect"):
        await repo.update(job.id, params={"duration": 5, "aspect": "4:3"})
    # A clip's card that becomes a music job is checked as music.
    await repo.update(job.id, kind=JobKind.MUSIC, params={"mood": "calm", "duration": 0})
    changed = await repo.get(job.id)
    assert changed is not None and changed.kind == JobKind.MUSIC
