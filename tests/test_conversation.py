"""The conversation around a job: commands, settings, languages, limits, safety, escaping."""

from __future__ import annotations

import string
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

from services.model.jobs import Job, JobKind, JobState
from services.production.credits import Credits
from services.storage.db import SqliteDatabase
from services.storage.repositories import JobRepository, LedgerRepository
from services.texts import TEXTS
from tests.conftest import (
    OTHER_USER,
    USER,
    data_for,
    make_settings,
    reply_to,
    running_bot,
    services_of,
)
from tests.fakes.telegram import FakeTelegram

ADMIN = 4242


def plain(tg: FakeTelegram, chat: int = USER) -> str:
    return "\n".join(m.text_plain or m.caption_plain or "" for m in tg.messages(chat))


def last_text(tg: FakeTelegram, chat: int = USER) -> str:
    msg = tg.last_message(chat)
    return (msg.text_plain or msg.caption_plain or "") if msg else ""


def last_html(tg: FakeTelegram, chat: int = USER) -> str:
    msg = tg.last_message(chat)
    return (msg.text or "") if msg else ""


async def delivered(tg: FakeTelegram, card_id: int) -> None:
    await tg.wait_for(lambda: "Done" in (tg.message(USER, card_id).text_plain or ""), timeout=60)


async def make_video(tg: FakeTelegram, photo: bytes, caption: str = "zoom in") -> int:
    msg = tg.user_message(USER, photo=photo, caption=caption)
    card_id = await reply_to(tg, msg)
    tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
    await delivered(tg, card_id)
    return card_id


def test_every_language_has_every_text_with_the_same_placeholders() -> None:
    formatter = string.Formatter()
    english = TEXTS["en"]
    for lang, table in TEXTS.items():
        assert set(table) == set(english), lang
        for key, template in table.items():
            names = {f[1] for f in formatter.parse(template) if f[1]}
            assert names == {f[1] for f in formatter.parse(english[key]) if f[1]}, (lang, key)


async def test_russian_users_are_answered_in_russian_and_settings_can_switch_language(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        tg.user_message(USER, text="/start", language_code="ru")
        await tg.wait_for(lambda: "Привет" in plain(tg))
        tg.user_message(OTHER_USER, text="/start", language_code="en")
        await tg.wait_for(lambda: "Hi Ann" in plain(tg, OTHER_USER))

        # An English speaker switches to Russian in /settings: auto → en → ru.
        tg.user_message(OTHER_USER, text="/settings")
        await tg.wait_for(lambda: "Settings" in last_text(tg, OTHER_USER))
        settings_id = tg.last_message(OTHER_USER).message_id
        for _ in range(2):
            tg.press_button(OTHER_USER, settings_id, "s:language")
            await tg.wait_for(lambda: len(tg.callback_answers) >= 1)
        await tg.wait_for(
            lambda: "Настройки" in (tg.message(OTHER_USER, settings_id).text_plain or "")
        )
        tg.user_message(OTHER_USER, text="/help")
        await tg.wait_for(lambda: "Как это работает" in plain(tg, OTHER_USER))


async def test_status_history_and_send_again_by_file_id(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        tg.user_message(USER, text="/status")
        await tg.wait_for(lambda: "Nothing is running" in plain(tg))
        await make_video(tg, photo_bytes, "zoom in on the <b>cat</b>")
        tg.user_message(USER, text="/history")
        await tg.wait_for(lambda: "recent videos" in last_text(tg))
        history = tg.last_message(USER)
        assert "<b>cat</b>" in (history.text_plain or "")  # the user's text, escaped, not bold
        send = next(b["callback_data"] for b in history.buttons if "again" in b["text"])
        tg.press_button(USER, history.message_id, send)
        await tg.wait_for(lambda: len(tg.videos(USER)) == 2)
        again = tg.videos(USER)[1]
        assert again.source == "file_id" and again.file_id == tg.videos(USER)[0].file_id


async def test_after_delivery_again_makes_a_new_card_and_as_file_sends_a_document(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        await make_video(tg, photo_bytes)
        video = tg.videos(USER)[0]
        labels = {b["text"]: b["callback_data"] for b in video.buttons}
        assert set(labels) == {"↻ Again", "➕ Extend", "🎵 Add music", "📎 As file"}
        tg.press_button(USER, video.message_id, labels["📎 As file"])
        await tg.wait_for(lambda: [m for m in tg.messages(USER) if m.kind == "document"])
        doc = next(m for m in tg.messages(USER) if m.kind == "document")
        assert doc.file is not None and doc.file.sha256 == video.file.sha256  # the same bytes
        tg.press_button(USER, video.message_id, labels["↻ Again"])
        await tg.wait_for(
            lambda: plain(tg).count("This costs") == 1
        )  # the first card is now the status


async def test_credits_are_quoted_spent_and_run_out_with_the_reset_time_first(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path, daily_credits=15)) as app:
        tg.user_message(USER, text="/credits")
        await tg.wait_for(lambda: "15</b> of 15" in last_html(tg))
        await make_video(tg, photo_bytes)
        tg.user_message(USER, text="/credits")
        await tg.wait_for(lambda: "5</b> of 15" in last_html(tg))
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom out")
        card_id = await reply_to(tg, msg)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: last_text(tg).startswith("Your credits reset at 00:00 UTC — in "))
        job = await services_of(app).jobs.by_card(USER, card_id)
        assert job is not None and job.state == JobState.DRAFT


async def test_allowance_resets_at_midnight_in_the_operators_time_zone(tmp_path: Path) -> None:
    zone = ZoneInfo("Europe/Berlin")
    now = [datetime(2026, 3, 28, 23, 50, tzinfo=zone).timestamp()]  # the night before DST
    db = SqliteDatabase(tmp_path / "c.db")
    await db.open()
    credits = Credits(
        LedgerRepository(db, lambda: now[0]),
        lambda: now[0],
        daily=500,
        zone=zone,
        admins=frozenset({7}),
    )
    jobs = JobRepository(db, lambda: now[0])
    job, _ = await jobs.create(
        Job(
            id=0,
            user_id=1,
            chat_id=1,
            kind=JobKind.ANIMATE,
            state=JobState.DRAFT,
            provider="local",
            model="studio-motion",
            cost=490,
        )
    )
    assert await jobs.transition(
        job.id, JobState.DRAFT, JobState.QUEUED, reserve=credits.reservation(job)
    )
    path = [
        JobState.SUBMITTING,
        JobState.RUNNING,
        JobState.DOWNLOADING,
        JobState.DELIVERING,
    ]
    for src, dst in pairwise([JobState.QUEUED, *path]):
        assert await jobs.transition(job.id, src, dst)
    assert await jobs.transition(job.id, JobState.DELIVERING, JobState.DELIVERED, settle="keep")
    allowance = await credits.allowance(1)
    assert allowance.available == 10
    assert datetime.fromtimestamp(allowance.resets_at, zone) == datetime(
        2026, 3, 29, 0, 0, tzinfo=zone
    )
    now[0] = datetime(2026, 3, 29, 0, 10, tzinfo=zone).timestamp()
    assert (await credits.allowance(1)).available == 500
    assert (await credits.allowance(7)).unlimited  # admins
    assert await credits.ledger.entries(job.id) == [("reserve", 490), ("keep", 490)]
    await db.close()


async def test_just_do_it_skips_the_card_and_is_not_sent_as_prompt(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        tg.user_message(USER, photo=photo_bytes, caption="zoom out, just do it")
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        assert "This costs" not in plain(tg)
        (job,) = await services_of(app).jobs.for_user(USER, list(JobState))
        assert job.prompt == "zoom out" and job.params["motion"] == "zoom_out"


async def test_skip_confirmation_setting_goes_straight_to_submit(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        tg.user_message(USER, text="/settings")
        await tg.wait_for(lambda: "Settings" in last_text(tg))
        tg.press_button(USER, tg.last_message(USER).message_id, "s:skip_confirm")
        await tg.wait_for(lambda: "Skip confirmation: on" in str(tg.last_message(USER).buttons))
        tg.user_message(USER, photo=photo_bytes, caption="pan left")
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        assert "This costs" not in plain(tg)


async def test_a_busy_user_is_told_to_wait_or_cancel(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    settings = make_settings(tg, tmp_path, max_running_jobs_per_user=1, local_studio_height=720)
    async with running_bot(settings) as app:
        first = tg.user_message(USER, photo=photo_bytes, caption="zoom in 10 seconds")
        first_card = await reply_to(tg, first)
        second = tg.user_message(USER, photo=photo_bytes, caption="zoom out")
        second_card = await reply_to(tg, second)
        tg.press_button(USER, first_card, data_for(tg, USER, first_card, "go"))
        await tg.wait_for(lambda: "Submitted" in (tg.message(USER, first_card).text_plain or ""))
        query = tg.press_button(USER, second_card, data_for(tg, USER, second_card, "go"))
        await tg.wait_for(lambda: tg.callback_answers.get(query))
        await tg.wait_for(lambda: "Wait for one to finish, or /cancel" in plain(tg))
        job = await services_of(app).jobs.by_card(USER, second_card)
        assert job is not None and job.state == JobState.DRAFT
        assert await services_of(app).studio.credits.ledger.entries(job.id) == []


async def test_unsafe_prompts_are_refused_before_anything_is_fetched_or_spent(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        tg.user_message(USER, photo=photo_bytes, caption="make her naked")
        await tg.wait_for(lambda: "sexual content" in plain(tg))
        tg.user_message(USER, photo=photo_bytes, caption="a deepfake of Taylor Swift dancing")
        await tg.wait_for(lambda: "real, named people" in plain(tg))
        assert tg.calls_to("getFile") == []
        assert await services_of(app).jobs.count_by_state() == {}


async def test_special_characters_in_captions_never_break_a_message(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    caption = "<script>&amp; *bold* _it_ `code` [x](y) 🎬🔥 שלום " + "long " * 300
    async with running_bot(make_settings(tg, tmp_path)):
        msg = tg.user_message(USER, photo=photo_bytes, caption=caption[:1024])
        card_id = await reply_to(tg, msg)
        assert "<script>&amp;" in (tg.message(USER, card_id).text_plain or "")
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await delivered(tg, card_id)
        video = tg.videos(USER)[0]
        assert len(video.caption_plain or "") <= 1024 and "🎬🔥" in (video.caption_plain or "")


async def test_model_button_cycles_models_and_the_quote_follows(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    settings = make_settings(tg, tmp_path, muapi_api_key="k", muapi_base_url="http://127.0.0.1:9")
    async with running_bot(settings):
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
        card_id = await reply_to(tg, msg)
        assert "Kling 2.1 Pro" in (tg.message(USER, card_id).text_plain or "")
        titles = []
        for _ in range(5):
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "mdl"))
            before = len(tg.message(USER, card_id).history)
            await tg.wait_for(lambda b=before: len(tg.message(USER, card_id).history) > b)
            titles.append(tg.message(USER, card_id).text_plain or "")
        assert "Seedance 2.0" in titles[0] and "100 credits" in titles[0]
        assert "Veo 3.1 Fast" in titles[2] and "150 credits" in titles[2] and "8 s" in titles[2]
        assert "Hailuo 02" in titles[3] and "60 credits" in titles[3] and "6 s" in titles[3]


async def test_models_and_stats_and_who_may_use_the_bot(tg: FakeTelegram, tmp_path: Path) -> None:
    settings = make_settings(tg, tmp_path, admin_user_ids=[ADMIN], allowed_user_ids=[USER])
    async with running_bot(settings):
        tg.user_message(USER, text="/models")
        await tg.wait_for(lambda: "Studio motion" in plain(tg) and "✓" in plain(tg))
        tg.user_message(USER, text="/stats")
        await tg.wait_for(lambda: "don't know that command" in plain(tg))
        tg.user_message(ADMIN, text="/stats")
        await tg.wait_for(lambda: "Users:" in plain(tg, ADMIN))
        tg.user_message(OTHER_USER, text="/start")
        await tg.wait_for(lambda: "this bot is private" in plain(tg, OTHER_USER))
        assert "Hi" not in plain(tg, OTHER_USER)


async def test_send_as_file_setting_delivers_a_document(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        tg.user_message(USER, text="/settings")
        await tg.wait_for(lambda: "Settings" in last_text(tg))
        tg.press_button(USER, tg.last_message(USER).message_id, "s:as_file")
        await tg.wait_for(lambda: "Send as file: on" in str(tg.last_message(USER).buttons))
        await make_video(tg, photo_bytes)
        assert tg.videos(USER) == []
        docs = [m for m in tg.messages(USER) if m.kind == "document"]
        assert len(docs) == 1 and docs[0].file is not None and docs[0].file.size > 1000


async def test_a_preset_card_on_a_model_shows_the_prompt_that_will_be_sent(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    settings = make_settings(tg, tmp_path, muapi_api_key="k", muapi_base_url="http://127.0.0.1:9")
    async with running_bot(settings):
        ask_id = await reply_to(tg, tg.user_message(USER, photo=photo_bytes))
        tg.press_button(
            USER, ask_id, data_for(tg, USER, ask_id, "m").replace("zoom_in", "pan_left")
        )
        await tg.wait_for(
            lambda: "smooth camera pan to the left" in (tg.message(USER, ask_id).text_plain or "")
        )
