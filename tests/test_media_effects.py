"""services.media.effects against a real ffmpeg on tiny clips and short sounds."""

from __future__ import annotations

import array
import asyncio
import itertools
import os
import re
import subprocess
from pathlib import Path

import pytest

from services.errors import MediaError
from services.media import effects as fx
from services.media import ffmpeg as media
from tests.media_factory import banner, ffmpeg_children, make_video

FPS = 25


# --- helpers -----------------------------------------------------------------------------


def ffmpeg(*args: str) -> str:
    cmd = [media.default_tools().ffmpeg, "-hide_banner", "-nostdin", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


def gray_frames(path: Path, width: int, height: int) -> list[bytes]:
    cmd = [media.default_tools().ffmpeg, "-v", "error", "-i", str(path)]
    cmd += ["-f", "rawvideo", "-pix_fmt", "gray", "-"]
    data = subprocess.run(cmd, capture_output=True, check=True).stdout
    size = width * height
    assert data and len(data) % size == 0
    return [data[i : i + size] for i in range(0, len(data), size)]


def mean_diff(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def samples(path: Path, *extra: str) -> array.array[int]:
    """Decoded audio as 8 kHz mono signed 16-bit samples."""
    cmd = [media.default_tools().ffmpeg, "-v", "error", "-i", str(path), *extra]
    cmd += ["-vn", "-ac", "1", "-ar", "8000", "-f", "s16le", "-"]
    data = array.array("h")
    data.frombytes(subprocess.run(cmd, capture_output=True, check=True).stdout)
    return data


def mean_volume(path: Path, *window: str) -> float:
    err = ffmpeg(*window, "-i", str(path), "-vn", "-af", "volumedetect", "-f", "null", "-")
    found = re.search(r"mean_volume: (-?[\d.]+|-inf) dB", err)
    assert found, err[-500:]
    return float(found.group(1))


def video_line(path: Path) -> str:
    return next(line for line in banner(path).splitlines() if "Video:" in line)


def moov_first(path: Path) -> bool:
    data = path.read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")


async def assert_clip(
    path: Path, *, width: int, height: int, seconds: float, audio: bool
) -> media.MediaInfo:
    info = await media.probe(path)
    assert (info.video_codec, info.width, info.height) == ("h264", width, height)
    assert info.audio_codec == ("aac" if audio else None)
    assert info.duration == pytest.approx(seconds, abs=0.15)
    assert " yuv420p(" in video_line(path)
    assert moov_first(path)
    return info


def odd_video(path: Path, width: int = 161, height: int = 121, seconds: float = 1.0) -> Path:
    """H.264 4:4:4 at an odd size, which 4:2:0 cannot carry as is."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={FPS}", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p", str(path),
    )  # fmt: skip
    return path


def tone(path: Path, seconds: float, *codec: str, frequency: int = 660) -> Path:
    source = f"sine=frequency={frequency}:sample_rate=48000:duration={seconds}"
    ffmpeg("-f", "lavfi", "-i", source, "-ac", "1", *codec, str(path))
    return path


def has_encoder(name: str) -> bool:
    cmd = [media.default_tools().ffmpeg, "-hide_banner", "-encoders"]
    listing = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return f" {name} " in listing


# --- extend_clip -------------------------------------------------------------------------


@pytest.mark.parametrize("effect", fx.EXTEND_EFFECTS)
@pytest.mark.parametrize(
    ("width", "height", "seconds", "audio"),
    [(160, 120, 1.0, True), (176, 320, 0.5, False)],
    ids=["landscape-audio", "portrait-short"],
)
async def test_extend_adds_seconds_and_keeps_the_format(
    tmp_path: Path, effect: str, width: int, height: int, seconds: float, audio: bool
) -> None:
    src = make_video(tmp_path / "src.mp4", seconds=seconds, width=width, height=height, audio=audio)
    source_info = await media.probe(src)
    assert source_info.duration is not None
    dest = tmp_path / "long.mp4"
    progress: list[float] = []
    await fx.extend_clip(src, dest, seconds=1.6, effect=effect, on_progress=progress.append)
    await assert_clip(
        dest, width=width, height=height, seconds=source_info.duration + 1.6, audio=audio
    )
    assert progress and progress[-1] == 1.0 and progress == sorted(progress)
    assert " 25 fps" in video_line(dest)

    frames = gray_frames(dest, width, height)
    main = len(gray_frames(src, width, height))
    extension = frames[main:]
    assert len(extension) == pytest.approx(1.6 * FPS, abs=2)
    # Moving pictures, not a frozen still: most frames differ from the one before.
    changes = sum(mean_diff(a, b) > 0.05 for a, b in itertools.pairwise(extension))
    assert changes > len(extension) * 0.6, (changes, len(extension))
    if effect == "slow_tail":
        # The slowed tail ends where the clip ends.
        assert mean_diff(extension[-1], frames[main - 1]) < 2
    else:
        assert mean_diff(extension[0], extension[-1]) > 2
    assert sorted(os.listdir(tmp_path)) == ["long.mp4", "src.mp4"]


async def test_boomerang_plays_the_end_backwards(tmp_path: Path) -> None:
    src = make_video(tmp_path / "src.mp4", seconds=1.2, width=160, height=120)
    dest = tmp_path / "boom.mp4"
    await fx.extend_clip(src, dest, seconds=0.6, effect="boomerang")
    await assert_clip(dest, width=160, height=120, seconds=1.8, audio=False)
    source = gray_frames(src, 160, 120)
    extension = gray_frames(dest, 160, 120)[len(source) :]
    for k in (0, 5, 12):
        nearest = min(range(len(source)), key=lambda i: mean_diff(extension[k], source[i]))
        assert abs(nearest - (len(source) - 1 - k)) <= 1, (k, nearest)


async def test_hold_push_zooms_into_the_last_frame(tmp_path: Path) -> None:
    src = make_video(tmp_path / "src.mp4", seconds=1.0, width=160, height=120)
    dest = tmp_path / "hold.mp4"
    await fx.extend_clip(src, dest, seconds=1.0, effect="hold_push")
    source = gray_frames(src, 160, 120)
    extension = gray_frames(dest, 160, 120)[len(source) :]
    assert mean_diff(extension[0], source[-1]) < 3
    assert mean_diff(extension[-1], source[-1]) > mean_diff(extension[0], source[-1]) + 3


async def test_extend_evens_out_odd_sizes(tmp_path: Path) -> None:
    src = odd_video(tmp_path / "odd.mp4")
    for effect in fx.EXTEND_EFFECTS:
        dest = tmp_path / f"{effect}.mp4"
        await fx.extend_clip(src, dest, seconds=0.5, effect=effect)
        await assert_clip(dest, width=160, height=120, seconds=1.5, audio=False)


async def test_extend_rejects_bad_arguments(tmp_path: Path) -> None:
    src = make_video(tmp_path / "src.mp4", seconds=0.5, width=160, height=120)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MediaError, match="unknown effect"):
        await fx.extend_clip(src, out / "x.mp4", seconds=2, effect="spin")
    for seconds in (0, -1, 1000):
        with pytest.raises(MediaError):
            await fx.extend_clip(src, out / "x.mp4", seconds=seconds)
    sound = tone(tmp_path / "a.wav", 1)
    with pytest.raises(MediaError, match="no video"):
        await fx.extend_clip(sound, out / "x.mp4", seconds=1)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    with pytest.raises(MediaError):
        await fx.extend_clip(broken, out / "x.mp4", seconds=1)
    assert list(out.iterdir()) == []


async def test_cancelling_extend_leaves_nothing_behind(tmp_path: Path) -> None:
    src = make_video(tmp_path / "src.mp4", seconds=1, width=640, height=360)
    out = tmp_path / "out"
    out.mkdir()
    started = asyncio.Event()
    task = asyncio.create_task(
        fx.extend_clip(
            src, out / "x.mp4", seconds=30, effect="hold_push", on_progress=lambda _: started.set()
        )
    )
    await asyncio.wait_for(started.wait(), timeout=20)
    assert ffmpeg_children(), "ffmpeg should be running"
    assert any(out.iterdir()), "the temp file should exist while rendering"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ffmpeg_children() == []
    assert list(out.iterdir()) == []


# --- generate_soundtrack -----------------------------------------------------------------


async def test_every_mood_gives_a_distinct_audible_track(tmp_path: Path) -> None:
    tracks: dict[str, array.array[int]] = {}
    for mood in fx.MOODS:
        dest = tmp_path / f"{mood}.m4a"
        progress: list[float] = []
        await fx.generate_soundtrack(dest, seconds=2.5, mood=mood, on_progress=progress.append)
        info = await media.probe(dest)
        assert (info.audio_codec, info.has_video) == ("aac", False)
        assert info.duration == pytest.approx(2.5, abs=0.1)
        assert mean_volume(dest) > -40
        assert progress and progress[-1] == 1.0
        tracks[mood] = samples(dest)
    moods = list(tracks)
    for i, first in enumerate(moods):
        for second in moods[i + 1 :]:
            a, b = tracks[first], tracks[second]
            n = min(len(a), len(b))
            diff = sum(abs(a[j] - b[j]) for j in range(n)) / n
            level = sum(abs(x) for x in a[:n]) / n
            assert diff > level * 0.3, (first, second)
    assert sorted(os.listdir(tmp_path)) == sorted(f"{mood}.m4a" for mood in fx.MOODS)


async def test_soundtrack_is_near_the_loudness_target(tmp_path: Path) -> None:
    dest = tmp_path / "epic.m4a"
    await fx.generate_soundtrack(dest, seconds=5, mood="epic")
    err = ffmpeg("-i", str(dest), "-af", "ebur128", "-f", "null", "-")
    loudness = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", err)[-1])
    assert -21 < loudness < -12


async def test_soundtrack_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="unknown mood"):
        await fx.generate_soundtrack(tmp_path / "x.m4a", seconds=3, mood="jazzy")
    with pytest.raises(MediaError):
        await fx.generate_soundtrack(tmp_path / "x.m4a", seconds=0)
    assert list(tmp_path.iterdir()) == []


# --- add_soundtrack ----------------------------------------------------------------------


def packet_hash(path: Path) -> str:
    """MD5 of the video packets as stored, so a stream copy hashes the same as its source."""
    cmd = [media.default_tools().ffmpeg, "-v", "error", "-i", str(path)]
    cmd += ["-map", "0:v", "-c", "copy", "-f", "md5", "-"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


async def test_music_under_a_silent_video_copies_the_picture(tmp_path: Path) -> None:
    src = make_video(tmp_path / "silent.mp4", seconds=2, width=160, height=120)
    music = tmp_path / "music.m4a"
    await fx.generate_soundtrack(music, seconds=5, mood="happy")
    dest = tmp_path / "scored.mp4"
    progress: list[float] = []
    await fx.add_soundtrack(src, music, dest, on_progress=progress.append)
    await assert_clip(dest, width=160, height=120, seconds=2.0, audio=True)
    assert progress and progress[-1] == 1.0
    assert mean_volume(dest, "-t", "1") > -40
    # The faded last second is quieter than the start.
    assert mean_volume(dest, "-ss", "1.6") < mean_volume(dest, "-t", "1") - 3
    assert packet_hash(dest) == packet_hash(src)


@pytest.mark.parametrize(
    ("name", "codec", "encoder"),
    [
        ("voice.ogg", ["-c:a", "libopus", "-b:a", "24k", "-application", "voip"], "libopus"),
        ("song.mp3", ["-c:a", "libmp3lame", "-b:a", "64k"], "libmp3lame"),
        ("clip.wav", ["-c:a", "pcm_s16le"], "pcm_s16le"),
    ],
)
async def test_short_audio_in_any_format_loops_to_fill_the_video(
    tmp_path: Path, name: str, codec: list[str], encoder: str
) -> None:
    if not has_encoder(encoder):
        pytest.skip(f"the bundled ffmpeg has no {encoder} encoder")
    src = make_video(tmp_path / "silent.mp4", seconds=3, width=160, height=120)
    sound = tone(tmp_path / name, 0.7, *codec)
    dest = tmp_path / "scored.mp4"
    await fx.add_soundtrack(src, sound, dest, music_volume=1.0)
    await assert_clip(dest, width=160, height=120, seconds=3.0, audio=True)
    # Well past the 0.7 s of the input and before the fade: only a loop can be sounding here.
    assert mean_volume(dest, "-ss", "1.2", "-t", "0.7") > -30


async def test_original_sound_is_mixed_in_or_dropped(tmp_path: Path) -> None:
    src = make_video(tmp_path / "talk.mp4", seconds=2, width=160, height=120, audio=True)
    music = tone(tmp_path / "music.wav", 3, frequency=1000)
    mixed, alone = tmp_path / "mixed.mp4", tmp_path / "alone.mp4"
    await fx.add_soundtrack(src, music, mixed)
    await fx.add_soundtrack(src, music, alone, keep_original=False)
    for path in (mixed, alone):
        await assert_clip(path, width=160, height=120, seconds=2.0, audio=True)
    a, b = samples(mixed, "-t", "1"), samples(alone, "-t", "1")
    n = min(len(a), len(b))
    assert sum(abs(a[i] - b[i]) for i in range(n)) / n > 500


async def test_other_video_formats_are_reencoded(tmp_path: Path) -> None:
    src = odd_video(tmp_path / "odd.mp4", seconds=1.5)
    music = tone(tmp_path / "music.wav", 1)
    dest = tmp_path / "scored.mp4"
    await fx.add_soundtrack(src, music, dest)
    await assert_clip(dest, width=160, height=120, seconds=1.5, audio=True)


async def test_add_soundtrack_rejects_what_it_cannot_use(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", seconds=1, width=160, height=120)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MediaError, match="no sound"):
        await fx.add_soundtrack(src, src, out / "x.mp4")
    sound = tone(tmp_path / "a.wav", 1)
    with pytest.raises(MediaError, match="no video"):
        await fx.add_soundtrack(sound, sound, out / "x.mp4")
    assert list(out.iterdir()) == []


# --- choosing from a prompt --------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "mood"),
    [
        ("a calm sunset, relaxing", "calm"),
        ("Спокойная река", "calm"),
        ("happy birthday, something fun", "happy"),
        ("Весёлая музыка и радость", "happy"),
        ("EPIC cinematic trailer", "epic"),
        ("эпичный кадр как в кино", "epic"),
        ("dark and scary forest", "dark"),
        ("мрачный страшный лес", "dark"),
        ("dreamy lo-fi romantic night", "dreamy"),
        ("мечтательная романтика", "dreamy"),
        ("a cat on a sofa", "calm"),
        ("", "calm"),
    ],
)
def test_mood_for(prompt: str, mood: str) -> None:
    assert fx.mood_for(prompt) == mood
    assert mood in fx.MOODS


@pytest.mark.parametrize(
    ("prompt", "effect"),
    [
        ("slow motion ending", "slow_tail"),
        ("make it slowmo", "slow_tail"),
        ("замедли конец", "slow_tail"),
        ("boomerang!", "boomerang"),
        ("play it in reverse, then loop", "boomerang"),
        ("бумеранг", "boomerang"),
        ("прокрути назад", "boomerang"),
        ("freeze and zoom in", "hold_push"),
        ("hold the last frame, slow push", "hold_push"),
        ("приближение в конце", "hold_push"),
        ("make it longer", "slow_tail"),
        ("", "slow_tail"),
    ],
)
def test_extend_effect_for(prompt: str, effect: str) -> None:
    assert fx.extend_effect_for(prompt) == effect
    assert effect in fx.EXTEND_EFFECTS
