"""Stories from albums: photos become shots with camera moves, clips are joined as they are,
on the local studio without a key, through the real polling loop and a real ffmpeg."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from services.media.ffmpeg import probe
from services.model.jobs import JobKind, JobState
from tests.conftest import (
    OTHER_USER,
    USER,
    buttons_of,
    data_for,
    delivered_jobs,
    make_settings,
    reply_to,
    running_bot,
    services_of,
)
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_photo, make_video


@pytest.fixture(scope="module")
def album_photos(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("album")
    sizes = [(640, 480), (800, 600), (480, 640)]
    return [make_photo(folder / f"p{n}.jpg", w, h).read_bytes() for n, (w, h) in enumerate(sizes)]


@pytest.fixture(scope="module")
def album_clips(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("clips")
    return [
        make_video(folder / "a.mp4", seconds=2.0, audio=True).read_bytes(),
        make_video(folder / "b.mp4", seconds=3.0, width=480, height=360).read_bytes(),
    ]


async def video_facts(tg: FakeTelegram, tmp_path: Path, index: int = 0) -> Any:
    """ffprobe's view of a video the bot sent."""
    sent = tg.videos(USER)[index]
    assert sent.file is not None and not sent.file.truncated
    path = tmp_path / f"sent-{index}.mp4"
    path.write_bytes(sent.file.content)
    return await probe(path)


async def test_a_photo_album_becomes_one_story_with_camera_moves_and_music(
    tg: FakeTelegram, tmp_path: Path, album_photos: list[bytes]
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        sent = tg.user_album(USER, [("photo", p) for p in album_photos], caption="our trip")
        card_id = await reply_to(tg, sent[0])
        card = tg.message(USER, card_id)
        assert card is not None
        body = card.text_plain or ""
        # One card for the whole album: three shots, each its own move, crossfades and music.
        assert "3 shots" in body and "crossfades" in body and "music:" in body
        assert "zoom in" in body and "pan right" in body and "zoom out" in body
        assert "0 credits" in body  # the local studio makes stories for free
        assert len([m for m in tg.messages(USER) if m.buttons]) == 1

        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=90)
        [story] = await delivered_jobs(app, USER)
        assert story.kind == JobKind.STORY
        shots = await services_of(app).jobs.shots(story.id)
        assert [(s.step, s.state, s.kind) for s in shots] == [
            (0, JobState.DELIVERED, JobKind.ANIMATE),
            (1, JobState.DELIVERED, JobKind.ANIMATE),
            (2, JobState.DELIVERED, JobKind.ANIMATE),
        ]
        # Shots are part of the story: /status and the per-person limit see one job.
        assert [j.id for j in await services_of(app).jobs.for_user(USER, [JobState.DELIVERED])] == [
            story.id
        ]
        status = tg.message(USER, card_id)
        assert status is not None
        assert any("✅" in (r.text or "") for r in status.history)
        await tg.wait_for(lambda: "Done" in (tg.message(USER, card_id).text_plain or ""))
        assert "Story" in (tg.videos(USER)[0].caption_plain or "")

    assert len(tg.videos(USER)) == 1
    info = await video_facts(tg, tmp_path)
    # Three 5 s shots joined by two 0.5 s crossfades, with the generated soundtrack.
    assert info.duration == pytest.approx(14.0, abs=0.3)
    assert info.has_audio


async def test_clips_sent_as_an_album_with_stitch_words_are_joined_as_they_are(
    tg: FakeTelegram, tmp_path: Path, album_clips: list[bytes]
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        tg.user_album(
            USER, [("video", c) for c in album_clips], caption="stitch these, hard cut, just do it"
        )
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        [story] = await delivered_jobs(app, USER)
        # Nothing to make: the clips are the shots, joined here.
        assert await services_of(app).jobs.shots(story.id) == []
    info = await video_facts(tg, tmp_path)
    assert info.duration == pytest.approx(5.0, abs=0.25)  # 2 s + 3 s, cut
    assert (info.width, info.height) == (320, 240)  # the first clip's shape
    assert info.has_audio  # the first clip's own sound; no music was asked for


async def test_an_album_and_a_single_photo_sent_in_between_stay_apart(
    tg: FakeTelegram, tmp_path: Path, album_photos: list[bytes], photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        first = tg.user_message(USER, photo=album_photos[0], caption="weekend", media_group_id="77")
        single = tg.user_message(USER, photo=photo_bytes, caption="zoom out")
        tg.user_message(USER, photo=album_photos[1], media_group_id="77")
        single_card = await reply_to(tg, single)
        story_card = await reply_to(tg, first)
        assert "Animate photo" in (tg.message(USER, single_card).text_plain or "")
        story_text = tg.message(USER, story_card).text_plain or ""
        assert "2 shots" in story_text
        drafts = await services_of(app).jobs.for_user(USER, [JobState.DRAFT])
        assert sorted(j.kind for j in drafts) == [JobKind.ANIMATE, JobKind.STORY]


async def test_an_album_still_arriving_when_the_bot_stops_becomes_a_story_after_restart(
    tg: FakeTelegram, tmp_path: Path, album_photos: list[bytes]
) -> None:
    settings = make_settings(tg, tmp_path)
    async with running_bot(settings) as app:
        sent = tg.user_album(USER, [("photo", p) for p in album_photos[:2]], caption="no music")
        # Both items are kept before the album has gone quiet; then the bot stops.
        albums = services_of(app).studio.storyboard.albums
        for _ in range(500):
            if all([await albums.has(USER, m["message_id"]) for m in sent]):
                break
            await asyncio.sleep(0.02)
    assert not any(m.buttons for m in tg.messages(USER))
    async with running_bot(settings):
        card_id = await reply_to(tg, sent[0])
        body = tg.message(USER, card_id).text_plain or ""
        assert "2 shots" in body and "no music" in body


async def test_the_card_switches_cuts_and_music(
    tg: FakeTelegram, tmp_path: Path, album_photos: list[bytes]
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        sent = tg.user_album(USER, [("photo", p) for p in album_photos[:2]])
        card_id = await reply_to(tg, sent[0])
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "tr"))
        await tg.wait_for(lambda: "cuts" in (tg.message(USER, card_id).text_plain or ""))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "snd"))
        await tg.wait_for(lambda: "no music" in (tg.message(USER, card_id).text_plain or ""))
        labels = set(buttons_of(tg, USER, card_id))
        assert {"◐ Crossfades", "♪ Music"} <= labels


async def test_a_refused_album_is_told_and_holds_up_nobody_else(
    tg: FakeTelegram, tmp_path: Path, album_photos: list[bytes]
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        refused = tg.user_album(USER, [("photo", p) for p in album_photos[:2]], caption="nsfw")
        fine = tg.user_album(OTHER_USER, [("photo", p) for p in album_photos[:2]])
        answer = await reply_to(tg, refused[0])
        card = await reply_to(tg, fine[0])
        assert "sexual" in (tg.message(USER, answer).text_plain or "")
        assert "2 shots" in (tg.message(OTHER_USER, card).text_plain or "")
        assert await services_of(app).jobs.for_user(USER, list(JobState)) == []


async def test_an_album_whose_photos_arrive_slowly_is_still_one_story(
    tg: FakeTelegram, tmp_path: Path, album_photos: list[bytes]
) -> None:
    # Each photo takes longer to fetch than the quiet that ends an album.
    tg.delay("download", 2.0)
    async with running_bot(make_settings(tg, tmp_path)) as app:
        sent = tg.user_album(USER, [("photo", p) for p in album_photos])
        card_id = await reply_to(tg, sent[0], timeout=30)
        assert "3 shots" in (tg.message(USER, card_id).text_plain or "")
        await asyncio.sleep(2.0)  # a second story would have shown up by now
        drafts = await services_of(app).jobs.for_user(USER, [JobState.DRAFT])
    assert len(drafts) == 1
    assert len([m for m in tg.messages(USER) if m.buttons]) == 1
