"""A result is checked before the user is told "Done" or charged: a render that did not do what
was asked, or a picture of one flat colour, fails with a refund and a plain message."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from services.errors import ProviderPermanent
from services.media import effects as media_effects
from services.media import ffmpeg as media
from services.model.jobs import JobState
from services.providers.base import JobSpec, ProviderState
from services.providers.catalogue import ModelKind, default_model
from services.providers.local import LocalStudio
from tests.conftest import USER, db_rows, make_settings, running_bot
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import _ffmpeg, make_video
from tests.test_providers_e2e import ended, generate, muapi_settings, plain


@pytest.fixture(scope="module")
def black_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("black") / "black.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=black:size=320x240:rate=25:duration=2",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


async def test_a_flat_picture_looks_blank_and_a_real_one_does_not(
    tmp_path: Path, black_clip: Path
) -> None:
    assert await media.looks_blank(black_clip, 2.0)
    real = make_video(tmp_path / "real.mp4", seconds=2.0)
    assert not await media.looks_blank(real, 2.0)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    assert await media.looks_blank(junk, None)


async def test_an_extend_that_did_not_grow_fails_instead_of_being_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A render that silently hands the clip back unchanged must not count as done.
    async def unchanged(src: Path, dest: Path, **_: Any) -> None:
        shutil.copyfile(src, dest)

    monkeypatch.setattr(media_effects, "extend_clip", unchanged)
    clip = make_video(tmp_path / "clip.mp4", seconds=2.0)
    studio = LocalStudio(tmp_path / "data")
    try:
        url = await studio.upload(clip, "video/mp4")
        spec = JobSpec(
            model=default_model("local", ModelKind.EXTEND_BY_CLIP),
            prompt="longer",
            inputs={"video": url},
            duration=3,
            aspect="16:9",
            options={"effect": "slow_tail"},
        )
        submission = await studio.submit(spec)
        for _ in range(200):
            try:
                status = await studio.poll(submission)
            except ProviderPermanent as exc:
                assert exc.reason == "failed_media"
                break
            assert status.state != ProviderState.COMPLETED
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the render never ended")
    finally:
        await studio.close()


async def test_a_blank_provider_result_is_refunded_not_delivered(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes, black_clip: Path
) -> None:
    from tests.fakes.muapi import FakeMuapi
    from tests.test_providers_e2e import MUAPI_KEY

    async with FakeMuapi(api_key=MUAPI_KEY) as muapi:
        muapi.scenario = Scenario(polls_before_done=1, output=black_clip)
        async with running_bot(muapi_settings(tg, muapi, tmp_path)) as app:
            card_id = await generate(tg, photo_bytes, "zoom in")
            job = await ended(app, card_id)
            await tg.wait_for(lambda: "could not be processed" in plain(tg))
    assert job.state == JobState.FAILED
    assert tg.videos(USER) == []
    ledger = db_rows(tmp_path, "SELECT entry FROM ledger WHERE job_id = ? ORDER BY id", (job.id,))
    assert [entry for (entry,) in ledger] == ["reserve", "refund"]


async def test_a_local_render_is_checked_and_delivered(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    # The check passes real renders through: one video, once.
    async with running_bot(make_settings(tg, tmp_path)):
        tg.user_message(USER, photo=photo_bytes, caption="zoom in, just do it")
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        await asyncio.sleep(0.5)
    assert len(tg.videos(USER)) == 1


@pytest.mark.parametrize("effect", media_effects.EXTEND_EFFECTS)
async def test_a_webm_with_sparse_keyframes_really_grows(tmp_path: Path, effect: str) -> None:
    # One keyframe in 6 s (screen and browser recordings): seeking near the end lands far
    # before it, which once gave the clip back unchanged, "Done" and charged.
    src = tmp_path / "sparse.webm"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6",
        "-f", "lavfi", "-i", "sine=duration=6",
        "-c:v", "libvpx-vp9", "-g", "1000", "-deadline", "realtime", "-cpu-used", "8",
        "-c:a", "libopus", str(src),
    )  # fmt: skip
    out = tmp_path / "out.mp4"
    await media_effects.extend_clip(src, out, seconds=3, effect=effect)
    info = await media.probe(out)
    assert info.duration is not None and abs(info.duration - 9.0) < 0.25
    assert not await media.looks_blank(out, info.duration)
