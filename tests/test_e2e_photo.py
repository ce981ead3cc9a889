"""Photo in, video out: the whole journey through the real polling loop and real HTTP."""

from __future__ import annotations

from pathlib import Path

from services.model.jobs import JobState
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


def texts(tg: FakeTelegram, chat_id: int = USER) -> list[str]:
    return [m.text or m.caption or "" for m in tg.messages(chat_id)]


async def test_photo_with_caption_is_animated_and_delivered_once(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    settings = make_settings(tg, tmp_path)
    async with running_bot(settings) as app:
        msg = tg.user_message(USER, photo=photo_bytes, caption="slow zoom out, vertical for TikTok")
        card_id = await reply_to(tg, msg)
        card = tg.message(USER, card_id)
        assert card is not None and card.text is not None
        assert [c["command"] for c in tg.commands] == [
            "start",
            "help",
            "status",
            "history",
            "credits",
            "models",
            "settings",
            "cancel",
        ]
        assert "10 credits" in card.text_plain and "9:16" in card.text_plain
        assert "zoom out" in card.text_plain

        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        video = await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        assert len(video) == 1
        sent = video[0]
        # 9:16 at the test studio's 144p (short side), five seconds, streamable.
        assert (sent.width, sent.height) == (144, 256)
        assert sent.duration == 5
        assert sent.supports_streaming is True
        assert sent.file is not None and sent.file.size > 1000
        assert "Studio motion" in (sent.caption_plain or "")

        status = tg.message(USER, card_id)
        assert status is not None
        await tg.wait_for(lambda: "Done" in (tg.message(USER, card_id).text_plain or ""))
        assert len(status.history) >= 2  # card → submitted → progress/done: one message, edited

        services = services_of(app)
        job = await services.jobs.by_card(USER, card_id)
        assert job is not None and job.state == JobState.DELIVERED
        assert await services.studio.credits.ledger.entries(job.id) == [
            ("reserve", 10),
            ("keep", 10),
        ]
        # Work files of a delivered job are removed.
        assert not (settings.data_dir / "jobs" / str(job.id)).exists()
    assert len(tg.videos(USER)) == 1


async def test_photo_without_caption_offers_motions_and_a_reply_sets_the_prompt(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        msg = tg.user_message(USER, photo=photo_bytes)
        ask_id = await reply_to(tg, msg)
        ask = tg.message(USER, ask_id)
        assert ask is not None
        labels = [b["text"] for b in ask.buttons]
        assert "zoom in" in labels and "pan left" in labels

        # Replying with words turns the photo into a card with that prompt.
        tg.user_message(USER, text="pan to the right, square", reply_to_message_id=ask_id)
        await tg.wait_for(lambda: any("pan right" in t and "1:1" in t for t in texts(tg)))

        # Pressing a preset on the same photo works too, and edits the message into a card.
        tg.press_button(USER, ask_id, data_for(tg, USER, ask_id, "m"))
        await tg.wait_for(lambda: "credits" in (tg.message(USER, ask_id).text_plain or ""))


async def test_card_buttons_change_duration_and_aspect_and_cost_follows(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
        card_id = await reply_to(tg, msg)
        assert "16:9" in tg.message(USER, card_id).text_plain  # landscape photo → 16:9
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "dur"))
        await tg.wait_for(lambda: "10 s" in (tg.message(USER, card_id).text_plain or ""))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "asp"))
        await tg.wait_for(lambda: "9:16" in (tg.message(USER, card_id).text_plain or ""))


async def test_another_users_press_is_refused_and_starts_nothing(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
        card_id = await reply_to(tg, msg)
        go = data_for(tg, USER, card_id, "go")
        query = tg.press_button(OTHER_USER, card_id, go, chat_id=USER)
        answer = await tg.wait_for(lambda: tg.callback_answers.get(query))
        assert answer.answered and "someone else" in (answer.text or "")
        job = await services_of(app).jobs.by_card(USER, card_id)
        assert job is not None and job.state == JobState.DRAFT


async def test_double_press_on_generate_submits_once(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    settings = make_settings(tg, tmp_path)
    async with running_bot(settings) as app:
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
        card_id = await reply_to(tg, msg)
        go = data_for(tg, USER, card_id, "go")
        first = tg.press_button(USER, card_id, go)
        second = tg.press_button(USER, card_id, go, strict=False)
        await tg.wait_for(
            lambda: "Done" in (tg.message(USER, card_id).text_plain or ""), timeout=60
        )
        answer = await tg.wait_for(lambda: tg.callback_answers.get(second))
        assert answer.answered and "Already" in (answer.text or "")
        assert tg.callback_answers[first].answered
        job = await services_of(app).jobs.by_card(USER, card_id)
        assert job is not None and job.attempts == 1
        entries = await services_of(app).studio.credits.ledger.entries(job.id)
        assert entries == [("reserve", 10), ("keep", 10)]
    assert len(tg.videos(USER)) == 1


async def test_duplicated_update_and_duplicated_message_make_one_job(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
        await reply_to(tg, msg)
        tg.redeliver(max(tg.state.history))
        # The same message again under a new update id (as after a webhook retry).
        tg.push_update({"message": msg})
        tg.user_message(USER, text="/help")
        await tg.wait_for(lambda: any("How it works" in t for t in texts(tg)))
        cards = [t for t in texts(tg) if "This costs" in t]
        assert len(cards) == 1
        counts = await services_of(app).jobs.count_by_state()
        assert sum(counts.values()) == 1


async def test_cancel_while_running_refunds_and_sends_nothing(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    # A long render at a larger size gives /cancel time to land mid-job.
    settings = make_settings(tg, tmp_path, local_studio_height=720)
    async with running_bot(settings) as app:
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in 10 seconds")
        card_id = await reply_to(tg, msg)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: "Rendering" in (tg.message(USER, card_id).text_plain or ""))
        services = services_of(app)
        job = await services.jobs.by_card(USER, card_id)
        assert job is not None
        tg.user_message(USER, text="/cancel")
        await tg.wait_for(lambda: "Canceled" in (tg.message(USER, card_id).text_plain or ""))
        ended = await services.jobs.get(job.id)
        assert ended is not None and ended.state == JobState.CANCELED
        assert await services.studio.credits.ledger.entries(job.id) == [
            ("reserve", 10),
            ("refund", 10),
        ]
    assert tg.videos(USER) == []


async def test_oversize_and_unreadable_images_get_a_clear_answer_and_no_job(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        big = b"\xff\xd8\xff" + b"\0" * 21_000_000
        tg.user_message(USER, photo=big, photo_size=(4000, 3000))
        await tg.wait_for(lambda: any("21.0 MB" in t and "20.0 MB" in t for t in texts(tg)))
        tg.user_message(
            USER,
            document=b"this is not an image at all",
            document_name="cat.jpg",
            mime_type="image/jpeg",
        )
        await tg.wait_for(lambda: any("couldn't read this image" in t for t in texts(tg)))
        tg.user_message(
            USER, document=b"%PDF-1.4", document_name="a.pdf", mime_type="application/pdf"
        )
        await tg.wait_for(lambda: any("I work with photos" in t for t in texts(tg)))
        assert await services_of(app).jobs.count_by_state() == {}
