"""ffmpeg work: probing, animating a still photo, shrinking a video to fit an upload limit.

ffmpeg always runs as an asyncio subprocess, and outputs are renamed into place only when whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import os
import shutil
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from services.errors import MediaError
from services.media.probe import MediaInfo as MediaInfo
from services.media.probe import media_size, parse_ffprobe_output
from services.media.probe import parse_ffmpeg_banner as parse_ffmpeg_banner
from services.media.probe import parse_ffprobe_json as parse_ffprobe_json

logger = logging.getLogger(__name__)

Progress = Callable[[float], Awaitable[None] | None]
Ratio = tuple[int, int]

MOTIONS: tuple[str, ...] = ("zoom_in", "zoom_out", "pan_left", "pan_right", "pan_up", "pan_down")
ASPECTS: dict[str, Ratio] = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:5": (4, 5)}

_STDERR_TAIL_LINES = 40
_PROBE_TIMEOUT = 30.0
_AUDIO_BPS = 128_000
_MIN_VIDEO_BPS = 60_000
# Below ~0.05 bits per pixel per frame H.264 turns to mush, so a smaller frame looks better.
_MIN_BITS_PER_PIXEL = 0.05
# Never above 1080p (4K is far too slow on a small box) and never below 360p.
_SHORT_SIDES = (1080, 720, 540, 480, 360)
_MAX_FPS = 30
# Watchdog limits for every ffmpeg run (see run_ffmpeg and work_limit).
_RUN_LIMIT_BASE = 120.0
_RUN_LIMIT_PER_SECOND = 20.0
_DEFAULT_RUN_LIMIT = 600.0
_STALL_SECONDS = 120.0
_RUNAWAY_FACTOR = 1.5
_RUNAWAY_SLACK = 10.0


@dataclass(frozen=True)
class FFmpegTools:
    """Absolute paths of the ffmpeg (and maybe ffprobe) binaries we run."""

    ffmpeg: str
    ffprobe: str | None
    source: Literal["system", "bundled"]


def locate_ffmpeg(search_path: str | None = None, choice: str | None = None) -> FFmpegTools:
    """The ffmpeg to run: ``choice`` if given, else PATH's, else the wheel's.

    ``choice`` is ``"system"`` (PATH only), ``"bundled"`` (the imageio-ffmpeg binary) or the
    path of an ffmpeg binary; an ``ffprobe`` beside that binary is used too.
    """
    if choice == "bundled":
        return _bundled()
    if choice not in (None, "system"):
        assert choice is not None
        binary = shutil.which(choice)
        if binary is None:
            raise MediaError(f"FFMPEG_BINARY {choice!r} is not an executable file")
        sibling = Path(binary).with_name("ffprobe" + Path(binary).suffix)
        ffprobe = str(sibling) if os.access(sibling, os.X_OK) else None
        return FFmpegTools(os.path.abspath(binary), ffprobe, source="system")
    system = shutil.which("ffmpeg", path=search_path)
    if system:
        ffprobe = shutil.which("ffprobe", path=search_path)
        return FFmpegTools(
            ffmpeg=os.path.abspath(system),
            ffprobe=os.path.abspath(ffprobe) if ffprobe else None,
            source="system",
        )
    if choice == "system":
        raise MediaError("FFMPEG_BINARY is 'system' but there is no ffmpeg on PATH")
    return _bundled()


def _bundled() -> FFmpegTools:
    try:
        import imageio_ffmpeg

        bundled = str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        raise MediaError("ffmpeg not found: put it on PATH or install imageio-ffmpeg") from exc
    return FFmpegTools(
        ffmpeg=os.path.abspath(shutil.which(bundled) or bundled), ffprobe=None, source="bundled"
    )


_chosen: str | None = None


def use_ffmpeg(choice: str | None) -> None:
    """Set which ffmpeg ``default_tools`` finds (the FFMPEG_BINARY setting); None = auto."""
    global _chosen
    _chosen = choice
    default_tools.cache_clear()


@functools.cache
def default_tools() -> FFmpegTools:
    """The ffmpeg chosen by the settings (or ``$FFMPEG_BINARY``), else found on PATH, else
    bundled; located once."""
    return locate_ffmpeg(choice=_chosen or os.environ.get("FFMPEG_BINARY") or None)


def is_motion(name: str) -> bool:
    """Whether ``name`` is one of MOTIONS."""
    return name in MOTIONS


def _even(value: float) -> int:
    return max(2, int(value / 2 + 0.5) * 2)


def video_size_for(aspect: str, height: int) -> tuple[int, int]:
    """Frame (width, height) whose short side is ``height``: 720p 9:16 is 720x1280."""
    if aspect not in ASPECTS:
        raise MediaError(f"unknown aspect {aspect!r}; expected one of {', '.join(ASPECTS)}")
    if height < 16:
        raise MediaError(f"video height {height} is too small")
    aw, ah = ASPECTS[aspect]
    short = _even(height)
    if aw >= ah:
        return _even(short * aw / ah), short
    return short, _even(short * ah / aw)


async def _lines(stream: asyncio.StreamReader | None) -> AsyncIterator[str]:
    # Chunked reads rather than readline(): one absurdly long line must not raise mid-run.
    if stream is None:
        return
    pending = b""
    while chunk := await stream.read(65536):
        pending += chunk.replace(b"\r", b"\n")
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line[:4000].decode("utf-8", "replace")
        pending = pending[-4000:]
    if pending:
        yield pending.decode("utf-8", "replace")


async def _spawn(cmd: list[str]) -> asyncio.subprocess.Process:
    pipe = asyncio.subprocess.PIPE
    return await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=pipe, stderr=pipe
    )


async def _reap(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    await proc.wait()


async def _notify(on_progress: Progress, fraction: float) -> None:
    # A failing progress display (e.g. a message edit) must not abort the render itself.
    try:
        result = on_progress(fraction)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("progress callback failed")


def work_limit(duration: float | None) -> float:
    """The longest an ffmpeg run over ``duration`` seconds of media may take, in seconds.

    Generous (a slow 2-core box renders a 1080p second in well under 5 s), yet finite: one
    render that never ends must not hold the studio for everybody after it.
    """
    if not duration or duration <= 0:
        return _DEFAULT_RUN_LIMIT
    return _RUN_LIMIT_BASE + _RUN_LIMIT_PER_SECOND * duration


async def run_ffmpeg(
    args: list[str],
    *,
    duration: float | None = None,
    on_progress: Progress | None = None,
    tools: FFmpegTools | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - a hard cap on ffmpeg, not on our caller
    stall_after: float = _STALL_SECONDS,
) -> None:
    """Run ffmpeg with ``args``, reporting progress 0..1; MediaError on failure.

    Three guards kill ffmpeg and raise MediaError: the whole run takes longer than
    ``timeout`` (by default ``work_limit(duration)``); its output clock stops moving for
    ``stall_after`` seconds; or, when ``duration`` is known, it writes well past it (a broken
    input can make ffmpeg produce timestamps forever). A caller that is cancelled kills it too.
    """
    tools = tools or default_tools()
    limit = timeout if timeout is not None else work_limit(duration)
    cmd = [tools.ffmpeg, "-hide_banner", "-nostdin", "-y", "-progress", "pipe:1", "-nostats"]
    proc = await _spawn([*cmd, *args])
    loop = asyncio.get_running_loop()
    tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
    reported = 0.0
    out_time = 0.0
    moved_at = loop.time()
    killed: str | None = None

    def kill(reason: str) -> None:
        nonlocal killed
        if killed is None and proc.returncode is None:
            killed = reason
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def read_progress() -> None:
        nonlocal reported, out_time, moved_at
        async for line in _lines(proc.stdout):
            key, _, value = line.strip().partition("=")
            if key not in ("out_time_us", "out_time_ms") or not value.lstrip("-").isdigit():
                continue  # still drained, so ffmpeg never blocks on a full pipe
            # out_time_ms is microseconds too (a long-standing ffmpeg quirk).
            seconds = int(value) / 1e6
            if seconds > out_time:
                out_time, moved_at = seconds, loop.time()
            if duration and seconds > duration * _RUNAWAY_FACTOR + _RUNAWAY_SLACK:
                kill(f"ffmpeg wrote {seconds:.0f}s of a {duration:.0f}s output and went on")
            if on_progress is not None and duration and duration > 0:
                fraction = min(max(seconds / duration, 0.0), 0.999)
                if fraction > reported:
                    reported = fraction
                    await _notify(on_progress, fraction)

    async def read_stderr() -> None:
        async for line in _lines(proc.stderr):
            if line.strip():
                tail.append(line.rstrip())

    async def watch() -> None:
        started = loop.time()
        while proc.returncode is None:
            await asyncio.sleep(min(1.0, stall_after / 4, limit / 4))
            now = loop.time()
            if now - started > limit:
                kill(f"ffmpeg timed out after {limit:g}s")
            elif now - moved_at > stall_after:
                kill(f"ffmpeg made no progress for {stall_after:.0f}s")

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(read_progress())
            group.create_task(read_stderr())
            watchdog = group.create_task(watch())
            await proc.wait()
            watchdog.cancel()
    except BaseException:
        await _reap(proc)
        raise
    if killed is not None:
        logger.warning("%s; stopped it", killed)
        raise MediaError(killed)
    if proc.returncode != 0:
        details = "\n".join(tail) or "(no output)"
        raise MediaError(f"ffmpeg failed with exit code {proc.returncode}:\n{details}")
    if on_progress is not None and duration:
        await _notify(on_progress, 1.0)


async def _capture(cmd: list[str], limit: float) -> tuple[int, bytes, bytes]:
    proc = await _spawn(cmd)
    try:
        async with asyncio.timeout(limit):
            out, err = await proc.communicate()
    except TimeoutError as exc:
        await _reap(proc)
        raise MediaError(f"{os.path.basename(cmd[0])} timed out after {limit:g}s") from exc
    except BaseException:
        await _reap(proc)
        raise
    return proc.returncode or 0, out, err


def input_arg(path: Path) -> str:
    """A path as an ffmpeg input argument."""
    # Absolute, so a name starting with "-" or containing "proto:" is never misread by ffmpeg.
    return os.path.abspath(path)


async def probe(path: Path, tools: FFmpegTools | None = None) -> MediaInfo:
    """Describe a media file with ffprobe, or by parsing ffmpeg's input banner without it."""
    tools = tools or default_tools()
    size = media_size(path)
    target = input_arg(path)
    if tools.ffprobe:
        cmd = [tools.ffprobe, "-v", "error", "-print_format", "json"]
        cmd += ["-show_format", "-show_streams", target]
        return parse_ffprobe_output(*await _capture(cmd, _PROBE_TIMEOUT), size)
    # Without an output ffmpeg exits non-zero after printing the input banner; that is expected.
    cmd = [tools.ffmpeg, "-hide_banner", "-nostdin", "-i", target]
    _, _, err = await _capture(cmd, _PROBE_TIMEOUT)
    return parse_ffmpeg_banner(err.decode("utf-8", "replace"), size)


# A frame whose grey levels spread less than this (0..255) shows nothing: one flat colour.
_BLANK_SPREAD = 3.0
_SAMPLE_SIDE = 16
_SAMPLES = 3


async def looks_blank(path: Path, duration: float | None, tools: FFmpegTools | None = None) -> bool:
    """True when every one of a few frames spread over the video is a single flat colour.

    A broken result (a mis-decoded input, a provider's empty render) looks like that, and a
    user must not be told "Done" for it. Frames are read as tiny grey thumbnails: cheap.
    """
    tools = tools or default_tools()
    rate = _SAMPLES / duration if duration and duration > 0 else 1.0
    scale = f"fps={rate:.5f},scale={_SAMPLE_SIDE}:{_SAMPLE_SIDE},format=gray"
    cmd = [tools.ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-i", input_arg(path)]
    cmd += ["-map", "0:V:0", "-vf", scale, "-frames:v", str(_SAMPLES), "-f", "rawvideo", "-"]
    code, out, _ = await _capture(cmd, _PROBE_TIMEOUT)
    frame = _SAMPLE_SIDE * _SAMPLE_SIDE
    frames = [out[i : i + frame] for i in range(0, len(out) - frame + 1, frame)]
    if code != 0 or not frames:
        return True  # not even one frame decodes

    def spread(pixels: bytes) -> float:
        mean = sum(pixels) / len(pixels)
        return math.sqrt(sum((p - mean) ** 2 for p in pixels) / len(pixels))

    return all(spread(f) < _BLANK_SPREAD for f in frames)


@contextlib.contextmanager
def atomic_output(dest: Path) -> Iterator[Path]:
    """A temporary file beside ``dest`` to write into; gone afterwards unless moved into place."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=".part.mp4", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _motion_filter(motion: str, width: int, height: int, frames: int, fps: int) -> str:
    """Filter graph: cover-crop the photo onto a canvas, then move a sub-pixel viewport over it."""
    duration = frames / fps
    # Motion amplitude grows a little with duration so short clips don't rush.
    zoom = 1 + min(max(0.05 * duration, 0.15), 0.3)
    travel = min(max(0.06 * duration, 0.2), 0.4)
    # The canvas aspect range: exact for zooms, room to travel along the axis for pans.
    aspect = width / height
    if motion.startswith("zoom"):
        low = high = aspect
        size = f"{_even(width * zoom)}:{_even(height * zoom)}"
    elif motion in ("pan_left", "pan_right"):
        low, high, size = aspect * 1.2, aspect * (1 + travel), f"-2:{height}"
    else:
        low, high, size = aspect / (1 + travel), aspect / 1.2, f"{width}:-2"
    # Crop at the source resolution first: cheaper, and an extreme panorama is never blown up.
    canvas = (
        f"crop='min(iw,ih*{high:.5f})':'min(ih,iw/{low:.5f})'"
        # Subjects (faces) usually sit above the middle, so keep a bit more of the top.
        ":'(iw-ow)/2':'(ih-oh)*0.4',"
        f"scale={size}:flags=lanczos+accurate_rnd:out_range=tv:out_color_matrix=bt709,"
        "format=yuv420p"
    )
    # Smoothstep easing over the frame index (perspective's "in" counts from 1).
    t = f"((in-1)/{max(frames - 1, 1)})"
    p = f"({t}*{t}*(3-2*{t}))"
    if motion.startswith("zoom"):
        z = f"pow({zoom:.4f},{p if motion == 'zoom_in' else f'(1-{p})'})"
        x0, x1 = f"-({z}-1)*{width / 2}", f"({z}+1)*{width / 2}"
        y0, y2 = f"-({z}-1)*{height / 2}", f"({z}+1)*{height / 2}"
    elif motion in ("pan_left", "pan_right"):
        shift = f"{p if motion == 'pan_right' else f'(1-{p})'}*(W-{width})"
        x0, x1, y0, y2 = f"-{shift}", f"W-{shift}", "0", "H"
    else:
        shift = f"{p if motion == 'pan_down' else f'(1-{p})'}*(H-{height})"
        x0, x1, y0, y2 = "0", "W", f"-{shift}", f"H-{shift}"
    # sense=destination places the canvas corners in the output, giving sub-pixel motion
    # (crop/zoompan move in whole pixels and visibly judder on slow moves).
    corners = f"x0='{x0}':y0='{y0}':x1='{x1}':y1='{y0}':x2='{x0}':y2='{y2}':x3='{x1}':y3='{y2}'"
    # Bicubic keeps 1:1 pans from pulsing in sharpness; zooms never sit on the pixel grid, so
    # bilinear looks the same there at under half the cost.
    interpolation = "linear" if motion.startswith("zoom") else "cubic"
    return (
        f"{canvas},loop=loop={frames - 1}:size=1,setpts=N/TB/{fps},"
        f"perspective={corners}:interpolation={interpolation}:sense=destination:eval=frame,"
        f"crop={width}:{height}:0:0,setsar=1"
    )


H264_OUT = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-profile:v", "high"]
MP4_OUT = ["-movflags", "+faststart", "-sn", "-dn", "-f", "mp4"]


async def animate_photo(
    src: Path,
    dest: Path,
    *,
    motion: str,
    duration: float,
    aspect: str,
    height: int = 720,
    fps: int = 25,
    on_progress: Progress | None = None,
    tools: FFmpegTools | None = None,
) -> None:
    """Render a Ken Burns style H.264 MP4 of ``duration`` seconds moving over a still photo."""
    if not is_motion(motion):
        raise MediaError(f"unknown motion {motion!r}; expected one of {', '.join(MOTIONS)}")
    if not 0 < duration <= 600 or not 1 <= fps <= 120:
        raise MediaError(f"bad duration {duration!r} or fps {fps!r}")
    width, out_height = video_size_for(aspect, height)
    frames = max(1, round(duration * fps))
    graph = _motion_filter(motion, width, out_height, frames, fps)
    with atomic_output(dest) as tmp:
        args = [
            "-i", input_arg(src), "-map", "0:v:0", "-vf", graph,
            "-frames:v", str(frames), "-r", str(fps), "-an", "-map_metadata", "-1",
            *H264_OUT, "-preset", "veryfast", "-crf", "23",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
            "-color_range", "tv", *MP4_OUT, str(tmp),
        ]  # fmt: skip
        await run_ffmpeg(args, duration=frames / fps, on_progress=on_progress, tools=tools)
        os.replace(tmp, dest)


def _size_or_zero(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _fit_size(width: int, height: int, video_bps: float) -> tuple[int, int] | None:
    """The largest frame (short side from the ladder, never upscaled) the bitrate can carry."""
    short, long_ = min(width, height), max(width, height)
    sides = [min(short, _SHORT_SIDES[0])] + [s for s in _SHORT_SIDES if s < short]
    for side in sides:
        if video_bps / (side * side * long_ / short * _MAX_FPS) >= _MIN_BITS_PER_PIXEL:
            break
    if side == short:
        return None
    scaled_long = _even(long_ * side / short)
    return (scaled_long, side) if width >= height else (side, scaled_long)


async def reencode_to_fit(
    src: Path,
    dest: Path,
    *,
    max_bytes: int,
    info: MediaInfo | None = None,
    tools: FFmpegTools | None = None,
    on_progress: Progress | None = None,
) -> bool:
    """Re-encode to an H.264/AAC MP4 of at most ``max_bytes``; False (and no dest) if impossible."""
    info = info or await probe(src, tools)
    if not info.has_video or not info.duration:
        raise MediaError("cannot re-encode: no video stream or unknown duration")
    duration = info.duration
    # 5% for the container and rate-control error.
    budget_bps = max_bytes * 8 * 0.95 / duration
    audio_bps = (_AUDIO_BPS if budget_bps >= 6 * _AUDIO_BPS else 64_000) if info.has_audio else 0
    # x264 may spend its whole VBV buffer on top of the average, so that comes out of the budget.
    buffer_s = min(1.0, duration / 5)
    video_bps = (budget_bps - audio_bps) * duration / (duration + buffer_s)
    frame = (info.width, info.height) if info.width and info.height else None
    resize = _fit_size(*frame, video_bps) if frame else None
    out_w, out_h = resize or frame or (1920, 1080)
    reported = 0.0

    async def progress(fraction: float) -> None:
        # A retry restarts ffmpeg's clock; the caller should only ever see progress go forward.
        nonlocal reported
        if on_progress is not None and min(fraction, 0.99) > reported:
            reported = min(fraction, 0.99)
            await _notify(on_progress, reported)

    with atomic_output(dest) as tmp:
        for _attempt in range(2):
            if video_bps < _MIN_VIDEO_BPS:
                break
            # With bits to spare the slower preset's gain is invisible, and big files are slow.
            rich = video_bps / (out_w * out_h * _MAX_FPS) >= 0.15
            # yuv420p needs even sides; odd-sized sources exist (screen recordings, crops).
            dims = f"{resize[0]}:{resize[1]}" if resize else "'trunc(iw/2)*2':'trunc(ih/2)*2'"
            audio = ["-c:a", "aac", "-b:a", str(audio_bps)] if info.has_audio else ["-an"]
            rate = str(int(video_bps))
            args = [
                "-i", input_arg(src), "-map", "0:V:0", "-map", "0:a:0?",
                "-vf", f"scale={dims}:flags=bicubic,format=yuv420p", "-fpsmax", str(_MAX_FPS),
                *H264_OUT, "-preset", "superfast" if rich else "veryfast",
                "-b:v", rate, "-maxrate", rate, "-bufsize", str(int(video_bps * buffer_s)),
                *audio, *MP4_OUT, str(tmp),
            ]  # fmt: skip
            await run_ffmpeg(args, duration=duration, on_progress=progress, tools=tools)
            size = _size_or_zero(tmp)
            if 0 < size <= max_bytes:
                os.replace(tmp, dest)
                if on_progress is not None:
                    await _notify(on_progress, 1.0)
                return True
            logger.info("re-encode overshot: %d > %d bytes, retrying lower", size, max_bytes)
            # Aim lower by the video's own overshoot, plus 10% so the retry lands inside.
            actual_video_bps = size * 8 / duration - audio_bps
            video_bps *= video_bps / max(actual_video_bps, video_bps) * 0.9
    with contextlib.suppress(FileNotFoundError):
        os.unlink(dest)
    return False
