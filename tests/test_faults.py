"""Faults: the real bot process killed at every stage, and faults from outside.

Each crash case asserts what a user and the operator care about: the job ends delivered
exactly once or reported with a refund; never two provider submits; never two deliveries.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import TOKEN, USER, data_for, reply_to
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_video
from tests.test_restart import BotProcess

KEY = "muapi-fault-key-77aa55"
UNKNOWN_NOTICE = "won't send it again"


def ledger(tmp_path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(tmp_path / "bot.db") as db:
        return [(e, a) for e, a in db.execute("SELECT entry, amount FROM ledger ORDER BY id")]


def notices(tg: FakeTelegram) -> int:
    return sum(UNKNOWN_NOTICE in (m.text_plain or "") for m in tg.messages(USER))


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
        finally:
            await bot.stop()
        assert len(muapi.submits) == 1, muapi.dump()
        assert len(tg.videos(USER)) + notices(tg) == 1, tg.dump()
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
