"""Stories from words: a plan card, edits by reply, shots as jobs of their own on the fake
providers (which check every payload against the model's schema), fallbacks, credits per shot."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from services.conversation.intents import asked_seconds, asks_for_story
from services.conversation.story_plan import parse_shot_edit, subject_words
from services.media.ffmpeg import probe
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
    services_of,
)
from tests.fakes.fal import FakeFal
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram

MUAPI_T2V = "kling-v2.5-turbo-pro-t2v"
FAL_T2V = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"


@pytest.mark.parametrize(
    ("words", "shots", "continuity"),
    [
        ("a 3-shot story about a fox in the snow", 3, False),
        ("a story video about my coffee shop", None, False),
        ("сними историю про кота", None, False),
        ("сними видео из 4 сцен про море", 4, False),
        ("a continuous 3 shot video of a runner at dawn", 3, True),
        ("a short film about rain", None, False),
    ],
)
def test_story_words_are_recognised(words: str, shots: int | None, continuity: bool) -> None:
    ask = asks_for_story(words)
    assert ask is not None and (ask.shots, ask.continuity) == (shots, continuity)


@pytest.mark.parametrize(
    "words",
    [
        "I took 3 shots of tequila",
        "make an instagram story of my cafe",
        "a video for stories about cats",
        "у меня такая история",
        "two parts of the plan are done",
    ],
)
def test_chat_and_platform_words_are_not_a_story(words: str) -> None:
    assert asks_for_story(words) is None


def test_plan_helpers_read_the_words() -> None:
    assert subject_words("a 3-shot story about a fox in the snow") == (
        "a video about a fox in the snow"
    )
    assert parse_shot_edit("shot 2: make it night") == (1, "night")
    assert parse_shot_edit("Кадр 3 — пусть будет дождь") == (2, "дождь")
    assert parse_shot_edit("what a nice plan") is None
    assert asked_seconds("a 30 second video of waves") == 30
    assert asked_seconds("видео на 2 минуты") == 120


def on_muapi(tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, **extra: Any) -> Any:
    return make_settings(tg, tmp_path, muapi_api_key=MUAPI_KEY, muapi_base_url=muapi.root, **extra)


def on_fal(tg: FakeTelegram, fal: FakeFal, tmp_path: Path) -> Any:
    return make_settings(
        tg, tmp_path, fal_key=FAL_KEY, fal_queue_url=fal.root, fal_rest_url=fal.root
    )


def card_text(tg: FakeTelegram, card_id: int) -> str:
    message = tg.message(USER, card_id)
    return (message.text_plain or "") if message else ""


def plain(tg: FakeTelegram) -> str:
    return "\n".join(m.text_plain or m.caption_plain or "" for m in tg.messages(USER))


async def ledger_of(app: Any, story_id: int) -> dict[int, list[tuple[str, int]]]:
    services = services_of(app)
    return {
        shot.id: await services.studio.credits.ledger.entries(shot.id)
        for shot in await services.jobs.shots(story_id)
    }


async def test_a_three_shot_story_is_planned_edited_made_and_joined(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    # The second shot to reach the provider fails; it falls back to the next model once.
    # Shots take a few polls, so the status shows them shot by shot (its edits are optional and
    # wait for the chat's send budget, which the card's edits have just used).
    muapi.scenario = Scenario(output=muapi.scenario.output, polls_before_done=8)
    muapi.next_scenarios = [
        Scenario(output=muapi.scenario.output, polls_before_done=8),
        Scenario(fail_with="Internal error", polls_before_done=2),
    ]
    async with running_bot(on_muapi(tg, muapi, tmp_path)) as app:
        words = "a 3-shot story about a fox in the snow"
        card_id = await reply_to(tg, tg.user_message(USER, text=words))
        card = card_text(tg, card_id)
        assert "3 shots · 15 s" in card and "300 credits" in card
        assert "1. Opening wide establishing shot. A fox in the snow" in card
        assert "3. Closing shot" in card
        assert muapi.submits == []  # nothing is spent on a plan

        reply = tg.user_message(USER, text="shot 2: make it night", reply_to_message_id=card_id)
        await tg.wait_for(lambda: "2. Night. Medium shot" in card_text(tg, card_id))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "more"))
        await tg.wait_for(lambda: "4 shots · 20 s" in card_text(tg, card_id))
        assert "400 credits" in card_text(tg, card_id)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "less"))
        await tg.wait_for(lambda: "3 shots · 15 s" in card_text(tg, card_id))
        assert "2. Night. Medium shot" in card_text(tg, card_id)  # the edit stays
        assert reply["message_id"] > card_id

        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        [story] = await delivered_jobs(app, USER)
        shots = await services_of(app).jobs.shots(story.id)
        ledger = await ledger_of(app, story.id)
        status = tg.message(USER, card_id)
        assert status is not None
        assert any("Shots: ✅" in (r.text or "") for r in status.history), [
            r.text for r in status.history
        ]

    assert story.kind == JobKind.STORY and len(tg.videos(USER)) == 1
    accepted = muapi.accepted_submits()
    assert len(accepted) == 4
    assert [s.endpoint for s in accepted[:3]] == [MUAPI_T2V] * 3
    assert accepted[3].endpoint != MUAPI_T2V and "t2v" in accepted[3].endpoint
    assert "shot 2" not in plain(tg).lower() or "trying it with" in plain(tg)
    prompts = sorted(str(s.payload["prompt"]) for s in accepted[:3])
    assert any(p.startswith("Night. Medium shot") for p in prompts)
    # One failed attempt, refunded; three shots kept with the film: 300 credits, as quoted.
    assert sorted(s.state for s in shots).count(JobState.DELIVERED) == 3
    assert sorted(ledger.values()) == sorted(
        [[("reserve", 100), ("keep", 100)]] * 3 + [[("reserve", 100), ("refund", 100)]]
    )
    sent = tg.videos(USER)[0]
    assert sent.file is not None
    film = tmp_path / "film.mp4"
    film.write_bytes(sent.file.content)
    info = await probe(film)
    assert info.duration == pytest.approx(3 * 2.0 - 2 * 0.5, abs=0.25)  # crossfaded shots


async def test_a_shot_that_fails_twice_is_refunded_and_the_story_can_go_on_without_it(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path
) -> None:
    good = Scenario(output=fal.scenario.output, polls_before_done=1)
    bad = Scenario(fail_with="Internal error", polls_before_done=1)
    fal.next_scenarios = [good, bad, good, bad]  # the fourth is the failed shot's fallback
    async with running_bot(on_fal(tg, fal, tmp_path)) as app:
        card_id = await reply_to(tg, tg.user_message(USER, text="a story video about a lighthouse"))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        offer = await tg.wait_for(
            lambda: next(
                (m for m in tg.messages(USER) if "could not be made" in (m.text_plain or "")),
                None,
            ),
            timeout=60,
        )
        assert "credits are back" in (offer.text_plain or "")
        assert tg.videos(USER) == []
        tg.press_button(USER, offer.message_id, data_for(tg, USER, offer.message_id, "skip"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        [story] = await delivered_jobs(app, USER)
        ledger = await ledger_of(app, story.id)
    kept = [entries for entries in ledger.values() if ("keep", 100) in entries]
    refunded = [entries for entries in ledger.values() if ("refund", 100) in entries]
    assert len(kept) == 2 and len(refunded) == 2  # 200 credits for a film of two shots
    assert len(tg.videos(USER)) == 1
    assert all(s.endpoint.startswith("fal-ai/") for s in fal.accepted_submits())


async def test_a_long_request_becomes_a_story_of_the_longest_shots(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    async with running_bot(on_muapi(tg, muapi, tmp_path)):
        card_id = await reply_to(tg, tg.user_message(USER, text="make a 30 second video of waves"))
        card = card_text(tg, card_id)
    assert "3 shots · 30 s" in card and "540 credits" in card  # three 10 s shots of 180


async def test_continuity_chains_each_shot_from_the_last_frame_of_the_one_before(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    async with running_bot(on_muapi(tg, muapi, tmp_path)):
        words = "a continuous 3 shot video of a runner at dawn, just do it"
        tg.user_message(USER, text=words)
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
    accepted = muapi.accepted_submits()
    assert len(accepted) == 3
    assert accepted[0].endpoint == MUAPI_T2V
    for submit in accepted[1:]:
        # Image to video from a picture we uploaded: the previous shot's last frame.
        image = submit.payload.get("image_url") or (submit.payload.get("images_list") or [None])[0]
        assert image and str(image).startswith(muapi.root)
        assert muapi.file_content(str(image))[:3] == b"\xff\xd8\xff"  # a JPEG
    # Shot by shot: each submit after the first follows the download of the shot before it.
    submits = [r for r in muapi.requests_to("/api/v1/", "POST") if "upload" not in r.path]
    downloads = muapi.requests_to("/files/", "GET")
    assert len(submits) == 3 and len(downloads) >= 2
    assert submits[1].at > downloads[0].at and submits[2].at > downloads[1].at


async def test_the_local_studio_says_a_story_from_words_needs_a_key_and_offers_albums(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        message = tg.user_message(USER, text="a 3-shot story about a fox in the snow")
        answer = await reply_to(tg, message)
        assert await services_of(app).jobs.for_user(USER, list(JobState)) == []
    body = card_text(tg, answer)
    assert "needs a video model" in body and "album" in body


async def test_canceling_a_story_stops_its_shots_and_refunds_them(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    muapi.scenario = Scenario(output=muapi.scenario.output, polls_before_done=50)
    async with running_bot(on_muapi(tg, muapi, tmp_path)) as app:
        card_id = await reply_to(tg, tg.user_message(USER, text="a 2-shot story about a kite"))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: len(muapi.accepted_submits()) == 2, timeout=30)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "x"))
        await tg.wait_for(lambda: "Canceled" in card_text(tg, card_id), timeout=10)
        jobs = services_of(app).jobs
        [story] = await jobs.for_user(USER, [JobState.CANCELED])
        shots = await jobs.shots(story.id)
        ledger = await ledger_of(app, story.id)
    assert {s.state for s in shots} == {JobState.CANCELED}
    assert all(entries == [("reserve", 100), ("refund", 100)] for entries in ledger.values())
    assert tg.videos(USER) == []


async def test_a_failed_shot_tried_again_completes_the_story(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path
) -> None:
    good = Scenario(output=fal.scenario.output, polls_before_done=1)
    bad = Scenario(fail_with="Internal error", polls_before_done=1)
    fal.next_scenarios = [good, bad, bad]  # a 2-shot story: one shot fails, its fallback too
    async with running_bot(on_fal(tg, fal, tmp_path)) as app:
        card_id = await reply_to(tg, tg.user_message(USER, text="a 2-shot story about a kite"))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        offer = await tg.wait_for(
            lambda: next(
                (m for m in tg.messages(USER) if "could not be made" in (m.text_plain or "")),
                None,
            ),
            timeout=60,
        )
        retry = data_for(tg, USER, offer.message_id, "retry")
        tg.press_button(USER, offer.message_id, retry)
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        # The offer's buttons are spent: a second press changes nothing.
        query = tg.press_button(USER, offer.message_id, retry)
        answer = await tg.wait_for(lambda: tg.callback_answers.get(query))
        [story] = await delivered_jobs(app, USER)
        shots = await services_of(app).jobs.shots(story.id)
        ledger = await ledger_of(app, story.id)
    assert "expired" in (answer.text or "")
    assert len(tg.videos(USER)) == 1 and len(fal.accepted_submits()) == 4
    assert [s.state for s in shots].count(JobState.DELIVERED) == 2
    assert sorted(ledger.values()) == sorted(
        [[("reserve", 100), ("keep", 100)]] * 2 + [[("reserve", 100), ("refund", 100)]] * 2
    )


async def test_an_album_with_a_provider_key_animates_each_photo_on_its_model(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes, portrait_bytes: bytes
) -> None:
    async with running_bot(on_muapi(tg, muapi, tmp_path)) as app:
        sent = tg.user_album(USER, [("photo", photo_bytes), ("photo", portrait_bytes)])
        card_id = await reply_to(tg, sent[0])
        assert "2 shots" in card_text(tg, card_id) and "200 credits" in card_text(tg, card_id)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        [story] = await delivered_jobs(app, USER)
        ledger = await ledger_of(app, story.id)
    accepted = muapi.accepted_submits()
    assert len(accepted) == 2 and all("i2v" in s.endpoint for s in accepted)
    assert sorted(u.sha256 for u in muapi.uploads) == sorted(
        hashlib.sha256(p).hexdigest() for p in (photo_bytes, portrait_bytes)
    )
    assert sorted(ledger.values()) == [[("reserve", 100), ("keep", 100)]] * 2


async def test_continuity_without_its_first_shot_films_the_next_from_words(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    bad = Scenario(fail_with="Internal error", polls_before_done=1)
    muapi.next_scenarios = [bad, bad]  # the first shot, then its fallback
    async with running_bot(on_muapi(tg, muapi, tmp_path)):
        words = "a continuous 3 shot video of a runner at dawn, just do it"
        tg.user_message(USER, text=words)
        offer = await tg.wait_for(
            lambda: next(
                (m for m in tg.messages(USER) if "could not be made" in (m.text_plain or "")),
                None,
            ),
            timeout=60,
        )
        tg.press_button(USER, offer.message_id, data_for(tg, USER, offer.message_id, "skip"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
    accepted = muapi.accepted_submits()
    # Shot 1 twice (it failed, then its fallback), then shot 2 from words, shot 3 from its frame.
    assert len(accepted) == 4
    assert "t2v" in accepted[2].endpoint
    third = accepted[3].payload
    assert "i2v" in accepted[3].endpoint and (third.get("image_url") or third.get("images_list"))


async def test_a_story_sends_a_few_shots_at_a_time(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path
) -> None:
    muapi.scenario = Scenario(output=muapi.scenario.output, polls_before_done=10)
    async with running_bot(on_muapi(tg, muapi, tmp_path)):
        tg.user_message(USER, text="a 5-shot story about the sea, just do it")
        await tg.wait_for(lambda: len(muapi.accepted_submits()) >= 3, timeout=30)
        await asyncio.sleep(1.0)
        at_once = len(muapi.accepted_submits())
        await tg.wait_for(lambda: tg.videos(USER), timeout=90)
    assert at_once == 3  # the other two waited for a turn
    assert len(muapi.accepted_submits()) == 5
