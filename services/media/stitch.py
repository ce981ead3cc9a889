"""Stitching: the shots of a story (or a user's own clips) joined into one video.

Every clip is brought to one frame size, frame rate, pixel format and audio layout inside a
single ffmpeg run, then joined by cuts or crossfades, with an optional music bed under it all.
One pass means one encode: nothing is re-encoded twice, and no temporary clips fill the disk.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

from services.errors import MediaError
from services.media.effects import AUDIO_FORMAT, AUDIO_RATE, exactly
from services.media.ffmpeg import (
    H264_OUT,
    MP4_OUT,
    FFmpegTools,
    MediaInfo,
    Progress,
    atomic_output,
    input_arg,
    probe,
    run_ffmpeg,
)

Transition = Literal["cut", "fade"]
TRANSITIONS: tuple[Transition, ...] = get_args(Transition)

# Every input stays open (and decoding) for the whole run, so a story has a ceiling.
MAX_CLIPS = 20
# The 720p class: the short side at most 720, the long side at most 1280, never upscaled.
_MAX_SHORT_SIDE = 720
_MAX_LONG_SIDE = 1280
_MAX_FPS = 60
_MUSIC_FADE_OUT = 1.0
_VIDEO_X264 = [*H264_OUT, "-preset", "veryfast", "-crf", "23"]
_AAC = ["-c:a", "aac", "-b:a", "128k"]


def _even(value: float) -> int:
    return max(2, int(value / 2) * 2)


def story_size(width: int, height: int) -> tuple[int, int]:
    """The frame for a story opening with a ``width``×``height`` clip: its aspect, 720p-class."""
    short, long_ = min(width, height), max(width, height)
    scale = min(1.0, _MAX_SHORT_SIDE / short, _MAX_LONG_SIDE / long_)
    return _even(width * scale), _even(height * scale)


def crossfade_offsets(lengths: Sequence[float], fade: float) -> list[float]:
    """Where each xfade starts on the joined timeline: the running length minus k fades."""
    offsets, running = [], 0.0
    for k, length in enumerate(lengths[:-1], start=1):
        running += length
        offsets.append(running - k * fade)
    return offsets


def _video_chain(index: int, size: tuple[int, int], fps: int, frames: int) -> str:
    width, height = size
    return (
        f"[{index}:V:0]setpts=PTS-STARTPTS,fps={fps},"
        f"scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2"
        ":flags=bicubic,format=yuv420p,"
        f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,"
        # A video track that ends before its container still fills its slot: the last frame
        # is held, so every shot lasts exactly what the offsets were computed from.
        f"tpad=stop_mode=clone:stop_duration={frames / fps:.3f},trim=end_frame={frames},"
        f"setpts=PTS-STARTPTS,settb=1/{fps}[v{index}]"
    )


def _audio_chain(index: int, info: MediaInfo, seconds: float) -> str:
    if info.has_audio:
        return exactly(f"[{index}:a:0]asetpts=PTS-STARTPTS", seconds, f"a{index}")
    # A silent shot still needs sound of its own length, or concat and acrossfade pair the
    # next shot's sound with this shot's picture.
    return (
        f"anullsrc=r={AUDIO_RATE}:cl=stereo,atrim=duration={seconds:.6f},{AUDIO_FORMAT},"
        f"asetpts=PTS-STARTPTS[a{index}]"
    )


def _join(count: int, transition: Transition, fade: float, lengths: list[float]) -> list[str]:
    """Graph lines turning [v0][a0]…[vN][aN] into [vj][aj]."""
    if transition == "cut":
        pairs = "".join(f"[v{i}][a{i}]" for i in range(count))
        return [f"{pairs}concat=n={count}:v=1:a=1[vj][aj]"]
    lines = []
    video, audio = "[v0]", "[a0]"
    for k, offset in enumerate(crossfade_offsets(lengths, fade), start=1):
        last = k == count - 1
        out_v, out_a = ("[vj]", "[aj]") if last else (f"[vx{k}]", f"[ax{k}]")
        lines.append(
            f"{video}[v{k}]xfade=transition=fade:duration={fade:.6f}:offset={offset:.6f}{out_v}"
        )
        lines.append(f"{audio}[a{k}]acrossfade=d={fade:.6f}:c1=tri:c2=tri,{AUDIO_FORMAT}{out_a}")
        video, audio = out_v, out_a
    return lines


def _music_bed(index: int, total: float, volume: float) -> list[str]:
    fade_out = min(_MUSIC_FADE_OUT, total / 4)
    return [
        f"[{index}:a:0]{AUDIO_FORMAT},atrim=duration={total:.6f},asetpts=PTS-STARTPTS,"
        f"volume={volume:g},afade=t=out:st={total - fade_out:.6f}:d={fade_out:.6f}[bed]",
        # normalize=0: amix would otherwise halve the shots' own sound to make room for the bed.
        "[aj][bed]amix=inputs=2:duration=first:normalize=0,"
        # The limiter catches peaks where loud shots meet the bed; latency keeps sync.
        "alimiter=limit=0.95:level=false:latency=true[am]",
    ]


async def _probe_clip(path: Path, number: int, tools: FFmpegTools | None) -> MediaInfo:
    try:
        info = await probe(path, tools)
    except MediaError as exc:
        raise MediaError(
            f"cannot stitch: clip {number} ({path.name}) is unreadable: {exc}"
        ) from exc
    if not info.has_video or info.still:
        raise MediaError(f"cannot stitch: clip {number} ({path.name}) has no video")
    if not info.duration or not info.width or not info.height:
        raise MediaError(f"cannot stitch: clip {number} ({path.name}) has no known length or size")
    return info


async def stitch(
    clips: Sequence[Path],
    dest: Path,
    *,
    transition: Transition = "cut",
    fade: float = 0.5,
    size: tuple[int, int] | None = None,
    fps: int = 30,
    music: Path | None = None,
    music_volume: float = 0.18,
    on_progress: Progress | None = None,
    tools: FFmpegTools | None = None,
) -> MediaInfo:
    """Join ``clips`` into one H.264/AAC MP4 at ``dest``, by cuts or crossfades; its MediaInfo.

    ``size`` defaults to the first clip's aspect in the 720p class; a fade longer than half
    the shortest clip is shortened to that. ``music`` is looped or cut under the whole story.
    """
    if len(clips) < 2:
        raise MediaError(f"cannot stitch {len(clips)} clip(s): at least 2 are needed")
    if len(clips) > MAX_CLIPS:
        raise MediaError(f"cannot stitch {len(clips)} clips: at most {MAX_CLIPS}")
    if transition not in TRANSITIONS:
        raise MediaError(f"unknown transition {transition!r}; expected one of {TRANSITIONS}")
    if not 1 <= fps <= _MAX_FPS or not 0 <= music_volume <= 4 or not math.isfinite(fade):
        raise MediaError(f"bad fps {fps!r}, fade {fade!r} or music volume {music_volume!r}")
    if size is not None and (size[0] < 16 or size[1] < 16):
        raise MediaError(f"bad output size {size!r}")
    infos = [await _probe_clip(path, n, tools) for n, path in enumerate(clips, start=1)]
    bed = await probe(music, tools) if music is not None else None
    if bed is not None and not bed.has_audio:
        raise MediaError("cannot stitch: the music file has no sound")
    first = infos[0]
    assert first.width and first.height
    frame = (_even(size[0]), _even(size[1])) if size else story_size(first.width, first.height)
    # Whole frames everywhere, so the xfade offsets and the audio lengths agree to the sample.
    counts = [max(1, round((info.duration or 0) * fps)) for info in infos]
    lengths = [n / fps for n in counts]
    fade_frames = min(round(max(fade, 0.0) * fps), min(counts) // 2)
    if transition == "fade" and fade_frames == 0:
        transition = "cut"
    fade = fade_frames / fps if transition == "fade" else 0.0
    total = sum(lengths) - (len(clips) - 1) * fade

    graph = [_video_chain(i, frame, fps, n) for i, n in enumerate(counts)]
    graph += [
        _audio_chain(i, info, s) for i, (info, s) in enumerate(zip(infos, lengths, strict=True))
    ]
    graph += _join(len(clips), transition, fade, lengths)
    mixed = "[aj]"
    inputs = [arg for path in clips for arg in ("-i", input_arg(path))]
    if music is not None and bed is not None:
        # Looping a file whose length is unknown could spin forever on an empty stream.
        loop = ["-stream_loop", "-1"] if bed.duration and bed.duration >= 0.1 else []
        inputs += [*loop, "-i", input_arg(music)]
        graph += _music_bed(len(clips), total, music_volume)
        mixed = "[am]"
    # No loudnorm: its 3 s lookahead holds the sound back, so ffmpeg decodes every open shot
    # seconds ahead of the picture and queues those frames; with crossfades that took the peak
    # from about 0.5 to 1.2 GB for a 4-shot 720p story (bench/stitch.py). The shots keep their
    # own levels, as add_soundtrack keeps a clip's.
    graph.append(f"{mixed}anull[a]")
    with atomic_output(dest) as tmp:
        args = [
            *inputs, "-filter_complex", ";".join(graph), "-map", "[vj]", "-map", "[a]",
            *_VIDEO_X264, *_AAC, "-map_metadata", "-1", "-t", f"{total:.6f}",
            *MP4_OUT, str(tmp),
        ]  # fmt: skip
        await run_ffmpeg(args, duration=total, on_progress=on_progress, tools=tools)
        os.replace(tmp, dest)
    return await probe(dest, tools)


async def last_frame(video: Path, dest: Path, tools: FFmpegTools | None = None) -> Path:
    """The video's last frame as a JPEG at ``dest``: the picture the next shot continues from."""
    with atomic_output(dest) as tmp:
        # From a second before the end, each frame overwrites the one before: the last stays.
        args = ["-sseof", "-1", "-i", input_arg(video), "-an", "-sn", "-dn"]
        args += ["-vf", "format=yuvj420p", "-q:v", "2", "-update", "1", "-f", "image2", str(tmp)]
        await run_ffmpeg(args, duration=1.0, tools=tools)
        if tmp.stat().st_size == 0:
            raise MediaError(f"no last frame in {video.name}")
        os.replace(tmp, dest)
    return dest
