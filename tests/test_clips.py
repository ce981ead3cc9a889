"""Clips end to end: extend, add music, the user's own audio, replies to delivered videos."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from services.media import ffmpeg as media
from services.model.jobs import JobKind, JobState
from tests.conftest import (
    USER,
    data_for,
    delivered_jobs,
    make_settings,
    reply_to,
    running_bot,
    services_of,
)
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_video

MUAPI_KEY = "muapi-test-key-clips-0123"


@pytest.fixture(scope="session")
def clip_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real 2-second 320×240 clip without sound."""
    return make_video(tmp_path_factory.mktemp("clips") / "in.mp4", seconds=2.0).read_bytes()


def plain(tg: FakeTelegram) -> str:
    return "\n".join(m.text_plain or m.caption_plain or "" for m in tg.messages(USER))


async def delivered_info(tg: FakeTelegram, tmp_path: Path, index: int = 0) -> media.MediaInfo:
    """Probe a video the bot sent (the bytes the fake Bot API received)."""
    await tg.wait_for(lambda: len(tg.videos(USER)) > index, timeout=60)
    sent = tg.videos(USER)[index]
    path = tmp_path / f"sent-{index}.mp4"
    path.write_bytes(tg.file_content(sent.file_id))
    return await media.probe(path)


async def go(tg: FakeTelegram, message: dict[str, object]) -> int:
    card_id = await reply_to(tg, message)
    tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
    return card_id


async def test_a_clip_captioned_extend_comes_back_longer(
    tg: FakeTelegram, tmp_path: Path, clip_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        msg = tg.user_message(
            USER, video=clip_bytes, video_meta=(320, 240, 2), caption="make it longer, boomerang"
        )
        card_id = await reply_to(tg, msg)
        card = tg.message(USER, card_id).text_plain or ""
        assert "Extend clip" in card and "boomerang" in card and "10 credits" in card
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        info = await delivered_info(tg, tmp_path)
    assert info.duration is not None and abs(info.duration - 5.0) < 0.3  # 2 s + 3 s
    assert (info.width, info.height) == (320, 240)


async def test_add_music_gives_the_clip_a_soundtrack(
    tg: FakeTelegram, tmp_path: Path, clip_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        msg = tg.user_message(
            USER, video=clip_bytes, video_meta=(320, 240, 2), caption="добавь эпичную музыку"
        )
        await go(tg, msg)
        info = await delivered_info(tg, tmp_path)
        (job,) = await delivered_jobs(app, USER)
    assert info.has_audio and info.has_video
    assert job.kind == JobKind.MUSIC and job.params["mood"] == "epic"


async def test_a_clip_without_words_asks_and_words_that_are_not_a_request_do_not_extend(
    tg: FakeTelegram, tmp_path: Path, clip_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        msg = tg.user_message(
            USER, video=clip_bytes, video_meta=(320, 240, 2), caption="make me a new, longer video"
        )
        ask_id = await reply_to(tg, msg)
        assert "What should I do with it" in (tg.message(USER, ask_id).text_plain or "")
        tg.press_button(USER, ask_id, data_for(tg, USER, ask_id, "k").replace("extend", "music"))
        await tg.wait_for(lambda: "Add sound" in (tg.message(USER, ask_id).text_plain or ""))
        job = await services_of(app).jobs.by_card(USER, ask_id)
        assert job is not None and job.kind == JobKind.MUSIC and job.state == JobState.DRAFT


async def test_a_voice_reply_to_a_video_is_mixed_in_for_free(
    tg: FakeTelegram, tmp_path: Path, clip_bytes: bytes
) -> None:
    voice = tmp_path / "voice.ogg"
    tools = media.default_tools()
    proc = await asyncio.create_subprocess_exec(
        tools.ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=1",
        "-c:a",
        "libopus",
        str(voice),
    )
    assert await proc.wait() == 0
    async with running_bot(make_settings(tg, tmp_path)) as app:
        video_msg = tg.user_message(USER, video=clip_bytes, video_meta=(320, 240, 2))
        await reply_to(tg, video_msg)  # the bot asks what to do; the user answers with a voice
        tg.user_message(
            USER,
            document=voice.read_bytes(),
            document_name="voice.ogg",
            mime_type="audio/ogg",
            reply_to_message_id=int(video_msg["message_id"]),
        )
        info = await delivered_info(tg, tmp_path)
        (job,) = await delivered_jobs(app, USER)
        assert job.kind == JobKind.MIX and job.cost == 0
        assert "This costs" not in plain(tg).split("What should I do")[-1]
    assert info.has_audio and info.duration is not None and abs(info.duration - 2.0) < 0.3


async def test_extend_of_the_bots_own_seedance_result_chains_on_muapi(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes, clip_bytes: bytes
) -> None:
    clip_file = tmp_path / "out.mp4"
    clip_file.write_bytes(clip_bytes)
    async with FakeMuapi(api_key=MUAPI_KEY) as muapi:
        muapi.scenario = Scenario(output=clip_file, polls_before_done=1)
        settings = make_settings(tg, tmp_path, muapi_api_key=MUAPI_KEY, muapi_base_url=muapi.root)
        async with running_bot(settings) as app:
            tg.user_message(USER, text="/settings")
            await tg.wait_for(
                lambda: (
                    tg.last_message(USER) and "Settings" in (tg.last_message(USER).text_plain or "")
                )
            )
            settings_id = tg.last_message(USER).message_id
            tg.press_button(USER, settings_id, "s:model")  # auto → Kling
            await tg.wait_for(lambda: "Kling" in str(tg.message(USER, settings_id).buttons))
            tg.press_button(USER, settings_id, "s:model")  # Kling → Seedance 2.0
            await tg.wait_for(lambda: "Seedance 2.0" in str(tg.message(USER, settings_id).buttons))
            photo = tg.user_message(USER, photo=photo_bytes, caption="dance")
            await go(tg, photo)
            await tg.wait_for(lambda: tg.videos(USER), timeout=30)
            await delivered_jobs(app, USER)  # recorded as ours, so a reply can chain
            first = tg.videos(USER)[0]
            # Reply to the delivered video with words: extend, chained by request id.
            reply = tg.user_message(USER, text="continue", reply_to_message_id=first.message_id)
            card_id = await go(tg, reply)
            await tg.wait_for(lambda: len(tg.videos(USER)) == 2, timeout=30)
            assert "Continues this video" in "".join(
                r.text or "" for r in tg.message(USER, card_id).history
            )
        accepted = muapi.accepted_submits()
        assert [s.endpoint for s in accepted] == ["seedance-2-i2v", "seedance-2-extend"]
        assert accepted[1].payload["request_id"] == accepted[0].request_id
        assert "video_url" not in accepted[1].payload
        # Only the photo was ever uploaded: the chained extend needed no upload.
        assert [u.sha256 for u in muapi.uploads] == [hashlib.sha256(photo_bytes).hexdigest()]


async def test_after_delivery_extend_and_add_music_start_from_that_result(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        await go(tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        video = tg.videos(USER)[0]
        buttons = {b["text"]: b["callback_data"] for b in video.buttons}
        tg.press_button(USER, video.message_id, buttons["🎵 Add music"])
        await tg.wait_for(lambda: "Add sound" in plain(tg))
        card = next(m for m in reversed(tg.messages(USER)) if "Add sound" in (m.text_plain or ""))
        tg.press_button(USER, card.message_id, data_for(tg, USER, card.message_id, "go"))
        info = await delivered_info(tg, tmp_path, index=1)
    assert info.has_audio and info.duration is not None and abs(info.duration - 5.0) < 0.3


async def test_oversize_and_fake_clips_get_clear_answers(tg: FakeTelegram, tmp_path: Path) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        tg.user_message(
            USER, video=b"\0" * 21_000_000, video_meta=(1920, 1080, 30), caption="extend"
        )
        await tg.wait_for(lambda: "21.0 MB" in plain(tg) and "720p" in plain(tg))
        tg.user_message(USER, video=b"just text, not a video", caption="extend")
        await tg.wait_for(lambda: "couldn't read this clip" in plain(tg))
        assert await services_of(app).jobs.count_by_state() == {}


async def test_add_music_on_muapi_uploads_the_clip_to_mmaudio(
    tg: FakeTelegram, tmp_path: Path, clip_bytes: bytes
) -> None:
    out = tmp_path / "scored.mp4"
    out.write_bytes(make_video(tmp_path / "src.mp4", seconds=2.0, audio=True).read_bytes())
    async with FakeMuapi(api_key=MUAPI_KEY) as muapi:
        muapi.scenario = Scenario(output=out, polls_before_done=1)
        settings = make_settings(tg, tmp_path, muapi_api_key=MUAPI_KEY, muapi_base_url=muapi.root)
        async with running_bot(settings) as app:
            msg = tg.user_message(
                USER, video=clip_bytes, video_meta=(320, 240, 2), caption="add music"
            )
            card_id = await reply_to(tg, msg)
            assert "50 credits" in (tg.message(USER, card_id).text_plain or "")
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
            info = await delivered_info(tg, tmp_path)
            (job,) = await delivered_jobs(app, USER)
            entries = await services_of(app).studio.credits.ledger.entries(job.id)
        (submit,) = muapi.accepted_submits()
        assert submit.endpoint == "mmaudio-v2/video-to-video"
        assert submit.payload["video_url"] == muapi.uploads[0].url
        assert muapi.uploads[0].sha256 == hashlib.sha256(clip_bytes).hexdigest()
        assert muapi.requests_containing(tg.token) == []
    assert info.has_audio and entries == [("reserve", 50), ("keep", 50)]


async def test_a_telegram_voice_note_replying_to_a_clip_becomes_its_soundtrack(
    tg: FakeTelegram, tmp_path: Path, clip_bytes: bytes
) -> None:
    voice = tmp_path / "note.ogg"
    proc = await asyncio.create_subprocess_exec(
        media.default_tools().ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=330:duration=3",
        "-c:a",
        "libopus",
        str(voice),
    )
    assert await proc.wait() == 0
    data = voice.read_bytes()
    async with running_bot(make_settings(tg, tmp_path)) as app:
        video_msg = tg.user_message(USER, video=clip_bytes, video_meta=(320, 240, 2))
        await reply_to(tg, video_msg)
        file_id, unique_id = tg.add_file(data)
        tg.push_update(
            {
                "message": {
                    "message_id": tg.state.next_message_id(USER),
                    "from": video_msg["from"],
                    "chat": video_msg["chat"],
                    "date": video_msg["date"],
                    "reply_to_message": video_msg,
                    "voice": {
                        "file_id": file_id,
                        "file_unique_id": unique_id,
                        "duration": 3,
                        "mime_type": "audio/ogg",
                        "file_size": len(data),
                    },
                }
            }
        )
        info = await delivered_info(tg, tmp_path)
        (job,) = await delivered_jobs(app, USER)
    assert job.kind == JobKind.MIX and info.has_audio
    assert info.duration is not None and abs(info.duration - 2.0) < 0.3  # trimmed to the clip
