"""No job can hold the studio hostage: every ffmpeg run is bounded, and a job that ends for
any reason stops its ffmpeg and frees its slot for the next person at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from services.errors import MediaError
from services.media import effects as media_effects
from services.media import ffmpeg as media
from services.model.jobs import JobState
from services.production import messages
from services.providers.base import JobSpec, ProviderState
from services.providers.catalogue import ModelKind, default_model
from services.providers.local import LocalStudio
from tests.conftest import OTHER_USER, USER, db_rows, make_settings, running_bot, services_of
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import _ffmpeg, ffmpeg_children
from tests.test_jobs import running_job

HAS_PROC = Path("/proc/self/stat").exists()
needs_proc = pytest.mark.skipif(not HAS_PROC, reason="needs /proc to see child processes")

# An input that never ends, for a render that would otherwise run forever.
ENDLESS = ["-re", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10", "-f", "null", "-"]


@needs_proc
async def test_ffmpeg_writing_past_the_end_is_stopped() -> None:
    # Silence without end, for a job that should last 2 s: killed once it is clearly past.
    args = ["-f", "lavfi", "-i", "anullsrc", "-f", "null", "-"]
    started = time.monotonic()
    with pytest.raises(MediaError, match="went on"):
        await media.run_ffmpeg(args, duration=2.0)
    assert time.monotonic() - started < 30
    assert ffmpeg_children() == []


@needs_proc
async def test_ffmpeg_that_stops_making_progress_is_stopped() -> None:
    # Every frame is dropped, so the output clock never moves while ffmpeg keeps decoding.
    args = [
        "-re", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=25",
        "-vf", "select=0", "-f", "null", "-",
    ]  # fmt: skip
    with pytest.raises(MediaError, match="no progress"):
        await media.run_ffmpeg(args, duration=10.0, stall_after=1.5)
    assert ffmpeg_children() == []


def test_every_run_has_a_limit_that_grows_with_the_work() -> None:
    assert media.work_limit(None) > 0
    assert media.work_limit(5) < media.work_limit(60) < float("inf")


@pytest.mark.parametrize("effect", media_effects.EXTEND_EFFECTS)
async def test_a_clip_whose_sound_ends_early_extends_in_sync(tmp_path: Path, effect: str) -> None:
    # 6 s of picture with 2 s of sound (edited and downloaded clips): this used to make ffmpeg
    # write audio forever. The result is 6 + 4 s, and the sound runs exactly as long.
    src = tmp_path / "short-sound.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(src),
    )  # fmt: skip
    out = tmp_path / "out.mp4"
    await asyncio.wait_for(media_effects.extend_clip(src, out, seconds=4, effect=effect), 120)
    info = await media.probe(out)
    assert info.duration is not None and abs(info.duration - 10.0) < 0.25
    assert info.has_audio


async def test_discarding_a_rendering_job_stops_ffmpeg_and_frees_the_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []

    async def run(self: LocalStudio, spec: dict[str, Any], output: Path, _: Any) -> None:
        started.append(str(spec["prompt"]))
        if spec["prompt"] == "endless":
            await media.run_ffmpeg(ENDLESS)
        output.write_bytes(b"rendered")

    async def unchecked(self: LocalStudio, spec: dict[str, Any], output: Path) -> None:
        """This test is about the slot; the result check has tests of its own."""

    monkeypatch.setattr(LocalStudio, "_run", run)
    monkeypatch.setattr(LocalStudio, "_check", unchecked)
    studio = LocalStudio(tmp_path)
    try:
        first = await studio.submit(_spec("endless"))
        second = await studio.submit(_spec("next"))
        for _ in range(100):
            if started and (not HAS_PROC or ffmpeg_children()):
                break
            await asyncio.sleep(0.05)
        # The second job waits its turn and says so; it does not pretend to render.
        assert (await studio.poll(second)).state == ProviderState.QUEUED
        await studio.discard(first)
        if HAS_PROC:
            assert ffmpeg_children() == []
        for _ in range(100):
            if (await studio.poll(second)).state == ProviderState.COMPLETED:
                break
            await asyncio.sleep(0.05)
        assert (await studio.poll(second)).state == ProviderState.COMPLETED
        assert started == ["endless", "next"]
    finally:
        await studio.close()


def _spec(prompt: str) -> JobSpec:
    model = default_model("local", ModelKind.IMAGE_TO_VIDEO)
    return JobSpec(model=model, prompt=prompt, inputs={}, duration=5, aspect="16:9")


def test_a_job_waiting_for_the_studio_says_it_is_in_line() -> None:
    job = running_job(provider_status="queued:waiting(0.40)|None|None")
    line = messages.status(job, now=30)
    assert "In line" in line and "Rendering" not in line
    assert "Rendering" in messages.status(running_job(provider_status="running:x||None"), now=30)


@needs_proc
async def test_an_endless_render_cannot_keep_the_next_person_waiting(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = LocalStudio._run

    async def run(self: LocalStudio, spec: dict[str, Any], output: Path, progress: Any) -> None:
        if "endless" in str(spec["prompt"]):
            await media.run_ffmpeg(ENDLESS)  # would run for the full work limit
        else:
            await original(self, spec, output, progress)

    monkeypatch.setattr(LocalStudio, "_run", run)
    settings = make_settings(tg, tmp_path, job_timeout_seconds=4)
    async with running_bot(settings) as app:
        tg.user_message(USER, photo=photo_bytes, caption="endless zoom in, just do it")
        await tg.wait_for(lambda: len(ffmpeg_children()) == 1, timeout=30)
        tg.user_message(OTHER_USER, photo=photo_bytes, caption="slow zoom in, just do it")
        started = time.monotonic()
        await tg.wait_for(lambda: len(tg.videos(OTHER_USER)) == 1, timeout=60)
        waited = time.monotonic() - started
        await tg.wait_for(
            lambda: any("took too long" in (m.text_plain or "") for m in tg.messages(USER)),
            timeout=30,
        )
        (ended,) = await services_of(app).jobs.for_user(USER, [JobState.TIMED_OUT])
        assert ffmpeg_children() == []
    # The second person waited for the first job's time limit, not for its endless render.
    assert waited < 40
    assert tg.videos(USER) == []
    rows = db_rows(tmp_path, "SELECT entry FROM ledger WHERE job_id = ? ORDER BY id", (ended.id,))
    assert [r[0] for r in rows] == ["reserve", "refund"]
