"""services.media.stitch against a real ffmpeg: whichever ``media.default_tools()`` finds.

Run it with Debian's ffmpeg 5.1 on PATH and with ``FFMPEG_BINARY=bundled`` (imageio-ffmpeg's):
the graph must work on both. Clips differ the way a story's shots do: size, aspect, frame rate,
sound or none.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from services.errors import MediaError
from services.media import ffmpeg as media
from services.media.stitch import crossfade_offsets, stitch, story_size
from tests.media_factory import banner, make_sound, make_video

TOL = 0.15
SILENT = -60.0


# --- helpers -----------------------------------------------------------------------------


def decoded(path: Path, *args: str) -> bytes:
    cmd = [media.default_tools().ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-i", str(path)]
    return subprocess.run([*cmd, *args], capture_output=True, check=True, timeout=60).stdout


def video_seconds(path: Path, fps: int = 30) -> float:
    """The picture's length, counted in decoded frames (tiny ones: only the count matters)."""
    frames = decoded(
        path, "-map", "0:v:0", "-vf", "scale=4:4", "-f", "rawvideo", "-pix_fmt", "gray", "-"
    )
    return len(frames) / 16 / fps


def audio_seconds(path: Path) -> float:
    """The sound's length, counted in decoded samples."""
    data = decoded(path, "-map", "0:a:0", "-ac", "1", "-ar", "8000", "-f", "s16le", "-")
    return len(data) / 2 / 8000


def mean_volume(path: Path, start: float = 0.0, seconds: float | None = None) -> float:
    window = ["-ss", f"{start}"] + (["-t", f"{seconds}"] if seconds else [])
    cmd = [media.default_tools().ffmpeg, "-hide_banner", "-nostdin", *window, "-i", str(path)]
    cmd += ["-vn", "-af", "volumedetect", "-f", "null", "-"]
    err = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stderr
    found = re.search(r"mean_volume: (-?[\d.]+|-inf) dB", err)
    assert found, err[-500:]
    return float(found.group(1))


def rgb_frame(path: Path, at: float, width: int, height: int) -> bytes:
    cmd = [media.default_tools().ffmpeg, "-hide_banner", "-nostdin", "-v", "error"]
    cmd += ["-ss", f"{at}", "-i", str(path), "-frames:v", "1", "-f", "rawvideo"]
    frame = subprocess.run(
        [*cmd, "-pix_fmt", "rgb24", "-"], capture_output=True, check=True, timeout=60
    ).stdout
    assert len(frame) == width * height * 3
    return frame


def video_line(path: Path) -> str:
    return next(line for line in banner(path).splitlines() if "Video:" in line)


async def assert_story(
    path: Path, info: media.MediaInfo, *, size: tuple[int, int], seconds: float
) -> None:
    """What a viewer notices: the frame, the length, and sound from the first to the last frame."""
    assert (info.width, info.height) == size
    assert info.width % 2 == 0 and info.height % 2 == 0
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.duration == pytest.approx(seconds, abs=TOL)
    assert video_seconds(path) == pytest.approx(seconds, abs=TOL)
    assert audio_seconds(path) == pytest.approx(seconds, abs=TOL)
    line = video_line(path)
    assert " yuv420p(" in line or " yuv420p," in line, line
    assert " 30 fps" in line, line


@pytest.fixture
def shots(tmp_path: Path) -> list[Path]:
    """A landscape 24 fps shot with sound, a portrait 30 fps one without, a 16:9 one with."""
    return [
        make_video(tmp_path / "a.mp4", seconds=2.0, width=320, height=240, fps=24, audio=True),
        make_video(tmp_path / "b.mp4", seconds=1.5, width=240, height=320, fps=30),
        make_video(tmp_path / "c.mp4", seconds=2.0, width=640, height=360, fps=25, audio=True),
    ]


# --- joining -----------------------------------------------------------------------------


async def test_cuts_play_every_shot_in_full(shots: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "story.mp4"
    info = await stitch(shots, out)
    await assert_story(out, info, size=(320, 240), seconds=5.5)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


async def test_crossfades_overlap_each_join(shots: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "story.mp4"
    info = await stitch(shots, out, transition="fade", fade=0.5)
    await assert_story(out, info, size=(320, 240), seconds=5.5 - 2 * 0.5)


async def test_a_fade_longer_than_a_shot_is_shortened(tmp_path: Path) -> None:
    clips = [make_video(tmp_path / f"{i}.mp4", seconds=1.0, fps=30) for i in range(2)]
    out = tmp_path / "story.mp4"
    info = await stitch(clips, out, transition="fade", fade=5.0)
    # Half the shortest shot at most, so no shot is faded in and out at once.
    await assert_story(out, info, size=(320, 240), seconds=2.0 - 0.5)


async def test_the_output_size_can_be_chosen(shots: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "story.mp4"
    info = await stitch(shots[:2], out, size=(641, 361))
    await assert_story(out, info, size=(640, 360), seconds=3.5)


async def test_a_portrait_shot_is_letterboxed_not_stretched(
    shots: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "story.mp4"
    await stitch(shots, out)
    # The middle of the portrait shot: 240x320 fits a 320x240 frame as 180x240, centred.
    frame = rgb_frame(out, 2.75, 320, 240)
    lit = [
        x
        for x in range(320)
        if max(max(frame[(y * 320 + x) * 3 : (y * 320 + x) * 3 + 3]) for y in range(0, 240, 4)) > 40
    ]
    assert lit, "the portrait shot is missing"
    assert lit[0] == pytest.approx(70, abs=4) and lit[-1] == pytest.approx(249, abs=4)
    assert max(frame[(120 * 320 + 10) * 3 : (120 * 320 + 10) * 3 + 3]) < 24  # black, not grey


async def test_each_shot_keeps_its_own_sound(shots: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "story.mp4"
    await stitch(shots, out)
    assert mean_volume(out, 0.3, 1.4) > -40  # the first shot's tone
    assert mean_volume(out, 2.2, 1.1) < SILENT  # the portrait shot has none
    assert mean_volume(out, 3.8, 1.4) > -40  # the last shot's tone, not shifted into the gap


async def test_a_music_bed_makes_a_silent_story_audible(tmp_path: Path) -> None:
    clips = [make_video(tmp_path / f"{i}.mp4", seconds=1.5, fps=24) for i in range(2)]
    music = make_sound(tmp_path / "music.m4a", "aac", seconds=1.0)  # shorter: it must loop
    quiet, scored = tmp_path / "quiet.mp4", tmp_path / "scored.mp4"
    await stitch(clips, quiet, transition="fade")
    info = await stitch(clips, scored, transition="fade", music=music)
    assert mean_volume(quiet) < SILENT
    assert mean_volume(scored, 0.0, 1.0) > -40
    assert mean_volume(scored, 1.1, 0.7) > -40  # looped past its 1 s, before the fade-out
    await assert_story(scored, info, size=(320, 240), seconds=2.5)


# --- refusals ----------------------------------------------------------------------------


async def test_one_clip_is_not_a_story(shots: list[Path], tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="at least 2"):
        await stitch(shots[:1], tmp_path / "story.mp4")
    assert not (tmp_path / "story.mp4").exists()


async def test_an_unreadable_clip_is_named(shots: list[Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    with pytest.raises(MediaError, match=r"clip 2 \(broken.mp4\) is unreadable"):
        await stitch([shots[0], broken], tmp_path / "story.mp4")
    assert not (tmp_path / "story.mp4").exists()


async def test_a_clip_without_video_is_refused(shots: list[Path], tmp_path: Path) -> None:
    sound = make_sound(tmp_path / "voice.m4a", "aac", seconds=1.0)
    with pytest.raises(MediaError, match="has no video"):
        await stitch([shots[0], sound], tmp_path / "story.mp4")


async def test_bad_arguments_are_refused(shots: list[Path], tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="unknown transition"):
        await stitch(shots, tmp_path / "story.mp4", transition="wipe")  # type: ignore[arg-type]
    with pytest.raises(MediaError, match="no sound"):
        await stitch(shots, tmp_path / "story.mp4", music=shots[1])


# --- the arithmetic ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1920, 1080, (1280, 720)),
        (1080, 1920, (720, 1280)),
        (1440, 1080, (960, 720)),
        (2560, 1080, (1280, 540)),
        (320, 240, (320, 240)),  # never upscaled
        (321, 241, (320, 240)),
    ],
)
def test_story_size_keeps_the_first_shots_shape(
    width: int, height: int, expected: tuple[int, int]
) -> None:
    assert story_size(width, height) == expected


def test_each_crossfade_starts_one_fade_earlier_than_the_last() -> None:
    assert crossfade_offsets([2.0, 1.5, 2.0, 3.0], 0.5) == pytest.approx([1.5, 2.5, 4.0])
