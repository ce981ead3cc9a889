"""Telegram's limits end to end: a job paced per chat, and late button presses taken calmly."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN, USER, data_for, make_settings, reply_to, running_bot
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_video

MUAPI_KEY = "muapi-test-key-0123456789"


def strict_telegram() -> FakeTelegram:
    """Telegram's flood limits: 30 sends a second in all, one a second per chat after 4."""
    return FakeTelegram(TOKEN, flood_limit_per_second=30, chat_limit_per_second=1.0, chat_burst=4)


def texts(tg: FakeTelegram) -> list[str]:
    return [m.text_plain or m.caption_plain or "" for m in tg.messages(USER)]


def sends_to(tg: FakeTelegram, chat_id: int) -> list[str]:
    return [
        c.method
        for c in tg.calls
        if c.params.get("chat_id") == chat_id and c.method.startswith(("send", "edit"))
    ]


async def test_a_fast_job_stays_within_the_chat_limit_and_people_are_still_answered(
    tmp_path: Path, photo_bytes: bytes
) -> None:
    # The local studio with polls every 0.1 s and no pause between status edits: every step of
    # the job wants to tell the chat something at once.
    async with strict_telegram() as tg:
        settings = make_settings(
            tg, tmp_path, poll_interval_seconds=0.1, status_edit_interval_seconds=0
        )
        async with running_bot(settings):
            msg = tg.user_message(USER, photo=photo_bytes, caption="slow zoom in")
            card_id = await reply_to(tg, msg)
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
            tg.user_message(USER, text="/credits")
            # A person's answer goes out mid-job, while the job's edits are paced.
            await tg.wait_for(lambda: "credits left" in " ".join(texts(tg)), timeout=5)
            await tg.wait_for(lambda: tg.videos(USER), timeout=60)
            await tg.wait_for(lambda: any(t.startswith("Done") for t in texts(tg)), 20)
    assert sends_to(tg, USER).count("sendVideo") == 1
    assert tg.flood_429_by_chat[USER] == 0
    assert tg.flood_429_count == 0
    assert len(tg.videos(USER)) == 1


@pytest.mark.parametrize("cdn_delay", [0.0, 2.5])
async def test_the_status_names_a_step_only_when_it_takes_a_while(
    tmp_path: Path, photo_bytes: bytes, cdn_delay: float
) -> None:
    # A quick download and upload: the status goes straight to "Done" beside the video, which
    # leaves the chat's few sends a second to the video and "Done" (neither waits for a slot).
    # A slow download says so while it lasts.
    output = make_video(tmp_path / "out.mp4", seconds=1.0)
    async with strict_telegram() as tg, FakeMuapi(api_key=MUAPI_KEY) as muapi:
        muapi.scenario = Scenario(polls_before_done=1, output=output)
        muapi.download_delay = cdn_delay
        settings = make_settings(
            tg, tmp_path, muapi_api_key=MUAPI_KEY, muapi_base_url=muapi.root,
            poll_interval_seconds=0.5,
        )  # fmt: skip
        async with running_bot(settings):
            card_id = await reply_to(tg, tg.user_message(USER, photo=photo_bytes, caption="zoom"))
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
            await tg.wait_for(lambda: tg.videos(USER), timeout=30)
            await tg.wait_for(lambda: "Done" in (tg.message(USER, card_id).text_plain or ""), 10)
        status = tg.message(USER, card_id)
        assert status is not None
        lines = [r.text or "" for r in status.history] + [status.text_plain or ""]
        fetching = [line for line in lines if "fetching the video" in line]
        assert bool(fetching) == (cdn_delay > 0), lines
        assert not [line for line in lines if "Sending the video" in line], lines
        calls = [c for c in tg.calls if c.params.get("chat_id") == USER]
        video_at = next(c.at for c in calls if c.method == "sendVideo")
        done_at = next(
            c.at for c in calls if c.method == "editMessageText" and "Done" in c.params["text"]
        )
        print(
            [
                (round(c.at - calls[0].at, 2), c.method, str(c.params.get("text", ""))[:30])
                for c in calls
            ]
        )
        assert done_at - video_at < 0.5  # "Done" did not wait a second for the chat's slot
        assert tg.flood_429_count == 0 and len(tg.videos(USER)) == 1


async def test_a_late_or_repeated_button_press_is_taken_quietly(
    tmp_path: Path, photo_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # Telegram forgets a press the bot takes too long to answer; here, every press.
    tg = FakeTelegram(TOKEN, callback_timeout=0)
    async with tg, running_bot(make_settings(tg, tmp_path)):
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom out")
        card_id = await reply_to(tg, msg)
        go = data_for(tg, USER, card_id, "go")
        query_id = tg.press_button(USER, card_id, go)
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        # The same press delivered again (Telegram resends what it thinks was not received).
        update_id = next(
            uid
            for uid, update in tg.state.history.items()
            if update.get("callback_query", {}).get("id") == query_id
        )
        tg.redeliver(update_id)
        # And a press of the same button long after the job has ended.
        tg.press_button(USER, card_id, go, strict=False)
        await tg.wait_for(lambda: tg.pending_updates == 0)
        await tg.wait_for(lambda: len(tg.calls_to("answerCallbackQuery")) >= 2)
    loud: list[Any] = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert loud == []
    assert any("query is too old" in r.getMessage().lower() for r in caplog.records)
    said = [m.text_plain or "" for m in tg.messages(USER)]
    assert not any("Something went wrong" in text for text in said)
    assert len(tg.videos(USER)) == 1
