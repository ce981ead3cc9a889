"""muapi and fal end to end: Telegram fake → bot → provider fake → bot → Telegram fake."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot.application import App
from services.model.jobs import JobState
from services.providers.catalogue import MOTION_PROMPTS
from tests.conftest import (
    TOKEN,
    USER,
    data_for,
    make_settings,
    reply_to,
    running_bot,
    services_of,
)
from tests.fakes.fal import LOCKED_DETAIL, FakeFal
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_big_video, make_video

ADMIN = 9999
MUAPI_KEY = "muapi-test-key-0123456789"
FAL_KEY = "fal-test-key-0123456789:secret"


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real small MP4 that the provider fakes hand back as their output."""
    return make_video(tmp_path_factory.mktemp("out") / "out.mp4", seconds=2.0)


@pytest.fixture
async def muapi() -> AsyncIterator[FakeMuapi]:
    async with FakeMuapi(api_key=MUAPI_KEY) as fake:
        yield fake


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    async with FakeFal(key=FAL_KEY) as fake:
        yield fake


def muapi_settings(tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, **extra: Any) -> Any:
    return make_settings(
        tg,
        tmp_path,
        muapi_api_key=MUAPI_KEY,
        muapi_base_url=muapi.root,
        admin_user_ids=[ADMIN],
        stall_polls=4,
        **extra,
    )


def fal_settings(tg: FakeTelegram, fal: FakeFal, tmp_path: Path, **extra: Any) -> Any:
    return make_settings(
        tg,
        tmp_path,
        fal_key=FAL_KEY,
        fal_queue_url=fal.root,
        fal_rest_url=fal.root,
        admin_user_ids=[ADMIN],
        **extra,
    )


async def generate(tg: FakeTelegram, photo: bytes, caption: str, user: int = USER) -> int:
    """Send a photo with a caption, press Generate on its card; return the card's id."""
    msg = tg.user_message(user, photo=photo, caption=caption)
    card_id = await reply_to(tg, msg)
    tg.press_button(user, card_id, data_for(tg, user, card_id, "go"))
    return card_id


def plain(tg: FakeTelegram, chat: int = USER) -> str:
    return "\n".join(m.text_plain or m.caption_plain or "" for m in tg.messages(chat))


async def ended(app: App, card_id: int, chat: int = USER) -> Any:
    jobs = services_of(app).jobs

    async def final() -> Any:
        job = await jobs.by_card(chat, card_id)
        return job if job is not None and not job.active and job.state != JobState.DRAFT else None

    for _ in range(1500):
        job = await final()
        if job is not None:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError("job did not end")


def assert_no_secret_left_the_bot(fake: FakeMuapi | FakeFal) -> None:
    """The bot token never reaches a provider, and no Telegram file URL is handed over."""
    assert fake.requests_containing(TOKEN) == []
    assert fake.requests_containing("/file/bot") == []
    assert fake.requests_containing("api.telegram.org") == []


# --- muapi ----------------------------------------------------------------------------------


async def test_muapi_animation_uploads_the_users_bytes_submits_once_and_delivers(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes, clip: Path
) -> None:
    muapi.scenario = Scenario(queue_polls=1, polls_before_done=3, output=clip)
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "slow zoom in on the face")
        await tg.wait_for(lambda: tg.videos(USER), timeout=30)
        job = await ended(app, card_id)
        assert job.state == JobState.DELIVERED
        assert await services_of(app).studio.credits.ledger.entries(job.id) == [
            ("reserve", 100),
            ("keep", 100),
        ]
    accepted = muapi.accepted_submits()
    assert len(accepted) == 1
    submit = accepted[0]
    assert submit.endpoint == "kling-v2.1-pro-i2v"
    assert submit.payload["prompt"] == "slow zoom in on the face"
    assert submit.payload["duration"] == 5 and submit.payload["aspect_ratio"] == "16:9"
    # The image went up as bytes, identical to what the user sent, and that URL was submitted.
    assert [u.sha256 for u in muapi.uploads] == [hashlib.sha256(photo_bytes).hexdigest()]
    assert submit.payload["image_url"] == muapi.uploads[0].url
    assert all(r.headers.get("x-api-key") == MUAPI_KEY for r in muapi.requests_to("/api/v1"))
    assert_no_secret_left_the_bot(muapi)
    video = tg.videos(USER)[0]
    assert (
        video.file is not None
        and video.file.sha256 == hashlib.sha256(clip.read_bytes()).hexdigest()
    )
    assert "Kling 2.1 Pro" in (video.caption_plain or "")


async def test_muapi_failure_explains_and_refunds(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes
) -> None:
    muapi.scenario = Scenario(fail_with="Face detection failed on the input image")
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.FAILED
        assert await services_of(app).studio.credits.ledger.entries(job.id) == [
            ("reserve", 100),
            ("refund", 100),
        ]
        await tg.wait_for(lambda: "Face detection failed" in plain(tg))
        assert "not charged" in plain(tg)
    assert tg.videos(USER) == []


async def test_muapi_429_then_success_is_one_job(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes, clip: Path
) -> None:
    muapi.scenario = Scenario(
        output=clip, submit_errors=[(429, {"detail": "Too many requests"}, {"Retry-After": "1"})]
    )
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.DELIVERED
    assert len(muapi.submits) == 2 and len(muapi.accepted_submits()) == 1
    assert len(tg.videos(USER)) == 1


async def test_muapi_500_storm_while_polling_is_ridden_out(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes, clip: Path
) -> None:
    muapi.scenario = Scenario(output=clip, poll_errors=[(500, {"detail": "boom"})] * 6)
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.DELIVERED
    assert len(muapi.accepted_submits()) == 1


async def test_muapi_500_on_submit_is_never_resubmitted(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes
) -> None:
    muapi.scenario = Scenario(submit_errors=[(500, {"detail": "internal error"}, {})] * 5)
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.UNKNOWN
        entries = await services_of(app).studio.credits.ledger.entries(job.id)
        assert entries == [("reserve", 100), ("refund", 100)]
    # It may have been accepted despite the 500: sending it again could bill twice.
    assert len(muapi.submits) == 1


async def test_muapi_422_field_swap_is_retried_once_with_the_other_field(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes, clip: Path
) -> None:
    # Play muapi respelling Kling's image field (clients disagree for some models).
    schema = muapi.schema_for("kling-v2.1-pro-i2v")
    schema["properties"]["images_list"] = {"type": "string_list"}
    del schema["properties"]["image_url"]
    schema["required"] = ["prompt", "images_list"]
    muapi.scenario = Scenario(output=clip)
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.DELIVERED
    assert [s.accepted for s in muapi.submits] == [False, True]
    assert muapi.submits[1].payload["images_list"] == [muapi.uploads[0].url]
    assert "image_url" not in muapi.submits[1].payload


async def test_muapi_402_says_unavailable_refunds_and_alerts_admins_once(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes
) -> None:
    tg.add_chat(ADMIN)
    muapi.scenario = Scenario(submit_errors=[(402, {"detail": "Insufficient balance"}, {})] * 4)
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        first = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, first)
        assert job.state == JobState.FAILED
        second = await generate(tg, photo_bytes, "zoom out", user=USER + 1)
        other = await ended(app, second, chat=USER + 1)
        assert other.state == JobState.FAILED
        for chat, j in ((USER, job), (USER + 1, other)):
            await tg.wait_for(lambda c=chat: "temporarily unavailable" in plain(tg, c))
            entries = await services_of(app).studio.credits.ledger.entries(j.id)
            assert entries == [("reserve", 100), ("refund", 100)]
    alerts = [m for m in tg.messages(ADMIN) if "out of credit" in (m.text_plain or "")]
    assert len(alerts) == 1
    for chat in (USER, USER + 1):  # the provider's balance is never shown to a chat user
        assert "42.5" not in plain(tg, chat) and "balance" not in plain(tg, chat).lower()


async def test_muapi_stalled_job_is_stopped_refunded_and_keeps_its_id(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes
) -> None:
    muapi.scenario = Scenario(stall=True)
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.STALLED
        assert job.external_id == muapi.accepted_submits()[0].request_id
        await tg.wait_for(lambda: "stopped making progress" in plain(tg))


async def test_muapi_unavailable_model_falls_back_to_the_next_and_says_so(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes, clip: Path
) -> None:
    muapi.scenario = Scenario(output=clip, submit_errors=[(404, {"detail": "Model not found"}, {})])
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.DELIVERED and job.model == "muapi-seedance-2"
        await tg.wait_for(lambda: "Kling 2.1 Pro is unavailable" in plain(tg))
        entries = await services_of(app).studio.credits.ledger.entries(job.id)
        assert entries == [("reserve", 100), ("keep", 100)]  # the quoted price holds
    assert [s.endpoint for s in muapi.accepted_submits()] == ["seedance-2-i2v"]


@pytest.mark.parametrize("provider", ["muapi", "fal"])
async def test_a_422_about_the_input_falls_back_to_the_next_model_and_charges_once(
    tg: FakeTelegram,
    muapi: FakeMuapi,
    fal: FakeFal,
    tmp_path: Path,
    photo_bytes: bytes,
    clip: Path,
    provider: str,
) -> None:
    # Kling stops taking 5 s runs: its schema refuses the bot's default length with a 422.
    if provider == "muapi":
        fake: FakeMuapi | FakeFal = muapi
        kling, following = "kling-v2.1-pro-i2v", "seedance-2-i2v"
        muapi.schema_for(kling)["properties"]["duration"]["enum"] = [10]
        settings = muapi_settings(tg, muapi, tmp_path)
    else:
        fake = fal
        kling, following = (
            "fal-ai/kling-video/v2.1/pro/image-to-video",
            "fal-ai/wan-25-preview/image-to-video",
        )
        fal.schema_for(kling)["properties"]["duration"]["enum"] = ["10"]
        settings = fal_settings(tg, fal, tmp_path)
    fake.scenario = Scenario(output=clip)
    async with running_bot(settings) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.DELIVERED
        await tg.wait_for(lambda: "Kling 2.1 Pro is unavailable" in plain(tg))
        entries = await services_of(app).studio.credits.ledger.entries(job.id)
        assert entries == [("reserve", 100), ("keep", 100)]  # charged once, the quoted price
    assert [(s.endpoint, s.status) for s in fake.submits] == [(kling, 422), (following, 200)]
    assert len(tg.videos(USER)) == 1


async def test_muapi_expired_output_ends_with_a_refund(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes, clip: Path
) -> None:
    muapi.scenario = Scenario(output=clip, output_expired=True)
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.FAILED
        entries = await services_of(app).studio.credits.ledger.entries(job.id)
        assert entries == [("reserve", 100), ("refund", 100)]
        await tg.wait_for(lambda: "not charged" in plain(tg))
    assert tg.videos(USER) == []


@pytest.mark.parametrize("size", [30_000_000, 60_000_000], ids=["30MB", "60MB"])
async def test_muapi_large_outputs_respect_telegrams_upload_limit(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes, size: int
) -> None:
    output = make_big_video(tmp_path / "big.mp4", target_bytes=size, seconds=8.0)
    muapi.scenario = Scenario(output=output)
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.DELIVERED
    video = tg.videos(USER)[0]
    assert video.file is not None and video.file.size <= 50_000_000
    assert "large file" in (video.caption_plain or "")
    assert tg.too_large_count == 0


async def test_a_big_photo_goes_through_the_presigned_upload(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, clip: Path
) -> None:
    # Above muapi's 10 MB direct-upload cap for images, below Telegram's 20 MB download cap.
    from tests.media_factory import make_photo

    big = make_photo(tmp_path / "big.png", 3000, 2000, fmt="png").read_bytes()
    big += b"\0" * max(0, 11_000_000 - len(big))  # trailing bytes after IEND still decode
    muapi.scenario = Scenario(output=clip)
    async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
        msg = tg.user_message(
            USER, document=big, document_name="big.png", mime_type="image/png", caption="zoom in"
        )
        card_id = await reply_to(tg, msg)
        assert "credits" in (tg.message(USER, card_id).text_plain or "")
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        job = await ended(app, card_id)
        assert job.state == JobState.DELIVERED
    assert [u.sha256 for u in muapi.uploads] == [hashlib.sha256(big).hexdigest()]
    assert muapi.requests_to("/api/v1/upload_file") == []
    assert_no_secret_left_the_bot(muapi)


# --- fal ------------------------------------------------------------------------------------


async def test_fal_shows_queue_position_follows_returned_urls_and_delivers(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path, photo_bytes: bytes, clip: Path
) -> None:
    # The queue lasts longer than the chat's send bucket takes to refill (1 s): a position
    # edit is optional and gives way while the card's own sends have used the bucket up.
    fal.scenario = Scenario(queue_polls=8, polls_before_done=9, output=clip)
    async with running_bot(fal_settings(tg, fal, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.DELIVERED
        status = tg.message(USER, card_id)
        assert status is not None
        assert any("position" in (r.text or "") for r in status.history)
    accepted = fal.accepted_submits()
    assert (
        len(accepted) == 1 and accepted[0].endpoint == "fal-ai/kling-video/v2.1/pro/image-to-video"
    )
    assert accepted[0].payload["duration"] == "5"
    assert [u.sha256 for u in fal.uploads] == [hashlib.sha256(photo_bytes).hexdigest()]
    assert accepted[0].payload["image_url"] == fal.uploads[0].url
    keyed = [r for r in fal.requests if "authorization" in r.headers]
    assert keyed and all(r.headers["authorization"] == f"Key {FAL_KEY}" for r in keyed)
    # Uploads to signed storage URLs and output downloads carry no key.
    assert all(
        "authorization" not in r.headers
        for r in fal.requests
        if r.path.startswith(("/upload/", "/files/"))
    )
    assert_no_secret_left_the_bot(fal)


async def test_fal_completed_with_content_policy_error_is_explained_and_refunded(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path, photo_bytes: bytes
) -> None:
    fal.scenario = Scenario(fail_with="Content policy violation: the image was flagged")
    async with running_bot(fal_settings(tg, fal, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.FAILED
        entries = await services_of(app).studio.credits.ledger.entries(job.id)
        assert entries == [("reserve", 100), ("refund", 100)]
        await tg.wait_for(lambda: "content rules" in plain(tg))


async def test_fal_cancel_goes_to_the_returned_cancel_url(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path, photo_bytes: bytes
) -> None:
    fal.scenario = Scenario(stall=True)
    async with running_bot(fal_settings(tg, fal, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        await tg.wait_for(lambda: fal.accepted_submits() and fal.polls)
        tg.user_message(USER, text="/cancel")
        job = await ended(app, card_id)
        assert job.state == JobState.CANCELED
        await tg.wait_for(lambda: fal.cancels)
    assert fal.cancels == [fal.accepted_submits()[0].request_id]


async def test_fal_60mb_output_is_reencoded_under_the_limit(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path, photo_bytes: bytes
) -> None:
    output = make_big_video(tmp_path / "big.mp4", target_bytes=60_000_000, seconds=8.0)
    fal.scenario = Scenario(output=output)
    async with running_bot(fal_settings(tg, fal, tmp_path)) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.DELIVERED
    video = tg.videos(USER)[0]
    assert video.file is not None and video.file.size <= 50_000_000
    assert video.duration == 8


async def test_a_submit_that_times_out_after_sending_is_unknown_not_resent(
    tg: FakeTelegram, muapi: FakeMuapi, tmp_path: Path, photo_bytes: bytes
) -> None:
    muapi.scenario = Scenario(submit_delay=3.0)
    settings = muapi_settings(tg, muapi, tmp_path, provider_timeout_seconds=0.5)
    async with running_bot(settings) as app:
        card_id = await generate(tg, photo_bytes, "zoom in")
        job = await ended(app, card_id)
        assert job.state == JobState.UNKNOWN
        entries = await services_of(app).studio.credits.ledger.entries(job.id)
        assert entries == [("reserve", 100), ("refund", 100)]
        await tg.wait_for(lambda: "won't send it again" in plain(tg))
    assert len(muapi.submits) == 1


@pytest.mark.parametrize("where", ["storage upload", "submit"])
async def test_fal_locked_account_is_out_of_credit_refunds_and_alerts_admins_once(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path, photo_bytes: bytes, where: str
) -> None:
    tg.add_chat(ADMIN)
    if where == "storage upload":
        fal.locked = True  # fal refuses the upload before there is anything to submit
    else:
        fal.scenario = Scenario(submit_errors=[(403, {"detail": LOCKED_DETAIL}, {})] * 2)
    async with running_bot(fal_settings(tg, fal, tmp_path)) as app:
        for user in (USER, USER + 1):
            card_id = await generate(tg, photo_bytes, "zoom in", user=user)
            job = await ended(app, card_id, chat=user)
            assert job.state == JobState.FAILED
            told = partial(lambda chat: "temporarily unavailable" in plain(tg, chat), user)
            await tg.wait_for(told)
            entries = await services_of(app).studio.credits.ledger.entries(job.id)
            assert entries == [("reserve", 100), ("refund", 100)]
    alerts = [m.text_plain or "" for m in tg.messages(ADMIN)]
    assert len([a for a in alerts if "out of credit" in a]) == 1
    assert not any("Check the key" in a for a in alerts)  # not mistaken for a bad key
    assert fal.accepted_submits() == []
    assert (fal.uploads == []) == (where == "storage upload")


@pytest.fixture(scope="session")
def veo_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A clip as Veo makes them: 1280×720 (16:9), 4 s."""
    path = tmp_path_factory.mktemp("veo") / "veo.mp4"
    return make_video(path, seconds=4.0, width=1280, height=720, fps=8).read_bytes()


@pytest.fixture(scope="session")
def phone_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A user's own clip: 320×240, 2 s."""
    return make_video(tmp_path_factory.mktemp("phone") / "phone.mp4", seconds=2.0).read_bytes()


def card_text(tg: FakeTelegram, card_id: int) -> str:
    card = tg.message(USER, card_id)
    return (card.text_plain or "") if card is not None else ""


async def send_clip(
    tg: FakeTelegram, video: bytes, meta: tuple[int, int, int], caption: str
) -> int:
    """Send a clip with a caption; return its card's id."""
    return await reply_to(tg, tg.user_message(USER, video=video, video_meta=meta, caption=caption))


async def test_fal_extends_veo_made_clips_with_veo_and_every_other_clip_with_pixverse(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path, veo_clip: bytes, phone_clip: bytes, clip: Path
) -> None:
    fal.scenario = Scenario(output=clip)
    async with running_bot(fal_settings(tg, fal, tmp_path)) as app:
        for video, meta in ((veo_clip, (1280, 720, 4)), (phone_clip, (320, 240, 2))):
            card_id = await send_clip(tg, video, meta, "extend")
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
            assert (await ended(app, card_id)).state == JobState.DELIVERED
    veo, pixverse = fal.accepted_submits()
    assert (veo.endpoint, veo.payload["duration"]) == ("fal-ai/veo3.1/fast/extend-video", "7s")
    assert (pixverse.endpoint, pixverse.payload["duration"]) == ("fal-ai/pixverse/extend", "5")
    assert [s.accepted for s in fal.submits] == [True, True]


async def test_picking_veo_on_the_card_for_a_phone_clip_still_never_sends_it_to_veo(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path, phone_clip: bytes, clip: Path
) -> None:
    fal.scenario = Scenario(output=clip)
    async with running_bot(fal_settings(tg, fal, tmp_path)) as app:
        card_id = await send_clip(tg, phone_clip, (320, 240, 2), "extend")
        assert "PixVerse Extend" in card_text(tg, card_id)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "mdl"))
        await tg.wait_for(lambda: "Veo 3.1" in card_text(tg, card_id))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        job = await ended(app, card_id)
        assert job.state == JobState.DELIVERED and job.model == "fal-pixverse-extend"
        await tg.wait_for(lambda: "can't work on this clip" in plain(tg))
        entries = await services_of(app).studio.credits.ledger.entries(job.id)
        assert entries == [("reserve", 80), ("keep", 80)]
    assert [s.endpoint for s in fal.submits] == ["fal-ai/pixverse/extend"]


@pytest.fixture(scope="session")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What MMAudio hands back: the clip with a soundtrack."""
    return make_video(tmp_path_factory.mktemp("scored") / "scored.mp4", seconds=2.0, audio=True)


async def test_mmaudio_is_told_the_clips_length_and_what_it_should_sound_like(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path, phone_clip: bytes, scored: Path
) -> None:
    fal.scenario = Scenario(output=scored)
    async with running_bot(fal_settings(tg, fal, tmp_path)) as app:
        card_id = await send_clip(tg, phone_clip, (320, 240, 2), "add epic music")
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        assert (await ended(app, card_id)).state == JobState.DELIVERED
    (submit,) = fal.accepted_submits()
    assert submit.endpoint == "fal-ai/mmaudio-v2"
    assert abs(submit.payload["duration"] - 2.0) < 0.2  # not MMAudio's 8 s default
    sound = submit.payload["prompt"]
    assert "orchestral" in sound and all(p not in sound for p in MOTION_PROMPTS.values())


async def test_a_clip_longer_than_mmaudio_reads_is_refused_with_a_clear_note(
    tg: FakeTelegram, fal: FakeFal, tmp_path: Path
) -> None:
    long_clip = make_video(tmp_path / "long.mp4", seconds=31.0, width=160, height=120, fps=4)
    async with running_bot(fal_settings(tg, fal, tmp_path)) as app:
        msg = tg.user_message(
            USER, video=long_clip.read_bytes(), video_meta=(160, 120, 31), caption="add music"
        )
        await reply_to(tg, msg)
        await tg.wait_for(lambda: "MMAudio v2 works on clips up to 30 s" in plain(tg))
        assert await services_of(app).jobs.count_by_state() == {}
    assert fal.submits == [] and fal.uploads == []
