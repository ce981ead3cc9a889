"""The poller against a scripted provider, a fake clock, a real database and the fake Bot API."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from telegram.ext import ExtBot

from services.errors import ProviderTransient
from services.model.jobs import Job, JobKind, JobState
from services.production.credits import Credits
from services.production.delivery import Delivery
from services.production.poller import Poller, PollerConfig
from services.providers.base import (
    JobSpec,
    ProviderSet,
    ProviderState,
    ProviderStatus,
    Submission,
)
from services.storage.db import SqliteDatabase
from services.storage.repositories import (
    JobRepository,
    LedgerRepository,
    MediaRepository,
)
from services.telegram.messenger import Messenger
from services.telegram.send_budget import SendBudget
from tests.conftest import USER
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_big_video, make_photo, make_video


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ScriptedProvider:
    """A provider whose answers the test decides."""

    output: Path | None = None
    statuses: Callable[[int], ProviderStatus] = lambda n: ProviderStatus(
        ProviderState.RUNNING, "processing", progress=min(0.99, n / 10)
    )
    submit_errors: list[Exception] = field(default_factory=list)
    name: str = "local"
    submits: int = 0
    polls: int = 0
    cancels: int = 0

    async def upload(self, path: Path, content_type: str) -> str:
        return f"https://cdn.example/{path.name}"

    async def submit(self, spec: JobSpec) -> Submission:
        self.submits += 1
        if self.submit_errors:
            raise self.submit_errors.pop(0)
        return Submission(external_id=f"req-{self.submits}")

    async def poll(self, submission: Submission) -> ProviderStatus:
        self.polls += 1
        return self.statuses(self.polls)

    async def cancel(self, submission: Submission) -> bool:
        self.cancels += 1
        return True

    async def fetch_output(self, url: str, dest: Path, max_bytes: int) -> None:
        assert self.output is not None
        shutil.copyfile(self.output, dest)

    async def discard(self, submission: Submission) -> None:
        return None

    async def close(self) -> None:
        return None


def completed(n: int) -> ProviderStatus:
    return ProviderStatus(
        ProviderState.COMPLETED, "completed", outputs=("https://cdn.example/out.mp4",)
    )


@dataclass
class World:
    tg: FakeTelegram
    db: SqliteDatabase
    jobs: JobRepository
    ledger: LedgerRepository
    credits: Credits
    messenger: Messenger
    clock: FakeClock
    tmp: Path
    photo: Path

    def poller(self, provider: ScriptedProvider, owner: str = "a", **config: object) -> Poller:
        values: dict[str, object] = {
            "work_dir": self.tmp / "data",
            "poll_interval": 1.0,
            "job_timeout": 600.0,
            "stall_polls": 5,
            "edit_interval": 0.0,
            "lease_seconds": 30.0,
            "download_retry_wait": 0.0,
        }
        values.update(config)
        return Poller(
            jobs=self.jobs,
            media=MediaRepository(self.db, self.clock),
            credits=self.credits,
            providers=ProviderSet(main=provider, local=provider),  # type: ignore[arg-type]
            messenger=self.messenger,
            delivery=Delivery(self.messenger, upload_limit=50_000_000, local_mode=False),
            config=PollerConfig(**values),  # type: ignore[arg-type]
            clock=self.clock,
            owner=owner,
        )

    async def queued_job(self) -> Job:
        status_id = await self.messenger.send_text(USER, "Submitted…")
        job, _ = await self.jobs.create(
            Job(
                id=0,
                user_id=USER,
                chat_id=USER,
                kind=JobKind.ANIMATE,
                state=JobState.DRAFT,
                provider="local",
                model="studio-motion",
                prompt="zoom in",
                params={"motion": "zoom_in", "duration": 5, "aspect": "16:9"},
                cost=10,
                input_path=str(self.photo),
            )
        )
        assert await self.jobs.transition(
            job.id,
            JobState.DRAFT,
            JobState.QUEUED,
            reserve=self.credits.reservation(job),
            status_message_id=status_id,
            next_poll_at=self.clock(),
        )
        fresh = await self.jobs.get(job.id)
        assert fresh is not None
        return fresh


@pytest.fixture
async def world(tg: FakeTelegram, tmp_path: Path) -> AsyncIterator[World]:
    tg.add_chat(USER)
    clock = FakeClock()
    db = SqliteDatabase(tmp_path / "bot.db")
    await db.open()
    ledger = LedgerRepository(db, clock)
    credits = Credits(ledger, clock, daily=500, zone=ZoneInfo("UTC"), admins=frozenset())
    bot = ExtBot(
        tg.token, base_url=tg.api_url, base_file_url=tg.file_url, rate_limiter=SendBudget()
    )
    await bot.initialize()
    async with httpx.AsyncClient() as http:
        messenger = Messenger(bot, http, api_root=tg.root, token=tg.token, local_mode=False)
        photo = make_photo(tmp_path / "in.jpg", 320, 240)
        yield World(
            tg, db, JobRepository(db, clock), ledger, credits, messenger, clock, tmp_path, photo
        )
    await bot.shutdown()
    await db.close()


async def settle(*pollers: Poller) -> None:
    for _ in range(3000):
        if not any(p.busy for p in pollers):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("poller did not settle")


async def run_ticks(world: World, poller: Poller, ticks: int, step: float = 1.0) -> None:
    for _ in range(ticks):
        await poller.tick()
        await settle(poller)
        world.clock.now += step


def user_texts(tg: FakeTelegram) -> list[str]:
    return [m.text_plain or "" for m in tg.messages(USER)]


async def test_a_finished_job_is_delivered_once_and_credits_are_kept(world: World) -> None:
    provider = ScriptedProvider(output=make_video(world.tmp / "out.mp4", seconds=1.0))
    provider.statuses = lambda n: (
        completed(n)
        if n >= 3
        else ProviderStatus(ProviderState.QUEUED, "queued", queue_position=3 - n)
    )
    poller = world.poller(provider)
    job = await world.queued_job()
    await run_ticks(world, poller, 8)
    done = await world.jobs.get(job.id)
    assert done is not None and done.state == JobState.DELIVERED
    assert provider.submits == 1
    assert len(world.tg.videos(USER)) == 1
    assert await world.ledger.entries(job.id) == [("reserve", 10), ("keep", 10)]
    status = world.tg.message(USER, job.status_message_id or 0)
    assert status is not None
    assert any("position" in (r.text or "") for r in status.history)  # queue position shown
    assert "Done" in (status.text_plain or "")


async def test_timeout_cancels_refunds_and_tells_the_user(world: World) -> None:
    provider = ScriptedProvider()
    poller = world.poller(provider, job_timeout=30.0)
    job = await world.queued_job()
    await run_ticks(world, poller, 2)
    world.clock.now += 31
    await run_ticks(world, poller, 2)
    ended = await world.jobs.get(job.id)
    assert ended is not None and ended.state == JobState.TIMED_OUT
    assert provider.cancels == 1
    assert await world.ledger.entries(job.id) == [("reserve", 10), ("refund", 10)]
    assert any("took too long" in t and "not charged" in t for t in user_texts(world.tg))
    assert world.tg.videos(USER) == []


async def test_same_status_for_n_polls_is_a_stall_and_keeps_the_provider_id(world: World) -> None:
    provider = ScriptedProvider(
        statuses=lambda n: ProviderStatus(ProviderState.RUNNING, "processing", progress=0.4)
    )
    poller = world.poller(provider, stall_polls=5)
    job = await world.queued_job()
    await run_ticks(world, poller, 10)
    ended = await world.jobs.get(job.id)
    assert ended is not None and ended.state == JobState.STALLED
    assert ended.external_id == "req-1"
    assert provider.polls == 6  # the first poll sets the baseline, five more equal ones stall
    assert await world.ledger.entries(job.id) == [("reserve", 10), ("refund", 10)]
    assert any("stopped making progress" in t for t in user_texts(world.tg))


async def test_progress_that_moves_is_not_a_stall(world: World) -> None:
    provider = ScriptedProvider()  # progress grows every poll
    poller = world.poller(provider, stall_polls=3)
    job = await world.queued_job()
    await run_ticks(world, poller, 8)
    running = await world.jobs.get(job.id)
    assert running is not None and running.state == JobState.RUNNING


async def test_a_leased_job_is_not_taken_by_another_process_until_the_lease_lapses(
    world: World,
) -> None:
    job = await world.queued_job()
    first = await world.jobs.claim_due("a", 30.0, 10)
    assert [j.id for j in first] == [job.id]
    assert await world.jobs.claim_due("b", 30.0, 10) == []
    world.clock.now += 31
    assert [j.id for j in await world.jobs.claim_due("b", 30.0, 10)] == [job.id]


async def test_two_pollers_sharing_the_database_deliver_once(world: World) -> None:
    provider = ScriptedProvider(output=make_video(world.tmp / "out.mp4", seconds=1.0))
    provider.statuses = completed
    a, b = world.poller(provider, owner="a"), world.poller(provider, owner="b")
    job = await world.queued_job()
    for _ in range(5):
        await asyncio.gather(a.tick(), b.tick())
        await settle(a, b)
        world.clock.now += 1
    done = await world.jobs.get(job.id)
    assert done is not None and done.state == JobState.DELIVERED
    assert provider.submits == 1
    assert len(world.tg.videos(USER)) == 1


async def test_a_job_found_submitting_is_never_resubmitted(world: World) -> None:
    provider = ScriptedProvider()
    poller = world.poller(provider)
    job = await world.queued_job()
    # As if the process died between writing `submitting` and hearing back from the provider.
    assert await world.jobs.transition(job.id, JobState.QUEUED, JobState.SUBMITTING)
    await run_ticks(world, poller, 3)
    ended = await world.jobs.get(job.id)
    assert ended is not None and ended.state == JobState.UNKNOWN
    assert provider.submits == 0
    assert await world.ledger.entries(job.id) == [("reserve", 10), ("refund", 10)]
    assert any("won't send it again" in t for t in user_texts(world.tg))


async def test_submit_refused_before_acceptance_is_retried_but_a_maybe_accepted_one_is_not(
    world: World,
) -> None:
    provider = ScriptedProvider(
        submit_errors=[ProviderTransient("503", reached=False, retry_after=1.0)]
    )
    poller = world.poller(provider)
    job = await world.queued_job()
    await run_ticks(world, poller, 4)
    running = await world.jobs.get(job.id)
    assert running is not None and running.state == JobState.RUNNING
    assert provider.submits == 2

    maybe = ScriptedProvider(submit_errors=[ProviderTransient("read timeout", reached=True)])
    poller = world.poller(maybe)
    second = await world.queued_job()
    await run_ticks(world, poller, 4)
    ended = await world.jobs.get(second.id)
    assert ended is not None and ended.state == JobState.UNKNOWN
    assert maybe.submits == 1


@pytest.mark.parametrize(
    ("target", "expect_note", "expect_reencode"),
    [(30_000_000, True, False), (60_000_000, True, True)],
    ids=["30MB-sent-with-note", "60MB-reencoded-under-50MB"],
)
async def test_delivery_routes_by_size(
    world: World, target: int, expect_note: bool, expect_reencode: bool
) -> None:
    output = make_big_video(world.tmp / "big.mp4", target_bytes=target, seconds=8.0)
    provider = ScriptedProvider(output=output, statuses=completed)
    poller = world.poller(provider)
    job = await world.queued_job()
    await run_ticks(world, poller, 3)
    done = await world.jobs.get(job.id)
    assert done is not None and done.state == JobState.DELIVERED, world.tg.dump()
    videos = world.tg.videos(USER)
    assert len(videos) == 1
    sent = videos[0]
    assert sent.file is not None
    assert sent.file.size <= 50_000_000
    assert ("large file" in (sent.caption_plain or "")) == expect_note
    assert (sent.file.size < output.stat().st_size) == expect_reencode
    assert sent.width and sent.height and sent.duration == 8
    assert world.tg.too_large_count == 0  # never tried to upload above the limit
    actions = [c.params.get("action") for c in world.tg.calls_to("sendChatAction")]
    assert "upload_video" in actions  # "uploading video…" shown during a long upload


async def test_telegram_refusing_the_upload_ends_with_a_link_and_a_refund(world: World) -> None:
    output = make_video(world.tmp / "out.mp4", seconds=1.0)
    provider = ScriptedProvider(output=output, statuses=completed)
    for method in ("sendVideo", "sendDocument"):
        world.tg.fail_next(method, error_code=400, description="Bad Request: wrong file", times=5)
    poller = world.poller(provider)
    job = await world.queued_job()
    await run_ticks(world, poller, 3)
    ended = await world.jobs.get(job.id)
    assert ended is not None and ended.state == JobState.FAILED
    assert await world.ledger.entries(job.id) == [("reserve", 10), ("refund", 10)]
    assert any("https://cdn.example/out.mp4" in t for t in user_texts(world.tg))


async def test_retry_after_on_upload_is_waited_out(world: World) -> None:
    output = make_video(world.tmp / "out.mp4", seconds=1.0)
    provider = ScriptedProvider(output=output, statuses=completed)
    world.tg.fail_next(
        "sendVideo", error_code=429, description="Too Many Requests: retry after 1", retry_after=1
    )
    poller = world.poller(provider)
    job = await world.queued_job()
    await run_ticks(world, poller, 3)
    done = await world.jobs.get(job.id)
    assert done is not None and done.state == JobState.DELIVERED
    assert len(world.tg.calls_to("sendVideo")) == 2 and len(world.tg.videos(USER)) == 1


async def test_a_full_disk_fails_the_job_with_a_refund_and_alerts_the_admins_once(
    world: World,
) -> None:
    import errno

    from services.production.alerts import Alerts
    from services.storage.repositories import AlertRepository

    admin = 777
    world.tg.add_chat(admin)

    class FullDisk(ScriptedProvider):
        async def fetch_output(self, url: str, dest: Path, max_bytes: int) -> None:
            dest.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")

    provider = FullDisk(statuses=completed)
    poller = world.poller(provider)
    poller.endings.alerts = Alerts(
        AlertRepository(world.db, world.clock), world.messenger, frozenset({admin})
    )
    first, second = await world.queued_job(), await world.queued_job()
    await run_ticks(world, poller, 3)
    for job_id in (first.id, second.id):
        ended = await world.jobs.get(job_id)
        assert ended is not None and ended.state == JobState.FAILED
        assert await world.ledger.entries(job_id) == [("reserve", 10), ("refund", 10)]
    assert any("ran out of room" in t and "not charged" in t for t in user_texts(world.tg))
    alerts = [m for m in world.tg.messages(admin) if "data folder" in (m.text_plain or "")]
    assert len(alerts) == 1
    assert not list((world.tmp / "data").rglob("output.mp4"))  # the partial file is gone


async def test_one_tick_works_through_every_due_job_within_the_bound(world: World) -> None:
    provider = ScriptedProvider()
    polling = peak = 0

    async def slow_status(submission: Submission) -> ProviderStatus:
        nonlocal polling, peak
        provider.polls += 1
        polling += 1
        peak = max(peak, polling)
        await asyncio.sleep(0.01)
        polling -= 1
        return ProviderStatus(ProviderState.RUNNING, "processing", progress=0.5)

    provider.poll = slow_status  # type: ignore[method-assign]
    poller = world.poller(provider, max_concurrent=3)
    jobs = [await world.queued_job() for _ in range(10)]
    for job in jobs:  # as if submitted earlier: all running and due now
        await world.jobs.transition(job.id, JobState.QUEUED, JobState.SUBMITTING)
        await world.jobs.transition(
            job.id, JobState.SUBMITTING, JobState.RUNNING, external_id=f"r{job.id}"
        )
    await poller.tick()
    await settle(poller)
    assert provider.polls == 10  # not just the first three: the round ran back to back
    assert peak == 3  # never more at once than the bound


async def test_deliveries_have_their_own_bound_and_do_not_hold_up_polls(world: World) -> None:
    provider = ScriptedProvider(output=make_video(world.tmp / "out.mp4", seconds=1.0))
    provider.statuses = completed
    poller = world.poller(provider, max_concurrent=8, max_deliveries=1)
    uploading = 0
    most = 0
    send = world.messenger.send_video

    async def counted(*args: object, **kwargs: object) -> object:
        nonlocal uploading, most
        uploading += 1
        most = max(most, uploading)
        try:
            return await send(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            uploading -= 1

    world.messenger.send_video = counted  # type: ignore[method-assign]
    jobs = [await world.queued_job() for _ in range(3)]
    await run_ticks(world, poller, 6)
    for job in jobs:
        done = await world.jobs.get(job.id)
        assert done is not None and done.state == JobState.DELIVERED
    assert most == 1 and len(world.tg.videos(USER)) == 3
