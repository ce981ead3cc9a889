"""A short run of every ffmpeg filter graph the bot uses, on tiny generated media.

ffmpeg builds differ (Debian 12's 5.1, the wheel's 7.x, whatever a distribution ships), and a
graph that one accepts another may refuse. This finds out in a few seconds which feature would
fail with the ffmpeg at hand, before a user does.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from services.errors import MediaError
from services.media import effects as media_effects
from services.media import ffmpeg as media

# Each step is bounded: a self-test must never hang the doctor.
_STEP_LIMIT = 60.0


@dataclass(frozen=True)
class FeatureCheck:
    """One feature: whether its graph ran on this ffmpeg, and what the user would lose."""

    feature: str
    ok: bool
    detail: str = ""


async def _make_inputs(folder: Path, tools: media.FFmpegTools) -> tuple[Path, Path, Path]:
    """A still, a 2 s clip whose sound stops after 1 s (the hard case), and a sound."""
    photo, clip, sound = folder / "still.png", folder / "clip.mp4", folder / "sound.m4a"
    await media.run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=1", "-frames:v", "1", str(photo)],
        tools=tools,
    )
    clip_args = [
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip),
    ]  # fmt: skip
    await media.run_ffmpeg(clip_args, tools=tools)
    await media.run_ffmpeg(
        ["-f", "lavfi", "-i", "sine=frequency=330:duration=3", "-ac", "1", str(sound)],
        tools=tools,
    )
    return photo, clip, sound


_RESULTS: dict[media.FFmpegTools, list[FeatureCheck]] = {}


async def run_self_test(tools: media.FFmpegTools | None = None) -> list[FeatureCheck]:
    """Run each feature's graph once per binary; a failed feature says what would fail."""
    tools = tools or media.default_tools()
    if tools not in _RESULTS:
        _RESULTS[tools] = await _run(tools)
    return _RESULTS[tools]


async def _run(tools: media.FFmpegTools) -> list[FeatureCheck]:
    with tempfile.TemporaryDirectory(prefix="selftest-") as name:
        folder = Path(name)
        try:
            photo, clip, sound = await _make_inputs(folder, tools)
        except MediaError as exc:
            return [FeatureCheck("test media", False, _first_line(exc))]
        out = folder / "out.mp4"
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            (
                "animate a photo",
                lambda: media.animate_photo(
                    photo, out, motion="zoom_in", duration=1, aspect="9:16", tools=tools
                ),
            ),
            *(
                (
                    f"extend a clip ({effect.replace('_', ' ')})",
                    _bind_extend(clip, out, effect, tools),
                )
                for effect in media_effects.EXTEND_EFFECTS
            ),
            (
                "generated music",
                lambda: media_effects.generate_soundtrack(
                    folder / "music.m4a", seconds=2, mood="epic", tools=tools
                ),
            ),
            (
                "add music / the user's own sound",
                lambda: media_effects.add_soundtrack(clip, sound, out, tools=tools),
            ),
            (
                "shrink a big video for Telegram",
                lambda: media.reencode_to_fit(clip, out, max_bytes=200_000, tools=tools),
            ),
        ]
        results = []
        for feature, step in steps:
            try:
                await asyncio.wait_for(step(), _STEP_LIMIT)
            except (MediaError, TimeoutError) as exc:
                results.append(FeatureCheck(feature, False, _first_line(exc)))
            else:
                results.append(FeatureCheck(feature, True))
        return results


def _bind_extend(
    clip: Path, out: Path, effect: str, tools: media.FFmpegTools
) -> Callable[[], Awaitable[None]]:
    return lambda: media_effects.extend_clip(clip, out, seconds=2, effect=effect, tools=tools)


def _first_line(exc: BaseException) -> str:
    """The line of ffmpeg's complaint that names the problem (the operator reads this)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    telling = [line for line in lines if "rror" in line or "annot" in line or "nvalid" in line]
    return (telling or lines or [type(exc).__name__])[0][:200]
