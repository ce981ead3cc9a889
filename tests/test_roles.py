"""Several processes on one PostgreSQL database: an ingress that answers people, workers that
make and deliver the videos; a worker killed at any moment loses nothing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import MUAPI_KEY, TOKEN, USER, data_for, reply_to
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.test_restart import BotProcess, assert_one_outcome, outcomes


def on(pg_url: str, process: BotProcess) -> BotProcess:
    process.env["DATABASE_URL"] = pg_url
    return process


async def job_states(pg_url: str) -> list[str]:
    conn = await asyncpg.connect(pg_url)
    try:
        return [r["state"] for r in await conn.fetch("SELECT state FROM jobs ORDER BY id")]
    finally:
        await conn.close()


async def test_an_ingress_answers_and_a_worker_makes_and_delivers(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes, pg_url: str
) -> None:
    ingress = on(pg_url, BotProcess(tg, tmp_path, "ingress", log="ingress.log"))
    worker = on(pg_url, BotProcess(tg, tmp_path, "worker", log="worker.log"))
    ingress.env["LOG_FORMAT"] = worker.env["LOG_FORMAT"] = "json"
    await ingress.start()
    try:
        card_id = await reply_to(tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in"))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await asyncio.sleep(2.0)
        # Queued, but nobody makes it: the ingress never submits, renders or delivers.
        assert await job_states(pg_url) == ["queued"] and tg.videos(USER) == []
        await worker.start()
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        await asyncio.sleep(1.0)
    finally:
        await worker.stop()
        await ingress.stop()
    assert len(tg.videos(USER)) == 1
    assert await job_states(pg_url) == ["delivered"]
    ingress_log = ingress.log.read_text()
    worker_log = worker.log.read_text()
    assert "submitted" not in ingress_log and "submitted" in worker_log
    # Only the ingress asks Telegram for updates; both log one JSON object per line.
    lines = [json.loads(line) for line in worker_log.splitlines() if line.startswith("{")]
    assert any(line.get("job_id") == 1 for line in lines)
    assert TOKEN not in ingress_log + worker_log
    assert "Traceback" not in ingress_log + worker_log


async def test_a_job_queued_by_the_ingress_is_taken_by_a_worker_at_once_not_at_its_next_tick(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes, pg_url: str
) -> None:
    ingress = on(pg_url, BotProcess(tg, tmp_path, "ingress", log="ingress.log"))
    worker = on(pg_url, BotProcess(tg, tmp_path, "worker", log="worker.log"))
    worker.env["POLLER_TICK_SECONDS"] = "120"  # its clock alone would take two minutes
    await ingress.start()
    await worker.start()
    try:
        card_id = await reply_to(tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in"))
        await asyncio.sleep(2.0)  # the worker's first tick has come and gone
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        pressed = asyncio.get_running_loop().time()
        while await job_states(pg_url) in (["draft"], ["queued"]):
            assert asyncio.get_running_loop().time() - pressed < 5, "the worker never heard"
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
        await ingress.stop()


@pytest.mark.parametrize("kill_after", [0.6, 1.5], ids=["submitting", "rendering"])
async def test_a_worker_killed_mid_job_is_replaced_and_the_video_arrives_once(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes, pg_url: str, kill_after: float
) -> None:
    ingress = on(pg_url, BotProcess(tg, tmp_path, "ingress", log="ingress.log"))
    first = on(pg_url, BotProcess(tg, tmp_path, "worker", log="worker-1.log"))
    second = on(pg_url, BotProcess(tg, tmp_path, "worker", log="worker-2.log"))
    await ingress.start()
    await first.start()
    try:
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in 10 seconds")
        card_id = await reply_to(tg, msg)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await asyncio.sleep(kill_after)
        await first.kill9()
        await second.start()
        await assert_one_outcome(tg)
    finally:
        await second.stop()
        await ingress.stop()


async def rows(pg_url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(pg_url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


# Where each step of a provider job can be caught: the job's state, and what makes the step
# last long enough for a kill to land in it.
STEPS = {
    # The provider takes 3 s to accept the submit.
    "submitting": "state = 'submitting'",
    # The video takes 6 s to make: the job is followed by polls meanwhile.
    "polling": "state = 'running'",
    # Telegram takes 4 s to read the upload, which has gone out whole (and is marked so).
    "uploading": "state = 'delivering' AND provider_data LIKE '%upload_sent%'",
}


@pytest.mark.parametrize("step", list(STEPS))
async def test_three_workers_one_killed_mid_step_every_video_arrives_once_or_is_refunded(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes, pg_url: str, output: Path, step: str
) -> None:
    async with FakeMuapi(api_key=MUAPI_KEY) as muapi:
        muapi.scenario = Scenario(
            output=output,
            polls_before_done=1,
            submit_delay=3.0 if step == "submitting" else 0.0,
            done_after=6.0 if step == "polling" else None,
        )
        if step == "uploading":
            tg.stall_before["sendvideo"] = 4.0
        processes = [on(pg_url, BotProcess(tg, tmp_path, "ingress", log="ingress.log"))]
        processes += [
            on(pg_url, BotProcess(tg, tmp_path, "worker", log=f"worker-{n}.log")) for n in range(3)
        ]
        for process in processes:
            process.env.update(MUAPI_API_KEY=MUAPI_KEY, MUAPI_BASE_URL=muapi.root)
        users = (USER, USER + 1, USER + 2)
        for process in processes:
            await process.start()
        try:
            for user in users:
                msg = tg.user_message(user, photo=photo_bytes, caption="zoom in")
                card_id = await reply_to(tg, msg, timeout=60)
                tg.press_button(user, card_id, data_for(tg, user, card_id, "go"))

            # The worker that holds a job in that step is killed, whole process group.
            async def holder() -> str | None:
                found = await rows(
                    pg_url, f"SELECT lease_owner FROM jobs WHERE {STEPS[step]} LIMIT 1"
                )
                return found[0]["lease_owner"] if found else None

            deadline = asyncio.get_running_loop().time() + 60
            while (owner := await holder()) is None:
                assert asyncio.get_running_loop().time() < deadline, tg.dump()
                await asyncio.sleep(0.05)
            pid = int(owner.rsplit(":", 1)[1])
            [victim] = [p for p in processes[1:] if p.proc is not None and p.proc.pid == pid]
            await victim.kill9()
            await assert_one_outcome(tg, users)
        finally:
            for process in processes:
                await process.stop()
        # Nobody got a video twice, no job went to the provider twice, and every job ended
        # with its credits settled once: kept for a video, given back for a notice.
        # (A submit cut off by the kill may or may not have reached the provider.)
        assert len(muapi.accepted_submits()) in ((2, 3) if step == "submitting" else (3,))
        ends = await rows(
            pg_url,
            "SELECT j.state, string_agg(l.entry, ',' ORDER BY l.id) AS entries "
            "FROM jobs j JOIN ledger l ON l.job_id = j.id GROUP BY j.id ORDER BY j.id",
        )
        assert {(r["state"], r["entries"]) for r in ends} <= {
            ("delivered", "reserve,keep"),
            ("unknown", "reserve,refund"),
        }, ends
        assert len(ends) == 3
        videos = sum(len(tg.videos(user)) for user in users)
        notices = sum(len(outcomes(tg, user)) for user in users) - videos
        # The jobs the dead worker held in that step (one or more) end in a notice: caught
        # mid-submit (refunded) or gone out whole to Telegram (a button sends it again).
        unknown = sum(r["state"] == "unknown" for r in ends)
        if step == "polling":
            assert notices == 0 and videos == 3, tg.dump()
        else:
            assert notices >= 1, tg.dump()
            assert unknown == (notices if step == "submitting" else 0)
        for process in processes:
            log = process.log.read_text(errors="replace")
            assert TOKEN not in log and MUAPI_KEY not in log
            if process is not victim:
                assert "Traceback" not in log, log[-3000:]


async def test_housekeeping_runs_in_one_process_at_a_time(tmp_path: Path) -> None:
    from services.storage.db import SqliteDatabase
    from services.storage.repositories import LeaseRepository

    db = SqliteDatabase(tmp_path / "l.db")
    await db.open()
    try:
        now = [1000.0]
        leases = LeaseRepository(db, lambda: now[0])
        assert await leases.take("housekeeping", "a", 60)
        assert not await leases.take("housekeeping", "b", 60)
        assert await leases.take("housekeeping", "a", 60)  # renewed by its holder
        now[0] += 61  # "a" died: its lease lapses
        assert await leases.take("housekeeping", "b", 60)
        assert not await leases.take("housekeeping", "a", 60)
    finally:
        await db.close()
    assert sqlite3.connect(tmp_path / "l.db").execute("SELECT owner FROM leases").fetchall() == [
        ("b",)
    ]


async def test_workers_delivering_together_stay_within_telegrams_limits_together(
    tmp_path: Path, photo_bytes: bytes, pg_url: str
) -> None:
    # A tight limit, for the bots and for the fake alike: three workers that each kept it
    # alone would send three times too fast.
    async with FakeTelegram(TOKEN, flood_limit_per_second=4, chat_limit_per_second=1) as tg:
        processes = [on(pg_url, BotProcess(tg, tmp_path, "ingress", log="ingress.log"))]
        processes += [
            on(pg_url, BotProcess(tg, tmp_path, "worker", log=f"worker-{n}.log")) for n in range(3)
        ]
        for process in processes:
            process.env["TELEGRAM_SENDS_PER_SECOND"] = "4"
            process.env["LOCAL_STUDIO_HEIGHT"] = "144"
        users = [USER + n for n in range(8)]
        await processes[0].start()
        try:
            for user in users:
                card_id = await reply_to(
                    tg, tg.user_message(user, photo=photo_bytes, caption="zoom in"), timeout=60
                )
                tg.press_button(user, card_id, data_for(tg, user, card_id, "go"))
            for worker in processes[1:]:
                await worker.start()
            await tg.wait_for(lambda: all(tg.videos(user) for user in users), timeout=180)
        finally:
            for process in processes:
                await process.stop()
        assert tg.flood_429_count == 0, tg.dump()
        assert all(len(tg.videos(user)) == 1 for user in users)
