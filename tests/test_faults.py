"""Faults: the real bot process killed at every stage, and faults from outside.

Each crash case asserts what a user and the operator care about: the job ends delivered
exactly once or reported with a refund; never two provider submits; never two deliveries.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from services.model.jobs import TERMINAL_STATES
from tests.conftest import (
    TOKEN,
    USER,
    buttons_of,
    data_for,
    db_rows,
    make_settings,
    reply_to,
    running_bot,
    services_of,
    sqlite_only,
)
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_video
from tests.test_restart import BotProcess

KEY = "muapi-fault-key-77aa55"
UNKNOWN_NOTICE = "won't send it again"
UNCONFIRMED = "did not confirm it arrived"


def ledger(tmp_path: Path) -> list[tuple[str, int]]:
    return [(e, a) for e, a in db_rows(tmp_path, "SELECT entry, amount FROM ledger ORDER BY id")]


def notices(tg: FakeTelegram) -> int:
    notes = (UNKNOWN_NOTICE, UNCONFIRMED)
    return sum(any(n in (m.text_plain or "") for n in notes) for m in tg.messages(USER))


@pytest.mark.parametrize("stage", ["during-submit", "downloading-output", "uploading-to-telegram"])
async def test_kill_9_at_every_stage_never_double_submits_or_double_delivers(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes, stage: str
) -> None:
    out = make_video(tmp_path / "out.mp4", seconds=1.0)
    async with FakeMuapi(api_key=KEY) as muapi:
        muapi.scenario = Scenario(
            output=out, polls_before_done=1, submit_delay=60 if stage == "during-submit" else 0
        )
        if stage == "downloading-output":
            muapi.download_delay = 60
        if stage == "uploading-to-telegram":
            tg.stall_before["sendvideo"] = 60
        bot = BotProcess(tg, tmp_path)
        bot.env.update(MUAPI_API_KEY=KEY, MUAPI_BASE_URL=muapi.root, PROVIDER_TIMEOUT_SECONDS="120")
        await bot.start()
        try:
            card_id = await reply_to(
                tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in")
            )
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
            if stage == "during-submit":
                await tg.wait_for(lambda: muapi.submits, timeout=30)
            elif stage == "downloading-output":
                await tg.wait_for(
                    lambda: any(p.startswith("out/") for p in muapi.downloads), timeout=30
                )
            else:
                await tg.wait_for(
                    lambda: "Sending the video" in (tg.message(USER, card_id).text_plain or ""),
                    timeout=30,
                )
                await asyncio.sleep(0.5)  # the upload is under way, stuck before Telegram reads it
            await bot.kill9()
            muapi.scenario.submit_delay = 0
            muapi.download_delay = 0
            tg.stall_before.clear()

            await bot.start()
            await tg.wait_for(lambda: tg.videos(USER) or notices(tg), timeout=90)
            await asyncio.sleep(2.0)  # room for a duplicate to show itself
            assert len(tg.videos(USER)) + notices(tg) == 1, tg.dump()
            if stage == "uploading-to-telegram":
                # The file had gone out whole (Telegram may yet post it): not sent again
                # unasked; one tap sends it.
                [notice] = [m for m in tg.messages(USER) if UNCONFIRMED in (m.text_plain or "")]
                tg.press_button(
                    USER,
                    notice.message_id,
                    buttons_of(tg, USER, notice.message_id)["↻ Send it again"],
                )
                await tg.wait_for(lambda: tg.videos(USER), timeout=30)
        finally:
            await bot.stop()
        assert len(muapi.submits) == 1, muapi.dump()
        if stage == "during-submit":
            # It may have been accepted: never sent again, the user told and refunded.
            assert notices(tg) == 1 and ledger(tmp_path) == [("reserve", 100), ("refund", 100)]
        else:
            assert len(tg.videos(USER)) == 1 and ledger(tmp_path) == [
                ("reserve", 100),
                ("keep", 100),
            ]
    log = bot.log.read_text(errors="replace")
    assert TOKEN not in log and KEY not in log
    assert "Traceback" not in log, log[-3000:]


# --- faults from outside, in-process --------------------------------------------------------


def plain(tg: FakeTelegram, chat: int = USER) -> str:
    return "\n".join(m.text_plain or m.caption_plain or "" for m in tg.messages(chat))


async def ended_job(app: object, timeout: float = 30.0) -> object:
    jobs = services_of(app).jobs  # type: ignore[arg-type]
    for _ in range(int(timeout / 0.05)):
        found = await jobs.for_user(USER, list(TERMINAL_STATES))
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no job ended")


async def test_malformed_json_and_429_storms_while_polling_are_ridden_out(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    out = make_video(tmp_path / "out.mp4", seconds=1.0)
    storm = [
        (200, "<html>502 bad gateway</html>"),
        (200, "{not json"),
        *[(429, {"detail": "slow down"})] * 4,
    ]
    async with FakeMuapi(api_key=KEY) as muapi:
        muapi.scenario = Scenario(output=out, polls_before_done=1, poll_errors=storm)
        settings = make_settings(tg, tmp_path, muapi_api_key=KEY, muapi_base_url=muapi.root)
        async with running_bot(settings) as app:
            card_id = await reply_to(
                tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in")
            )
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
            job = await ended_job(app)
            assert job.state.value == "delivered"  # type: ignore[attr-defined]
        assert len(muapi.accepted_submits()) == 1 and len(tg.videos(USER)) == 1


async def test_an_output_cut_off_mid_download_is_retried_then_refunded(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    out = make_video(tmp_path / "out.mp4", seconds=1.0)
    async with FakeMuapi(api_key=KEY) as muapi:
        muapi.scenario = Scenario(output=out, polls_before_done=1, output_cut_off=True)
        settings = make_settings(tg, tmp_path, muapi_api_key=KEY, muapi_base_url=muapi.root)
        async with running_bot(settings) as app:
            card_id = await reply_to(
                tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in")
            )
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
            job = await ended_job(app)
            assert job.state.value == "failed"  # type: ignore[attr-defined]
            await tg.wait_for(lambda: "not charged" in plain(tg))
        assert len([p for p in muapi.downloads if p.startswith("out/")]) == 3
    assert tg.videos(USER) == [] and ledger(tmp_path) == [("reserve", 100), ("refund", 100)]
    assert not list((tmp_path / "data").rglob("*.part"))  # no half-written file is kept


async def test_telegram_413_ends_with_an_explanation_and_no_second_upload(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    tg.fail_next("sendVideo", error_code=413, description="Request Entity Too Large")
    async with running_bot(make_settings(tg, tmp_path)) as app:
        card_id = await reply_to(tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in"))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        job = await ended_job(app)
        assert job.state.value == "failed"  # type: ignore[attr-defined]
        await tg.wait_for(lambda: "Telegram would not accept the upload" in plain(tg))
    assert tg.calls_to("sendDocument") == [] and len(tg.calls_to("sendVideo")) == 1
    assert ledger(tmp_path) == [("reserve", 10), ("refund", 10)]


UNCONFIRMED = "did not confirm it arrived"


def resend_button(tg: FakeTelegram) -> tuple[int, str]:
    """The message that carries the "Send it again" button, and the button's data."""
    for m in tg.messages(USER):
        if UNCONFIRMED in (m.text_plain or ""):
            return m.message_id, data_for(tg, USER, m.message_id, "send")
    raise AssertionError("no unconfirmed-upload message")


async def test_an_upload_telegram_never_answers_is_not_sent_twice_and_can_be_resent(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    tg.delay("sendVideo", 3.0)  # Telegram posts the video, the answer never comes in time
    settings = make_settings(tg, tmp_path, telegram_upload_timeout_seconds=1.0)
    async with running_bot(settings) as app:
        card_id = await reply_to(tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in"))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        job = await ended_job(app)
        await tg.wait_for(lambda: UNCONFIRMED in plain(tg))
        await asyncio.sleep(1.0)  # room for a (wrong) resend
        assert len(tg.calls_to("sendVideo")) == 1 and len(tg.videos(USER)) == 1
        assert tg.calls_to("sendDocument") == []
        assert job.state.value == "delivered"  # type: ignore[attr-defined]
        # The user asks for it again: sent from the kept file, and only then.
        tg.delay("sendVideo", 0)
        message_id, data = resend_button(tg)
        tg.press_button(USER, message_id, data)
        await tg.wait_for(lambda: len(tg.videos(USER)) == 2)
        # A second press re-sends by file_id: no new upload.
        tg.press_button(USER, message_id, data)
        await tg.wait_for(lambda: len(tg.videos(USER)) == 3)
        uploads = [c for c in tg.calls_to("sendVideo") if c.files]
        assert len(uploads) == 2
    assert ledger(tmp_path) == [("reserve", 10), ("keep", 10)]  # in the chat: charged once


async def test_a_connection_dropped_after_the_whole_upload_is_not_resent(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    tg.drop_connection_next("sendVideo")  # the fake read the whole upload, then hung up
    async with running_bot(make_settings(tg, tmp_path)) as app:
        card_id = await reply_to(tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in"))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await ended_job(app)
        await tg.wait_for(lambda: UNCONFIRMED in plain(tg))
        assert len(tg.calls_to("sendVideo")) == 1 and tg.videos(USER) == []
        message_id, data = resend_button(tg)
        tg.press_button(USER, message_id, data)
        await tg.wait_for(lambda: len(tg.videos(USER)) == 1)
    assert len(tg.calls_to("sendVideo")) == 2 and len(tg.videos(USER)) == 1


@sqlite_only
async def test_a_busy_database_delays_but_loses_nothing(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        locker = sqlite3.connect(tmp_path / "bot.db", timeout=5, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
        await asyncio.sleep(2.0)
        locker.execute("COMMIT")
        locker.close()
        card_id = await reply_to(tg, msg)
        assert "This costs" in (tg.message(USER, card_id).text_plain or "")
        assert "went wrong" not in plain(tg)
