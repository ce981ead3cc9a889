"""Words in, video out: text-to-video on muapi and fal, with the prompt crafted on the card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.conversation.intents import asks_for_video, wants_fast
from services.model.jobs import JobKind, JobState
from tests.conftest import (
    FAL_KEY,
    MUAPI_KEY,
    USER,
    data_for,
    delivered_jobs,
    make_settings,
    reply_to,
    running_bot,
)
from tests.fakes.fal import FakeFal
from tests.fakes.llm import FakeLLM
from tests.fakes.muapi import FakeMuapi
from tests.fakes.telegram import FakeTelegram

LLM_KEY = "sk-llm-test-key-0123456789"
MUAPI_T2V = "kling-v2.5-turbo-pro-t2v"
FAL_T2V = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"


ASKS = [
    "make a video of a sunset over Miami",
    "Make me a video about my coffee shop, vertical",
    "a TikTok about my coffee shop",
    "can you create a video of a dragon over a castle?",
    "a clip of waves crashing on rocks",
    "сделай видео про лису в снегу",
    "Сними ролик о нашем кафе",
    "видео про космос, 10 секунд",
    "I want a video of my cat dancing",
    "make a short film about rain",
]
DOES_NOT_ASK = [
    "hello",
    "thanks, that was great!",
    "generate an image of a cat",
    "make a picture of a video game hero",
    "сгенерируй картинку с котом",
    "what can you do?",
    "make me a new video",
    "привет",
    "I saw a video of you yesterday",
    "what is a video about?",
    "nice video!",
    "хочу видео",
    "Video is not working",
    "Короткое видео не пришло",
    "I need help with my video from yesterday",
    "хочу видео вернуть деньги",
    "i want a film recommendation",
]


@pytest.mark.parametrize("words", ASKS)
def test_words_that_ask_for_a_video_are_recognised(words: str) -> None:
    assert asks_for_video(words)


@pytest.mark.parametrize("words", DOES_NOT_ASK)
def test_chat_and_image_requests_are_not_taken_for_a_video(words: str) -> None:
    assert not asks_for_video(words)


def test_draft_words_ask_for_the_fast_mode_and_ordinary_words_do_not() -> None:
    assert wants_fast("a quick draft of a cat") and wants_fast("черновик: кот на диване")
    assert not wants_fast("a fast car on a highway at night")
    assert not wants_fast("a draft horse in a field") and not wants_fast("previewing the sea")


def on_muapi(tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, **extra: Any) -> Any:
    return make_settings(
        tg,
        tmp_path,
        muapi_api_key=MUAPI_KEY,
        muapi_base_url=muapi.root,
        poll_interval_seconds=0.2,
        **extra,
    )


def card_text(tg: FakeTelegram, card_id: int) -> str:
    message = tg.message(USER, card_id)
    return (message.text_plain or "") if message else ""


def plain(tg: FakeTelegram) -> str:
    return "\n".join(m.text_plain or m.caption_plain or "" for m in tg.messages(USER))


async def test_words_get_a_card_with_a_crafted_prompt_and_the_users_words_can_go_instead(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    words = "make a video of a sunset over Miami for TikTok"
    async with running_bot(on_muapi(tg, muapi, tmp_path)) as app:
        card_id = await reply_to(tg, tg.user_message(USER, text=words))
        card = card_text(tg, card_id)
        assert "Video from your words" in card and "100 credits" in card
        assert "9:16" in card  # TikTok's shape
        crafted = card.split("Prompt: ")[1].split("\n")[0]
        assert "sunset" in crafted.lower() and crafted != words
        assert "tiktok" not in crafted.lower()  # the platform is for the bot, not the model
        assert muapi.submits == []  # nothing is spent before Generate

        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "own"))
        await tg.wait_for(lambda: f"Prompt: {words}" in card_text(tg, card_id))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=30)
        (job,) = await delivered_jobs(app, USER)
        ledger = await app.bot_data["services"].studio.credits.ledger.entries(job.id)
    (submit,) = muapi.accepted_submits()
    assert submit.endpoint == MUAPI_T2V
    assert submit.payload["prompt"] == words
    assert submit.payload["aspect_ratio"] == "9:16"
    assert not {"image_url", "images_list"} & set(submit.payload)
    assert job.kind == JobKind.TEXT and len(tg.videos(USER)) == 1
    assert ledger == [("reserve", 100), ("keep", 100)]


async def test_russian_words_on_fal_send_the_crafted_prompt_and_fal_types(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path
) -> None:
    settings = make_settings(
        tg,
        tmp_path,
        fal_key=FAL_KEY,
        fal_queue_url=fal.root,
        fal_rest_url=fal.root,
        poll_interval_seconds=0.2,
    )
    async with running_bot(settings):
        message = tg.user_message(
            USER, text="сделай видео про лису в снегу, 10 секунд", language_code="ru"
        )
        card_id = await reply_to(tg, message)
        card = card_text(tg, card_id)
        assert "Видео по описанию" in card and "10 с" in card
        crafted = card.split("Запрос: ")[1].split("\n")[0]
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=30)
    (submit,) = fal.accepted_submits()
    assert submit.endpoint == FAL_T2V
    assert submit.payload["duration"] == "10"  # fal's Kling takes the length as a string
    assert submit.payload["prompt"] == crafted
    assert "лису в снегу" in crafted.lower() and "10 секунд" not in crafted


async def test_an_unavailable_text_model_falls_back_to_the_next_and_charges_the_quote(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    muapi.scenario.submit_errors = [(404, {"detail": "Model not found"}, {})]
    async with running_bot(on_muapi(tg, muapi, tmp_path)) as app:
        card_id = await reply_to(tg, tg.user_message(USER, text="a video of a fox in the snow"))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=30)
        (job,) = await delivered_jobs(app, USER)
        ledger = await app.bot_data["services"].studio.credits.ledger.entries(job.id)
    assert "unavailable" in plain(tg)
    assert muapi.submits[0].endpoint == MUAPI_T2V
    (accepted,) = muapi.accepted_submits()
    assert accepted.endpoint != MUAPI_T2V and "t2v" in accepted.endpoint
    assert ledger == [("reserve", 100), ("keep", 100)]


@pytest.mark.parametrize(
    ("words", "endpoint"),
    [
        ("a quick draft video of a cat on a sofa", "minimax-hailuo-02-standard-t2v"),
        ("a video of a cat on a sofa", MUAPI_T2V),
    ],
)
async def test_draft_words_pick_the_fast_mode(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, words: str, endpoint: str
) -> None:
    async with running_bot(on_muapi(tg, muapi, tmp_path)):
        card_id = await reply_to(tg, tg.user_message(USER, text=words))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: muapi.accepted_submits(), timeout=20)
    assert muapi.accepted_submits()[0].endpoint == endpoint


async def test_just_do_it_skips_the_card(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    async with running_bot(on_muapi(tg, muapi, tmp_path)):
        tg.user_message(USER, text="make a video of waves on a beach, just do it")
        await tg.wait_for(lambda: tg.videos(USER), timeout=30)
    assert len(muapi.accepted_submits()) == 1
    assert "just do it" not in muapi.accepted_submits()[0].payload["prompt"]


async def test_the_local_studio_says_what_a_key_would_add_and_spends_nothing(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        tg.user_message(USER, text="make a video of a sunset over Miami")
        await tg.wait_for(lambda: "needs a video model" in plain(tg))
        counts = await app.bot_data["services"].jobs.count_by_state()
    assert sum(counts.values()) == 0
    assert "send a photo" in plain(tg)


@pytest.mark.parametrize("words", ["hello there", "generate an image of a cat", "thanks!"])
async def test_words_that_do_not_ask_for_a_video_get_the_hint(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, words: str
) -> None:
    async with running_bot(on_muapi(tg, muapi, tmp_path)) as app:
        tg.user_message(USER, text=words)
        await tg.wait_for(lambda: "Send me a photo" in plain(tg))
        counts = await app.bot_data["services"].jobs.count_by_state()
    assert sum(counts.values()) == 0 and muapi.submits == []


async def test_a_configured_llm_writes_the_prompt_and_never_sees_the_keys(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    async with FakeLLM(api_key=LLM_KEY) as llm:
        llm.reply = json.dumps({"prompt": "A red fox trots through deep snow, low tracking shot."})
        settings = on_muapi(
            tg,
            muapi,
            tmp_path,
            llm_base_url=f"{llm.root}/v1",
            llm_api_key=LLM_KEY,
            llm_model="test-model",
        )
        async with running_bot(settings):
            card_id = await reply_to(tg, tg.user_message(USER, text="a video of a fox in snow"))
            assert "low tracking shot" in card_text(tg, card_id)
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
            await tg.wait_for(lambda: tg.videos(USER), timeout=30)
        (request,) = llm.requests
    sent = json.dumps(request.body) + json.dumps(request.headers)
    assert MUAPI_KEY not in sent and "7000000001" not in sent  # only the LLM's own key goes
    assert request.headers.get("authorization") == f"Bearer {LLM_KEY}"
    assert "fox" in request.user_message()
    assert muapi.accepted_submits()[0].payload["prompt"].startswith("A red fox trots")


async def test_the_card_keeps_working_after_a_restart(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    # The card's buttons work after a restart: the prompts live in the job row.
    settings = on_muapi(tg, muapi, tmp_path)
    async with running_bot(settings):
        card_id = await reply_to(tg, tg.user_message(USER, text="a video of a lighthouse at night"))
    async with running_bot(settings) as app:
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "own"))
        mine = "Prompt: a video of a lighthouse at night"
        await tg.wait_for(lambda: mine in card_text(tg, card_id))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=30)
        (job,) = await delivered_jobs(app, USER)
    assert job.state == JobState.DELIVERED
    assert muapi.accepted_submits()[0].payload["prompt"] == "a video of a lighthouse at night"


async def test_the_skip_setting_still_shows_the_card_for_words(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    # Words are read by tables: only the message's own "just do it" may start a paid run unseen.
    async with running_bot(on_muapi(tg, muapi, tmp_path)):
        tg.user_message(USER, text="/settings")
        await tg.wait_for(lambda: "Settings" in plain(tg))
        tg.press_button(USER, tg.last_message(USER).message_id, "s:skip_confirm")
        await tg.wait_for(lambda: "Skip confirmation: on" in str(tg.last_message(USER).buttons))
        card_id = await reply_to(tg, tg.user_message(USER, text="a video of rain on a window"))
        assert "This costs" in card_text(tg, card_id)
    assert muapi.submits == []


async def test_a_photo_waiting_for_words_does_not_take_a_request_for_a_new_video(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(on_muapi(tg, muapi, tmp_path)):
        ask_id = await reply_to(tg, tg.user_message(USER, photo=photo_bytes))  # no caption
        card_id = await reply_to(tg, tg.user_message(USER, text="make a video of a red balloon"))
        assert "Video from your words" in card_text(tg, card_id)
        # A reply to the photo's question still describes the photo.
        tg.user_message(USER, text="slow zoom out", reply_to_message_id=ask_id)
        await tg.wait_for(lambda: "Animate photo" in plain(tg))


def test_blank_llm_lines_in_env_mean_no_llm(tmp_path: Path) -> None:
    from bot.settings import Settings

    settings = Settings(telegram_bot_token="1:abc", llm_base_url="", llm_model=" ", llm_api_key="")  # type: ignore[call-arg]
    assert settings.llm_base_url is None and settings.llm_model is None
    assert settings.llm_api_key is None
