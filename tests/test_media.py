"""services.media.ffmpeg against a real ffmpeg on tiny files."""

from __future__ import annotations

import asyncio
import copy
import itertools
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from services.errors import MediaError
from services.media import ffmpeg as media
from services.media.ffmpeg import FFmpegTools, MediaInfo
from tests.media_factory import banner, ffmpeg_children, make_big_video, make_photo, make_video

HAS_PROC = Path("/proc/self/stat").exists()


# --- helpers -----------------------------------------------------------------------------


def gray_frames(path: Path, width: int, height: int) -> list[bytes]:
    """Every frame of a small clip as raw 8-bit gray."""
    cmd = [media.default_tools().ffmpeg, "-v", "error", "-i", str(path)]
    cmd += ["-f", "rawvideo", "-pix_fmt", "gray", "-"]
    data = subprocess.run(cmd, capture_output=True, check=True).stdout
    size = width * height
    assert data and len(data) % size == 0
    return [data[i : i + size] for i in range(0, len(data), size)]


def mean_diff(a: bytes, b: bytes) -> float:
    assert len(a) == len(b)
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def top_level_boxes(path: Path) -> list[str]:
    names = []
    with path.open("rb") as fh:
        while header := fh.read(8):
            size, name = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0] - 8
            elif size == 0:
                names.append(name.decode("latin-1"))
                break
            names.append(name.decode("latin-1"))
            fh.seek(size - 8, os.SEEK_CUR)
    return names


def assert_good_mp4(
    path: Path, info: MediaInfo, *, width: int, height: int, seconds: float
) -> None:
    assert info.video_codec == "h264"
    assert (info.width, info.height) == (width, height)
    assert info.duration is not None and abs(info.duration - seconds) <= 0.1
    video_line = next(line for line in banner(path).splitlines() if "Video:" in line)
    assert " yuv420p(" in video_line, video_line
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat"), boxes


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("photos")


@pytest.fixture(scope="session")
def photo(photo_dir: Path) -> Path:
    return make_photo(photo_dir / "photo.jpg", 640, 480)


@pytest.fixture(scope="session")
def portrait(photo_dir: Path) -> Path:
    return make_photo(photo_dir / "portrait.png", 360, 640, fmt="png")


# --- locating ffmpeg ----------------------------------------------------------------------


def test_locate_falls_back_to_bundled_when_path_has_no_ffmpeg(tmp_path: Path) -> None:
    tools = media.locate_ffmpeg(search_path=str(tmp_path))
    assert tools.source == "bundled"
    assert tools.ffprobe is None
    assert os.path.isabs(tools.ffmpeg) and os.access(tools.ffmpeg, os.X_OK)


def test_locate_prefers_an_ffmpeg_on_the_search_path(tmp_path: Path) -> None:
    bundled = media.locate_ffmpeg(search_path=str(tmp_path / "empty")).ffmpeg
    (tmp_path / "ffmpeg").symlink_to(bundled)
    tools = media.locate_ffmpeg(search_path=str(tmp_path))
    assert tools == FFmpegTools(ffmpeg=str(tmp_path / "ffmpeg"), ffprobe=None, source="system")

    fake_probe = tmp_path / "ffprobe"
    fake_probe.write_text("#!/bin/sh\nexit 0\n")
    fake_probe.chmod(0o755)
    assert media.locate_ffmpeg(search_path=str(tmp_path)).ffprobe == str(fake_probe)


def test_locate_raises_when_nothing_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imageio_ffmpeg

    def missing() -> str:
        raise RuntimeError("No ffmpeg exe could be found")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    with pytest.raises(MediaError, match="ffmpeg not found"):
        media.locate_ffmpeg(search_path=str(tmp_path))


def test_ffmpeg_binary_chooses_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = media.locate_ffmpeg(search_path=str(tmp_path / "empty")).ffmpeg
    (tmp_path / "ffmpeg").symlink_to(bundled)
    # "bundled" wins over an ffmpeg on PATH (how CI runs the media tests on both builds).
    assert media.locate_ffmpeg(str(tmp_path), choice="bundled").source == "bundled"
    # A path: that binary, with the ffprobe beside it when there is one.
    chosen = media.locate_ffmpeg(str(tmp_path / "empty"), choice=str(tmp_path / "ffmpeg"))
    assert chosen.ffmpeg == str(tmp_path / "ffmpeg") and chosen.ffprobe is None
    with pytest.raises(MediaError, match="FFMPEG_BINARY"):
        media.locate_ffmpeg(choice=str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(MediaError, match="no ffmpeg on PATH"):
        media.locate_ffmpeg(str(tmp_path / "empty"), choice="system")
    monkeypatch.setenv("FFMPEG_BINARY", "bundled")
    media.use_ffmpeg(None)
    try:
        assert media.default_tools().source == "bundled"
    finally:
        monkeypatch.delenv("FFMPEG_BINARY")
        media.use_ffmpeg(None)


def test_default_tools_is_cached() -> None:
    assert media.default_tools() is media.default_tools()


async def test_a_located_system_ffmpeg_really_works(tmp_path: Path, photo: Path) -> None:
    bundled = media.locate_ffmpeg(search_path=str(tmp_path / "empty")).ffmpeg
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ffmpeg").symlink_to(bundled)
    tools = media.locate_ffmpeg(search_path=str(bin_dir))
    assert tools.source == "system"

    info = await media.probe(photo, tools)
    assert (info.video_codec, info.width, info.height) == ("mjpeg", 640, 480)
    out = tmp_path / "out.mp4"
    await media.animate_photo(
        photo, out, motion="zoom_in", duration=0.4, aspect="1:1", height=144, tools=tools
    )
    assert_good_mp4(out, await media.probe(out, tools), width=144, height=144, seconds=0.4)


# --- probing real files -------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "codec"), [("jpg", "mjpeg"), ("png", "png"), ("webp", "webp")])
async def test_probe_photos(tmp_path: Path, fmt: str, codec: str) -> None:
    path = make_photo(tmp_path / f"p.{fmt}", 320, 200, fmt=fmt)
    info = await media.probe(path)
    assert info == MediaInfo(
        size=path.stat().st_size,
        duration=None,
        width=320,
        height=200,
        video_codec=codec,
        audio_codec=None,
        has_video=True,
        has_audio=False,
        bit_rate=info.bit_rate,
        container=info.container,
    )
    assert info.still, info.container  # an image demuxer read it, whatever the codec


async def test_probe_video_without_audio(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", seconds=1.6, width=320, height=240)
    info = await media.probe(path)
    assert (info.video_codec, info.width, info.height) == ("h264", 320, 240)
    assert info.duration == pytest.approx(1.6, abs=0.05)
    assert info.has_video and not info.has_audio and info.audio_codec is None
    assert info.size == path.stat().st_size and info.bit_rate and info.bit_rate > 0


async def test_probe_video_with_audio(tmp_path: Path) -> None:
    path = make_video(tmp_path / "va.mp4", seconds=2.0, width=176, height=144, audio=True)
    info = await media.probe(path)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (176, 144)
    assert info.has_video and info.has_audio
    assert info.duration == pytest.approx(2.0, abs=0.1)


async def test_probe_missing_empty_and_garbage_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    whole = make_video(tmp_path / "whole.mp4", seconds=2.0)
    truncated = tmp_path / "truncated.mp4"
    # make_video leaves the moov atom at the end, so cutting the tail loses the index.
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    for path in (tmp_path / "missing.mp4", empty, text, truncated):
        with pytest.raises(MediaError, match="not a media file"):
            await media.probe(path)


async def test_probe_through_ffprobe_json(tmp_path: Path) -> None:
    sample = tmp_path / "sample.json"
    sample.write_text(
        '{"streams": [{"codec_type": "video", "codec_name": "h264", "width": 640,'
        ' "height": 360}], "format": {"format_name": "mov,mp4", "duration": "3.5",'
        ' "bit_rate": "800000"}}'
    )
    fake = tmp_path / "ffprobe"
    fake.write_text(f"#!/bin/sh\ncat '{sample}'\n")
    fake.chmod(0o755)
    video = make_video(tmp_path / "v.mp4", seconds=0.2)
    tools = FFmpegTools(media.default_tools().ffmpeg, str(fake), "system")
    info = await media.probe(video, tools)
    assert (info.width, info.height, info.duration, info.bit_rate) == (640, 360, 3.5, 800_000)
    assert info.size == video.stat().st_size

    fake.write_text("#!/bin/sh\necho 'Invalid data found when processing input' >&2\nexit 1\n")
    with pytest.raises(MediaError, match="Invalid data"):
        await media.probe(video, tools)


# --- parsing recorded output --------------------------------------------------------------

PHONE_FFPROBE: dict[str, Any] = {
    "streams": [
        {
            "index": 0,
            "codec_name": "h264",
            "codec_long_name": "H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10",
            "profile": "High",
            "codec_type": "video",
            "codec_tag_string": "avc1",
            "codec_tag": "0x31637661",
            "width": 1920,
            "height": 1080,
            "coded_width": 1920,
            "coded_height": 1080,
            "has_b_frames": 0,
            "sample_aspect_ratio": "1:1",
            "display_aspect_ratio": "16:9",
            "pix_fmt": "yuv420p",
            "level": 40,
            "color_range": "tv",
            "r_frame_rate": "30/1",
            "avg_frame_rate": "30/1",
            "time_base": "1/90000",
            "start_pts": 0,
            "start_time": "0.000000",
            "duration_ts": 1089000,
            "duration": "12.100000",
            "bit_rate": "16953444",
            "nb_frames": "363",
            "disposition": {"default": 1, "attached_pic": 0},
            "tags": {"language": "eng", "handler_name": "VideoHandle"},
            "side_data_list": [
                {
                    "side_data_type": "Display Matrix",
                    "displaymatrix": "\n00000000:            0       65536           0\n",
                    "rotation": -90,
                }
            ],
        },
        {
            "index": 1,
            "codec_name": "aac",
            "codec_type": "audio",
            "sample_rate": "48000",
            "channels": 2,
            "channel_layout": "stereo",
            "duration": "12.096000",
            "bit_rate": "256000",
            "disposition": {"default": 1, "attached_pic": 0},
        },
    ],
    "format": {
        "filename": "VID_20240501_101010.mp4",
        "nb_streams": 2,
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "format_long_name": "QuickTime / MOV",
        "start_time": "0.000000",
        "duration": "12.100000",
        "size": "25968436",
        "bit_rate": "17169213",
        "probe_score": 100,
    },
}


def test_parse_ffprobe_json_phone_video() -> None:
    info = media.parse_ffprobe_json(PHONE_FFPROBE, 25968436)
    assert info == MediaInfo(
        size=25968436,
        duration=12.1,
        width=1080,
        height=1920,
        video_codec="h264",
        audio_codec="aac",
        has_video=True,
        has_audio=True,
        bit_rate=17169213,
        container="mov,mp4,m4a,3gp,3g2,mj2",
    )
    assert not info.still


def test_parse_ffprobe_json_variants() -> None:
    old = copy.deepcopy(PHONE_FFPROBE)
    del old["streams"][0]["side_data_list"]
    old["streams"][0]["tags"]["rotate"] = "180"
    del old["format"]["duration"]
    info = media.parse_ffprobe_json(old, 1)
    assert (info.width, info.height, info.duration) == (1920, 1080, 12.1)

    photo = {
        "streams": [{"codec_type": "video", "codec_name": "mjpeg", "width": 4032, "height": 3024}],
        "format": {"format_name": "image2", "duration": "0.040000", "bit_rate": "N/A"},
    }
    info = media.parse_ffprobe_json(photo, 10)
    assert (info.duration, info.bit_rate, info.video_codec) == (None, None, "mjpeg")
    assert info.still

    song = {
        "streams": [
            {"codec_type": "audio", "codec_name": "mp3"},
            {
                "codec_type": "video",
                "codec_name": "png",
                "width": 600,
                "height": 600,
                "disposition": {"attached_pic": 1},
            },
        ],
        "format": {"format_name": "mp3", "duration": "185.3"},
    }
    info = media.parse_ffprobe_json(song, 10)
    assert not info.has_video and info.width is None and info.audio_codec == "mp3"
    assert info.duration == 185.3

    with pytest.raises(MediaError, match="not a media file"):
        media.parse_ffprobe_json({"streams": [], "format": {"format_name": "tty"}}, 10)


# Recorded from ffmpeg 9 (the bundled build): video + audio, rotated with side data.
BANNER_ROTATED = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'rot.mp4':
  Metadata:
    major_brand     : isom
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    encoder         : Lavf63.1.102
  Duration: 00:00:02.00, start: 0.000000, bitrate: 778 kb/s
  Stream #0:0[0x1](und): Video: h264 (Constrained Baseline) (avc1 / 0x31637661), \
yuv420p(progressive), 320x240 [SAR 1:1 DAR 4:3], 697 kb/s, 25 fps, 25 tbr, 12800 tbn (default)
    Metadata:
      handler_name    : VideoHandler
      encoder         : Lavc63.1.102 libx264
    Side data:
      Display Matrix: rotation of 90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, \
69 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
At least one output file must be specified
"""

# ffmpeg 4-6 style: lower-case side data, a "rotate" tag, a data stream, 1920x1080 after a tag.
BANNER_OLD_PHONE = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'IMG_1234.MOV':
  Metadata:
    major_brand     : qt
    creation_time   : 2023-06-01T10:00:00.000000Z
  Duration: 00:00:07.53, start: 0.000000, bitrate: 10512 kb/s
    Stream #0:0(und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv, bt709), 1920x1080, \
10390 kb/s, 29.98 fps, 29.97 tbr, 600 tbn, 600 tbc (default)
    Metadata:
      rotate          : 90
      creation_time   : 2023-06-01T10:00:00.000000Z
      handler_name    : Core Media Video
    Side data:
      displaymatrix: rotation of -90.00 degrees
    Stream #0:1(und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 111 kb/s
    Stream #0:2(und): Data: none (mebx / 0x7862656D), 0 kb/s (default)
At least one output file must be specified
"""

# Recorded: an m4a whose only picture is the cover art.
BANNER_COVER_ART = """\
[in#0 @ 0x55cd1d3bb040] stream 0, timescale not set
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'cover.m4a':
  Metadata:
    major_brand     : M4A
  Duration: 00:00:02.00, start: 0.000000, bitrate: 162 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, \
69 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
  Stream #0:1[0x0]: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 640x480 \
[SAR 1:1 DAR 4:3], 90k tbr, 90k tbn (attached pic)
At least one output file must be specified
"""

BANNER_JPEG = """\
Input #0, image2, from 'a.jpg':
  Duration: 00:00:00.04, start: 0.000000, bitrate: 4345 kb/s
  Stream #0:0: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 640x480 \
[SAR 1:1 DAR 4:3], 25 fps, 25 tbr, 25 tbn
At least one output file must be specified
"""

BANNER_PNG = """\
Input #0, png_pipe, from 'a.png':
  Duration: N/A, bitrate: N/A
  Stream #0:0: Video: png, rgb24(pc, gbr/unknown/unknown), 1080x1350 [SAR 1:1 DAR 4:5], \
25 fps, 25 tbr, 25 tbn
At least one output file must be specified
"""

BANNER_INVALID = """\
[in#0 @ 0x56426ced4040] Format mov,mp4,m4a,3gp,3g2,mj2 detected only with low score of 1
[in#0 @ 0x56426ced4040] moov atom not found
[in#0 @ 0x56426ced3cc0] Error opening input: Invalid data found when processing input
Error opening input file text.mp4.
Error opening input files: Invalid data found when processing input
"""


def test_parse_banner_rotated_video_with_audio() -> None:
    info = media.parse_ffmpeg_banner(BANNER_ROTATED, 194_500)
    assert info == MediaInfo(
        size=194_500,
        duration=2.0,
        width=240,
        height=320,
        video_codec="h264",
        audio_codec="aac",
        has_video=True,
        has_audio=True,
        bit_rate=778_000,
        container="mov,mp4,m4a,3gp,3g2,mj2",
    )


def test_parse_banner_old_style_phone_video() -> None:
    info = media.parse_ffmpeg_banner(BANNER_OLD_PHONE, 1)
    assert (info.width, info.height) == (1080, 1920)
    assert (info.video_codec, info.audio_codec) == ("hevc", "aac")
    assert info.duration == pytest.approx(7.53)
    assert info.bit_rate == 10_512_000


def test_parse_banner_ignores_attached_pictures() -> None:
    info = media.parse_ffmpeg_banner(BANNER_COVER_ART, 1)
    assert not info.has_video and info.video_codec is None and info.width is None
    assert info.has_audio and info.audio_codec == "aac" and info.duration == 2.0


def test_parse_banner_images() -> None:
    jpeg = media.parse_ffmpeg_banner(BANNER_JPEG, 1)
    assert (jpeg.video_codec, jpeg.width, jpeg.height, jpeg.duration) == ("mjpeg", 640, 480, None)
    assert jpeg.still and jpeg.container == "image2"
    png = media.parse_ffmpeg_banner(BANNER_PNG, 1)
    assert (png.video_codec, png.width, png.height) == ("png", 1080, 1350)
    assert png.duration is None and png.bit_rate is None and png.still


def test_parse_banner_rejects_garbage() -> None:
    for text in (BANNER_INVALID, "", "At least one output file must be specified\n"):
        with pytest.raises(MediaError, match="not a media file"):
            media.parse_ffmpeg_banner(text, 12)
    streamless = "Input #0, tty, from 'x.txt':\n  Duration: 00:00:01.00, bitrate: 1 kb/s\n"
    with pytest.raises(MediaError, match="no audio or video"):
        media.parse_ffmpeg_banner(streamless, 12)


# --- animate_photo ------------------------------------------------------------------------


def test_video_size_for() -> None:
    assert media.video_size_for("16:9", 720) == (1280, 720)
    assert media.video_size_for("9:16", 720) == (720, 1280)
    assert media.video_size_for("1:1", 720) == (720, 720)
    assert media.video_size_for("4:5", 1080) == (1080, 1350)
    assert media.video_size_for("16:9", 144) == (256, 144)
    assert all(v % 2 == 0 for a in media.ASPECTS for v in media.video_size_for(a, 181))
    with pytest.raises(MediaError):
        media.video_size_for("2:1", 720)


def test_is_motion() -> None:
    assert all(media.is_motion(m) for m in media.MOTIONS)
    assert not media.is_motion("spin")


@pytest.mark.parametrize("aspect", list(media.ASPECTS))
@pytest.mark.parametrize("motion", media.MOTIONS)
async def test_animate_every_motion_and_aspect(
    tmp_path: Path, photo: Path, motion: str, aspect: str
) -> None:
    out = tmp_path / "clip.mp4"
    await media.animate_photo(photo, out, motion=motion, duration=1.0, aspect=aspect, height=144)
    width, height = media.video_size_for(aspect, 144)
    info = await media.probe(out)
    assert_good_mp4(out, info, width=width, height=height, seconds=1.0)
    assert not info.has_audio
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


async def test_animate_portrait_photo_fractional_duration(tmp_path: Path, portrait: Path) -> None:
    out = tmp_path / "clip.mp4"
    await media.animate_photo(
        portrait, out, motion="pan_up", duration=1.5, aspect="16:9", height=180, fps=24
    )
    assert_good_mp4(out, await media.probe(out), width=320, height=180, seconds=1.5)


async def test_motions_move_and_differ(tmp_path: Path, photo: Path) -> None:
    clips = {}
    for motion in ("zoom_in", "pan_left", "pan_up"):
        clips[motion] = tmp_path / f"{motion}.mp4"
        await media.animate_photo(
            photo, clips[motion], motion=motion, duration=1.0, aspect="16:9", height=144
        )
    frames = {motion: gray_frames(clip, 256, 144) for motion, clip in clips.items()}
    for motion, shots in frames.items():
        assert len(shots) == 25
        assert mean_diff(shots[0], shots[-1]) > 3, motion
    middles = {motion: shots[12] for motion, shots in frames.items()}
    assert mean_diff(middles["zoom_in"], middles["pan_left"]) > 3
    assert mean_diff(middles["pan_left"], middles["pan_up"]) > 3


@pytest.mark.parametrize("aspect", ["16:9", "9:16"])
async def test_no_black_edges_anywhere(tmp_path: Path, aspect: str) -> None:
    white = tmp_path / "white.png"
    cmd = [media.default_tools().ffmpeg, "-v", "error", "-f", "lavfi", "-i"]
    subprocess.run([*cmd, "color=white:size=300x500", "-frames:v", "1", str(white)], check=True)
    width, height = media.video_size_for(aspect, 144)
    for motion in media.MOTIONS:
        out = tmp_path / f"{motion}.mp4"
        await media.animate_photo(
            white, out, motion=motion, duration=0.6, aspect=aspect, height=144
        )
        darkest = min(min(shot) for shot in gray_frames(out, width, height))
        assert darkest > 200, f"{motion}: a pixel as dark as {darkest}"


async def test_zoom_in_and_out_mirror_each_other(tmp_path: Path, photo: Path) -> None:
    zin, zout = tmp_path / "in.mp4", tmp_path / "out.mp4"
    for motion, path in (("zoom_in", zin), ("zoom_out", zout)):
        await media.animate_photo(
            photo, path, motion=motion, duration=1.0, aspect="1:1", height=144
        )
    ins, outs = gray_frames(zin, 144, 144), gray_frames(zout, 144, 144)
    assert mean_diff(ins[0], outs[-1]) < 2 and mean_diff(ins[-1], outs[0]) < 2
    assert mean_diff(ins[0], ins[-1]) > 3


async def test_animate_reports_increasing_progress(tmp_path: Path, photo: Path) -> None:
    seen: list[float] = []

    async def on_progress(fraction: float) -> None:
        seen.append(fraction)

    out = tmp_path / "clip.mp4"
    await media.animate_photo(
        photo, out, motion="pan_right", duration=3.0, aspect="16:9", height=180,
        on_progress=on_progress,
    )  # fmt: skip
    assert seen and seen[-1] == 1.0
    assert all(0 <= a < b <= 1 for a, b in itertools.pairwise(seen))


async def test_run_ffmpeg_progress_fractions(tmp_path: Path) -> None:
    seen: list[float] = []
    # -readrate paces the source, so even a fast machine reports several times.
    args = ["-stats_period", "0.05", "-readrate", "8", "-f", "lavfi"]
    args += ["-i", "testsrc2=size=320x240:rate=25", "-t", "4", "-c:v", "libx264", "-f", "mp4"]
    await media.run_ffmpeg([*args, str(tmp_path / "o.mp4")], duration=4.0, on_progress=seen.append)
    assert len(seen) >= 3 and seen[-1] == 1.0
    assert seen == sorted(set(seen))
    assert 0 < seen[0] < 1


async def test_run_ffmpeg_failure_carries_stderr_tail(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="No such file") as caught:
        await media.run_ffmpeg(["-i", str(tmp_path / "nope.jpg"), "-f", "null", "-"])
    assert "exit code" in str(caught.value)


async def test_progress_callback_errors_do_not_abort(tmp_path: Path, photo: Path) -> None:
    def broken(fraction: float) -> None:
        raise ValueError("display went away")

    out = tmp_path / "clip.mp4"
    await media.animate_photo(
        photo, out, motion="zoom_out", duration=0.5, aspect="1:1", height=144, on_progress=broken
    )
    assert out.stat().st_size > 0


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc to see child processes")
async def test_run_ffmpeg_timeout_kills_the_process() -> None:
    args = ["-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "null", "-"]
    with pytest.raises(MediaError, match="timed out"):
        await media.run_ffmpeg(args, timeout=0.5)
    assert ffmpeg_children() == []


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc to see child processes")
async def test_cancelling_animate_leaves_nothing_behind(tmp_path: Path, photo: Path) -> None:
    started = asyncio.Event()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dest = out_dir / "clip.mp4"
    task = asyncio.create_task(
        media.animate_photo(
            photo, dest, motion="zoom_in", duration=60, aspect="16:9", height=360,
            on_progress=lambda fraction: started.set(),
        )
    )  # fmt: skip
    await asyncio.wait_for(started.wait(), timeout=20)
    assert ffmpeg_children(), "ffmpeg should be running"
    assert any(out_dir.iterdir()), "the temp file should exist while rendering"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ffmpeg_children() == []
    assert list(out_dir.iterdir()) == []


async def test_animate_rejects_bad_arguments(tmp_path: Path, photo: Path) -> None:
    dest = tmp_path / "x.mp4"
    with pytest.raises(MediaError, match="unknown motion"):
        await media.animate_photo(photo, dest, motion="spin", duration=1, aspect="16:9")
    with pytest.raises(MediaError, match="unknown aspect"):
        await media.animate_photo(photo, dest, motion="zoom_in", duration=1, aspect="3:1")
    with pytest.raises(MediaError):
        await media.animate_photo(photo, dest, motion="zoom_in", duration=0, aspect="16:9")
    assert list(tmp_path.iterdir()) == []


async def test_animate_unreadable_photo_fails_cleanly(tmp_path: Path) -> None:
    src = tmp_path / "broken.jpg"
    src.write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    dest = tmp_path / "out" / "clip.mp4"
    dest.parent.mkdir()
    with pytest.raises(MediaError):
        await media.animate_photo(
            src, dest, motion="zoom_in", duration=1, aspect="16:9", height=144
        )
    assert list(dest.parent.iterdir()) == []


# --- reencode_to_fit ----------------------------------------------------------------------


async def test_reencode_shrinks_a_big_video(tmp_path: Path) -> None:
    src = make_big_video(
        tmp_path / "big.mp4", target_bytes=8_000_000, seconds=4, width=640, height=360
    )
    src_info = await media.probe(src)
    assert src_info.duration == pytest.approx(4.0, abs=0.1)
    dest = tmp_path / "out" / "fit.mp4"
    dest.parent.mkdir()
    seen: list[float] = []
    assert await media.reencode_to_fit(src, dest, max_bytes=3_000_000, on_progress=seen.append)
    info = await media.probe(dest)
    assert info.size <= 3_000_000
    assert_good_mp4(dest, info, width=640, height=360, seconds=src_info.duration or 0)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert [p.name for p in dest.parent.iterdir()] == ["fit.mp4"]


async def test_reencode_scales_down_and_keeps_audio(tmp_path: Path) -> None:
    src = make_video(tmp_path / "hd.mp4", seconds=4, width=1280, height=720, audio=True)
    dest = tmp_path / "fit.mp4"
    assert await media.reencode_to_fit(src, dest, max_bytes=250_000)
    info = await media.probe(dest)
    assert info.size <= 250_000
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.height is not None and 360 <= info.height < 720
    assert info.width == round(info.height * 16 / 9 / 2) * 2
    assert info.duration == pytest.approx(4.0, abs=0.1)


async def test_reencode_evens_out_odd_sizes(tmp_path: Path) -> None:
    src = tmp_path / "odd.mp4"
    cmd = [media.default_tools().ffmpeg, "-v", "error", "-f", "lavfi"]
    cmd += ["-i", "testsrc2=size=321x241:rate=25", "-t", "1", "-c:v", "libx264"]
    subprocess.run([*cmd, "-pix_fmt", "yuv444p", "-crf", "0", str(src)], check=True)
    dest = tmp_path / "fit.mp4"
    assert await media.reencode_to_fit(src, dest, max_bytes=src.stat().st_size // 2)
    info = await media.probe(dest)
    assert (info.width, info.height) == (320, 240)


async def test_reencode_gives_up_when_impossible(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", seconds=2)
    dest = tmp_path / "out" / "fit.mp4"
    dest.parent.mkdir()
    assert await media.reencode_to_fit(src, dest, max_bytes=2000) is False
    assert list(dest.parent.iterdir()) == []


async def test_reencode_rejects_stills(tmp_path: Path, photo: Path) -> None:
    with pytest.raises(MediaError):
        await media.reencode_to_fit(photo, tmp_path / "x.mp4", max_bytes=10_000_000)
