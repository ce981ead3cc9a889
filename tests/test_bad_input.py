"""The bad-input catalogue: everything a user can throw at the bot, and the answer each gets.

Every case runs through the real polling loop. A case expects either words in the bot's answer,
or silence (checked by sending /help afterwards and seeing nothing else arrive). No case may
leave a job behind unless it says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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
from tests.media_factory import make_photo, make_video

GROUP = -100500


@dataclass
class Media:
    photo: bytes
    clip: bytes
    tiny: bytes
    wide: bytes
    png: bytes
    audio_mp4: bytes


@pytest.fixture(scope="module")
def mediakit(tmp_path_factory: pytest.TempPathFactory) -> Media:
    import subprocess

    from services.media.ffmpeg import default_tools

    root = tmp_path_factory.mktemp("bad")
    audio = root / "sound.mp4"
    subprocess.run(
        [
            default_tools().ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "aac",
            str(audio),
        ],
        check=True,
    )
    return Media(
        photo=make_photo(root / "p.jpg", 640, 480).read_bytes(),
        clip=make_video(root / "c.mp4", seconds=1.0).read_bytes(),
        tiny=make_photo(root / "t.png", 10, 10, fmt="png").read_bytes(),
        wide=make_photo(root / "w.png", 2000, 64, fmt="png").read_bytes(),
        png=make_photo(root / "r.png", 320, 240, fmt="png").read_bytes(),
        audio_mp4=audio.read_bytes(),
    )


def raw(tg: FakeTelegram, chat_id: int = USER, **fields: Any) -> dict[str, Any]:
    """A message dict for fields the fake's helpers do not build (stickers, locations…)."""
    user = {"id": USER, "is_bot": False, "first_name": "Ann", "language_code": "en"}
    chat = {"id": chat_id, "type": "private", "first_name": "Ann"}
    return {
        "message_id": tg.state.next_message_id(chat_id),
        "from": user,
        "chat": chat,
        "date": int(time.time()),
        **fields,
    }


Send = Callable[[FakeTelegram, Media], Any]


@dataclass(frozen=True)
class Case:
    send: Send
    expect: str | None  # words in the answer, or None for silence
    jobs: int = 0  # drafts or jobs this input should leave behind


def press(data: str, user: int = USER) -> Send:
    """Make a card, then press ``data`` on it ("go" = its real Generate button)."""

    async def go(tg: FakeTelegram, m: Media) -> None:
        card = await reply_to(tg, tg.user_message(USER, photo=m.photo, caption="zoom in"))
        resolved = (
            data_for(tg, USER, card, "go") if data == "go" else data.replace("{card}", str(card))
        )
        tg.press_button(user, card, resolved, chat_id=USER, strict=False)

    return go


CASES: dict[str, Case] = {
    "oversize photo": Case(
        lambda tg, m: tg.user_message(
            USER, photo=b"\xff\xd8" + b"\0" * 21_000_000, photo_size=(4000, 3000)
        ),
        "21.0 MB",
    ),
    # A 720p clip (the fake's default size) is not told to "send it in 720p".
    "oversize 720p clip": Case(
        lambda tg, m: tg.user_message(USER, video=b"\0" * 21_000_000, caption="extend"),
        "21.0 MB, but I can only fetch files up to 20.0 MB from Telegram. Trim it or send a more",
    ),
    "oversize 1080p clip": Case(
        lambda tg, m: tg.user_message(
            USER, video=b"\0" * 21_000_000, video_meta=(1920, 1080, 30), caption="extend"
        ),
        "send it in 720p",
    ),
    "corrupt jpeg photo": Case(
        lambda tg, m: tg.user_message(
            USER, photo=b"\xff\xd8\xff\xe0" + b"garbage" * 100, photo_size=(640, 480)
        ),
        "couldn't read this image",
    ),
    "zero-byte image file": Case(
        lambda tg, m: tg.user_message(
            USER, document=b"", document_name="x.jpg", mime_type="image/jpeg"
        ),
        "couldn't read this image",
    ),
    "text named .jpg": Case(
        lambda tg, m: tg.user_message(
            USER, document=b"hello world", document_name="cat.jpg", mime_type="image/jpeg"
        ),
        "couldn't read this image",
    ),
    "pdf document": Case(
        lambda tg, m: tg.user_message(
            USER, document=b"%PDF-1.4", document_name="a.pdf", mime_type="application/pdf"
        ),
        "I work with photos",
    ),
    "video that is text": Case(
        lambda tg, m: tg.user_message(USER, video=b"not a video at all", caption="extend"),
        "couldn't read this clip",
    ),
    "audio-only mp4 as video": Case(
        lambda tg, m: tg.user_message(USER, video=m.audio_mp4, caption="extend"),
        "couldn't read this clip",
    ),
    "mp4 named .mkv, sent as a file": Case(
        lambda tg, m: tg.user_message(
            USER,
            document=m.clip,
            document_name="c.mkv",
            mime_type="video/x-matroska",
            caption="extend",
        ),
        "Extend clip",
        jobs=1,
    ),
    "clip as application/octet-stream": Case(
        lambda tg, m: tg.user_message(
            USER,
            document=m.clip,
            document_name="VID_0001",
            mime_type="application/octet-stream",
            caption="extend",
        ),
        "Extend clip",
        jobs=1,
    ),
    "photo sent as a video": Case(
        lambda tg, m: tg.user_message(USER, video=m.photo, caption="extend"),
        "still picture, not a clip",
    ),
    "octet-stream that is no media": Case(
        lambda tg, m: tg.user_message(
            USER,
            document=b"\x00\x01binary blob" * 50,
            document_name="blob.bin",
            mime_type="application/octet-stream",
        ),
        "couldn't find a photo, video or sound",
    ),
    "tiny image": Case(
        lambda tg, m: tg.user_message(
            USER, document=m.tiny, document_name="t.png", mime_type="image/png", caption="zoom"
        ),
        "at least 64 px",
    ),
    "thin strip image": Case(
        lambda tg, m: tg.user_message(
            USER, document=m.wide, document_name="w.png", mime_type="image/png", caption="zoom"
        ),
        "no longer than 20:1",
    ),
    "png with a false .gif name": Case(
        lambda tg, m: tg.user_message(
            USER,
            document=m.png,
            document_name="photo.gif",
            mime_type="image/png",
            caption="zoom in",
        ),
        "This costs",
        jobs=1,
    ),
    "animated sticker": Case(
        lambda tg, m: tg.push_update(
            {
                "message": raw(
                    tg,
                    sticker={
                        "file_id": "stk",
                        "file_unique_id": "stku",
                        "type": "regular",
                        "width": 512,
                        "height": 512,
                        "is_animated": True,
                        "is_video": False,
                    },
                )
            }
        ),
        "I work with photos",
    ),
    "location": Case(
        lambda tg, m: tg.push_update(
            {"message": raw(tg, location={"latitude": 52.5, "longitude": 13.4})}
        ),
        "I work with photos",
    ),
    "contact": Case(
        lambda tg, m: tg.push_update(
            {"message": raw(tg, contact={"phone_number": "+100", "first_name": "Bob"})}
        ),
        "I work with photos",
    ),
    "voice note alone": Case(
        lambda tg, m: tg.push_update(
            {
                "message": raw(
                    tg,
                    voice={
                        "file_id": "v",
                        "file_unique_id": "vu",
                        "duration": 1,
                        "mime_type": "audio/ogg",
                    },
                )
            }
        ),
        "Reply to a video",
    ),
    "round video note": Case(
        lambda tg, m: tg.push_update(
            {
                "message": raw(
                    tg,
                    video_note={
                        "file_id": tg.add_file(m.clip)[0],
                        "file_unique_id": "vn1",
                        "length": 240,
                        "duration": 1,
                        "file_size": len(m.clip),
                    },
                )
            }
        ),
        "What should I do with it",
        jobs=1,
    ),
    "5000-character text": Case(
        lambda tg, m: tg.user_message(USER, text="a" * 5000), "Send me a photo"
    ),
    "html and markdown caption": Case(
        lambda tg, m: tg.user_message(USER, photo=m.photo, caption="<b>x</b> & <i>*_[y](z)`"),
        "<b>x</b> & <i>*_[y](z)`",
        jobs=1,
    ),
    "right-to-left and emoji": Case(
        lambda tg, m: tg.user_message(USER, photo=m.photo, caption="שלום مرحبا 🎬🔥 zoom"),
        "שלום مرحبا 🎬🔥",
        jobs=1,
    ),
    "caption of only spaces": Case(
        lambda tg, m: tg.user_message(USER, photo=m.photo, caption="    "),
        "How should the camera move",
        jobs=1,
    ),
    "forged callback data": Case(press("j:999999:go"), "expired", jobs=1),
    "garbage callback data": Case(press("hello:world"), "expired", jobs=1),
    "another user's button": Case(press("go", user=OTHER_USER), "someone else", jobs=1),
    "oversized callback action": Case(press("j:{card}:x" + "x" * 50), "expired", jobs=1),
    "unknown command": Case(
        lambda tg, m: tg.user_message(USER, text="/teleport"), "don't know that command"
    ),
    "admin command from a user": Case(
        lambda tg, m: tg.user_message(USER, text="/stats"), "don't know that command"
    ),
    "edited message": Case(
        lambda tg, m: tg.push_update(
            {"edited_message": {**raw(tg, text="zoom in"), "edit_date": int(time.time())}}
        ),
        None,
    ),
    "channel post": Case(
        lambda tg, m: tg.push_update(
            {
                "channel_post": {
                    "message_id": 1,
                    "chat": {"id": -100777, "type": "channel", "title": "C"},
                    "date": int(time.time()),
                    "text": "hello",
                }
            }
        ),
        None,
    ),
    "group chatter": Case(
        lambda tg, m: tg.user_message(USER, text="nice weather", chat_id=GROUP), None
    ),
    "group command": Case(
        lambda tg, m: tg.user_message(USER, text="/start", chat_id=GROUP), "private chats"
    ),
    "unsafe caption": Case(
        lambda tg, m: tg.user_message(USER, photo=m.photo, caption="nude photo shoot"),
        "sexual content",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_input_gets_the_expected_answer(
    name: str, tg: FakeTelegram, tmp_path: Path, mediakit: Media
) -> None:
    case = CASES[name]
    async with running_bot(make_settings(tg, tmp_path)) as app:
        before = len(tg.calls)
        result = case.send(tg, mediakit)
        if hasattr(result, "__await__"):
            await result
        chats = (USER, GROUP)

        def answers() -> list[str]:
            texts = [m.text_plain or m.caption_plain or "" for c in chats for m in tg.messages(c)]
            texts += [a.text or "" for a in tg.callback_answers.values()]
            return texts

        if case.expect is not None:
            await tg.wait_for(lambda: any(case.expect in t for t in answers()), timeout=20)
        else:
            tg.user_message(USER, text="/help")
            await tg.wait_for(lambda: any("How it works" in t for t in answers()))
            assert [t for t in answers() if "How it works" not in t] == []
        assert not any("went wrong" in t for t in answers()), answers()
        counts = await services_of(app).jobs.count_by_state()
        assert sum(counts.values()) == case.jobs, counts
        assert len(tg.calls) > before


async def test_fifty_messages_in_ten_seconds_are_rate_limited_and_told_once(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        for i in range(50):
            tg.user_message(USER, text=f"hello {i}")
        await tg.wait_for(lambda: tg.pending_updates == 0, timeout=20)
        # Twenty answers to one chat go out at Telegram's pace for a chat, about one a second.
        await tg.wait_for(
            lambda: any("very fast" in t for t in [m.text_plain or "" for m in tg.messages(USER)]),
            timeout=40,
        )
        texts = [m.text_plain or "" for m in tg.messages(USER)]
        assert sum("very fast" in t for t in texts) == 1
        assert sum("Send me a photo" in t for t in texts) == 20  # the limit, then silence


def test_the_catalogue_has_at_least_thirty_cases() -> None:
    assert len(CASES) + 1 >= 30
